//! Decoded Zipkin v2 spans → an OTLP `ExportTraceServiceRequest`, mapped as the OpenTelemetry
//! Collector's Zipkin receiver maps them.
//!
//! Reference: opentelemetry-collector-contrib `pkg/translator/zipkin/zipkinv2/to_translator.go`
//! at commit 1fc2aae7 (the version that imports semconv v1.40.0 and registers the
//! `pkg.translator.zipkin.*NetworkConventions` feature gates "from v0.147.0"), with both gates
//! at their default (alpha, off), plus `internal/coreinternal/tracetranslator` and
//! `pkg/translator/zipkin/internal/zipkin/attributes.go` for the tag names. The receiver's
//! `parse_string_tags` is at its default (off): tag values stay strings.
//!
//! The mapping:
//! * Spans are grouped into one `ResourceSpans` per local service and, inside it, one
//!   `ScopeSpans` per instrumentation scope; groups come out sorted by (service, scope), spans
//!   keep their input order inside a group.
//! * Resource: `service.name` = `localEndpoint.serviceName` (under the key named by the
//!   `otlp.service.name.source` tag if set). Without a service name the group key is
//!   `OTLPResourceNoServiceName` and the resource has no attributes at all. The first span of a
//!   group also contributes its tags that are resource semantic conventions
//!   ([`NON_SPAN_ATTRIBUTES`]) to the resource; those tags never become span attributes.
//! * Scope: from `otel.library.name` / `otel.library.version`.
//! * Span: ids; `parentId` unless equal to `id`; `w3c.tracestate` tag → trace state; kind
//!   `CLIENT`/`SERVER`/`PRODUCER`/`CONSUMER`, otherwise the `span.kind` tag (`internal` →
//!   internal, consumed either way), otherwise unspecified; start = `timestamp`, end =
//!   `timestamp + duration` (absent timestamp: start 0, end = duration, and the attribute
//!   `otel.zipkin.absentField.startTime = true`).
//! * Status: `otel.status_code` (`STATUS_CODE_{UNSET,OK,ERROR}` or `Unset`/`Ok`/`Error`; any
//!   other value is unset) with `otel.status_description` as message; then an `error` tag of any
//!   value sets the code to error, and is consumed only when its value is `true`.
//! * Links: tags `otlp.link.0`, `otlp.link.1`, … (up to 127, stopping at the first gap) in the
//!   form `traceid|spanid|tracestate|{json attributes}|dropped count`; fewer than 5 parts are
//!   dropped silently, malformed parts fail the request.
//! * Attributes: the remaining tags as strings, then the endpoints (gates off: semconv v1.12
//!   names): local `ipv4`/`ipv6` → `net.host.ip`, `port` → `net.host.port`; remote
//!   `serviceName` → `peer.service`, `ipv4`/`ipv6` → `net.peer.ip`, `port` → `net.peer.port`.
//!   These overwrite a tag of the same key; ipv6 overwrites ipv4.
//! * Events: one per annotation, named by the value up to the first `|`; values of 3 or more
//!   `|`-separated parts carry `{json attributes}|dropped count` and fail the request when those
//!   are malformed.
//! * `debug` and `shared` are dropped: the Collector's JSON path reads neither (a shared SERVER
//!   span keeps the id of its CLIENT span; both become spans).
//!
//! One deliberate extension: `otel.scope.name` / `otel.scope.version` (the stable names of the
//! OpenTelemetry non-OTLP mapping, which newer SDK exporters send) name the scope too, taking
//! precedence over the `otel.library.*` tags; the Collector at that commit leaves them as span
//! attributes.
//!
//! Invariants: every span gets a 16-byte trace id and an 8-byte span id; an error names the
//! span's index in the request and the field.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{self as otlp, span, status::StatusCode, Status};

use super::decode::{echo, hex_bytes, Span};
use super::ZipkinError;

