//! Decode and receive throughput on realistic remote-write requests (2,000 samples, ~11 labels
//! per series). Throughput is reported in samples. `decode` = snappy + wire walk; `receive` =
//! decode + validation + relabeling with a warm cache (the steady state of a receiver);
//! `encode` = the sink's side (encode + snappy).

mod support;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use strata::config::RemoteWriteIngestConfig;
use strata::ingest::remote_write::{DecodedWrite, RemoteWriteIngest, Scratch, Version};
use strata::ingest::snappy_decompress_capped;
use strata::sinks::remote_write::encode::{encode_v1, encode_v2};
use strata::telemetry::Catalog;

const SAMPLES: usize = 2_000;

fn benches(c: &mut Criterion) {
    let series = support::series(SAMPLES);
    let batch = support::batch(&series, 1_700_000_000_000);
    let mut group = c.benchmark_group("remote_write");
    group.throughput(Throughput::Elements(SAMPLES as u64));
    for (version, label) in [(Version::V1, "v1"), (Version::V2, "v2")] {
        let body = support::body(&batch, if version == Version::V2 { 2 } else { 1 });
        let mut scratch = DecodedWrite::default();
        group.bench_function(format!("snappy_only_{label}"), |b| {
            b.iter(|| snappy_decompress_capped(&body, 64 << 20).unwrap().len())
        });
        let raw_body = snappy_decompress_capped(&body, 64 << 20).unwrap();
        group.bench_function(format!("walk_only_{label}"), |b| {
            b.iter(|| {
                scratch.decode(&raw_body, version).unwrap();
                scratch.sample_count()
            })
        });
        group.bench_function(format!("decode_{label}"), |b| {
            b.iter(|| {
                let raw = snappy_decompress_capped(&body, 64 << 20).unwrap();
                scratch.decode(&raw, version).unwrap();
                scratch.sample_count()
            })
        });
        let config: RemoteWriteIngestConfig = serde_yaml::from_str(
            r#"
metric_relabel_configs:
  - source_labels: [__name__]
    regex: go_.*
    action: drop
  - target_label: cluster
    replacement: eu-west-1
"#,
        )
        .unwrap();
        let ingest = RemoteWriteIngest::new(&config, &Catalog::new()).unwrap();
        let mut receive_scratch = Scratch::default();
        ingest.receive(&body, version, &mut receive_scratch).unwrap();
        group.bench_function(format!("receive_{label}"), |b| {
            b.iter(|| {
                ingest.receive(&body, version, &mut receive_scratch).unwrap().batch.sample_count()
            })
        });
        let mut raw = Vec::new();
        let mut encoder = snap::raw::Encoder::new();
        group.bench_function(format!("encode_{label}"), |b| {
            b.iter_batched_ref(
                Vec::new,
                |out: &mut Vec<u8>| {
                    match version {
                        Version::V1 => {
                            encode_v1(std::slice::from_ref(&batch), support::OPTIONS, &mut raw)
                        }
                        Version::V2 => {
                            encode_v2(std::slice::from_ref(&batch), support::OPTIONS, &mut raw)
                        }
                    }
                    *out = encoder.compress_vec(&raw).unwrap();
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(name = decode; config = Criterion::default().sample_size(30); targets = benches);
criterion_main!(decode);
