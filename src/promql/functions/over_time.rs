//! Functions of a range vector: `rate`/`increase`/`delta` (Prometheus' `extrapolatedRate`),
//! `irate`/`idelta`, `changes`, `resets`, `deriv`, `predict_linear`,
//! `double_exponential_smoothing`, the `*_over_time` aggregations, `absent_over_time`.
//!
//! Windows are left-open, `(end - range, end]` (Prometheus 3). A series yields a point at a
//! step only when its window has the samples the function needs.

use crate::model::labels::Labels;
use crate::promql::value::{Annotations, Point, QueryError, Series, StepValue, Steps};

use super::labels::absent_labels;
use super::{invalid_quantile_warning, kahan_inc, position, quantile, Args, FnCtx, RangeArg};

pub(super) fn call(
    name: &str,
    args: &mut Args<'_>,
    ctx: &FnCtx<'_>,
    annotations: &mut Annotations,
) -> Result<Option<StepValue>, QueryError> {
    let result = match name {
        "rate" | "increase" | "delta" => {
            let range = args.range(0)?;
            let (is_counter, is_rate) = (name != "delta", name == "rate");
            // Counter resets are rare: a series without any needs no per-window scan.
            let resets =
                |series: &Series| is_counter && series.points.windows(2).any(|w| w[1].v < w[0].v);
            let out = per_series_window(&range, &ctx.steps, resets, |&resets, _, points, end| {
                extrapolated_rate(
                    points,
                    end - range.range_ms,
                    end,
                    range.range_ms,
                    (is_counter, resets),
                    is_rate,
                )
            });
            if is_counter {
                let at = position(ctx, 0);
                for series in &out {
                    non_counter_info(&series.labels, &at, annotations);
                }
            }
            out
        }
        "irate" => {
            per_window(&args.range(0)?, &ctx.steps, |_, points, _| instant_value(points, true))
        }
        "idelta" => {
            per_window(&args.range(0)?, &ctx.steps, |_, points, _| instant_value(points, false))
        }
        "changes" => per_window(&args.range(0)?, &ctx.steps, |_, points, _| {
            let changes = points
                .windows(2)
                .filter(|w| w[1].v != w[0].v && !(w[1].v.is_nan() && w[0].v.is_nan()))
                .count();
            (!points.is_empty()).then_some(changes as f64)
        }),
        "resets" => per_window(&args.range(0)?, &ctx.steps, |_, points, _| {
            let resets = points.windows(2).filter(|w| w[1].v < w[0].v).count();
            (!points.is_empty()).then_some(resets as f64)
        }),
        "deriv" => per_window(&args.range(0)?, &ctx.steps, |_, points, _| {
            (points.len() >= 2).then(|| linear_regression(points, points[0].t).0)
        }),
        "predict_linear" => {
            let range = args.range(0)?;
            let duration = args.scalar(1)?.to_vec();
            per_window(&range, &ctx.steps, |i, points, _| {
                (points.len() >= 2).then(|| {
                    let (slope, intercept) = linear_regression(points, ctx.steps.time(i));
                    slope * duration[i] + intercept
                })
            })
        }
        "double_exponential_smoothing" | "holt_winters" => {
            let range = args.range(0)?;
            let (smoothing, trend) = (args.scalar(1)?.to_vec(), args.scalar(2)?.to_vec());
            let mut error = None;
            let out = per_window(&range, &ctx.steps, |i, points, _| {
                // Checked for every series with samples, before the two-sample minimum; a NaN
                // factor passes the check (as in Prometheus) and makes the result NaN.
                if points.is_empty() {
                    return None;
                }
                let (sf, tf) = (smoothing[i], trend[i]);
                if sf <= 0.0 || sf >= 1.0 {
                    error.get_or_insert(format!(
                        "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                    ));
                    return None;
                }
                if tf <= 0.0 || tf >= 1.0 {
                    error.get_or_insert(format!(
                        "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                    ));
                    return None;
                }
                (points.len() >= 2).then(|| double_exponential_smoothing(points, sf, tf))
            });
            if let Some(message) = error {
                return Err(QueryError::execution(message));
            }
            out
        }
        "avg_over_time" => {
            per_window(&args.range(0)?, &ctx.steps, |_, points, _| nonempty(points).map(average))
        }
        "sum_over_time" => per_window(&args.range(0)?, &ctx.steps, |_, points, _| {
            nonempty(points).map(|points| {
                let (sum, c) = points.iter().fold((0.0, 0.0), |(s, c), p| kahan_inc(p.v, s, c));
                sum + c
            })
        }),
        "count_over_time" => per_window(&args.range(0)?, &ctx.steps, |_, points, _| {
            nonempty(points).map(|p| p.len() as f64)
        }),
        "min_over_time" => per_window(&args.range(0)?, &ctx.steps, |_, points, _| {
            extreme(points, |cur, best| cur < best).map(|p| p.v)
        }),
        "max_over_time" => per_window(&args.range(0)?, &ctx.steps, |_, points, _| {
            extreme(points, |cur, best| cur > best).map(|p| p.v)
        }),
        "ts_of_min_over_time" => per_window(&args.range(0)?, &ctx.steps, |_, points, _| {
            extreme(points, |cur, best| cur <= best).map(|p| p.t as f64 / 1000.0)
        }),
        "ts_of_max_over_time" => per_window(&args.range(0)?, &ctx.steps, |_, points, _| {
            extreme(points, |cur, best| cur >= best).map(|p| p.t as f64 / 1000.0)
        }),
        "last_over_time" => {
            per_window(&args.range(0)?, &ctx.steps, |_, points, _| points.last().map(|p| p.v))
        }
        "first_over_time" => {
            per_window(&args.range(0)?, &ctx.steps, |_, points, _| points.first().map(|p| p.v))
        }
        "ts_of_last_over_time" => per_window(&args.range(0)?, &ctx.steps, |_, points, _| {
            points.last().map(|p| p.t as f64 / 1000.0)
        }),
        "ts_of_first_over_time" => per_window(&args.range(0)?, &ctx.steps, |_, points, _| {
            points.first().map(|p| p.t as f64 / 1000.0)
        }),
        "present_over_time" => {
            per_window(&args.range(0)?, &ctx.steps, |_, points, _| nonempty(points).map(|_| 1.0))
        }
        "stddev_over_time" => per_window(&args.range(0)?, &ctx.steps, |_, points, _| {
            nonempty(points).map(|p| variance(p).sqrt())
        }),
        "stdvar_over_time" => {
            per_window(&args.range(0)?, &ctx.steps, |_, points, _| nonempty(points).map(variance))
        }
        "mad_over_time" => per_window(&args.range(0)?, &ctx.steps, |_, points, _| {
            nonempty(points).map(|points| {
                // A NaN sample makes the result NaN rather than being dropped.
                if points.iter().any(|p| p.v.is_nan()) {
                    return f64::NAN;
                }
                let mut values: Vec<f64> = points.iter().map(|p| p.v).collect();
                let median = quantile(0.5, &mut values);
                let mut deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
                quantile(0.5, &mut deviations)
            })
        }),
        "quantile_over_time" => {
            let q = args.scalar(0)?.to_vec();
            let range = args.range(1)?;
            let mut invalid = None;
            let out = per_window(&range, &ctx.steps, |i, points, _| {
                nonempty(points).map(|points| {
                    if q[i].is_nan() || !(0.0..=1.0).contains(&q[i]) {
                        invalid.get_or_insert(q[i]);
                    }
                    let mut values: Vec<f64> = points.iter().map(|p| p.v).collect();
                    quantile(q[i], &mut values)
                })
            });
            if let Some(q) = invalid {
                annotations.warn(invalid_quantile_warning(q) + &position(ctx, 0));
            }
            out
        }
        "absent_over_time" => {
            let range = args.range(0)?;
            let points: Vec<Point> = (0..range.window_ends.len())
                .filter(|&i| range.series.iter().all(|s| range.window(s, i).is_empty()))
                .map(|i| Point { t: ctx.steps.time(i), v: 1.0 })
                .collect();
            let labels = ctx.args.first().map_or_else(Labels::default, |arg| absent_labels(arg));
            return Ok(Some(StepValue::Vector(if points.is_empty() {
                Vec::new()
            } else {
                vec![Series { labels, points }]
            })));
        }
        _ => return Ok(None),
    };
    Ok(Some(StepValue::Vector(result)))
}

/// Applies `f(step, window points, window end)` to every series at every step.
fn per_window(
    range: &RangeArg,
    steps: &Steps,
    mut f: impl FnMut(usize, &[Point], i64) -> Option<f64>,
) -> Vec<Series> {
    per_series_window(range, steps, |_| (), |(), i, points, end| f(i, points, end))
}

/// [`per_window`] with a fact computed once per series (`prep`) handed to every window.
/// Windows advance with two cursors: step ends never go back (a fixed `@` keeps them equal).
fn per_series_window<C>(
    range: &RangeArg,
    steps: &Steps,
    prep: impl Fn(&Series) -> C,
    mut f: impl FnMut(&C, usize, &[Point], i64) -> Option<f64>,
) -> Vec<Series> {
    let count = range.window_ends.len();
    range
        .series
        .iter()
        .filter_map(|series| {
            let fact = prep(series);
            let all = series.points.as_slice();
            let (mut lo, mut hi, mut previous_end) = (0, 0, i64::MIN);
            let mut points = Vec::with_capacity(count);
            for (i, &end) in range.window_ends.iter().enumerate() {
                if end < previous_end {
                    // Not expected; stay correct anyway.
                    (lo, hi) = (0, 0);
                }
                previous_end = end;
                let start = end - range.range_ms;
                while hi < all.len() && all[hi].t <= end {
                    hi += 1;
                }
                while lo < hi && all[lo].t <= start {
                    lo += 1;
                }
                if let Some(v) = f(&fact, i, &all[lo..hi], end) {
                    points.push(Point { t: steps.time(i), v });
                }
            }
            (!points.is_empty()).then(|| Series { labels: series.labels.clone(), points })
        })
        .collect()
}

fn nonempty(points: &[Point]) -> Option<&[Point]> {
    (!points.is_empty()).then_some(points)
}

/// The point that wins `better(candidate, best)` (NaN is always replaced).
fn extreme(points: &[Point], better: impl Fn(f64, f64) -> bool) -> Option<Point> {
    let mut best = *points.first()?;
    for p in &points[1..] {
        if better(p.v, best.v) || best.v.is_nan() {
            best = *p;
        }
    }
    Some(best)
}

/// `PromQL info: metric might not be a counter, …` for `rate`/`increase` of a name that does not
/// look like a counter.
fn non_counter_info(labels: &Labels, position: &str, annotations: &mut Annotations) {
    let Some(name) = labels.metric_name() else { return };
    let counter_like = ["_total", "_sum", "_count", "_bucket"].iter().any(|s| name.ends_with(s));
    if !counter_like {
        annotations.info(format!(
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {name:?}{position}"
        ));
    }
}

/// Prometheus' `extrapolatedRate` for floats.
fn extrapolated_rate(
    points: &[Point],
    range_start: i64,
    range_end: i64,
    range_ms: i64,
    (is_counter, may_reset): (bool, bool),
    is_rate: bool,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let first = points[0];
    let last = points[points.len() - 1];
    let mut result = last.v - first.v;
    if may_reset {
        for w in points.windows(2) {
            if w[1].v < w[0].v {
                result += w[0].v;
            }
        }
    }
    let mut duration_to_start = (first.t - range_start) as f64 / 1000.0;
    let mut duration_to_end = (range_end - last.t) as f64 / 1000.0;
    let sampled_interval = (last.t - first.t) as f64 / 1000.0;
    let average_between = sampled_interval / (points.len() - 1) as f64;
    let threshold = average_between * 1.1;
    if duration_to_start >= threshold {
        duration_to_start = average_between / 2.0;
    }
    if is_counter && result > 0.0 && first.v >= 0.0 {
        // A counter cannot go below zero: do not extrapolate past where it would be zero.
        let duration_to_zero = sampled_interval * (first.v / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    if duration_to_end >= threshold {
        duration_to_end = average_between / 2.0;
    }
    let mut factor = (sampled_interval + duration_to_start + duration_to_end) / sampled_interval;
    if is_rate {
        factor /= range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate`/`idelta`: from the last two samples.
fn instant_value(points: &[Point], is_rate: bool) -> Option<f64> {
    let [.., previous, last] = points else { return None };
    let mut value = if is_rate && last.v < previous.v { last.v } else { last.v - previous.v };
    let interval = last.t - previous.t;
    if interval == 0 {
        return None;
    }
    if is_rate {
        value /= interval as f64 / 1000.0;
    }
    Some(value)
}

/// Least-squares slope and intercept (at `intercept_time`) with compensated sums, as
/// Prometheus' `linearRegression`.
fn linear_regression(points: &[Point], intercept_time: i64) -> (f64, f64) {
    let first_value = points[0].v;
    if points.iter().all(|p| p.v == first_value) {
        if first_value.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, first_value);
    }
    let (mut sum_x, mut c_x) = (0.0, 0.0);
    let (mut sum_y, mut c_y) = (0.0, 0.0);
    let (mut sum_xy, mut c_xy) = (0.0, 0.0);
    let (mut sum_x2, mut c_x2) = (0.0, 0.0);
    for p in points {
        let x = (p.t - intercept_time) as f64 / 1000.0;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(p.v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * p.v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    let n = points.len() as f64;
    let (sum_x, sum_y, sum_xy, sum_x2) = (sum_x + c_x, sum_y + c_y, sum_xy + c_xy, sum_x2 + c_x2);
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    (slope, sum_y / n - slope * sum_x / n)
}

fn double_exponential_smoothing(points: &[Point], sf: f64, tf: f64) -> f64 {
    let (mut s0, mut s1) = (0.0, points[0].v);
    let mut trend = points[1].v - points[0].v;
    for (i, p) in points.iter().enumerate().skip(1) {
        if i > 1 {
            trend = tf * (s1 - s0) + (1.0 - tf) * trend;
        }
        let next = sf * p.v + (1.0 - sf) * (s1 + trend);
        s0 = s1;
        s1 = next;
    }
    s1
}

/// The mean with compensated summation, switching to an incremental mean if the sum overflows
/// (Prometheus' `avg_over_time`).
fn average(points: &[Point]) -> f64 {
    let (mut sum, mut c) = (points[0].v, 0.0);
    let mut mean = 0.0;
    let mut incremental = false;
    for (i, p) in points.iter().enumerate().skip(1) {
        let count = (i + 1) as f64;
        if !incremental {
            let (new_sum, new_c) = kahan_inc(p.v, sum, c);
            if !new_sum.is_infinite() {
                (sum, c) = (new_sum, new_c);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(p.v / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        let count = points.len() as f64;
        sum / count + c / count
    }
}

/// Population variance (Welford with compensated sums).
fn variance(points: &[Point]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in points {
        count += 1.0;
        let delta = p.v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (p.v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(values: &[(i64, f64)]) -> Vec<Point> {
        values.iter().map(|&(t, v)| Point { t, v }).collect()
    }

    #[test]
    fn rate_extrapolates_to_window_edges() {
        // Samples every 60 s from 60 s to 300 s, +10 each, window (0, 300].
        let p = points(&[
            (60_000, 10.0),
            (120_000, 20.0),
            (180_000, 30.0),
            (240_000, 40.0),
            (300_000, 50.0),
        ]);
        let increase = extrapolated_rate(&p, 0, 300_000, 300_000, (true, true), false).unwrap();
        // 40 over 240 s, extrapolated 60 s to the start (exactly where the counter would be 0).
        assert!((increase - 50.0).abs() < 1e-9, "{increase}");
        let rate = extrapolated_rate(&p, 0, 300_000, 300_000, (true, true), true).unwrap();
        assert!((rate - 50.0 / 300.0).abs() < 1e-12);
        // A counter reset adds the value before the reset (5 -> 1 is an increase of 1), and the
        // 60 s sampled are extrapolated 60 s back to the window start (-60 s, 60 s].
        let reset = points(&[(0, 5.0), (60_000, 1.0)]);
        assert_eq!(
            extrapolated_rate(&reset, -60_000, 60_000, 120_000, (true, true), false),
            Some(2.0)
        );
        assert_eq!(
            extrapolated_rate(&reset[..1], -60_000, 60_000, 120_000, (true, true), false),
            None
        );
    }

    #[test]
    fn irate_and_regression() {
        let p = points(&[(0, 1.0), (10_000, 5.0), (20_000, 2.0)]);
        assert_eq!(instant_value(&p, true), Some(0.2));
        assert_eq!(instant_value(&p, false), Some(-3.0));
        let line = points(&[(0, 1.0), (1000, 3.0), (2000, 5.0)]);
        assert_eq!(linear_regression(&line, 0), (2.0, 1.0));
        assert_eq!(linear_regression(&points(&[(0, 4.0), (1000, 4.0)]), 0), (0.0, 4.0));
    }

    #[test]
    fn averages_and_variance() {
        let p = points(&[(0, 1.0), (1, 2.0), (2, 3.0), (3, 4.0)]);
        assert_eq!(average(&p), 2.5);
        assert_eq!(variance(&p), 1.25);
        let big = points(&[(0, f64::MAX), (1, f64::MAX)]);
        assert_eq!(average(&big), f64::MAX);
    }

    #[test]
    fn smoothing_follows_a_line() {
        let p = points(&[(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0)]);
        assert!((double_exponential_smoothing(&p, 0.5, 0.5) - 3.0).abs() < 1e-12);
    }
}
