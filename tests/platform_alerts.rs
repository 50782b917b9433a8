//! The rule files under `alerts/` (the platform's alert rules and Strata's self-monitoring
//! rules) pass `strata check rules`, and their promtool-format unit tests in `alerts/tests/`
//! pass `strata test rules` — the same files pass `promtool test rules` too (checked when the
//! rules were written, and by `tests/catalog.rs` for `check rules`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::strata_bin;

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort();
    found
}

fn run(args: &[&str], files: &[PathBuf]) -> (bool, String) {
    let output = Command::new(strata_bin()).args(args).args(files).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn platform_and_self_monitoring_rules_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts");
    let rules = files(&dir, ".yml");
    assert!(rules.len() >= 3, "{rules:?}");
    let (ok, text) = run(&["check", "rules"], &rules);
    assert!(ok, "{text}");
    for name in ["infrastructure.yml", "applications.yml", "strata.yml"] {
        assert!(text.contains(name), "{name} not checked: {text}");
    }
    assert!(text.contains("SUCCESS: 3 rules found"), "{text}");
    assert!(text.contains("SUCCESS: 2 rules found"), "{text}");
}

#[test]
fn every_alert_rule_has_passing_unit_tests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts");
    let tests = files(&dir.join("tests"), ".test.yml");
    assert_eq!(tests.len(), 3, "{tests:?}");
    let (ok, text) = run(&["test", "rules"], &tests);
    assert!(ok, "{text}");
    assert!(!text.contains("FAILED"), "{text}");
    // Every alert of every rule file is exercised by some test.
    let mut untested = Vec::new();
    let all_tests: String = tests.iter().map(|t| std::fs::read_to_string(t).unwrap()).collect();
    for rule_file in files(&dir, ".yml") {
        let text = std::fs::read_to_string(&rule_file).unwrap();
        for line in text.lines() {
            if let Some(name) = line.trim().strip_prefix("- alert: ") {
                if !all_tests.contains(&format!("alertname: {name}")) {
                    untested.push(name.to_owned());
                }
            }
        }
    }
    assert!(untested.is_empty(), "alerts without a unit test: {untested:?}");
}
