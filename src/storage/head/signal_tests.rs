//! Tests of the logs and traces heads and of the combined [`Head`].

use std::sync::Arc;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as otlp;
use prost::Message;

use super::logs::BLOCK_BYTES;
use super::matcher::{LabelMatcher, MatchOp};
use super::traces::TraceSearch;
use super::Head;
use crate::model::labels::{Label, Labels};
use crate::model::logs::{LogBatch, LogEntry, Stream, StreamEntries};
use crate::model::traces::TraceBatch;

fn entry(timestamp_ns: i64, line: &str) -> LogEntry {
    LogEntry { timestamp_ns, line: Bytes::from(line.to_owned()), structured_metadata: Vec::new() }
}

fn log_batch(tenant: &str, streams: Vec<(Labels, Vec<LogEntry>)>) -> LogBatch {
    LogBatch {
        tenant: tenant.into(),
        streams: streams
            .into_iter()
            .map(|(labels, entries)| StreamEntries {
                stream: Arc::new(Stream::new(labels)),
                entries,
            })
            .collect(),
    }
}

fn lines(entries: &[LogEntry]) -> Vec<(i64, &str)> {
    entries.iter().map(|e| (e.timestamp_ns, std::str::from_utf8(&e.line).unwrap())).collect()
}

#[test]
fn logs_are_time_ordered_deduplicated_and_selected_by_range_and_matchers() {
    let head = Head::new();
    let api = Labels::from_pairs([("app", "api"), ("env", "prod")]);
    let db = Labels::from_pairs([("app", "db")]);
    let mut tagged = entry(25, "tagged");
    tagged.structured_metadata = vec![Label::new("trace_id", "abc")];
    let first = log_batch(
        "t1",
        vec![
            (api.clone(), vec![entry(10, "a"), entry(30, "c"), tagged.clone()]),
            (db.clone(), vec![entry(5, "x")]),
        ],
    );
    assert_eq!(head.logs.append(&first), 4);
    // Late entries are accepted; a repeat of (time, line) is not stored twice.
    let second =
        log_batch("t1", vec![(api.clone(), vec![entry(20, "b"), entry(30, "c"), entry(30, "c2")])]);
    assert_eq!(head.logs.append(&second), 2);
    assert_eq!(head.logs.append(&log_batch("t2", vec![(db.clone(), vec![entry(1, "other")])])), 1);

    let all = head.logs.select("t1", &[], 0, 100);
    assert_eq!(all.iter().map(|s| s.labels.clone()).collect::<Vec<_>>(), [api.clone(), db.clone()]);
    assert_eq!(
        lines(&all[0].entries),
        [(10, "a"), (20, "b"), (25, "tagged"), (30, "c"), (30, "c2")]
    );
    assert_eq!(all[0].entries[2], tagged);

    let ranged = head.logs.select("t1", &[LabelMatcher::equal("app", "api")], 20, 30);
    assert_eq!(ranged.len(), 1);
    assert_eq!(lines(&ranged[0].entries), [(20, "b"), (25, "tagged")], "end is exclusive");
    let regex = LabelMatcher::new("env", MatchOp::Equal, "").unwrap();
    assert_eq!(head.logs.select("t1", &[regex], 0, 100)[0].labels, db);
    assert!(head.logs.select("t1", &[], 100, 200).is_empty());
    assert!(head.logs.select("nobody", &[], 0, 100).is_empty());

    assert_eq!(head.logs.all_streams("t1"), all);
    assert_eq!(head.logs.tenants(), [Arc::<str>::from("t1"), Arc::<str>::from("t2")]);
    let stats = head.logs.stats();
    assert_eq!((stats.tenants, stats.streams, stats.entries), (2, 3, 7));
    assert_eq!((stats.min_time_ns, stats.max_time_ns), (Some(1), Some(30)));
    assert_eq!(stats.bytes, (1 + 1 + 6 + 8 + 3 + 1 + 2 + 1 + 5) as u64);
}

#[test]
fn long_streams_span_blocks_and_large_lines_stand_alone() {
    let head = Head::new();
    let labels = Labels::from_pairs([("app", "big")]);
    let line = "y".repeat(1000);
    let huge = "z".repeat(BLOCK_BYTES + 10);
    let mut entries: Vec<LogEntry> = (0..200).map(|i| entry(i, &line)).collect();
    entries.insert(100, entry(99, &huge));
    assert_eq!(head.logs.append(&log_batch("t", vec![(labels, entries)])), 201);
    let got = head.logs.all_streams("t");
    assert_eq!(got[0].entries.len(), 201);
    // Equal times keep arrival order: the huge line came after the 1000-byte one at 99.
    assert_eq!(got[0].entries[100].line.len(), huge.len());
    assert_eq!(got[0].entries[101].line.len(), 1000);
    assert!(got[0]
        .entries
        .iter()
        .filter(|e| e.line.len() == 1000)
        .all(|e| e.line == line.as_bytes()));
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

fn span(trace: u8, id: u8, parent: Option<u8>, name: &str, start: u64, end: u64) -> otlp::Span {
    otlp::Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: name.into(),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        status: Some(otlp::Status { code: 2, ..Default::default() }),
        ..Default::default()
    }
}

