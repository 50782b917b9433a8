//! The logs head: per tenant, each stream's entries of the recent past, in time order, after
//! Loki's ingester (`pkg/ingester/instance.go`, `stream.go`, and the unordered head block of
//! `pkg/chunkenc/unordered.go`).
//!
//! * Out-of-order entries are accepted, as Loki does since 2.4: an entry is inserted after the
//!   entries with a time up to its own, so a stream's entries are always sorted by time and
//!   entries with equal times keep their arrival order. Late entries usually land near the end,
//!   so the insert moves few records.
//! * An entry with the time and line of an entry already stored at that time is a duplicate and
//!   is ignored, as Loki's head block does (senders retry whole batches).
//! * Lines are copied into per-stream blocks of [`BLOCK_BYTES`] (one of their own when
//!   larger), so a stored line never keeps a request body alive; a read of a sealed block is a
//!   reference-counted slice, of the block being filled a copy.
//! * Stream labels are matched by scanning the tenant's streams (streams are few next to
//!   series; an index can come when that stops being true).
//!
//! Invariants: per stream, `entries` is sorted by time and each entry's line is
//! `block(entry.block)[offset..offset + len]`, where block `sealed.len()` is `current`.

use std::sync::{Arc, RwLock};

use ahash::AHashMap;
use bytes::Bytes;

use super::matcher::{matches_all, LabelMatcher};
use super::{read, write};
use crate::model::labels::Label;
use crate::model::logs::{LogBatch, LogEntry, Stream, Tenant};
use crate::storage::LogStreamData;

/// Bytes of a line block.
pub const BLOCK_BYTES: usize = 64 * 1024;
const STRIPES: usize = 16;
const NO_METADATA: u32 = u32::MAX;

/// Totals over the logs head.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogsStats {
    pub tenants: u64,
    pub streams: u64,
    pub entries: u64,
    /// Line and structured-metadata bytes ([`LogEntry::size`]).
    pub bytes: u64,
    /// Smallest and largest entry time, nanoseconds; `None` when empty.
    pub min_time_ns: Option<i64>,
    pub max_time_ns: Option<i64>,
}

#[derive(Clone, Copy, Debug)]
struct EntryRef {
    timestamp_ns: i64,
    block: u32,
    offset: u32,
    len: u32,
    /// Index into `MemStream::metadata`, or [`NO_METADATA`].
    metadata: u32,
}

#[derive(Debug)]
struct MemStream {
    stream: Arc<Stream>,
    sealed: Vec<Bytes>,
    current: Vec<u8>,
    entries: Vec<EntryRef>,
    metadata: Vec<Vec<Label>>,
    bytes: u64,
}

impl MemStream {
    fn new(stream: Arc<Stream>) -> Self {
        Self {
            stream,
            sealed: Vec::new(),
            current: Vec::new(),
            entries: Vec::new(),
            metadata: Vec::new(),
            bytes: 0,
        }
    }

    fn line(&self, entry: &EntryRef) -> &[u8] {
        let range = entry.offset as usize..(entry.offset + entry.len) as usize;
        match self.sealed.get(entry.block as usize) {
            Some(block) => &block[range],
            None => &self.current[range],
        }
    }

    fn line_bytes(&self, entry: &EntryRef) -> Bytes {
        let range = entry.offset as usize..(entry.offset + entry.len) as usize;
        match self.sealed.get(entry.block as usize) {
            Some(block) => block.slice(range),
            None => Bytes::copy_from_slice(&self.current[range]),
        }
    }

    /// Inserts `entry` in time order; false for a duplicate.
    fn insert(&mut self, entry: &LogEntry) -> bool {
        let at = self.entries.partition_point(|e| e.timestamp_ns <= entry.timestamp_ns);
        let same_time =
            self.entries[..at].iter().rev().take_while(|e| e.timestamp_ns == entry.timestamp_ns);
        if same_time.into_iter().any(|e| self.line(e) == &entry.line[..]) {
            return false;
        }
        let (block, offset) = self.store_line(&entry.line);
        let metadata = if entry.structured_metadata.is_empty() {
            NO_METADATA
        } else {
            self.metadata.push(entry.structured_metadata.clone());
            u32::try_from(self.metadata.len() - 1).expect("over 4G entries in a stream")
        };
        let len = u32::try_from(entry.line.len()).expect("line over 4 GiB");
        let record = EntryRef { timestamp_ns: entry.timestamp_ns, block, offset, len, metadata };
        self.entries.insert(at, record);
        self.bytes += entry.size() as u64;
        true
    }

    fn store_line(&mut self, line: &[u8]) -> (u32, u32) {
        let block_index = |sealed: &Vec<Bytes>| u32::try_from(sealed.len()).expect("blocks");
        if line.len() > BLOCK_BYTES {
            // A block of its own, sealed at once; the block being filled keeps the next index.
            let current = Bytes::from(std::mem::take(&mut self.current));
            if !current.is_empty() {
                self.sealed.push(current);
            }
            self.sealed.push(Bytes::copy_from_slice(line));
            return (block_index(&self.sealed) - 1, 0);
        }
        if self.current.len() + line.len() > BLOCK_BYTES {
            self.sealed.push(Bytes::from(std::mem::take(&mut self.current)));
        }
        if self.current.capacity() == 0 {
            self.current.reserve_exact(BLOCK_BYTES);
        }
        let offset = self.current.len() as u32;
        self.current.extend_from_slice(line);
        (block_index(&self.sealed), offset)
    }

