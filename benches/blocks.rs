//! The block codec on realistic data: encode (and decode) throughput per signal, and a printed
//! storage-efficiency report (`docs/storage-format.md` states the goals: ≤ 1.5 bytes per raw
//! sample, log blocks ≤ 8 % of the raw line bytes).
//!
//! * metrics: node_exporter-like, 10 targets × 100 series (CPU seconds in USER_HZ ticks,
//!   network/disk byte counters with bursty increments, page-aligned memory and filesystem
//!   gauges, load averages, Go GC quantiles, constant info/size series), 15 s scrapes with a few
//!   ms of jitter, 240 samples per series (1 h);
//! * logs: 100,000 lines over 24 pod streams, JSON and logfmt access/application lines with
//!   RFC 3339 timestamps, levels, random request ids, ids in paths, durations;
//! * traces: 20,000 OTel spans (HTTP server/client, DB, internal) with ~10 attributes each, the
//!   OTLP `Span`, `Resource` and `InstrumentationScope` encodings as an SDK sends them.
//!
//! `cargo bench --bench blocks` prints the report before the timings.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, status, Span, Status};
use prost::Message;
use strata::model::labels::Labels;
use strata::model::logs::LogEntry;
use strata::model::metrics::Sample;
use strata::storage::block::{
    decode_logs, decode_metrics, decode_traces, encode_logs, encode_metrics, encode_traces,
};
use strata::storage::{LogStreamData, SeriesSamples, SpanRecord};

/// 2024-03-01T12:00:00Z.
const START_MS: i64 = 1_709_294_400_000;

/// splitmix64: deterministic data, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

/// How one series' value evolves per scrape.
#[derive(Clone, Copy)]
enum Shape {
    /// Counter in 1/100 s ticks (`node_cpu_seconds_total`): +rate*15 s ± noise, 2 decimals.
    CpuSeconds { rate: f64 },
    /// Integer byte/packet counter with bursty increments.
    Bytes { mean: f64 },
    /// Page-aligned gauge drifting slowly (`node_memory_*_bytes`, filesystem avail).
    Pages { pages: f64 },
    /// Two-decimal gauge (load averages).
    Load,
    /// Float gauge with full-precision noise (GC pause quantiles, temperatures).
    Noise { level: f64 },
    /// Never changes (`node_memory_MemTotal_bytes`, `node_uname_info`, `up`).
    Constant(f64),
}

