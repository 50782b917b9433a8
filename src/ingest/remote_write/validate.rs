//! Validation of one received series, per Prometheus' rules and Strata's limits.
//!
//! Rules (Prometheus data model <https://prometheus.io/docs/concepts/data_model/>, remote-write
//! spec "labels MUST be sorted by name, names MUST be unique, `__name__` MUST be present"):
//! label names and values are UTF-8; names are non-empty and, under the legacy scheme, match
//! `[a-zA-Z_][a-zA-Z0-9_]*`; the metric name matches `[a-zA-Z_:][a-zA-Z0-9_:]*` (legacy);
//! names are strictly increasing (sorted, no duplicates); `__name__` is present and non-empty;
//! limits on label count and name/value lengths hold. Labels with empty values are valid and
//! mean "absent" (they are left out of the resulting label set).
//!
//! Runs only on a relabel-cache miss; the cache remembers the verdict for the exact label bytes.

use crate::config::SeriesLimits;
use crate::model::{Label, Labels, METRIC_NAME};
use crate::relabel::NameValidation;

/// Legacy label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_legacy_label_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && (bytes[0].is_ascii_alphabetic() || bytes[0] == b'_')
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// Legacy metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_legacy_metric_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && (bytes[0].is_ascii_alphabetic() || bytes[0] == b'_' || bytes[0] == b':')
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b':')
}

/// Renders a label set for an error message, capped so a hostile series cannot blow up the
/// response body.
pub fn describe(labels: &[(&str, &str)]) -> String {
    const MAX: usize = 256;
    let mut out = String::new();
    if let Some((_, name)) = labels.iter().find(|(n, _)| *n == METRIC_NAME) {
        out.push_str(name);
    }
    out.push('{');
    let mut first = true;
    for (name, value) in labels.iter().filter(|(n, _)| *n != METRIC_NAME) {
        if !first {
            out.push_str(", ");
        }
        first = false;
        out.push_str(&format!("{name}={value:?}"));
        if out.len() > MAX {
            break;
        }
    }
    out.push('}');
    if out.len() > MAX {
        let mut cut = MAX;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("…}");
    }
    out
}

/// Checks one series' labels (in wire order) and returns the label set, or the rule it broke.
pub fn validate_series(
    raw: &[(&str, &str)],
    limits: &SeriesLimits,
    scheme: NameValidation,
) -> Result<Labels, String> {
    if raw.len() > limits.max_label_names_per_series {
        return Err(format!(
            "series has {} labels, more than the limit of {}",
            raw.len(),
            limits.max_label_names_per_series
        ));
    }
    let mut previous: Option<&str> = None;
    let mut metric_name: Option<&str> = None;
    for (name, value) in raw {
        if name.is_empty() {
            return Err("empty label name".into());
        }
        if scheme == NameValidation::Legacy && !is_legacy_label_name(name) {
            return Err(format!("invalid label name {name:?}: must match [a-zA-Z_][a-zA-Z0-9_]*"));
        }
        if name.len() > limits.max_label_name_length {
            return Err(format!(
                "label name {:?}… is {} bytes long, over the limit of {}",
                truncate(name, 64),
                name.len(),
                limits.max_label_name_length
            ));
        }
        if value.len() > limits.max_label_value_length {
            return Err(format!(
                "value of label {name:?} is {} bytes long, over the limit of {}",
                value.len(),
                limits.max_label_value_length
            ));
        }
        if let Some(prev) = previous {
            if *name == prev {
                return Err(format!("duplicate label name {name:?}"));
            }
            if *name < prev {
                return Err(format!(
                    "labels are not sorted by name: {name:?} comes after {prev:?}"
                ));
            }
        }
        previous = Some(name);
        if *name == METRIC_NAME {
            metric_name = Some(value);
        }
    }
    match metric_name {
        None | Some("") => return Err("missing metric name (label __name__)".into()),
        Some(name) if scheme == NameValidation::Legacy && !is_legacy_metric_name(name) => {
            return Err(format!(
                "invalid metric name {name:?}: must match [a-zA-Z_:][a-zA-Z0-9_:]*"
            ));
        }
        Some(_) => {}
    }
    let labels = raw
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| Label::new(*name, *value))
        .collect();
    Ok(Labels::from_sorted_unchecked(labels))
}

fn truncate(text: &str, max: usize) -> &str {
    let mut cut = text.len().min(max);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(labels: &[(&str, &str)]) -> Result<Labels, String> {
        validate_series(labels, &SeriesLimits::default(), NameValidation::Legacy)
    }

    #[test]
    fn valid_series_pass_and_drop_empty_values() {
        let labels = check(&[("__name__", "up"), ("empty", ""), ("job", "node")]).unwrap();
        assert_eq!(labels, Labels::from_pairs([("__name__", "up"), ("job", "node")]));
    }

    #[test]
    fn each_rule_has_its_message() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("__name__", "up"), ("bad-name", "x")], "invalid label name \"bad-name\""),
            (&[("__name__", "up"), ("1abc", "x")], "invalid label name \"1abc\""),
            (&[("__name__", "up"), ("", "x")], "empty label name"),
            (&[("__name__", "up"), ("job", "a"), ("job", "b")], "duplicate label name \"job\""),
            (&[("job", "a"), ("__name__", "up")], "not sorted"),
            (&[("job", "a")], "missing metric name"),
            (&[("__name__", ""), ("job", "a")], "missing metric name"),
            (&[("__name__", "http-requests")], "invalid metric name"),
        ];
        for (labels, expected) in cases {
            let err = check(labels).unwrap_err();
            assert!(err.contains(expected), "{labels:?}: {err}");
        }
        assert!(check(&[("__name__", "ns:rate5m")]).is_ok(), "colons are valid in metric names");
    }

    #[test]
    fn utf8_scheme_accepts_what_legacy_rejects() {
        let labels = [("__name__", "http.requests"), ("service.name", "api")];
        assert!(check(&labels).is_err());
        assert!(validate_series(&labels, &SeriesLimits::default(), NameValidation::Utf8).is_ok());
    }

    #[test]
    fn limits_apply() {
        let limits = SeriesLimits {
            max_label_names_per_series: 2,
            max_label_name_length: 8,
            max_label_value_length: 4,
        };
        let run = |l: &[(&str, &str)]| validate_series(l, &limits, NameValidation::Legacy);
        assert!(run(&[("__name__", "up"), ("a", "1"), ("b", "2")])
            .unwrap_err()
            .contains("more than the limit of 2"));
        assert!(run(&[("__name__", "up"), ("job", "12345")])
            .unwrap_err()
            .contains("over the limit of 4"));
        assert!(run(&[("__name__", "up"), ("longername", "1")])
            .unwrap_err()
            .contains("over the limit of 8"));
    }

    #[test]
    fn describe_is_capped() {
        let long = "x".repeat(1000);
        let text = describe(&[("__name__", "up"), ("a", &long)]);
        assert!(text.len() < 300, "{}", text.len());
        assert_eq!(describe(&[("__name__", "up"), ("job", "n")]), "up{job=\"n\"}");
    }
}
