//! Schema v1 is a contract (`docs/storage-format.md`): these tests pin the Arrow schema of each
//! file kind to the documented column list, the physical encodings and bloom filters the
//! document promises, the key-value metadata, and the decode of a tiny v1 file; and they check
//! that a file claiming another version (or another signal) is refused, not misread.
//!
//! Changing a schema means a new version: add a new pinned list here, keep the v1 one.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::Encoding;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::*;
use crate::model::labels::{Label, Labels};
use crate::model::logs::LogEntry;
use crate::model::metrics::{Sample, STALE_NAN_BITS};
use crate::storage::{AggrPoint, LogStreamData, SeriesAggr, SeriesSamples, SpanRecord, Tier};

const DICT: &str = "Dictionary(Int32, Utf8)";

fn fields(schema: &SchemaRef) -> Vec<(String, String, bool)> {
    schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().to_string(), f.is_nullable()))
        .collect()
}

fn expect(list: &[(&str, &str, bool)]) -> Vec<(String, String, bool)> {
    list.iter().map(|(n, t, null)| (n.to_string(), t.to_string(), *null)).collect()
}

#[test]
fn metrics_raw_schema_v1_is_pinned() {
    assert_eq!(
        fields(&metrics_schema()),
        expect(&[
            ("metric_name", DICT, false),
            ("labels", DICT, false),
            ("series_hash", "UInt64", false),
            ("timestamp_ms", "Int64", false),
            ("value", "Float64", true),
            ("histogram", "Binary", true),
            ("value_int", "Int64", true),
        ])
    );
}

#[test]
fn metrics_aggr_schema_v1_is_pinned() {
    assert_eq!(
        fields(&aggr_schema()),
        expect(&[
            ("metric_name", DICT, false),
            ("labels", DICT, false),
            ("series_hash", "UInt64", false),
            ("timestamp_ms", "Int64", false),
            ("count", "UInt64", false),
            ("sum", "Float64", false),
            ("min", "Float64", false),
            ("max", "Float64", false),
            ("counter", "Float64", false),
        ])
    );
}

#[test]
fn logs_schema_v1_is_pinned() {
    let list = fields(&logs_schema());
    assert_eq!(
        list[..4].to_vec(),
        expect(&[
            ("stream_labels", DICT, false),
            ("stream_hash", "UInt64", false),
            ("timestamp_ns", "Int64", false),
            ("line", "Binary", false),
        ])
    );
    assert_eq!(list.len(), 5);
    let metadata = logs_schema().field(4).clone();
    assert_eq!(metadata.name(), "structured_metadata");
    assert!(!metadata.is_nullable());
    let entries = arrow_schema::Fields::from(vec![
        arrow_schema::Field::new("keys", arrow_schema::DataType::Utf8, false),
        arrow_schema::Field::new("values", arrow_schema::DataType::Utf8, true),
    ]);
    let expected = arrow_schema::DataType::Map(
        Arc::new(arrow_schema::Field::new(
            "entries",
            arrow_schema::DataType::Struct(entries),
            false,
        )),
        false,
    );
    assert_eq!(metadata.data_type(), &expected);
}

#[test]
fn traces_schema_v1_is_pinned() {
    assert_eq!(
        fields(&traces_schema()),
        expect(&[
            ("trace_id", "FixedSizeBinary(16)", false),
            ("span_id", "FixedSizeBinary(8)", false),
            ("parent_span_id", "Binary", false),
            ("name", DICT, false),
            ("kind", "Int32", false),
            ("start_unix_nano", "UInt64", false),
            ("end_unix_nano", "UInt64", false),
            ("status_code", "Int32", false),
            ("service_name", DICT, false),
            ("resource", "Binary", false),
            ("scope", "Binary", false),
            ("span", "Binary", false),
        ])
    );
}

fn tiny_metrics() -> Vec<SeriesSamples> {
    vec![
        SeriesSamples {
            labels: Labels::from_pairs([("__name__", "up"), ("job", "node")]),
            samples: vec![
                Sample { timestamp_ms: 2000, value: 1.0 },
                Sample { timestamp_ms: 1000, value: f64::from_bits(STALE_NAN_BITS) },
            ],
            histograms: Vec::new(),
        },
        SeriesSamples {
            labels: Labels::from_pairs([("__name__", "a_total"), ("x", "\"q\"")]),
            samples: vec![Sample { timestamp_ms: 1500, value: 7.5 }],
            histograms: Vec::new(),
        },
    ]
}

/// Column chunk encodings of the first row group, by column path.
fn encodings(data: &Bytes, column: &str) -> (Vec<Encoding>, bool) {
    let (_, metadata) = block_info(data).unwrap();
    let chunk = metadata.row_group(0).columns().iter().find(|c| c.column_path().string() == column);
    let chunk = chunk.unwrap_or_else(|| panic!("no column {column}"));
    (chunk.encodings().collect(), chunk.bloom_filter_offset().is_some())
}

