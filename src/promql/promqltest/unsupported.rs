//! The list of what the conformance runner skips, each entry with its reason
//! (`tests/promql-unsupported.yml`).
//!
//! ```yaml
//! files:                       # whole scripts
//!   - file: native_histograms.test
//!     reason: native histograms are not supported
//! rules:                       # rules the runner knows how to apply to every case
//!   - rule: native_histograms  # a case whose loaded series or expected output holds one
//!     reason: native histograms are not supported
//! cases:                       # single cases by file name and line of their `eval`
//!   - at: histograms.test:1181
//!     reason: annotation positions are not tracked
//! ```

use std::path::Path;

use serde::Deserialize;

/// Rule names the runner understands.
pub const RULE_NATIVE_HISTOGRAMS: &str = "native_histograms";

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unsupported {
    #[serde(default)]
    pub files: Vec<FileEntry>,
    #[serde(default)]
    pub rules: Vec<RuleEntry>,
    #[serde(default)]
    pub cases: Vec<CaseEntry>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub file: String,
    pub reason: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleEntry {
    pub rule: String,
    pub reason: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseEntry {
    /// `file.test:LINE`, the line of the `eval` command.
    pub at: String,
    pub reason: String,
}

impl Unsupported {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses and validates: every entry needs a reason, rules must be known ones.
    pub fn parse(text: &str) -> Result<Self, String> {
        let list: Self = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let reasons = list
            .files
            .iter()
            .map(|f| (&f.file, &f.reason))
            .chain(list.rules.iter().map(|r| (&r.rule, &r.reason)))
            .chain(list.cases.iter().map(|c| (&c.at, &c.reason)));
        for (what, reason) in reasons {
            if reason.trim().is_empty() {
                return Err(format!("{what}: a reason is required"));
            }
        }
        if let Some(rule) = list.rules.iter().find(|r| r.rule != RULE_NATIVE_HISTOGRAMS) {
            return Err(format!("unknown rule {:?} (known: {RULE_NATIVE_HISTOGRAMS})", rule.rule));
        }
        if let Some(case) = list.cases.iter().find(|c| !is_file_line(&c.at)) {
            return Err(format!("case {:?}: expected FILE:LINE", case.at));
        }
        Ok(list)
    }

    pub fn file_reason(&self, file: &str) -> Option<&str> {
        self.files.iter().find(|f| f.file == file).map(|f| f.reason.as_str())
    }

    pub fn rule_reason(&self, rule: &str) -> Option<&str> {
        self.rules.iter().find(|r| r.rule == rule).map(|r| r.reason.as_str())
    }

    pub fn case_reason(&self, file: &str, line: usize) -> Option<&str> {
        let at = format!("{file}:{line}");
        self.cases.iter().find(|c| c.at == at).map(|c| c.reason.as_str())
    }
}

fn is_file_line(at: &str) -> bool {
    at.rsplit_once(':')
        .is_some_and(|(file, line)| !file.is_empty() && line.parse::<usize>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_requires_reasons() {
        let list = Unsupported::parse(
            "files:\n  - file: a.test\n    reason: r1\nrules:\n  - rule: native_histograms\n    reason: r2\ncases:\n  - at: b.test:12\n    reason: r3\n",
        )
        .unwrap();
        assert_eq!(list.file_reason("a.test"), Some("r1"));
        assert_eq!(list.rule_reason(RULE_NATIVE_HISTOGRAMS), Some("r2"));
        assert_eq!(list.case_reason("b.test", 12), Some("r3"));
        assert_eq!(list.case_reason("b.test", 13), None);
        assert!(Unsupported::parse("files:\n  - file: a.test\n    reason: ''\n").is_err());
        assert!(Unsupported::parse("rules:\n  - rule: other\n    reason: x\n").is_err());
        assert!(Unsupported::parse("cases:\n  - at: b.test\n    reason: x\n").is_err());
    }
}
