//! The promtool conformance files (`rules/` under the conformance dir: `STRATA_CONFORMANCE_DIR`,
//! default `../shared/conformance` next to the crate) behave as promtool says they do.
//!
//! Expected outcomes come from Prometheus' own tests of promtool (prometheus/prometheus
//! `cmd/promtool/unittest_test.go` `TestRulesUnitTest`, `TestRulesUnitTestRun`, and
//! `cmd/promtool/main_test.go` `TestCheckRules*`, `TestCheckDuplicates`), for Prometheus 3.x
//! where the `@` modifier and negative offsets are always enabled. One documented difference:
//! `unittest.yml` has native-histogram cases, which Strata's engine does not support; they are
//! skipped (and reported as `SKIPPED`), and the rest of the file must pass.
//!
//! When the directory is missing the test fails under `CI=true` and is skipped otherwise.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use strata::rules::cli::{check_rules, test_rules, CheckOptions, LINT_ERROR_EXIT};

fn rules_dir() -> Option<PathBuf> {
    let base = std::env::var_os("STRATA_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance"));
    let dir = base.join("rules");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "conformance dir {} is missing (set STRATA_CONFORMANCE_DIR)",
        dir.display()
    );
    eprintln!("skipping: {} not found", dir.display());
    None
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn test(dir: &Path, file: &str, run: &[&str], ignore_unknown_fields: bool) -> Run {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let run: Vec<String> = run.iter().map(|s| (*s).to_owned()).collect();
    let code = test_rules(&[dir.join(file)], &run, ignore_unknown_fields, &mut out, &mut err);
    Run { code, out: String::from_utf8(out).unwrap(), err: String::from_utf8(err).unwrap() }
}

fn check(dir: &Path, file: &str, options: CheckOptions) -> Run {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = check_rules(&[dir.join(file)], options, &mut out, &mut err);
    Run { code, out: String::from_utf8(out).unwrap(), err: String::from_utf8(err).unwrap() }
}

/// `strata test rules` exit codes, as promtool's `RulesUnitTest` returns them.
const UNIT_TESTS: [(&str, &[&str], bool, i32); 17] = [
    ("unittest.yml", &[], false, 0),
    ("bad-input-series.yml", &[], false, 1),
    ("bad-promql.yml", &[], false, 1),
    ("bad-rules-syntax-test.yml", &[], false, 1),
    ("bad-rules-error-test.yml", &[], false, 1),
    ("failing.yml", &[], false, 1),
    ("at-modifier-test.yml", &[], false, 0),
    ("no-test-group-interval.yml", &[], false, 0),
    ("start-time-test.yml", &[], false, 0),
    ("rules_run.yml", &[], false, 1),
    ("rules_run.yml", &["correct", "wrong"], false, 1),
    ("rules_run.yml", &["correct"], false, 0),
    ("rules_run.yml", &["wrong"], false, 1),
    ("rules_run_extrafields.yml", &[], true, 0),
    ("rules_run_no_fuzzy.yml", &[], false, 1),
    ("rules_run_fuzzy.yml", &["correct"], false, 0),
    ("rules_run_fuzzy.yml", &["wrong"], false, 1),
];

/// `strata check rules` exit codes (promtool `CheckRules`; duplicates are a lint, exit 0).
const CHECKS: [(&str, i32); 8] = [
    ("rules.yml", 0),
    ("rules-bad.yml", 1),
    ("rules_duplicates.yml", 0),
    ("rules_extrafields.yml", 1),
    ("rules_large.yml", 0),
    ("bad-rules-syntax.yml", 1),
    ("bad-rules-error.yml", 0),
    ("at-modifier.yml", 0),
];

#[test]
fn every_file_has_a_documented_outcome() {
    let Some(dir) = rules_dir() else { return };
    let documented: BTreeSet<&str> = UNIT_TESTS
        .iter()
        .map(|t| t.0)
        .chain(CHECKS.iter().map(|c| c.0))
        .chain(["rules_run_extrafields.yml", "LICENSE"])
        .collect();
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let missing: Vec<&String> =
        present.iter().filter(|f| !documented.contains(f.as_str())).collect();
    assert!(missing.is_empty(), "files without an expected outcome: {missing:?}");
}

