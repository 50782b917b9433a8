//! Encoding of outgoing Loki pushes: `logproto.PushRequest` protobuf (Loki `pkg/push/push.proto`,
//! field numbers in `ingest::loki::decode`), before snappy.
//!
//! Each stream is written as `StreamAdapter { labels = Stream::selector, entries }` (the
//! canonical selector, what Loki's own clients send; `hash` is left out as they do); each entry
//! as `EntryAdapter { timestamp, line, structuredMetadata }` with the timestamp split into
//! `seconds` and non-negative `nanos` (floor division, so times before 1970 are valid
//! `google.protobuf.Timestamp`s).
//!
//! Invariants: the output is canonical protobuf (minimal varints, proto3 zero values left out)
//! and is written in one pass without allocating anything but `out`'s growth: every nested
//! length is computed from the stream's entries before the stream is written.

use crate::model::wire::{put_bytes, put_key, put_varint, varint_len, LEN, VARINT};
use crate::model::{Label, LogEntry, Stream};

/// Appends a `logproto.PushRequest` holding `streams` to `out`.
pub fn encode_push_request<'a>(
    streams: impl IntoIterator<Item = (&'a Stream, &'a [LogEntry])>,
    out: &mut Vec<u8>,
) {
    for (stream, entries) in streams {
        let body_len = field_len(stream.selector.len())
            + entries.iter().map(|entry| field_len(entry_len(entry))).sum::<usize>();
        put_key(out, 1, LEN);
        put_varint(out, body_len as u64);
        let start = out.len();
        out.reserve(body_len);
        put_bytes(out, 1, stream.selector.as_bytes());
        for entry in entries {
            put_entry(out, entry);
        }
        debug_assert_eq!(out.len() - start, body_len, "stream length computed up front");
    }
}

/// Bytes of a length-delimited field with a one-byte key and a `len`-byte body.
#[inline]
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// `(seconds, nanos)` with `0 <= nanos < 1e9`.
#[inline]
fn split_timestamp(timestamp_ns: i64) -> (i64, i64) {
    (timestamp_ns.div_euclid(1_000_000_000), timestamp_ns.rem_euclid(1_000_000_000))
}

#[inline]
fn timestamp_len(seconds: i64, nanos: i64) -> usize {
    let mut len = 0;
    if seconds != 0 {
        len += 1 + varint_len(seconds as u64);
    }
    if nanos != 0 {
        len += 1 + varint_len(nanos as u64);
    }
    len
}

#[inline]
fn pair_len(label: &Label) -> usize {
    let mut len = 0;
    if !label.name.is_empty() {
        len += field_len(label.name.len());
    }
    if !label.value.is_empty() {
        len += field_len(label.value.len());
    }
    len
}

#[inline]
fn entry_len(entry: &LogEntry) -> usize {
    let (seconds, nanos) = split_timestamp(entry.timestamp_ns);
    let mut len = field_len(timestamp_len(seconds, nanos));
    if !entry.line.is_empty() {
        len += field_len(entry.line.len());
    }
    len + entry.structured_metadata.iter().map(|l| field_len(pair_len(l))).sum::<usize>()
}

#[inline]
fn put_entry(out: &mut Vec<u8>, entry: &LogEntry) {
    put_key(out, 2, LEN);
    put_varint(out, entry_len(entry) as u64);
    // The timestamp is always written, even at the epoch: Loki's gogo types make it
    // non-nullable, and an absent one would read back as the zero `time.Time` (year 1).
    let (seconds, nanos) = split_timestamp(entry.timestamp_ns);
    put_key(out, 1, LEN);
    put_varint(out, timestamp_len(seconds, nanos) as u64);
    if seconds != 0 {
        put_key(out, 1, VARINT);
        put_varint(out, seconds as u64);
    }
    if nanos != 0 {
        put_key(out, 2, VARINT);
        put_varint(out, nanos as u64);
    }
    if !entry.line.is_empty() {
        put_bytes(out, 2, &entry.line);
    }
    for label in &entry.structured_metadata {
        put_key(out, 3, LEN);
        put_varint(out, pair_len(label) as u64);
        if !label.name.is_empty() {
            put_bytes(out, 1, label.name.as_bytes());
        }
        if !label.value.is_empty() {
            put_bytes(out, 2, label.value.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;
    use bytes::Bytes;

    #[test]
    fn layout_matches_push_proto() {
        let stream = Stream::new(Labels::from_pairs([("app", "x")]));
        let entries = [LogEntry {
            timestamp_ns: 1_500_000_001,
            line: Bytes::from_static(b"hi"),
            structured_metadata: vec![Label::new("k", "v")],
        }];
        let mut out = Vec::new();
        encode_push_request([(&stream, &entries[..])], &mut out);
        let selector = br#"{app="x"}"#;
        let mut expected = vec![0x0a, 0x00, 0x0a, selector.len() as u8];
        expected.extend_from_slice(selector);
        // entry: timestamp {seconds 1, nanos 500000001}, line "hi", metadata {k, v}
        let mut entry = vec![0x0a, 0x08, 0x08, 0x01, 0x10, 0x81, 0xca, 0xb5, 0xee, 0x01];
        entry.extend_from_slice(&[0x12, 0x02, b'h', b'i', 0x1a, 0x06, 0x0a, 0x01, b'k', 0x12]);
        entry.extend_from_slice(&[0x01, b'v']);
        expected.extend_from_slice(&[0x12, entry.len() as u8]);
        expected.extend_from_slice(&entry);
        expected[1] = (expected.len() - 2) as u8;
        assert_eq!(out, expected);
    }

    #[test]
    fn epoch_and_negative_timestamps_are_valid_timestamps() {
        assert_eq!(split_timestamp(0), (0, 0));
        assert_eq!(split_timestamp(-1), (-1, 999_999_999));
        assert_eq!(split_timestamp(i64::MIN), (-9_223_372_037, 145_224_192));
    }
}
