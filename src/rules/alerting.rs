//! Recording and alerting rules: one evaluation of a rule at a time `ts`.
//!
//! Follows Prometheus 3.x `rules/recording.go` and `rules/alerting.go`:
//! * a recording rule renames the result (`__name__` = record) and sets its labels; two output
//!   series with one label set is an error, as is exceeding the group's `limit`;
//! * an alerting rule's result samples become alerts keyed by their labels (sample labels minus
//!   `__name__`, plus the templated rule labels and `alertname`). New alerts are `pending`;
//!   after `for` they are `firing`; when their series vanish they are `inactive` (resolved) and
//!   kept 15 minutes for notification, unless `keep_firing_for` holds a firing alert longer;
//! * `ALERTS{alertstate}` (value 1) and `ALERTS_FOR_STATE` (value = activeAt in seconds) are
//!   output for every pending or firing alert once the rule is restored;
//! * alerts are sent when firing or newly resolved, and re-sent every `resend_delay`, with
//!   `ValidUntil = ts + 4 * max(resend_delay, interval)` (`sendAlerts`, `needsSending`).

use std::collections::{BTreeMap, HashMap};

use promql_parser::parser::Expr;

use crate::model::labels::{Label, Labels, METRIC_NAME};
use crate::promql::Sample;

use super::template::{self, QueryFn};

/// How long a resolved alert is kept and re-sent (`resolvedRetention`).
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// Runs a rule's expression at a time (ms); a scalar result is one sample without labels.
pub type RuleQuery<'a> = dyn Fn(&Expr, i64) -> Result<Vec<Sample>, String> + 'a;

/// A rule's health after its last evaluation, as `/api/v1/rules` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Ok,
    Err,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// The outcome of a rule's last evaluation.
#[derive(Clone, Debug)]
pub struct EvalStatus {
    pub health: Health,
    pub last_error: Option<String>,
    /// Wall-clock start of the last evaluation, ms; 0 if never evaluated.
    pub last_evaluation_ms: i64,
    pub evaluation_seconds: f64,
}

