//! A [`Queryable`] over the heads of a [`Store`]: the generation taking appends and those cut
//! but not yet uploaded. Blocks in the bucket are not read here: [`super::StoredMetrics`] adds
//! them, and answers label and series lookups from these heads' indexes alone when no block
//! overlaps the range.
//!
//! Only float samples reach the engine; native histograms in the head are not returned (the
//! `Series` the engine reads carries floats only).
//!
//! Invariants: generations hold disjoint stretches of the WAL, but a series may live in
//! several of them, so points of the same label set are merged in time order (a timestamp seen
//! twice keeps the newest generation's point, as a later write wins in the head).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::labels::Labels;
use crate::model::metrics::SeriesMetadata;
use crate::promql::storage::{names_of, values_of};
use crate::promql::{Point, QueryError, Queryable, SelectHints, Series};
use crate::storage::head::{LabelMatcher, MetricsHead};
use crate::storage::store::Store;
use crate::storage::SeriesSamples;

/// The store's heads as one [`Queryable`].
#[derive(Clone, Debug)]
pub struct HeadQueryable {
    store: Arc<Store>,
}

impl HeadQueryable {
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    /// Calls `each` with every head, newest first.
    fn heads(&self, mut each: impl FnMut(&MetricsHead)) {
        for generation in self.store.generations() {
            each(&generation.head.metrics);
        }
    }
}

/// Whether `start_ms..=end_ms` covers every sample of `head`, so its index alone answers
/// (no chunk needs decoding to know a series has data in the range).
fn covers(head: &MetricsHead, start_ms: i64, end_ms: i64) -> bool {
    let stats = head.stats();
    match (stats.min_time_ms, stats.max_time_ms) {
        (Some(min), Some(max)) => start_ms <= min && max <= end_ms,
        _ => true,
    }
}

/// Series of several heads (newest head first) as one list sorted by labels: the points of
/// one label set merged in time order, the newest head's point kept at a repeated time.
fn merge(found: impl IntoIterator<Item = SeriesSamples>) -> Vec<Series> {
    let mut merged: BTreeMap<Labels, Vec<Point>> = BTreeMap::new();
    for series in found {
        let points = merged.entry(series.labels).or_default();
        points.extend(series.samples.iter().map(|s| Point { t: s.timestamp_ms, v: s.value }));
    }
    merged
        .into_iter()
        .map(|(labels, mut points)| {
            // A stable sort keeps the newest head's point first among equal times.
            points.sort_by_key(|p| p.t);
            points.dedup_by_key(|p| p.t);
            Series { labels, points }
        })
        .collect()
}

impl Queryable for HeadQueryable {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        hints: &SelectHints,
    ) -> Result<Vec<Series>, QueryError> {
        let mut found = Vec::new();
        self.heads(|head| found.extend(head.select(matchers, hints.start_ms, hints.end_ms)));
        Ok(merge(found))
    }

    fn series(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, QueryError> {
        let mut all: Vec<Labels> = Vec::new();
        self.heads(|head| {
            if covers(head, start_ms, end_ms) {
                all.extend(head.series(matchers));
            } else {
                all.extend(head.select(matchers, start_ms, end_ms).into_iter().map(|s| s.labels));
            }
        });
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    fn label_names(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, QueryError> {
        let mut names: Vec<String> = Vec::new();
        let mut partial = false;
        self.heads(|head| {
            if covers(head, start_ms, end_ms) {
                names.extend(head.label_names(matchers));
            } else {
                partial = true;
            }
        });
        if partial {
            // Some head holds data outside the range: only series with data inside count.
            names.extend(names_of(&self.series(matchers, start_ms, end_ms)?));
        }
        names.sort_unstable();
        names.dedup();
        Ok(names)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, QueryError> {
        let mut values: Vec<String> = Vec::new();
        let mut partial = false;
        self.heads(|head| {
            if covers(head, start_ms, end_ms) {
                values.extend(head.label_values(name, matchers));
            } else {
                partial = true;
            }
        });
        if partial {
            values.extend(values_of(name, &self.series(matchers, start_ms, end_ms)?));
        }
        values.sort_unstable();
        values.dedup();
        Ok(values)
    }
}

impl HeadQueryable {
    /// The latest metadata per metric family, sorted by family name.
    pub fn metadata(&self) -> Vec<(String, SeriesMetadata)> {
        let mut latest: BTreeMap<String, SeriesMetadata> = BTreeMap::new();
        self.heads(|head| {
            for (family, metadata) in head.metadata() {
                // Newest head first: keep what it says.
                latest.entry(family).or_insert(metadata);
            }
        });
        latest.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::metrics::Sample;

    fn part(name: &str, points: &[(i64, f64)]) -> SeriesSamples {
        SeriesSamples {
            labels: Labels::from_pairs([("__name__", name)]),
            samples: points.iter().map(|&(t, v)| Sample { timestamp_ms: t, value: v }).collect(),
            histograms: Vec::new(),
        }
    }

    #[test]
    fn heads_merge_by_labels_in_time_order_newest_winning() {
        let merged = merge([
            part("b", &[(30, 3.0), (40, 4.0)]),
            part("a", &[(5, 0.5)]),
            part("b", &[(10, 1.0), (30, 99.0)]),
        ]);
        let shown: Vec<(String, Vec<(i64, f64)>)> = merged
            .iter()
            .map(|s| {
                let name = s.labels.metric_name().unwrap_or_default().to_owned();
                (name, s.points.iter().map(|p| (p.t, p.v)).collect())
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("a".to_owned(), vec![(5, 0.5)]),
                ("b".to_owned(), vec![(10, 1.0), (30, 3.0), (40, 4.0)]),
            ]
        );
    }
}
