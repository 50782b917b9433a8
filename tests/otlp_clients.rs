//! Black-box tests with the real OpenTelemetry Python SDK (`tests/clients/otel_export.py`,
//! OTLP exporters for gRPC and HTTP protobuf):
//!
//! ```text
//! OTel SDK ─OTLP gRPC/HTTP─► strata ─forward.otlp (gRPC | HTTP protobuf)─► test OTLP receiver
//!                                   ─forward.remote_write────────────────► test remote-write receiver
//!                                   ─forward.loki────────────────────────► test Loki receiver
//! ```
//!
//! Every span and log record the SDK sent must arrive exactly once, relabeled as configured;
//! OTel metrics must arrive as the Prometheus series Prometheus' own OTLP translation makes,
//! through `ingest.remote_write.metric_relabel_configs` like remote-written series.
//! The first test points the SDK straight at the test receiver, which checks the harness
//! itself. Without the clients (`scripts/install-peers.sh`) the tests print `skipped: ...`,
//! except under `CI=true`, where they fail.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::clients::{python_clients, python_command, run_client, ClientRun};
use common::otlp::{attributes, flat_logs, flat_spans, FlatSpan};
use common::receivers::{LokiReceiver, OtlpReceiver, OtlpTransport, RemoteWriteReceiver};
use common::signals::{start_strata, Strata, FAST_QUEUE, POLL, WAIT};
use common::wait_until;

const SPANS: usize = 120;
const LOGS: usize = 80;
const SPAN_ATTRIBUTES: usize = 10;

/// Runs `otel_export.py` and insists it succeeded.
async fn otel_export(
    python: &Path,
    protocol: &str,
    endpoint: &str,
    service: &str,
    extra: &[&str],
) -> ClientRun {
    let mut cmd = python_command(python, "otel_export.py");
    cmd.args(["--protocol", protocol, "--endpoint", endpoint, "--service", service])
        .args(["--spans", &SPANS.to_string(), "--logs", &LOGS.to_string()])
        .args(extra);
    let run = run_client(&format!("otel_export {protocol} {service}"), &mut cmd).await;
    run.assert_success(&format!("otel_export.py {protocol} {service}"));
    run
}

