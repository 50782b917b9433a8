//! The compactor (`DESIGN.md` §5, tiers): merges blocks, downsamples metrics to 5 m and 1 h,
//! and expires blocks by their tier's retention — Thanos' compactor (`pkg/compact`), built into
//! the pipeline.
//!
//! * [`plan`]       pure planning over `meta.json`s: what to merge, downsample, delete.
//! * [`merge`]      merging block contents (series, streams, spans) with deduplication.
//! * [`downsample`] raw → 5 m → 1 h aggregates (count, sum, min, max, counter).
//! * [`lease`]      one compactor among aggregators sharing a bucket (object-store conditional
//!   puts, no consensus of our own).
//!
//! [`Compactor::run_once`] plans each tenant and signal and executes the actions in plan order
//! through a [`BlockIo`] (implemented over the block codec and the bucket). Invariants:
//! * **Write first, then delete.** A merge writes its block — whose `meta.json` lists the
//!   inputs in `sources` — before deleting the inputs. A crash in between leaves both, and
//!   [`plan::visible`] hides the inputs from readers until the next run deletes them, so data is
//!   never read twice nor lost.
//! * Downsampling reads the day's blocks, writes one block per target tier and deletes nothing.
//! * Merging and downsampling are CPU work and run on the blocking pool
//!   (`tokio::task::spawn_blocking`), never on the async runtime.
//! * A failure stops the work of that tenant and signal only; it is reported and retried on
//!   the next run (planning is idempotent).

pub mod downsample;
pub mod lease;
pub mod merge;
pub mod plan;

use std::future::Future;

use crate::storage::{
    BlockMeta, LogStreamData, SeriesAggr, SeriesSamples, SpanRecord, StoredSignal, Tier,
};

use self::downsample::DownsampleError;
use self::plan::{Action, DeleteReason, Policy, TimeRange, Window};

/// A new block's identity and lineage, handed to the `write_*` methods of [`BlockIo`].
#[derive(Clone, Debug, PartialEq)]
pub struct NewBlock {
    pub tenant: String,
    pub tier: Tier,
    /// The time range the block answers for, recorded as its `min_time_ms`/`max_time_ms`.
    /// The data lies within it; a downsampled day claims the day's range even when no float
    /// sample survived, so the planner sees the day as done.
    pub range: TimeRange,
    /// Blocks this one replaces (see [`plan::merged_sources`]); empty for downsampled blocks.
    pub sources: Vec<String>,
    pub compaction_level: u32,
}

/// Block storage as the compactor sees it: listing, whole-block reads and writes, deletion.
/// Implemented over `storage::block` and `storage::bucket`; a write returns only once the
/// block's `meta.json` is stored (the block is visible).
pub trait BlockIo: Send + Sync {
    type Error: std::error::Error + Send + Sync + 'static;

