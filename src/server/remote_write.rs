//! `POST /api/v1/write`: Prometheus remote-write 1.0 and 2.0.

use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{cpu_work, observed, AppState};
use crate::ingest::remote_write::{self, Received, Scratch, Version};
use crate::ingest::{read_body_capped, IngestError};
use crate::route::Signal;

/// Decoded bodies above this size are processed with `block_in_place`, so one huge request
/// does not stall the other tasks of its runtime thread (STYLE.md rule 6).
const BLOCKING_DECODE_THRESHOLD: usize = 1 << 20;

thread_local! {
    /// Decode buffers per runtime thread: a warm receiver allocates nothing to decode.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

pub(super) async fn handler(
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
    if response.status().is_client_error() {
        tracing::debug!(status = %response.status(), "rejected remote-write request");
    }
    observed(state.remote_write.metrics(version), started, response)
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
    let received = cpu_work(blocking, work).map_err(|e| (e, None))?;
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
