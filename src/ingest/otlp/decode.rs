//! OTLP/HTTP request bodies → `Export*ServiceRequest` messages, for all three signals.
//!
//! Spec: OTLP 1.x, <https://github.com/open-telemetry/opentelemetry-proto/blob/main/docs/specification.md>
//! ("OTLP/HTTP": binary protobuf and JSON protobuf encodings, `Content-Encoding: gzip`, the
//! body size limit "including after decompression", 415 for what cannot be read).
//!
//! * `Content-Type` `application/x-protobuf` → prost; `application/json` → OTLP JSON (media-type
//!   parameters such as `charset` are ignored, names are case-insensitive); missing or anything
//!   else → 415.
//! * `Content-Encoding` absent, empty or `identity` → as is; `gzip` (`x-gzip`) → gunzipped with
//!   the output capped at the body limit *while* decompressing, so a gzip bomb costs at most the
//!   limit; anything else → 415. Concatenated gzip members are read like one stream (as Go's
//!   `gzip.Reader` does).
//!
//! OTLP JSON is decoded with `opentelemetry-proto`'s serde derives, which already do what the
//! spec's "JSON Protobuf Encoding" section asks: lowerCamelCase keys, hex trace/span ids (any
//! case), 64-bit integers as strings or numbers, integer enums, unknown fields ignored. Where
//! they are stricter than the proto3 JSON mapping, a body they refuse is normalised and decoded
//! once more (only then, so well-formed bodies pay nothing; see [`normalise_json`]):
//! `null` for any field means "absent"; `arrayValue`/`kvlistValue` without `values` and a
//! `KeyValue` without `key` are defaults, not errors; 32-bit integers given as strings become
//! numbers; url-safe or unpadded base64 in `bytesValue` is accepted.
//!
//! Known gaps: doubles written as the strings `"NaN"`, `"Infinity"`, `"-Infinity"` are only
//! accepted where `opentelemetry-proto` accepts them (summary quantile values); enum names
//! (which OTLP forbids) are refused.

use std::io::Read;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::OtlpError;

/// The body encodings OTLP/HTTP defines; responses use the same one as the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

impl Format {
    /// Picks the encoding from `Content-Type`; anything but the two OTLP media types is 415.
    pub fn from_content_type(content_type: Option<&str>) -> Result<Format, OtlpError> {
        let value = content_type.unwrap_or_default();
        let media_type = value.split(';').next().unwrap_or_default().trim();
        if media_type.eq_ignore_ascii_case("application/x-protobuf") {
            Ok(Format::Protobuf)
        } else if media_type.eq_ignore_ascii_case("application/json") {
            Ok(Format::Json)
        } else {
            Err(OtlpError::UnsupportedMediaType {
                header: "content-type",
                value: value.to_owned(),
                expected: "application/x-protobuf or application/json",
            })
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// An OTLP request message: decodable from protobuf (prost) and OTLP JSON (serde).
pub trait OtlpRequest: prost::Message + DeserializeOwned + Default {
    /// The message name, for error messages.
    const NAME: &'static str;
}

impl OtlpRequest for opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
    const NAME: &'static str = "ExportTraceServiceRequest";
}
impl OtlpRequest
    for opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest
{
    const NAME: &'static str = "ExportMetricsServiceRequest";
}
impl OtlpRequest for opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
    const NAME: &'static str = "ExportLogsServiceRequest";
}

/// Undoes `Content-Encoding`, never producing more than `limit` bytes.
pub fn decompress(
    content_encoding: Option<&str>,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, OtlpError> {
    let encoding = content_encoding.unwrap_or_default().trim();
    if encoding.is_empty() || encoding.eq_ignore_ascii_case("identity") {
        if body.len() > limit {
            return Err(OtlpError::TooLarge { limit });
        }
        return Ok(body);
    }
    if !(encoding.eq_ignore_ascii_case("gzip") || encoding.eq_ignore_ascii_case("x-gzip")) {
        return Err(OtlpError::UnsupportedMediaType {
            header: "content-encoding",
            value: encoding.to_owned(),
            expected: "gzip or none",
        });
    }
    gunzip_capped(&body, limit).map(Bytes::from)
}

/// Gunzips `compressed` (one or more members), failing as soon as the output passes `limit`:
/// the reader stops at `limit + 1` bytes, so no more than that is ever allocated.
pub fn gunzip_capped(compressed: &[u8], limit: usize) -> Result<Vec<u8>, OtlpError> {
    let decoder = flate2::read::MultiGzDecoder::new(compressed);
    // Typical OTLP payloads compress 5-10x; start there and let the Vec grow up to the cap.
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(8).min(limit));
    let read = decoder.take(limit as u64 + 1).read_to_end(&mut out);
    match read {
        Ok(_) if out.len() > limit => Err(OtlpError::TooLarge { limit }),
        Ok(_) => Ok(out),
        Err(err) => Err(OtlpError::Gzip(err.to_string())),
    }
}

/// Decompresses (capped) and decodes one OTLP/HTTP body as `T`.
pub fn decode_body<T: OtlpRequest>(
    format: Format,
    content_encoding: Option<&str>,
    body: Bytes,
    limit: usize,
) -> Result<T, OtlpError> {
    let body = decompress(content_encoding, body, limit)?;
    decode_message(format, body)
}

/// Decodes an uncompressed body.
pub fn decode_message<T: OtlpRequest>(format: Format, body: Bytes) -> Result<T, OtlpError> {
    match format {
        Format::Protobuf => T::decode(body).map_err(|err| OtlpError::Decode {
            what: T::NAME,
            format: "protobuf",
            detail: err.to_string(),
        }),
        Format::Json => decode_json(&body),
    }
}

/// OTLP JSON → `T`: the serde derives first, the normalised document if they refuse it.
pub fn decode_json<T: OtlpRequest>(body: &[u8]) -> Result<T, OtlpError> {
    let error = |detail: String| OtlpError::Decode { what: T::NAME, format: "JSON", detail };
    // serde would also build a message from a JSON array; the JSON mapping wants an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b != b'{') {
        return Err(error("the request must be a JSON object".into()));
    }
    let first_error = match serde_json::from_slice::<T>(body) {
        Ok(message) => return Ok(message),
        Err(err) => err,
    };
    // Not even JSON: report the parser's error (it has line and column).
    let Ok(mut document) = serde_json::from_slice::<Value>(body) else {
        return Err(error(first_error.to_string()));
    };
    if !normalise_json(&mut document, Context::Message) {
        return Err(error(first_error.to_string()));
    }
    serde_json::from_value::<T>(document).map_err(|err| error(err.to_string()))
}

