//! Zipkin v2 JSON ingest (`POST /api/v2/spans`): content negotiation, capped gzip, decoding
//! ([`decode`]) and the Collector's Zipkin → OTLP mapping ([`translate`]), producing a
//! [`TraceBatch`]. The server answers `202 Accepted` on success, as Zipkin does.
//!
//! Specs: Zipkin API `zipkin2-api.yaml` (`openzipkin/zipkin-api`, swagger `info.version`
//! 1.0.0); mapping: opentelemetry-collector-contrib `pkg/translator/zipkin/zipkinv2/
//! to_translator.go` at commit 1fc2aae7, the v0.147.0 line (details in [`translate`]); the
//! receiver's header handling: `receiver/zipkinreceiver/trace_receiver.go`.
//!
//! Negotiation: `Content-Type` must be `application/json` (parameters allowed; a `charset`
//! must be UTF-8, which JSON requires). A request without `Content-Type` is read as JSON, as
//! both Zipkin's server and the Collector do; anything else, `application/x-protobuf`
//! included, is 415. `Content-Encoding` may be absent, `identity` or `gzip` (`x-gzip`); anything
//! else is 415.
//!
//! A request is accepted whole or rejected whole, as the Collector does: one invalid span is a
//! 400 naming its index and field, and none of the request's spans is forwarded.
//!
//! Invariants: no body is decoded past `max_body_size` bytes (the limit counts decoded bytes, so
//! gzip is capped while it inflates); `strata_ingest_spans_received_total{protocol="zipkin"}`
//! counts the elements of every request whose body is a JSON array, and those of a rejected one
//! are counted again as `strata_ingest_items_dropped_total{reason="invalid"}`.

pub mod decode;
pub mod translate;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod translate_tests;

use bytes::Bytes;

use super::{ErrorKind, IngestError};
use crate::config::ZipkinIngestConfig;
use crate::model::{Tenant, TraceBatch};
use crate::telemetry::{Catalog, IngestDropReason, IngestMetrics};

/// A failure to decode or translate a Zipkin body. Messages say what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZipkinError {
    #[error("gzip body decodes to more than the limit of {limit} bytes")]
    DecodedTooLarge { limit: usize },
    #[error("invalid gzip body: {0}")]
    Gzip(String),
    /// The body is not a JSON array of spans; no span to blame.
    #[error("invalid json: {0}")]
    Json(String),
    /// Span `index` of the array (0-based) is invalid; `field` is a path like
    /// `localEndpoint.port`, `annotations[1].value` or `tags["otlp.link.0"]`.
    #[error(
        "span {index}{}: {detail}",
        .field.as_ref().map(|f| format!(", field {f}")).unwrap_or_default()
    )]
    Span { index: usize, field: Option<String>, detail: String },
}

impl ZipkinError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::DecodedTooLarge { .. } => ErrorKind::TooLarge,
            Self::Gzip(_) | Self::Json(_) | Self::Span { .. } => ErrorKind::BadRequest,
        }
    }
}

impl From<ZipkinError> for IngestError {
    fn from(error: ZipkinError) -> Self {
        match error {
            // `max_body_size` is the limit of the decoded body: "request body" is accurate.
            ZipkinError::DecodedTooLarge { limit } => IngestError::BodyTooLarge { limit },
            other => IngestError::Decode { what: "zipkin v2 spans", detail: other.to_string() },
        }
    }
}

/// How the body is encoded on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

/// Checks `Content-Type` and `Content-Encoding` (see the module docs for what is accepted).
pub fn negotiate(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> Result<Encoding, IngestError> {
    if let Some(content_type) = content_type {
        let mut parts = content_type.split(';').map(str::trim);
        let media_type = parts.next().unwrap_or_default();
        let charset_ok = |parameter: &str| match parameter.split_once('=') {
            Some((key, value)) if key.trim().eq_ignore_ascii_case("charset") => {
                let value = value.trim().trim_matches('"');
                value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
            }
            _ => true,
        };
        if !media_type.eq_ignore_ascii_case("application/json") || !parts.all(charset_ok) {
            return Err(IngestError::UnsupportedMediaType {
                header: "content-type",
                value: content_type.to_owned(),
                expected:
                    "zipkin v2 spans must be application/json (utf-8); protobuf is not supported",
            });
        }
    }
    match content_encoding.map(str::trim) {
        None => Ok(Encoding::Identity),
        Some(e) if e.is_empty() || e.eq_ignore_ascii_case("identity") => Ok(Encoding::Identity),
        Some(e) if e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip") => {
            Ok(Encoding::Gzip)
        }
        Some(other) => Err(IngestError::UnsupportedMediaType {
            header: "content-encoding",
            value: other.to_owned(),
            expected: "zipkin v2 bodies must be uncompressed or gzip",
        }),
    }
}

/// The Zipkin receiver's processing stage (no HTTP here; see `server.rs`).
#[derive(Debug)]
pub struct ZipkinIngest {
    max_body_size: usize,
    metrics: IngestMetrics,
}

impl ZipkinIngest {
    pub fn new(config: &ZipkinIngestConfig, catalog: &Catalog) -> Self {
        Self { max_body_size: config.max_body_size.as_usize(), metrics: catalog.ingest("zipkin") }
    }

    /// The largest body accepted, as sent and after gzip decoding.
    pub fn max_body_size(&self) -> usize {
        self.max_body_size
    }

    pub fn metrics(&self) -> &IngestMetrics {
        &self.metrics
    }

    /// Negotiates, decompresses (capped), decodes and translates one request body.
    pub fn receive(
        &self,
        tenant: &Tenant,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
        body: Bytes,
    ) -> Result<TraceBatch, IngestError> {
        self.metrics.bytes.inc_by(body.len() as u64);
        let encoding = negotiate(content_type, content_encoding)?;
        if body.len() > self.max_body_size {
            return Err(IngestError::BodyTooLarge { limit: self.max_body_size });
        }
        let json_body: Bytes = match encoding {
            Encoding::Identity => body,
            Encoding::Gzip => {
                let inflated = decode::gunzip_capped(&body, self.max_body_size)?;
                // The compressed copy is no longer needed while the spans are decoded.
                drop(body);
                Bytes::from(inflated)
            }
        };
        let json: &[u8] = &json_body;
        let spans = match decode::decode_spans(json) {
            Ok(spans) => spans,
            Err(error) => {
                if let Some(count) = decode::count_spans(json) {
                    self.count_rejected(count);
                }
                return Err(error.into());
            }
        };
        let span_count = spans.iter().flatten().count();
        self.metrics.spans.inc_by(span_count as u64);
        match translate::to_request(&spans) {
            Ok(request) => Ok(TraceBatch::from_request(tenant.clone(), request)),
            Err(error) => {
                self.metrics.dropped(IngestDropReason::Invalid).inc_by(span_count as u64);
                Err(error.into())
            }
        }
    }

    /// Counts the spans of a body that decoded as an array but was rejected.
    fn count_rejected(&self, count: usize) {
        self.metrics.spans.inc_by(count as u64);
        self.metrics.dropped(IngestDropReason::Invalid).inc_by(count as u64);
    }
}
