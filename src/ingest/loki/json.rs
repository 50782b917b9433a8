//! Decoding of Loki's JSON push body (`POST /loki/api/v1/push` with `application/json`):
//!
//! ```json
//! {"streams": [{"stream": {"app": "x"},
//!               "values": [["1700000000000000000", "a line"],
//!                          ["1700000000000000001", "line", {"trace_id": "abc"}]]}]}
//! ```
//!
//! Semantics follow Loki's decoder (`pkg/loghttp/entry.go` `sliceEntryDecoder`,
//! `pkg/loghttp/labels.go` `LabelSet`, `pkg/util/unmarshal` `DecodePushRequest`, Loki 3.x):
//! the timestamp is a JSON *string* holding Unix nanoseconds (Go `strconv.ParseInt`, base 10,
//! optional sign); the line is a string; the optional third element is an object of string
//! structured metadata; unknown object keys are ignored. Label values must be strings (Loki's
//! `jsonparser` would also take the text of a number; Strata refuses it rather than guess).
//!
//! Zero-copy: strings without escapes are borrowed from the body, so lines are `Bytes` slices of
//! it; only escaped strings are copied. Stream labels are recorded in
//! [`DecodedPush::json_labels`] as sent (Loki's map semantics, last duplicate wins, are applied
//! on a cache miss in `mod.rs`).
//!
//! Errors are serde_json's (with line and column), prefixed with where they happened:
//! `stream 3, value 2: timestamp "x" is not an integer number of nanoseconds at line 1 column 80`.

use std::cell::Cell;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::decode::{
    DecodedPush, DecodedStream, StreamLabels, JSON_LABELS_START, JSON_NAME_END, JSON_VALUE_END,
};
use crate::model::{Label, LogEntry};

/// A JSON body that could not be decoded, and where.
#[derive(Debug, thiserror::Error)]
#[error("{location}{source}")]
pub struct JsonError {
    location: String,
    source: serde_json::Error,
}

/// Where the decoder is: stream index and value index within it.
#[derive(Clone, Copy, Debug, Default)]
struct Position {
    stream: Option<usize>,
    value: Option<usize>,
}

/// Decodes a JSON push into `out` (streams appended).
pub fn decode_push_json<'a>(body: &'a Bytes, out: &mut DecodedPush<'a>) -> Result<(), JsonError> {
    let at = Cell::new(Position::default());
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let result = PushSeed { body, out, at: &at }
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
    result.map_err(|source| {
        let location = match at.get() {
            Position { stream: Some(stream), value: Some(value) } => {
                format!("stream {stream}, value {value}: ")
            }
            Position { stream: Some(stream), value: None } => format!("stream {stream}: "),
            Position { stream: None, .. } => String::new(),
        };
        JsonError { location, source }
    })
}

/// A string as the body has it: borrowed when it had no escapes.
enum Text<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Text<'_> {
    fn as_str(&self) -> &str {
        match self {
            Text::Borrowed(text) => text,
            Text::Owned(text) => text,
        }
    }

    /// As `Bytes`: a slice of `body` when borrowed from it, else a copy.
    fn into_bytes(self, body: &Bytes) -> Bytes {
        match self {
            Text::Borrowed(text) => {
                let start = (text.as_ptr() as usize).wrapping_sub(body.as_ptr() as usize);
                match start.checked_add(text.len()) {
                    Some(end) if end <= body.len() => body.slice(start..end),
                    _ => Bytes::copy_from_slice(text.as_bytes()),
                }
            }
            Text::Owned(text) => Bytes::from(text),
        }
    }
}

struct TextSeed;

impl<'de> DeserializeSeed<'de> for TextSeed {
    type Value = Text<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Text<'de>, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Text<'de>, E> {
        Ok(Text::Borrowed(text))
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Text<'de>, E> {
        Ok(Text::Owned(text.to_owned()))
    }
    fn visit_string<E: de::Error>(self, text: String) -> Result<Text<'de>, E> {
        Ok(Text::Owned(text))
    }
}

