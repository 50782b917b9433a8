//! The raw `relabel_config` as users write it in YAML, field for field the Prometheus one.
//!
//! Parsing follows Prometheus' YAML decoding: absent fields take the Prometheus defaults, fields
//! written as `null` (or with no value) take the *zero* value (`regex:` is the empty regex,
//! `replacement:` the empty string), action names are case-insensitive, and unknown fields are
//! rejected. Semantic checks happen in [`Relabeler::new`](super::Relabeler::new), which reports
//! them with the index of the offending rule.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The default `separator`.
pub const DEFAULT_SEPARATOR: &str = ";";
/// The default `regex`.
pub const DEFAULT_REGEX: &str = "(.*)";
/// The default `replacement`.
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// One relabeling rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator`; a missing label contributes "".
    #[serde(default, deserialize_with = "null_as_zero")]
    pub source_labels: Vec<String>,
    #[serde(default = "default_separator", deserialize_with = "null_as_zero")]
    pub separator: String,
    /// Label written by `replace`, `hashmod`, `lowercase`, `uppercase`; compared by `keepequal`
    /// and `dropequal`. May contain `$1`-style references for `replace`.
    #[serde(default, deserialize_with = "null_as_zero")]
    pub target_label: String,
    /// RE2 syntax, implicitly anchored at both ends.
    #[serde(default = "default_regex", deserialize_with = "null_as_zero")]
    pub regex: String,
    #[serde(default, deserialize_with = "null_as_zero")]
    pub modulus: u64,
    #[serde(default = "default_replacement", deserialize_with = "null_as_zero")]
    pub replacement: String,
    #[serde(default, deserialize_with = "non_null_action")]
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        Self {
            source_labels: Vec::new(),
            separator: default_separator(),
            target_label: String::new(),
            regex: default_regex(),
            modulus: 0,
            replacement: default_replacement(),
            action: Action::Replace,
        }
    }
}

fn default_separator() -> String {
    DEFAULT_SEPARATOR.to_owned()
}

fn default_regex() -> String {
    DEFAULT_REGEX.to_owned()
}

fn default_replacement() -> String {
    DEFAULT_REPLACEMENT.to_owned()
}

/// A field written as `null` decodes to its zero value, as with Go's YAML decoder.
fn null_as_zero<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

