//! PromQL range queries over the metrics head, the figures issue 5 asks for: 10 K counter
//! series × 1 h at a 15 s step, `sum by (job) (rate(x[5m]))`, and a `histogram_quantile` over
//! 10 K classic bucket series (1,000 histograms × 10 `le` buckets), with the data in the real
//! head (Gorilla chunks decoded on every query, as a dashboard refresh would).
//!
//! Each query runs twice: over the head, and over the same series in the in-memory
//! `MemStorage` (plain point vectors), which separates the engine's cost from chunk decoding.
//! The side-by-side comparison with Prometheus over HTTP is `scripts/bench-query.sh`.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use strata::model::{Labels, MetricBatch, Sample, Series};
use strata::promql::{Engine, MemStorage, Point, Queryable};
use strata::storage::head::MetricsHead;

const STEP_MS: i64 = 15_000;
/// 1 h 10 m of samples, so the first step of the 1 h range has a full 5 m window.
const SAMPLES: i64 = 280;
const END_MS: i64 = 1_700_000_000_000;
const START_MS: i64 = END_MS - (SAMPLES - 1) * STEP_MS;

const LES: [&str; 10] = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "5", "+Inf"];

fn data() -> (MetricsHead, MemStorage) {
    let head = MetricsHead::new();
    let mut memory = MemStorage::new();
    let mut all: Vec<(Arc<Series>, u64)> = Vec::new();
    for i in 0..10_000u64 {
        let labels = Labels::from_pairs([
            ("__name__", "x_total".to_owned()),
            ("job", format!("job-{}", i % 10)),
            ("instance", format!("10.0.{}.{}:9100", i / 250, i % 250)),
        ]);
        all.push((Arc::new(Series::new(labels)), 1 + i % 7));
    }
    for h in 0..1_000u64 {
        for (b, le) in LES.iter().enumerate() {
            let labels = Labels::from_pairs([
                ("__name__", "latency_seconds_bucket".to_owned()),
                ("job", format!("job-{}", h % 10)),
                ("instance", format!("10.1.{}.{}:8080", h / 250, h % 250)),
                ("le", (*le).to_owned()),
            ]);
            all.push((Arc::new(Series::new(labels)), 1 + b as u64));
        }
    }
    for (series, per_step) in &all {
        let points = (0..SAMPLES).map(|round| Point {
            t: START_MS + round * STEP_MS,
            v: (round as u64 * per_step) as f64,
        });
        memory.add(series.labels.clone(), points);
    }
    for round in 0..SAMPLES {
        let mut batch = MetricBatch::with_capacity(all.len(), all.len());
        for (series, per_step) in &all {
            let sample = Sample {
                timestamp_ms: START_MS + round * STEP_MS,
                value: (round as u64 * per_step) as f64,
            };
            batch.push(series.clone(), &[sample], &[], &[], None, 0);
        }
        head.append(&batch);
    }
    (head, memory)
}

fn bench(c: &mut Criterion) {
    let (head, memory) = data();
    let engine = Engine::default();
    let mut group = c.benchmark_group("range_query_1h_step15s");
    group.sample_size(10);
    let queries = [
        ("sum_by_job_rate_10k", "sum by (job) (rate(x_total[5m]))"),
        (
            "histogram_quantile_10k_buckets",
            "histogram_quantile(0.9, sum by (job, le) (rate(latency_seconds_bucket[5m])))",
        ),
    ];
    let sources: [(&str, &dyn Queryable); 2] = [("head", &head), ("memory", &memory)];
    for (name, query) in queries {
        for (source, storage) in sources {
            let run = || engine.range_query(storage, query, END_MS - 3_600_000, END_MS, STEP_MS);
            let check = run().unwrap();
            assert!(matches!(check.value, strata::promql::Value::Matrix(ref m) if m.len() == 10));
            group.bench_function(format!("{name}/{source}"), |b| b.iter(|| run().unwrap()));
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
