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
use super::{BlockMeta, LogStreamData, SeriesAggr, SeriesSamples, SpanRecord, StoredSignal, Tier};
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
        let index = StoredSignal::ALL.iter().position(|s| *s == signal).unwrap_or(0);
        self.metrics.block_bytes_written[index].inc_by(size);
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
        self.write(block, StoredSignal::Metrics, data, |d| block::encode_metrics(d)).await
    }

    async fn write_aggr(&self, block: NewBlock, data: Vec<SeriesAggr>) -> Result<BlockMeta, TierError> {
        let tier = block.tier;
        self.write(block, StoredSignal::Metrics, data, move |d| block::encode_aggr(d, tier)).await
    }

    async fn write_logs(
        &self,
        block: NewBlock,
        data: Vec<LogStreamData>,
    ) -> Result<BlockMeta, TierError> {
        self.write(block, StoredSignal::Logs, data, |d| block::encode_logs(d)).await
    }

    async fn write_traces(
        &self,
        block: NewBlock,
        data: Vec<SpanRecord>,
    ) -> Result<BlockMeta, TierError> {
        self.write(block, StoredSignal::Traces, data, |d| block::encode_traces(d)).await
    }

    async fn delete(&self, meta: &BlockMeta) -> Result<(), TierError> {
        self.bucket.delete_block(meta).await?;
        self.metrics.block_deleted(meta.signal.as_str());
        Ok(())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
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
            _ = stop.wait_for(|stopped| *stopped) => break,
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
            Err(err) => tracing::warn!(error = %err, "compaction pass failed; retrying next interval"),
        }
    }
    if holding {
        let _ = tokio::time::timeout(Duration::from_secs(5), lease.release()).await;
    }
}
