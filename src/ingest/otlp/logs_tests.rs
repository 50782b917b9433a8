//! Tests of the OTLP logs → Loki streams mapping against Loki 3's rules.

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};

use super::*;
use crate::config::signals::LOKI_DEFAULT_STREAM_ATTRIBUTES;
use crate::relabel::RelabelConfig;
use crate::telemetry::Catalog;

const NOW: i64 = 1_800_000_000_000_000_000;

struct Fixture {
    relabeler: ResourceRelabeler,
    metrics: IngestMetrics,
    tenant: Tenant,
    stream_attributes: Vec<String>,
}

impl Fixture {
    fn new(rules: &str) -> Self {
        let catalog = Catalog::new();
        let configs: Vec<RelabelConfig> = serde_yaml::from_str(rules).unwrap();
        Self {
            relabeler: ResourceRelabeler::new(&configs, 100, &catalog, "test").unwrap(),
            metrics: catalog.ingest("otlp_http"),
            tenant: "t".into(),
            stream_attributes: LOKI_DEFAULT_STREAM_ATTRIBUTES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }

    fn map(&self, request: ExportLogsServiceRequest) -> Accepted<LogBatch> {
        from_request(
            request,
            &Context {
                tenant: &self.tenant,
                relabeler: &self.relabeler,
                metrics: &self.metrics,
                stream_attributes: &self.stream_attributes,
                now_ns: NOW,
            },
        )
    }
}

fn value(v: any_value::Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(v) })
}

fn attribute(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: value(v), ..Default::default() }
}

fn text(key: &str, v: &str) -> KeyValue {
    attribute(key, any_value::Value::StringValue(v.into()))
}

fn one_resource(attributes: Vec<KeyValue>, records: Vec<LogRecord>) -> ResourceLogs {
    ResourceLogs {
        resource: Some(Resource { attributes, ..Default::default() }),
        scope_logs: vec![ScopeLogs { log_records: records, ..Default::default() }],
        ..Default::default()
    }
}

fn pairs(labels: &[Label]) -> Vec<(&str, &str)> {
    labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect()
}

