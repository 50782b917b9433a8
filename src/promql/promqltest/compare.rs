//! Comparison of a query's outcome with an `eval`'s expectations, as Prometheus'
//! `promql/promqltest/test.go` does it (`compareResult`, `checkAnnotations`,
//! `checkExpectedFailure`, `almost.Equal`).

use std::collections::HashMap;

use crate::model::labels::Labels;
use crate::promql::value::{Point, QueryError, QueryResult, Series, Value};

use super::parse::{Eval, ExpectKind, Expected, MessageMatch};
use super::series::{SeqValue, SeriesDesc};

/// Relative error allowed between expected and actual floats (`defaultEpsilon`).
const EPSILON: f64 = 1e-6;

/// Checks an evaluation's outcome: the failure expectation, annotations, then the value.
/// `start_ms`/`step_ms` place expected range values.
pub(super) fn check(
    eval: &Eval,
    result: Result<QueryResult, QueryError>,
    start_ms: i64,
    step_ms: i64,
) -> Result<(), String> {
    let result = match result {
        Err(err) if eval.is_fail() => {
            return match eval.expects(ExpectKind::Fail).next() {
                Some(expected) if !expected.matches(&err.message) => {
                    Err(format!("expected error matching {expected}, got: {}", err.message))
                }
                _ => Ok(()),
            };
        }
        Err(err) => return Err(format!("error: {}", err.message)),
        Ok(_) if eval.is_fail() => return Err("expected an error, got none".to_owned()),
        Ok(result) => result,
    };
    check_annotations(eval, &result)?;
    compare_value(eval, &result.value, start_ms, step_ms)
}

fn check_annotations(eval: &Eval, result: &QueryResult) -> Result<(), String> {
    let kinds = [
        ("warn", ExpectKind::Warn, ExpectKind::NoWarn, eval.warn, &result.annotations.warnings),
        ("info", ExpectKind::Info, ExpectKind::NoInfo, eval.info, &result.annotations.infos),
    ];
    for (name, expect, forbid, old_flag, actual) in kinds {
        if old_flag && actual.is_empty() {
            return Err(format!("expected {name} annotations, got none"));
        }
        let expected: Vec<&MessageMatch> = eval.expects(expect).collect();
        if !expected.is_empty() {
            if actual.is_empty() {
                return Err(format!("expected {name} annotations, got none"));
            }
            if let Some(missing) = expected.iter().find(|e| !actual.iter().any(|a| e.matches(a))) {
                return Err(format!(
                    "expected {name} annotation matching {missing}, got {actual:?}"
                ));
            }
            if let Some(extra) = actual.iter().find(|a| !expected.iter().any(|e| e.matches(a))) {
                return Err(format!("unexpected {name} annotation {extra:?}"));
            }
        }
        if eval.has(forbid) && !actual.is_empty() {
            return Err(format!("unexpected {name} annotations: {actual:?}"));
        }
    }
    Ok(())
}

