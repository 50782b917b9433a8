//! Prometheus rule files: parsing and validation.
//!
//! Format: <https://prometheus.io/docs/prometheus/latest/configuration/recording_rules/> (3.x),
//! `groups: [{name, interval, limit, query_offset, labels, rules: [{record|alert, expr, for,
//! keep_firing_for, labels, annotations}]}]`. The checks and their messages follow Prometheus'
//! `model/rulefmt/rulefmt.go` (`RuleGroups.Validate`, `RuleNode.Validate`) and promtool's
//! duplicate-rule lint (`cmd/promtool/main.go`, `checkDuplicates`).
//!
//! Unknown fields are errors, as with promtool unless `--ignore-unknown-fields` is given. Errors
//! carry no line numbers (serde_yaml's value tree has none); they name the file, group, rule
//! index and rule name as Prometheus does.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::config::units::PromDuration;
use crate::model::labels::Labels;

use super::template::Template;

/// The contents of one rule file.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RuleFile {
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
}

/// One `groups[]` entry.
#[derive(Clone, Debug, Deserialize)]
pub struct GroupSpec {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub interval: Option<PromDuration>,
    #[serde(default)]
    pub query_offset: Option<PromDuration>,
    /// Most series (recording) or alerts a rule may produce; 0 is no limit.
    #[serde(default)]
    pub limit: usize,
    /// Labels added to every rule of the group (a rule's own labels win).
    #[serde(default, deserialize_with = "scalar_map")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

/// One `rules[]` entry: a recording rule (`record`) or an alerting rule (`alert`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RuleSpec {
    #[serde(default, deserialize_with = "optional_scalar")]
    pub record: Option<String>,
    #[serde(default, deserialize_with = "optional_scalar")]
    pub alert: Option<String>,
    #[serde(default, deserialize_with = "scalar")]
    pub expr: String,
    #[serde(default, rename = "for")]
    pub for_duration: Option<PromDuration>,
    #[serde(default)]
    pub keep_firing_for: Option<PromDuration>,
    #[serde(default, deserialize_with = "scalar_map")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "scalar_map")]
    pub annotations: BTreeMap<String, String>,
}

/// YAML scalars (`expr: 1`, `severity: 2`, `x: true`) read as text, as Go's yaml.v3 does for
/// string fields.
fn scalar_text(value: serde_yaml::Value) -> Result<String, String> {
    match value {
        serde_yaml::Value::String(s) => Ok(s),
        serde_yaml::Value::Number(n) => Ok(n.to_string()),
        serde_yaml::Value::Bool(b) => Ok(b.to_string()),
        serde_yaml::Value::Null => Ok(String::new()),
        other => Err(format!("cannot unmarshal {other:?} into a string")),
    }
}

fn scalar<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    scalar_text(serde_yaml::Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
}

fn optional_scalar<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    scalar(deserializer).map(Some)
}

fn scalar_map<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let map = Option::<BTreeMap<String, serde_yaml::Value>>::deserialize(deserializer)?;
    map.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| scalar_text(v).map(|text| (k, text)))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

impl RuleSpec {
    /// The record or alert name.
    pub fn name(&self) -> &str {
        self.record.as_deref().or(self.alert.as_deref()).unwrap_or("")
    }
}

/// A problem found in a rule file, in Prometheus' words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleFileError {
    pub file: String,
    pub message: String,
}

impl fmt::Display for RuleFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

impl std::error::Error for RuleFileError {}

const GROUP_FIELDS: [&str; 6] = ["name", "interval", "query_offset", "limit", "labels", "rules"];
const RULE_FIELDS: [&str; 7] =
    ["record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"];

/// Reads, parses and validates one rule file.
pub fn load_file(path: &Path, ignore_unknown_fields: bool) -> Result<RuleFile, Vec<RuleFileError>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![RuleFileError { file: file.clone(), message: e.to_string() }])?;
    parse(&file, &text, ignore_unknown_fields)
}

