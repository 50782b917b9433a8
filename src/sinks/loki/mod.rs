//! Loki push forward sink: `logproto.PushRequest` protobuf + snappy, one [`Target`] per
//! `forward.loki` entry (Loki `pkg/push/push.proto`; the HTTP contract of
//! `POST /loki/api/v1/push`: `Content-Type: application/x-protobuf`, snappy block body,
//! `X-Scope-OrgID` for the tenant).
//!
//! Built on the shared [`queue`](super::queue) machinery: `prepare` relabels stream labels
//! (`relabel_configs`, cached per stream), picks a shard by stream hash (so the entries of a
//! stream leave in order, which Loki requires within a stream) and splits into payloads of at
//! most `max_samples_per_send` entries; a flush groups payloads by tenant and sends one push per
//! tenant. Queue capacity counts entries.

pub mod encode;

use std::sync::Arc;

use http::{HeaderMap, HeaderValue};
use tokio::sync::watch;

use super::http::{HttpTarget, RetryPolicy, Sender, TargetKeys};
use super::queue::{self, Flush, QueueFull, Reservation, ShardedQueue, Workers};
use super::remote_write::SendScratch;
use super::ForwardTarget;
use crate::config::LokiTarget;
use crate::model::{LogBatch, Stream, StreamEntries, Tenant};
use crate::relabel::{CacheTally, NameValidation, RelabelError, Relabeler, SeriesCache};
use crate::telemetry::{Catalog, ForwardDropReason, ForwardMetrics};

/// Entries of one tenant bound for one shard.
pub struct LogChunk {
    tenant: Tenant,
    streams: Vec<StreamEntries>,
    entries: usize,
}

impl queue::Payload for LogChunk {
    fn items(&self) -> usize {
        self.entries
    }
}

/// One Loki destination.
pub struct Target {
    relabeler: Relabeler,
    cache: Option<SeriesCache<Option<Arc<Stream>>>>,
    queue: ShardedQueue<LogChunk>,
    max_entries: usize,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LokiTarget").field("queue", &self.queue).finish()
    }
}

impl Target {
    pub fn start(
        config: &LokiTarget,
        name: String,
        cache_size: usize,
        catalog: &Catalog,
        abort: &watch::Receiver<bool>,
    ) -> Result<(Self, Workers), RelabelError> {
        let relabeler =
            Relabeler::with_validation(&config.relabel_configs, NameValidation::Legacy)?;
        let metrics = catalog.forward_target(&name);
        let cache = (!relabeler.is_empty()).then(|| {
            SeriesCache::new(cache_size, catalog.relabel_cache(&format!("forward:{name}")))
        });
        let mut headers = HeaderMap::new();
        headers
            .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
        let keys = TargetKeys {
            url: &config.url,
            basic_auth: config.basic_auth.as_ref(),
            bearer_token: config.bearer_token.as_ref(),
            bearer_token_file: config.bearer_token_file.as_ref(),
            remote_timeout: config.remote_timeout,
            queue: &config.queue_config,
            headers: &config.headers,
        };
        let retry =
            RetryPolicy::RemoteWrite { retry_on_429: config.queue_config.retry_on_http_429 };
        let http = HttpTarget::from_keys(&keys, headers, retry);
        let flusher = Arc::new(Flusher {
            sender: Sender::new(http, name.clone(), metrics.clone()),
            tenant_override: config
                .tenant_id
                .as_deref()
                .map(|t| HeaderValue::from_str(t).expect("validated tenant id")),
            metrics: metrics.clone(),
            abort: abort.clone(),
        });
        let (queue, workers) = ShardedQueue::start(name, &config.queue_config, &flusher, metrics);
        let max_entries = config.queue_config.max_samples_per_send;
        Ok((Self { relabeler, cache, queue, max_entries }, workers))
    }

    /// The stream as this target sees it, or None if relabeling dropped it.
    fn relabel(&self, stream: &Arc<Stream>, tally: &mut CacheTally) -> Option<Arc<Stream>> {
        let Some(cache) = &self.cache else { return Some(stream.clone()) };
        cache.lookup(stream.selector.as_bytes(), tally, || {
            let labels = self.relabeler.process(&stream.labels)?;
            // Loki refuses a whole push over one unparsable stream, so a rule that produces a
            // name Loki cannot read drops that stream here (counted, logged once per stream).
            if let Some(bad) = labels
                .iter()
                .find(|l| !crate::ingest::remote_write::validate::is_legacy_label_name(&l.name))
            {
                tracing::warn!(target_name = %self.queue.name(), stream = %stream.selector, label = %bad.name, "relabel_configs produced a label name Loki cannot parse; dropping the stream");
                return None;
            }
            (!labels.is_empty()).then(|| Arc::new(Stream::new(labels)))
        })
    }
}

