//! The sharded, bounded send queue every forward target is built on (remote-write, Loki,
//! OTLP): one machinery for batching, sharding, backpressure and draining, so the signals
//! cannot drift apart.
//!
//! ```text
//! reserve(payloads): take permits on each payload's shard (all or nothing) → Reservation
//! commit():          push each payload into its shard's bounded channel
//! shard worker:      gather payloads up to `max_samples_per_send` items or
//!                    `batch_send_deadline` → Flush::flush (encode, compress, send with retry)
//! ```
//!
//! Invariants:
//! * Memory is bounded: a shard holds at most `queue_config.capacity` items, enforced by a
//!   semaphore whose permits travel with the payload and are released only after it has been
//!   sent or dropped. When permits are short, [`ShardedQueue::reserve`] fails and ingest
//!   answers 503/429, so a slow receiver pushes back on senders instead of growing memory.
//! * A shard flushes one batch at a time, in arrival order: whatever a target keys its shard
//!   choice on (series, stream, trace resource) leaves in the order it arrived.
//! * Every item is accounted for: sent, or dropped with a [`ForwardDropReason`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::QueueConfig;
use crate::storage::positions::{Ack, Tracker};
use crate::storage::wal::Position;
use crate::telemetry::{ForwardDropReason, ForwardMetrics};

/// Data a target queues; `items` is its share of the queue's capacity.
pub trait Payload: Send + 'static {
    fn items(&self) -> usize;
}

/// Sends what a shard worker gathered. Implementations account for every item (sent or
/// dropped) through the target's metrics; they return when done (including retries).
pub trait Flush<P: Payload>: Send + Sync + 'static {
    /// Per-worker reusable buffers.
    type Scratch: Default + Send;
    fn flush(
        &self,
        payloads: Vec<P>,
        scratch: &mut Self::Scratch,
    ) -> impl Future<Output = ()> + Send;
}

/// A target's queue is full: the request should be retried later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueFull {
    pub target: String,
}

/// A payload with the capacity it occupies and, when a WAL is on, its share of the record's
/// acknowledgement (dropped only after the payload was sent or permanently rejected).
struct Queued<P> {
    payload: P,
    _permit: OwnedSemaphorePermit,
    ack: Option<Ack>,
}

struct Shard<P> {
    tx: mpsc::Sender<Queued<P>>,
    permits: Arc<Semaphore>,
}

/// Handles to wait for a target's workers.
pub struct Workers {
    pub handles: Vec<JoinHandle<()>>,
}

/// A target's shards and the channel ends that feed their workers.
pub struct ShardedQueue<P> {
    name: String,
    shards: Vec<Shard<P>>,
    /// Free items per shard below which [`ShardedQueue::has_headroom`] says no.
    headroom: usize,
    metrics: ForwardMetrics,
    /// This target's WAL position tracker, when a WAL is on.
    tracker: Option<Arc<Tracker>>,
}

impl<P> std::fmt::Debug for ShardedQueue<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedQueue")
            .field("name", &self.name)
            .field("shards", &self.shards.len())
            .finish()
    }
}

/// Payloads with their capacity already taken, ready to be queued.
pub struct Reservation<'a, P> {
    queue: &'a ShardedQueue<P>,
    queued: Vec<(usize, Queued<P>)>,
}