#[test]
fn unit_test_files_pass_or_fail_as_promtool_says() {
    let Some(dir) = rules_dir() else { return };
    let mut wrong = Vec::new();
    for (file, run, ignore_unknown_fields, expected) in UNIT_TESTS {
        let result = test(&dir, file, run, ignore_unknown_fields);
        if result.code != expected {
            wrong.push(format!(
                "{file} {run:?}: exit {} (want {expected})\n{}{}",
                result.code, result.out, result.err
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn failures_print_a_diff_of_expected_and_got() {
    let Some(dir) = rules_dir() else { return };
    let result = test(&dir, "failing.yml", &[], false);
    assert!(result.out.starts_with("Unit Testing:  "), "{}", result.out);
    assert!(result.err.contains("  FAILED:"), "{}", result.err);
    assert!(
        result.err.contains("    name: Failing test,\n    expr: \"test\", time: 0s,\n        exp: {__name__=\"test\"} 1E+00\n        got: {__name__=\"test\"} 0E+00"),
        "{}",
        result.err
    );
    assert!(
        result
            .err
            .contains("alertname: AlwaysFiring, time: 5m, \n        exp:[], \n        got:[\n"),
        "{}",
        result.err
    );
    let rules_error = test(&dir, "bad-rules-error-test.yml", &[], false);
    assert!(rules_error.err.contains("    rule: joined, time: 0s, err: "), "{}", rules_error.err);
}

#[test]
fn native_histogram_cases_are_reported_as_skipped() {
    let Some(dir) = rules_dir() else { return };
    let result = test(&dir, "unittest.yml", &[], false);
    assert!(result.out.contains("SKIPPED: expr \"test_histogram\""), "{}", result.out);
    assert!(result.out.contains("  SUCCESS"), "{}", result.out);
}

#[test]
fn unknown_fields_in_rule_files_fail_unless_ignored() {
    let Some(dir) = rules_dir() else { return };
    assert_eq!(test(&dir, "rules_run_extrafields.yml", &[], false).code, 1);
    let strict = check(&dir, "rules_extrafields.yml", CheckOptions::default());
    assert!(strict.err.contains("field namespace not found"), "{}", strict.err);
    let lenient = check(
        &dir,
        "rules_extrafields.yml",
        CheckOptions { ignore_unknown_fields: true, ..CheckOptions::default() },
    );
    assert_eq!(lenient.code, 0, "{}", lenient.err);
}

#[test]
fn rule_files_check_as_promtool_says() {
    let Some(dir) = rules_dir() else { return };
    let mut wrong = Vec::new();
    for (file, expected) in CHECKS {
        let result = check(&dir, file, CheckOptions::default());
        if result.code != expected {
            wrong.push(format!(
                "{file}: exit {} (want {expected})\n{}{}",
                result.code, result.out, result.err
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let good = check(&dir, "rules.yml", CheckOptions::default());
    assert!(good.out.contains("  SUCCESS: 5 rules found"), "{}", good.out);
    let bad = check(&dir, "rules-bad.yml", CheckOptions::default());
    assert!(bad.err.contains("undefined variable \"$label\""), "{}", bad.err);
    let duplicates = check(&dir, "rules_duplicates.yml", CheckOptions::default());
    assert!(
        duplicates.err.contains(
            "lint error 1 duplicate rule(s) found.\nMetric: job:test:count_over_time1m\n"
        ),
        "{}",
        duplicates.err
    );
    let fatal = check(
        &dir,
        "rules_duplicates.yml",
        CheckOptions { lint_fatal: true, ..CheckOptions::default() },
    );
    assert_eq!(fatal.code, LINT_ERROR_EXIT);
}
