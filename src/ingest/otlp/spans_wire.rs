//! A validating walk over encoded OTLP spans that allocates nothing: it checks that a
//! `ScopeSpans` message would decode with prost (field wire types, UTF-8 strings, lengths,
//! nesting) and reads the three ids of each span for [`SpanDefect`] checks, without building
//! structs.
//!
//! Messages and field numbers: OTLP v1.x `opentelemetry/proto/trace/v1/trace.proto` (`Span` 1-16,
//! `Span.Event`, `Span.Link`, `Status`) and `common/v1/common.proto` (`KeyValue`, `AnyValue`,
//! `ArrayValue`, `KeyValueList`, `InstrumentationScope`).
//!
//! Invariant: whatever [`check_scope_spans`] accepts, prost decodes (the converse is not quite
//! true: see [`MAX_NESTING`], and unknown fields of the deprecated group wire types are refused
//! here while prost skips them).

use crate::model::wire::{Reader, WireError, FIXED32, FIXED64, LEN, VARINT};

/// Deepest message nesting accepted, counted from `ExportTraceServiceRequest` (0). prost refuses
/// more than 100; real spans need 5 (+3 per level of nested attribute values).
pub const MAX_NESTING: usize = 64;

/// Why a span is refused although it decodes (OTLP `trace.proto`: "An ID with all zeroes OR of
/// length other than 16 [8] bytes is considered invalid"; a root span's `parent_span_id` "must
/// be empty").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanDefect {
    TraceIdLength(usize),
    TraceIdZero,
    SpanIdLength(usize),
    SpanIdZero,
    ParentSpanIdLength(usize),
}

impl std::fmt::Display for SpanDefect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TraceIdLength(len) => write!(f, "trace_id is {len} bytes, must be 16"),
            Self::TraceIdZero => f.write_str("trace_id is all zeros"),
            Self::SpanIdLength(len) => write!(f, "span_id is {len} bytes, must be 8"),
            Self::SpanIdZero => f.write_str("span_id is all zeros"),
            Self::ParentSpanIdLength(len) => {
                write!(f, "parent_span_id is {len} bytes, must be empty or 8")
            }
        }
    }
}

/// The checks of [`SpanDefect`]. An all-zero 8-byte `parent_span_id` is accepted as "no parent"
/// (some converters write it for root spans).
pub fn span_defect(trace_id: &[u8], span_id: &[u8], parent_span_id: &[u8]) -> Option<SpanDefect> {
    if trace_id.len() != 16 {
        return Some(SpanDefect::TraceIdLength(trace_id.len()));
    }
    if trace_id.iter().all(|b| *b == 0) {
        return Some(SpanDefect::TraceIdZero);
    }
    if span_id.len() != 8 {
        return Some(SpanDefect::SpanIdLength(span_id.len()));
    }
    if span_id.iter().all(|b| *b == 0) {
        return Some(SpanDefect::SpanIdZero);
    }
    if !parent_span_id.is_empty() && parent_span_id.len() != 8 {
        return Some(SpanDefect::ParentSpanIdLength(parent_span_id.len()));
    }
    None
}

/// What a walk of one span found (ids as the last occurrence of each field, like prost).
#[derive(Debug, Default)]
pub struct SpanSeen<'a> {
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub parent_span_id: &'a [u8],
    pub name: &'a [u8],
}

/// Checks one `ScopeSpans` message (at nesting `depth`); calls `on_span` with each span's index
/// and what was seen in it.
pub fn check_scope_spans<'a>(
    buf: &'a [u8],
    base: usize,
    depth: usize,
    mut on_span: impl FnMut(usize, &SpanSeen<'a>),
) -> Result<(), WireError> {
    let mut reader = Reader::new(buf, base);
    let mut index = 0;
    while !reader.is_empty() {
        let (field, wire_type) = reader.key()?;
        match field {
            1 => message(&mut reader, wire_type, depth, check_scope)?,
            2 => {
                reader.expect(wire_type, LEN)?;
                let (span, offset) = reader.bytes()?;
                let seen = check_span(span, offset, depth + 1)?;
                on_span(index, &seen);
                index += 1;
            }
            3 => string(&mut reader, wire_type)?,
            _ => reader.skip(wire_type)?,
        }
    }
    Ok(())
}