/// The group key of spans without a local service name (`tracetranslator.ResourceNoServiceName`).
pub const NO_SERVICE_NAME: &str = "OTLPResourceNoServiceName";

const SERVICE_NAME: &str = "service.name";
const TAG_SERVICE_NAME_SOURCE: &str = "otlp.service.name.source";
const TAG_LIBRARY_NAME: &str = "otel.library.name";
const TAG_LIBRARY_VERSION: &str = "otel.library.version";
const TAG_SCOPE_NAME: &str = "otel.scope.name";
const TAG_SCOPE_VERSION: &str = "otel.scope.version";
const TAG_TRACE_STATE: &str = "w3c.tracestate";
const TAG_SPAN_KIND: &str = "span.kind";
const TAG_STATUS_CODE: &str = "otel.status_code";
const TAG_STATUS_DESCRIPTION: &str = "otel.status_description";
const TAG_ERROR: &str = "error";
const TAG_LINK_PREFIX: &str = "otlp.link.";
/// The Collector looks at `otlp.link.0` ..= `otlp.link.127`.
const MAX_LINKS: usize = 128;
const ATTRIBUTE_START_TIME_ABSENT: &str = "otel.zipkin.absentField.startTime";

/// Tags that are never span attributes: the resource semantic conventions the Collector lists
/// (semconv v1.40.0 keys, some from older versions), the `otel.library.*` scope tags and the
/// OpenCensus resource tags. Sorted (binary search; a test checks it).
pub const NON_SPAN_ATTRIBUTES: &[&str] = &[
    "aws.ecs.cluster.arn",
    "aws.ecs.container.arn",
    "aws.ecs.launchtype",
    "aws.ecs.task.arn",
    "aws.ecs.task.family",
    "aws.ecs.task.revision",
    "aws.eks.cluster.arn",
    "aws.log.group.arns",
    "aws.log.group.names",
    "aws.log.stream.arns",
    "aws.log.stream.names",
    "cloud.account.id",
    "cloud.availability_zone",
    "cloud.platform",
    "cloud.provider",
    "cloud.region",
    "container.id",
    "container.image.name",
    "container.image.tag",
    "container.name",
    "container.runtime",
    "deployment.environment",
    "device.id",
    "device.manufacturer",
    "device.model.identifier",
    "device.model.name",
    "faas.id",
    "faas.instance",
    "faas.max_memory",
    "faas.name",
    "faas.version",
    "host.arch",
    "host.id",
    "host.image.id",
    "host.image.name",
    "host.image.version",
    "host.name",
    "host.type",
    "k8s.cluster.name",
    "k8s.container.name",
    "k8s.container.restart_count",
    "k8s.cronjob.name",
    "k8s.cronjob.uid",
    "k8s.daemonset.name",
    "k8s.daemonset.uid",
    "k8s.deployment.name",
    "k8s.deployment.uid",
    "k8s.job.name",
    "k8s.job.uid",
    "k8s.namespace.name",
    "k8s.node.name",
    "k8s.node.uid",
    "k8s.pod.name",
    "k8s.pod.uid",
    "k8s.replicaset.name",
    "k8s.replicaset.uid",
    "k8s.statefulset.name",
    "k8s.statefulset.uid",
    "opencensus.exporterversion",
    "opencensus.resourcetype",
    "opencensus.starttime",
    "os.description",
    "os.name",
    "os.type",
    "os.version",
    "otel.library.name",
    "otel.library.version",
    "otlp.service.name.source",
    "process.command",
    "process.command_args",
    "process.command_line",
    "process.executable.name",
    "process.executable.path",
    "process.owner",
    "process.pid",
    "process.runtime.description",
    "process.runtime.name",
    "process.runtime.version",
    "service.instance.id",
    "service.name",
    "service.namespace",
    "service.version",
    "telemetry.auto.version",
    "telemetry.sdk.language",
    "telemetry.sdk.name",
    "telemetry.sdk.version",
    "webengine.description",
    "webengine.name",
    "webengine.version",
];

