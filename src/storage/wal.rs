//! Write-ahead log: segmented files of length- and CRC32C-framed records (`DESIGN.md` §5).
//!
//! Layout (format version 1, a contract: a change needs a new version and a compatibility
//! test):
//!
//! ```text
//! dir/00000000000000000001.wal   segment = header, then records
//!   header  = "STRATAWL" (8 bytes) | version u32 LE (= 1)
//!   record  = length u32 LE | crc32c u32 LE | kind u8 | payload (length bytes)
//!             crc32c covers kind and payload
//! ```
//!
//! Segments are numbered from 1 without gaps; a segment is closed when the next record would
//! take it past `segment_size` (a record larger than that gets a segment of its own).
//!
//! Invariants and recovery (after Prometheus' `tsdb/wlog` repair semantics):
//! * [`Wal::open`] replays every segment in order and stops at the **first bad record** (short
//!   header, length past the end of the file or over [`MAX_RECORD`], CRC mismatch, unknown
//!   segment header). That segment is truncated to the end of the last good record and every
//!   later segment is deleted, so a torn write or bit flip loses only what follows it, and the
//!   daemon starts.
//! * A record is returned by replay only if all its bytes were intact.
//! * Durability: [`Wal::append`] writes the record to the OS; [`Wal::sync`] fsyncs it. The
//!   caller decides the policy (`always`: sync before acknowledging; `interval`: a periodic sync,
//!   bounding loss on power failure — not on a process crash, since the OS holds the bytes).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"STRATAWL";
const VERSION: u32 = 1;
const HEADER_LEN: u64 = 12;
/// Length and CRC fields before the kind byte.
const FRAME_LEN: usize = 8;
/// Bytes of a record besides its payload: length, CRC and kind.
const RECORD_HEADER_LEN: usize = FRAME_LEN + 1;
/// Largest record payload accepted (and believed on replay).
pub const MAX_RECORD: usize = 256 << 20;

/// A WAL failure, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("wal {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("wal record of {len} bytes is over the limit of {MAX_RECORD} bytes")]
    TooLarge { len: usize },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io { path: path.to_owned(), source }
}

/// Where a record starts: segment number and byte offset in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// A record read back by replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub position: Position,
    pub kind: u8,
    pub payload: Vec<u8>,
}

/// What replay found besides the records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Repair {
    /// The first bad record and why it was bad, if the log was cut there.
    pub cut_at: Option<(Position, String)>,
    /// Segments deleted because they followed the cut.
    pub deleted_segments: Vec<u64>,
}

/// An open WAL, positioned to append after the last good record.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    segment_size: u64,
    file: File,
    segment: u64,
    len: u64,
    /// Bytes in segments before the open one.
    closed_bytes: u64,
    /// A write or fsync failed on the open segment: its tail is suspect, so the next append
    /// starts a fresh segment (after cutting back to the last good record if possible).
    broken: bool,
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:020}.wal"))
}

/// Segment numbers present in `dir`, ascending.
fn segments(dir: &Path) -> Result<Vec<u64>, WalError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".wal")) else { continue };
        if let Ok(number) = stem.parse::<u64>() {
            found.push(number);
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Reads the good records of one segment; returns them, the end of the last good one, and why
/// reading stopped early (None at a clean end of file).
fn read_segment(path: &Path, segment: u64) -> Result<(Vec<Record>, u64, Option<String>), WalError> {
    let mut bytes = Vec::new();
    File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(io_error(path))?;
    if bytes.len() < HEADER_LEN as usize
        || &bytes[..8] != MAGIC
        || u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) != VERSION
    {
        return Ok((Vec::new(), 0, Some("missing or unknown segment header".into())));
    }
    let mut records = Vec::new();
    let mut offset = HEADER_LEN as usize;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        if rest.len() < RECORD_HEADER_LEN {
            return Ok((records, offset as u64, Some("torn record header".into())));
        }
        // `len` counts the kind byte and the payload.
        let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        if len == 0 || len > MAX_RECORD || rest.len() < FRAME_LEN + len {
            return Ok((records, offset as u64, Some(format!("record of {len} bytes is cut off"))));
        }
        let body = &rest[FRAME_LEN..FRAME_LEN + len];
        if crc32c::crc32c(body) != crc {
            return Ok((records, offset as u64, Some("checksum mismatch".into())));
        }
        records.push(Record {
            position: Position { segment, offset: offset as u64 },
            kind: body[0],
            payload: body[1..].to_vec(),
        });
        offset += FRAME_LEN + len;
    }
    Ok((records, offset as u64, None))
}

