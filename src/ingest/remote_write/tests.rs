use std::sync::Arc;

use super::*;
use crate::config::RemoteWriteIngestConfig;
use crate::model::{Labels, MetricBatch, Sample, Series, STALE_NAN_BITS};
use crate::sinks::remote_write::encode::{encode_v1, encode_v2, EncodeOptions};
use crate::telemetry::Catalog;

const OPTIONS: EncodeOptions = EncodeOptions { send_exemplars: true, send_native_histograms: true };

/// Builds a request body from label pairs, bypassing `Labels` so invalid input can be sent.
fn raw_v1(series: &[&[(&str, &str)]]) -> Vec<u8> {
    use crate::model::wire::{put_bytes, put_key, put_varint, FIXED64, VARINT};
    let mut body = Vec::new();
    for labels in series {
        let mut ts = Vec::new();
        for (name, value) in *labels {
            crate::model::metrics::encode_label(&mut ts, name.as_bytes(), value.as_bytes());
        }
        let mut sample = Vec::new();
        put_key(&mut sample, 1, FIXED64);
        sample.extend_from_slice(&1.5f64.to_bits().to_le_bytes());
        put_key(&mut sample, 2, VARINT);
        put_varint(&mut sample, 1000);
        put_bytes(&mut ts, 2, &sample);
        put_bytes(&mut body, 1, &ts);
    }
    snap::raw::Encoder::new().compress_vec(&body).unwrap()
}

fn ingest(config: &RemoteWriteIngestConfig) -> RemoteWriteIngest {
    RemoteWriteIngest::new(config, &Catalog::new()).unwrap()
}

fn names(batch: &MetricBatch) -> Vec<String> {
    batch.iter().map(|v| v.series.labels.to_string()).collect()
}

#[test]
fn negotiation_follows_the_spec() {
    assert_eq!(negotiate(None, None).unwrap(), Version::V1);
    assert_eq!(negotiate(Some("application/x-protobuf"), Some("snappy")).unwrap(), Version::V1);
    assert_eq!(
        negotiate(Some("application/x-protobuf;proto=prometheus.WriteRequest"), None).unwrap(),
        Version::V1
    );
    assert_eq!(negotiate(Some(CONTENT_TYPE_V2), Some("snappy")).unwrap(), Version::V2);
    assert_eq!(
        negotiate(Some("application/x-protobuf; proto=\"io.prometheus.write.v2.Request\""), None)
            .unwrap(),
        Version::V2
    );
    for (content_type, encoding) in [
        (Some("application/json"), None),
        (Some("application/x-protobuf;proto=io.prometheus.write.v3.Request"), None),
        (Some("application/x-protobuf"), Some("gzip")),
    ] {
        let err = negotiate(content_type, encoding).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::UnsupportedMediaType, "{err}");
    }
}

#[test]
fn v1_and_v2_bodies_become_the_same_batch() {
    let mut batch = MetricBatch::default();
    for i in 0..50 {
        let labels =
            Labels::from_pairs([("__name__", "m"), ("i", i.to_string().as_str()), ("job", "j")]);
        let value = if i == 7 { f64::from_bits(STALE_NAN_BITS) } else { i as f64 };
        batch.push(
            Arc::new(Series::new(labels)),
            &[Sample { timestamp_ms: 1000 + i, value }],
            &[],
            &[],
            None,
            0,
        );
    }
    let receiver = ingest(&RemoteWriteIngestConfig::default());
    for version in [Version::V1, Version::V2] {
        let mut raw = Vec::new();
        match version {
            Version::V1 => encode_v1(std::slice::from_ref(&batch), OPTIONS, &mut raw),
            Version::V2 => encode_v2(std::slice::from_ref(&batch), OPTIONS, &mut raw),
        }
        let compressed = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        let received = receiver.receive(&compressed, version, &mut Scratch::default()).unwrap();
        assert_eq!(received.rejected_series, 0);
        assert_eq!(names(&received.batch), names(&batch), "{version:?}");
        let values: Vec<u64> =
            received.batch.iter().map(|v| v.samples[0].value.to_bits()).collect();
        let expected: Vec<u64> = batch.iter().map(|v| v.samples[0].value.to_bits()).collect();
        assert_eq!(values, expected, "{version:?}: values bit-exact incl. the stale marker");
    }
}

