//! Runs every Prometheus `promqltest` script of the shared conformance corpus
//! (`$STRATA_CONFORMANCE_DIR/promql/*.test`, default `../shared/conformance` next to the crate)
//! through `strata::promql::promqltest`, skipping what `tests/promql-unsupported.yml` lists with
//! its reasons. Fails if any case that is not skipped fails; without the corpus it fails under
//! CI (`CI=true`) and otherwise prints why it ran nothing.

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
    println!("{}", String::from_utf8_lossy(&out));
    println!("promql conformance: {totals}");
    assert_eq!(totals.failed, 0, "promql conformance: {totals}");
}
