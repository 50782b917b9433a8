//! Bad input on the log and trace endpoints of the `strata` binary: Loki push
//! (`/loki/api/v1/push`), OTLP/HTTP (`/v1/traces|metrics|logs`), OTLP/gRPC and Zipkin
//! (`/api/v2/spans`). Each bad request gets its protocol's status (400 bad data, 413 too
//! large, 415 unsupported encoding, 429 over a limit; gRPC `RESOURCE_EXHAUSTED`; OTLP
//! `partial_success` for some rejected items) and a short body saying what was wrong; the
//! valid part of a partly bad request is still forwarded; and after each one a valid request
//! is accepted and `/-/ready` answers 200: the daemon keeps serving.

mod common;

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use common::receivers::{
    EntryAdapter, LokiReceiver, OtlpReceiver, ProtoTimestamp, PushRequest, StreamAdapter,
};
use common::signals::{start_strata, Strata, FAST_QUEUE, POLL, WAIT};
use common::{http_client, wait_until};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64
}

fn snappy(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).unwrap()
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(raw).unwrap();
    encoder.finish().unwrap()
}

/// A Loki push, protobuf + snappy: `(selector, [(timestamp ns, line)])` per stream.
fn loki_push(streams: &[(&str, Vec<(i64, String)>)]) -> Vec<u8> {
    let request = PushRequest {
        streams: streams
            .iter()
            .map(|(selector, entries)| StreamAdapter {
                labels: (*selector).to_owned(),
                entries: entries
                    .iter()
                    .map(|(ts, line)| EntryAdapter {
                        timestamp: Some(ProtoTimestamp {
                            seconds: ts.div_euclid(1_000_000_000),
                            nanos: ts.rem_euclid(1_000_000_000) as i32,
                        }),
                        line: line.clone(),
                        structured_metadata: Vec::new(),
                    })
                    .collect(),
                hash: 0,
            })
            .collect(),
    };
    snappy(&request.encode_to_vec())
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }),
        ..Default::default()
    }
}

fn span(name: &str, trace_id: Vec<u8>) -> Span {
    let now = now_ns() as u64;
    Span {
        trace_id,
        span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
        name: name.to_owned(),
        kind: 2,
        start_time_unix_nano: now,
        end_time_unix_nano: now + 1_000_000,
        ..Default::default()
    }
}

fn traces(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_kv("service.name", "bad-input")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

const TRACE_ID: [u8; 16] = [0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 1, 2, 3, 4, 5, 6, 7, 8];

fn zipkin_span(id: &str) -> Vec<u8> {
    format!(
        r#"[{{"traceId":"4bf92f3577b34da60102030405060708","id":"{id}","name":"ok","kind":"SERVER","timestamp":{ts},"duration":10,"localEndpoint":{{"serviceName":"bad-input"}}}}]"#,
        ts = now_ns() / 1000
    )
    .into_bytes()
}

/// The endpoints under test, each with a request it must accept.
#[derive(Clone, Copy, Debug)]
enum Endpoint {
    Loki,
    OtlpTraces,
    OtlpMetrics,
    OtlpLogs,
    Zipkin,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Loki => "/loki/api/v1/push",
            Endpoint::OtlpTraces => "/v1/traces",
            Endpoint::OtlpMetrics => "/v1/metrics",
            Endpoint::OtlpLogs => "/v1/logs",
            Endpoint::Zipkin => "/api/v2/spans",
        }
    }

    /// (content type, body, expected status) of a valid request.
    fn valid(self, index: usize) -> (&'static str, Vec<u8>, u16) {
        match self {
            Endpoint::Loki => (
                PROTOBUF,
                loki_push(&[(
                    r#"{job="after-bad-input"}"#,
                    vec![(now_ns(), format!("ok {index}"))],
                )]),
                204,
            ),
            Endpoint::OtlpTraces => (
                PROTOBUF,
                traces(vec![span(&format!("ok {index}"), TRACE_ID.to_vec())]).encode_to_vec(),
                200,
            ),
            // Empty requests are valid OTLP.
            Endpoint::OtlpMetrics | Endpoint::OtlpLogs => (PROTOBUF, Vec::new(), 200),
            Endpoint::Zipkin => (JSON, zipkin_span(&format!("{:016x}", index + 1)), 202),
        }
    }
}

