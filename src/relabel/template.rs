//! `$1` / `${name}` templates, expanded exactly like Go's `regexp.Regexp.Expand`, which
//! Prometheus uses for `target_label` and `replacement`:
//!
//! * `$$` is a literal `$`;
//! * `$name` takes the longest run of letters, digits and `_` (Unicode letters and decimal
//!   digits, as Go's `unicode.IsLetter` / `unicode.IsDigit`), so `$1x` names the group `1x`;
//! * `${name}` delimits the name explicitly and must be closed by `}` right after the name;
//! * a name made only of ASCII digits without a leading zero is a group index, anything else a
//!   group name; an unknown group, an unknown name or a group that did not participate in the
//!   match expands to the empty string;
//! * a `$` not followed by a well-formed reference is copied literally.
//!
//! The `regex` crate's `Captures::expand` differs in corner cases (`$01` is group 1 there,
//! `${a-b}` is a group name there, names are ASCII-only there), so templates are parsed here,
//! once, when the relabeler is built, with group names resolved to indices.

use std::sync::OnceLock;

use regex::{Captures, Regex};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Group(usize),
}

/// A template compiled against one regex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `template`, resolving references against the capture groups of `regex`.
    /// References to groups that `regex` does not have are dropped (they always expand to "").
    pub(crate) fn parse(template: &str, regex: &Regex) -> Template {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = template;
        while let Some(dollar) = rest.find('$') {
            literal.push_str(&rest[..dollar]);
            rest = &rest[dollar + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                literal.push('$');
                rest = after;
                continue;
            }
            let Some((name, after)) = split_reference(rest) else {
                literal.push('$');
                continue;
            };
            rest = after;
            if let Some(group) = resolve(name, regex) {
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Group(group));
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Template { parts }
    }

    /// The expansion when it does not depend on the match (no group references).
    pub(crate) fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Literal(text)] => Some(text),
            _ => None,
        }
    }

    /// Expands the template with the groups of one match.
    pub(crate) fn expand(&self, captures: &Captures<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Group(index) => {
                    if let Some(group) = captures.get(*index) {
                        out.push_str(group.as_str());
                    }
                }
            }
        }
        out
    }
}

/// Splits `$`-reference text (what follows the `$`) into the name and the rest, or `None` when
/// the reference is malformed (empty name, missing `}`).
fn split_reference(text: &str) -> Option<(&str, &str)> {
    static NAME: OnceLock<Regex> = OnceLock::new();
    let name_re =
        NAME.get_or_init(|| Regex::new(r"\A[\p{L}\p{Nd}_]+").expect("static regex compiles"));
    let (braced, body) = match text.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, text),
    };
    let name_len = name_re.find(body)?.end();
    let (name, after) = body.split_at(name_len);
    if braced {
        after.strip_prefix('}').map(|after| (name, after))
    } else {
        Some((name, after))
    }
}

/// The group `name` refers to, if `regex` has it.
fn resolve(name: &str, regex: &Regex) -> Option<usize> {
    let numeric = name.bytes().all(|b| b.is_ascii_digit());
    if numeric && !(name.starts_with('0') && name.len() > 1) {
        // Too large to parse means out of range anyway.
        let index: usize = name.parse().ok()?;
        return (index < regex.captures_len()).then_some(index);
    }
    regex.capture_names().position(|group| group == Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(template: &str, regex: &str, input: &str) -> String {
        let regex = Regex::new(&format!("^(?s:{regex})$")).unwrap();
        let captures = regex.captures(input).expect("test input must match");
        Template::parse(template, &regex).expand(&captures)
    }

    #[test]
    fn numbered_and_named_references() {
        let re = "(?P<first>a+)(b*)(?P<x1>c)?";
        assert_eq!(expand("$1", re, "aab"), "aa");
        assert_eq!(expand("${1}", re, "aab"), "aa");
        assert_eq!(expand("$0", re, "aab"), "aab");
        assert_eq!(expand("<$2>", re, "aab"), "<b>");
        assert_eq!(expand("$first-$2", re, "aab"), "aa-b");
        assert_eq!(expand("${first}x", re, "aab"), "aax");
        assert_eq!(expand("$x1", re, "aabc"), "c");
        // Group 3 exists but did not participate.
        assert_eq!(expand("[$3][$x1]", re, "aab"), "[][]");
    }

    #[test]
    fn go_corner_cases() {
        let re = "(a)(b)";
        // The longest name wins: `$1x` is the (missing) group named "1x".
        assert_eq!(expand("$1x", re, "ab"), "");
        assert_eq!(expand("${1}x", re, "ab"), "ax");
        assert_eq!(expand("$$1", re, "ab"), "$1");
        assert_eq!(expand("$$$1", re, "ab"), "$a");
        // Leading zeros make a name, not an index.
        assert_eq!(expand("$01", re, "ab"), "");
        assert_eq!(expand("$9", re, "ab"), "");
        assert_eq!(expand("$99999999999999999999999", re, "ab"), "");
        // Malformed references are literal text.
        assert_eq!(expand("$", re, "ab"), "$");
        assert_eq!(expand("a$-b", re, "ab"), "a$-b");
        assert_eq!(expand("${}", re, "ab"), "${}");
        assert_eq!(expand("${1", re, "ab"), "${1");
        assert_eq!(expand("${1-2}", re, "ab"), "${1-2}");
        // Unicode letters continue a name, as in Go.
        assert_eq!(expand("$1é", re, "ab"), "");
        assert_eq!(expand("${1}é", re, "ab"), "aé");
        assert_eq!(expand("$2;$1", re, "ab"), "b;a");
    }

    #[test]
    fn literal_templates() {
        let regex = Regex::new("^(?s:(a))$").unwrap();
        assert_eq!(Template::parse("foo", &regex).as_literal(), Some("foo"));
        assert_eq!(Template::parse("", &regex).as_literal(), Some(""));
        assert_eq!(Template::parse("a$$b", &regex).as_literal(), Some("a$b"));
        assert_eq!(Template::parse("x$7", &regex).as_literal(), Some("x"));
        assert_eq!(Template::parse("x$1", &regex).as_literal(), None);
    }
}
