//! Black-box test of Zipkin v2 ingest with curl and a Dapr-like payload
//! (`tests/clients/zipkin_spans.json`: an HTTP → gRPC service invocation and a pub/sub publish,
//! one of them with a 64-bit trace id):
//!
//! ```text
//! curl ─POST /api/v2/spans─► strata ─forward.otlp gRPC──────────────────► test OTLP receiver A
//!                                   ─forward.otlp HTTP (keep checkout)──► test OTLP receiver B
//! ```
//!
//! Every span arrives once per request at A and, filtered by B's resource rules, at B, with
//! ids, parent, kind, times, tags and annotations converted as the OpenTelemetry Collector's
//! Zipkin receiver does. Without curl (`scripts/install-peers.sh`) the test prints
//! `skipped: ...`, except under `CI=true`, where it fails.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use common::clients::{client_file, curl_bin, run_client};
use common::otlp::{flat_spans, hex, FlatSpan};
use common::receivers::{OtlpReceiver, OtlpTransport};
use common::signals::{start_strata, Strata, FAST_QUEUE, POLL, WAIT};
use common::wait_until;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

const PAYLOAD_SPANS: usize = 4;

/// POSTs `file` with curl; returns the HTTP status and the response body.
async fn curl_post(curl: &Path, url: &str, file: &Path, headers: &[&str]) -> (u16, String) {
    let body_file = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new(curl);
    cmd.args(["-sS", "--max-time", "10", "-X", "POST", "-o"]).arg(body_file.path()).args([
        "-w",
        "%{http_code}",
        "-H",
        "Content-Type: application/json",
    ]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    cmd.arg("--data-binary").arg(format!("@{}", file.display())).arg(url);
    let run = run_client("curl", &mut cmd).await;
    run.assert_success("curl");
    let status = run.stdout.trim().parse().unwrap_or_else(|_| panic!("curl -w: {}", run.stdout));
    (status, std::fs::read_to_string(body_file.path()).unwrap_or_default())
}

async fn wait_for_spans(strata: &Strata, receiver: &OtlpReceiver, target: &str, count: usize) {
    wait_until(&format!("{count} spans for {target}"), WAIT, POLL, || {
        strata.guard.assert_running();
        async move {
            let received = receiver.span_count();
            let sent =
                strata.metric("strata_forward_spans_sent_total", &[("target", target)]).await;
            if received >= count && sent >= count as f64 {
                Ok(())
            } else {
                Err(format!("{received} spans received, strata counts {sent} sent"))
            }
        }
    })
    .await;
}

fn by_id(spans: &[FlatSpan]) -> BTreeMap<String, &FlatSpan> {
    spans.iter().map(|s| (hex(&s.span.span_id), s)).collect()
}

#[tokio::test]
async fn zipkin_spans_from_curl_reach_both_otlp_targets() {
    let Some(curl) = curl_bin() else { return };
    let all = OtlpReceiver::start().await;
    let checkout_only = OtlpReceiver::start().await;
    let strata = start_strata(&format!(
        r#"
forward:
  otlp:
    - name: all_grpc
      endpoint: {grpc}
      protocol: grpc
      queue_config: {FAST_QUEUE}
    - name: checkout_http
      endpoint: {http}
      protocol: http/protobuf
      resource_relabel_configs:
        - source_labels: [service.name]
          regex: checkout
          action: keep
      queue_config: {FAST_QUEUE}
"#,
        grpc = all.grpc_endpoint,
        http = checkout_only.http_endpoint
    ))
    .await;
    let url = format!("{}/api/v2/spans", strata.base);
    let payload = client_file("zipkin_spans.json");
    let (status, body) = curl_post(&curl, &url, &payload, &[]).await;
    assert_eq!(status, 202, "{body}");
    // The same spans again, gzip-compressed and for another tenant.
    let mut gz = tempfile::NamedTempFile::new().unwrap();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&std::fs::read(&payload).unwrap()).unwrap();
    gz.write_all(&encoder.finish().unwrap()).unwrap();
    let (status, body) =
        curl_post(&curl, &url, gz.path(), &["Content-Encoding: gzip", "X-Scope-OrgID: dapr-team"])
            .await;
    assert_eq!(status, 202, "{body}");

    wait_for_spans(&strata, &all, "all_grpc", 2 * PAYLOAD_SPANS).await;
    wait_for_spans(&strata, &checkout_only, "checkout_http", 4).await;

    for tenant in ["fake", "dapr-team"] {
        let requests: Vec<_> =
            all.traces().into_iter().filter(|r| r.tenant.as_deref() == Some(tenant)).collect();
        assert!(requests.iter().all(|r| r.transport == OtlpTransport::Grpc));
        let spans = flat_spans(requests.iter().map(|r| &r.request));
        assert_eq!(spans.len(), PAYLOAD_SPANS, "{tenant}: every span once");
        let spans = by_id(&spans);

        let root = spans["1e5f8a9b2c3d4e5f"];
        assert_eq!(root.resource["service.name"], "checkout");
        assert_eq!(root.span.name, "/v1.0/invoke/orders/method/neworder");
        assert_eq!(root.trace_id_hex(), "5af7183fb1d4cf5f5af7183fb1d4cf5f");
        assert!(root.span.parent_span_id.is_empty());
        assert_eq!(root.span.kind, SpanKind::Server as i32);
        assert_eq!(root.span.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(root.span.end_time_unix_nano, 1_700_000_000_000_000_000 + 12_500_000);
        let attrs = root.attributes();
        assert_eq!(
            attrs.get("dapr.api").map(String::as_str),
            Some("POST /v1.0/invoke/orders/method/neworder"),
            "{attrs:?}"
        );
        assert_eq!(attrs.get("dapr.protocol").map(String::as_str), Some("http"));

        let client = spans["2a6b7c8d9e0f1a2b"];
        assert_eq!(client.span.kind, SpanKind::Client as i32);
        assert_eq!(hex(&client.span.parent_span_id), "1e5f8a9b2c3d4e5f");
        assert_eq!(client.attributes().get("rpc.method").map(String::as_str), Some("CallLocal"));

        let server = spans["3c4d5e6f7a8b9c0d"];
        assert_eq!(server.resource["service.name"], "orders");
        assert_eq!(hex(&server.span.parent_span_id), "2a6b7c8d9e0f1a2b");
        assert_eq!(server.span.events.len(), 1, "the annotation");
        assert_eq!(server.span.events[0].name, "order.saved");
        assert_eq!(server.span.events[0].time_unix_nano, 1_700_000_000_003_000_000);

        let producer = spans["4e5f6a7b8c9d0e1f"];
        assert_eq!(producer.span.kind, SpanKind::Producer as i32);
        assert_eq!(
            producer.trace_id_hex(),
            "0000000000000000b1d4cf5f5af7183f",
            "a 64-bit Zipkin trace id is the low half of the OTLP one"
        );
        assert_eq!(
            producer.attributes().get("messaging.destination.name").map(String::as_str),
            Some("orders-topic")
        );
    }

    let filtered = flat_spans(checkout_only.traces().iter().map(|r| &r.request));
    assert_eq!(filtered.len(), 4, "two checkout spans per request");
    assert!(filtered.iter().all(|s| s.resource["service.name"] == "checkout"));
    assert!(checkout_only.traces().iter().all(|r| r.transport == OtlpTransport::Http));
    assert!(all.errors().is_empty() && checkout_only.errors().is_empty());
    strata.assert_ready().await;
}