impl<P: Payload> ShardedQueue<P> {
    /// Builds the queue and spawns one worker per shard on the current runtime. `abort` flips
    /// to true when the shutdown deadline has passed (flushers stop retrying then).
    pub fn start<F: Flush<P>>(
        name: String,
        config: &QueueConfig,
        flusher: &Arc<F>,
        metrics: ForwardMetrics,
    ) -> (Self, Workers) {
        metrics.queue_capacity.set((config.capacity * config.shards) as i64);
        let mut shards = Vec::with_capacity(config.shards);
        let mut handles = Vec::with_capacity(config.shards);
        for _ in 0..config.shards {
            // Every payload holds at least one permit, so the channel never has more entries
            // than the semaphore has permits: try_send after a successful acquire cannot fail.
            let (tx, rx) = mpsc::channel(config.capacity);
            let worker = ShardWorker {
                rx,
                flusher: flusher.clone(),
                max_items: config.max_samples_per_send,
                deadline: config.batch_send_deadline.get(),
                metrics: metrics.clone(),
            };
            handles.push(tokio::spawn(worker.run()));
            shards.push(Shard { tx, permits: Arc::new(Semaphore::new(config.capacity)) });
        }
        let queue =
            Self { name, shards, headroom: config.max_samples_per_send, metrics, tracker: None };
        (queue, Workers { handles })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Makes this queue a WAL consumer: committed records are tracked until delivered.
    pub fn set_tracker(&mut self, tracker: Arc<Tracker>) {
        self.tracker = Some(tracker);
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len().max(1)
    }

    pub fn metrics(&self) -> &ForwardMetrics {
        &self.metrics
    }

    /// Counts an ingest request refused because this queue was full.
    pub fn count_queue_full(&self) {
        self.metrics.queue_full.inc();
    }

    /// Whether every shard has room for at least one more full send. Ingest checks this
    /// before decoding, so that under overload a refusal costs nothing.
    pub fn has_headroom(&self) -> bool {
        self.shards.iter().all(|shard| shard.permits.available_permits() >= self.headroom)
    }

    /// Takes capacity for every payload on its shard, or for none (and counts a full queue).
    pub fn reserve(&self, payloads: Vec<(usize, P)>) -> Result<Reservation<'_, P>, QueueFull> {
        let mut queued = Vec::with_capacity(payloads.len());
        for (index, payload) in payloads {
            let needed = payload.items().max(1);
            let permit = self.shards.get(index).and_then(|shard| {
                u32::try_from(needed)
                    .ok()
                    .and_then(|n| shard.permits.clone().try_acquire_many_owned(n).ok())
            });
            let Some(permit) = permit else {
                // Dropping `queued` gives back what was taken so far.
                self.metrics.queue_full.inc();
                return Err(QueueFull { target: self.name.clone() });
            };
            queued.push((index, Queued { payload, _permit: permit, ack: None }));
        }
        Ok(Reservation { queue: self, queued })
    }

    /// Closes the shard channels: workers send what they hold and exit.
    pub fn close(&mut self) {
        self.shards.clear();
    }
}

impl<P: Payload> Reservation<'_, P> {
    /// Queues the payloads of the WAL record at `position`, tracked until every one of them
    /// is sent (the target's position then moves past the record).
    pub fn commit_at(mut self, position: Position) {
        if let Some(tracker) = &self.queue.tracker {
            let ack = tracker.register(position);
            for (_, queued) in &mut self.queued {
                queued.ack = Some(ack.clone());
            }
        }
        self.commit();
    }

    /// Queues the reserved payloads. Cannot fail: capacity was taken by `reserve`.
    pub fn commit(self) {
        let metrics = &self.queue.metrics;
        for (index, queued) in self.queued {
            let items = queued.payload.items() as u64;
            let Some(shard) = self.queue.shards.get(index) else {
                // Closed between reserve and commit (shutdown): count, never hide.
                metrics.dropped(ForwardDropReason::Shutdown).inc_by(items);
                continue;
            };
            match shard.tx.try_send(queued) {
                Ok(()) => {
                    metrics.queue_pushed.inc_by(items);
                    metrics.queue_length.inc_by(items as i64);
                }
                Err(err) => {
                    debug_assert!(false, "a permit-holding payload found no room: {err}");
                    metrics.dropped(ForwardDropReason::Shutdown).inc_by(items);
                }
            }
        }
    }
}

struct ShardWorker<P, F> {
    rx: mpsc::Receiver<Queued<P>>,
    flusher: Arc<F>,
    max_items: usize,
    deadline: Duration,
    metrics: ForwardMetrics,
}

impl<P: Payload, F: Flush<P>> ShardWorker<P, F> {
    async fn run(mut self) {
        let mut pending: Vec<Queued<P>> = Vec::new();
        let mut pending_items = 0usize;
        let mut flush_at: Option<Instant> = None;
        let mut scratch = F::Scratch::default();
        loop {
            let received = tokio::select! {
                queued = self.rx.recv() => queued,
                () = sleep_until(flush_at) => {
                    self.flush(&mut pending, &mut pending_items, &mut scratch).await;
                    flush_at = None;
                    continue;
                }
            };
            let Some(queued) = received else { break };
            let items = queued.payload.items();
            if pending_items > 0 && pending_items + items > self.max_items {
                self.flush(&mut pending, &mut pending_items, &mut scratch).await;
                flush_at = None;
            }
            pending_items += items;
            pending.push(queued);
            if pending_items >= self.max_items {
                self.flush(&mut pending, &mut pending_items, &mut scratch).await;
                flush_at = None;
            } else if flush_at.is_none() {
                flush_at = Some(Instant::now() + self.deadline);
            }
        }
        self.flush(&mut pending, &mut pending_items, &mut scratch).await;
    }

