use super::*;
use crate::model::labels::Labels;

fn run(text: &str) -> String {
    let labels = Labels::from_pairs([("instance", "host-1.example.com:9100"), ("job", "node")]);
    let external = Labels::from_pairs([("cluster", "eu1")]);
    let data = alert_data(&labels, &external, "http://prom.example.com/prefix", 1234.5678);
    let query = |q: &str| -> Result<Vec<Value>, String> {
        Ok(vec![
            Value::sample([("__name__", "up"), ("job", q)], 1.0),
            Value::sample([("job", "a")], 0.5),
        ])
    };
    let template = Template::parse("__alert_Test", text).unwrap_or_else(|e| panic!("{e}"));
    template
        .execute(&data, Some(&query), "http://prom.example.com/prefix")
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn labels_values_and_variables() {
    assert_eq!(
        run("{{ $labels.instance }} of {{ .Labels.job }} = {{ $value }}"),
        "host-1.example.com:9100 of node = 1234.5678"
    );
    assert_eq!(
        run("{{ $externalLabels.cluster }} {{ $externalURL }}"),
        "eu1 http://prom.example.com/prefix"
    );
    assert_eq!(run("[{{ $labels.missing }}]"), "[]");
    assert_eq!(run("{{ $x := 5 }}{{ $x }}{{ $x = 6 }}{{ $x }}"), "56");
}

#[test]
fn trim_markers_and_comments() {
    assert_eq!(run("a  {{- /* c */ -}}  b"), "ab");
    assert_eq!(run("a {{- \"x\" }} b"), "ax b");
}

#[test]
fn control_structures() {
    assert_eq!(
        run("{{ if gt $value 1000.0 }}big{{ else if gt $value 1.0 }}mid{{ else }}small{{ end }}"),
        "big"
    );
    assert_eq!(run("{{ if eq $labels.job \"x\" \"node\" }}yes{{ end }}"), "yes");
    assert_eq!(
        run("{{ range $i, $s := query \"q\" }}{{ $i }}:{{ .Labels.job }}={{ .Value }};{{ end }}"),
        "0:q=1;1:a=0.5;"
    );
    assert_eq!(run("{{ with $labels.job }}job={{ . }}{{ end }}{{ with $labels.none }}x{{ else }}none{{ end }}"), "job=nodenone");
    assert_eq!(run("{{ range $k, $v := $labels }}{{ $k }},{{ end }}"), "instance,job,");
    assert_eq!(run("{{ define \"t\" }}<{{ . }}>{{ end }}{{ template \"t\" $labels.job }}{{ tmpl \"t\" 1 }}"), "<node><1>");
    assert_eq!(run("{{ if and (not false) (or 0 \"x\") }}ok{{ end }} {{ len $labels }} {{ index $labels \"job\" }}"), "ok 2 node");
}

#[test]
fn prometheus_functions() {
    assert_eq!(
        run("{{ humanize 1234567.0 }} {{ humanize 0.001234 }} {{ humanize 0 }}"),
        "1.235M 1.234m 0"
    );
    assert_eq!(run("{{ humanize1024 1048576.0 }} {{ humanizePercentage 0.1234 }}"), "1Mi 12.34%");
    assert_eq!(run("{{ humanizeDuration 90061.0 }} {{ humanizeDuration 1.5 }} {{ humanizeDuration 0.012 }}"), "1d 1h 1m 1s 1.5s 12ms");
    assert_eq!(run("{{ humanizeTimestamp 1704067200.0 }}"), "2024-01-01 00:00:00 +0000 UTC");
    assert_eq!(run("{{ $value | printf \"%.2f\" }} {{ printf \"%d-%s\" 3 \"x\" }}"), "1234.57 3-x");
    assert_eq!(
        run("{{ toUpper \"ab\" }}{{ toLower \"CD\" }} {{ title \"hello world\" }}"),
        "ABcd Hello World"
    );
    assert_eq!(run("{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }} {{ match \"^host\" $labels.instance }}"), "host-1.example.com true");
    assert_eq!(
        run("{{ stripPort $labels.instance }} {{ stripDomain $labels.instance }}"),
        "host-1.example.com host-1:9100"
    );
    assert_eq!(run("{{ with query \"x\" }}{{ . | first | value }} {{ . | first | label \"job\" }}{{ end }}"), "1 x");
    assert_eq!(
        run("{{ range sortByLabel \"job\" (query \"z\") }}{{ label \"job\" . }}{{ end }}"),
        "az"
    );
    assert_eq!(run("{{ pathPrefix }} {{ externalURL }}"), "/prefix http://prom.example.com/prefix");
    assert_eq!(
        run("{{ parseDuration \"1m30s\" }} {{ toDuration 90.0 }} {{ toTime 0.0 }}"),
        "90 1m30s 1970-01-01 00:00:00 +0000 UTC"
    );
    assert_eq!(run("{{ (args 1 \"b\").arg1 }}"), "b");
}

#[test]
fn parse_errors_read_like_go() {
    let err = Template::parse("__alert_X", "x\n{{ $label.foo }}").unwrap_err();
    assert_eq!(err.to_string(), "template: __alert_X:2: undefined variable \"$label\"");
    let err = Template::parse("t", "{{ nosuch 1 }}").unwrap_err();
    assert_eq!(err.to_string(), "template: t:1: function \"nosuch\" not defined");
    assert!(Template::parse("t", "{{ if 1 }}").unwrap_err().to_string().contains("unexpected EOF"));
    assert!(Template::parse("t", "{{ end }}")
        .unwrap_err()
        .to_string()
        .contains("unexpected {{end}}"));
    assert!(Template::parse("t", "{{ 1 ").unwrap_err().to_string().contains("unclosed action"));
}

#[test]
fn arguments_to_a_field_are_an_execution_error() {
    let data = alert_data(&Labels::default(), &Labels::default(), "", 0.0);
    let template = Template::parse("t", "{{ $labels.job 1 }}").unwrap();
    let err = template.execute(&data, None, "").unwrap_err();
    assert_eq!(
        err.to_string(),
        "template: t:1: executing \"t\": can't give argument to non-function $labels.job"
    );
}

#[test]
fn execution_errors_become_the_annotation_text() {
    let data = alert_data(&Labels::default(), &Labels::default(), "", 0.0);
    let text = expand(
        "__alert_X",
        "{{ first (query \"up\") }}",
        &data,
        Some(&|_: &str| Ok(Vec::new())),
        "",
    );
    assert!(
        text.starts_with("<error expanding template: error executing template __alert_X: "),
        "{text}"
    );
    assert!(text.contains("first() called on vector with no elements"), "{text}");
}
