//! Routing: hands each accepted batch to every forward target of its signal, all or nothing.
//!
//! Admission is two-phase: every target first relabels, shards and reserves queue capacity for
//! the batch ([`ForwardTarget::prepare`]); only when all have room is anything queued
//! ([`Reservation::commit`]). If one target is full, nothing is queued anywhere and the sender
//! is told to retry the whole request, so a retry never duplicates data into the targets that
//! did have room. The batch is shared read-only; each target builds its own relabeled copy.
//!
//! Metrics go to `forward.remote_write`, logs to `forward.loki`, traces to `forward.otlp`.
//!
//! With storage on (every role; `storage::durable`), a batch whose targets all had room is
//! appended to the WAL as one record, applied to the head, and committed to each target
//! tagged with the record's position — all under the WAL gate, so positions and head content
//! stay consistent — before the caller may acknowledge. A WAL failure releases the
//! reservations and answers 503: nothing is acknowledged that is not in the WAL.
//!
//! After a restart, [`Router::replay`] feeds every target the records after its own saved
//! position (and the head those after its last block), before ingest is admitted, so per-series
//! order holds and nothing acknowledged is lost.
//!
//! [`Reservation::commit`]: crate::sinks::queue::Reservation::commit

pub mod rule_output;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::RwLock;

use crate::error::ErrorKind;
use crate::model::{LogBatch, MetricBatch, TraceBatch};
use crate::sinks::{loki, otlp, remote_write, ForwardTarget};
use crate::storage::durable::{Durable, DurableError};
use crate::storage::record::{self, Batch};
use crate::storage::store::Store;
use crate::storage::wal::Position;

/// Why a batch could not be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("forward queue of target {target:?} is full; retry later")]
    QueueFull { target: String },
    #[error("shutting down; retry later or against another instance")]
    ShuttingDown,
    #[error("replaying the write-ahead log after a restart; retry later")]
    Replaying,
    #[error("cannot make the data durable: {0}")]
    Storage(String),
}

impl From<DurableError> for RouteError {
    fn from(err: DurableError) -> Self {
        Self::Storage(err.to_string())
    }
}

impl RouteError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Unavailable
    }
}

/// The three kinds of data, each with its own targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Metrics,
    Logs,
    Traces,
}

/// Every forward target, by signal.
#[derive(Debug, Default)]
pub struct Targets {
    pub metrics: Vec<remote_write::Target>,
    pub logs: Vec<loki::Target>,
    pub traces: Vec<otlp::Target>,
}

/// The WAL and the head behind a router, and where each consumer resumes after a restart.
#[derive(Debug)]
pub struct Durability {
    pub durable: Arc<Durable>,
    /// The head and block writer, when this role stores data.
    pub store: Option<Arc<Store>>,
    /// Where each target resumes, in the order of [`Targets`]' vectors.
    pub resume: Resume,
    /// Snappy-compress records (`storage.wal.compression`).
    pub compress: bool,
}

/// Saved positions per target, by signal, in target order.
#[derive(Debug, Default)]
pub struct Resume {
    pub metrics: Vec<Position>,
    pub logs: Vec<Position>,
    pub traces: Vec<Position>,
}

/// The fan-out point between ingest and the forward sinks.
#[derive(Debug)]
pub struct Router {
    metrics: RwLock<Vec<remote_write::Target>>,
    logs: RwLock<Vec<loki::Target>>,
    traces: RwLock<Vec<otlp::Target>>,
    closed: AtomicBool,
    replaying: AtomicBool,
    durability: Option<Durability>,
}

/// What [`Router::replay`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    pub records: u64,
    /// Records that could not be decoded (skipped, logged).
    pub bad_records: u64,
    pub to_targets: u64,
    pub to_head: u64,
}

/// A batch type that can be written as a WAL record.
trait Recorded {
    const KIND: u8;
    fn encode(&self, out: &mut Vec<u8>);
    fn apply(&self, store: &Store, position: Position);
}

impl Recorded for MetricBatch {
    const KIND: u8 = record::KIND_METRICS;
    fn encode(&self, out: &mut Vec<u8>) {
        record::encode_metrics(self, out);
    }
    fn apply(&self, store: &Store, position: Position) {
        store.append_metrics(self, position);
    }
}

