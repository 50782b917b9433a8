//! The manager end to end over `MemStorage`: load and reload, evaluation writing back into the
//! storage the engine reads, notifications, and the API bodies.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, UNIX_EPOCH};

use crate::config::units::PromDuration;
use crate::model::labels::Labels;
use crate::notifier::{Alert, SendAlerts};
use crate::promql::value::is_stale_nan;
use crate::promql::{Engine, MemStorage, Point, QueryError, Queryable, SelectHints, Series};
use crate::storage::head::LabelMatcher;

use super::api::RulesQuery;
use super::manager::{generator_url, Manager, RulesConfig};
use super::SampleSink;

const MINUTE: i64 = 60_000;

#[derive(Default)]
struct Store(RwLock<MemStorage>);

impl Queryable for Store {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        hints: &SelectHints,
    ) -> Result<Vec<Series>, QueryError> {
        self.0.read().unwrap().select(matchers, hints)
    }

    fn series(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, QueryError> {
        self.0.read().unwrap().series(matchers, start_ms, end_ms)
    }
}

impl SampleSink for Store {
    fn append(&self, samples: Vec<(Labels, i64, f64)>) -> Result<(), String> {
        let mut storage = self.0.write().unwrap();
        for (labels, t, v) in samples {
            storage.add(labels, [Point { t, v }]);
        }
        Ok(())
    }
}

#[derive(Default)]
struct Outbox(Mutex<Vec<Alert>>);

impl SendAlerts for Outbox {
    fn send(&self, alerts: Vec<Alert>) {
        self.0.lock().unwrap().extend(alerts);
    }
}

struct Fixture {
    manager: Manager,
    store: Arc<Store>,
    outbox: Arc<Outbox>,
    dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let store = Arc::new(Store::default());
    {
        let mut storage = store.0.write().unwrap();
        let up = Labels::from_pairs([("__name__", "up"), ("instance", "a:9100"), ("job", "node")]);
        storage.add(up, (0..=30).map(|m| Point { t: m * MINUTE, v: 0.0 }));
    }
    let outbox = Arc::new(Outbox::default());
    let config = RulesConfig {
        external_labels: [("cluster".to_owned(), "eu1".to_owned())].into(),
        external_url: "http://strata.example:9700".to_owned(),
        resend_delay: PromDuration::from_secs(60),
        ..RulesConfig::default()
    };
    let manager =
        Manager::new(config, Engine::default(), store.clone(), store.clone(), outbox.clone());
    Fixture { manager, store, outbox, dir: tempfile::tempdir().unwrap() }
}

const RULES: &str = r#"groups:
- name: node
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
  - alert: NodeDown
    expr: up == 0
    for: 2m
    labels:
      severity: page
    annotations:
      summary: '{{ $labels.instance }} down ({{ $externalLabels.cluster }})'
"#;

impl Fixture {
    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn evaluate_all(&self, ts: i64) {
        for group in self.manager.groups() {
            self.manager.evaluate(&group, ts);
        }
    }
}

#[test]
fn evaluates_records_alerts_and_notifies_with_external_labels() {
    let f = fixture();
    let path = f.write("node.yml", RULES);
    f.manager.load(&[path]).unwrap();
    for minute in 0..=3 {
        f.evaluate_all(minute * MINUTE);
    }
    let storage = f.store.0.read().unwrap();
    let recorded =
        storage.all().iter().find(|s| s.labels.metric_name() == Some("job:up:sum")).unwrap();
    assert_eq!(recorded.labels, Labels::from_pairs([("__name__", "job:up:sum"), ("job", "node")]));
    assert_eq!(recorded.points.len(), 4);
    let firing = storage
        .all()
        .iter()
        .find(|s| {
            s.labels.metric_name() == Some("ALERTS") && s.labels.get("alertstate") == Some("firing")
        })
        .expect("ALERTS firing written");
    assert_eq!(firing.labels.get("cluster"), None, "external labels are not stored");
    drop(storage);

    let sent = f.outbox.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "sent once when it fired at 2m (resend delay not reached at 3m)");
    let alert = &sent[0];
    assert_eq!(alert.labels.get("cluster"), Some("eu1"));
    assert_eq!(alert.labels.get("alertname"), Some("NodeDown"));
    assert_eq!(alert.annotations.get("summary"), Some("a:9100 down (eu1)"));
    assert_eq!(alert.starts_at, UNIX_EPOCH + Duration::from_secs(120));
    assert_eq!(alert.ends_at, UNIX_EPOCH + Duration::from_secs(120 + 4 * 60));
    assert_eq!(alert.generator_url, generator_url("http://strata.example:9700", "up == 0"));
    assert_eq!(
        alert.generator_url,
        "http://strata.example:9700/graph?g0.expr=up+%3D%3D+0&g0.tab=1"
    );
}

#[test]
fn a_bad_reload_keeps_the_old_rules_and_says_why() {
    let f = fixture();
    let good = f.write("node.yml", RULES);
    f.manager.load(std::slice::from_ref(&good)).unwrap();
    f.evaluate_all(0);
    let bad = f.write("bad.yml", "groups:\n- name: x\n  rules:\n  - record: r\n    expr: 'up +'\n");
    let errors = f.manager.load(&[good.clone(), bad]).unwrap_err();
    assert!(errors[0].contains("could not parse expression"), "{errors:?}");
    let groups = f.manager.groups();
    assert_eq!(groups.len(), 1);
    let group = groups[0].lock().unwrap();
    assert_eq!(group.name, "node");
    assert_eq!(group.rules.len(), 2);
    assert_eq!(group.rules[0].status().health.as_str(), "ok", "state of the old rules kept");
}