/// Reads a nested message field and checks it with `check`.
#[inline]
fn message(
    reader: &mut Reader<'_>,
    wire_type: u8,
    depth: usize,
    check: fn(&[u8], usize, usize) -> Result<(), WireError>,
) -> Result<(), WireError> {
    reader.expect(wire_type, LEN)?;
    let (bytes, offset) = reader.bytes()?;
    if depth + 1 > MAX_NESTING {
        return Err(WireError { offset, what: "messages nested too deeply" });
    }
    check(bytes, offset, depth + 1)
}

#[inline]
fn string(reader: &mut Reader<'_>, wire_type: u8) -> Result<(), WireError> {
    reader.expect(wire_type, LEN)?;
    let (bytes, offset) = reader.bytes()?;
    utf8(bytes, offset)
}

#[inline]
fn utf8(bytes: &[u8], offset: usize) -> Result<(), WireError> {
    // ASCII is the common case and much cheaper to confirm.
    if bytes.is_ascii() || std::str::from_utf8(bytes).is_ok() {
        Ok(())
    } else {
        Err(WireError { offset, what: "string field is not valid UTF-8" })
    }
}

#[inline]
fn scalar(reader: &mut Reader<'_>, wire_type: u8, expected: u8) -> Result<(), WireError> {
    reader.expect(wire_type, expected)?;
    reader.skip(wire_type)
}

/// `Span`: ids kept for [`span_defect`], everything else checked and skipped.
fn check_span(buf: &[u8], base: usize, depth: usize) -> Result<SpanSeen<'_>, WireError> {
    let mut reader = Reader::new(buf, base);
    let mut seen = SpanSeen::default();
    while !reader.is_empty() {
        let (field, wire_type) = reader.key()?;
        match field {
            1 | 2 | 4 | 5 => {
                reader.expect(wire_type, LEN)?;
                let (bytes, offset) = reader.bytes()?;
                match field {
                    1 => seen.trace_id = bytes,
                    2 => seen.span_id = bytes,
                    4 => seen.parent_span_id = bytes,
                    _ => {
                        utf8(bytes, offset)?;
                        seen.name = bytes;
                    }
                }
            }
            3 => string(&mut reader, wire_type)?,
            6 | 10 | 12 | 14 => scalar(&mut reader, wire_type, VARINT)?,
            7 | 8 => scalar(&mut reader, wire_type, FIXED64)?,
            16 => scalar(&mut reader, wire_type, FIXED32)?,
            9 => message(&mut reader, wire_type, depth, check_key_value)?,
            11 => message(&mut reader, wire_type, depth, check_event)?,
            13 => message(&mut reader, wire_type, depth, check_link)?,
            15 => message(&mut reader, wire_type, depth, check_status)?,
            _ => reader.skip(wire_type)?,
        }
    }
    Ok(seen)
}

/// `InstrumentationScope`: name, version, attributes, dropped_attributes_count.
fn check_scope(buf: &[u8], base: usize, depth: usize) -> Result<(), WireError> {
    let mut reader = Reader::new(buf, base);
    while !reader.is_empty() {
        let (field, wire_type) = reader.key()?;
        match field {
            1 | 2 => string(&mut reader, wire_type)?,
            3 => message(&mut reader, wire_type, depth, check_key_value)?,
            4 => scalar(&mut reader, wire_type, VARINT)?,
            _ => reader.skip(wire_type)?,
        }
    }
    Ok(())
}

