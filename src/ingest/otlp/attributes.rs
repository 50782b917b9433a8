//! OTLP resource attributes ↔ Prometheus labels, so `relabel_config` rules can read and rewrite
//! the resources of traces and logs (ingest `resource_relabel_configs`, and the OTLP forward
//! sink's per-target rules).
//!
//! **The mapping (a user contract).**
//!
//! *Attributes → labels.* Each attribute becomes one label. The label name is the attribute key
//! verbatim (`service.name`, `k8s.pod.name`): rules run with UTF-8 label-name validation
//! ([`NameValidation::Utf8`]), so `source_labels: [service.name]` works as written. The value is
//! rendered as text the way the OpenTelemetry Collector's `pcommon.Value.AsString` does (which is
//! also what Loki shows for OTLP attributes):
//!
//! | attribute type | label value |
//! |---|---|
//! | string | as is |
//! | int | decimal (`-42`) |
//! | double | shortest round-trip form, JavaScript/`encoding/json` style: `0.5`, `3`, `1e-7`, `1e+21` (exponent form below 1e-6 and from 1e21 on); NaN and infinities as `NaN`, `+Inf`, `-Inf` |
//! | bool | `true` / `false` |
//! | bytes | standard base64 with padding |
//! | array | JSON array of the element values: `["a",1,true]` |
//! | map (kvlist) | JSON object, keys sorted, last duplicate wins: `{"a":1,"b":"x"}` |
//! | empty | empty, i.e. no label |
//!
//! Inside JSON, strings are escaped as Go's `encoding/json` does (`<`, `>`, `&` as `\u003c`…),
//! bytes are base64 strings, NaN/infinities are the strings above. Attributes with an empty key
//! or an empty rendered value are not labels (Prometheus treats an empty label as absent); when
//! a key repeats, the last occurrence is the label.
//!
//! *Labels → attributes* (after the rules ran):
//! * a label whose value is unchanged keeps its original attribute, type included;
//! * a label that is new or whose value changed becomes a **string** attribute (a rule that
//!   rewrites `http.status_code` from int `200` yields string `"200"`);
//! * an attribute whose label was removed is removed;
//! * attributes that never were labels (empty key or empty value) stay; earlier occurrences of
//!   a repeated key are dropped once any rule changed the resource.
//!
//! Kept attributes stay in their original order, new ones follow in label-name order;
//! `dropped_attributes_count` and `entity_refs` are carried over. When no rule changed anything,
//! the resource is returned as it was (same `Arc`).
//!
//! A `keep`/`drop` rule that rejects a resource drops every span or log record of it. Results are
//! cached per resource encoding ([`TraceResource::encoded`]), so the steady state costs one
//! hash lookup per resource, not a rule run.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::model::{Label, Labels, TraceResource};
use crate::relabel::SeriesCache;
use crate::relabel::{CacheTally, NameValidation, RelabelConfig, RelabelError, Relabeler};
use crate::telemetry::Catalog;

/// The text form of an attribute value (see the module docs); borrows string values.
pub fn render(value: Option<&AnyValue>) -> Cow<'_, str> {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(text)) => Cow::Borrowed(text),
        other => {
            let mut out = String::new();
            push_scalar_or_json(&mut out, other);
            Cow::Owned(out)
        }
    }
}

/// Appends the text form of a value that is not a plain string (or is, inside nothing).
fn push_scalar_or_json(out: &mut String, value: Option<&any_value::Value>) {
    use any_value::Value;
    match value {
        None | Some(Value::StringValueStrindex(_)) => {}
        Some(Value::StringValue(text)) => out.push_str(text),
        Some(Value::BoolValue(flag)) => out.push_str(if *flag { "true" } else { "false" }),
        Some(Value::IntValue(number)) => {
            let _ = write!(out, "{number}");
        }
        Some(Value::DoubleValue(number)) => push_double(out, *number),
        Some(Value::BytesValue(bytes)) => {
            base64::engine::general_purpose::STANDARD.encode_string(bytes, out)
        }
        Some(Value::ArrayValue(_)) | Some(Value::KvlistValue(_)) => push_json(out, value),
    }
}

/// A double as Go's `encoding/json` writes it (shortest round-trip digits; `e` notation below
/// 1e-6 and from 1e21, with `e-7` / `e+21` exponents), non-finite values as Prometheus does.
pub fn push_double(out: &mut String, number: f64) {
    if number.is_nan() {
        out.push_str("NaN");
    } else if number.is_infinite() {
        out.push_str(if number > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let magnitude = number.abs();
        if magnitude != 0.0 && !(1e-6..1e21).contains(&magnitude) {
            // Rust writes `1e21` / `1e-7`; Go writes `1e+21` / `1e-7`.
            let text = format!("{number:e}");
            match text.split_once('e') {
                Some((mantissa, exponent)) if !exponent.starts_with('-') => {
                    let _ = write!(out, "{mantissa}e+{exponent}");
                }
                _ => out.push_str(&text),
            }
        } else {
            let _ = write!(out, "{number}");
        }
    }
}

/// Appends `value` as JSON (the raw value, not the OTLP JSON encoding of `AnyValue`).
fn push_json(out: &mut String, value: Option<&any_value::Value>) {
    use any_value::Value;
    match value {
        None | Some(Value::StringValueStrindex(_)) => out.push_str("null"),
        Some(Value::StringValue(text)) => push_json_string(out, text),
        Some(Value::BoolValue(_)) | Some(Value::IntValue(_)) => push_scalar_or_json(out, value),
        Some(Value::DoubleValue(number)) if number.is_finite() => push_double(out, *number),
        Some(Value::DoubleValue(number)) => {
            out.push('"');
            push_double(out, *number);
            out.push('"');
        }
        Some(Value::BytesValue(_)) => {
            out.push('"');
            push_scalar_or_json(out, value);
            out.push('"');
        }
        Some(Value::ArrayValue(array)) => {
            out.push('[');
            for (index, item) in array.values.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                push_json(out, item.value.as_ref());
            }
            out.push(']');
        }
        Some(Value::KvlistValue(list)) => {
            // Go marshals a map: keys sorted, one entry per key (the last one wins).
            let mut entries: Vec<&KeyValue> = Vec::with_capacity(list.values.len());
            for entry in &list.values {
                match entries.iter_mut().find(|e| e.key == entry.key) {
                    Some(slot) => *slot = entry,
                    None => entries.push(entry),
                }
            }
            entries.sort_by(|a, b| a.key.cmp(&b.key));
            out.push('{');
            for (index, entry) in entries.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                push_json_string(out, &entry.key);
                out.push(':');
                push_json(out, entry.value.as_ref().and_then(|v| v.value.as_ref()));
            }
            out.push('}');
        }
    }
}