fn compare_value(eval: &Eval, value: &Value, start_ms: i64, step_ms: i64) -> Result<(), String> {
    match value {
        Value::Matrix(matrix) => {
            if eval.is_ordered() {
                return Err("expected an ordered result, got a matrix".to_owned());
            }
            if let Expected::Scalar(_) = eval.expected {
                return Err("expected a scalar, got a matrix".to_owned());
            }
            check_sorted(matrix)?;
            let expected = expected_series(eval);
            for series in matrix {
                let Some(desc) = expected.get(&series.labels) else {
                    return Err(format!(
                        "unexpected series {} with {}",
                        series.labels,
                        format_points(&series.points)
                    ));
                };
                let mut expected_points = Vec::new();
                for (i, value) in desc.values.iter().enumerate() {
                    let t = start_ms + i as i64 * step_ms;
                    if t > eval.end_ms {
                        return Err(format!(
                            "{} values expected for {} but the range has fewer steps",
                            desc.values.len(),
                            series.labels
                        ));
                    }
                    if let SeqValue::Float(v) = value {
                        expected_points.push(Point { t, v: *v });
                    }
                }
                let mismatch = expected_points.len() != series.points.len()
                    || expected_points
                        .iter()
                        .zip(&series.points)
                        .any(|(e, g)| e.t != g.t || !almost_equal(e.v, g.v));
                if mismatch {
                    return Err(format!(
                        "{}: expected {}, got {}",
                        series.labels,
                        format_points(&expected_points),
                        format_points(&series.points)
                    ));
                }
            }
            if let Some(missing) =
                expected.keys().find(|labels| !matrix.iter().any(|s| &s.labels == **labels))
            {
                return Err(format!("expected series {missing} not found"));
            }
            Ok(())
        }
        Value::Vector(samples) => {
            if let Expected::Scalar(_) = eval.expected {
                return Err(format!("expected a scalar, got a vector of {}", samples.len()));
            }
            let got: Vec<(Labels, f64)> = samples.iter().map(|s| (s.labels.clone(), s.v)).collect();
            compare_vector(eval, &got)
        }
        Value::Scalar { v, .. } => match eval.expected {
            Expected::Scalar(expected) => {
                compare_float(expected, *v).map_err(|e| format!("scalar: {e}"))
            }
            _ => Err(format!("expected a vector or matrix, got scalar {v}")),
        },
        Value::String { v, .. } => match &eval.expected {
            Expected::String(expected) if expected == v => Ok(()),
            expected => Err(format!("expected {expected:?}, got string {v:?}")),
        },
    }
}

pub(super) fn compare_vector(eval: &Eval, got: &[(Labels, f64)]) -> Result<(), String> {
    let expected_list: &[SeriesDesc] = match &eval.expected {
        Expected::Series(series) => series,
        _ => &[],
    };
    let expected = expected_series(eval);
    for (position, (labels, value)) in got.iter().enumerate() {
        let Some(desc) = expected.get(labels) else {
            return Err(format!("unexpected series {labels} with value {value}"));
        };
        if eval.is_ordered() {
            let want = expected_list.iter().position(|d| &d.labels == labels).unwrap_or(usize::MAX);
            if want != position {
                return Err(format!(
                    "expected {labels} at position {} but it was at {}",
                    want + 1,
                    position + 1
                ));
            }
        }
        let want = match desc.values.first() {
            Some(SeqValue::Float(v)) => *v,
            other => return Err(format!("{labels}: expected {other:?}, got {value}")),
        };
        compare_float(want, *value).map_err(|e| format!("{labels}: {e}"))?;
    }
    if let Some(missing) = expected.keys().find(|labels| !got.iter().any(|(l, _)| l == **labels)) {
        return Err(format!("expected series {missing} not found (got {} series)", got.len()));
    }
    Ok(())
}

fn expected_series(eval: &Eval) -> HashMap<&Labels, &SeriesDesc> {
    match &eval.expected {
        Expected::Series(series) => series.iter().map(|d| (&d.labels, d)).collect(),
        _ => HashMap::new(),
    }
}

pub(super) fn check_sorted(matrix: &[Series]) -> Result<(), String> {
    match matrix.windows(2).find(|w| w[0].labels > w[1].labels) {
        Some(w) => {
            Err(format!("matrix not sorted by labels: {} before {}", w[0].labels, w[1].labels))
        }
        None => Ok(()),
    }
}

pub(super) fn compare_float(expected: f64, got: f64) -> Result<(), String> {
    if almost_equal(expected, got) {
        Ok(())
    } else {
        Err(format!("expected {expected}, got {got}"))
    }
}

fn format_points(points: &[Point]) -> String {
    let items: Vec<String> = points.iter().map(|p| format!("{} @{}", p.v, p.t)).collect();
    format!("[{}]", items.join(", "))
}

/// Prometheus' `almost.Equal` with epsilon [`EPSILON`].
pub fn almost_equal(a: f64, b: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < EPSILON * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < EPSILON
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn almost_equal_like_prometheus() {
        assert!(almost_equal(1.0, 1.0 + 1e-9));
        assert!(!almost_equal(1.0, 1.001));
        assert!(almost_equal(f64::NAN, f64::NAN));
        assert!(!almost_equal(0.0, 1e-300));
        assert!(almost_equal(f64::INFINITY, f64::INFINITY));
    }
}