fn new_segment(dir: &Path, segment: u64) -> Result<File, WalError> {
    let path = segment_path(dir, segment);
    let mut file =
        OpenOptions::new().create_new(true).write(true).open(&path).map_err(io_error(&path))?;
    let mut header = Vec::with_capacity(HEADER_LEN as usize);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    file.write_all(&header).map_err(io_error(&path))?;
    Ok(file)
}

impl Wal {
    /// Opens (creating) the WAL in `dir`, checks every record and repairs a bad tail. Returns
    /// the WAL positioned after the last good record and what was cut; read the records back
    /// with [`Wal::read_from`].
    pub fn open(dir: &Path, segment_size: u64) -> Result<(Wal, Repair), WalError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let mut repair = Repair::default();
        let mut last: Option<(u64, u64)> = None;
        let numbers = segments(dir)?;
        for (index, &segment) in numbers.iter().enumerate() {
            let path = segment_path(dir, segment);
            let (_, end, problem) = read_segment(&path, segment)?;
            let Some(problem) = problem else {
                last = Some((segment, end));
                continue;
            };
            repair.cut_at = Some((Position { segment, offset: end }, problem));
            if end == 0 {
                // Not even a header: the segment goes; the previous one stays the last.
                fs::remove_file(&path).map_err(io_error(&path))?;
                repair.deleted_segments.push(segment);
            } else {
                let file = OpenOptions::new().write(true).open(&path).map_err(io_error(&path))?;
                file.set_len(end).map_err(io_error(&path))?;
                file.sync_all().map_err(io_error(&path))?;
                last = Some((segment, end));
            }
            for &later in &numbers[index + 1..] {
                let later_path = segment_path(dir, later);
                fs::remove_file(&later_path).map_err(io_error(&later_path))?;
                repair.deleted_segments.push(later);
            }
            break;
        }
        let (segment, len, file) = match last {
            Some((segment, len)) => {
                let path = segment_path(dir, segment);
                let mut file =
                    OpenOptions::new().write(true).open(&path).map_err(io_error(&path))?;
                file.seek(SeekFrom::Start(len)).map_err(io_error(&path))?;
                (segment, len, file)
            }
            None => {
                let segment = numbers.first().copied().unwrap_or(1).max(1);
                (segment, HEADER_LEN, new_segment(dir, segment)?)
            }
        };
        let mut closed_bytes = 0;
        for number in segments(dir)? {
            if number < segment {
                let path = segment_path(dir, number);
                closed_bytes += fs::metadata(&path).map_err(io_error(&path))?.len();
            }
        }
        let wal = Wal {
            dir: dir.to_owned(),
            segment_size: segment_size.max(HEADER_LEN + 1),
            file,
            segment,
            len,
            closed_bytes,
            broken: false,
        };
        Ok((wal, repair))
    }

    /// The records at or after `from`, oldest first, read one segment at a time (memory is
    /// bounded by the segment size, not by the WAL's). Only records appended before this call
    /// are returned.
    pub fn read_from(&self, from: Position) -> Result<WalReader, WalError> {
        let end = self.end();
        let pending = segments(&self.dir)?
            .into_iter()
            .filter(|&number| number >= from.segment && number <= end.segment)
            .collect::<Vec<_>>()
            .into_iter();
        Ok(WalReader { dir: self.dir.clone(), from, end, pending, current: Vec::new().into_iter() })
    }

    /// Where the next record will start (every record so far is before it).
    pub fn end(&self) -> Position {
        Position { segment: self.segment, offset: self.len }
    }

    /// Bytes on disk over all segments.
    pub fn size_bytes(&self) -> u64 {
        self.closed_bytes + self.len
    }

    /// A handle on the open segment, to fsync it without holding the WAL (the caller syncs
    /// the handle it got; records appended to a later segment were synced by the roll).
    pub fn sync_handle(&self) -> Result<(File, Position), WalError> {
        let file =
            self.file.try_clone().map_err(io_error(&segment_path(&self.dir, self.segment)))?;
        Ok((file, self.end()))
    }

    /// Appends one record (written to the OS, not yet fsynced) and returns where it starts.
    pub fn append(&mut self, kind: u8, payload: &[u8]) -> Result<Position, WalError> {
        if payload.len() + 1 > MAX_RECORD {
            return Err(WalError::TooLarge { len: payload.len() });
        }
        let record_len = (RECORD_HEADER_LEN + payload.len()) as u64;
        if self.broken || (self.len > HEADER_LEN && self.len + record_len > self.segment_size) {
            self.roll()?;
        }
        let mut crc = crc32c::crc32c(&[kind]);
        crc = crc32c::crc32c_append(crc, payload);
        let mut frame = [0u8; RECORD_HEADER_LEN];
        frame[0..4].copy_from_slice(&((payload.len() + 1) as u32).to_le_bytes());
        frame[4..8].copy_from_slice(&crc.to_le_bytes());
        frame[8] = kind;
        let position = Position { segment: self.segment, offset: self.len };
        let path = segment_path(&self.dir, self.segment);
        let written = self
            .file
            .write_all(&frame)
            .and_then(|()| self.file.write_all(payload))
            .map_err(io_error(&path));
        if let Err(err) = written {
            self.recover_from_failed_write();
            return Err(err);
        }
        self.len += record_len;
        Ok(position)
    }

    /// After a failed write: cut the segment back to the last good record so later appends do
    /// not follow a torn one (replay would stop there and lose them). If even that fails, the
    /// next append rolls to a new segment.
    fn recover_from_failed_write(&mut self) {
        let cut = self
            .file
            .set_len(self.len)
            .and_then(|()| self.file.seek(SeekFrom::Start(self.len)).map(|_| ()));
        if cut.is_err() {
            self.broken = true;
        }
    }

    /// Marks the open segment as suspect after an fsync failure (the kernel may have dropped
    /// the dirty pages): the next append starts a new segment.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Fsyncs what was appended so far.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.file.sync_data().map_err(io_error(&segment_path(&self.dir, self.segment)))
    }

    /// The segment being appended to.
    pub fn current_segment(&self) -> u64 {
        self.segment
    }

    /// Deletes every closed segment numbered below `segment` (a checkpoint: their data is
    /// elsewhere now). The segment being written is never deleted.
    pub fn remove_before(&mut self, segment: u64) -> Result<Vec<u64>, WalError> {
        let mut removed = Vec::new();
        for number in segments(&self.dir)? {
            if number < segment && number < self.segment {
                let path = segment_path(&self.dir, number);
                let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                fs::remove_file(&path).map_err(io_error(&path))?;
                self.closed_bytes = self.closed_bytes.saturating_sub(size);
                removed.push(number);
            }
        }
        Ok(removed)
    }

    fn roll(&mut self) -> Result<(), WalError> {
        if !self.broken {
            self.sync()?;
        }
        let next = self.segment + 1;
        // A failed creation leaves a partial file behind; clear it so a retry can create it.
        let file = new_segment(&self.dir, next).inspect_err(|_| {
            let _ = fs::remove_file(segment_path(&self.dir, next));
        })?;
        self.closed_bytes += self.len;
        self.segment = next;
        self.file = file;
        self.len = HEADER_LEN;
        self.broken = false;
        Ok(())
    }
}

/// Reads records segment by segment from a position up to the end the WAL had when the reader
/// was made.
#[derive(Debug)]
pub struct WalReader {
    dir: PathBuf,
    from: Position,
    end: Position,
    pending: std::vec::IntoIter<u64>,
    current: std::vec::IntoIter<Record>,
}

impl Iterator for WalReader {
    type Item = Result<Record, WalError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(record) = self.current.next() {
                if record.position < self.from || record.position >= self.end {
                    continue;
                }
                return Some(Ok(record));
            }
            let segment = self.pending.next()?;
            let path = segment_path(&self.dir, segment);
            match read_segment(&path, segment) {
                Ok((records, _, _)) => self.current = records.into_iter(),
                // Removed by a checkpoint while reading: its records were no longer needed.
                Err(WalError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Some(Err(err)),
            }
        }
    }
}

#[cfg(test)]
#[path = "wal_tests.rs"]
mod tests;
