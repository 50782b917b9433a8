//! Zipkin v2 ingest throughput on a realistic Dapr request: 100 spans (10 traces, each a chain of
//! 5 service invocations recorded as a CLIENT span in the caller and a shared SERVER span in the
//! callee), ~9 tags per span, an annotation on every other span; ~60 KB of JSON. Throughput is
//! reported in spans. `decode` = JSON → borrowed spans; `decode_translate` = + the Collector's
//! mapping to an OTLP request; `receive` = the whole stage (+ `TraceBatch` encoding), as sent
//! plain and gzip-compressed.

use std::io::Write;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use strata::config::ZipkinIngestConfig;
use strata::ingest::zipkin::decode::decode_spans;
use strata::ingest::zipkin::translate::to_request;
use strata::ingest::zipkin::ZipkinIngest;
use strata::model::Tenant;
use strata::telemetry::Catalog;

const TRACES: usize = 10;
const SERVICES: [&str; 6] = ["frontend", "checkout", "orders", "payments", "inventory", "shipping"];
const SPANS: usize = TRACES * (SERVICES.len() - 1) * 2;

/// One side of an invocation `caller → callee` as Dapr's sidecar records it.
fn span(trace: usize, hop: usize, server: bool) -> String {
    let (caller, callee) = (SERVICES[hop], SERVICES[hop + 1]);
    let (local, remote, kind) =
        if server { (callee, caller, "SERVER") } else { (caller, callee, "CLIENT") };
    let trace_id = format!("{:016x}{:016x}", 0x4bf9_2f35_77b3_4da6_u64 + trace as u64, trace + 1);
    let id = format!("{:016x}", 0xa2fb_4a1d_1a96_0000_u64 + (trace * 16 + hop) as u64);
    let parent = if hop == 0 {
        String::new()
    } else {
        format!(
            r#""parentId":"{:016x}","#,
            0xa2fb_4a1d_1a96_0000_u64 + (trace * 16 + hop - 1) as u64
        )
    };
    let start = 1_700_000_000_000_000_u64 + (trace * 100_000 + hop * 1_000) as u64;
    let (start, duration) = if server { (start + 150, 8_000) } else { (start, 8_400) };
    let shared = if server { r#""shared":true,"# } else { "" };
    let status = if trace % 7 == 3 && hop == 4 {
        r#","error":"true","otel.status_code":"STATUS_CODE_ERROR","otel.status_description":"upstream timed out""#
    } else {
        r#","http.status_code":"200""#
    };
    let annotation = if (trace + hop) % 2 == 0 {
        format!(r#""annotations":[{{"timestamp":{},"value":"message sent"}}],"#, start + 10)
    } else {
        String::new()
    };
    format!(
        r#"{{"traceId":"{trace_id}",{parent}"id":"{id}","kind":"{kind}",{shared}"name":"/dapr.proto.runtime.v1.dapr/invokeservice/{callee}","timestamp":{start},"duration":{duration},"localEndpoint":{{"serviceName":"{local}","ipv4":"10.1.{hop}.{trace}","port":50001}},"remoteEndpoint":{{"serviceName":"{remote}","ipv4":"10.2.{hop}.{trace}"}},{annotation}"tags":{{"http.method":"POST","http.url":"/v1.0/invoke/{callee}/method/neworder","dapr.api":"/dapr.proto.runtime.v1.Dapr/InvokeService","dapr.protocol":"grpc","rpc.service":"ServiceInvocation","net.peer.name":"{remote}","otel.library.name":"dapr","service.name":"{local}","telemetry.sdk.language":"go"{status}}}}}"#
    )
}

fn payload() -> String {
    let mut spans = Vec::with_capacity(SPANS);
    for trace in 0..TRACES {
        for hop in 0..SERVICES.len() - 1 {
            spans.push(span(trace, hop, false));
            spans.push(span(trace, hop, true));
        }
    }
    format!("[{}]", spans.join(","))
}

fn benches(c: &mut Criterion) {
    let json = payload();
    let spans = decode_spans(json.as_bytes()).expect("the bench payload decodes");
    assert_eq!(spans.len(), SPANS);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(json.as_bytes()).unwrap();
    let gzipped = Bytes::from(gzip.finish().unwrap());
    let plain = Bytes::from(json.clone());
    let ingest = ZipkinIngest::new(&ZipkinIngestConfig::default(), &Catalog::new());
    let tenant: Tenant = "bench".into();

    let mut group = c.benchmark_group("zipkin");
    group.throughput(Throughput::Elements(SPANS as u64));
    group.bench_function("decode", |b| b.iter(|| decode_spans(json.as_bytes()).unwrap().len()));
    group.bench_function("decode_translate", |b| {
        b.iter(|| {
            let spans = decode_spans(json.as_bytes()).unwrap();
            to_request(&spans).unwrap().resource_spans.len()
        })
    });
    group.bench_function("receive", |b| {
        b.iter(|| {
            let batch = ingest.receive(&tenant, Some("application/json"), None, plain.clone());
            batch.unwrap().span_count()
        })
    });
    group.bench_function("receive_gzip", |b| {
        b.iter(|| {
            let batch = ingest.receive(&tenant, None, Some("gzip"), gzipped.clone());
            batch.unwrap().span_count()
        })
    });
    group.finish();
}

criterion_group!(name = zipkin; config = Criterion::default().sample_size(30); targets = benches);
criterion_main!(zipkin);
