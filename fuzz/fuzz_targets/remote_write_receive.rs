//! The whole remote-write receive path minus HTTP: snappy (capped) → decode → validation →
//! `metric_relabel_configs` → `MetricBatch`, for both protocol versions.
//!
//! Each input is fed raw (mostly an invalid snappy block, which exercises the snappy header
//! and cap) and snappy-compressed (which reaches the decoder), as 1.0 and as 2.0. What is
//! accepted must re-encode (1.0 and 2.0) into bodies that decode back to the same series.
//!
//! `max_decoded_size` is lowered from the default 128 MiB to 4 MiB: the decoder zero-fills the
//! length a snappy header claims before it finds the block truncated, so with the default a
//! 4-byte input costs a 128 MiB allocation, and throughput drops from ~7,000 to ~1,800
//! execs/s. No input up to `-max_len=65536` decodes to more than 4 MiB (snappy expands at most
//! ~22x).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use strata::config::{ByteSize, RemoteWriteIngestConfig};
use strata::ingest::remote_write::{DecodedWrite, RemoteWriteIngest, Scratch, Version};
use strata::model::Label;
use strata::relabel::{Action, RelabelConfig};
use strata::sinks::remote_write::encode::{encode_v1, encode_v2, EncodeOptions};

const OPTIONS: EncodeOptions = EncodeOptions { send_exemplars: true, send_native_histograms: true };

fn ingest() -> &'static RemoteWriteIngest {
    static INGEST: OnceLock<RemoteWriteIngest> = OnceLock::new();
    INGEST.get_or_init(|| {
        let config = RemoteWriteIngestConfig {
            metric_relabel_configs: vec![
                RelabelConfig {
                    source_labels: vec!["__name__".into()],
                    regex: "go_(gc|memstats)_.*".into(),
                    action: Action::Drop,
                    ..RelabelConfig::default()
                },
                RelabelConfig {
                    source_labels: vec!["instance".into(), "job".into()],
                    regex: "([^:]*):.*;(.+)".into(),
                    target_label: "node_${1}".into(),
                    replacement: "$2".into(),
                    ..RelabelConfig::default()
                },
                RelabelConfig {
                    regex: "tmp_.*".into(),
                    action: Action::LabelDrop,
                    ..RelabelConfig::default()
                },
            ],
            max_decoded_size: ByteSize::mib(4),
            ..RemoteWriteIngestConfig::default()
        };
        let catalog = strata::telemetry::Catalog::new();
        RemoteWriteIngest::new(&config, &catalog).expect("the fuzz relabel config is valid")
    })
}

/// Re-encodes what was accepted and checks it decodes back to the same series.
fn check_round_trip(batch: &strata::model::MetricBatch, version: Version) {
    let mut body = Vec::new();
    match version {
        Version::V1 => encode_v1(std::slice::from_ref(batch), OPTIONS, &mut body),
        Version::V2 => encode_v2(std::slice::from_ref(batch), OPTIONS, &mut body),
    }
    let mut decoded = DecodedWrite::default();
    if let Err(err) = decoded.decode(&body, version) {
        panic!("re-encoded {version:?} body does not decode: {err}");
    }
    assert_eq!(decoded.series.len(), batch.series_count(), "{version:?} series count");
    assert_eq!(decoded.samples.len(), batch.sample_count(), "{version:?} sample count");
    assert_eq!(decoded.histograms.len(), batch.histogram_count(), "{version:?} histograms");
    assert_eq!(decoded.exemplars.len(), batch.exemplar_count(), "{version:?} exemplars");
    for (raw, view) in decoded.series.iter().zip(batch.iter()) {
        let labels = decoded.labels_of(&body, raw).expect("labels of a re-encoded series");
        let labels: Vec<Label> = labels
            .iter()
            .map(|l| {
                Label::new(
                    String::from_utf8(l.name.get(&body).to_vec()).expect("utf-8 name"),
                    String::from_utf8(l.value.get(&body).to_vec()).expect("utf-8 value"),
                )
            })
            .collect();
        assert_eq!(labels.as_slice(), view.series.labels.as_slice(), "{version:?} labels");
    }
}

fn receive(body: &[u8], version: Version) {
    let ingest = ingest();
    let mut scratch = Scratch::default();
    if let Ok(received) = ingest.receive(body, version, &mut scratch) {
        let _ = received.rejection_message();
        assert!(received.rejections.len() <= received.rejected_series);
        check_round_trip(&received.batch, Version::V1);
        check_round_trip(&received.batch, Version::V2);
    }
}

fuzz_target!(|data: &[u8]| {
    // The snappy cap on its own, as the raw body (a bomb header is refused before allocating).
    let _ = strata::ingest::snappy_decompress_capped(data, 1 << 20);

    let compressed =
        snap::raw::Encoder::new().compress_vec(data).expect("snappy compresses any input");
    for version in [Version::V1, Version::V2] {
        receive(data, version);
        receive(&compressed, version);
    }
});
