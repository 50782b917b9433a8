//! Zipkin v2 JSON → [`Span`]s that borrow the body, and the capped gzip decoder in front of it.
//!
//! Spec: `zipkin2-api.yaml` of `openzipkin/zipkin-api` (swagger `info.version` 1.0.0, commit
//! 0659e641): `ListOfSpans` is a JSON array of `Span{traceId, id, parentId, name, kind,
//! timestamp, duration, debug, shared, localEndpoint, remoteEndpoint, annotations, tags}`.
//! What the spec leaves open is decided the way the Collector's Zipkin receiver decides it, which
//! unmarshals with `zipkin-go` v0.4 `model` (`span.go`, `traceid.go`, `span_id.go`,
//! `annotation.go`, `endpoint.go`):
//!
//! * unknown fields are ignored; `null` reads as absent everywhere, a `null` array element is
//!   skipped (it keeps its index for error messages), a `null` body is an empty list;
//! * `timestamp`, `duration` and annotation timestamps are unsigned integers of microseconds;
//!   an annotation timestamp must be positive; `timestamp` 0 means absent;
//! * hex ids may be upper or lower case; `parentId` `""` or all zeros means no parent;
//! * `ipv4`/`ipv6` hold any IP address text (`""` is absent); `port` is 0..=65535;
//! * `tags` values are strings (`null` reads as `""`); a repeated key keeps its last value;
//! * `kind` is any string (the translator maps the four known ones).
//!
//! Stricter than the Collector, because the spec says so and OTLP needs it: `traceId` is exactly
//! 16 or 32 hex characters, `id`/`parentId` exactly 16, neither `traceId` nor `id` may be all
//! zeros, and a time whose nanoseconds overflow `u64` is refused instead of wrapping.
//!
//! Errors name the span (array index) and the field: the fast path decodes with plain
//! `serde_json`; only when it fails is the body decoded again through `serde_path_to_error` to
//! find where.
//!
//! Invariants: [`Tags`] are sorted by key with unique keys; ids are non-zero; every time in
//! microseconds is at most [`MAX_MICROS`], so `* 1000` cannot overflow.

use std::borrow::Cow;
use std::fmt;
use std::io::Read;
use std::net::IpAddr;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use super::ZipkinError;

/// The largest time in microseconds whose nanoseconds fit in `u64` (year 2554).
pub const MAX_MICROS: u64 = u64::MAX / 1000;

/// Longest id or address echoed back in an error message.
const MAX_ECHO: usize = 64;

/// A JSON string, borrowed from the body unless it had escapes.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Text<'a>(pub Cow<'a, str>);

impl Text<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// One Zipkin v2 span as sent. Times are microseconds.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Span<'a> {
    /// 64-bit ids are left-padded with zeros to 16 bytes.
    #[serde(deserialize_with = "trace_id")]
    pub trace_id: [u8; 16],
    #[serde(deserialize_with = "span_id")]
    pub id: [u8; 8],
    #[serde(default, deserialize_with = "parent_id")]
    pub parent_id: Option<[u8; 8]>,
    #[serde(default, borrow)]
    pub name: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub kind: Option<Text<'a>>,
    /// `None` when absent, `null` or 0.
    #[serde(default, deserialize_with = "span_timestamp")]
    pub timestamp: Option<u64>,
    #[serde(default, deserialize_with = "micros")]
    pub duration: Option<u64>,
    #[serde(default)]
    pub debug: Option<bool>,
    #[serde(default)]
    pub shared: Option<bool>,
    #[serde(default, borrow)]
    pub local_endpoint: Option<Endpoint<'a>>,
    #[serde(default, borrow)]
    pub remote_endpoint: Option<Endpoint<'a>>,
    #[serde(default, borrow)]
    pub annotations: Option<Vec<Annotation<'a>>>,
    #[serde(default, borrow)]
    pub tags: Tags<'a>,
}

impl Span<'_> {
    pub fn local_service_name(&self) -> Option<&str> {
        let name = self.local_endpoint.as_ref()?.service_name.as_ref()?.as_str();
        (!name.is_empty()).then_some(name)
    }

    pub fn annotations(&self) -> &[Annotation<'_>] {
        self.annotations.as_deref().unwrap_or_default()
    }
}

