//! The metrics head on realistic Kubernetes data: append throughput, `select` latency with
//! `=`, `=~` and `!=` matchers over 100k series, and a memory report: live heap bytes per
//! series of a head holding 1 M series with 120 samples each (one full chunk, 1 h at 30 s),
//! measured by a counting global allocator around the system one.
//!
//! Series mix (per node, ~1,700 series, ~9–10 labels each): node-exporter CPU, memory,
//! filesystem, network and disk series; cAdvisor container series for 30 pods of 2 containers;
//! application HTTP counters and kube-state-metrics series per pod. Values mix constant
//! gauges, integer counters and noisy fractional counters (full-mantissa XORs, the costly
//! case); timestamps are 30 s apart with a few
//! milliseconds of jitter on one scrape in ten.

// A global allocator needs `unsafe impl GlobalAlloc`; see the SAFETY note on `Counting`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use strata::model::{Labels, MetricBatch, Sample, Series};
use strata::storage::head::{LabelMatcher, MatchOp, MetricsHead};

/// Counts live heap bytes (requested sizes) on top of the system allocator.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract is `System`'s; the counter is a side effect that touches no memory the
// allocator hands out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// How a series' values move.
#[derive(Clone, Copy)]
enum Shape {
    Constant(f64),
    IntCounter(u64),
    FloatCounter(f64),
}

/// Deterministic pseudo-random numbers (xorshift), so runs compare.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn labels(pairs: &[(&str, &str)]) -> Arc<Series> {
    Arc::new(Series::new(Labels::from_pairs(pairs.iter().copied())))
}

