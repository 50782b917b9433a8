//! `logproto.PushRequest` encoding (Loki `pkg/push/push.proto`): `PushRequest{streams = 1}`,
//! `StreamAdapter{labels = 1 (selector text), entries = 2}`, `EntryAdapter{timestamp = 1
//! (google.protobuf.Timestamp{seconds = 1, nanos = 2}), line = 2, structuredMetadata = 3
//! (LabelPairAdapter{name = 1, value = 2})}`.
//!
//! Lengths are computed before writing, so each message is written once, front to back.

use crate::model::wire::{put_varint, varint_len};
use crate::model::{LogEntry, Stream};

fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn put_bytes_field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// (seconds, nanos) of a Unix-nanosecond timestamp, nanos always in `0..1e9`.
fn split_timestamp(timestamp_ns: i64) -> (i64, i32) {
    (timestamp_ns.div_euclid(1_000_000_000), timestamp_ns.rem_euclid(1_000_000_000) as i32)
}

fn timestamp_len(timestamp_ns: i64) -> usize {
    let (seconds, nanos) = split_timestamp(timestamp_ns);
    let mut len = 0;
    if seconds != 0 {
        len += 1 + varint_len(seconds as u64);
    }
    if nanos != 0 {
        len += 1 + varint_len(nanos as u64);
    }
    len
}

fn entry_len(entry: &LogEntry) -> usize {
    let metadata: usize = entry
        .structured_metadata
        .iter()
        .map(|l| field_len(field_len(l.name.len()) + field_len(l.value.len())))
        .sum();
    field_len(timestamp_len(entry.timestamp_ns)) + field_len(entry.line.len()) + metadata
}

/// Appends a `PushRequest` holding `streams` to `out`.
pub fn encode_push_request<'a>(
    streams: impl IntoIterator<Item = (&'a Stream, &'a [LogEntry])>,
    out: &mut Vec<u8>,
) {
    for (stream, entries) in streams {
        let entries_len: usize = entries.iter().map(|e| field_len(entry_len(e))).sum();
        let stream_len = field_len(stream.selector.len()) + entries_len;
        out.push(0x0a);
        put_varint(out, stream_len as u64);
        put_bytes_field(out, 0x0a, stream.selector.as_bytes());
        for entry in entries {
            out.push(0x12);
            put_varint(out, entry_len(entry) as u64);
            out.push(0x0a);
            put_varint(out, timestamp_len(entry.timestamp_ns) as u64);
            let (seconds, nanos) = split_timestamp(entry.timestamp_ns);
            if seconds != 0 {
                out.push(0x08);
                put_varint(out, seconds as u64);
            }
            if nanos != 0 {
                out.push(0x10);
                put_varint(out, nanos as u64);
            }
            put_bytes_field(out, 0x12, &entry.line);
            for label in &entry.structured_metadata {
                out.push(0x1a);
                put_varint(
                    out,
                    (field_len(label.name.len()) + field_len(label.value.len())) as u64,
                );
                put_bytes_field(out, 0x0a, label.name.as_bytes());
                put_bytes_field(out, 0x12, label.value.as_bytes());
            }
        }
    }
}
