//! What the engine reads: series selected by label matchers over a time range.
//!
//! [`SelectHints`] tell an implementation what the points are for, so a tiered store can answer
//! from a downsampled tier when the step or range is coarse enough (as Thanos' querier does with
//! `max_source_resolution`/auto downsampling).

use crate::model::labels::Labels;
use crate::storage::head::matcher::matches_all;
use crate::storage::head::LabelMatcher;

use super::value::{Point, QueryError, Series};

/// Why a select is made. Times are milliseconds; `start_ms..=end_ms` is the data needed
/// (lookback and range already included).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SelectHints {
    pub start_ms: i64,
    pub end_ms: i64,
    /// The query step (0 for an instant query).
    pub step_ms: i64,
    /// The range of a range selector (0 for an instant-vector selector).
    pub range_ms: i64,
    /// The function the selected points feed (`rate`, `max_over_time`, …), if any.
    pub func: Option<String>,
}

/// A source of series for the engine. Implementations return series sorted by labels with
/// points sorted by time, including staleness markers.
pub trait Queryable: Send + Sync {
    /// Series matching every matcher, with their points in `hints.start_ms..=hints.end_ms`.
    /// Series without a point in the range may be omitted.
    fn select(
        &self,
        matchers: &[LabelMatcher],
        hints: &SelectHints,
    ) -> Result<Vec<Series>, QueryError>;

    /// Label sets of the series matching every matcher with data in `start_ms..=end_ms`.
    fn series(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, QueryError>;

    /// Sorted label names of the matching series (every series if `matchers` is empty).
    fn label_names(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, QueryError> {
        Ok(names_of(&self.series(matchers, start_ms, end_ms)?))
    }

    /// Sorted values of label `name` among the matching series.
    fn label_values(
        &self,
        name: &str,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, QueryError> {
        Ok(values_of(name, &self.series(matchers, start_ms, end_ms)?))
    }
}

/// The sorted, distinct label names of `series`.
pub fn names_of(series: &[Labels]) -> Vec<String> {
    let mut names: Vec<String> =
        series.iter().flat_map(|labels| labels.iter().map(|l| l.name.clone())).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The sorted, distinct values of label `name` in `series`.
pub fn values_of(name: &str, series: &[Labels]) -> Vec<String> {
    let mut values: Vec<String> =
        series.iter().filter_map(|labels| labels.get(name).map(str::to_owned)).collect();
    values.sort_unstable();
    values.dedup();
    values
}

/// Series held in memory: what `strata test promql` and `strata test rules` load.
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    /// Sorted by labels.
    series: Vec<Series>,
}

impl MemStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds points to the series `labels` (created if new), keeping points sorted by time; a
    /// point at an existing timestamp replaces the old one.
    pub fn add(&mut self, labels: Labels, points: impl IntoIterator<Item = Point>) {
        let index = match self.series.binary_search_by(|s| s.labels.cmp(&labels)) {
            Ok(i) => i,
            Err(i) => {
                self.series.insert(i, Series { labels, points: Vec::new() });
                i
            }
        };
        let series = &mut self.series[index];
        for point in points {
            match series.points.binary_search_by_key(&point.t, |p| p.t) {
                Ok(i) => series.points[i] = point,
                Err(i) => series.points.insert(i, point),
            }
        }
    }

    pub fn clear(&mut self) {
        self.series.clear();
    }

    pub fn all(&self) -> &[Series] {
        &self.series
    }
}

impl Queryable for MemStorage {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        hints: &SelectHints,
    ) -> Result<Vec<Series>, QueryError> {
        Ok(self
            .series
            .iter()
            .filter(|s| matches_all(matchers, &s.labels))
            .filter_map(|s| {
                let lo = s.points.partition_point(|p| p.t < hints.start_ms);
                let hi = s.points.partition_point(|p| p.t <= hints.end_ms);
                (lo < hi)
                    .then(|| Series { labels: s.labels.clone(), points: s.points[lo..hi].to_vec() })
            })
            .collect())
    }

    fn series(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, QueryError> {
        Ok(self
            .series
            .iter()
            .filter(|s| matches_all(matchers, &s.labels))
            .filter(|s| s.points.iter().any(|p| p.t >= start_ms && p.t <= end_ms))
            .map(|s| s.labels.clone())
            .collect())
    }
}
