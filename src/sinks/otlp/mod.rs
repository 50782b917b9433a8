//! OTLP forward sink for traces, one [`Target`] per `forward.otlp` entry: OTLP/gRPC
//! (`opentelemetry.proto.collector.trace.v1.TraceService/Export`) or OTLP/HTTP protobuf
//! (`POST {endpoint}/v1/traces`), optionally gzip-compressed (OTLP specification 1.x,
//! `opentelemetry-proto/docs/specification.md`).
//!
//! Built on the shared [`queue`](super::queue) machinery. Spans travel as the protobuf bytes
//! ingest kept ([`ResourceSpans::scope_spans`]): a flush writes the request around them without
//! decoding them. `prepare` applies the target's `resource_relabel_configs` to each resource
//! (cached per resource) and spreads resources over shards round-robin per request: OTLP has no
//! ordering requirement, and one SDK sends one resource, which would otherwise pin all its
//! spans to one shard. Queue capacity counts spans.
//!
//! Retries follow the OTLP spec: gRPC `UNAVAILABLE`, `CANCELLED`, `DEADLINE_EXCEEDED`,
//! `ABORTED`, `OUT_OF_RANGE`, `DATA_LOSS` and `RESOURCE_EXHAUSTED` with `RetryInfo`; HTTP 429,
//! 502, 503, 504 (Retry-After honoured). Everything else is a permanent rejection.

pub mod grpc;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http::{HeaderMap, HeaderValue};
use tokio::sync::watch;

use super::http::{HttpTarget, RetryPolicy, Sender, TargetKeys};
use super::queue::{self, Flush, QueueFull, Reservation, ShardedQueue, Transport, Workers};
use super::ForwardTarget;
use crate::config::{Compression, OtlpProtocol, OtlpTarget};
use crate::model::traces::encode_resource_spans;
use crate::model::{ResourceSpans, Tenant, TraceBatch};
use crate::telemetry::{Catalog, ForwardDropReason, ForwardMetrics};

/// Resource spans of one tenant bound for one shard.
pub struct TraceChunk {
    tenant: Tenant,
    resources: Vec<ResourceSpans>,
    spans: usize,
}

impl queue::Payload for TraceChunk {
    fn items(&self) -> usize {
        self.spans
    }
}

/// Rewrites a resource for a target (its `resource_relabel_configs`); None drops its spans.
pub type ResourceRewrite = Box<
    dyn Fn(&Arc<crate::model::TraceResource>) -> Option<Arc<crate::model::TraceResource>>
        + Send
        + Sync,
>;

/// One OTLP destination.
pub struct Target {
    rewrite: Option<ResourceRewrite>,
    queue: ShardedQueue<TraceChunk>,
    next_shard: AtomicUsize,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpTarget").field("queue", &self.queue).finish()
    }
}

impl Target {
    /// `rewrite` is the target's resource relabeling (None when it has no rules).
    pub fn start(
        config: &OtlpTarget,
        name: String,
        rewrite: Option<ResourceRewrite>,
        catalog: &Catalog,
        abort: &watch::Receiver<bool>,
    ) -> (Self, Workers) {
        let metrics = catalog.forward_target(&name);
        let transport = match config.protocol {
            OtlpProtocol::Grpc => OtlpTransport::Grpc(Box::new(grpc::GrpcSender::new(
                config,
                name.clone(),
                metrics.clone(),
            ))),
            OtlpProtocol::HttpProtobuf => OtlpTransport::Http(Box::new(Sender::new(
                http_target(config),
                name.clone(),
                metrics.clone(),
            ))),
        };
        let flusher = Arc::new(Flusher {
            transport,
            gzip: config.compression == Compression::Gzip,
            metrics: metrics.clone(),
            abort: abort.clone(),
        });
        let (queue, workers) = ShardedQueue::start(name, &config.queue_config, &flusher, metrics);
        (Self { rewrite, queue, next_shard: AtomicUsize::new(0) }, workers)
    }
}

