//! The one HTTP listener: ingest, operations (and later query) on one axum router, and the single
//! mapping from error kinds to status codes (`DESIGN.md` §3).
//!
//! | path | what |
//! |---|---|
//! | `POST /api/v1/write` | Prometheus remote-write 1.0 and 2.0 |
//! | `GET /metrics` | Strata's own metrics (OpenMetrics text) |
//! | `GET /-/healthy` | 200 while the process runs |
//! | `GET /-/ready` | 200 once serving, 503 while shutting down |
//!
//! Error bodies are short lowercase text saying what was wrong and where.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::error::ErrorKind;
use crate::ingest::remote_write::{self, Received, RemoteWriteIngest, Scratch, Version};
use crate::ingest::{read_body_capped, IngestError};
use crate::route::{Router as Route, Signal};
use crate::telemetry::Catalog;

/// Decoded bodies above this size are processed with `block_in_place`, so one huge request
/// does not stall the other tasks of its runtime thread (STYLE.md rule 6).
const BLOCKING_DECODE_THRESHOLD: usize = 1 << 20;

thread_local! {
    /// Decode buffers per runtime thread: a warm receiver allocates nothing to decode.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub remote_write: Arc<RemoteWriteIngest>,
    pub route: Arc<Route>,
    pub catalog: Arc<Catalog>,
    pub ready: Arc<AtomicBool>,
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

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/write", post(remote_write_handler))
        .route("/metrics", get(metrics_handler))
        .route("/-/healthy", get(|| async { "Strata is Healthy.\n" }))
        .route("/-/ready", get(ready_handler))
        .fallback(|| async { text(StatusCode::NOT_FOUND, "not found\n".into()) })
        .with_state(state)
}

async fn ready_handler(State(state): State<AppState>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        text(StatusCode::OK, "Strata is Ready.\n".into())
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into())
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

async fn remote_write_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let negotiated = remote_write::negotiate(
        header_str(header::CONTENT_TYPE),
        header_str(header::CONTENT_ENCODING),
    );
    let version = negotiated.as_ref().copied().unwrap_or(Version::V1);
    let response = match negotiated {
        Err(err) => err.into_response(),
        Ok(version) => {
            let content_length = header_str(header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
            match handle_remote_write(&state, version, body, content_length).await {
                Ok(received) => written_response(version, &received),
                Err((err, received)) => {
                    let mut response = err.into_response();
                    if let Some(received) = received {
                        add_written_headers(version, &received, response.headers_mut());
                    }
                    response
                }
            }
        }
    };
    let metrics = state.remote_write.metrics(version);
    metrics.duration.observe(started.elapsed().as_secs_f64());
    metrics.request_done(response.status().as_u16());
    if response.status().is_client_error() {
        tracing::debug!(status = %response.status(), "rejected remote-write request");
    }
    response
}

type HandlerError = (IngestError, Option<Received>);

async fn handle_remote_write(
    state: &AppState,
    version: Version,
    body: Body,
    content_length: Option<u64>,
) -> Result<Received, HandlerError> {
    state.route.admit(Signal::Metrics).await.map_err(|e| (e.into(), None))?;
    let compressed = read_body_capped(body, content_length, state.remote_write.max_body_size())
        .await
        .map_err(|e| (e, None))?;
    let ingest = state.remote_write.clone();
    let blocking = compressed.len() * 4 > BLOCKING_DECODE_THRESHOLD;
    let work =
        move || SCRATCH.with_borrow_mut(|scratch| ingest.receive(&compressed, version, scratch));
    let received =
        if blocking { tokio::task::block_in_place(work) } else { work() }.map_err(|e| (e, None))?;
    if let Err(err) = state.route.submit_metrics(&received.batch).await {
        return Err((err.into(), None));
    }
    if let Some(message) = received.rejection_message() {
        return Err((IngestError::Invalid(message), Some(received)));
    }
    Ok(received)
}

fn add_written_headers(version: Version, received: &Received, headers: &mut HeaderMap) {
    if version != Version::V2 {
        return;
    }
    let batch = &received.batch;
    for (name, count) in [
        ("x-prometheus-remote-write-samples-written", batch.sample_count()),
        ("x-prometheus-remote-write-histograms-written", batch.histogram_count()),
        ("x-prometheus-remote-write-exemplars-written", batch.exemplar_count()),
    ] {
        headers.insert(name, HeaderValue::from(count));
    }
}

fn written_response(version: Version, received: &Received) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    add_written_headers(version, received, response.headers_mut());
    response
}