    fn tenants(&self) -> impl Future<Output = Result<Vec<String>, Self::Error>> + Send;
    fn list(
        &self,
        tenant: &str,
        signal: StoredSignal,
    ) -> impl Future<Output = Result<Vec<BlockMeta>, Self::Error>> + Send;
    fn read_metrics(
        &self,
        meta: &BlockMeta,
    ) -> impl Future<Output = Result<Vec<SeriesSamples>, Self::Error>> + Send;
    fn read_aggr(
        &self,
        meta: &BlockMeta,
    ) -> impl Future<Output = Result<Vec<SeriesAggr>, Self::Error>> + Send;
    fn read_logs(
        &self,
        meta: &BlockMeta,
    ) -> impl Future<Output = Result<Vec<LogStreamData>, Self::Error>> + Send;
    fn read_traces(
        &self,
        meta: &BlockMeta,
    ) -> impl Future<Output = Result<Vec<SpanRecord>, Self::Error>> + Send;
    fn write_metrics(
        &self,
        block: NewBlock,
        data: Vec<SeriesSamples>,
    ) -> impl Future<Output = Result<BlockMeta, Self::Error>> + Send;
    fn write_aggr(
        &self,
        block: NewBlock,
        data: Vec<SeriesAggr>,
    ) -> impl Future<Output = Result<BlockMeta, Self::Error>> + Send;
    fn write_logs(
        &self,
        block: NewBlock,
        data: Vec<LogStreamData>,
    ) -> impl Future<Output = Result<BlockMeta, Self::Error>> + Send;
    fn write_traces(
        &self,
        block: NewBlock,
        data: Vec<SpanRecord>,
    ) -> impl Future<Output = Result<BlockMeta, Self::Error>> + Send;
    fn delete(&self, meta: &BlockMeta) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("cannot list tenants: {source}")]
    ListTenants { source: BoxError },
    #[error("cannot list {signal} blocks of tenant {tenant:?}: {source}")]
    List { tenant: String, signal: &'static str, source: BoxError },
    #[error("cannot read block {block_id} of tenant {tenant:?}: {source}")]
    Read { tenant: String, block_id: String, source: BoxError },
    #[error(
        "cannot write a {tier} {signal} block of tenant {tenant:?} replacing {sources:?}: {source}"
    )]
    Write {
        tenant: String,
        signal: &'static str,
        tier: &'static str,
        sources: Vec<String>,
        source: BoxError,
    },
    #[error("cannot delete block {block_id} of tenant {tenant:?}: {source}")]
    Delete { tenant: String, block_id: String, source: BoxError },
    #[error("cannot downsample tenant {tenant:?} day starting {day_start_ms}: {source}")]
    Downsample { tenant: String, day_start_ms: i64, source: DownsampleError },
    #[error("compaction task of tenant {tenant:?} failed: {source}")]
    Task { tenant: String, source: tokio::task::JoinError },
}

/// What one tenant/signal pass could not do; the rest of the run went on.
#[derive(Debug)]
pub struct CompactFailure {
    pub tenant: String,
    pub signal: StoredSignal,
    pub error: CompactError,
}

/// What [`Compactor::run_once`] did.
#[derive(Debug, Default)]
pub struct CompactionReport {
    pub tenants: usize,
    /// Blocks written by merges, and the blocks they replaced.
    pub merged: usize,
    pub merged_inputs: usize,
    /// Blocks written by downsampling.
    pub downsampled: usize,
    /// Blocks deleted: merge inputs, leftovers of earlier crashes, and expired blocks.
    pub deleted: usize,
    /// Of `deleted`, those past retention.
    pub expired: usize,
    pub failures: Vec<CompactFailure>,
}

/// The contents of one block, by kind.
#[derive(Clone, Debug, PartialEq)]
pub enum BlockData {
    Metrics(Vec<SeriesSamples>),
    Aggr(Vec<SeriesAggr>),
    Logs(Vec<LogStreamData>),
    Traces(Vec<SpanRecord>),
}

pub struct Compactor<B> {
    io: B,
    policy: Policy,
}

impl<B: BlockIo> Compactor<B> {
    pub fn new(io: B, policy: Policy) -> Self {
        Self { io, policy }
    }

    pub fn io(&self) -> &B {
        &self.io
    }

    /// One pass over every tenant and signal, as of `now_ms`.
    pub async fn run_once(&self, now_ms: i64) -> Result<CompactionReport, CompactError> {
        let mut tenants =
            self.io.tenants().await.map_err(|e| CompactError::ListTenants { source: e.into() })?;
        tenants.sort();
        let mut report = CompactionReport { tenants: tenants.len(), ..Default::default() };
        for tenant in &tenants {
            for signal in StoredSignal::ALL {
                if let Err(error) = self.compact(tenant, signal, now_ms, &mut report).await {
                    tracing::warn!(%tenant, signal = signal.as_str(), %error, "compaction failed");
                    report.failures.push(CompactFailure { tenant: tenant.clone(), signal, error });
                }
            }
        }
        Ok(report)
    }