/// `localEndpoint` / `remoteEndpoint`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint<'a> {
    #[serde(default, borrow)]
    pub service_name: Option<Text<'a>>,
    #[serde(default, deserialize_with = "ip_address")]
    pub ipv4: Option<IpAddr>,
    #[serde(default, deserialize_with = "ip_address")]
    pub ipv6: Option<IpAddr>,
    #[serde(default)]
    pub port: Option<u16>,
}

/// An event on the span: `{timestamp, value}`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Annotation<'a> {
    /// Positive microseconds since the epoch.
    #[serde(deserialize_with = "annotation_timestamp")]
    pub timestamp: u64,
    #[serde(default, borrow)]
    pub value: Option<Text<'a>>,
}

/// `tags`: string → string, sorted by key, keys unique (the last of repeated keys wins, as a Go
/// map decoded from the same JSON would hold).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tags<'a>(Vec<(Text<'a>, Text<'a>)>);

impl<'a> Tags<'a> {
    /// Builds from pairs in any order; repeated keys keep the last value.
    pub fn from_pairs(mut pairs: Vec<(Text<'a>, Text<'a>)>) -> Self {
        pairs.sort_by(|a, b| a.0.cmp(&b.0)); // stable: repeated keys stay in input order
        pairs.dedup_by(|later, kept| {
            let repeated = later.0 == kept.0;
            if repeated {
                std::mem::swap(&mut later.1, &mut kept.1);
            }
            repeated
        });
        Self(pairs)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        let index = self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok()?;
        Some(self.0[index].1.as_str())
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// In key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Tags<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TagsVisitor;
        impl<'de> Visitor<'de> for TagsVisitor {
            type Value = Tags<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string tags")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Tags::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Tags::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_map(self)
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(8).min(64));
                while let Some((key, value)) = map.next_entry::<Text<'de>, Option<Text<'de>>>()? {
                    pairs.push((key, value.unwrap_or_default()));
                }
                Ok(Tags::from_pairs(pairs))
            }
        }
        deserializer.deserialize_option(TagsVisitor)
    }
}

/// The body as decoded: one entry per array element, `None` for a `null` element.
pub type Spans<'a> = Vec<Option<Span<'a>>>;

/// Decodes a `ListOfSpans` body. Errors name the span index and field where possible.
pub fn decode_spans(body: &[u8]) -> Result<Spans<'_>, ZipkinError> {
    match serde_json::from_slice::<Option<Spans<'_>>>(body) {
        Ok(spans) => Ok(spans.unwrap_or_default()),
        Err(error) => Err(locate(body, &error)),
    }
}

/// How many non-`null` elements the body's top-level array has, if it is syntactically a JSON
/// array (for counting the spans of a rejected request).
pub fn count_spans(body: &[u8]) -> Option<usize> {
    let elements = serde_json::from_slice::<Option<Vec<Option<IgnoredAny>>>>(body).ok()?;
    Some(elements.unwrap_or_default().iter().flatten().count())
}

/// Decodes `body` again, recording the path, to say which span and field `error` is about.
fn locate(body: &[u8], error: &serde_json::Error) -> ZipkinError {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let located = match serde_path_to_error::deserialize::<_, Option<Spans<'_>>>(&mut deserializer)
    {
        // The array decoded: what failed came after it (trailing characters).
        Ok(_) => return ZipkinError::Json(error.to_string()),
        Err(located) => located,
    };
    let mut segments = located.path().iter();
    let index = match segments.next() {
        Some(serde_path_to_error::Segment::Seq { index }) => *index,
        _ => return ZipkinError::Json(located.into_inner().to_string()),
    };
    let mut field = String::new();
    for segment in segments {
        push_segment(&mut field, segment);
    }
    ZipkinError::Span {
        index,
        field: (!field.is_empty()).then_some(field),
        detail: located.into_inner().to_string(),
    }
}

/// Appends one path segment as `a.b`, `a[2]` or `a["k.e.y"]` (keys that are not identifiers
/// are quoted, so a tag named `http.method` does not read as a nested field).
fn push_segment(out: &mut String, segment: &serde_path_to_error::Segment) {
    use serde_path_to_error::Segment;
    match segment {
        Segment::Seq { index } => out.push_str(&format!("[{index}]")),
        Segment::Map { key } if key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(key);
        }
        Segment::Map { key } => out.push_str(&format!("[{key:?}]")),
        Segment::Enum { variant } => {
            out.push('.');
            out.push_str(variant);
        }
        // Where a key itself failed to decode: nothing to name.
        Segment::Unknown => {}
    }
}