/// Parses and validates the text of a rule file named `file` (used in messages).
pub fn parse(
    file: &str,
    text: &str,
    ignore_unknown_fields: bool,
) -> Result<RuleFile, Vec<RuleFileError>> {
    let error = |message: String| vec![RuleFileError { file: file.to_owned(), message }];
    let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| error(e.to_string()))?;
    if value.is_null() {
        return Ok(RuleFile::default());
    }
    if !ignore_unknown_fields {
        let unknown = unknown_fields(&value);
        if !unknown.is_empty() {
            return Err(unknown
                .into_iter()
                .map(|message| RuleFileError { file: file.to_owned(), message })
                .collect());
        }
    }
    let rule_file: RuleFile = serde_yaml::from_value(value).map_err(|e| error(e.to_string()))?;
    let errors = validate(&rule_file);
    if errors.is_empty() {
        return Ok(rule_file);
    }
    Err(errors
        .into_iter()
        .map(|message| RuleFileError { file: file.to_owned(), message })
        .collect())
}

/// yaml.v3 strict decoding's "field X not found in type Y" for every unknown key.
fn unknown_fields(value: &serde_yaml::Value) -> Vec<String> {
    let mut found = Vec::new();
    let Some(top) = value.as_mapping() else {
        return found;
    };
    for key in top.keys() {
        let name = key.as_str().unwrap_or_default();
        if name != "groups" {
            found.push(format!("field {name} not found in type rulefmt.RuleGroups"));
        }
    }
    let groups = top.get("groups").and_then(|g| g.as_sequence()).cloned().unwrap_or_default();
    for group in &groups {
        let Some(group) = group.as_mapping() else { continue };
        for key in group.keys() {
            let name = key.as_str().unwrap_or_default();
            if !GROUP_FIELDS.contains(&name) {
                found.push(format!("field {name} not found in type rulefmt.RuleGroup"));
            }
        }
        let rules = group.get("rules").and_then(|r| r.as_sequence()).cloned().unwrap_or_default();
        for rule in &rules {
            let Some(rule) = rule.as_mapping() else { continue };
            for key in rule.keys() {
                let name = key.as_str().unwrap_or_default();
                if !RULE_FIELDS.contains(&name) {
                    found.push(format!("field {name} not found in type rulefmt.Rule"));
                }
            }
        }
    }
    found
}

/// Every problem in the file, in file order.
pub fn validate(rule_file: &RuleFile) -> Vec<String> {
    let mut errors = Vec::new();
    let mut seen_groups: Vec<&str> = Vec::new();
    for group in &rule_file.groups {
        if group.name.is_empty() {
            errors.push("Groupname must not be empty".to_owned());
            continue;
        }
        if seen_groups.contains(&group.name.as_str()) {
            errors.push(format!("groupname: \"{}\" is repeated in the same file", group.name));
        }
        seen_groups.push(&group.name);
        for (name, value) in &group.labels {
            if let Some(message) = label_problem(name, value) {
                errors.push(format!("group {:?}: {message}", group.name));
            }
        }
        for (index, rule) in group.rules.iter().enumerate() {
            for message in validate_rule(rule) {
                errors.push(format!(
                    "group {:?}, rule {}, {:?}: {message}",
                    group.name,
                    index + 1,
                    rule.name()
                ));
            }
        }
    }
    errors
}

fn label_problem(name: &str, value: &str) -> Option<String> {
    if !is_valid_label_name(name) || name == "__name__" {
        return Some(format!("invalid label name: {name}"));
    }
    let _ = value; // Label values are UTF-8 by construction (YAML strings).
    None
}

