//! Test-side receiving ends of strata's forward sinks: what a Loki, an OTLP backend and a
//! Prometheus remote-write receiver would get, recorded for assertions.
//!
//! * [`LokiReceiver`]: `POST /loki/api/v1/push`, `logproto.PushRequest` protobuf + snappy
//!   (what strata and winston-loki send) and Loki's JSON (what pino-loki and
//!   python-logging-loki send), with the `X-Scope-OrgID` tenant of every push. The protobuf
//!   messages are declared here with `prost` derives from Loki's `pkg/push/push.proto`, not taken
//!   from strata, so strata's encoder is checked against an independent decoder.
//! * [`OtlpReceiver`]: OTLP/gRPC (tonic services for traces, metrics and logs) and OTLP/HTTP
//!   protobuf (`/v1/traces`, `/v1/metrics`, `/v1/logs`, optionally gzip), as an OpenTelemetry
//!   Collector would answer them.
//! * [`RemoteWriteReceiver`]: Prometheus remote-write 1.0 (`prometheus.WriteRequest` + snappy),
//!   decoded with local `prost` structs.
//!
//! Every receiver listens on 127.0.0.1 on a port the OS picked and runs as tasks of the
//! test's tokio runtime, so a test that runs client processes must wait for them without
//! blocking the runtime (see `clients::run_client`).

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

/// Largest body any receiver accepts after decompression (the tests send far less).
const MAX_DECODED: usize = 64 * 1024 * 1024;

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Snappy block decoding, capped: the claimed length is checked before allocating.
#[allow(clippy::disallowed_methods)] // capped right here
pub fn snappy_decode(body: &[u8]) -> Result<Vec<u8>, String> {
    let len = snap::raw::decompress_len(body).map_err(|e| format!("snappy header: {e}"))?;
    if len > MAX_DECODED {
        return Err(format!("snappy block claims {len} bytes"));
    }
    snap::raw::Decoder::new().decompress_vec(body).map_err(|e| format!("snappy: {e}"))
}

/// gzip decoding, capped at [`MAX_DECODED`].
pub fn gunzip(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(MAX_DECODED as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("gzip: {e}"))?;
    if out.len() > MAX_DECODED {
        return Err("gzip body too large".into());
    }
    Ok(out)
}

async fn serve_axum(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
    let addr = listener.local_addr().expect("receiver address");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            eprintln!("test receiver on {addr} stopped: {e}");
        }
    });
    addr
}

// ---------------------------------------------------------------------------------------------
// Loki push
// ---------------------------------------------------------------------------------------------

/// `logproto.PushRequest` (Loki `pkg/push/push.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// `logproto.StreamAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    #[prost(string, tag = "1")]
    pub labels: String,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// `logproto.EntryAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<ProtoTimestamp>,
    #[prost(string, tag = "2")]
    pub line: String,
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

/// `logproto.LabelPairAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPairAdapter {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoTimestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// One log entry as received.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceivedEntry {
    pub timestamp_ns: i128,
    pub line: String,
    pub structured_metadata: BTreeMap<String, String>,
}

/// One stream of one push.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceivedStream {
    /// The selector as sent (`{a="1", b="2"}`).
    pub selector: String,
    /// The selector parsed into labels.
    pub labels: BTreeMap<String, String>,
    pub entries: Vec<ReceivedEntry>,
}

/// One push request as received.
#[derive(Clone, Debug)]
pub struct LokiPush {
    /// `X-Scope-OrgID`, if any.
    pub tenant: Option<String>,
    pub content_type: String,
    pub content_encoding: Option<String>,
    pub streams: Vec<ReceivedStream>,
}

/// A flattened entry with the stream and tenant it arrived in.
#[derive(Clone, Debug)]
pub struct LokiLine {
    pub tenant: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub entry: ReceivedEntry,
}

#[derive(Default)]
struct LokiState {
    pushes: Mutex<Vec<LokiPush>>,
    errors: Mutex<Vec<String>>,
}

/// A Loki push endpoint on loopback that records every push.
#[derive(Clone)]
pub struct LokiReceiver {
    /// Base URL (`http://127.0.0.1:PORT`), what winston-loki and pino-loki take as `host`.
    pub base: String,
    /// Full push URL, what strata's `forward.loki[].url` takes.
    pub push_url: String,
    state: Arc<LokiState>,
}

