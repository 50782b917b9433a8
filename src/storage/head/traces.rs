//! The traces head: per tenant, the spans of recent traces by trace id, as the
//! [`SpanRecord`]s blocks store, after Tempo's ingester (`modules/ingester/instance.go`: live
//! traces by id, searchable until flushed).
//!
//! * Append decodes every `ResourceSpans` of a batch before storing any span, so a decode error
//!   leaves the head as it was. Each span is re-encoded alone (OTLP `Span`), the resource bytes
//!   are copied once per `ResourceSpans` and the scope encoded once per `ScopeSpans`; spans of
//!   one resource or scope share those bytes (reference counted), and nothing keeps a request
//!   body alive.
//! * A span whose trace id is not 16 bytes or span id not 8 bytes cannot be stored under an
//!   id and is skipped (ingest validation rejects them first).
//! * Search follows Tempo's search API (`/api/search`: service name, span name, min and max
//!   duration, start and end, limit): a trace matches when one span has the service name and
//!   the span name asked for, the trace's duration (latest end − earliest start over its spans)
//!   is within bounds and the trace overlaps `[start_ns, end_ns]`. Results are the most recent
//!   traces first. The root is the span without a parent; until it arrives the root name and
//!   service are empty.
//!
//! Invariants: a trace's `start`/`end` are the min start and max end over its spans.

use std::sync::{Arc, RwLock};

use ahash::AHashMap;
use bytes::Bytes;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::{read, write};
use crate::model::logs::Tenant;
use crate::model::traces::TraceBatch;
use crate::storage::SpanRecord;

const STRIPES: usize = 16;

/// What to look for; every `Some` field must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceSearch {
    pub service_name: Option<String>,
    pub span_name: Option<String>,
    pub min_duration_ns: u64,
    pub max_duration_ns: Option<u64>,
    /// The trace must overlap `[start_ns, end_ns]` (Unix nanoseconds).
    pub start_ns: u64,
    pub end_ns: u64,
    /// Most traces returned; 0 for no limit.
    pub limit: usize,
}

/// One trace found by [`TracesHead::search`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceSummary {
    pub trace_id: [u8; 16],
    /// Empty until the root span is in.
    pub root_service: String,
    pub root_name: String,
    pub start_unix_nano: u64,
    pub duration_ns: u64,
    pub span_count: usize,
}

/// Totals over the traces head.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TracesStats {
    pub tenants: u64,
    pub traces: u64,
    pub spans: u64,
    /// Encoded span bytes (resources and scopes are shared and not counted).
    pub span_bytes: u64,
    /// Earliest span start and latest span end, Unix nanoseconds; `None` when empty.
    pub min_time_ns: Option<u64>,
    pub max_time_ns: Option<u64>,
}

#[derive(Debug)]
struct MemTrace {
    spans: Vec<SpanRecord>,
    start: u64,
    end: u64,
}

impl MemTrace {
    fn summary(&self, trace_id: [u8; 16]) -> TraceSummary {
        let root = self.spans.iter().find(|s| s.parent_span_id.is_empty());
        TraceSummary {
            trace_id,
            root_service: root.map(|r| r.service_name.clone()).unwrap_or_default(),
            root_name: root.map(|r| r.name.clone()).unwrap_or_default(),
            start_unix_nano: self.start,
            duration_ns: self.end.saturating_sub(self.start),
            span_count: self.spans.len(),
        }
    }

    fn matches(&self, search: &TraceSearch) -> bool {
        let duration = self.end.saturating_sub(self.start);
        duration >= search.min_duration_ns
            && search.max_duration_ns.is_none_or(|max| duration <= max)
            && self.start <= search.end_ns
            && self.end >= search.start_ns
            && self.spans.iter().any(|span| {
                search.service_name.as_ref().is_none_or(|s| *s == span.service_name)
                    && search.span_name.as_ref().is_none_or(|n| *n == span.name)
            })
    }
}

type TraceMap = AHashMap<[u8; 16], MemTrace>;

#[derive(Debug)]
struct TenantTraces {
    stripes: Box<[RwLock<TraceMap>]>,
}

impl TenantTraces {
    fn stripe(&self, trace_id: &[u8; 16]) -> &RwLock<TraceMap> {
        // Trace ids are random, so their last byte spreads them evenly.
        &self.stripes[trace_id[15] as usize % STRIPES]
    }
}

/// Recent traces of every tenant.
#[derive(Debug, Default)]
pub struct TracesHead {
    tenants: RwLock<AHashMap<Tenant, Arc<TenantTraces>>>,
}

