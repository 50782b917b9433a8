//! Validation of pushed streams and entries, with the rules, order and messages of Loki's
//! distributor (`pkg/distributor/validator.go` `ValidateLabels` / `ValidateEntry`, messages from
//! `pkg/validation/validate.go`, Loki 3.x). Messages keep Loki's wording with a lowercase first
//! letter (house style); every one of them is a 400 for the stream or entry it names.
//!
//! Stream labels (once per distinct selector: the result is cached by the caller):
//! 1. empty values are dropped and names sorted (Loki's `ParseLabels` + `WithoutEmpty`); no
//!    label left: "error at least one label pair is required per stream";
//! 2. more than `max_label_names_per_series` names, not counting `service_name` (Loki allows it
//!    on top because its own infrastructure adds it): "entry for stream '…' has N label names;
//!    limit M";
//! 3. per label in name order: name longer than `max_label_name_length`, value longer than
//!    `max_label_value_length`, same name as the previous label (duplicates).
//!
//! Entries, in this order: older than `now - reject_old_samples_max_age` when
//! `reject_old_samples`; newer than `now + creation_grace_period`; line longer than
//! `max_line_size` (0 = no limit). With `max_line_size_truncate` a long line is cut to
//! `max_line_size` bytes before validation, as Loki's `truncateLines` does (bytes, not
//! characters), so it never fails the length rule.
//!
//! Invariants: checks are pure (the clock is the caller's `now_ns`); text echoed from the request
//! into a message is capped ([`MAX_ECHOED`]), so a hostile stream cannot inflate the response.

use crate::config::LokiIngestConfig;
use crate::model::{Label, Labels, LogEntry};

/// Longest piece of request text (a selector, a label value) copied into one message.
pub const MAX_ECHOED: usize = 256;

/// Loki's label that does not count against `max_label_names_per_series`.
const SERVICE_NAME: &str = "service_name";

/// `MissingLabelsErrorMsg`.
pub const MISSING_LABELS: &str = "error at least one label pair is required per stream";

/// Stream label limits (Loki `limits_config` names).
#[derive(Clone, Copy, Debug)]
pub struct StreamLimits {
    pub max_label_names_per_series: usize,
    pub max_label_name_length: usize,
    pub max_label_value_length: usize,
}

impl StreamLimits {
    pub fn from_config(config: &LokiIngestConfig) -> Self {
        Self {
            max_label_names_per_series: config.max_label_names_per_series,
            max_label_name_length: config.max_label_name_length,
            max_label_value_length: config.max_label_value_length,
        }
    }
}

/// Checks one stream's parsed labels (in the order written, empty values included). `shown` is
/// the selector as the client sent it, named in messages like Loki's `stream.Labels`.
pub fn validate_stream(
    shown: &str,
    mut labels: Vec<Label>,
    limits: &StreamLimits,
) -> Result<Labels, String> {
    labels.retain(|l| !l.value.is_empty());
    // Stable: of two labels with the same name the first written is checked first.
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    if labels.is_empty() {
        return Err(MISSING_LABELS.to_owned());
    }
    let counted = labels.len() - usize::from(labels.iter().any(|l| l.name == SERVICE_NAME));
    if counted > limits.max_label_names_per_series {
        return Err(format!(
            "entry for stream '{}' has {counted} label names; limit {}",
            echo(shown),
            limits.max_label_names_per_series
        ));
    }
    for (index, label) in labels.iter().enumerate() {
        if label.name.len() > limits.max_label_name_length {
            return Err(format!(
                "stream '{}' has label name too long: '{}'",
                echo(shown),
                echo(&label.name)
            ));
        }
        if label.value.len() > limits.max_label_value_length {
            return Err(format!(
                "stream '{}' has label value too long: '{}'",
                echo(shown),
                echo(&label.value)
            ));
        }
        if index > 0 && labels[index - 1].name == label.name {
            return Err(format!(
                "stream '{}' has duplicate label name: '{}'",
                echo(shown),
                echo(&label.name)
            ));
        }
    }
    Ok(Labels::from_sorted_unchecked(labels))
}

/// The entry rules of one request, with `now` already applied.
#[derive(Clone, Copy, Debug)]
pub struct EntryRules {
    /// Entries before this are too old (`None`: `reject_old_samples` is off).
    pub oldest_ns: Option<i64>,
    /// Entries after this are too new.
    pub newest_ns: i64,
    /// 0 = no limit.
    pub max_line_size: usize,
    pub truncate: bool,
}