fn is_non_span_attribute(key: &str) -> bool {
    NON_SPAN_ATTRIBUTES.binary_search(&key).is_ok()
}

/// The service a span is grouped under.
pub fn service_key<'s>(span: &'s Span<'_>) -> &'s str {
    span.local_service_name().unwrap_or(NO_SERVICE_NAME)
}

/// The scope a span is grouped under (`""`: none).
pub fn scope_name<'s>(span: &'s Span<'_>) -> &'s str {
    [TAG_SCOPE_NAME, TAG_LIBRARY_NAME]
        .into_iter()
        .find_map(|key| span.tags.get(key).filter(|name| !name.is_empty()))
        .unwrap_or_default()
}

/// Translates the decoded body (`None` entries are `null` elements, skipped) into one request.
pub fn to_request(spans: &[Option<Span<'_>>]) -> Result<ExportTraceServiceRequest, ZipkinError> {
    let mut order: Vec<(&str, &str, usize, &Span<'_>)> = spans
        .iter()
        .enumerate()
        .filter_map(|(index, span)| {
            let span = span.as_ref()?;
            Some((service_key(span), scope_name(span), index, span))
        })
        .collect();
    // Stable: spans of one group keep their input order.
    order.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));

    let mut request = ExportTraceServiceRequest::default();
    // `chunk_by` yields non-empty runs, so `[0]` is the span that opens each group.
    for service_group in order.chunk_by(|a, b| a.0 == b.0) {
        let (service, _, _, opens_service) = service_group[0];
        let mut scope_spans = Vec::new();
        for scope_group in service_group.chunk_by(|a, b| a.1 == b.1) {
            let (_, scope, _, opens_scope) = scope_group[0];
            let spans = scope_group
                .iter()
                .map(|&(_, _, index, span)| translate_span(index, span))
                .collect::<Result<Vec<_>, _>>()?;
            scope_spans.push(otlp::ScopeSpans {
                scope: instrumentation_scope(scope, opens_scope),
                spans,
                schema_url: String::new(),
            });
        }
        request.resource_spans.push(otlp::ResourceSpans {
            resource: Some(resource(service, opens_service)),
            scope_spans,
            schema_url: String::new(),
        });
    }
    Ok(request)
}

/// The resource of the group `span` opens.
fn resource(service: &str, span: &Span<'_>) -> Resource {
    let mut resource = Resource::default();
    if service == NO_SERVICE_NAME {
        return resource;
    }
    let attributes = &mut resource.attributes;
    let name_key = span
        .tags
        .get(TAG_SERVICE_NAME_SOURCE)
        .filter(|key| !key.is_empty())
        .unwrap_or(SERVICE_NAME);
    put(attributes, name_key, string(service));
    for (key, value) in span.tags.iter() {
        let scope_or_source =
            matches!(key, TAG_SERVICE_NAME_SOURCE | TAG_LIBRARY_NAME | TAG_LIBRARY_VERSION);
        if !scope_or_source && is_non_span_attribute(key) {
            put(attributes, key, string(value));
        }
    }
    resource
}

/// The scope of the group `span` opens; `None` when the group has no scope name.
fn instrumentation_scope(name: &str, span: &Span<'_>) -> Option<InstrumentationScope> {
    if name.is_empty() {
        return None;
    }
    let version = [TAG_SCOPE_VERSION, TAG_LIBRARY_VERSION]
        .into_iter()
        .find_map(|key| span.tags.get(key))
        .unwrap_or_default();
    Some(InstrumentationScope {
        name: name.to_owned(),
        version: version.to_owned(),
        ..Default::default()
    })
}