/// The resource's `service.name` string attribute, empty when absent.
fn service_name(resource: &Resource) -> String {
    resource
        .attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(name) => Some(name.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

impl TracesHead {
    pub fn new() -> Self {
        Self::default()
    }

    fn tenant(&self, tenant: &str) -> Option<Arc<TenantTraces>> {
        read(&self.tenants).get(tenant).cloned()
    }

    /// Stores the batch's spans and returns how many were stored.
    pub fn append(&self, batch: &TraceBatch) -> Result<usize, prost::DecodeError> {
        let mut records = Vec::with_capacity(batch.span_count());
        for resource_spans in &batch.resources {
            let scopes = resource_spans.decode_scope_spans()?;
            let resource = Bytes::copy_from_slice(&resource_spans.resource.encoded);
            let service = service_name(&resource_spans.resource.resource);
            for scope_spans in scopes {
                let scope = Bytes::from(scope_spans.scope.unwrap_or_default().encode_to_vec());
                for span in scope_spans.spans {
                    let (Ok(trace_id), Ok(span_id)) = (
                        <[u8; 16]>::try_from(&span.trace_id[..]),
                        <[u8; 8]>::try_from(&span.span_id[..]),
                    ) else {
                        continue;
                    };
                    records.push(SpanRecord {
                        trace_id,
                        span_id,
                        parent_span_id: span.parent_span_id.clone(),
                        name: span.name.clone(),
                        kind: span.kind,
                        start_unix_nano: span.start_time_unix_nano,
                        end_unix_nano: span.end_time_unix_nano,
                        status_code: span.status.as_ref().map_or(0, |s| s.code),
                        service_name: service.clone(),
                        resource: resource.clone(),
                        scope: scope.clone(),
                        span: Bytes::from(span.encode_to_vec()),
                    });
                }
            }
        }
        if records.is_empty() {
            return Ok(0);
        }
        let tenant = match self.tenant(&batch.tenant) {
            Some(found) => found,
            None => write(&self.tenants)
                .entry(batch.tenant.clone())
                .or_insert_with(|| {
                    Arc::new(TenantTraces {
                        stripes: (0..STRIPES).map(|_| RwLock::default()).collect(),
                    })
                })
                .clone(),
        };
        let stored = records.len();
        for record in records {
            let mut stripe = write(tenant.stripe(&record.trace_id));
            let trace = stripe.entry(record.trace_id).or_insert_with(|| MemTrace {
                spans: Vec::new(),
                start: u64::MAX,
                end: 0,
            });
            trace.start = trace.start.min(record.start_unix_nano);
            trace.end = trace.end.max(record.end_unix_nano.max(record.start_unix_nano));
            trace.spans.push(record);
        }
        Ok(stored)
    }

    /// The spans of one trace, sorted by start time (then span id).
    pub fn trace(&self, tenant: &str, trace_id: &[u8; 16]) -> Vec<SpanRecord> {
        let Some(tenant) = self.tenant(tenant) else {
            return Vec::new();
        };
        let mut spans = read(tenant.stripe(trace_id))
            .get(trace_id)
            .map(|t| t.spans.clone())
            .unwrap_or_default();
        spans.sort_by_key(|s| (s.start_unix_nano, s.span_id));
        spans
    }

    /// Traces matching `search`, most recent first, at most `search.limit` (0: all).
    pub fn search(&self, tenant: &str, search: &TraceSearch) -> Vec<TraceSummary> {
        let Some(tenant) = self.tenant(tenant) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for stripe in tenant.stripes.iter() {
            let traces = read(stripe);
            found.extend(
                traces.iter().filter(|(_, t)| t.matches(search)).map(|(id, t)| t.summary(*id)),
            );
        }
        found.sort_unstable_by(|a, b| {
            b.start_unix_nano.cmp(&a.start_unix_nano).then(a.trace_id.cmp(&b.trace_id))
        });
        if search.limit > 0 {
            found.truncate(search.limit);
        }
        found
    }

    /// Every span of the tenant sorted by (trace id, start), for flushing.
    pub fn all_spans(&self, tenant: &str) -> Vec<SpanRecord> {
        let Some(tenant) = self.tenant(tenant) else {
            return Vec::new();
        };
        let mut spans = Vec::new();
        for stripe in tenant.stripes.iter() {
            spans.extend(read(stripe).values().flat_map(|t| t.spans.iter().cloned()));
        }
        spans.sort_unstable_by_key(|s| (s.trace_id, s.start_unix_nano, s.span_id));
        spans
    }

    /// Tenants with data, sorted.
    pub fn tenants(&self) -> Vec<Tenant> {
        let mut out: Vec<Tenant> = read(&self.tenants).keys().cloned().collect();
        out.sort_unstable();
        out
    }

    pub fn stats(&self) -> TracesStats {
        let tenants: Vec<Arc<TenantTraces>> = read(&self.tenants).values().cloned().collect();
        let mut stats = TracesStats { tenants: tenants.len() as u64, ..TracesStats::default() };
        for tenant in tenants {
            for stripe in tenant.stripes.iter() {
                for trace in read(stripe).values() {
                    stats.traces += 1;
                    stats.spans += trace.spans.len() as u64;
                    stats.span_bytes +=
                        trace.spans.iter().map(|s| s.span.len() as u64).sum::<u64>();
                    stats.min_time_ns =
                        Some(stats.min_time_ns.map_or(trace.start, |t| t.min(trace.start)));
                    stats.max_time_ns =
                        Some(stats.max_time_ns.map_or(trace.end, |t| t.max(trace.end)));
                }
            }
        }
        stats
    }
}
