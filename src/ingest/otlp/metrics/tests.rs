//! Whole-request tests of the OTLP → Prometheus translation: one test per rule, each asserting
//! the exact series (name + labels) and values Prometheus 2.53 would store.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile, AggregationTemporality, Exemplar as OtlpExemplar,
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::*;
use crate::model::metrics::HistogramCount;
use crate::model::STALE_NAN_BITS;

const T: u64 = 1_700_000_000_123_456_789;
const T_MS: i64 = 1_700_000_000_123;
const NOW_MS: i64 = 1_800_000_000_000;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

fn request(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource { attributes: resource, ..Default::default() }),
            scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn metric(name: &str, unit: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        description: format!("{name} help"),
        data: Some(data),
        ..Default::default()
    }
}

fn number(value: f64, attributes: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        time_unix_nano: T,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

fn gauge(name: &str, unit: &str, points: Vec<NumberDataPoint>) -> Metric {
    metric(name, unit, Data::Gauge(Gauge { data_points: points }))
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

fn run(req: &ExportMetricsServiceRequest) -> Translated {
    translate(req, &OtlpMetricsConfig::default(), NOW_MS)
}

/// Every series as `name{labels}` text with its samples' values, sorted.
fn series_text(t: &Translated) -> Vec<(String, Vec<f64>)> {
    let mut out: Vec<_> = t
        .batch
        .iter()
        .map(|v| (v.series.labels.to_string(), v.samples.iter().map(|s| s.value).collect()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn names(t: &Translated) -> Vec<String> {
    let mut out: Vec<String> =
        t.batch.iter().map(|v| v.series.labels.metric_name().unwrap().to_owned()).collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn gauge_and_counter_become_samples_with_ms_timestamps() {
    let req = request(
        vec![],
        vec![
            gauge("queue.depth", "{items}", vec![number(7.0, vec![kv("queue", "a")])]),
            sum(
                "http.requests",
                "",
                true,
                AggregationTemporality::Cumulative,
                vec![number(42.0, vec![])],
            ),
        ],
    );
    let t = run(&req);
    assert_eq!(t.rejected_points, 0, "{:?}", t.errors);
    assert_eq!(
        series_text(&t),
        [
            (r#"http_requests_total{}"#.to_owned(), vec![42.0]),
            (r#"queue_depth{queue="a"}"#.to_owned(), vec![7.0]),
        ]
    );
    assert!(t.batch.iter().all(|v| v.samples[0].timestamp_ms == T_MS));
}

#[test]
fn labels_come_out_sorted_and_valid() {
    let attrs = vec![
        kv("zeta", "1"),
        kv("http.method", "GET"),
        kv("0code", "x"),
        kv("_p", "y"),
        kv("empty", ""),
    ];
    let t = run(&request(vec![], vec![gauge("g", "", vec![number(1.0, attrs)])]));
    let view = t.batch.iter().next().unwrap();
    let names: Vec<&str> = view.series.labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["__name__", "http_method", "key_0code", "key_p", "zeta"]);
}

#[test]
fn int_values_and_non_monotonic_sums_are_gauges() {
    let mut point = number(0.0, vec![]);
    point.value = Some(number_data_point::Value::AsInt(-3));
    let t = run(&request(
        vec![],
        vec![sum("active.conns", "1", false, AggregationTemporality::Cumulative, vec![point])],
    ));
    assert_eq!(series_text(&t), [("active_conns{}".to_owned(), vec![-3.0])]);
    assert_eq!(t.batch.metadata[0].metric_type, MetricType::Gauge);
}

#[test]
fn delta_and_unspecified_temporality_are_rejected_and_counted() {
    let req = request(
        vec![],
        vec![
            sum(
                "d.sum",
                "",
                true,
                AggregationTemporality::Delta,
                vec![number(1.0, vec![]), number(2.0, vec![])],
            ),
            sum("u.sum", "", true, AggregationTemporality::Unspecified, vec![number(1.0, vec![])]),
            metric(
                "d.hist",
                "",
                Data::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint {
                        time_unix_nano: T,
                        ..Default::default()
                    }],
                    aggregation_temporality: AggregationTemporality::Delta as i32,
                }),
            ),
            gauge("kept", "", vec![number(1.0, vec![])]),
        ],
    );
    let t = run(&req);
    assert_eq!(t.rejected_points, 4);
    assert_eq!(names(&t), ["kept"]);
    assert_eq!(t.errors.len(), 3);
    assert!(
        t.errors[0].contains("\"d.sum\"") && t.errors[0].contains("AGGREGATION_TEMPORALITY_DELTA"),
        "{:?}",
        t.errors
    );
    assert!(
        t.errors[1].contains("\"u.sum\"") && t.errors[1].contains("UNSPECIFIED"),
        "{:?}",
        t.errors
    );
    assert!(t.errors[2].contains("\"d.hist\""), "{:?}", t.errors);
}

#[test]
fn job_instance_and_target_info_come_from_the_resource() {
    let resource = vec![
        kv("service.name", "checkout"),
        kv("service.namespace", "shop"),
        kv("service.instance.id", "pod-1"),
        kv("host.name", "node-a"),
        kv("k8s.pod.name", "checkout-7"),
    ];
    let mut late = number(2.0, vec![]);
    late.time_unix_nano = T + 5_000_000_000;
    let t = run(&request(resource, vec![gauge("g", "", vec![number(1.0, vec![]), late])]));
    let text = series_text(&t);
    assert_eq!(text[0], (r#"g{instance="pod-1", job="shop/checkout"}"#.to_owned(), vec![1.0, 2.0]));
    assert_eq!(
        text[1],
        (r#"target_info{host_name="node-a", instance="pod-1", job="shop/checkout", k8s_pod_name="checkout-7"}"#.to_owned(), vec![1.0])
    );
    let target =
        t.batch.iter().find(|v| v.series.labels.metric_name() == Some("target_info")).unwrap();
    assert_eq!(target.samples[0].timestamp_ms, T_MS + 5_000, "latest point time of the resource");
}

#[test]
fn no_target_info_without_extra_attributes_or_identity() {
    let only_ids = vec![kv("service.name", "a"), kv("service.instance.id", "b")];
    assert_eq!(
        names(&run(&request(only_ids, vec![gauge("g", "", vec![number(1.0, vec![])])]))),
        ["g"]
    );
    let no_identity = vec![kv("host.name", "h")];
    assert_eq!(
        names(&run(&request(no_identity, vec![gauge("g", "", vec![number(1.0, vec![])])]))),
        ["g"]
    );
    // A resource without data points gets no target_info either.
    let full = vec![kv("service.name", "a"), kv("host.name", "h")];
    assert!(run(&request(full, vec![])).batch.is_empty());
}

#[test]
fn promote_resource_attributes_adds_labels_to_every_series_but_target_info() {
    let config = OtlpMetricsConfig {
        promote_resource_attributes: vec!["k8s.namespace.name".into()],
        ..OtlpMetricsConfig::default()
    };
    let resource =
        vec![kv("service.name", "a"), kv("k8s.namespace.name", "prod"), kv("host.name", "h")];
    let t = translate(
        &request(resource, vec![gauge("g", "", vec![number(1.0, vec![])])]),
        &config,
        NOW_MS,
    );
    let text = series_text(&t);
    assert_eq!(text[0].0, r#"g{job="a", k8s_namespace_name="prod"}"#);
    assert_eq!(text[1].0, r#"target_info{host_name="h", job="a", k8s_namespace_name="prod"}"#);
}

#[test]
fn classic_histogram_cumulates_buckets_and_adds_inf_sum_count() {
    let point = HistogramDataPoint {
        time_unix_nano: T,
        start_time_unix_nano: T - 60_000_000_000,
        count: 10,
        sum: Some(12.5),
        bucket_counts: vec![2, 3, 4, 1],
        explicit_bounds: vec![0.1, 1.0, 10.0],
        exemplars: vec![
            OtlpExemplar {
                value: Some(opentelemetry_proto::tonic::metrics::v1::exemplar::Value::AsDouble(
                    0.5,
                )),
                time_unix_nano: T,
                trace_id: vec![0xab; 16],
                span_id: vec![0x01; 8],
                ..Default::default()
            },
            OtlpExemplar {
                value: Some(opentelemetry_proto::tonic::metrics::v1::exemplar::Value::AsInt(50)),
                time_unix_nano: T,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let hist = metric(
        "rpc.duration",
        "ms",
        Data::Histogram(Histogram {
            data_points: vec![point],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
    );
    let t = run(&request(vec![], vec![hist]));
    assert_eq!(
        series_text(&t),
        [
            (r#"rpc_duration_milliseconds_bucket{le="+Inf"}"#.to_owned(), vec![10.0]),
            (r#"rpc_duration_milliseconds_bucket{le="0.1"}"#.to_owned(), vec![2.0]),
            (r#"rpc_duration_milliseconds_bucket{le="1"}"#.to_owned(), vec![5.0]),
            (r#"rpc_duration_milliseconds_bucket{le="10"}"#.to_owned(), vec![9.0]),
            (r#"rpc_duration_milliseconds_count{}"#.to_owned(), vec![10.0]),
            (r#"rpc_duration_milliseconds_sum{}"#.to_owned(), vec![12.5]),
        ]
    );
    let exemplars: Vec<(String, Vec<(String, f64)>)> = t
        .batch
        .iter()
        .filter(|v| !v.exemplars.is_empty())
        .map(|v| {
            (
                v.series.labels.get("le").unwrap().to_owned(),
                v.exemplars.iter().map(|e| (e.labels.to_string(), e.value)).collect(),
            )
        })
        .collect();
    assert!(exemplars.contains(&(
        "1".to_owned(),
        vec![(format!(r#"{{span_id="{}", trace_id="{}"}}"#, "01".repeat(8), "ab".repeat(16)), 0.5)]
    )));
    assert!(exemplars.contains(&("+Inf".to_owned(), vec![("{}".to_owned(), 50.0)])));
    assert_eq!(t.batch.metadata[0].family, "rpc_duration_milliseconds");
    assert_eq!(t.batch.metadata[0].unit, "milliseconds");
    assert!(t.batch.iter().all(|v| v.created_timestamp_ms == T_MS - 60_000));
}

#[test]
fn histogram_without_sum_has_no_sum_series() {
    let point = HistogramDataPoint {
        time_unix_nano: T,
        count: 1,
        bucket_counts: vec![1],
        ..Default::default()
    };
    let hist = metric(
        "h",
        "",
        Data::Histogram(Histogram {
            data_points: vec![point],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
    );
    assert_eq!(names(&run(&request(vec![], vec![hist]))), ["h_bucket", "h_count"]);
}

#[test]
fn summary_becomes_quantiles_sum_and_count() {
    let point = SummaryDataPoint {
        time_unix_nano: T,
        count: 4,
        sum: 10.0,
        quantile_values: vec![
            ValueAtQuantile { quantile: 0.5, value: 2.0 },
            ValueAtQuantile { quantile: 0.99, value: 4.0 },
        ],
        ..Default::default()
    };
    let t = run(&request(
        vec![],
        vec![metric("latency", "s", Data::Summary(Summary { data_points: vec![point] }))],
    ));
    assert_eq!(
        series_text(&t),
        [
            (r#"latency_seconds_count{}"#.to_owned(), vec![4.0]),
            (r#"latency_seconds_sum{}"#.to_owned(), vec![10.0]),
            (r#"latency_seconds{quantile="0.5"}"#.to_owned(), vec![2.0]),
            (r#"latency_seconds{quantile="0.99"}"#.to_owned(), vec![4.0]),
        ]
    );
    assert_eq!(t.batch.metadata[0].metric_type, MetricType::Summary);
}

#[test]
fn no_recorded_value_becomes_stale_markers_everywhere() {
    const NO_VALUE: u32 = 1;
    let mut g = number(5.0, vec![]);
    g.flags = NO_VALUE;
    let h = HistogramDataPoint {
        time_unix_nano: T,
        count: 3,
        sum: Some(1.0),
        bucket_counts: vec![1, 2],
        explicit_bounds: vec![1.0],
        flags: NO_VALUE,
        ..Default::default()
    };
    let s = SummaryDataPoint {
        time_unix_nano: T,
        quantile_values: vec![ValueAtQuantile { quantile: 0.5, value: 1.0 }],
        flags: NO_VALUE,
        ..Default::default()
    };
    let req = request(
        vec![],
        vec![
            gauge("g", "", vec![g]),
            metric(
                "h",
                "",
                Data::Histogram(Histogram { data_points: vec![h], aggregation_temporality: 2 }),
            ),
            metric("s", "", Data::Summary(Summary { data_points: vec![s] })),
        ],
    );
    let t = run(&req);
    assert_eq!(t.batch.series_count(), 1 + 4 + 3);
    for view in t.batch.iter() {
        assert_eq!(view.samples[0].value.to_bits(), STALE_NAN_BITS, "{}", view.series.labels);
    }
}

#[test]
fn exponential_histogram_becomes_a_native_histogram() {
    let point = ExponentialHistogramDataPoint {
        attributes: vec![kv("route", "/a")],
        time_unix_nano: T,
        count: 6,
        sum: Some(9.0),
        scale: 10,
        zero_count: 1,
        positive: Some(Buckets { offset: 0, bucket_counts: vec![1, 1, 1, 1, 1] }),
        exemplars: vec![OtlpExemplar {
            time_unix_nano: T,
            trace_id: vec![1; 16],
            ..Default::default()
        }],
        ..Default::default()
    };
    let bad = ExponentialHistogramDataPoint { time_unix_nano: T, scale: -5, ..Default::default() };
    let exp = metric(
        "req.size",
        "By",
        Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![point, bad],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
    );
    let t = run(&request(vec![], vec![exp]));
    assert_eq!(t.rejected_points, 1);
    assert!(
        t.errors[0].contains("\"req.size\"") && t.errors[0].contains("scale -5"),
        "{:?}",
        t.errors
    );
    let view = t.batch.iter().next().unwrap();
    assert_eq!(view.series.labels.to_string(), r#"req_size_bytes{route="/a"}"#);
    assert!(view.samples.is_empty());
    let h = &view.histograms[0];
    assert_eq!((h.schema, h.sum, h.timestamp), (8, 9.0, T_MS));
    assert_eq!(h.count, Some(HistogramCount::Int(6)));
    // Scale 10 → 8 merges four buckets: OTLP 0..=3 → index 1, OTLP 4 → index 2.
    assert_eq!(h.positive_deltas, [4, -3]);
    assert_eq!(view.exemplars.len(), 1);
    assert_eq!(t.batch.metadata[0].metric_type, MetricType::Histogram);
}

#[test]
fn points_with_the_same_labels_share_one_series_in_order() {
    let mut second = number(2.0, vec![kv("a", "1")]);
    second.time_unix_nano = T + 1_000_000_000;
    let t =
        run(&request(vec![], vec![gauge("g", "", vec![number(1.0, vec![kv("a", "1")]), second])]));
    assert_eq!(t.batch.series_count(), 1);
    let view = t.batch.iter().next().unwrap();
    assert_eq!(
        view.samples.iter().map(|s| s.timestamp_ms).collect::<Vec<_>>(),
        [T_MS, T_MS + 1_000]
    );
}

#[test]
fn missing_timestamps_are_stamped_with_now() {
    let mut point = number(1.0, vec![]);
    point.time_unix_nano = 0;
    let t = run(&request(vec![], vec![gauge("g", "", vec![point])]));
    assert_eq!(t.batch.iter().next().unwrap().samples[0].timestamp_ms, NOW_MS);
}

#[test]
fn unusable_names_empty_metrics_and_missing_data_are_reported() {
    let req = request(
        vec![],
        vec![
            gauge("...", "", vec![number(1.0, vec![])]),
            gauge("empty", "", vec![]),
            Metric { name: "nodata".into(), ..Default::default() },
        ],
    );
    let t = run(&req);
    assert!(t.batch.is_empty());
    assert_eq!(t.rejected_points, 1);
    assert_eq!(t.errors.len(), 3, "{:?}", t.errors);
    assert!(t.errors.iter().any(|e| e.contains("\"...\"")));
    assert!(t.errors.iter().any(|e| e.contains("\"empty\"")));
    assert!(t.errors.iter().any(|e| e.contains("\"nodata\"")));
}

#[test]
fn metadata_is_one_entry_per_family_and_per_series() {
    let req = request(
        vec![],
        vec![
            sum(
                "bytes.sent",
                "By",
                true,
                AggregationTemporality::Cumulative,
                vec![number(1.0, vec![kv("a", "1")])],
            ),
            sum(
                "bytes.sent",
                "By",
                true,
                AggregationTemporality::Cumulative,
                vec![number(1.0, vec![kv("a", "2")])],
            ),
        ],
    );
    let t = run(&req);
    assert_eq!(
        t.batch.metadata,
        [MetricMetadata {
            family: "bytes_sent_total".into(),
            metric_type: MetricType::Counter,
            help: "bytes.sent help".into(),
            unit: "bytes".into(),
        }]
    );
    for view in t.batch.iter() {
        let meta = view.metadata.expect("per-series metadata");
        assert_eq!((meta.metric_type, meta.unit.as_str()), (MetricType::Counter, "bytes"));
    }
}

#[test]
fn exemplar_attributes_are_dropped_beyond_128_runes() {
    let long = OtlpExemplar {
        trace_id: vec![1; 16],
        filtered_attributes: vec![kv("user.id", &"x".repeat(100))],
        ..Default::default()
    };
    let short =
        OtlpExemplar { filtered_attributes: vec![kv("user.id", "u1")], ..Default::default() };
    let converted = points::exemplars_for_test(&[long, short]);
    assert_eq!(
        converted[0].labels.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
        ["trace_id"]
    );
    assert_eq!(converted[1].labels.to_string(), r#"{user_id="u1"}"#);
}

#[test]
fn le_and_quantile_use_go_float_formatting() {
    assert_eq!(points::format_go_float(0.1), "0.1");
    assert_eq!(points::format_go_float(1.0), "1");
    assert_eq!(points::format_go_float(1e21), "1000000000000000000000");
    assert_eq!(points::format_go_float(2.5e-7), "0.00000025");
    assert_eq!(points::format_go_float(f64::INFINITY), "+Inf");
}
