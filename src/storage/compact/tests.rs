//! Compactor tests over an in-memory [`BlockIo`] (a test double for the block codec and the
//! bucket; end-to-end tests against a real bucket live with those).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;

use super::*;
use crate::config::storage::{HeadConfig, RetentionConfig};
use crate::model::labels::Labels;
use crate::model::logs::LogEntry;
use crate::model::metrics::{Histogram, Sample};
use crate::storage::compact::plan::DAY_MS;

const HOUR: i64 = 3600 * 1000;
const T0: i64 = 19_732 * DAY_MS;

#[derive(Debug, thiserror::Error)]
enum MemError {
    #[error("block {0} not found")]
    NotFound(String),
    #[error("block {0} holds other data")]
    WrongKind(String),
    #[error("injected failure deleting {0}")]
    Injected(String),
}

/// Blocks in memory; `fail_deletes` makes that many next deletes fail (a crash stand-in).
#[derive(Default)]
struct MemIo {
    blocks: Mutex<Vec<(BlockMeta, BlockData)>>,
    next_id: AtomicU64,
    fail_deletes: AtomicUsize,
}

impl MemIo {
    fn add(&self, meta: BlockMeta, data: BlockData) {
        self.blocks.lock().unwrap().push((meta, data));
    }

    fn metas(&self, tenant: &str, signal: StoredSignal) -> Vec<BlockMeta> {
        let blocks = self.blocks.lock().unwrap();
        blocks
            .iter()
            .filter(|(m, _)| m.tenant == tenant && m.signal == signal)
            .map(|(m, _)| m.clone())
            .collect()
    }

    fn data(&self, block_id: &str) -> Result<BlockData, MemError> {
        let blocks = self.blocks.lock().unwrap();
        let found = blocks.iter().find(|(m, _)| m.block_id == block_id);
        found.map(|(_, d)| d.clone()).ok_or_else(|| MemError::NotFound(block_id.to_owned()))
    }

    /// The visible blocks of one tier, with their data.
    fn visible_data(&self, signal: StoredSignal, tier: Tier) -> Vec<(BlockMeta, BlockData)> {
        let metas = self.metas("t", signal);
        plan::visible(&metas)
            .into_iter()
            .filter(|m| m.tier == tier)
            .map(|m| (m.clone(), self.data(&m.block_id).unwrap()))
            .collect()
    }

    fn store(&self, block: NewBlock, signal: StoredSignal, data: BlockData) -> BlockMeta {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let meta = BlockMeta {
            version: 1,
            block_id: format!("{:012x}{n:016x}", T0),
            tenant: block.tenant,
            signal,
            tier: block.tier,
            schema_version: 1,
            min_time_ms: block.range.min_ms,
            max_time_ms: block.range.max_ms,
            rows: 0,
            series: 0,
            files: Vec::new(),
            created_ms: T0,
            compaction_level: block.compaction_level,
            sources: block.sources,
        };
        self.add(meta.clone(), data);
        meta
    }
}

macro_rules! read_kind {
    ($self:ident, $meta:ident, $variant:ident) => {
        match $self.data(&$meta.block_id)? {
            BlockData::$variant(data) => Ok(data),
            _ => Err(MemError::WrongKind($meta.block_id.clone())),
        }
    };
}

impl BlockIo for MemIo {
    type Error = MemError;

    async fn tenants(&self) -> Result<Vec<String>, MemError> {
        let mut tenants: Vec<String> =
            self.blocks.lock().unwrap().iter().map(|(m, _)| m.tenant.clone()).collect();
        tenants.sort();
        tenants.dedup();
        Ok(tenants)
    }
    async fn list(&self, tenant: &str, signal: StoredSignal) -> Result<Vec<BlockMeta>, MemError> {
        Ok(self.metas(tenant, signal))
    }
    async fn read_metrics(&self, meta: &BlockMeta) -> Result<Vec<SeriesSamples>, MemError> {
        read_kind!(self, meta, Metrics)
    }
    async fn read_aggr(&self, meta: &BlockMeta) -> Result<Vec<SeriesAggr>, MemError> {
        read_kind!(self, meta, Aggr)
    }
    async fn read_logs(&self, meta: &BlockMeta) -> Result<Vec<LogStreamData>, MemError> {
        read_kind!(self, meta, Logs)
    }
    async fn read_traces(&self, meta: &BlockMeta) -> Result<Vec<SpanRecord>, MemError> {
        read_kind!(self, meta, Traces)
    }
    async fn write_metrics(
        &self,
        block: NewBlock,
        data: Vec<SeriesSamples>,
    ) -> Result<BlockMeta, MemError> {
        Ok(self.store(block, StoredSignal::Metrics, BlockData::Metrics(data)))
    }
    async fn write_aggr(
        &self,
        block: NewBlock,
        data: Vec<SeriesAggr>,
    ) -> Result<BlockMeta, MemError> {
        Ok(self.store(block, StoredSignal::Metrics, BlockData::Aggr(data)))
    }
    async fn write_logs(
        &self,
        block: NewBlock,
        data: Vec<LogStreamData>,
    ) -> Result<BlockMeta, MemError> {
        Ok(self.store(block, StoredSignal::Logs, BlockData::Logs(data)))
    }
    async fn write_traces(
        &self,
        block: NewBlock,
        data: Vec<SpanRecord>,
    ) -> Result<BlockMeta, MemError> {
        Ok(self.store(block, StoredSignal::Traces, BlockData::Traces(data)))
    }
    async fn delete(&self, meta: &BlockMeta) -> Result<(), MemError> {
        let injected = self
            .fail_deletes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if injected.is_ok() {
            return Err(MemError::Injected(meta.block_id.clone()));
        }
        let mut blocks = self.blocks.lock().unwrap();
        let before = blocks.len();
        blocks.retain(|(m, _)| m.block_id != meta.block_id);
        if blocks.len() == before {
            return Err(MemError::NotFound(meta.block_id.clone()));
        }
        Ok(())
    }
}

