//! A rule group: its rules evaluated in order at aligned ticks.
//!
//! Follows Prometheus 3.x `rules/group.go`: every rule sees the output of the rules before it
//! (output is appended rule by rule); series a rule wrote last time but not this time get a
//! stale marker; `query_offset` moves the evaluation (and output) time back; a rule's error
//! marks it unhealthy and the group goes on. `eval_timestamp` aligns ticks to
//! `interval` with a per-group offset so groups spread over the interval (`EvalTimestamp`).
//! `restore_for_state` is `RestoreForState`: pending/firing alerts of rules with `for` ≥ the
//! grace period get their `activeAt` back from the newest `ALERTS_FOR_STATE` sample within
//! `outage_tolerance`, shifted by the downtime, never firing sooner than the grace period.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use crate::model::labels::Labels;
use crate::promql::value::STALE_NAN_BITS;
use crate::promql::{Queryable, SelectHints};
use crate::storage::head::LabelMatcher;

use super::alerting::{
    for_state_sample, ActiveAlert, AlertingRule, EvalStatus, Health, RecordingRule, Rule,
    RuleQuery, TemplateContext,
};
use super::file::GroupSpec;
use super::template::QueryFn;

/// An alert to notify about, with the expression that raised it (for `generatorURL`).
#[derive(Clone, Debug)]
pub struct AlertToSend {
    pub expr: String,
    pub alert: ActiveAlert,
}

#[derive(Clone, Debug)]
pub struct Group {
    pub name: String,
    pub file: String,
    pub interval_ms: i64,
    pub query_offset_ms: i64,
    pub limit: usize,
    pub rules: Vec<Rule>,
    /// Per rule, the series it wrote at its last evaluation (for stale markers).
    previous: Vec<HashSet<Labels>>,
    pub last_evaluation_ms: i64,
    pub evaluation_seconds: f64,
    /// Whether `restore_for_state` still has to run after the first evaluation.
    pub should_restore: bool,
}

/// Writes one rule's output; an error is the rule's error.
pub type Append<'a> = dyn Fn(Vec<(Labels, i64, f64)>) -> Result<(), String> + 'a;