impl Recorded for LogBatch {
    const KIND: u8 = record::KIND_LOGS;
    fn encode(&self, out: &mut Vec<u8>) {
        record::encode_logs(self, out);
    }
    fn apply(&self, store: &Store, position: Position) {
        store.append_logs(self, position);
    }
}

impl Recorded for TraceBatch {
    const KIND: u8 = record::KIND_TRACES;
    fn encode(&self, out: &mut Vec<u8>) {
        record::encode_traces(self, out);
    }
    fn apply(&self, store: &Store, position: Position) {
        store.append_traces(self, position);
    }
}

impl Router {
    /// A router without a WAL (tests of the forwarding machinery).
    pub fn new(targets: Targets) -> Self {
        Self::with_durability(targets, None)
    }

    /// A router that writes every batch to the WAL (and the head, when there is a store)
    /// before it may be acknowledged. Ingest is refused until [`Router::replay`] has run.
    pub fn with_durability(targets: Targets, durability: Option<Durability>) -> Self {
        Self {
            metrics: RwLock::new(targets.metrics),
            logs: RwLock::new(targets.logs),
            traces: RwLock::new(targets.traces),
            closed: AtomicBool::new(false),
            replaying: AtomicBool::new(durability.is_some()),
            durability,
        }
    }

    pub fn durable(&self) -> Option<&Arc<Durable>> {
        self.durability.as_ref().map(|d| &d.durable)
    }

    pub fn store(&self) -> Option<&Arc<Store>> {
        self.durability.as_ref().and_then(|d| d.store.as_ref())
    }

    /// Queues `batch` on every metrics target, or on none.
    pub async fn submit_metrics(&self, batch: &MetricBatch) -> Result<(), RouteError> {
        if batch.is_empty() {
            return self.check_open();
        }
        self.submit(&self.metrics, batch).await
    }

    /// Queues `batch` on every log target, or on none.
    pub async fn submit_logs(&self, batch: &LogBatch) -> Result<(), RouteError> {
        if batch.is_empty() {
            return self.check_open();
        }
        self.submit(&self.logs, batch).await
    }

    /// Queues `batch` on every trace target, or on none.
    pub async fn submit_traces(&self, batch: &TraceBatch) -> Result<(), RouteError> {
        if batch.is_empty() {
            return self.check_open();
        }
        self.submit(&self.traces, batch).await
    }

    async fn submit<T: ForwardTarget>(
        &self,
        targets: &RwLock<Vec<T>>,
        batch: &T::Batch,
    ) -> Result<(), RouteError>
    where
        T::Batch: Recorded,
    {
        self.check_open()?;
        let targets = targets.read().await;
        let mut prepared = Vec::with_capacity(targets.len());
        for target in targets.iter() {
            match target.prepare(batch) {
                Ok(ready) => prepared.push(ready),
                // Dropping `prepared` releases what the other targets reserved.
                Err(full) => return Err(RouteError::QueueFull { target: full.target }),
            }
        }
        let Some(durability) = &self.durability else {
            for ready in prepared {
                ready.commit();
            }
            return Ok(());
        };
        let mut payload = Vec::new();
        batch.encode(&mut payload);
        let (kind, payload) = if durability.compress {
            record::compress(T::Batch::KIND, &payload)
        } else {
            (T::Batch::KIND, payload)
        };
        let position = {
            let _gate = durability.durable.gate().await;
            // On failure `prepared` is dropped: the reservations go back, nothing is queued.
            let position = durability.durable.append(kind, &payload)?;
            if let Some(store) = &durability.store {
                batch.apply(store, position);
            }
            for ready in prepared {
                ready.commit_at(position);
            }
            position
        };
        durability.durable.commit(position).await?;
        Ok(())
    }

