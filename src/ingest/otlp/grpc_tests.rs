//! The gRPC services in process: a tonic server on 127.0.0.1:0 called with the generated
//! OTLP clients.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Channel;

use super::*;
use crate::config::{ByteSize, OtlpIngestConfig};
use crate::route::Targets;
use crate::telemetry::Catalog;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

struct Server {
    addr: SocketAddr,
    catalog: Arc<Catalog>,
    route: Arc<Router>,
    translated: Arc<AtomicUsize>,
}

async fn start(max_message: ByteSize) -> Server {
    let catalog = Arc::new(Catalog::new());
    let config = OtlpIngestConfig { max_grpc_message_size: max_message, ..Default::default() };
    let ingest = Arc::new(OtlpIngest::new(&config, "fake", &catalog).unwrap());
    let route = Arc::new(Router::new(Targets::default()));
    let translated = Arc::new(AtomicUsize::new(0));
    let calls = translated.clone();
    let translate: TranslateMetrics = Arc::new(move |request| {
        calls.fetch_add(1, Ordering::Relaxed);
        let rejected = request.resource_metrics.len() as u64;
        (MetricBatch::default(), rejected, Some(format!("{rejected} data points rejected")))
    });
    let routes = grpc_routes(ingest, &route, translate);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    Server { addr, catalog, route, translated }
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap()
}

fn span(id: u8) -> Span {
    Span {
        trace_id: vec![id; 16],
        span_id: vec![id; 8],
        name: "GET /".into(),
        start_time_unix_nano: 1,
        end_time_unix_nano: 2,
        ..Default::default()
    }
}

fn traces(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("checkout".into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            schema_url: String::new(),
        }],
    }
}

#[tokio::test]
async fn traces_with_gzip_and_an_invalid_span_get_partial_success() {
    let server = start(ByteSize::mib(4)).await;
    let mut client = TraceServiceClient::new(channel(server.addr).await)
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip);
    let mut bad = span(2);
    bad.span_id = vec![0; 8];
    let response = client.export(traces(vec![span(1), bad])).await.unwrap().into_inner();
    let partial = response.partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial
            .error_message
            .contains("resource_spans[0].scope_spans[0].spans[1]: span_id is all zeros"),
        "{}",
        partial.error_message
    );
    // A fully valid request: no partial_success at all.
    let response = client.export(traces(vec![span(3)])).await.unwrap().into_inner();
    assert_eq!(response.partial_success, None);
    let text = server.catalog.encode_text();
    assert!(
        text.contains(r#"strata_ingest_spans_received_total{protocol="otlp_grpc"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"strata_ingest_requests_total{protocol="otlp_grpc",code="0"} 2"#),
        "{text}"
    );
}

#[tokio::test]
async fn logs_are_accepted() {
    let server = start(ByteSize::mib(4)).await;
    let mut client = LogsServiceClient::new(channel(server.addr).await)
        .send_compressed(CompressionEncoding::Gzip);
    let record = LogRecord {
        body: Some(AnyValue { value: Some(any_value::Value::StringValue("hello".into())) }),
        ..Default::default()
    };
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs { log_records: vec![record; 3], ..Default::default() }],
            ..Default::default()
        }],
    };
    let mut request = Request::new(request);
    request.metadata_mut().insert(TENANT_METADATA, "team-a".parse().unwrap());
    let response = client.export(request).await.unwrap().into_inner();
    assert_eq!(response.partial_success, None);
    let text = server.catalog.encode_text();
    assert!(
        text.contains(r#"strata_ingest_log_entries_received_total{protocol="otlp_grpc"} 3"#),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_go_through_the_plugged_in_translator() {
    let server = start(ByteSize::mib(4)).await;
    let mut client = MetricsServiceClient::new(channel(server.addr).await);
    let request = ExportMetricsServiceRequest { resource_metrics: vec![Default::default(); 2] };
    let response = client.export(request).await.unwrap().into_inner();
    let partial = response.partial_success.unwrap();
    assert_eq!(
        (partial.rejected_data_points, partial.error_message.as_str()),
        (2, "2 data points rejected")
    );
    assert_eq!(server.translated.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn over_size_messages_are_resource_exhausted_compressed_or_not() {
    let server = start(ByteSize::kib(1)).await;
    let big = traces((1..=40).map(span).collect());
    assert!(big.encoded_len() > 1024);
    let mut plain = TraceServiceClient::new(channel(server.addr).await);
    let status = plain.export(big.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.get_details_retry_info().is_none(), "not retryable");
    let mut zipped = TraceServiceClient::new(channel(server.addr).await)
        .send_compressed(CompressionEncoding::Gzip);
    let status = zipped.export(big).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // A small one still goes through.
    zipped.export(traces(vec![span(1)])).await.unwrap();
    let text = server.catalog.encode_text();
    assert!(
        text.contains(r#"strata_ingest_requests_total{protocol="otlp_grpc",code="8"} 2"#),
        "{text}"
    );
}

#[tokio::test]
async fn shutting_down_is_unavailable_with_retry_info() {
    let server = start(ByteSize::mib(4)).await;
    server.route.close().await;
    let mut client = TraceServiceClient::new(channel(server.addr).await);
    let status = client.export(traces(vec![span(1)])).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let retry = status.get_details_retry_info().expect("RetryInfo detail");
    assert_eq!(retry.retry_delay, Some(Duration::from_secs(1)));
    let mut logs = LogsServiceClient::new(channel(server.addr).await);
    let status = logs.export(ExportLogsServiceRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

#[test]
fn tenant_comes_from_metadata_or_the_default() {
    let catalog = Catalog::new();
    let ingest = OtlpIngest::new(&OtlpIngestConfig::default(), "fake", &catalog).unwrap();
    let mut request = Request::new(());
    assert_eq!(&*tenant_of(&request, &ingest), "fake");
    request.metadata_mut().insert(TENANT_METADATA, " team-a ".parse().unwrap());
    assert_eq!(&*tenant_of(&request, &ingest), "team-a");
    request.metadata_mut().insert(TENANT_METADATA, "".parse().unwrap());
    assert_eq!(&*tenant_of(&request, &ingest), "fake");
}

#[test]
fn statuses_follow_the_otlp_table() {
    let status =
        grpc_status(&OtlpError::Decode { what: "X", format: "protobuf", detail: "d".into() });
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.get_details_retry_info().is_none());
    let status =
        grpc_status(&OtlpError::Route(crate::route::RouteError::QueueFull { target: "t".into() }));
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.get_details_retry_info().is_some());
    assert_eq!(grpc_status(&OtlpError::TooLarge { limit: 1 }).code(), Code::ResourceExhausted);
}
