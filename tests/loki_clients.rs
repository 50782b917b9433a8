//! Black-box tests with real Loki push clients: winston-loki (protobuf + snappy), pino-loki
//! (JSON, structured metadata) and python-logging-loki (JSON, one push per line):
//!
//! ```text
//! client ─POST /loki/api/v1/push─► strata ─forward.loki (protobuf + snappy)─► test Loki receiver
//! ```
//!
//! Every line a client sent must arrive exactly once in a stream relabeled as configured
//! (ingest rules add a label and drop a stream, target rules rename a label), under the
//! client's `X-Scope-OrgID` (or `fake`, or the target's `tenant_id`). The first tests point
//! the clients straight at the test receiver, which checks the harness itself. Without the
//! clients (`scripts/install-peers.sh`) the tests print `skipped: ...`, except under
//! `CI=true`, where they fail.

mod common;

use std::collections::BTreeMap;

use common::clients::{
    node_clients, node_command, python_clients, python_command, run_client, ClientRun,
};
use common::receivers::{LokiLine, LokiReceiver};
use common::signals::{start_strata, Strata, FAST_QUEUE, POLL, WAIT};
use common::wait_until;

const WINSTON_LINES: usize = 300;
const WINSTON_STREAMS: usize = 3;
const PINO_LINES: usize = 150;
const PYTHON_LINES: usize = 40;

async fn winston(host: &str, lines: usize, tenant: Option<&str>) -> ClientRun {
    let Some((node, modules)) = node_clients() else { unreachable!("checked by the caller") };
    let mut cmd = node_command(&node, &modules, "winston_push.js");
    cmd.args(["--host", host, "--lines", &lines.to_string()]).args([
        "--streams",
        &WINSTON_STREAMS.to_string(),
        "--job",
        "shop",
    ]);
    if let Some(t) = tenant {
        cmd.args(["--tenant", t]);
    }
    let run = run_client("winston_push", &mut cmd).await;
    run.assert_success("winston_push.js");
    run
}

async fn pino(host: &str, lines: usize, tenant: Option<&str>) -> ClientRun {
    let Some((node, modules)) = node_clients() else { unreachable!("checked by the caller") };
    let mut cmd = node_command(&node, &modules, "pino_push.js");
    cmd.args(["--host", host, "--lines", &lines.to_string(), "--app", "pino-app"]);
    if let Some(t) = tenant {
        cmd.args(["--tenant", t]);
    }
    let run = run_client("pino_push", &mut cmd).await;
    run.assert_success("pino_push.js");
    run
}

async fn python_logging(url: &str, lines: usize, tenant: Option<&str>) -> ClientRun {
    let Some(python) = python_clients() else { unreachable!("checked by the caller") };
    let mut cmd = python_command(&python, "logging_loki_push.py");
    cmd.args(["--url", url, "--lines", &lines.to_string(), "--app", "py-app"]);
    if let Some(t) = tenant {
        cmd.args(["--tenant", t]);
    }
    let run = run_client("logging_loki_push", &mut cmd).await;
    run.assert_success("logging_loki_push.py");
    run
}

/// How often each line arrived.
fn line_counts<'a>(lines: impl IntoIterator<Item = &'a LokiLine>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for l in lines {
        *counts.entry(l.entry.line.clone()).or_default() += 1;
    }
    counts
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Waits until `loki` holds `count` lines and strata counts `count` entries sent to `target`.
async fn wait_for_lines(strata: &Strata, loki: &LokiReceiver, target: &str, count: usize) {
    wait_until(&format!("{count} lines at the Loki receiver"), WAIT, POLL, || {
        strata.guard.assert_running();
        async move {
            let received = loki.lines().len();
            let sent =
                strata.metric("strata_forward_log_entries_sent_total", &[("target", target)]).await;
            if received >= count && sent >= count as f64 {
                Ok(())
            } else {
                Err(format!("{received} lines received, strata counts {sent} sent"))
            }
        }
    })
    .await;
}

/// The pino line's JSON `msg` (pino-loki sends the whole pino object as the line).
fn pino_msg(line: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("pino line is JSON ({e}): {line}"));
    v["msg"].as_str().unwrap_or_else(|| panic!("msg in {line}")).to_owned()
}

