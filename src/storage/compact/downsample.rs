//! Downsampling: raw samples → 5 m aggregates, and 5 m aggregates → 1 h aggregates.
//!
//! Semantics follow Thanos' downsampler (`pkg/compact/downsample/downsample.go`:
//! `downsampleRawLoop`, `downsampleBatch`, the `aggregator`, `downsampleAggrBatch` and
//! `ApplyCounterResetsSeriesIterator`), re-derived for [`AggrPoint`] rows instead of XOR chunks:
//!
//! * **Windows** are aligned to the resolution: window `k` holds the samples with
//!   `k·r ≤ t < (k+1)·r` (Euclidean division, so times before 1970 align too). A window without
//!   samples yields no point.
//! * **Point time** is the time of the last sample in the window (Thanos caps its window-end
//!   timestamp at the last sample; we always use the last sample, which keeps every point inside
//!   the data's time range and is what `AggrPoint` documents).
//! * **count, sum, min, max** of the window's values. Re-aggregating adds counts and sums and
//!   takes min of mins and max of maxes, so 5 m → 1 h equals raw → 1 h (up to float association
//!   of `sum`; exact for values whose sums are exact, which the property test checks).
//! * **counter**: the value with every counter reset added back, as Prometheus' `rate`
//!   (`promql/functions.go`, `extrapolatedRate`) does: whenever a value is lower than the previous
//!   one, the previous value is added to a running offset and the point carries `value + offset`
//!   of the window's last sample. The result never decreases, so `rate`/`increase` over points
//!   equal those over the raw samples at the same instants. Re-aggregation applies the same
//!   correction to the 5 m counters (a no-op when they never decrease, e.g. one day's block), so
//!   the 1 h counter of a window is bit-for-bit the raw → 1 h one.
//! * **NaN values are skipped**: stale markers (`STALE_NAN_BITS`) end a series for PromQL and
//!   are no data to aggregate; Thanos' raw loop drops every NaN (`math.IsNaN`), since one NaN
//!   would poison `sum`, and so do we.
//! * **Native histograms are not downsampled**: they stay in the raw tier only, so queries over
//!   them are answered from raw data while it is retained. Their buckets do not reduce to
//!   count/sum/min/max, and Thanos' own histogram path is still partial (its counter iterators
//!   are float-only). A series with only histograms yields no downsampled series.
//!
//! Counter scope: the offset starts at zero for each call, i.e. per downsampled block (one UTC
//! day, see `plan`). Thanos keeps the first and last raw value in every aggregated chunk so
//! that a reader can also correct resets *between* blocks; `AggrPoint` has no room for them, so
//! at a day boundary a reader sees a drop when the earlier day had resets and treats it as a
//! reset (the increase over that one boundary step is then over-estimated by at most the raw
//! value at the end of the earlier day).
//!
//! Invariants: input series are sorted by labels and their samples/points by time; output keeps
//! the series order, drops series without points, and points are strictly increasing in time
//! with `count ≥ 1`, `min ≤ max`.

use crate::model::metrics::Sample;
use crate::storage::{AggrPoint, SeriesAggr, SeriesSamples, Tier};

/// Why a downsampling request cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DownsampleError {
    #[error("cannot downsample from tier {from} to tier {to}: the target is not coarser")]
    NotCoarser { from: &'static str, to: &'static str },
    #[error("only metrics are downsampled, not {signal}")]
    NotMetrics { signal: &'static str },
}

/// Aggregates raw series into `to` (5 m or 1 h) points. Histograms are ignored.
pub fn downsample_raw(
    series: &[SeriesSamples],
    to: Tier,
) -> Result<Vec<SeriesAggr>, DownsampleError> {
    let resolution = to
        .resolution_ms()
        .ok_or(DownsampleError::NotCoarser { from: Tier::Raw.as_str(), to: to.as_str() })?;
    Ok(series
        .iter()
        .filter_map(|s| {
            let points = downsample_samples(&s.samples, resolution);
            (!points.is_empty()).then(|| SeriesAggr { labels: s.labels.clone(), points })
        })
        .collect())
}

