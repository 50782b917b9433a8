//! The notifier against fake Alertmanagers on loopback: batching, fan-out, retries, the
//! bounded queue. (`tests/alertmanager.rs` runs it against the real Alertmanager.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use tokio::sync::watch;

use super::*;

/// What a fake Alertmanager received, and how it answers.
#[derive(Default)]
struct Fake {
    batches: Mutex<Vec<Vec<serde_json::Value>>>,
    requests: AtomicUsize,
    /// Answer this status to the first `fail_first` requests.
    fail_first: usize,
    fail_status: u16,
}

impl Fake {
    fn alerts(&self) -> Vec<serde_json::Value> {
        self.batches.lock().unwrap().iter().flatten().cloned().collect()
    }
}

async fn receive(State(fake): State<Arc<Fake>>, body: Bytes) -> StatusCode {
    let n = fake.requests.fetch_add(1, Ordering::SeqCst);
    if n < fake.fail_first {
        return StatusCode::from_u16(fake.fail_status).unwrap();
    }
    let batch: Vec<serde_json::Value> = serde_json::from_slice(&body).expect("json array");
    fake.batches.lock().unwrap().push(batch);
    StatusCode::OK
}

async fn start_fake(fake: Fake) -> (Arc<Fake>, String) {
    let fake = Arc::new(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/api/v2/alerts", post(receive)).with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (fake, format!("http://{address}"))
}

fn config(urls: &[String], capacity: usize) -> AlertingConfig {
    AlertingConfig {
        alertmanagers: vec![AlertmanagerConfig {
            urls: urls.to_vec(),
            static_configs: Vec::new(),
            scheme: "http".into(),
            path_prefix: String::new(),
            timeout: crate::config::units::PromDuration::from_secs(5),
            api_version: "v2".into(),
        }],
        queue_capacity: capacity,
        max_batch_size: 64,
        alert_relabel_configs: Vec::new(),
    }
}

fn alert(i: usize) -> Alert {
    Alert {
        labels: Labels::from_pairs([("alertname", "Test"), ("i", i.to_string().as_str())]),
        annotations: Labels::default(),
        starts_at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        ends_at: UNIX_EPOCH,
        generator_url: String::new(),
    }
}

fn notifier(config: &AlertingConfig) -> Notifier {
    let metrics = NotifierMetrics::unregistered(config.endpoint_urls().len());
    Notifier::new(config, Labels::default(), metrics).unwrap()
}

/// Polls `done` every 20 ms for at most 10 s.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn batches_of_64_reach_every_alertmanager() {
    let (a, url_a) = start_fake(Fake::default()).await;
    let (b, url_b) = start_fake(Fake::default()).await;
    let config = config(&[url_a, url_b], 1000);
    let notifier = notifier(&config);
    notifier.send((0..100).map(alert).collect());
    let (stop_tx, stop) = watch::channel(false);
    let task = tokio::spawn(notifier.clone().run(stop));
    eventually("100 alerts at both", || a.alerts().len() == 100 && b.alerts().len() == 100).await;
    let sizes: Vec<usize> = a.batches.lock().unwrap().iter().map(Vec::len).collect();
    assert_eq!(sizes, [64, 36]);
    assert_eq!(a.alerts()[99]["labels"]["i"], "99");
    assert_eq!(notifier.shared.metrics.sent[0].get(), 100);
    assert_eq!(notifier.shared.metrics.sent[1].get(), 100);
    assert_eq!(notifier.shared.metrics.dropped.get(), 0);
    assert_eq!(notifier.queue_len(), 0);
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest() {
    let (fake, url) = start_fake(Fake::default()).await;
    let notifier = notifier(&config(&[url], 3));
    notifier.send(vec![alert(0), alert(1)]);
    notifier.send(vec![alert(2), alert(3)]);
    assert_eq!(notifier.queue_len(), 3);
    assert_eq!(notifier.shared.metrics.dropped.get(), 1);
    notifier.send((4..10).map(alert).collect());
    assert_eq!(notifier.shared.metrics.dropped.get(), 7);
    let (_stop_tx, stop) = watch::channel(false);
    tokio::spawn(notifier.clone().run(stop));
    eventually("3 alerts", || fake.alerts().len() == 3).await;
    let kept: Vec<String> =
        fake.alerts().iter().map(|a| a["labels"]["i"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kept, ["7", "8", "9"]);
}

#[tokio::test]
async fn server_errors_are_retried_client_errors_are_not() {
    let (flaky, flaky_url) =
        start_fake(Fake { fail_first: 2, fail_status: 503, ..Fake::default() }).await;
    let (rejecting, rejecting_url) =
        start_fake(Fake { fail_first: usize::MAX, fail_status: 400, ..Fake::default() }).await;
    let notifier = notifier(&config(&[flaky_url, rejecting_url], 100));
    let (_stop_tx, stop) = watch::channel(false);
    tokio::spawn(notifier.clone().run(stop));
    notifier.send(vec![alert(1)]);
    eventually("the alert after two 503s", || flaky.alerts().len() == 1).await;
    eventually("the rejection counted", || notifier.shared.metrics.errors[1].get() == 1).await;
    assert_eq!(flaky.requests.load(Ordering::SeqCst), 3);
    assert_eq!(rejecting.requests.load(Ordering::SeqCst), 1, "a 400 is not retried");
    assert_eq!(notifier.shared.metrics.sent[0].get(), 1);
    assert_eq!(notifier.shared.metrics.errors[0].get(), 0);
    // One Alertmanager took the batch: nothing dropped.
    assert_eq!(notifier.shared.metrics.dropped.get(), 0);
}

#[tokio::test]
async fn a_batch_nobody_takes_is_dropped_and_external_labels_are_added() {
    let (fake, url) = start_fake(Fake { fail_first: 1, fail_status: 422, ..Fake::default() }).await;
    let config = config(&[url], 100);
    let metrics = NotifierMetrics::unregistered(1);
    let external = Labels::from_pairs([("cluster", "eu"), ("i", "overridden?")]);
    let notifier = Notifier::new(&config, external, metrics).unwrap();
    let (_stop_tx, stop) = watch::channel(false);
    tokio::spawn(notifier.clone().run(stop));
    notifier.send(vec![alert(1)]);
    eventually("the drop counted", || notifier.shared.metrics.dropped.get() == 1).await;
    notifier.send(vec![alert(2)]);
    eventually("the second alert", || fake.alerts().len() == 1).await;
    let labels = &fake.alerts()[0]["labels"];
    assert_eq!(labels["cluster"], "eu");
    assert_eq!(labels["i"], "2", "an alert's own label wins over an external one");
}

#[tokio::test]
async fn stopping_sends_what_is_queued() {
    let (fake, url) = start_fake(Fake::default()).await;
    let notifier = notifier(&config(&[url], 100));
    let (stop_tx, stop) = watch::channel(true);
    notifier.send(vec![alert(1), alert(2)]);
    tokio::time::timeout(Duration::from_secs(5), notifier.clone().run(stop)).await.unwrap();
    drop(stop_tx);
    assert_eq!(fake.alerts().len(), 2);
}

#[tokio::test]
async fn alert_relabel_configs_rewrite_and_drop() {
    let (fake, url) = start_fake(Fake::default()).await;
    let mut config = config(&[url], 100);
    config.alert_relabel_configs = serde_yaml::from_str(
        "[{source_labels: [i], regex: '1', action: drop}, {target_label: team, replacement: sre}]",
    )
    .unwrap();
    let notifier = notifier(&config);
    let (_stop_tx, stop) = watch::channel(false);
    tokio::spawn(notifier.clone().run(stop));
    notifier.send(vec![alert(1), alert(2)]);
    eventually("the kept alert", || fake.alerts().len() == 1).await;
    let labels = &fake.alerts()[0]["labels"];
    assert_eq!((labels["i"].as_str(), labels["team"].as_str()), (Some("2"), Some("sre")));
    assert_eq!(fake.requests.load(Ordering::SeqCst), 1);
}
