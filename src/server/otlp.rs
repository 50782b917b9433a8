//! OTLP/HTTP: `POST /v1/traces`, `/v1/metrics`, `/v1/logs` (protobuf or JSON, gzip), on the
//! main listener and on `ingest.otlp.http_listen_address` (OTLP specification 1.x, "OTLP/HTTP").
//!
//! 200 with the `Export*ServiceResponse` in the request's encoding (`partial_success` set when
//! items were rejected); 400 (bad data, not retryable), 413, 415; 429 and 503 with
//! `Retry-After` (retryable). Error bodies are `google.rpc.Status`.

use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::{cpu_work, observed, status_for, tenant_of, AppState, BLOCKING_BODY_BYTES};
use crate::ingest::otlp::{response, Format, OtlpError};
use crate::ingest::{read_body_capped, IngestError};
use crate::route::Signal;

#[derive(Clone, Copy)]
enum Kind {
    Traces,
    Metrics,
    Logs,
}

pub(super) async fn traces(state: State<AppState>, headers: HeaderMap, body: Body) -> Response {
    handler(state, headers, body, Kind::Traces).await
}

pub(super) async fn metrics(state: State<AppState>, headers: HeaderMap, body: Body) -> Response {
    handler(state, headers, body, Kind::Metrics).await
}

pub(super) async fn logs(state: State<AppState>, headers: HeaderMap, body: Body) -> Response {
    handler(state, headers, body, Kind::Logs).await
}

async fn handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
    kind: Kind,
) -> Response {
    let started = Instant::now();
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let format = Format::from_content_type(content_type).unwrap_or(Format::Protobuf);
    let response = match handle(&state, &headers, body, kind).await {
        Ok(reply) => reply_response(StatusCode::OK, reply),
        Err(err) => {
            let status = status_for(err.kind());
            let mut response = reply_response(status, response::error(&err, format));
            if let Some(seconds) = response::retry_after(err.kind()) {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
    };
    observed(state.otlp.http_metrics(), started, response)
}

fn reply_response(status: StatusCode, reply: response::Reply) -> Response {
    let mut response = (status, reply.body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    response
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    kind: Kind,
) -> Result<response::Reply, OtlpError> {
    let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let tenant = tenant_of(headers, &state.default_tenant).map_err(|e| OtlpError::Decode {
        what: "x-scope-orgid",
        format: "header",
        detail: e.to_string(),
    })?;
    let signal = match kind {
        Kind::Traces => Signal::Traces,
        Kind::Metrics => Signal::Metrics,
        Kind::Logs => Signal::Logs,
    };
    state.route.admit(signal).await?;
    let limit = state.otlp.max_http_body_size();
    let content_length = header_str(header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
    let body: Bytes =
        read_body_capped(body, content_length, limit).await.map_err(|err| match err {
            IngestError::BodyTooLarge { .. } => OtlpError::TooLarge { limit },
            other => OtlpError::Decode {
                what: "request body",
                format: "http",
                detail: other.to_string(),
            },
        })?;
    let format = Format::from_content_type(header_str(header::CONTENT_TYPE))?;
    let content_type = header_str(header::CONTENT_TYPE).map(str::to_owned);
    let content_encoding = header_str(header::CONTENT_ENCODING).map(str::to_owned);
    let blocking = body.len() > BLOCKING_BODY_BYTES;
    let (ct, ce) = (content_type.as_deref(), content_encoding.as_deref());
    match kind {
        Kind::Traces => {
            let otlp = state.otlp.clone();
            let work = || otlp.traces_http(&tenant, ct, ce, body);
            let accepted = cpu_work(blocking, work)?;
            state.route.submit_traces(&accepted.batch).await?;
            Ok(response::traces(&accepted, format))
        }
        Kind::Logs => {
            let otlp = state.otlp.clone();
            let work = || otlp.logs_http(&tenant, ct, ce, body);
            let accepted = cpu_work(blocking, work)?;
            state.route.submit_logs(&accepted.batch).await?;
            Ok(response::logs(&accepted, format))
        }
        Kind::Metrics => {
            let work = || -> Result<_, OtlpError> {
                let request = state.otlp.decode_metrics_http(ct, ce, body)?;
                Ok((state.translate_metrics)(&request))
            };
            let (batch, rejected, message) = cpu_work(blocking, work)?;
            state.route.submit_metrics(&batch).await?;
            Ok(response::metrics(rejected, message.as_deref(), format))
        }
    }
}
