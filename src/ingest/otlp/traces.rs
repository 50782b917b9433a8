//! OTLP traces → [`TraceBatch`]: span validation, `resource_relabel_configs`, partial acceptance.
//!
//! Spec: OTLP 1.x `ExportTraceServiceRequest` (`collector/trace/v1/trace_service.proto`,
//! `trace/v1/trace.proto`); partial success as in the OTLP specification's "Partial Success"
//! sections (`rejected_spans` + a human-readable `error_message`).
//!
//! **Protobuf fast path** ([`from_protobuf`]): the body is walked with [`Reader`] and spans are
//! never decoded into structs. Per `ResourceSpans` only the `Resource` is decoded (relabeling
//! reads it); the `scope_spans` fields stay slices of the request body (`Bytes`, zero-copy, when
//! they are contiguous as every encoder writes them; copied once otherwise) after a validating
//! walk ([`spans_wire`](super::spans_wire)) that checks they will decode and reads each span's
//! ids. The resource's `TraceResource::encoded` is the sender's own encoding of it (it decodes
//! to `resource`), so it too is a slice, and it keys the relabel cache.
//!
//! **Structs** ([`from_request`]: gRPC and JSON): the same checks on decoded spans, then
//! [`TraceBatch::from_request`].
//!
//! A span with a bad id ([`SpanDefect`]) is removed and counted in `rejected`, with its position
//! (`resource_spans[r].scope_spans[s].spans[i]`) and the reason in the message; the rest of the
//! request is accepted. Only then is the resource's `scope_spans` rebuilt, without the rejected
//! spans. A body that does not decode at all is an error for the whole request (400), as the
//! spec's "Bad Data" asks. Resources whose spans were all rejected, or that have no spans, are
//! left out; resources dropped by a `keep`/`drop` rule are counted as dropped, not rejected.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::attributes::ResourceRelabeler;
use super::spans_wire::{check_scope_spans, span_defect, SpanDefect};
use super::{Accepted, OtlpError, Rejections};
use crate::model::wire::{self, Reader, WireError, LEN};
use crate::model::{ResourceSpans, Tenant, TraceBatch, TraceResource};
use crate::relabel::CacheTally;
use crate::telemetry::{IngestDropReason, IngestMetrics};

/// The protobuf message name, for errors.
const REQUEST: &str = "ExportTraceServiceRequest";

/// What the per-request steps share.
pub(super) struct Context<'a> {
    pub tenant: &'a Tenant,
    pub relabeler: &'a ResourceRelabeler,
    pub metrics: &'a IngestMetrics,
}

/// One span found invalid, by position.
struct Rejected {
    scope: usize,
    span: usize,
}

/// Decodes, validates and relabels an uncompressed protobuf `ExportTraceServiceRequest`.
pub(super) fn from_protobuf(
    body: &Bytes,
    cx: &Context<'_>,
) -> Result<Accepted<TraceBatch>, OtlpError> {
    let decode_error = |err: WireError| OtlpError::Decode {
        what: REQUEST,
        format: "protobuf",
        detail: err.to_string(),
    };
    let mut batch = TraceBatch::new(cx.tenant.clone());
    let mut rejections = Rejections::new("spans");
    let mut tally = CacheTally::default();
    let (mut received, mut relabel_dropped) = (0usize, 0usize);
    let mut rejected: Vec<Rejected> = Vec::new();
    let mut reader = Reader::new(body, 0);
    let mut resource_index = 0;
    while !reader.is_empty() {
        let (field, wire_type) = reader.key().map_err(decode_error)?;
        if field != 1 {
            reader.skip(wire_type).map_err(decode_error)?;
            continue;
        }
        reader.expect(wire_type, LEN).map_err(decode_error)?;
        let (resource_spans, offset) = reader.bytes().map_err(decode_error)?;
        rejected.clear();
        let walked = walk_resource_spans(resource_spans, offset, &mut |scope, span, defect| {
            rejected.push(Rejected { scope, span });
            rejections.add(|| {
                format!(
                    "resource_spans[{resource_index}].scope_spans[{scope}].spans[{span}]: {defect}"
                )
            });
        })
        .map_err(decode_error)?;
        // Decoded even when no span is kept: a resource that does not decode fails the request,
        // as it would for a decoder of the whole message.
        let resource = match walked.resource {
            Some(range) => {
                let encoded = body.slice(range);
                let decoded =
                    Resource::decode(encoded.clone()).map_err(|err| OtlpError::Decode {
                        what: REQUEST,
                        format: "protobuf",
                        detail: format!("resource of resource_spans[{resource_index}]: {err}"),
                    })?;
                Some((decoded, encoded))
            }
            None => None,
        };
        resource_index += 1;
        received += walked.span_count;
        let kept = walked.span_count - rejected.len();
        if kept == 0 {
            continue;
        }
        let resource = Arc::new(match resource {
            Some((resource, encoded)) => {
                let hash = xxhash_rust::xxh3::xxh3_64(&encoded);
                TraceResource { resource, encoded, hash }
            }
            None => TraceResource::new(Resource::default()),
        });
        let Some(resource) = cx.relabeler.relabel(&resource, &mut tally) else {
            relabel_dropped += kept;
            continue;
        };
        let scope_spans = if rejected.is_empty() {
            walked.scope_spans.into_bytes(body)
        } else {
            let all = walked.scope_spans.into_bytes(body);
            Bytes::from(without_rejected(&all, &rejected).map_err(decode_error)?)
        };
        let schema_url = match walked.schema_url {
            Some(range) => String::from_utf8_lossy(&body[range]).into_owned(),
            None => String::new(),
        };
        batch.resources.push(ResourceSpans { resource, schema_url, scope_spans, span_count: kept });
    }
    cx.relabeler.record(tally);
    Ok(finish(batch, &rejections, received, relabel_dropped, cx.metrics))
}

