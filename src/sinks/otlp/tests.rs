//! OTLP sink tests against in-process receivers: a tonic `TraceService` (the generated
//! server of `opentelemetry-proto`) and an axum `/v1/traces` endpoint, both answering with
//! scripted outcomes and recording what they decode.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as otlp;
use prost::Message;

use super::*;
use crate::config::QueueConfig;

/// What a receiver saw: tenant and span names per request.
#[derive(Default)]
struct Record {
    /// gRPC codes / HTTP statuses to answer, in order; success once exhausted.
    script: Mutex<VecDeque<u16>>,
    requests: Mutex<Vec<(String, Vec<String>)>>,
}

impl Record {
    fn note(&self, tenant: &str, request: &ExportTraceServiceRequest) -> Option<u16> {
        let names = request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| s.name.clone())
            .collect();
        self.requests.lock().unwrap().push((tenant.to_owned(), names));
        self.script.lock().unwrap().pop_front()
    }

    fn span_names(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.requests.lock().unwrap().iter().flat_map(|(_, n)| n.clone()).collect();
        names.sort();
        names.dedup();
        names
    }
}

struct Grpc(Arc<Record>);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let tenant = request
            .metadata()
            .get("x-scope-orgid")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        match self.0.note(&tenant, request.get_ref()) {
            Some(code) => Err(tonic::Status::new(tonic::Code::from(i32::from(code)), "scripted")),
            None => Ok(tonic::Response::new(ExportTraceServiceResponse::default())),
        }
    }
}

async fn grpc_receiver(script: Vec<u16>) -> (Arc<Record>, String) {
    let record = Arc::new(Record { script: Mutex::new(script.into()), ..Record::default() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let service = TraceServiceServer::new(Grpc(record.clone()))
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    (record, endpoint)
}

#[allow(clippy::disallowed_methods)] // test receiver: inputs are our own
async fn http_receive(
    axum::extract::State(record): axum::extract::State<Arc<Record>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out).unwrap();
        out
    } else {
        body.to_vec()
    };
    let request = ExportTraceServiceRequest::decode(raw.as_slice()).unwrap();
    let tenant = headers.get("x-scope-orgid").and_then(|v| v.to_str().ok()).unwrap_or("");
    match record.note(tenant, &request) {
        Some(status) => StatusCode::from_u16(status).unwrap().into_response(),
        None => ExportTraceServiceResponse::default().encode_to_vec().into_response(),
    }
}

async fn http_receiver(script: Vec<u16>) -> (Arc<Record>, String) {
    let record = Arc::new(Record { script: Mutex::new(script.into()), ..Record::default() });
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(http_receive))
        .with_state(record.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (record, endpoint)
}

fn target_config(endpoint: &str, protocol: &str, compression: &str) -> OtlpTarget {
    let mut config: OtlpTarget = serde_yaml::from_str(&format!(
        "endpoint: {endpoint}\nprotocol: {protocol}\ncompression: {compression}"
    ))
    .unwrap();
    config.queue_config = QueueConfig {
        capacity: 1000,
        shards: 2,
        max_samples_per_send: 10,
        batch_send_deadline: crate::config::PromDuration::from_millis(20),
        min_backoff: crate::config::PromDuration::from_millis(5),
        max_backoff: crate::config::PromDuration::from_millis(20),
        retry_on_http_429: true,
    };
    config
}

