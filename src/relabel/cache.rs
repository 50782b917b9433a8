//! A bounded per-series cache of relabel (and validation) results, so that in the steady state a
//! series costs one hash lookup instead of regex runs.
//!
//! Keys are the series' labels in remote-write wire form (`Series::encoded` / the same encoding
//! built from request bytes), compared byte for byte on a hit, so a hash collision can never hand
//! one series another's result. The store is `quick_cache`'s sharded S3-FIFO cache: bounded by
//! entry count, concurrent without a global lock, and scan-resistant (a burst of one-off series
//! does not evict the steady working set).

use quick_cache::sync::Cache;

use crate::telemetry::RelabelCacheMetrics;

/// Hits and misses counted locally during one request.
#[derive(Clone, Copy, Debug, Default)]
pub struct CacheTally {
    pub hits: u64,
    pub misses: u64,
}

/// Cached results keyed by label bytes.
pub struct SeriesCache<V: Clone> {
    entries: Cache<Vec<u8>, V>,
    metrics: RelabelCacheMetrics,
}

impl<V: Clone> std::fmt::Debug for SeriesCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesCache").field("len", &self.entries.len()).finish()
    }
}

impl<V: Clone> SeriesCache<V> {
    pub fn new(capacity: usize, metrics: RelabelCacheMetrics) -> Self {
        Self { entries: Cache::new(capacity.max(1)), metrics }
    }

    /// The cached value for `key`, or `compute()` stored under it.
    #[inline]
    pub fn get_or_compute(&self, key: &[u8], compute: impl FnOnce() -> V) -> V {
        let mut tally = CacheTally::default();
        let value = self.lookup(key, &mut tally, compute);
        self.record(tally);
        value
    }

    /// Like [`get_or_compute`](Self::get_or_compute), counting into `tally` instead of the
    /// shared counters, so a request of thousands of series touches them once ([`record`]).
    ///
    /// [`record`]: Self::record
    #[inline]
    pub fn lookup(&self, key: &[u8], tally: &mut CacheTally, compute: impl FnOnce() -> V) -> V {
        if let Some(value) = self.entries.get(key) {
            tally.hits += 1;
            return value;
        }
        tally.misses += 1;
        let value = compute();
        self.entries.insert(key.to_vec(), value.clone());
        value
    }

    /// Adds a tally to the cache's metrics.
    pub fn record(&self, tally: CacheTally) {
        if tally.hits > 0 {
            self.metrics.hits.inc_by(tally.hits);
        }
        if tally.misses > 0 {
            self.metrics.misses.inc_by(tally.misses);
            self.metrics.entries.set(self.entries.len() as i64);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Catalog;

    #[test]
    fn hits_skip_compute_and_capacity_bounds_size() {
        let catalog = Catalog::new();
        let cache = SeriesCache::new(100, catalog.relabel_cache("test"));
        let mut computed = 0;
        for round in 0..3 {
            for i in 0..50u32 {
                let value = cache.get_or_compute(&i.to_le_bytes(), || {
                    computed += 1;
                    i * 2
                });
                assert_eq!(value, i * 2, "round {round}");
            }
        }
        assert_eq!(computed, 50);
        for i in 0..10_000u32 {
            cache.get_or_compute(&(i + 1000).to_le_bytes(), || i);
        }
        assert!(cache.len() <= 110, "cache grew to {}", cache.len());
    }
}
