//! Log batches: streams (a label set) with their entries, as Loki models them
//! (`pkg/push/types.go`, `logproto.PushRequest`: stream = labels + entries; entry = timestamp,
//! line, structured metadata).
//!
//! Invariants:
//! * A [`Stream`]'s labels are sorted and unique ([`Labels`]); its `selector` is the canonical
//!   LogQL form of those labels (`{a="1", b="2"}`, values quoted as Go's `strconv.Quote` does),
//!   which is what Loki push carries on the wire and the key of stream relabel caches.
//! * Lines and structured metadata are carried unchanged (bytes in, bytes out).

use std::sync::Arc;

use bytes::Bytes;

use super::labels::{Label, Labels};

/// The tenant a batch belongs to (`X-Scope-OrgID`).
pub type Tenant = Arc<str>;

/// The tenant Loki uses when multi-tenancy is off.
pub const DEFAULT_TENANT: &str = "fake";

/// The identity of a log stream, shared read-only by every stage after relabeling.
#[derive(Debug, PartialEq, Eq)]
pub struct Stream {
    pub labels: Labels,
    /// `{a="1", b="2"}`: the canonical selector, ready to be copied into an outgoing push.
    pub selector: Box<str>,
    /// xxh3 of `selector`: stable across processes, so it can pick shards and partitions.
    pub hash: u64,
}

impl Stream {
    pub fn new(labels: Labels) -> Self {
        let selector = selector_of(&labels);
        let hash = xxhash_rust::xxh3::xxh3_64(selector.as_bytes());
        Self { labels, selector: selector.into_boxed_str(), hash }
    }
}

/// The LogQL selector form of `labels`: `{a="1", b="2"}`, values quoted like Go's `%q` (what
/// Loki's `labels.String()` prints), names as they are.
pub fn selector_of(labels: &Labels) -> String {
    let mut out = String::with_capacity(
        2 + labels.iter().map(|l| l.name.len() + l.value.len() + 5).sum::<usize>(),
    );
    out.push('{');
    for (index, label) in labels.iter().enumerate() {
        if index > 0 {
            out.push_str(", ");
        }
        out.push_str(&label.name);
        out.push('=');
        push_go_quoted(&mut out, &label.value);
    }
    out.push('}');
    out
}

/// Appends `value` quoted as Go's `strconv.Quote` does for printable UTF-8: `"` and `\` escaped,
/// the usual control escapes, other control characters as `\x..`/`\u....`.
pub fn push_go_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// One log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// Nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    /// The line as sent; usually a slice of the decoded request body.
    pub line: Bytes,
    /// Loki structured metadata (name/value pairs, order kept as sent).
    pub structured_metadata: Vec<Label>,
}

impl LogEntry {
    /// Bytes Loki counts against rate limits: line plus structured metadata names and values.
    pub fn size(&self) -> usize {
        self.line.len()
            + self.structured_metadata.iter().map(|l| l.name.len() + l.value.len()).sum::<usize>()
    }
}

/// The entries of one stream within a batch.
#[derive(Clone, Debug)]
pub struct StreamEntries {
    pub stream: Arc<Stream>,
    pub entries: Vec<LogEntry>,
}

/// What ingest hands to routing for logs: one tenant's streams.
#[derive(Clone, Debug)]
pub struct LogBatch {
    pub tenant: Tenant,
    pub streams: Vec<StreamEntries>,
}

impl LogBatch {
    pub fn new(tenant: Tenant) -> Self {
        Self { tenant, streams: Vec::new() }
    }

    /// Number of entries (the unit of queue capacity for log sinks).
    pub fn entry_count(&self) -> usize {
        self.streams.iter().map(|s| s.entries.len()).sum()
    }

    /// Total of [`LogEntry::size`] over all entries.
    pub fn byte_size(&self) -> usize {
        self.streams.iter().flat_map(|s| &s.entries).map(LogEntry::size).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.iter().all(|s| s.entries.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_is_sorted_and_go_quoted() {
        let labels = Labels::from_pairs([("job", "a\"b"), ("app", "x\\y\n")]);
        assert_eq!(selector_of(&labels), r#"{app="x\\y\n", job="a\"b"}"#);
    }

    #[test]
    fn stream_hash_depends_on_labels_only() {
        let a = Stream::new(Labels::from_pairs([("a", "1"), ("b", "2")]));
        let b = Stream::new(Labels::from_pairs([("b", "2"), ("a", "1")]));
        assert_eq!(a.hash, b.hash);
        assert_eq!(&*a.selector, r#"{a="1", b="2"}"#);
    }
}
