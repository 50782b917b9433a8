//! OTLP/gRPC: the `TraceService`, `MetricsService` and `LogsService` `Export` calls
//! (`opentelemetry.proto.collector.{trace,metrics,logs}.v1`, OTLP 1.x "OTLP/gRPC").
//!
//! Per call: the tenant is the `x-scope-orgid` metadata value (else the configured default);
//! before the message is even read, the router is asked whether the signal's targets have room
//! ([`Router::admit`]): if not, `UNAVAILABLE` with a `RetryInfo` detail, which OTLP clients
//! retry after the delay. Then tonic reads the message (gzip accepted, at most
//! `max_grpc_message_size` bytes after decompression) — trace requests as bytes that
//! [`OtlpIngest`] walks without decoding spans (`RawTraceServer`), metrics and logs decoded by
//! prost — [`OtlpIngest`] validates and relabels it,
//! and [`Router`] queues the batch; a full queue is again `UNAVAILABLE` + `RetryInfo`. Invalid
//! spans come back in `partial_success` with `OK`.
//!
//! Over-size messages get `RESOURCE_EXHAUSTED` without `RetryInfo`, which the spec says clients
//! must not retry. tonic answers an uncompressed over-size message with `OUT_OF_RANGE` instead
//! (a code OTLP clients *do* retry), so the services are wrapped in [`Guarded`], which rewrites
//! that one code; none of these services produces `OUT_OF_RANGE` otherwise.
//!
//! Metrics are translated by a function handed in at construction ([`TranslateMetrics`]), so
//! the translator plugs in without this file knowing it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::{CompressionEncoding, EnabledCompressionEncodings};
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::codec::PassThrough;
use super::response::{grpc_code, retry_after};
use super::{OtlpError, OtlpIngest};
use crate::model::{MetricBatch, Tenant};
use crate::route::{Router, Signal};
use crate::telemetry::IngestMetrics;

/// OTLP metrics → series: `(batch, rejected data points, message)`.
pub type TranslateMetrics =
    Arc<dyn Fn(&ExportMetricsServiceRequest) -> (MetricBatch, u64, Option<String>) + Send + Sync>;

/// The metadata key naming the tenant (Loki/Mimir/Tempo's `X-Scope-OrgID`).
pub const TENANT_METADATA: &str = "x-scope-orgid";

/// Requests with more items than this are processed with `block_in_place` (STYLE rule 6).
const BLOCKING_ITEMS: usize = 20_000;

/// The three OTLP services, ready to be served on `grpc_listen_address`.
pub fn grpc_routes(
    ingest: Arc<OtlpIngest>,
    route: &Arc<Router>,
    translate: TranslateMetrics,
) -> Routes {
    let limit = ingest.max_grpc_message_size();
    let metrics = ingest.grpc_metrics().clone();
    let handlers = Handlers { ingest, route: route.clone(), translate };
    let guard = |signal| Guard { route: route.clone(), signal, metrics: metrics.clone() };
    let traces = RawTraceServer { handlers: handlers.clone(), max_decoding: limit };
    let metrics_service = MetricsServiceServer::new(handlers.clone())
        .max_decoding_message_size(limit)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    let logs = LogsServiceServer::new(handlers)
        .max_decoding_message_size(limit)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    Routes::new(Guarded { inner: traces, guard: guard(Signal::Traces) })
        .add_service(Guarded { inner: metrics_service, guard: guard(Signal::Metrics) })
        .add_service(Guarded { inner: logs, guard: guard(Signal::Logs) })
}

/// The gRPC status of a failure: `INVALID_ARGUMENT`, `RESOURCE_EXHAUSTED`, or `UNAVAILABLE`;
/// retryable ones carry a `RetryInfo`.
pub fn grpc_status(err: &OtlpError) -> Status {
    let code = grpc_code(err.kind());
    match retry_after(err.kind()) {
        Some(seconds) => Status::with_error_details(
            code,
            err.to_string(),
            ErrorDetails::with_retry_info(Some(Duration::from_secs(seconds))),
        ),
        None => Status::new(code, err.to_string()),
    }
}

/// The tenant a call names, or the default one.
fn tenant_of<T>(request: &Request<T>, ingest: &OtlpIngest) -> Tenant {
    request
        .metadata()
        .get(TENANT_METADATA)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|tenant| !tenant.is_empty())
        .map_or_else(|| ingest.default_tenant().clone(), Tenant::from)
}

