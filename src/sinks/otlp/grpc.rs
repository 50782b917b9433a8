//! The OTLP/gRPC transport: unary `Export` calls carrying the request bytes as they are (a
//! pass-through codec: the body is already an encoded `ExportTraceServiceRequest`), and the
//! classification of a call's status per the OTLP spec's retryable codes.

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::config::{Compression, OtlpTarget};
use crate::ingest::otlp::codec::PassThrough;
use crate::sinks::queue::{SendError, Transport};
use crate::telemetry::ForwardMetrics;

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Sends pre-encoded export requests to one OTLP/gRPC endpoint.
pub struct GrpcSender {
    name: String,
    channel: Channel,
    gzip: bool,
    timeout: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    metadata: Vec<(tonic::metadata::AsciiMetadataKey, tonic::metadata::AsciiMetadataValue)>,
    metrics: ForwardMetrics,
}

impl GrpcSender {
    /// `config` is validated (endpoint is an absolute http:// URL).
    pub fn new(config: &OtlpTarget, name: String, metrics: ForwardMetrics) -> Self {
        let timeout = config.remote_timeout.get();
        let channel = Endpoint::from_shared(config.endpoint.clone())
            .expect("validated endpoint")
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        let mut metadata = Vec::new();
        for (key, value) in &config.headers {
            if let (Ok(key), Ok(value)) = (
                key.to_ascii_lowercase().parse(),
                value.parse::<tonic::metadata::AsciiMetadataValue>(),
            ) {
                metadata.push((key, value));
            }
        }
        if let Some(auth) = authorization(config) {
            if let (Ok(key), Ok(value)) = ("authorization".parse(), auth.parse()) {
                metadata.push((key, value));
            }
        }
        Self {
            name,
            channel,
            gzip: config.compression == Compression::Gzip,
            timeout,
            min_backoff: config.queue_config.min_backoff.get(),
            max_backoff: config.queue_config.max_backoff.get(),
            metadata,
            metrics,
        }
    }

    async fn export(&self, body: Bytes, extra: &HeaderMap) -> Result<(), SendError> {
        let mut client = tonic::client::Grpc::new(self.channel.clone());
        if self.gzip {
            client = client.send_compressed(CompressionEncoding::Gzip);
        }
        client.ready().await.map_err(|e| SendError::Retryable {
            reason: format!("grpc channel not ready: {e}"),
            retry_after: None,
        })?;
        let mut request = tonic::Request::new(body);
        request.set_timeout(self.timeout);
        for (key, value) in &self.metadata {
            request.metadata_mut().insert(key.clone(), value.clone());
        }
        for (name, value) in extra {
            if let (Ok(key), Ok(value)) = (
                name.as_str().parse::<tonic::metadata::AsciiMetadataKey>(),
                value.to_str().unwrap_or_default().parse(),
            ) {
                request.metadata_mut().insert(key, value);
            }
        }
        let started = std::time::Instant::now();
        let path = http::uri::PathAndQuery::from_static(EXPORT_PATH);
        let outcome = client.unary(request, path, PassThrough).await;
        self.metrics.duration.observe(started.elapsed().as_secs_f64());
        match outcome {
            Ok(response) => {
                self.metrics.requests_success.inc();
                if let Ok(decoded) = ExportTraceServiceResponse::decode(response.into_inner()) {
                    if let Some(partial) = decoded.partial_success {
                        if partial.rejected_spans > 0 || !partial.error_message.is_empty() {
                            tracing::warn!(target_name = %self.name, rejected_spans = partial.rejected_spans, message = %partial.error_message, "otlp receiver rejected part of an export");
                        }
                    }
                }
                Ok(())
            }
            Err(status) => Err(self.classify(&status)),
        }
    }

    fn classify(&self, status: &Status) -> SendError {
        let retry_after = status.get_details_retry_info().and_then(|info| info.retry_delay);
        let retryable = match status.code() {
            Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::OutOfRange
            | Code::Unavailable
            | Code::DataLoss => true,
            Code::ResourceExhausted => retry_after.is_some(),
            _ => false,
        };
        if retryable {
            self.metrics.requests_retry.inc();
            SendError::Retryable {
                reason: format!("grpc {:?}: {}", status.code(), status.message()),
                retry_after: retry_after.filter(|d| *d <= Duration::from_secs(300)),
            }
        } else {
            self.metrics.requests_rejected.inc();
            SendError::Rejected {
                status: format!("grpc {:?}", status.code()),
                body: status.message().to_owned(),
            }
        }
    }
}

impl Transport for GrpcSender {
    type Extra = HeaderMap;

    fn name(&self) -> &str {
        &self.name
    }
    fn min_backoff(&self) -> Duration {
        self.min_backoff
    }
    fn max_backoff(&self) -> Duration {
        self.max_backoff
    }
    async fn send(&self, body: Bytes, extra: &HeaderMap) -> Result<(), SendError> {
        self.export(body, extra).await
    }
}

/// `authorization` metadata from the target's static credentials (files are read once here;
/// gRPC channels keep their metadata per call, so rotation needs a restart for now).
fn authorization(config: &OtlpTarget) -> Option<String> {
    use base64::Engine;
    if let Some(basic) = &config.basic_auth {
        let password = match (&basic.password, &basic.password_file) {
            (Some(password), _) => password.clone(),
            (None, Some(path)) => std::fs::read_to_string(path).ok()?.trim().to_owned(),
            (None, None) => String::new(),
        };
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{password}", basic.username));
        return Some(format!("Basic {encoded}"));
    }
    if let Some(token) = &config.bearer_token {
        return Some(format!("Bearer {token}"));
    }
    if let Some(path) = &config.bearer_token_file {
        return Some(format!("Bearer {}", std::fs::read_to_string(path).ok()?.trim()));
    }
    None
}