/// Reads an object key, telling whether it is `wanted`, without allocating for borrowed keys.
fn key_is<'de, A: MapAccess<'de>>(map: &mut A, wanted: &[&str]) -> Result<Option<usize>, A::Error> {
    loop {
        let Some(key) = map.next_key_seed(TextSeed)? else { return Ok(None) };
        if let Some(index) = wanted.iter().position(|w| *w == key.as_str()) {
            return Ok(Some(index));
        }
        map.next_value::<IgnoredAny>()?;
    }
}

struct PushSeed<'a, 'c> {
    body: &'a Bytes,
    out: &'c mut DecodedPush<'a>,
    at: &'c Cell<Position>,
}

impl<'a, 'c> DeserializeSeed<'a> for PushSeed<'a, 'c> {
    type Value = ();
    fn deserialize<D: Deserializer<'a>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'a, 'c> Visitor<'a> for PushSeed<'a, 'c> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a push request {"streams": [...]}"#)
    }
    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<(), A::Error> {
        while key_is(&mut map, &["streams"])?.is_some() {
            map.next_value_seed(StreamsSeed { body: self.body, out: &mut *self.out, at: self.at })?;
        }
        Ok(())
    }
}

struct StreamsSeed<'a, 'c> {
    body: &'a Bytes,
    out: &'c mut DecodedPush<'a>,
    at: &'c Cell<Position>,
}

impl<'a, 'c> DeserializeSeed<'a> for StreamsSeed<'a, 'c> {
    type Value = ();
    fn deserialize<D: Deserializer<'a>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'a, 'c> Visitor<'a> for StreamsSeed<'a, 'c> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of streams")
    }
    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            self.at.set(Position { stream: Some(index), value: None });
            let seed = StreamSeed { body: self.body, out: &mut *self.out, at: self.at };
            if seq.next_element_seed(seed)?.is_none() {
                break;
            }
            index += 1;
        }
        self.at.set(Position::default());
        Ok(())
    }
}

struct StreamSeed<'a, 'c> {
    body: &'a Bytes,
    out: &'c mut DecodedPush<'a>,
    at: &'c Cell<Position>,
}

impl<'a, 'c> DeserializeSeed<'a> for StreamSeed<'a, 'c> {
    type Value = ();
    fn deserialize<D: Deserializer<'a>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'a, 'c> Visitor<'a> for StreamSeed<'a, 'c> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a stream {"stream": {...}, "values": [...]}"#)
    }
    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<(), A::Error> {
        let mut labels = None;
        let mut entries = Vec::new();
        while let Some(field) = key_is(&mut map, &["stream", "values"])? {
            if field == 0 {
                let arena = &mut self.out.json_labels;
                let start = arena.len();
                map.next_value_seed(LabelsSeed { arena })?;
                labels = Some(start..arena.len());
            } else {
                entries.clear();
                map.next_value_seed(ValuesSeed {
                    body: self.body,
                    entries: &mut entries,
                    at: self.at,
                })?;
            }
        }
        // A missing "stream" is an empty label set, as Go's zero map is.
        let labels = labels.unwrap_or_else(|| {
            let start = self.out.json_labels.len();
            self.out.json_labels.push(JSON_LABELS_START);
            start..start + 1
        });
        self.out.streams.push(DecodedStream { labels: StreamLabels::Json(labels), entries });
        Ok(())
    }
}

/// Appends one label set to the arena in the [`DecodedPush::json_labels`] encoding.
struct LabelsSeed<'c> {
    arena: &'c mut Vec<u8>,
}

impl<'a, 'c> DeserializeSeed<'a> for LabelsSeed<'c> {
    type Value = ();
    fn deserialize<D: Deserializer<'a>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'a, 'c> Visitor<'a> for LabelsSeed<'c> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of string labels")
    }
    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<(), A::Error> {
        self.arena.push(JSON_LABELS_START);
        while let Some(name) = map.next_key_seed(TextSeed)? {
            let value = map.next_value_seed(TextSeed)?;
            self.arena.extend_from_slice(name.as_str().as_bytes());
            self.arena.push(JSON_NAME_END);
            self.arena.extend_from_slice(value.as_str().as_bytes());
            self.arena.push(JSON_VALUE_END);
        }
        Ok(())
    }
}

