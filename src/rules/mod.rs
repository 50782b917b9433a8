//! Rules: Prometheus rule files, recording and alerting rule evaluation, alert templates, and
//! the promtool-style `check rules` / `test rules` commands.
//!
//! Semantic reference: Prometheus 3.x `rules/` (group evaluation, alert state machine,
//! `ALERTS`/`ALERTS_FOR_STATE`, restore), `template/` (alert templates), `model/rulefmt/`
//! (file format) and `cmd/promtool` (`check rules`, `test rules`).
//!
//! ```text
//!  rule files ─► file (parse, validate) ─► group (evaluate at aligned ticks)
//!      recording rules ─► SampleSink (WAL → head → forward sinks)
//!      alerting rules  ─► alerting (inactive → pending → firing, templates)
//!                         ├─► SampleSink (ALERTS, ALERTS_FOR_STATE)
//!                         └─► notifier::SendAlerts (resend every resend_delay)
//! ```
//!
//! Invariants: a rule file is validated completely before any of it replaces loaded rules; the
//! engine runs synchronously, so evaluations run off the async runtime.

pub mod file;
pub mod template;

use crate::model::labels::Labels;

/// Where rule output is written: recording-rule samples, `ALERTS` and `ALERTS_FOR_STATE`
/// (timestamps in milliseconds; stale markers are `promql::value::STALE_NAN_BITS`).
pub trait SampleSink: Send + Sync {
    fn append(&self, samples: Vec<(Labels, i64, f64)>) -> Result<(), String>;
}
