//! Black-box tests of the remote-write endpoint over HTTP against the `strata` binary: bad input
//! gets the right status and a message saying what and where while the daemon keeps serving;
//! 2.0 in and out with everything a series can carry; backpressure when a target is down.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{free_port, http_client, spawn_strata, wait_http_ok, wait_until, ChildGuard};
use strata::ingest::remote_write::{DecodedWrite, Version, CONTENT_TYPE_V2};
use strata::model::metrics::{BucketSpan, HistogramCount};
use strata::model::{
    Exemplar, Histogram, Labels, MetricBatch, MetricType, Sample, Series, SeriesMetadata,
    STALE_NAN_BITS,
};
use strata::sinks::remote_write::encode::{encode_v1, encode_v2, EncodeOptions};

const OPTIONS: EncodeOptions = EncodeOptions { send_exemplars: true, send_native_histograms: true };
const WAIT: Duration = Duration::from_secs(30);

fn snappy(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).unwrap()
}

fn body(batch: &MetricBatch, version: Version) -> Vec<u8> {
    let mut raw = Vec::new();
    match version {
        Version::V1 => encode_v1(std::slice::from_ref(batch), OPTIONS, &mut raw),
        Version::V2 => encode_v2(std::slice::from_ref(batch), OPTIONS, &mut raw),
    }
    snappy(&raw)
}

fn simple_batch(count: usize, ts: i64) -> MetricBatch {
    let mut batch = MetricBatch::default();
    for i in 0..count {
        let labels =
            Labels::from_pairs([("__name__", "test_metric"), ("i", i.to_string().as_str())]);
        batch.push(
            Arc::new(Series::new(labels)),
            &[Sample { timestamp_ms: ts, value: i as f64 }],
            &[],
            &[],
            None,
            0,
        );
    }
    batch
}

/// Raw 1.0 body whose labels are written as given (possibly invalid).
fn raw_v1(series: &[&[(&str, &str)]]) -> Vec<u8> {
    use strata::model::wire::{put_bytes, put_key, put_varint, FIXED64, VARINT};
    let mut out = Vec::new();
    for labels in series {
        let mut ts = Vec::new();
        for (name, value) in *labels {
            strata::model::metrics::encode_label(&mut ts, name.as_bytes(), value.as_bytes());
        }
        let mut sample = Vec::new();
        put_key(&mut sample, 1, FIXED64);
        sample.extend_from_slice(&2.0f64.to_bits().to_le_bytes());
        put_key(&mut sample, 2, VARINT);
        put_varint(&mut sample, 1_700_000_000_000);
        put_bytes(&mut ts, 2, &sample);
        put_bytes(&mut out, 1, &ts);
    }
    snappy(&out)
}

struct Strata {
    guard: ChildGuard,
    _dir: tempfile::TempDir,
    base: String,
}

async fn start_strata(extra: &str) -> Strata {
    let port = free_port();
    let (guard, dir) =
        spawn_strata(&format!("server:\n  http_listen_address: 127.0.0.1:{port}\n{extra}"));
    let base = format!("http://127.0.0.1:{port}");
    wait_http_ok(&guard, &format!("{base}/-/ready"), WAIT).await;
    Strata { guard, _dir: dir, base }
}

