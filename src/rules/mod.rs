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

pub mod alerting;
pub mod api;
pub mod cli;
pub mod file;
pub mod group;
pub mod manager;
#[cfg(test)]
mod manager_tests;
pub mod metrics;
#[cfg(test)]
mod state_tests;
pub mod template;
pub mod unittest;

pub use api::{BadRulesQuery, RulesQuery};
pub use manager::{Manager, RulesConfig};

use crate::model::labels::Labels;

/// Where rule output is written: recording-rule samples, `ALERTS` and `ALERTS_FOR_STATE`
/// (timestamps in milliseconds; stale markers are `promql::value::STALE_NAN_BITS`).
pub trait SampleSink: Send + Sync {
    fn append(&self, samples: Vec<(Labels, i64, f64)>) -> Result<(), String>;
}

/// Runs `expr` at `t_ms` for a rule: a vector as is, a scalar as one sample without labels
/// (Prometheus' `EngineQueryFunc`).
pub fn query_vector(
    engine: &crate::promql::Engine,
    storage: &dyn crate::promql::Queryable,
    expr: &promql_parser::parser::Expr,
    t_ms: i64,
) -> Result<Vec<crate::promql::Sample>, String> {
    use crate::promql::{Sample, Value};
    let result = engine.instant_expr(storage, expr, t_ms).map_err(|e| e.to_string())?;
    match result.value {
        Value::Vector(samples) => Ok(samples),
        Value::Scalar { t, v } => Ok(vec![Sample { labels: Labels::default(), t, v }]),
        _ => Err("rule result is not a vector or scalar".to_owned()),
    }
}

/// The `query` template function over an engine: parse, run at `t_ms`, samples as template
/// values.
pub fn template_query(
    engine: &crate::promql::Engine,
    storage: &dyn crate::promql::Queryable,
    text: &str,
    t_ms: i64,
) -> Result<Vec<template::Value>, String> {
    let expr = promql_parser::parser::parse(text)?;
    let samples = query_vector(engine, storage, &expr, t_ms)?;
    Ok(samples
        .iter()
        .map(|s| {
            template::Value::sample(
                s.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
                s.v,
            )
        })
        .collect())
}
