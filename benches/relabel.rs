//! Relabeling cost: the rule engine on a cache miss (regex runs) versus the steady-state cache
//! hit, on realistic series and a typical rule set (drop a family, keep by namespace, labelmap,
//! replace, labeldrop, hashmod).

mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use strata::relabel::{RelabelConfig, Relabeler, SeriesCache};
use strata::telemetry::Catalog;

const RULES: &str = r#"
- source_labels: [__name__]
  regex: go_(memstats|gc)_.*
  action: drop
- source_labels: [namespace]
  regex: shop-.*|kube-system
  action: keep
- source_labels: [pod]
  regex: (.+)-[0-9a-f]{10}-[0-9a-z]{5}
  target_label: workload
  replacement: $1
- source_labels: [node]
  regex: ip-10-0-(\d+)-.*
  target_label: rack
  replacement: r$1
- regex: endpoint|container
  action: labeldrop
- source_labels: [instance]
  modulus: 8
  target_label: __tmp_shard
  action: hashmod
- regex: __tmp_.*
  action: labeldrop
- target_label: cluster
  replacement: eu-west-1
"#;

fn benches(c: &mut Criterion) {
    let series = support::series(2_000);
    let configs: Vec<RelabelConfig> = serde_yaml::from_str(RULES).unwrap();
    let relabeler = Relabeler::new(&configs).unwrap();
    let mut group = c.benchmark_group("relabel");
    group.throughput(Throughput::Elements(series.len() as u64));
    group.bench_function("engine_2000_series", |b| {
        b.iter(|| series.iter().filter(|s| relabeler.process(&s.labels).is_some()).count())
    });
    let catalog = Catalog::new();
    let cache = SeriesCache::new(10_000, catalog.relabel_cache("bench"));
    // As in production, the cache holds shared results (an Arc), so a hit clones a pointer.
    for s in &series {
        cache.get_or_compute(&s.encoded, || relabeler.process(&s.labels).map(std::sync::Arc::new));
    }
    group.bench_function("cache_hit_2000_series", |b| {
        b.iter(|| {
            series
                .iter()
                .filter(|s| cache.get_or_compute(&s.encoded, || unreachable!()).is_some())
                .count()
        })
    });
    group.finish();
}

criterion_group!(name = relabel; config = Criterion::default().sample_size(30); targets = benches);
criterion_main!(relabel);
