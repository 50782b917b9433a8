//! Functions about labels and whole vectors: `label_replace`, `label_join`, `sort*`,
//! `absent`, `vector`, `scalar`.

use std::cmp::Ordering;

use promql_parser::label::MatchOp;
use promql_parser::parser::Expr;
use regex::Regex;

use crate::model::labels::{Label, Labels, METRIC_NAME};
use crate::promql::value::{Point, QueryError, Series, StepValue};

use super::{Args, FnCtx};

pub(super) fn call(
    name: &str,
    args: &mut Args<'_>,
    ctx: &FnCtx<'_>,
) -> Result<Option<StepValue>, QueryError> {
    let steps = ctx.steps;
    let result = match name {
        "label_replace" => {
            let series = args.vector(0)?;
            let (dst, replacement, src, pattern) =
                (args.string(1)?, args.string(2)?, args.string(3)?, args.string(4)?);
            StepValue::Vector(label_replace(series, dst, replacement, src, pattern)?)
        }
        "label_join" => {
            let series = args.vector(0)?;
            let (dst, separator) = (args.string(1)?.to_owned(), args.string(2)?.to_owned());
            let sources: Vec<String> = (3..args.len())
                .map(|i| args.string(i).map(str::to_owned))
                .collect::<Result<_, _>>()?;
            StepValue::Vector(label_join(series, &dst, &separator, &sources)?)
        }
        "sort" | "sort_desc" => {
            let mut series = args.vector(0)?;
            sort_by_value(&mut series, name == "sort_desc");
            StepValue::Vector(series)
        }
        "sort_by_label" | "sort_by_label_desc" => {
            let mut series = args.vector(0)?;
            let names: Vec<String> = (1..args.len())
                .map(|i| args.string(i).map(str::to_owned))
                .collect::<Result<_, _>>()?;
            sort_by_labels(&mut series, &names, name == "sort_by_label_desc");
            StepValue::Vector(series)
        }
        "vector" => {
            let values = args.scalar(0)?;
            let points =
                values.iter().enumerate().map(|(i, &v)| Point { t: steps.time(i), v }).collect();
            StepValue::Vector(vec![Series { labels: Labels::default(), points }])
        }
        "scalar" => {
            let series = args.vector(0)?;
            // The value where exactly one series has a point at the step, else NaN.
            let mut count = vec![0usize; steps.len()];
            let mut values = vec![f64::NAN; steps.len()];
            for p in series.iter().flat_map(|s| &s.points) {
                if let Some(i) = steps.index(p.t) {
                    count[i] += 1;
                    values[i] = if count[i] == 1 { p.v } else { f64::NAN };
                }
            }
            StepValue::Scalar(values)
        }
        "absent" => {
            let series = args.vector(0)?;
            let mut present = vec![false; steps.len()];
            for p in series.iter().flat_map(|s| &s.points) {
                if let Some(i) = steps.index(p.t) {
                    present[i] = true;
                }
            }
            let points: Vec<Point> = (0..steps.len())
                .filter(|&i| !present[i])
                .map(|i| Point { t: steps.time(i), v: 1.0 })
                .collect();
            if points.is_empty() {
                StepValue::Vector(Vec::new())
            } else {
                let labels =
                    ctx.args.first().map_or_else(Labels::default, |arg| absent_labels(arg));
                StepValue::Vector(vec![Series { labels, points }])
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(result))
}

/// The labels `absent`/`absent_over_time` give their output: the selector's equality matchers
/// (a label matched twice, or matched otherwise, is left out), never `__name__`.
pub(super) fn absent_labels(arg: &Expr) -> Labels {
    let matchers = match arg {
        Expr::VectorSelector(vs) => &vs.matchers,
        Expr::MatrixSelector(ms) => &ms.vs.matchers,
        _ => return Labels::default(),
    };
    let mut labels: Vec<Label> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for matcher in &matchers.matchers {
        if matcher.name == METRIC_NAME {
            continue;
        }
        if matches!(matcher.op, MatchOp::Equal) && !seen.contains(&matcher.name.as_str()) {
            labels.retain(|l| l.name != matcher.name);
            labels.push(Label::new(&matcher.name, &matcher.value));
            seen.push(&matcher.name);
        } else {
            labels.retain(|l| l.name != matcher.name);
        }
    }
    Labels::from_unsorted(labels)
}

/// Label names are valid when non-empty (Prometheus 3 accepts any UTF-8 name).
fn valid_label_name(name: &str) -> bool {
    !name.is_empty()
}

fn label_replace(
    series: Vec<Series>,
    dst: &str,
    replacement: &str,
    src: &str,
    pattern: &str,
) -> Result<Vec<Series>, QueryError> {
    let regex = Regex::new(&format!("^(?s:{pattern})$")).map_err(|_| {
        QueryError::execution(format!("invalid regular expression in label_replace(): {pattern}"))
    })?;
    if !valid_label_name(dst) {
        return Err(QueryError::execution(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    Ok(series
        .into_iter()
        .map(|mut s| {
            let value = s.labels.get(src).unwrap_or("");
            if let Some(captures) = regex.captures(value) {
                let mut result = String::new();
                captures.expand(replacement, &mut result);
                let mut builder = s.labels.builder();
                builder.set(dst, result);
                s.labels = builder.build();
            }
            s
        })
        .collect())
}

fn label_join(
    series: Vec<Series>,
    dst: &str,
    separator: &str,
    sources: &[String],
) -> Result<Vec<Series>, QueryError> {
    if !valid_label_name(dst) {
        return Err(QueryError::execution(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    if let Some(bad) = sources.iter().find(|s| !valid_label_name(s)) {
        return Err(QueryError::execution(format!(
            "invalid source label name in label_join(): {bad}"
        )));
    }
    Ok(series
        .into_iter()
        .map(|mut s| {
            let values: Vec<&str> =
                sources.iter().map(|name| s.labels.get(name).unwrap_or("")).collect();
            let joined = values.join(separator);
            let mut builder = s.labels.builder();
            builder.set(dst, joined);
            s.labels = builder.build();
            s
        })
        .collect())
}

/// `sort`: ascending, `sort_desc`: descending; NaN last in both. Ordered by the first step's
/// value (sorting only means something for an instant query).
fn sort_by_value(series: &mut [Series], descending: bool) {
    let key = |s: &Series| s.points.first().map_or(f64::NAN, |p| p.v);
    series.sort_by(|a, b| {
        let (x, y) = (key(a), key(b));
        match (x.is_nan(), y.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ if descending => y.partial_cmp(&x).unwrap_or(Ordering::Equal),
            _ => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        }
    });
}

/// `sort_by_label`: natural order of the named labels' values, then the whole label set.
fn sort_by_labels(series: &mut [Series], names: &[String], descending: bool) {
    series.sort_by(|a, b| {
        let ordering = names
            .iter()
            .map(|name| {
                natural_cmp(a.labels.get(name).unwrap_or(""), b.labels.get(name).unwrap_or(""))
            })
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a.labels.cmp(&b.labels));
        if descending {
            ordering.reverse()
        } else {
            ordering
        }
    });
}

/// Natural order: runs of digits compare as numbers, everything else byte-wise.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let start_a = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let start_b = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let digits_a = trim_zeros(&a[start_a..i]);
            let digits_b = trim_zeros(&b[start_b..j]);
            let ordering = digits_a.len().cmp(&digits_b.len()).then_with(|| digits_a.cmp(digits_b));
            if ordering.is_ne() {
                return ordering;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&d| d == b'0').count();
    &digits[zeros.min(digits.len().saturating_sub(1))..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(pairs: &[(&str, &str)], v: f64) -> Series {
        Series {
            labels: Labels::from_pairs(pairs.iter().copied()),
            points: vec![Point { t: 0, v }],
        }
    }

    #[test]
    fn natural_order() {
        assert_eq!(natural_cmp("a2", "a10"), Ordering::Less);
        assert_eq!(natural_cmp("a10", "a2"), Ordering::Greater);
        assert_eq!(natural_cmp("b", "a9"), Ordering::Greater);
        assert_eq!(natural_cmp("a", "a1"), Ordering::Less);
    }

    #[test]
    fn label_replace_sets_deletes_and_validates() {
        let input = vec![series(&[("__name__", "m"), ("src", "source-value-10")], 1.0)];
        let out =
            label_replace(input.clone(), "dst", "value-$1", "src", "source-value-(.*)").unwrap();
        assert_eq!(out[0].labels.get("dst"), Some("value-10"));
        let out = label_replace(input.clone(), "src", "", "src", ".*").unwrap();
        assert_eq!(out[0].labels.get("src"), None);
        let out = label_replace(input.clone(), "dst", "x", "src", "nomatch").unwrap();
        assert_eq!(out[0].labels.get("dst"), None);
        let err = label_replace(input, "dst", "x", "src", "(.*").unwrap_err();
        assert_eq!(err.message, "invalid regular expression in label_replace(): (.*");
    }

    #[test]
    fn label_join_and_sorts() {
        let input = vec![
            series(&[("a", "1"), ("b", "2")], 3.0),
            series(&[("a", "10")], f64::NAN),
            series(&[("a", "9")], 1.0),
        ];
        let out = label_join(input.clone(), "dst", "-", &["a".into(), "b".into()]).unwrap();
        assert_eq!(out[0].labels.get("dst"), Some("1-2"));
        assert_eq!(out[1].labels.get("dst"), Some("10-"));
        let mut sorted = input.clone();
        sort_by_value(&mut sorted, false);
        assert_eq!(
            sorted.iter().map(|s| s.labels.get("a").unwrap()).collect::<Vec<_>>(),
            ["9", "1", "10"]
        );
        sort_by_value(&mut sorted, true);
        assert_eq!(
            sorted.iter().map(|s| s.labels.get("a").unwrap()).collect::<Vec<_>>(),
            ["1", "9", "10"]
        );
        sort_by_labels(&mut sorted, &["a".into()], false);
        assert_eq!(
            sorted.iter().map(|s| s.labels.get("a").unwrap()).collect::<Vec<_>>(),
            ["1", "9", "10"]
        );
    }
}
