//! The receive path: negotiation, gzip and its cap, error messages and kinds, metrics, and a
//! Dapr-style request end to end.

use std::io::Write;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};

use super::*;
use crate::config::ByteSize;

/// What a Dapr sidecar pair sends for one service invocation: the caller's CLIENT span and the
/// callee's SERVER span share the span id (`shared: true` on the server side), plus a local
/// span of the callee with a 64-bit trace id from an older tracer.
pub(super) const DAPR: &str = r#"[
  {
    "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
    "parentId": "00f067aa0ba902b7",
    "id": "a2fb4a1d1a96d312",
    "kind": "CLIENT",
    "name": "/dapr.proto.runtime.v1.dapr/invokeservice",
    "timestamp": 1700000000000000,
    "duration": 15300,
    "localEndpoint": {"serviceName": "checkout", "ipv4": "10.1.2.3"},
    "remoteEndpoint": {"serviceName": "orders", "ipv4": "10.1.2.4", "port": 50002},
    "annotations": [{"timestamp": 1700000000001000, "value": "message sent"}],
    "tags": {
      "http.method": "POST",
      "http.url": "/v1.0/invoke/orders/method/neworder",
      "dapr.api": "/dapr.proto.runtime.v1.Dapr/InvokeService",
      "dapr.protocol": "grpc",
      "rpc.service": "ServiceInvocation",
      "otel.library.name": "dapr",
      "service.name": "checkout",
      "telemetry.sdk.language": "go"
    }
  },
  {
    "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
    "parentId": "00f067aa0ba902b7",
    "id": "a2fb4a1d1a96d312",
    "kind": "SERVER",
    "shared": true,
    "name": "/orders/neworder",
    "timestamp": 1700000000002000,
    "duration": 12000,
    "localEndpoint": {"serviceName": "orders", "ipv4": "10.1.2.4", "port": 50002},
    "remoteEndpoint": {"ipv4": "10.1.2.3"},
    "annotations": [
      {"timestamp": 1700000000003000, "value": "message received"},
      {"timestamp": 1700000000013000, "value": "exception|{\"exception.type\":\"Timeout\",\"retry\":2}|0"}
    ],
    "tags": {
      "http.method": "POST",
      "http.status_code": "500",
      "error": "true",
      "otel.status_code": "STATUS_CODE_ERROR",
      "otel.status_description": "deadline exceeded",
      "otel.library.name": "dapr"
    }
  },
  {
    "traceId": "a3ce929d0e0e4736",
    "id": "0123456789abcdef",
    "name": "statestore.get",
    "timestamp": 1700000000004000,
    "duration": 800,
    "debug": true,
    "localEndpoint": {"serviceName": "orders"},
    "tags": {"db.system": "redis"}
  }
]"#;

fn ingest_with_limit(limit: u64) -> ZipkinIngest {
    let config = ZipkinIngestConfig { max_body_size: ByteSize::from_bytes(limit) };
    ZipkinIngest::new(&config, &Catalog::new())
}

fn ingest() -> ZipkinIngest {
    ZipkinIngest::new(&ZipkinIngestConfig::default(), &Catalog::new())
}

fn tenant() -> Tenant {
    "team-a".into()
}

fn receive_json(ingest: &ZipkinIngest, body: &str) -> Result<TraceBatch, IngestError> {
    ingest.receive(&tenant(), Some("application/json"), None, Bytes::from(body.to_owned()))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn request(batch: &TraceBatch) -> ExportTraceServiceRequest {
    batch.to_request().unwrap()
}

fn string_attribute<'a>(
    attributes: &'a [opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<&'a str> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| match &kv.value.as_ref()?.value {
        Some(Value::StringValue(s)) => Some(s.as_str()),
        _ => None,
    })
}

