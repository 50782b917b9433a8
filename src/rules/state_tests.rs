//! The alert state machine and group evaluation, driven by a scripted query (no engine) and by
//! the engine over `MemStorage` for restore.

use std::cell::RefCell;
use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::model::labels::Labels;
use crate::promql::value::{is_stale_nan, STALE_NAN_BITS};
use crate::promql::{Engine, MemStorage, Point, Sample};

use super::alerting::{
    AlertState, AlertingRule, EvalStatus, Rule, TemplateContext, RESOLVED_RETENTION_MS,
};
use super::file;
use super::group::Group;
use super::query_vector;

const MINUTE: i64 = 60_000;

fn alerting_rule(hold_ms: i64, keep_firing_for_ms: i64) -> AlertingRule {
    AlertingRule {
        name: "HighLoad".into(),
        expr: promql_parser::parser::parse("load > 1").unwrap(),
        expr_text: "load > 1".into(),
        hold_ms,
        keep_firing_for_ms,
        labels: BTreeMap::from([("severity".to_owned(), "page".to_owned())]),
        annotations: BTreeMap::from([(
            "summary".to_owned(),
            "{{ $labels.instance }} at {{ $value }}".to_owned(),
        )]),
        active: Default::default(),
        restored: true,
        status: EvalStatus::default(),
    }
}

fn load_sample(value: f64) -> Sample {
    Sample { labels: Labels::from_pairs([("__name__", "load"), ("instance", "a")]), t: 0, v: value }
}

/// Evaluates `rule` at `ts` with the query answering `result`.
fn eval(rule: &mut AlertingRule, ts: i64, result: &[Sample]) -> Result<Vec<Sample>, String> {
    let query = |_: &promql_parser::parser::Expr, _: i64| Ok(result.to_vec());
    rule.eval(&query, None, ts, 0, 0, &TemplateContext::default())
}

fn only_state(rule: &AlertingRule) -> AlertState {
    assert_eq!(rule.active.len(), 1, "{:?}", rule.active);
    rule.active.values().next().unwrap().state
}

#[test]
fn pending_then_firing_then_resolved_then_forgotten() {
    let mut rule = alerting_rule(5 * MINUTE, 0);
    let present = [load_sample(3.0)];
    let output = eval(&mut rule, 0, &present).unwrap();
    assert_eq!(only_state(&rule), AlertState::Pending);
    let alerts = output.iter().find(|s| s.labels.metric_name() == Some("ALERTS")).unwrap();
    assert_eq!(alerts.labels.get("alertstate"), Some("pending"));
    assert_eq!(alerts.labels.get("severity"), Some("page"));
    assert_eq!(alerts.labels.get("alertname"), Some("HighLoad"));
    let for_state =
        output.iter().find(|s| s.labels.metric_name() == Some("ALERTS_FOR_STATE")).unwrap();
    assert_eq!(for_state.v, 0.0);
    assert!(rule.alerts_to_send(0, MINUTE, MINUTE).is_empty(), "pending alerts are not sent");

    eval(&mut rule, 4 * MINUTE, &present).unwrap();
    assert_eq!(only_state(&rule), AlertState::Pending);
    let output = eval(&mut rule, 5 * MINUTE, &present).unwrap();
    assert_eq!(only_state(&rule), AlertState::Firing);
    assert!(output.iter().any(|s| s.labels.get("alertstate") == Some("firing")));
    let alert = rule.active.values().next().unwrap();
    assert_eq!(alert.fired_at_ms, 5 * MINUTE);
    assert_eq!(alert.annotations.get("summary"), Some("a at 3"));

    let sent = rule.alerts_to_send(5 * MINUTE, MINUTE, MINUTE);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].valid_until_ms, 5 * MINUTE + 4 * MINUTE);

    let output = eval(&mut rule, 6 * MINUTE, &[]).unwrap();
    assert!(output.is_empty(), "resolved alerts write no ALERTS");
    assert_eq!(only_state(&rule), AlertState::Inactive);
    let sent = rule.alerts_to_send(6 * MINUTE, MINUTE, MINUTE);
    assert_eq!(sent.len(), 1, "a resolved alert is sent at once");
    assert_eq!(sent[0].resolved_at_ms, 6 * MINUTE);

    eval(&mut rule, 6 * MINUTE + RESOLVED_RETENTION_MS, &[]).unwrap();
    assert_eq!(rule.active.len(), 1, "kept for the retention period");
    eval(&mut rule, 7 * MINUTE + RESOLVED_RETENTION_MS, &[]).unwrap();
    assert!(rule.active.is_empty(), "forgotten after it");
}