/// The series of node `node` (and its pods), with a value shape each.
fn node_series(node: usize, out: &mut Vec<(Arc<Series>, Shape)>) {
    let node_name = format!(
        "ip-10-{}-{}-{}.eu-west-1.compute.internal",
        node / 65536,
        node / 256 % 256,
        node % 256
    );
    let exporter_instance = format!("10.{}.{}.{}:9100", node / 65536, node / 256 % 256, node % 256);
    let exporter_pod = format!("node-exporter-{:05x}", node * 7919 % 0xfffff);
    let exporter = |name: &str, extra: &[(&str, &str)]| {
        let mut pairs = vec![
            ("__name__", name),
            ("job", "node-exporter"),
            ("instance", exporter_instance.as_str()),
            ("namespace", "monitoring"),
            ("pod", exporter_pod.as_str()),
            ("container", "node-exporter"),
            ("node", node_name.as_str()),
        ];
        pairs.extend_from_slice(extra);
        labels(&pairs)
    };
    for cpu in 0..16 {
        let cpu = cpu.to_string();
        for mode in ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"] {
            let s = exporter("node_cpu_seconds_total", &[("cpu", &cpu), ("mode", mode)]);
            out.push((s, Shape::FloatCounter(0.01)));
        }
    }
    for i in 0..40 {
        out.push((exporter(&format!("node_memory_field{i}_bytes"), &[]), Shape::Constant(8e9)));
    }
    for device in ["nvme0n1p1", "nvme1n1", "tmpfs", "overlay", "shm", "xvda1"] {
        for metric in ["avail", "free", "size", "files", "files_free"] {
            let s = exporter(
                &format!("node_filesystem_{metric}_bytes"),
                &[("device", device), ("fstype", "ext4"), ("mountpoint", "/")],
            );
            out.push((s, Shape::Constant(1e11)));
        }
    }
    for device in ["eth0", "eth1", "lo", "cni0"] {
        for metric in [
            "receive_bytes",
            "transmit_bytes",
            "receive_packets",
            "transmit_packets",
            "receive_drop",
            "transmit_drop",
            "receive_errs",
            "transmit_errs",
        ] {
            let s = exporter(&format!("node_network_{metric}_total"), &[("device", device)]);
            out.push((s, Shape::IntCounter(1500)));
        }
    }
    for device in ["nvme0n1", "nvme1n1", "xvda", "xvdb"] {
        for metric in [
            "reads_completed",
            "writes_completed",
            "read_bytes",
            "written_bytes",
            "io_time_seconds",
            "io_now",
        ] {
            let s = exporter(&format!("node_disk_{metric}_total"), &[("device", device)]);
            out.push((s, Shape::IntCounter(40)));
        }
    }
    for pod_index in 0..30 {
        let namespace = format!("team-{}", (node * 30 + pod_index) % 40);
        let pod = format!(
            "svc-{}-7d9f8b6c5d-{:05x}",
            (node * 30 + pod_index) % 300,
            (node * 30 + pod_index) * 2654435761 % 0xfffff
        );
        let pod_ip = format!(
            "10.{}.{}.{}:8080",
            100 + node / 65536,
            node / 256 % 256,
            (pod_index * 8 + node) % 256
        );
        for container in ["app", "istio-proxy"] {
            for metric in [
                "cpu_usage_seconds_total",
                "cpu_cfs_periods_total",
                "cpu_cfs_throttled_periods_total",
                "memory_working_set_bytes",
                "memory_rss",
                "memory_cache",
                "memory_usage_bytes",
                "fs_reads_total",
                "fs_writes_total",
                "network_receive_bytes_total",
                "network_transmit_bytes_total",
                "spec_cpu_shares",
                "spec_memory_limit_bytes",
                "last_seen",
                "start_time_seconds",
            ] {
                let s = labels(&[
                    ("__name__", &format!("container_{metric}")),
                    ("job", "kubelet"),
                    ("metrics_path", "/metrics/cadvisor"),
                    ("instance", &node_name),
                    ("namespace", &namespace),
                    ("pod", &pod),
                    ("container", container),
                    ("node", &node_name),
                ]);
                let shape = match metric {
                    m if m.starts_with("spec") || m.starts_with("start") => Shape::Constant(1024.0),
                    m if m.starts_with("cpu_usage") => Shape::FloatCounter(0.001),
                    m if m.starts_with("memory") => Shape::Constant(2e8),
                    _ => Shape::IntCounter(7),
                };
                out.push((s, shape));
            }
        }
        for method in ["GET", "POST"] {
            for code in ["200", "404", "500"] {
                for handler in ["/api/v1/items", "/healthz"] {
                    let s = labels(&[
                        ("__name__", "http_requests_total"),
                        ("job", "kubernetes-pods"),
                        ("instance", &pod_ip),
                        ("namespace", &namespace),
                        ("pod", &pod),
                        ("container", "app"),
                        ("method", method),
                        ("code", code),
                        ("handler", handler),
                    ]);
                    out.push((s, Shape::IntCounter(3)));
                }
            }
        }
        for phase in ["Pending", "Running", "Succeeded", "Failed", "Unknown"] {
            let s = labels(&[
                ("__name__", "kube_pod_status_phase"),
                ("job", "kube-state-metrics"),
                ("instance", "10.0.0.5:8080"),
                ("namespace", &namespace),
                ("pod", &pod),
                ("phase", phase),
                ("uid", &format!("7d9f8b6c-{:04x}-4c1a-9f1e-{:012x}", pod_index, node)),
            ]);
            out.push((s, Shape::Constant(f64::from(u8::from(phase == "Running")))));
        }
    }
}

/// `count` series over as many nodes as it takes.
fn cluster(count: usize) -> Vec<(Arc<Series>, Shape)> {
    let mut out = Vec::with_capacity(count + 2000);
    let mut node = 0;
    while out.len() < count {
        node_series(node, &mut out);
        node += 1;
    }
    out.truncate(count);
    out
}

const START_MS: i64 = 1_700_000_000_000;

/// Sample `round` of a series.
fn sample(shape: Shape, round: i64, rng: &mut Rng) -> Sample {
    let jitter = if rng.next() % 10 == 0 { (rng.next() % 7) as i64 - 3 } else { 0 };
    let value = match shape {
        Shape::Constant(v) => v,
        Shape::IntCounter(step) => (round as u64 * step + rng.next() % step.max(1)) as f64,
        Shape::FloatCounter(step) => {
            round as f64 * 30.0 * step * (1.0 + (rng.next() % 100) as f64 / 100.0)
        }
    };
    Sample { timestamp_ms: START_MS + round * 30_000 + jitter, value }
}

