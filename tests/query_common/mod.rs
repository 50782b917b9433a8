//! The remote-write stream the query tests load into Strata (and, in the differential test,
//! into Prometheus): what dashboards typically query.
//!
//! * `http_requests_total{job,instance,method,code}`: counters with per-series rates and one
//!   counter reset;
//! * `memory_usage_bytes{job,instance}`: gauges;
//! * `http_request_duration_seconds_{bucket,sum,count}{job,instance[,le]}`: a classic
//!   histogram;
//! * `up{job,instance}`: 1, except one instance that is down (0).
//!
//! Jobs `api` (3 instances) and `db` (2). Samples every 15 s for the last hour, at 3 s past a
//! 15 s boundary, so evaluation times on whole minutes never coincide with a sample: range
//! and lookback window edges (left-open in Prometheus 3, closed in 2.x) hold no sample.
#![allow(dead_code)]

use std::sync::Arc;

use strata::model::{Labels, MetricBatch, MetricType, Sample, Series, SeriesMetadata};
use strata::sinks::remote_write::encode::{encode_v1, EncodeOptions};

pub const STEP_MS: i64 = 15_000;
pub const SAMPLES: i64 = 240;
const OFFSET_MS: i64 = 3_000;
pub const BUCKETS: [&str; 6] = ["0.05", "0.1", "0.25", "0.5", "1", "+Inf"];

/// Instances of every job.
pub fn targets() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for i in 0..3 {
        out.push(("api", format!("10.0.0.{i}:8080")));
    }
    for i in 0..2 {
        out.push(("db", format!("10.0.1.{i}:9187")));
    }
    out
}

/// The loaded time range: `(first, last)` sample times in milliseconds; `last` is in the
/// minute before `now_ms`.
pub fn sample_range(now_ms: i64) -> (i64, i64) {
    let minute = now_ms - now_ms.rem_euclid(60_000) - 60_000;
    let last = minute + OFFSET_MS;
    (last - (SAMPLES - 1) * STEP_MS, last)
}

fn metadata(metric_type: MetricType, help: &str, unit: &str) -> Arc<SeriesMetadata> {
    Arc::new(SeriesMetadata { metric_type, help: help.into(), unit: unit.into() })
}

/// The whole stream, ending in the minute before `now_ms`.
pub fn batch(now_ms: i64) -> MetricBatch {
    let (first, _) = sample_range(now_ms);
    let times: Vec<i64> = (0..SAMPLES).map(|k| first + k * STEP_MS).collect();
    let counter_meta = metadata(MetricType::Counter, "Requests served.", "");
    let gauge_meta = metadata(MetricType::Gauge, "Resident memory.", "bytes");
    let histogram_meta = metadata(MetricType::Histogram, "Request latency.", "seconds");
    let mut batch = MetricBatch::default();
    let mut push = |pairs: Vec<(&str, String)>,
                    values: &dyn Fn(usize, i64) -> f64,
                    meta: Option<&Arc<SeriesMetadata>>| {
        let labels = Labels::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
        let samples: Vec<Sample> = times
            .iter()
            .enumerate()
            .map(|(k, &t)| Sample { timestamp_ms: t, value: values(k, t) })
            .collect();
        batch.push(Arc::new(Series::new(labels)), &samples, &[], &[], meta.cloned(), 0);
    };
    for (n, (job, instance)) in targets().into_iter().enumerate() {
        let base = |name: &str| {
            vec![
                ("__name__", name.to_owned()),
                ("job", job.to_owned()),
                ("instance", instance.clone()),
            ]
        };
        let seed = n as f64 + 1.0;
        for (code, share) in [("200", 0.97), ("500", 0.03)] {
            let mut labels = base("http_requests_total");
            labels.push(("method", "get".into()));
            labels.push(("code", code.into()));
            // A steady rate with a wobble; instance 1 restarts (counter reset) mid-hour.
            let rate = 10.0 * seed * share;
            let counter = move |k: usize, _t: i64| {
                let k = k as f64;
                let total = rate * 15.0 * k + (k * 0.7).sin().abs() * 3.0 * share;
                if n == 1 && k >= 120.0 {
                    total - rate * 15.0 * 120.0
                } else {
                    total
                }
            };
            push(labels, &counter, Some(&counter_meta));
        }
        let memory = move |k: usize, _t: i64| {
            1e8 * seed + 2e7 * ((k as f64) / 9.0).sin() + 1e6 * ((k * 7 % 13) as f64)
        };
        push(base("memory_usage_bytes"), &memory, Some(&gauge_meta));
        let up = move |_k: usize, _t: i64| if job == "db" && n == 4 { 0.0 } else { 1.0 };
        push(base("up"), &up, None);
        // Latencies: per request-second, the share below each bound grows with the bound.
        let requests_per_step = 15.0 * 5.0 * seed;
        let shares = [0.2, 0.45, 0.7, 0.85, 0.95, 1.0];
        for (bucket, share) in BUCKETS.iter().zip(shares) {
            let mut labels = base("http_request_duration_seconds_bucket");
            labels.push(("le", (*bucket).into()));
            // Slower instances put fewer requests below each finite bound.
            let below = if share >= 1.0 { 1.0 } else { share * (1.0 - 0.04 * n as f64) };
            let cumulative =
                move |k: usize, _t: i64| (requests_per_step * k as f64 * below).floor();
            push(labels, &cumulative, Some(&histogram_meta));
        }
        let count = move |k: usize, _t: i64| (requests_per_step * k as f64).floor();
        push(base("http_request_duration_seconds_count"), &count, Some(&histogram_meta));
        let sum = move |k: usize, _t: i64| requests_per_step * k as f64 * 0.21 * seed;
        push(base("http_request_duration_seconds_sum"), &sum, Some(&histogram_meta));
    }
    batch
}

/// `batch(now_ms)` as a remote-write 1.0 body (snappy-compressed protobuf).
pub fn body(now_ms: i64) -> Vec<u8> {
    let mut raw = Vec::new();
    let options = EncodeOptions { send_exemplars: false, send_native_histograms: false };
    encode_v1(std::slice::from_ref(&batch(now_ms)), options, &mut raw);
    snap::raw::Encoder::new().compress_vec(&raw).expect("snappy")
}

/// POSTs the stream to a remote-write URL; panics unless it answers 2xx.
pub async fn push(url: &str, body: Vec<u8>) {
    let response = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .no_proxy()
        .build()
        .unwrap()
        .post(url)
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("remote write to {url}: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "remote write to {url}: {status}: {text}");
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}
