//! Histogram functions over classic histograms (`le` bucket series): `histogram_quantile`
//! (Prometheus' `bucketQuantile`, with its precision and monotonicity fixes) and
//! `histogram_fraction`. The functions that only read native histograms (`histogram_count`,
//! `histogram_sum`, `histogram_avg`, `histogram_stddev`, `histogram_stdvar`) ignore float
//! samples, as Prometheus does, so they return nothing here.

use std::collections::HashMap;

use crate::model::labels::Labels;
use crate::promql::value::{Annotations, Point, QueryError, Series, StepValue};

use super::{invalid_quantile_warning, position, Args, FnCtx};

pub(super) fn call(
    name: &str,
    args: &mut Args<'_>,
    ctx: &FnCtx<'_>,
    annotations: &mut Annotations,
) -> Result<Option<StepValue>, QueryError> {
    let result = match name {
        "histogram_quantile" => {
            let q = args.scalar(0)?.to_vec();
            let series = args.vector(1)?;
            if let Some(bad) = q.iter().find(|q| q.is_nan() || !(0.0..=1.0).contains(*q)) {
                annotations.warn(invalid_quantile_warning(*bad) + &position(ctx, 0));
            }
            let mut forced = Vec::new();
            let at = position(ctx, 1);
            let out = per_histogram(series, ctx, &at, annotations, |i, buckets, labels| {
                let (value, forced_monotonic) = bucket_quantile(q[i], buckets);
                if forced_monotonic {
                    forced.push(labels.metric_name().unwrap_or("").to_owned());
                }
                value
            });
            for name in forced {
                annotations.info(forced_monotonicity_info(&name) + &at);
            }
            out
        }
        "histogram_quantiles" => {
            let series = args.vector(0)?;
            let label = args.string(1)?.to_owned();
            let quantiles: Vec<Vec<f64>> = (2..args.len())
                .map(|i| args.scalar(i).map(<[f64]>::to_vec))
                .collect::<Result<_, _>>()?;
            histogram_quantiles(&series, &label, &quantiles, ctx, annotations)
        }
        "histogram_fraction" => {
            let (lower, upper) = (args.scalar(0)?.to_vec(), args.scalar(1)?.to_vec());
            let series = args.vector(2)?;
            per_histogram(series, ctx, &position(ctx, 2), annotations, |i, buckets, _| {
                bucket_fraction(lower[i], upper[i], buckets)
            })
        }
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
        | "histogram_stdvar" => {
            args.vector(0)?;
            Vec::new()
        }
        _ => return Ok(None),
    };
    Ok(Some(StepValue::Vector(result)))
}

/// `histogram_quantiles(v, "label", q1, q2, …)`: one output series per quantile, told apart by
/// `label` set to the quantile (`0.0`, `0.25`, `1.0`, `NaN`).
fn histogram_quantiles(
    series: &[Series],
    label: &str,
    quantiles: &[Vec<f64>],
    ctx: &FnCtx<'_>,
    annotations: &mut Annotations,
) -> Vec<Series> {
    for (k, q) in quantiles.iter().enumerate() {
        if let Some(bad) = q.iter().find(|q| q.is_nan() || !(0.0..=1.0).contains(*q)) {
            annotations.warn(invalid_quantile_warning(*bad) + &position(ctx, k + 2));
        }
    }
    let at = position(ctx, 0);
    let mut out: Vec<Series> = Vec::new();
    let mut by_labels: HashMap<Labels, Vec<usize>> = HashMap::new();
    let mut forced_names = Vec::new();
    for q in quantiles {
        let mut labelled: Vec<(Labels, Point)> = Vec::new();
        let groups = per_histogram(series.to_vec(), ctx, &at, annotations, |i, buckets, labels| {
            let (value, forced) = bucket_quantile(q[i], buckets);
            if forced {
                forced_names.push(labels.metric_name().unwrap_or("").to_owned());
            }
            value
        });
        for group in groups {
            for point in group.points {
                let Some(i) = ctx.steps.index(point.t) else { continue };
                let mut builder = group.labels.builder();
                builder.set(label, format!("{:?}", q[i]));
                labelled.push((builder.build(), point));
            }
        }
        for (labels, point) in labelled {
            // A label set seen twice at one step stays two series: the engine reports it.
            let slots = by_labels.entry(labels.clone()).or_default();
            let free =
                slots.iter().copied().find(|&k| out[k].points.iter().all(|p| p.t != point.t));
            match free {
                Some(k) => out[k].points.push(point),
                None => {
                    slots.push(out.len());
                    out.push(Series { labels, points: vec![point] });
                }
            }
        }
    }
    for name in forced_names {
        annotations.info(forced_monotonicity_info(&name) + &at);
    }
    out
}