    fn entry(&self, entry: &EntryRef) -> LogEntry {
        LogEntry {
            timestamp_ns: entry.timestamp_ns,
            line: self.line_bytes(entry),
            structured_metadata: match entry.metadata {
                NO_METADATA => Vec::new(),
                index => self.metadata[index as usize].clone(),
            },
        }
    }

    /// Entries in `[start_ns, end_ns)`.
    fn range(&self, start_ns: i64, end_ns: i64) -> Vec<LogEntry> {
        let from = self.entries.partition_point(|e| e.timestamp_ns < start_ns);
        let to = self.entries.partition_point(|e| e.timestamp_ns < end_ns);
        self.entries[from..to.max(from)].iter().map(|e| self.entry(e)).collect()
    }
}

/// Streams by hash; streams with equal hashes share the list.
type StreamsByHash = AHashMap<u64, Vec<MemStream>>;

/// One tenant's streams, striped by stream hash.
#[derive(Debug)]
struct TenantLogs {
    stripes: Box<[RwLock<StreamsByHash>]>,
}

impl TenantLogs {
    fn new() -> Self {
        Self { stripes: (0..STRIPES).map(|_| RwLock::default()).collect() }
    }

    fn for_each_stream(&self, mut visit: impl FnMut(&MemStream)) {
        for stripe in self.stripes.iter() {
            read(stripe).values().flatten().for_each(&mut visit);
        }
    }
}

/// Recent log streams of every tenant.
#[derive(Debug, Default)]
pub struct LogsHead {
    tenants: RwLock<AHashMap<Tenant, Arc<TenantLogs>>>,
}

impl LogsHead {
    pub fn new() -> Self {
        Self::default()
    }

    fn tenant(&self, tenant: &str) -> Option<Arc<TenantLogs>> {
        read(&self.tenants).get(tenant).cloned()
    }

    fn tenant_or_create(&self, tenant: &Tenant) -> Arc<TenantLogs> {
        if let Some(found) = self.tenant(tenant) {
            return found;
        }
        write(&self.tenants)
            .entry(tenant.clone())
            .or_insert_with(|| Arc::new(TenantLogs::new()))
            .clone()
    }

    /// Appends a batch and returns the entries stored (duplicates are not).
    pub fn append(&self, batch: &LogBatch) -> usize {
        if batch.is_empty() {
            return 0;
        }
        let tenant = self.tenant_or_create(&batch.tenant);
        let mut appended = 0;
        for stream_entries in batch.streams.iter().filter(|s| !s.entries.is_empty()) {
            let stream = &stream_entries.stream;
            let mut stripe = write(&tenant.stripes[stream.hash as usize % STRIPES]);
            let slot = stripe.entry(stream.hash).or_default();
            let position = match slot.iter().position(|s| s.stream.labels == stream.labels) {
                Some(position) => position,
                None => {
                    slot.push(MemStream::new(stream.clone()));
                    slot.len() - 1
                }
            };
            let mem = &mut slot[position];
            appended += stream_entries.entries.iter().filter(|e| mem.insert(e)).count();
        }
        appended
    }

    /// The tenant's streams every matcher matches, with their entries in
    /// `[start_ns, end_ns)` (Loki's range: start inclusive, end exclusive), sorted by labels.
    /// Streams without entries in the range are left out.
    pub fn select(
        &self,
        tenant: &str,
        matchers: &[LabelMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Vec<LogStreamData> {
        self.collect(tenant, matchers, |mem| mem.range(start_ns, end_ns))
    }

    /// Every stream of the tenant with all its entries, sorted by labels (for flushing).
    pub fn all_streams(&self, tenant: &str) -> Vec<LogStreamData> {
        self.collect(tenant, &[], |mem| mem.entries.iter().map(|e| mem.entry(e)).collect())
    }

    fn collect(
        &self,
        tenant: &str,
        matchers: &[LabelMatcher],
        entries_of: impl Fn(&MemStream) -> Vec<LogEntry>,
    ) -> Vec<LogStreamData> {
        let Some(tenant) = self.tenant(tenant) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        tenant.for_each_stream(|mem| {
            if !matches_all(matchers, &mem.stream.labels) {
                return;
            }
            let entries = entries_of(mem);
            if !entries.is_empty() {
                out.push(LogStreamData { labels: mem.stream.labels.clone(), entries });
            }
        });
        out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Tenants with data, sorted.
    pub fn tenants(&self) -> Vec<Tenant> {
        let mut out: Vec<Tenant> = read(&self.tenants).keys().cloned().collect();
        out.sort_unstable();
        out
    }

    pub fn stats(&self) -> LogsStats {
        let tenants: Vec<Arc<TenantLogs>> = read(&self.tenants).values().cloned().collect();
        let mut stats = LogsStats { tenants: tenants.len() as u64, ..LogsStats::default() };
        for tenant in tenants {
            tenant.for_each_stream(|mem| {
                stats.streams += 1;
                stats.entries += mem.entries.len() as u64;
                stats.bytes += mem.bytes;
                if let (Some(first), Some(last)) = (mem.entries.first(), mem.entries.last()) {
                    stats.min_time_ns = Some(
                        stats.min_time_ns.map_or(first.timestamp_ns, |t| t.min(first.timestamp_ns)),
                    );
                    stats.max_time_ns = Some(
                        stats.max_time_ns.map_or(last.timestamp_ns, |t| t.max(last.timestamp_ns)),
                    );
                }
            });
        }
        stats
    }
}
