//! Storage (`DESIGN.md` §5): the write-ahead log in front of every acknowledgement, the head
//! (recent data in memory), Parquet blocks in an object store, and the compactor that merges,
//! downsamples and expires them tier by tier.
//!
//! ```text
//! batch ─► wal (append, then 2xx) ─► head ──(every block_duration)──► block codec ─► spool ─► bucket
//!                 └─► forward targets (positions per destination)      compactor: merge, 5m, 1h, expire
//! ```
//!
//! * [`wal`]       segment format, replay, tail repair.
//! * [`record`]    what a WAL record holds for each signal.
//! * [`durable`]   the WAL writer (fsync policy, group commit, size limit) and its gate.
//! * [`positions`] per-consumer acknowledged positions and the positions file.
//! * [`head`]      metrics (series index with postings, compressed chunks), log streams, traces.
//! * [`store`]     the head's generations, cuts into blocks, the local spool, uploads.
//! * [`block`]     the Parquet schemas (`docs/storage-format.md`): encode and decode.
//! * [`bucket`]    object keys, `meta.json`, upload (multipart), listing, the CLI.
//! * [`compact`]   tiers: merge, downsample (count, sum, min, max, counter), retention, lease.
//! * [`tiers`]     the compactor over a real bucket and its lease-guarded loop.
//!
//! The types below are how those parts hand data to each other.

pub mod block;
pub mod bucket;
pub mod compact;
pub mod durable;
pub mod head;
pub mod positions;
pub mod query;
pub mod record;
pub mod store;
pub mod tiers;
pub mod wal;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::model::labels::Labels;
use crate::model::logs::LogEntry;
use crate::model::metrics::{Histogram, Sample};

/// A stored signal; its name is the second component of object keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredSignal {
    Metrics,
    Logs,
    Traces,
}

impl StoredSignal {
    pub const ALL: [StoredSignal; 3] = [Self::Metrics, Self::Logs, Self::Traces];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Metrics => "metrics",
            Self::Logs => "logs",
            Self::Traces => "traces",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Position in [`StoredSignal::ALL`] (the index of per-signal metric handles).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Resolves once `stop` turns true (or its sender is gone); `select!`-friendly (no guard held).
pub(crate) async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// A resolution tier; its name is the third component of object keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Tier {
    #[serde(rename = "raw")]
    Raw,
    #[serde(rename = "5m")]
    FiveMinutes,
    #[serde(rename = "1h")]
    OneHour,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Self::Raw, Self::FiveMinutes, Self::OneHour];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::FiveMinutes => "5m",
            Self::OneHour => "1h",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// Width of one downsampled point; `None` for raw data.
    pub fn resolution_ms(self) -> Option<i64> {
        match self {
            Self::Raw => None,
            Self::FiveMinutes => Some(5 * 60 * 1000),
            Self::OneHour => Some(3600 * 1000),
        }
    }
}

/// One metric series and its raw data within a block's time range, samples sorted by time.
/// Native histograms carry their time in `Histogram::timestamp`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeriesSamples {
    pub labels: Labels,
    pub samples: Vec<Sample>,
    pub histograms: Vec<Histogram>,
}

/// One downsampled point: the aggregates of the raw samples in `(timestamp_ms - resolution,
/// timestamp_ms]`, after Thanos' downsampling (`pkg/compact/downsample`). `timestamp_ms` is
/// the time of the last raw sample in the window. `counter` is the counter value at that
/// sample with every reset in the window (and since the series' start) added back, so `rate`
/// and `increase` over downsampled data stay correct.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AggrPoint {
    pub timestamp_ms: i64,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub counter: f64,
}

/// One series of a downsampled tier.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeriesAggr {
    pub labels: Labels,
    pub points: Vec<AggrPoint>,
}

/// One log stream and its entries (sorted by time) within a block's time range.
#[derive(Clone, Debug, PartialEq)]
pub struct LogStreamData {
    pub labels: Labels,
    pub entries: Vec<LogEntry>,
}

/// One span as stored: the fields lookups and listings need as columns, and the rest as the
/// protobuf encodings OTLP defines (`Span`, `Resource`, `InstrumentationScope`).
#[derive(Clone, Debug, PartialEq)]
pub struct SpanRecord {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// Empty for a root span, else 8 bytes.
    pub parent_span_id: Vec<u8>,
    pub name: String,
    /// OTLP `Span.SpanKind` number.
    pub kind: i32,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// OTLP `Status.StatusCode` number.
    pub status_code: i32,
    /// The resource's `service.name` (empty when absent).
    pub service_name: String,
    /// `opentelemetry.proto.resource.v1.Resource` encoding.
    pub resource: Bytes,
    /// `opentelemetry.proto.common.v1.InstrumentationScope` encoding.
    pub scope: Bytes,
    /// `opentelemetry.proto.trace.v1.Span` encoding (the whole span, as received).
    pub span: Bytes,
}

/// A block's `meta.json`: written last, it is what makes a block visible. Format version 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// `meta.json` format version (1).
    pub version: u32,
    /// Time-ordered unique id: 12 hex digits of creation milliseconds, then 16 random hex
    /// digits.
    pub block_id: String,
    pub tenant: String,
    pub signal: StoredSignal,
    pub tier: Tier,
    /// Parquet schema version of the data files (see `docs/storage-format.md`).
    pub schema_version: u32,
    /// Smallest and largest timestamp in the block, milliseconds, inclusive.
    pub min_time_ms: i64,
    pub max_time_ms: i64,
    /// Rows over all files (samples/points, log entries, spans).
    pub rows: u64,
    /// Series, streams or traces.
    pub series: u64,
    pub files: Vec<BlockFile>,
    pub created_ms: i64,
    /// 0 for a block cut from the head; one more than its highest source for compactions.
    pub compaction_level: u32,
    /// Ids of the blocks this one replaced (compaction, downsampling).
    pub sources: Vec<String>,
}

/// One data file of a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockFile {
    /// Relative to the block's prefix.
    pub name: String,
    pub size: u64,
}