/// The span kind and whether the `span.kind` tag was consumed deciding it.
fn span_kind(span: &Span<'_>) -> (span::SpanKind, bool) {
    match span.kind.as_ref().map(|k| k.as_str()) {
        Some("CLIENT") => (span::SpanKind::Client, false),
        Some("SERVER") => (span::SpanKind::Server, false),
        Some("PRODUCER") => (span::SpanKind::Producer, false),
        Some("CONSUMER") => (span::SpanKind::Consumer, false),
        _ => match span.tags.get(TAG_SPAN_KIND) {
            Some("internal") => (span::SpanKind::Internal, true),
            Some(_) => (span::SpanKind::Unspecified, true),
            None => (span::SpanKind::Unspecified, false),
        },
    }
}

fn status(span: &Span<'_>) -> Option<Status> {
    let mut status = Status::default();
    if let Some(code) = span.tags.get(TAG_STATUS_CODE) {
        status.code = match code {
            "STATUS_CODE_OK" | "Ok" => StatusCode::Ok,
            "STATUS_CODE_ERROR" | "Error" => StatusCode::Error,
            _ => StatusCode::Unset,
        } as i32;
        status.message = span.tags.get(TAG_STATUS_DESCRIPTION).unwrap_or_default().to_owned();
    }
    if span.tags.contains(TAG_ERROR) {
        status.code = StatusCode::Error as i32;
    }
    (status != Status::default()).then_some(status)
}

/// How many `otlp.link.N` tags the Collector reads: 0, 1, … up to the first missing one.
fn link_tag_count(span: &Span<'_>) -> usize {
    // Most spans have no links: answer those without formatting a key.
    if !span.tags.contains("otlp.link.0") {
        return 0;
    }
    (0..MAX_LINKS).take_while(|i| span.tags.contains(&format!("{TAG_LINK_PREFIX}{i}"))).count()
}

/// Whether a tag is consumed by the span mapping rather than copied as an attribute.
fn is_consumed(key: &str, value: &str, span: &Span<'_>, kind_tag: bool, links: usize) -> bool {
    if is_non_span_attribute(key) {
        return true;
    }
    match key {
        TAG_SCOPE_NAME | TAG_SCOPE_VERSION | TAG_TRACE_STATE | TAG_STATUS_CODE => true,
        TAG_SPAN_KIND => kind_tag,
        TAG_STATUS_DESCRIPTION => span.tags.contains(TAG_STATUS_CODE),
        TAG_ERROR => value == "true",
        // Exactly `otlp.link.{n}` as the Collector formats it: no sign, no leading zeros.
        _ => key
            .strip_prefix(TAG_LINK_PREFIX)
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n < links && key == format!("{TAG_LINK_PREFIX}{n}")),
    }
}

fn translate_span(index: usize, span: &Span<'_>) -> Result<otlp::Span, ZipkinError> {
    let (kind, kind_tag) = span_kind(span);
    let link_count = link_tag_count(span);
    let links = span_links(index, span, link_count)?;
    let mut attributes = span_attributes(span, kind_tag, link_count);
    let (start_time_unix_nano, end_time_unix_nano) = span_times(index, span)?;
    if span.timestamp.is_none() {
        put(&mut attributes, ATTRIBUTE_START_TIME_ABSENT, any_value::Value::BoolValue(true));
    }
    let parent_span_id = match span.parent_id {
        Some(parent) if parent != span.id => parent.to_vec(),
        _ => Vec::new(),
    };
    Ok(otlp::Span {
        trace_id: span.trace_id.to_vec(),
        span_id: span.id.to_vec(),
        trace_state: span.tags.get(TAG_TRACE_STATE).unwrap_or_default().to_owned(),
        parent_span_id,
        name: span.name.as_ref().map(|n| n.as_str().to_owned()).unwrap_or_default(),
        kind: kind as i32,
        start_time_unix_nano,
        end_time_unix_nano,
        attributes,
        events: span_events(index, span)?,
        links,
        status: status(span),
        ..Default::default()
    })
}

