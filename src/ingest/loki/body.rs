//! Content negotiation and capped decompression of Loki push bodies, as Loki's
//! `pkg/loghttp/push/push.go` `ParseLokiRequest` (Loki 3.x) reads them:
//!
//! * `Content-Encoding`: none, `snappy` (a no-op marker: protobuf is always snappy-compressed,
//!   see below), `gzip` or `deflate`; anything else is 415. Loki compares the header exactly;
//!   Strata ignores case and surrounding space (RFC 9110 §8.4: codings are case-insensitive),
//!   also takes `x-gzip` (§8.4.1.3) and `identity`.
//! * `Content-Type` (media type compared case-insensitively, parameters ignored, as Go's
//!   `mime.ParseMediaType` does): `application/json` is JSON; `application/x-protobuf`,
//!   `application/protobuf`, `application/octet-stream` or no type at all is protobuf. Loki reads
//!   *every* other type as protobuf and answers a missing one with 400 ("mime: no media type");
//!   Strata answers other types with 415, so a misconfigured client learns why, and takes a
//!   missing type as protobuf, which is what Loki's code comment intends.
//! * Protobuf is always snappy block-compressed, inside any gzip/deflate layer (Loki runs
//!   `util.ParseProtoReader(..., RawSnappy)` on the gunzipped stream). JSON is never snappy:
//!   `snappy` with JSON is 415 (Loki would fail to parse the compressed bytes as JSON: 400).
//! * `deflate` is zlib (RFC 1950, what RFC 9110 means) when the body starts with a zlib header,
//!   else raw DEFLATE (RFC 1951, what Loki's `flate.NewReader` reads); gzip may hold several
//!   members, as Go's `gzip.Reader` reads them.
//!
//! Invariants: decompression never holds more than `limit + 1` bytes of output; past `limit` it
//! stops with [`IngestError::DecompressedTooLarge`] (413) before allocating more.

use std::io::Read;

use bytes::Bytes;
use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

use crate::ingest::IngestError;

/// What the body holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

/// The transfer compression around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Deflate,
}

