//! Tests of the traces fast path and the struct path: zero-copy, span checks, partial
//! acceptance, relabeling, malformed and truncated bodies.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::trace::v1 as otlp;

use super::*;
use crate::error::ErrorKind;
use crate::relabel::RelabelConfig;
use crate::telemetry::Catalog;

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

fn span(seed: u8) -> otlp::Span {
    otlp::Span {
        trace_id: vec![seed; 16],
        span_id: vec![seed; 8],
        parent_span_id: vec![seed.wrapping_add(1); 8],
        name: format!("GET /api/{seed}"),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_100_000_000,
        attributes: vec![string("http.method", "GET"), string("http.route", "/api")],
        events: vec![otlp::span::Event { name: "e".into(), ..Default::default() }],
        status: Some(otlp::Status { code: 1, ..Default::default() }),
        ..Default::default()
    }
}

fn resource_spans(service: &str, scopes: Vec<Vec<otlp::Span>>) -> otlp::ResourceSpans {
    otlp::ResourceSpans {
        resource: Some(Resource {
            attributes: vec![string("service.name", service), string("k8s.pod.name", "p-1")],
            ..Default::default()
        }),
        scope_spans: scopes
            .into_iter()
            .map(|spans| otlp::ScopeSpans {
                scope: Some(InstrumentationScope { name: "lib".into(), ..Default::default() }),
                spans,
                schema_url: String::new(),
            })
            .collect(),
        schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
    }
}

struct Fixture {
    catalog: Catalog,
    relabeler: ResourceRelabeler,
    metrics: IngestMetrics,
    tenant: Tenant,
}

impl Fixture {
    fn new(rules: &str) -> Self {
        let catalog = Catalog::new();
        let configs: Vec<RelabelConfig> = serde_yaml::from_str(rules).unwrap();
        let relabeler = ResourceRelabeler::new(&configs, 100, &catalog, "test").unwrap();
        let metrics = catalog.ingest("otlp_http");
        Self { catalog, relabeler, metrics, tenant: "t".into() }
    }

    fn cx(&self) -> Context<'_> {
        Context { tenant: &self.tenant, relabeler: &self.relabeler, metrics: &self.metrics }
    }

    fn protobuf(&self, body: &[u8]) -> Result<Accepted<TraceBatch>, OtlpError> {
        from_protobuf(&Bytes::copy_from_slice(body), &self.cx())
    }
}

fn request(resources: Vec<otlp::ResourceSpans>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest { resource_spans: resources }
}

#[test]
fn valid_spans_stay_slices_of_the_body() {
    let fixture = Fixture::new("[]");
    let original = request(vec![
        resource_spans("checkout", vec![vec![span(1), span(2)], vec![span(3)]]),
        resource_spans("cart", vec![vec![span(4)]]),
    ]);
    let body = Bytes::from(original.encode_to_vec());
    let accepted = from_protobuf(&body, &fixture.cx()).unwrap();
    assert_eq!((accepted.rejected, accepted.message.as_deref()), (0, None));
    assert_eq!(accepted.batch.span_count(), 4);
    assert_eq!(accepted.batch.to_request().unwrap(), original);
    let body_range = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
    for resource in &accepted.batch.resources {
        assert!(body_range.contains(&(resource.scope_spans.as_ptr() as usize)), "zero-copy");
        assert!(body_range.contains(&(resource.resource.encoded.as_ptr() as usize)));
        assert_eq!(resource.resource.hash, xxhash_rust::xxh3::xxh3_64(&resource.resource.encoded));
    }
    // The struct path builds the same batch.
    let from_structs = from_request(original.clone(), &fixture.cx());
    assert_eq!(from_structs.batch.to_request().unwrap(), original);
    assert_eq!(fixture.metrics.spans.get(), 8);
}

#[test]
fn invalid_spans_are_rejected_and_named_the_rest_accepted() {
    let fixture = Fixture::new("[]");
    let mut zero_trace = span(2);
    zero_trace.trace_id = vec![0; 16];
    let mut short_span = span(3);
    short_span.span_id = vec![3; 7];
    let mut bad_parent = span(5);
    bad_parent.parent_span_id = vec![5; 4];
    let mut no_trace = span(6);
    no_trace.trace_id.clear();
    let mut root = span(7);
    root.parent_span_id.clear();
    let mut zero_parent = span(8);
    zero_parent.parent_span_id = vec![0; 8];
    let original = request(vec![
        resource_spans("checkout", vec![vec![span(1), zero_trace, root.clone()], vec![short_span]]),
        resource_spans("cart", vec![vec![bad_parent, no_trace]]),
        resource_spans("auth", vec![vec![zero_parent.clone()]]),
    ]);
    let expected = request(vec![
        resource_spans("checkout", vec![vec![span(1), root]]),
        resource_spans("auth", vec![vec![zero_parent]]),
    ]);
    for accepted in [
        fixture.protobuf(&original.encode_to_vec()).unwrap(),
        from_request(original.clone(), &fixture.cx()),
    ] {
        assert_eq!(accepted.rejected, 4);
        assert_eq!(accepted.batch.to_request().unwrap(), expected);
        let message = accepted.message.unwrap();
        assert_eq!(
            message,
            "4 spans rejected, the rest was accepted: \
             resource_spans[0].scope_spans[0].spans[1]: trace_id is all zeros; \
             resource_spans[0].scope_spans[1].spans[0]: span_id is 7 bytes, must be 8; \
             resource_spans[1].scope_spans[0].spans[0]: parent_span_id is 4 bytes, must be empty or 8; \
             resource_spans[1].scope_spans[0].spans[1]: trace_id is 0 bytes, must be 16"
        );
    }
    assert_eq!(fixture.metrics.dropped(IngestDropReason::Invalid).get(), 8);
}