fn span_links(index: usize, span: &Span<'_>, count: usize) -> Result<Vec<span::Link>, ZipkinError> {
    let mut links = Vec::new();
    for i in 0..count {
        let key = format!("{TAG_LINK_PREFIX}{i}");
        let value = span.tags.get(&key).unwrap_or_default();
        if let Some(link) = link(value).map_err(|detail| tag_error(index, &key, detail))? {
            links.push(link);
        }
    }
    Ok(links)
}

/// The tags that are not consumed, then the endpoint attributes.
fn span_attributes(span: &Span<'_>, kind_tag: bool, link_count: usize) -> Vec<KeyValue> {
    let mut attributes = Vec::with_capacity(span.tags.len() + 4);
    for (key, value) in span.tags.iter() {
        if !is_consumed(key, value, span, kind_tag, link_count) {
            // Keys are unique and none of them is consumed twice: no need to look for it first.
            attributes.push(key_value(key, string(value)));
        }
    }
    if let Some(local) = &span.local_endpoint {
        for ip in [local.ipv4, local.ipv6].into_iter().flatten() {
            put(&mut attributes, "net.host.ip", any_value::Value::StringValue(ip_text(ip)));
        }
        if let Some(port) = local.port.filter(|&p| p > 0) {
            put(&mut attributes, "net.host.port", any_value::Value::IntValue(port.into()));
        }
    }
    if let Some(remote) = &span.remote_endpoint {
        if let Some(name) = remote.service_name.as_ref().filter(|n| !n.as_str().is_empty()) {
            put(&mut attributes, "peer.service", string(name.as_str()));
        }
        for ip in [remote.ipv4, remote.ipv6].into_iter().flatten() {
            put(&mut attributes, "net.peer.ip", any_value::Value::StringValue(ip_text(ip)));
        }
        if let Some(port) = remote.port.filter(|&p| p > 0) {
            put(&mut attributes, "net.peer.port", any_value::Value::IntValue(port.into()));
        }
    }
    attributes
}

const TIME_OUT_OF_RANGE: &str = "time is out of range for nanoseconds in u64";

/// (start, end) in nanoseconds; an absent timestamp starts at 0.
fn span_times(index: usize, span: &Span<'_>) -> Result<(u64, u64), ZipkinError> {
    let out_of_range = |field: &str| ZipkinError::Span {
        index,
        field: Some(field.to_owned()),
        detail: TIME_OUT_OF_RANGE.into(),
    };
    let start_micros = span.timestamp.unwrap_or(0);
    let start = start_micros.checked_mul(1000).ok_or_else(|| out_of_range("timestamp"))?;
    let end = start_micros
        .checked_add(span.duration.unwrap_or(0))
        .and_then(|end| end.checked_mul(1000))
        .ok_or_else(|| out_of_range("duration"))?;
    Ok((start, end))
}

fn span_events(index: usize, span: &Span<'_>) -> Result<Vec<span::Event>, ZipkinError> {
    let mut events = Vec::with_capacity(span.annotations().len());
    for (i, annotation) in span.annotations().iter().enumerate() {
        let field = |name: &str| Some(format!("annotations[{i}].{name}"));
        let nanos = annotation.timestamp.checked_mul(1000).ok_or_else(|| ZipkinError::Span {
            index,
            field: field("timestamp"),
            detail: TIME_OUT_OF_RANGE.into(),
        })?;
        let value = annotation.value.as_ref().map(|v| v.as_str()).unwrap_or_default();
        let event = event(nanos, value).map_err(|detail| ZipkinError::Span {
            index,
            field: field("value"),
            detail,
        })?;
        events.push(event);
    }
    Ok(events)
}

fn tag_error(index: usize, key: &str, detail: String) -> ZipkinError {
    ZipkinError::Span { index, field: Some(format!("tags[{key:?}]")), detail }
}

