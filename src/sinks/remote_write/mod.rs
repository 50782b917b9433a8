//! Remote-write forward sink (1.0 and 2.0 sender), one [`Target`] per `forward.remote_write` entry.
//!
//! Shape (after Prometheus' `storage/remote/queue_manager.go`, re-designed for a relay):
//!
//! ```text
//! prepare(batch): write_relabel (cached) → split by series hash into shards → take permits
//! commit():       push one chunk per shard into its bounded channel
//! shard worker:   gather chunks up to max_samples_per_send or batch_send_deadline
//!                 → encode 1.0/2.0 → snappy → POST, retrying 5xx/429/network with capped
//!                   exponential backoff (Retry-After honoured); other 4xx dropped and counted
//! ```
//!
//! Queueing, shard workers, backpressure and retries are the shared [`super::queue`]
//! machinery; this module decides what a payload is (encoded 1.0 series, or 2.0 batches) and
//! how a flush encodes it.
//!
//! Invariants:
//! * A series always goes to the same shard (hash of its labels), and a shard sends one request
//!   at a time, so samples of a series leave in the order they arrived.
//! * Queue capacity counts items (samples + histograms + exemplars).
//! * Admission is all-or-nothing per request across targets (see `route`): permits for every
//!   target are taken before any data is queued.

pub mod encode;

use std::sync::Arc;

use http::{HeaderMap, HeaderValue};
use tokio::sync::watch;

use super::http::{HttpTarget, RetryPolicy, Sender, TargetKeys};
use super::queue::{self, Flush, QueueFull, Reservation, ShardedQueue, Workers};
use super::ForwardTarget;
use crate::config::RemoteWriteTarget;
use crate::model::{MetricBatch, Series, SeriesView};
use crate::relabel::{CacheTally, NameValidation, RelabelError, Relabeler, SeriesCache};
use crate::telemetry::{Catalog, ForwardDropReason, ForwardMetrics};
use encode::{EncodeOptions, EncodedV1};

/// What a chunk carries to its shard worker.
pub enum Payload {
    /// 1.0: the series already encoded as `WriteRequest.timeseries` fields (done at admission,
    /// while the data is in cache); a request is a concatenation of these.
    Encoded(EncodedV1),
    /// 2.0: the series themselves; the symbol table is per request, so encoding waits.
    Batch(MetricBatch),
}

impl Payload {
    fn items(&self) -> usize {
        match self {
            Self::Encoded(encoded) => encoded.items(),
            Self::Batch(batch) => batch.items(),
        }
    }
}

impl queue::Payload for Payload {
    fn items(&self) -> usize {
        Payload::items(self)
    }
}

/// One forward destination: its relabeling, its shards and their workers.
pub struct Target {
    relabeler: Relabeler,
    /// Present only with `write_relabel_configs`: key = ingest series' encoded labels.
    cache: Option<SeriesCache<Option<Arc<Series>>>>,
    queue: ShardedQueue<Payload>,
    protocol_version: u8,
    options: EncodeOptions,
    /// `max_samples_per_send`: the most items one chunk (and one request) carries.
    max_items: usize,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("queue", &self.queue).finish()
    }
}

/// The HTTP side of a remote-write target.
pub fn http_target(config: &RemoteWriteTarget) -> HttpTarget {
    let mut headers = HeaderMap::new();
    let (content_type, version) = match config.protocol_version {
        2 => (crate::ingest::remote_write::CONTENT_TYPE_V2, "2.0.0"),
        _ => ("application/x-protobuf", "0.1.0"),
    };
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(http::header::CONTENT_ENCODING, HeaderValue::from_static("snappy"));
    headers.insert("x-prometheus-remote-write-version", HeaderValue::from_static(version));
    let keys = TargetKeys {
        url: &config.url,
        basic_auth: config.basic_auth.as_ref(),
        bearer_token: config.bearer_token.as_ref(),
        bearer_token_file: config.bearer_token_file.as_ref(),
        remote_timeout: config.remote_timeout,
        queue: &config.queue_config,
        headers: &config.headers,
    };
    let retry = RetryPolicy::RemoteWrite { retry_on_429: config.queue_config.retry_on_http_429 };
    HttpTarget::from_keys(&keys, headers, retry)
}