#[test]
fn rejections_list_at_most_ten() {
    let fixture = Fixture::new("[]");
    let spans = (0..25).map(|_| otlp::Span { trace_id: vec![1; 3], ..span(1) }).collect();
    let accepted =
        fixture.protobuf(&request(vec![resource_spans("a", vec![spans])]).encode_to_vec());
    let accepted = accepted.unwrap();
    assert_eq!(accepted.rejected, 25);
    assert!(accepted.batch.is_empty());
    let message = accepted.message.unwrap();
    assert!(message.ends_with("; and 15 more"), "{message}");
    assert_eq!(message.matches("resource_spans[").count(), 10);
}

#[test]
fn interleaved_scope_spans_are_copied_together() {
    let fixture = Fixture::new("[]");
    let original = request(vec![resource_spans("a", vec![vec![span(1)], vec![span(2), span(3)]])]);
    // Hand-encode the ResourceSpans with schema_url between the two scope_spans fields and an
    // unknown field at the end.
    let rs = &original.resource_spans[0];
    let mut inner = Vec::new();
    wire::put_bytes(&mut inner, 2, &rs.scope_spans[0].encode_to_vec());
    wire::put_bytes(&mut inner, 3, rs.schema_url.as_bytes());
    wire::put_bytes(&mut inner, 1, &rs.resource.as_ref().unwrap().encode_to_vec());
    wire::put_bytes(&mut inner, 2, &rs.scope_spans[1].encode_to_vec());
    wire::put_bytes(&mut inner, 99, b"future");
    let mut body = Vec::new();
    wire::put_bytes(&mut body, 1, &inner);
    wire::put_bytes(&mut body, 7, b"unknown top-level field");
    let accepted = fixture.protobuf(&body).unwrap();
    assert_eq!(accepted.batch.to_request().unwrap(), original);
    assert_eq!(accepted.batch.resources[0].span_count, 3);
}