struct ValuesSeed<'a, 'c> {
    body: &'a Bytes,
    entries: &'c mut Vec<LogEntry>,
    at: &'c Cell<Position>,
}

impl<'a, 'c> DeserializeSeed<'a> for ValuesSeed<'a, 'c> {
    type Value = ();
    fn deserialize<D: Deserializer<'a>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'a, 'c> Visitor<'a> for ValuesSeed<'a, 'c> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of values")
    }
    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<(), A::Error> {
        if let Some(hint) = seq.size_hint() {
            self.entries.reserve(hint);
        }
        let stream = self.at.get().stream;
        loop {
            self.at.set(Position { stream, value: Some(self.entries.len()) });
            match seq.next_element_seed(EntrySeed { body: self.body })? {
                Some(entry) => self.entries.push(entry),
                None => break,
            }
        }
        self.at.set(Position { stream, value: None });
        Ok(())
    }
}

struct EntrySeed<'a> {
    body: &'a Bytes,
}

impl<'a> DeserializeSeed<'a> for EntrySeed<'a> {
    type Value = LogEntry;
    fn deserialize<D: Deserializer<'a>>(self, deserializer: D) -> Result<LogEntry, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'a> Visitor<'a> for EntrySeed<'a> {
    type Value = LogEntry;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a value ["<unix nanoseconds>", "<line>"] or with {structured metadata}"#)
    }
    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<LogEntry, A::Error> {
        let Some(timestamp) = seq.next_element_seed(TextSeed)? else {
            return Err(de::Error::invalid_length(0, &self));
        };
        let Ok(timestamp_ns) = timestamp.as_str().parse::<i64>() else {
            return Err(de::Error::custom(format_args!(
                "timestamp {:?} is not an integer number of nanoseconds",
                timestamp.as_str()
            )));
        };
        let Some(line) = seq.next_element_seed(TextSeed)? else {
            return Err(de::Error::invalid_length(1, &self));
        };
        let structured_metadata = seq.next_element_seed(MetadataSeed)?.unwrap_or_default();
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(4, &self));
        }
        Ok(LogEntry { timestamp_ns, line: line.into_bytes(self.body), structured_metadata })
    }
}

struct MetadataSeed;