#[test]
fn spec_example_maps_like_loki() {
    let request: ExportLogsServiceRequest =
        serde_json::from_str(include_str!("testdata/logs.json")).unwrap();
    let accepted = Fixture::new("[]").map(request);
    assert_eq!((accepted.rejected, accepted.batch.streams.len()), (0, 1));
    let stream = &accepted.batch.streams[0];
    assert_eq!(&*stream.stream.selector, r#"{service_name="my.service"}"#);
    let entry = &stream.entries[0];
    assert_eq!(entry.timestamp_ns, 1_544_712_660_300_000_000);
    assert_eq!(entry.line, "Example log record");
    assert_eq!(
        pairs(&entry.structured_metadata),
        [
            ("string_attribute", "some string"),
            ("boolean_attribute", "true"),
            ("int_attribute", "10"),
            ("double_attribute", "637.704"),
            ("array_attribute", r#"["many","values"]"#),
            ("map_attribute_some_map_key", "some value"),
            ("observed_timestamp", "1544712660300000000"),
            ("severity_text", "Information"),
            ("trace_id", "5b8efff798038103d269b633813fc60c"),
            ("span_id", "eee19b7ec3c1b174"),
            ("my_scope_attribute", "some scope attribute"),
            ("scope_name", "my.library"),
            ("scope_version", "1.0.0"),
        ]
    );
}

#[test]
fn stream_labels_resource_metadata_and_record_fields() {
    let record = LogRecord {
        observed_time_unix_nano: 42,
        severity_number: 17,
        severity_text: "ERROR".into(),
        flags: 1,
        dropped_attributes_count: 2,
        body: value(any_value::Value::IntValue(10)),
        attributes: vec![text("http.method", "GET")],
        ..Default::default()
    };
    let resource = one_resource(
        vec![
            text("k8s.namespace.name", "shop"),
            text("service.name", "checkout"),
            text("host.name", "node-1"),
            attribute(
                "cloud.region",
                any_value::Value::KvlistValue(KeyValueList { values: vec![text("a.b", "x")] }),
            ),
        ],
        vec![record],
    );
    let mut scoped = resource.clone();
    scoped.scope_logs[0].scope = Some(InstrumentationScope {
        name: "io.opentelemetry.jdbc".into(),
        dropped_attributes_count: 1,
        ..Default::default()
    });
    let accepted = Fixture::new("[]").map(ExportLogsServiceRequest { resource_logs: vec![scoped] });
    let stream = &accepted.batch.streams[0];
    assert_eq!(
        &*stream.stream.selector,
        r#"{cloud_region_a_b="x", k8s_namespace_name="shop", service_name="checkout"}"#
    );
    let entry = &stream.entries[0];
    assert_eq!(entry.timestamp_ns, 42, "observed time when there is no time");
    assert_eq!(entry.line, "10");
    assert_eq!(
        pairs(&entry.structured_metadata),
        [
            ("http_method", "GET"),
            ("severity_number", "17"),
            ("severity_text", "ERROR"),
            ("dropped_attributes_count", "2"),
            ("flags", "1"),
            ("host_name", "node-1"),
            ("scope_name", "io.opentelemetry.jdbc"),
            ("scope_dropped_attributes_count", "1"),
        ]
    );
}

#[test]
fn service_name_is_discovered_or_unknown() {
    let fixture = Fixture::new("[]");
    let service = |attributes: Vec<KeyValue>| {
        let request = ExportLogsServiceRequest {
            resource_logs: vec![one_resource(attributes, vec![LogRecord::default()])],
        };
        fixture.map(request).batch.streams[0].stream.selector.to_string()
    };
    assert_eq!(service(vec![]), r#"{service_name="unknown_service"}"#);
    assert_eq!(
        service(vec![text("k8s.pod.name", "p-1"), text("k8s.container.name", "api")]),
        r#"{k8s_container_name="api", k8s_pod_name="p-1", service_name="api"}"#
    );
    // An empty service.name does not count.
    assert_eq!(
        service(vec![text("service.name", ""), text("k8s.job.name", "backup")]),
        r#"{k8s_job_name="backup", service_name="backup"}"#
    );
    // Not an index label, yet present: Loki adds no service_name then.
    let mut custom = Fixture::new("[]");
    custom.stream_attributes = vec!["k8s.pod.name".into()];
    let request = ExportLogsServiceRequest {
        resource_logs: vec![one_resource(
            vec![text("service.name", "x"), text("k8s.pod.name", "p")],
            vec![LogRecord::default()],
        )],
    };
    let accepted = custom.map(request);
    assert_eq!(&*accepted.batch.streams[0].stream.selector, r#"{k8s_pod_name="p"}"#);
    assert_eq!(
        pairs(&accepted.batch.streams[0].entries[0].structured_metadata),
        [("service_name", "x")]
    );
}

#[test]
fn lines_and_timestamps() {
    let records = vec![
        LogRecord { time_unix_nano: 7, observed_time_unix_nano: 9, ..Default::default() },
        LogRecord {
            body: value(any_value::Value::KvlistValue(KeyValueList {
                values: vec![text("msg", "hi"), attribute("n", any_value::Value::BoolValue(false))],
            })),
            ..Default::default()
        },
        LogRecord { time_unix_nano: u64::MAX, ..Default::default() },
    ];
    let accepted = Fixture::new("[]").map(ExportLogsServiceRequest {
        resource_logs: vec![one_resource(vec![text("service.name", "a")], records)],
    });
    let entries = &accepted.batch.streams[0].entries;
    assert_eq!((entries[0].timestamp_ns, &entries[0].line[..]), (7, &b""[..]));
    assert_eq!(pairs(&entries[0].structured_metadata), [("observed_timestamp", "9")]);
    assert_eq!(
        (entries[1].timestamp_ns, &entries[1].line[..]),
        (NOW, &br#"{"msg":"hi","n":false}"#[..])
    );
    assert_eq!(entries[2].timestamp_ns, i64::MAX);
}

#[test]
fn resources_with_the_same_labels_share_a_stream_and_relabeling_applies_first() {
    let fixture = Fixture::new(
        r#"
- source_labels: [service.name]
  regex: noisy
  action: drop
- source_labels: [k8s.pod.name]
  regex: (.*)-[0-9]+
  target_label: k8s.pod.name
"#,
    );
    let request = ExportLogsServiceRequest {
        resource_logs: vec![
            one_resource(
                vec![text("service.name", "a"), text("k8s.pod.name", "web-1")],
                vec![LogRecord::default(); 2],
            ),
            one_resource(vec![text("service.name", "noisy")], vec![LogRecord::default(); 3]),
            one_resource(
                vec![text("service.name", "a"), text("k8s.pod.name", "web-2")],
                vec![LogRecord::default()],
            ),
            one_resource(vec![text("service.name", "b")], vec![]),
        ],
    };
    let accepted = fixture.map(request);
    assert_eq!(accepted.batch.streams.len(), 1);
    let stream = &accepted.batch.streams[0];
    assert_eq!(&*stream.stream.selector, r#"{k8s_pod_name="web", service_name="a"}"#);
    assert_eq!(stream.entries.len(), 3);
    assert_eq!(fixture.metrics.log_entries.get(), 6);
    assert_eq!(fixture.metrics.dropped(IngestDropReason::Relabel).get(), 3);
}

#[test]
fn label_names_normalise_like_otlptranslator() {
    for (name, expected) in [
        ("service.name", "service_name"),
        ("k8s.pod.name", "k8s_pod_name"),
        ("1st", "key_1st"),
        ("_private", "key_private"),
        ("__reserved", "__reserved"),
        ("ä.b", "__b"),
        ("http-method", "http_method"),
        ("", ""),
    ] {
        assert_eq!(normalize_label(name), expected, "{name}");
    }
}