impl Target {
    /// Builds the target and spawns its shard workers on the current runtime. `abort` flips to
    /// true when the shutdown deadline has passed: workers then stop retrying and drop the rest.
    pub fn start(
        config: &RemoteWriteTarget,
        name: String,
        validation: NameValidation,
        cache_size: usize,
        catalog: &Catalog,
        abort: &watch::Receiver<bool>,
    ) -> Result<(Self, Workers), RelabelError> {
        let relabeler = Relabeler::with_validation(&config.write_relabel_configs, validation)?;
        let metrics = catalog.forward_target(&name);
        let cache = (!relabeler.is_empty()).then(|| {
            SeriesCache::new(cache_size, catalog.relabel_cache(&format!("forward:{name}")))
        });
        let options = EncodeOptions {
            send_exemplars: config.send_exemplars,
            send_native_histograms: config.send_native_histograms,
        };
        let flusher = Arc::new(Flusher {
            sender: Sender::new(http_target(config), name.clone(), metrics.clone()),
            options,
            protocol_version: config.protocol_version,
            max_items: config.queue_config.max_samples_per_send,
            metrics: metrics.clone(),
            abort: abort.clone(),
        });
        let (queue, workers) = ShardedQueue::start(name, &config.queue_config, &flusher, metrics);
        Ok((
            Self {
                relabeler,
                cache,
                queue,
                protocol_version: config.protocol_version,
                options,
                max_items: config.queue_config.max_samples_per_send,
            },
            workers,
        ))
    }

    /// The series as this target sees it (after `write_relabel_configs`), or None if dropped.
    fn relabel(&self, series: &Arc<Series>, tally: &mut CacheTally) -> Option<Arc<Series>> {
        let Some(cache) = &self.cache else { return Some(series.clone()) };
        cache.lookup(&series.encoded, tally, || {
            let labels = self.relabeler.process(&series.labels)?;
            labels.metric_name()?;
            Some(Arc::new(Series::new(labels)))
        })
    }

    /// Calls `place(shard, series, data)` for every series of `batch` that survives
    /// `write_relabel_configs`, counting the samples of those that do not into `dropped`.
    fn route_series<'b>(
        &self,
        batch: &'b MetricBatch,
        tally: &mut CacheTally,
        dropped: &mut u64,
        mut place: impl FnMut(usize, Arc<Series>, SeriesView<'b>),
    ) {
        let shard_count = self.queue.shard_count() as u64;
        for view in batch.iter() {
            match self.relabel(view.series, tally) {
                Some(series) => place((series.hash % shard_count) as usize, series, view),
                None => *dropped += (view.samples.len() + view.histograms.len()) as u64,
            }
        }
    }

    /// Relabels and shards `batch`, reserving queue capacity. Fails (nothing reserved) when a
    /// shard lacks room. For 1.0 targets the series are encoded here, split into chunks of at
    /// most `max_samples_per_send` items.
    fn prepare_batch(&self, batch: &MetricBatch) -> Result<Reservation<'_, Payload>, QueueFull> {
        let shard_count = self.queue.shard_count();
        let mut payloads: Vec<(usize, Payload)> = Vec::new();
        let mut dropped = 0u64;
        let mut tally = CacheTally::default();
        if self.protocol_version == 1 {
            let mut open: Vec<EncodedV1> = (0..shard_count).map(|_| EncodedV1::default()).collect();
            open[0].metadata.extend(batch.metadata.iter().cloned());
            self.route_series(batch, &mut tally, &mut dropped, |shard, series, view| {
                let chunk = &mut open[shard];
                if chunk.items() > 0 && chunk.items() + view.items() > self.max_items {
                    payloads.push((shard, Payload::Encoded(std::mem::take(chunk))));
                }
                chunk.push(&SeriesView { series: &series, ..view }, self.options);
            });
            for (shard, chunk) in open.into_iter().enumerate() {
                if !chunk.is_empty() {
                    payloads.push((shard, Payload::Encoded(chunk)));
                }
            }
        } else {
            let mut per_shard: Vec<MetricBatch> = vec![MetricBatch::default(); shard_count];
            per_shard[0].metadata.extend(batch.metadata.iter().cloned());
            self.route_series(batch, &mut tally, &mut dropped, |shard, series, view| {
                per_shard[shard].push_view(series, &view);
            });
            payloads.extend(
                per_shard
                    .into_iter()
                    .enumerate()
                    .filter(|(_, b)| !b.is_empty())
                    .map(|(shard, b)| (shard, Payload::Batch(b))),
            );
        }
        if let Some(cache) = &self.cache {
            cache.record(tally);
        }
        let reservation = self.queue.reserve(payloads)?;
        if dropped > 0 {
            self.queue.metrics().dropped(ForwardDropReason::Relabel).inc_by(dropped);
        }
        Ok(reservation)
    }
}

impl ForwardTarget for Target {
    type Batch = MetricBatch;
    type Payload = Payload;

    fn queue(&self) -> &ShardedQueue<Payload> {
        &self.queue
    }

    fn queue_mut(&mut self) -> &mut ShardedQueue<Payload> {
        &mut self.queue
    }

    fn prepare(&self, batch: &MetricBatch) -> Result<Reservation<'_, Payload>, QueueFull> {
        self.prepare_batch(batch)
    }
}