fn node_series() -> Vec<(Labels, Shape)> {
    let mut out = Vec::new();
    let modes = ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"];
    for target in 0..10 {
        let instance = format!("10.0.{}.{}:9100", target / 4, 10 + target);
        let base = |name: &str, extra: &[(&str, String)]| {
            let mut pairs = vec![
                ("__name__".to_owned(), name.to_owned()),
                ("instance".to_owned(), instance.clone()),
                ("job".to_owned(), "node-exporter".to_owned()),
            ];
            pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
            Labels::from_pairs(pairs)
        };
        for cpu in 0..5 {
            for mode in modes {
                let rate = match mode {
                    "idle" => 0.8,
                    "user" => 0.12,
                    "system" => 0.05,
                    _ => 0.004,
                };
                let labels = base(
                    "node_cpu_seconds_total",
                    &[("cpu", cpu.to_string()), ("mode", mode.into())],
                );
                out.push((labels, Shape::CpuSeconds { rate }));
            }
        }
        for device in ["eth0", "lo", "cni0", "veth1a2b"] {
            for name in [
                "node_network_receive_bytes_total",
                "node_network_transmit_bytes_total",
                "node_network_receive_packets_total",
                "node_network_transmit_packets_total",
            ] {
                let mean = if name.contains("bytes") { 40_000.0 } else { 60.0 };
                out.push((base(name, &[("device", device.into())]), Shape::Bytes { mean }));
            }
        }
        for device in ["nvme0n1", "nvme1n1"] {
            for name in [
                "node_disk_read_bytes_total",
                "node_disk_written_bytes_total",
                "node_disk_reads_completed_total",
                "node_disk_writes_completed_total",
            ] {
                out.push((
                    base(name, &[("device", device.into())]),
                    Shape::Bytes { mean: 9_000.0 },
                ));
            }
            out.push((
                base("node_disk_io_time_seconds_total", &[("device", device.into())]),
                Shape::CpuSeconds { rate: 0.02 },
            ));
        }
        for (name, pages) in [
            ("node_memory_MemFree_bytes", 400_000.0),
            ("node_memory_MemAvailable_bytes", 1_500_000.0),
            ("node_memory_Cached_bytes", 900_000.0),
            ("node_memory_Buffers_bytes", 30_000.0),
            ("node_memory_Active_bytes", 1_100_000.0),
            ("node_memory_Inactive_bytes", 700_000.0),
            ("node_memory_Dirty_bytes", 200.0),
        ] {
            out.push((base(name, &[]), Shape::Pages { pages }));
        }
        for mount in ["/", "/var/lib/kubelet", "/boot"] {
            let fs = [
                ("device", "/dev/nvme0n1p1".to_owned()),
                ("fstype", "ext4".into()),
                ("mountpoint", mount.into()),
            ];
            out.push((
                base("node_filesystem_avail_bytes", &fs),
                Shape::Pages { pages: 5_000_000.0 },
            ));
            out.push((
                base("node_filesystem_free_bytes", &fs),
                Shape::Pages { pages: 5_500_000.0 },
            ));
            out.push((base("node_filesystem_size_bytes", &fs), Shape::Constant(107_374_182_400.0)));
            out.push((
                base("node_filesystem_files_free", &fs),
                Shape::Pages { pages: 6_000_000.0 / 4096.0 },
            ));
        }
        for name in ["node_load1", "node_load5", "node_load15"] {
            out.push((base(name, &[]), Shape::Load));
        }
        for quantile in ["0", "0.25", "0.5", "0.75", "1"] {
            out.push((
                base("go_gc_duration_seconds", &[("quantile", quantile.into())]),
                Shape::Noise { level: 0.0004 },
            ));
        }
        out.push((
            base("node_hwmon_temp_celsius", &[("chip", "platform_coretemp_0".into())]),
            Shape::Noise { level: 48.0 },
        ));
        out.push((base("node_memory_MemTotal_bytes", &[]), Shape::Constant(16_671_916_032.0)));
        out.push((base("up", &[]), Shape::Constant(1.0)));
        out.push((
            base(
                "node_uname_info",
                &[("machine", "x86_64".into()), ("release", "6.1.0-18-amd64".into())],
            ),
            Shape::Constant(1.0),
        ));
        out.push((base("node_boot_time_seconds", &[]), Shape::Constant(1_709_100_000.0)));
        out.push((base("node_time_seconds", &[]), Shape::Noise { level: 0.0 }));
    }
    out
}