fn head_meta(id: &str, signal: StoredSignal, min: i64, max: i64) -> BlockMeta {
    BlockMeta {
        version: 1,
        block_id: id.to_owned(),
        tenant: "t".to_owned(),
        signal,
        tier: Tier::Raw,
        schema_version: 1,
        min_time_ms: min,
        max_time_ms: max,
        rows: 0,
        series: 0,
        files: Vec::new(),
        created_ms: max,
        compaction_level: 0,
        sources: Vec::new(),
    }
}

fn series(name: &str, points: &[(i64, f64)]) -> SeriesSamples {
    SeriesSamples {
        labels: Labels::from_pairs([("__name__", name)]),
        samples: points.iter().map(|&(t, v)| Sample { timestamp_ms: t, value: v }).collect(),
        histograms: Vec::new(),
    }
}

fn compactor(io: MemIo) -> Compactor<MemIo> {
    Compactor::new(io, Policy::new(&RetentionConfig::default(), &HeadConfig::default()))
}

/// Two replicas' blocks of the first 2 h of a day, plus a later block with a counter reset.
fn day_of_metrics(io: &MemIo) {
    let m = StoredSignal::Metrics;
    io.add(
        head_meta("a", m, T0, T0 + 2 * HOUR - 1),
        BlockData::Metrics(vec![series("c", &[(T0, 1.0), (T0 + 60_000, 5.0), (T0 + HOUR, 9.0)])]),
    );
    io.add(
        head_meta("b", m, T0, T0 + 2 * HOUR - 1),
        BlockData::Metrics(vec![
            series("c", &[(T0, 1.0), (T0 + HOUR, 9.0)]),
            series("d", &[(T0, 2.0)]),
        ]),
    );
    io.add(
        head_meta("c", m, T0 + 10 * HOUR, T0 + 12 * HOUR - 1),
        BlockData::Metrics(vec![series("c", &[(T0 + 10 * HOUR, 3.0)])]),
    );
}

#[tokio::test]
async fn a_closed_day_is_downsampled_and_merged_then_nothing_is_left_to_do() {
    let io = MemIo::default();
    day_of_metrics(&io);
    let entry = |t: i64, line: &'static str| LogEntry {
        timestamp_ns: t * 1_000_000,
        line: Bytes::from_static(line.as_bytes()),
        structured_metadata: Vec::new(),
    };
    let stream =
        |entries| vec![LogStreamData { labels: Labels::from_pairs([("app", "x")]), entries }];
    io.add(
        head_meta("l1", StoredSignal::Logs, T0, T0 + 10),
        BlockData::Logs(stream(vec![entry(T0, "one"), entry(T0 + 10, "two")])),
    );
    io.add(
        head_meta("l2", StoredSignal::Logs, T0 + 5, T0 + 10),
        BlockData::Logs(stream(vec![entry(T0 + 10, "two")])),
    );
    let compactor = compactor(io);
    let now = T0 + DAY_MS + 3 * HOUR;

    let report = compactor.run_once(now).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!((report.tenants, report.downsampled, report.merged), (1, 2, 2));
    assert_eq!((report.merged_inputs, report.deleted, report.expired), (5, 5, 0));

    let io = compactor.io();
    let raw = io.visible_data(StoredSignal::Metrics, Tier::Raw);
    assert_eq!(raw.len(), 1);
    assert_eq!((raw[0].0.min_time_ms, raw[0].0.max_time_ms), (T0, T0 + 12 * HOUR - 1));
    assert_eq!(raw[0].0.compaction_level, 1);
    assert_eq!(raw[0].0.sources, vec!["a", "b", "c"]);
    let BlockData::Metrics(merged) = &raw[0].1 else { panic!("raw data") };
    let expected_raw = vec![
        series("c", &[(T0, 1.0), (T0 + 60_000, 5.0), (T0 + HOUR, 9.0), (T0 + 10 * HOUR, 3.0)]),
        series("d", &[(T0, 2.0)]),
    ];
    assert_eq!(merged, &expected_raw);

    let five = io.visible_data(StoredSignal::Metrics, Tier::FiveMinutes);
    let expected_five = downsample::downsample_raw(&expected_raw, Tier::FiveMinutes).unwrap();
    assert_eq!(five.len(), 1);
    assert_eq!(five[0].1, BlockData::Aggr(expected_five.clone()));
    assert!(five[0].0.sources.is_empty(), "downsampled blocks replace nothing");
    let hour = io.visible_data(StoredSignal::Metrics, Tier::OneHour);
    let expected_hour = downsample::downsample_raw(&expected_raw, Tier::OneHour).unwrap();
    assert_eq!(hour[0].1, BlockData::Aggr(expected_hour.clone()));
    let last_counter = expected_hour[0].points.last().unwrap().counter;
    assert_eq!(last_counter, 3.0 + 9.0, "the reset from 9 to 3 is carried");

    let logs = io.visible_data(StoredSignal::Logs, Tier::Raw);
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].1, BlockData::Logs(stream(vec![entry(T0, "one"), entry(T0 + 10, "two")])));

    let again = compactor.run_once(now).await.unwrap();
    assert_eq!((again.downsampled, again.merged, again.deleted), (0, 0, 0));
}

