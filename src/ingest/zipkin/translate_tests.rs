//! One test per mapping rule of [`translate`](super::translate), on decoded JSON.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{self as otlp, span::SpanKind, status::StatusCode};

use super::decode::decode_spans;
use super::translate::{to_request, NON_SPAN_ATTRIBUTES, NO_SERVICE_NAME};
use super::ZipkinError;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// A span with the required ids, a timestamp unless `extra` has one (an absent timestamp adds an
/// attribute), and `extra` fields (`"k": v, ...`).
fn zipkin_span(id: u8, extra: &str) -> String {
    let timestamp = if extra.contains("\"timestamp\"") { "" } else { r#","timestamp":1"# };
    let comma = if extra.is_empty() { "" } else { "," };
    format!(r#"{{"traceId":"{TRACE}","id":"{id:016x}"{timestamp}{comma}{extra}}}"#)
}

fn translate(spans: &[String]) -> Result<ExportTraceServiceRequest, ZipkinError> {
    let body = format!("[{}]", spans.join(","));
    to_request(&decode_spans(body.as_bytes()).expect("test bodies decode"))
}

/// The only span of a one-span request.
fn single(extra: &str) -> otlp::Span {
    let mut request = translate(&[zipkin_span(1, extra)]).unwrap();
    request.resource_spans.remove(0).scope_spans.remove(0).spans.remove(0)
}

fn attributes(attributes: &[KeyValue]) -> BTreeMap<&str, Value> {
    attributes
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone().and_then(|v| v.value).unwrap()))
        .collect()
}

fn s(value: &str) -> Value {
    Value::StringValue(value.to_owned())
}

#[test]
fn non_span_attributes_are_sorted_and_unique() {
    assert!(NON_SPAN_ATTRIBUTES.windows(2).all(|pair| pair[0] < pair[1]));
}

/// (service, [(scope, [last byte of each span id])]).
type ServiceLayout = (String, Vec<(String, Vec<u8>)>);

