//! Routing: hands each accepted batch to every forward target, all or nothing.
//!
//! Admission is two-phase: every target first relabels, shards and reserves queue capacity for
//! the batch ([`Target::prepare`]); only when all have room is anything queued
//! ([`Prepared::commit`]). If one target is full, nothing is queued anywhere and the sender gets
//! a 503 to retry the whole request, so a retry never duplicates data into the targets that did
//! have room. The batch is shared read-only; each target builds its own relabeled copy.
//!
//! [`Prepared::commit`]: crate::sinks::remote_write::Prepared::commit

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::RwLock;

use crate::error::ErrorKind;
use crate::model::MetricBatch;
use crate::sinks::remote_write::Target;

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

/// The fan-out point between ingest and the forward sinks.
#[derive(Debug)]
pub struct Router {
    targets: RwLock<Vec<Target>>,
    closed: AtomicBool,
}

impl Router {
    pub fn new(targets: Vec<Target>) -> Self {
        Self { targets: RwLock::new(targets), closed: AtomicBool::new(false) }
    }

    /// Queues `batch` on every target, or on none.
    pub async fn submit(&self, batch: &MetricBatch) -> Result<(), RouteError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(RouteError::ShuttingDown);
        }
        if batch.is_empty() {
            return Ok(());
        }
        let targets = self.targets.read().await;
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

    /// Fails fast, before a request is decoded, when a target's queue is nearly full (a shard
    /// has less room than one full send) or the router is closed.
    pub async fn admit(&self) -> Result<(), RouteError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(RouteError::ShuttingDown);
        }
        let targets = self.targets.read().await;
        match targets.iter().find(|t| !t.has_headroom()) {
            Some(target) => {
                target.count_queue_full();
                Err(RouteError::QueueFull { target: target.name().to_owned() })
            }
            None => Ok(()),
        }
    }

    /// Refuses new batches and closes the targets' queues so their workers drain and exit.
    /// Waits for in-flight `submit`s (they hold the read lock) to finish first.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let mut targets = self.targets.write().await;
        for target in targets.iter_mut() {
            target.close();
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}
