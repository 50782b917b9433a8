//! `OtlpIngest` end to end (without transport): content negotiation, caps, the three signals,
//! both encodings, metrics by protocol.

use std::io::Write;

use prost::Message;

use super::*;
use crate::config::ByteSize;

const TRACE_JSON: &str = include_str!("testdata/trace.json");
const LOGS_JSON: &str = include_str!("testdata/logs.json");
const METRICS_JSON: &str = include_str!("testdata/metrics.json");

fn ingest(config: &OtlpIngestConfig) -> (OtlpIngest, Catalog) {
    let catalog = Catalog::new();
    (OtlpIngest::new(config, "fake", &catalog).unwrap(), catalog)
}

fn gzip(data: &[u8]) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    Bytes::from(encoder.finish().unwrap())
}

const PROTOBUF: Option<&str> = Some("application/x-protobuf");
const JSON: Option<&str> = Some("application/json");

#[test]
fn traces_over_http_in_every_encoding_give_the_same_batch() {
    let (ingest, catalog) = ingest(&OtlpIngestConfig::default());
    let tenant: Tenant = "team-a".into();
    let from_json =
        ingest.traces_http(&tenant, JSON, None, Bytes::from_static(TRACE_JSON.as_bytes())).unwrap();
    let request = from_json.batch.to_request().unwrap();
    assert_eq!(request, serde_json::from_str(TRACE_JSON).unwrap());
    let body = request.encode_to_vec();
    let from_protobuf =
        ingest.traces_http(&tenant, PROTOBUF, None, Bytes::from(body.clone())).unwrap();
    let (body_gzip, json_gzip) = (gzip(&body), gzip(TRACE_JSON.as_bytes()));
    let sent = (TRACE_JSON.len() + body.len() + body_gzip.len() + json_gzip.len()) as u64;
    let from_gzip = ingest.traces_http(&tenant, PROTOBUF, Some("gzip"), body_gzip).unwrap();
    let json_gzip = ingest.traces_http(&tenant, JSON, Some("gzip"), json_gzip).unwrap();
    for accepted in [&from_protobuf, &from_gzip, &json_gzip] {
        assert_eq!(accepted.batch.to_request().unwrap(), request);
        assert_eq!(&*accepted.batch.tenant, "team-a");
        assert_eq!(accepted.rejected, 0);
    }
    // Through gRPC's entry point the same, counted under otlp_grpc.
    assert_eq!(ingest.traces(&tenant, request.clone()).batch.to_request().unwrap(), request);
    assert_eq!(ingest.http_metrics().spans.get(), 4);
    assert_eq!(ingest.grpc_metrics().spans.get(), 1);
    assert_eq!(ingest.http_metrics().bytes.get(), sent, "bodies are counted as sent");
    assert!(catalog
        .encode_text()
        .contains(r#"strata_ingest_spans_received_total{protocol="otlp_http"} 4"#));
}

#[test]
fn unsupported_types_and_encodings_are_415_and_caps_413() {
    let config =
        OtlpIngestConfig { max_http_body_size: ByteSize::from_bytes(300), ..Default::default() };
    let (ingest, _) = ingest(&config);
    let tenant: Tenant = "t".into();
    let body = Bytes::from_static(b"{}");
    let err = ingest.traces_http(&tenant, Some("text/plain"), None, body.clone()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnsupportedMediaType);
    let err = ingest.logs_http(&tenant, None, None, body.clone()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnsupportedMediaType);
    let err = ingest.decode_metrics_http(JSON, Some("br"), body.clone()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnsupportedMediaType);
    // 1 KiB of JSON whitespace compresses to a few bytes but is over the cap once inflated.
    let padded = format!("{{{}}}", " ".repeat(1024));
    let err = ingest.traces_http(&tenant, JSON, Some("gzip"), gzip(padded.as_bytes())).unwrap_err();
    assert_eq!((err.kind(), err), (ErrorKind::TooLarge, OtlpError::TooLarge { limit: 300 }));
    assert_eq!(ingest.max_http_body_size(), 300);
    let err =
        ingest.traces_http(&tenant, PROTOBUF, None, Bytes::from_static(&[0x0a, 9])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest);
}

#[test]
fn logs_over_http_in_both_encodings() {
    let (ingest, _) = ingest(&OtlpIngestConfig::default());
    let tenant: Tenant = "t".into();
    let from_json = ingest.logs_http(&tenant, JSON, None, Bytes::from_static(LOGS_JSON.as_bytes()));
    let from_json = from_json.unwrap();
    let request: ExportLogsServiceRequest = serde_json::from_str(LOGS_JSON).unwrap();
    let from_protobuf =
        ingest.logs_http(&tenant, PROTOBUF, Some("gzip"), gzip(&request.encode_to_vec())).unwrap();
    for accepted in [&from_json, &from_protobuf] {
        assert_eq!(accepted.batch.entry_count(), 1);
        assert_eq!(&*accepted.batch.streams[0].stream.selector, r#"{service_name="my.service"}"#);
    }
    assert_eq!(from_json.batch.streams[0].entries[0], from_protobuf.batch.streams[0].entries[0]);
    assert_eq!(ingest.http_metrics().log_entries.get(), 2);
    assert!(ingest.http_metrics().log_bytes.get() > 0);
    assert_eq!(ingest.logs(&tenant, request).batch.entry_count(), 1);
    assert_eq!(ingest.grpc_metrics().log_entries.get(), 1);
}

#[test]
fn metrics_are_decoded_for_the_translator() {
    let (ingest, _) = ingest(&OtlpIngestConfig::default());
    let from_json = ingest
        .decode_metrics_http(JSON, None, Bytes::from_static(METRICS_JSON.as_bytes()))
        .unwrap();
    let body = from_json.encode_to_vec();
    let from_protobuf = ingest.decode_metrics_http(PROTOBUF, Some("gzip"), gzip(&body)).unwrap();
    assert_eq!(from_json, from_protobuf);
    assert_eq!(from_json.resource_metrics[0].scope_metrics[0].metrics.len(), 3);
}

#[test]
fn resource_relabel_configs_apply_to_traces_and_logs() {
    let config: OtlpIngestConfig = serde_yaml::from_str(
        r#"
resource_relabel_configs:
  - source_labels: [service.name]
    target_label: service.name
    regex: my\.(.*)
    replacement: renamed-$1
"#,
    )
    .unwrap();
    let (ingest, catalog) = ingest(&config);
    let tenant: Tenant = "t".into();
    let traces = ingest.traces_http(&tenant, JSON, None, Bytes::from_static(TRACE_JSON.as_bytes()));
    let resource = &traces.unwrap().batch.resources[0].resource.resource;
    assert_eq!(
        resource.attributes[0].value.as_ref().unwrap().value,
        Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
            "renamed-service".into()
        ))
    );
    let logs = ingest.logs_http(&tenant, JSON, None, Bytes::from_static(LOGS_JSON.as_bytes()));
    assert_eq!(
        &*logs.unwrap().batch.streams[0].stream.selector,
        r#"{service_name="renamed-service"}"#
    );
    assert!(catalog
        .encode_text()
        .contains(r#"strata_relabel_cache_misses_total{cache="otlp_ingest"} 1"#));
}

#[test]
fn invalid_relabel_rules_fail_construction() {
    let config: OtlpIngestConfig =
        serde_yaml::from_str("resource_relabel_configs: [{regex: '(', action: keep}]").unwrap();
    let err = OtlpIngest::new(&config, "fake", &Catalog::new()).unwrap_err();
    assert_eq!(err.rule(), 0);
}