/// Re-aggregates `from`-tier series into the coarser tier `to` (5 m → 1 h).
pub fn downsample_aggr(
    series: &[SeriesAggr],
    from: Tier,
    to: Tier,
) -> Result<Vec<SeriesAggr>, DownsampleError> {
    let not_coarser = DownsampleError::NotCoarser { from: from.as_str(), to: to.as_str() };
    let (Some(from_ms), Some(to_ms)) = (from.resolution_ms(), to.resolution_ms()) else {
        return Err(not_coarser);
    };
    if to_ms <= from_ms || to_ms % from_ms != 0 {
        return Err(not_coarser);
    }
    Ok(series
        .iter()
        .filter_map(|s| {
            let points = downsample_points(&s.points, to_ms);
            (!points.is_empty()).then(|| SeriesAggr { labels: s.labels.clone(), points })
        })
        .collect())
}

/// Aggregates one raw series' samples into windows of `resolution_ms`.
pub fn downsample_samples(samples: &[Sample], resolution_ms: i64) -> Vec<AggrPoint> {
    debug_assert!(resolution_ms > 0);
    debug_assert!(samples.windows(2).all(|w| w[0].timestamp_ms <= w[1].timestamp_ms));
    let mut out = Vec::new();
    let mut window = WindowAggregator::new(resolution_ms);
    let mut resets = ResetCorrection::default();
    for sample in samples {
        if sample.value.is_nan() {
            continue;
        }
        let counter = resets.correct(sample.value);
        let point = AggrPoint {
            timestamp_ms: sample.timestamp_ms,
            count: 1,
            sum: sample.value,
            min: sample.value,
            max: sample.value,
            counter,
        };
        window.add(point, &mut out);
    }
    window.finish(&mut out);
    out
}

/// Re-aggregates one series' points into the coarser windows of `resolution_ms`.
pub fn downsample_points(points: &[AggrPoint], resolution_ms: i64) -> Vec<AggrPoint> {
    debug_assert!(resolution_ms > 0);
    debug_assert!(points.windows(2).all(|w| w[0].timestamp_ms < w[1].timestamp_ms));
    let mut out = Vec::new();
    let mut window = WindowAggregator::new(resolution_ms);
    let mut resets = ResetCorrection::default();
    for point in points {
        if point.count == 0 {
            continue;
        }
        let corrected = AggrPoint { counter: resets.correct(point.counter), ..*point };
        window.add(corrected, &mut out);
    }
    window.finish(&mut out);
    out
}

/// Counter-reset correction: a value lower than its predecessor starts a new counter life, so
/// the predecessor's value is carried in `offset` (Prometheus' `rate` semantics).
#[derive(Default)]
struct ResetCorrection {
    previous: Option<f64>,
    offset: f64,
}

impl ResetCorrection {
    fn correct(&mut self, value: f64) -> f64 {
        if let Some(previous) = self.previous {
            if value < previous {
                self.offset += previous;
            }
        }
        self.previous = Some(value);
        value + self.offset
    }
}

/// Folds time-ordered partial points into one point per aligned window.
struct WindowAggregator {
    resolution_ms: i64,
    current: Option<(i64, AggrPoint)>,
}

impl WindowAggregator {
    fn new(resolution_ms: i64) -> Self {
        Self { resolution_ms, current: None }
    }

    /// Adds a partial point (one sample, or one finer point); `counter` is already corrected.
    fn add(&mut self, part: AggrPoint, out: &mut Vec<AggrPoint>) {
        let window = part.timestamp_ms.div_euclid(self.resolution_ms);
        match &mut self.current {
            Some((current_window, point)) if *current_window == window => {
                point.timestamp_ms = part.timestamp_ms;
                point.count += part.count;
                point.sum += part.sum;
                point.min = point.min.min(part.min);
                point.max = point.max.max(part.max);
                point.counter = part.counter;
            }
            _ => {
                if let Some((_, done)) = self.current.replace((window, part)) {
                    out.push(done);
                }
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<AggrPoint>) {
        if let Some((_, done)) = self.current.take() {
            out.push(done);
        }
    }
}

#[cfg(test)]
#[path = "downsample_tests.rs"]
mod tests;
