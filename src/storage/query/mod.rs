//! The PromQL engine's view of stored metrics: every head generation (the current one and those
//! cut but not yet visible in the bucket) plus the Parquet blocks of the bucket, with the tier
//! chosen by the query's resolution.
//!
//! Tier choice follows Thanos' querier with auto-downsampling (`pkg/query/querier.go`,
//! `--query.auto-downsampling`): the coarsest resolution not above a fifth of the step is
//! preferred, so a query with a 25 m step reads 5 m blocks and one with a 5 h step reads 1 h
//! blocks, and each series keeps about five points per step. Where the preferred tier has no
//! block for part of the range (raw data past its retention, a day not yet downsampled), the
//! other tiers fill in, finer first, clipped to the time the earlier choices do not cover.
//! Downsampled points turn into the aggregate the calling function needs, as Thanos' `AggrChunk`
//! does: the reset-corrected counter for `rate`/`increase`/`irate`/`resets`, the count, sum,
//! minimum or maximum for the matching `*_over_time`, else the window average (sum / count).
//!
//! Points of one series seen twice (a block and the generation it was cut from, while the
//! upload is in flight) are deduplicated by timestamp.
//!
//! The trait is synchronous (the engine runs on a blocking thread); bucket reads are driven on
//! the runtime `handle` with `block_on`, which must not be called from an async task.

mod heads;

pub use heads::HeadQueryable;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use quick_cache::sync::Cache;
use quick_cache::Weighter;

use super::block::{self, DATA_FILE};
use super::bucket::{BlockFilter, Bucket};
use super::compact::plan::visible;
use super::head::matcher::matches_all;
use super::head::{LabelMatcher, MatchOp, MetricsHead};
use super::store::Store;
use super::{AggrPoint, BlockMeta, SeriesSamples, StoredSignal, Tier};
use crate::model::labels::{Labels, METRIC_NAME};
use crate::promql::storage::{names_of, values_of};
use crate::promql::value::{Point, QueryError, Series};
use crate::promql::{Queryable, SelectHints};

/// How long a bucket listing is reused before the next query lists again.
const LISTING_TTL: Duration = Duration::from_secs(15);
/// Block data files kept in memory between queries.
const DATA_CACHE_BYTES: u64 = 256 << 20;

const FIVE_MINUTES_MS: i64 = 5 * 60 * 1000;
const ONE_HOUR_MS: i64 = 60 * 60 * 1000;

#[derive(Clone)]
struct ByLength;

impl Weighter<String, Bytes> for ByLength {
    fn weight(&self, _key: &String, value: &Bytes) -> u64 {
        value.len().max(1) as u64
    }
}

/// A block to read and the time intervals earlier choices already serve (skipped in it).
type PlannedBlock = (BlockMeta, Vec<(i64, i64)>);

/// Stored metrics as a [`Queryable`].
pub struct StoredMetrics {
    store: Arc<Store>,
    heads: HeadQueryable,
    handle: tokio::runtime::Handle,
    listing: Mutex<Option<(Instant, Arc<Vec<BlockMeta>>)>>,
    data: Cache<String, Bytes, ByLength>,
}

impl std::fmt::Debug for StoredMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredMetrics").finish_non_exhaustive()
    }
}

/// The tier a query at `step_ms` prefers (Thanos: resolution ≤ step / 5).
pub fn preferred_tier(step_ms: i64) -> Tier {
    let max_resolution = step_ms / 5;
    if max_resolution >= ONE_HOUR_MS {
        Tier::OneHour
    } else if max_resolution >= FIVE_MINUTES_MS {
        Tier::FiveMinutes
    } else {
        Tier::Raw
    }
}

/// The order tiers are consulted in: the preferred one, then finer ones, then coarser ones.
fn tier_order(preferred: Tier) -> [Tier; 3] {
    match preferred {
        Tier::Raw => [Tier::Raw, Tier::FiveMinutes, Tier::OneHour],
        Tier::FiveMinutes => [Tier::FiveMinutes, Tier::Raw, Tier::OneHour],
        Tier::OneHour => [Tier::OneHour, Tier::FiveMinutes, Tier::Raw],
    }
}

