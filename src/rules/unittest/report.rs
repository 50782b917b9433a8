//! promtool's failure text: label sets as `labels.Labels.String()`, samples with values as Go's
//! `%E`, alert lists as `labelsAndAnnotations.String()` (`cmd/promtool/unittest.go`), and the
//! (fuzzy) value comparison.

use crate::model::labels::Labels;
use crate::promql::value::STALE_NAN_BITS;

use crate::rules::template::format::go_quote;

pub(super) fn alerts_string(alerts: &[(Labels, Labels)]) -> String {
    if alerts.is_empty() {
        return "[]".to_owned();
    }
    let mut out = String::from("[");
    for (i, (labels, annotations)) in alerts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let item =
            format!("\nLabels:{}\nAnnotations:{}", prom_labels(labels), prom_labels(annotations));
        out.push_str(&format!("\n{i}:{}", indent_lines(&item, "  ")));
    }
    out.push_str("\n]");
    out
}

pub(super) fn indent_lines(text: &str, indent: &str) -> String {
    text.split('\n').collect::<Vec<_>>().join(&format!("\n{indent}"))
}

/// Prometheus' `labels.Labels.String()`: `{a="1", b="2"}` with `__name__` inside the braces.
pub(super) fn prom_labels(labels: &Labels) -> String {
    let parts: Vec<String> =
        labels.iter().map(|l| format!("{}={}", l.name, go_quote(&l.value))).collect();
    format!("{{{}}}", parts.join(", "))
}

pub(super) fn samples_string(samples: &[(Labels, f64)]) -> String {
    if samples.is_empty() {
        return "nil".to_owned();
    }
    let parts: Vec<String> = samples
        .iter()
        .map(|(l, v)| format!("{} {}", prom_labels(l), go_float_upper_e(*v)))
        .collect();
    parts.join(", ")
}

/// Go's `strconv.FormatFloat(v, 'E', -1, 64)`: shortest digits, exponent of two digits or more.
pub(super) fn go_float_upper_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".to_owned() } else { "-Inf".to_owned() };
    }
    let shortest = format!("{v:e}");
    let (mantissa, exp) = shortest.split_once('e').unwrap_or((&shortest, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}E{sign}{:02}", exp.abs())
}

/// Exact, or with `fuzzy_compare` at most two units in the last place apart.
pub(super) fn values_equal(got: f64, expected: f64, fuzzy: bool) -> bool {
    if got.to_bits() == expected.to_bits() || got == expected {
        return true;
    }
    if got.is_nan()
        && expected.is_nan()
        && got.to_bits() != STALE_NAN_BITS
        && expected.to_bits() != STALE_NAN_BITS
    {
        return true;
    }
    if !fuzzy || got.is_sign_negative() != expected.is_sign_negative() {
        return false;
    }
    (got.to_bits() as i64 - expected.to_bits() as i64).abs() <= 2
}