    async fn compact(
        &self,
        tenant: &str,
        signal: StoredSignal,
        now_ms: i64,
        report: &mut CompactionReport,
    ) -> Result<(), CompactError> {
        let metas = self.io.list(tenant, signal).await.map_err(|e| CompactError::List {
            tenant: tenant.to_owned(),
            signal: signal.as_str(),
            source: e.into(),
        })?;
        let actions = plan::plan(signal, &metas, now_ms, &self.policy);
        // The 5 m data of the last raw → 5 m downsampling, reused by a raw → 1 h of the same
        // day and inputs (the planner emits them back to back).
        let mut five_minutes: Option<(Window, Vec<String>, Vec<SeriesAggr>)> = None;
        for action in actions {
            match action {
                Action::Downsample { inputs, from, to, day } => {
                    let input_ids: Vec<String> =
                        inputs.iter().map(|m| m.block_id.clone()).collect();
                    let reusable = match &five_minutes {
                        Some((cached_day, cached_ids, _)) => {
                            from == Tier::Raw && *cached_day == day && *cached_ids == input_ids
                        }
                        None => false,
                    };
                    let source = match five_minutes.take() {
                        Some((_, _, aggr)) if reusable => Source::FiveMinutes(aggr),
                        _ => Source::Blocks(self.read_all(tenant, &inputs).await?),
                    };
                    let data = run_blocking(tenant, move || downsample_day(source, from, to, day))
                        .await?
                        .map_err(|source| CompactError::Downsample {
                            tenant: tenant.to_owned(),
                            day_start_ms: day.start_ms,
                            source,
                        })?;
                    let block = NewBlock {
                        tenant: tenant.to_owned(),
                        tier: to,
                        range: TimeRange::downsampled(&inputs, day),
                        sources: Vec::new(),
                        compaction_level: max_level(&inputs),
                    };
                    if to == Tier::FiveMinutes {
                        five_minutes = Some((day, input_ids, data.clone()));
                    }
                    let written = self.write(signal, block, BlockData::Aggr(data)).await?;
                    tracing::info!(%tenant, block = %written.block_id, tier = to.as_str(),
                        day_start_ms = day.start_ms, "downsampled");
                    report.downsampled += 1;
                }
                Action::Merge { inputs, tier, window } => {
                    let contents = self.read_all(tenant, &inputs).await?;
                    let merged = run_blocking(tenant, move || merge_blocks(contents)).await?;
                    let block = NewBlock {
                        tenant: tenant.to_owned(),
                        tier,
                        range: TimeRange::spanning(&inputs),
                        sources: plan::merged_sources(&inputs),
                        compaction_level: max_level(&inputs) + 1,
                    };
                    let written = self.write(signal, block, merged).await?;
                    tracing::info!(%tenant, block = %written.block_id, tier = tier.as_str(),
                        inputs = inputs.len(), window_start_ms = window.start_ms, "merged");
                    report.merged += 1;
                    report.merged_inputs += inputs.len();
                    for input in &inputs {
                        self.delete(tenant, input).await?;
                        report.deleted += 1;
                    }
                }
                Action::Delete { meta, reason } => {
                    self.delete(tenant, &meta).await?;
                    tracing::info!(%tenant, block = %meta.block_id, ?reason, "deleted");
                    report.deleted += 1;
                    if reason == DeleteReason::Retention {
                        report.expired += 1;
                    }
                }
            }
        }
        Ok(())
    }

    async fn read_all(
        &self,
        tenant: &str,
        inputs: &[BlockMeta],
    ) -> Result<Vec<BlockData>, CompactError> {
        let mut contents = Vec::with_capacity(inputs.len());
        for meta in inputs {
            contents.push(self.read(meta).await.map_err(|e| CompactError::Read {
                tenant: tenant.to_owned(),
                block_id: meta.block_id.clone(),
                source: e.into(),
            })?);
        }
        Ok(contents)
    }

    async fn read(&self, meta: &BlockMeta) -> Result<BlockData, B::Error> {
        Ok(match (meta.signal, meta.tier) {
            (StoredSignal::Metrics, Tier::Raw) => {
                BlockData::Metrics(self.io.read_metrics(meta).await?)
            }
            (StoredSignal::Metrics, _) => BlockData::Aggr(self.io.read_aggr(meta).await?),
            (StoredSignal::Logs, _) => BlockData::Logs(self.io.read_logs(meta).await?),
            (StoredSignal::Traces, _) => BlockData::Traces(self.io.read_traces(meta).await?),
        })
    }