impl Default for EvalStatus {
    fn default() -> Self {
        Self {
            health: Health::Unknown,
            last_error: None,
            last_evaluation_ms: 0,
            evaluation_seconds: 0.0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct RecordingRule {
    pub name: String,
    pub expr: Expr,
    pub expr_text: String,
    /// Group labels merged with the rule's own (the rule's win).
    pub labels: Labels,
    pub status: EvalStatus,
}

impl RecordingRule {
    /// The series to write at `ts - query_offset` (already timestamped).
    pub fn eval(
        &self,
        query: &RuleQuery<'_>,
        eval_ms: i64,
        limit: usize,
    ) -> Result<Vec<Sample>, String> {
        let result = query(&self.expr, eval_ms)?;
        let mut out = Vec::with_capacity(result.len());
        for sample in result {
            let mut builder = sample.labels.builder();
            builder.set(METRIC_NAME, self.name.clone());
            for label in &self.labels {
                builder.set(&label.name, label.value.clone());
            }
            out.push(Sample { labels: builder.build(), t: eval_ms, v: sample.v });
        }
        let mut sorted: Vec<&Labels> = out.iter().map(|s| &s.labels).collect();
        sorted.sort();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(
                "vector contains metrics with the same labelset after applying rule labels".into(),
            );
        }
        if limit > 0 && out.len() > limit {
            return Err(format!("exceeded limit of {limit} with {} series", out.len()));
        }
        Ok(out)
    }
}

/// An alert's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of an alerting rule. Times are milliseconds; 0 means unset.
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveAlert {
    pub state: AlertState,
    pub labels: Labels,
    pub annotations: Labels,
    pub value: f64,
    pub active_at_ms: i64,
    pub fired_at_ms: i64,
    pub resolved_at_ms: i64,
    /// When last sent to Alertmanager; `None` before the first send.
    pub last_sent_at_ms: Option<i64>,
    pub valid_until_ms: i64,
    pub keep_firing_since_ms: i64,
}

impl ActiveAlert {
    /// Prometheus' `needsSending`.
    fn needs_sending(&self, ts: i64, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        let Some(last_sent) = self.last_sent_at_ms else {
            return true;
        };
        if self.resolved_at_ms > last_sent {
            return true;
        }
        last_sent + resend_delay_ms < ts
    }
}

/// What templates see besides the alert: external labels and URL.
#[derive(Clone, Debug, Default)]
pub struct TemplateContext {
    pub external_labels: Labels,
    pub external_url: String,
}

#[derive(Clone, Debug)]
pub struct AlertingRule {
    pub name: String,
    pub expr: Expr,
    pub expr_text: String,
    pub hold_ms: i64,
    pub keep_firing_for_ms: i64,
    /// Label templates: group labels merged with the rule's own.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Keyed by the alert's label set.
    pub active: HashMap<Labels, ActiveAlert>,
    /// Whether `ALERTS`/`ALERTS_FOR_STATE` are written (false until restore has run).
    pub restored: bool,
    pub status: EvalStatus,
}

impl AlertingRule {
    /// Evaluates at group tick `ts`: the query runs at `ts - query_offset_ms`, which is also
    /// the time of the returned `ALERTS` and `ALERTS_FOR_STATE` samples; alert state times
    /// (`activeAt`, `firedAt`, `resolvedAt`) are `ts`, as in Prometheus.
    pub fn eval(
        &mut self,
        query: &RuleQuery<'_>,
        template_query: Option<&QueryFn<'_>>,
        ts: i64,
        query_offset_ms: i64,
        limit: usize,
        context: &TemplateContext,
    ) -> Result<Vec<Sample>, String> {
        let sample_ms = ts - query_offset_ms;
        let result = query(&self.expr, sample_ms)?;
        let mut current: HashMap<Labels, ActiveAlert> = HashMap::with_capacity(result.len());
        for sample in result {
            let alert = self.new_alert(&sample, ts, template_query, context);
            if current.contains_key(&alert.labels) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
            current.insert(alert.labels.clone(), alert);
        }
        for (labels, alert) in &current {
            match self.active.get_mut(labels) {
                Some(existing) if existing.state != AlertState::Inactive => {
                    existing.value = alert.value;
                    existing.annotations = alert.annotations.clone();
                }
                _ => {
                    self.active.insert(labels.clone(), alert.clone());
                }
            }
        }
        let mut output = Vec::new();
        let mut active_or_pending = 0;
        let mut to_delete = Vec::new();
        let mut keys: Vec<Labels> = self.active.keys().cloned().collect();
        keys.sort();
        for key in keys {
            let alert = self.active.get_mut(&key).expect("key from the map");
            if current.contains_key(&key) {
                alert.keep_firing_since_ms = 0;
            } else {
                let mut keep_firing = false;
                if alert.state == AlertState::Firing && self.keep_firing_for_ms > 0 {
                    if alert.keep_firing_since_ms == 0 {
                        alert.keep_firing_since_ms = ts;
                    }
                    keep_firing = ts - alert.keep_firing_since_ms < self.keep_firing_for_ms;
                }
                if !keep_firing {
                    if alert.state == AlertState::Pending
                        || (alert.resolved_at_ms != 0
                            && ts - alert.resolved_at_ms > RESOLVED_RETENTION_MS)
                    {
                        to_delete.push(key.clone());
                    }
                    if alert.state != AlertState::Inactive {
                        alert.state = AlertState::Inactive;
                        alert.resolved_at_ms = ts;
                    }
                    continue;
                }
            }
            active_or_pending += 1;
            if alert.state == AlertState::Pending && ts - alert.active_at_ms >= self.hold_ms {
                alert.state = AlertState::Firing;
                alert.fired_at_ms = ts;
            }
            if self.restored {
                output.push(alerts_sample(&alert.labels, alert.state, sample_ms));
                // Prometheus writes activeAt in whole seconds.
                let active_at_seconds = alert.active_at_ms.div_euclid(1000) as f64;
                output.push(for_state_sample(&alert.labels, sample_ms, active_at_seconds));
            }
        }
        for key in to_delete {
            self.active.remove(&key);
        }
        if limit > 0 && active_or_pending > limit {
            self.active.clear();
            return Err(format!("exceeded limit of {limit} with {active_or_pending} alerts"));
        }
        Ok(output)
    }

    fn new_alert(
        &self,
        sample: &Sample,
        ts: i64,
        template_query: Option<&QueryFn<'_>>,
        context: &TemplateContext,
    ) -> ActiveAlert {
        let data = template::alert_data(
            &sample.labels,
            &context.external_labels,
            &context.external_url,
            sample.v,
        );
        let template_name = format!("__alert_{}", self.name);
        let expand = |text: &str| {
            template::expand(&template_name, text, &data, template_query, &context.external_url)
        };
        let mut builder = sample.labels.builder();
        builder.delete(METRIC_NAME);
        for (name, text) in &self.labels {
            builder.set(name, expand(text));
        }
        builder.set("alertname", self.name.clone());
        let annotations = Labels::from_unsorted(
            self.annotations
                .iter()
                .map(|(name, text)| Label::new(name.clone(), expand(text)))
                .collect(),
        );
        ActiveAlert {
            state: AlertState::Pending,
            labels: builder.build(),
            annotations,
            value: sample.v,
            active_at_ms: ts,
            fired_at_ms: 0,
            resolved_at_ms: 0,
            last_sent_at_ms: None,
            valid_until_ms: 0,
            keep_firing_since_ms: 0,
        }
    }

    /// Alerts due to be sent at `ts`, marking them sent (Prometheus' `sendAlerts`).
    pub fn alerts_to_send(
        &mut self,
        ts: i64,
        resend_delay_ms: i64,
        interval_ms: i64,
    ) -> Vec<ActiveAlert> {
        let delta = resend_delay_ms.max(interval_ms);
        let mut out = Vec::new();
        for alert in self.active.values_mut() {
            if alert.needs_sending(ts, resend_delay_ms) {
                alert.last_sent_at_ms = Some(ts);
                alert.valid_until_ms = ts + 4 * delta;
                out.push(alert.clone());
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Active alerts sorted by labels.
    pub fn sorted_alerts(&self) -> Vec<&ActiveAlert> {
        let mut alerts: Vec<&ActiveAlert> = self.active.values().collect();
        alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
        alerts
    }

    /// The rule's state: the highest state of its alerts.
    pub fn state(&self) -> AlertState {
        self.active.values().map(|a| a.state).max().unwrap_or(AlertState::Inactive)
    }
}

/// `ALERTS{…, alertstate}` = 1.
pub fn alerts_sample(labels: &Labels, state: AlertState, t: i64) -> Sample {
    let mut builder = labels.builder();
    builder.set(METRIC_NAME, "ALERTS".to_owned());
    builder.set("alertstate", state.as_str().to_owned());
    Sample { labels: builder.build(), t, v: 1.0 }
}

/// `ALERTS_FOR_STATE{…}` = activeAt in seconds.
pub fn for_state_sample(labels: &Labels, t: i64, active_at_seconds: f64) -> Sample {
    let mut builder = labels.builder();
    builder.set(METRIC_NAME, "ALERTS_FOR_STATE".to_owned());
    Sample { labels: builder.build(), t, v: active_at_seconds }
}

/// A rule of a group.
#[derive(Clone, Debug)]
pub enum Rule {
    Recording(RecordingRule),
    Alerting(AlertingRule),
}

impl Rule {
    pub fn name(&self) -> &str {
        match self {
            Rule::Recording(r) => &r.name,
            Rule::Alerting(r) => &r.name,
        }
    }

    pub fn status(&self) -> &EvalStatus {
        match self {
            Rule::Recording(r) => &r.status,
            Rule::Alerting(r) => &r.status,
        }
    }

    pub fn status_mut(&mut self) -> &mut EvalStatus {
        match self {
            Rule::Recording(r) => &mut r.status,
            Rule::Alerting(r) => &mut r.status,
        }
    }

    /// Identity for carrying state across reloads: kind, name, expression and labels.
    pub fn identity(&self) -> String {
        match self {
            Rule::Recording(r) => format!("record:{}:{}:{}", r.name, r.expr_text, r.labels),
            Rule::Alerting(r) => {
                format!("alert:{}:{}:{:?}:{:?}", r.name, r.expr_text, r.labels, r.annotations)
            }
        }
    }
}
