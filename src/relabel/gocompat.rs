//! Small pieces of Go behaviour that Prometheus relabeling inherits and that Rust's standard
//! library or the `regex` crate do differently:
//!
//! * label-name checks (`model.LabelName.IsValid` and the legacy `$`-template check of
//!   `relabel.go`),
//! * Go's `strings.ToLower` / `strings.ToUpper`, which map each character with the *simple*
//!   Unicode case mapping (Rust's `str::to_lowercase` uses full mappings and the final-sigma
//!   rule, so `"ß"` would become `"SS"`),
//! * a pattern rewrite so that the `regex` crate matches like Go's RE2 port: in Go `\d \w \s \b`
//!   (and their negations) are ASCII-only, in the `regex` crate they are Unicode-aware by default,
//!   which would silently change what e.g. `(\w+)` matches on `"café"`. Go also reads a `{` that
//!   does not start a counted repetition as a literal, where the `regex` crate rejects it.

use std::borrow::Cow;

/// How label names are validated: the target label of `replace`, `hashmod`, `lowercase`,
/// `uppercase`, `keepequal` and `dropequal`, the `source_labels`, and the `labelmap`
/// replacement template.
///
/// This mirrors Prometheus' `metric_name_validation_scheme`; Prometheus 3 defaults to UTF-8,
/// Strata defaults to the legacy scheme because most remote-write receivers still require it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum NameValidation {
    /// `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[default]
    Legacy,
    /// Any non-empty UTF-8 string.
    Utf8,
}

impl NameValidation {
    /// Whether `name` is a valid label name under this scheme.
    pub fn is_valid_label_name(self, name: &str) -> bool {
        match self {
            NameValidation::Legacy => is_legacy_label_name(name),
            NameValidation::Utf8 => !name.is_empty(),
        }
    }

    /// Whether a name that may contain `$1` / `${name}` references is acceptable as the
    /// `target_label` of `replace` or the `replacement` of `labelmap`. Under the UTF-8 scheme any
    /// non-empty string is; under the legacy scheme the name must be built from legacy name
    /// characters and well-formed references (Prometheus' `relabelTargetLegacy` expression).
    pub(crate) fn is_valid_templated_name(self, name: &str) -> bool {
        match self {
            NameValidation::Legacy => is_legacy_templated_name(name),
            NameValidation::Utf8 => !name.is_empty(),
        }
    }
}

fn is_ascii_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(crate) fn is_legacy_label_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            (first.is_ascii_alphabetic() || *first == b'_')
                && rest.iter().all(|&b| is_ascii_word(b))
        }
        None => false,
    }
}

/// The language of `^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$` (with ASCII `\w`): a non-empty
/// sequence of word characters and `$name` / `${name}` references that does not start with a
/// digit.
fn is_legacy_templated_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphabetic() || b == b'_' {
            i += 1;
        } else if b.is_ascii_digit() {
            if i == 0 {
                return false;
            }
            i += 1;
        } else if b == b'$' {
            i += 1;
            let braced = bytes.get(i) == Some(&b'{');
            if braced {
                i += 1;
            }
            let start = i;
            while i < bytes.len() && is_ascii_word(bytes[i]) {
                i += 1;
            }
            if i == start {
                return false;
            }
            if braced {
                if bytes.get(i) != Some(&b'}') {
                    return false;
                }
                i += 1;
            }
        } else {
            return false;
        }
    }
    true
}

/// Go's `strings.ToLower`: per-character simple lower-case mapping.
pub(crate) fn go_to_lower(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.chars()
        .map(|c| {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(single), None) => single,
                // The only unconditional multi-character lower-case mapping is U+0130 (capital I
                // with dot above, full mapping "i\u{307}"); its simple mapping is plain 'i'.
                _ if c == '\u{130}' => 'i',
                _ => c,
            }
        })
        .collect()
}