/// Parses one `otlp.link.N` value; `None` for fewer than 5 parts (the Collector skips those).
fn link(value: &str) -> Result<Option<span::Link>, String> {
    let parts: Vec<&str> = value.split('|').collect();
    if parts.len() < 5 {
        return Ok(None);
    }
    let trace_id = link_id::<16>(parts[0])
        .ok_or_else(|| format!("link trace id {} is not 32 hex characters", echo(parts[0])))?;
    let span_id = link_id::<8>(parts[1])
        .ok_or_else(|| format!("link span id {} is not 16 hex characters", echo(parts[1])))?;
    let (attributes, dropped) = attributes_and_dropped(&parts[3..])?;
    Ok(Some(span::Link {
        trace_id,
        span_id,
        trace_state: parts[2].to_owned(),
        attributes,
        dropped_attributes_count: dropped,
        ..Default::default()
    }))
}

/// A link id, optionally in quotes; empty or all zeros is the empty (invalid) id.
fn link_id<const N: usize>(text: &str) -> Option<Vec<u8>> {
    let unquoted = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|_| text.len() >= 2)
        .unwrap_or(text);
    if unquoted.is_empty() {
        return Some(Vec::new());
    }
    let id: [u8; N] = hex_bytes(unquoted)?;
    Some(if id == [0; N] { Vec::new() } else { id.to_vec() })
}

/// One annotation as an event: `name` or `name|{json}|dropped` (more `|` belong to the JSON).
fn event(time_unix_nano: u64, value: &str) -> Result<span::Event, String> {
    let parts: Vec<&str> = value.split('|').collect();
    let mut event = span::Event { time_unix_nano, name: parts[0].to_owned(), ..Default::default() };
    if parts.len() >= 3 {
        let (attributes, dropped) = attributes_and_dropped(&parts[1..])?;
        event.attributes = attributes;
        event.dropped_attributes_count = dropped;
    }
    Ok(event)
}

/// `parts` = the JSON object split at `|`, then the dropped count.
fn attributes_and_dropped(parts: &[&str]) -> Result<(Vec<KeyValue>, u32), String> {
    let Some((dropped, json)) = parts.split_last() else { return Ok((Vec::new(), 0)) };
    let json = json.join("|");
    let object: Option<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(&json)
        .map_err(|e| format!("attributes are not a JSON object: {e}"))?;
    let mut attributes = Vec::new();
    for (key, value) in object.unwrap_or_default() {
        let value = match value {
            serde_json::Value::String(s) => any_value::Value::StringValue(s),
            serde_json::Value::Bool(b) => any_value::Value::BoolValue(b),
            serde_json::Value::Number(n) => match n.as_f64() {
                // A whole number is an int, as Go's float64 decoding + `math.Mod` decides.
                Some(f) if f.fract() == 0.0 => any_value::Value::IntValue(f as i64),
                Some(f) => any_value::Value::DoubleValue(f),
                None => continue,
            },
            // The Collector drops null, arrays and objects.
            _ => continue,
        };
        attributes.push(key_value(&key, value));
    }
    let dropped = dropped_count(dropped)
        .ok_or_else(|| format!("dropped attributes count {} is not a u32", echo(dropped)))?;
    Ok((attributes, dropped))
}

/// Go's `strconv.ParseUint(s, 10, 32)`: digits only, no sign.
fn dropped_count(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Go's `net.IP.String()`: IPv4-mapped IPv6 addresses print as IPv4.
fn ip_text(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        std::net::IpAddr::V4(v4) => v4.to_string(),
    }
}

fn string(value: &str) -> any_value::Value {
    any_value::Value::StringValue(value.to_owned())
}

fn key_value(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// `pcommon.Map.Put*`: replaces the value of an existing key, else appends.
fn put(attributes: &mut Vec<KeyValue>, key: &str, value: any_value::Value) {
    match attributes.iter_mut().find(|kv| kv.key == key) {
        Some(existing) => existing.value = Some(AnyValue { value: Some(value) }),
        None => attributes.push(key_value(key, value)),
    }
}
