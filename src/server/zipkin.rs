//! `POST /api/v2/spans`: Zipkin v2 JSON spans (what Dapr sidecars emit). 202 accepted, as
//! Zipkin's collector answers; 400 bad JSON or ids (naming the span); 413/415; 503 when a
//! forward queue is full or Strata is shutting down.

use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{cpu_work, observed, tenant_of, AppState, BLOCKING_BODY_BYTES};
use crate::ingest::{read_body_capped, IngestError};
use crate::route::Signal;

pub(super) async fn handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let response = match handle(&state, &headers, body).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(err) => err.into_response(),
    };
    observed(state.zipkin.metrics(), started, response)
}

async fn handle(state: &AppState, headers: &HeaderMap, body: Body) -> Result<(), IngestError> {
    let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let tenant = tenant_of(headers, &state.default_tenant)?;
    state.route.admit(Signal::Traces).await?;
    let content_length = header_str(header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
    let body = read_body_capped(body, content_length, state.zipkin.max_body_size()).await?;
    let zipkin = state.zipkin.clone();
    let content_type = header_str(header::CONTENT_TYPE).map(str::to_owned);
    let content_encoding = header_str(header::CONTENT_ENCODING).map(str::to_owned);
    let blocking = body.len() > BLOCKING_BODY_BYTES;
    let work =
        move || zipkin.receive(&tenant, content_type.as_deref(), content_encoding.as_deref(), body);
    let batch = cpu_work(blocking, work)?;
    state.route.submit_traces(&batch).await?;
    Ok(())
}
