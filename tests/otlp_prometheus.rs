//! Real-peer test of the OTLP metrics translation (`strata::ingest::otlp::metrics::translate`)
//! against Prometheus 2.53, the version whose OTLP translation Strata matches.
//!
//! ```text
//! OTLP request (prost) ──translate──► MetricBatch ──remote-write 1.0──► Prometheus 2.53
//!                                          │                                  │
//!                                          └── series set ══ /api/v1/series ══┘  ══ expected (2.53 rules)
//! ```
//!
//! One request covers every OTLP type (gauge, monotonic and non-monotonic sums, classic
//! histogram, summary, exponential histograms incl. one that needs downscaling, a delta sum that
//! must be rejected), units `ms`, `By`, `1`, `{requests}`, none, attributes with dots and leading
//! digits, two resources (one with `service.namespace`/`service.instance.id` and extra attributes
//! → `target_info`, one with only `service.name`). The test checks three things agree:
//!
//! 1. the series set (name + all labels) Strata produces equals the one written out below from
//!    Prometheus 2.53's translation rules (`storage/remote/otlptranslator`);
//! 2. Prometheus stores exactly that set (`/api/v1/series`), i.e. accepts every label set,
//!    sample, native histogram and exemplar as valid;
//! 3. values read back with PromQL (counter, cumulated bucket, quantile, `target_info`, native
//!    histogram count/sum and bucket boundaries, exemplar trace id) are the OTLP values.
//!
//! What this cannot do: send the OTLP request to Prometheus' own OTLP receiver. Debian builds
//! Prometheus without it (trixie's 2.53.3: `debian/patches/0019-Disable-OTLP-Ingestion-endpoint.patch`;
//! sid's 3.5.3 has no `--web.enable-otlp-receiver`), and no other registry reachable here ships
//! a Prometheus build. The expected set in (1) therefore stands in for the receiver's output.
//!
//! The binary comes from `scripts/install-prometheus-trixie.sh` (`.peers/prometheus-trixie/`, or
//! `$STRATA_TEST_PROMETHEUS_253`). Missing: skipped, except under `CI=true`, where it fails.

mod common;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile, AggregationTemporality, Exemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use strata::config::OtlpMetricsConfig;
use strata::ingest::otlp::metrics::translate;
use strata::sinks::remote_write::encode::{encode_v1, EncodeOptions};

const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(250);
const PROMETHEUS_253_BIN: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/.peers/prometheus-trixie/usr/bin/prometheus");
const NO_SCRAPES: &str = "global:\n  scrape_interval: 1m\nscrape_configs: []\n";
const TRACE_ID: [u8; 16] = [
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36,
];

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

fn number(
    t_ns: u64,
    value: number_data_point::Value,
    attributes: Vec<KeyValue>,
) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: t_ns - 60_000_000_000,
        time_unix_nano: t_ns,
        value: Some(value),
        ..Default::default()
    }
}

fn metric(name: &str, unit: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        description: format!("{name} (test)"),
        data: Some(data),
        ..Default::default()
    }
}

fn sum(
    name: &str,
    unit: &str,
    monotonic: bool,
    temporality: AggregationTemporality,
    points: Vec<NumberDataPoint>,
) -> Metric {
    metric(
        name,
        unit,
        Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality as i32,
            is_monotonic: monotonic,
        }),
    )
}

fn exponential(
    name: &str,
    t_ns: u64,
    scale: i32,
    offset: i32,
    counts: Vec<u64>,
    sum: f64,
) -> Metric {
    let count = counts.iter().sum::<u64>() + 1;
    let point = ExponentialHistogramDataPoint {
        time_unix_nano: t_ns,
        start_time_unix_nano: t_ns - 60_000_000_000,
        count,
        sum: Some(sum),
        scale,
        zero_count: 1,
        positive: Some(Buckets { offset, bucket_counts: counts }),
        ..Default::default()
    };
    let cumulative = AggregationTemporality::Cumulative as i32;
    metric(
        name,
        "By",
        Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![point],
            aggregation_temporality: cumulative,
        }),
    )
}

