//! Loki sink tests against an in-process push receiver that decodes what it gets with Strata's
//! own Loki ingest and answers with scripted statuses.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::*;
use crate::config::{LokiIngestConfig, QueueConfig};
use crate::ingest::loki::LokiIngest;
use crate::model::{Label, Labels, LogEntry};

#[derive(Default)]
struct Record {
    script: Mutex<VecDeque<u16>>,
    /// (tenant, selector, line) of every entry received, including failed attempts.
    entries: Mutex<Vec<(String, String, String)>>,
    requests: Mutex<usize>,
}

struct Receiver {
    record: Arc<Record>,
    ingest: LokiIngest,
}

async fn receive(
    axum::extract::State(receiver): axum::extract::State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let tenant: Tenant =
        headers.get("x-scope-orgid").and_then(|v| v.to_str().ok()).unwrap_or("").into();
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
    let now_ns =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
            as i64;
    let received = receiver.ingest.receive(&tenant, content_type, None, body, now_ns).unwrap();
    assert_eq!(received.rejection_message(), None);
    let record = &receiver.record;
    *record.requests.lock().unwrap() += 1;
    for stream in &received.batch.streams {
        for entry in &stream.entries {
            record.entries.lock().unwrap().push((
                tenant.to_string(),
                stream.stream.selector.to_string(),
                String::from_utf8_lossy(&entry.line).into_owned(),
            ));
        }
    }
    match record.script.lock().unwrap().pop_front() {
        Some(status) => StatusCode::from_u16(status).unwrap().into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn start_receiver(script: Vec<u16>) -> (Arc<Record>, String) {
    let record = Arc::new(Record { script: Mutex::new(script.into()), ..Record::default() });
    let config = LokiIngestConfig { reject_old_samples: false, ..LokiIngestConfig::default() };
    let receiver = Arc::new(Receiver {
        record: record.clone(),
        ingest: LokiIngest::new(&config, &Catalog::new()).unwrap(),
    });
    let app = axum::Router::new()
        .route("/loki/api/v1/push", axum::routing::post(receive))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/loki/api/v1/push", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (record, url)
}

fn target_config(url: &str, extra: &str) -> LokiTarget {
    let mut config: LokiTarget = serde_yaml::from_str(&format!("url: {url}\n{extra}")).unwrap();
    config.queue_config = QueueConfig {
        capacity: 1000,
        shards: 2,
        max_samples_per_send: 4,
        batch_send_deadline: crate::config::PromDuration::from_millis(20),
        min_backoff: crate::config::PromDuration::from_millis(5),
        max_backoff: crate::config::PromDuration::from_millis(20),
        retry_on_http_429: true,
    };
    config
}

fn batch(tenant: &str, streams: usize, lines: usize) -> LogBatch {
    let mut batch = LogBatch::new(tenant.into());
    for s in 0..streams {
        let labels = Labels::from_pairs([("app", format!("app{s}").as_str()), ("env", "prod")]);
        let entries = (0..lines)
            .map(|l| LogEntry {
                timestamp_ns: 1_700_000_000_000_000_000 + l as i64,
                line: Bytes::from(format!("stream {s} line {l}")),
                structured_metadata: vec![Label::new("trace_id", "abc")],
            })
            .collect();
        batch.streams.push(StreamEntries { stream: Arc::new(Stream::new(labels)), entries });
    }
    batch
}

async fn run(config: &LokiTarget, batches: &[LogBatch]) -> Catalog {
    let catalog = Catalog::new();
    let (_abort, abort_rx) = watch::channel(false);
    let (mut target, workers) =
        Target::start(config, "t".into(), 100, &catalog, &abort_rx).unwrap();
    for batch in batches {
        target.prepare(batch).unwrap().commit();
    }
    target.queue_mut().close();
    for handle in workers.handles {
        tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap().unwrap();
    }
    catalog
}

#[tokio::test]
async fn every_entry_arrives_in_order_per_stream_with_its_tenant() {
    let (record, url) = start_receiver(vec![]).await;
    let catalog =
        run(&target_config(&url, ""), &[batch("team-a", 3, 5), batch("team-b", 1, 2)]).await;
    let entries = record.entries.lock().unwrap().clone();
    assert_eq!(entries.len(), 17);
    for s in 0..3 {
        let selector = format!("{{app=\"app{s}\", env=\"prod\"}}");
        let lines: Vec<&str> = entries
            .iter()
            .filter(|(tenant, sel, _)| tenant == "team-a" && *sel == selector)
            .map(|(_, _, line)| line.as_str())
            .collect();
        let expected: Vec<String> = (0..5).map(|l| format!("stream {s} line {l}")).collect();
        assert_eq!(lines, expected, "order within {selector}");
    }
    assert_eq!(entries.iter().filter(|(tenant, _, _)| tenant == "team-b").count(), 2);
    // max_samples_per_send = 4 entries per push.
    assert!(*record.requests.lock().unwrap() >= 5);
    assert_eq!(catalog.sample_value("strata_forward_log_entries_sent_total{target=\"t\"}"), 17.0);
}

#[tokio::test]
async fn relabeling_tenant_override_retries_and_rejections() {
    let (record, url) = start_receiver(vec![503, 429]).await;
    let extra = "tenant_id: central\nrelabel_configs:\n  - source_labels: [app]\n    regex: app0\n    action: drop\n  - target_label: cluster\n    replacement: eu1\n";
    let catalog = run(&target_config(&url, extra), &[batch("team-a", 2, 3)]).await;
    let entries = record.entries.lock().unwrap().clone();
    assert!(entries.iter().all(|(tenant, selector, _)| tenant == "central"
        && selector == "{app=\"app1\", cluster=\"eu1\", env=\"prod\"}"));
    assert_eq!(catalog.sample_value("strata_forward_log_entries_sent_total{target=\"t\"}"), 3.0);
    assert_eq!(
        catalog.sample_value("strata_forward_items_dropped_total{target=\"t\",reason=\"relabel\"}"),
        3.0
    );
    assert_eq!(catalog.sample_value("strata_forward_retries_total{target=\"t\"}"), 2.0);

    let (_record, url) = start_receiver(vec![400]).await;
    let catalog = run(&target_config(&url, ""), &[batch("team-a", 1, 3)]).await;
    assert_eq!(
        catalog
            .sample_value("strata_forward_items_dropped_total{target=\"t\",reason=\"rejected\"}"),
        3.0
    );
}

#[tokio::test]
async fn a_label_name_loki_cannot_parse_drops_the_stream_not_the_push() {
    let (record, url) = start_receiver(vec![]).await;
    // `k8s_` maps to an empty label name, which Loki cannot parse.
    let extra = "relabel_configs:\n  - regex: k8s_(.*)\n    action: labelmap\n";
    let mut input = batch("t", 1, 2);
    let labels = Labels::from_pairs([("app", "a"), ("k8s_", "x")]);
    input.streams[0].stream = Arc::new(Stream::new(labels));
    let catalog = run(&target_config(&url, extra), &[input]).await;
    assert!(record.entries.lock().unwrap().is_empty());
    assert_eq!(
        catalog.sample_value("strata_forward_items_dropped_total{target=\"t\",reason=\"relabel\"}"),
        2.0
    );
}
