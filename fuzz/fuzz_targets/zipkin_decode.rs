//! Zipkin v2 ingest on arbitrary bodies: `decode_spans` → `to_request` → `TraceBatch`, and
//! the whole `ZipkinIngest::receive` with the input sent plain, gzip-compressed by the target,
//! and as if it were gzip itself (which exercises the inflate cap on bomb seeds).
//!
//! Checked: a translated request has one span per non-`null` element, 16-byte trace ids,
//! 8-byte span ids and parents that are empty or 8 bytes, and it survives `TraceBatch`'s
//! encoding unchanged; a rejected span's index is within the body; sending the same
//! JSON plain or gzipped gives the same answer.
//!
//! `max_body_size` is 1 MiB so that a 64 KiB gzip input can reach the cap.
#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strata::config::{ByteSize, ZipkinIngestConfig};
use strata::ingest::zipkin::decode::decode_spans;
use strata::ingest::zipkin::translate::to_request;
use strata::ingest::zipkin::{ZipkinError, ZipkinIngest};
use strata::model::{Tenant, TraceBatch};

fn ingest() -> &'static ZipkinIngest {
    static INGEST: OnceLock<ZipkinIngest> = OnceLock::new();
    INGEST.get_or_init(|| {
        let config = ZipkinIngestConfig { max_body_size: ByteSize::mib(1) };
        ZipkinIngest::new(&config, &strata::telemetry::Catalog::new())
    })
}

fn tenant() -> Tenant {
    "fuzz".into()
}

fn check_decode_and_translate(data: &[u8]) {
    let spans = match decode_spans(data) {
        Ok(spans) => spans,
        Err(ZipkinError::Span { index, .. }) => {
            // Element `index` comes after `[` and `index` commas.
            assert!(index < data.len(), "span index {index} in a {}-byte body", data.len());
            return;
        }
        Err(_) => return,
    };
    let span_count = spans.iter().flatten().count();
    let Ok(request) = to_request(&spans) else { return };
    let mut translated = 0;
    for resource_spans in &request.resource_spans {
        assert!(!resource_spans.scope_spans.is_empty(), "a resource without scopes");
        for scope_spans in &resource_spans.scope_spans {
            assert!(!scope_spans.spans.is_empty(), "a scope without spans");
            for span in &scope_spans.spans {
                assert_eq!(span.trace_id.len(), 16);
                assert_eq!(span.span_id.len(), 8);
                assert!(matches!(span.parent_span_id.len(), 0 | 8));
                assert!(span.start_time_unix_nano <= span.end_time_unix_nano);
                translated += 1;
            }
        }
    }
    assert_eq!(translated, span_count, "every non-null element becomes one span");
    let batch = TraceBatch::from_request(tenant(), request.clone());
    assert_eq!(batch.span_count(), span_count);
    assert_eq!(batch.to_request().expect("the batch re-decodes"), request);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

fuzz_target!(|data: &[u8]| {
    check_decode_and_translate(data);

    let ingest = ingest();
    let receive = |body: Vec<u8>, encoding: Option<&str>| {
        ingest
            .receive(&tenant(), Some("application/json"), encoding, Bytes::from(body))
            .map(|batch| batch.to_request().expect("the batch re-decodes"))
            .map_err(|e| e.to_string())
    };
    let plain = receive(data.to_vec(), None);
    let gzipped = receive(gzip(data), Some("gzip"));
    assert_eq!(plain, gzipped, "plain and gzip bodies disagree");
    // The input as a gzip body: mostly invalid, sometimes a bomb; never more than the cap.
    let _ = receive(data.to_vec(), Some("gzip"));
});