impl EntryRules {
    pub fn new(config: &LokiIngestConfig, now_ns: i64) -> Self {
        let nanos = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        Self {
            oldest_ns: config
                .reject_old_samples
                .then(|| now_ns.saturating_sub(nanos(config.reject_old_samples_max_age.get()))),
            newest_ns: now_ns.saturating_add(nanos(config.creation_grace_period.get())),
            max_line_size: config.max_line_size.as_usize(),
            truncate: config.max_line_size_truncate,
        }
    }

    /// Cuts the line to `max_line_size` when truncation is on; true when it did.
    #[inline]
    pub fn truncate(&self, entry: &mut LogEntry) -> bool {
        if self.truncate && self.max_line_size > 0 && entry.line.len() > self.max_line_size {
            entry.line.truncate(self.max_line_size);
            return true;
        }
        false
    }

    /// The first rule `entry` breaks, if any.
    #[inline]
    pub fn check(&self, entry: &LogEntry) -> Result<(), EntryProblem> {
        if self.oldest_ns.is_some_and(|oldest| entry.timestamp_ns < oldest) {
            return Err(EntryProblem::TooOld);
        }
        if entry.timestamp_ns > self.newest_ns {
            return Err(EntryProblem::TooNew);
        }
        if self.max_line_size > 0 && entry.line.len() > self.max_line_size {
            return Err(EntryProblem::LineTooLong);
        }
        Ok(())
    }

    /// Loki's message for `problem`; `stream` is the stream's canonical selector.
    pub fn message(&self, problem: EntryProblem, stream: &str, entry: &LogEntry) -> String {
        let stream = echo(stream);
        match problem {
            EntryProblem::TooOld => format!(
                "entry for stream '{stream}' has timestamp too old: {}, oldest acceptable timestamp is: {}",
                rfc3339(entry.timestamp_ns),
                rfc3339(self.oldest_ns.unwrap_or(i64::MIN)),
            ),
            EntryProblem::TooNew => format!(
                "entry for stream '{stream}' has timestamp too new: {}",
                rfc3339(entry.timestamp_ns)
            ),
            EntryProblem::LineTooLong => format!(
                "max entry size '{}' bytes exceeded for stream '{stream}' while adding an entry with length '{}' bytes",
                self.max_line_size,
                entry.line.len()
            ),
        }
    }
}

/// Which entry rule failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryProblem {
    TooOld,
    TooNew,
    LineTooLong,
}

/// `text` cut to [`MAX_ECHOED`] bytes on a character boundary, with `…` when cut.
pub fn echo(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_ECHOED {
        return text.into();
    }
    let mut cut = MAX_ECHOED;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut]).into()
}

