//! Validation of a [`RelabelConfig`] (the checks of Prometheus' `Config.Validate`, plus the
//! source-label and regex checks Prometheus does while decoding) and its compilation into a
//! [`Rule`] with the regex and templates ready to use.

use regex::Regex;

use super::config::{Action, RelabelConfig, DEFAULT_REGEX, DEFAULT_REPLACEMENT, DEFAULT_SEPARATOR};
use super::error::RelabelError;
use super::gocompat::go_pattern_to_rust;
use super::template::Template;
use super::NameValidation;

/// A validated, compiled rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) source_labels: Vec<String>,
    pub(crate) separator: String,
    pub(crate) op: Op,
}

/// The action with exactly the parameters it uses.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Replace { regex: Regex, target: Template, replacement: Template, validation: NameValidation },
    Keep { regex: Regex },
    Drop { regex: Regex },
    KeepEqual { target: String },
    DropEqual { target: String },
    HashMod { target: String, modulus: u64 },
    LabelMap { regex: Regex, replacement: Template },
    LabelDrop { regex: Regex },
    LabelKeep { regex: Regex },
    Lowercase { target: String },
    Uppercase { target: String },
}

/// Compiles `^(?s:<pattern>)$`, as Prometheus' `NewRegexp` does (after the Go-compatibility
/// rewrite). Errors are reported against the pattern as the user wrote it.
pub(crate) fn compile_anchored(pattern: &str) -> Result<Regex, String> {
    let rewritten = go_pattern_to_rust(pattern);
    Regex::new(&format!("^(?s:{rewritten})$")).map_err(|anchored_err| {
        // Prefer the error for the user's own text, whose positions make sense to them. Some
        // patterns only fail once anchored (or only succeed: Go accepts `a)|(b` for the same
        // reason), so fall back to the anchored error.
        let err = Regex::new(&rewritten).err().unwrap_or(anchored_err);
        regex_error_reason(&err)
    })
}