impl LokiReceiver {
    pub async fn start() -> LokiReceiver {
        let state = Arc::new(LokiState::default());
        let router = axum::Router::new()
            .route("/loki/api/v1/push", axum::routing::post(loki_push))
            .with_state(state.clone());
        let addr = serve_axum(router).await;
        let base = format!("http://{addr}");
        LokiReceiver { push_url: format!("{base}/loki/api/v1/push"), base, state }
    }

    pub fn pushes(&self) -> Vec<LokiPush> {
        self.state.pushes.lock().unwrap().clone()
    }

    /// Requests the receiver could not decode (a test should expect none).
    pub fn errors(&self) -> Vec<String> {
        self.state.errors.lock().unwrap().clone()
    }

    /// Every entry received so far, with its stream labels and tenant, in arrival order.
    pub fn lines(&self) -> Vec<LokiLine> {
        let pushes = self.state.pushes.lock().unwrap();
        let mut out = Vec::new();
        for push in pushes.iter() {
            for stream in &push.streams {
                for entry in &stream.entries {
                    out.push(LokiLine {
                        tenant: push.tenant.clone(),
                        labels: stream.labels.clone(),
                        entry: entry.clone(),
                    });
                }
            }
        }
        out
    }
}

async fn loki_push(
    State(state): State<Arc<LokiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = header(&headers, "content-type").unwrap_or_default();
    let content_encoding = header(&headers, "content-encoding");
    match decode_loki_push(&content_type, content_encoding.as_deref(), &body) {
        Ok(streams) => {
            state.pushes.lock().unwrap().push(LokiPush {
                tenant: header(&headers, "x-scope-orgid"),
                content_type,
                content_encoding,
                streams,
            });
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            eprintln!("test loki receiver: rejected a push: {e}");
            state.errors.lock().unwrap().push(e.clone());
            (StatusCode::BAD_REQUEST, e).into_response()
        }
    }
}

/// Decodes a push as Loki's distributor does: protobuf (snappy unless `Content-Encoding` says
/// otherwise) or JSON (optionally gzip).
pub fn decode_loki_push(
    content_type: &str,
    content_encoding: Option<&str>,
    body: &[u8],
) -> Result<Vec<ReceivedStream>, String> {
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let raw = match content_encoding.map(str::to_ascii_lowercase).as_deref() {
        Some("gzip") => gunzip(body)?,
        Some("snappy") => snappy_decode(body)?,
        None | Some("") | Some("identity") if media == "application/x-protobuf" => {
            snappy_decode(body)?
        }
        None | Some("") | Some("identity") => body.to_vec(),
        Some(other) => return Err(format!("unsupported content-encoding {other:?}")),
    };
    match media.as_str() {
        "application/x-protobuf" => {
            let push = PushRequest::decode(raw.as_slice()).map_err(|e| format!("protobuf: {e}"))?;
            push.streams
                .into_iter()
                .map(|s| {
                    let labels = parse_selector(&s.labels)?;
                    let entries = s
                        .entries
                        .into_iter()
                        .map(|e| {
                            let ts = e.timestamp.unwrap_or_default();
                            ReceivedEntry {
                                timestamp_ns: i128::from(ts.seconds) * 1_000_000_000
                                    + i128::from(ts.nanos),
                                line: e.line,
                                structured_metadata: e
                                    .structured_metadata
                                    .into_iter()
                                    .map(|p| (p.name, p.value))
                                    .collect(),
                            }
                        })
                        .collect();
                    Ok(ReceivedStream { selector: s.labels, labels, entries })
                })
                .collect()
        }
        "application/json" | "" => decode_loki_json(&raw),
        other => Err(format!("unsupported content-type {other:?}")),
    }
}

