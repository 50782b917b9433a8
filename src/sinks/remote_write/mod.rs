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
//! Invariants:
//! * A series always goes to the same shard (hash of its labels), and a shard sends one request
//!   at a time, so samples of a series leave in the order they arrived.
//! * Memory is bounded: a shard holds at most `queue_config.capacity` items (samples +
//!   histograms + exemplars), enforced by a semaphore whose permits travel with the data and are
//!   released only once it is sent or dropped. When permits are short, [`Target::prepare`] fails
//!   and ingest answers 503, so a slow receiver pushes back on senders instead of growing memory.
//! * Admission is all-or-nothing per request across targets (see `route`): permits for every
//!   target are taken before any data is queued.

pub mod client;
pub mod encode;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::RemoteWriteTarget;
use crate::model::{MetricBatch, Series, SeriesView};
use crate::relabel::{CacheTally, NameValidation, RelabelError, Relabeler, SeriesCache};
use crate::telemetry::{Catalog, ForwardDropReason, ForwardMetrics};
use client::{SendError, Sender};
use encode::{EncodeOptions, EncodedV1};

/// What a chunk carries to its shard worker.
enum Payload {
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

/// Data queued for one shard, with the capacity it occupies.
struct Chunk {
    payload: Payload,
    _permit: OwnedSemaphorePermit,
}

struct Shard {
    tx: mpsc::Sender<Chunk>,
    permits: Arc<Semaphore>,
}

/// One forward destination: its relabeling, its shards and their workers.
pub struct Target {
    name: String,
    relabeler: Relabeler,
    /// Present only with `write_relabel_configs`: key = ingest series' encoded labels.
    cache: Option<SeriesCache<Option<Arc<Series>>>>,
    shards: Vec<Shard>,
    protocol_version: u8,
    options: EncodeOptions,
    /// `max_samples_per_send`: the most items one chunk (and one request) carries.
    max_items: usize,
    /// Free items per shard below which [`Target::has_headroom`] says no.
    headroom: usize,
    metrics: ForwardMetrics,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("shards", &self.shards.len())
            .finish()
    }
}

/// Data of one request, relabeled and split for a target, with its capacity already reserved.
pub struct Prepared<'a> {
    target: &'a Target,
    chunks: Vec<(usize, Chunk)>,
}

/// Handles to stop a target's workers.
pub struct Workers {
    pub handles: Vec<JoinHandle<()>>,
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
        let queue = &config.queue_config;
        metrics.queue_capacity.set((queue.capacity * queue.shards) as i64);
        let sender = Arc::new(Sender::new(config, name.clone(), metrics.clone()));
        let options = EncodeOptions {
            send_exemplars: config.send_exemplars,
            send_native_histograms: config.send_native_histograms,
        };
        let mut shards = Vec::with_capacity(queue.shards);
        let mut handles = Vec::with_capacity(queue.shards);
        for _ in 0..queue.shards {
            // Every chunk holds at least one permit, so the channel never has more chunks than
            // the semaphore has permits: try_send after a successful acquire cannot fail.
            let (tx, rx) = mpsc::channel(queue.capacity);
            let worker = ShardWorker {
                rx,
                sender: sender.clone(),
                options,
                protocol_version: config.protocol_version,
                max_items: queue.max_samples_per_send,
                deadline: queue.batch_send_deadline.get(),
                metrics: metrics.clone(),
                abort: abort.clone(),
            };
            handles.push(tokio::spawn(worker.run()));
            shards.push(Shard { tx, permits: Arc::new(Semaphore::new(queue.capacity)) });
        }
        Ok((
            Self {
                name,
                relabeler,
                cache,
                shards,
                protocol_version: config.protocol_version,
                options,
                max_items: queue.max_samples_per_send,
                headroom: queue.max_samples_per_send,
                metrics,
            },
            Workers { handles },
        ))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counts an ingest request refused because this target's queue was full.
    pub fn count_queue_full(&self) {
        self.metrics.queue_full.inc();
    }

