//! `POST /loki/api/v1/push`: Loki push (protobuf + snappy, JSON; gzip/deflate bodies).
//!
//! Status codes as Loki's distributor answers: 204 accepted; 400 with the rejected streams
//! named (the valid rest of the push is accepted and forwarded); 413/415; 429 over the
//! tenant's ingestion rate or when a forward queue is full (Loki's "retry later" code for
//! pushes; Promtail and Alloy back off on it); 503 while shutting down.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{cpu_work, observed, tenant_of, AppState, BLOCKING_BODY_BYTES};
use crate::ingest::{read_body_capped, IngestError};
use crate::route::{RouteError, Signal};

pub(super) async fn handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let response = match handle(&state, &headers, body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => err.into_response(),
    };
    observed(state.loki.metrics(), started, response)
}

/// A full forward queue is Loki's 429 ("retry later"); shutting down stays 503.
fn queue_error(err: RouteError) -> IngestError {
    match err {
        RouteError::QueueFull { .. } => IngestError::RateLimited(err.to_string()),
        RouteError::ShuttingDown | RouteError::Replaying | RouteError::Storage(_) => err.into(),
    }
}

async fn handle(state: &AppState, headers: &HeaderMap, body: Body) -> Result<(), IngestError> {
    let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let tenant = tenant_of(headers, &state.default_tenant)?;
    state.route.admit(Signal::Logs).await.map_err(queue_error)?;
    let content_length = header_str(header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
    let body = read_body_capped(body, content_length, state.loki.max_body_size()).await?;
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_default();
    let loki = state.loki.clone();
    let content_type = header_str(header::CONTENT_TYPE).map(str::to_owned);
    let content_encoding = header_str(header::CONTENT_ENCODING).map(str::to_owned);
    let blocking = body.len() > BLOCKING_BODY_BYTES;
    let work = move || {
        loki.receive(&tenant, content_type.as_deref(), content_encoding.as_deref(), body, now_ns)
    };
    let received = cpu_work(blocking, work)?;
    state.route.submit_logs(&received.batch).await.map_err(queue_error)?;
    match received.rejection_message() {
        Some(message) => Err(IngestError::Invalid(message)),
        None => Ok(()),
    }
}