/// Loki's JSON push: `{"streams":[{"stream":{..},"values":[["<ns>","line",{meta}?],..]}]}`.
fn decode_loki_json(raw: &[u8]) -> Result<Vec<ReceivedStream>, String> {
    let v: serde_json::Value = serde_json::from_slice(raw).map_err(|e| format!("json: {e}"))?;
    let streams = v["streams"].as_array().ok_or("json: no streams array")?;
    let mut out = Vec::new();
    for s in streams {
        let labels: BTreeMap<String, String> = s["stream"]
            .as_object()
            .ok_or("json: stream without labels object")?
            .iter()
            .map(|(k, v)| {
                (k.clone(), v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
            })
            .collect();
        let mut entries = Vec::new();
        for value in s["values"].as_array().ok_or("json: stream without values")? {
            let ts = value[0]
                .as_str()
                .ok_or("json: timestamp is not a string")?
                .parse::<i128>()
                .map_err(|e| format!("json: timestamp: {e}"))?;
            let line = value[1].as_str().ok_or("json: line is not a string")?.to_owned();
            let structured_metadata = value
                .get(2)
                .and_then(|m| m.as_object())
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            entries.push(ReceivedEntry { timestamp_ns: ts, line, structured_metadata });
        }
        let selector = format!(
            "{{{}}}",
            labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join(", ")
        );
        out.push(ReceivedStream { selector, labels, entries });
    }
    Ok(out)
}

/// Parses a LogQL stream selector of equality matchers, `{a="1", b="x\"y"}`, as Loki push
/// carries it. Values are Go-quoted strings (`\"`, `\\`, `\n`, `\t`, `\r`, `\xNN`, `\uNNNN`).
pub fn parse_selector(selector: &str) -> Result<BTreeMap<String, String>, String> {
    let bad = |what: &str| format!("selector {selector:?}: {what}");
    let inner = selector
        .trim()
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or_else(|| bad("not enclosed in braces"))?;
    let mut labels = BTreeMap::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            name.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(bad("expected '='"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('"') {
            return Err(bad("expected '\"'"));
        }
        let mut value = String::new();
        loop {
            match chars.next().ok_or_else(|| bad("unterminated value"))? {
                '"' => break,
                '\\' => match chars.next().ok_or_else(|| bad("dangling escape"))? {
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    'r' => value.push('\r'),
                    'x' => {
                        let hex: String = chars.by_ref().take(2).collect();
                        let byte = u8::from_str_radix(&hex, 16).map_err(|_| bad("bad \\x"))?;
                        value.push(char::from(byte));
                    }
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        let code = u32::from_str_radix(&hex, 16).map_err(|_| bad("bad \\u"))?;
                        value.push(char::from_u32(code).ok_or_else(|| bad("bad \\u"))?);
                    }
                    other => value.push(other),
                },
                c => value.push(c),
            }
        }
        if name.is_empty() {
            return Err(bad("empty label name"));
        }
        if labels.insert(name.clone(), value).is_some() {
            return Err(bad(&format!("duplicate label {name:?}")));
        }
    }
    Ok(labels)
}

// ---------------------------------------------------------------------------------------------
// OTLP
// ---------------------------------------------------------------------------------------------

/// How an OTLP request arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpTransport {
    Grpc,
    Http,
}

/// One OTLP export request as received.
#[derive(Clone, Debug)]
pub struct OtlpRequest<T> {
    pub transport: OtlpTransport,
    /// `X-Scope-OrgID` (HTTP header or gRPC metadata), if any.
    pub tenant: Option<String>,
    /// `Content-Encoding` (HTTP) or `grpc-encoding` (gRPC), if any.
    pub encoding: Option<String>,
    pub request: T,
}

#[derive(Default)]
struct OtlpState {
    traces: Mutex<Vec<OtlpRequest<ExportTraceServiceRequest>>>,
    metrics: Mutex<Vec<OtlpRequest<ExportMetricsServiceRequest>>>,
    logs: Mutex<Vec<OtlpRequest<ExportLogsServiceRequest>>>,
    errors: Mutex<Vec<String>>,
}

/// An OTLP receiver (gRPC and HTTP protobuf, all three signals) on loopback.
#[derive(Clone)]
pub struct OtlpReceiver {
    /// `http://127.0.0.1:PORT`: the gRPC endpoint.
    pub grpc_endpoint: String,
    /// `http://127.0.0.1:PORT`: the HTTP base URL (`/v1/<signal>` appended by clients).
    pub http_endpoint: String,
    state: Arc<OtlpState>,
}

impl OtlpReceiver {
    pub async fn start() -> OtlpReceiver {
        let state = Arc::new(OtlpState::default());
        let grpc_endpoint = start_otlp_grpc(state.clone()).await;
        let router = axum::Router::new()
            .route("/v1/traces", axum::routing::post(otlp_http_traces))
            .route("/v1/metrics", axum::routing::post(otlp_http_metrics))
            .route("/v1/logs", axum::routing::post(otlp_http_logs))
            .with_state(state.clone());
        let http_endpoint = format!("http://{}", serve_axum(router).await);
        OtlpReceiver { grpc_endpoint, http_endpoint, state }
    }

