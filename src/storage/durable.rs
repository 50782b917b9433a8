//! The durability layer in front of every acknowledgement: the WAL writer with its fsync policy,
//! the gate that keeps WAL order, head content and consumer registrations consistent, and the
//! per-consumer positions that checkpoint the WAL.
//!
//! Ingest path (see `route`): reserve forward capacity → take the gate (shared) → append the
//! record → apply it to the head and register it with each consumer → release the gate →
//! (fsync `always`: wait for the group fsync) → 2xx. A failed append, a full WAL or a failed
//! fsync answers 503: nothing is acknowledged that is not in the WAL.
//!
//! Positions: every ~second, and at shutdown, the gate is taken exclusively for an instant to
//! read the WAL end and every consumer's position consistently (no record can be appended but
//! not yet registered at that moment); they are written to `positions.json` and segments
//! wholly before the oldest position are deleted.
//!
//! fsync policy (`storage.wal.fsync`): `interval` (default) acknowledges once the record is in
//! the OS page cache — a kill -9 or crash of Strata loses nothing — and fsyncs every
//! `fsync_interval` (default 1 s), bounding what a power loss can take. `always` fsyncs before
//! acknowledging; concurrent requests share one fsync (group commit).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{RwLock, RwLockReadGuard};

use super::positions::{PositionsError, PositionsFile, Tracker};
use super::stopped;
use super::wal::{Position, Repair, Wal, WalError, WalReader};
use crate::config::storage::WalConfig;
use crate::config::FsyncPolicy;
use crate::telemetry::{StorageMetrics, WalFailure};

/// Why data could not be made durable; every variant means 503 to the sender.
#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(
        "the WAL is full ({size} bytes, limit {limit}): forward targets are behind; retry later"
    )]
    Full { size: u64, limit: u64 },
    #[error("wal fsync failed: {0}")]
    Fsync(std::io::Error),
    #[error(transparent)]
    Positions(#[from] PositionsError),
}

/// The WAL, its consumers and their positions.
pub struct Durable {
    dir: PathBuf,
    wal: Mutex<Wal>,
    fsync: FsyncPolicy,
    fsync_interval: Duration,
    max_size: u64,
    /// Everything before this position is fsynced (`always`); held while syncing.
    synced: tokio::sync::Mutex<Position>,
    gate: RwLock<()>,
    file: PositionsFile,
    /// Positions loaded at start, for consumers to resume from.
    saved: BTreeMap<String, Position>,
    /// The WAL end at start: where a consumer unknown to the positions file begins.
    start_end: Position,
    consumers: Mutex<Vec<Arc<Tracker>>>,
    metrics: StorageMetrics,
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable").field("dir", &self.dir).finish()
    }
}

impl Durable {
    /// Opens the WAL under `dir/wal` (repairing a bad tail) and loads the saved positions.
    pub fn open(
        dir: &Path,
        config: &WalConfig,
        metrics: StorageMetrics,
    ) -> Result<(Arc<Self>, Repair), DurableError> {
        let (wal, repair) = Wal::open(&dir.join("wal"), config.segment_size.bytes())?;
        let file = PositionsFile::new(dir);
        let saved = file.load()?;
        let end = wal.end();
        metrics.wal_size.set(wal.size_bytes() as i64);
        let durable = Self {
            dir: dir.to_owned(),
            wal: Mutex::new(wal),
            fsync: config.fsync,
            fsync_interval: config.fsync_interval.get(),
            max_size: config.max_size.bytes(),
            synced: tokio::sync::Mutex::new(end),
            gate: RwLock::new(()),
            file,
            saved,
            start_end: end,
            consumers: Mutex::new(Vec::new()),
            metrics,
        };
        Ok((Arc::new(durable), repair))
    }

    /// A consumer's tracker, registered for checkpointing, and where it resumes: its saved
    /// position (clamped to the WAL end, which a repair may have moved back). A consumer the
    /// positions file does not know starts at the WAL's beginning when there is no positions
    /// file yet (a first run that crashed before its first checkpoint) or when `from_start`
    /// (the head, which knows what it already flushed); otherwise at the WAL end (a target
    /// added to an existing installation starts with new data, not history).
    pub fn consumer(&self, name: &str, from_start: bool) -> (Arc<Tracker>, Position) {
        let tracker = Tracker::new(name);
        self.consumers.lock().expect("consumers lock").push(tracker.clone());
        let unknown = if from_start || self.saved.is_empty() {
            Position { segment: 0, offset: 0 }
        } else {
            self.start_end
        };
        let resume = self.saved.get(name).copied().unwrap_or(unknown).min(self.start_end);
        (tracker, resume)
    }

    /// Shared access for an append and the registrations that go with it.
    pub async fn gate(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().await
    }

    /// Exclusive access: nothing is appended meanwhile (head cut, positions snapshot).
    pub async fn gate_exclusive(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.gate.write().await
    }

    /// Appends one record; call with the gate held. Fails when the WAL is over its size limit
    /// or the write fails.
    pub fn append(&self, kind: u8, payload: &[u8]) -> Result<Position, DurableError> {
        let mut wal = self.wal.lock().expect("wal lock");
        let size = wal.size_bytes();
        if size >= self.max_size {
            self.metrics.wal_failure(WalFailure::Full).inc();
            return Err(DurableError::Full { size, limit: self.max_size });
        }
        let position = wal.append(kind, payload).inspect_err(|err| {
            self.metrics.wal_failure(WalFailure::Append).inc();
            tracing::error!(error = %err, "wal append failed; refusing data");
        })?;
        let index = usize::from((kind & 0x7f).saturating_sub(1)).min(2);
        self.metrics.wal_records[index].inc();
        self.metrics.wal_bytes.inc_by(payload.len() as u64 + 9);
        self.metrics.wal_size.set(wal.size_bytes() as i64);
        Ok(position)
    }

