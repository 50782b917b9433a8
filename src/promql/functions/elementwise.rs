//! Functions applied to every sample on its own: math, trigonometry, `round`, `clamp*`, the
//! date functions, `timestamp` (the general case), `time`, `pi`.

use crate::model::labels::Labels;
use crate::promql::value::{Point, QueryError, Series, StepValue};

use super::{go_max, go_min, map_points, Args, FnCtx};

pub(super) fn call(
    name: &str,
    args: &mut Args<'_>,
    ctx: &FnCtx<'_>,
) -> Result<Option<StepValue>, QueryError> {
    let steps = ctx.steps;
    if let Some(f) = math_function(name) {
        let series = args.vector(0)?;
        return Ok(Some(StepValue::Vector(map_points(series, &steps, |_, v| Some(f(v))))));
    }
    if let Some(f) = date_function(name) {
        let series = if args.len() == 0 {
            // `hour()` is `hour(vector(time()))`.
            let points = steps.times().map(|t| Point { t, v: (t / 1000) as f64 }).collect();
            vec![Series { labels: Labels::default(), points }]
        } else {
            args.vector(0)?
        };
        let out = map_points(series, &steps, |_, v| {
            // Prometheus truncates to whole seconds (`time.Unix(int64(v), 0)`).
            Some(f(civil_time(v as i64)))
        });
        return Ok(Some(StepValue::Vector(out)));
    }
    let result = match name {
        "pi" => StepValue::Scalar(vec![std::f64::consts::PI; steps.len()]),
        // The query's own bounds (experimental in Prometheus); an instant query has step 0.
        "step" => {
            let step = if steps.start == steps.end { 0.0 } else { steps.step as f64 / 1000.0 };
            StepValue::Scalar(vec![step; steps.len()])
        }
        "range" => StepValue::Scalar(vec![(steps.end - steps.start) as f64 / 1000.0; steps.len()]),
        "start" => StepValue::Scalar(vec![steps.start as f64 / 1000.0; steps.len()]),
        "end" => StepValue::Scalar(vec![steps.end as f64 / 1000.0; steps.len()]),
        "min_of" | "max_of" => {
            let (a, b) = (args.scalar(0)?, args.scalar(1)?);
            let f = if name == "min_of" { go_min } else { go_max };
            StepValue::Scalar(a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect())
        }
        "time" => StepValue::Scalar(steps.times().map(|t| t as f64 / 1000.0).collect()),
        "timestamp" => {
            let series = args.vector(0)?;
            let out = map_points(series, &steps, |i, _| Some(steps.time(i) as f64 / 1000.0));
            StepValue::Vector(out)
        }
        "round" => {
            let series = args.vector(0)?;
            let to_nearest = if args.len() > 1 { Some(args.scalar(1)?.to_vec()) } else { None };
            let out = map_points(series, &steps, |i, v| {
                let nearest = to_nearest.as_ref().map_or(1.0, |n| n[i]);
                let inverse = 1.0 / nearest;
                Some((v * inverse + 0.5).floor() / inverse)
            });
            StepValue::Vector(out)
        }
        "clamp" => {
            let series = args.vector(0)?;
            let (min, max) = (args.scalar(1)?.to_vec(), args.scalar(2)?.to_vec());
            let out = map_points(series, &steps, |i, v| {
                (max[i] >= min[i] || min[i].is_nan() || max[i].is_nan())
                    .then(|| go_max(min[i], go_min(max[i], v)))
            });
            StepValue::Vector(out)
        }
        "clamp_min" => {
            let series = args.vector(0)?;
            let min = args.scalar(1)?.to_vec();
            StepValue::Vector(map_points(series, &steps, |i, v| Some(go_max(min[i], v))))
        }
        "clamp_max" => {
            let series = args.vector(0)?;
            let max = args.scalar(1)?.to_vec();
            StepValue::Vector(map_points(series, &steps, |i, v| Some(go_min(max[i], v))))
        }
        _ => return Ok(None),
    };
    Ok(Some(result))
}

fn math_function(name: &str) -> Option<fn(f64) -> f64> {
    let f: fn(f64) -> f64 = match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sgn" => |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        "acos" => f64::acos,
        "acosh" => f64::acosh,
        "asin" => f64::asin,
        "asinh" => f64::asinh,
        "atan" => f64::atan,
        "atanh" => f64::atanh,
        "cos" => f64::cos,
        "cosh" => f64::cosh,
        "sin" => f64::sin,
        "sinh" => f64::sinh,
        "tan" => f64::tan,
        "tanh" => f64::tanh,
        "deg" => |v| v * 180.0 / std::f64::consts::PI,
        "rad" => |v| v * std::f64::consts::PI / 180.0,
        _ => return None,
    };
    Some(f)
}

/// A UTC calendar time broken down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CivilTime {
    year: i64,
    /// 1..=12
    month: u32,
    /// 1..=31
    day: u32,
    hour: u32,
    minute: u32,
    /// 0 = Sunday.
    weekday: u32,
    /// 1..=366
    day_of_year: u32,
}

fn date_function(name: &str) -> Option<fn(CivilTime) -> f64> {
    let f: fn(CivilTime) -> f64 = match name {
        "year" => |c| c.year as f64,
        "month" => |c| f64::from(c.month),
        "day_of_month" => |c| f64::from(c.day),
        "day_of_week" => |c| f64::from(c.weekday),
        "day_of_year" => |c| f64::from(c.day_of_year),
        "hour" => |c| f64::from(c.hour),
        "minute" => |c| f64::from(c.minute),
        "days_in_month" => |c| f64::from(days_in_month(c.year, c.month)),
        _ => return None,
    };
    Some(f)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Seconds since the epoch to a UTC calendar time (the civil-from-days algorithm).
fn civil_time(secs: i64) -> CivilTime {
    let days = secs.div_euclid(86_400);
    let second_of_day = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy_from_march = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_from_march + 2) / 153;
    let day = (doy_from_march - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let cumulative = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let leap_extra = u32::from(month > 2 && is_leap(year));
    CivilTime {
        year,
        month,
        day,
        hour: (second_of_day / 3600) as u32,
        minute: (second_of_day % 3600 / 60) as u32,
        // 1970-01-01 was a Thursday.
        weekday: (days + 4).rem_euclid(7) as u32,
        day_of_year: cumulative[month as usize - 1] + day + leap_extra,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_time_of_known_instants() {
        let epoch = civil_time(0);
        assert_eq!(
            (epoch.year, epoch.month, epoch.day, epoch.weekday, epoch.day_of_year),
            (1970, 1, 1, 4, 1)
        );
        // 2024-02-29T13:45:00Z, a Thursday, day 60 of a leap year.
        let leap = civil_time(1_709_214_300);
        assert_eq!(
            (leap.year, leap.month, leap.day, leap.hour, leap.minute),
            (2024, 2, 29, 13, 45)
        );
        assert_eq!((leap.weekday, leap.day_of_year), (4, 60));
        assert_eq!(days_in_month(leap.year, leap.month), 29);
        // 1969-12-31T23:59:59Z
        let before = civil_time(-1);
        assert_eq!(
            (before.year, before.month, before.day, before.hour, before.weekday),
            (1969, 12, 31, 23, 3)
        );
    }
}