#[test]
fn invalid_series_are_rejected_and_the_valid_rest_kept() {
    let receiver = ingest(&RemoteWriteIngestConfig::default());
    let body = raw_v1(&[
        &[("__name__", "good_one"), ("job", "a")],
        &[("__name__", "bad"), ("bad-name", "x")],
        &[("job", "a"), ("__name__", "unsorted")],
        &[("job", "no_name")],
        &[("__name__", "good_two")],
    ]);
    let received = receiver.receive(&body, Version::V1, &mut Scratch::default()).unwrap();
    assert_eq!(names(&received.batch), ["good_one{job=\"a\"}", "good_two{}"]);
    assert_eq!(received.rejected_series, 3);
    assert_eq!(received.rejected_samples, 3);
    let message = received.rejection_message().unwrap();
    assert!(
        message.contains("series bad{bad-name=\"x\"}: invalid label name \"bad-name\""),
        "{message}"
    );
    assert!(message.contains("not sorted"), "{message}");
    assert!(message.contains("missing metric name"), "{message}");
    assert!(message.contains("valid rest of the request was accepted"), "{message}");
}

#[test]
fn invalid_utf8_is_rejected() {
    let receiver = ingest(&RemoteWriteIngestConfig::default());
    use crate::model::wire::put_bytes;
    let mut ts = Vec::new();
    crate::model::metrics::encode_label(&mut ts, b"__name__", b"ok");
    crate::model::metrics::encode_label(&mut ts, b"job", &[0xff, 0xfe]);
    let mut body = Vec::new();
    put_bytes(&mut body, 1, &ts);
    let compressed = snap::raw::Encoder::new().compress_vec(&body).unwrap();
    let received = receiver.receive(&compressed, Version::V1, &mut Scratch::default()).unwrap();
    assert_eq!(received.rejected_series, 1);
    assert!(received.rejection_message().unwrap().contains("not valid UTF-8"));
}

#[test]
fn relabeling_drops_and_rewrites_and_is_cached() {
    let config: RemoteWriteIngestConfig = serde_yaml::from_str(
        r#"
metric_relabel_configs:
  - source_labels: [__name__]
    regex: go_.*
    action: drop
  - target_label: cluster
    replacement: eu1
"#,
    )
    .unwrap();
    let catalog = Catalog::new();
    let receiver = RemoteWriteIngest::new(&config, &catalog).unwrap();
    let body = raw_v1(&[&[("__name__", "go_goroutines")], &[("__name__", "up"), ("job", "n")]]);
    for _ in 0..3 {
        let received = receiver.receive(&body, Version::V1, &mut Scratch::default()).unwrap();
        assert_eq!(names(&received.batch), ["up{cluster=\"eu1\", job=\"n\"}"]);
        assert_eq!(received.rejected_series, 0, "relabel drops are not rejections");
    }
    let text = catalog.encode_text();
    assert!(text.contains("strata_relabel_cache_misses_total{cache=\"ingest\"} 2"), "{text}");
    assert!(text.contains("strata_relabel_cache_hits_total{cache=\"ingest\"} 4"), "{text}");
    assert!(
        text.contains(
            "strata_ingest_items_dropped_total{protocol=\"remote_write_v1\",reason=\"relabel\"} 3"
        ),
        "{text}"
    );
    assert!(
        text.contains("strata_ingest_samples_received_total{protocol=\"remote_write_v1\"} 6"),
        "{text}"
    );
}