/// The trace ids the client reported.
fn summary_trace_ids(run: &ClientRun) -> BTreeSet<String> {
    run.summary()["trace_ids"]
        .as_array()
        .expect("trace_ids in the summary")
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Checks that `spans` are exactly `span-0..SPANS` of one client run, each once, with their
/// attributes, trace ids and parent links intact.
fn assert_spans_of_one_run(spans: &[FlatSpan], trace_ids: &BTreeSet<String>, what: &str) {
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    for s in spans {
        *by_name.entry(s.span.name.clone()).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = (0..SPANS).map(|i| (format!("span-{i}"), 1)).collect();
    assert_eq!(by_name, expected, "{what}: every span exactly once");
    let received_ids: BTreeSet<String> = spans.iter().map(FlatSpan::trace_id_hex).collect();
    assert_eq!(&received_ids, trace_ids, "{what}: trace ids");
    let span_ids: BTreeMap<Vec<u8>, &FlatSpan> =
        spans.iter().map(|s| (s.span.span_id.clone(), s)).collect();
    for s in spans {
        let attrs = s.attributes();
        let index: usize = s.span.name.trim_start_matches("span-").parse().unwrap();
        assert_eq!(attrs.len(), SPAN_ATTRIBUTES, "{what}: attributes of {}", s.span.name);
        assert_eq!(attrs["span.index"], index.to_string(), "{what}");
        assert_eq!(attrs["server.address"], "orders.strata-test.svc", "{what}");
        assert_eq!(s.span.span_id.len(), 8, "{what}: span id of {}", s.span.name);
        assert!(s.span.end_time_unix_nano >= s.span.start_time_unix_nano, "{what}");
        if index % 5 == 0 {
            assert!(s.span.parent_span_id.is_empty(), "{what}: {} is a root", s.span.name);
        } else {
            let parent = span_ids
                .get(&s.span.parent_span_id)
                .unwrap_or_else(|| panic!("{what}: parent of {} missing", s.span.name));
            assert_eq!(parent.span.name, format!("span-{}", index - index % 5), "{what}");
            assert_eq!(parent.span.trace_id, s.span.trace_id, "{what}");
            assert_eq!(s.span.events.len(), 1, "{what}: event of {}", s.span.name);
            assert_eq!(s.span.events[0].name, "child.event", "{what}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The harness on its own: SDK → test receiver
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn otel_sdk_exports_reach_the_test_receiver_directly() {
    let Some(python) = python_clients() else { return };
    let receiver = OtlpReceiver::start().await;
    for (protocol, endpoint, service) in [
        ("grpc", receiver.grpc_endpoint.clone(), "direct-grpc"),
        ("http/protobuf", receiver.http_endpoint.clone(), "direct-http"),
    ] {
        let run =
            otel_export(&python, protocol, &endpoint, service, &["--compression", "gzip"]).await;
        let summary = run.summary();
        assert_eq!(summary["spans"], SPANS, "{summary}");
        assert_eq!(summary["logs"], LOGS, "{summary}");
        let traces = receiver.traces();
        let spans: Vec<FlatSpan> = flat_spans(traces.iter().map(|r| &r.request))
            .into_iter()
            .filter(|s| s.resource.get("service.name").map(String::as_str) == Some(service))
            .collect();
        assert_spans_of_one_run(&spans, &summary_trace_ids(&run), protocol);
        assert_eq!(spans[0].resource["k8s.pod.name"], format!("{service}-pod-0"));
        let transport = if protocol == "grpc" { OtlpTransport::Grpc } else { OtlpTransport::Http };
        for r in receiver.traces().iter().filter(|r| r.transport == transport) {
            assert_eq!(r.encoding.as_deref(), Some("gzip"), "{protocol}: SDK compresses");
        }
        let logs = receiver.logs();
        let records: Vec<_> = flat_logs(logs.iter().map(|r| &r.request))
            .into_iter()
            .filter(|l| l.resource.get("service.name").map(String::as_str) == Some(service))
            .collect();
        assert_eq!(records.len(), LOGS, "{protocol}: log records");
        let metric_names: BTreeSet<String> = receiver
            .metrics()
            .iter()
            .flat_map(|r| r.request.resource_metrics.clone())
            .filter(|rm| {
                rm.resource.as_ref().is_some_and(|r| {
                    attributes(&r.attributes).get("service.name").map(String::as_str)
                        == Some(service)
                })
            })
            .flat_map(|rm| rm.scope_metrics)
            .flat_map(|sm| sm.metrics)
            .map(|m| m.name)
            .collect();
        let expected: BTreeSet<String> =
            ["test_latency", "test_queue_depth", "test_requests"].map(String::from).into();
        assert_eq!(metric_names, expected, "{protocol}");
    }
    assert!(receiver.errors().is_empty(), "{:?}", receiver.errors());
}

// ---------------------------------------------------------------------------------------------
// Traces
// ---------------------------------------------------------------------------------------------

/// Waits until `receiver` holds `count` spans and strata counts them as sent to `target`.
async fn wait_for_spans(strata: &Strata, receiver: &OtlpReceiver, target: &str, count: usize) {
    wait_until(&format!("{count} spans at the receiver"), WAIT, POLL, || {
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

#[tokio::test]
async fn traces_over_otlp_grpc_are_relabeled_and_forwarded_over_grpc() {
    let Some(python) = python_clients() else { return };
    let receiver = OtlpReceiver::start().await;
    let strata = start_strata(&format!(
        r#"
ingest:
  otlp:
    resource_relabel_configs:
      - source_labels: [service.name]
        regex: dropped-.*
        action: drop
      - target_label: deployment.environment
        replacement: e2e
forward:
  otlp:
    - name: tempo_grpc
      endpoint: {endpoint}
      protocol: grpc
      resource_relabel_configs:
        - source_labels: [k8s.pod.name]
          target_label: pod
        - regex: 'k8s\.pod\.name'
          action: labeldrop
      queue_config: {FAST_QUEUE}
"#,
        endpoint = receiver.grpc_endpoint
    ))
    .await;

    // Dropped at ingest by the resource relabel rule: acknowledged, never forwarded.
    let mut cmd = python_command(&python, "otel_export.py");
    cmd.args(["--protocol", "grpc", "--endpoint", &strata.otlp_grpc, "--service", "dropped-svc"])
        .args(["--spans", "20", "--signals", "traces"]);
    run_client("otel_export dropped-svc", &mut cmd).await.assert_success("dropped-svc export");

    let run = otel_export(
        &python,
        "grpc",
        &strata.otlp_grpc,
        "checkout",
        &["--signals", "traces", "--compression", "gzip", "--header", "X-Scope-OrgID=team-traces"],
    )
    .await;
    wait_for_spans(&strata, &receiver, "tempo_grpc", SPANS).await;

    let traces = receiver.traces();
    for r in &traces {
        assert_eq!(r.transport, OtlpTransport::Grpc);
        assert_eq!(r.tenant.as_deref(), Some("team-traces"), "X-Scope-OrgID in → out");
    }
    let spans = flat_spans(traces.iter().map(|r| &r.request));
    assert!(
        spans.iter().all(|s| s.resource["service.name"] == "checkout"),
        "the dropped service must not be forwarded"
    );
    assert_spans_of_one_run(&spans, &summary_trace_ids(&run), "grpc → strata → grpc");
    for s in &spans {
        let r = &s.resource;
        assert_eq!(r.get("deployment.environment").map(String::as_str), Some("e2e"), "{r:?}");
        assert_eq!(r.get("pod").map(String::as_str), Some("checkout-pod-0"), "{r:?}");
        assert!(!r.contains_key("k8s.pod.name"), "renamed by the target's rules: {r:?}");
        assert_eq!(r.get("k8s.namespace.name").map(String::as_str), Some("strata-test"));
        assert_eq!(r.get("service.instance.id").map(String::as_str), Some("checkout-1"));
    }
    let dropped = strata
        .metric(
            "strata_ingest_items_dropped_total",
            &[("protocol", "otlp_grpc"), ("reason", "relabel")],
        )
        .await;
    assert_eq!(dropped, 20.0, "the 20 spans of dropped-svc");
    assert!(receiver.errors().is_empty(), "{:?}", receiver.errors());
    strata.assert_ready().await;
}

#[tokio::test]
async fn traces_over_otlp_http_are_forwarded_as_gzip_http_protobuf() {
    let Some(python) = python_clients() else { return };
    let receiver = OtlpReceiver::start().await;
    let strata = start_strata(&format!(
        r#"
forward:
  otlp:
    - name: tempo_http
      endpoint: {endpoint}
      protocol: http/protobuf
      compression: gzip
      queue_config: {FAST_QUEUE}
"#,
        endpoint = receiver.http_endpoint
    ))
    .await;
    // The dedicated OTLP/HTTP listener, uncompressed; the main listener, gzip.
    let dedicated =
        otel_export(&python, "http/protobuf", &strata.otlp_http, "cart", &["--signals", "traces"])
            .await;
    let main = otel_export(
        &python,
        "http/protobuf",
        &strata.base,
        "cart-main",
        &["--signals", "traces", "--compression", "gzip"],
    )
    .await;
    wait_for_spans(&strata, &receiver, "tempo_http", 2 * SPANS).await;

    let traces = receiver.traces();
    for r in &traces {
        assert_eq!(r.transport, OtlpTransport::Http);
        assert_eq!(r.encoding.as_deref(), Some("gzip"), "compression: gzip");
        assert_eq!(r.tenant.as_deref(), Some("fake"), "the default tenant");
    }
    let spans = flat_spans(traces.iter().map(|r| &r.request));
    for (service, run) in [("cart", &dedicated), ("cart-main", &main)] {
        let of_service: Vec<FlatSpan> =
            spans.iter().filter(|s| s.resource["service.name"] == service).cloned().collect();
        assert_spans_of_one_run(&of_service, &summary_trace_ids(run), service);
    }
    assert_eq!(spans.len(), 2 * SPANS, "nothing else arrived");
    assert!(receiver.errors().is_empty(), "{:?}", receiver.errors());
    strata.assert_ready().await;
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

const METRIC_NAMES: [&str; 6] = [
    "target_info",
    "test_latency_seconds_bucket",
    "test_latency_seconds_count",
    "test_latency_seconds_sum",
    "test_queue_depth",
    "test_requests_total",
];

/// The latest value of the series of `job` named `name` whose labels include `labels`.
fn value(
    latest: &BTreeMap<BTreeMap<String, String>, f64>,
    job: &str,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    let matching: Vec<f64> = latest
        .iter()
        .filter(|(l, _)| {
            l.get("__name__").map(String::as_str) == Some(name)
                && l.get("job").map(String::as_str) == Some(job)
                && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(matching.len(), 1, "one series {name}{labels:?} of job {job}: {latest:#?}");
    matching[0]
}

#[tokio::test]
async fn metrics_over_otlp_grpc_and_http_become_prometheus_series() {
    let Some(python) = python_clients() else { return };
    let receiver = RemoteWriteReceiver::start().await;
    let strata = start_strata(&format!(
        r#"
ingest:
  remote_write:
    metric_relabel_configs:
      - source_labels: [__name__, job]
        regex: test_queue_depth;strata-test/metrics-http
        action: drop
forward:
  remote_write:
    - name: prom
      url: {url}
      write_relabel_configs:
        - target_label: via
          replacement: strata
      queue_config: {FAST_QUEUE}
"#,
        url = receiver.url
    ))
    .await;
    otel_export(&python, "grpc", &strata.otlp_grpc, "metrics-grpc", &["--signals", "metrics"])
        .await;
    otel_export(&python, "http/protobuf", &strata.base, "metrics-http", &["--signals", "metrics"])
        .await;

    let services = ["metrics-grpc", "metrics-http"];
    // The ingest rule drops the gauge of metrics-http only.
    let expected_names = |service: &str| -> BTreeSet<String> {
        METRIC_NAMES
            .iter()
            .filter(|name| service == "metrics-grpc" || **name != "test_queue_depth")
            .map(|name| (*name).to_owned())
            .collect()
    };
    wait_until("every expected series of both services", WAIT, POLL, || {
        strata.guard.assert_running();
        let receiver = receiver.clone();
        async move {
            for service in services {
                let expected = expected_names(service);
                let job = format!("strata-test/{service}");
                let names: BTreeSet<String> = receiver
                    .series()
                    .iter()
                    .filter(|s| s.labels.get("job") == Some(&job))
                    .map(|s| s.name().to_owned())
                    .collect();
                if !names.is_superset(&expected) {
                    return Err(format!("{job}: {names:?}"));
                }
            }
            Ok(())
        }
    })
    .await;

    let latest = receiver.latest();
    for service in services {
        let job = format!("strata-test/{service}");
        let of_job: Vec<&BTreeMap<String, String>> =
            latest.keys().filter(|l| l.get("job") == Some(&job)).collect();
        let names: BTreeSet<String> = of_job.iter().map(|l| l["__name__"].clone()).collect();
        assert_eq!(names, expected_names(service), "{job}: exactly these series names");
        for labels in &of_job {
            assert_eq!(labels.get("instance"), Some(&format!("{service}-1")), "{labels:?}");
            assert_eq!(labels.get("via").map(String::as_str), Some("strata"), "{labels:?}");
            assert!(
                labels.keys().all(|k| k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')),
                "legacy label names: {labels:?}"
            );
        }
        let route = [("route", "/api")];
        assert_eq!(value(&latest, &job, "test_requests_total", &[("code", "200")]), 3.0);
        assert_eq!(value(&latest, &job, "test_requests_total", &[("code", "500")]), 4.0);
        assert_eq!(value(&latest, &job, "test_latency_seconds_count", &route), 4.0);
        let sum = value(&latest, &job, "test_latency_seconds_sum", &route);
        assert!((sum - 1.723).abs() < 1e-9, "sum {sum}");
        for (le, count) in [("0", 0.0), ("5", 4.0), ("10", 4.0), ("+Inf", 4.0)] {
            let bucket = [("route", "/api"), ("le", le)];
            assert_eq!(value(&latest, &job, "test_latency_seconds_bucket", &bucket), count, "{le}");
        }
        let buckets =
            of_job.iter().filter(|l| l["__name__"] == "test_latency_seconds_bucket").count();
        assert_eq!(buckets, 16, "the SDK's 15 default bounds and +Inf");
        if service == "metrics-grpc" {
            assert_eq!(value(&latest, &job, "test_queue_depth", &[("queue", "main")]), 42.0);
        }
        let target_info =
            [("k8s_namespace_name", "strata-test"), ("k8s_pod_name", &*format!("{service}-pod-0"))];
        assert_eq!(value(&latest, &job, "target_info", &target_info), 1.0);
    }
    assert!(receiver.errors().is_empty(), "{:?}", receiver.errors());
    strata.assert_ready().await;
}

// ---------------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn logs_over_otlp_grpc_and_http_become_loki_streams() {
    let Some(python) = python_clients() else { return };
    let loki = LokiReceiver::start().await;
    let strata = start_strata(&format!(
        r#"
forward:
  loki:
    - name: loki
      url: {url}
      relabel_configs:
        - target_label: via
          replacement: strata
      queue_config: {FAST_QUEUE}
"#,
        url = loki.push_url
    ))
    .await;
    otel_export(
        &python,
        "grpc",
        &strata.otlp_grpc,
        "logs-grpc",
        &["--signals", "logs", "--header", "X-Scope-OrgID=team-logs"],
    )
    .await;
    otel_export(&python, "http/protobuf", &strata.base, "logs-http", &["--signals", "logs"]).await;

    wait_until("every log record at the Loki receiver", WAIT, POLL, || {
        strata.guard.assert_running();
        let (loki, strata) = (loki.clone(), &strata);
        async move {
            let n = loki.lines().len();
            let sent =
                strata.metric("strata_forward_log_entries_sent_total", &[("target", "loki")]).await;
            if n >= 2 * LOGS && sent >= (2 * LOGS) as f64 {
                Ok(())
            } else {
                Err(format!("{n} lines received, strata counts {sent} sent"))
            }
        }
    })
    .await;

    let lines = loki.lines();
    assert_eq!(lines.len(), 2 * LOGS, "nothing else arrived");
    for push in loki.pushes() {
        assert_eq!(push.content_type, "application/x-protobuf", "strata pushes protobuf");
    }
    for (service, tenant) in [("logs-grpc", "team-logs"), ("logs-http", "fake")] {
        let of_service: Vec<_> = lines
            .iter()
            .filter(|l| l.labels.get("service_name").map(String::as_str) == Some(service))
            .collect();
        let mut bodies: BTreeMap<String, usize> = BTreeMap::new();
        for l in &of_service {
            *bodies.entry(l.entry.line.clone()).or_default() += 1;
            assert_eq!(l.tenant.as_deref(), Some(tenant), "{service}: X-Scope-OrgID");
            for (name, value) in [
                ("service_namespace", "strata-test"),
                ("service_instance_id", &*format!("{service}-1")),
                ("k8s_namespace_name", "strata-test"),
                ("k8s_pod_name", &*format!("{service}-pod-0")),
                ("via", "strata"),
            ] {
                assert_eq!(l.labels.get(name).map(String::as_str), Some(value), "{l:?}");
            }
            assert!(l.labels.keys().all(|k| !k.contains('.')), "{:?}", l.labels);
            let index: usize = l.entry.line.split(' ').nth(2).unwrap().parse().unwrap();
            let meta = &l.entry.structured_metadata;
            let log_index = meta.get("log_index").or_else(|| meta.get("log.index"));
            assert_eq!(log_index, Some(&index.to_string()), "structured metadata: {meta:?}");
            assert!(l.entry.timestamp_ns > 0);
        }
        let expected: BTreeMap<String, usize> =
            (0..LOGS).map(|i| (format!("log line {i} from {service}"), 1)).collect();
        assert_eq!(bodies, expected, "{service}: every record exactly once");
    }
    assert!(loki.errors().is_empty(), "{:?}", loki.errors());
    strata.assert_ready().await;
}
