//! OTLP logs → [`LogBatch`], mapped the way Loki 3 maps them (`pkg/loghttp/push/otlp.go`,
//! `otlpToLokiPushRequest` / `otlpLogToPushEntry` / `attributeToLabels`), so that a Grafana
//! looking at Strata sees what it would see in Loki. Spec of the input: OTLP 1.x
//! `logs/v1/logs.proto`.
//!
//! Per `ResourceLogs`, after `resource_relabel_configs` ran on the resource (see
//! [`attributes`](super::attributes); a resource dropped by a rule drops its records):
//!
//! * **Stream labels**: the resource attributes named in `logs.stream_label_attributes`
//!   (Loki's index-label list by default), names normalised like Prometheus' `otlptranslator`
//!   `NormalizeLabel` (every rune outside `[A-Za-z0-9]` → `_`; a leading digit gets `key_`, a
//!   single leading `_` gets `key`): `service.name` → `service_name`. A map-valued attribute
//!   becomes one label per entry, `<name>_<key>`, recursively.
//! * `service_name`: when the resource has no non-empty `service.name`, the first stream label
//!   (in attribute order) named like one of Loki's `discover_service_name` defaults lends its
//!   value; without one, `service_name="unknown_service"`.
//! * **Structured metadata** of each entry, in this order (as Loki builds it): the record's
//!   attributes; `observed_timestamp` (when both timestamps are set), `severity_number` (when not
//!   0), `severity_text`, `dropped_attributes_count`, `flags` (when not 0), `trace_id`, `span_id`
//!   (lowercase hex, when set); then the other resource attributes; then the scope's attributes,
//!   `scope_name`, `scope_version`, `scope_dropped_attributes_count`. Names normalised as above,
//!   map values flattened.
//! * **Line**: the body; a string as is, any other value as its text form (the attribute
//!   rendering of [`attributes::render`](super::attributes::render), which is pcommon's
//!   `AsString`, what Loki uses).
//! * **Timestamp**: `time_unix_nano`, else `observed_time_unix_nano`, else now (nanoseconds;
//!   values past `i64::MAX` are clamped).
//!
//! Records of resources with the same stream labels share one stream. Loki rejects nothing here,
//! and neither does this: `rejected` is always 0 for logs.

use std::sync::Arc;

use ahash::AHashMap as HashMap;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::attributes::{render, ResourceRelabeler};
use super::Accepted;
use crate::model::{
    Label, Labels, LogBatch, LogEntry, Stream, StreamEntries, Tenant, TraceResource,
};
use crate::relabel::CacheTally;
use crate::telemetry::{IngestDropReason, IngestMetrics};

/// Loki's `service_name` label.
pub const SERVICE_NAME_LABEL: &str = "service_name";
/// Loki's value for a stream without a discoverable service name.
pub const UNKNOWN_SERVICE: &str = "unknown_service";
/// Loki 3's `limits_config.discover_service_name` default: stream labels whose value stands in
/// for a missing `service.name`.
pub const DISCOVER_SERVICE_NAME: &[&str] = &[
    "service",
    "app",
    "application",
    "app_name",
    "name",
    "app_kubernetes_io_name",
    "container",
    "container_name",
    "k8s_container_name",
    "component",
    "workload",
    "job",
    "k8s_job_name",
];

/// What the per-request mapping needs.
pub(super) struct Context<'a> {
    pub tenant: &'a Tenant,
    pub relabeler: &'a ResourceRelabeler,
    pub metrics: &'a IngestMetrics,
    /// `logs.stream_label_attributes`.
    pub stream_attributes: &'a [String],
    /// Nanoseconds since the epoch, for records without timestamps.
    pub now_ns: i64,
}