/// Counts and wraps up one request.
fn finish(
    batch: TraceBatch,
    rejections: &Rejections,
    received: usize,
    relabel_dropped: usize,
    metrics: &IngestMetrics,
) -> Accepted<TraceBatch> {
    metrics.spans.inc_by(received as u64);
    if rejections.count() > 0 {
        metrics.dropped(IngestDropReason::Invalid).inc_by(rejections.count());
    }
    if relabel_dropped > 0 {
        metrics.dropped(IngestDropReason::Relabel).inc_by(relabel_dropped as u64);
    }
    debug_assert_eq!(batch.span_count() + rejections.count() as usize + relabel_dropped, received);
    Accepted { batch, rejected: rejections.count(), message: rejections.message() }
}

/// Where the `scope_spans` fields of one `ResourceSpans` are in the body.
enum ScopeBytes {
    /// One contiguous run of fields (the usual layout): a slice of the body.
    Run(Range<usize>),
    /// Fields interleaved with other fields: copied together.
    Copied(Vec<u8>),
}

impl ScopeBytes {
    /// Adds one field: `field` is a range of the body, inside `buf` (a message that starts at
    /// body offset `base`). Empty until the first field; no field is empty (it has a key).
    fn push(&mut self, field: Range<usize>, buf: &[u8], base: usize) {
        let local = |range: &Range<usize>| &buf[range.start - base..range.end - base];
        match self {
            ScopeBytes::Run(run) if run.start == run.end => *run = field,
            ScopeBytes::Run(run) if run.end == field.start => run.end = field.end,
            ScopeBytes::Run(run) => {
                let mut copied = local(run).to_vec();
                copied.extend_from_slice(local(&field));
                *self = ScopeBytes::Copied(copied);
            }
            ScopeBytes::Copied(copied) => copied.extend_from_slice(local(&field)),
        }
    }

    fn into_bytes(self, body: &Bytes) -> Bytes {
        match self {
            ScopeBytes::Run(run) => body.slice(run),
            ScopeBytes::Copied(copied) => Bytes::from(copied),
        }
    }
}

/// One `ResourceSpans`, walked: ranges are offsets in the whole body.
struct Walked {
    resource: Option<Range<usize>>,
    schema_url: Option<Range<usize>>,
    scope_spans: ScopeBytes,
    span_count: usize,
}

