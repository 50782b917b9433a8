//! PromQL evaluation cost on the issue-5 workload: 10 K counter series (100 jobs) scraped every
//! 15 s for an hour, queried over the hour at a 15 s step — `sum by (job) (rate(x[5m]))` and a
//! `histogram_quantile` over classic buckets — against the in-memory [`MemStorage`], so the
//! figure is the engine's, not a store's.

use criterion::{criterion_group, criterion_main, Criterion};
use strata::model::labels::Labels;
use strata::promql::{Engine, MemStorage, Point};

const SCRAPE_MS: i64 = 15_000;
const HOUR_MS: i64 = 3_600_000;

/// `series` counters over 1 h 5 m (the range plus the 5 m window before the first step).
fn counters(storage: &mut MemStorage, name: &str, series: usize, extra: &[(&str, &str)]) {
    let points = (HOUR_MS + 5 * 60_000) / SCRAPE_MS + 1;
    for i in 0..series {
        let job = format!("job-{}", i % 100);
        let instance = format!("10.0.{}.{}:9100", i / 250, i % 250);
        let mut pairs =
            vec![("__name__", name), ("job", job.as_str()), ("instance", instance.as_str())];
        pairs.extend_from_slice(extra);
        let rate = 1.0 + (i % 7) as f64;
        let samples = (0..points).map(|k| Point { t: k * SCRAPE_MS, v: rate * k as f64 });
        storage.add(Labels::from_pairs(pairs), samples);
    }
}

fn benches(c: &mut Criterion) {
    let mut storage = MemStorage::new();
    counters(&mut storage, "x_total", 10_000, &[]);
    for le in ["0.1", "0.5", "1", "5", "+Inf"] {
        counters(&mut storage, "req_seconds_bucket", 1_000, &[("le", le)]);
    }
    let engine = Engine::default();
    let (start, end) = (5 * 60_000, 5 * 60_000 + HOUR_MS);
    let mut group = c.benchmark_group("promql");
    group.sample_size(10);
    group.bench_function("sum_by_job_rate_10k_series_1h_15s", |b| {
        b.iter(|| {
            engine
                .range_query(&storage, "sum by (job) (rate(x_total[5m]))", start, end, SCRAPE_MS)
                .unwrap()
        })
    });
    group.bench_function("histogram_quantile_5k_buckets_1h_15s", |b| {
        b.iter(|| {
            let query = "histogram_quantile(0.9, sum by (job, le) (rate(req_seconds_bucket[5m])))";
            engine.range_query(&storage, query, start, end, SCRAPE_MS).unwrap()
        })
    });
    group.finish();
}

criterion_group!(promql, benches);
criterion_main!(promql);
