//! `strata check rules FILE...` and `strata test rules FILE...`, printing as promtool does
//! (`cmd/promtool/main.go` `CheckRules`/`checkRules`, `cmd/promtool/unittest.go`).
//!
//! `check rules`: per file `Checking FILE`, then `  SUCCESS: N rules found` or `  FAILED:` and
//! the errors; duplicate rules are a lint finding (`lint error N duplicate rule(s) found.`)
//! that fails the command only with `--lint-fatal` (exit 3), as in promtool. Exit 1 when any
//! file has errors.

use std::io::Write;
use std::path::PathBuf;

use regex::Regex;

use super::file;
use super::unittest::{self, TestOptions};

/// Options of `check rules`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CheckOptions {
    /// Skip the duplicate-rules lint (`--lint=none`).
    pub no_lint: bool,
    /// Lint findings fail the command with exit code 3.
    pub lint_fatal: bool,
    pub ignore_unknown_fields: bool,
}

/// promtool's `lintErrExitCode`.
pub const LINT_ERROR_EXIT: i32 = 3;

/// Checks each rule file; returns the exit code.
pub fn check_rules(
    files: &[PathBuf],
    options: CheckOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let mut has_errors = false;
    let mut has_lint = false;
    for path in files {
        let _ = writeln!(out, "Checking {}", path.display());
        match file::load_file(path, options.ignore_unknown_fields) {
            Err(errors) => {
                has_errors = true;
                let _ = writeln!(err, "  FAILED:");
                for e in errors {
                    let _ = writeln!(err, "{e}");
                }
            }
            Ok(rule_file) => {
                let count: usize = rule_file.groups.iter().map(|g| g.rules.len()).sum();
                let duplicates =
                    if options.no_lint { Vec::new() } else { file::duplicate_rules(&rule_file) };
                if duplicates.is_empty() {
                    let _ = writeln!(out, "  SUCCESS: {count} rules found");
                } else {
                    has_lint = true;
                    let _ = writeln!(err, "  FAILED:");
                    let mut message =
                        format!("lint error {} duplicate rule(s) found.\n", duplicates.len());
                    for duplicate in &duplicates {
                        message.push_str(&format!("Metric: {}\nLabel(s):\n", duplicate.metric));
                        for label in &duplicate.labels {
                            message.push_str(&format!("\t{}: {}\n", label.name, label.value));
                        }
                    }
                    message.push_str("Might cause inconsistency while recording expressions");
                    let _ = writeln!(err, "{message}");
                }
            }
        }
        let _ = writeln!(out);
    }
    if has_errors {
        return 1;
    }
    if has_lint && options.lint_fatal {
        return LINT_ERROR_EXIT;
    }
    0
}

/// Runs promtool-format unit test files; `run` are regexes selecting test groups by name.
pub fn test_rules(
    files: &[PathBuf],
    run: &[String],
    ignore_unknown_fields: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let mut patterns = Vec::with_capacity(run.len());
    for pattern in run {
        match Regex::new(pattern) {
            Ok(re) => patterns.push(re),
            Err(e) => {
                let _ = writeln!(err, "invalid --run pattern {pattern:?}: {e}");
                return 1;
            }
        }
    }
    let options = TestOptions { run: patterns, ignore_unknown_fields };
    unittest::run_files(files, &options, out, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, options: CheckOptions) -> (i32, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.yml");
        std::fs::write(&path, text).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = check_rules(&[path], options, &mut out, &mut err);
        (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
    }

    #[test]
    fn counts_rules_of_a_good_file() {
        let (code, out, _) = check("groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n  - alert: B\n    expr: up == 0\n", CheckOptions::default());
        assert_eq!(code, 0);
        assert!(out.contains("  SUCCESS: 2 rules found"), "{out}");
    }

    #[test]
    fn fails_a_bad_file_with_its_errors() {
        let (code, _, err) = check(
            "groups:\n- name: g\n  rules:\n  - record: a\n    expr: 'up +'\n",
            CheckOptions::default(),
        );
        assert_eq!(code, 1);
        assert!(err.starts_with("  FAILED:\n"), "{err}");
        assert!(err.contains("could not parse expression"), "{err}");
    }

    #[test]
    fn duplicates_are_a_lint_finding() {
        let text = "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n  - record: a\n    expr: up\n";
        let (code, _, err) = check(text, CheckOptions::default());
        assert_eq!(code, 0);
        assert!(
            err.contains("lint error 1 duplicate rule(s) found.\nMetric: a\nLabel(s):\n"),
            "{err}"
        );
        let (code, _, _) =
            check(text, CheckOptions { lint_fatal: true, ..CheckOptions::default() });
        assert_eq!(code, LINT_ERROR_EXIT);
    }
}
