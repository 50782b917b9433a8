//! Ingest: protocol bodies → validated [`MetricBatch`](crate::model::MetricBatch)es and
//! [`LogBatch`](crate::model::LogBatch)es.
//!
//! * [`remote_write`]: Prometheus remote-write 1.0 / 2.0.
//! * [`loki`]: Loki push (protobuf + snappy, JSON; gzip/deflate bodies).
//! * [`otlp`]: OpenTelemetry OTLP.
//!
//! Every decoder here is size-capped before it allocates: the request body by
//! [`read_body_capped`] (Content-Length checked first, then a counting reader), snappy by
//! [`snappy_decompress_capped`], which compares the length the snappy header claims against the
//! cap before allocating the output, gzip/deflate by `loki::body::inflate_capped`, which stops
//! growing its output at the cap. Errors carry an [`ErrorKind`] that `server.rs` maps to the
//! status code each protocol's contract asks for.

pub mod loki;
pub mod otlp;
pub mod remote_write;
pub mod zipkin;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};

pub use crate::error::ErrorKind;

/// An ingest failure with its context. Messages are lowercase and say what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("unsupported {header} {value:?}: {expected}")]
    UnsupportedMediaType { header: &'static str, value: String, expected: &'static str },
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error(
        "snappy header claims a decoded size of {claimed} bytes, over the limit of {limit} bytes"
    )]
    DecodedTooLarge { claimed: usize, limit: usize },
    #[error("{encoding} body decompresses to more than the limit of {limit} bytes")]
    DecompressedTooLarge { encoding: &'static str, limit: usize },
    #[error("cannot read request body: {0}")]
    BodyRead(String),
    #[error("invalid snappy block: {0}")]
    Snappy(String),
    #[error("cannot decode {what}: {detail}")]
    Decode { what: &'static str, detail: String },
    #[error("{0}")]
    Invalid(String),
    /// Over a rate limit: 429, retry later.
    #[error("{0}")]
    RateLimited(String),
    #[error(transparent)]
    Route(#[from] crate::route::RouteError),
}

impl IngestError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::UnsupportedMediaType { .. } => ErrorKind::UnsupportedMediaType,
            Self::BodyTooLarge { .. }
            | Self::DecodedTooLarge { .. }
            | Self::DecompressedTooLarge { .. } => ErrorKind::TooLarge,
            Self::BodyRead(_) | Self::Snappy(_) | Self::Decode { .. } | Self::Invalid(_) => {
                ErrorKind::BadRequest
            }
            Self::RateLimited(_) => ErrorKind::RateLimited,
            Self::Route(e) => e.kind(),
        }
    }
}

/// Reads a request body of at most `limit` bytes. A declared Content-Length over the limit fails
/// before reading anything; a body that grows past it fails as soon as it does.
pub async fn read_body_capped(
    body: axum::body::Body,
    content_length: Option<u64>,
    limit: usize,
) -> Result<Bytes, IngestError> {
    if content_length.is_some_and(|len| len > limit as u64) {
        return Err(IngestError::BodyTooLarge { limit });
    }
    #[allow(clippy::disallowed_methods)] // this is the capped reader the lint points to
    let collected = Limited::new(body, limit).collect().await;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            Err(IngestError::BodyTooLarge { limit })
        }
        Err(err) => Err(IngestError::BodyRead(err.to_string())),
    }
}

/// Upper bound of decoded/compressed size for a snappy block: a copy element is at least 3
/// bytes (2-byte offset form) and yields at most 64 bytes; 1-byte-offset copies yield at most
/// 11 bytes from 2. Rounded up.
pub const SNAPPY_MAX_EXPANSION: usize = 22;

/// Decodes a snappy block (not the framed format), refusing before allocation when the header
/// claims more than `limit` bytes.
pub fn snappy_decompress_capped(compressed: &[u8], limit: usize) -> Result<Vec<u8>, IngestError> {
    let mut out = Vec::new();
    snappy_decompress_into(compressed, limit, &mut out)?;
    Ok(out)
}

/// Like [`snappy_decompress_capped`], into a reused buffer: `out` is resized to the decoded
/// length, so only growth is zero-filled and a warm buffer costs no allocation.
pub fn snappy_decompress_into(
    compressed: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), IngestError> {
    #[allow(clippy::disallowed_methods)] // the cap check is right here
    let claimed =
        snap::raw::decompress_len(compressed).map_err(|e| IngestError::Snappy(e.to_string()))?;
    if claimed > limit {
        return Err(IngestError::DecodedTooLarge { claimed, limit });
    }
    // The best snappy can do is a 3-byte copy element producing 64 bytes, so a header claiming
    // more than that ratio is a lie: refuse it before allocating what it claims.
    let possible = compressed.len().saturating_mul(SNAPPY_MAX_EXPANSION);
    if claimed > possible {
        return Err(IngestError::Snappy(format!(
            "header claims {claimed} decoded bytes from {} compressed bytes, more than snappy can expand to",
            compressed.len()
        )));
    }
    // `resize` keeps old bytes; the decoder overwrites all `claimed` of them.
    out.resize(claimed, 0);
    let written = snap::raw::Decoder::new()
        .decompress(compressed, out)
        .map_err(|e| IngestError::Snappy(e.to_string()))?;
    out.truncate(written);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snappy_bomb_is_refused_before_allocating() {
        // A snappy block header is the decoded length as a varint: claim 2 GiB with no data.
        let bomb = [0x80, 0x80, 0x80, 0x80, 0x08];
        let err = snappy_decompress_capped(&bomb, 1 << 20).unwrap_err();
        assert!(
            matches!(err, IngestError::DecodedTooLarge { claimed, .. } if claimed == 1 << 31),
            "{err}"
        );
        assert_eq!(err.kind(), ErrorKind::TooLarge);
    }

    #[test]
    fn snappy_header_claiming_impossible_expansion_is_refused() {
        // 4 bytes claiming 128 MiB (within the cap): cannot be real, must not be allocated.
        let err = snappy_decompress_capped(&[0x80, 0x80, 0x80, 0x40], 128 << 20).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");
        assert!(err.to_string().contains("more than snappy can expand to"), "{err}");
        // The most compressible real input still decodes.
        let zeros = vec![0u8; 1 << 20];
        let compressed = snap::raw::Encoder::new().compress_vec(&zeros).unwrap();
        assert!(zeros.len() <= compressed.len() * SNAPPY_MAX_EXPANSION);
        assert_eq!(snappy_decompress_capped(&compressed, 2 << 20).unwrap(), zeros);
    }

    #[test]
    fn truncated_snappy_is_a_bad_request() {
        let compressed = snap::raw::Encoder::new().compress_vec(&[7u8; 10_000]).unwrap();
        let err =
            snappy_decompress_capped(&compressed[..compressed.len() / 2], 1 << 20).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");
        assert_eq!(snappy_decompress_capped(&compressed, 1 << 20).unwrap(), vec![7u8; 10_000]);
    }

    #[tokio::test]
    async fn body_cap_applies_with_and_without_content_length() {
        let err =
            read_body_capped(axum::body::Body::from(vec![0u8; 10]), Some(10), 5).await.unwrap_err();
        assert_eq!(err, IngestError::BodyTooLarge { limit: 5 });
        let err =
            read_body_capped(axum::body::Body::from(vec![0u8; 10]), None, 5).await.unwrap_err();
        assert_eq!(err, IngestError::BodyTooLarge { limit: 5 });
        let ok = read_body_capped(axum::body::Body::from(vec![1u8; 5]), None, 5).await.unwrap();
        assert_eq!(ok.len(), 5);
    }
}
