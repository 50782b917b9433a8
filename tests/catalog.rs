//! Dashboards and alert rules may only use metric names that Strata exposes: every selector in
//! `dashboards/*.json` and `alerts/*.yml` is parsed with promql-parser and checked against the
//! catalog's own exposition. The rule files are also checked by the real `promtool` when it is
//! installed (always in CI).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use promql_parser::parser::{self, Expr};
use promql_parser::util::{walk_expr, ExprVisitor};
use strata::telemetry::catalog::{exposed_metric_names, Catalog};

struct Names(BTreeSet<String>);

impl ExprVisitor for Names {
    type Error = String;
    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, String> {
        let selector = match expr {
            Expr::VectorSelector(vs) => Some(vs),
            Expr::MatrixSelector(ms) => Some(&ms.vs),
            _ => None,
        };
        if let Some(vs) = selector {
            match &vs.name {
                Some(name) => {
                    self.0.insert(name.clone());
                }
                None => return Err(format!("selector without a literal metric name: {expr}")),
            }
        }
        Ok(true)
    }
}

fn metric_names(expr: &str) -> BTreeSet<String> {
    // Grafana's interval variables are not PromQL; give them a concrete value.
    let expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m");
    let parsed = parser::parse(&expr).unwrap_or_else(|e| panic!("cannot parse {expr:?}: {e}"));
    let mut names = Names(BTreeSet::new());
    walk_expr(&mut names, &parsed).unwrap_or_else(|e| panic!("{e}"));
    names.0
}

fn catalog_names() -> BTreeSet<String> {
    let catalog = Catalog::new();
    // Create one child per family so every family shows up in the exposition.
    catalog.ingest("remote_write_v1");
    catalog.forward_target("t");
    catalog.relabel_cache("ingest");
    exposed_metric_names(&catalog)
}

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no *.{ext} in {}", dir.display());
    out
}

fn dashboard_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                match (key.as_str(), item) {
                    ("expr", serde_json::Value::String(expr)) => out.push(expr.clone()),
                    _ => dashboard_exprs(item, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| dashboard_exprs(i, out)),
        _ => {}
    }
}

#[test]
fn dashboards_use_only_catalogued_metrics() {
    let known = catalog_names();
    for path in files("dashboards", "json") {
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut exprs = Vec::new();
        dashboard_exprs(&dashboard, &mut exprs);
        assert!(exprs.len() >= 10, "{}: only {} queries", path.display(), exprs.len());
        for expr in exprs {
            for name in metric_names(&expr) {
                assert!(
                    known.contains(&name),
                    "{}: {name} is not in the metric catalog (query {expr:?})",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn alerts_use_only_catalogued_metrics() {
    let known = catalog_names();
    // The self-monitoring rules; the platform's rules (infrastructure.yml, applications.yml)
    // are about the platform's metrics.
    let own = files("alerts", "yml").into_iter().filter(|path| {
        path.file_name().is_some_and(|name| name.to_string_lossy().starts_with("strata"))
    });
    for path in own {
        let rules: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let groups = rules["groups"].as_sequence().expect("groups");
        let mut checked = 0;
        for group in groups {
            for rule in group["rules"].as_sequence().expect("rules") {
                let expr = rule["expr"].as_str().expect("expr");
                for name in metric_names(expr) {
                    assert!(
                        known.contains(&name),
                        "{}: {name} is not in the metric catalog",
                        path.display()
                    );
                }
                checked += 1;
            }
        }
        assert!(checked > 0);
    }
}

#[test]
fn the_check_catches_unknown_names() {
    let known = catalog_names();
    let names = metric_names(
        "rate(strata_no_such_metric_total[5m]) / rate(strata_ingest_samples_received_total[5m])",
    );
    let unknown: Vec<_> = names.iter().filter(|n| !known.contains(*n)).collect();
    assert_eq!(unknown, ["strata_no_such_metric_total"]);
}

#[test]
fn promtool_accepts_the_rule_files() {
    let promtool = std::env::var("STRATA_PROMTOOL").unwrap_or_else(|_| "/usr/bin/promtool".into());
    if !Path::new(&promtool).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "promtool missing in CI: run scripts/install-peers.sh"
        );
        eprintln!("skipped: {promtool} not installed (scripts/install-peers.sh installs it)");
        return;
    }
    for path in files("alerts", "yml") {
        let output = std::process::Command::new(&promtool)
            .arg("check")
            .arg("rules")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "promtool check rules {}: {}{}",
            path.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
