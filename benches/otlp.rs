//! OTLP/HTTP ingest throughput on realistic requests: 100 spans per request (what the OTel SDKs'
//! batch span processor sends by default is up to 512; 100 is a busy service's typical flush),
//! each with ~10 HTTP/DB semantic-convention attributes, one Kubernetes resource per request;
//! and 100 log records of a similar service. Throughput is reported in spans / log records.
//!
//! `traces_protobuf` is the zero-copy walk (`OtlpIngest::traces_http`, no relabel rules, so the
//! cost is the validating walk plus one `Resource` decode); `traces_protobuf_relabel` adds two
//! `resource_relabel_configs` rules (cached per resource); `traces_json` decodes structs and
//! re-encodes the spans; `logs_protobuf` maps to Loki streams.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use strata::config::OtlpIngestConfig;
use strata::ingest::otlp::OtlpIngest;
use strata::model::Tenant;
use strata::telemetry::Catalog;

const ITEMS: usize = 100;

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::IntValue(value)) }),
        ..Default::default()
    }
}

fn resource() -> Resource {
    Resource {
        attributes: vec![
            text("service.name", "checkout"),
            text("service.namespace", "shop"),
            text("service.version", "1.42.0"),
            text("service.instance.id", "checkout-7d9f8b6c5d-x2x9q"),
            text("deployment.environment.name", "production"),
            text("k8s.cluster.name", "eu-west-1-prod"),
            text("k8s.namespace.name", "shop"),
            text("k8s.pod.name", "checkout-7d9f8b6c5d-x2x9q"),
            text("k8s.node.name", "ip-10-0-12-34.eu-west-1.compute.internal"),
            text("telemetry.sdk.language", "java"),
            text("telemetry.sdk.name", "opentelemetry"),
            text("telemetry.sdk.version", "1.38.0"),
        ],
        ..Default::default()
    }
}

fn id(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn span(index: usize) -> Span {
    let start = 1_700_000_000_000_000_000 + index as u64 * 1_000_000;
    let route = ["/api/v1/orders", "/api/v1/orders/{id}", "/api/v1/cart", "/healthz"][index % 4];
    let mut attributes = vec![
        text("http.request.method", if index % 3 == 0 { "POST" } else { "GET" }),
        text("http.route", route),
        int("http.response.status_code", if index % 17 == 0 { 500 } else { 200 }),
        text("url.full", "https://checkout.shop.svc.cluster.local:8080/api/v1/orders?page=2"),
        text("server.address", "checkout.shop.svc.cluster.local"),
        int("server.port", 8080),
        text("network.protocol.version", "1.1"),
        text(
            "user_agent.original",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0",
        ),
        int("thread.id", 40 + (index % 8) as i64),
        text("thread.name", "http-nio-8080-exec-3"),
    ];
    if index % 5 == 0 {
        attributes.truncate(6);
        attributes.push(text("db.system", "postgresql"));
        attributes
            .push(text("db.statement", "SELECT id, total FROM orders WHERE customer_id = $1"));
        attributes.push(text("db.name", "orders"));
        attributes.push(text("net.peer.name", "orders-db.shop.svc.cluster.local"));
    }
    Span {
        trace_id: id(index as u64 / 10 + 1, 16),
        span_id: id(index as u64 + 1000, 8),
        parent_span_id: if index % 10 == 0 { Vec::new() } else { id(index as u64 + 999, 8) },
        name: format!("GET {route}"),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 3_500_000,
        attributes,
        events: if index % 17 == 0 {
            vec![span::Event {
                time_unix_nano: start + 1_000_000,
                name: "exception".into(),
                attributes: vec![text("exception.type", "java.net.SocketTimeoutException")],
                ..Default::default()
            }]
        } else {
            Vec::new()
        },
        status: Some(Status { code: if index % 17 == 0 { 2 } else { 0 }, ..Default::default() }),
        flags: 0x101,
        ..Default::default()
    }
}

fn traces() -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource()),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "io.opentelemetry.tomcat-10.0".into(),
                    version: "2.4.0-alpha".into(),
                    ..Default::default()
                }),
                spans: (0..ITEMS).map(span).collect(),
                schema_url: String::new(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.24.0".into(),
        }],
    }
}

fn logs() -> ExportLogsServiceRequest {
    let record = |index: usize| LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000 + index as u64 * 1_000_000,
        observed_time_unix_nano: 1_700_000_000_000_000_000 + index as u64 * 1_000_000 + 50,
        severity_number: 9,
        severity_text: "INFO".into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(format!(
                "order {index} placed by customer 7781 total=42.50 EUR items=3 payment=card"
            ))),
        }),
        attributes: vec![
            text("logger.name", "com.example.shop.checkout.OrderService"),
            text("thread.name", "http-nio-8080-exec-3"),
            text("code.function", "placeOrder"),
        ],
        trace_id: id(index as u64 + 1, 16),
        span_id: id(index as u64 + 7, 8),
        flags: 1,
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource()),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "com.example.shop".into(),
                    ..Default::default()
                }),
                log_records: (0..ITEMS).map(record).collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn benches(c: &mut Criterion) {
    let catalog = Catalog::new();
    let plain = OtlpIngest::new(&OtlpIngestConfig::default(), "fake", &catalog).unwrap();
    let relabel_config: OtlpIngestConfig = serde_yaml::from_str(
        r#"
resource_relabel_configs:
  - source_labels: [k8s.namespace.name]
    regex: kube-system
    action: drop
  - target_label: region
    replacement: eu-west-1
"#,
    )
    .unwrap();
    let relabeling = OtlpIngest::new(&relabel_config, "fake", &catalog).unwrap();
    let tenant: Tenant = "fake".into();
    let protobuf = Some("application/x-protobuf");
    let traces = traces();
    let body = Bytes::from(traces.encode_to_vec());
    let json = Bytes::from(serde_json::to_vec(&traces).unwrap());
    let logs_body = Bytes::from(logs().encode_to_vec());

    let mut group = c.benchmark_group("otlp");
    group.throughput(Throughput::Elements(ITEMS as u64));
    group.bench_function("traces_protobuf", |b| {
        b.iter(|| {
            plain.traces_http(&tenant, protobuf, None, body.clone()).unwrap().batch.span_count()
        })
    });
    group.bench_function("traces_protobuf_relabel", |b| {
        b.iter(|| {
            relabeling
                .traces_http(&tenant, protobuf, None, body.clone())
                .unwrap()
                .batch
                .span_count()
        })
    });
    group.bench_function("traces_json", |b| {
        b.iter(|| {
            let accepted = plain.traces_http(&tenant, Some("application/json"), None, json.clone());
            accepted.unwrap().batch.span_count()
        })
    });
    group.bench_function("logs_protobuf", |b| {
        b.iter(|| {
            plain.logs_http(&tenant, protobuf, None, logs_body.clone()).unwrap().batch.entry_count()
        })
    });
    group.finish();
}

criterion_group!(otlp_benches, benches);
criterion_main!(otlp_benches);
