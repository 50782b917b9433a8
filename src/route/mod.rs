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
//! [`Reservation::commit`]: crate::sinks::queue::Reservation::commit

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::RwLock;

use crate::error::ErrorKind;
use crate::model::{LogBatch, MetricBatch, TraceBatch};
use crate::sinks::{loki, otlp, remote_write, ForwardTarget};

/// Why a batch could not be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("forward queue of target {target:?} is full; retry later")]
    QueueFull { target: String },
    #[error("shutting down; retry later or against another instance")]
    ShuttingDown,
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

/// The fan-out point between ingest and the forward sinks.
#[derive(Debug)]
pub struct Router {
    metrics: RwLock<Vec<remote_write::Target>>,
    logs: RwLock<Vec<loki::Target>>,
    traces: RwLock<Vec<otlp::Target>>,
    closed: AtomicBool,
}

impl Router {
    pub fn new(targets: Targets) -> Self {
        Self {
            metrics: RwLock::new(targets.metrics),
            logs: RwLock::new(targets.logs),
            traces: RwLock::new(targets.traces),
            closed: AtomicBool::new(false),
        }
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
    ) -> Result<(), RouteError> {
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
        for ready in prepared {
            ready.commit();
        }
        Ok(())
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
        Ok(())
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
