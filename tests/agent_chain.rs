//! An agent → aggregator chain made of two strata processes, for logs and traces:
//!
//! ```text
//! Loki JSON push ─► strata A (agent) ─forward.loki──────────► strata B ─forward.loki──► Loki receiver
//! OTLP/HTTP traces ─►                ─forward.otlp (gRPC)──►          ─forward.otlp──► OTLP receiver (HTTP)
//! ```
//!
//! Strata's own sinks must speak what strata's own receivers accept (protobuf+snappy Loki push,
//! OTLP/gRPC with gzip), keep the tenant across both hops, apply each hop's relabeling, and
//! deliver every line and span exactly once.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::receivers::{LokiReceiver, OtlpReceiver};
use common::signals::{start_strata, FAST_QUEUE, POLL, WAIT};
use common::{http_client, wait_until};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as otlp;
use prost::Message;

const LINES: usize = 60;
const SPANS: usize = 40;

fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

fn trace_request() -> ExportTraceServiceRequest {
    let spans = (0..SPANS)
        .map(|i| otlp::Span {
            trace_id: vec![7; 16],
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: format!("span-{i:02}"),
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_100_000_000,
            attributes: vec![string_attribute("http.route", "/orders")],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![otlp::ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_attribute("service.name", "checkout")],
                ..Default::default()
            }),
            scope_spans: vec![otlp::ScopeSpans { spans, ..Default::default() }],
            schema_url: String::new(),
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_traces_cross_two_strata_hops_once_with_tenant_and_relabeling() {
    let loki = LokiReceiver::start().await;
    let traces = OtlpReceiver::start().await;
    let aggregator = start_strata(&format!(
        r#"
ingest:
  loki:
    relabel_configs: [{{target_label: hop_b, replacement: aggregator}}]
  otlp:
    resource_relabel_configs: [{{target_label: hop.b, replacement: aggregator}}]
forward:
  loki: [{{name: loki, url: "{loki_url}", queue_config: {FAST_QUEUE}}}]
  otlp: [{{name: tempo, endpoint: "{otlp_url}", protocol: http/protobuf, queue_config: {FAST_QUEUE}}}]
"#,
        loki_url = loki.push_url,
        otlp_url = traces.http_endpoint,
    ))
    .await;
    let agent = start_strata(&format!(
        r#"
role: agent
ingest:
  loki:
    relabel_configs: [{{target_label: hop_a, replacement: agent}}]
  otlp:
    resource_relabel_configs: [{{target_label: hop.a, replacement: agent}}]
forward:
  loki: [{{name: central-logs, url: "{base}/loki/api/v1/push", queue_config: {FAST_QUEUE}}}]
  otlp: [{{name: central-traces, endpoint: "{grpc}", protocol: grpc, compression: gzip, queue_config: {FAST_QUEUE}}}]
"#,
        base = aggregator.base,
        grpc = aggregator.otlp_grpc,
    ))
    .await;

    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let values: Vec<_> = (0..LINES)
        .map(|i| serde_json::json!([(now + i as u128).to_string(), format!("line {i}")]))
        .collect();
    let push = serde_json::json!({"streams": [{"stream": {"app": "checkout"}, "values": values}]});
    let response = http_client()
        .post(format!("{}/loki/api/v1/push", agent.base))
        .header("content-type", "application/json")
        .header("x-scope-orgid", "team-x")
        .body(push.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204, "{}", response.text().await.unwrap());
    let response = http_client()
        .post(format!("{}/v1/traces", agent.otlp_http))
        .header("content-type", "application/x-protobuf")
        .header("x-scope-orgid", "team-x")
        .body(trace_request().encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    wait_until("every line and span at the end of the chain", WAIT, POLL, || {
        let (lines, spans) = (loki.lines().len(), traces.span_count());
        async move {
            if lines >= LINES && spans >= SPANS {
                Ok(())
            } else {
                Err(format!("{lines}/{LINES} lines, {spans}/{SPANS} spans"))
            }
        }
    })
    .await;
    // Let any duplicate arrive before counting exactly.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let lines = loki.lines();
    assert_eq!(lines.len(), LINES, "each line exactly once");
    assert!(loki.errors().is_empty(), "{:?}", loki.errors());
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line.tenant.as_deref(), Some("team-x"));
        assert_eq!(line.entry.line, format!("line {i}"), "order within the stream");
        assert_eq!(line.labels.get("app").map(String::as_str), Some("checkout"));
        assert_eq!(line.labels.get("hop_a").map(String::as_str), Some("agent"));
        assert_eq!(line.labels.get("hop_b").map(String::as_str), Some("aggregator"));
    }

    let received = traces.traces();
    assert_eq!(traces.span_count(), SPANS, "each span exactly once");
    let mut names = Vec::new();
    for request in &received {
        assert_eq!(request.tenant.as_deref(), Some("team-x"));
        for resource_spans in &request.request.resource_spans {
            let attributes: Vec<(String, String)> = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .map(|kv| {
                    let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(any_value::Value::StringValue(s)) => s.clone(),
                        other => format!("{other:?}"),
                    };
                    (kv.key.clone(), value)
                })
                .collect();
            for expected in
                [("service.name", "checkout"), ("hop.a", "agent"), ("hop.b", "aggregator")]
            {
                assert!(
                    attributes.iter().any(|(k, v)| k == expected.0 && v == expected.1),
                    "{expected:?} not in {attributes:?}"
                );
            }
            for scope in &resource_spans.scope_spans {
                names.extend(scope.spans.iter().map(|s| s.name.clone()));
            }
        }
    }
    names.sort();
    let expected: Vec<String> = (0..SPANS).map(|i| format!("span-{i:02}")).collect();
    assert_eq!(names, expected);

    assert_eq!(
        agent.metric("strata_forward_log_entries_sent_total", &[("target", "central-logs")]).await,
        LINES as f64
    );
    assert_eq!(
        agent.metric("strata_forward_spans_sent_total", &[("target", "central-traces")]).await,
        SPANS as f64
    );
    agent.assert_ready().await;
    aggregator.assert_ready().await;
}
