//! Loki push receive throughput on a realistic payload: 100 Kubernetes container streams (the
//! labels Promtail's `kubernetes-pods` job attaches) × 10 entries of ~200-byte lines, what one
//! Promtail/Alloy batch of a busy node looks like. Throughput is reported in lines.
//!
//! * `decode_protobuf`: snappy + wire walk (zero-copy lines).
//! * `receive_protobuf` / `receive_json`: the whole `LokiIngest::receive` (decode, validation,
//!   relabeling with a warm per-stream cache, batch building): the steady state of a receiver.
//! * `encode_protobuf`: the forward sink's side (encode + snappy).

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use strata::config::LokiIngestConfig;
use strata::ingest::loki::decode::{decode_push_request, DecodedPush};
use strata::ingest::loki::LokiIngest;
use strata::ingest::snappy_decompress_capped;
use strata::model::{Labels, LogBatch, LogEntry, Stream, StreamEntries, Tenant};
use strata::sinks::loki::encode::encode_push_request;
use strata::telemetry::Catalog;

const STREAMS: usize = 100;
const ENTRIES: usize = 10;
const NOW_NS: i64 = 1_700_000_000_000_000_000;

/// An nginx access-log or a JSON application line, about 200 bytes either way.
fn line(stream: usize, entry: usize) -> String {
    if entry % 2 == 0 {
        format!(
            "10.42.{}.{} - - [14/Nov/2023:22:13:{:02} +0000] \"GET /api/v1/orders/{}?expand=items HTTP/1.1\" 200 {} \"-\" \"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\" rt=0.0{} urt=0.0{} req_id={:016x}",
            stream % 250,
            entry * 7 % 250,
            entry,
            stream * 1000 + entry,
            512 + entry * 3,
            entry,
            entry,
            (stream * 7919 + entry) * 104_729
        )
    } else {
        format!(
            r#"{{"level":"info","ts":"2023-11-14T22:13:{:02}.123Z","caller":"checkout/service.go:{}","msg":"order processed","status":"ok","order_id":"{:08x}","customer":"cus_{:010}","items":{},"duration_ms":{}}}"#,
            entry,
            100 + stream,
            stream * 7919 + entry,
            stream * 104_729 + entry,
            entry % 5 + 1,
            entry * 13
        )
    }
}

fn batch() -> LogBatch {
    let mut batch = LogBatch::new(Tenant::from("fake"));
    for s in 0..STREAMS {
        let pod = format!("checkout-7d9f8b6c5d-{:05x}", s * 31);
        let labels = Labels::from_pairs([
            ("app", "checkout".to_owned()),
            ("container", if s % 3 == 0 { "istio-proxy" } else { "checkout" }.to_owned()),
            ("filename", format!("/var/log/pods/shop_{pod}_0/checkout/0.log")),
            ("job", "shop/checkout".to_owned()),
            ("namespace", "shop".to_owned()),
            ("node_name", format!("ip-10-0-{}-{}.eu-west-1.compute.internal", s % 16, s % 200)),
            ("pod", pod),
            ("stream", if s % 5 == 0 { "stderr" } else { "stdout" }.to_owned()),
        ]);
        let entries = (0..ENTRIES)
            .map(|e| LogEntry {
                timestamp_ns: NOW_NS - ((ENTRIES - e) as i64) * 1_000_000,
                line: Bytes::from(line(s, e)),
                structured_metadata: Vec::new(),
            })
            .collect();
        batch
            .streams
            .push(StreamEntries { stream: std::sync::Arc::new(Stream::new(labels)), entries });
    }
    batch
}

fn json_body(batch: &LogBatch) -> Vec<u8> {
    let streams: Vec<serde_json::Value> = batch
        .streams
        .iter()
        .map(|s| {
            let labels: serde_json::Map<String, serde_json::Value> =
                s.stream.labels.iter().map(|l| (l.name.clone(), l.value.clone().into())).collect();
            let values: Vec<serde_json::Value> = s
                .entries
                .iter()
                .map(|e| {
                    serde_json::json!([
                        e.timestamp_ns.to_string(),
                        String::from_utf8_lossy(&e.line)
                    ])
                })
                .collect();
            serde_json::json!({ "stream": labels, "values": values })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "streams": streams })).unwrap()
}

fn benches(c: &mut Criterion) {
    let batch = batch();
    let lines = (STREAMS * ENTRIES) as u64;
    let mut raw = Vec::new();
    encode_push_request(batch.streams.iter().map(|s| (&*s.stream, &s.entries[..])), &mut raw);
    let protobuf = Bytes::from(snap::raw::Encoder::new().compress_vec(&raw).unwrap());
    let json = Bytes::from(json_body(&batch));
    eprintln!(
        "payload: {lines} lines, {} bytes of lines, protobuf {} bytes ({} snappy), json {} bytes",
        batch.byte_size(),
        raw.len(),
        protobuf.len(),
        json.len()
    );

    let config: LokiIngestConfig = serde_yaml::from_str(
        r#"
relabel_configs:
  - source_labels: [container]
    regex: istio-proxy
    action: drop
  - regex: filename
    action: labeldrop
  - target_label: cluster
    replacement: eu-west-1
"#,
    )
    .unwrap();
    let ingest = LokiIngest::new(&config, &Catalog::new()).unwrap();
    let tenant = Tenant::from("fake");
    let protobuf_type = Some("application/x-protobuf");
    let json_type = Some("application/json");
    // Warm the stream cache and check the payload is accepted as expected.
    for (content_type, body) in [(protobuf_type, &protobuf), (json_type, &json)] {
        let received = ingest.receive(&tenant, content_type, None, body.clone(), NOW_NS).unwrap();
        assert_eq!(received.rejection_message(), None);
        assert_eq!(received.batch.entry_count(), 660, "istio-proxy streams are dropped");
    }

    let mut group = c.benchmark_group("loki");
    group.throughput(Throughput::Elements(lines));
    group.bench_function("decode_protobuf", |b| {
        b.iter(|| {
            let message = Bytes::from(snappy_decompress_capped(&protobuf, 64 << 20).unwrap());
            let mut push = DecodedPush::default();
            decode_push_request(&message, &mut push).unwrap();
            push.entry_count()
        })
    });
    group.bench_function("receive_protobuf", |b| {
        b.iter(|| {
            let received =
                ingest.receive(&tenant, protobuf_type, None, protobuf.clone(), NOW_NS).unwrap();
            received.batch.entry_count()
        })
    });
    group.bench_function("receive_json", |b| {
        b.iter(|| {
            let received = ingest.receive(&tenant, json_type, None, json.clone(), NOW_NS).unwrap();
            received.batch.entry_count()
        })
    });
    let mut out = Vec::with_capacity(raw.len());
    let mut encoder = snap::raw::Encoder::new();
    group.bench_function("encode_protobuf", |b| {
        b.iter(|| {
            out.clear();
            encode_push_request(
                batch.streams.iter().map(|s| (&*s.stream, &s.entries[..])),
                &mut out,
            );
            encoder.compress_vec(&out).unwrap().len()
        })
    });
    group.finish();
}

criterion_group!(name = loki; config = Criterion::default().sample_size(30); targets = benches);
criterion_main!(loki);