// ---------------------------------------------------------------------------------------------
// The harness on its own: clients → test receiver
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn winston_loki_reaches_the_test_receiver_directly() {
    if node_clients().is_none() {
        return;
    }
    let loki = LokiReceiver::start().await;
    winston(&loki.base, 30, Some("direct")).await;
    let pushes = loki.pushes();
    assert!(!pushes.is_empty());
    for push in &pushes {
        assert_eq!(push.content_type, "application/x-protobuf", "winston-loki json: false");
        assert_eq!(push.tenant.as_deref(), Some("direct"));
    }
    let lines = loki.lines();
    let expected: BTreeMap<String, usize> =
        (0..30).map(|i| (format!("winston line {i}"), 1)).collect();
    assert_eq!(line_counts(&lines), expected);
    for l in &lines {
        let i: usize = l.entry.line.rsplit(' ').next().unwrap().parse().unwrap();
        let shard = (i % WINSTON_STREAMS).to_string();
        assert_eq!(l.labels, labels(&[("level", "info"), ("job", "shop"), ("shard", &shard)]));
        assert!(l.entry.timestamp_ns > 0);
    }
    assert!(loki.errors().is_empty(), "{:?}", loki.errors());
}

#[tokio::test]
async fn pino_loki_and_python_logging_loki_reach_the_test_receiver_directly() {
    if node_clients().is_none() || python_clients().is_none() {
        return;
    }
    let loki = LokiReceiver::start().await;
    pino(&loki.base, 20, Some("pino-tenant")).await;
    python_logging(&loki.push_url, 6, None).await;
    let lines = loki.lines();
    let pino_lines: Vec<&LokiLine> = lines
        .iter()
        .filter(|l| l.labels.get("app").map(String::as_str) == Some("pino-app"))
        .collect();
    assert_eq!(pino_lines.len(), 20);
    for l in &pino_lines {
        assert_eq!(l.tenant.as_deref(), Some("pino-tenant"));
        let msg = pino_msg(&l.entry.line);
        let i = msg.trim_start_matches("pino line ");
        assert_eq!(l.entry.structured_metadata.get("request_id"), Some(&format!("req-{i}")));
    }
    let py_lines: Vec<&LokiLine> = lines
        .iter()
        .filter(|l| l.labels.get("app").map(String::as_str) == Some("py-app"))
        .collect();
    let expected: BTreeMap<String, usize> =
        (0..6).map(|i| (format!("python line {i}"), 1)).collect();
    assert_eq!(line_counts(py_lines.iter().copied()), expected);
    for l in &py_lines {
        assert_eq!(l.tenant, None);
        assert_eq!(l.labels["logger"], "strata-test");
    }
    for push in loki.pushes() {
        assert_eq!(push.content_type, "application/json");
    }
    assert!(loki.errors().is_empty(), "{:?}", loki.errors());
}