#[test]
fn a_pending_alert_that_vanishes_is_dropped() {
    let mut rule = alerting_rule(5 * MINUTE, 0);
    eval(&mut rule, 0, &[load_sample(3.0)]).unwrap();
    eval(&mut rule, MINUTE, &[]).unwrap();
    assert!(rule.active.is_empty());
    eval(&mut rule, 2 * MINUTE, &[load_sample(3.0)]).unwrap();
    assert_eq!(rule.active.values().next().unwrap().active_at_ms, 2 * MINUTE, "starts over");
}

#[test]
fn keep_firing_for_holds_a_firing_alert() {
    let mut rule = alerting_rule(0, 3 * MINUTE);
    eval(&mut rule, 0, &[load_sample(3.0)]).unwrap();
    assert_eq!(only_state(&rule), AlertState::Firing, "no `for`: fires at once");
    for minute in 1..=3 {
        let output = eval(&mut rule, minute * MINUTE, &[]).unwrap();
        assert_eq!(only_state(&rule), AlertState::Firing, "minute {minute}");
        assert!(!output.is_empty(), "still written while kept firing");
        assert_eq!(rule.active.values().next().unwrap().keep_firing_since_ms, MINUTE);
    }
    eval(&mut rule, 4 * MINUTE, &[]).unwrap();
    assert_eq!(only_state(&rule), AlertState::Inactive);
}

#[test]
fn keep_firing_is_reset_when_the_series_returns() {
    let mut rule = alerting_rule(0, 2 * MINUTE);
    eval(&mut rule, 0, &[load_sample(3.0)]).unwrap();
    eval(&mut rule, MINUTE, &[]).unwrap();
    eval(&mut rule, 2 * MINUTE, &[load_sample(3.0)]).unwrap();
    assert_eq!(rule.active.values().next().unwrap().keep_firing_since_ms, 0);
    eval(&mut rule, 3 * MINUTE, &[]).unwrap();
    eval(&mut rule, 4 * MINUTE, &[]).unwrap();
    assert_eq!(only_state(&rule), AlertState::Firing);
}

#[test]
fn firing_alerts_are_resent_after_the_resend_delay() {
    let mut rule = alerting_rule(0, 0);
    let present = [load_sample(3.0)];
    eval(&mut rule, 0, &present).unwrap();
    assert_eq!(rule.alerts_to_send(0, MINUTE, MINUTE).len(), 1);
    eval(&mut rule, MINUTE, &present).unwrap();
    assert!(
        rule.alerts_to_send(MINUTE, MINUTE, MINUTE).is_empty(),
        "not yet: sent exactly one delay ago"
    );
    eval(&mut rule, 2 * MINUTE, &present).unwrap();
    let sent = rule.alerts_to_send(2 * MINUTE, MINUTE, 30_000);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].valid_until_ms, 2 * MINUTE + 4 * MINUTE, "4 × max(resend delay, interval)");
}

#[test]
fn alert_limits_and_label_clashes_are_errors() {
    let mut rule = alerting_rule(0, 0);
    let two = [
        load_sample(3.0),
        Sample {
            labels: Labels::from_pairs([("__name__", "load"), ("instance", "b")]),
            t: 0,
            v: 2.0,
        },
    ];
    let query = |_: &promql_parser::parser::Expr, _: i64| Ok(two.to_vec());
    let err = rule.eval(&query, None, 0, 0, 1, &TemplateContext::default()).unwrap_err();
    assert_eq!(err, "exceeded limit of 1 with 2 alerts");
    assert!(rule.active.is_empty());
    let clash = [
        load_sample(3.0),
        Sample {
            labels: Labels::from_pairs([("__name__", "other"), ("instance", "a")]),
            t: 0,
            v: 2.0,
        },
    ];
    let err = eval(&mut rule, 0, &clash).unwrap_err();
    assert!(err.contains("same labelset after applying alert labels"), "{err}");
}

#[test]
fn alerts_are_not_written_before_restore() {
    let mut rule = alerting_rule(0, 0);
    rule.restored = false;
    assert!(eval(&mut rule, 0, &[load_sample(3.0)]).unwrap().is_empty());
    assert_eq!(only_state(&rule), AlertState::Firing);
}