/// The OTLP request of the test, all points at `t_ns`.
fn otlp_request(t_ns: u64) -> ExportMetricsServiceRequest {
    use number_data_point::Value::{AsDouble, AsInt};
    let cumulative = AggregationTemporality::Cumulative;
    let checkout = vec![
        kv("service.name", "checkout"),
        kv("service.namespace", "shop"),
        kv("service.instance.id", "pod-1"),
        kv("host.name", "node-a"),
        kv("deployment.environment", "prod"),
        kv("1st.attr", "yes"),
    ];
    let counter_exemplar = Exemplar {
        time_unix_nano: t_ns,
        value: Some(exemplar::Value::AsInt(1)),
        trace_id: TRACE_ID.to_vec(),
        span_id: vec![0x11; 8],
        ..Default::default()
    };
    let mut requests = number(t_ns, AsInt(1234), vec![kv("http.route", "/cart")]);
    requests.exemplars.push(counter_exemplar);
    let metrics = vec![
        metric(
            "system.memory.usage",
            "By",
            Data::Gauge(Gauge {
                data_points: vec![number(
                    t_ns,
                    AsInt(2048),
                    vec![kv("state", "used"), kv("http.method", "GET"), kv("0numeric", "x")],
                )],
            }),
        ),
        sum("http.server.requests", "{requests}", true, cumulative, vec![requests]),
        sum("process.cpu.time", "ms", true, cumulative, vec![number(t_ns, AsDouble(5.5), vec![])]),
        sum("jobs.done", "", true, cumulative, vec![number(t_ns, AsInt(7), vec![])]),
        sum(
            "active.connections",
            "{connections}",
            false,
            cumulative,
            vec![number(t_ns, AsInt(3), vec![])],
        ),
        metric(
            "cpu.utilization",
            "1",
            Data::Gauge(Gauge { data_points: vec![number(t_ns, AsDouble(0.25), vec![])] }),
        ),
        metric(
            "http.server.duration",
            "ms",
            Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: vec![kv("http.route", "/cart")],
                    start_time_unix_nano: t_ns - 60_000_000_000,
                    time_unix_nano: t_ns,
                    count: 10,
                    sum: Some(512.5),
                    bucket_counts: vec![1, 2, 3, 4],
                    explicit_bounds: vec![5.0, 10.0, 100.0],
                    ..Default::default()
                }],
                aggregation_temporality: cumulative as i32,
            }),
        ),
        metric(
            "rpc.latency",
            "s",
            Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    time_unix_nano: t_ns,
                    count: 100,
                    sum: 50.0,
                    quantile_values: vec![
                        ValueAtQuantile { quantile: 0.5, value: 0.2 },
                        ValueAtQuantile { quantile: 0.99, value: 0.9 },
                    ],
                    ..Default::default()
                }],
            }),
        ),
        exponential("http.request.size", t_ns, 3, 2, vec![1, 0, 3], 100.0),
        exponential("http.response.size", t_ns, 10, 0, vec![1; 8], 64.0),
        sum(
            "events.delta",
            "",
            true,
            AggregationTemporality::Delta,
            vec![number(t_ns, AsInt(1), vec![])],
        ),
    ];
    let batch = vec![kv("service.name", "batch")];
    let queue = metric(
        "queue.length",
        "{items}",
        Data::Gauge(Gauge { data_points: vec![number(t_ns, AsInt(9), vec![])] }),
    );
    let resource = |attributes: Vec<KeyValue>, metrics: Vec<Metric>| ResourceMetrics {
        resource: Some(Resource { attributes, ..Default::default() }),
        scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }],
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![resource(checkout, metrics), resource(batch, vec![queue])],
    }
}