/// The value a downsampled point stands for, given the function reading it.
fn aggregate_value(point: &AggrPoint, func: Option<&str>) -> f64 {
    match func {
        Some("rate" | "increase" | "irate" | "resets") => point.counter,
        Some("count_over_time") => point.count as f64,
        Some("sum_over_time") => point.sum,
        Some("min_over_time") => point.min,
        Some("max_over_time") => point.max,
        _ if point.count == 0 => f64::NAN,
        _ => point.sum / point.count as f64,
    }
}

/// Time intervals `[min, max]` already served by an earlier choice.
#[derive(Default)]
struct Covered(Vec<(i64, i64)>);

impl Covered {
    fn contains(&self, t: i64) -> bool {
        self.0.iter().any(|&(lo, hi)| t >= lo && t <= hi)
    }

    fn covers(&self, lo: i64, hi: i64) -> bool {
        // Blocks are few; checking both ends against one interval is what matters in practice
        // (blocks of one tier tile time without gaps inside a block).
        self.0.iter().any(|&(a, b)| a <= lo && hi <= b)
    }
}

impl StoredMetrics {
    pub fn new(store: Arc<Store>, handle: tokio::runtime::Handle) -> Self {
        Self {
            heads: HeadQueryable::new(store.clone()),
            store,
            handle,
            listing: Mutex::new(None),
            data: Cache::with_weighter(1024, DATA_CACHE_BYTES, ByLength),
        }
    }

    fn bucket(&self) -> &Arc<Bucket> {
        self.store.bucket()
    }