/// Appends `rounds` samples to every series, one series' samples per batch entry.
fn fill(head: &MetricsHead, series: &[(Arc<Series>, Shape)], rounds: i64) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut points = Vec::with_capacity(rounds as usize);
    for group in series.chunks(1000) {
        let mut batch = MetricBatch::with_capacity(group.len(), group.len() * rounds as usize);
        for (s, shape) in group {
            points.clear();
            points.extend((0..rounds).map(|round| sample(*shape, round, &mut rng)));
            batch.push(s.clone(), &points, &[], &[], None, 0);
        }
        head.append(&batch);
    }
}

fn memory_report() {
    const SERIES: usize = 1_000_000;
    let started = Instant::now();
    let before = LIVE.load(Ordering::Relaxed);
    let head = MetricsHead::new();
    // Series are generated a node at a time so the label sets of the batches (owned by the
    // relabel cache in the daemon, not by the head) are freed before measuring.
    let mut created = 0;
    let mut node = 0;
    let mut buffer = Vec::new();
    while created < SERIES {
        buffer.clear();
        while buffer.len() < 20_000 {
            node_series(node, &mut buffer);
            node += 1;
        }
        buffer.truncate(SERIES - created);
        fill(&head, &buffer, 120);
        created += buffer.len();
    }
    drop(buffer);
    let after = LIVE.load(Ordering::Relaxed);
    let stats = head.stats();
    let per_series = (after - before) as f64 / stats.series as f64;
    eprintln!(
        "head memory: {per_series:.0} bytes/series at 1M series (120 samples each); \
         {} series, {} samples, {} chunks, {:.1} MiB live, built in {:.1?}",
        stats.series,
        stats.samples,
        stats.chunks,
        (after - before) as f64 / (1 << 20) as f64,
        started.elapsed(),
    );
}

fn append(c: &mut Criterion) {
    let series = cluster(100_000);
    let mut group = c.benchmark_group("head_append");
    // Remote-write sized batches: 2,000 series with one sample each, cycling over 100k series
    // so each series gets a new sample every 50 batches.
    const BATCH: usize = 2_000;
    group.throughput(Throughput::Elements(BATCH as u64));
    let head = MetricsHead::new();
    let mut rng = Rng(7);
    let mut next = 0usize;
    group.bench_function("2000_samples_of_100k_series", |b| {
        b.iter_batched(
            || {
                let round = (next / (series.len() / BATCH)) as i64;
                let start = next % (series.len() / BATCH) * BATCH;
                next += 1;
                let mut batch = MetricBatch::with_capacity(BATCH, BATCH);
                for (s, shape) in &series[start..start + BATCH] {
                    batch.push(s.clone(), &[sample(*shape, round, &mut rng)], &[], &[], None, 0);
                }
                batch
            },
            |batch| head.append(&batch),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn select(c: &mut Criterion) {
    let series = cluster(100_000);
    let head = MetricsHead::new();
    fill(&head, &series, 120);
    let end = START_MS + 119 * 30_000;
    let m = |name: &str, op: MatchOp, value: &str| LabelMatcher::new(name, op, value).unwrap();
    let cases = [
        (
            "eq_name_namespace",
            vec![
                m("__name__", MatchOp::Equal, "container_cpu_usage_seconds_total"),
                m("namespace", MatchOp::Equal, "team-3"),
            ],
        ),
        (
            "regex_name_mode",
            vec![
                m("__name__", MatchOp::RegexMatch, "node_cpu_.*"),
                m("mode", MatchOp::RegexMatch, "user|system"),
            ],
        ),
        (
            "neq_mode",
            vec![
                m("__name__", MatchOp::Equal, "node_cpu_seconds_total"),
                m("mode", MatchOp::NotEqual, "idle"),
            ],
        ),
    ];
    let mut group = c.benchmark_group("head_select_100k_series_last_10m");
    for (name, matchers) in &cases {
        let found = head.select(matchers, end - 600_000, end).len();
        group.throughput(Throughput::Elements(found as u64));
        group.bench_function(format!("{name}_{found}_series"), |b| {
            b.iter(|| head.select(matchers, end - 600_000, end));
        });
    }
    group.finish();
}

criterion_group!(benches, append, select);

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it
    // (a quick smoke run of each benchmark), where building 1 M series unoptimised would take
    // minutes.
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    if benchmarking && std::env::var_os("STRATA_SKIP_MEMORY").is_none() {
        memory_report();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
