//! Prometheus `relabel_config` engine.
//!
//! Implements the relabeling rules of Prometheus 3.x as specified in
//! <https://prometheus.io/docs/prometheus/latest/configuration/configuration/#relabel_config>,
//! with the exact behaviour taken from Prometheus' `model/relabel/relabel.go` and the
//! `labels.Builder` it runs on (`model/labels/labels_common.go`), as of the 3.x line (2025).
//! The code here is an independent implementation, not a translation.
//!
//! * [`config`]: [`RelabelConfig`], the rule as written in YAML, with Prometheus' defaults
//!   (`separator: ";"`, `regex: "(.*)"`, `replacement: "$1"`, `action: replace`).
//! * [`Relabeler::new`] validates every rule like Prometheus' `Config.Validate` and compiles it;
//!   errors are [`RelabelError`]s naming the rule index. [`Relabeler::process`] applies the
//!   rules in order.
//!
//! Semantics (all of them Prometheus'):
//!
//! * A rule's input is the values of `source_labels` joined with `separator`; a missing label
//!   contributes "".
//! * Regexes are RE2 syntax, fully anchored and with `.` matching newlines: `^(?s:<regex>)$`.
//!   Before compiling with the `regex` crate the pattern is adjusted so that `\d \w \s \b` are
//!   ASCII-only, as in Go (see `gocompat.rs`).
//! * `replace` does nothing when the regex does not match. Otherwise `target_label` and
//!   `replacement` are expanded like Go's `Regexp.Expand` (`$1`, `${1}`, `$name`, `${name}`,
//!   `$$`; `$1x` is the group named `1x`); an expanded target that is not a valid label name
//!   skips the rule, an empty expanded replacement deletes the target label.
//! * `keep` / `drop` test the regex against the input; `keepequal` / `dropequal` compare the
//!   input with the current value of `target_label`.
//! * `hashmod` writes `u64::from_be_bytes(md5(input)[8..16]) % modulus` in decimal.
//! * `labelmap` copies every label whose name matches to the expanded `replacement` (the
//!   original stays; the new name is not validated, as in Prometheus). `labeldrop` /
//!   `labelkeep` delete the labels whose name does / does not match.
//! * `lowercase` / `uppercase` write the case-mapped input, mapping character by character like
//!   Go's `strings.ToLower` / `strings.ToUpper`.
//! * Labels set to "" are deleted. The result is a sorted [`Labels`](crate::model::Labels).
//!   When rules delete every label the empty set is returned, not `None`: Prometheus' `Process`
//!   also returns "keep" with an empty set and leaves it to the caller (its remote-write queue
//!   keeps such a series).
//!
//! Invariants: a [`Relabeler`] only holds rules that passed validation; `process` never
//! panics, never allocates when no rule writes or deletes a label (except the returned clone and
//! a joined value of several `source_labels`), and is deterministic.
//!
//! Known differences from Prometheus: the `regex` crate rejects a few patterns Go accepts (e.g.
//! `\Q...\E`, a `[` inside a class), and treats `&&`, `--`, `~~` inside a class as set operators;
//! an explicitly written default (`regex: (.*)` on `keepequal`, `source_labels: []` on
//! `labeldrop`) is accepted, where Prometheus compares by identity and rejects it; Unicode
//! tables may be of a different version than Go's.

pub mod cache;
pub mod config;
pub mod engine;
pub mod error;
mod gocompat;
mod rule;
mod template;

#[cfg(test)]
mod action_tests;
#[cfg(test)]
mod proptests;

pub use cache::{CacheTally, SeriesCache};
pub use config::{Action, RelabelConfig};
pub use engine::Relabeler;
pub use error::RelabelError;
pub use gocompat::NameValidation;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;

    #[test]
    fn relabeler_is_send_sync_and_clone() {
        fn check<T: Send + Sync + Clone + std::fmt::Debug>() {}
        check::<Relabeler>();
        check::<RelabelError>();
    }

    #[test]
    fn empty_relabeler_returns_input() {
        let relabeler = Relabeler::new(&[]).unwrap();
        assert!(relabeler.is_empty());
        let labels = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        assert_eq!(relabeler.process(&labels), Some(labels));
    }
}