async fn post(
    strata: &Strata,
    endpoint: Endpoint,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> (u16, Vec<u8>) {
    let mut request = http_client()
        .post(format!("{}{}", strata.base, endpoint.path()))
        .header("content-type", content_type)
        .body(body);
    if let Some(e) = encoding {
        request = request.header("content-encoding", e);
    }
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.expect("strata answers");
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

async fn assert_still_serving(strata: &Strata, endpoint: Endpoint, index: usize) {
    strata.guard.assert_running();
    let (content_type, body, expected) = endpoint.valid(index);
    let (status, answer) = post(strata, endpoint, content_type, None, body, &[]).await;
    assert_eq!(
        status,
        expected,
        "{endpoint:?}: valid request after bad input: {}",
        String::from_utf8_lossy(&answer)
    );
    strata.assert_ready().await;
}

/// One bad request: what, where, how, and what must come back (`expected_text` is looked for
/// in the response body, case-insensitively).
struct Case {
    name: &'static str,
    endpoint: Endpoint,
    content_type: &'static str,
    encoding: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    expected_text: &'static str,
}

async fn run_cases(strata: &Strata, cases: Vec<Case>) {
    let mut failures = Vec::new();
    for (index, case) in cases.into_iter().enumerate() {
        let (status, body) =
            post(strata, case.endpoint, case.content_type, case.encoding, case.body, &[]).await;
        let text = String::from_utf8_lossy(&body).into_owned();
        eprintln!("{}: {status} {text:?}", case.name);
        if status != case.status {
            failures.push(format!(
                "{}: status {status}, expected {}: {text:?}",
                case.name, case.status
            ));
        } else if !text.to_lowercase().contains(&case.expected_text.to_lowercase()) {
            failures.push(format!("{}: expected {:?} in {text:?}", case.name, case.expected_text));
        } else if text.trim().is_empty() || text.len() > 2048 {
            failures.push(format!(
                "{}: error body must say what was wrong, briefly: {text:?}",
                case.name
            ));
        }
        assert_still_serving(strata, case.endpoint, index).await;
    }
    assert!(
        failures.is_empty(),
        "{} bad-input cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

const LIMITS: &str = r#"
ingest:
  loki:
    max_body_size: 64KiB
    max_decoded_size: 256KiB
    max_line_size: 1KiB
    reject_old_samples_max_age: 1h
  otlp:
    max_http_body_size: 64KiB
    max_grpc_message_size: 64KiB
  zipkin:
    max_body_size: 64KiB
"#;

async fn start_with_receivers() -> (Strata, LokiReceiver, OtlpReceiver) {
    let loki = LokiReceiver::start().await;
    let otlp = OtlpReceiver::start().await;
    let strata = start_strata(&format!(
        "{LIMITS}forward:\n  loki:\n    - {{name: loki, url: \"{}\", queue_config: {FAST_QUEUE}}}\n  \
         otlp:\n    - {{name: otlp, endpoint: \"{}\", protocol: grpc, queue_config: {FAST_QUEUE}}}\n",
        loki.push_url, otlp.grpc_endpoint
    ))
    .await;
    (strata, loki, otlp)
}

/// 10 MiB of zeros, gzip-compressed to a few KiB: over every decoded-size cap here.
fn gzip_bomb() -> Vec<u8> {
    gzip(&vec![0u8; 10 * 1024 * 1024])
}

#[tokio::test]
async fn loki_push_bad_input_gets_the_right_status_and_the_daemon_keeps_serving() {
    let (strata, loki, _otlp) = start_with_receivers().await;
    let valid = loki_push(&[(r#"{job="x"}"#, vec![(now_ns(), "line".into())])]);
    let hour = 3_600_000_000_000i64;
    let cases = vec![
        Case {
            name: "truncated snappy",
            endpoint: Endpoint::Loki,
            content_type: PROTOBUF,
            encoding: None,
            body: valid[..valid.len() / 2].to_vec(),
            status: 400,
            expected_text: "",
        },
        Case {
            name: "garbage protobuf",
            endpoint: Endpoint::Loki,
            content_type: PROTOBUF,
            encoding: None,
            body: snappy(&[0x0a, 0x7f, 0x01, 0x02]),
            status: 400,
            expected_text: "",
        },
        Case {
            name: "bad json",
            endpoint: Endpoint::Loki,
            content_type: JSON,
            encoding: None,
            body: br#"{"streams": [{"stream": {"job": "x"}, "values": [["1", "#.to_vec(),
            status: 400,
            expected_text: "",
        },
        Case {
            name: "json with a non-numeric timestamp",
            endpoint: Endpoint::Loki,
            content_type: JSON,
            encoding: None,
            body: br#"{"streams": [{"stream": {"job": "x"}, "values": [["yesterday", "l"]]}]}"#
                .to_vec(),
            status: 400,
            expected_text: "",
        },
        Case {
            name: "wrong content type",
            endpoint: Endpoint::Loki,
            content_type: "text/plain",
            encoding: None,
            body: b"hello".to_vec(),
            status: 415,
            expected_text: "",
        },
        Case {
            name: "unsupported content encoding",
            endpoint: Endpoint::Loki,
            content_type: JSON,
            encoding: Some("br"),
            body: b"{}".to_vec(),
            status: 415,
            expected_text: "",
        },
        Case {
            name: "body over max_body_size",
            endpoint: Endpoint::Loki,
            content_type: PROTOBUF,
            encoding: None,
            body: vec![0u8; 100 * 1024],
            status: 413,
            expected_text: "",
        },
        Case {
            name: "gzip bomb",
            endpoint: Endpoint::Loki,
            content_type: JSON,
            encoding: Some("gzip"),
            body: gzip_bomb(),
            status: 413,
            expected_text: "",
        },
        Case {
            name: "unparsable selector",
            endpoint: Endpoint::Loki,
            content_type: PROTOBUF,
            encoding: None,
            body: loki_push(&[("{foo=bar", vec![(now_ns(), "l".into())])]),
            status: 400,
            expected_text: "{foo=bar",
        },
        Case {
            name: "line too long",
            endpoint: Endpoint::Loki,
            content_type: PROTOBUF,
            encoding: None,
            body: loki_push(&[(r#"{job="long-line"}"#, vec![(now_ns(), "x".repeat(2048))])]),
            status: 400,
            expected_text: "long-line",
        },
        Case {
            name: "too old",
            endpoint: Endpoint::Loki,
            content_type: PROTOBUF,
            encoding: None,
            body: loki_push(&[(r#"{job="too-old"}"#, vec![(now_ns() - 2 * hour, "old".into())])]),
            status: 400,
            expected_text: "too-old",
        },
        Case {
            name: "too far in the future",
            endpoint: Endpoint::Loki,
            content_type: PROTOBUF,
            encoding: None,
            body: loki_push(&[(r#"{job="future"}"#, vec![(now_ns() + hour, "soon".into())])]),
            status: 400,
            expected_text: "future",
        },
        Case {
            name: "json stream without labels",
            endpoint: Endpoint::Loki,
            content_type: JSON,
            encoding: None,
            body: format!(r#"{{"streams":[{{"stream":{{}},"values":[["{}","l"]]}}]}}"#, now_ns())
                .into_bytes(),
            status: 400,
            expected_text: "",
        },
    ];
    run_cases(&strata, cases).await;

    // A valid and an invalid stream in one push: 400 naming the bad one, the good one kept.
    let (status, body) = post(
        &strata,
        Endpoint::Loki,
        PROTOBUF,
        None,
        loki_push(&[
            (r#"{job="good-stream"}"#, vec![(now_ns(), "kept".into())]),
            (r#"{job="bad-stream"}"#, vec![(now_ns(), "y".repeat(4096))]),
        ]),
        &[("X-Scope-OrgID", "mixed")],
    )
    .await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("bad-stream"), "names the rejected stream: {text}");
    assert!(!text.contains("good-stream"), "only the rejected stream: {text}");
    wait_until("the valid stream of the mixed push forwarded", WAIT, POLL, || {
        strata.guard.assert_running();
        let loki = loki.clone();
        async move {
            let lines = loki.lines();
            let kept: Vec<_> = lines
                .iter()
                .filter(|l| l.labels.get("job").map(String::as_str) == Some("good-stream"))
                .collect();
            match kept.as_slice() {
                [] => Err("not yet".to_owned()),
                [one] if one.entry.line == "kept" && one.tenant.as_deref() == Some("mixed") => {
                    Ok(())
                }
                other => Err(format!("unexpected: {other:?}")),
            }
        }
    })
    .await;
    assert!(
        loki.lines().iter().all(|l| l.labels.get("job").map(String::as_str) != Some("bad-stream")),
        "the rejected stream is not forwarded"
    );
    let wrong_method =
        http_client().get(format!("{}/loki/api/v1/push", strata.base)).send().await.unwrap();
    assert_eq!(wrong_method.status().as_u16(), 405);
    strata.assert_ready().await;
}

#[tokio::test]
async fn loki_push_over_the_ingestion_rate_gets_429_and_later_pushes_pass() {
    let loki = LokiReceiver::start().await;
    let strata = start_strata(&format!(
        "ingest:\n  loki:\n    max_line_size: 1KiB\n    ingestion_rate: 1KiB\n    ingestion_burst_size: 2KiB\n\
         forward:\n  loki:\n    - {{name: loki, url: \"{}\", queue_config: {FAST_QUEUE}}}\n",
        loki.push_url
    ))
    .await;
    let ts = now_ns();
    let entries: Vec<(i64, String)> = (0..6).map(|i| (ts + i, "z".repeat(1000))).collect();
    let (status, body) = post(
        &strata,
        Endpoint::Loki,
        PROTOBUF,
        None,
        loki_push(&[(r#"{job="flood"}"#, entries)]),
        &[("X-Scope-OrgID", "greedy")],
    )
    .await;
    assert_eq!(status, 429, "6000 bytes over a 2 KiB burst: {}", String::from_utf8_lossy(&body));
    // A rejected push takes no tokens: a small one right after fits the burst.
    let (status, body) = post(
        &strata,
        Endpoint::Loki,
        PROTOBUF,
        None,
        loki_push(&[(r#"{job="small"}"#, vec![(now_ns(), "tiny".into())])]),
        &[("X-Scope-OrgID", "greedy")],
    )
    .await;
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
    let rate_limited = strata
        .metric(
            "strata_ingest_items_dropped_total",
            &[("protocol", "loki_push"), ("reason", "rate_limited")],
        )
        .await;
    assert_eq!(rate_limited, 6.0);
    strata.assert_ready().await;
}

#[tokio::test]
async fn otlp_http_bad_input_gets_the_right_status_and_the_daemon_keeps_serving() {
    let (strata, _loki, otlp) = start_with_receivers().await;
    let mut cases = Vec::new();
    for endpoint in [Endpoint::OtlpTraces, Endpoint::OtlpMetrics, Endpoint::OtlpLogs] {
        cases.extend([
            Case {
                name: "garbage protobuf",
                endpoint,
                content_type: PROTOBUF,
                encoding: None,
                body: vec![0x0a, 0x7f, 0x01, 0x02],
                status: 400,
                expected_text: "",
            },
            Case {
                name: "bad json",
                endpoint,
                content_type: JSON,
                encoding: None,
                body: br#"{"resourceSpans": [{"#.to_vec(),
                status: 400,
                expected_text: "",
            },
            Case {
                name: "wrong content type",
                endpoint,
                content_type: "text/plain",
                encoding: None,
                body: b"hello".to_vec(),
                status: 415,
                expected_text: "",
            },
            Case {
                name: "unsupported content encoding",
                endpoint,
                content_type: PROTOBUF,
                encoding: Some("br"),
                body: Vec::new(),
                status: 415,
                expected_text: "",
            },
            Case {
                name: "body over max_http_body_size",
                endpoint,
                content_type: PROTOBUF,
                encoding: None,
                body: vec![0u8; 100 * 1024],
                status: 413,
                expected_text: "",
            },
            Case {
                name: "gzip bomb",
                endpoint,
                content_type: PROTOBUF,
                encoding: Some("gzip"),
                body: gzip_bomb(),
                status: 413,
                expected_text: "",
            },
        ]);
    }
    cases.push(Case {
        name: "json span with a non-hex trace id",
        endpoint: Endpoint::OtlpTraces,
        content_type: JSON,
        encoding: None,
        body: br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"0102030405060708","name":"x"}]}]}]}"#.to_vec(),
        status: 400,
        expected_text: "",
    });
    run_cases(&strata, cases).await;

    // One span with an 8-byte trace id beside a valid one: 200 with partial_success.
    let request =
        traces(vec![span("bad-trace-id", vec![1; 8]), span("good-span", TRACE_ID.to_vec())]);
    let (status, body) =
        post(&strata, Endpoint::OtlpTraces, PROTOBUF, None, request.encode_to_vec(), &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let response = ExportTraceServiceResponse::decode(body.as_slice()).expect("protobuf response");
    let partial = response.partial_success.expect("partial_success");
    assert_eq!(partial.rejected_spans, 1, "{partial:?}");
    assert!(!partial.error_message.is_empty(), "says why: {partial:?}");
    wait_until("the valid span forwarded", WAIT, POLL, || {
        strata.guard.assert_running();
        let otlp = otlp.clone();
        async move {
            let names: Vec<String> =
                common::otlp::flat_spans(otlp.traces().iter().map(|r| &r.request))
                    .into_iter()
                    .map(|s| s.span.name)
                    .collect();
            if names.iter().any(|n| n == "bad-trace-id") {
                return Err(format!("the rejected span was forwarded: {names:?}"));
            }
            if names.iter().any(|n| n == "good-span") {
                Ok(())
            } else {
                Err(format!("{names:?}"))
            }
        }
    })
    .await;
    strata.assert_ready().await;
}

#[tokio::test]
async fn otlp_grpc_over_size_and_invalid_ids_and_the_daemon_keeps_serving() {
    let (strata, _loki, otlp) = start_with_receivers().await;
    let mut client = TraceServiceClient::connect(strata.otlp_grpc.clone())
        .await
        .expect("connect to strata's OTLP gRPC listener");

    let mut big = span("big", TRACE_ID.to_vec());
    big.attributes.push(string_kv("blob", &"b".repeat(100 * 1024)));
    let status = client.export(traces(vec![big])).await.expect_err("over max_grpc_message_size");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(!status.message().is_empty());
    strata.assert_ready().await;

    // The same with the real OTel SDK: its exporter gives up and says why.
    if let Some(python) = common::clients::python_clients() {
        let mut cmd = common::clients::python_command(&python, "otel_export.py");
        cmd.args(["--protocol", "grpc", "--endpoint", &strata.otlp_grpc, "--service", "big"])
            .args(["--signals", "traces", "--spans", "1", "--big-attribute", "102400"])
            .args(["--timeout", "2"]);
        let run = common::clients::run_client("otel_export_big", &mut cmd).await;
        assert!(!run.status.success(), "an over-size export must fail: {}", run.stdout);
        assert!(run.stderr.contains("RESOURCE_EXHAUSTED"), "{}", run.stderr);
        strata.assert_ready().await;
    }

    let response = client
        .export(traces(vec![
            span("bad-trace-id", vec![0; 16]),
            span("good-grpc", TRACE_ID.to_vec()),
        ]))
        .await
        .expect("a partly valid request is accepted")
        .into_inner();
    let partial = response.partial_success.expect("partial_success");
    assert_eq!(partial.rejected_spans, 1, "an all-zero trace id is invalid: {partial:?}");
    assert!(!partial.error_message.is_empty());

    let ok = client
        .export(traces(vec![span("after-bad-input", TRACE_ID.to_vec())]))
        .await
        .expect("valid request after bad input")
        .into_inner();
    assert!(ok.partial_success.as_ref().is_none_or(|p| p.rejected_spans == 0), "{ok:?}");
    wait_until("the valid spans forwarded", WAIT, POLL, || {
        strata.guard.assert_running();
        let otlp = otlp.clone();
        async move {
            let names: Vec<String> =
                common::otlp::flat_spans(otlp.traces().iter().map(|r| &r.request))
                    .into_iter()
                    .map(|s| s.span.name)
                    .collect();
            if names.iter().any(|n| n == "bad-trace-id" || n == "big") {
                return Err(format!("a rejected span was forwarded: {names:?}"));
            }
            if names.iter().any(|n| n == "good-grpc")
                && names.iter().any(|n| n == "after-bad-input")
            {
                Ok(())
            } else {
                Err(format!("{names:?}"))
            }
        }
    })
    .await;
    strata.assert_ready().await;
}

#[tokio::test]
async fn zipkin_bad_input_gets_the_right_status_and_the_daemon_keeps_serving() {
    let (strata, _loki, _otlp) = start_with_receivers().await;
    let cases = vec![
        Case {
            name: "bad span id",
            endpoint: Endpoint::Zipkin,
            content_type: JSON,
            encoding: None,
            body: zipkin_span("xyz"),
            status: 400,
            expected_text: "xyz",
        },
        Case {
            name: "bad json",
            endpoint: Endpoint::Zipkin,
            content_type: JSON,
            encoding: None,
            body: br#"[{"traceId": "#.to_vec(),
            status: 400,
            expected_text: "",
        },
        Case {
            name: "not a list",
            endpoint: Endpoint::Zipkin,
            content_type: JSON,
            encoding: None,
            body: br#"{"traceId":"4bf92f3577b34da6","id":"4bf92f3577b34da6"}"#.to_vec(),
            status: 400,
            expected_text: "",
        },
        Case {
            name: "wrong content type",
            endpoint: Endpoint::Zipkin,
            content_type: "text/plain",
            encoding: None,
            body: zipkin_span("0102030405060708"),
            status: 415,
            expected_text: "",
        },
        Case {
            name: "body over max_body_size",
            endpoint: Endpoint::Zipkin,
            content_type: JSON,
            encoding: None,
            body: vec![b' '; 100 * 1024],
            status: 413,
            expected_text: "",
        },
        Case {
            name: "gzip bomb",
            endpoint: Endpoint::Zipkin,
            content_type: JSON,
            encoding: Some("gzip"),
            body: gzip_bomb(),
            status: 413,
            expected_text: "",
        },
    ];
    run_cases(&strata, cases).await;
}