/// Picks format and encoding from the headers, or 415.
pub fn negotiate(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> Result<(Format, Encoding), IngestError> {
    let media_type = content_type
        .map(|value| value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .unwrap_or_default();
    let format = match media_type.as_str() {
        "application/json" => Format::Json,
        "" | "application/x-protobuf" | "application/protobuf" | "application/octet-stream" => {
            Format::Protobuf
        }
        _ => {
            return Err(IngestError::UnsupportedMediaType {
                header: "content-type",
                value: content_type.unwrap_or_default().to_owned(),
                expected: "expected application/x-protobuf (snappy) or application/json",
            })
        }
    };
    let coding =
        content_encoding.map(|value| value.trim().to_ascii_lowercase()).unwrap_or_default();
    let encoding = match coding.as_str() {
        "" | "identity" => Encoding::Identity,
        "snappy" if format == Format::Protobuf => Encoding::Identity,
        "snappy" => {
            return Err(IngestError::UnsupportedMediaType {
                header: "content-encoding",
                value: content_encoding.unwrap_or_default().to_owned(),
                expected: "snappy applies to protobuf bodies; JSON may be gzip or deflate",
            })
        }
        "gzip" | "x-gzip" => Encoding::Gzip,
        "deflate" => Encoding::Deflate,
        _ => {
            return Err(IngestError::UnsupportedMediaType {
                header: "content-encoding",
                value: content_encoding.unwrap_or_default().to_owned(),
                expected: "expected gzip, deflate, snappy or none",
            })
        }
    };
    Ok((format, encoding))
}

/// Removes the transfer encoding, returning the body unchanged (no copy) for `Identity`.
pub fn decode_transfer(
    body: Bytes,
    encoding: Encoding,
    limit: usize,
) -> Result<Bytes, IngestError> {
    let mut out = Vec::new();
    match encoding {
        Encoding::Identity => return Ok(body),
        Encoding::Gzip => inflate_capped(MultiGzDecoder::new(&body[..]), "gzip", limit, &mut out)?,
        Encoding::Deflate if has_zlib_header(&body) => {
            inflate_capped(ZlibDecoder::new(&body[..]), "deflate", limit, &mut out)?
        }
        Encoding::Deflate => {
            inflate_capped(DeflateDecoder::new(&body[..]), "deflate", limit, &mut out)?
        }
    }
    Ok(Bytes::from(out))
}

/// RFC 1950: CM = 8 (deflate), window ≤ 32 KiB, and the header check bits.
fn has_zlib_header(body: &[u8]) -> bool {
    match body {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

/// Reads `decoder` to the end into `out`, never holding more than `limit + 1` bytes: the buffer
/// grows geometrically but its capacity is capped at `limit + 1`, and reading one byte past
/// `limit` is the error.
pub fn inflate_capped(
    mut decoder: impl Read,
    encoding: &'static str,
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), IngestError> {
    const FIRST_CHUNK: usize = 64 << 10;
    let cap = limit.saturating_add(1);
    let mut filled = 0;
    out.clear();
    loop {
        if filled == out.len() {
            if out.len() >= cap {
                out.truncate(0);
                return Err(IngestError::DecompressedTooLarge { encoding, limit });
            }
            let grown = out.len().saturating_mul(2).max(FIRST_CHUNK).min(cap);
            out.reserve_exact(grown - out.len());
            out.resize(grown, 0);
        }
        match decoder.read(&mut out[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => {
                return Err(IngestError::Decode { what: encoding, detail: err.to_string() });
            }
        }
    }
    out.truncate(filled);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn negotiation_matches_what_loki_accepts() {
        let ok: &[(Option<&str>, Option<&str>, Format, Encoding)] = &[
            (None, None, Format::Protobuf, Encoding::Identity),
            (Some(""), Some(""), Format::Protobuf, Encoding::Identity),
            (Some("application/x-protobuf"), Some("snappy"), Format::Protobuf, Encoding::Identity),
            (Some("application/x-protobuf"), Some("gzip"), Format::Protobuf, Encoding::Gzip),
            (Some("application/json"), None, Format::Json, Encoding::Identity),
            (Some("Application/JSON; charset=utf-8"), Some("GZIP"), Format::Json, Encoding::Gzip),
            (Some("application/json"), Some(" deflate "), Format::Json, Encoding::Deflate),
        ];
        for (content_type, encoding, format, coding) in ok {
            assert_eq!(negotiate(*content_type, *encoding).unwrap(), (*format, *coding));
        }
        let refused: &[(Option<&str>, Option<&str>, &str)] = &[
            (Some("text/plain"), None, "content-type"),
            (Some("application/x-protobuf"), Some("br"), "content-encoding"),
            (Some("application/json"), Some("snappy"), "snappy applies to protobuf"),
        ];
        for (content_type, encoding, expected) in refused {
            let err = negotiate(*content_type, *encoding).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::UnsupportedMediaType, "{err}");
            assert!(err.to_string().contains(expected), "{err}");
        }
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gzip_zlib_and_raw_deflate_decode() {
        let data = b"some log line, some log line, some log line".repeat(100);
        let decoded = decode_transfer(Bytes::from(gzip(&data)), Encoding::Gzip, 1 << 20).unwrap();
        assert_eq!(decoded, data);
        // Two gzip members read as one stream, as Go reads them.
        let mut members = gzip(b"first ");
        members.extend(gzip(b"second"));
        let decoded = decode_transfer(Bytes::from(members), Encoding::Gzip, 100).unwrap();
        assert_eq!(&decoded[..], b"first second");
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(&data).unwrap();
        let zlib = zlib.finish().unwrap();
        assert!(has_zlib_header(&zlib));
        assert_eq!(decode_transfer(Bytes::from(zlib), Encoding::Deflate, 1 << 20).unwrap(), data);
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(&data).unwrap();
        let raw = raw.finish().unwrap();
        assert!(!has_zlib_header(&raw));
        assert_eq!(decode_transfer(Bytes::from(raw), Encoding::Deflate, 1 << 20).unwrap(), data);
    }

    #[test]
    fn identity_is_not_copied() {
        let body = Bytes::from_static(b"abc");
        let out = decode_transfer(body.clone(), Encoding::Identity, 1).unwrap();
        assert_eq!(out.as_ptr(), body.as_ptr());
    }

    #[test]
    fn gzip_bomb_is_refused_without_allocating_its_size() {
        // 64 MiB of zeros compress to ~64 KiB; the cap is 1 MiB.
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 1 << 20);
        let limit = 1 << 20;
        let mut out = Vec::new();
        let err =
            inflate_capped(MultiGzDecoder::new(&bomb[..]), "gzip", limit, &mut out).unwrap_err();
        assert_eq!(err, IngestError::DecompressedTooLarge { encoding: "gzip", limit });
        assert_eq!(err.kind(), ErrorKind::TooLarge);
        assert!(out.capacity() <= limit + 1, "buffer grew to {}", out.capacity());
        // Exactly at the limit is fine.
        let exact = gzip(&vec![7u8; limit]);
        inflate_capped(MultiGzDecoder::new(&exact[..]), "gzip", limit, &mut out).unwrap();
        assert_eq!(out.len(), limit);
        assert!(out.capacity() <= limit + 1);
    }

    #[test]
    fn corrupt_and_truncated_streams_are_bad_requests() {
        let data = gzip(b"hello hello hello");
        for len in 0..data.len() {
            let result = decode_transfer(Bytes::copy_from_slice(&data[..len]), Encoding::Gzip, 100);
            let err = result.expect_err("a truncated gzip stream must fail");
            assert_eq!(err.kind(), ErrorKind::BadRequest, "{len}: {err}");
        }
        let err = decode_transfer(Bytes::from_static(b"\x78\x9cgarbage"), Encoding::Deflate, 100)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");
    }
}
