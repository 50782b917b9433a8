//! The tier machinery wired to a real bucket: [`BucketIo`] implements the compactor's
//! [`BlockIo`] over the Parquet codec (`block`, run on the CPU pool) and the object store
//! (`bucket`), and [`run`] is the compactor loop of a process — every `compactor.interval` it
//! takes (or renews) the bucket's lease and, only while it holds it, runs one compaction pass
//! (merge, downsample to 5 m and 1 h, retention). Several aggregators sharing a bucket all run
//! this loop; the lease makes exactly one of them compact (`compact::lease`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::block::{self, BlockError, EncodedBlock, DATA_FILE};
use super::bucket::{new_block_id, BlockFilter, Bucket, BucketError};
use super::compact::lease::Lease;
use super::compact::plan::Policy;
use super::compact::{BlockIo, Compactor, NewBlock};
use super::{
    now_ms, stopped, BlockMeta, LogStreamData, SeriesAggr, SeriesSamples, SpanRecord, StoredSignal,
};
use crate::config::StorageConfig;
use crate::telemetry::StorageMetrics;

/// Where the lease lives, under the bucket's prefix.
pub const LEASE_KEY: &str = "_lease/compactor";

/// Why a block could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error("block {block_id}: {source}")]
    Block { block_id: String, source: BlockError },
    #[error("block {block_id}: the codec task failed: {detail}")]
    Task { block_id: String, detail: String },
}

/// The compactor's view of a bucket.
#[derive(Clone)]
pub struct BucketIo {
    bucket: Arc<Bucket>,
    config: Arc<StorageConfig>,
    metrics: StorageMetrics,
}

impl std::fmt::Debug for BucketIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketIo").finish()
    }
}

impl BucketIo {
    pub fn new(bucket: Arc<Bucket>, config: &StorageConfig, metrics: StorageMetrics) -> Self {
        Self { bucket, config: Arc::new(config.clone()), metrics }
    }

    async fn read<T: Send + 'static>(
        &self,
        meta: &BlockMeta,
        decode: fn(Bytes) -> Result<T, BlockError>,
    ) -> Result<T, TierError> {
        let data = self.bucket.get_file(meta, DATA_FILE).await?;
        let block_id = meta.block_id.clone();
        tokio::task::spawn_blocking(move || decode(data))
            .await
            .map_err(|e| TierError::Task { block_id: block_id.clone(), detail: e.to_string() })?
            .map_err(|source| TierError::Block { block_id, source })
    }

    async fn write<T: Send + 'static>(
        &self,
        block: NewBlock,
        signal: StoredSignal,
        data: Vec<T>,
        encode: impl FnOnce(&[T]) -> Result<EncodedBlock, BlockError> + Send + 'static,
    ) -> Result<BlockMeta, TierError> {
        let block_id = new_block_id();
        let encoded = tokio::task::spawn_blocking(move || encode(&data))
            .await
            .map_err(|e| TierError::Task { block_id: block_id.clone(), detail: e.to_string() })?
            .map_err(|source| TierError::Block { block_id: block_id.clone(), source })?;
        let meta = BlockMeta {
            version: 1,
            block_id,
            tenant: block.tenant,
            signal,
            tier: block.tier,
            schema_version: block::SCHEMA_VERSION,
            min_time_ms: block.range.min_ms,
            max_time_ms: block.range.max_ms,
            rows: encoded.rows,
            series: encoded.series,
            files: Vec::new(),
            created_ms: now_ms(),
            compaction_level: block.compaction_level,
            sources: block.sources,
        };
        let size = encoded.data.len() as u64;
        let tier_objects = self.config.tier_objects.get(meta.tier.as_str());
        let written = self
            .bucket
            .put_block(meta, vec![(DATA_FILE.to_owned(), encoded.data)], tier_objects)
            .await?;
        self.metrics.block_written(written.signal.as_str(), written.tier.as_str());
        self.metrics.block_bytes_written[signal.index()].inc_by(size);
        Ok(written)
    }
}

impl BlockIo for BucketIo {
    type Error = TierError;

    async fn tenants(&self) -> Result<Vec<String>, TierError> {
        Ok(self.bucket.tenants().await?)
    }

    async fn list(&self, tenant: &str, signal: StoredSignal) -> Result<Vec<BlockMeta>, TierError> {
        let filter =
            BlockFilter { tenant: Some(tenant.to_owned()), signal: Some(signal), tier: None };
        Ok(self.bucket.list_blocks(&filter).await?)
    }

    async fn read_metrics(&self, meta: &BlockMeta) -> Result<Vec<SeriesSamples>, TierError> {
        self.read(meta, block::decode_metrics).await
    }

    async fn read_aggr(&self, meta: &BlockMeta) -> Result<Vec<SeriesAggr>, TierError> {
        self.read(meta, block::decode_aggr).await
    }

    async fn read_logs(&self, meta: &BlockMeta) -> Result<Vec<LogStreamData>, TierError> {
        self.read(meta, block::decode_logs).await
    }

    async fn read_traces(&self, meta: &BlockMeta) -> Result<Vec<SpanRecord>, TierError> {
        self.read(meta, block::decode_traces).await
    }

    async fn write_metrics(
        &self,
        block: NewBlock,
        data: Vec<SeriesSamples>,
    ) -> Result<BlockMeta, TierError> {
        self.write(block, StoredSignal::Metrics, data, block::encode_metrics).await
    }

    async fn write_aggr(
        &self,
        block: NewBlock,
        data: Vec<SeriesAggr>,
    ) -> Result<BlockMeta, TierError> {
        let tier = block.tier;
        self.write(block, StoredSignal::Metrics, data, move |d| block::encode_aggr(d, tier)).await
    }