/// A JSON string escaped as Go's `encoding/json` does with HTML escaping on (its default).
pub(crate) fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The labels of a list of attributes (see the module docs).
pub fn to_labels(attributes: &[KeyValue]) -> Labels {
    let labels = attributes
        .iter()
        .filter(|kv| !kv.key.is_empty())
        .map(|kv| Label::new(kv.key.clone(), render(kv.value.as_ref()).into_owned()))
        .collect();
    Labels::from_unsorted(labels)
}

/// Rebuilds attributes from `original` and the labels rules produced from it (see the module
/// docs for the rules).
pub fn from_labels(original: &[KeyValue], labels: &Labels) -> Vec<KeyValue> {
    let mut out = Vec::with_capacity(labels.len());
    for (index, attribute) in original.iter().enumerate() {
        let repeated_later = original[index + 1..].iter().any(|later| later.key == attribute.key);
        if repeated_later {
            continue;
        }
        let rendered = render(attribute.value.as_ref());
        let never_a_label = attribute.key.is_empty() || rendered.is_empty();
        if never_a_label && labels.get(&attribute.key).is_none() {
            out.push(attribute.clone());
            continue;
        }
        match labels.get(&attribute.key) {
            Some(value) if value == rendered => out.push(attribute.clone()),
            Some(value) => out.push(string_attribute(&attribute.key, value)),
            None => {}
        }
    }
    for label in labels.iter() {
        if !original.iter().any(|attribute| attribute.key == label.name) {
            out.push(string_attribute(&label.name, &label.value));
        }
    }
    out
}

/// A string-valued attribute.
pub fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }),
        ..Default::default()
    }
}

/// `resource_relabel_configs` over resources, with a per-resource result cache.
pub struct ResourceRelabeler {
    relabeler: Relabeler,
    cache: SeriesCache<Option<Arc<TraceResource>>>,
}

impl std::fmt::Debug for ResourceRelabeler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceRelabeler")
            .field("rules", &self.relabeler.len())
            .field("cache", &self.cache)
            .finish()
    }
}

impl ResourceRelabeler {
    /// Compiles `configs` (UTF-8 label names); the cache reports as `cache="<cache_name>"`.
    pub fn new(
        configs: &[RelabelConfig],
        cache_size: usize,
        catalog: &Catalog,
        cache_name: &str,
    ) -> Result<Self, RelabelError> {
        Ok(Self {
            relabeler: Relabeler::with_validation(configs, NameValidation::Utf8)?,
            cache: SeriesCache::new(cache_size, catalog.relabel_cache(cache_name)),
        })
    }

    /// True when there are no rules: [`relabel`](Self::relabel) returns its input.
    pub fn is_empty(&self) -> bool {
        self.relabeler.is_empty()
    }

    /// The relabeled resource, `None` when a `keep`/`drop` rule dropped it. Cached by
    /// `resource.encoded`; hits and misses are counted in `tally` (see [`record`](Self::record)).
    pub fn relabel(
        &self,
        resource: &Arc<TraceResource>,
        tally: &mut CacheTally,
    ) -> Option<Arc<TraceResource>> {
        if self.relabeler.is_empty() {
            return Some(resource.clone());
        }
        self.cache.lookup(&resource.encoded, tally, || {
            match self.relabel_resource(&resource.resource)? {
                Cow::Borrowed(_) => Some(resource.clone()),
                Cow::Owned(changed) => Some(Arc::new(TraceResource::new(changed))),
            }
        })
    }

    /// [`relabel`](Self::relabel) for callers that handle one resource at a time (a forward
    /// target's resource rewrite): counts the cache hit or miss right away.
    pub fn relabel_one(&self, resource: &Arc<TraceResource>) -> Option<Arc<TraceResource>> {
        let mut tally = CacheTally::default();
        let relabeled = self.relabel(resource, &mut tally);
        self.record(tally);
        relabeled
    }

    /// Runs the rules on one resource, uncached: `None` = dropped, `Borrowed` = unchanged.
    pub fn relabel_resource<'a>(&self, resource: &'a Resource) -> Option<Cow<'a, Resource>> {
        let input = to_labels(&resource.attributes);
        let output = self.relabeler.process(&input)?;
        if output == input {
            return Some(Cow::Borrowed(resource));
        }
        Some(Cow::Owned(Resource {
            attributes: from_labels(&resource.attributes, &output),
            dropped_attributes_count: resource.dropped_attributes_count,
            entity_refs: resource.entity_refs.clone(),
        }))
    }

    /// Adds one request's cache hits and misses to the cache metrics.
    pub fn record(&self, tally: CacheTally) {
        self.cache.record(tally);
    }
}

#[cfg(test)]
#[path = "attributes_tests.rs"]
mod tests;