#[test]
fn tiny_v1_metrics_file_decodes_as_documented() {
    let block = encode_metrics(&tiny_metrics()).unwrap();
    assert_eq!(
        (block.rows, block.series, block.min_time_ms, block.max_time_ms),
        (3, 2, 1000, 2000)
    );
    let (info, metadata) = block_info(&block.data).unwrap();
    assert_eq!(
        info,
        BlockInfo { signal: StoredSignal::Metrics, tier: Tier::Raw, schema_version: 1 }
    );
    assert!(metadata.row_group(0).columns().iter().all(|c| c.column_index_offset().is_some()));
    let (timestamp_encodings, _) = encodings(&block.data, "timestamp_ms");
    assert!(timestamp_encodings.contains(&Encoding::DELTA_BINARY_PACKED));
    let (value_encodings, _) = encodings(&block.data, "value");
    assert!(value_encodings.contains(&Encoding::BYTE_STREAM_SPLIT));
    assert!(encodings(&block.data, "metric_name").1, "metric_name has a bloom filter");

    let decoded = decode_metrics(block.data).unwrap();
    // Sorted by metric name: a_total before up; samples by time; stale marker bit for bit.
    assert_eq!(decoded.len(), 2);
    assert_eq!(decoded[0].labels.metric_name(), Some("a_total"));
    assert_eq!(decoded[0].labels.get("x"), Some("\"q\""));
    assert_eq!(decoded[1].samples[0].timestamp_ms, 1000);
    assert_eq!(decoded[1].samples[0].value.to_bits(), STALE_NAN_BITS);
    assert_eq!(decoded[1].samples[1], Sample { timestamp_ms: 2000, value: 1.0 });
}

#[test]
fn tiny_v1_files_of_other_kinds_carry_their_signal_and_tier() {
    let aggr = encode_aggr(
        &[SeriesAggr {
            labels: Labels::from_pairs([("__name__", "x")]),
            points: vec![AggrPoint {
                timestamp_ms: 300_000,
                count: 2,
                sum: 3.0,
                min: 1.0,
                max: 2.0,
                counter: 2.0,
            }],
        }],
        Tier::FiveMinutes,
    )
    .unwrap();
    assert_eq!(block_info(&aggr.data).unwrap().0.tier, Tier::FiveMinutes);
    assert!(matches!(decode_metrics(aggr.data.clone()), Err(BlockError::WrongKind { .. })));
    assert!(matches!(encode_aggr(&[], Tier::Raw), Err(BlockError::NotDownsampled { tier: "raw" })));

    let logs = encode_logs(&[LogStreamData {
        labels: Labels::from_pairs([("app", "api")]),
        entries: vec![LogEntry {
            timestamp_ns: 1_500_000,
            line: Bytes::from_static(b"hello"),
            structured_metadata: vec![Label::new("trace_id", "abc")],
        }],
    }])
    .unwrap();
    assert_eq!((logs.min_time_ms, logs.max_time_ms), (1, 1));
    assert_eq!(block_info(&logs.data).unwrap().0.signal, StoredSignal::Logs);
    assert!(encodings(&logs.data, "timestamp_ns").0.contains(&Encoding::DELTA_BINARY_PACKED));
    let err = decode_traces(logs.data).unwrap_err();
    assert!(err.to_string().contains("strata.signal"), "{err}");

    let traces = encode_traces(&[SpanRecord {
        trace_id: [1; 16],
        span_id: [2; 8],
        parent_span_id: Vec::new(),
        name: "GET /".into(),
        kind: 2,
        start_unix_nano: 5_000_000,
        end_unix_nano: 9_000_000,
        status_code: 0,
        service_name: "api".into(),
        resource: Bytes::from_static(b"r"),
        scope: Bytes::from_static(b"s"),
        span: Bytes::from_static(b"span"),
    }])
    .unwrap();
    assert_eq!((traces.min_time_ms, traces.max_time_ms), (5, 9));
    assert!(encodings(&traces.data, "trace_id").1, "trace_id has a bloom filter");
}

/// Writes the tiny metrics with `strata.schema_version` set to `version`.
fn metrics_file_claiming(version: &str) -> Bytes {
    let schema = metrics_schema();
    let source = decode_metrics(encode_metrics(&tiny_metrics()).unwrap().data).unwrap();
    let reencoded = encode_metrics(&source).unwrap();
    let batches: Vec<RecordBatch> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(reencoded.data, 1024)
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let properties = WriterProperties::builder()
        .set_key_value_metadata(Some(vec![
            KeyValue::new(KEY_SCHEMA_VERSION.into(), version.to_owned()),
            KeyValue::new(KEY_SIGNAL.into(), "metrics".to_owned()),
            KeyValue::new(KEY_TIER.into(), "raw".to_owned()),
        ]))
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, Arc::clone(&schema), Some(properties)).unwrap();
    for batch in &batches {
        writer.write(batch).unwrap();
    }
    writer.close().unwrap();
    Bytes::from(out)
}

#[test]
fn unknown_schema_version_is_refused_with_a_clear_error() {
    assert_eq!(decode_metrics(metrics_file_claiming("1")).unwrap().len(), 2);
    for version in ["2", "v1"] {
        let err = decode_metrics(metrics_file_claiming(version)).unwrap_err();
        assert!(matches!(err, BlockError::UnknownVersion { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(version) && text.contains("version 1"), "{text}");
    }
}

#[test]
fn a_file_without_strata_metadata_is_not_a_block() {
    let mut out = Vec::new();
    let schema = metrics_schema();
    let writer = ArrowWriter::try_new(&mut out, schema, None).unwrap();
    writer.close().unwrap();
    let err = decode_metrics(Bytes::from(out)).unwrap_err();
    assert!(matches!(err, BlockError::MissingMetadata { .. }), "{err:?}");
    assert!(err.to_string().contains("not a strata block"), "{err}");
}