fn non_null_action<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Action, D::Error> {
    Option::<Action>::deserialize(deserializer)?
        .ok_or_else(|| serde::de::Error::custom("relabel action cannot be empty"))
}

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Action {
    /// Writes the expanded `replacement` to the expanded `target_label` when `regex` matches the
    /// joined source value.
    #[default]
    Replace,
    /// Drops the series unless `regex` matches the joined source value.
    Keep,
    /// Drops the series when `regex` matches the joined source value.
    Drop,
    /// Drops the series unless the joined source value equals the value of `target_label`.
    KeepEqual,
    /// Drops the series when the joined source value equals the value of `target_label`.
    DropEqual,
    /// Sets `target_label` to a hash of the joined source value modulo `modulus`.
    HashMod,
    /// Copies every label whose name matches `regex` to the name given by `replacement`.
    LabelMap,
    /// Removes every label whose name matches `regex`.
    LabelDrop,
    /// Removes every label whose name does not match `regex`.
    LabelKeep,
    /// Sets `target_label` to the lower-cased joined source value.
    Lowercase,
    /// Sets `target_label` to the upper-cased joined source value.
    Uppercase,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ];

    /// The configuration name, e.g. `"keepequal"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    /// Parses a configuration name; like Prometheus, case does not matter.
    pub fn from_name(name: &str) -> Option<Action> {
        let lower = super::gocompat::go_to_lower(name);
        Action::ALL.into_iter().find(|action| action.as_str() == lower)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Action::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown relabel action {name:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Vec<RelabelConfig>, serde_yaml::Error> {
        serde_yaml::from_str(yaml)
    }

    #[test]
    fn defaults_match_prometheus() {
        let configs = parse("- target_label: foo\n").unwrap();
        assert_eq!(
            configs,
            vec![RelabelConfig { target_label: "foo".into(), ..RelabelConfig::default() }]
        );
        let default = RelabelConfig::default();
        assert_eq!(default.separator, ";");
        assert_eq!(default.regex, "(.*)");
        assert_eq!(default.replacement, "$1");
        assert_eq!(default.modulus, 0);
        assert_eq!(default.action, Action::Replace);
        assert!(default.source_labels.is_empty());
        assert!(default.target_label.is_empty());
    }

    #[test]
    fn parses_prometheus_style_rules() {
        let yaml = r#"
- source_labels: [__name__]
  regex: 'foo.*'
  action: keep
- source_labels:
    - job
    - instance
  separator: "@"
  regex: (.+)@(.+)
  target_label: ${1}_x
  replacement: $2
- regex: tmp_.*
  action: labeldrop
- source_labels: [instance]
  modulus: 8
  target_label: shard
  action: hashmod
- regex: __meta_kubernetes_pod_label_(.+)
  action: labelmap
"#;
        let configs = parse(yaml).unwrap();
        assert_eq!(configs.len(), 5);
        assert_eq!(configs[0].source_labels, vec!["__name__"]);
        assert_eq!(configs[0].regex, "foo.*");
        assert_eq!(configs[0].action, Action::Keep);
        assert_eq!(configs[1].source_labels, vec!["job", "instance"]);
        assert_eq!(configs[1].separator, "@");
        assert_eq!(configs[1].target_label, "${1}_x");
        assert_eq!(configs[1].replacement, "$2");
        assert_eq!(configs[1].action, Action::Replace);
        assert_eq!(configs[2].action, Action::LabelDrop);
        assert_eq!(configs[3].modulus, 8);
        assert_eq!(configs[3].action, Action::HashMod);
        assert_eq!(configs[4].regex, "__meta_kubernetes_pod_label_(.+)");
        assert_eq!(configs[4].replacement, "$1");
    }

    #[test]
    fn every_action_name_parses_case_insensitively() {
        for action in Action::ALL {
            let lower = parse(&format!("- action: {action}\n")).unwrap();
            assert_eq!(lower[0].action, action);
            let upper = parse(&format!("- action: {}\n", action.as_str().to_uppercase())).unwrap();
            assert_eq!(upper[0].action, action);
        }
        assert_eq!(parse("- action: LabelDrop\n").unwrap()[0].action, Action::LabelDrop);
    }

    #[test]
    fn unknown_action_and_unknown_field_are_rejected() {
        let err = parse("- action: replce\n").unwrap_err().to_string();
        assert!(err.contains(r#"unknown relabel action "replce""#), "{err}");
        let err = parse("- action: ''\n").unwrap_err().to_string();
        assert!(err.contains(r#"unknown relabel action """#), "{err}");
        let err = parse("- action:\n").unwrap_err().to_string();
        assert!(err.contains("relabel action cannot be empty"), "{err}");
        let err = parse("- target_label: a\n  regexp: x\n").unwrap_err().to_string();
        assert!(err.contains("unknown field `regexp`"), "{err}");
        let err = parse("- modulus: -1\n").unwrap_err().to_string();
        assert!(err.contains("modulus"), "{err}");
        let err = parse("- source_labels: job\n").unwrap_err().to_string();
        assert!(err.contains("source_labels"), "{err}");
    }

    #[test]
    fn null_fields_take_zero_values_like_go() {
        let configs =
            parse("- regex:\n  replacement: ~\n  separator: null\n  source_labels:\n  modulus:\n")
                .unwrap();
        let c = &configs[0];
        assert_eq!(c.regex, "");
        assert_eq!(c.replacement, "");
        assert_eq!(c.separator, "");
        assert!(c.source_labels.is_empty());
        assert_eq!(c.modulus, 0);
    }

    #[test]
    fn scalars_are_read_as_strings() {
        let c = &parse("- regex: 200\n  replacement: true\n  separator: 1.50\n").unwrap()[0];
        assert_eq!(c.regex, "200");
        assert_eq!(c.replacement, "true");
        assert_eq!(c.separator, "1.50");
    }

    #[test]
    fn serialize_round_trips() {
        let config = RelabelConfig {
            source_labels: vec!["a".into(), "b".into()],
            separator: "-".into(),
            target_label: "t".into(),
            regex: "x(.*)".into(),
            modulus: 3,
            replacement: "${1}".into(),
            action: Action::HashMod,
        };
        let yaml = serde_yaml::to_string(&config).unwrap();
        assert!(yaml.contains("action: hashmod"), "{yaml}");
        let back: RelabelConfig = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(back, config);
        let default_yaml = serde_yaml::to_string(&RelabelConfig::default()).unwrap();
        assert_eq!(
            serde_yaml::from_str::<RelabelConfig>(&default_yaml).unwrap(),
            RelabelConfig::default()
        );
    }
}