/// The series Prometheus 2.53's OTLP translation makes of [`otlp_request`], written from its
/// rules (not from Strata's output), in Prometheus' text form without the quotes' escapes.
fn expected_series() -> BTreeSet<String> {
    let ids = r#"instance="pod-1", job="shop/checkout""#;
    let mut out: BTreeSet<String> = [
        format!(r#"system_memory_usage_bytes{{http_method="GET", {ids}, key_0numeric="x", state="used"}}"#),
        format!(r#"http_server_requests_total{{http_route="/cart", {ids}}}"#),
        format!("process_cpu_time_milliseconds_total{{{ids}}}"),
        format!("jobs_done_total{{{ids}}}"),
        format!("active_connections{{{ids}}}"),
        format!("cpu_utilization_ratio{{{ids}}}"),
        format!(r#"http_server_duration_milliseconds_count{{http_route="/cart", {ids}}}"#),
        format!(r#"http_server_duration_milliseconds_sum{{http_route="/cart", {ids}}}"#),
        format!(r#"rpc_latency_seconds_count{{{ids}}}"#),
        format!(r#"rpc_latency_seconds_sum{{{ids}}}"#),
        format!(r#"rpc_latency_seconds{{{ids}, quantile="0.5"}}"#),
        format!(r#"rpc_latency_seconds{{{ids}, quantile="0.99"}}"#),
        format!("http_request_size_bytes{{{ids}}}"),
        format!("http_response_size_bytes{{{ids}}}"),
        format!(
            r#"target_info{{deployment_environment="prod", host_name="node-a", {ids}, key_1st_attr="yes"}}"#
        ),
        r#"queue_length{job="batch"}"#.to_owned(),
    ]
    .into_iter()
    .collect();
    for le in ["5", "10", "100", "+Inf"] {
        out.insert(format!(
            r#"http_server_duration_milliseconds_bucket{{http_route="/cart", {ids}, le="{le}"}}"#
        ));
    }
    out
}

/// `name{a="1", b="2"}` of a label map (same form as `Labels`' `Display`).
fn text_form(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").cloned().unwrap_or_default();
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!("{name}{{{}}}", rest.join(", "))
}

async fn get_json(url: &str, query: &[(&str, String)]) -> Result<serde_json::Value, String> {
    let resp =
        http_client().get(url).query(query).send().await.map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| format!("GET {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("GET {url} {query:?}: {status}: {body}"));
    }
    let json: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("bad JSON from {url}: {e}: {body}"))?;
    if json["status"] != "success" {
        return Err(format!("GET {url} {query:?}: {body}"));
    }
    Ok(json)
}

/// Every series Prometheus has, in text form.
async fn prometheus_series(base: &str) -> Result<BTreeSet<String>, String> {
    let json = get_json(
        &format!("{base}/api/v1/series"),
        &[("match[]", r#"{__name__=~".+"}"#.to_owned())],
    )
    .await?;
    let series = json["data"].as_array().ok_or_else(|| format!("no data array: {json}"))?;
    Ok(series
        .iter()
        .map(|s| {
            let labels = s.as_object().into_iter().flatten();
            text_form(
                &labels
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect(),
            )
        })
        .collect())
}

/// The single result of an instant query at `time_s`.
async fn query_one(base: &str, expr: &str, time_s: f64) -> serde_json::Value {
    let json = get_json(
        &format!("{base}/api/v1/query"),
        &[("query", expr.to_owned()), ("time", format!("{time_s:.3}"))],
    )
    .await
    .unwrap_or_else(|e| panic!("query {expr}: {e}"));
    let result = json["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{expr}: no result array: {json}"));
    assert_eq!(result.len(), 1, "{expr}: expected one result: {json}");
    result[0].clone()
}

async fn query_value(base: &str, expr: &str, time_s: f64) -> f64 {
    let result = query_one(base, expr, time_s).await;
    let text = result["value"][1].as_str().unwrap_or_else(|| panic!("{expr}: no value: {result}"));
    text.parse().unwrap_or_else(|e| panic!("{expr}: bad value {text:?}: {e}"))
}

#[tokio::test]
async fn otlp_translation_is_stored_by_prometheus_2_53_as_its_rules_say() {
    let Some(bin) =
        require_peer("prometheus 2.53", "STRATA_TEST_PROMETHEUS_253", &[PROMETHEUS_253_BIN])
    else {
        return;
    };
    let prom = spawn_prometheus(
        &bin,
        "prometheus_253",
        free_port(),
        NO_SCRAPES,
        &[
            "--web.enable-remote-write-receiver",
            "--enable-feature=native-histograms,exemplar-storage",
        ],
    );
    let base = prom.base();
    wait_http_ok(&prom.guard, &format!("{base}/-/ready"), WAIT).await;

    // Near now, or the TSDB rejects the samples as out of bounds.
    let now_ms =
        SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis() as i64;
    let t_ms = now_ms - 5_000;
    let t_ns = t_ms as u64 * 1_000_000 + 123_456;
    let t_s = t_ms as f64 / 1000.0;

    // 1. Strata's translation has exactly the series 2.53's rules give.
    let translated = translate(&otlp_request(t_ns), &OtlpMetricsConfig::default(), now_ms);
    assert_eq!(
        translated.rejected_points, 1,
        "only the delta sum is rejected: {:?}",
        translated.errors
    );
    assert!(translated.errors[0].contains("\"events.delta\""), "{:?}", translated.errors);
    let strata_series: BTreeSet<String> =
        translated.batch.iter().map(|v| v.series.labels.to_string()).collect();
    assert_eq!(strata_series, expected_series(), "strata's series (left) vs 2.53's rules (right)");
    assert_eq!(translated.batch.histogram_count(), 2);
    assert_eq!(translated.batch.exemplar_count(), 1);

    // 2. Prometheus accepts all of it and stores exactly that set (it scrapes nothing).
    let mut body = Vec::new();
    encode_v1(
        &[&translated.batch],
        EncodeOptions { send_exemplars: true, send_native_histograms: true },
        &mut body,
    );
    let compressed = snap::raw::Encoder::new().compress_vec(&body).expect("snappy");
    let resp = http_client()
        .post(format!("{base}/api/v1/write"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(compressed)
        .send()
        .await
        .expect("remote write to prometheus");
    let status = resp.status();
    assert!(
        status.is_success(),
        "prometheus refused the batch: {status}: {}",
        resp.text().await.unwrap_or_default()
    );

    let stored = wait_until("all series in prometheus", WAIT, POLL, || async {
        prom.guard.assert_running();
        let stored = prometheus_series(&base).await?;
        if stored.len() >= strata_series.len() {
            Ok(stored)
        } else {
            Err(format!("{} of {} series so far", stored.len(), strata_series.len()))
        }
    })
    .await;
    assert_eq!(stored, strata_series, "prometheus (left) vs strata (right)");

    // 3. Values read back are the OTLP values.
    let ids = r#"job="shop/checkout",instance="pod-1""#;
    let checks: [(String, f64); 10] = [
        (format!("system_memory_usage_bytes{{{ids}}}"), 2048.0),
        (r#"http_server_requests_total{http_route="/cart"}"#.to_owned(), 1234.0),
        ("process_cpu_time_milliseconds_total".to_owned(), 5.5),
        ("cpu_utilization_ratio".to_owned(), 0.25),
        (r#"http_server_duration_milliseconds_bucket{le="10"}"#.to_owned(), 3.0),
        (r#"http_server_duration_milliseconds_bucket{le="+Inf"}"#.to_owned(), 10.0),
        (r#"rpc_latency_seconds{quantile="0.99"}"#.to_owned(), 0.9),
        ("target_info".to_owned(), 1.0),
        ("histogram_count(http_request_size_bytes)".to_owned(), 5.0),
        ("histogram_sum(http_response_size_bytes)".to_owned(), 64.0),
    ];
    for (expr, want) in &checks {
        assert_eq!(query_value(&base, expr, t_s).await, *want, "{expr}");
    }
    assert_eq!(query_value(&base, r#"queue_length{job="batch"}"#, t_s).await, 9.0);

    // Native histogram buckets: OTLP scale 3, offset 2, counts [1, 0, 3] are the buckets
    // (2^(2/8), 2^(3/8)] = 1 and (2^(4/8), 2^(5/8)] = 3 (OTLP bucket i is (b^i, b^(i+1)]).
    let result = query_one(&base, "http_request_size_bytes", t_s).await;
    let buckets = result["histogram"][1]["buckets"]
        .as_array()
        .unwrap_or_else(|| panic!("no buckets: {result}"));
    let parsed: Vec<(f64, f64, f64)> = buckets
        .iter()
        .map(|b| {
            let num =
                |i: usize| b[i].as_str().and_then(|s| s.parse::<f64>().ok()).unwrap_or(f64::NAN);
            (num(1), num(2), num(3))
        })
        .collect();
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    for (lower, upper, count) in
        [(2f64.powf(0.25), 2f64.powf(0.375), 1.0), (2f64.powf(0.5), 2f64.powf(0.625), 3.0)]
    {
        assert!(
            parsed.iter().any(|(l, u, c)| close(*l, lower) && close(*u, upper) && *c == count),
            "bucket ({lower}, {upper}] = {count} missing from {parsed:?}"
        );
    }
    // Downscaled 10 → 8: eight OTLP buckets from index 0 are two Prometheus buckets of 4.
    let result = query_one(&base, "http_response_size_bytes", t_s).await;
    let counts: Vec<&str> = result["histogram"][1]["buckets"]
        .as_array()
        .map(|b| b.iter().filter_map(|bucket| bucket[3].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(counts.iter().filter(|c| **c == "4").count(), 2, "{result}");

    // The counter's exemplar, with the trace id as hex.
    let json = get_json(
        &format!("{base}/api/v1/query_exemplars"),
        &[
            ("query", "http_server_requests_total".to_owned()),
            ("start", format!("{:.3}", t_s - 60.0)),
            ("end", format!("{:.3}", t_s + 60.0)),
        ],
    )
    .await
    .expect("query_exemplars");
    let trace_id: String = TRACE_ID.iter().map(|b| format!("{b:02x}")).collect();
    let exemplar = &json["data"][0]["exemplars"][0];
    assert_eq!(exemplar["labels"]["trace_id"], trace_id.as_str(), "{json}");
    assert_eq!(exemplar["labels"]["span_id"], "1111111111111111", "{json}");
    assert_eq!(exemplar["value"], "1", "{json}");
}