    async fn write_logs(
        &self,
        block: NewBlock,
        data: Vec<LogStreamData>,
    ) -> Result<BlockMeta, TierError> {
        self.write(block, StoredSignal::Logs, data, block::encode_logs).await
    }

    async fn write_traces(
        &self,
        block: NewBlock,
        data: Vec<SpanRecord>,
    ) -> Result<BlockMeta, TierError> {
        self.write(block, StoredSignal::Traces, data, block::encode_traces).await
    }

    async fn delete(&self, meta: &BlockMeta) -> Result<(), TierError> {
        self.bucket.delete_block(meta).await?;
        self.metrics.block_deleted(meta.signal.as_str());
        Ok(())
    }
}

/// A name for this process in the lease: host name and process id.
fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".into());
    format!("{host}/{}", std::process::id())
}

/// The compactor loop: every `compactor.interval`, take or renew the lease and, while held,
/// run one pass. Stops (releasing the lease) when `stop` turns true.
pub async fn run(
    bucket: Arc<Bucket>,
    config: StorageConfig,
    metrics: StorageMetrics,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let lease = Lease::new(
        bucket.object_store().clone(),
        bucket.key(LEASE_KEY),
        holder(),
        config.compactor.lease_duration.get(),
    );
    let policy = Policy::new(&config.retention, &config.head);
    let compactor = Compactor::new(BucketIo::new(bucket, &config, metrics.clone()), policy);
    let mut tick = tokio::time::interval(config.compactor.interval.get());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut holding = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stopped(&mut stop) => break,
        }
        match lease.try_acquire(now_ms()).await {
            Ok(true) => holding = true,
            Ok(false) => {
                holding = false;
                continue;
            }
            Err(err) => {
                tracing::warn!(error = %err, "compactor lease unavailable; not compacting");
                holding = false;
                continue;
            }
        }
        match compactor.run_once(now_ms()).await {
            Ok(report) => {
                for _ in 0..report.merged {
                    metrics.compactor_action("merge");
                }
                for _ in 0..report.downsampled {
                    metrics.compactor_action("downsample");
                }
                for _ in 0..report.deleted {
                    metrics.compactor_action("delete");
                }
                tracing::debug!(?report, "compaction pass done");
            }
            Err(err) => {
                tracing::warn!(error = %err, "compaction pass failed; retrying next interval")
            }
        }
    }
    if holding {
        let _ = tokio::time::timeout(Duration::from_secs(5), lease.release()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::labels::Labels;
    use crate::model::metrics::Sample;
    use crate::storage::compact::plan::{TimeRange, DAY_MS};
    use crate::storage::Tier;
    use crate::telemetry::Catalog;

    const HOUR_MS: i64 = 3_600_000;

    fn counter(start_ms: i64, hours: i64) -> SeriesSamples {
        let samples = (0..hours * 240)
            .map(|i| Sample { timestamp_ms: start_ms + i * 15_000, value: i as f64 })
            .collect();
        SeriesSamples {
            labels: Labels::from_pairs([("__name__", "requests_total"), ("job", "api")]),
            samples,
            histograms: Vec::new(),
        }
    }

    /// Raw blocks of one past day in a real (local directory) bucket: the compactor merges
    /// them into one day block, builds the 5 m and 1 h tiers with the right point counts, and
    /// a later pass past the raw retention deletes raw data but keeps the downsampled tiers.
    #[tokio::test]
    async fn a_past_day_is_merged_downsampled_and_expired_in_a_real_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = Arc::new(Bucket::local(dir.path()).unwrap());
        let config = StorageConfig::default();
        let io = BucketIo::new(bucket.clone(), &config, Catalog::new().storage());
        let day = 20_000 * DAY_MS;
        for window in 0..12 {
            let start = day + window * 2 * HOUR_MS;
            let data = vec![counter(start, 2)];
            let block = NewBlock {
                tenant: "fake".into(),
                tier: Tier::Raw,
                range: TimeRange { min_ms: start, max_ms: start + 2 * HOUR_MS - 15_000 },
                sources: Vec::new(),
                compaction_level: 0,
            };
            io.write_metrics(block, data).await.unwrap();
        }
        let compactor = Compactor::new(io, Policy::new(&config.retention, &config.head));
        let report = compactor.run_once(day + 2 * DAY_MS).await.unwrap();
        assert!(report.failures.is_empty(), "{report:?}");
        let blocks = bucket.list_blocks(&BlockFilter::default()).await.unwrap();
        let of = |tier| blocks.iter().filter(|b| b.tier == tier).collect::<Vec<_>>();
        assert_eq!(of(Tier::Raw).len(), 1, "one merged raw block for the day: {blocks:#?}");
        assert_eq!(of(Tier::Raw)[0].rows, 24 * 240);
        assert_eq!(of(Tier::FiveMinutes).len(), 1);
        assert_eq!(of(Tier::FiveMinutes)[0].rows, 24 * 12, "one point per 5 minutes");
        assert_eq!(of(Tier::OneHour).len(), 1);
        assert_eq!(of(Tier::OneHour)[0].rows, 24);
        let hourly = compactor.io().read_aggr(of(Tier::OneHour)[0]).await.unwrap();
        let point = hourly[0].points[0];
        assert_eq!((point.count, point.min, point.max), (240, 0.0, 239.0));

        // 20 days later the raw block is past its 15 days; the tiers stay.
        compactor.run_once(day + 20 * DAY_MS).await.unwrap();
        let blocks = bucket.list_blocks(&BlockFilter::default()).await.unwrap();
        let tiers: Vec<Tier> = blocks.iter().map(|b| b.tier).collect();
        assert_eq!(tiers, [Tier::FiveMinutes, Tier::OneHour], "{blocks:#?}");
    }
}