/// `s` for an error message: quoted, and cut after [`MAX_ECHO`] characters.
pub(crate) fn echo(s: &str) -> String {
    match s.char_indices().nth(MAX_ECHO) {
        Some((cut, _)) => format!("{:?}...", &s[..cut]),
        None => format!("{s:?}"),
    }
}

/// Decodes exactly `2 * N` hex digits (either case).
pub(crate) fn hex_bytes<const N: usize>(hex: &str) -> Option<[u8; N]> {
    let digits = hex.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let high = (pair[0] as char).to_digit(16)?;
        let low = (pair[1] as char).to_digit(16)?;
        *byte = (high << 4 | low) as u8;
    }
    Some(out)
}

/// A 64- or 128-bit trace id as 16 bytes (64-bit ids left-padded with zeros).
pub(crate) fn parse_trace_id(hex: &str) -> Option<[u8; 16]> {
    match hex.len() {
        16 => {
            let low: [u8; 8] = hex_bytes(hex)?;
            let mut id = [0u8; 16];
            id[8..].copy_from_slice(&low);
            Some(id)
        }
        32 => hex_bytes(hex),
        _ => None,
    }
}

fn trace_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 16], D::Error> {
    let text = Text::deserialize(deserializer)?;
    let Some(id) = parse_trace_id(text.as_str()) else {
        return Err(de::Error::custom(format_args!(
            "{} is not a trace id of 16 or 32 hex characters",
            echo(text.as_str())
        )));
    };
    if id == [0; 16] {
        return Err(de::Error::custom("trace id is all zeros"));
    }
    Ok(id)
}

fn span_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 8], D::Error> {
    let text = Text::deserialize(deserializer)?;
    let id = parse_span_id::<D::Error>(text.as_str())?;
    if id == [0; 8] {
        return Err(de::Error::custom("span id is all zeros"));
    }
    Ok(id)
}

fn parent_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<[u8; 8]>, D::Error> {
    let Some(text) = Option::<Text<'_>>::deserialize(deserializer)? else { return Ok(None) };
    if text.as_str().is_empty() {
        return Ok(None);
    }
    let id = parse_span_id::<D::Error>(text.as_str())?;
    Ok((id != [0; 8]).then_some(id))
}

fn parse_span_id<E: de::Error>(hex: &str) -> Result<[u8; 8], E> {
    hex_bytes(hex).ok_or_else(|| {
        E::custom(format_args!("{} is not a span id of 16 hex characters", echo(hex)))
    })
}

fn checked_micros<E: de::Error>(value: u64) -> Result<u64, E> {
    if value > MAX_MICROS {
        return Err(E::custom(format_args!(
            "{value} microseconds is out of range (at most {MAX_MICROS})"
        )));
    }
    Ok(value)
}

fn micros<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Option::<u64>::deserialize(deserializer)?.map(checked_micros).transpose()
}

fn span_timestamp<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Ok(micros(deserializer)?.filter(|&micros| micros > 0))
}

fn annotation_timestamp<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let value = checked_micros(u64::deserialize(deserializer)?)?;
    if value == 0 {
        return Err(de::Error::custom("annotation timestamp must be positive"));
    }
    Ok(value)
}

fn ip_address<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<IpAddr>, D::Error> {
    let Some(text) = Option::<Text<'_>>::deserialize(deserializer)? else { return Ok(None) };
    if text.as_str().is_empty() {
        return Ok(None);
    }
    text.as_str().parse().map(Some).map_err(|_| {
        de::Error::custom(format_args!("{} is not an IP address", echo(text.as_str())))
    })
}

/// Gunzips `compressed` (all members, as Go's `gzip.Reader` does), failing as soon as the output
/// passes `limit` bytes: memory stays bounded by the cap whatever the input claims.
pub fn gunzip_capped(compressed: &[u8], limit: usize) -> Result<Vec<u8>, ZipkinError> {
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit));
    let mut decoder = flate2::read::MultiGzDecoder::new(compressed)
        .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1));
    decoder.read_to_end(&mut out).map_err(|e| ZipkinError::Gzip(e.to_string()))?;
    if out.len() > limit {
        return Err(ZipkinError::DecodedTooLarge { limit });
    }
    Ok(out)
}