async fn post(
    base: &str,
    content_type: Option<&str>,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, HeaderMap, String) {
    let mut request = http_client().post(format!("{base}/api/v1/write")).body(body);
    if let Some(value) = content_type {
        request = request.header("content-type", value);
    }
    if let Some(value) = encoding {
        request = request.header("content-encoding", value);
    }
    let response = request.send().await.expect("strata answers");
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

async fn assert_still_serving(strata: &Strata, ts: i64) {
    strata.guard.assert_running();
    let (status, _, text) = post(
        &strata.base,
        Some("application/x-protobuf"),
        Some("snappy"),
        body(&simple_batch(3, ts), Version::V1),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "valid request after bad input: {text}");
    let ready = http_client().get(format!("{}/-/ready", strata.base)).send().await.unwrap();
    assert!(ready.status().is_success());
}

/// (name, content-type, content-encoding, body, expected status, expected text in the body)
type BadInputCase =
    (&'static str, Option<&'static str>, Option<&'static str>, Vec<u8>, StatusCode, &'static str);

#[tokio::test]
async fn bad_input_gets_the_right_status_and_the_daemon_keeps_serving() {
    let strata = start_strata(
        "ingest:\n  remote_write:\n    max_body_size: 64KiB\n    max_decoded_size: 1MiB\n",
    )
    .await;
    let valid = body(&simple_batch(10, 1_000), Version::V1);
    let mut bomb = vec![0x80, 0x80, 0x80, 0x80, 0x08]; // snappy header claiming 2 GiB
    bomb.extend_from_slice(&[0u8; 16]);
    let v2_bad_ref = {
        use strata::model::wire::put_bytes;
        let mut raw = Vec::new();
        put_bytes(&mut raw, 4, b"");
        put_bytes(&mut raw, 5, &[0x0a, 0x02, 0x05, 0x06]);
        snappy(&raw)
    };
    let proto = Some("application/x-protobuf");
    let cases: Vec<BadInputCase> = vec![
        (
            "truncated snappy",
            proto,
            Some("snappy"),
            valid[..valid.len() / 2].to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid snappy block",
        ),
        (
            "snappy bomb header",
            proto,
            Some("snappy"),
            bomb,
            StatusCode::PAYLOAD_TOO_LARGE,
            "snappy header claims a decoded size of 2147483648 bytes",
        ),
        (
            "invalid protobuf",
            proto,
            Some("snappy"),
            snappy(&[0x0a, 0x7f, 0x01, 0x02]),
            StatusCode::BAD_REQUEST,
            "cannot decode prometheus.WriteRequest: invalid protobuf at byte",
        ),
        (
            "bad label name",
            proto,
            Some("snappy"),
            raw_v1(&[&[("__name__", "ok_metric")], &[("__name__", "bad"), ("bad-name", "x")]]),
            StatusCode::BAD_REQUEST,
            "series bad{bad-name=\"x\"}: invalid label name \"bad-name\"",
        ),
        (
            "missing metric name",
            proto,
            Some("snappy"),
            raw_v1(&[&[("job", "x")]]),
            StatusCode::BAD_REQUEST,
            "missing metric name",
        ),
        (
            "duplicate label",
            proto,
            Some("snappy"),
            raw_v1(&[&[("__name__", "m"), ("a", "1"), ("a", "2")]]),
            StatusCode::BAD_REQUEST,
            "duplicate label name \"a\"",
        ),
        (
            "json content type",
            Some("application/json"),
            Some("snappy"),
            valid.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported content-type \"application/json\"",
        ),
        (
            "unknown proto",
            Some("application/x-protobuf;proto=foo.Bar"),
            Some("snappy"),
            valid.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "proto=io.prometheus.write.v2.Request",
        ),
        (
            "gzip encoding",
            proto,
            Some("gzip"),
            valid.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-encoding \"gzip\"",
        ),
        (
            "body too large",
            proto,
            Some("snappy"),
            vec![0u8; 100 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than the limit of 65536 bytes",
        ),
        (
            "v2 bad symbol reference",
            Some(CONTENT_TYPE_V2),
            Some("snappy"),
            v2_bad_ref,
            StatusCode::BAD_REQUEST,
            "symbol reference 5 is out of range",
        ),
    ];
    for (index, (name, content_type, encoding, payload, expected_status, expected_text)) in
        cases.into_iter().enumerate()
    {
        let (status, _, text) = post(&strata.base, content_type, encoding, payload).await;
        assert_eq!(status, expected_status, "{name}: {text}");
        assert!(text.contains(expected_text), "{name}: expected {expected_text:?} in {text:?}");
        assert!(text.len() < 2048, "{name}: error body too long");
        assert_still_serving(&strata, 10_000 + index as i64).await;
    }
    let wrong_method =
        http_client().get(format!("{}/api/v1/write", strata.base)).send().await.unwrap();
    assert_eq!(wrong_method.status().as_u16(), 405);
    // The valid series of the partially bad request were accepted and counted as such.
    let metrics = common::try_scrape(&strata.base).await.unwrap();
    let invalid = common::sum_samples(
        &metrics,
        "strata_ingest_items_dropped_total",
        &[("reason", "invalid")],
    )
    .unwrap();
    assert_eq!(invalid, 3.0, "one sample each from the bad-label, no-name and duplicate series");
    let status_400 =
        common::sum_samples(&metrics, "strata_ingest_requests_total", &[("code", "400")]).unwrap();
    assert!(status_400 >= 6.0);
}

/// What the final receiver of a chain got.
#[derive(Default)]
struct Received {
    requests: Mutex<Vec<(String, Vec<u8>)>>,
    fail: AtomicBool,
}

#[allow(clippy::disallowed_methods)] // test receiver: inputs are strata's own output
async fn receive(
    State(state): State<Arc<Received>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if state.fail.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let content_type =
        headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
    state.requests.lock().unwrap().push((content_type, raw));
    StatusCode::NO_CONTENT
}

async fn start_receiver() -> (Arc<Received>, String) {
    let state = Arc::new(Received::default());
    let app = axum::Router::new()
        .route("/api/v1/write", axum::routing::post(receive))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/v1/write", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (state, url)
}

fn rich_batch() -> MetricBatch {
    let mut batch = MetricBatch::default();
    let counter = Arc::new(Series::new(Labels::from_pairs([
        ("__name__", "http_requests_total"),
        ("code", "200"),
        ("job", "api"),
    ])));
    let hist = Arc::new(Series::new(Labels::from_pairs([
        ("__name__", "rpc_latency_seconds"),
        ("job", "api"),
    ])));
    batch.push(
        counter,
        &[
            Sample { timestamp_ms: 1_000, value: 41.0 },
            Sample { timestamp_ms: 2_000, value: f64::from_bits(STALE_NAN_BITS) },
        ],
        &[],
        &[Exemplar {
            labels: Labels::from_pairs([("trace_id", "4bf92f3577b34da6")]),
            value: 0.12,
            timestamp_ms: 1_000,
        }],
        Some(Arc::new(SeriesMetadata {
            metric_type: MetricType::Counter,
            help: "Requests served.".into(),
            unit: String::new(),
        })),
        500,
    );
    batch.push(
        hist,
        &[],
        &[Histogram {
            count: Some(HistogramCount::Float(6.5)),
            sum: 3.25,
            schema: 2,
            zero_threshold: 1e-128,
            positive_spans: vec![BucketSpan { offset: -3, length: 3 }],
            positive_counts: vec![1.0, 2.5, 3.0],
            timestamp: 1_000,
            ..Histogram::default()
        }],
        &[],
        Some(Arc::new(SeriesMetadata {
            metric_type: MetricType::Histogram,
            help: "Latency.".into(),
            unit: "seconds".into(),
        })),
        0,
    );
    batch
}

#[tokio::test]
async fn v2_in_v2_relay_v1_out_carries_everything() {
    let (final_receiver, url) = start_receiver().await;
    let queue = "queue_config: {batch_send_deadline: 100ms}";
    let second = start_strata(&format!("forward:\n  remote_write:\n    - {{name: last, url: \"{url}\", protocol_version: 1, {queue}}}\n")).await;
    let first = start_strata(&format!(
        "forward:\n  remote_write:\n    - {{name: relay, url: \"{}/api/v1/write\", protocol_version: 2, {queue}}}\n",
        second.base
    ))
    .await;
    let (status, headers, text) =
        post(&first.base, Some(CONTENT_TYPE_V2), Some("snappy"), body(&rich_batch(), Version::V2))
            .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    for (header, expected) in [
        ("x-prometheus-remote-write-samples-written", "2"),
        ("x-prometheus-remote-write-histograms-written", "1"),
        ("x-prometheus-remote-write-exemplars-written", "1"),
    ] {
        assert_eq!(headers.get(header).and_then(|v| v.to_str().ok()), Some(expected), "{header}");
    }
    // A 1.0 metadata-only request, as Prometheus sends them, is accepted.
    let mut metadata_only = MetricBatch::default();
    metadata_only.metadata.push(strata::model::MetricMetadata {
        family: "up".into(),
        metric_type: MetricType::Gauge,
        help: "up".into(),
        unit: String::new(),
    });
    let (status, _, text) = post(
        &first.base,
        Some("application/x-protobuf"),
        Some("snappy"),
        body(&metadata_only, Version::V1),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");

    let requests =
        wait_until("both series at the final receiver", WAIT, Duration::from_millis(100), || {
            let final_receiver = final_receiver.clone();
            first.guard.assert_running();
            second.guard.assert_running();
            async move {
                let requests = final_receiver.requests.lock().unwrap().clone();
                let series: usize = requests
                    .iter()
                    .map(|(_, raw)| {
                        let mut decoded = DecodedWrite::default();
                        decoded.decode(raw, Version::V1).unwrap();
                        decoded.series.len()
                    })
                    .sum();
                if series >= 2 {
                    Ok(requests)
                } else {
                    Err(format!("{series} series so far"))
                }
            }
        })
        .await;
    let mut samples = Vec::new();
    let mut histograms = Vec::new();
    let mut exemplars = Vec::new();
    let mut families = Vec::new();
    for (content_type, raw) in &requests {
        assert_eq!(content_type, "application/x-protobuf", "the last hop speaks 1.0");
        let mut decoded = DecodedWrite::default();
        decoded.decode(raw, Version::V1).unwrap();
        samples.extend(decoded.samples.iter().copied());
        histograms.extend(decoded.histograms.iter().cloned());
        exemplars.extend(decoded.exemplars.iter().map(|e| (e.value, e.timestamp_ms)));
        families.extend(
            decoded.metadata.iter().map(|m| (m.family.clone(), m.metric_type, m.unit.clone())),
        );
    }
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0], Sample { timestamp_ms: 1_000, value: 41.0 });
    assert_eq!(
        samples[1].value.to_bits(),
        STALE_NAN_BITS,
        "stale marker must survive two hops bit for bit"
    );
    assert_eq!(
        histograms,
        rich_batch().iter().nth(1).unwrap().histograms,
        "float native histogram unchanged"
    );
    assert_eq!(exemplars, [(0.12, 1_000)]);
    families.sort();
    assert!(
        families.contains(&("http_requests".into(), MetricType::Counter, String::new())),
        "{families:?}"
    );
    assert!(
        families.contains(&("rpc_latency_seconds".into(), MetricType::Histogram, "seconds".into())),
        "{families:?}"
    );
}

#[tokio::test]
async fn a_down_target_fills_the_queue_then_ingest_answers_503_and_recovers() {
    let (receiver, url) = start_receiver().await;
    receiver.fail.store(true, Ordering::SeqCst);
    let strata = start_strata(&format!(
        "forward:\n  remote_write:\n    - name: down\n      url: \"{url}\"\n      queue_config: {{capacity: 100, shards: 1, max_samples_per_send: 50, batch_send_deadline: 50ms, min_backoff: 10ms, max_backoff: 50ms}}\n"
    ))
    .await;
    let mut saw_503 = false;
    for round in 0..20 {
        let (status, headers, text) = post(
            &strata.base,
            Some("application/x-protobuf"),
            Some("snappy"),
            body(&simple_batch(40, round), Version::V1),
        )
        .await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(text.contains("forward queue of target \"down\" is full"), "{text}");
            assert_eq!(headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
            saw_503 = true;
            break;
        }
        assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    }
    assert!(saw_503, "a full queue must push back with 503");
    receiver.fail.store(false, Ordering::SeqCst);
    wait_until(
        "ingest accepted again after the target recovered",
        WAIT,
        Duration::from_millis(100),
        || {
            let base = strata.base.clone();
            async move {
                let (status, _, text) = post(
                    &base,
                    Some("application/x-protobuf"),
                    Some("snappy"),
                    body(&simple_batch(40, 1_000), Version::V1),
                )
                .await;
                if status == StatusCode::NO_CONTENT {
                    Ok(())
                } else {
                    Err(format!("{status}: {text}"))
                }
            }
        },
    )
    .await;
    let metrics = common::try_scrape(&strata.base).await.unwrap();
    assert!(
        common::sum_samples(&metrics, "strata_forward_retries_total", &[("target", "down")])
            .unwrap()
            > 0.0
    );
    assert!(
        common::sum_samples(&metrics, "strata_forward_queue_full_total", &[("target", "down")])
            .unwrap()
            > 0.0
    );
}