impl ForwardTarget for Target {
    type Batch = LogBatch;
    type Payload = LogChunk;

    fn queue(&self) -> &ShardedQueue<LogChunk> {
        &self.queue
    }

    fn queue_mut(&mut self) -> &mut ShardedQueue<LogChunk> {
        &mut self.queue
    }

    fn prepare(&self, batch: &LogBatch) -> Result<Reservation<'_, LogChunk>, QueueFull> {
        let shard_count = self.queue.shard_count();
        let new_chunk =
            || LogChunk { tenant: batch.tenant.clone(), streams: Vec::new(), entries: 0 };
        let mut open: Vec<LogChunk> = (0..shard_count).map(|_| new_chunk()).collect();
        let mut payloads = Vec::new();
        let mut tally = CacheTally::default();
        let mut dropped = 0u64;
        for stream_entries in &batch.streams {
            let Some(stream) = self.relabel(&stream_entries.stream, &mut tally) else {
                dropped += stream_entries.entries.len() as u64;
                continue;
            };
            let shard = (stream.hash % shard_count as u64) as usize;
            let mut rest = stream_entries.entries.as_slice();
            while !rest.is_empty() {
                let chunk = &mut open[shard];
                if chunk.entries >= self.max_entries {
                    payloads.push((shard, std::mem::replace(chunk, new_chunk())));
                    continue;
                }
                let take = rest.len().min(self.max_entries - chunk.entries);
                chunk
                    .streams
                    .push(StreamEntries { stream: stream.clone(), entries: rest[..take].to_vec() });
                chunk.entries += take;
                rest = &rest[take..];
            }
        }
        if let Some(cache) = &self.cache {
            cache.record(tally);
        }
        payloads.extend(open.into_iter().enumerate().filter(|(_, c)| c.entries > 0));
        let reservation = self.queue.reserve(payloads)?;
        if dropped > 0 {
            self.queue.metrics().dropped(ForwardDropReason::Relabel).inc_by(dropped);
        }
        Ok(reservation)
    }
}

struct Flusher {
    sender: Sender,
    tenant_override: Option<HeaderValue>,
    metrics: ForwardMetrics,
    abort: watch::Receiver<bool>,
}

impl Flush<LogChunk> for Flusher {
    type Scratch = SendScratch;

    /// One push per tenant among the gathered chunks (normally one).
    async fn flush(&self, mut chunks: Vec<LogChunk>, scratch: &mut SendScratch) {
        for run in queue::tenant_runs(&mut chunks, |c| &c.tenant) {
            let tenant = chunks[run.start].tenant.clone();
            self.send_tenant(&tenant, &chunks[run], scratch).await;
        }
    }
}

impl Flusher {
    async fn send_tenant(&self, tenant: &Tenant, chunks: &[LogChunk], scratch: &mut SendScratch) {
        let entries: usize = chunks.iter().map(|c| c.entries).sum();
        scratch.raw.clear();
        encode::encode_push_request(
            chunks.iter().flat_map(|c| &c.streams).map(|s| (&*s.stream, s.entries.as_slice())),
            &mut scratch.raw,
        );
        let Some(body) = scratch.compress() else {
            self.metrics.dropped(ForwardDropReason::Encode).inc_by(entries as u64);
            return;
        };
        let tenant_header = match &self.tenant_override {
            Some(value) => value.clone(),
            None => match HeaderValue::from_str(tenant) {
                Ok(value) => value,
                Err(_) => {
                    tracing::error!(%tenant, "tenant id is not a valid header value; dropping its entries");
                    self.metrics.dropped(ForwardDropReason::Encode).inc_by(entries as u64);
                    return;
                }
            },
        };
        let mut extra = HeaderMap::new();
        extra.insert("x-scope-orgid", tenant_header);
        let sent =
            queue::send_with_retry(&self.sender, body, &extra, entries, &self.metrics, &self.abort)
                .await;
        if sent.is_ok() {
            self.metrics.log_entries_sent.inc_by(entries as u64);
        }
    }
}

#[cfg(test)]
mod tests;