/// The one-line reason from a `regex` error ("unclosed group"), without the caret diagram.
fn regex_error_reason(err: &regex::Error) -> String {
    let text = err.to_string();
    let line = text
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .unwrap_or_else(|| text.trim());
    let line = line.trim_end_matches('.');
    let mut chars = line.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl Rule {
    /// Validates rule number `index` and compiles it.
    pub(crate) fn compile(
        index: usize,
        config: &RelabelConfig,
        validation: NameValidation,
    ) -> Result<Rule, RelabelError> {
        let rule = index;
        let action = config.action;

        // Checked while decoding in Prometheus (`LabelName` and `Regexp` unmarshalling).
        if let Some(name) = config.source_labels.iter().find(|n| !validation.is_valid_label_name(n))
        {
            return Err(RelabelError::InvalidSourceLabel { rule, name: name.clone() });
        }
        let regex = compile_anchored(&config.regex).map_err(|reason| {
            RelabelError::InvalidRegex { rule, regex: config.regex.clone(), reason }
        })?;

        // The checks of `Config.Validate`, in its order.
        let target = config.target_label.as_str();
        let invalid_target =
            || RelabelError::InvalidTargetLabel { rule, action, target: target.to_owned() };
        if action == Action::HashMod && config.modulus == 0 {
            return Err(RelabelError::ZeroModulus { rule });
        }
        let writes_target = matches!(
            action,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if writes_target && target.is_empty() {
            return Err(RelabelError::MissingTargetLabel { rule, action });
        }
        if action == Action::Replace {
            let valid = if target.contains('$') {
                validation.is_valid_templated_name(target)
            } else {
                validation.is_valid_label_name(target)
            };
            if !valid {
                return Err(invalid_target());
            }
        }
        let plain_target = matches!(
            action,
            Action::Lowercase | Action::Uppercase | Action::KeepEqual | Action::DropEqual
        );
        if plain_target && !validation.is_valid_label_name(target) {
            return Err(invalid_target());
        }
        if plain_target && config.replacement != DEFAULT_REPLACEMENT {
            return Err(RelabelError::ReplacementNotAllowed { rule, action });
        }
        if action == Action::LabelMap && !validation.is_valid_templated_name(&config.replacement) {
            return Err(RelabelError::InvalidLabelMapReplacement {
                rule,
                replacement: config.replacement.clone(),
            });
        }
        if action == Action::HashMod && !validation.is_valid_label_name(target) {
            return Err(invalid_target());
        }
        if let Some(field) = disallowed_field(config) {
            let allowed = match action {
                Action::KeepEqual | Action::DropEqual => "\"source_labels\" and \"target_label\"",
                _ => "\"regex\"",
            };
            return Err(RelabelError::FieldNotAllowed { rule, action, field, allowed });
        }

        let op = match action {
            Action::Replace => Op::Replace {
                target: Template::parse(target, &regex),
                replacement: Template::parse(&config.replacement, &regex),
                regex,
                validation,
            },
            Action::Keep => Op::Keep { regex },
            Action::Drop => Op::Drop { regex },
            Action::KeepEqual => Op::KeepEqual { target: target.to_owned() },
            Action::DropEqual => Op::DropEqual { target: target.to_owned() },
            Action::HashMod => Op::HashMod { target: target.to_owned(), modulus: config.modulus },
            Action::LabelMap => {
                Op::LabelMap { replacement: Template::parse(&config.replacement, &regex), regex }
            }
            Action::LabelDrop => Op::LabelDrop { regex },
            Action::LabelKeep => Op::LabelKeep { regex },
            Action::Lowercase => Op::Lowercase { target: target.to_owned() },
            Action::Uppercase => Op::Uppercase { target: target.to_owned() },
        };
        Ok(Rule {
            source_labels: config.source_labels.clone(),
            separator: config.separator.clone(),
            op,
        })
    }
}

/// For the actions that accept only some fields, the first other field set to a non-default
/// value, checked in Prometheus' order.
///
/// Prometheus compares the regex by identity, so there even an explicit `regex: (.*)` is refused
/// for `keepequal`, and an explicit empty `source_labels: []` for `labeldrop`; here fields are
/// compared by value, so writing a default explicitly is accepted.
fn disallowed_field(config: &RelabelConfig) -> Option<&'static str> {
    let modulus = ("modulus", config.modulus != 0);
    let separator = ("separator", config.separator != DEFAULT_SEPARATOR);
    let replacement = ("replacement", config.replacement != DEFAULT_REPLACEMENT);
    // Fields each action must leave at their defaults, in the order Prometheus checks them.
    let checks: &[(&'static str, bool)] = match config.action {
        Action::KeepEqual | Action::DropEqual => {
            &[("regex", config.regex != DEFAULT_REGEX), modulus, separator, replacement]
        }
        Action::LabelDrop | Action::LabelKeep => &[
            ("source_labels", !config.source_labels.is_empty()),
            ("target_label", !config.target_label.is_empty()),
            modulus,
            separator,
            replacement,
        ],
        _ => &[],
    };
    checks.iter().find(|(_, set)| *set).map(|(field, _)| *field)
}

#[cfg(test)]
mod tests {
    use super::super::Relabeler;
    use super::*;

    fn error(yaml: &str) -> String {
        error_with(yaml, NameValidation::Legacy)
    }

    fn error_with(yaml: &str, validation: NameValidation) -> String {
        let configs: Vec<RelabelConfig> = serde_yaml::from_str(yaml).unwrap();
        match Relabeler::with_validation(&configs, validation) {
            Ok(_) => panic!("expected an error for {yaml}"),
            Err(err) => err.to_string(),
        }
    }

    fn accepts(yaml: &str, validation: NameValidation) -> bool {
        let configs: Vec<RelabelConfig> = serde_yaml::from_str(yaml).unwrap();
        Relabeler::with_validation(&configs, validation).is_ok()
    }

    #[test]
    fn invalid_regex() {
        let yaml = "- {target_label: a}\n- {target_label: a}\n- {target_label: a, regex: '('}\n";
        assert_eq!(error(yaml), r#"rule 2: invalid regex "(": unclosed group"#);
        assert_eq!(
            error("- {action: labeldrop, regex: '[a'}"),
            r#"rule 0: invalid regex "[a": unclosed character class"#
        );
        // The regex is compiled whatever the action, as in Prometheus.
        assert!(
            error("- {action: keepequal, target_label: a, regex: '*'}").contains("invalid regex")
        );
    }

    #[test]
    fn invalid_source_label() {
        assert_eq!(
            error("- {source_labels: [a, foo-bar], target_label: a}"),
            r#"rule 0: "foo-bar" is not a valid source label"#
        );
        assert!(accepts("- {source_labels: [foo-bar], target_label: a}", NameValidation::Utf8));
        assert!(error_with("- {source_labels: [''], target_label: a}", NameValidation::Utf8)
            .contains("is not a valid source label"));
    }

    #[test]
    fn hashmod_modulus_and_target() {
        assert_eq!(
            error("- {action: hashmod, target_label: a}"),
            "rule 0: relabel action hashmod requires a non-zero modulus"
        );
        assert_eq!(
            error("- {action: hashmod, modulus: 2}"),
            r#"rule 0: "target_label" is required for action "hashmod""#
        );
        assert_eq!(
            error("- {action: hashmod, modulus: 2, target_label: a-b}"),
            r#"rule 0: "a-b" is not a valid target label"#
        );
    }

    #[test]
    fn target_label_required() {
        for action in ["replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal"] {
            let yaml = format!("- {{target_label: a}}\n- {{action: {action}, modulus: 1}}\n");
            assert_eq!(
                error(&yaml),
                format!(r#"rule 1: "target_label" is required for action "{action}""#)
            );
        }
        for action in ["keep", "drop", "labelmap", "labeldrop", "labelkeep"] {
            assert!(accepts(&format!("- {{action: {action}}}"), NameValidation::Legacy));
        }
    }

    #[test]
    fn replace_target_label() {
        let yaml = "- {target_label: a}\n- {target_label: b}\n- {target_label: c}\n\
                    - {target_label: foo-bar}\n";
        assert_eq!(error(yaml), r#"rule 3: "foo-bar" is not a valid target label"#);
        for ok in ["$1", "${1}", "x_${1}_y", "$name", "foo${bar}foo", "_${1}_", "asd$2asd"] {
            assert!(
                accepts(&format!("- {{target_label: '{ok}'}}"), NameValidation::Legacy),
                "{ok}"
            );
        }
        for bad in ["$", "${", "${}", "foo${", "-${1}", "a.${1}", "1a", "a b"] {
            let err = error(&format!("- {{target_label: '{bad}'}}"));
            assert!(err.ends_with("is not a valid target label"), "{bad}: {err}");
        }
        for ok in ["$", "a.${1}", "foo-bar", "1a"] {
            assert!(accepts(&format!("- {{target_label: '{ok}'}}"), NameValidation::Utf8), "{ok}");
        }
    }

    #[test]
    fn plain_target_actions() {
        for action in ["lowercase", "uppercase", "keepequal", "dropequal"] {
            assert_eq!(
                error(&format!("- {{action: {action}, target_label: '${{1}}'}}")),
                r#"rule 0: "${1}" is not a valid target label"#
            );
            assert_eq!(
                error(&format!("- {{action: {action}, target_label: a, replacement: x}}")),
                format!(r#"rule 0: "replacement" cannot be set for action "{action}""#)
            );
        }
        assert!(accepts(
            "- {action: lowercase, target_label: a, regex: x, separator: '-'}",
            NameValidation::Legacy
        ));
    }

    #[test]
    fn labelmap_replacement() {
        assert_eq!(
            error("- {action: labelmap, replacement: 'a-$1'}"),
            r#"rule 0: "a-$1" is not a valid replacement for action "labelmap""#
        );
        assert!(error("- {action: labelmap, replacement: ''}").contains("not a valid replacement"));
        assert!(accepts("- {action: labelmap, replacement: 'k8s_${1}'}", NameValidation::Legacy));
        assert!(accepts("- {action: labelmap, replacement: 'k8s.$1'}", NameValidation::Utf8));
    }

    #[test]
    fn equal_actions_accept_only_source_and_target() {
        for (field, yaml) in
            [("regex", "regex: x"), ("modulus", "modulus: 2"), ("separator", "separator: '-'")]
        {
            assert_eq!(
                error(&format!("- {{action: dropequal, target_label: a, {yaml}}}")),
                format!(
                    "rule 0: action \"dropequal\" does not accept \"{field}\" \
                     (only \"source_labels\" and \"target_label\")"
                )
            );
        }
        assert!(accepts(
            "- {action: keepequal, target_label: a, source_labels: [b, c]}",
            NameValidation::Legacy
        ));
    }

    #[test]
    fn label_actions_accept_only_regex() {
        for (field, yaml) in [
            ("source_labels", "source_labels: [a]"),
            ("target_label", "target_label: a"),
            ("modulus", "modulus: 2"),
            ("separator", "separator: ''"),
            ("replacement", "replacement: x"),
        ] {
            assert_eq!(
                error(&format!("- {{action: labelkeep, {yaml}}}")),
                format!(r#"rule 0: action "labelkeep" does not accept "{field}" (only "regex")"#)
            );
        }
        assert!(accepts("- {action: labeldrop, regex: 'tmp_.*'}", NameValidation::Legacy));
    }

    #[test]
    fn error_reports_rule_index() {
        let configs: Vec<RelabelConfig> =
            serde_yaml::from_str("- {target_label: a}\n- {action: hashmod, target_label: a}\n")
                .unwrap();
        assert_eq!(Relabeler::new(&configs).unwrap_err().rule(), 1);
    }

    #[test]
    fn anchoring_and_go_quirks() {
        let re = compile_anchored("foo").unwrap();
        assert!(re.is_match("foo"));
        assert!(!re.is_match("foobar"));
        assert!(!re.is_match("xfoo"));
        // Alternation stays inside the anchors.
        let re = compile_anchored("a|b").unwrap();
        assert!(!re.is_match("ab"));
        // As in Go, text can close the wrapping group early.
        let re = compile_anchored("a)|(b").unwrap();
        assert!(re.is_match("a") && re.is_match("b"));
        assert!(compile_anchored("").unwrap().is_match(""));
        assert!(!compile_anchored("").unwrap().is_match("x"));
    }
}
