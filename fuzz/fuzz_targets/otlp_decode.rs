//! The three OTLP/HTTP decoders (`OtlpIngest::traces_http`, `logs_http`, `decode_metrics_http`)
//! on arbitrary bodies, with resource relabeling on.
//!
//! Input: the first byte picks the call: bits 0-1 the signal (0 and 3 traces, 1 metrics,
//! 2 logs), bit 2 JSON instead of protobuf, bit 3 `Content-Encoding: gzip`; the rest is the body.
//! Checked: no panic; failures are 400/413 kinds, never 5xx; an accepted protobuf trace body is
//! one prost accepts too, with the same number of spans, and the batch's spans decode.
#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use strata::config::OtlpIngestConfig;
use strata::error::ErrorKind;
use strata::ingest::otlp::OtlpIngest;
use strata::model::Tenant;
use strata::telemetry::Catalog;

fn ingest() -> &'static OtlpIngest {
    static INGEST: OnceLock<OtlpIngest> = OnceLock::new();
    INGEST.get_or_init(|| {
        let config: OtlpIngestConfig = serde_yaml::from_str(
            r#"
max_http_body_size: 1MiB
resource_relabel_configs:
  - source_labels: [service.name]
    regex: (.*)-canary
    target_label: service.name
  - regex: tmp\..*
    action: labeldrop
"#,
        )
        .expect("fuzz config");
        OtlpIngest::new(&config, "fuzz", &Catalog::new()).expect("fuzz ingest")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let content_type =
        Some(if selector & 4 == 0 { "application/x-protobuf" } else { "application/json" });
    let encoding = (selector & 8 != 0).then_some("gzip");
    let tenant: Tenant = "fuzz".into();
    let ingest = ingest();
    let body = Bytes::copy_from_slice(body);
    let error_kind = match selector & 3 {
        1 => ingest.decode_metrics_http(content_type, encoding, body).err().map(|e| e.kind()),
        2 => ingest.logs_http(&tenant, content_type, encoding, body).err().map(|e| e.kind()),
        _ => match ingest.traces_http(&tenant, content_type, encoding, body.clone()) {
            Err(err) => Some(err.kind()),
            Ok(accepted) => {
                let request = accepted.batch.to_request().expect("an accepted batch decodes");
                for resource in &accepted.batch.resources {
                    resource.decode_scope_spans().expect("accepted spans decode");
                }
                let batch_spans: usize = request
                    .resource_spans
                    .iter()
                    .flat_map(|r| &r.scope_spans)
                    .map(|s| s.spans.len())
                    .sum();
                assert_eq!(batch_spans, accepted.batch.span_count());
                if content_type == Some("application/x-protobuf") && encoding.is_none() {
                    let direct = ExportTraceServiceRequest::decode(body)
                        .expect("what the walk accepts, prost decodes");
                    let sent: usize = direct
                        .resource_spans
                        .iter()
                        .flat_map(|r| &r.scope_spans)
                        .map(|s| s.spans.len())
                        .sum();
                    assert_eq!(sent, batch_spans + accepted.rejected as usize);
                }
                None
            }
        },
    };
    if let Some(kind) = error_kind {
        assert!(
            matches!(kind, ErrorKind::BadRequest | ErrorKind::TooLarge),
            "unexpected error kind {kind:?}"
        );
    }
});
