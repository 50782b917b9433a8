//! The block codec: Parquet files for metrics (raw and downsampled), logs and traces, schema
//! version 1 (`docs/storage-format.md` is the contract; the tests in `compat.rs` pin it).
//!
//! Pure and synchronous: callers run encode and decode on a CPU pool, never on the async
//! runtime. Files follow the Apache Parquet format (<https://parquet.apache.org/docs/file-format/>,
//! format 2.x with page indexes and split-block bloom filters) as written by the `parquet` crate's
//! `ArrowWriter`; the Arrow schema is embedded (`ARROW:schema`) so readers get the same types back.
//!
//! Invariants of every file written here:
//! * key-value metadata carries `strata.schema_version`, `strata.signal` and `strata.tier`; a
//!   file whose version this build does not know is refused ([`BlockError::UnknownVersion`]),
//!   never guessed at;
//! * rows are sorted by the series (stream, trace) identity, then by time, and that order is
//!   declared as the row groups' `sorting_columns`;
//! * zstd compression, page-level statistics (hence the column and offset indexes) on every
//!   column, bloom filters where point lookups need them (metric name, trace id);
//! * float values are stored bit for bit (a Prometheus stale marker stays
//!   `0x7ff0000000000002`).
//!
//! Label sets are stored as a canonical JSON object (`{"job":"node","instance":"a:1"}`, keys in
//! label order) in a dictionary-encoded string column: the dictionary holds each series once per
//! row group and, because rows are sorted by series, the dictionary indexes form long runs that
//! the RLE/bit-packing hybrid stores in a few bytes per series. A `Map<string,string>` column
//! would instead repeat every key and value (and repetition levels) on every row. JSON keeps the
//! column readable by any Parquet tool and is parsed back without a hand-written unquoter.

mod common;
#[cfg(test)]
mod compat;
pub mod inspect;
mod logs;
mod metrics;
mod metrics_aggr;
mod traces;

#[cfg(test)]
mod tests;

use arrow_schema::ArrowError;
use bytes::Bytes;
use parquet::errors::ParquetError;

use crate::storage::StoredSignal;

pub use common::{block_info, BlockInfo};
pub use logs::{decode_logs, decode_logs_where, encode_logs, logs_schema};
pub use metrics::{decode_metrics, decode_metrics_where, encode_metrics, metrics_schema};
pub use metrics_aggr::{aggr_schema, decode_aggr, encode_aggr};
pub use traces::{decode_traces, encode_traces, find_trace, traces_schema};

/// The Parquet schema version this build writes and the only one it reads.
pub const SCHEMA_VERSION: u32 = 1;
/// Key-value metadata key holding the schema version (decimal).
pub const KEY_SCHEMA_VERSION: &str = "strata.schema_version";
/// Key-value metadata key holding the signal (`metrics`, `logs`, `traces`).
pub const KEY_SIGNAL: &str = "strata.signal";
/// Key-value metadata key holding the tier (`raw`, `5m`, `1h`).
pub const KEY_TIER: &str = "strata.tier";
/// Name of the data file inside a block's prefix.
pub const DATA_FILE: &str = "data.parquet";

/// An encoded Parquet file and what the caller needs to fill a `BlockMeta`.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedBlock {
    pub data: Bytes,
    /// Samples/points, log entries or spans.
    pub rows: u64,
    /// Distinct series, streams or traces.
    pub series: u64,
    /// Smallest and largest timestamp, milliseconds, inclusive.
    pub min_time_ms: i64,
    pub max_time_ms: i64,
}

/// Why encoding or decoding a block failed.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("nothing to encode: a {signal} block needs at least one row")]
    Empty { signal: &'static str },
    #[error("tier {tier} is not a downsampled tier")]
    NotDownsampled { tier: &'static str },
    #[error("parquet {stage} of a {signal} block: {source}")]
    Parquet {
        signal: &'static str,
        stage: &'static str,
        #[source]
        source: ParquetError,
    },
    #[error("arrow {stage} of a {signal} block: {source}")]
    Arrow {
        signal: &'static str,
        stage: &'static str,
        #[source]
        source: ArrowError,
    },
    #[error("not a strata block: key-value metadata {key} is missing")]
    MissingMetadata { key: &'static str },
    #[error("key-value metadata {key} is {found:?}, expected {expected}")]
    WrongKind { key: &'static str, found: String, expected: String },
    #[error("schema version {found:?} is not supported (this build reads version {supported})")]
    UnknownVersion { found: String, supported: u32 },
    #[error("{signal} block: column {column}: {reason}")]
    Column { signal: &'static str, column: &'static str, reason: String },
}

impl BlockError {
    fn parquet(signal: StoredSignal, stage: &'static str) -> impl FnOnce(ParquetError) -> Self {
        move |source| Self::Parquet { signal: signal.as_str(), stage, source }
    }

    fn arrow(signal: StoredSignal, stage: &'static str) -> impl FnOnce(ArrowError) -> Self {
        move |source| Self::Arrow { signal: signal.as_str(), stage, source }
    }

    fn column(signal: StoredSignal, column: &'static str, reason: impl Into<String>) -> Self {
        Self::Column { signal: signal.as_str(), column, reason: reason.into() }
    }
}
