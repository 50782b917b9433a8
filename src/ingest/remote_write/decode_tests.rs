//! Tests of the zero-copy remote-write decoder.

use super::*;
use crate::model::wire::{put_bytes, put_double, put_int64, put_key, put_varint};

fn label(name: &str, value: &str) -> Vec<u8> {
    let mut out = Vec::new();
    put_bytes(&mut out, 1, name.as_bytes());
    put_bytes(&mut out, 2, value.as_bytes());
    out
}

fn sample(value: f64, ts: i64) -> Vec<u8> {
    let mut out = Vec::new();
    put_key(&mut out, 1, FIXED64);
    out.extend_from_slice(&value.to_bits().to_le_bytes());
    put_int64(&mut out, 2, ts);
    out
}

fn v1_body() -> Vec<u8> {
    let mut series = Vec::new();
    put_bytes(&mut series, 1, &label("__name__", "up"));
    put_bytes(&mut series, 1, &label("job", "node"));
    put_bytes(&mut series, 2, &sample(1.0, 1000));
    put_bytes(&mut series, 2, &sample(f64::from_bits(crate::model::STALE_NAN_BITS), 2000));
    let mut body = Vec::new();
    put_bytes(&mut body, 1, &series);
    let mut meta = Vec::new();
    put_key(&mut meta, 1, VARINT);
    put_varint(&mut meta, 2);
    put_bytes(&mut meta, 2, b"up");
    put_bytes(&mut meta, 4, b"target is up");
    put_bytes(&mut body, 3, &meta);
    body
}

#[test]
fn v1_decodes_labels_as_spans_and_keeps_stale_bits() {
    let body = v1_body();
    let mut decoded = DecodedWrite::default();
    decoded.decode(&body, Version::V1).unwrap();
    assert_eq!(decoded.series.len(), 1);
    let mut expected_key = Vec::new();
    crate::model::metrics::encode_label(&mut expected_key, b"__name__", b"up");
    crate::model::metrics::encode_label(&mut expected_key, b"job", b"node");
    assert_eq!(decoded.series[0].label_bytes.unwrap().get(&body), &expected_key[..]);
    assert!(decoded.labels.is_empty(), "1.0 labels are parsed on demand");
    let mut labels = Vec::new();
    parse_label_region(&body, decoded.series[0].label_bytes.unwrap(), &mut labels).unwrap();
    let names: Vec<&[u8]> = labels.iter().map(|l| l.name.get(&body)).collect();
    assert_eq!(names, [&b"__name__"[..], b"job"]);
    assert_eq!(labels[1].value.get(&body), b"node");
    assert_eq!(decoded.samples[1].value.to_bits(), crate::model::STALE_NAN_BITS);
    assert_eq!(decoded.metadata[0].metric_type, MetricType::Gauge);
    assert_eq!(decoded.metadata[0].help, "target is up");
}

#[test]
fn interleaved_v1_labels_are_parsed_eagerly_and_kept_contiguous() {
    let mut series = Vec::new();
    put_bytes(&mut series, 1, &label("__name__", "up"));
    put_bytes(&mut series, 2, &sample(1.0, 1));
    let mut exemplar = Vec::new();
    put_bytes(&mut exemplar, 1, &label("trace_id", "t"));
    put_bytes(&mut series, 3, &exemplar);
    put_bytes(&mut series, 1, &label("job", "node"));
    let mut body = Vec::new();
    put_bytes(&mut body, 1, &series);
    let mut decoded = DecodedWrite::default();
    decoded.decode(&body, Version::V1).unwrap();
    let raw = &decoded.series[0];
    assert_eq!(raw.label_bytes, None);
    let names: Vec<&[u8]> = decoded.labels[raw.labels.start as usize..raw.labels.end as usize]
        .iter()
        .map(|l| l.name.get(&body))
        .collect();
    assert_eq!(names, [&b"__name__"[..], b"job"], "exemplar labels must not mix in");
}

