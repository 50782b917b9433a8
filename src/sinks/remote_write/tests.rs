//! Sender tests against an in-process HTTP receiver that decodes what it gets with Strata's own
//! decoder and answers with scripted statuses.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::*;
use crate::config::{QueueConfig, RemoteWriteTarget};
use crate::ingest::remote_write::decode::{DecodedWrite, Version};
use crate::model::{Labels, Sample};
use crate::sinks::ForwardTarget;

/// One decoded series: its labels as text and its samples.
type SeriesSamples = (String, Vec<Sample>);

#[derive(Default)]
struct Receiver {
    /// Statuses to answer, in order; 204 once exhausted.
    script: Mutex<VecDeque<(u16, Option<&'static str>)>>,
    /// (content-type, per-series label text + samples) of every request, including failed ones.
    requests: Mutex<Vec<(String, Vec<SeriesSamples>)>>,
}

#[allow(clippy::disallowed_methods)] // test receiver: inputs are our own
async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type =
        headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let version = if content_type.contains("v2") { Version::V2 } else { Version::V1 };
    let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
    let mut decoded = DecodedWrite::default();
    decoded.decode(&raw, version).unwrap();
    let series = decoded
        .series
        .iter()
        .map(|s| {
            let labels: Vec<String> = decoded
                .labels_of(&raw, s)
                .unwrap()
                .iter()
                .map(|l| {
                    format!(
                        "{}={}",
                        String::from_utf8_lossy(l.name.get(&raw)),
                        String::from_utf8_lossy(l.value.get(&raw))
                    )
                })
                .collect();
            (
                labels.join(","),
                decoded.samples[s.samples.start as usize..s.samples.end as usize].to_vec(),
            )
        })
        .collect();
    receiver.requests.lock().unwrap().push((content_type, series));
    let next = receiver.script.lock().unwrap().pop_front();
    match next {
        Some((status, retry_after)) => {
            let mut response =
                (StatusCode::from_u16(status).unwrap(), "scripted failure").into_response();
            if let Some(value) = retry_after {
                response.headers_mut().insert("retry-after", value.parse().unwrap());
            }
            response
        }
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn start_receiver(script: Vec<(u16, Option<&'static str>)>) -> (Arc<Receiver>, String) {
    let receiver = Arc::new(Receiver { script: Mutex::new(script.into()), ..Receiver::default() });
    let app = axum::Router::new()
        .route("/write", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/write", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (receiver, url)
}

fn target_config(url: &str, version: u8, queue: QueueConfig) -> RemoteWriteTarget {
    let mut config: RemoteWriteTarget =
        serde_yaml::from_str(&format!("url: {url}\nprotocol_version: {version}")).unwrap();
    config.queue_config = queue;
    config
}

fn fast_queue() -> QueueConfig {
    QueueConfig {
        capacity: 1000,
        shards: 2,
        max_samples_per_send: 10,
        batch_send_deadline: crate::config::PromDuration::from_millis(20),
        min_backoff: crate::config::PromDuration::from_millis(5),
        max_backoff: crate::config::PromDuration::from_millis(20),
        retry_on_http_429: true,
    }
}

fn batch(series: usize, samples_per_series: usize, start_ts: i64) -> MetricBatch {
    let mut batch = MetricBatch::default();
    for s in 0..series {
        let labels = Labels::from_pairs([("__name__", "m"), ("s", format!("{s:03}").as_str())]);
        let samples: Vec<Sample> = (0..samples_per_series)
            .map(|i| Sample { timestamp_ms: start_ts + i as i64, value: i as f64 })
            .collect();
        batch.push(Arc::new(Series::new(labels)), &samples, &[], &[], None, 0);
    }
    batch
}

struct Running {
    target: Target,
    workers: Workers,
    catalog: Catalog,
    _abort: watch::Sender<bool>,
}

fn start(config: &RemoteWriteTarget) -> Running {
    let catalog = Catalog::new();
    let (abort, abort_rx) = watch::channel(false);
    let (target, workers) =
        Target::start(config, "t".into(), NameValidation::Legacy, 1000, &catalog, &abort_rx)
            .unwrap();
    Running { target, workers, catalog, _abort: abort }
}

async fn finish(mut running: Running) -> Catalog {
    running.target.queue_mut().close();
    for handle in running.workers.handles {
        tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap().unwrap();
    }
    running.catalog
}

#[tokio::test]
async fn batches_respect_max_samples_and_keep_series_order() {
    let (receiver, url) = start_receiver(vec![]).await;
    for version in [1u8, 2] {
        receiver.requests.lock().unwrap().clear();
        let running = start(&target_config(&url, version, fast_queue()));
        for round in 0..5 {
            running.target.prepare(&batch(7, 3, round * 10)).unwrap().commit();
        }
        let catalog = finish(running).await;
        let requests = receiver.requests.lock().unwrap();
        let mut per_series: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
        for (content_type, series) in requests.iter() {
            assert_eq!(
                content_type.contains("io.prometheus.write.v2.Request"),
                version == 2,
                "{content_type}"
            );
            let items: usize = series.iter().map(|(_, s)| s.len()).sum();
            assert!(items <= 10, "a request carried {items} samples, over max_samples_per_send");
            for (labels, samples) in series {
                per_series
                    .entry(labels.clone())
                    .or_default()
                    .extend(samples.iter().map(|s| s.timestamp_ms));
            }
        }
        assert_eq!(per_series.len(), 7);
        for (labels, timestamps) in per_series {
            let expected: Vec<i64> = (0..5).flat_map(|r| (0..3).map(move |i| r * 10 + i)).collect();
            assert_eq!(timestamps, expected, "{labels}: order per series must hold (v{version})");
        }
        assert_eq!(catalog.sample_value("strata_forward_samples_sent_total{target=\"t\"}"), 105.0);
        assert_eq!(catalog.sample_value("strata_forward_queue_length_items{target=\"t\"}"), 0.0);
    }
}

#[tokio::test]
async fn retryable_failures_are_retried_and_4xx_dropped() {
    let (receiver, url) =
        start_receiver(vec![(500, None), (429, Some("0")), (503, None), (400, None)]).await;
    let mut queue = fast_queue();
    queue.shards = 1;
    queue.max_samples_per_send = 100;
    let running = start(&target_config(&url, 1, queue));
    running.target.prepare(&batch(2, 2, 0)).unwrap().commit();
    // Wait until the first batch is through (3 failures then 400), then send a second one.
    for _ in 0..200 {
        if receiver.requests.lock().unwrap().len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.target.prepare(&batch(2, 2, 100)).unwrap().commit();
    let catalog = finish(running).await;
    assert_eq!(receiver.requests.lock().unwrap().len(), 5, "3 retries, 1 rejection, 1 success");
    assert_eq!(catalog.sample_value("strata_forward_retries_total{target=\"t\"}"), 3.0);
    assert_eq!(
        catalog
            .sample_value("strata_forward_items_dropped_total{target=\"t\",reason=\"rejected\"}"),
        4.0
    );
    assert_eq!(catalog.sample_value("strata_forward_samples_sent_total{target=\"t\"}"), 4.0);
}

#[tokio::test]
async fn full_queue_refuses_and_frees_capacity_after_sending() {
    // The receiver fails for a while so data piles up in the queue.
    let (_receiver, url) = start_receiver(vec![(503, None); 30]).await;
    let queue = QueueConfig { capacity: 20, shards: 1, max_samples_per_send: 10, ..fast_queue() };
    let running = start(&target_config(&url, 1, queue));
    running.target.prepare(&batch(10, 1, 0)).unwrap().commit();
    running.target.prepare(&batch(10, 1, 1)).unwrap().commit();
    let refused = running.target.prepare(&batch(10, 1, 2));
    assert_eq!(refused.err(), Some(QueueFull { target: "t".into() }));
    // Once the receiver recovers, capacity comes back.
    let mut accepted = false;
    for _ in 0..500 {
        if let Ok(prepared) = running.target.prepare(&batch(10, 1, 2)) {
            prepared.commit();
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(accepted, "capacity never came back");
    let catalog = finish(running).await;
    assert_eq!(catalog.sample_value("strata_forward_samples_sent_total{target=\"t\"}"), 30.0);
    assert!(catalog.sample_value("strata_forward_queue_full_total{target=\"t\"}") >= 1.0);
}

#[tokio::test]
async fn shutdown_deadline_drops_and_counts() {
    let (_receiver, url) = start_receiver(vec![(503, None); 10_000]).await;
    let catalog = Catalog::new();
    let (abort, abort_rx) = watch::channel(false);
    let (mut target, workers) = Target::start(
        &target_config(&url, 1, fast_queue()),
        "t".into(),
        NameValidation::Legacy,
        10,
        &catalog,
        &abort_rx,
    )
    .unwrap();
    target.prepare(&batch(3, 1, 0)).unwrap().commit();
    target.queue_mut().close();
    tokio::time::sleep(Duration::from_millis(50)).await;
    abort.send(true).unwrap();
    for handle in workers.handles {
        tokio::time::timeout(Duration::from_secs(5), handle).await.unwrap().unwrap();
    }
    assert_eq!(
        catalog
            .sample_value("strata_forward_items_dropped_total{target=\"t\",reason=\"shutdown\"}"),
        3.0
    );
}

#[tokio::test]
async fn write_relabel_configs_apply_per_target() {
    let (receiver, url) = start_receiver(vec![]).await;
    let mut config = target_config(&url, 1, fast_queue());
    config.write_relabel_configs = serde_yaml::from_str(
        "[{source_labels: [s], regex: '00[0-4]', action: drop}, {target_label: via, replacement: strata}]",
    )
    .unwrap();
    let running = start(&config);
    running.target.prepare(&batch(10, 1, 0)).unwrap().commit();
    let catalog = finish(running).await;
    let requests = receiver.requests.lock().unwrap();
    let mut labels: Vec<String> =
        requests.iter().flat_map(|(_, s)| s.iter().map(|(l, _)| l.clone())).collect();
    labels.sort();
    assert_eq!(labels.len(), 5);
    assert_eq!(labels[0], "__name__=m,s=005,via=strata");
    assert_eq!(
        catalog.sample_value("strata_forward_items_dropped_total{target=\"t\",reason=\"relabel\"}"),
        5.0
    );
}