fn group_of(text: &str, restore: bool) -> Group {
    let rule_file = file::parse("g.yml", text, false).unwrap();
    Group::from_spec("g.yml", &rule_file.groups[0], MINUTE, restore).unwrap()
}

#[test]
fn recording_rules_write_stale_markers_for_vanished_series() {
    let mut group = group_of(
        "groups:\n- name: g\n  labels: {team: a}\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n    labels: {team: b}\n",
        false,
    );
    let answers = RefCell::new(vec![
        vec![Sample { labels: Labels::from_pairs([("job", "x")]), t: 0, v: 1.0 }],
        vec![],
    ]);
    let written = RefCell::new(Vec::new());
    let query = |_: &promql_parser::parser::Expr, _: i64| Ok(answers.borrow_mut().remove(0));
    let append = |samples: Vec<(Labels, i64, f64)>| {
        written.borrow_mut().extend(samples);
        Ok(())
    };
    let context = TemplateContext::default();
    group.eval(0, 0, &query, None, &context, &append, MINUTE);
    group.eval(MINUTE, MINUTE, &query, None, &context, &append, MINUTE);
    let written = written.into_inner();
    let expected = Labels::from_pairs([("__name__", "job:up:sum"), ("job", "x"), ("team", "b")]);
    assert_eq!(written.len(), 2);
    assert_eq!((written[0].0.clone(), written[0].1, written[0].2), (expected.clone(), 0, 1.0));
    assert_eq!(written[1].0, expected);
    assert_eq!(written[1].1, MINUTE);
    assert_eq!(written[1].2.to_bits(), STALE_NAN_BITS);
    assert_eq!(group.rules[0].status().health.as_str(), "ok");
}

#[test]
fn query_offset_moves_the_evaluation_back() {
    let mut group = group_of(
        "groups:\n- name: g\n  query_offset: 1m\n  rules:\n  - record: r\n    expr: vector(1)\n",
        false,
    );
    let asked = RefCell::new(Vec::new());
    let query = |_: &promql_parser::parser::Expr, t: i64| {
        asked.borrow_mut().push(t);
        Ok(vec![Sample { labels: Labels::default(), t, v: 1.0 }])
    };
    let written = RefCell::new(Vec::new());
    let append = |samples: Vec<(Labels, i64, f64)>| {
        written.borrow_mut().extend(samples);
        Ok(())
    };
    group.eval(10 * MINUTE, 0, &query, None, &TemplateContext::default(), &append, MINUTE);
    assert_eq!(asked.into_inner(), [9 * MINUTE]);
    assert_eq!(written.into_inner()[0].1, 9 * MINUTE);
}

#[test]
fn a_failing_rule_is_unhealthy_and_the_group_goes_on() {
    let mut group = group_of(
        "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n  - record: b\n    expr: vector(1)\n",
        false,
    );
    let calls = RefCell::new(0);
    let query = |_: &promql_parser::parser::Expr, _: i64| {
        *calls.borrow_mut() += 1;
        if *calls.borrow() == 1 {
            return Err("boom".to_owned());
        }
        Ok(vec![Sample { labels: Labels::default(), t: 0, v: 1.0 }])
    };
    let append = |_: Vec<(Labels, i64, f64)>| Ok(());
    group.eval(0, 0, &query, None, &TemplateContext::default(), &append, MINUTE);
    assert_eq!(group.rules[0].status().last_error.as_deref(), Some("boom"));
    assert_eq!(group.rules[1].status().health.as_str(), "ok");
}

#[test]
fn eval_timestamps_are_aligned_to_the_interval() {
    let group = group_of(
        "groups:\n- name: g\n  interval: 30s\n  rules:\n  - record: r\n    expr: vector(1)\n",
        false,
    );
    let first = group.eval_timestamp(1_000_000_123);
    assert!(first <= 1_000_000_123 && first > 1_000_000_123 - 30_000);
    assert_eq!(group.eval_timestamp(first + 30_000), first + 30_000, "stable phase");
    assert_eq!(group.eval_timestamp(first + 29_999), first);
}

