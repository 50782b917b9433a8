//! `GET /api/v1/rules` and `GET /api/v1/alerts` bodies in Prometheus' shape
//! (<https://prometheus.io/docs/prometheus/latest/querying/api/#rules>, `web/api/v1/api.go`
//! `rules`/`alerts`, 3.x): times RFC 3339 with nanoseconds (Go's zero time when never
//! evaluated), durations in seconds, alert values as Go's `%e` shortest text (`1e+00`),
//! `lastError` only when set, recording-rule `labels` only when not empty. Filters: `type`,
//! `rule_name[]`, `rule_group[]`, `file[]`, `exclude_alerts`, `match[]` (on configured labels).

use serde_json::{json, Map, Value};

use crate::model::labels::Labels;
use crate::storage::head::matcher::matches_all;
use crate::storage::head::{LabelMatcher, MatchOp};

use super::alerting::{ActiveAlert, AlertState, AlertingRule, Rule};
use super::manager::Manager;
use super::template::format::rfc3339_ms;

/// Filters of `/api/v1/rules` (all optional).
#[derive(Clone, Debug, Default)]
pub struct RulesQuery {
    /// `type`: `alert` or `record`.
    pub kind: Option<String>,
    pub rule_names: Vec<String>,
    pub group_names: Vec<String>,
    pub files: Vec<String>,
    pub exclude_alerts: bool,
    /// `match[]`: series selectors; a rule is listed when its configured labels satisfy one.
    pub matchers: Vec<String>,
}

/// A bad filter: answered as `bad_data` (HTTP 400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRulesQuery(pub String);

/// A `match[]` selector as matcher sets (one per `or` branch).
fn selector_matchers(text: &str) -> Result<Vec<Vec<LabelMatcher>>, BadRulesQuery> {
    let bad = |message: String| BadRulesQuery(format!("invalid parameter \"match[]\": {message}"));
    let expr = promql_parser::parser::parse(text).map_err(bad)?;
    let promql_parser::parser::Expr::VectorSelector(selector) = expr else {
        return Err(bad(format!("{text:?} is not a series selector")));
    };
    let mut sets = vec![selector.matchers.matchers.clone()];
    sets.extend(selector.matchers.or_matchers.iter().cloned());
    let mut out = Vec::with_capacity(sets.len());
    for set in sets {
        let mut matchers = Vec::with_capacity(set.len() + 1);
        if let Some(name) = &selector.name {
            matchers.push(LabelMatcher::equal("__name__", name.clone()));
        }
        for m in set {
            let op = match m.op {
                promql_parser::label::MatchOp::Equal => MatchOp::Equal,
                promql_parser::label::MatchOp::NotEqual => MatchOp::NotEqual,
                promql_parser::label::MatchOp::Re(_) => MatchOp::RegexMatch,
                promql_parser::label::MatchOp::NotRe(_) => MatchOp::RegexNoMatch,
            };
            matchers.push(LabelMatcher::new(m.name, op, m.value).map_err(|e| bad(e.to_string()))?);
        }
        out.push(matchers);
    }
    Ok(out)
}

