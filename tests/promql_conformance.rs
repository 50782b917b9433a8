//! Runs every Prometheus `promqltest` script of the shared conformance corpus
//! (`$STRATA_CONFORMANCE_DIR/promql/*.test`, default `../shared/conformance` next to the crate)
//! through `strata::promql::promqltest`, skipping what `tests/promql-unsupported.yml` lists with
//! its reasons, and Strata's own scripts in `tests/promql/`. Fails if any case that is not
//! skipped fails; without the corpus it fails under CI (`CI=true`) and otherwise prints why it
//! ran nothing.

use std::path::PathBuf;

use strata::promql::promqltest::{run_file, Totals, Unsupported};

fn conformance_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let base = std::env::var_os("STRATA_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/conformance"));
    let base = if base.is_relative() { root.join(base) } else { base };
    base.join("promql")
}

#[test]
fn promql_conformance_scripts_pass() {
    let dir = conformance_dir();
    if !dir.is_dir() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "conformance scripts not found at {} (set STRATA_CONFORMANCE_DIR)",
            dir.display()
        );
        eprintln!("skipping: conformance scripts not found at {}", dir.display());
        return;
    }
    let list_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/promql-unsupported.yml");
    let unsupported = Unsupported::load(&list_path).expect("tests/promql-unsupported.yml");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read the conformance dir")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "test"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.test files in {}", dir.display());

    let verbose = std::env::var_os("STRATA_CONFORMANCE_VERBOSE").is_some();
    let mut totals = Totals::default();
    let mut out = Vec::new();
    for file in &files {
        let report = run_file(file, &unsupported);
        totals.add(&report);
        report.print(&mut out, verbose).expect("write to memory");
    }
    eprintln!("{}", String::from_utf8_lossy(&out));
    eprintln!("promql conformance: {totals}");
    assert_eq!(totals.failed, 0, "promql conformance: {totals}");
}

/// Strata's own scripts in `tests/promql/` (functions and annotation texts the shared corpus
/// does not cover); nothing is skipped there.
#[test]
fn strata_promql_scripts_pass() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/promql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read tests/promql")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "test"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.test files in {}", dir.display());
    let mut totals = Totals::default();
    let mut out = Vec::new();
    for file in &files {
        let report = run_file(file, &Unsupported::default());
        totals.add(&report);
        report.print(&mut out, true).expect("write to memory");
    }
    eprintln!("{}", String::from_utf8_lossy(&out));
    assert_eq!(totals.failed, 0, "strata promql scripts: {totals}");
    assert_eq!(totals.skipped, 0);
    assert!(totals.passed > 0);
}

/// `strata test promql` as users run it: failures named by file and line with exit code 1, and
/// an `--unsupported` list turning a case into a reported skip.
#[test]
fn cli_reports_failures_and_skips() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("demo.test");
    std::fs::write(
        &script,
        "load 1m\n  up{job=\"a\"} 1 2\n\neval instant at 1m up\n  up{job=\"a\"} 2\n\neval instant at 1m up\n  up{job=\"a\"} 3\n",
    )
    .expect("write script");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["test", "promql"])
        .arg(&script)
        .output()
        .expect("run strata");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL demo.test:7: up"), "{stdout}");
    assert!(stdout.contains("expected 3, got 2"), "{stdout}");
    assert!(stdout.contains("total: 1 passed, 1 failed, 0 skipped"), "{stdout}");

    let list = dir.path().join("unsupported.yml");
    std::fs::write(&list, "cases:\n  - at: demo.test:7\n    reason: demo of a skip\n")
        .expect("write list");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["test", "promql", "--verbose", "--unsupported"])
        .arg(&list)
        .arg(&script)
        .output()
        .expect("run strata");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("SKIP demo.test:7: up (demo of a skip)"), "{stdout}");
    assert!(stdout.contains("total: 1 passed, 0 failed, 1 skipped"), "{stdout}");
}
