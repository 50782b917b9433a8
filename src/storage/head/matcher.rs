//! Label matchers of PromQL and LogQL stream selectors (`=`, `!=`, `=~`, `!~`), with
//! Prometheus semantics (`model/labels/matcher.go`, `regexp.go`):
//!
//! * A label a series does not have has the value `""`: `foo=""` matches series without `foo`,
//!   `foo!=""` those with it, `foo=~".*"` every series and `foo=~".+"` only those with `foo`.
//! * Regexes are RE2 syntax, fully anchored and with `.` matching newlines: `^(?s:<regex>)$`.
//!   The pattern must also compile on its own, so `a)|(b` is not accepted by way of the group
//!   wrapped around it.
//!
//! Invariant: a [`LabelMatcher`] of a regex op always holds the compiled regex of its value.

use std::fmt;

use regex::Regex;

use crate::model::labels::Labels;

/// The comparison a matcher makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Equal => "=",
            Self::NotEqual => "!=",
            Self::RegexMatch => "=~",
            Self::RegexNoMatch => "!~",
        }
    }
}

/// A matcher whose regex does not compile.
#[derive(Debug, thiserror::Error)]
#[error("invalid regex {pattern:?} for label {name}: {source}")]
pub struct MatcherError {
    pub name: String,
    pub pattern: String,
    #[source]
    pub source: regex::Error,
}

impl MatcherError {
    /// A bad matcher comes from the query: a client error.
    pub fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::BadRequest
    }
}

/// `name op "value"`.
#[derive(Clone, Debug)]
pub struct LabelMatcher {
    name: String,
    op: MatchOp,
    value: String,
    /// Compiled `value` for the regex ops.
    regex: Option<Regex>,
}

impl LabelMatcher {
    /// Builds a matcher, compiling the anchored regex for `=~` and `!~`.
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, MatcherError> {
        let name = name.into();
        let value = value.into();
        let regex = match op {
            MatchOp::Equal | MatchOp::NotEqual => None,
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => {
                let compiled = Regex::new(&value)
                    .and_then(|_| Regex::new(&format!("^(?s:{value})$")))
                    .map_err(|source| MatcherError {
                        name: name.clone(),
                        pattern: value.clone(),
                        source,
                    })?;
                Some(compiled)
            }
        };
        Ok(Self { name, op, value, regex })
    }

    /// `name="value"`, which cannot fail.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self { name: name.into(), op: MatchOp::Equal, value: value.into(), regex: None }
    }

    /// `name!="value"`, which cannot fail.
    pub fn not_equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self { name: name.into(), op: MatchOp::NotEqual, value: value.into(), regex: None }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn op(&self) -> MatchOp {
        self.op
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a label value (`""` for an absent label) matches.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::RegexMatch => self.compiled().is_match(value),
            MatchOp::RegexNoMatch => !self.compiled().is_match(value),
        }
    }

    /// Whether a label set matches, an absent label counting as `""`.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }

    /// Whether series without the label match: such a matcher selects by subtraction.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    fn compiled(&self) -> &Regex {
        self.regex.as_ref().expect("regex ops are built with their regex")
    }
}

impl PartialEq for LabelMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for LabelMatcher {}

/// `name="value"` with the value quoted as PromQL prints it.
impl fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

/// Whether every matcher matches `labels`.
pub fn matches_all(matchers: &[LabelMatcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches_labels(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(name: &str, op: MatchOp, value: &str) -> LabelMatcher {
        LabelMatcher::new(name, op, value).unwrap()
    }

    #[test]
    fn absent_labels_are_empty() {
        let with = Labels::from_pairs([("foo", "bar")]);
        let without = Labels::from_pairs([("other", "x")]);
        let cases = [
            (matcher("foo", MatchOp::Equal, ""), false, true),
            (matcher("foo", MatchOp::NotEqual, ""), true, false),
            (matcher("foo", MatchOp::RegexMatch, ".*"), true, true),
            (matcher("foo", MatchOp::RegexMatch, ".+"), true, false),
            (matcher("foo", MatchOp::RegexNoMatch, ".+"), false, true),
            (matcher("foo", MatchOp::NotEqual, "bar"), false, true),
            (matcher("foo", MatchOp::RegexMatch, "bar|"), true, true),
        ];
        for (m, on_with, on_without) in cases {
            assert_eq!(m.matches_labels(&with), on_with, "{m} on {with}");
            assert_eq!(m.matches_labels(&without), on_without, "{m} on {without}");
        }
    }

    #[test]
    fn regexes_are_anchored_and_dot_matches_newline() {
        let m = matcher("a", MatchOp::RegexMatch, "b.");
        assert!(m.matches("b\n"));
        assert!(!m.matches("ab1"));
        assert!(!m.matches("b12"));
        assert!(matcher("a", MatchOp::RegexMatch, "x|y").matches("y"));
    }

    #[test]
    fn bad_regexes_are_errors_naming_the_label() {
        let err = LabelMatcher::new("job", MatchOp::RegexMatch, "(").unwrap_err();
        assert!(err.to_string().starts_with("invalid regex \"(\" for label job"), "{err}");
        assert!(LabelMatcher::new("job", MatchOp::RegexNoMatch, "a)|(b").is_err());
        assert!(LabelMatcher::new("job", MatchOp::Equal, "(").is_ok());
    }
}
