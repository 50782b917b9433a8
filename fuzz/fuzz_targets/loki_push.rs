//! The whole Loki push receive path minus HTTP: content negotiation → gzip/deflate/snappy
//! (capped) → protobuf or JSON decoding → validation → relabeling → `LogBatch`.
//!
//! Input: the first byte picks the headers and whether the rest is sent as it is or first
//! wrapped the way those headers say (snappy for protobuf, then gzip or deflate), so both the
//! decompressors' error paths and the decoders behind them are reached:
//!
//! * bits 0-2: Content-Type (none, `application/x-protobuf`, `application/json`,
//!   `application/json; charset=utf-8`, `text/plain`, empty, `application/protobuf`,
//!   `application/octet-stream`);
//! * bits 3-4: Content-Encoding (none, `snappy`, `gzip`, `deflate`);
//! * bit 5: wrap the rest as the headers say.
//!
//! What is accepted must re-encode (`sinks::loki::encode`) into a body that decodes back to the
//! same streams and entries, and each stream's selector must parse back to its labels.
//! `max_decoded_size` is 4 MiB, as in `remote_write_receive`, so a lying snappy header does not
//! cost a 128 MiB zero-fill per input.
#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strata::config::{ByteSize, LokiIngestConfig};
use strata::ingest::loki::decode::{decode_push_request, DecodedPush, StreamLabels};
use strata::ingest::loki::selector::parse_selector;
use strata::ingest::loki::LokiIngest;
use strata::model::{Labels, Tenant};
use strata::relabel::{Action, RelabelConfig};
use strata::sinks::loki::encode::encode_push_request;

const NOW_NS: i64 = 1_700_000_000_000_000_000;

const CONTENT_TYPES: [Option<&str>; 8] = [
    None,
    Some("application/x-protobuf"),
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("text/plain"),
    Some(""),
    Some("application/protobuf"),
    Some("application/octet-stream"),
];
const ENCODINGS: [Option<&str>; 4] = [None, Some("snappy"), Some("gzip"), Some("deflate")];

fn ingest() -> &'static LokiIngest {
    static INGEST: OnceLock<LokiIngest> = OnceLock::new();
    INGEST.get_or_init(|| {
        let config = LokiIngestConfig {
            relabel_configs: vec![
                RelabelConfig {
                    source_labels: vec!["level".into()],
                    regex: "debug".into(),
                    action: Action::Drop,
                    ..RelabelConfig::default()
                },
                RelabelConfig {
                    regex: "k8s_(.*)".into(),
                    replacement: "$1".into(),
                    action: Action::LabelMap,
                    ..RelabelConfig::default()
                },
                RelabelConfig {
                    regex: "filename|k8s_.*".into(),
                    action: Action::LabelDrop,
                    ..RelabelConfig::default()
                },
            ],
            max_decoded_size: ByteSize::mib(4),
            max_line_size: ByteSize::kib(1),
            max_line_size_truncate: true,
            ..LokiIngestConfig::default()
        };
        let catalog = strata::telemetry::Catalog::new();
        LokiIngest::new(&config, &catalog).expect("the fuzz relabel config is valid")
    })
}

/// Wraps `payload` as the headers say: snappy for protobuf, then the transfer encoding.
fn wrap(payload: &[u8], content_type: Option<&str>, encoding: Option<&str>) -> Vec<u8> {
    let json = content_type.is_some_and(|t| t.starts_with("application/json"));
    let message = if json {
        payload.to_vec()
    } else {
        snap::raw::Encoder::new().compress_vec(payload).expect("snappy compresses any input")
    };
    let level = flate2::Compression::fast();
    match encoding {
        Some("gzip") => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
            encoder.write_all(&message).expect("in-memory write");
            encoder.finish().expect("in-memory write")
        }
        Some("deflate") => {
            let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), level);
            encoder.write_all(&message).expect("in-memory write");
            encoder.finish().expect("in-memory write")
        }
        _ => message,
    }
}

fn check_accepted(received: &strata::ingest::loki::LokiReceived) {
    let _ = received.rejection_message();
    assert!(received.rejected_streams <= received.rejected_entries);
    let mut body = Vec::new();
    let streams = received.batch.streams.iter().map(|s| (&*s.stream, &s.entries[..]));
    encode_push_request(streams, &mut body);
    let body = Bytes::from(body);
    let mut decoded = DecodedPush::default();
    if let Err(err) = decode_push_request(&body, &mut decoded) {
        panic!("re-encoded push does not decode: {err}");
    }
    assert_eq!(decoded.streams.len(), received.batch.streams.len());
    for (got, want) in decoded.streams.iter().zip(&received.batch.streams) {
        assert!(!want.entries.is_empty(), "empty streams are not forwarded");
        assert_eq!(got.entries, want.entries);
        let StreamLabels::Selector(selector) = got.labels else { panic!("protobuf labels") };
        assert_eq!(selector, want.stream.selector.as_bytes());
        let text = std::str::from_utf8(selector).expect("selectors are UTF-8");
        let mut labels = Vec::new();
        parse_selector(text, &mut labels).expect("canonical selectors parse");
        assert_eq!(Labels::from_unsorted(labels), want.stream.labels);
        for entry in &want.entries {
            assert!(entry.line.len() <= 1024, "max_line_size_truncate");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else { return };
    let content_type = CONTENT_TYPES[usize::from(selector & 7)];
    let encoding = ENCODINGS[usize::from((selector >> 3) & 3)];
    let body = if selector & 0x20 != 0 {
        Bytes::from(wrap(payload, content_type, encoding))
    } else {
        Bytes::copy_from_slice(payload)
    };
    let tenant: Tenant = "fuzz".into();
    if let Ok(received) = ingest().receive(&tenant, content_type, encoding, body, NOW_NS) {
        check_accepted(&received);
    }
});