fn trace_batch(service: &str, spans: Vec<otlp::Span>) -> TraceBatch {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![otlp::ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![otlp::ScopeSpans {
                scope: Some(InstrumentationScope { name: "lib".into(), ..Default::default() }),
                spans,
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    };
    TraceBatch::from_request("t".into(), request)
}

#[test]
fn traces_by_id_and_search() {
    let head = Head::new();
    let checkout = trace_batch(
        "checkout",
        vec![
            span(1, 2, Some(1), "db", 150, 160),
            span(1, 1, None, "GET /cart", 100, 400),
            span(2, 9, Some(8), "orphan", 1000, 1010),
        ],
    );
    assert_eq!(head.traces.append(&checkout).unwrap(), 3);
    let bad = span(3, 1, None, "short id", 1, 2);
    let mut invalid = bad.clone();
    invalid.trace_id = vec![1, 2, 3];
    assert_eq!(head.traces.append(&trace_batch("x", vec![invalid, bad])).unwrap(), 1);
    assert_eq!(
        head.traces
            .append(&trace_batch("cart", vec![span(1, 3, Some(1), "redis", 390, 500)]))
            .unwrap(),
        1
    );

    let one = head.traces.trace("t", &[1; 16]);
    assert_eq!(
        one.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["GET /cart", "db", "redis"]
    );
    let root = &one[0];
    assert_eq!((root.service_name.as_str(), root.kind, root.status_code), ("checkout", 2, 2));
    assert_eq!(
        otlp::Span::decode(root.span.clone()).unwrap(),
        span(1, 1, None, "GET /cart", 100, 400)
    );
    assert_eq!(
        Resource::decode(root.resource.clone()).unwrap().attributes,
        [kv("service.name", "checkout")]
    );
    assert_eq!(InstrumentationScope::decode(root.scope.clone()).unwrap().name, "lib");
    assert!(head.traces.trace("t", &[7; 16]).is_empty());
    assert!(head.traces.trace("other", &[1; 16]).is_empty());

    let everything = TraceSearch { end_ns: u64::MAX, ..TraceSearch::default() };
    let found = head.traces.search("t", &everything);
    assert_eq!(
        found.iter().map(|s| s.trace_id[0]).collect::<Vec<_>>(),
        [2, 1, 3],
        "most recent first"
    );
    let first = &found[1];
    assert_eq!((first.root_service.as_str(), first.root_name.as_str()), ("checkout", "GET /cart"));
    assert_eq!((first.start_unix_nano, first.duration_ns, first.span_count), (100, 400, 3));
    assert_eq!(found[0].root_name, "", "root not received yet");

    let by = |search: TraceSearch| -> Vec<u8> {
        head.traces.search("t", &search).iter().map(|s| s.trace_id[0]).collect()
    };
    assert_eq!(by(TraceSearch { service_name: Some("cart".into()), ..everything.clone() }), [1]);
    assert_eq!(
        by(TraceSearch {
            span_name: Some("redis".into()),
            service_name: Some("checkout".into()),
            ..everything.clone()
        }),
        Vec::<u8>::new()
    );
    assert_eq!(by(TraceSearch { min_duration_ns: 100, ..everything.clone() }), [1]);
    assert_eq!(by(TraceSearch { max_duration_ns: Some(10), ..everything.clone() }), [2, 3]);
    assert_eq!(by(TraceSearch { start_ns: 450, end_ns: 999, ..everything.clone() }), [1]);
    assert_eq!(by(TraceSearch { limit: 1, ..everything.clone() }), [2]);

    let spans = head.traces.all_spans("t");
    assert_eq!(spans.len(), 5);
    assert!(spans
        .windows(2)
        .all(|w| (w[0].trace_id, w[0].start_unix_nano) <= (w[1].trace_id, w[1].start_unix_nano)));
    let stats = head.stats().traces;
    assert_eq!((stats.tenants, stats.traces, stats.spans), (1, 3, 5));
    assert_eq!((stats.min_time_ns, stats.max_time_ns), (Some(1), Some(1010)));
}

#[test]
fn a_batch_that_does_not_decode_stores_nothing() {
    let head = Head::new();
    let mut batch = trace_batch("ok", vec![span(1, 1, None, "a", 1, 2)]);
    let mut broken = batch.resources[0].clone();
    broken.scope_spans = Bytes::from_static(&[0x12, 0x05, 0x01]);
    batch.resources.push(broken);
    assert!(head.traces.append(&batch).is_err());
    assert_eq!(head.traces.stats().spans, 0);
}