#[test]
fn spans_group_by_service_then_scope_in_sorted_order() {
    let request = translate(&[
        zipkin_span(1, r#""localEndpoint":{"serviceName":"web"}"#),
        zipkin_span(2, r#""localEndpoint":{"serviceName":"api"},"tags":{"otel.library.name":"z"}"#),
        zipkin_span(3, r#""localEndpoint":{"serviceName":"web"},"tags":{"otel.library.name":"a"}"#),
        zipkin_span(4, r#""localEndpoint":{"serviceName":"api"},"tags":{"otel.library.name":"a"}"#),
        zipkin_span(5, r#""localEndpoint":{"serviceName":"api"},"tags":{"otel.library.name":"z"}"#),
        zipkin_span(6, r#""localEndpoint":{"serviceName":"web"}"#),
    ])
    .unwrap();
    let layout: Vec<ServiceLayout> = request
        .resource_spans
        .iter()
        .map(|r| {
            let service =
                attributes(&r.resource.as_ref().unwrap().attributes)["service.name"].clone();
            let Value::StringValue(service) = service else { panic!("string service") };
            let scopes = r
                .scope_spans
                .iter()
                .map(|s| {
                    let name = s.scope.as_ref().map(|s| s.name.clone()).unwrap_or_default();
                    (name, s.spans.iter().map(|span| span.span_id[7]).collect())
                })
                .collect();
            (service, scopes)
        })
        .collect();
    assert_eq!(
        layout,
        [
            ("api".into(), vec![("a".into(), vec![4]), ("z".into(), vec![2, 5])]),
            ("web".into(), vec![(String::new(), vec![1, 6]), ("a".into(), vec![3])]),
        ]
    );
}

#[test]
fn spans_without_local_service_share_a_resource_without_attributes() {
    let request = translate(&[
        zipkin_span(1, r#""localEndpoint":{"serviceName":""},"tags":{"host.name":"n1"}"#),
        zipkin_span(2, r#""localEndpoint":{"ipv4":"10.0.0.1"}"#),
        zipkin_span(3, ""),
        zipkin_span(4, r#""localEndpoint":{"serviceName":"zeta"}"#),
    ])
    .unwrap();
    // "OTLPResourceNoServiceName" sorts before "zeta".
    assert!(NO_SERVICE_NAME < "zeta");
    assert_eq!(request.resource_spans.len(), 2);
    let anonymous = &request.resource_spans[0];
    assert_eq!(anonymous.resource.as_ref().unwrap().attributes, []);
    assert_eq!(anonymous.scope_spans[0].spans.len(), 3);
    // The resource tag is neither on the resource nor a span attribute.
    assert!(!attributes(&anonymous.scope_spans[0].spans[0].attributes).contains_key("host.name"));
}

#[test]
fn first_span_of_a_service_gives_its_resource_tags_to_the_resource() {
    let request = translate(&[
        zipkin_span(1, r#""localEndpoint":{"serviceName":"web"},"tags":{"host.name":"n1","k8s.pod.name":"web-1","http.route":"/"}"#),
        zipkin_span(2, r#""localEndpoint":{"serviceName":"web"},"tags":{"host.name":"n2","process.pid":"7"}"#),
    ])
    .unwrap();
    let resource_spans = &request.resource_spans[0];
    let resource = attributes(&resource_spans.resource.as_ref().unwrap().attributes);
    assert_eq!(
        resource,
        BTreeMap::from([
            ("host.name", s("n1")),
            ("k8s.pod.name", s("web-1")),
            ("service.name", s("web")),
        ])
    );
    let spans = &resource_spans.scope_spans[0].spans;
    assert_eq!(attributes(&spans[0].attributes), BTreeMap::from([("http.route", s("/"))]));
    // The second span's resource tags are dropped, as the Collector drops them.
    assert_eq!(attributes(&spans[1].attributes), BTreeMap::new());
}

#[test]
fn service_name_tag_overrides_and_source_tag_renames() {
    let request = translate(&[zipkin_span(
        1,
        r#""localEndpoint":{"serviceName":"web"},"tags":{"otlp.service.name.source":"app.name"}"#,
    )])
    .unwrap();
    let resource = attributes(&request.resource_spans[0].resource.as_ref().unwrap().attributes);
    assert_eq!(resource, BTreeMap::from([("app.name", s("web"))]));

    let request = translate(&[zipkin_span(
        1,
        r#""localEndpoint":{"serviceName":"web"},"tags":{"service.name":"web-from-sdk"}"#,
    )])
    .unwrap();
    let resource = attributes(&request.resource_spans[0].resource.as_ref().unwrap().attributes);
    assert_eq!(resource, BTreeMap::from([("service.name", s("web-from-sdk"))]));
}

#[test]
fn scope_comes_from_library_or_scope_tags() {
    let scope_of = |tags: &str| {
        let mut request = translate(&[zipkin_span(1, &format!(r#""tags":{{{tags}}}"#))]).unwrap();
        let scope_spans = request.resource_spans.remove(0).scope_spans.remove(0);
        let attributes: Vec<String> =
            scope_spans.spans[0].attributes.iter().map(|kv| kv.key.clone()).collect();
        (scope_spans.scope.map(|s| (s.name, s.version)), attributes)
    };
    assert_eq!(scope_of(""), (None, vec![]));
    assert_eq!(
        scope_of(r#""otel.library.name":"io.dapr","otel.library.version":"1.14""#),
        (Some(("io.dapr".into(), "1.14".into())), vec![])
    );
    assert_eq!(
        scope_of(
            r#""otel.scope.name":"new","otel.scope.version":"2","otel.library.name":"old","otel.library.version":"1""#
        ),
        (Some(("new".into(), "2".into())), vec![])
    );
    assert_eq!(scope_of(r#""otel.library.version":"1""#), (None, vec![]));
    assert_eq!(scope_of(r#""otel.scope.name":"","x":"y""#), (None, vec!["x".into()]));
}

#[test]
fn kinds_map_and_span_kind_tag_applies_only_without_a_kind() {
    for (extra, kind, attribute) in [
        (r#""kind":"CLIENT""#, SpanKind::Client, None),
        (r#""kind":"SERVER""#, SpanKind::Server, None),
        (r#""kind":"PRODUCER""#, SpanKind::Producer, None),
        (r#""kind":"CONSUMER""#, SpanKind::Consumer, None),
        (r#""kind":"client""#, SpanKind::Unspecified, None),
        ("", SpanKind::Unspecified, None),
        (r#""tags":{"span.kind":"internal"}"#, SpanKind::Internal, None),
        (r#""tags":{"span.kind":"server"}"#, SpanKind::Unspecified, None),
        (r#""kind":"CLIENT","tags":{"span.kind":"internal"}"#, SpanKind::Client, Some("internal")),
    ] {
        let span = single(extra);
        assert_eq!(span.kind, kind as i32, "{extra}");
        assert_eq!(
            attributes(&span.attributes).get("span.kind"),
            attribute.map(s).as_ref(),
            "{extra}"
        );
    }
}

#[test]
fn status_follows_otel_status_tags_then_the_error_tag() {
    let status_of = |tags: &str| {
        let span = single(&format!(r#""tags":{{{tags}}}"#));
        let status = span.status.map(|s| (s.code, s.message));
        let keys: Vec<String> = span.attributes.into_iter().map(|kv| kv.key).collect();
        (status, keys)
    };
    let error = StatusCode::Error as i32;
    let ok = StatusCode::Ok as i32;
    assert_eq!(status_of(""), (None, vec![]));
    assert_eq!(
        status_of(r#""otel.status_code":"STATUS_CODE_ERROR","otel.status_description":"boom""#),
        (Some((error, "boom".into())), vec![])
    );
    assert_eq!(status_of(r#""otel.status_code":"Ok""#), (Some((ok, String::new())), vec![]));
    assert_eq!(
        status_of(r#""otel.status_code":"STATUS_CODE_OK""#),
        (Some((ok, String::new())), vec![])
    );
    // Unknown codes (the OTel Go exporter's upper-case "OK") are unset, and still consumed.
    assert_eq!(status_of(r#""otel.status_code":"OK""#), (None, vec![]));
    // A description without a code stays an attribute.
    assert_eq!(
        status_of(r#""otel.status_description":"boom""#),
        (None, vec!["otel.status_description".into()])
    );
    assert_eq!(status_of(r#""error":"true""#), (Some((error, String::new())), vec![]));
    // Any `error` value sets the code; only "true" is consumed.
    assert_eq!(
        status_of(r#""error":"timeout""#),
        (Some((error, String::new())), vec!["error".into()])
    );
    assert_eq!(status_of(r#""error":"""#), (Some((error, String::new())), vec!["error".into()]));
    assert_eq!(
        status_of(r#""otel.status_code":"STATUS_CODE_OK","error":"false""#),
        (Some((error, String::new())), vec!["error".into()])
    );
}

#[test]
fn trace_state_parent_and_name() {
    let span = single(
        r#""name":"get /","parentId":"00f067aa0ba902b7","tags":{"w3c.tracestate":"rojo=00f067aa0ba902b7"}"#,
    );
    assert_eq!(span.name, "get /");
    assert_eq!(span.trace_state, "rojo=00f067aa0ba902b7");
    assert_eq!(span.parent_span_id, [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
    assert!(span.attributes.is_empty());
    // A span that names itself as parent, or a zero parent, is a root.
    assert!(single(r#""parentId":"0000000000000001""#).parent_span_id.is_empty());
    assert!(single(r#""parentId":"0000000000000000""#).parent_span_id.is_empty());
    assert!(single(r#""parentId":null"#).parent_span_id.is_empty());
}

#[test]
fn times_are_microseconds_and_an_absent_start_is_marked() {
    let span = single(r#""timestamp":1700000000000001,"duration":1500"#);
    assert_eq!(span.start_time_unix_nano, 1_700_000_000_000_001_000);
    assert_eq!(span.end_time_unix_nano, 1_700_000_000_001_501_000);
    assert!(span.attributes.is_empty());

    let absent = format!(r#"{{"traceId":"{TRACE}","id":"0000000000000001","duration":1500}}"#);
    let zero = zipkin_span(1, r#""timestamp":0,"duration":1500"#);
    let null = zipkin_span(1, r#""timestamp":null,"duration":1500"#);
    for body in [absent, zero, null] {
        let request = translate(std::slice::from_ref(&body)).unwrap();
        let span = &request.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!((span.start_time_unix_nano, span.end_time_unix_nano), (0, 1_500_000), "{body}");
        assert_eq!(
            attributes(&span.attributes),
            BTreeMap::from([("otel.zipkin.absentField.startTime", Value::BoolValue(true))])
        );
    }
    let span = single(r#""timestamp":5"#);
    assert_eq!((span.start_time_unix_nano, span.end_time_unix_nano), (5000, 5000));

    let max = u64::MAX / 1000;
    let err = translate(&[
        zipkin_span(1, ""),
        zipkin_span(2, &format!(r#""timestamp":{max},"duration":1"#)),
    ])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "span 1, field duration: time is out of range for nanoseconds in u64"
    );
}

#[test]
fn endpoints_become_v1_12_network_attributes() {
    let span = single(
        r#""localEndpoint":{"serviceName":"web","ipv4":"10.0.0.1","port":8080},
           "remoteEndpoint":{"serviceName":"db","ipv6":"2001:db8::c001","port":5432}"#,
    );
    assert_eq!(
        attributes(&span.attributes),
        BTreeMap::from([
            ("net.host.ip", s("10.0.0.1")),
            ("net.host.port", Value::IntValue(8080)),
            ("peer.service", s("db")),
            ("net.peer.ip", s("2001:db8::c001")),
            ("net.peer.port", Value::IntValue(5432)),
        ])
    );
    // ipv6 overwrites ipv4; a mapped address prints as IPv4; port 0 and "" are absent; an
    // endpoint attribute overwrites a tag of the same key in place.
    let span = single(
        r#""localEndpoint":{"ipv4":"10.0.0.1","ipv6":"::ffff:10.0.0.2","port":0},
           "remoteEndpoint":{"serviceName":"","ipv4":""},
           "tags":{"net.host.ip":"from-tag","a":"1"}"#,
    );
    assert_eq!(
        span.attributes.iter().map(|kv| kv.key.as_str()).collect::<Vec<_>>(),
        ["a", "net.host.ip"]
    );
    assert_eq!(attributes(&span.attributes)["net.host.ip"], s("10.0.0.2"));
}

#[test]
fn tags_become_string_attributes_last_duplicate_wins() {
    let span = single(r#""tags":{"http.status_code":"200","b":"1","b":"2","n":null}"#);
    assert_eq!(
        attributes(&span.attributes),
        BTreeMap::from([("b", s("2")), ("http.status_code", s("200")), ("n", s(""))])
    );
}

#[test]
fn debug_and_shared_are_dropped() {
    let span = single(r#""debug":true,"shared":true"#);
    assert!(span.attributes.is_empty());
    assert_eq!(span, single(""));
}

#[test]
fn annotations_become_events_with_optional_json_attributes() {
    let span = single(
        r#""annotations":[
            {"timestamp":1,"value":"ws"},
            {"timestamp":2,"value":"two|parts"},
            {"timestamp":3,"value":"exception|{\"type\":\"io\",\"n\":3,\"f\":1.5,\"ok\":true,\"skip\":[1]}|4"},
            {"timestamp":4,"value":"piped|{\"q\":\"a|b\"}|0"},
            {"timestamp":5}
        ]"#,
    );
    let events: Vec<_> = span
        .events
        .iter()
        .map(|e| {
            (
                e.time_unix_nano,
                e.name.as_str(),
                attributes(&e.attributes),
                e.dropped_attributes_count,
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            (1000, "ws", BTreeMap::new(), 0),
            (2000, "two", BTreeMap::new(), 0),
            (
                3000,
                "exception",
                BTreeMap::from([
                    ("f", Value::DoubleValue(1.5)),
                    ("n", Value::IntValue(3)),
                    ("ok", Value::BoolValue(true)),
                    ("type", s("io")),
                ]),
                4
            ),
            (4000, "piped", BTreeMap::from([("q", s("a|b"))]), 0),
            (5000, "", BTreeMap::new(), 0),
        ]
    );
}

#[test]
fn malformed_annotation_payload_fails_naming_the_annotation() {
    for (value, detail) in [
        ("a|b|c", "attributes are not a JSON object"),
        ("a|[1]|0", "attributes are not a JSON object"),
        ("a|{}|-1", "dropped attributes count \"-1\" is not a u32"),
        ("a|{}|+1", "dropped attributes count \"+1\" is not a u32"),
        ("a|{}|4294967296", "is not a u32"),
    ] {
        let extra = format!(
            r#""annotations":[{{"timestamp":1,"value":"ok"}},{{"timestamp":2,"value":"{value}"}}]"#
        );
        let err = translate(&[zipkin_span(1, ""), zipkin_span(2, &extra)]).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("span 1, field annotations[1].value: "), "{value}: {message}");
        assert!(message.contains(detail), "{value}: {message}");
    }
}

#[test]
fn link_tags_become_links_until_the_first_gap() {
    let other_trace = "0af7651916cd43dd8448eb211c80319c";
    let span = single(&format!(
        r#""tags":{{
            "otlp.link.0":"{other_trace}|b7ad6b7169203331|k=v|{{\"a\":1}}|2",
            "otlp.link.1":"too|few|parts",
            "otlp.link.2":"\"{other_trace}\"|\"00f067aa0ba902b7\"||{{\"x|y\":\"z\"}}|0",
            "otlp.link.4":"{other_trace}|b7ad6b7169203331||{{}}|0",
            "otlp.link.01":"not a link index",
            "otlp.links":"neither"
        }}"#
    ));
    let links: Vec<_> = span
        .links
        .iter()
        .map(|l| {
            (
                l.trace_id.len(),
                l.span_id.clone(),
                l.trace_state.as_str(),
                attributes(&l.attributes),
                l.dropped_attributes_count,
            )
        })
        .collect();
    assert_eq!(
        links,
        [
            (
                16,
                vec![0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31],
                "k=v",
                BTreeMap::from([("a", Value::IntValue(1))]),
                2
            ),
            (
                16,
                vec![0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7],
                "",
                BTreeMap::from([("x|y", s("z"))]),
                0
            ),
        ]
    );
    // Consumed: 0, 1, 2. Left as attributes: after the gap, and keys that are not link indexes.
    assert_eq!(
        span.attributes.iter().map(|kv| kv.key.as_str()).collect::<Vec<_>>(),
        ["otlp.link.01", "otlp.link.4", "otlp.links"]
    );
}

#[test]
fn empty_link_ids_are_empty_and_bad_ones_fail() {
    let span = single(r#""tags":{"otlp.link.0":"|||{}|0"}"#);
    assert_eq!(span.links.len(), 1);
    assert!(span.links[0].trace_id.is_empty() && span.links[0].span_id.is_empty());
    for (value, detail) in [
        ("abc|b7ad6b7169203331||{}|0", "link trace id \"abc\" is not 32 hex characters"),
        (
            "0af7651916cd43dd8448eb211c80319c|b7ad|||0",
            "link span id \"b7ad\" is not 16 hex characters",
        ),
        (
            "0af7651916cd43dd8448eb211c80319c|b7ad6b7169203331||{|0",
            "attributes are not a JSON object",
        ),
    ] {
        let err = translate(&[zipkin_span(1, &format!(r#""tags":{{"otlp.link.0":"{value}"}}"#))])
            .unwrap_err();
        assert_eq!(
            err.to_string().split_once(": ").unwrap().0,
            "span 0, field tags[\"otlp.link.0\"]"
        );
        assert!(err.to_string().contains(detail), "{err}");
    }
}
