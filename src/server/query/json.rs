//! JSON of the Prometheus HTTP API, written by hand as Prometheus' jsoniter encoders write it
//! (`web/api/v1/json_codec.go`, `util/jsonutil/marshal.go`):
//!
//! * envelope `{"status":"success","data":…,"warnings":[…],"infos":[…]}` (empty lists left
//!   out), errors `{"status":"error","errorType":…,"error":…}`;
//! * a time is float seconds written from the integer milliseconds (`1435781451.781`, `10`),
//!   never through a float, so it is exact;
//! * a value is a string in Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest round-trip
//!   digits, no exponent, `NaN`, `+Inf`, `-Inf`;
//! * label sets are objects in label order.

use std::fmt::Write as _;

use crate::model::labels::Labels;
use crate::promql::{Annotations, Point, Sample, Series, Value};

/// Appends `text` as a JSON string, escaped as Go's `encoding/json` does.
pub(crate) use crate::ingest::otlp::attributes::push_json_string as push_str;

/// Appends a timestamp in milliseconds as float seconds (`marshalTimestamp`).
pub fn push_time(out: &mut String, t_ms: i64) {
    if t_ms < 0 {
        out.push('-');
    }
    let magnitude = t_ms.unsigned_abs();
    let _ = write!(out, "{}", magnitude / 1000);
    let fraction = magnitude % 1000;
    if fraction != 0 {
        let digits = format!("{fraction:03}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

pub use crate::promql::value::format_value;

fn push_point(out: &mut String, t_ms: i64, v: f64) {
    out.push('[');
    push_time(out, t_ms);
    out.push_str(",\"");
    out.push_str(&format_value(v));
    out.push_str("\"]");
}

/// Appends a label set as a JSON object.
pub fn push_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, label) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, &label.name);
        out.push(':');
        push_str(out, &label.value);
    }
    out.push('}');
}

fn push_sample(out: &mut String, sample: &Sample) {
    out.push_str("{\"metric\":");
    push_labels(out, &sample.labels);
    out.push_str(",\"value\":");
    push_point(out, sample.t, sample.v);
    out.push('}');
}

fn push_series(out: &mut String, series: &Series) {
    out.push_str("{\"metric\":");
    push_labels(out, &series.labels);
    out.push_str(",\"values\":[");
    for (i, Point { t, v }) in series.points.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_point(out, *t, *v);
    }
    out.push_str("]}");
}

/// `{"resultType":…,"result":…}` of a query.
pub fn query_data(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"resultType\":");
    push_str(&mut out, value.type_name());
    out.push_str(",\"result\":");
    match value {
        Value::Scalar { t, v } => push_point(&mut out, *t, *v),
        Value::String { t, v } => {
            out.push('[');
            push_time(&mut out, *t);
            out.push(',');
            push_str(&mut out, v);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push('[');
            for (i, sample) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_sample(&mut out, sample);
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push('[');
            for (i, one) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_series(&mut out, one);
            }
            out.push(']');
        }
    }
    out.push('}');
    out
}

/// A JSON array of strings.
pub fn string_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(&mut out, item);
    }
    out.push(']');
    out
}

/// The success envelope around already-encoded `data`.
pub fn success(data: &str, annotations: &Annotations) -> String {
    let mut out = String::with_capacity(data.len() + 64);
    out.push_str("{\"status\":\"success\",\"data\":");
    out.push_str(data);
    for (key, list) in [("warnings", &annotations.warnings), ("infos", &annotations.infos)] {
        if !list.is_empty() {
            let _ = write!(out, ",\"{key}\":");
            out.push_str(&string_list(list.iter().map(String::as_str)));
        }
    }
    out.push('}');
    out
}

/// The error envelope.
pub fn error(error_type: &str, message: &str, annotations: &Annotations) -> String {
    let mut out = String::from("{\"status\":\"error\",\"errorType\":");
    push_str(&mut out, error_type);
    out.push_str(",\"error\":");
    push_str(&mut out, message);
    for (key, list) in [("warnings", &annotations.warnings), ("infos", &annotations.infos)] {
        if !list.is_empty() {
            let _ = write!(out, ",\"{key}\":");
            out.push_str(&string_list(list.iter().map(String::as_str)));
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(t_ms: i64) -> String {
        let mut out = String::new();
        push_time(&mut out, t_ms);
        out
    }

    #[test]
    fn times_are_exact_float_seconds() {
        assert_eq!(time(1_435_781_451_781), "1435781451.781");
        assert_eq!(time(10_000), "10");
        assert_eq!(time(1_500), "1.5");
        assert_eq!(time(1_050), "1.05");
        assert_eq!(time(1_005), "1.005");
        assert_eq!(time(-1_500), "-1.5");
        assert_eq!(time(0), "0");
    }

    #[test]
    fn values_are_go_f_format() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(1e-7), "0.0000001");
        assert_eq!(format_value(1e22), "10000000000000000000000");
        assert_eq!(format_value(-0.0), "-0");
        assert_eq!(format_value(1_700_000_000.123), "1700000000.123");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn results_have_prometheus_shapes() {
        let labels = Labels::from_pairs([("__name__", "up"), ("job", "a\"b")]);
        let vector = Value::Vector(vec![Sample { labels: labels.clone(), t: 1_500, v: 1.0 }]);
        assert_eq!(
            query_data(&vector),
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a\"b"},"value":[1.5,"1"]}]}"#
        );
        let matrix = Value::Matrix(vec![Series {
            labels,
            points: vec![Point { t: 0, v: f64::NAN }, Point { t: 15_000, v: 2.5 }],
        }]);
        assert_eq!(
            query_data(&matrix),
            r#"{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a\"b"},"values":[[0,"NaN"],[15,"2.5"]]}]}"#
        );
        assert_eq!(
            query_data(&Value::Scalar { t: 1_000, v: 3.0 }),
            r#"{"resultType":"scalar","result":[1,"3"]}"#
        );
        assert_eq!(
            query_data(&Value::String { t: 1_000, v: "s".into() }),
            r#"{"resultType":"string","result":[1,"s"]}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&query_data(&matrix)).unwrap();
        assert_eq!(parsed["result"][0]["values"][1][1], "2.5");
    }

    #[test]
    fn envelopes_leave_out_empty_annotations() {
        let mut annotations = Annotations::default();
        assert_eq!(success("[]", &annotations), r#"{"status":"success","data":[]}"#);
        annotations.warn("w");
        annotations.info("i");
        assert_eq!(
            success("[]", &annotations),
            r#"{"status":"success","data":[],"warnings":["w"],"infos":["i"]}"#
        );
        assert_eq!(
            error("bad_data", "x \"y\"", &Annotations::default()),
            r#"{"status":"error","errorType":"bad_data","error":"x \"y\""}"#
        );
    }
}