    /// Hands what is pending to the flusher. The permits are released only after the flush,
    /// because they are the queue's capacity.
    async fn flush(
        &self,
        pending: &mut Vec<Queued<P>>,
        pending_items: &mut usize,
        scratch: &mut F::Scratch,
    ) {
        if pending.is_empty() {
            return;
        }
        let items = std::mem::take(pending_items);
        self.metrics.queue_popped.inc_by(items as u64);
        self.metrics.queue_length.dec_by(items as i64);
        let mut held = Vec::with_capacity(pending.len());
        let mut payloads = Vec::with_capacity(pending.len());
        for Queued { payload, _permit, ack } in pending.drain(..) {
            held.push((_permit, ack));
            payloads.push(payload);
        }
        self.flusher.flush(payloads, scratch).await;
        // Capacity comes back and the WAL records count as delivered only now.
        drop(held);
    }
}

/// Sorts `chunks` by tenant and returns the index range of each tenant's run, so a flush can
/// send one request per tenant (normally there is one).
pub fn tenant_runs<C>(
    chunks: &mut [C],
    tenant: impl Fn(&C) -> &crate::model::Tenant,
) -> Vec<std::ops::Range<usize>> {
    chunks.sort_by(|a, b| tenant(a).cmp(tenant(b)));
    let mut runs = Vec::new();
    let mut start = 0;
    while start < chunks.len() {
        let first = tenant(&chunks[start]);
        let len = chunks[start..].iter().take_while(|c| tenant(c) == first).count();
        runs.push(start..start + len);
        start += len;
    }
    runs
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// A transport that can send one encoded request (HTTP POST, gRPC unary call).
pub trait Transport: Send + Sync + 'static {
    /// What one attempt needs besides the body (e.g. a tenant header).
    type Extra: Sync;
    fn name(&self) -> &str;
    fn min_backoff(&self) -> Duration;
    fn max_backoff(&self) -> Duration;
    fn send(
        &self,
        body: bytes::Bytes,
        extra: &Self::Extra,
    ) -> impl Future<Output = Result<(), SendError>> + Send;
}

/// How a send went wrong.
#[derive(Debug)]
pub enum SendError {
    /// Worth retrying (5xx, 429, network, timeout), after `retry_after` if the receiver said.
    Retryable { reason: String, retry_after: Option<Duration> },
    /// The receiver refused the data for good (4xx): retrying would fail the same way.
    Rejected { status: String, body: String },
}

/// Sends `body` until it is accepted, rejected for good, or shutdown's deadline passes,
/// with capped exponential backoff (Retry-After honoured). Returns whether it was accepted;
/// the drop reason otherwise.
pub async fn send_with_retry<T: Transport>(
    transport: &T,
    body: bytes::Bytes,
    extra: &T::Extra,
    items: usize,
    metrics: &ForwardMetrics,
    abort: &watch::Receiver<bool>,
) -> Result<(), ForwardDropReason> {
    let mut backoff = transport.min_backoff();
    loop {
        match transport.send(body.clone(), extra).await {
            Ok(()) => return Ok(()),
            Err(SendError::Rejected { status, body }) => {
                tracing::warn!(target_name = %transport.name(), %status, response = %body, items, "receiver rejected a batch; dropping it (not retryable)");
                metrics.dropped(ForwardDropReason::Rejected).inc_by(items as u64);
                return Err(ForwardDropReason::Rejected);
            }
            Err(SendError::Retryable { reason, retry_after }) => {
                metrics.retries.inc();
                let wait = retry_after.unwrap_or(backoff);
                tracing::warn!(target_name = %transport.name(), %reason, wait_ms = wait.as_millis() as u64, "send failed; retrying");
                backoff = (backoff * 2).min(transport.max_backoff());
                let mut abort = abort.clone();
                let aborted = tokio::select! {
                    () = tokio::time::sleep(wait) => false,
                    _ = abort.wait_for(|aborted| *aborted) => true,
                } || *abort.borrow();
                if aborted {
                    tracing::error!(target_name = %transport.name(), items, "shutdown deadline passed while retrying; dropping the batch");
                    metrics.dropped(ForwardDropReason::Shutdown).inc_by(items as u64);
                    return Err(ForwardDropReason::Shutdown);
                }
            }
        }
    }
}