/// Encodes and sends what a shard gathered.
struct Flusher {
    sender: Sender,
    options: EncodeOptions,
    protocol_version: u8,
    max_items: usize,
    metrics: ForwardMetrics,
    abort: watch::Receiver<bool>,
}

impl Flush<Payload> for Flusher {
    type Scratch = SendScratch;

    /// Sends the payloads as one request (2.0 batches over the limit in request-sized pieces;
    /// a 1.0 chunk is never over it unless one series alone is).
    async fn flush(&self, payloads: Vec<Payload>, scratch: &mut SendScratch) {
        let mut encoded: Vec<EncodedV1> = Vec::new();
        let mut batches: Vec<MetricBatch> = Vec::new();
        for payload in payloads {
            match payload {
                Payload::Encoded(chunk) => encoded.push(chunk),
                Payload::Batch(batch) => batches.push(batch),
            }
        }
        if !encoded.is_empty() {
            encode::write_v1_request(encoded.iter(), &mut scratch.raw);
            self.send(Sent::of_encoded(&encoded), scratch).await;
        }
        if !batches.is_empty() {
            let all: MetricBatch = merge(batches);
            for piece in all.split_by_items(self.max_items) {
                let pieces = std::slice::from_ref(&piece);
                match self.protocol_version {
                    2 => encode::encode_v2(pieces, self.options, &mut scratch.raw),
                    _ => encode::encode_v1(pieces, self.options, &mut scratch.raw),
                }
                self.send(Sent::of_batch(&piece, self.options), scratch).await;
            }
        }
    }
}

impl Flusher {
    /// Compresses `scratch.raw` and sends it; accounts for every item (sent, or dropped).
    async fn send(&self, sent: Sent, scratch: &mut SendScratch) {
        let samples = sent.samples + sent.histograms;
        let Some(compressed) = scratch.compress() else {
            tracing::error!(target_name = %transport_name(&self.sender), "cannot snappy-encode a batch; dropping it");
            self.metrics.dropped(ForwardDropReason::Encode).inc_by(samples as u64);
            return;
        };
        let outcome = queue::send_with_retry(
            &self.sender,
            compressed,
            &HeaderMap::new(),
            samples,
            &self.metrics,
            &self.abort,
        )
        .await;
        if outcome.is_ok() {
            self.metrics.samples_sent.inc_by(sent.samples as u64);
            self.metrics.histograms_sent.inc_by(sent.histograms as u64);
            self.metrics.exemplars_sent.inc_by(sent.exemplars as u64);
        }
    }
}

fn transport_name(sender: &Sender) -> &str {
    queue::Transport::name(sender)
}

/// What one request carries, for the sent counters.
#[derive(Clone, Copy, Debug, Default)]
struct Sent {
    samples: usize,
    histograms: usize,
    exemplars: usize,
}

impl Sent {
    fn of_encoded(chunks: &[EncodedV1]) -> Self {
        chunks.iter().fold(Self::default(), |sum, c| Self {
            samples: sum.samples + c.samples,
            histograms: sum.histograms + c.histograms,
            exemplars: sum.exemplars + c.exemplars,
        })
    }

    fn of_batch(batch: &MetricBatch, options: EncodeOptions) -> Self {
        Self {
            samples: batch.sample_count(),
            histograms: if options.send_native_histograms { batch.histogram_count() } else { 0 },
            exemplars: if options.send_exemplars { batch.exemplar_count() } else { 0 },
        }
    }
}

/// One batch out of several (2.0 path), so a request can be split at series boundaries.
fn merge(batches: Vec<MetricBatch>) -> MetricBatch {
    let mut iter = batches.into_iter();
    let mut all = iter.next().unwrap_or_default();
    for batch in iter {
        all.metadata.extend(batch.metadata.iter().cloned());
        for view in batch.iter() {
            all.push_view(view.series.clone(), &view);
        }
    }
    all
}

/// Reusable buffers of one shard worker.
pub(crate) struct SendScratch {
    pub(crate) raw: Vec<u8>,
    compressed: Vec<u8>,
    snappy: snap::raw::Encoder,
}

impl Default for SendScratch {
    fn default() -> Self {
        Self { raw: Vec::new(), compressed: Vec::new(), snappy: snap::raw::Encoder::new() }
    }
}

impl SendScratch {
    /// Snappy-compresses `raw` into a reused buffer (`compress_vec` would zero-fill a fresh
    /// max_compress_len() buffer, ~1 MB for 2,000 samples, on every send).
    pub(crate) fn compress(&mut self) -> Option<bytes::Bytes> {
        self.compressed.resize(snap::raw::max_compress_len(self.raw.len()), 0);
        match self.snappy.compress(&self.raw, &mut self.compressed) {
            Ok(len) => Some(bytes::Bytes::copy_from_slice(&self.compressed[..len])),
            Err(err) => {
                tracing::error!(error = %err, "snappy encoding failed");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