fn batch(tenant: &str, resources: usize, spans_per_resource: usize) -> TraceBatch {
    let resource_spans = (0..resources)
        .map(|r| otlp::ResourceSpans {
            resource: Some(Resource::default()),
            scope_spans: vec![otlp::ScopeSpans {
                spans: (0..spans_per_resource)
                    .map(|s| otlp::Span {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        name: format!("r{r:02}-s{s:02}"),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            schema_url: String::new(),
        })
        .collect();
    TraceBatch::from_request(tenant.into(), ExportTraceServiceRequest { resource_spans })
}

async fn run(config: &OtlpTarget, batches: &[TraceBatch]) -> Catalog {
    let catalog = Catalog::new();
    let (_abort, abort_rx) = watch::channel(false);
    let (mut target, workers) = Target::start(config, "t".into(), None, &catalog, &abort_rx);
    for batch in batches {
        target.prepare(batch).unwrap().commit();
    }
    target.queue_mut().close();
    for handle in workers.handles {
        tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap().unwrap();
    }
    catalog
}

fn expected_names(resources: usize, spans: usize) -> Vec<String> {
    let mut names: Vec<String> =
        (0..resources).flat_map(|r| (0..spans).map(move |s| format!("r{r:02}-s{s:02}"))).collect();
    names.sort();
    names
}

#[tokio::test]
async fn grpc_and_http_deliver_every_span_with_the_tenant() {
    for (protocol, compression) in
        [("grpc", "none"), ("grpc", "gzip"), ("http/protobuf", "none"), ("http/protobuf", "gzip")]
    {
        let (record, endpoint) = if protocol == "grpc" {
            grpc_receiver(vec![]).await
        } else {
            http_receiver(vec![]).await
        };
        let config = target_config(&endpoint, protocol, compression);
        let catalog = run(&config, &[batch("team-a", 3, 4), batch("team-a", 2, 4)]).await;
        assert_eq!(record.span_names(), expected_names(3, 4), "{protocol} {compression}");
        assert!(record.requests.lock().unwrap().iter().all(|(tenant, _)| tenant == "team-a"));
        assert_eq!(catalog.sample_value("strata_forward_spans_sent_total{target=\"t\"}"), 20.0);
    }
}

#[tokio::test]
async fn retryable_failures_are_retried_and_permanent_ones_dropped() {
    // gRPC: UNAVAILABLE (14) is retried; INVALID_ARGUMENT (3) is not.
    let (record, endpoint) = grpc_receiver(vec![14, 14]).await;
    let catalog = run(&target_config(&endpoint, "grpc", "none"), &[batch("t", 1, 5)]).await;
    assert_eq!(record.requests.lock().unwrap().len(), 3);
    assert_eq!(catalog.sample_value("strata_forward_spans_sent_total{target=\"t\"}"), 5.0);

    let (record, endpoint) = grpc_receiver(vec![3]).await;
    let catalog = run(&target_config(&endpoint, "grpc", "none"), &[batch("t", 1, 5)]).await;
    assert_eq!(record.requests.lock().unwrap().len(), 1);
    assert_eq!(
        catalog
            .sample_value("strata_forward_items_dropped_total{target=\"t\",reason=\"rejected\"}"),
        5.0
    );

    // HTTP: 503 is retried, 500 is not (OTLP/HTTP retries 429/502/503/504 only), 400 is not.
    let (record, endpoint) = http_receiver(vec![503, 400]).await;
    let catalog =
        run(&target_config(&endpoint, "http/protobuf", "none"), &[batch("t", 1, 5)]).await;
    assert_eq!(record.requests.lock().unwrap().len(), 2);
    assert_eq!(
        catalog
            .sample_value("strata_forward_items_dropped_total{target=\"t\",reason=\"rejected\"}"),
        5.0
    );
    let (record, endpoint) = http_receiver(vec![500]).await;
    run(&target_config(&endpoint, "http/protobuf", "none"), &[batch("t", 1, 5)]).await;
    assert_eq!(record.requests.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_full_queue_refuses_the_whole_batch() {
    let (_record, endpoint) = grpc_receiver(vec![]).await;
    let mut config = target_config(&endpoint, "grpc", "none");
    config.queue_config.capacity = 10;
    config.queue_config.shards = 1;
    let catalog = Catalog::new();
    let (_abort, abort_rx) = watch::channel(false);
    let (target, _workers) = Target::start(&config, "t".into(), None, &catalog, &abort_rx);
    // 11 spans in one resource cannot fit a 10-span shard: nothing is reserved.
    assert!(target.prepare(&batch("t", 1, 11)).is_err());
    assert!(target.queue().has_headroom());
}