fn validate_rule(rule: &RuleSpec) -> Vec<String> {
    let mut errors = Vec::new();
    match (&rule.record, &rule.alert) {
        (Some(_), Some(_)) => errors.push("only one of 'record' and 'alert' must be set".into()),
        (None, None) => errors.push("one of 'record' or 'alert' must be set".into()),
        _ => {}
    }
    if rule.expr.is_empty() {
        errors.push("field 'expr' must be set in rule".into());
    } else if let Err(e) = promql_parser::parser::parse(&rule.expr) {
        errors.push(format!("could not parse expression: {e}"));
    }
    if let Some(record) = &rule.record {
        if !rule.annotations.is_empty() {
            errors.push("invalid field 'annotations' in recording rule".into());
        }
        if rule.for_duration.is_some() {
            errors.push("invalid field 'for' in recording rule".into());
        }
        if rule.keep_firing_for.is_some() {
            errors.push("invalid field 'keep_firing_for' in recording rule".into());
        }
        if !is_valid_metric_name(record) {
            errors.push(format!("invalid recording rule name: {record}"));
        }
    }
    for (name, value) in &rule.labels {
        if let Some(message) = label_problem(name, value) {
            errors.push(message);
        }
    }
    for name in rule.annotations.keys() {
        if !is_valid_label_name(name) {
            errors.push(format!("invalid annotation name: {name}"));
        }
    }
    if let Some(alert) = &rule.alert {
        // Prometheus parses every label and annotation template of an alerting rule
        // (`testTemplateParsing`) so a broken template fails the load, not the evaluation.
        let template_name = format!("__alert_{alert}");
        for (name, text) in &rule.labels {
            if let Err(e) = Template::parse(&template_name, text) {
                errors.push(format!("label {name:?}: {e}"));
            }
        }
        for (name, text) in &rule.annotations {
            if let Err(e) = Template::parse(&template_name, text) {
                errors.push(format!("annotation {name:?}: {e}"));
            }
        }
    }
    errors
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`: the classic metric-name rule.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`: the classic label-name rule.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A rule that records or alerts the same series as an earlier one (promtool's lint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateRule {
    pub metric: String,
    pub labels: Labels,
}

/// Rules with the same name and labels (group labels included) over all groups, each reported
/// once however many copies there are (promtool's `checkDuplicates`: sort, compare neighbours).
pub fn duplicate_rules(rule_file: &RuleFile) -> Vec<DuplicateRule> {
    let mut all: Vec<DuplicateRule> = rule_file
        .groups
        .iter()
        .flat_map(|g| g.rules.iter().map(move |r| (g, r)))
        .map(|(g, r)| {
            let mut labels = g.labels.clone();
            labels.extend(r.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            DuplicateRule { metric: r.name().to_owned(), labels: Labels::from_pairs(labels) }
        })
        .collect();
    all.sort_by(|a, b| a.metric.cmp(&b.metric).then_with(|| a.labels.cmp(&b.labels)));
    let mut duplicates: Vec<DuplicateRule> = Vec::new();
    for pair in all.windows(2) {
        if pair[0] == pair[1] && duplicates.last() != Some(&pair[1]) {
            duplicates.push(pair[1].clone());
        }
    }
    duplicates
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(text: &str) -> Vec<String> {
        parse("f.yml", text, false).unwrap_err().into_iter().map(|e| e.message).collect()
    }

    #[test]
    fn accepts_a_valid_file() {
        let file = parse(
            "f.yml",
            "groups:\n- name: g\n  interval: 30s\n  rules:\n  - record: a:b\n    expr: sum(up)\n  - alert: X\n    expr: up == 0\n    for: 5m\n    annotations:\n      summary: '{{ $labels.job }} down'\n",
            false,
        )
        .unwrap();
        assert_eq!(file.groups[0].rules.len(), 2);
        assert_eq!(file.groups[0].interval, Some(PromDuration::from_secs(30)));
    }

    #[test]
    fn rejects_unknown_fields_unless_told_to_ignore_them() {
        let text = "groups:\n- name: g\n  namespace: x\n  rules:\n  - record: a\n    expr: up\n";
        assert_eq!(errors_of(text), ["field namespace not found in type rulefmt.RuleGroup"]);
        assert!(parse("f.yml", text, true).is_ok());
    }

    #[test]
    fn reports_rule_problems_in_prometheus_words() {
        let text = "groups:\n- name: g\n  rules:\n  - record: 'bad name'\n    alert: A\n    expr: 'test +'\n  - record: r\n    expr: up\n    for: 1m\n- name: g\n  rules: []\n";
        let errors = errors_of(text);
        assert!(errors[0].contains("only one of 'record' and 'alert' must be set"), "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("could not parse expression")), "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("invalid recording rule name: bad name")));
        assert!(errors.iter().any(|e| e.contains("rule 2, \"r\": invalid field 'for'")));
        assert!(errors.iter().any(|e| e == "groupname: \"g\" is repeated in the same file"));
    }

    #[test]
    fn rejects_templates_that_do_not_parse() {
        let text = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n      s: '{{ $label.foo }}'\n";
        let errors = errors_of(text);
        assert!(errors[0].contains("undefined variable \"$label\""), "{errors:?}");
    }

    #[test]
    fn finds_duplicates_across_groups() {
        let text = "groups:\n- name: a\n  rules:\n  - record: x\n    expr: up\n  - record: x\n    expr: up\n- name: b\n  rules:\n  - record: x\n    expr: up\n  - record: x\n    expr: up\n    labels: {a: b}\n";
        let file = parse("f.yml", text, false).unwrap();
        let duplicates = duplicate_rules(&file);
        assert_eq!(duplicates, [DuplicateRule { metric: "x".into(), labels: Labels::default() }]);
    }
}
