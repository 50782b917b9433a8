//! The one HTTP listener: ingest, operations and query on one axum router, and the single
//! mapping from error kinds to status codes (`DESIGN.md` §3).
//!
//! | path | what |
//! |---|---|
//! | `POST /api/v1/write` | Prometheus remote-write 1.0 and 2.0 |
//! | `POST /loki/api/v1/push` | Loki push (protobuf + snappy, JSON; gzip/deflate) |
//! | `POST /v1/traces`, `/v1/metrics`, `/v1/logs` | OTLP/HTTP (protobuf, JSON; gzip) |
//! | `POST /api/v2/spans` | Zipkin v2 JSON spans |
//! | `GET /metrics` | Strata's own metrics (OpenMetrics text) |
//! | `GET /-/healthy` | 200 while the process runs |
//! | `GET /-/ready` | 200 once the WAL is replayed and serving, 503 before and while shutting down |
//! | `GET/POST /api/v1/query`, `/api/v1/query_range`, `/api/v1/series`, `/api/v1/labels`, `GET /api/v1/label/<name>/values`, `/api/v1/metadata`, `/api/v1/query_exemplars`, `/api/v1/format_query`, `/api/v1/status/buildinfo` | the Prometheus query API (`query`) |
//! | `GET /api/v1/rules`, `GET /api/v1/alerts` | rule groups and active alerts (`rules`) |
//! | `POST /-/reload` | re-read and validate the rule files; a bad file keeps the old rules |
//! | `GET /api/v1/status/storage`, `POST /api/v1/admin/storage/flush` | storage status; cut the head now |
//!
//! Error bodies are short lowercase text saying what was wrong and where.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::error::ErrorKind;
use crate::ingest::loki::LokiIngest;
use crate::ingest::otlp::grpc::TranslateMetrics;
use crate::ingest::otlp::OtlpIngest;
use crate::ingest::remote_write::RemoteWriteIngest;
use crate::ingest::zipkin::ZipkinIngest;
use crate::ingest::IngestError;
use crate::model::Tenant;
use crate::route::Router as Route;
use crate::telemetry::Catalog;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub remote_write: Arc<RemoteWriteIngest>,
    pub loki: Arc<LokiIngest>,
    pub otlp: Arc<OtlpIngest>,
    pub zipkin: Arc<ZipkinIngest>,
    pub translate_metrics: TranslateMetrics,
    pub default_tenant: Tenant,
    pub route: Arc<Route>,
    pub catalog: Arc<Catalog>,
    pub ready: Arc<AtomicBool>,
    /// The Prometheus query API's engine and data; `None` in roles without storage.
    pub query: Option<Arc<query::QueryApi>>,
    /// Rule groups and alerts; `None` in roles without storage.
    pub rules: Option<crate::rules::Manager>,
}

/// The status code for an error kind: the only place this mapping exists.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn text(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let status = status_for(self.kind());
        let mut response = text(status, format!("{self}\n"));
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

mod loki;
mod otlp;
pub mod query;
mod remote_write;
pub mod rules;
mod storage;
mod zipkin;

/// Bodies larger than this are decoded with `block_in_place`, so one huge request does not
/// stall the other tasks of its runtime thread (STYLE.md rule 6).
const BLOCKING_BODY_BYTES: usize = 256 << 10;

/// Runs decode work inline, or with `block_in_place` when the body is large (`blocking`).
fn cpu_work<T>(blocking: bool, work: impl FnOnce() -> T) -> T {
    if blocking {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

/// Records a finished ingest request (duration, count by status) and returns its response.
fn observed(
    metrics: &crate::telemetry::IngestMetrics,
    started: std::time::Instant,
    response: Response,
) -> Response {
    metrics.duration.observe(started.elapsed().as_secs_f64());
    metrics.request_done(response.status().as_u16());
    response
}

/// Longest tenant id accepted (Loki/Cortex `MaxTenantIDLength`).
const MAX_TENANT_LENGTH: usize = 150;

/// The tenant of a log or trace request: `X-Scope-OrgID`, else the configured default. Ids
/// follow Loki's rules (dskit `tenant.ValidTenantID`): at most 150 bytes of
/// `[a-zA-Z0-9!-_.*'()]`, and not `.` or `..` (they become object-store path segments).
pub(crate) fn tenant_of(headers: &HeaderMap, default: &Tenant) -> Result<Tenant, IngestError> {
    let Some(value) = headers.get("x-scope-orgid") else { return Ok(default.clone()) };
    let id = value.to_str().unwrap_or_default();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "!-_.*'()".contains(c);
    if id.is_empty()
        || id.len() > MAX_TENANT_LENGTH
        || !id.chars().all(allowed)
        || id == "."
        || id == ".."
    {
        let shown: String = String::from_utf8_lossy(value.as_bytes()).chars().take(64).collect();
        return Err(IngestError::Invalid(format!(
            "x-scope-orgid {shown:?} is not a valid tenant id (1-150 characters of a-z A-Z 0-9 ! - _ . * ' ( ))"
        )));
    }
    Ok(id.into())
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/write", post(remote_write::handler))
        .route("/loki/api/v1/push", post(loki::handler))
        .route("/v1/traces", post(otlp::traces))
        .route("/v1/metrics", post(otlp::metrics))
        .route("/v1/logs", post(otlp::logs))
        .route("/api/v2/spans", post(zipkin::handler))
        .route("/metrics", get(metrics_handler))
        .route("/-/healthy", get(|| async { "Strata is Healthy.\n" }))
        .route("/-/ready", get(ready_handler))
        .route("/api/v1/status/storage", get(storage::status))
        .route("/api/v1/admin/storage/flush", post(storage::flush))
        .merge(query::routes())
        .route("/api/v1/rules", get(rules::rules))
        .route("/api/v1/alerts", get(rules::alerts))
        .route("/-/reload", post(rules::reload).put(rules::reload))
        .fallback(|| async { text(StatusCode::NOT_FOUND, "not found\n".into()) })
        .with_state(state)
}

/// The OTLP/HTTP listener (`ingest.otlp.http_listen_address`, :4318 by default): the OTLP
/// paths only, plus health.
pub fn otlp_router(state: AppState) -> Router {
    Router::new()
        .route("/v1/traces", post(otlp::traces))
        .route("/v1/metrics", post(otlp::metrics))
        .route("/v1/logs", post(otlp::logs))
        .route("/-/healthy", get(|| async { "Strata is Healthy.\n" }))
        .route("/-/ready", get(ready_handler))
        .fallback(|| async { text(StatusCode::NOT_FOUND, "not found\n".into()) })
        .with_state(state)
}

async fn ready_handler(State(state): State<AppState>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        text(StatusCode::OK, "Strata is Ready.\n".into())
    } else {
        let why = if state.route.is_replaying() {
            "replaying the write-ahead log"
        } else {
            "shutting down"
        };
        text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n"))
    }
}

async fn metrics_handler(State(state): State<AppState>) -> Response {
    let mut response = state.catalog.encode_text().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
