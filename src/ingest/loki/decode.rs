//! Zero-copy decoding of `logproto.PushRequest` (after snappy), the body Promtail, Grafana Alloy
//! and Loki clients push.
//!
//! Schema: Loki `pkg/push/push.proto` (Loki 3.x; the same field numbers since Loki 1.0):
//!
//! ```text
//! PushRequest      { repeated StreamAdapter streams = 1; }
//! StreamAdapter    { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
//! EntryAdapter     { google.protobuf.Timestamp timestamp = 1; string line = 2;
//!                    repeated LabelPairAdapter structuredMetadata = 3; }
//! LabelPairAdapter { string name = 1; string value = 2; }
//! Timestamp        { int64 seconds = 1; int32 nanos = 2; }
//! ```
//!
//! The walk uses [`model::wire::Reader`](crate::model::wire::Reader), so a truncated or
//! malformed body is a [`WireError`] naming the byte offset, never a panic. Lines are
//! `Bytes::slice`s of the decompressed body (no copy); a stream's `labels` stay borrowed bytes
//! until the caller's cache decides whether they need parsing at all. `hash` and unknown fields
//! are skipped; a repeated scalar field keeps its last value (proto3).
//!
//! Timestamps: `nanos` outside `0..1e9` is an error, as in gogo's `StdTimeUnmarshal`; seconds
//! beyond the `i64` nanosecond range saturate (validation then rejects the entry as too old or
//! too new instead of failing the whole push). Structured metadata names and values are strings;
//! bytes that are not UTF-8 are dropped from them, as Loki's distributor strips invalid runes.

use std::ops::Range;

use bytes::Bytes;

use crate::model::wire::{Reader, WireError, LEN, VARINT};
use crate::model::{Label, LogEntry};

/// The labels of one pushed stream, as sent: not parsed yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamLabels<'a> {
    /// Protobuf `StreamAdapter.labels`: selector text, not checked to be UTF-8 yet.
    Selector(&'a [u8]),
    /// JSON `stream`: a range of [`DecodedPush::json_labels`] (see there).
    Json(Range<usize>),
}

/// One stream of a push: its labels as sent and its entries.
#[derive(Clone, Debug)]
pub struct DecodedStream<'a> {
    pub labels: StreamLabels<'a>,
    pub entries: Vec<LogEntry>,
}

/// A decoded push: its streams, plus the label bytes of JSON streams.
#[derive(Debug, Default)]
pub struct DecodedPush<'a> {
    pub streams: Vec<DecodedStream<'a>>,
    /// JSON stream labels in the order sent, each set as [`JSON_LABELS_START`] followed by
    /// `name 0xFE value 0xFF` per label. JSON strings are UTF-8, which never contains the bytes
    /// 0xFE and 0xFF, so the encoding is unambiguous, and no selector that is UTF-8 starts with
    /// 0xFF, so these keys and protobuf selectors share one cache without colliding.
    pub json_labels: Vec<u8>,
}

/// First byte of every JSON label key (see [`DecodedPush::json_labels`]).
pub const JSON_LABELS_START: u8 = 0xFF;
/// Separates a JSON label name from its value.
pub const JSON_NAME_END: u8 = 0xFE;
/// Ends a JSON label value.
pub const JSON_VALUE_END: u8 = 0xFF;

impl<'a> DecodedPush<'a> {
    /// The bytes identifying a stream's labels: the cache key.
    pub fn key<'s>(&'s self, labels: &'s StreamLabels<'a>) -> &'s [u8] {
        match labels {
            StreamLabels::Selector(selector) => selector,
            StreamLabels::Json(range) => &self.json_labels[range.clone()],
        }
    }

    /// Number of entries over all streams.
    pub fn entry_count(&self) -> usize {
        self.streams.iter().map(|s| s.entries.len()).sum()
    }
}

/// Splits a JSON label key back into `(name, value)` pairs in the order sent.
pub fn json_label_pairs(key: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let body = key.strip_prefix(&[JSON_LABELS_START]).unwrap_or(key);
    body.split(|&b| b == JSON_VALUE_END).filter(|pair| !pair.is_empty()).map(|pair| {
        let cut = pair.iter().position(|&b| b == JSON_NAME_END).unwrap_or(pair.len());
        (&pair[..cut], pair.get(cut + 1..).unwrap_or_default())
    })
}