fn forced_monotonicity_info(name: &str) -> String {
    format!(
        "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {name:?}"
    )
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Bucket {
    upper: f64,
    count: f64,
}

/// Groups bucket series by their labels without `le` and applies `f` per group and step.
/// Series with a missing or malformed `le` are left out with a warning.
fn per_histogram(
    series: Vec<Series>,
    ctx: &FnCtx<'_>,
    position: &str,
    annotations: &mut Annotations,
    mut f: impl FnMut(usize, &mut Vec<Bucket>, &Labels) -> f64,
) -> Vec<Series> {
    let mut groups: Vec<(Labels, Vec<(f64, Series)>)> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for s in series {
        let le = s.labels.get("le").unwrap_or("");
        let Some(upper) = parse_go_float(le) else {
            annotations.warn(format!(
                "PromQL warning: bucket label \"le\" is missing or has a malformed value of {le:?} for metric name {:?}{position}",
                s.labels.metric_name().unwrap_or("")
            ));
            continue;
        };
        let mut builder = s.labels.builder();
        builder.delete("le");
        let key = builder.build();
        let slot = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[slot].1.push((upper, s));
    }
    let mut out = Vec::with_capacity(groups.len());
    let mut buckets = Vec::new();
    for (labels, members) in groups {
        let mut points = Vec::new();
        // Points are sorted at step times: one cursor per bucket series walks them once.
        let mut cursors = vec![0usize; members.len()];
        for i in 0..ctx.steps.len() {
            let t = ctx.steps.time(i);
            buckets.clear();
            for ((upper, s), cursor) in members.iter().zip(cursors.iter_mut()) {
                while s.points.get(*cursor).is_some_and(|p| p.t < t) {
                    *cursor += 1;
                }
                if let Some(p) = s.points.get(*cursor).filter(|p| p.t == t) {
                    buckets.push(Bucket { upper: *upper, count: p.v });
                }
            }
            if !buckets.is_empty() {
                points.push(Point { t, v: f(i, &mut buckets, &labels) });
            }
        }
        if !points.is_empty() {
            out.push(Series { labels, points });
        }
    }
    out
}

/// `le` values as Go's `strconv.ParseFloat` reads them.
fn parse_go_float(text: &str) -> Option<f64> {
    let body = text.trim_start_matches(['+', '-']);
    let first = *body.as_bytes().first()?;
    if !(first.is_ascii_digit() || matches!(first, b'.' | b'i' | b'I' | b'n' | b'N')) {
        return None;
    }
    text.parse().ok()
}

/// Sorts by upper bound and merges equal bounds.
fn sort_and_coalesce(buckets: &mut Vec<Bucket>) {
    buckets.sort_by(|a, b| a.upper.partial_cmp(&b.upper).unwrap_or(std::cmp::Ordering::Equal));
    buckets.dedup_by(|next, kept| {
        if next.upper == kept.upper {
            kept.count += next.count;
            true
        } else {
            false
        }
    });
}

/// Makes counts monotonic: first evens out differences within `tolerance` (float noise), then
/// raises any decrease to the running maximum. Returns whether a real decrease was fixed.
fn make_monotonic(buckets: &mut [Bucket]) -> bool {
    let mut previous = buckets[0].count;
    for b in buckets.iter_mut().skip(1) {
        let delta = (b.count - previous).abs();
        if delta == 0.0 {
            continue;
        }
        if delta / b.count <= 1e-12 {
            b.count = previous;
        } else {
            previous = b.count;
        }
    }
    let mut forced = false;
    let mut max = buckets[0].count;
    for b in buckets.iter_mut().skip(1) {
        if b.count > max {
            max = b.count;
        } else if b.count < max {
            b.count = max;
            forced = true;
        }
    }
    forced
}

/// Prometheus' `bucketQuantile`: the value and whether monotonicity had to be forced.
fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    sort_and_coalesce(buckets);
    if buckets.last().is_none_or(|b| b.upper != f64::INFINITY) {
        return (f64::NAN, false);
    }
    let forced = make_monotonic(buckets);
    if buckets.len() < 2 {
        return (f64::NAN, false);
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return (f64::NAN, false);
    }
    let mut rank = q * observations;
    let b = buckets[..buckets.len() - 1].partition_point(|b| b.count < rank);
    if b == buckets.len() - 1 {
        return (buckets[buckets.len() - 2].upper, forced);
    }
    if b == 0 && buckets[0].upper <= 0.0 {
        return (buckets[0].upper, forced);
    }
    let end = buckets[b].upper;
    let mut count = buckets[b].count;
    let mut start = 0.0;
    if b > 0 {
        start = buckets[b - 1].upper;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    (start + (end - start) * (rank / count), forced)
}

/// The fraction of observations between `lower` and `upper`, interpolating linearly inside
/// buckets; the lowest bucket starts at 0 when its upper bound is positive.
fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<Bucket>) -> f64 {
    sort_and_coalesce(buckets);
    if buckets.last().is_none_or(|b| b.upper != f64::INFINITY) {
        return f64::NAN;
    }
    make_monotonic(buckets);
    let total = buckets[buckets.len() - 1].count;
    if total == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, None, None);
    for (i, b) in buckets.iter().enumerate() {
        let bucket_lower = match i {
            0 if b.upper > 0.0 => 0.0,
            0 => f64::NEG_INFINITY,
            _ => buckets[i - 1].upper,
        };
        let count = b.count - rank;
        if lower_rank.is_none() && bucket_lower >= lower {
            lower_rank = Some(rank);
        }
        if upper_rank.is_none() && bucket_lower >= upper {
            upper_rank = Some(rank);
        }
        // A bucket of infinite width contributes nothing between finite bounds.
        let interpolate = |v: f64| {
            if bucket_lower == f64::NEG_INFINITY {
                b.count
            } else {
                rank + count * (v - bucket_lower) / (b.upper - bucket_lower)
            }
        };
        if lower_rank.is_none() && bucket_lower < lower && b.upper > lower {
            lower_rank = Some(interpolate(lower));
        }
        if upper_rank.is_none() && bucket_lower < upper && b.upper > upper {
            upper_rank = Some(interpolate(upper));
        }
        if lower_rank.is_some() && upper_rank.is_some() {
            break;
        }
        rank = b.count;
    }
    let clamp = |r: Option<f64>| r.filter(|r| *r <= total).unwrap_or(total);
    (clamp(upper_rank) - clamp(lower_rank)) / total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(pairs: &[(f64, f64)]) -> Vec<Bucket> {
        pairs.iter().map(|&(upper, count)| Bucket { upper, count }).collect()
    }

    #[test]
    fn quantile_interpolates_within_buckets() {
        let mut b = buckets(&[(f64::INFINITY, 100.0), (1.0, 50.0), (0.5, 25.0)]);
        assert_eq!(bucket_quantile(0.5, &mut b), (1.0, false));
        assert_eq!(bucket_quantile(0.25, &mut b), (0.5, false));
        assert_eq!(bucket_quantile(0.125, &mut b), (0.25, false));
        // The highest bucket gives the second highest bound.
        assert_eq!(bucket_quantile(0.9, &mut b), (1.0, false));
        let mut no_inf = buckets(&[(1.0, 1.0)]);
        assert!(bucket_quantile(0.5, &mut no_inf).0.is_nan());
    }

    #[test]
    fn quantile_forces_monotonicity() {
        let mut b = buckets(&[(1.0, 10.0), (2.0, 5.0), (f64::INFINITY, 10.0)]);
        let (value, forced) = bucket_quantile(0.5, &mut b);
        assert!(forced);
        assert_eq!(value, 0.5);
    }

    #[test]
    fn fraction_from_zero_in_the_first_bucket() {
        let mut b = buckets(&[(1.0, 10.0), (f64::INFINITY, 30.0)]);
        assert!((bucket_fraction(0.0, 0.5, &mut b) - 5.0 / 30.0).abs() < 1e-12);
        assert_eq!(bucket_fraction(0.0, f64::INFINITY, &mut b), 1.0);
        assert_eq!(bucket_fraction(1.0, 0.0, &mut b), 0.0);
    }
}