#[tokio::test]
async fn a_crash_between_write_and_delete_leaves_data_visible_once_and_is_cleaned_up() {
    let io = MemIo::default();
    day_of_metrics(&io);
    io.fail_deletes.store(1, Ordering::Relaxed);
    let compactor = compactor(io);
    let now = T0 + DAY_MS + 3 * HOUR;

    let report = compactor.run_once(now).await.unwrap();
    assert_eq!(report.failures.len(), 1);
    assert!(
        matches!(report.failures[0].error, CompactError::Delete { .. }),
        "{}",
        report.failures[0].error
    );
    let io = compactor.io();
    assert_eq!(
        io.metas("t", StoredSignal::Metrics).iter().filter(|m| m.tier == Tier::Raw).count(),
        4
    );
    let raw = io.visible_data(StoredSignal::Metrics, Tier::Raw);
    assert_eq!(raw.len(), 1, "the inputs are hidden by the merged block's sources");
    assert_eq!(raw[0].0.sources, vec!["a", "b", "c"]);

    let report = compactor.run_once(now).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!((report.deleted, report.merged, report.downsampled), (3, 0, 0));
    assert_eq!(io.metas("t", StoredSignal::Metrics).len(), 3, "raw, 5m, 1h");
}

#[tokio::test]
async fn histogram_only_days_get_an_empty_block_so_they_are_not_downsampled_again() {
    let io = MemIo::default();
    let mut only_histograms = series("h", &[]);
    only_histograms.histograms.push(Histogram { timestamp: T0, ..Histogram::default() });
    io.add(
        head_meta("a", StoredSignal::Metrics, T0, T0),
        BlockData::Metrics(vec![only_histograms]),
    );
    let compactor = compactor(io);
    let now = T0 + DAY_MS + 3 * HOUR;
    assert_eq!(compactor.run_once(now).await.unwrap().downsampled, 2);
    let five = compactor.io().visible_data(StoredSignal::Metrics, Tier::FiveMinutes);
    assert_eq!(five[0].1, BlockData::Aggr(Vec::new()));
    assert_eq!((five[0].0.min_time_ms, five[0].0.max_time_ms), (T0, T0));
    assert_eq!(compactor.run_once(now).await.unwrap().downsampled, 0);
}

#[tokio::test]
async fn expired_blocks_are_deleted_per_signal() {
    let io = MemIo::default();
    let old = T0 - 40 * DAY_MS;
    io.add(head_meta("logs", StoredSignal::Logs, old, old), BlockData::Logs(Vec::new()));
    io.add(
        head_meta("traces", StoredSignal::Traces, T0 - 20 * DAY_MS, T0 - 20 * DAY_MS),
        BlockData::Traces(Vec::new()),
    );
    io.add(
        head_meta("young", StoredSignal::Traces, T0 - DAY_MS, T0 - DAY_MS),
        BlockData::Traces(Vec::new()),
    );
    let compactor = compactor(io);
    let report = compactor.run_once(T0).await.unwrap();
    assert_eq!((report.deleted, report.expired), (2, 2));
    let left: Vec<String> =
        compactor.io().metas("t", StoredSignal::Traces).into_iter().map(|m| m.block_id).collect();
    assert_eq!(left, vec!["young"]);
}

/// The compactor and the lease run in spawned tasks, so their futures must be `Send`.
#[test]
fn futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let compactor = compactor(MemIo::default());
    assert_send(&compactor.run_once(0));
    let store: std::sync::Arc<dyn object_store::ObjectStore> =
        std::sync::Arc::new(object_store::memory::InMemory::new());
    let lease = lease::Lease::new(
        store,
        object_store::path::Path::from("lease"),
        "a".to_owned(),
        std::time::Duration::from_secs(60),
    );
    assert_send(&lease.try_acquire(0));
    assert_send(&lease.release());
}