    /// The visible metric blocks of the metrics tenant, listed at most every [`LISTING_TTL`].
    fn blocks(&self) -> Result<Arc<Vec<BlockMeta>>, QueryError> {
        let mut listing = self.listing.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, metas)) = listing.as_ref() {
            if at.elapsed() < LISTING_TTL {
                return Ok(metas.clone());
            }
        }
        let filter = BlockFilter {
            tenant: Some(self.store.metrics_tenant().to_owned()),
            signal: Some(StoredSignal::Metrics),
            tier: None,
        };
        let all = self
            .handle
            .block_on(self.bucket().list_blocks(&filter))
            .map_err(|e| QueryError::internal(format!("listing blocks: {e}")))?;
        let metas: Arc<Vec<BlockMeta>> = Arc::new(visible(&all).into_iter().cloned().collect());
        *listing = Some((Instant::now(), metas.clone()));
        Ok(metas)
    }

    /// Whether any visible block holds data in `start..=end`.
    fn blocks_overlap(&self, start: i64, end: i64) -> Result<bool, QueryError> {
        Ok(self.blocks()?.iter().any(|m| m.max_time_ms >= start && m.min_time_ms <= end))
    }

    fn block_data(&self, meta: &BlockMeta) -> Result<Bytes, QueryError> {
        if let Some(data) = self.data.get(&meta.block_id) {
            return Ok(data);
        }
        let data = self
            .handle
            .block_on(self.bucket().get_file(meta, DATA_FILE))
            .map_err(|e| QueryError::internal(format!("reading block {}: {e}", meta.block_id)))?;
        self.data.insert(meta.block_id.clone(), data.clone());
        Ok(data)
    }

    /// The blocks to read for `start..=end` at `preferred` tier, each with the intervals an
    /// earlier choice already covers (its points there are skipped).
    fn plan(&self, start: i64, end: i64, preferred: Tier) -> Result<Vec<PlannedBlock>, QueryError> {
        let metas = self.blocks()?;
        let mut covered = Covered::default();
        let mut chosen = Vec::new();
        for tier in tier_order(preferred) {
            let mut of_tier: Vec<&BlockMeta> = metas
                .iter()
                .filter(|m| m.tier == tier && m.max_time_ms >= start && m.min_time_ms <= end)
                .collect();
            of_tier.sort_by_key(|m| m.min_time_ms);
            let mut added = Vec::new();
            for meta in of_tier {
                if covered.covers(meta.min_time_ms, meta.max_time_ms) {
                    continue;
                }
                chosen.push((meta.clone(), covered.0.clone()));
                added.push((meta.min_time_ms, meta.max_time_ms));
            }
            covered.0.extend(added);
        }
        Ok(chosen)
    }

    /// Every series of the range: head generations first, then blocks.
    fn collect(
        &self,
        matchers: &[LabelMatcher],
        hints: &SelectHints,
    ) -> Result<BTreeMap<Labels, Vec<Point>>, QueryError> {
        let (start, end) = (hints.start_ms, hints.end_ms);
        let mut out: BTreeMap<Labels, Vec<Point>> = BTreeMap::new();
        let add_raw = |series: SeriesSamples, skip: &Covered, out: &mut BTreeMap<_, _>| {
            if !matches_all(matchers, &series.labels) {
                return;
            }
            let points: &mut Vec<Point> = out.entry(series.labels).or_default();
            points.extend(
                series
                    .samples
                    .iter()
                    .filter(|s| s.timestamp_ms >= start && s.timestamp_ms <= end)
                    .filter(|s| !skip.contains(s.timestamp_ms))
                    .map(|s| Point { t: s.timestamp_ms, v: s.value }),
            );
        };
        for series in self.heads.select(matchers, hints)? {
            out.insert(series.labels, series.points);
        }
        let name = metric_name(matchers);
        for (meta, skip) in self.plan(start, end, preferred_tier(hints.step_ms))? {
            let skip = Covered(skip);
            let data = self.block_data(&meta)?;
            let decode_error = |e: block::BlockError| {
                QueryError::internal(format!("block {}: {e}", meta.block_id))
            };
            if meta.tier == Tier::Raw {
                for series in
                    block::decode_metrics_where(data, name, start, end).map_err(decode_error)?
                {
                    add_raw(series, &skip, &mut out);
                }
                continue;
            }
            for series in block::decode_aggr(data).map_err(decode_error)? {
                if !matches_all(matchers, &series.labels) {
                    continue;
                }
                let points = out.entry(series.labels).or_default();
                points.extend(
                    series
                        .points
                        .iter()
                        .filter(|p| p.timestamp_ms >= start && p.timestamp_ms <= end)
                        .filter(|p| !skip.contains(p.timestamp_ms))
                        .map(|p| Point {
                            t: p.timestamp_ms,
                            v: aggregate_value(p, hints.func.as_deref()),
                        }),
                );
            }
        }
        for points in out.values_mut() {
            // Stable: on equal timestamps the head's (first added) point wins.
            points.sort_by_key(|p| p.t);
            points.dedup_by_key(|p| p.t);
        }
        out.retain(|_, points| !points.is_empty());
        Ok(out)
    }
}

/// The metric name an equality matcher fixes, for the blocks' bloom filters.
fn metric_name(matchers: &[LabelMatcher]) -> Option<&str> {
    matchers
        .iter()
        .find(|m| m.name() == METRIC_NAME && m.op() == MatchOp::Equal)
        .map(LabelMatcher::value)
}