/// The labels a rule is configured with (`match[]` filters on these).
fn configured_labels(rule: &Rule) -> Labels {
    match rule {
        Rule::Recording(r) => r.labels.clone(),
        Rule::Alerting(r) => {
            Labels::from_pairs(r.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        }
    }
}

fn time_text(ms: i64) -> String {
    if ms == 0 {
        return "0001-01-01T00:00:00Z".to_owned();
    }
    rfc3339_ms(ms)
}

fn labels_json(labels: &Labels) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|l| (l.name.clone(), Value::String(l.value.clone())))
            .collect::<Map<_, _>>(),
    )
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`.
fn value_text(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".to_owned() } else { "-Inf".to_owned() };
    }
    let shortest = format!("{v:e}");
    let (mantissa, exp) = shortest.split_once('e').unwrap_or((&shortest, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

fn alert_json(alert: &ActiveAlert) -> Value {
    let mut object = json!({
        "labels": labels_json(&alert.labels),
        "annotations": labels_json(&alert.annotations),
        "state": alert.state.as_str(),
        "activeAt": rfc3339_ms(alert.active_at_ms),
        "value": value_text(alert.value),
    });
    if alert.keep_firing_since_ms != 0 {
        object["keepFiringSince"] = Value::String(rfc3339_ms(alert.keep_firing_since_ms));
    }
    object
}

fn active_alerts(rule: &AlertingRule) -> impl Iterator<Item = &ActiveAlert> {
    rule.sorted_alerts().into_iter().filter(|a| a.state != AlertState::Inactive)
}

fn rule_json(rule: &Rule, exclude_alerts: bool) -> Value {
    let status = rule.status();
    let mut object = match rule {
        Rule::Alerting(r) => {
            let alerts: Vec<Value> = if exclude_alerts {
                Vec::new()
            } else {
                active_alerts(r).map(alert_json).collect()
            };
            json!({
                "state": r.state().as_str(),
                "name": r.name,
                "query": r.expr.to_string(),
                "duration": r.hold_ms as f64 / 1000.0,
                "keepFiringFor": r.keep_firing_for_ms as f64 / 1000.0,
                "labels": r.labels,
                "annotations": r.annotations,
                "alerts": alerts,
                "health": status.health.as_str(),
                "evaluationTime": status.evaluation_seconds,
                "lastEvaluation": time_text(status.last_evaluation_ms),
                "type": "alerting",
            })
        }
        Rule::Recording(r) => {
            let mut object = json!({
                "name": r.name,
                "query": r.expr.to_string(),
                "health": status.health.as_str(),
                "evaluationTime": status.evaluation_seconds,
                "lastEvaluation": time_text(status.last_evaluation_ms),
                "type": "recording",
            });
            if !r.labels.is_empty() {
                object["labels"] = labels_json(&r.labels);
            }
            object
        }
    };
    if let Some(error) = &status.last_error {
        object["lastError"] = Value::String(error.clone());
    }
    object
}

impl Manager {
    /// The `/api/v1/rules` body.
    pub fn rules_json(&self, query: &RulesQuery) -> Result<Value, BadRulesQuery> {
        let (want_alerting, want_recording) = match query.kind.as_deref() {
            None | Some("") => (true, true),
            Some("alert") => (true, false),
            Some("record") => (false, true),
            Some(other) => return Err(BadRulesQuery(format!("not supported value {other:?}"))),
        };
        let mut matcher_sets = Vec::new();
        for text in &query.matchers {
            matcher_sets.extend(selector_matchers(text)?);
        }
        let filtered = query.kind.as_deref().is_some_and(|k| !k.is_empty())
            || !matcher_sets.is_empty()
            || !query.rule_names.is_empty()
            || !query.group_names.is_empty()
            || !query.files.is_empty();
        let mut groups = Vec::new();
        for group in self.groups() {
            let group = group.lock().unwrap_or_else(|e| e.into_inner());
            if !query.group_names.is_empty() && !query.group_names.contains(&group.name) {
                continue;
            }
            if !query.files.is_empty() && !query.files.contains(&group.file) {
                continue;
            }
            let rules: Vec<Value> = group
                .rules
                .iter()
                .filter(|r| match r {
                    Rule::Alerting(_) => want_alerting,
                    Rule::Recording(_) => want_recording,
                })
                .filter(|r| {
                    query.rule_names.is_empty() || query.rule_names.iter().any(|n| n == r.name())
                })
                .filter(|r| {
                    let labels = configured_labels(r);
                    matcher_sets.is_empty()
                        || matcher_sets.iter().any(|set| matches_all(set, &labels))
                })
                .map(|r| rule_json(r, query.exclude_alerts))
                .collect();
            if filtered && rules.is_empty() {
                continue;
            }
            groups.push(json!({
                "name": group.name,
                "file": group.file,
                "rules": rules,
                "interval": group.interval_ms as f64 / 1000.0,
                "limit": group.limit,
                "evaluationTime": group.evaluation_seconds,
                "lastEvaluation": time_text(group.last_evaluation_ms),
            }));
        }
        Ok(json!({"status": "success", "data": {"groups": groups}}))
    }

    /// The `/api/v1/alerts` body: every pending and firing alert.
    pub fn alerts_json(&self) -> Value {
        let mut alerts = Vec::new();
        for group in self.groups() {
            let group = group.lock().unwrap_or_else(|e| e.into_inner());
            for rule in &group.rules {
                if let Rule::Alerting(r) = rule {
                    alerts.extend(active_alerts(r).map(alert_json));
                }
            }
        }
        json!({"status": "success", "data": {"alerts": alerts}})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_times_print_like_prometheus() {
        assert_eq!(value_text(1.0), "1e+00");
        assert_eq!(value_text(0.25), "2.5e-01");
        assert_eq!(value_text(12345.0), "1.2345e+04");
        assert_eq!(time_text(0), "0001-01-01T00:00:00Z");
        assert_eq!(time_text(1_704_067_200_123), "2024-01-01T00:00:00.123Z");
    }
}