/// Restores the alert of `for: 10m` whose `ALERTS_FOR_STATE` said `active_at_s`, last written
/// at `down_at_ms`, after a restart at `restart_ms`; returns the restored activeAt (ms).
fn restored_active_at(active_at_s: f64, down_at_ms: i64, restart_ms: i64) -> i64 {
    let mut storage = MemStorage::new();
    storage.add(
        Labels::from_pairs([("__name__", "load"), ("instance", "a")]),
        (0..=restart_ms / MINUTE).map(|m| Point { t: m * MINUTE, v: 3.0 }),
    );
    let series = Labels::from_pairs([
        ("__name__", "ALERTS_FOR_STATE"),
        ("alertname", "HighLoad"),
        ("instance", "a"),
        ("severity", "page"),
    ]);
    storage.add(
        series,
        [Point { t: down_at_ms - MINUTE, v: active_at_s }, Point { t: down_at_ms, v: active_at_s }],
    );
    let mut group = group_of(
        "groups:\n- name: g\n  rules:\n  - alert: HighLoad\n    expr: load > 1\n    for: 10m\n    labels: {severity: page}\n",
        true,
    );
    let engine = Engine::default();
    let query =
        |expr: &promql_parser::parser::Expr, t: i64| query_vector(&engine, &storage, expr, t);
    let append = |_: Vec<(Labels, i64, f64)>| Ok(());
    group.eval(restart_ms, restart_ms, &query, None, &TemplateContext::default(), &append, MINUTE);
    assert!(group.should_restore);
    group.restore_for_state(restart_ms, &storage, 60 * MINUTE, 2 * MINUTE);
    assert!(!group.should_restore);
    let Rule::Alerting(rule) = &group.rules[0] else { panic!("alerting rule") };
    assert!(rule.restored);
    rule.active.values().next().expect("the alert").active_at_ms
}

#[test]
fn restore_keeps_the_start_of_an_alert_that_was_firing() {
    // Active at 0, down at 20m (firing since 10m), back at 25m: still active since 0.
    assert_eq!(restored_active_at(0.0, 20 * MINUTE, 25 * MINUTE), 0);
}

#[test]
fn restore_shifts_a_pending_alert_by_the_downtime() {
    // Active at 10m, down at 12m (2m of 10m pending), back at 20m: 8m left, so active at 18m.
    assert_eq!(restored_active_at(600.0, 12 * MINUTE, 20 * MINUTE), 18 * MINUTE);
}

#[test]
fn restore_waits_at_least_the_grace_period() {
    // Active at 10m, down at 19m (1m left < 2m grace), back at 30m: fires at 32m.
    assert_eq!(
        restored_active_at(600.0, 19 * MINUTE, 30 * MINUTE),
        30 * MINUTE + 2 * MINUTE - 10 * MINUTE
    );
}

#[test]
fn restore_ignores_state_older_than_the_outage_tolerance() {
    // Down at 5m, back at 2h: outside the 1h tolerance, the alert starts over at the restart.
    assert_eq!(restored_active_at(0.0, 5 * MINUTE, 120 * MINUTE), 120 * MINUTE);
}

proptest! {
    /// Whatever the sequence of present/absent evaluations, an alert fires exactly when its
    /// series has been present at every evaluation for at least `for`, and ALERTS is written
    /// for exactly the pending and firing alerts.
    #[test]
    fn firing_means_present_for_the_hold_duration(presence in proptest::collection::vec(any::<bool>(), 1..40), hold_minutes in 0i64..5) {
        let mut rule = alerting_rule(hold_minutes * MINUTE, 0);
        let mut present_since: Option<i64> = None;
        for (step, present) in presence.iter().enumerate() {
            let ts = step as i64 * MINUTE;
            let result = if *present { vec![load_sample(2.0)] } else { Vec::new() };
            let output = eval(&mut rule, ts, &result).unwrap();
            present_since = if *present { Some(present_since.unwrap_or(ts)) } else { None };
            let state = rule.active.values().next().map(|a| a.state);
            match present_since {
                Some(since) if ts - since >= hold_minutes * MINUTE => prop_assert_eq!(state, Some(AlertState::Firing)),
                Some(_) => prop_assert_eq!(state, Some(AlertState::Pending)),
                None => prop_assert!(state.is_none() || state == Some(AlertState::Inactive)),
            }
            prop_assert_eq!(output.len(), if *present { 2 } else { 0 });
            prop_assert!(output.iter().all(|s| !is_stale_nan(s.v)));
        }
    }
}