#[test]
fn v2_resolves_symbols_packed_and_unpacked() {
    let mut body = Vec::new();
    for symbol in ["", "__name__", "up", "job", "node", "help!"] {
        put_bytes(&mut body, 4, symbol.as_bytes());
    }
    let mut series = Vec::new();
    let mut packed = Vec::new();
    for r in [1u64, 2] {
        put_varint(&mut packed, r);
    }
    put_bytes(&mut series, 1, &packed);
    for r in [3u64, 4] {
        put_key(&mut series, 1, VARINT);
        put_varint(&mut series, r);
    }
    put_bytes(&mut series, 2, &sample(5.0, 7));
    let mut meta = Vec::new();
    put_key(&mut meta, 1, VARINT);
    put_varint(&mut meta, 1);
    put_key(&mut meta, 3, VARINT);
    put_varint(&mut meta, 5);
    put_bytes(&mut series, 5, &meta);
    put_int64(&mut series, 6, 42);
    put_bytes(&mut body, 5, &series);
    let mut decoded = DecodedWrite::default();
    decoded.decode(&body, Version::V2).unwrap();
    let labels: Vec<(&[u8], &[u8])> =
        decoded.labels.iter().map(|l| (l.name.get(&body), l.value.get(&body))).collect();
    assert_eq!(labels, [(&b"__name__"[..], &b"up"[..]), (b"job", b"node")]);
    let series = &decoded.series[0];
    assert_eq!(series.created_timestamp_ms, 42);
    let meta = series.metadata.unwrap();
    assert_eq!(meta.metric_type, 1);
    assert_eq!(meta.help.get(&body), b"help!");
    assert_eq!(decoded.samples[0], Sample { timestamp_ms: 7, value: 5.0 });
}

#[test]
fn v2_rejects_bad_symbol_tables() {
    let mut body = Vec::new();
    put_bytes(&mut body, 4, b"x");
    let err = DecodedWrite::default().decode(&body, Version::V2).unwrap_err();
    assert!(err.to_string().contains("must start with the empty string"), "{err}");

    let mut body = Vec::new();
    put_bytes(&mut body, 4, b"");
    let mut series = Vec::new();
    put_bytes(&mut series, 1, &[1, 9]);
    put_bytes(&mut body, 5, &series);
    let err = DecodedWrite::default().decode(&body, Version::V2).unwrap_err();
    assert!(err.to_string().contains("symbol reference 1 is out of range"), "{err}");

    let mut body = Vec::new();
    put_bytes(&mut body, 4, b"");
    let mut series = Vec::new();
    put_bytes(&mut series, 1, &[0]);
    put_bytes(&mut body, 5, &series);
    let err = DecodedWrite::default().decode(&body, Version::V2).unwrap_err();
    assert!(err.to_string().contains("odd length"), "{err}");
}

#[test]
fn truncation_anywhere_is_an_error_never_a_panic() {
    let body = v1_body();
    for cut in 0..body.len() {
        // Any prefix either decodes (cut at a field boundary) or errors; never panics.
        let _ = DecodedWrite::default().decode(&body[..cut], Version::V1);
        let _ = DecodedWrite::default().decode(&body[..cut], Version::V2);
    }
    let mut double = Vec::new();
    put_double(&mut double, 1, 1.5);
    assert!(DecodedWrite::default().decode(&[0x0a, 0x05, 0x0a], Version::V1).is_err());
}

#[test]
fn histograms_round_trip() {
    let histogram = Histogram {
        count: Some(crate::model::metrics::HistogramCount::Int(3)),
        sum: 4.5,
        schema: 3,
        positive_spans: vec![crate::model::metrics::BucketSpan { offset: -2, length: 2 }],
        positive_deltas: vec![1, 1],
        timestamp: 99,
        ..Histogram::default()
    };
    let mut series = Vec::new();
    put_bytes(&mut series, 1, &label("__name__", "h"));
    put_bytes(&mut series, 4, &histogram.encode_to_vec());
    let mut body = Vec::new();
    put_bytes(&mut body, 1, &series);
    let mut decoded = DecodedWrite::default();
    decoded.decode(&body, Version::V1).unwrap();
    assert_eq!(decoded.histograms, vec![histogram]);
}