impl<'a> DeserializeSeed<'a> for MetadataSeed {
    type Value = Vec<Label>;
    fn deserialize<D: Deserializer<'a>>(self, deserializer: D) -> Result<Vec<Label>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'a> Visitor<'a> for MetadataSeed {
    type Value = Vec<Label>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of string structured metadata")
    }
    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<Vec<Label>, A::Error> {
        let mut labels = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(name) = map.next_key_seed(TextSeed)? {
            let value = map.next_value_seed(TextSeed)?;
            labels.push(Label::new(name.as_str(), value.as_str()));
        }
        Ok(labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::loki::decode::json_label_pairs;

    /// A decoded stream: its label pairs as sent and its entries.
    type Decoded = (Vec<(String, String)>, Vec<LogEntry>);

    fn decode(text: &str) -> Result<(Bytes, Vec<Decoded>), String> {
        let body = Bytes::copy_from_slice(text.as_bytes());
        let mut out = DecodedPush::default();
        decode_push_json(&body, &mut out).map_err(|e| e.to_string())?;
        let streams = out
            .streams
            .iter()
            .map(|s| {
                let pairs = json_label_pairs(out.key(&s.labels))
                    .map(|(n, v)| {
                        (
                            String::from_utf8(n.to_vec()).unwrap(),
                            String::from_utf8(v.to_vec()).unwrap(),
                        )
                    })
                    .collect();
                (pairs, s.entries.clone())
            })
            .collect();
        Ok((body, streams))
    }

    fn entry(timestamp_ns: i64, line: &str, metadata: &[(&str, &str)]) -> LogEntry {
        LogEntry {
            timestamp_ns,
            line: Bytes::copy_from_slice(line.as_bytes()),
            structured_metadata: metadata.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
        }
    }

    #[test]
    fn decodes_lokis_json_push() {
        let (_, streams) = decode(
            r#"{"streams": [
                {"stream": {"app": "x", "env": "a\"b"},
                 "values": [["1700000000000000000", "GET /"],
                            ["-5", "tab\tline", {"trace_id": "abc", "user": "\u00e9"}]],
                 "ignored": [1, 2]},
                {"values": [["+7", ""]]}
            ], "extra": {}}"#,
        )
        .unwrap();
        assert_eq!(streams.len(), 2);
        let owned = |pairs: &[(&str, &str)]| {
            pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect::<Vec<_>>()
        };
        assert_eq!(streams[0].0, owned(&[("app", "x"), ("env", "a\"b")]));
        assert_eq!(
            streams[0].1,
            vec![
                entry(1_700_000_000_000_000_000, "GET /", &[]),
                entry(-5, "tab\tline", &[("trace_id", "abc"), ("user", "é")]),
            ]
        );
        assert_eq!(streams[1].0, owned(&[]), "a missing stream object is an empty label set");
        assert_eq!(streams[1].1, vec![entry(7, "", &[])]);
    }

    #[test]
    fn unescaped_lines_are_slices_of_the_body() {
        let (body, streams) =
            decode(r#"{"streams":[{"stream":{"a":"b"},"values":[["1","plain"],["2","esc\n"]]}]}"#)
                .unwrap();
        let range = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
        assert!(range.contains(&(streams[0].1[0].line.as_ptr() as usize)));
        assert!(!range.contains(&(streams[0].1[1].line.as_ptr() as usize)));
        assert_eq!(&streams[0].1[1].line[..], b"esc\n");
    }

    #[test]
    fn errors_say_which_stream_and_value() {
        let cases = [
            (
                r#"{"streams":[{"values":[["1","a"]]},{"values":[["1","a"],["x","b"]]}]}"#,
                "stream 1, value 1: timestamp \"x\" is not an integer",
            ),
            (
                r#"{"streams":[{"values":[[1,"a"]]}]}"#,
                "stream 0, value 0: invalid type: integer `1`, expected a string",
            ),
            (r#"{"streams":[{"values":[["1"]]}]}"#, "stream 0, value 0: invalid length 1"),
            (
                r#"{"streams":[{"values":[["1","a",{},"x"]]}]}"#,
                "stream 0, value 0: invalid length 4",
            ),
            (
                r#"{"streams":[{"values":[["1","a",{"k":1}]]}]}"#,
                "stream 0, value 0: invalid type: integer",
            ),
            (r#"{"streams":[{"stream":{"a":1},"values":[]}]}"#, "stream 0: invalid type: integer"),
            (r#"{"streams":[{"stream":[],"values":[]}]}"#, "stream 0: invalid type: sequence"),
            (
                r#"{"streams":[{"values":[["99999999999999999999","a"]]}]}"#,
                "stream 0, value 0: timestamp",
            ),
            (r#"{"streams":{}}"#, "invalid type: map, expected an array of streams"),
            (r#"{"streams":[]} x"#, "trailing characters"),
            (r#"{"streams":[{"values":[["1","a"]"#, "stream 0, value 1: EOF"),
            ("", "EOF while parsing"),
        ];
        for (text, expected) in cases {
            let err = decode(text).unwrap_err();
            assert!(err.starts_with(expected) || err.contains(expected), "{text}: {err}");
            assert!(err.contains("line 1 column"), "{text}: {err}");
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let text = r#"{"streams":[{"stream":{"app":"x"},"values":[["1","a\"b",{"k":"v"}]]}]}"#;
        decode(text).unwrap();
        for len in 0..text.len() {
            assert!(decode(&text[..len]).is_err(), "{len}");
        }
    }
}