    async fn write(
        &self,
        signal: StoredSignal,
        block: NewBlock,
        data: BlockData,
    ) -> Result<BlockMeta, CompactError> {
        let (tenant, tier, sources) = (block.tenant.clone(), block.tier, block.sources.clone());
        let result = match data {
            BlockData::Metrics(data) => self.io.write_metrics(block, data).await,
            BlockData::Aggr(data) => self.io.write_aggr(block, data).await,
            BlockData::Logs(data) => self.io.write_logs(block, data).await,
            BlockData::Traces(data) => self.io.write_traces(block, data).await,
        };
        result.map_err(|e| CompactError::Write {
            tenant,
            signal: signal.as_str(),
            tier: tier.as_str(),
            sources,
            source: e.into(),
        })
    }

    async fn delete(&self, tenant: &str, meta: &BlockMeta) -> Result<(), CompactError> {
        self.io.delete(meta).await.map_err(|e| CompactError::Delete {
            tenant: tenant.to_owned(),
            block_id: meta.block_id.clone(),
            source: e.into(),
        })
    }
}

fn max_level(inputs: &[BlockMeta]) -> u32 {
    inputs.iter().map(|m| m.compaction_level).max().unwrap_or(0)
}

async fn run_blocking<T: Send + 'static>(
    tenant: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CompactError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|source| CompactError::Task { tenant: tenant.to_owned(), source })
}

/// Where a downsampling reads from.
enum Source {
    Blocks(Vec<BlockData>),
    /// Already computed 5 m aggregates of the same day and inputs.
    FiveMinutes(Vec<SeriesAggr>),
}

/// Merges the contents of blocks of one kind (the planner groups blocks of one signal and
/// tier, so the kinds agree; were they to differ, the first block's kind is kept).
fn merge_blocks(contents: Vec<BlockData>) -> BlockData {
    debug_assert!(contents
        .windows(2)
        .all(|w| std::mem::discriminant(&w[0]) == std::mem::discriminant(&w[1])));
    let (mut metrics, mut aggr, mut logs, mut traces) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let first = contents.first().map(std::mem::discriminant);
    for content in contents {
        match content {
            BlockData::Metrics(data) => metrics.push(data),
            BlockData::Aggr(data) => aggr.push(data),
            BlockData::Logs(data) => logs.push(data),
            BlockData::Traces(data) => traces.push(data),
        }
    }
    let kind_of = |data: &BlockData| Some(std::mem::discriminant(data));
    if first == kind_of(&BlockData::Aggr(Vec::new())) {
        BlockData::Aggr(merge::merge_aggr(aggr))
    } else if first == kind_of(&BlockData::Logs(Vec::new())) {
        BlockData::Logs(merge::merge_logs(logs))
    } else if first == kind_of(&BlockData::Traces(Vec::new())) {
        BlockData::Traces(merge::merge_spans(traces))
    } else {
        BlockData::Metrics(merge::merge_series(metrics))
    }
}

/// The `to` aggregates of `day` from `source` (tier `from`).
fn downsample_day(
    source: Source,
    from: Tier,
    to: Tier,
    day: Window,
) -> Result<Vec<SeriesAggr>, DownsampleError> {
    let blocks = match source {
        Source::FiveMinutes(five) if to == Tier::FiveMinutes => return Ok(five),
        Source::FiveMinutes(five) => {
            return downsample::downsample_aggr(&five, Tier::FiveMinutes, to)
        }
        Source::Blocks(blocks) => blocks,
    };
    match merge_blocks(blocks) {
        BlockData::Metrics(mut raw) => {
            for series in &mut raw {
                series.samples.retain(|s| day.contains(s.timestamp_ms));
            }
            let five = downsample::downsample_raw(&raw, Tier::FiveMinutes)?;
            if to == Tier::FiveMinutes {
                return Ok(five);
            }
            downsample::downsample_aggr(&five, Tier::FiveMinutes, to)
        }
        BlockData::Aggr(mut aggr) => {
            for series in &mut aggr {
                series.points.retain(|p| day.contains(p.timestamp_ms));
            }
            aggr.retain(|s| !s.points.is_empty());
            downsample::downsample_aggr(&aggr, from, to)
        }
        BlockData::Logs(_) => Err(DownsampleError::NotMetrics { signal: "logs" }),
        BlockData::Traces(_) => Err(DownsampleError::NotMetrics { signal: "traces" }),
    }
}

#[cfg(test)]
mod tests;
