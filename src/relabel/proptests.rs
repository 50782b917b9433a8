//! Property test: [`Relabeler::process`] agrees with a deliberately plain reference
//! implementation on random label sets and random rule lists.
//!
//! The reference keeps the labels in a `Vec` in the order Prometheus' `labels.Builder` visits
//! them (input labels not yet touched, in sorted order, then written labels in the order they
//! were written), because that order decides `labelmap` collisions; a `BTreeMap` alone cannot
//! express it. Regexes are compiled on every use and templates are interpreted character by
//! character, straight from the description of Go's `Regexp.Expand`.

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use proptest::prelude::*;
use regex::{Captures, Regex};

use super::*;
use crate::model::Labels;

/// Input label names; few, so that rules often hit existing labels and names collide.
const NAMES: &[&str] = &["__name__", "a", "b", "ab", "job", "x_a", "x_b"];
const SOURCE_NAMES: &[&str] = &["__name__", "a", "b", "ab", "job", "x_a", "x_b", "missing"];
const SEPARATORS: &[&str] = &[";", "", "-"];
/// Regexes valid for every action; no `\d \w \s \b`, whose Go meaning the engine emulates.
const REGEXES: &[&str] = &[
    "(.*)",
    "a",
    "(a|b)",
    "(.*);(.*)",
    "x_(.+)",
    "(?P<name>[a-z]+)",
    "",
    "(.)(.)?",
    "(?i)A.*",
    "[^;]*",
    r".*\n.*",
    "(b)|(a)",
    "__(.*)",
    "(.+)",
    "a.*|job",
];
const REPLACE_TARGETS: &[&str] =
    &["a", "b", "new", "job", "x_${1}", "${1}", "$1", "${name}", "$name", "x_$1x", "$2_x"];
const REPLACEMENTS: &[&str] = &[
    "$1", "${1}", "$1x", "${1}x", "$$", "$name", "${name}", "", "lit", "$0", "$2", "$01",
    "${ab-c}", "a$", "$-", "x_$1", "$2;$1", "${",
];
const LABELMAP_REPLACEMENTS: &[&str] =
    &["$1", "${1}", "$1x", "${1}x", "$name", "${name}", "lit", "$0", "$2", "x_$1", "$01", "a"];
const PLAIN_TARGETS: &[&str] = &["a", "b", "new", "job", "x_a"];
const VALUES: &str = "[aB\u{e9}1_; \n-]{0,4}";

// ---------------------------------------------------------------------------------------------
// Reference implementation.

struct Entry {
    name: String,
    value: String,
    /// Still the untouched input label.
    from_input: bool,
}

/// The labels in the order Prometheus' builder visits them.
struct RefLabels(Vec<Entry>);

impl RefLabels {
    fn new(input: &BTreeMap<String, String>) -> RefLabels {
        RefLabels(
            input
                .iter()
                .map(|(name, value)| Entry {
                    name: name.clone(),
                    value: value.clone(),
                    from_input: true,
                })
                .collect(),
        )
    }

    fn get(&self, name: &str) -> String {
        for entry in &self.0 {
            if entry.name == name {
                return entry.value.clone();
            }
        }
        String::new()
    }

    fn set(&mut self, name: &str, value: &str) {
        let position = self.0.iter().position(|entry| entry.name == name);
        if value.is_empty() {
            if let Some(i) = position {
                self.0.remove(i);
            }
            return;
        }
        if let Some(i) = position {
            if !self.0[i].from_input {
                self.0[i].value = value.to_owned();
                return;
            }
            // Writing an input label turns it into a written one, visited last.
            self.0.remove(i);
        }
        self.0.push(Entry { name: name.to_owned(), value: value.to_owned(), from_input: false });
    }

    fn snapshot(&self) -> Vec<(String, String)> {
        self.0.iter().map(|entry| (entry.name.clone(), entry.value.clone())).collect()
    }

    fn into_map(self) -> BTreeMap<String, String> {
        self.0.into_iter().map(|entry| (entry.name, entry.value)).collect()
    }
}

