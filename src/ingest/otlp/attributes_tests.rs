//! Tests of the attribute rendering, the labels ↔ attributes mapping and `ResourceRelabeler`.

use super::*;
use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

fn value(v: any_value::Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(v) })
}

fn attribute(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: value(v), ..Default::default() }
}

fn text(v: any_value::Value) -> String {
    render(value(v).as_ref()).into_owned()
}

use any_value::Value as V;

#[test]
fn scalars_render_like_pcommon_as_string() {
    assert_eq!(text(V::StringValue("a b".into())), "a b");
    assert_eq!(text(V::IntValue(-42)), "-42");
    assert_eq!(text(V::BoolValue(true)), "true");
    assert_eq!(text(V::BoolValue(false)), "false");
    assert_eq!(text(V::BytesValue(vec![0xde, 0xad, 0xbe, 0xef, 1])), "3q2+7wE=");
    assert_eq!(render(None), "");
    assert_eq!(render(Some(&AnyValue { value: None })), "");
}

#[test]
fn doubles_render_like_go_encoding_json() {
    for (number, expected) in [
        (0.5, "0.5"),
        (3.0, "3"),
        (637.704, "637.704"),
        (-0.0, "-0"),
        (0.0, "0"),
        (123456789.0, "123456789"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.5e300, "1.5e+300"),
        (0.000001, "0.000001"),
        (1e-7, "1e-7"),
        (-2.5e-10, "-2.5e-10"),
        (0.1 + 0.2, "0.30000000000000004"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
    ] {
        assert_eq!(text(V::DoubleValue(number)), expected, "{number:?}");
    }
}

#[test]
fn arrays_and_maps_render_as_json() {
    let array = V::ArrayValue(ArrayValue {
        values: vec![
            AnyValue { value: Some(V::StringValue("many".into())) },
            AnyValue { value: Some(V::IntValue(1)) },
            AnyValue { value: Some(V::DoubleValue(1.5)) },
            AnyValue { value: Some(V::BoolValue(true)) },
            AnyValue { value: Some(V::BytesValue(vec![1, 2])) },
            AnyValue { value: Some(V::DoubleValue(f64::NAN)) },
            AnyValue { value: None },
        ],
    });
    assert_eq!(text(array), r#"["many",1,1.5,true,"AQI=","NaN",null]"#);
    let map = V::KvlistValue(KeyValueList {
        values: vec![
            attribute("z", V::StringValue("last".into())),
            attribute("a", V::StringValue("<b>\"q\"\n&".into())),
            attribute("z", V::StringValue("wins".into())),
            attribute("n", V::KvlistValue(KeyValueList { values: vec![] })),
        ],
    });
    assert_eq!(text(map), r#"{"a":"\u003cb\u003e\"q\"\n\u0026","n":{},"z":"wins"}"#);
}

#[test]
fn labels_skip_empty_keys_and_values_and_take_the_last_duplicate() {
    let labels = to_labels(&[
        attribute("service.name", V::StringValue("checkout".into())),
        attribute("", V::StringValue("x".into())),
        attribute("empty", V::StringValue(String::new())),
        attribute("port", V::IntValue(8080)),
        attribute("port", V::IntValue(9090)),
    ]);
    assert_eq!(labels, Labels::from_pairs([("port", "9090"), ("service.name", "checkout")]));
}

#[test]
fn labels_map_back_keeping_types_of_unchanged_values() {
    let original = vec![
        attribute("service.name", V::StringValue("checkout".into())),
        attribute("http.port", V::IntValue(8080)),
        attribute("debug", V::BoolValue(true)),
        attribute("tmp", V::StringValue("gone".into())),
        attribute("", V::StringValue("nameless".into())),
        attribute("empty", V::StringValue(String::new())),
    ];
    let relabeled = Labels::from_pairs([
        ("service.name", "checkout"),
        ("http.port", "9090"),
        ("debug", "true"),
        ("cluster", "eu-1"),
    ]);
    let rebuilt = from_labels(&original, &relabeled);
    assert_eq!(
        rebuilt,
        vec![
            attribute("service.name", V::StringValue("checkout".into())),
            attribute("http.port", V::StringValue("9090".into())),
            attribute("debug", V::BoolValue(true)),
            attribute("", V::StringValue("nameless".into())),
            attribute("empty", V::StringValue(String::new())),
            attribute("cluster", V::StringValue("eu-1".into())),
        ]
    );
    // The labels of the rebuilt attributes are exactly what the rules produced.
    assert_eq!(to_labels(&rebuilt), relabeled);
}

fn rules(yaml: &str) -> Vec<RelabelConfig> {
    serde_yaml::from_str(yaml).unwrap()
}

fn resource(attributes: Vec<KeyValue>) -> Arc<TraceResource> {
    Arc::new(TraceResource::new(Resource {
        attributes,
        dropped_attributes_count: 3,
        ..Default::default()
    }))
}

#[test]
fn empty_rules_return_the_same_resource() {
    let relabeler = ResourceRelabeler::new(&[], 10, &Catalog::new(), "test").unwrap();
    assert!(relabeler.is_empty());
    let input = resource(vec![attribute("a", V::IntValue(1))]);
    let output = relabeler.relabel(&input, &mut CacheTally::default()).unwrap();
    assert!(Arc::ptr_eq(&input, &output));
}

#[test]
fn rules_see_dotted_names_and_results_are_cached() {
    let catalog = Catalog::new();
    let relabeler = ResourceRelabeler::new(
        &rules(
            r#"
- source_labels: [service.name]
  regex: internal-.*
  action: drop
- source_labels: [k8s.namespace.name]
  target_label: namespace
- regex: host\..*
  action: labeldrop
"#,
        ),
        10,
        &catalog,
        "test",
    )
    .unwrap();
    let mut tally = CacheTally::default();
    let kept = resource(vec![
        attribute("service.name", V::StringValue("checkout".into())),
        attribute("k8s.namespace.name", V::StringValue("shop".into())),
        attribute("host.name", V::StringValue("node-1".into())),
        attribute("process.pid", V::IntValue(42)),
    ]);
    let output = relabeler.relabel(&kept, &mut tally).unwrap();
    assert_eq!(
        output.resource.attributes,
        vec![
            attribute("service.name", V::StringValue("checkout".into())),
            attribute("k8s.namespace.name", V::StringValue("shop".into())),
            attribute("process.pid", V::IntValue(42)),
            attribute("namespace", V::StringValue("shop".into())),
        ]
    );
    assert_eq!(output.resource.dropped_attributes_count, 3);
    assert_eq!(output.encoded, TraceResource::new(output.resource.clone()).encoded);
    let dropped = resource(vec![attribute("service.name", V::StringValue("internal-x".into()))]);
    assert!(relabeler.relabel(&dropped, &mut tally).is_none());
    // Unchanged by the rules: the input itself comes back.
    let untouched = resource(vec![attribute("service.name", V::StringValue("cart".into()))]);
    assert!(Arc::ptr_eq(&relabeler.relabel(&untouched, &mut tally).unwrap(), &untouched));
    assert_eq!((tally.hits, tally.misses), (0, 3));
    let again = relabeler.relabel(&kept, &mut tally).unwrap();
    assert!(Arc::ptr_eq(&again, &output), "a hit returns the cached result");
    assert_eq!((tally.hits, tally.misses), (1, 3));
    relabeler.record(tally);
    assert!(Arc::ptr_eq(&relabeler.relabel_one(&kept).unwrap(), &output));
    let text = catalog.encode_text();
    assert!(text.contains(r#"strata_relabel_cache_hits_total{cache="test"} 2"#), "{text}");
    assert!(text.contains(r#"strata_relabel_cache_misses_total{cache="test"} 3"#), "{text}");
}
