use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::model::wire::{put_bytes, put_key, put_varint, FIXED32};
use crate::model::{Labels, Stream};
use crate::sinks::loki::encode::encode_push_request;

fn entry(timestamp_ns: i64, line: &str, metadata: &[(&str, &str)]) -> LogEntry {
    LogEntry {
        timestamp_ns,
        line: Bytes::copy_from_slice(line.as_bytes()),
        structured_metadata: metadata.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
    }
}

fn sample() -> (Vec<Stream>, Vec<Vec<LogEntry>>) {
    let streams = vec![
        Stream::new(Labels::from_pairs([("app", "api"), ("env", "prod")])),
        Stream::new(Labels::from_pairs([("app", "web\"q")])),
    ];
    let entries = vec![
        vec![
            entry(1_700_000_000_123_456_789, "GET /orders 200", &[("trace_id", "abc")]),
            entry(1_700_000_001_000_000_000, "", &[]),
        ],
        vec![entry(-1, "before the epoch", &[("k", ""), ("", "v")])],
    ];
    (streams, entries)
}

fn encode(streams: &[Stream], entries: &[Vec<LogEntry>]) -> Bytes {
    let mut out = Vec::new();
    encode_push_request(streams.iter().zip(entries.iter().map(Vec::as_slice)), &mut out);
    Bytes::from(out)
}

fn decode(body: &Bytes) -> Result<Vec<DecodedStream<'_>>, WireError> {
    let mut out = DecodedPush::default();
    decode_push_request(body, &mut out)?;
    assert!(out.json_labels.is_empty());
    Ok(out.streams)
}

#[test]
fn encoder_output_decodes_to_the_same_streams() {
    let (streams, entries) = sample();
    let body = encode(&streams, &entries);
    let decoded = decode(&body).unwrap();
    assert_eq!(decoded.len(), 2);
    for ((got, stream), want) in decoded.iter().zip(&streams).zip(&entries) {
        assert_eq!(got.labels, StreamLabels::Selector(stream.selector.as_bytes()));
        assert_eq!(&got.entries, want);
    }
}

#[test]
fn lines_share_the_body_buffer() {
    let (streams, entries) = sample();
    let body = encode(&streams, &entries);
    let decoded = decode(&body).unwrap();
    let line = &decoded[0].entries[0].line;
    let body_range = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
    assert!(body_range.contains(&(line.as_ptr() as usize)), "line is a slice of the body");
}

#[test]
fn unknown_fields_and_hash_are_skipped_last_labels_win() {
    let mut stream = Vec::new();
    put_bytes(&mut stream, 1, b"{first=\"1\"}");
    put_key(&mut stream, 3, VARINT); // hash
    put_varint(&mut stream, u64::MAX);
    put_key(&mut stream, 9, FIXED32);
    stream.extend_from_slice(&[1, 2, 3, 4]);
    put_bytes(&mut stream, 1, b"{app=\"x\"}");
    let mut timestamp = Vec::new();
    put_key(&mut timestamp, 1, VARINT);
    put_varint(&mut timestamp, 5);
    let mut entry = Vec::new();
    put_bytes(&mut entry, 1, &timestamp);
    put_bytes(&mut entry, 7, b"unknown");
    put_bytes(&mut entry, 2, b"line");
    put_bytes(&mut stream, 2, &entry);
    let mut body = Vec::new();
    put_bytes(&mut body, 5, b"ignored");
    put_bytes(&mut body, 1, &stream);
    let body = Bytes::from(body);
    let decoded = decode(&body).unwrap();
    assert_eq!(decoded.len(), 1);
    assert_eq!(decoded[0].labels, StreamLabels::Selector(b"{app=\"x\"}"));
    assert_eq!(decoded[0].entries, vec![entry_at(5_000_000_000, "line")]);
}

fn entry_at(timestamp_ns: i64, line: &str) -> LogEntry {
    entry(timestamp_ns, line, &[])
}

#[test]
fn malformed_input_names_the_offset() {
    // streams field with a varint wire type
    let body = Bytes::from_static(&[0x08, 0x01]);
    let err = decode(&body).unwrap_err();
    assert_eq!(err.offset, 1);
    assert!(err.what.contains("wire type"), "{err}");
    // nanos = 1e9
    let mut timestamp = Vec::new();
    put_key(&mut timestamp, 2, VARINT);
    put_varint(&mut timestamp, 1_000_000_000);
    let mut entry = Vec::new();
    put_bytes(&mut entry, 1, &timestamp);
    let mut stream = Vec::new();
    put_bytes(&mut stream, 2, &entry);
    let mut body = Vec::new();
    put_bytes(&mut body, 1, &stream);
    let err = decode(&Bytes::from(body)).unwrap_err();
    assert!(err.what.contains("nanos"), "{err}");
    assert_eq!(err.offset, 12, "just after the nanos varint");
}

