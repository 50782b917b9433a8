use proptest::prelude::*;

use super::*;
use crate::model::metrics::{BucketSpan, HistogramCount, STALE_NAN_BITS};

/// Label pairs and (timestamp, value bits) samples of one series.
type SeriesSpec = (Vec<(String, String)>, Vec<(i64, u64)>);

fn metric_batch(series: &[SeriesSpec]) -> MetricBatch {
    let mut batch = MetricBatch::default();
    for (labels, samples) in series {
        let samples: Vec<Sample> = samples
            .iter()
            .map(|&(timestamp_ms, bits)| Sample { timestamp_ms, value: f64::from_bits(bits) })
            .collect();
        let series = Arc::new(Series::new(Labels::from_pairs(labels.clone())));
        batch.push(series, &samples, &[], &[], None, 0);
    }
    batch
}

fn round_trip(kind: u8, payload: Vec<u8>) -> Batch {
    decode(kind, &Bytes::from(payload)).expect("decodes")
}

fn assert_same_metrics(a: &MetricBatch, b: &MetricBatch) {
    assert_eq!(a.series_count(), b.series_count());
    for (x, y) in a.iter().zip(b.iter()) {
        assert_eq!(x.series.labels, y.series.labels);
        assert_eq!(x.series.encoded, y.series.encoded);
        assert_eq!(x.samples, y.samples, "samples compare bit for bit");
        assert_eq!(x.histograms, y.histograms);
        assert_eq!(x.exemplars.len(), y.exemplars.len());
        assert_eq!(x.metadata.map(|m| &**m), y.metadata.map(|m| &**m));
        assert_eq!(x.created_timestamp_ms, y.created_timestamp_ms);
    }
    assert_eq!(a.metadata, b.metadata);
}

#[test]
fn metrics_keep_histograms_exemplars_metadata_and_stale_markers() {
    let mut batch = MetricBatch::default();
    let series = Arc::new(Series::new(Labels::from_pairs([("__name__", "rpc"), ("job", "a")])));
    let histogram = Histogram {
        count: Some(HistogramCount::Int(4)),
        sum: 2.5,
        schema: 3,
        positive_spans: vec![BucketSpan { offset: -2, length: 2 }],
        positive_deltas: vec![1, 2],
        timestamp: 1_700_000_000_123,
        ..Histogram::default()
    };
    let exemplar = Exemplar {
        labels: Labels::from_pairs([("trace_id", "abc")]),
        value: 0.25,
        timestamp_ms: -5,
    };
    let metadata = Arc::new(SeriesMetadata {
        metric_type: MetricType::Histogram,
        help: "latency".into(),
        unit: "seconds".into(),
    });
    batch.push(
        series,
        &[
            Sample { timestamp_ms: 10, value: 1.0 },
            Sample { timestamp_ms: 5, value: f64::from_bits(STALE_NAN_BITS) },
        ],
        &[histogram],
        &[exemplar],
        Some(metadata),
        -7,
    );
    batch.metadata.push(MetricMetadata {
        family: "rpc".into(),
        metric_type: MetricType::Counter,
        help: "h".into(),
        unit: String::new(),
    });
    let mut payload = Vec::new();
    encode_metrics(&batch, &mut payload);
    let Batch::Metrics(decoded) = round_trip(KIND_METRICS, payload) else { panic!("kind") };
    assert_same_metrics(&batch, &decoded);
    let view = decoded.iter().next().unwrap();
    assert_eq!(view.samples[1].value.to_bits(), STALE_NAN_BITS);
    assert_eq!(view.exemplars[0].labels.get("trace_id"), Some("abc"));
    assert_eq!(view.exemplars[0].timestamp_ms, -5);
}