fn metrics_data(samples_per_series: usize) -> Vec<SeriesSamples> {
    let mut rng = Rng(7);
    let series = node_series();
    // One scrape timestamp per target and scrape, shared by its series (as Prometheus does).
    let targets = 10;
    let per_target = series.len() / targets;
    let scrape_times: Vec<Vec<i64>> = (0..targets)
        .map(|_| {
            let offset = rng.below(15_000) as i64;
            (0..samples_per_series)
                .map(|i| START_MS + offset + i as i64 * 15_000 + rng.below(7) as i64 - 3)
                .collect()
        })
        .collect();
    series
        .into_iter()
        .enumerate()
        .map(|(index, (labels, shape))| {
            let times = &scrape_times[(index / per_target).min(targets - 1)];
            let mut value = match shape {
                Shape::CpuSeconds { rate } => (rate * 400_000.0 * 100.0).round() / 100.0,
                Shape::Bytes { mean } => (mean * 1e5).round(),
                Shape::Pages { pages } => pages.round() * 4096.0,
                Shape::Load => 1.5,
                Shape::Noise { level } => level,
                Shape::Constant(v) => v,
            };
            let samples = times
                .iter()
                .map(|&t| {
                    value = match shape {
                        Shape::CpuSeconds { rate } => {
                            let ticks = (rate * 1500.0 * (0.8 + 0.4 * rng.unit())).round();
                            ((value * 100.0).round() + ticks) / 100.0
                        }
                        Shape::Bytes { mean } => {
                            let burst = if rng.below(10) == 0 { 20.0 } else { 1.0 };
                            value + (mean * burst * rng.unit()).round()
                        }
                        Shape::Pages { .. } => {
                            if rng.below(3) == 0 {
                                value + (rng.below(200) as f64 - 100.0) * 4096.0
                            } else {
                                value
                            }
                        }
                        Shape::Load => ((value * 0.9 + 0.3 * rng.unit()) * 100.0).round() / 100.0,
                        Shape::Noise { level: 0.0 } => t as f64 / 1000.0 + rng.unit() * 1e-3,
                        Shape::Noise { level } => level * (0.9 + 0.2 * rng.unit()),
                        Shape::Constant(v) => v,
                    };
                    Sample { timestamp_ms: t, value }
                })
                .collect();
            SeriesSamples { labels, samples, histograms: Vec::new() }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------------

const PATHS: [&str; 8] = [
    "/api/v1/orders/{}",
    "/api/v1/users/{}/profile",
    "/api/v1/cart",
    "/api/v1/products/{}",
    "/healthz",
    "/api/v1/search",
    "/api/v1/checkout/{}",
    "/metrics",
];

fn rfc3339_ns(ns: i64) -> String {
    let secs = ns / 1_000_000_000;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    format!("2024-03-01T{h:02}:{m:02}:{s:02}.{:06}Z", (ns % 1_000_000_000) / 1000)
}

fn log_line(rng: &mut Rng, stream: usize, ns: i64) -> String {
    let path = PATHS[rng.below(PATHS.len() as u64) as usize]
        .replace("{}", &rng.below(100_000).to_string());
    let method = ["GET", "GET", "GET", "POST", "PUT", "DELETE"][rng.below(6) as usize];
    let status = [200, 200, 200, 200, 200, 201, 204, 304, 400, 404, 500][rng.below(11) as usize];
    let level = if status >= 500 {
        "error"
    } else if status >= 400 {
        "warn"
    } else {
        "info"
    };
    let duration = rng.below(250_000) as f64 / 1000.0 + 0.2;
    let request_id = format!("{:016x}", rng.next());
    let bytes = 200 + rng.below(20_000);
    match stream % 3 {
        0 => format!(
            r#"{{"ts":"{}","level":"{level}","logger":"http.access","msg":"request completed","method":"{method}","path":"{path}","status":{status},"duration_ms":{duration:.3},"bytes":{bytes},"request_id":"{request_id}","remote_addr":"10.42.{}.{}"}}"#,
            rfc3339_ns(ns),
            rng.below(8),
            rng.below(250)
        ),
        1 => format!(
            "ts={} level={level} caller=server/handler.go:{} msg=\"handled request\" method={method} path={path} status={status} took={duration:.3}ms request_id={request_id} user_id=u{}",
            rfc3339_ns(ns),
            80 + rng.below(40),
            rng.below(5_000)
        ),
        _ => {
            if rng.below(4) == 0 {
                format!(
                    r#"{{"time":"{}","severity":"{}","message":"cache refresh finished","component":"catalog-sync","entries":{},"elapsed_ms":{duration:.1},"trace_id":"{request_id}"}}"#,
                    rfc3339_ns(ns),
                    level.to_uppercase(),
                    rng.below(100_000)
                )
            } else {
                format!(
                    r#"{{"time":"{}","severity":"{}","message":"order state changed","order_id":"ord_{}","from":"pending","to":"paid","amount_cents":{},"currency":"EUR","request_id":"{request_id}"}}"#,
                    rfc3339_ns(ns),
                    level.to_uppercase(),
                    rng.below(1_000_000),
                    rng.below(50_000)
                )
            }
        }
    }
}

fn logs_data(lines: usize) -> Vec<LogStreamData> {
    let mut rng = Rng(11);
    let apps = ["checkout", "catalog", "frontend", "payments", "search", "users"];
    let streams = 24;
    let mut out: Vec<LogStreamData> = (0..streams)
        .map(|s| LogStreamData {
            labels: Labels::from_pairs([
                ("app", apps[s % apps.len()].to_owned()),
                ("container", apps[s % apps.len()].to_owned()),
                ("namespace", "shop".to_owned()),
                ("pod", format!("{}-7d9f8c6b5-{:05x}", apps[s % apps.len()], s * 7919 % 0xfffff)),
                ("stream", "stdout".to_owned()),
            ]),
            entries: Vec::new(),
        })
        .collect();
    let mut ns = START_MS * 1_000_000;
    for _ in 0..lines {
        ns += rng.below(2_000_000) as i64 * 10;
        let stream = rng.below(streams as u64) as usize;
        let line = log_line(&mut rng, stream, ns);
        out[stream].entries.push(LogEntry {
            timestamp_ns: ns,
            line: Bytes::from(line),
            structured_metadata: Vec::new(),
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Traces
// ---------------------------------------------------------------------------------------------

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn text(s: impl Into<String>) -> any_value::Value {
    any_value::Value::StringValue(s.into())
}

fn traces_data(spans: usize) -> Vec<SpanRecord> {
    let mut rng = Rng(13);
    let services = ["frontend", "checkout", "payments", "catalog", "users"];
    let resources: Vec<Bytes> = services
        .iter()
        .map(|service| {
            Resource {
                attributes: vec![
                    kv("service.name", text(*service)),
                    kv("service.version", text("1.14.2")),
                    kv("k8s.namespace.name", text("shop")),
                    kv("k8s.pod.name", text(format!("{service}-7d9f8c6b5-x2x9q"))),
                    kv("telemetry.sdk.language", text("go")),
                    kv("telemetry.sdk.name", text("opentelemetry")),
                    kv("telemetry.sdk.version", text("1.24.0")),
                ],
                ..Default::default()
            }
            .encode_to_vec()
            .into()
        })
        .collect();
    let scope: Bytes = InstrumentationScope {
        name: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp".into(),
        version: "0.49.0".into(),
        ..Default::default()
    }
    .encode_to_vec()
    .into();
    let mut out = Vec::with_capacity(spans);
    let mut start = START_MS as u64 * 1_000_000;
    while out.len() < spans {
        // One trace: a root and 3..12 children.
        let trace_id: [u8; 16] = ((rng.next() as u128) << 64 | rng.next() as u128).to_be_bytes();
        let root_id = rng.next().to_be_bytes();
        let children = 3 + rng.below(10) as usize;
        start += rng.below(50_000_000);
        for index in 0..=children {
            let service = if index == 0 { 0 } else { 1 + rng.below(4) as usize };
            let span_id = if index == 0 { root_id } else { rng.next().to_be_bytes() };
            let span_start = start + index as u64 * rng.below(2_000_000);
            let span_end = span_start + 100_000 + rng.below(80_000_000);
            let (name, kind, attributes) = match index % 3 {
                0 => (
                    "GET /api/v1/orders/{id}".to_owned(),
                    span::SpanKind::Server,
                    vec![
                        kv("http.request.method", text("GET")),
                        kv("http.route", text("/api/v1/orders/{id}")),
                        kv("url.path", text(format!("/api/v1/orders/{}", rng.below(100_000)))),
                        kv("http.response.status_code", any_value::Value::IntValue(200)),
                        kv("server.address", text("shop.example.com")),
                        kv(
                            "client.address",
                            text(format!("10.42.{}.{}", rng.below(8), rng.below(250))),
                        ),
                        kv("user_agent.original", text("Mozilla/5.0 (X11; Linux x86_64)")),
                        kv("network.protocol.version", text("1.1")),
                        kv(
                            "http.response.body.size",
                            any_value::Value::IntValue(rng.below(20_000) as i64),
                        ),
                        kv("enduser.id", text(format!("u{}", rng.below(5_000)))),
                    ],
                ),
                1 => (
                    "SELECT orders".to_owned(),
                    span::SpanKind::Client,
                    vec![
                        kv("db.system", text("postgresql")),
                        kv("db.name", text("shop")),
                        kv("db.operation", text("SELECT")),
                        kv("db.sql.table", text("orders")),
                        kv(
                            "db.statement",
                            text("SELECT id, state, amount FROM orders WHERE id = $1"),
                        ),
                        kv("server.address", text("postgres.shop.svc")),
                        kv("server.port", any_value::Value::IntValue(5432)),
                        kv("db.rows_affected", any_value::Value::IntValue(rng.below(3) as i64)),
                        kv("thread.id", any_value::Value::IntValue(rng.below(64) as i64)),
                        kv("code.function", text("orders.(*Repo).Get")),
                    ],
                ),
                _ => (
                    "payments.Authorize".to_owned(),
                    span::SpanKind::Internal,
                    vec![
                        kv("rpc.system", text("grpc")),
                        kv("rpc.service", text("payments.v1.Payments")),
                        kv("rpc.method", text("Authorize")),
                        kv("rpc.grpc.status_code", any_value::Value::IntValue(0)),
                        kv("payment.provider", text("stripe")),
                        kv(
                            "payment.amount_cents",
                            any_value::Value::IntValue(rng.below(50_000) as i64),
                        ),
                        kv("payment.currency", text("EUR")),
                        kv("retry.count", any_value::Value::IntValue(0)),
                        kv("code.namespace", text("payments")),
                        kv("code.lineno", any_value::Value::IntValue(120 + rng.below(20) as i64)),
                    ],
                ),
            };
            let parent = if index == 0 { Vec::new() } else { root_id.to_vec() };
            let status_code = if rng.below(50) == 0 {
                status::StatusCode::Error
            } else {
                status::StatusCode::Unset
            };
            let body = Span {
                trace_id: trace_id.to_vec(),
                span_id: span_id.to_vec(),
                parent_span_id: parent.clone(),
                name: name.clone(),
                kind: kind as i32,
                start_time_unix_nano: span_start,
                end_time_unix_nano: span_end,
                attributes,
                status: Some(Status { code: status_code as i32, ..Default::default() }),
                ..Default::default()
            };
            out.push(SpanRecord {
                trace_id,
                span_id,
                parent_span_id: parent,
                name,
                kind: kind as i32,
                start_unix_nano: span_start,
                end_unix_nano: span_end,
                status_code: status_code as i32,
                service_name: services[service].into(),
                resource: resources[service].clone(),
                scope: scope.clone(),
                span: body.encode_to_vec().into(),
            });
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Report and timings
// ---------------------------------------------------------------------------------------------

/// Stored bytes per column (summed over row groups), largest first.
fn columns(data: &Bytes) -> String {
    let description = strata::storage::block::inspect::describe(data).expect("describe");
    let mut sizes: Vec<(String, i64)> = Vec::new();
    for row_group in &description.row_groups {
        for column in &row_group.columns {
            match sizes.iter_mut().find(|(path, _)| *path == column.path) {
                Some((_, size)) => *size += column.compressed_bytes,
                None => sizes.push((column.path.clone(), column.compressed_bytes)),
            }
        }
    }
    sizes.sort_by_key(|(_, size)| -size);
    let parts: Vec<String> = sizes.iter().map(|(path, size)| format!("{path} {size}")).collect();
    format!("{} row groups; {}", description.row_groups.len(), parts.join(", "))
}

fn report(metrics: &[SeriesSamples], logs: &[LogStreamData], spans: &[SpanRecord]) {
    let samples: usize = metrics.iter().map(|s| s.samples.len()).sum();
    let block = encode_metrics(metrics).expect("encode metrics");
    eprintln!(
        "[blocks report] metrics: {} series, {samples} samples, {} bytes -> {:.3} bytes/sample (goal <= 1.5)",
        metrics.len(),
        block.data.len(),
        block.data.len() as f64 / samples as f64
    );
    eprintln!("[blocks report]   {}", columns(&block.data));
    let raw: usize = logs.iter().flat_map(|s| &s.entries).map(|e| e.line.len()).sum();
    let lines: usize = logs.iter().map(|s| s.entries.len()).sum();
    let block = encode_logs(logs).expect("encode logs");
    eprintln!(
        "[blocks report] logs: {lines} lines, {raw} raw line bytes ({:.0} per line), {} stored bytes -> {:.2} % (goal <= 8 %)",
        raw as f64 / lines as f64,
        block.data.len(),
        100.0 * block.data.len() as f64 / raw as f64
    );
    eprintln!("[blocks report]   {}", columns(&block.data));
    let body: usize = spans.iter().map(|s| s.span.len()).sum();
    let block = encode_traces(spans).expect("encode traces");
    eprintln!(
        "[blocks report] traces: {} spans, {:.0} OTLP span bytes per span, {} stored bytes -> {:.1} bytes/span",
        spans.len(),
        body as f64 / spans.len() as f64,
        block.data.len(),
        block.data.len() as f64 / spans.len() as f64
    );
    eprintln!("[blocks report]   {}", columns(&block.data));
}

fn benches(c: &mut Criterion) {
    let metrics = metrics_data(240);
    let logs = logs_data(100_000);
    let spans = traces_data(20_000);
    report(&metrics, &logs, &spans);

    let samples: usize = metrics.iter().map(|s| s.samples.len()).sum();
    let metrics_block = encode_metrics(&metrics).expect("encode metrics").data;
    let mut group = c.benchmark_group("metrics");
    group.throughput(Throughput::Elements(samples as u64));
    group.bench_function("encode", |b| b.iter(|| encode_metrics(&metrics).expect("encode")));
    group.bench_function("decode", |b| {
        b.iter(|| decode_metrics(metrics_block.clone()).expect("decode"))
    });
    group.finish();

    let lines: usize = logs.iter().map(|s| s.entries.len()).sum();
    let logs_block = encode_logs(&logs).expect("encode logs").data;
    let mut group = c.benchmark_group("logs");
    group.throughput(Throughput::Elements(lines as u64));
    group.bench_function("encode", |b| b.iter(|| encode_logs(&logs).expect("encode")));
    group.bench_function("decode", |b| b.iter(|| decode_logs(logs_block.clone()).expect("decode")));
    group.finish();

    let traces_block = encode_traces(&spans).expect("encode traces").data;
    let mut group = c.benchmark_group("traces");
    group.throughput(Throughput::Elements(spans.len() as u64));
    group.bench_function("encode", |b| b.iter(|| encode_traces(&spans).expect("encode")));
    group.bench_function("decode", |b| {
        b.iter(|| decode_traces(traces_block.clone()).expect("decode"))
    });
    group.finish();
}

criterion_group!(name = blocks; config = Criterion::default().sample_size(10); targets = benches);
criterion_main!(blocks);