/// Go's `strings.ToUpper`: per-character simple upper-case mapping.
pub(crate) fn go_to_upper(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_uppercase();
    }
    s.chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(single), None) => single,
                // Characters whose full upper-case mapping has several characters
                // (SpecialCasing.txt). Most have no simple mapping and stay as they are (e.g.
                // 'ß', ligatures); the Greek letters with ypogegrammeni map to their title-case
                // forms in UnicodeData.txt.
                _ => simple_upper_of_special(c).unwrap_or(c),
            }
        })
        .collect()
}

fn simple_upper_of_special(c: char) -> Option<char> {
    let code = u32::from(c);
    let mapped = match code {
        0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => code + 8,
        0x1FB3 => 0x1FBC,
        0x1FC3 => 0x1FCC,
        0x1FF3 => 0x1FFC,
        _ => return None,
    };
    char::from_u32(mapped)
}

/// Rewrites a Go (RE2) pattern so that the `regex` crate gives it Go's meaning:
///
/// * `\d \D \w \W \s \S` become the ASCII classes Go uses (as bracket classes, which also work
///   nested inside a class and still case-fold under `(?i)` like Go's do);
/// * `\b \B` become ASCII word boundaries;
/// * a `{` that does not open a counted repetition (`{n}`, `{n,}`, `{n,m}`) is escaped, because
///   Go takes it literally.
///
/// Everything else is passed through unchanged; `\p{..}`, `\P{..}` and `\x{..}` are copied
/// whole. Patterns without `\` or `{` are returned as they are.
pub(crate) fn go_pattern_to_rust(pattern: &str) -> Cow<'_, str> {
    if !pattern.contains(['\\', '{']) {
        return Cow::Borrowed(pattern);
    }
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match c {
            '\\' => {
                let Some(escaped) = rest.chars().next() else {
                    // A trailing backslash is an error in both engines; keep it.
                    out.push('\\');
                    break;
                };
                rest = &rest[escaped.len_utf8()..];
                match escaped {
                    'd' => out.push_str("[0-9]"),
                    'D' => out.push_str("[^0-9]"),
                    'w' => out.push_str("[0-9A-Za-z_]"),
                    'W' => out.push_str("[^0-9A-Za-z_]"),
                    's' => out.push_str(r"[\t\n\f\r ]"),
                    'S' => out.push_str(r"[^\t\n\f\r ]"),
                    'b' => out.push_str(r"(?-u:\b)"),
                    'B' => out.push_str(r"(?-u:\B)"),
                    'p' | 'P' | 'x' if rest.starts_with('{') => {
                        let end = rest.find('}').map_or(rest.len(), |i| i + 1);
                        out.push('\\');
                        out.push(escaped);
                        out.push_str(&rest[..end]);
                        rest = &rest[end..];
                    }
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
            }
            '{' if !starts_counted_repetition(rest) => out.push_str(r"\{"),
            other => out.push(other),
        }
    }
    Cow::Owned(out)
}