    /// Whether every shard has room for at least one more full request. Ingest checks this
    /// before decoding, so that under overload a 503 costs nothing instead of a wasted decode.
    pub fn has_headroom(&self) -> bool {
        self.shards.iter().all(|shard| shard.permits.available_permits() >= self.headroom)
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
        let shard_count = self.shards.len() as u64;
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
    pub fn prepare(&self, batch: &MetricBatch) -> Result<Prepared<'_>, QueueFull> {
        let shard_count = self.shards.len();
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
        let mut chunks = Vec::with_capacity(payloads.len());
        for (index, payload) in payloads {
            let needed = payload.items().max(1);
            let Some(permit) = u32::try_from(needed)
                .ok()
                .and_then(|n| self.shards[index].permits.clone().try_acquire_many_owned(n).ok())
            else {
                self.metrics.queue_full.inc();
                return Err(QueueFull { target: self.name.clone() });
            };
            chunks.push((index, Chunk { payload, _permit: permit }));
        }
        if dropped > 0 {
            self.metrics.dropped(ForwardDropReason::Relabel).inc_by(dropped);
        }
        Ok(Prepared { target: self, chunks })
    }

    /// Closes the shard channels: workers send what they hold and exit.
    pub fn close(&mut self) {
        self.shards.clear();
    }
}

impl Prepared<'_> {
    /// Queues the prepared chunks. Cannot fail: capacity was reserved by `prepare`.
    pub fn commit(self) {
        for (index, chunk) in self.chunks {
            let items = chunk.payload.items() as i64;
            let Some(shard) = self.target.shards.get(index) else {
                // The target was closed between prepare and commit (shutdown): count, never hide.
                self.target.metrics.dropped(ForwardDropReason::Shutdown).inc_by(items as u64);
                continue;
            };
            match shard.tx.try_send(chunk) {
                Ok(()) => {
                    self.target.metrics.queue_pushed.inc_by(items as u64);
                    self.target.metrics.queue_length.inc_by(items);
                }
                Err(err) => {
                    debug_assert!(false, "a permit-holding chunk found no room: {err}");
                    self.target.metrics.dropped(ForwardDropReason::Shutdown).inc_by(items as u64);
                }
            }
        }
    }
}

/// A target's queue is full: the request should be retried later (503).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueFull {
    pub target: String,
}

struct ShardWorker {
    rx: mpsc::Receiver<Chunk>,
    sender: Arc<Sender>,
    options: EncodeOptions,
    protocol_version: u8,
    max_items: usize,
    deadline: Duration,
    metrics: ForwardMetrics,
    abort: watch::Receiver<bool>,
}

impl ShardWorker {
    async fn run(mut self) {
        let mut pending: Vec<Chunk> = Vec::new();
        let mut pending_items = 0usize;
        let mut flush_at: Option<Instant> = None;
        let mut scratch = SendScratch::default();
        loop {
            let received = tokio::select! {
                chunk = self.rx.recv() => chunk,
                () = sleep_until(flush_at) => {
                    self.flush(&mut pending, &mut pending_items, &mut scratch).await;
                    flush_at = None;
                    continue;
                }
            };
            let Some(chunk) = received else { break };
            let items = chunk.payload.items();
            if pending_items > 0 && pending_items + items > self.max_items {
                self.flush(&mut pending, &mut pending_items, &mut scratch).await;
                flush_at = None;
            }
            pending_items += items;
            pending.push(chunk);
            if pending_items >= self.max_items {
                self.flush(&mut pending, &mut pending_items, &mut scratch).await;
                flush_at = None;
            } else if flush_at.is_none() {
                flush_at = Some(Instant::now() + self.deadline);
            }
        }
        self.flush(&mut pending, &mut pending_items, &mut scratch).await;
    }