/// Maps one request; see the module docs.
pub(super) fn from_request(
    request: ExportLogsServiceRequest,
    cx: &Context<'_>,
) -> Accepted<LogBatch> {
    let mut batch = LogBatch::new(cx.tenant.clone());
    let mut streams: HashMap<Labels, usize> = HashMap::new();
    let mut tally = CacheTally::default();
    let (mut received, mut relabel_dropped) = (0u64, 0u64);
    for resource_logs in request.resource_logs {
        let records: usize = resource_logs.scope_logs.iter().map(|s| s.log_records.len()).sum();
        received += records as u64;
        if records == 0 {
            continue;
        }
        let resource = resource_logs.resource.unwrap_or_default();
        let relabeled;
        let resource: &Resource = if cx.relabeler.is_empty() {
            &resource
        } else {
            match cx.relabeler.relabel(&Arc::new(TraceResource::new(resource)), &mut tally) {
                Some(kept) => {
                    relabeled = kept;
                    &relabeled.resource
                }
                None => {
                    relabel_dropped += records as u64;
                    continue;
                }
            }
        };
        let (labels, resource_metadata) = stream_labels(&resource.attributes, cx.stream_attributes);
        let index = *streams.entry(labels).or_insert_with_key(|labels| {
            batch.streams.push(StreamEntries {
                stream: Arc::new(Stream::new(labels.clone())),
                entries: Vec::with_capacity(records),
            });
            batch.streams.len() - 1
        });
        for scope_logs in resource_logs.scope_logs {
            let scope_metadata = scope_metadata(scope_logs.scope.as_ref());
            let entries = &mut batch.streams[index].entries;
            for record in scope_logs.log_records {
                let mut entry = entry(record, cx.now_ns);
                entry.structured_metadata.extend(resource_metadata.iter().cloned());
                entry.structured_metadata.extend(scope_metadata.iter().cloned());
                entries.push(entry);
            }
        }
    }
    if !cx.relabeler.is_empty() {
        cx.relabeler.record(tally);
    }
    cx.metrics.log_entries.inc_by(received);
    cx.metrics.log_bytes.inc_by(batch.byte_size() as u64);
    if relabel_dropped > 0 {
        cx.metrics.dropped(IngestDropReason::Relabel).inc_by(relabel_dropped);
    }
    batch.streams.retain(|s| !s.entries.is_empty());
    Accepted { batch, rejected: 0, message: None }
}

/// The stream labels and the structured metadata of a resource's attributes.
fn stream_labels(attributes: &[KeyValue], stream_attributes: &[String]) -> (Labels, Vec<Label>) {
    let mut labels: Vec<Label> = Vec::new();
    let mut metadata = Vec::new();
    let mut has_service_name = attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .is_some_and(|kv| !render(kv.value.as_ref()).is_empty());
    for attribute in attributes {
        if !stream_attributes.contains(&attribute.key) {
            flatten(&attribute.key, attribute.value.as_ref(), "", &mut metadata);
            continue;
        }
        let first = labels.len();
        flatten(&attribute.key, attribute.value.as_ref(), "", &mut labels);
        if has_service_name {
            continue;
        }
        if let Some(found) = labels[first..]
            .iter()
            .find(|label| DISCOVER_SERVICE_NAME.contains(&label.name.as_str()))
        {
            let value = found.value.clone();
            labels.push(Label::new(SERVICE_NAME_LABEL, value));
            has_service_name = true;
        }
    }
    if !has_service_name {
        labels.push(Label::new(SERVICE_NAME_LABEL, UNKNOWN_SERVICE));
    }
    (Labels::from_unsorted(labels), metadata)
}

/// Structured metadata from the instrumentation scope.
fn scope_metadata(
    scope: Option<&opentelemetry_proto::tonic::common::v1::InstrumentationScope>,
) -> Vec<Label> {
    let mut metadata = Vec::new();
    let Some(scope) = scope else { return metadata };
    for attribute in &scope.attributes {
        flatten(&attribute.key, attribute.value.as_ref(), "", &mut metadata);
    }
    if !scope.name.is_empty() {
        metadata.push(Label::new("scope_name", scope.name.clone()));
    }
    if !scope.version.is_empty() {
        metadata.push(Label::new("scope_version", scope.version.clone()));
    }
    if scope.dropped_attributes_count != 0 {
        metadata.push(Label::new(
            "scope_dropped_attributes_count",
            scope.dropped_attributes_count.to_string(),
        ));
    }
    metadata
}