#[test]
fn negative_nanos_are_refused_and_huge_seconds_saturate() {
    let timestamp = |seconds: i64, nanos: i32| {
        let mut t = Vec::new();
        put_key(&mut t, 1, VARINT);
        put_varint(&mut t, seconds as u64);
        put_key(&mut t, 2, VARINT);
        put_varint(&mut t, i64::from(nanos) as u64);
        t
    };
    assert!(decode_timestamp(&timestamp(1, -1), 0).is_err());
    assert_eq!(decode_timestamp(&timestamp(i64::MAX, 5), 0).unwrap(), i64::MAX);
    assert_eq!(decode_timestamp(&timestamp(i64::MIN, 0), 0).unwrap(), i64::MIN);
    assert_eq!(decode_timestamp(&timestamp(-1, 999_999_999), 0).unwrap(), -1);
}

#[test]
fn structured_metadata_that_is_not_utf8_is_stripped() {
    let mut pair = Vec::new();
    put_bytes(&mut pair, 1, b"k\xffey");
    put_bytes(&mut pair, 2, b"v\xc3\x28al");
    let label = decode_label_pair(&pair, 0).unwrap();
    assert_eq!(label, Label::new("key", "v(al"));
}

/// Cut anywhere, a body is an error naming an offset inside it, except where the cut falls
/// between two top-level fields (then it is a valid, shorter request).
#[test]
fn every_truncation_is_an_error_or_a_field_boundary() {
    let (streams, entries) = sample();
    let body = encode(&streams, &entries);
    let full = decode(&body).unwrap();
    let mut boundaries = vec![0];
    let mut reader = Reader::new(&body, 0);
    while !reader.is_empty() {
        let (_, wire_type) = reader.key().unwrap();
        reader.skip(wire_type).unwrap();
        boundaries.push(reader.position());
    }
    for len in 0..body.len() {
        let prefix = body.slice(..len);
        match decode(&prefix) {
            Ok(decoded) => {
                let index = boundaries.iter().position(|&b| b == len);
                assert!(index.is_some(), "prefix of {len} bytes decoded");
                assert_eq!(decoded.len(), index.unwrap());
                for (got, want) in decoded.iter().zip(&full) {
                    assert_eq!(got.entries, want.entries);
                }
            }
            Err(err) => assert!(err.offset <= len, "{len}: {err}"),
        }
    }
}

fn arb_entry() -> impl Strategy<Value = LogEntry> {
    (
        any::<i64>(),
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(("[a-z_]{0,6}", "\\PC{0,8}"), 0..3),
    )
        .prop_map(|(timestamp_ns, line, metadata)| LogEntry {
            timestamp_ns,
            line: Bytes::from(line),
            structured_metadata: metadata.into_iter().map(|(n, v)| Label::new(n, v)).collect(),
        })
}

proptest! {
    #[test]
    fn encode_decode_round_trip(
        raw in proptest::collection::vec(
            (
                proptest::collection::vec(("[a-z_][a-z0-9_]{0,5}", "\\PC{1,10}"), 1..4),
                proptest::collection::vec(arb_entry(), 0..5),
            ),
            0..5,
        )
    ) {
        let streams: Vec<Stream> =
            raw.iter().map(|(labels, _)| Stream::new(Labels::from_pairs(labels.clone()))).collect();
        let entries: Vec<Vec<LogEntry>> = raw.into_iter().map(|(_, e)| e).collect();
        let body = encode(&streams, &entries);
        let decoded = decode(&body).unwrap();
        prop_assert_eq!(decoded.len(), streams.len());
        for ((got, stream), want) in decoded.iter().zip(&streams).zip(&entries) {
            prop_assert_eq!(&got.labels, &StreamLabels::Selector(stream.selector.as_bytes()));
            prop_assert_eq!(&got.entries, want);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let body = Bytes::from(data);
        let _ = decode(&body);
    }
}

#[test]
fn json_label_keys_split_back_into_pairs() {
    let key = b"\xffapp\xfex\xffenv\xfe\xff";
    let pairs: Vec<_> = json_label_pairs(key).collect();
    assert_eq!(pairs, vec![(&b"app"[..], &b"x"[..]), (&b"env"[..], &b""[..])]);
    assert_eq!(json_label_pairs(b"\xff").count(), 0);
}