    /// Sends what is pending as one request (2.0 batches over the limit in request-sized
    /// pieces; a 1.0 chunk is never over it unless one series alone is). Dropping the chunks
    /// afterwards releases their permits.
    async fn flush(
        &self,
        pending: &mut Vec<Chunk>,
        pending_items: &mut usize,
        scratch: &mut SendScratch,
    ) {
        if pending.is_empty() {
            return;
        }
        let items = std::mem::take(pending_items);
        self.metrics.queue_popped.inc_by(items as u64);
        self.metrics.queue_length.dec_by(items as i64);
        // Keep the permits until the data is sent (or dropped): they are the queue's capacity.
        let mut permits = Vec::with_capacity(pending.len());
        let mut encoded: Vec<EncodedV1> = Vec::new();
        let mut batches: Vec<MetricBatch> = Vec::new();
        for Chunk { payload, _permit } in pending.drain(..) {
            permits.push(_permit);
            match payload {
                Payload::Encoded(chunk) => encoded.push(chunk),
                Payload::Batch(batch) => batches.push(batch),
            }
        }
        if !encoded.is_empty() {
            encode::write_v1_request(encoded.iter(), &mut scratch.raw);
            let sent = Sent::of_encoded(&encoded);
            self.send(sent, scratch).await;
        }
        if !batches.is_empty() {
            let all: MetricBatch = merge(batches);
            for piece in all.split_by_items(self.max_items) {
                match self.protocol_version {
                    2 => encode::encode_v2(
                        std::slice::from_ref(&piece),
                        self.options,
                        &mut scratch.raw,
                    ),
                    _ => encode::encode_v1(
                        std::slice::from_ref(&piece),
                        self.options,
                        &mut scratch.raw,
                    ),
                }
                self.send(Sent::of_batch(&piece, self.options), scratch).await;
            }
        }
        drop(permits);
    }

    /// Compresses `scratch.raw` and sends it, retrying as the protocol allows; always accounts
    /// for every item (sent, or dropped with a reason).
    async fn send(&self, sent: Sent, scratch: &mut SendScratch) {
        let samples = sent.samples + sent.histograms;
        // Compress into a reused buffer: `compress_vec` would zero-fill a fresh
        // max_compress_len() buffer (~1 MB for 2,000 samples) on every send.
        scratch.compressed.resize(snap::raw::max_compress_len(scratch.raw.len()), 0);
        let compressed = match scratch.snappy.compress(&scratch.raw, &mut scratch.compressed) {
            Ok(len) => bytes::Bytes::copy_from_slice(&scratch.compressed[..len]),
            Err(err) => {
                tracing::error!(target_name = %self.sender.name(), error = %err, "cannot snappy-encode a batch; dropping it");
                self.metrics.dropped(ForwardDropReason::Encode).inc_by(samples as u64);
                return;
            }
        };
        let mut backoff = self.sender.min_backoff();
        loop {
            match self.sender.post(compressed.clone()).await {
                Ok(()) => {
                    self.metrics.samples_sent.inc_by(sent.samples as u64);
                    self.metrics.histograms_sent.inc_by(sent.histograms as u64);
                    self.metrics.exemplars_sent.inc_by(sent.exemplars as u64);
                    return;
                }
                Err(SendError::Rejected { status, body }) => {
                    tracing::warn!(target_name = %self.sender.name(), %status, response = %body, samples, "remote-write receiver rejected a batch; dropping it (not retryable)");
                    self.metrics.dropped(ForwardDropReason::Rejected).inc_by(samples as u64);
                    return;
                }
                Err(SendError::Retryable { reason, retry_after }) => {
                    self.metrics.retries.inc();
                    let wait = retry_after.unwrap_or(backoff);
                    tracing::warn!(target_name = %self.sender.name(), %reason, wait_ms = wait.as_millis() as u64, "remote-write send failed; retrying");
                    backoff = (backoff * 2).min(self.sender.max_backoff());
                    let mut abort = self.abort.clone();
                    let aborted = tokio::select! {
                        () = tokio::time::sleep(wait) => false,
                        _ = abort.wait_for(|aborted| *aborted) => true,
                    } || *self.abort.borrow();
                    if aborted {
                        tracing::error!(target_name = %self.sender.name(), samples, "shutdown deadline passed while retrying; dropping the batch");
                        self.metrics.dropped(ForwardDropReason::Shutdown).inc_by(samples as u64);
                        return;
                    }
                }
            }
        }
    }
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

struct SendScratch {
    raw: Vec<u8>,
    compressed: Vec<u8>,
    snappy: snap::raw::Encoder,
}

impl Default for SendScratch {
    fn default() -> Self {
        Self { raw: Vec::new(), compressed: Vec::new(), snappy: snap::raw::Encoder::new() }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