/// Walks one `ResourceSpans` message (`buf` starts at body offset `base`), checking every span
/// and reporting defective ones as `(scope index, span index, defect)`.
fn walk_resource_spans(
    buf: &[u8],
    base: usize,
    on_defect: &mut dyn FnMut(usize, usize, SpanDefect),
) -> Result<Walked, WireError> {
    let mut walked = Walked {
        resource: None,
        schema_url: None,
        scope_spans: ScopeBytes::Run(0..0),
        span_count: 0,
    };
    // The whole body is not at hand here; `buf` is, and `base` maps it back.
    let mut reader = Reader::new(buf, base);
    let mut scope_index = 0;
    while !reader.is_empty() {
        let field_start = reader.position();
        let (field, wire_type) = reader.key()?;
        match field {
            1 | 3 => {
                reader.expect(wire_type, LEN)?;
                let (bytes, offset) = reader.bytes()?;
                let range = offset..offset + bytes.len();
                if field == 1 {
                    walked.resource = Some(range);
                } else {
                    if std::str::from_utf8(bytes).is_err() {
                        return Err(WireError { offset, what: "schema_url is not valid UTF-8" });
                    }
                    walked.schema_url = Some(range);
                }
            }
            2 => {
                reader.expect(wire_type, LEN)?;
                let (scope, offset) = reader.bytes()?;
                check_scope_spans(scope, offset, 2, |span_index, seen| {
                    walked.span_count += 1;
                    if let Some(defect) =
                        span_defect(seen.trace_id, seen.span_id, seen.parent_span_id)
                    {
                        on_defect(scope_index, span_index, defect);
                    }
                })?;
                scope_index += 1;
                let field_range = base + field_start..base + reader.position();
                walked.scope_spans.push(field_range, buf, base);
            }
            _ => reader.skip(wire_type)?,
        }
    }
    Ok(walked)
}

/// Re-encodes `scope_spans` fields without the rejected spans (the rare path). A `ScopeSpans`
/// left without spans is left out.
fn without_rejected(scope_spans: &[u8], rejected: &[Rejected]) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(scope_spans.len());
    let mut fields = Reader::new(scope_spans, 0);
    let mut scope_index = 0;
    let mut body = Vec::new();
    while !fields.is_empty() {
        let (_, wire_type) = fields.key()?;
        let (scope, offset) = fields.bytes()?;
        debug_assert_eq!(wire_type, LEN);
        body.clear();
        let mut kept = 0;
        let mut reader = Reader::new(scope, offset);
        let mut span_index = 0;
        while !reader.is_empty() {
            let start = reader.position();
            let (field, wire_type) = reader.key()?;
            reader.skip(wire_type)?;
            let raw = &scope[start..reader.position()];
            if field == 2 {
                let drop = rejected.iter().any(|r| r.scope == scope_index && r.span == span_index);
                span_index += 1;
                if drop {
                    continue;
                }
                kept += 1;
            }
            body.extend_from_slice(raw);
        }
        scope_index += 1;
        if kept > 0 {
            wire::put_bytes(&mut out, 2, &body);
        }
    }
    Ok(out)
}

/// Validates and relabels a decoded request (gRPC, OTLP JSON).
pub(super) fn from_request(
    mut request: ExportTraceServiceRequest,
    cx: &Context<'_>,
) -> Accepted<TraceBatch> {
    let mut rejections = Rejections::new("spans");
    let mut received = 0;
    for (resource_index, resource_spans) in request.resource_spans.iter_mut().enumerate() {
        for (scope_index, scope_spans) in resource_spans.scope_spans.iter_mut().enumerate() {
            received += scope_spans.spans.len();
            let mut span_index = 0;
            scope_spans.spans.retain(|span| {
                let defect = span_defect(&span.trace_id, &span.span_id, &span.parent_span_id);
                if let Some(defect) = defect {
                    rejections.add(|| {
                        format!(
                            "resource_spans[{resource_index}].scope_spans[{scope_index}].spans[{span_index}]: {defect}"
                        )
                    });
                }
                span_index += 1;
                defect.is_none()
            });
        }
        resource_spans.scope_spans.retain(|scope| !scope.spans.is_empty());
    }
    let mut batch = TraceBatch::from_request(cx.tenant.clone(), request);
    let mut tally = CacheTally::default();
    let mut relabel_dropped = 0;
    if !cx.relabeler.is_empty() {
        batch.resources.retain_mut(|resource_spans| {
            match cx.relabeler.relabel(&resource_spans.resource, &mut tally) {
                Some(resource) => {
                    resource_spans.resource = resource;
                    true
                }
                None => {
                    relabel_dropped += resource_spans.span_count;
                    false
                }
            }
        });
        cx.relabeler.record(tally);
    }
    finish(batch, &rejections, received, relabel_dropped, cx.metrics)
}

#[cfg(test)]
#[path = "traces_tests.rs"]
mod tests;