    /// Feeds each target the WAL records after its saved position, and the head those after
    /// its last block, then admits ingest. Waits for queue room (targets drain meanwhile), so
    /// it returns once everything is queued or the router closes.
    pub async fn replay(&self) -> Result<ReplayReport, RouteError> {
        let mut report = ReplayReport::default();
        let Some(durability) = &self.durability else { return Ok(report) };
        let head_from = durability.store.as_ref().map(|store| store.resume());
        let resume = &durability.resume;
        let from = resume
            .metrics
            .iter()
            .chain(&resume.logs)
            .chain(&resume.traces)
            .chain(head_from.as_ref())
            .min()
            .copied();
        if let Some(from) = from {
            let reader = durability.durable.read_from(from)?;
            for record in reader {
                let record = record.map_err(|e| RouteError::Storage(e.to_string()))?;
                report.records += 1;
                let position = record.position;
                let batch = match record::decode_frame(record.kind, record.payload) {
                    Ok(batch) => batch,
                    Err(err) => {
                        report.bad_records += 1;
                        tracing::error!(error = %err, ?position, "skipping a wal record");
                        continue;
                    }
                };
                if let (Some(store), Some(head_from)) = (&durability.store, head_from) {
                    if position >= head_from {
                        report.to_head += 1;
                        match &batch {
                            Batch::Metrics(b) => b.apply(store, position),
                            Batch::Logs(b) => b.apply(store, position),
                            Batch::Traces(b) => b.apply(store, position),
                        }
                    }
                }
                report.to_targets += match &batch {
                    Batch::Metrics(b) => {
                        self.replay_to(&self.metrics, &resume.metrics, b, position).await?
                    }
                    Batch::Logs(b) => self.replay_to(&self.logs, &resume.logs, b, position).await?,
                    Batch::Traces(b) => {
                        self.replay_to(&self.traces, &resume.traces, b, position).await?
                    }
                };
            }
        }
        self.replaying.store(false, Ordering::Release);
        Ok(report)
    }

    /// Queues one replayed record on every target that had not finished it, waiting for room.
    async fn replay_to<T: ForwardTarget>(
        &self,
        targets: &RwLock<Vec<T>>,
        resume: &[Position],
        batch: &T::Batch,
        position: Position,
    ) -> Result<u64, RouteError> {
        let mut queued = 0;
        let targets = targets.read().await;
        for (target, from) in targets.iter().zip(resume) {
            if position < *from {
                continue;
            }
            loop {
                if self.closed.load(Ordering::Acquire) {
                    return Err(RouteError::ShuttingDown);
                }
                match target.prepare(batch) {
                    Ok(ready) => {
                        ready.commit_at(position);
                        queued += 1;
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }
        Ok(queued)
    }

    /// Fails fast, before a request is decoded, when a target of `signal` is nearly full (a
    /// shard has less room than one full send) or the router is closed.
    pub async fn admit(&self, signal: Signal) -> Result<(), RouteError> {
        self.check_open()?;
        match signal {
            Signal::Metrics => admit_to(&self.metrics.read().await),
            Signal::Logs => admit_to(&self.logs.read().await),
            Signal::Traces => admit_to(&self.traces.read().await),
        }
    }

    fn check_open(&self) -> Result<(), RouteError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(RouteError::ShuttingDown);
        }
        if self.replaying.load(Ordering::Acquire) {
            return Err(RouteError::Replaying);
        }
        Ok(())
    }

    /// Whether the WAL replay after start is still running.
    pub fn is_replaying(&self) -> bool {
        self.replaying.load(Ordering::Acquire)
    }

    /// Refuses new batches and closes the targets' queues so their workers drain and exit.
    /// Waits for in-flight submits (they hold the read locks) to finish first.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        for target in self.metrics.write().await.iter_mut() {
            target.queue_mut().close();
        }
        for target in self.logs.write().await.iter_mut() {
            target.queue_mut().close();
        }
        for target in self.traces.write().await.iter_mut() {
            target.queue_mut().close();
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

fn admit_to<T: ForwardTarget>(targets: &[T]) -> Result<(), RouteError> {
    match targets.iter().find(|t| !t.queue().has_headroom()) {
        Some(target) => {
            target.queue().count_queue_full();
            Err(RouteError::QueueFull { target: target.queue().name().to_owned() })
        }
        None => Ok(()),
    }
}