#[test]
fn logs_and_traces_round_trip() {
    let stream = Arc::new(Stream::new(Labels::from_pairs([("app", "api"), ("env", "prod")])));
    let mut logs = LogBatch::new("team-a".into());
    logs.streams.push(StreamEntries {
        stream,
        entries: vec![
            LogEntry {
                timestamp_ns: 1_700_000_000_000_000_001,
                line: Bytes::from_static(b"GET /x 200"),
                structured_metadata: vec![Label::new("trace_id", "t1")],
            },
            LogEntry { timestamp_ns: -1, line: Bytes::new(), structured_metadata: vec![] },
        ],
    });
    let mut payload = Vec::new();
    encode_logs(&logs, &mut payload);
    let Batch::Logs(decoded) = round_trip(KIND_LOGS, payload) else { panic!("kind") };
    assert_eq!(decoded.tenant, logs.tenant);
    assert_eq!(decoded.streams.len(), 1);
    assert_eq!(decoded.streams[0].stream, logs.streams[0].stream);
    assert_eq!(decoded.streams[0].entries, logs.streams[0].entries);

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1 as otlp;
    let request = ExportTraceServiceRequest {
        resource_spans: vec![otlp::ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("c".into())),
                    }),
                    ..KeyValue::default()
                }],
                ..Resource::default()
            }),
            scope_spans: vec![otlp::ScopeSpans {
                spans: vec![otlp::Span {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    name: "op".into(),
                    ..otlp::Span::default()
                }],
                ..otlp::ScopeSpans::default()
            }],
            schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
        }],
    };
    let traces = TraceBatch::from_request("t".into(), request.clone());
    let mut payload = Vec::new();
    encode_traces(&traces, &mut payload);
    let Batch::Traces(decoded) = round_trip(KIND_TRACES, payload) else { panic!("kind") };
    assert_eq!(decoded.tenant.as_ref(), "t");
    assert_eq!(decoded.span_count(), 1);
    assert_eq!(decoded.to_request().unwrap(), request);
}

#[test]
fn unknown_versions_and_truncations_are_errors_not_panics() {
    let batch = metric_batch(&[(vec![("__name__".into(), "up".into())], vec![(1, 0)])]);
    let mut payload = Vec::new();
    encode_metrics(&batch, &mut payload);
    let mut wrong = payload.clone();
    wrong[0] = 9;
    assert!(matches!(
        decode(KIND_METRICS, &Bytes::from(wrong)),
        Err(RecordError::Version { version: 9, .. })
    ));
    assert!(matches!(decode(42, &Bytes::from(payload.clone())), Err(RecordError::Kind { .. })));
    for cut in 0..payload.len() {
        assert!(decode(KIND_METRICS, &Bytes::copy_from_slice(&payload[..cut])).is_err());
    }
}

fn label_strategy() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::btree_map("[a-z_]{1,8}", ".{0,12}", 0..6).prop_map(|map| {
        let mut labels: Vec<_> = map.into_iter().collect();
        labels.push(("__name__".into(), "m".into()));
        labels
    })
}

proptest! {
    #[test]
    fn metric_records_round_trip_bit_for_bit(
        series in prop::collection::vec(
            (label_strategy(), prop::collection::vec((any::<i64>(), any::<u64>()), 0..20)),
            0..8,
        )
    ) {
        let batch = metric_batch(&series);
        let mut payload = Vec::new();
        encode_metrics(&batch, &mut payload);
        let Batch::Metrics(decoded) = round_trip(KIND_METRICS, payload) else { panic!("kind") };
        assert_same_metrics(&batch, &decoded);
    }
}

#[test]
fn snappy_frames_round_trip_and_lying_sizes_are_refused() {
    let batch = metric_batch(&[(vec![("__name__".into(), "up".into())], vec![(1, 0), (2, 1)])]);
    let mut payload = Vec::new();
    encode_metrics(&batch, &mut payload);
    let (kind, compressed) = compress(KIND_METRICS, &payload);
    assert_eq!(kind, KIND_METRICS | FLAG_SNAPPY);
    let Batch::Metrics(decoded) = decode_frame(kind, compressed).unwrap() else { panic!("kind") };
    assert_same_metrics(&batch, &decoded);
    // A snappy header claiming 1 GiB is refused before anything is allocated.
    let mut lying = Vec::new();
    let mut len = 1u64 << 30;
    while len >= 0x80 {
        lying.push((len as u8) | 0x80);
        len >>= 7;
    }
    lying.push(len as u8);
    assert!(decode_frame(kind, lying).is_err());
}
