//! The rule manager's part of the metric catalog, named after Prometheus' own
//! (`prometheus_rule_evaluations_total`, `prometheus_rule_evaluation_failures_total`,
//! `prometheus_rule_group_last_duration_seconds`, …). The `rule_group` label is
//! `<file>;<group>` as Prometheus writes it: a bounded set, fixed by the rule files.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::telemetry::register;

type Labels = Vec<(&'static str, String)>;
type CounterFamily = Family<Labels, Counter>;
type SecondsFamily = Family<Labels, Gauge<f64, AtomicU64>>;
type GaugeFamily = Family<Labels, Gauge>;

/// The rule families. Cheap to clone (families share their series).
#[derive(Clone, Debug, Default)]
pub struct RuleFamilies {
    evaluations: CounterFamily,
    failures: CounterFamily,
    duration: SecondsFamily,
    last_evaluation: SecondsFamily,
    rules: GaugeFamily,
}

impl RuleFamilies {
    pub fn register(r: &mut Registry, d: &mut Vec<String>) -> Self {
        Self {
            evaluations: register(
                r,
                d,
                "strata_rule_evaluations",
                "Rule evaluations, by rule group.",
                "_total",
                CounterFamily::default(),
            ),
            failures: register(
                r,
                d,
                "strata_rule_evaluation_failures",
                "Rule evaluations that failed (query error, limit exceeded, output refused), by rule group.",
                "_total",
                CounterFamily::default(),
            ),
            duration: register(
                r,
                d,
                "strata_rule_group_last_duration_seconds",
                "How long the last evaluation of a rule group took.",
                "",
                SecondsFamily::default(),
            ),
            last_evaluation: register(
                r,
                d,
                "strata_rule_group_last_evaluation_timestamp_seconds",
                "Evaluation time of a rule group's last evaluation (unix seconds).",
                "",
                SecondsFamily::default(),
            ),
            rules: register(
                r,
                d,
                "strata_rule_group_rules",
                "Rules in a rule group.",
                "",
                GaugeFamily::default(),
            ),
        }
    }

    /// Records one evaluation of the group `file;name` at `ts_ms`.
    pub fn evaluated(&self, group: &str, rules: usize, failed: usize, seconds: f64, ts_ms: i64) {
        let labels = vec![("rule_group", group.to_owned())];
        self.evaluations.get_or_create(&labels).inc_by(rules as u64);
        self.failures.get_or_create(&labels).inc_by(failed as u64);
        self.duration.get_or_create(&labels).set(seconds);
        self.last_evaluation.get_or_create(&labels).set(ts_ms as f64 / 1000.0);
        self.rules.get_or_create(&labels).set(rules as i64);
    }
}