fn anchored(regex: &str) -> Regex {
    Regex::new(&format!("^(?s:{regex})$")).unwrap()
}

fn reference_expand(template: &str, captures: &Captures<'_>) -> String {
    let t: Vec<char> = template.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < t.len() {
        if t[i] != '$' {
            out.push(t[i]);
            i += 1;
            continue;
        }
        if i + 1 < t.len() && t[i + 1] == '$' {
            out.push('$');
            i += 2;
            continue;
        }
        let mut j = i + 1;
        let braced = j < t.len() && t[j] == '{';
        if braced {
            j += 1;
        }
        let start = j;
        while j < t.len() && (t[j].is_alphanumeric() || t[j] == '_') {
            j += 1;
        }
        let name: String = t[start..j].iter().collect();
        let closed = !braced || (j < t.len() && t[j] == '}');
        if name.is_empty() || !closed {
            out.push('$');
            i += 1;
            continue;
        }
        if braced {
            j += 1;
        }
        i = j;
        let is_number = name.chars().all(|c| c.is_ascii_digit());
        let leading_zero = name.len() > 1 && name.starts_with('0');
        let group = if is_number && !leading_zero {
            name.parse::<usize>().ok().and_then(|n| captures.get(n))
        } else {
            captures.name(&name)
        };
        if let Some(group) = group {
            out.push_str(group.as_str());
        }
    }
    out
}

