//! The storage part of the metric catalog (WAL, head, blocks, compactor): declared here so
//! `catalog.rs` stays one idea per file, registered into the same registry and name list by
//! [`Catalog::new`](super::Catalog::new).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::register;

type Labels = Vec<(&'static str, String)>;
type CounterFamily = Family<Labels, Counter>;
type GaugeFamily = Family<Labels, Gauge>;

/// The storage families; handles come from [`StorageFamilies::handles`].
#[derive(Clone)]
pub(super) struct StorageFamilies {
    wal_records: CounterFamily,
    wal_bytes: CounterFamily,
    wal_fsyncs: CounterFamily,
    wal_failures: CounterFamily,
    wal_size: GaugeFamily,
    wal_outstanding: GaugeFamily,
    head_items: GaugeFamily,
    head_series: GaugeFamily,
    blocks_written: CounterFamily,
    block_bytes_written: CounterFamily,
    upload_failures: CounterFamily,
    spool_blocks: GaugeFamily,
    compactions: CounterFamily,
    blocks_deleted: CounterFamily,
}

impl StorageFamilies {
    pub(super) fn register(r: &mut Registry, d: &mut Vec<String>) -> Self {
        let c = CounterFamily::default;
        let g = GaugeFamily::default;
        Self {
            wal_records: register(r, d, "strata_wal_records_appended", "WAL records appended, by signal.", "_total", c()),
            wal_bytes: register(r, d, "strata_wal_appended_bytes", "WAL bytes appended (frames included).", "_total", c()),
            wal_fsyncs: register(r, d, "strata_wal_fsyncs", "WAL fsyncs.", "_total", c()),
            wal_failures: register(r, d, "strata_wal_failures", "WAL operations that failed, by operation (append, fsync, full, positions); each refused data with a 503.", "_total", c()),
            wal_size: register(r, d, "strata_wal_size_bytes", "Bytes on disk over all WAL segments.", "", g()),
            wal_outstanding: register(r, d, "strata_wal_consumer_outstanding_records", "WAL records a consumer (forward target, head) has not finished, by consumer.", "", g()),
            head_items: register(r, d, "strata_head_items", "Items in the head (samples, log entries, spans), by signal.", "", g()),
            head_series: register(r, d, "strata_head_series", "Series (metrics), streams (logs) or traces in the head, by signal.", "", g()),
            blocks_written: register(r, d, "strata_storage_blocks_written", "Blocks written to the object store, by signal and tier.", "_total", c()),
            block_bytes_written: register(r, d, "strata_storage_block_written_bytes", "Block bytes written to the object store, by signal.", "_total", c()),
            upload_failures: register(r, d, "strata_storage_upload_failures", "Block uploads that failed and will be retried from the local spool.", "_total", c()),
            spool_blocks: register(r, d, "strata_storage_spool_blocks", "Blocks in the local spool waiting for upload.", "", g()),
            compactions: register(r, d, "strata_compactor_actions", "Compactor actions done, by action (merge, downsample, delete).", "_total", c()),
            blocks_deleted: register(r, d, "strata_storage_blocks_deleted", "Blocks deleted by retention or after compaction, by signal.", "_total", c()),
        }
    }

    pub(super) fn handles(&self) -> StorageMetrics {
        let by = |name: &'static str, value: &str| vec![(name, value.to_owned())];
        let signals = ["metrics", "logs", "traces"];
        StorageMetrics {
            wal_records: signals.map(|s| self.wal_records.get_or_create_owned(&by("signal", s))),
            wal_bytes: self.wal_bytes.get_or_create_owned(&vec![]),
            wal_fsyncs: self.wal_fsyncs.get_or_create_owned(&vec![]),
            wal_failures: WalFailure::ALL
                .map(|f| self.wal_failures.get_or_create_owned(&by("operation", f.as_str()))),
            wal_size: self.wal_size.get_or_create_owned(&vec![]),
            head_items: signals.map(|s| self.head_items.get_or_create_owned(&by("signal", s))),
            head_series: signals.map(|s| self.head_series.get_or_create_owned(&by("signal", s))),
            block_bytes_written: signals
                .map(|s| self.block_bytes_written.get_or_create_owned(&by("signal", s))),
            upload_failures: self.upload_failures.get_or_create_owned(&vec![]),
            spool_blocks: self.spool_blocks.get_or_create_owned(&vec![]),
            families: self.clone(),
        }
    }
}

/// Which WAL operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalFailure {
    Append,
    Fsync,
    /// The WAL reached `storage.wal.max_size`.
    Full,
    Positions,
}

impl WalFailure {
    pub const ALL: [WalFailure; 4] = [Self::Append, Self::Fsync, Self::Full, Self::Positions];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Append => "append",
            Self::Fsync => "fsync",
            Self::Full => "full",
            Self::Positions => "positions",
        }
    }
}

/// Storage metric handles; signal-indexed arrays are ordered metrics, logs, traces.
#[derive(Clone)]
pub struct StorageMetrics {
    pub wal_records: [Counter; 3],
    pub wal_bytes: Counter,
    pub wal_fsyncs: Counter,
    wal_failures: [Counter; 4],
    pub wal_size: Gauge,
    pub head_items: [Gauge; 3],
    pub head_series: [Gauge; 3],
    pub block_bytes_written: [Counter; 3],
    pub upload_failures: Counter,
    pub spool_blocks: Gauge,
    families: StorageFamilies,
}

impl std::fmt::Debug for StorageMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorageMetrics")
    }
}

impl StorageMetrics {
    pub fn wal_failure(&self, failure: WalFailure) -> &Counter {
        &self.wal_failures[failure as usize]
    }

    /// The outstanding-records gauge of one WAL consumer (a bounded set: configured targets
    /// and the head).
    pub fn consumer_outstanding(&self, consumer: &str) -> Gauge {
        self.families.wal_outstanding.get_or_create_owned(&vec![("consumer", consumer.to_owned())])
    }

    pub fn block_written(&self, signal: &str, tier: &str) {
        self.families
            .blocks_written
            .get_or_create(&vec![("signal", signal.to_owned()), ("tier", tier.to_owned())])
            .inc();
    }

    pub fn block_deleted(&self, signal: &str) {
        self.families.blocks_deleted.get_or_create(&vec![("signal", signal.to_owned())]).inc();
    }

    pub fn compactor_action(&self, action: &'static str) {
        self.families.compactions.get_or_create(&vec![("action", action.to_owned())]).inc();
    }
}