/// Whether `rest` (the text after a `{`) continues a counted repetition: `n}`, `n,}` or `n,m}`.
fn starts_counted_repetition(rest: &str) -> bool {
    let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let min = digits(rest);
    if min == 0 {
        return false;
    }
    let after_min = &rest[min..];
    if after_min.starts_with('}') {
        return true;
    }
    match after_min.strip_prefix(',') {
        Some(after_comma) => after_comma[digits(after_comma)..].starts_with('}'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_label_names() {
        for ok in ["a", "_", "__name__", "a1", "A_b_9"] {
            assert!(is_legacy_label_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a.b", "é", "a b", "$1"] {
            assert!(!is_legacy_label_name(bad), "{bad}");
        }
    }

    #[test]
    fn legacy_templated_names() {
        // Cases worked out by hand from the `relabelTargetLegacy` expression.
        let cases = [
            ("label", true),
            ("-label", false),
            ("label${1}", true),
            ("${1}label", true),
            ("${1}", true),
            ("$1", true),
            ("asd$2asd", true),
            ("_${1}_", true),
            ("foo${bar}foo", true),
            ("${", false),
            ("$", false),
            ("${}", false),
            ("foo${", false),
            ("$$", false),
            ("$1{", false),
            ("-foo${1}bar-", false),
            ("bar.foo${1}bar", false),
            ("1abc", false),
            ("", false),
        ];
        for (name, want) in cases {
            assert_eq!(is_legacy_templated_name(name), want, "{name:?}");
        }
    }

    #[test]
    fn utf8_scheme_accepts_any_non_empty_name() {
        assert!(NameValidation::Utf8.is_valid_label_name("foo.bar-baz é"));
        assert!(!NameValidation::Utf8.is_valid_label_name(""));
        assert!(NameValidation::Utf8.is_valid_templated_name("$"));
        assert!(!NameValidation::Utf8.is_valid_templated_name(""));
    }

    #[test]
    fn case_mapping_is_go_simple_mapping() {
        assert_eq!(go_to_lower("FoO;Bar"), "foo;bar");
        assert_eq!(go_to_upper("FoO;bar"), "FOO;BAR");
        // Go maps per character: no final sigma, no multi-character expansions.
        assert_eq!(go_to_lower("ΣΑΣ"), "σασ");
        assert_eq!(go_to_lower("\u{130}X"), "ix");
        assert_eq!(go_to_upper("straße"), "STRAßE");
        assert_eq!(go_to_upper("\u{FB01}"), "\u{FB01}");
        assert_eq!(go_to_upper("\u{1FB3}"), "\u{1FBC}");
        assert_eq!(go_to_upper("\u{1F80}\u{1F88}"), "\u{1F88}\u{1F88}");
        assert_eq!(go_to_upper("éü"), "ÉÜ");
    }

    #[test]
    fn pattern_rewrite() {
        assert!(matches!(go_pattern_to_rust("(.*)"), Cow::Borrowed("(.*)")));
        assert_eq!(go_pattern_to_rust(r"(\w+)-\d"), r"([0-9A-Za-z_]+)-[0-9]");
        assert_eq!(go_pattern_to_rust(r"[\s\W]"), r"[[\t\n\f\r ][^0-9A-Za-z_]]");
        assert_eq!(go_pattern_to_rust(r"\bx\B"), r"(?-u:\b)x(?-u:\B)");
        assert_eq!(go_pattern_to_rust(r"\\d"), r"\\d");
        assert_eq!(go_pattern_to_rust(r"\p{Greek}\pL\x{41}\x41"), r"\p{Greek}\pL\x{41}\x41");
        assert_eq!(go_pattern_to_rust(r"a{2}b{1,}c{1,3}"), r"a{2}b{1,}c{1,3}");
        assert_eq!(go_pattern_to_rust(r"a{b}{,2}{"), r"a\{b}\{,2}\{");
        assert_eq!(go_pattern_to_rust(r"\{x"), r"\{x");
        assert_eq!(go_pattern_to_rust("é\\"), "é\\");
    }

    #[test]
    fn rewritten_classes_match_like_go() {
        let compile = |p: &str| regex::Regex::new(&format!("^(?s:{})$", go_pattern_to_rust(p)));
        let word = compile(r"\w+").unwrap();
        assert!(word.is_match("abc_1"));
        assert!(!word.is_match("café"));
        let digits = compile(r"\d+").unwrap();
        assert!(!digits.is_match("\u{661}\u{662}"));
        let space = compile(r"a\sb").unwrap();
        assert!(space.is_match("a\nb"));
        assert!(!space.is_match("a\u{a0}b"));
        assert!(!space.is_match("a\u{b}b"));
        // Go folds the ASCII class under (?i), so the Kelvin sign is a word character there.
        assert!(compile(r"(?i)\w").unwrap().is_match("\u{212A}"));
        assert!(compile(r"a{b}").unwrap().is_match("a{b}"));
        assert!(compile(r".*\bfoo").unwrap().is_match("x foo"));
        // 'é' is not an ASCII word character, so Go sees a word boundary before "foo".
        assert!(compile(r".*\bfoo").unwrap().is_match("éfoo"));
    }
}
