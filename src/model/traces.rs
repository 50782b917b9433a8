//! Trace batches: OTLP `ResourceSpans` with the resource decoded (it is what relabeling reads
//! and rewrites) and the spans kept as their protobuf encoding (OTLP
//! `opentelemetry/proto/trace/v1/trace.proto`, v1.x: `ResourceSpans{resource = 1,
//! repeated ScopeSpans scope_spans = 2, schema_url = 3}`).
//!
//! A relay only reads spans to validate and count them, so they stay bytes from decoder to
//! sink: forwarding copies them, it does not re-encode them. Whoever needs span fields (storage,
//! queries) decodes them with [`ResourceSpans::decode_scope_spans`].
//!
//! Invariants:
//! * `scope_spans` is a concatenation of complete `ResourceSpans.scope_spans` fields (tag 2,
//!   length, `ScopeSpans` message) that decoded without error, and `span_count` is the number
//!   of spans in them.
//! * `TraceResource::encoded` is a protobuf encoding of `resource` (on the protobuf ingest path,
//!   the sender's own bytes, sliced without copying); it keys relabel caches, so two encodings
//!   of one resource only cost a second cache entry.

use std::sync::Arc;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as otlp;
use prost::Message;

use super::logs::Tenant;
use super::wire;

/// The resource of a group of spans, shared read-only after relabeling.
#[derive(Debug, PartialEq)]
pub struct TraceResource {
    pub resource: Resource,
    /// `resource` as protobuf: copied into outgoing requests and used as a cache key.
    pub encoded: Bytes,
    /// xxh3 of `encoded`.
    pub hash: u64,
}

impl TraceResource {
    pub fn new(resource: Resource) -> Self {
        let encoded = Bytes::from(resource.encode_to_vec());
        let hash = xxhash_rust::xxh3::xxh3_64(&encoded);
        Self { resource, encoded, hash }
    }
}

/// The spans of one resource.
#[derive(Clone, Debug)]
pub struct ResourceSpans {
    pub resource: Arc<TraceResource>,
    pub schema_url: String,
    /// Encoded `scope_spans` fields (tag included), as on the wire.
    pub scope_spans: Bytes,
    pub span_count: usize,
}

impl ResourceSpans {
    /// Decodes the scope spans (for consumers that need span fields).
    pub fn decode_scope_spans(&self) -> Result<Vec<otlp::ScopeSpans>, prost::DecodeError> {
        // The field bytes are a valid `ResourceSpans` message holding only field 2.
        Ok(otlp::ResourceSpans::decode(self.scope_spans.clone())?.scope_spans)
    }

    /// The encoded length of this as a `ResourceSpans` message body.
    fn body_len(&self) -> usize {
        let resource =
            1 + wire::varint_len(self.resource.encoded.len() as u64) + self.resource.encoded.len();
        let schema = if self.schema_url.is_empty() {
            0
        } else {
            1 + wire::varint_len(self.schema_url.len() as u64) + self.schema_url.len()
        };
        resource + self.scope_spans.len() + schema
    }
}

/// What ingest hands to routing for traces: one tenant's resource spans.
#[derive(Clone, Debug)]
pub struct TraceBatch {
    pub tenant: Tenant,
    pub resources: Vec<ResourceSpans>,
}

impl TraceBatch {
    pub fn new(tenant: Tenant) -> Self {
        Self { tenant, resources: Vec::new() }
    }

    /// Converts a decoded request (gRPC, JSON, Zipkin) into a batch, encoding each resource's
    /// scope spans once. Resources without spans are left out.
    pub fn from_request(tenant: Tenant, request: ExportTraceServiceRequest) -> Self {
        let mut batch = Self::new(tenant);
        for resource_spans in request.resource_spans {
            let span_count: usize = resource_spans.scope_spans.iter().map(|s| s.spans.len()).sum();
            if span_count == 0 {
                continue;
            }
            let scope_only = otlp::ResourceSpans {
                resource: None,
                scope_spans: resource_spans.scope_spans,
                schema_url: String::new(),
            };
            batch.resources.push(ResourceSpans {
                resource: Arc::new(TraceResource::new(resource_spans.resource.unwrap_or_default())),
                schema_url: resource_spans.schema_url,
                scope_spans: Bytes::from(scope_only.encode_to_vec()),
                span_count,
            });
        }
        batch
    }

    pub fn span_count(&self) -> usize {
        self.resources.iter().map(|r| r.span_count).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.span_count() == 0
    }

    /// Appends this batch as an `ExportTraceServiceRequest` (`repeated ResourceSpans
    /// resource_spans = 1`) to `out`.
    pub fn encode_request(&self, out: &mut Vec<u8>) {
        encode_resource_spans(self.resources.iter(), out);
    }

    /// Decodes this batch back into the protobuf request (tests, storage).
    pub fn to_request(&self) -> Result<ExportTraceServiceRequest, prost::DecodeError> {
        let mut out = Vec::new();
        self.encode_request(&mut out);
        ExportTraceServiceRequest::decode(out.as_slice())
    }
}

/// Appends `ExportTraceServiceRequest.resource_spans` fields for `resources` to `out`.
pub fn encode_resource_spans<'a>(
    resources: impl Iterator<Item = &'a ResourceSpans>,
    out: &mut Vec<u8>,
) {
    for resource_spans in resources {
        out.push(0x0a);
        wire::put_varint(out, resource_spans.body_len() as u64);
        out.push(0x0a);
        wire::put_varint(out, resource_spans.resource.encoded.len() as u64);
        out.extend_from_slice(&resource_spans.resource.encoded);
        out.extend_from_slice(&resource_spans.scope_spans);
        if !resource_spans.schema_url.is_empty() {
            out.push(0x1a);
            wire::put_varint(out, resource_spans.schema_url.len() as u64);
            out.extend_from_slice(resource_spans.schema_url.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};

    fn request() -> ExportTraceServiceRequest {
        let span = |id: u8| otlp::Span {
            trace_id: vec![id; 16],
            span_id: vec![id; 8],
            name: format!("span-{id}"),
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            ..Default::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![otlp::ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("checkout".into())),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_spans: vec![otlp::ScopeSpans {
                    spans: vec![span(1), span(2)],
                    ..Default::default()
                }],
                schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
            }],
        }
    }

    #[test]
    fn round_trips_through_the_batch() {
        let original = request();
        let batch = TraceBatch::from_request("t".into(), original.clone());
        assert_eq!(batch.span_count(), 2);
        assert_eq!(batch.to_request().unwrap(), original);
        let mut direct = Vec::new();
        batch.encode_request(&mut direct);
        assert_eq!(direct, original.encode_to_vec());
    }
}