#[test]
fn relabeling_away_the_metric_name_drops_with_its_own_reason() {
    let config: RemoteWriteIngestConfig =
        serde_yaml::from_str("metric_relabel_configs: [{action: labeldrop, regex: __name__}]")
            .unwrap();
    let catalog = Catalog::new();
    let receiver = RemoteWriteIngest::new(&config, &catalog).unwrap();
    let received = receiver
        .receive(&raw_v1(&[&[("__name__", "up")]]), Version::V1, &mut Scratch::default())
        .unwrap();
    assert!(received.batch.is_empty());
    assert!(catalog
        .encode_text()
        .contains("strata_ingest_items_dropped_total{protocol=\"remote_write_v1\",reason=\"no_metric_name\"} 1"));
}

#[test]
fn decoded_size_cap_applies() {
    let config = RemoteWriteIngestConfig {
        max_body_size: crate::config::ByteSize(100),
        max_decoded_size: crate::config::ByteSize(100),
        ..RemoteWriteIngestConfig::default()
    };
    let receiver = ingest(&config);
    let labels: Vec<(String, String)> =
        (0..20).map(|i| (format!("l{i:02}"), "v".repeat(10))).collect();
    let mut pairs: Vec<(&str, &str)> = vec![("__name__", "m")];
    pairs.extend(labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let body = raw_v1(&[&pairs]);
    let err = receiver.receive(&body, Version::V1, &mut Scratch::default()).unwrap_err();
    assert_eq!(err.kind(), crate::error::ErrorKind::TooLarge, "{err}");
}

#[test]
fn garbage_is_a_bad_request_naming_the_message() {
    let receiver = ingest(&RemoteWriteIngestConfig::default());
    let compressed = snap::raw::Encoder::new().compress_vec(&[0x0a, 0x50, 0x01]).unwrap();
    let err = receiver.receive(&compressed, Version::V1, &mut Scratch::default()).unwrap_err();
    assert_eq!(err.kind(), crate::error::ErrorKind::BadRequest);
    assert!(
        err.to_string()
            .starts_with("cannot decode prometheus.WriteRequest: invalid protobuf at byte"),
        "{err}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
    /// Fuzz-style property: arbitrary bytes never panic the decoder or the receiver, for both
    /// versions, snappy-wrapped or not.
    #[test]
    fn arbitrary_bodies_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let receiver = ingest(&RemoteWriteIngestConfig::default());
        let compressed = snap::raw::Encoder::new().compress_vec(&bytes).unwrap();
        for version in [Version::V1, Version::V2] {
            let _ = receiver.receive(&bytes, version, &mut Scratch::default());
            let _ = receiver.receive(&compressed, version, &mut Scratch::default());
        }
    }
}

#[test]
fn batches_from_other_protocols_get_the_same_validation_and_relabeling() {
    let config: RemoteWriteIngestConfig = serde_yaml::from_str(
        r#"
limits: {max_label_value_length: 10}
metric_relabel_configs:
  - source_labels: [__name__]
    regex: go_.*
    action: drop
  - target_label: cluster
    replacement: eu1
"#,
    )
    .unwrap();
    let catalog = Catalog::new();
    let receiver = RemoteWriteIngest::new(&config, &catalog).unwrap();
    let mut batch = MetricBatch::default();
    for labels in [
        Labels::from_pairs([("__name__", "go_gc")]),
        Labels::from_pairs([("__name__", "req_total"), ("job", "checkout")]),
        Labels::from_pairs([("__name__", "up"), ("job", "much-too-long")]),
    ] {
        let sample = Sample { timestamp_ms: 1, value: 1.0 };
        batch.push(Arc::new(Series::new(labels)), &[sample], &[], &[], None, 0);
    }
    let metrics = catalog.ingest("otlp_http");
    let received = receiver.admit_batch(&batch, &metrics);
    assert_eq!(names(&received.batch), ["req_total{cluster=\"eu1\", job=\"checkout\"}"]);
    assert_eq!(received.rejected_series, 1);
    assert!(received.rejections[0].contains("much-too-long"), "{:?}", received.rejections);
    let text = catalog.encode_text();
    assert!(text.contains(
        "strata_ingest_items_dropped_total{protocol=\"otlp_http\",reason=\"relabel\"} 1"
    ));
}
