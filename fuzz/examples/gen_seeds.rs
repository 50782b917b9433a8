//! Writes the seed corpora under `fuzz/seeds/<target>/` (run from anywhere):
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds
//! ```
//!
//! Seeds are small valid inputs: remote-write bodies made by Strata's own encoders, the example
//! configs, relabel inputs, and Zipkin v2 JSON (plain, gzip, and a gzip bomb). They are
//! committed; the corpora fuzzing grows are not.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata::model::{
    Exemplar, Histogram, Labels, MetricBatch, MetricMetadata, MetricType, Sample, Series,
    SeriesMetadata,
};
use strata::sinks::loki::encode::encode_push_request;
use strata::sinks::remote_write::encode::{encode_v1, encode_v2, EncodeOptions};

const OPTIONS: EncodeOptions = EncodeOptions { send_exemplars: true, send_native_histograms: true };

fn series(pairs: &[(&str, &str)]) -> Arc<Series> {
    Arc::new(Series::new(Labels::from_pairs(pairs.iter().copied())))
}

fn sample(timestamp_ms: i64, value: f64) -> Sample {
    Sample { timestamp_ms, value }
}

fn batches() -> Vec<(&'static str, MetricBatch)> {
    let mut simple = MetricBatch::default();
    simple.push(
        series(&[("__name__", "up"), ("job", "node"), ("instance", "10.0.0.1:9100")]),
        &[sample(1_700_000_000_000, 1.0)],
        &[],
        &[],
        None,
        0,
    );

    let mut rich = MetricBatch::default();
    rich.metadata.push(MetricMetadata {
        family: "http_requests".into(),
        metric_type: MetricType::Counter,
        help: "Requests served.".into(),
        unit: String::new(),
    });
    rich.push(
        series(&[("__name__", "http_requests_total"), ("job", "api"), ("code", "200")]),
        &[sample(1_700_000_000_000, 10.0), sample(1_700_000_015_000, 12.5)],
        &[],
        &[Exemplar {
            labels: Labels::from_pairs([("trace_id", "abc123")]),
            value: 1.0,
            timestamp_ms: 1_700_000_000_001,
        }],
        Some(Arc::new(SeriesMetadata {
            metric_type: MetricType::Counter,
            help: "Requests served.".into(),
            unit: "requests".into(),
        })),
        1_699_999_000_000,
    );
    rich.push(
        series(&[("__name__", "go_gc_duration_seconds"), ("job", "api"), ("tmp_id", "7")]),
        &[sample(1_700_000_000_000, f64::from_bits(0x7ff0_0000_0000_0002))], // stale marker
        &[],
        &[],
        None,
        0,
    );
    rich.push(
        series(&[("__name__", "rpc_latency_seconds"), ("job", "api")]),
        &[],
        &[Histogram {
            count: Some(strata::model::metrics::HistogramCount::Int(5)),
            sum: 1.5,
            schema: 3,
            zero_threshold: 1e-128,
            zero_count: Some(strata::model::metrics::HistogramZeroCount::Int(1)),
            positive_spans: vec![strata::model::metrics::BucketSpan { offset: 0, length: 2 }],
            positive_deltas: vec![2, 0],
            timestamp: 1_700_000_000_000,
            ..Histogram::default()
        }],
        &[],
        None,
        0,
    );
    rich.push(
        series(&[("__name__", "node_info"), ("ünïcode", "välue"), ("empty_next", "x")]),
        &[sample(0, 0.0)],
        &[],
        &[],
        None,
        0,
    );
    vec![("simple", simple), ("rich", rich)]
}