/// RFC 3339 in UTC with second precision, as Go's `time.RFC3339` prints a UTC time
/// (`2006-01-02T15:04:05Z`). Days to civil date: the proleptic Gregorian algorithm on 400-year
/// eras (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
pub fn rfc3339(timestamp_ns: i64) -> String {
    let seconds = timestamp_ns.div_euclid(1_000_000_000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let shifted = days + 719_468; // days since 0000-03-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ByteSize, PromDuration};
    use bytes::Bytes;

    const LIMITS: StreamLimits = StreamLimits {
        max_label_names_per_series: 3,
        max_label_name_length: 8,
        max_label_value_length: 5,
    };

    fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
        pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect()
    }

    #[test]
    fn valid_labels_are_sorted_without_empty_values() {
        let out = validate_stream("s", labels(&[("b", "2"), ("a", "1"), ("c", "")]), &LIMITS);
        assert_eq!(out.unwrap(), Labels::from_pairs([("a", "1"), ("b", "2")]));
    }

    #[test]
    fn each_label_rule_has_lokis_message() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], MISSING_LABELS),
            (&[("a", "")], MISSING_LABELS),
            (
                &[("a", "1"), ("b", "1"), ("c", "1"), ("d", "1")],
                "entry for stream 'S' has 4 label names; limit 3",
            ),
            (&[("toolongname", "1")], "stream 'S' has label name too long: 'toolongname'"),
            (&[("a", "123456")], "stream 'S' has label value too long: '123456'"),
            (&[("a", "1"), ("a", "2")], "stream 'S' has duplicate label name: 'a'"),
        ];
        for (pairs, expected) in cases {
            assert_eq!(validate_stream("S", labels(pairs), &LIMITS).unwrap_err(), *expected);
        }
    }

    #[test]
    fn service_name_does_not_count_against_the_label_limit() {
        let limits = StreamLimits { max_label_name_length: 16, ..LIMITS };
        let pairs = [("a", "1"), ("b", "1"), ("c", "1"), ("service_name", "x")];
        assert!(validate_stream("s", labels(&pairs), &limits).is_ok());
        let pairs = [("a", "1"), ("b", "1"), ("c", "1"), ("d", "x")];
        assert!(validate_stream("s", labels(&pairs), &limits).is_err());
    }

    #[test]
    fn echoed_text_is_capped() {
        let long = "é".repeat(400);
        let limits = StreamLimits { max_label_value_length: 10, ..LIMITS };
        let err = validate_stream(&long, labels(&[("a", &long)]), &limits).unwrap_err();
        assert!(err.len() < 2 * MAX_ECHOED + 60, "{}", err.len());
        assert!(err.ends_with("…'"), "{err}");
    }

    fn entry(timestamp_ns: i64, line: &str) -> LogEntry {
        LogEntry {
            timestamp_ns,
            line: Bytes::copy_from_slice(line.as_bytes()),
            structured_metadata: Vec::new(),
        }
    }

    const NOW: i64 = 1_700_000_000_000_000_000; // 2023-11-14T22:13:20Z

    fn rules(truncate: bool) -> EntryRules {
        let config = LokiIngestConfig {
            max_line_size: ByteSize::from_bytes(10),
            max_line_size_truncate: truncate,
            reject_old_samples_max_age: PromDuration::from_secs(3600),
            creation_grace_period: PromDuration::from_secs(60),
            ..LokiIngestConfig::default()
        };
        EntryRules::new(&config, NOW)
    }

    #[test]
    fn entry_rules_have_lokis_messages() {
        let rules = rules(false);
        let s = "{app=\"x\"}";
        let old = entry(NOW - 3601 * 1_000_000_000, "x");
        assert_eq!(rules.check(&old), Err(EntryProblem::TooOld));
        assert_eq!(
            rules.message(EntryProblem::TooOld, s, &old),
            "entry for stream '{app=\"x\"}' has timestamp too old: 2023-11-14T21:13:19Z, \
             oldest acceptable timestamp is: 2023-11-14T21:13:20Z"
        );
        let new = entry(NOW + 61 * 1_000_000_000, "x");
        assert_eq!(rules.check(&new), Err(EntryProblem::TooNew));
        assert_eq!(
            rules.message(EntryProblem::TooNew, s, &new),
            "entry for stream '{app=\"x\"}' has timestamp too new: 2023-11-14T22:14:21Z"
        );
        let long = entry(NOW, "12345678901");
        assert_eq!(rules.check(&long), Err(EntryProblem::LineTooLong));
        assert_eq!(
            rules.message(EntryProblem::LineTooLong, s, &long),
            "max entry size '10' bytes exceeded for stream '{app=\"x\"}' while adding an \
             entry with length '11' bytes"
        );
        // The limits themselves are accepted.
        assert_eq!(rules.check(&entry(NOW - 3600 * 1_000_000_000, "1234567890")), Ok(()));
        assert_eq!(rules.check(&entry(NOW + 60 * 1_000_000_000, "")), Ok(()));
    }

    #[test]
    fn old_entries_pass_when_rejection_is_off_and_truncation_cuts_lines() {
        let config = LokiIngestConfig { reject_old_samples: false, ..LokiIngestConfig::default() };
        assert_eq!(EntryRules::new(&config, NOW).check(&entry(0, "x")), Ok(()));
        let rules = rules(true);
        let mut long = entry(NOW, "12345678901234");
        assert!(rules.truncate(&mut long));
        assert_eq!(&long.line[..], b"1234567890");
        assert_eq!(rules.check(&long), Ok(()));
        assert!(!rules.truncate(&mut long));
    }

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(NOW), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400 * 1_000_000_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MIN), "1677-09-21T00:12:43Z");
        assert_eq!(rfc3339(i64::MAX), "2262-04-11T23:47:16Z");
    }
}