/// Decodes a `logproto.PushRequest` into `out` (streams appended). `body` is the decompressed
/// message; lines share its buffer.
pub fn decode_push_request<'a>(
    body: &'a Bytes,
    out: &mut DecodedPush<'a>,
) -> Result<(), WireError> {
    let mut reader = Reader::new(body, 0);
    while !reader.is_empty() {
        let (field, wire_type) = reader.key()?;
        if field != 1 {
            reader.skip(wire_type)?;
            continue;
        }
        reader.expect(wire_type, LEN)?;
        let (message, offset) = reader.bytes()?;
        out.streams.push(decode_stream(body, message, offset)?);
    }
    Ok(())
}

fn decode_stream<'a>(
    body: &'a Bytes,
    message: &'a [u8],
    base: usize,
) -> Result<DecodedStream<'a>, WireError> {
    let mut labels: &'a [u8] = &[];
    let mut entries = Vec::with_capacity(count_entries(message));
    let mut reader = Reader::new(message, base);
    while !reader.is_empty() {
        match reader.key()? {
            (1, wire_type) => {
                reader.expect(wire_type, LEN)?;
                labels = reader.bytes()?.0;
            }
            (2, wire_type) => {
                reader.expect(wire_type, LEN)?;
                let (entry, offset) = reader.bytes()?;
                entries.push(decode_entry(body, entry, offset)?);
            }
            (_, wire_type) => reader.skip(wire_type)?,
        }
    }
    Ok(DecodedStream { labels: StreamLabels::Selector(labels), entries })
}

/// Entries in a stream message, counted by a quick walk so the entry vector is allocated once;
/// a malformed message counts what it can (the real walk reports the error).
fn count_entries(message: &[u8]) -> usize {
    let mut reader = Reader::new(message, 0);
    let mut count = 0;
    while let Ok((field, wire_type)) = reader.key() {
        if reader.skip(wire_type).is_err() {
            break;
        }
        count += usize::from(field == 2 && wire_type == LEN);
    }
    count
}

#[inline]
fn decode_entry(body: &Bytes, message: &[u8], base: usize) -> Result<LogEntry, WireError> {
    let mut entry =
        LogEntry { timestamp_ns: 0, line: Bytes::new(), structured_metadata: Vec::new() };
    let mut reader = Reader::new(message, base);
    while !reader.is_empty() {
        match reader.key()? {
            (1, wire_type) => {
                reader.expect(wire_type, LEN)?;
                let (timestamp, offset) = reader.bytes()?;
                entry.timestamp_ns = decode_timestamp(timestamp, offset)?;
            }
            (2, wire_type) => {
                reader.expect(wire_type, LEN)?;
                let (line, offset) = reader.bytes()?;
                entry.line = body.slice(offset..offset + line.len());
            }
            (3, wire_type) => {
                reader.expect(wire_type, LEN)?;
                let (pair, offset) = reader.bytes()?;
                entry.structured_metadata.push(decode_label_pair(pair, offset)?);
            }
            (_, wire_type) => reader.skip(wire_type)?,
        }
    }
    Ok(entry)
}

#[inline]
fn decode_timestamp(message: &[u8], base: usize) -> Result<i64, WireError> {
    let mut seconds: i64 = 0;
    let mut nanos: i64 = 0;
    let mut reader = Reader::new(message, base);
    while !reader.is_empty() {
        match reader.key()? {
            (1, wire_type) => {
                reader.expect(wire_type, VARINT)?;
                seconds = reader.varint()? as i64;
            }
            (2, wire_type) => {
                reader.expect(wire_type, VARINT)?;
                // int32 on the wire: negative values are sign-extended to 64 bits.
                nanos = i64::from(reader.varint()? as i32);
                if !(0..1_000_000_000).contains(&nanos) {
                    return Err(reader.error("timestamp nanos out of range 0..1e9"));
                }
            }
            (_, wire_type) => reader.skip(wire_type)?,
        }
    }
    let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    Ok(total.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

fn decode_label_pair(message: &[u8], base: usize) -> Result<Label, WireError> {
    let mut name: &[u8] = &[];
    let mut value: &[u8] = &[];
    let mut reader = Reader::new(message, base);
    while !reader.is_empty() {
        match reader.key()? {
            (1, wire_type) => {
                reader.expect(wire_type, LEN)?;
                name = reader.bytes()?.0;
            }
            (2, wire_type) => {
                reader.expect(wire_type, LEN)?;
                value = reader.bytes()?.0;
            }
            (_, wire_type) => reader.skip(wire_type)?,
        }
    }
    Ok(Label { name: utf8_or_stripped(name), value: utf8_or_stripped(value) })
}

/// The bytes as a `String`; byte sequences that are not UTF-8 are left out.
pub fn utf8_or_stripped(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.utf8_chunks().map(|chunk| chunk.valid()).collect(),
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