#[test]
fn reload_keeps_alert_state_and_marks_removed_groups_stale() {
    let f = fixture();
    let node = f.write("node.yml", RULES);
    let extra = f.write(
        "extra.yml",
        "groups:\n- name: extra\n  rules:\n  - record: one\n    expr: vector(1)\n",
    );
    f.manager.load(&[node.clone(), extra]).unwrap();
    f.evaluate_all(0);
    f.evaluate_all(MINUTE);
    f.manager.load(std::slice::from_ref(&node)).unwrap();
    f.evaluate_all(2 * MINUTE);
    let alerts = f.manager.alerts_json();
    let list = alerts["data"]["alerts"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["state"], "firing", "activeAt survived the reload: firing at 2m");
    assert_eq!(list[0]["activeAt"], "1970-01-01T00:00:00Z");
    let storage = f.store.0.read().unwrap();
    let one = storage.all().iter().find(|s| s.labels.metric_name() == Some("one")).unwrap();
    assert!(is_stale_nan(one.points.last().unwrap().v), "removed group's series marked stale");
}

#[test]
fn api_bodies_have_prometheus_shape() {
    let f = fixture();
    let path = f.write("node.yml", RULES);
    f.manager.load(std::slice::from_ref(&path)).unwrap();
    f.evaluate_all(0);
    let body = f.manager.rules_json(&RulesQuery::default()).unwrap();
    assert_eq!(body["status"], "success");
    let group = &body["data"]["groups"][0];
    assert_eq!(group["name"], "node");
    assert_eq!(group["file"], path.as_str());
    assert_eq!(group["interval"], 60.0);
    let rules = group["rules"].as_array().unwrap();
    assert_eq!(rules[0]["type"], "recording");
    assert_eq!(rules[0]["health"], "ok");
    assert!(rules[0].get("lastError").is_none());
    assert!(rules[0].get("labels").is_none());
    assert_eq!(rules[1]["type"], "alerting");
    assert_eq!(rules[1]["state"], "pending");
    assert_eq!(rules[1]["duration"], 120.0);
    assert_eq!(rules[1]["labels"]["severity"], "page");
    assert_eq!(rules[1]["alerts"][0]["value"], "0e+00");
    assert_eq!(rules[1]["alerts"][0]["labels"]["instance"], "a:9100");

    let only_alerts = f
        .manager
        .rules_json(&RulesQuery {
            kind: Some("alert".into()),
            exclude_alerts: true,
            ..RulesQuery::default()
        })
        .unwrap();
    let rules = only_alerts["data"]["groups"][0]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["alerts"].as_array().unwrap().len(), 0);
    let none = f
        .manager
        .rules_json(&RulesQuery { group_names: vec!["other".into()], ..RulesQuery::default() })
        .unwrap();
    assert_eq!(none["data"]["groups"].as_array().unwrap().len(), 0);
    assert!(f
        .manager
        .rules_json(&RulesQuery { kind: Some("bogus".into()), ..RulesQuery::default() })
        .is_err());
}

#[test]
fn config_validation_names_the_bad_value() {
    let config =
        RulesConfig { evaluation_interval: PromDuration::from_secs(0), ..RulesConfig::default() };
    assert_eq!(
        config.validate("rules").unwrap_err(),
        "rules.evaluation_interval: must be greater than 0"
    );
    let config = RulesConfig { external_url: "not a url".into(), ..RulesConfig::default() };
    assert!(config.validate("rules").unwrap_err().starts_with("rules.external_url: \"not a url\""));
    let parsed: RulesConfig =
        serde_yaml::from_str("rule_files: [a.yml]\nresend_delay: 30s\n").unwrap();
    assert_eq!(parsed.resend_delay, PromDuration::from_secs(30));
    assert_eq!(parsed.for_grace_period, PromDuration::from_secs(600));
    assert!(serde_yaml::from_str::<RulesConfig>("bogus: 1\n").is_err());
}

#[tokio::test]
async fn run_returns_on_shutdown() {
    let f = fixture();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let manager = f.manager.clone();
    let task = tokio::spawn(async move { manager.run(stopped).await });
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("run stopped").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_evaluates_groups_on_their_interval() {
    let f = fixture();
    let path = f.write("fast.yml", "groups:\n- name: fast\n  interval: 100ms\n  rules:\n  - record: one\n    expr: vector(1)\n");
    f.manager.load(&[path]).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let manager = f.manager.clone();
    let task = tokio::spawn(async move { manager.run(stopped).await });
    let evaluated = async {
        loop {
            let points = {
                let storage = f.store.0.read().unwrap();
                storage
                    .all()
                    .iter()
                    .find(|s| s.labels.metric_name() == Some("one"))
                    .map_or(0, |s| s.points.len())
            };
            if points >= 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), evaluated).await.expect("two evaluations");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("run stopped").unwrap();
    let groups = f.manager.groups();
    let group = groups[0].lock().unwrap();
    assert_eq!(group.rules[0].status().health.as_str(), "ok");
    assert!(group.last_evaluation_ms > 0);
}