// ---------------------------------------------------------------------------------------------
// Through strata
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn winston_loki_protobuf_through_strata_is_relabeled_and_keeps_its_tenant() {
    if node_clients().is_none() {
        return;
    }
    let loki = LokiReceiver::start().await;
    let strata = start_strata(&format!(
        r#"
ingest:
  loki:
    relabel_configs:
      - source_labels: [shard]
        regex: "2"
        action: drop
      - target_label: cluster
        replacement: e2e
forward:
  loki:
    - name: loki_main
      url: {url}
      relabel_configs:
        - source_labels: [job]
          target_label: app
        - regex: job
          action: labeldrop
      queue_config: {FAST_QUEUE}
"#,
        url = loki.push_url
    ))
    .await;
    winston(&strata.base, WINSTON_LINES, Some("team-a")).await;
    let kept: Vec<usize> = (0..WINSTON_LINES).filter(|i| i % WINSTON_STREAMS != 2).collect();
    wait_for_lines(&strata, &loki, "loki_main", kept.len()).await;

    let lines = loki.lines();
    let expected: BTreeMap<String, usize> =
        kept.iter().map(|i| (format!("winston line {i}"), 1)).collect();
    assert_eq!(line_counts(&lines), expected, "every kept line once, no line of shard 2");
    for l in &lines {
        let i: usize = l.entry.line.rsplit(' ').next().unwrap().parse().unwrap();
        let shard = (i % WINSTON_STREAMS).to_string();
        assert_eq!(
            l.labels,
            labels(&[("level", "info"), ("app", "shop"), ("shard", &shard), ("cluster", "e2e")]),
            "ingest rule added cluster, target rule renamed job to app"
        );
        assert_eq!(l.tenant.as_deref(), Some("team-a"), "X-Scope-OrgID in → out");
        assert!(l.entry.timestamp_ns > 0);
    }
    // Entries of a stream keep their order.
    for shard in ["0", "1"] {
        let order: Vec<usize> = lines
            .iter()
            .filter(|l| l.labels["shard"] == shard)
            .map(|l| l.entry.line.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(order, sorted, "shard {shard} in order");
    }
    for push in loki.pushes() {
        assert_eq!(push.content_type, "application/x-protobuf");
    }
    let dropped = strata
        .metric(
            "strata_ingest_items_dropped_total",
            &[("protocol", "loki_push"), ("reason", "relabel")],
        )
        .await;
    assert_eq!(dropped, (WINSTON_LINES - kept.len()) as f64, "the lines of shard 2");
    assert!(loki.errors().is_empty(), "{:?}", loki.errors());
    strata.assert_ready().await;
}

#[tokio::test]
async fn pino_loki_json_through_strata_keeps_structured_metadata() {
    if node_clients().is_none() {
        return;
    }
    let loki = LokiReceiver::start().await;
    let strata = start_strata(&format!(
        "forward:\n  loki:\n    - name: loki_json\n      url: {}\n      queue_config: {FAST_QUEUE}\n",
        loki.push_url
    ))
    .await;
    pino(&strata.base, PINO_LINES, None).await;
    wait_for_lines(&strata, &loki, "loki_json", PINO_LINES).await;

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for l in &loki.lines() {
        *counts.entry(pino_msg(&l.entry.line)).or_default() += 1;
        assert_eq!(l.tenant.as_deref(), Some("fake"), "no X-Scope-OrgID: Loki's default");
        assert_eq!(l.labels.get("app").map(String::as_str), Some("pino-app"));
        assert_eq!(l.labels.get("level").map(String::as_str), Some("info"));
        assert!(l.labels.contains_key("hostname"), "{:?}", l.labels);
        let msg = pino_msg(&l.entry.line);
        let i = msg.trim_start_matches("pino line ");
        assert_eq!(
            l.entry.structured_metadata.get("request_id"),
            Some(&format!("req-{i}")),
            "structured metadata carried: {:?}",
            l.entry.structured_metadata
        );
        // pino's ms timestamp, in ns.
        let time_ms = serde_json::from_str::<serde_json::Value>(&l.entry.line).unwrap()["time"]
            .as_i64()
            .unwrap();
        assert_eq!(l.entry.timestamp_ns, i128::from(time_ms) * 1_000_000, "timestamp kept");
    }
    let expected: BTreeMap<String, usize> =
        (0..PINO_LINES).map(|i| (format!("pino line {i}"), 1)).collect();
    assert_eq!(counts, expected, "every line exactly once");
    assert!(loki.errors().is_empty(), "{:?}", loki.errors());
    strata.assert_ready().await;
}

#[tokio::test]
async fn python_logging_loki_through_strata_gets_the_targets_tenant() {
    if python_clients().is_none() {
        return;
    }
    let loki = LokiReceiver::start().await;
    let default_tenant = LokiReceiver::start().await;
    let strata = start_strata(&format!(
        r#"
forward:
  loki:
    - name: fixed_tenant
      url: {fixed}
      tenant_id: platform
      queue_config: {FAST_QUEUE}
    - name: own_tenant
      url: {own}
      queue_config: {FAST_QUEUE}
"#,
        fixed = loki.push_url,
        own = default_tenant.push_url
    ))
    .await;
    python_logging(&format!("{}/loki/api/v1/push", strata.base), PYTHON_LINES, Some("py-team"))
        .await;
    wait_for_lines(&strata, &loki, "fixed_tenant", PYTHON_LINES).await;
    wait_for_lines(&strata, &default_tenant, "own_tenant", PYTHON_LINES).await;

    let expected: BTreeMap<String, usize> =
        (0..PYTHON_LINES).map(|i| (format!("python line {i}"), 1)).collect();
    for (receiver, tenant) in [(&loki, "platform"), (&default_tenant, "py-team")] {
        let lines = receiver.lines();
        assert_eq!(line_counts(&lines), expected, "{tenant}: every line exactly once");
        for l in &lines {
            assert_eq!(l.tenant.as_deref(), Some(tenant));
            let i: usize = l.entry.line.rsplit(' ').next().unwrap().parse().unwrap();
            let severity = if i % 2 == 1 { "warning" } else { "info" };
            assert_eq!(
                l.labels,
                labels(&[("app", "py-app"), ("logger", "strata-test"), ("severity", severity)])
            );
        }
        assert!(receiver.errors().is_empty(), "{:?}", receiver.errors());
    }
    strata.assert_ready().await;
}