fn reference_valid_name(name: &str, utf8: bool) -> bool {
    if utf8 {
        return !name.is_empty();
    }
    let mut chars = name.chars();
    let first_ok = match chars.next() {
        Some(c) => c.is_ascii_alphabetic() || c == '_',
        None => false,
    };
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn reference(
    rules: &[RelabelConfig],
    input: &BTreeMap<String, String>,
    utf8: bool,
) -> Option<BTreeMap<String, String>> {
    let mut labels = RefLabels::new(input);
    for rule in rules {
        let values: Vec<String> = rule.source_labels.iter().map(|n| labels.get(n)).collect();
        let value = values.join(&rule.separator);
        let regex = anchored(&rule.regex);
        match rule.action {
            Action::Replace => {
                if let Some(captures) = regex.captures(&value) {
                    let target = reference_expand(&rule.target_label, &captures);
                    if reference_valid_name(&target, utf8) {
                        labels.set(&target, &reference_expand(&rule.replacement, &captures));
                    }
                }
            }
            Action::Keep => {
                if !regex.is_match(&value) {
                    return None;
                }
            }
            Action::Drop => {
                if regex.is_match(&value) {
                    return None;
                }
            }
            Action::KeepEqual => {
                if labels.get(&rule.target_label) != value {
                    return None;
                }
            }
            Action::DropEqual => {
                if labels.get(&rule.target_label) == value {
                    return None;
                }
            }
            Action::HashMod => {
                let digest = Md5::digest(value.as_bytes());
                let mut number: u64 = 0;
                for byte in &digest[8..16] {
                    number = (number << 8) | u64::from(*byte);
                }
                labels.set(&rule.target_label, &(number % rule.modulus).to_string());
            }
            Action::LabelMap => {
                for (name, label_value) in labels.snapshot() {
                    if let Some(captures) = regex.captures(&name) {
                        let new_name = reference_expand(&rule.replacement, &captures);
                        labels.set(&new_name, &label_value);
                    }
                }
            }
            Action::LabelDrop => {
                for (name, _) in labels.snapshot() {
                    if regex.is_match(&name) {
                        labels.set(&name, "");
                    }
                }
            }
            Action::LabelKeep => {
                for (name, _) in labels.snapshot() {
                    if !regex.is_match(&name) {
                        labels.set(&name, "");
                    }
                }
            }
            Action::Lowercase => labels.set(&rule.target_label, &value.to_lowercase()),
            Action::Uppercase => labels.set(&rule.target_label, &value.to_uppercase()),
        }
    }
    Some(labels.into_map())
}

// ---------------------------------------------------------------------------------------------
// Strategies.

fn pick(items: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    proptest::sample::select(items).prop_map(str::to_owned)
}

fn rule(action: Action) -> RelabelConfig {
    RelabelConfig { action, ..RelabelConfig::default() }
}

fn rule_strategy() -> impl Strategy<Value = RelabelConfig> {
    let sources = proptest::collection::vec(pick(SOURCE_NAMES), 0..3);
    let replace_parts = (
        sources.clone(),
        pick(SEPARATORS),
        pick(REGEXES),
        pick(REPLACE_TARGETS),
        pick(REPLACEMENTS),
    );
    prop_oneof![
        4 => replace_parts
            .prop_map(|(source_labels, separator, regex, target_label, replacement)| RelabelConfig {
                source_labels, separator, regex, target_label, replacement, ..rule(Action::Replace)
            }),
        1 => (sources.clone(), pick(SEPARATORS), pick(REGEXES), any::<bool>())
            .prop_map(|(source_labels, separator, regex, keep)| RelabelConfig {
                source_labels, separator, regex,
                ..rule(if keep { Action::Keep } else { Action::Drop })
            }),
        1 => (sources.clone(), pick(PLAIN_TARGETS), any::<bool>())
            .prop_map(|(source_labels, target_label, keep)| RelabelConfig {
                source_labels, target_label,
                ..rule(if keep { Action::KeepEqual } else { Action::DropEqual })
            }),
        1 => (sources.clone(), pick(SEPARATORS), pick(PLAIN_TARGETS), 1u64..8)
            .prop_map(|(source_labels, separator, target_label, modulus)| RelabelConfig {
                source_labels, separator, target_label, modulus, ..rule(Action::HashMod)
            }),
        3 => (pick(REGEXES), pick(LABELMAP_REPLACEMENTS))
            .prop_map(|(regex, replacement)| RelabelConfig {
                regex, replacement, ..rule(Action::LabelMap)
            }),
        2 => (pick(REGEXES), any::<bool>())
            .prop_map(|(regex, drop)| RelabelConfig {
                regex, ..rule(if drop { Action::LabelDrop } else { Action::LabelKeep })
            }),
        1 => (sources, pick(SEPARATORS), pick(PLAIN_TARGETS), any::<bool>())
            .prop_map(|(source_labels, separator, target_label, lower)| RelabelConfig {
                source_labels, separator, target_label,
                ..rule(if lower { Action::Lowercase } else { Action::Uppercase })
            }),
    ]
}

fn to_map(labels: &Labels) -> BTreeMap<String, String> {
    labels.iter().map(|label| (label.name.clone(), label.value.clone())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn process_matches_reference(
        input in proptest::collection::btree_map(pick(NAMES), VALUES, 0..6),
        configs in proptest::collection::vec(rule_strategy(), 0..6),
        utf8 in any::<bool>(),
    ) {
        let validation = if utf8 { NameValidation::Utf8 } else { NameValidation::Legacy };
        let relabeler = Relabeler::with_validation(&configs, validation)
            .expect("generated rules are valid");
        let labels = Labels::from_pairs(input);
        let expected = reference(&configs, &to_map(&labels), utf8);
        let actual = relabeler.process(&labels).map(|out| to_map(&out));
        prop_assert_eq!(actual, expected);
    }

    #[test]
    fn yaml_round_trip_gives_the_same_result(
        input in proptest::collection::btree_map(pick(NAMES), VALUES, 0..6),
        configs in proptest::collection::vec(rule_strategy(), 0..4),
    ) {
        let yaml = serde_yaml::to_string(&configs).unwrap();
        let parsed: Vec<RelabelConfig> = serde_yaml::from_str(&yaml).unwrap();
        prop_assert_eq!(&parsed, &configs);
        let labels = Labels::from_pairs(input);
        prop_assert_eq!(
            Relabeler::new(&parsed).unwrap().process(&labels),
            Relabeler::new(&configs).unwrap().process(&labels)
        );
    }
}