/// What kind of OTLP JSON value a node is, as far as normalisation cares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    /// Any message other than the ones below.
    Message,
    /// `AnyValue` (a `value`, an `arrayValue.values[]` element, a log `body`).
    AnyValue,
    /// `KeyValue` (an `attributes[]` element, a `kvlistValue.values[]` element).
    KeyValue,
    /// `ArrayValue` (`arrayValue`).
    ArrayValue,
    /// `KeyValueList` (`kvlistValue`).
    KeyValueList,
}

/// 32-bit integer fields of the OTLP messages (the 64-bit ones already accept strings).
const INT32_FIELDS: &[&str] = &[
    "droppedAttributesCount",
    "droppedEventsCount",
    "droppedLinksCount",
    "flags",
    "kind",
    "code",
    "severityNumber",
    "aggregationTemporality",
    "scale",
    "offset",
    "keyStrindex",
];

/// Rewrites what the proto3 JSON mapping allows but the serde derives refuse (see the module
/// docs). Returns whether anything changed, so an unchanged document is not decoded twice.
fn normalise_json(value: &mut Value, context: Context) -> bool {
    match value {
        Value::Array(items) => {
            let mut changed = false;
            for item in items {
                changed |= normalise_json(item, context);
            }
            changed
        }
        Value::Object(object) => normalise_object(object, context),
        _ => false,
    }
}

fn normalise_object(object: &mut Map<String, Value>, context: Context) -> bool {
    let before = object.len();
    object.retain(|_, field| !field.is_null());
    let mut changed = object.len() != before;
    match context {
        Context::ArrayValue | Context::KeyValueList if !object.contains_key("values") => {
            object.insert("values".into(), Value::Array(Vec::new()));
            changed = true;
        }
        Context::KeyValue if !object.contains_key("key") => {
            object.insert("key".into(), Value::String(String::new()));
            changed = true;
        }
        _ => {}
    }
    for (key, field) in object.iter_mut() {
        let child = match (context, key.as_str()) {
            (Context::AnyValue, "arrayValue") => Context::ArrayValue,
            (Context::AnyValue, "kvlistValue") => Context::KeyValueList,
            (Context::AnyValue, "bytesValue") => {
                changed |= normalise_base64(field);
                continue;
            }
            (Context::ArrayValue, "values") | (Context::KeyValue, "value") => Context::AnyValue,
            (Context::KeyValueList, "values") => Context::KeyValue,
            (_, "attributes" | "metadata") => Context::KeyValue,
            (_, "body") => Context::AnyValue,
            (_, name) if INT32_FIELDS.contains(&name) => {
                changed |= string_to_number(field);
                continue;
            }
            _ => Context::Message,
        };
        changed |= normalise_json(field, child);
    }
    changed
}

/// `"12"` → `12` for integer fields whose deserializer wants a number.
fn string_to_number(field: &mut Value) -> bool {
    let Value::String(text) = field else { return false };
    let Ok(number) = text.trim().parse::<i64>() else { return false };
    *field = Value::from(number);
    true
}

/// Url-safe or unpadded base64 → standard padded base64 (what the serde derive decodes).
fn normalise_base64(field: &mut Value) -> bool {
    let Value::String(text) = field else { return false };
    if !text.contains(['-', '_']) && text.len() % 4 == 0 {
        return false;
    }
    let mut standard: String = text
        .chars()
        .map(|c| {
            if c == '-' {
                '+'
            } else if c == '_' {
                '/'
            } else {
                c
            }
        })
        .collect();
    while standard.len() % 4 != 0 {
        standard.push('=');
    }
    *text = standard;
    true
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