#[test]
fn relabeling_rewrites_and_drops_resources() {
    let fixture = Fixture::new(
        r#"
- source_labels: [service.name]
  regex: cart
  action: drop
- target_label: cluster
  replacement: eu-1
"#,
    );
    let original = request(vec![
        resource_spans("checkout", vec![vec![span(1), span(2)]]),
        resource_spans("cart", vec![vec![span(3)]]),
    ]);
    for accepted in [
        fixture.protobuf(&original.encode_to_vec()).unwrap(),
        from_request(original.clone(), &fixture.cx()),
    ] {
        assert_eq!((accepted.rejected, accepted.batch.span_count()), (0, 2));
        let resource = &accepted.batch.resources[0].resource.resource;
        assert_eq!(resource.attributes.last().unwrap(), &string("cluster", "eu-1"));
        assert_eq!(resource.attributes.len(), 3);
    }
    assert_eq!(fixture.metrics.dropped(IngestDropReason::Relabel).get(), 2);
    let text = fixture.catalog.encode_text();
    assert!(text.contains(r#"strata_relabel_cache_hits_total{cache="test"} 2"#), "{text}");
}

#[test]
fn every_truncation_is_an_error() {
    let fixture = Fixture::new("[]");
    let body = request(vec![resource_spans("a", vec![vec![span(1), span(2)]])]).encode_to_vec();
    for len in 1..body.len() {
        let result = fixture.protobuf(&body[..len]);
        let err = result.err().unwrap_or_else(|| panic!("prefix of {len} bytes accepted"));
        assert_eq!(err.kind(), ErrorKind::BadRequest);
    }
    assert!(fixture.protobuf(&[]).unwrap().batch.is_empty());
}

#[test]
fn malformed_spans_fail_the_request_with_the_offset() {
    let fixture = Fixture::new("[]");
    let mut bad_name = span(1);
    bad_name.name = "x".into();
    let mut body = request(vec![resource_spans("a", vec![vec![bad_name]])]).encode_to_vec();
    let at = body.iter().position(|b| *b == b'x').unwrap();
    body[at] = 0xff;
    let err = fixture.protobuf(&body).unwrap_err();
    assert!(err.to_string().contains("not valid UTF-8"), "{err}");
    assert!(err.to_string().contains(&format!("byte {at}")), "{err}");
    // start_time_unix_nano (fixed64) sent as a varint.
    let mut span_bytes = Vec::new();
    wire::put_bytes(&mut span_bytes, 1, &[1; 16]);
    wire::put_key(&mut span_bytes, 7, wire::VARINT);
    wire::put_varint(&mut span_bytes, 5);
    let err = fixture.protobuf(&wrap_span(&span_bytes)).unwrap_err();
    assert!(err.to_string().contains("unexpected wire type"), "{err}");
}

/// A request holding one span given as its encoded fields.
fn wrap_span(span: &[u8]) -> Vec<u8> {
    let mut scope = Vec::new();
    wire::put_bytes(&mut scope, 2, span);
    let mut resource = Vec::new();
    wire::put_bytes(&mut resource, 2, &scope);
    let mut body = Vec::new();
    wire::put_bytes(&mut body, 1, &resource);
    body
}

#[test]
fn deep_attribute_nesting_is_refused_not_a_stack_overflow() {
    let fixture = Fixture::new("[]");
    // AnyValue{array_value: ArrayValue{values: [AnyValue{...}]}} nested 200 deep.
    let mut value = Vec::new();
    wire::put_bytes(&mut value, 1, b"leaf");
    for _ in 0..200 {
        let mut array = Vec::new();
        wire::put_bytes(&mut array, 1, &value);
        value.clear();
        wire::put_bytes(&mut value, 5, &array);
    }
    let mut key_value = Vec::new();
    wire::put_bytes(&mut key_value, 1, b"k");
    wire::put_bytes(&mut key_value, 2, &value);
    let mut span_bytes = otlp::Span { ..span(1) }.encode_to_vec();
    wire::put_bytes(&mut span_bytes, 9, &key_value);
    let err = fixture.protobuf(&wrap_span(&span_bytes)).unwrap_err();
    assert!(err.to_string().contains("nested too deeply"), "{err}");
}

/// Whatever the walk accepts, prost decodes: random corruptions of a valid body either fail
/// or yield a batch whose request and spans decode.
#[test]
fn accepted_bodies_always_decode_with_prost() {
    let fixture = Fixture::new("[]");
    let body = request(vec![
        resource_spans("checkout", vec![vec![span(1), span(2)], vec![span(3)]]),
        resource_spans("cart", vec![vec![span(4)]]),
    ])
    .encode_to_vec();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut accepted_count, mut rejected_count) = (0, 0);
    for _ in 0..3_000 {
        let mut mutated = body.clone();
        for _ in 0..1 + next() % 3 {
            let at = (next() % mutated.len() as u64) as usize;
            mutated[at] = next() as u8;
        }
        match fixture.protobuf(&mutated) {
            Ok(accepted) => {
                accepted_count += 1;
                let request = accepted.batch.to_request().expect("accepted batch decodes");
                assert!(ExportTraceServiceRequest::decode(mutated.as_slice()).is_ok());
                assert_eq!(
                    request
                        .resource_spans
                        .iter()
                        .flat_map(|r| &r.scope_spans)
                        .map(|s| s.spans.len())
                        .sum::<usize>(),
                    accepted.batch.span_count()
                );
                for resource in &accepted.batch.resources {
                    resource.decode_scope_spans().expect("scope spans decode");
                }
            }
            Err(_) => rejected_count += 1,
        }
    }
    assert!(accepted_count > 100 && rejected_count > 100, "{accepted_count} {rejected_count}");
}

/// Found by fuzzing: a resource that does not decode must fail the request even when none of
/// its spans is kept (a whole-message decoder would fail it too).
#[test]
fn an_undecodable_resource_fails_the_request_even_without_kept_spans() {
    let fixture = Fixture::new("[]");
    let mut invalid = span(1);
    invalid.trace_id = vec![0; 16];
    for spans in [vec![], vec![invalid]] {
        let mut original = request(vec![resource_spans("zzzz", vec![spans])]);
        original.resource_spans[0].scope_spans.retain(|s| !s.spans.is_empty());
        let mut body = original.encode_to_vec();
        let at = body.windows(4).position(|w| w == b"zzzz").unwrap();
        body[at] = 0xc3; // a UTF-8 lead byte followed by ASCII
        let err = fixture.protobuf(&body).unwrap_err();
        assert!(err.to_string().contains("resource of resource_spans[0]"), "{err}");
        assert!(ExportTraceServiceRequest::decode(body.as_slice()).is_err());
    }
}