impl Group {
    /// Builds a group from a validated spec. `restore`: whether alert state is to be restored
    /// (groups loaded at start); otherwise alerting rules write `ALERTS` from the start.
    pub fn from_spec(
        file: &str,
        spec: &GroupSpec,
        default_interval_ms: i64,
        restore: bool,
    ) -> Result<Self, String> {
        let mut rules = Vec::with_capacity(spec.rules.len());
        for rule in &spec.rules {
            let expr = promql_parser::parser::parse(&rule.expr).map_err(|e| {
                format!(
                    "group {:?}, rule {:?}: could not parse expression: {e}",
                    spec.name,
                    rule.name()
                )
            })?;
            let mut labels: BTreeMap<String, String> = spec.labels.clone();
            labels.extend(rule.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            let status = EvalStatus::default();
            if let Some(record) = &rule.record {
                rules.push(Rule::Recording(RecordingRule {
                    name: record.clone(),
                    expr,
                    expr_text: rule.expr.clone(),
                    labels: Labels::from_pairs(labels),
                    status,
                }));
                continue;
            }
            rules.push(Rule::Alerting(AlertingRule {
                name: rule.alert.clone().unwrap_or_default(),
                expr,
                expr_text: rule.expr.clone(),
                hold_ms: rule.for_duration.map_or(0, |d| d.get().as_millis() as i64),
                keep_firing_for_ms: rule.keep_firing_for.map_or(0, |d| d.get().as_millis() as i64),
                labels,
                annotations: rule.annotations.clone(),
                active: Default::default(),
                restored: !restore,
                status,
            }));
        }
        Ok(Self {
            name: spec.name.clone(),
            file: file.to_owned(),
            interval_ms: spec.interval.map_or(default_interval_ms, |d| d.get().as_millis() as i64),
            query_offset_ms: spec.query_offset.map_or(0, |d| d.get().as_millis() as i64),
            limit: spec.limit,
            previous: vec![HashSet::new(); rules.len()],
            rules,
            last_evaluation_ms: 0,
            evaluation_seconds: 0.0,
            should_restore: restore,
        })
    }

    /// The evaluation tick at or before `now_ms`: `base + offset` where the offset is a hash of the group's file and name modulo the interval.
    pub fn eval_timestamp(&self, now_ms: i64) -> i64 {
        let interval = self.interval_ms.max(1);
        let hash = xxhash_rust::xxh3::xxh3_64(format!("{};{}", self.name, self.file).as_bytes());
        let offset = (hash % interval as u64) as i64;
        let adjusted = now_ms - offset;
        adjusted - adjusted.rem_euclid(interval) + offset
    }

    /// Evaluates every rule at `ts`, appending output rule by rule; returns the alerts due for
    /// sending.
    #[allow(clippy::too_many_arguments)]
    pub fn eval(
        &mut self,
        ts: i64,
        wall_clock_ms: i64,
        query: &RuleQuery<'_>,
        template_query: Option<&QueryFn<'_>>,
        context: &TemplateContext,
        append: &Append<'_>,
        resend_delay_ms: i64,
    ) -> Vec<AlertToSend> {
        let started = Instant::now();
        let eval_ms = ts - self.query_offset_ms;
        let mut to_send = Vec::new();
        for (index, rule) in self.rules.iter_mut().enumerate() {
            let rule_started = Instant::now();
            let result = match rule {
                Rule::Recording(r) => r.eval(query, eval_ms, self.limit),
                Rule::Alerting(r) => {
                    r.eval(query, template_query, ts, self.query_offset_ms, self.limit, context)
                }
            };
            let (samples, error) = match result {
                Ok(samples) => (samples, None),
                Err(e) => (Vec::new(), Some(e)),
            };
            let current: HashSet<Labels> = samples.iter().map(|s| s.labels.clone()).collect();
            let mut output: Vec<(Labels, i64, f64)> =
                samples.into_iter().map(|s| (s.labels, s.t, s.v)).collect();
            // A failed evaluation keeps the previous series: Prometheus marks nothing stale then.
            if error.is_none() {
                let mut stale: Vec<&Labels> = self.previous[index].difference(&current).collect();
                stale.sort();
                output.extend(
                    stale.into_iter().map(|l| (l.clone(), eval_ms, f64::from_bits(STALE_NAN_BITS))),
                );
                self.previous[index] = current;
            }
            let append_error = if output.is_empty() { None } else { append(output).err() };
            let status = rule.status_mut();
            status.last_evaluation_ms = wall_clock_ms;
            status.evaluation_seconds = rule_started.elapsed().as_secs_f64();
            status.last_error = error.or(append_error);
            status.health = if status.last_error.is_some() { Health::Err } else { Health::Ok };
            if let Rule::Alerting(r) = rule {
                let expr = r.expr_text.clone();
                for alert in r.alerts_to_send(ts, resend_delay_ms, self.interval_ms) {
                    to_send.push(AlertToSend { expr: expr.clone(), alert });
                }
            }
        }
        self.last_evaluation_ms = wall_clock_ms;
        self.evaluation_seconds = started.elapsed().as_secs_f64();
        to_send
    }

    /// Prometheus' `RestoreForState` at `ts`.
    pub fn restore_for_state(
        &mut self,
        ts: i64,
        storage: &dyn Queryable,
        outage_tolerance_ms: i64,
        grace_ms: i64,
    ) {
        let mint = ts - outage_tolerance_ms;
        for rule in &mut self.rules {
            let Rule::Alerting(rule) = rule else { continue };
            if rule.hold_ms < grace_ms {
                rule.restored = true;
                continue;
            }
            for alert in rule.active.values_mut() {
                restore_alert(alert, rule.hold_ms, ts, mint, storage, grace_ms);
            }
            rule.restored = true;
        }
        self.should_restore = false;
    }

    /// Stale markers at `ts` for everything the group wrote last (when the group goes away).
    pub fn stale_markers(&self, ts: i64) -> Vec<(Labels, i64, f64)> {
        let mut out: Vec<(Labels, i64, f64)> = self
            .previous
            .iter()
            .flatten()
            .map(|l| (l.clone(), ts - self.query_offset_ms, f64::from_bits(STALE_NAN_BITS)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Carries alert state, health and staleness tracking over from the same group before a
    /// reload, for rules that did not change (Prometheus' `CopyState`).
    pub fn copy_state_from(&mut self, old: &Group) {
        self.last_evaluation_ms = old.last_evaluation_ms;
        self.evaluation_seconds = old.evaluation_seconds;
        // A group reloaded before its first evaluation still restores its alerts.
        self.should_restore = old.should_restore;
        let mut used = vec![false; old.rules.len()];
        for (index, rule) in self.rules.iter_mut().enumerate() {
            let identity = rule.identity();
            let Some(old_index) = old
                .rules
                .iter()
                .enumerate()
                .position(|(i, r)| !used[i] && r.identity() == identity)
            else {
                continue;
            };
            used[old_index] = true;
            self.previous[index] = old.previous[old_index].clone();
            *rule.status_mut() = old.rules[old_index].status().clone();
            if let (Rule::Alerting(new), Rule::Alerting(previous)) = (rule, &old.rules[old_index]) {
                new.active = previous.active.clone();
                new.restored = previous.restored;
            }
        }
    }

    /// The group's health summary: the rules' statuses.
    pub fn statuses(&self) -> impl Iterator<Item = &EvalStatus> {
        self.rules.iter().map(Rule::status)
    }
}

fn restore_alert(
    alert: &mut ActiveAlert,
    hold_ms: i64,
    ts: i64,
    mint: i64,
    storage: &dyn Queryable,
    grace_ms: i64,
) {
    let series_labels = for_state_sample(&alert.labels, 0, 0.0).labels;
    let matchers: Vec<LabelMatcher> = series_labels
        .iter()
        .map(|l| LabelMatcher::equal(l.name.clone(), l.value.clone()))
        .collect();
    let hints = SelectHints { start_ms: mint, end_ms: ts, ..SelectHints::default() };
    let Ok(series) = storage.select(&matchers, &hints) else { return };
    let Some(last) = series
        .iter()
        .filter(|s| s.labels == series_labels)
        .flat_map(|s| s.points.iter())
        .filter(|p| p.v.to_bits() != STALE_NAN_BITS)
        .max_by_key(|p| p.t)
    else {
        return;
    };
    // Prometheus works in whole seconds here.
    let down_at_ms = last.t / 1000 * 1000;
    let mut restored_active_at_ms = (last.v as i64) * 1000;
    let time_spent_pending = down_at_ms - restored_active_at_ms;
    let time_remaining_pending = hold_ms - time_spent_pending;
    if time_remaining_pending <= 0 {
        // Was already firing: keep activeAt.
    } else if time_remaining_pending < grace_ms {
        restored_active_at_ms = ts + grace_ms - hold_ms;
    } else {
        restored_active_at_ms += ts - down_at_ms;
    }
    alert.active_at_ms = restored_active_at_ms;
}
