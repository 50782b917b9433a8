//! Per-consumer acknowledged WAL positions: how far each forward target (and the head's block
//! flush) has safely taken the data, so that after a restart each resumes from its own position
//! — no loss, no full re-send. Prometheus' agent mode and Vector's disk buffer keep the same
//! kind of per-destination read position.
//!
//! * A [`Tracker`] belongs to one consumer. Each record routed to it is registered and returns
//!   an [`Ack`]; clones of the ack travel with every piece of the record (one per shard
//!   payload). When the last clone is dropped — every piece sent or permanently rejected —
//!   the record is done.
//! * The consumer's position is its oldest record not yet done, or the WAL end when none is
//!   outstanding: everything before it is delivered, so replay starts there. Records finish out
//!   of order (shards run in parallel); the position only moves past a record once every older
//!   one is done too.
//! * [`Tracker::freeze`] is called when shutdown gives up on undelivered data: from then on
//!   drops no longer count as done, so the positions saved afterwards still cover what was
//!   thrown away and a restart re-sends it.
//!
//! The positions file (`positions.json`, format version 1) is replaced atomically: written to a
//! temporary file, fsynced, renamed over the old one, directory fsynced.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::wal::Position;

/// One consumer's outstanding records.
#[derive(Debug)]
pub struct Tracker {
    name: String,
    outstanding: Mutex<BTreeSet<Position>>,
    frozen: AtomicBool,
}

impl Tracker {
    pub fn new(name: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            outstanding: Mutex::new(BTreeSet::new()),
            frozen: AtomicBool::new(false),
        })
    }

    /// The consumer's key in the positions file.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Registers the record at `position`; it is done when the returned ack and all its
    /// clones are dropped.
    pub fn register(self: &Arc<Self>, position: Position) -> Ack {
        self.outstanding.lock().expect("tracker lock").insert(position);
        Ack(Arc::new(AckInner { position, tracker: self.clone() }))
    }

    /// Where this consumer resumes: its oldest outstanding record, or `end` (the WAL end read
    /// under the same gate as the registrations) when nothing is outstanding.
    pub fn position(&self, end: Position) -> Position {
        let outstanding = self.outstanding.lock().expect("tracker lock");
        outstanding.first().copied().unwrap_or(end)
    }

    /// Records outstanding (for metrics and tests).
    pub fn outstanding(&self) -> usize {
        self.outstanding.lock().expect("tracker lock").len()
    }

    /// Stops counting drops as done (see the module docs).
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::Release);
    }

    fn done(&self, position: Position) {
        if self.frozen.load(Ordering::Acquire) {
            return;
        }
        self.outstanding.lock().expect("tracker lock").remove(&position);
    }
}

/// Proof that a record reached a consumer's queue; clones share one completion.
#[derive(Clone, Debug)]
pub struct Ack(#[allow(dead_code)] Arc<AckInner>);

#[derive(Debug)]
struct AckInner {
    position: Position,
    tracker: Arc<Tracker>,
}

impl Drop for AckInner {
    fn drop(&mut self) {
        self.tracker.done(self.position);
    }
}

/// A failure to read or write the positions file.
#[derive(Debug, thiserror::Error)]
pub enum PositionsError {
    #[error("positions file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("positions file {path}: {detail}")]
    Format { path: PathBuf, detail: String },
}

#[derive(Serialize, Deserialize)]
struct FileV1 {
    version: u32,
    positions: BTreeMap<String, [u64; 2]>,
}

/// The positions file of a data directory.
#[derive(Debug, Clone)]
pub struct PositionsFile {
    path: PathBuf,
}

impl PositionsFile {
    pub fn new(dir: &Path) -> Self {
        Self { path: dir.join("positions.json") }
    }

    /// The saved positions; empty when the file does not exist yet.
    pub fn load(&self) -> Result<BTreeMap<String, Position>, PositionsError> {
        let io = |source| PositionsError::Io { path: self.path.clone(), source };
        let text = match fs::read(&self.path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(err) => return Err(io(err)),
        };
        let file: FileV1 = serde_json::from_slice(&text).map_err(|e| PositionsError::Format {
            path: self.path.clone(),
            detail: e.to_string(),
        })?;
        if file.version != 1 {
            return Err(PositionsError::Format {
                path: self.path.clone(),
                detail: format!("unsupported version {}", file.version),
            });
        }
        Ok(file
            .positions
            .into_iter()
            .map(|(name, [segment, offset])| (name, Position { segment, offset }))
            .collect())
    }

    /// Replaces the file with `positions`, atomically and durably.
    pub fn store(&self, positions: &BTreeMap<String, Position>) -> Result<(), PositionsError> {
        let io = |source| PositionsError::Io { path: self.path.clone(), source };
        let file = FileV1 {
            version: 1,
            positions: positions
                .iter()
                .map(|(name, p)| (name.clone(), [p.segment, p.offset]))
                .collect(),
        };
        let text = serde_json::to_vec_pretty(&file).expect("positions serialize");
        let temporary = self.path.with_extension("json.tmp");
        let mut out = fs::File::create(&temporary).map_err(io)?;
        out.write_all(&text).and_then(|()| out.sync_all()).map_err(io)?;
        fs::rename(&temporary, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(segment: u64, offset: u64) -> Position {
        Position { segment, offset }
    }

    #[test]
    fn position_waits_for_the_oldest_outstanding_record() {
        let tracker = Tracker::new("t");
        let end = at(2, 100);
        assert_eq!(tracker.position(end), end, "nothing outstanding: at the end");
        let first = tracker.register(at(1, 12));
        let second = tracker.register(at(1, 50));
        let second_piece = second.clone();
        drop(second);
        assert_eq!(tracker.position(end), at(1, 12));
        drop(first);
        assert_eq!(tracker.position(end), at(1, 50), "one piece of the second is still queued");
        drop(second_piece);
        assert_eq!(tracker.position(end), end);
    }

    #[test]
    fn a_frozen_tracker_keeps_what_was_dropped_outstanding() {
        let tracker = Tracker::new("t");
        let ack = tracker.register(at(3, 12));
        tracker.freeze();
        drop(ack);
        assert_eq!(tracker.position(at(9, 9)), at(3, 12));
    }

    #[test]
    fn the_file_round_trips_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = PositionsFile::new(dir.path());
        assert!(file.load().unwrap().is_empty());
        let positions = BTreeMap::from([("forward/a".to_owned(), at(4, 99))]);
        file.store(&positions).unwrap();
        assert_eq!(file.load().unwrap(), positions);
        fs::write(dir.path().join("positions.json"), b"{").unwrap();
        assert!(matches!(file.load(), Err(PositionsError::Format { .. })));
    }
}