/// loki_push: a selector byte (see the target: bits 0-2 content type, 3-4 encoding, 5 wrap)
/// followed by an unwrapped protobuf or JSON push.
fn loki_seeds(dir: &Path) {
    use strata::model::{Label, LogEntry, Stream};
    let streams = [
        Stream::new(Labels::from_pairs([("app", "api"), ("k8s_pod", "api-0"), ("filename", "/a")])),
        Stream::new(Labels::from_pairs([("app", "web"), ("level", "debug")])),
        Stream::new(Labels::from_pairs([("app", "quo\"te\n")])),
    ];
    let entry = |timestamp_ns: i64, line: &str, metadata: &[(&str, &str)]| LogEntry {
        timestamp_ns,
        line: bytes::Bytes::copy_from_slice(line.as_bytes()),
        structured_metadata: metadata.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
    };
    let now = 1_700_000_000_000_000_000;
    let entries = [
        vec![entry(now, "GET /orders 200", &[("trace_id", "abc")]), entry(now + 1, "", &[])],
        vec![entry(now - 1, "debug line", &[])],
        vec![entry(0, "far too old", &[]), entry(now, &"x".repeat(1500), &[])],
    ];
    let mut body = Vec::new();
    encode_push_request(streams.iter().zip(entries.iter().map(Vec::as_slice)), &mut body);
    for (name, selector) in [("proto", 0x21u8), ("proto_snappy_header", 0x29), ("proto_gzip", 0x31)] {
        let mut input = vec![selector];
        input.extend_from_slice(&body);
        write(dir, name, &input);
    }
    let json = format!(
        r#"{{"streams":[{{"stream":{{"app":"api","k8s_pod":"api-0"}},"values":[["{now}","GET /"],["{now}","esc\"aped\n",{{"trace_id":"abc"}}]]}},{{"stream":{{"bad-name":"x"}},"values":[["1","old"]]}}]}}"#
    );
    for (name, selector) in [("json", 0x22u8), ("json_gzip", 0x33), ("json_deflate", 0x3a)] {
        let mut input = vec![selector];
        input.extend_from_slice(json.as_bytes());
        write(dir, name, &input);
    }
}

/// Zipkin v2 bodies covering every mapping rule; the first is a Dapr CLIENT/SERVER pair.
const ZIPKIN_SEEDS: &[(&str, &str)] = &[
    (
        "dapr",
        r#"[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","parentId":"00f067aa0ba902b7","id":"a2fb4a1d1a96d312","kind":"CLIENT","name":"invoke","timestamp":1700000000000000,"duration":15300,"localEndpoint":{"serviceName":"checkout","ipv4":"10.1.2.3"},"remoteEndpoint":{"serviceName":"orders","ipv4":"10.1.2.4","port":50002},"annotations":[{"timestamp":1700000000001000,"value":"sent"}],"tags":{"http.method":"POST","otel.library.name":"dapr","service.name":"checkout"}},{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","parentId":"00f067aa0ba902b7","id":"a2fb4a1d1a96d312","kind":"SERVER","shared":true,"name":"/orders","timestamp":1700000000002000,"duration":12000,"localEndpoint":{"serviceName":"orders","ipv6":"2001:db8::1","port":50002},"annotations":[{"timestamp":1700000000013000,"value":"exception|{\"type\":\"io\",\"n\":2}|0"}],"tags":{"error":"true","otel.status_code":"STATUS_CODE_ERROR","otel.status_description":"boom","w3c.tracestate":"k=v"}}]"#,
    ),
    (
        "links_and_kinds",
        r#"[{"traceId":"a3ce929d0e0e4736","id":"0123456789abcdef","debug":true,"tags":{"span.kind":"internal","otel.scope.name":"s","otel.scope.version":"1","otlp.link.0":"0af7651916cd43dd8448eb211c80319c|b7ad6b7169203331|k=v|{\"a\":1}|2","otlp.link.1":"a|b","host.name":"n1","otlp.service.name.source":"app"}},null,{"traceId":"A3CE929D0E0E4736","id":"0123456789ABCDEF","parentId":"","kind":"PRODUCER","duration":5,"tags":{"k":null,"k":"v"}}]"#,
    ),
    (
        "invalid_id",
        r#"[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","id":"a2fb4a1d1a96d312"},{"traceId":"zz","id":"a2fb4a1d1a96d312"}]"#,
    ),
];

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("create seed dir");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let seeds = root.join("seeds");
    let mut body = Vec::new();
    for (name, batch) in batches() {
        let batch = std::slice::from_ref(&batch);
        for (version, selector) in [("v1", 0u8), ("v2", 1u8)] {
            if version == "v1" {
                encode_v1(batch, OPTIONS, &mut body);
            } else {
                encode_v2(batch, OPTIONS, &mut body);
            }
            // remote_write_decode: selector byte + uncompressed body.
            let mut input = vec![selector];
            input.extend_from_slice(&body);
            write(&seeds.join("remote_write_decode"), &format!("{name}_{version}"), &input);
            // remote_write_receive: the uncompressed body (the target compresses it itself)
            // and the snappy block as sent on the wire.
            let dir = seeds.join("remote_write_receive");
            write(&dir, &format!("{name}_{version}"), &body);
            let compressed = snap::raw::Encoder::new().compress_vec(&body).expect("snappy");
            write(&dir, &format!("{name}_{version}.snappy"), &compressed);
        }
    }
    write(&seeds.join("remote_write_receive"), "snappy_bomb", &[0x80, 0x80, 0x80, 0x80, 0x08]);

    loki_seeds(&seeds.join("loki_push"));

    let configs = root.join("../config");
    for entry in std::fs::read_dir(&configs).expect("read config/") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            let text = std::fs::read(&path).expect("read config");
            let name = path.file_name().expect("file name").to_string_lossy().into_owned();
            write(&seeds.join("config_parse"), &name, &text);
        }
    }
    write(
        &seeds.join("config_parse"),
        "minimal.yml",
        b"role: agent\ningest:\n  remote_write:\n    max_body_size: 1MiB\n    label_name_validation: utf8\n    metric_relabel_configs:\n      - {source_labels: [a, b], separator: '', regex: '(.*)', target_label: '${1}', action: Replace}\n      - {action: hashmod, source_labels: [job], target_label: shard, modulus: 4}\nforward:\n  remote_write:\n    - url: http://127.0.0.1:9090/api/v1/write\n      protocol_version: 2\n      remote_timeout: 1m30s\n      headers: {X-A: \"${NODE_NAME}\"}\n",
    );

    // zipkin_decode: Zipkin v2 JSON bodies (the target also gzips each input itself), and gzip
    // bodies: one valid, one inflating far past the target's 1 MiB cap.
    let zipkin = seeds.join("zipkin_decode");
    for (name, json) in ZIPKIN_SEEDS {
        write(&zipkin, &format!("{name}.json"), json.as_bytes());
    }
    write(&zipkin, "dapr.json.gz", &gzip(ZIPKIN_SEEDS[0].1.as_bytes()));
    write(&zipkin, "bomb.gz", &gzip(&vec![b' '; 8 << 20]));

    // relabel: the generator consumes bytes as bools / indices; a few fixed byte strings.
    let relabel = seeds.join("relabel");
    write(&relabel, "zeros", &[0u8; 64]);
    write(&relabel, "ramp", &(0u8..=255).collect::<Vec<_>>());
    write(&relabel, "ones", &[0xffu8; 64]);
    write(&relabel, "mixed", &(0u8..128).map(|i| i.wrapping_mul(37) ^ 0x5a).collect::<Vec<_>>());
    otlp_seeds(&seeds.join("otlp_decode"));
    println!("seeds written to {}", seeds.display());
}