#[test]
fn dapr_request_maps_to_one_resource_per_service() {
    let batch = receive_json(&ingest(), DAPR).unwrap();
    assert_eq!(batch.tenant.as_ref(), "team-a");
    assert_eq!(batch.span_count(), 3);
    let request = request(&batch);
    let services: Vec<_> = request
        .resource_spans
        .iter()
        .map(|r| string_attribute(&r.resource.as_ref().unwrap().attributes, "service.name"))
        .collect();
    assert_eq!(services, [Some("checkout"), Some("orders")]);

    // checkout: the CLIENT span; its resource tags went to the resource.
    let checkout = &request.resource_spans[0];
    let resource = &checkout.resource.as_ref().unwrap().attributes;
    assert_eq!(string_attribute(resource, "telemetry.sdk.language"), Some("go"));
    assert_eq!(checkout.scope_spans.len(), 1);
    assert_eq!(checkout.scope_spans[0].scope.as_ref().unwrap().name, "dapr");
    let client = &checkout.scope_spans[0].spans[0];
    assert_eq!(client.kind, SpanKind::Client as i32);
    assert_eq!(hex(&client.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&client.span_id), "a2fb4a1d1a96d312");
    assert_eq!(hex(&client.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(client.start_time_unix_nano, 1_700_000_000_000_000_000);
    assert_eq!(client.end_time_unix_nano, 1_700_000_000_015_300_000);
    assert_eq!(string_attribute(&client.attributes, "http.method"), Some("POST"));
    assert_eq!(string_attribute(&client.attributes, "peer.service"), Some("orders"));
    assert_eq!(string_attribute(&client.attributes, "net.peer.ip"), Some("10.1.2.4"));
    assert_eq!(string_attribute(&client.attributes, "net.host.ip"), Some("10.1.2.3"));
    assert_eq!(string_attribute(&client.attributes, "service.name"), None);
    assert_eq!(string_attribute(&client.attributes, "otel.library.name"), None);
    assert_eq!(client.events.len(), 1);
    assert_eq!(client.events[0].name, "message sent");
    assert_eq!(client.events[0].time_unix_nano, 1_700_000_000_001_000_000);
    assert_eq!(client.status, None);

    // orders: two scopes (none < "dapr"), the SERVER span shares the CLIENT span's id.
    let orders = &request.resource_spans[1];
    let scopes: Vec<_> = orders.scope_spans.iter().map(|s| s.scope.clone()).collect();
    assert_eq!(scopes[0], None);
    assert_eq!(scopes[1].as_ref().unwrap().name, "dapr");
    let local = &orders.scope_spans[0].spans[0];
    assert_eq!(hex(&local.trace_id), "0000000000000000a3ce929d0e0e4736");
    assert_eq!(local.kind, SpanKind::Unspecified as i32);
    assert!(local.parent_span_id.is_empty());
    let server = &orders.scope_spans[1].spans[0];
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(server.span_id, client.span_id);
    assert_eq!(server.parent_span_id, client.parent_span_id);
    let status = server.status.as_ref().unwrap();
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(status.message, "deadline exceeded");
    for consumed in ["error", "otel.status_code", "otel.status_description", "shared", "debug"] {
        assert_eq!(string_attribute(&server.attributes, consumed), None, "{consumed}");
    }
    assert_eq!(string_attribute(&server.attributes, "http.status_code"), Some("500"));
    assert_eq!(string_attribute(&server.attributes, "net.peer.ip"), Some("10.1.2.3"));
    let exception = &server.events[1];
    assert_eq!(exception.name, "exception");
    assert_eq!(string_attribute(&exception.attributes, "exception.type"), Some("Timeout"));
    let retry = exception.attributes.iter().find(|kv| kv.key == "retry").unwrap();
    assert_eq!(retry.value.as_ref().unwrap().value, Some(Value::IntValue(2)));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn content_types_json_with_or_without_charset_or_none_are_accepted() {
    let ingest = ingest();
    for content_type in [
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("Application/JSON;charset=\"UTF-8\""),
        None,
    ] {
        let batch = ingest.receive(&tenant(), content_type, None, Bytes::from(DAPR)).unwrap();
        assert_eq!(batch.span_count(), 3, "{content_type:?}");
    }
}

#[test]
fn other_content_types_and_encodings_are_415() {
    let ingest = ingest();
    for (content_type, encoding) in [
        (Some("application/x-protobuf"), None),
        (Some("text/plain"), None),
        (Some("application/json; charset=iso-8859-1"), None),
        (Some("application/jsonx"), None),
        (Some("application/json"), Some("deflate")),
        (Some("application/json"), Some("snappy")),
        (Some("application/json"), Some("gzip, br")),
    ] {
        let err = ingest.receive(&tenant(), content_type, encoding, Bytes::from(DAPR)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnsupportedMediaType, "{content_type:?} {encoding:?}");
        assert!(matches!(err, IngestError::UnsupportedMediaType { .. }), "{err}");
    }
    let err = ingest.receive(&tenant(), Some("application/x-protobuf"), None, Bytes::new());
    assert!(err.unwrap_err().to_string().contains("protobuf is not supported"));
}

#[test]
fn gzip_body_decodes_to_the_same_batch() {
    let ingest = ingest();
    let plain = request(&receive_json(&ingest, DAPR).unwrap());
    for encoding in ["gzip", "GZIP", "x-gzip"] {
        let body = Bytes::from(gzip(DAPR.as_bytes()));
        let batch =
            ingest.receive(&tenant(), Some("application/json"), Some(encoding), body).unwrap();
        assert_eq!(request(&batch), plain, "{encoding}");
    }
    let identity = Bytes::from(DAPR);
    let batch = ingest.receive(&tenant(), None, Some("identity"), identity).unwrap();
    assert_eq!(request(&batch), plain);
}

#[test]
fn concatenated_gzip_members_are_all_read() {
    let mut body = gzip(b"[");
    body.extend(gzip(&DAPR.as_bytes()[1..]));
    let batch =
        ingest().receive(&tenant(), None, Some("gzip"), Bytes::from(body)).expect("two members");
    assert_eq!(batch.span_count(), 3);
}

#[test]
fn gzip_bomb_is_stopped_at_the_cap() {
    // 16 MiB of spaces compress to a few dozen KiB; the cap is 1 MiB.
    let bomb = gzip(&vec![b' '; 16 << 20]);
    assert!(bomb.len() < 256 << 10, "{} compressed bytes", bomb.len());
    let ingest = ingest_with_limit(1 << 20);
    let err = ingest.receive(&tenant(), None, Some("gzip"), Bytes::from(bomb)).unwrap_err();
    assert_eq!(err, IngestError::BodyTooLarge { limit: 1 << 20 });
    assert_eq!(err.kind(), ErrorKind::TooLarge);
}

#[test]
fn gunzip_cap_is_exact() {
    let body = gzip(&[b' '; 1000]);
    assert_eq!(decode::gunzip_capped(&body, 1000).unwrap().len(), 1000);
    let err = decode::gunzip_capped(&body, 999).unwrap_err();
    assert_eq!(err, ZipkinError::DecodedTooLarge { limit: 999 });
    assert_eq!(err.kind(), ErrorKind::TooLarge);
}

#[test]
fn corrupt_gzip_is_a_bad_request() {
    let mut body = gzip(DAPR.as_bytes());
    body.truncate(body.len() / 2);
    let err = ingest().receive(&tenant(), None, Some("gzip"), Bytes::from(body)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");
    assert!(err.to_string().contains("invalid gzip body"), "{err}");
    let err = ingest().receive(&tenant(), None, Some("gzip"), Bytes::from(DAPR)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");
}

#[test]
fn uncompressed_body_over_the_limit_is_413() {
    let ingest = ingest_with_limit(100);
    let err = receive_json(&ingest, DAPR).unwrap_err();
    assert_eq!(err, IngestError::BodyTooLarge { limit: 100 });
}

/// The message of a rejected body, after checking it is a 400.
fn rejection(body: &str) -> String {
    let err = receive_json(&ingest(), body).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");
    err.to_string()
}

const GOOD: &str = r#"{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","id":"a2fb4a1d1a96d312"}"#;

#[test]
fn invalid_json_names_the_span_index() {
    let message = rejection(&format!("[{GOOD},{GOOD},{{\"traceId\": \"4bf9"));
    assert!(
        message.starts_with("cannot decode zipkin v2 spans: span 2, field traceId: "),
        "{message}"
    );
    let message = rejection(&format!("[{GOOD},{GOOD},{{\"name\": 5}}]"));
    assert!(message.contains("span 2, field name: invalid type: integer `5`"), "{message}");
    let message = rejection(&format!("[{GOOD},{{\"traceId\":\"4bf92f3577b34da6\"}}]"));
    assert!(message.contains("span 1: missing field `id`"), "{message}");
    let message = rejection(&format!("[{GOOD},{GOOD},{GOOD},7]"));
    assert!(message.contains("span 3: invalid type: integer `7`"), "{message}");
}

#[test]
fn invalid_nested_fields_name_their_path() {
    // Span 2 of the request gets `field` added.
    let span =
        |field: &str| format!("[{GOOD},{GOOD},{}]", GOOD.replace('}', &format!(",{field}}}")));
    for (field, path) in [
        (r#""localEndpoint":{"port":70000}"#, "span 2, field localEndpoint.port: "),
        (r#""remoteEndpoint":{"ipv4":"10.0.0.300"}"#, "span 2, field remoteEndpoint.ipv4: "),
        (
            r#""annotations":[{"timestamp":1,"value":"a"},{"value":"b"}]"#,
            "span 2, field annotations[1]: missing field `timestamp`",
        ),
        (
            r#""annotations":[{"timestamp":0,"value":"a"}]"#,
            "span 2, field annotations[0].timestamp: annotation timestamp must be positive",
        ),
        (
            r#""tags":{"http.status_code":500}"#,
            "span 2, field tags[\"http.status_code\"]: invalid type: integer `500`",
        ),
        (r#""timestamp":-1"#, "span 2, field timestamp: "),
        (r#""duration":1.5"#, "span 2, field duration: "),
        (
            r#""timestamp":18446744073709552"#,
            "span 2, field timestamp: 18446744073709552 microseconds is out of range",
        ),
    ] {
        let message = rejection(&span(field));
        assert!(message.contains(path), "{field}: {message}");
    }
}

#[test]
fn not_an_array_is_invalid_json_without_a_span() {
    for (body, expected) in [
        ("{}", "invalid json: invalid type: map"),
        ("", "invalid json: EOF while parsing"),
        ("[] []", "invalid json: trailing characters"),
        ("[{]", "span 0: key must be a string"),
    ] {
        let message = rejection(body);
        assert!(message.contains(expected), "{body:?}: {message}");
    }
}

#[test]
fn bad_ids_are_400_naming_span_and_field() {
    // Span 1 of the request has `field` set to `value`.
    let with = |field: &str, value: &str| {
        let span = match field {
            "traceId" => format!(r#"{{"traceId":"{value}","id":"a2fb4a1d1a96d312"}}"#),
            "id" => format!(r#"{{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","id":"{value}"}}"#),
            _ => GOOD.replace('}', &format!(",\"{field}\":\"{value}\"}}")),
        };
        rejection(&format!("[{GOOD},{span}]"))
    };
    for (field, value, expected) in [
        (
            "traceId",
            "4bf92f3577b34da6a3ce929d0e0e47",
            "is not a trace id of 16 or 32 hex characters",
        ),
        ("traceId", "4bf92f3577b34da6a3ce", "is not a trace id of 16 or 32 hex characters"),
        ("traceId", "4bf92f3577b34dzz", "is not a trace id of 16 or 32 hex characters"),
        ("traceId", "", "is not a trace id of 16 or 32 hex characters"),
        ("traceId", "00000000000000000000000000000000", "trace id is all zeros"),
        ("id", "a2fb4a1d1a96d31", "is not a span id of 16 hex characters"),
        ("id", "a2fb4a1d1a96d3123", "is not a span id of 16 hex characters"),
        ("id", "0000000000000000", "span id is all zeros"),
        ("parentId", "xyz", "is not a span id of 16 hex characters"),
    ] {
        let message = with(field, value);
        assert!(message.contains(&format!("span 1, field {field}: ")), "{value}: {message}");
        assert!(message.contains(expected), "{value}: {message}");
    }
    let long = "f".repeat(1000);
    let message = with("traceId", &long);
    assert!(message.len() < 300, "ids are echoed cut short: {message}");
}

#[test]
fn sixty_four_bit_and_upper_case_ids_are_accepted() {
    let body = r#"[{"traceId":"A3CE929D0E0E4736","id":"0123456789ABCDEF","parentId":""}]"#;
    let request = request(&receive_json(&ingest(), body).unwrap());
    let span = &request.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(
        span.trace_id,
        [0, 0, 0, 0, 0, 0, 0, 0, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36]
    );
    assert_eq!(hex(&span.span_id), "0123456789abcdef");
    assert!(span.parent_span_id.is_empty());
}

#[test]
fn null_body_and_null_elements_are_skipped() {
    assert!(receive_json(&ingest(), "null").unwrap().is_empty());
    assert!(receive_json(&ingest(), "[]").unwrap().is_empty());
    let batch = receive_json(&ingest(), &format!("[null,{GOOD},null]")).unwrap();
    assert_eq!(batch.span_count(), 1);
    // Indices in messages count the null elements.
    let message = rejection(&format!("[null,{GOOD},{{\"id\":1}}]"));
    assert!(message.contains("span 2, field id: invalid type"), "{message}");
}

#[test]
fn metrics_count_bytes_spans_and_rejected_spans() {
    let ingest = ingest();
    receive_json(&ingest, DAPR).unwrap();
    let metrics = ingest.metrics();
    assert_eq!(metrics.bytes.get(), DAPR.len() as u64);
    assert_eq!(metrics.spans.get(), 3);
    assert_eq!(metrics.dropped(IngestDropReason::Invalid).get(), 0);

    // A decodable array with one bad span: all of its spans are rejected and counted.
    receive_json(&ingest, &format!("[{GOOD},null,{{\"traceId\":\"00\",\"id\":\"1\"}}]"))
        .unwrap_err();
    assert_eq!(metrics.spans.get(), 5);
    assert_eq!(metrics.dropped(IngestDropReason::Invalid).get(), 2);
    // Not an array: nothing to count.
    receive_json(&ingest, "[{").unwrap_err();
    assert_eq!(metrics.spans.get(), 5);
    // Translation failures count too.
    let bad_link = GOOD.replace('}', r#","tags":{"otlp.link.0":"zz|00f067aa0ba902b7||{}|0"}}"#);
    receive_json(&ingest, &format!("[{bad_link}]")).unwrap_err();
    assert_eq!(metrics.spans.get(), 6);
    assert_eq!(metrics.dropped(IngestDropReason::Invalid).get(), 3);
}

#[test]
fn zipkin_error_kinds_survive_conversion() {
    let cases = [
        ZipkinError::DecodedTooLarge { limit: 1 },
        ZipkinError::Gzip("x".into()),
        ZipkinError::Json("x".into()),
        ZipkinError::Span { index: 0, field: None, detail: "x".into() },
    ];
    for error in cases {
        let kind = error.kind();
        assert_eq!(IngestError::from(error.clone()).kind(), kind, "{error}");
    }
}

#[test]
fn escaped_strings_decode_and_plain_ones_borrow() {
    let body = r#"[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","id":"a2fb4a1d1a96d312",
        "name":"plain","kind":"caf\u00e9","tags":{"k\"ey":"v\nalue","plain":"x"}}]"#;
    let spans = decode::decode_spans(body.as_bytes()).unwrap();
    let span = spans[0].as_ref().unwrap();
    assert!(matches!(span.name.as_ref().unwrap().0, std::borrow::Cow::Borrowed("plain")));
    assert_eq!(span.kind.as_ref().unwrap().as_str(), "café");
    assert_eq!(span.tags.get("k\"ey"), Some("v\nalue"));
    assert!(matches!(span.tags.iter().last(), Some(("plain", "x"))));
}