fn http_target(config: &OtlpTarget) -> HttpTarget {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
    if config.compression == Compression::Gzip {
        headers.insert(http::header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    let url = format!("{}/v1/traces", config.endpoint.trim_end_matches('/'));
    let keys = TargetKeys {
        url: &url,
        basic_auth: config.basic_auth.as_ref(),
        bearer_token: config.bearer_token.as_ref(),
        bearer_token_file: config.bearer_token_file.as_ref(),
        remote_timeout: config.remote_timeout,
        queue: &config.queue_config,
        headers: &config.headers,
    };
    HttpTarget::from_keys(&keys, headers, RetryPolicy::Otlp)
}

impl ForwardTarget for Target {
    type Batch = TraceBatch;
    type Payload = TraceChunk;

    fn queue(&self) -> &ShardedQueue<TraceChunk> {
        &self.queue
    }

    fn queue_mut(&mut self) -> &mut ShardedQueue<TraceChunk> {
        &mut self.queue
    }

    fn prepare(&self, batch: &TraceBatch) -> Result<Reservation<'_, TraceChunk>, QueueFull> {
        let shard_count = self.queue.shard_count();
        let first = self.next_shard.fetch_add(1, Ordering::Relaxed);
        let mut chunks: Vec<TraceChunk> = (0..shard_count)
            .map(|_| TraceChunk { tenant: batch.tenant.clone(), resources: Vec::new(), spans: 0 })
            .collect();
        let mut dropped = 0u64;
        for (index, resource_spans) in batch.resources.iter().enumerate() {
            let resource = match &self.rewrite {
                None => resource_spans.resource.clone(),
                Some(rewrite) => match rewrite(&resource_spans.resource) {
                    Some(resource) => resource,
                    None => {
                        dropped += resource_spans.span_count as u64;
                        continue;
                    }
                },
            };
            let chunk = &mut chunks[(first + index) % shard_count];
            chunk.spans += resource_spans.span_count;
            chunk.resources.push(ResourceSpans { resource, ..resource_spans.clone() });
        }
        let payloads =
            chunks.into_iter().enumerate().filter(|(_, chunk)| chunk.spans > 0).collect();
        let reservation = self.queue.reserve(payloads)?;
        if dropped > 0 {
            self.queue.metrics().dropped(ForwardDropReason::Relabel).inc_by(dropped);
        }
        Ok(reservation)
    }
}

enum OtlpTransport {
    Grpc(Box<grpc::GrpcSender>),
    Http(Box<Sender>),
}

struct Flusher {
    transport: OtlpTransport,
    gzip: bool,
    metrics: ForwardMetrics,
    abort: watch::Receiver<bool>,
}

impl Flush<TraceChunk> for Flusher {
    type Scratch = Vec<u8>;

    /// One export per tenant among the gathered chunks (normally one).
    async fn flush(&self, mut chunks: Vec<TraceChunk>, raw: &mut Vec<u8>) {
        for run in queue::tenant_runs(&mut chunks, |c| &c.tenant) {
            let tenant = chunks[run.start].tenant.clone();
            self.send_tenant(&tenant, &chunks[run], raw).await;
        }
    }
}

impl Flusher {
    async fn send_tenant(&self, tenant: &Tenant, chunks: &[TraceChunk], raw: &mut Vec<u8>) {
        let spans: usize = chunks.iter().map(|c| c.spans).sum();
        raw.clear();
        encode_resource_spans(chunks.iter().flat_map(|c| &c.resources), raw);
        // gRPC compresses in its own framing; HTTP bodies are gzipped here.
        let body = if self.gzip && matches!(self.transport, OtlpTransport::Http(_)) {
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(raw.len() / 4),
                flate2::Compression::fast(),
            );
            match encoder.write_all(raw).and_then(|()| encoder.finish()) {
                Ok(gzipped) => bytes::Bytes::from(gzipped),
                Err(err) => {
                    tracing::error!(error = %err, "cannot gzip an OTLP export; dropping it");
                    self.metrics.dropped(ForwardDropReason::Encode).inc_by(spans as u64);
                    return;
                }
            }
        } else {
            bytes::Bytes::copy_from_slice(raw)
        };
        let Ok(tenant_value) = HeaderValue::from_str(tenant) else {
            tracing::error!(%tenant, "tenant id is not a valid header value; dropping its spans");
            self.metrics.dropped(ForwardDropReason::Encode).inc_by(spans as u64);
            return;
        };
        let mut extra = HeaderMap::new();
        extra.insert("x-scope-orgid", tenant_value);
        let sent = match &self.transport {
            OtlpTransport::Grpc(sender) => send(&**sender, body, &extra, spans, self).await,
            OtlpTransport::Http(sender) => send(&**sender, body, &extra, spans, self).await,
        };
        if sent.is_ok() {
            self.metrics.spans_sent.inc_by(spans as u64);
        }
    }
}

async fn send<T: Transport<Extra = HeaderMap>>(
    transport: &T,
    body: bytes::Bytes,
    extra: &HeaderMap,
    spans: usize,
    flusher: &Flusher,
) -> Result<(), ForwardDropReason> {
    queue::send_with_retry(transport, body, extra, spans, &flusher.metrics, &flusher.abort).await
}

#[cfg(test)]
mod tests;