/// `otlp_decode` seeds: the OTLP JSON examples (`src/ingest/otlp/testdata/`), their protobuf
/// encodings, and a gzipped protobuf trace body, each behind its selector byte.
fn otlp_seeds(dir: &Path) {
    use std::io::Write;

    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    let seed = |name: &str, selector: u8, body: &[u8]| {
        let mut input = vec![selector];
        input.extend_from_slice(body);
        write(dir, name, &input);
    };
    let trace = include_str!("../../src/ingest/otlp/testdata/trace.json");
    let logs = include_str!("../../src/ingest/otlp/testdata/logs.json");
    let metrics = include_str!("../../src/ingest/otlp/testdata/metrics.json");
    seed("trace_json", 4, trace.as_bytes());
    seed("metrics_json", 5, metrics.as_bytes());
    seed("logs_json", 6, logs.as_bytes());
    let trace: ExportTraceServiceRequest = serde_json::from_str(trace).expect("trace.json");
    let metrics: ExportMetricsServiceRequest = serde_json::from_str(metrics).expect("metrics.json");
    let logs: ExportLogsServiceRequest = serde_json::from_str(logs).expect("logs.json");
    seed("trace_protobuf", 0, &trace.encode_to_vec());
    seed("metrics_protobuf", 1, &metrics.encode_to_vec());
    seed("logs_protobuf", 2, &logs.encode_to_vec());
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(&trace.encode_to_vec()).expect("gzip");
    seed("trace_protobuf_gzip", 8, &gzip.finish().expect("gzip"));
}