/// Runs CPU-heavy work off the async scheduler when it is large and the runtime allows it.
fn cpu_work<T>(items: usize, work: impl FnOnce() -> T) -> T {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if items > BLOCKING_ITEMS && multi_thread {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

/// The service implementations (one value serves all three).
#[derive(Clone)]
struct Handlers {
    ingest: Arc<OtlpIngest>,
    route: Arc<Router>,
    translate: TranslateMetrics,
}

/// `TraceService/Export` with the message as bytes ([`PassThrough`]): tonic does framing,
/// gzip and the size limit; the request is then walked like `POST /v1/traces`, so spans are
/// never decoded into structs (the generated server would decode them with prost, and the
/// forward sink would encode them again).
#[derive(Clone)]
struct RawTraceServer {
    handlers: Handlers,
    max_decoding: usize,
}

impl NamedService for RawTraceServer {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

const TRACE_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

impl tower::Service<http::Request<tonic::body::Body>> for RawTraceServer {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        if request.uri().path() != TRACE_EXPORT_PATH {
            return Box::pin(async {
                Ok(Status::unimplemented("unknown method of TraceService").into_http())
            });
        }
        let export = TraceExport(self.handlers.clone());
        let max_decoding = self.max_decoding;
        Box::pin(async move {
            let mut gzip = EnabledCompressionEncodings::default();
            gzip.enable(CompressionEncoding::Gzip);
            let mut grpc = tonic::server::Grpc::new(PassThrough)
                .apply_compression_config(gzip, gzip)
                .apply_max_message_size_config(Some(max_decoding), None);
            Ok(grpc.unary(export, request).await)
        })
    }
}

/// One `Export` call of [`RawTraceServer`].
struct TraceExport(Handlers);

impl tonic::server::UnaryService<Bytes> for TraceExport {
    type Response = Bytes;
    type Future = BoxFuture<Result<Response<Bytes>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let handlers = self.0.clone();
        Box::pin(async move {
            let tenant = tenant_of(&request, &handlers.ingest);
            let message = request.into_inner();
            // ~100 bytes per span is a cheap proxy for the work (no decode needed to count).
            let accepted = cpu_work(message.len() / 100, || {
                handlers.ingest.traces_grpc_protobuf(&tenant, &message)
            })
            .map_err(|err| grpc_status(&err))?;
            handlers
                .route
                .submit_traces(&accepted.batch)
                .await
                .map_err(|err| grpc_status(&err.into()))?;
            let partial_success = (accepted.rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: i64::try_from(accepted.rejected).unwrap_or(i64::MAX),
                error_message: accepted.message.unwrap_or_default(),
            });
            let response = ExportTraceServiceResponse { partial_success };
            Ok(Response::new(Bytes::from(response.encode_to_vec())))
        })
    }
}

#[tonic::async_trait]
impl LogsService for Handlers {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let tenant = tenant_of(&request, &self.ingest);
        let message = request.into_inner();
        let records = message
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum();
        let accepted = cpu_work(records, || self.ingest.logs(&tenant, message));
        self.route.submit_logs(&accepted.batch).await.map_err(|err| grpc_status(&err.into()))?;
        let partial_success = (accepted.rejected > 0).then(|| ExportLogsPartialSuccess {
            rejected_log_records: i64::try_from(accepted.rejected).unwrap_or(i64::MAX),
            error_message: accepted.message.unwrap_or_default(),
        });
        Ok(Response::new(ExportLogsServiceResponse { partial_success }))
    }
}

#[tonic::async_trait]
impl MetricsService for Handlers {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let message = request.into_inner();
        let points = data_points(&message);
        let (batch, rejected, error_message) = cpu_work(points, || (self.translate)(&message));
        self.route.submit_metrics(&batch).await.map_err(|err| grpc_status(&err.into()))?;
        let partial_success =
            (rejected > 0 || error_message.is_some()).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: i64::try_from(rejected).unwrap_or(i64::MAX),
                error_message: error_message.unwrap_or_default(),
            });
        Ok(Response::new(ExportMetricsServiceResponse { partial_success }))
    }
}

/// The number of data points in a metrics request (to decide whether translating it is heavy).
fn data_points(request: &ExportMetricsServiceRequest) -> usize {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    let metrics = request.resource_metrics.iter().flat_map(|r| &r.scope_metrics);
    metrics
        .flat_map(|s| &s.metrics)
        .map(|metric| match &metric.data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
            None => 0,
        })
        .sum()
}

/// What [`Guarded`] adds around a service.
#[derive(Clone)]
struct Guard {
    route: Arc<Router>,
    signal: Signal,
    metrics: IngestMetrics,
}

/// A generated OTLP service behind admission control, the `OUT_OF_RANGE` fix (see the module
/// docs) and request metrics (duration; count by gRPC code, `protocol="otlp_grpc"`).
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    guard: Guard,
}

impl<S: NamedService> NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> tower::Service<http::Request<tonic::body::Body>> for Guarded<S>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        // The clone that was polled ready is the one that serves (tower's usual swap).
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let guard = self.guard.clone();
        Box::pin(async move {
            let started = Instant::now();
            let mut response = match guard.route.admit(guard.signal).await {
                Err(err) => grpc_status(&err.into()).into_http(),
                Ok(()) => inner.call(request).await?,
            };
            let code = trailers_only_code(&mut response);
            guard.metrics.duration.observe(started.elapsed().as_secs_f64());
            guard.metrics.request_done(code as u16);
            Ok(response)
        })
    }
}

/// The code of a response that failed before its body (a "trailers-only" response: the status
/// is in the headers), with `OUT_OF_RANGE` rewritten to `RESOURCE_EXHAUSTED`; `Ok` otherwise.
fn trailers_only_code(response: &mut http::Response<tonic::body::Body>) -> i32 {
    let Some(value) = response.headers().get("grpc-status") else { return Code::Ok as i32 };
    let code = value.to_str().ok().and_then(|v| v.parse::<i32>().ok()).unwrap_or(2);
    if code == Code::OutOfRange as i32 {
        response
            .headers_mut()
            .insert("grpc-status", HeaderValue::from(Code::ResourceExhausted as i32));
        return Code::ResourceExhausted as i32;
    }
    code
}

#[cfg(test)]
#[path = "grpc_tests.rs"]
mod tests;