    /// With fsync `always`, waits until the record at `position` is on disk (one fsync serves
    /// every record appended before it started). With `interval`, returns at once.
    pub async fn commit(&self, position: Position) -> Result<(), DurableError> {
        if self.fsync != FsyncPolicy::Always {
            return Ok(());
        }
        let mut synced = self.synced.lock().await;
        if position < *synced {
            return Ok(());
        }
        self.sync_locked(&mut synced).await
    }

    /// Fsyncs everything appended so far (the `interval` timer, shutdown).
    pub async fn sync(&self) -> Result<(), DurableError> {
        let mut synced = self.synced.lock().await;
        self.sync_locked(&mut synced).await
    }

    async fn sync_locked(&self, synced: &mut Position) -> Result<(), DurableError> {
        let (file, end) = self.wal.lock().expect("wal lock").sync_handle()?;
        if end <= *synced {
            return Ok(());
        }
        let result = tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())));
        self.metrics.wal_fsyncs.inc();
        match result {
            Ok(()) => {
                *synced = end;
                Ok(())
            }
            Err(err) => {
                // The kernel may have dropped the dirty pages: never trust this segment again.
                self.wal.lock().expect("wal lock").mark_broken();
                self.metrics.wal_failure(WalFailure::Fsync).inc();
                tracing::error!(error = %err, "wal fsync failed");
                Err(DurableError::Fsync(err))
            }
        }
    }

    /// Bytes on disk over all segments.
    pub fn size_bytes(&self) -> u64 {
        self.wal.lock().expect("wal lock").size_bytes()
    }

    /// Where the next record will start.
    pub fn end(&self) -> Position {
        self.wal.lock().expect("wal lock").end()
    }

    /// Records from `from` to the current end, one segment in memory at a time.
    pub fn read_from(&self, from: Position) -> Result<WalReader, DurableError> {
        Ok(self.wal.lock().expect("wal lock").read_from(from)?)
    }

    /// Current positions of every consumer, read consistently under the exclusive gate.
    pub async fn positions(&self) -> BTreeMap<String, Position> {
        let _exclusive = self.gate.write().await;
        let end = self.wal.lock().expect("wal lock").end();
        let consumers = self.consumers.lock().expect("consumers lock");
        consumers.iter().map(|c| (c.name().to_owned(), c.position(end))).collect()
    }

    /// Saves every consumer's position and deletes the segments no consumer needs any more.
    pub async fn checkpoint(&self) -> Result<(), DurableError> {
        let positions = self.positions().await;
        for tracker in self.consumers.lock().expect("consumers lock").iter() {
            self.metrics.consumer_outstanding(tracker.name()).set(tracker.outstanding() as i64);
        }
        // Positions written before segments go: a crash in between only keeps extra segments.
        let file = self.file.clone();
        let to_store = positions.clone();
        tokio::task::spawn_blocking(move || file.store(&to_store))
            .await
            .unwrap_or_else(|join| {
                Err(PositionsError::Io {
                    path: PathBuf::from("positions.json"),
                    source: std::io::Error::other(join.to_string()),
                })
            })
            .inspect_err(|_| {
                self.metrics.wal_failure(WalFailure::Positions).inc();
            })?;
        let oldest = positions.values().min().copied();
        let mut wal = self.wal.lock().expect("wal lock");
        let keep_from = oldest.unwrap_or_else(|| wal.end()).segment;
        wal.remove_before(keep_from)?;
        self.metrics.wal_size.set(wal.size_bytes() as i64);
        Ok(())
    }

    /// Stops every consumer from counting drops as done (shutdown gave up on a drain).
    pub fn freeze(&self) {
        for tracker in self.consumers.lock().expect("consumers lock").iter() {
            tracker.freeze();
        }
    }

    /// Background upkeep until `stop`: fsync every `fsync_interval` (policy `interval`) and
    /// checkpoint every second. A last fsync and checkpoint run on stop.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut fsync = tokio::time::interval(self.fsync_interval);
        let mut checkpoint = tokio::time::interval(Duration::from_secs(1));
        fsync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        checkpoint.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = fsync.tick() => {
                    if self.fsync == FsyncPolicy::Interval {
                        let _ = self.sync().await;
                    }
                }
                _ = checkpoint.tick() => {
                    if let Err(err) = self.checkpoint().await {
                        tracing::warn!(error = %err, "wal checkpoint failed; retrying");
                    }
                }
                () = stopped(&mut stop) => break,
            }
        }
        self.shutdown().await;
    }

    /// Final fsync and checkpoint.
    pub async fn shutdown(&self) {
        if let Err(err) = self.sync().await {
            tracing::error!(error = %err, "final wal fsync failed");
        }
        if let Err(err) = self.checkpoint().await {
            tracing::error!(error = %err, "final wal checkpoint failed");
        }
    }
}

#[cfg(test)]
#[path = "durable_tests.rs"]
mod tests;