impl Queryable for StoredMetrics {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        hints: &SelectHints,
    ) -> Result<Vec<Series>, QueryError> {
        if !self.blocks_overlap(hints.start_ms, hints.end_ms)? {
            // Recent data (dashboards' usual case): the heads alone, merged once.
            return self.heads.select(matchers, hints);
        }
        Ok(self
            .collect(matchers, hints)?
            .into_iter()
            .map(|(labels, points)| Series { labels, points })
            .collect())
    }

    fn series(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, QueryError> {
        if !self.blocks_overlap(start_ms, end_ms)? {
            return self.heads.series(matchers, start_ms, end_ms);
        }
        let hints = SelectHints { start_ms, end_ms, ..SelectHints::default() };
        Ok(self.collect(matchers, &hints)?.into_keys().collect())
    }

    fn label_names(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, QueryError> {
        if !self.blocks_overlap(start_ms, end_ms)? {
            return self.heads.label_names(matchers, start_ms, end_ms);
        }
        Ok(names_of(&self.series(matchers, start_ms, end_ms)?))
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, QueryError> {
        if !self.blocks_overlap(start_ms, end_ms)? {
            return self.heads.label_values(name, matchers, start_ms, end_ms);
        }
        Ok(values_of(name, &self.series(matchers, start_ms, end_ms)?))
    }
}

/// The head alone (no blocks): what benchmarks and tests query directly.
impl Queryable for super::head::MetricsHead {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        hints: &SelectHints,
    ) -> Result<Vec<Series>, QueryError> {
        Ok(MetricsHead::select(self, matchers, hints.start_ms, hints.end_ms)
            .into_iter()
            .map(|s| Series {
                labels: s.labels,
                points: s.samples.iter().map(|s| Point { t: s.timestamp_ms, v: s.value }).collect(),
            })
            .filter(|s| !s.points.is_empty())
            .collect())
    }

    fn series(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, QueryError> {
        Ok(MetricsHead::select(self, matchers, start_ms, end_ms)
            .into_iter()
            .filter(|s| !s.samples.is_empty())
            .map(|s| s.labels)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thanos_resolution_rule_picks_the_tier() {
        assert_eq!(preferred_tier(0), Tier::Raw);
        assert_eq!(preferred_tier(15_000), Tier::Raw);
        assert_eq!(preferred_tier(24 * 60_000), Tier::Raw);
        assert_eq!(preferred_tier(25 * 60_000), Tier::FiveMinutes);
        assert_eq!(preferred_tier(5 * ONE_HOUR_MS - 1), Tier::FiveMinutes);
        assert_eq!(preferred_tier(5 * ONE_HOUR_MS), Tier::OneHour);
    }

    #[test]
    fn downsampled_points_answer_with_the_aggregate_the_function_needs() {
        let point =
            AggrPoint { timestamp_ms: 0, count: 4, sum: 10.0, min: 1.0, max: 4.0, counter: 99.0 };
        assert_eq!(aggregate_value(&point, Some("rate")), 99.0);
        assert_eq!(aggregate_value(&point, Some("increase")), 99.0);
        assert_eq!(aggregate_value(&point, Some("count_over_time")), 4.0);
        assert_eq!(aggregate_value(&point, Some("sum_over_time")), 10.0);
        assert_eq!(aggregate_value(&point, Some("min_over_time")), 1.0);
        assert_eq!(aggregate_value(&point, Some("max_over_time")), 4.0);
        assert_eq!(aggregate_value(&point, Some("avg_over_time")), 2.5);
        assert_eq!(aggregate_value(&point, None), 2.5);
    }

    use crate::config::StorageConfig;
    use crate::model::metrics::Sample;
    use crate::storage::compact::plan::{Policy, TimeRange, DAY_MS};
    use crate::storage::compact::{BlockIo, Compactor, NewBlock};
    use crate::storage::durable::Durable;
    use crate::storage::tiers::BucketIo;
    use crate::telemetry::Catalog;

    const STEP_MS: i64 = 15_000;

    fn matcher() -> Vec<LabelMatcher> {
        vec![LabelMatcher::equal(METRIC_NAME, "requests_total")]
    }

    /// One day of a counter growing by 1 every 15 s, written as 2 h raw blocks into a real
    /// (local directory) bucket, compacted and downsampled by the real compactor; then read
    /// back through a store whose head is empty.
    #[tokio::test]
    async fn the_step_picks_the_tier_and_other_tiers_fill_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let config =
            StorageConfig { path: dir.path().display().to_string(), ..StorageConfig::default() };
        let bucket = Arc::new(Bucket::local(&dir.path().join("bucket")).unwrap());
        let io = BucketIo::new(bucket.clone(), &config, Catalog::new().storage());
        let day = 20_000 * DAY_MS;
        let labels = Labels::from_pairs([("__name__", "requests_total"), ("job", "api")]);
        for window in 0..12 {
            let start = day + window * 2 * ONE_HOUR_MS;
            let samples = (0..480)
                .map(|i| Sample {
                    timestamp_ms: start + i * STEP_MS,
                    value: (window * 480 + i) as f64,
                })
                .collect();
            let data =
                vec![SeriesSamples { labels: labels.clone(), samples, histograms: Vec::new() }];
            let block = NewBlock {
                tenant: "fake".into(),
                tier: Tier::Raw,
                range: TimeRange { min_ms: start, max_ms: start + 2 * ONE_HOUR_MS - STEP_MS },
                sources: Vec::new(),
                compaction_level: 0,
            };
            io.write_metrics(block, data).await.unwrap();
        }
        let compactor = Compactor::new(io, Policy::new(&config.retention, &config.head));
        let report = compactor.run_once(day + 2 * DAY_MS).await.unwrap();
        assert!(report.failures.is_empty(), "{report:?}");

        let catalog = Catalog::new();
        let (durable, _) = Durable::open(dir.path(), &config.wal, catalog.storage()).unwrap();
        let store = Arc::new(
            Store::open(&config, &durable, bucket.clone(), "fake", catalog.storage()).unwrap(),
        );
        let query = Arc::new(StoredMetrics::new(store, tokio::runtime::Handle::current()));
        let select = |step_ms: i64, func: Option<&str>| {
            let query = query.clone();
            let hints = SelectHints {
                start_ms: day,
                end_ms: day + DAY_MS,
                step_ms,
                func: func.map(str::to_owned),
                ..SelectHints::default()
            };
            tokio::task::spawn_blocking(move || query.select(&matcher(), &hints).unwrap())
        };

        let raw = select(STEP_MS, None).await.unwrap();
        assert_eq!(raw.len(), 1);
        assert_eq!(raw[0].labels, labels);
        assert_eq!(raw[0].points.len(), 24 * 240, "a 15 s step reads raw samples");
        assert_eq!(raw[0].points[10], Point { t: day + 10 * STEP_MS, v: 10.0 });

        let five = select(30 * 60_000, Some("rate")).await.unwrap();
        assert_eq!(five[0].points.len(), 24 * 12, "a 30 m step reads the 5 m tier");
        let last = five[0].points.last().unwrap();
        assert_eq!(last.v, (24 * 240 - 1) as f64, "rate reads the counter aggregate");
        let averaged = select(30 * 60_000, None).await.unwrap();
        assert!(averaged[0].points[0].v < five[0].points[0].v + 1.0);
        assert_eq!(averaged[0].points[0].v, 9.5, "plain selectors read the window average");

        let hourly = select(6 * ONE_HOUR_MS, Some("max_over_time")).await.unwrap();
        assert_eq!(hourly[0].points.len(), 24, "a 6 h step reads the 1 h tier");
        assert_eq!(hourly[0].points[0].v, 239.0);

        // Past the raw retention only the downsampled tiers remain: a fine step falls back to
        // the 5 m tier rather than answering nothing.
        let expired = compactor.run_once(day + 20 * DAY_MS).await.unwrap();
        assert!(expired.failures.is_empty(), "{expired:?}");
        query.listing.lock().unwrap().take();
        let fallback = select(STEP_MS, None).await.unwrap();
        assert_eq!(fallback[0].points.len(), 24 * 12, "raw is gone; the 5 m tier fills in");

        let names = {
            let query = query.clone();
            tokio::task::spawn_blocking(move || {
                query.label_values("job", &[], day, day + DAY_MS).unwrap()
            })
            .await
            .unwrap()
        };
        assert_eq!(names, vec!["api".to_owned()]);
    }
}
