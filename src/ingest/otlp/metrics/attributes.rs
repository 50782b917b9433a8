//! OTLP attributes → Prometheus labels: attribute values as strings, data point attributes as
//! labels, `job`/`instance` from the resource, promoted resource attributes, `target_info`.
//!
//! Semantics follow Prometheus 2.53.3 `storage/remote/otlptranslator/prometheusremotewrite/
//! helper.go` (`createAttributes`, `addResourceTargetInfo`):
//!
//! * data point attributes are sorted by their original key, then renamed
//!   ([`names::label_name`]); keys that collide after renaming have their values joined with `;`
//!   in that order;
//! * `job` = `service.name`, or `service.namespace/service.name` when the namespace is set;
//!   `instance` = `service.instance.id`; both override attributes of those names;
//! * the metric name and the `le`/`quantile` labels are set last and override everything;
//! * `target_info` carries the resource attributes other than `service.name`,
//!   `service.namespace`, `service.instance.id` (kept too with
//!   `keep_identifying_resource_attributes`, Prometheus 3.1+), plus `job`/`instance`; it is made
//!   only when at least one such other attribute exists and `job` or `instance` is present.
//!
//! `promote_resource_attributes` (Prometheus 2.54+/3.x; 2.53 has no `otlp` config block): the
//! listed resource attributes become labels of every series, unless a data point attribute
//! already produced that label; they are not added to `target_info`.
//!
//! Values are rendered as pdata's `Value.AsString` does (pdata v1, the library Prometheus
//! decodes OTLP with): strings as they are, ints in decimal, doubles as ES6/JSON numbers, bytes
//! as standard base64, arrays and maps as JSON with map keys sorted.

use std::collections::BTreeMap;

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};

use super::names::label_name;
use crate::config::{OtlpMetricsConfig, OtlpTranslationStrategy};

pub const SERVICE_NAME: &str = "service.name";
pub const SERVICE_NAMESPACE: &str = "service.namespace";
pub const SERVICE_INSTANCE_ID: &str = "service.instance.id";
const IDENTIFYING: [&str; 3] = [SERVICE_NAMESPACE, SERVICE_NAME, SERVICE_INSTANCE_ID];

/// A label set under construction: label name → value, so later writers override.
pub type LabelMap = BTreeMap<String, String>;

/// The first value of `key` in an attribute list (pdata's `Map.Get`).
pub fn get<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a KeyValue> {
    attributes.iter().find(|kv| kv.key == key)
}

/// What every series of one `ResourceMetrics` shares.
#[derive(Debug, Default)]
pub struct ResourceLabels {
    job: Option<String>,
    instance: Option<String>,
    /// Promoted resource attributes: label name → value, sorted by attribute key.
    promoted: Vec<(String, String)>,
}

impl ResourceLabels {
    pub fn new(resource: &[KeyValue], config: &OtlpMetricsConfig) -> Self {
        let job = get(resource, SERVICE_NAME).map(|name| {
            let name = value_as_string(name.value.as_ref());
            match get(resource, SERVICE_NAMESPACE) {
                Some(ns) => format!("{}/{name}", value_as_string(ns.value.as_ref())),
                None => name,
            }
        });
        let instance =
            get(resource, SERVICE_INSTANCE_ID).map(|id| value_as_string(id.value.as_ref()));
        let mut promoted: Vec<(&str, String)> = config
            .promote_resource_attributes
            .iter()
            .filter_map(|key| {
                Some((key.as_str(), value_as_string(get(resource, key)?.value.as_ref())))
            })
            .collect();
        promoted.sort_by(|a, b| a.0.cmp(b.0));
        let strategy = config.translation_strategy;
        let promoted =
            promoted.into_iter().map(|(key, value)| (label_name(key, strategy), value)).collect();
        Self { job, instance, promoted }
    }

    /// The labels of a data point with `attributes` (no metric name yet).
    pub fn base_labels(
        &self,
        attributes: &[KeyValue],
        strategy: OtlpTranslationStrategy,
    ) -> LabelMap {
        let mut labels = attribute_labels(attributes, &[], strategy);
        for (name, value) in &self.promoted {
            labels.entry(name.clone()).or_insert_with(|| value.clone());
        }
        self.set_job_and_instance(&mut labels);
        labels
    }

    fn set_job_and_instance(&self, labels: &mut LabelMap) {
        if let Some(job) = &self.job {
            labels.insert("job".to_owned(), job.clone());
        }
        if let Some(instance) = &self.instance {
            labels.insert("instance".to_owned(), instance.clone());
        }
    }

    /// The labels of the resource's `target_info` series (without the metric name), or `None`
    /// when Prometheus would not make one.
    pub fn target_info_labels(
        &self,
        resource: &[KeyValue],
        config: &OtlpMetricsConfig,
    ) -> Option<LabelMap> {
        let identifying =
            resource.iter().filter(|kv| IDENTIFYING.contains(&kv.key.as_str())).count();
        if resource.len() == identifying {
            return None;
        }
        let ignored: &[&str] =
            if config.keep_identifying_resource_attributes { &[] } else { &IDENTIFYING };
        let mut labels = attribute_labels(resource, ignored, config.translation_strategy);
        self.set_job_and_instance(&mut labels);
        // Presence decides, as in Prometheus, even if the value is empty.
        let identified = labels.contains_key("job") || labels.contains_key("instance");
        identified.then_some(labels)
    }
}

