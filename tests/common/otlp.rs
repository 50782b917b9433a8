//! Reading what an OTLP receiver got: attributes as strings, spans with their resource.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValueKind;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;

/// An attribute value as text: strings as they are, numbers and booleans as Rust prints them,
/// arrays and maps in debug form.
pub fn any_to_string(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(AnyValueKind::StringValue(s)) => s.clone(),
        Some(AnyValueKind::IntValue(i)) => i.to_string(),
        Some(AnyValueKind::DoubleValue(d)) => d.to_string(),
        Some(AnyValueKind::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

pub fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter().map(|kv| (kv.key.clone(), any_to_string(kv.value.as_ref()))).collect()
}

/// A span with the resource attributes it arrived under.
#[derive(Clone, Debug)]
pub struct FlatSpan {
    pub resource: BTreeMap<String, String>,
    pub span: Span,
}

impl FlatSpan {
    pub fn trace_id_hex(&self) -> String {
        hex(&self.span.trace_id)
    }

    pub fn attributes(&self) -> BTreeMap<String, String> {
        attributes(&self.span.attributes)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn flat_spans<'a>(
    requests: impl IntoIterator<Item = &'a ExportTraceServiceRequest>,
) -> Vec<FlatSpan> {
    let mut out = Vec::new();
    for request in requests {
        for rs in &request.resource_spans {
            let resource =
                rs.resource.as_ref().map(|r| attributes(&r.attributes)).unwrap_or_default();
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    out.push(FlatSpan { resource: resource.clone(), span: span.clone() });
                }
            }
        }
    }
    out
}

/// A log record with the resource attributes it arrived under.
#[derive(Clone, Debug)]
pub struct FlatLog {
    pub resource: BTreeMap<String, String>,
    pub record: LogRecord,
}

pub fn flat_logs<'a>(
    requests: impl IntoIterator<Item = &'a ExportLogsServiceRequest>,
) -> Vec<FlatLog> {
    let mut out = Vec::new();
    for request in requests {
        for rl in &request.resource_logs {
            let resource =
                rl.resource.as_ref().map(|r| attributes(&r.attributes)).unwrap_or_default();
            for sl in &rl.scope_logs {
                for record in &sl.log_records {
                    out.push(FlatLog { resource: resource.clone(), record: record.clone() });
                }
            }
        }
    }
    out
}