    pub fn traces(&self) -> Vec<OtlpRequest<ExportTraceServiceRequest>> {
        self.state.traces.lock().unwrap().clone()
    }

    pub fn metrics(&self) -> Vec<OtlpRequest<ExportMetricsServiceRequest>> {
        self.state.metrics.lock().unwrap().clone()
    }

    pub fn logs(&self) -> Vec<OtlpRequest<ExportLogsServiceRequest>> {
        self.state.logs.lock().unwrap().clone()
    }

    /// Requests the receiver could not decode (a test should expect none).
    pub fn errors(&self) -> Vec<String> {
        self.state.errors.lock().unwrap().clone()
    }

    /// Number of spans received so far.
    pub fn span_count(&self) -> usize {
        self.state
            .traces
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| &r.request.resource_spans)
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum()
    }
}

struct GrpcSink(Arc<OtlpState>);

fn grpc_meta<T>(request: &tonic::Request<T>, name: &str) -> Option<String> {
    request.metadata().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

#[tonic::async_trait]
impl TraceService for GrpcSink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let record = OtlpRequest {
            transport: OtlpTransport::Grpc,
            tenant: grpc_meta(&request, "x-scope-orgid"),
            encoding: grpc_meta(&request, "grpc-encoding"),
            request: request.into_inner(),
        };
        self.0.traces.lock().unwrap().push(record);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for GrpcSink {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let record = OtlpRequest {
            transport: OtlpTransport::Grpc,
            tenant: grpc_meta(&request, "x-scope-orgid"),
            encoding: grpc_meta(&request, "grpc-encoding"),
            request: request.into_inner(),
        };
        self.0.metrics.lock().unwrap().push(record);
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for GrpcSink {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let record = OtlpRequest {
            transport: OtlpTransport::Grpc,
            tenant: grpc_meta(&request, "x-scope-orgid"),
            encoding: grpc_meta(&request, "grpc-encoding"),
            request: request.into_inner(),
        };
        self.0.logs.lock().unwrap().push(record);
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

async fn start_otlp_grpc(state: Arc<OtlpState>) -> String {
    use tonic::codec::CompressionEncoding::Gzip;
    let incoming = tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().unwrap())
        .expect("bind OTLP gRPC receiver");
    let addr = incoming.local_addr().expect("OTLP gRPC receiver address");
    let router = tonic::transport::Server::builder()
        .add_service(
            TraceServiceServer::new(GrpcSink(state.clone()))
                .accept_compressed(Gzip)
                .max_decoding_message_size(MAX_DECODED),
        )
        .add_service(
            MetricsServiceServer::new(GrpcSink(state.clone()))
                .accept_compressed(Gzip)
                .max_decoding_message_size(MAX_DECODED),
        )
        .add_service(
            LogsServiceServer::new(GrpcSink(state))
                .accept_compressed(Gzip)
                .max_decoding_message_size(MAX_DECODED),
        );
    tokio::spawn(async move {
        if let Err(e) = router.serve_with_incoming(incoming).await {
            eprintln!("test OTLP gRPC receiver on {addr} stopped: {e}");
        }
    });
    format!("http://{addr}")
}

/// Decodes an OTLP/HTTP protobuf body (gzip allowed) and records it; answers like a Collector:
/// 200 with an empty protobuf `Export*ServiceResponse`.
fn otlp_http<T: Message + Default, R: Message + Default>(
    state: &OtlpState,
    headers: &HeaderMap,
    body: &[u8],
    store: impl FnOnce(OtlpRequest<T>),
) -> Response {
    let content_type = header(headers, "content-type").unwrap_or_default();
    let encoding = header(headers, "content-encoding");
    let decoded = (|| {
        if !content_type.starts_with("application/x-protobuf") {
            return Err(format!("unsupported content-type {content_type:?}"));
        }
        let raw = match encoding.as_deref() {
            Some("gzip") => gunzip(body)?,
            None | Some("identity") => body.to_vec(),
            Some(other) => return Err(format!("unsupported content-encoding {other:?}")),
        };
        T::decode(raw.as_slice()).map_err(|e| format!("protobuf: {e}"))
    })();
    match decoded {
        Ok(request) => {
            store(OtlpRequest {
                transport: OtlpTransport::Http,
                tenant: header(headers, "x-scope-orgid"),
                encoding,
                request,
            });
            (
                StatusCode::OK,
                [("content-type", "application/x-protobuf")],
                R::default().encode_to_vec(),
            )
                .into_response()
        }
        Err(e) => {
            eprintln!("test OTLP HTTP receiver: rejected a request: {e}");
            state.errors.lock().unwrap().push(e.clone());
            (StatusCode::BAD_REQUEST, e).into_response()
        }
    }
}

async fn otlp_http_traces(
    State(state): State<Arc<OtlpState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    otlp_http::<ExportTraceServiceRequest, ExportTraceServiceResponse>(
        &state,
        &headers,
        &body,
        |r| state.traces.lock().unwrap().push(r),
    )
}

async fn otlp_http_metrics(
    State(state): State<Arc<OtlpState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    otlp_http::<ExportMetricsServiceRequest, ExportMetricsServiceResponse>(
        &state,
        &headers,
        &body,
        |r| state.metrics.lock().unwrap().push(r),
    )
}

async fn otlp_http_logs(
    State(state): State<Arc<OtlpState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    otlp_http::<ExportLogsServiceRequest, ExportLogsServiceResponse>(&state, &headers, &body, |r| {
        state.logs.lock().unwrap().push(r)
    })
}

// ---------------------------------------------------------------------------------------------
// Prometheus remote-write 1.0
// ---------------------------------------------------------------------------------------------

/// `prometheus.WriteRequest` (Prometheus `prompb/remote.proto`); metadata (field 3) and
/// native histograms are not needed by these tests and are skipped by prost.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<PromLabel>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<PromSample>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PromLabel {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PromSample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// One series of one remote-write request.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceivedSeries {
    pub labels: BTreeMap<String, String>,
    /// (timestamp ms, value)
    pub samples: Vec<(i64, f64)>,
}

impl ReceivedSeries {
    pub fn name(&self) -> &str {
        self.labels.get("__name__").map(String::as_str).unwrap_or("")
    }
}

#[derive(Default)]
struct RemoteWriteState {
    series: Mutex<Vec<ReceivedSeries>>,
    errors: Mutex<Vec<String>>,
}

/// A Prometheus remote-write 1.0 receiver on loopback.
#[derive(Clone)]
pub struct RemoteWriteReceiver {
    /// `http://127.0.0.1:PORT/api/v1/write`
    pub url: String,
    state: Arc<RemoteWriteState>,
}

impl RemoteWriteReceiver {
    pub async fn start() -> RemoteWriteReceiver {
        let state = Arc::new(RemoteWriteState::default());
        let router = axum::Router::new()
            .route("/api/v1/write", axum::routing::post(remote_write))
            .with_state(state.clone());
        let addr = serve_axum(router).await;
        RemoteWriteReceiver { url: format!("http://{addr}/api/v1/write"), state }
    }

    /// Every series of every request, in arrival order (a series sent twice appears twice).
    pub fn series(&self) -> Vec<ReceivedSeries> {
        self.state.series.lock().unwrap().clone()
    }

    pub fn errors(&self) -> Vec<String> {
        self.state.errors.lock().unwrap().clone()
    }

    /// The latest sample of every distinct label set.
    pub fn latest(&self) -> BTreeMap<BTreeMap<String, String>, f64> {
        let mut out = BTreeMap::new();
        for s in self.state.series.lock().unwrap().iter() {
            if let Some((_, v)) = s.samples.iter().max_by_key(|(t, _)| *t) {
                out.insert(s.labels.clone(), *v);
            }
        }
        out
    }
}

async fn remote_write(
    State(state): State<Arc<RemoteWriteState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let decoded = (|| {
        let content_type = header(&headers, "content-type").unwrap_or_default();
        if !content_type.starts_with("application/x-protobuf") {
            return Err(format!("unsupported content-type {content_type:?}"));
        }
        let raw = snappy_decode(&body)?;
        WriteRequest::decode(raw.as_slice()).map_err(|e| format!("protobuf: {e}"))
    })();
    match decoded {
        Ok(request) => {
            let mut series = state.series.lock().unwrap();
            for ts in request.timeseries {
                series.push(ReceivedSeries {
                    labels: ts.labels.into_iter().map(|l| (l.name, l.value)).collect(),
                    samples: ts.samples.into_iter().map(|s| (s.timestamp, s.value)).collect(),
                });
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            eprintln!("test remote-write receiver: rejected a request: {e}");
            state.errors.lock().unwrap().push(e.clone());
            (StatusCode::BAD_REQUEST, e).into_response()
        }
    }
}