/// Attributes (minus `ignored` keys) as labels: sorted by original key, renamed, colliding
/// values joined with `;`. Attributes whose key renames to nothing are left out.
fn attribute_labels(
    attributes: &[KeyValue],
    ignored: &[&str],
    strategy: OtlpTranslationStrategy,
) -> LabelMap {
    let mut sorted: Vec<&KeyValue> =
        attributes.iter().filter(|kv| !ignored.contains(&kv.key.as_str())).collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut labels = LabelMap::new();
    for kv in sorted {
        let name = label_name(&kv.key, strategy);
        if name.is_empty() {
            continue;
        }
        let value = value_as_string(kv.value.as_ref());
        match labels.get_mut(&name) {
            Some(existing) => {
                existing.push(';');
                existing.push_str(&value);
            }
            None => {
                labels.insert(name, value);
            }
        }
    }
    labels
}

/// pdata `Value.AsString`.
pub fn value_as_string(value: Option<&AnyValue>) -> String {
    let Some(inner) = value.and_then(|v| v.value.as_ref()) else { return String::new() };
    match inner {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::BoolValue(b) => b.to_string(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::DoubleValue(d) if !d.is_finite() => {
            format!("json: unsupported value: {}", go_float_g(*d))
        }
        any_value::Value::DoubleValue(d) => json_number(*d),
        any_value::Value::BytesValue(b) => base64::engine::general_purpose::STANDARD.encode(b),
        any_value::Value::ArrayValue(_) | any_value::Value::KvlistValue(_) => {
            let mut out = String::new();
            // Go's json.Marshal fails on NaN/Inf and pdata then returns "".
            if write_json(&mut out, value).is_err() {
                out.clear();
            }
            out
        }
        any_value::Value::StringValueStrindex(_) => String::new(),
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` for non-finite values.
fn go_float_g(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "+Inf"
    } else {
        "-Inf"
    }
}

/// A finite double as Go's encoding/json writes it (ES6 number to string): plain decimal,
/// exponent form below 1e-6 and from 1e21 on (`1e-7`, `1e+21`).
pub fn json_number(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let formatted = format!("{f:e}");
        match formatted.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => formatted,
        }
    } else {
        format!("{f}")
    }
}

/// Not representable in JSON (NaN or infinity somewhere inside).
struct NotJson;

fn write_json(out: &mut String, value: Option<&AnyValue>) -> Result<(), NotJson> {
    let Some(inner) = value.and_then(|v| v.value.as_ref()) else {
        out.push_str("null");
        return Ok(());
    };
    match inner {
        any_value::Value::StringValue(s) => write_json_string(out, s),
        any_value::Value::BoolValue(b) => out.push_str(if *b { "true" } else { "false" }),
        any_value::Value::IntValue(i) => out.push_str(&i.to_string()),
        any_value::Value::DoubleValue(d) if !d.is_finite() => return Err(NotJson),
        any_value::Value::DoubleValue(d) => out.push_str(&json_number(*d)),
        any_value::Value::BytesValue(b) => {
            write_json_string(out, &base64::engine::general_purpose::STANDARD.encode(b))
        }
        any_value::Value::ArrayValue(array) => {
            out.push('[');
            for (i, item) in array.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, Some(item))?;
            }
            out.push(']');
        }
        any_value::Value::KvlistValue(list) => {
            // A Go map: the last value of a key wins, keys come out sorted.
            let map: BTreeMap<&str, Option<&AnyValue>> =
                list.values.iter().map(|kv| (kv.key.as_str(), kv.value.as_ref())).collect();
            out.push('{');
            for (i, (key, item)) in map.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, key);
                out.push(':');
                write_json(out, item)?;
            }
            out.push('}');
        }
        any_value::Value::StringValueStrindex(_) => out.push_str("\"\""),
    }
    Ok(())
}

/// A JSON string as Go's encoding/json escapes it (HTML-safe: `<`, `>`, `&` as `\u00XX`).
fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    fn any(v: any_value::Value) -> AnyValue {
        AnyValue { value: Some(v) }
    }
    pub(crate) fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(any(any_value::Value::StringValue(value.into()))),
            ..Default::default()
        }
    }

    #[test]
    fn values_render_like_pdata_as_string() {
        use any_value::Value as V;
        let s = |v: V| value_as_string(Some(&any(v)));
        assert_eq!(s(V::StringValue("x y".into())), "x y");
        assert_eq!(s(V::BoolValue(true)), "true");
        assert_eq!(s(V::IntValue(-42)), "-42");
        assert_eq!(s(V::DoubleValue(1.5)), "1.5");
        assert_eq!(s(V::DoubleValue(3.0)), "3");
        assert_eq!(s(V::DoubleValue(1e21)), "1e+21");
        assert_eq!(s(V::DoubleValue(1.5e-7)), "1.5e-7");
        assert_eq!(s(V::DoubleValue(123456789.0)), "123456789");
        assert_eq!(s(V::DoubleValue(f64::NAN)), "json: unsupported value: NaN");
        assert_eq!(s(V::BytesValue(vec![1, 2, 3])), "AQID");
        let array = V::ArrayValue(ArrayValue {
            values: vec![
                any(V::IntValue(1)),
                any(V::StringValue("a<b".into())),
                AnyValue { value: None },
            ],
        });
        assert_eq!(s(array), r#"[1,"a\u003cb",null]"#);
        let map = V::KvlistValue(KeyValueList {
            values: vec![kv("z", "1"), kv("a", "\"q\""), kv("z", "2")],
        });
        assert_eq!(s(map), r#"{"a":"\"q\"","z":"2"}"#);
        let bad = V::ArrayValue(ArrayValue { values: vec![any(V::DoubleValue(f64::INFINITY))] });
        assert_eq!(s(bad), "");
        assert_eq!(value_as_string(None), "");
    }

    #[test]
    fn colliding_keys_join_in_original_key_order() {
        let attrs = [kv("a_b", "second"), kv("a.b", "first"), kv("c", "x")];
        let labels =
            attribute_labels(&attrs, &[], OtlpTranslationStrategy::UnderscoreEscapingWithSuffixes);
        assert_eq!(labels.get("a_b").map(String::as_str), Some("first;second"));
        assert_eq!(labels.get("c").map(String::as_str), Some("x"));
    }

    #[test]
    fn job_and_instance_come_from_the_resource_and_override_attributes() {
        let config = OtlpMetricsConfig::default();
        let resource = [
            kv(SERVICE_NAME, "api"),
            kv(SERVICE_NAMESPACE, "shop"),
            kv(SERVICE_INSTANCE_ID, "pod-1"),
        ];
        let ctx = ResourceLabels::new(&resource, &config);
        let labels = ctx.base_labels(
            &[kv("job", "mine"), kv("instance", "x"), kv("k", "v")],
            config.translation_strategy,
        );
        assert_eq!(labels.get("job").map(String::as_str), Some("shop/api"));
        assert_eq!(labels.get("instance").map(String::as_str), Some("pod-1"));
        assert_eq!(labels.get("k").map(String::as_str), Some("v"));
        let no_ns = ResourceLabels::new(&[kv(SERVICE_NAME, "api")], &config);
        let labels = no_ns.base_labels(&[], config.translation_strategy);
        assert_eq!(labels.get("job").map(String::as_str), Some("api"));
        assert!(!labels.contains_key("instance"));
    }

    #[test]
    fn promoted_attributes_lose_to_data_point_attributes() {
        let config = OtlpMetricsConfig {
            promote_resource_attributes: vec![
                "k8s.pod.name".into(),
                "region".into(),
                "absent".into(),
            ],
            ..OtlpMetricsConfig::default()
        };
        let resource = [kv("k8s.pod.name", "pod-7"), kv("region", "eu"), kv("other", "x")];
        let ctx = ResourceLabels::new(&resource, &config);
        let labels = ctx.base_labels(&[kv("region", "us")], config.translation_strategy);
        assert_eq!(labels.get("k8s_pod_name").map(String::as_str), Some("pod-7"));
        assert_eq!(labels.get("region").map(String::as_str), Some("us"));
        assert!(!labels.contains_key("other") && !labels.contains_key("absent"));
    }

    #[test]
    fn target_info_needs_an_extra_attribute_and_an_identity() {
        let config = OtlpMetricsConfig::default();
        let only_ids = [kv(SERVICE_NAME, "api"), kv(SERVICE_INSTANCE_ID, "i")];
        assert_eq!(
            ResourceLabels::new(&only_ids, &config).target_info_labels(&only_ids, &config),
            None
        );
        let no_identity = [kv("host.name", "h")];
        assert_eq!(
            ResourceLabels::new(&no_identity, &config).target_info_labels(&no_identity, &config),
            None
        );
        let full = [
            kv(SERVICE_NAME, "api"),
            kv(SERVICE_INSTANCE_ID, "i"),
            kv("host.name", "h"),
            kv("0os", "linux"),
        ];
        let labels =
            ResourceLabels::new(&full, &config).target_info_labels(&full, &config).unwrap();
        let pairs: Vec<(&str, &str)> =
            labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            [("host_name", "h"), ("instance", "i"), ("job", "api"), ("key_0os", "linux")]
        );
        let keep = OtlpMetricsConfig { keep_identifying_resource_attributes: true, ..config };
        let labels = ResourceLabels::new(&full, &keep).target_info_labels(&full, &keep).unwrap();
        assert_eq!(labels.get("service_name").map(String::as_str), Some("api"));
        assert_eq!(labels.get("service_instance_id").map(String::as_str), Some("i"));
    }
}
