//! Behaviour of each action, including the edge cases documented for Prometheus.

use super::*;
use crate::model::Labels;

fn rules(yaml: &str) -> Relabeler {
    let configs: Vec<RelabelConfig> = serde_yaml::from_str(yaml).expect("test YAML parses");
    Relabeler::new(&configs).expect("test rules are valid")
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

/// Runs `yaml` on `input`; `None` when dropped.
fn run(yaml: &str, input: &[(&str, &str)]) -> Option<Labels> {
    rules(yaml).process(&labels(input))
}

fn kept(yaml: &str, input: &[(&str, &str)]) -> Labels {
    run(yaml, input).expect("series should be kept")
}

#[test]
fn replace_with_defaults_copies_the_source() {
    let out = kept("- {source_labels: [a], target_label: b}", &[("a", "foo")]);
    assert_eq!(out, labels(&[("a", "foo"), ("b", "foo")]));
}

#[test]
fn replace_without_match_changes_nothing() {
    let yaml = "- {source_labels: [a], regex: 'f(.*)', target_label: b, replacement: x}";
    assert_eq!(kept(yaml, &[("a", "bar")]), labels(&[("a", "bar")]));
}

#[test]
fn replace_joins_sources_with_missing_as_empty() {
    let yaml = "- source_labels: [a, missing, b]\n  regex: '(.*);;(.*)'\n  target_label: c\n  \
                replacement: $1-$2\n";
    let out = kept(yaml, &[("a", "x"), ("b", "y")]);
    assert_eq!(out.get("c"), Some("x-y"));
    let yaml = "- {source_labels: [a, b], separator: '', target_label: c}";
    assert_eq!(kept(yaml, &[("a", "x"), ("b", "y")]).get("c"), Some("xy"));
}

#[test]
fn replace_adds_a_static_label() {
    // The default regex matches the empty input of a missing label.
    let yaml = "- {target_label: env, replacement: prod}";
    assert_eq!(kept(yaml, &[("a", "1")]), labels(&[("a", "1"), ("env", "prod")]));
    let yaml = "- {source_labels: [missing], regex: '(.+)', target_label: env, replacement: prod}";
    assert_eq!(kept(yaml, &[("a", "1")]), labels(&[("a", "1")]));
}

#[test]
fn regex_is_fully_anchored() {
    let yaml = "- {source_labels: [a], regex: foo, target_label: hit, replacement: 'yes'}";
    assert_eq!(kept(yaml, &[("a", "foobar")]).get("hit"), None);
    assert_eq!(kept(yaml, &[("a", "xfoo")]).get("hit"), None);
    assert_eq!(kept(yaml, &[("a", "foo")]).get("hit"), Some("yes"));
    let yaml = "- {source_labels: [a], regex: 'foo|bar', action: keep}";
    assert!(run(yaml, &[("a", "foobar")]).is_none());
}

#[test]
fn dot_matches_newlines() {
    let yaml = "- {source_labels: [a], regex: 'x.y', target_label: hit, replacement: 'yes'}";
    assert_eq!(kept(yaml, &[("a", "x\ny")]).get("hit"), Some("yes"));
    let yaml = "- {source_labels: [a], regex: '(.*)-(.*)', target_label: b, replacement: $2}";
    assert_eq!(kept(yaml, &[("a", "l1\nl2-r1\nr2")]).get("b"), Some("r1\nr2"));
}

#[test]
fn invalid_expanded_target_is_skipped() {
    let yaml = "- {source_labels: [a], target_label: $1, replacement: v}";
    assert_eq!(kept(yaml, &[("a", "foo-bar")]), labels(&[("a", "foo-bar")]));
    assert_eq!(kept(yaml, &[("a", "1abc")]), labels(&[("a", "1abc")]));
    assert_eq!(kept(yaml, &[("a", "ok_name")]), labels(&[("a", "ok_name"), ("ok_name", "v")]));
    // Missing source: $1 is "", not a label name.
    assert_eq!(kept(yaml, &[("b", "1")]), labels(&[("b", "1")]));
}

#[test]
fn utf8_validation_accepts_any_expanded_target() {
    let configs: Vec<RelabelConfig> =
        serde_yaml::from_str("- {source_labels: [a], target_label: $1, replacement: v}").unwrap();
    let utf8 = Relabeler::with_validation(&configs, NameValidation::Utf8).unwrap();
    let out = utf8.process(&labels(&[("a", "foo.bar")])).unwrap();
    assert_eq!(out.get("foo.bar"), Some("v"));
    let legacy = Relabeler::new(&configs).unwrap();
    assert_eq!(legacy.process(&labels(&[("a", "foo.bar")])).unwrap().get("foo.bar"), None);
}

#[test]
fn empty_replacement_deletes_the_target() {
    let yaml = "- {source_labels: [a], target_label: b, replacement: ''}";
    assert_eq!(kept(yaml, &[("a", "x"), ("b", "old")]), labels(&[("a", "x")]));
    // $1 of an empty (missing) source is empty too.
    let yaml = "- {source_labels: [missing], target_label: b}";
    assert_eq!(kept(yaml, &[("a", "x"), ("b", "old")]), labels(&[("a", "x")]));
}

#[test]
fn template_forms() {
    let run_with = |replacement: &str| {
        let yaml = format!(
            "- {{source_labels: [a], regex: '(?P<word>[a-z]+)-(\\d+)', target_label: b, \
             replacement: '{replacement}'}}"
        );
        kept(&yaml, &[("a", "foo-42")]).get("b").map(str::to_owned)
    };
    assert_eq!(run_with("${1}x").as_deref(), Some("foox"));
    // `$1x` is the group named "1x", which does not exist: the label is deleted.
    assert_eq!(run_with("$1x"), None);
    assert_eq!(run_with("$$1").as_deref(), Some("$1"));
    assert_eq!(run_with("${word}:$2").as_deref(), Some("foo:42"));
    assert_eq!(run_with("$word$2").as_deref(), Some("foo42"));
    assert_eq!(run_with("$0").as_deref(), Some("foo-42"));
    assert_eq!(run_with("$01"), None);
}

#[test]
fn templated_target_label() {
    let yaml = "- source_labels: [addr]\n  regex: '(?P<host>[^:]+):(?P<port>\\d+)'\n  \
                target_label: port_$port\n  replacement: ${host}\n";
    let out = kept(yaml, &[("addr", "node1:9100")]);
    assert_eq!(out.get("port_9100"), Some("node1"));
}

#[test]
fn perl_classes_are_ascii_like_go() {
    let yaml = "- {source_labels: [a], regex: '(\\w+)', target_label: b}";
    assert_eq!(kept(yaml, &[("a", "café")]).get("b"), None);
    assert_eq!(kept(yaml, &[("a", "cafe")]).get("b"), Some("cafe"));
}

#[test]
fn keep_and_drop() {
    let keep = "- {source_labels: [__name__], regex: 'up|node_.*', action: keep}";
    assert!(run(keep, &[("__name__", "up")]).is_some());
    assert!(run(keep, &[("__name__", "node_load1")]).is_some());
    assert!(run(keep, &[("__name__", "go_gc")]).is_none());
    let drop = "- {source_labels: [__name__], regex: 'go_.*', action: drop}";
    assert!(run(drop, &[("__name__", "go_gc")]).is_none());
    assert!(run(drop, &[("__name__", "up")]).is_some());
    // A missing label is "": `.+` does not match it, the default `(.*)` does.
    assert!(run("- {source_labels: [x], regex: '.+', action: keep}", &[("a", "1")]).is_none());
    assert!(run("- {source_labels: [x], action: drop}", &[("a", "1")]).is_none());
}

#[test]
fn keepequal_and_dropequal() {
    let keep = "- {source_labels: [a], target_label: b, action: keepequal}";
    assert!(run(keep, &[("a", "1"), ("b", "1")]).is_some());
    assert!(run(keep, &[("a", "1"), ("b", "2")]).is_none());
    assert!(run(keep, &[("a", "1")]).is_none());
    // Both missing: "" == "".
    assert!(run(keep, &[("c", "1")]).is_some());
    let drop = "- {source_labels: [a], target_label: b, action: dropequal}";
    assert!(run(drop, &[("a", "1"), ("b", "1")]).is_none());
    assert!(run(drop, &[("a", "1"), ("b", "2")]).is_some());
    let joined = "- {source_labels: [a, b], target_label: c, action: keepequal}";
    assert!(run(joined, &[("a", "x"), ("b", "y"), ("c", "x;y")]).is_some());
}

#[test]
fn hashmod_known_values() {
    // md5("foo") = acbd18db 4cc2f85c edef654f ccc4a4d8; the last 8 bytes big-endian are
    // 0xedef654fccc4a4d8 = 17145033699835028696, and 17145033699835028696 mod 1000 = 696.
    let yaml = "- {source_labels: [a], modulus: 1000, target_label: shard, action: hashmod}";
    assert_eq!(kept(yaml, &[("a", "foo")]).get("shard"), Some("696"));
    // Prometheus' own test: md5("baz") ends in 0xe44cf984c85f6e88 = 16450797887570275976 -> 976.
    assert_eq!(kept(yaml, &[("a", "baz")]).get("shard"), Some("976"));
    // md5("a;b") ends in 0x21960bf46f2ebd0a = 2420134994223480074 -> mod 10 = 4.
    let yaml = "- {source_labels: [a, b], modulus: 10, target_label: shard, action: hashmod}";
    assert_eq!(kept(yaml, &[("a", "a"), ("b", "b")]).get("shard"), Some("4"));
    // md5("") ends in 0xe9800998ecf8427e = 16825458760271544958 -> mod 10 = 8: the target is set
    // even when the source is missing.
    let yaml = "- {source_labels: [a], modulus: 10, target_label: shard, action: hashmod}";
    assert_eq!(kept(yaml, &[("c", "1")]).get("shard"), Some("8"));
    // Modulus 1 always yields "0".
    let yaml = "- {source_labels: [a], modulus: 1, target_label: shard, action: hashmod}";
    assert_eq!(kept(yaml, &[("a", "foo")]).get("shard"), Some("0"));
}

#[test]
fn labelmap_kubernetes_pod_labels() {
    let yaml = "- {regex: '__meta_kubernetes_pod_label_(.+)', action: labelmap}";
    let out = kept(
        yaml,
        &[
            ("__meta_kubernetes_pod_label_app", "web"),
            ("__meta_kubernetes_pod_label_tier", "db"),
            ("__meta_kubernetes_namespace", "prod"),
        ],
    );
    assert_eq!(
        out,
        labels(&[
            ("__meta_kubernetes_namespace", "prod"),
            ("__meta_kubernetes_pod_label_app", "web"),
            ("__meta_kubernetes_pod_label_tier", "db"),
            ("app", "web"),
            ("tier", "db"),
        ])
    );
    let yaml = "- {regex: 'pod_(.+)', replacement: 'k8s_${1}', action: labelmap}";
    assert_eq!(kept(yaml, &[("pod_app", "web")]).get("k8s_app"), Some("web"));
}

#[test]
fn labelmap_collisions_follow_builder_order() {
    // Both map to "x": untouched labels are visited in sorted order, so b_x wins.
    let yaml = "- {regex: '[ab]_(x)', action: labelmap}";
    assert_eq!(kept(yaml, &[("a_x", "1"), ("b_x", "2")]).get("x"), Some("2"));
    // A label written by an earlier rule is visited after the untouched ones, so a_x wins now.
    let yaml = "- {target_label: a_x, replacement: '3'}\n- {regex: '[ab]_(x)', action: labelmap}";
    assert_eq!(kept(yaml, &[("a_x", "1"), ("b_x", "2")]).get("x"), Some("3"));
    // Values are those at the start of the rule: "a" first writes 1 to x, then "x" (visited
    // later) writes back its own original value.
    let yaml = "- {regex: '(a|x)', replacement: x, action: labelmap}";
    assert_eq!(kept(yaml, &[("a", "1"), ("x", "2")]).get("x"), Some("2"));
}

#[test]
fn labelmap_does_not_validate_new_names() {
    // As in Prometheus, the mapped name is used as is, even when it is not a valid name.
    let yaml = "- {regex: 'a_(.*)', action: labelmap}";
    assert_eq!(kept(yaml, &[("a_1", "v")]), labels(&[("1", "v"), ("a_1", "v")]));
}

#[test]
fn labeldrop_and_labelkeep() {
    let input = [("__name__", "up"), ("job", "node"), ("tmp_a", "1"), ("tmp_b", "2")];
    assert_eq!(
        kept("- {regex: 'tmp_.*', action: labeldrop}", &input),
        labels(&[("__name__", "up"), ("job", "node")])
    );
    assert_eq!(
        kept("- {regex: '__name__', action: labeldrop}", &input),
        labels(&[("job", "node"), ("tmp_a", "1"), ("tmp_b", "2")])
    );
    assert_eq!(
        kept("- {regex: '__name__|job', action: labelkeep}", &input),
        labels(&[("__name__", "up"), ("job", "node")])
    );
    // Anchored: "tmp" alone matches nothing.
    assert_eq!(kept("- {regex: 'tmp', action: labeldrop}", &input), labels(&input));
}

#[test]
fn removing_every_label_keeps_an_empty_series() {
    let out = run("- {action: labeldrop}", &[("__name__", "up"), ("job", "a")]);
    assert_eq!(out, Some(Labels::default()));
    let out = run("- {regex: 'nothing', action: labelkeep}", &[("a", "1")]);
    assert_eq!(out, Some(Labels::default()));
}

#[test]
fn lowercase_and_uppercase() {
    let yaml = "- {source_labels: [a, b], target_label: lc, action: lowercase}\n\
                - {source_labels: [a, b], target_label: uc, action: uppercase}";
    let out = kept(yaml, &[("a", "FoO"), ("b", "Straße")]);
    assert_eq!(out.get("lc"), Some("foo;straße"));
    assert_eq!(out.get("uc"), Some("FOO;STRAßE"));
    // An empty input deletes the target.
    let yaml = "- {source_labels: [missing], target_label: a, action: lowercase}";
    assert_eq!(kept(yaml, &[("a", "X"), ("b", "1")]), labels(&[("b", "1")]));
}

#[test]
fn chained_rules_see_earlier_writes() {
    let yaml = r#"
- source_labels: [__address__]
  regex: '([^:]+):\d+'
  target_label: host
- source_labels: [host]
  modulus: 4
  target_label: __tmp_shard
  action: hashmod
- source_labels: [__tmp_shard]
  regex: '[0-3]'
  action: keep
- source_labels: [host]
  target_label: HOST
  action: uppercase
- regex: '__tmp_.*|__address__'
  action: labeldrop
"#;
    let out = kept(yaml, &[("__address__", "node1:9100"), ("job", "n")]);
    assert_eq!(out, labels(&[("HOST", "NODE1"), ("host", "node1"), ("job", "n")]));
}

#[test]
fn dropping_stops_processing() {
    let yaml =
        "- {source_labels: [a], regex: x, action: drop}\n- {target_label: b, replacement: y}";
    assert_eq!(run(yaml, &[("a", "x")]), None);
    assert_eq!(run(yaml, &[("a", "z")]), Some(labels(&[("a", "z"), ("b", "y")])));
}

#[test]
fn deleted_then_rewritten_label_is_current() {
    let yaml = "- {regex: a, action: labeldrop}\n\
                - {source_labels: [a], target_label: seen, replacement: 'was ${1}.'}\n\
                - {target_label: a, replacement: new}\n\
                - {source_labels: [a], target_label: b}";
    let out = kept(yaml, &[("a", "old")]);
    assert_eq!(out, labels(&[("a", "new"), ("b", "new"), ("seen", "was .")]));
}

#[test]
fn unchanged_series_is_returned_as_is() {
    let yaml = "- {source_labels: [a], regex: nomatch, target_label: b}\n\
                - {source_labels: [a], regex: '.*', action: keep}";
    let input = labels(&[("__name__", "up"), ("a", "1")]);
    assert_eq!(rules(yaml).process(&input), Some(input));
}