/// `Span.Event`: time, name, attributes, dropped_attributes_count.
fn check_event(buf: &[u8], base: usize, depth: usize) -> Result<(), WireError> {
    let mut reader = Reader::new(buf, base);
    while !reader.is_empty() {
        let (field, wire_type) = reader.key()?;
        match field {
            1 => scalar(&mut reader, wire_type, FIXED64)?,
            2 => string(&mut reader, wire_type)?,
            3 => message(&mut reader, wire_type, depth, check_key_value)?,
            4 => scalar(&mut reader, wire_type, VARINT)?,
            _ => reader.skip(wire_type)?,
        }
    }
    Ok(())
}

/// `Span.Link`: trace_id, span_id, trace_state, attributes, dropped_attributes_count, flags.
fn check_link(buf: &[u8], base: usize, depth: usize) -> Result<(), WireError> {
    let mut reader = Reader::new(buf, base);
    while !reader.is_empty() {
        let (field, wire_type) = reader.key()?;
        match field {
            1 | 2 => scalar(&mut reader, wire_type, LEN)?,
            3 => string(&mut reader, wire_type)?,
            4 => message(&mut reader, wire_type, depth, check_key_value)?,
            5 => scalar(&mut reader, wire_type, VARINT)?,
            6 => scalar(&mut reader, wire_type, FIXED32)?,
            _ => reader.skip(wire_type)?,
        }
    }
    Ok(())
}

/// `Status`: message, code.
fn check_status(buf: &[u8], base: usize, _depth: usize) -> Result<(), WireError> {
    let mut reader = Reader::new(buf, base);
    while !reader.is_empty() {
        let (field, wire_type) = reader.key()?;
        match field {
            2 => string(&mut reader, wire_type)?,
            3 => scalar(&mut reader, wire_type, VARINT)?,
            _ => reader.skip(wire_type)?,
        }
    }
    Ok(())
}

/// `KeyValue`: key, value (`AnyValue`), key_strindex.
fn check_key_value(buf: &[u8], base: usize, depth: usize) -> Result<(), WireError> {
    let mut reader = Reader::new(buf, base);
    while !reader.is_empty() {
        let (field, wire_type) = reader.key()?;
        match field {
            1 => string(&mut reader, wire_type)?,
            2 => message(&mut reader, wire_type, depth, check_any_value)?,
            3 => scalar(&mut reader, wire_type, VARINT)?,
            _ => reader.skip(wire_type)?,
        }
    }
    Ok(())
}

/// `AnyValue`: the `value` oneof (string, bool, int, double, array, kvlist, bytes, strindex).
fn check_any_value(buf: &[u8], base: usize, depth: usize) -> Result<(), WireError> {
    let mut reader = Reader::new(buf, base);
    while !reader.is_empty() {
        let (field, wire_type) = reader.key()?;
        match field {
            1 => string(&mut reader, wire_type)?,
            2 | 3 | 8 => scalar(&mut reader, wire_type, VARINT)?,
            4 => scalar(&mut reader, wire_type, FIXED64)?,
            5 => message(&mut reader, wire_type, depth, check_array_value)?,
            6 => message(&mut reader, wire_type, depth, check_key_value_list)?,
            7 => scalar(&mut reader, wire_type, LEN)?,
            _ => reader.skip(wire_type)?,
        }
    }
    Ok(())
}

/// `ArrayValue`: repeated `AnyValue` values = 1.
fn check_array_value(buf: &[u8], base: usize, depth: usize) -> Result<(), WireError> {
    let mut reader = Reader::new(buf, base);
    while !reader.is_empty() {
        let (field, wire_type) = reader.key()?;
        match field {
            1 => message(&mut reader, wire_type, depth, check_any_value)?,
            _ => reader.skip(wire_type)?,
        }
    }
    Ok(())
}

/// `KeyValueList`: repeated `KeyValue` values = 1.
fn check_key_value_list(buf: &[u8], base: usize, depth: usize) -> Result<(), WireError> {
    let mut reader = Reader::new(buf, base);
    while !reader.is_empty() {
        let (field, wire_type) = reader.key()?;
        match field {
            1 => message(&mut reader, wire_type, depth, check_key_value)?,
            _ => reader.skip(wire_type)?,
        }
    }
    Ok(())
}