/// One record → one entry (resource and scope metadata are appended by the caller).
fn entry(record: LogRecord, now_ns: i64) -> LogEntry {
    let mut metadata = Vec::with_capacity(record.attributes.len() + 8);
    for attribute in &record.attributes {
        flatten(&attribute.key, attribute.value.as_ref(), "", &mut metadata);
    }
    if record.time_unix_nano != 0 && record.observed_time_unix_nano != 0 {
        metadata.push(Label::new("observed_timestamp", record.observed_time_unix_nano.to_string()));
    }
    if record.severity_number != 0 {
        metadata.push(Label::new("severity_number", record.severity_number.to_string()));
    }
    if !record.severity_text.is_empty() {
        metadata.push(Label::new("severity_text", record.severity_text));
    }
    if record.dropped_attributes_count != 0 {
        metadata.push(Label::new(
            "dropped_attributes_count",
            record.dropped_attributes_count.to_string(),
        ));
    }
    if record.flags != 0 {
        metadata.push(Label::new("flags", record.flags.to_string()));
    }
    if !record.trace_id.is_empty() {
        metadata.push(Label::new("trace_id", hex(&record.trace_id)));
    }
    if !record.span_id.is_empty() {
        metadata.push(Label::new("span_id", hex(&record.span_id)));
    }
    let timestamp = [record.time_unix_nano, record.observed_time_unix_nano]
        .into_iter()
        .find(|t| *t != 0)
        .map_or(now_ns, |t| i64::try_from(t).unwrap_or(i64::MAX));
    LogEntry { timestamp_ns: timestamp, line: line(record.body), structured_metadata: metadata }
}

/// The line of a record: its body as text, a string body without copying.
fn line(body: Option<AnyValue>) -> Bytes {
    match body {
        Some(AnyValue { value: Some(any_value::Value::StringValue(text)) }) => Bytes::from(text),
        other => Bytes::from(render(other.as_ref()).into_owned()),
    }
}

/// Appends the labels of one attribute as Loki's `attributeToLabels` does: a map value becomes
/// one label per entry (recursively, `<name>_<key>`), anything else one label.
fn flatten(key: &str, value: Option<&AnyValue>, prefix: &str, out: &mut Vec<Label>) {
    let name = if prefix.is_empty() {
        normalize_label(key)
    } else {
        normalize_label(&format!("{prefix}_{key}"))
    };
    if let Some(any_value::Value::KvlistValue(list)) = value.and_then(|v| v.value.as_ref()) {
        for entry in &list.values {
            flatten(&entry.key, entry.value.as_ref(), &name, out);
        }
        return;
    }
    let value = render(value).into_owned();
    out.push(Label { name, value });
}

/// Prometheus `otlptranslator.NormalizeLabel`: every rune outside `[A-Za-z0-9]` becomes `_`; a
/// leading digit gets `key_` in front, a leading single `_` gets `key`.
pub fn normalize_label(name: &str) -> String {
    if name.is_empty() {
        return String::new();
    }
    let sanitized: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    if sanitized.as_bytes()[0].is_ascii_digit() {
        format!("key_{sanitized}")
    } else if sanitized.starts_with('_') && !sanitized.starts_with("__") {
        format!("key{sanitized}")
    } else {
        sanitized
    }
}

/// Lowercase hex, as Go's `hex.EncodeToString`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 15)] as char);
    }
    out
}

#[cfg(test)]
#[path = "logs_tests.rs"]
mod tests;
