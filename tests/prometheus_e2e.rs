//! Real-peer end-to-end test of the remote-write path:
//!
//! ```text
//! node_exporter ◄─scrape 1s─ Prometheus A ─remote-write 1.0─► strata ─remote-write 1.0─► Prometheus B
//!                                                     (relabel: drop node_cpu_seconds_total,
//!                                                      add strata_pipeline="e2e")
//! ```
//!
//! The peers are Debian's `prometheus` (2.42) and `prometheus-node-exporter`, installed by
//! `scripts/install-peers.sh`. Without them the tests print `skipped: ...`, except under
//! `CI=true`, where they fail.

mod common;

use std::cell::Cell;
use std::time::Duration;

use common::*;

/// Upper bound of every wait. Prometheus sends its first remote-write ~5 s after start.
const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(500);
const SCRAPE_JOB: &str = "node";

fn prometheus_a_config(node_exporter_port: u16, remote_write_url: &str) -> String {
    format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: {SCRAPE_JOB}
    static_configs:
      - targets: ["127.0.0.1:{node_exporter_port}"]
remote_write:
  - url: {remote_write_url}
    remote_timeout: 5s
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
    metadata_config:
      send_interval: 1s
"#
    )
}

const PROMETHEUS_B_CONFIG: &str = "global:\n  scrape_interval: 1s\nscrape_configs: []\n";

fn strata_config(strata_port: u16, sink_port: u16) -> String {
    format!(
        r#"server:
  http_listen_address: 127.0.0.1:{strata_port}
ingest:
  remote_write:
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: node_cpu_seconds_total
        action: drop
      - target_label: strata_pipeline
        replacement: e2e
forward:
  remote_write:
    - name: sink_b
      url: http://127.0.0.1:{sink_port}/api/v1/write
      protocol_version: 1
      write_relabel_configs: []
      queue_config:
        batch_send_deadline: 1s
"#
    )
}

/// Prometheus B: a remote-write receiver that scrapes nothing, so every sample it appends
/// arrived by remote write.
async fn start_prometheus_b(prom: &std::path::Path) -> PromServer {
    let b = spawn_prometheus(
        prom,
        "prometheus_b",
        free_port(),
        PROMETHEUS_B_CONFIG,
        &["--web.enable-remote-write-receiver"],
    );
    wait_http_ok(&b.guard, &format!("{}/-/ready", b.base()), WAIT).await;
    b
}

/// node_exporter and Prometheus A scraping it every second and remote-writing to `rw_url`.
async fn start_scraper(
    prom: &std::path::Path,
    node_exporter: &std::path::Path,
    rw_url: &str,
) -> (ChildGuard, u16, PromServer) {
    let ne_port = free_port();
    let ne = spawn_node_exporter(node_exporter, ne_port);
    wait_http_ok(&ne, &format!("http://127.0.0.1:{ne_port}/metrics"), WAIT).await;
    let a = spawn_prometheus(
        prom,
        "prometheus_a",
        free_port(),
        &prometheus_a_config(ne_port, rw_url),
        &[],
    );
    wait_http_ok(&a.guard, &format!("{}/-/ready", a.base()), WAIT).await;
    (ne, ne_port, a)
}

/// Non-empty instant vector of `expr` on `base` (Err while empty, for [`wait_until`]).
async fn nonempty(base: &str, expr: &str) -> Result<Vec<PromSample>, String> {
    let v = try_prom_vector(base, expr).await?;
    if v.is_empty() {
        Err(format!("`{expr}` is empty"))
    } else {
        Ok(v)
    }
}

/// Sum of `prometheus_tsdb_head_samples_appended_total` (all `type`s) on a Prometheus'
/// own `/metrics`.
async fn head_samples_appended(base: &str) -> Result<f64, String> {
    let samples = try_scrape(base).await?;
    sum_samples(&samples, "prometheus_tsdb_head_samples_appended_total", &[])
        .ok_or_else(|| "prometheus_tsdb_head_samples_appended_total not exposed".to_string())
}

fn label<'a>(s: &'a PromSample, name: &str) -> Option<&'a str> {
    s.0.get(name).map(String::as_str)
}

#[tokio::test]
async fn remote_write_through_strata_relabels_and_forwards_every_sample() {
    let Some(prom) = prometheus_bin() else { return };
    let Some(node_exporter) = node_exporter_bin() else { return };

    let b = start_prometheus_b(&prom).await;

    let strata_port = free_port();
    let strata_base = format!("http://127.0.0.1:{strata_port}");
    let (strata, _strata_dir) = spawn_strata(&strata_config(strata_port, b.port));
    wait_http_ok(&strata, &format!("{strata_base}/metrics"), WAIT).await;

    let (ne, ne_port, a) =
        start_scraper(&prom, &node_exporter, &format!("{strata_base}/api/v1/write")).await;
    let instance = format!("127.0.0.1:{ne_port}");

    // 1. Relabeled series arrive in B.
    for metric in ["node_load1", "node_memory_MemTotal_bytes"] {
        let expr = format!(r#"{metric}{{strata_pipeline="e2e"}}"#);
        let got = wait_until(&format!("`{expr}` in B"), WAIT, POLL, || async {
            strata.assert_running();
            a.guard.assert_running();
            b.guard.assert_running();
            nonempty(&b.base(), &expr).await
        })
        .await;
        for s in &got {
            assert_eq!(label(s, "job"), Some(SCRAPE_JOB), "{metric} in B: {s:?}");
            assert_eq!(label(s, "instance"), Some(instance.as_str()), "{metric} in B: {s:?}");
            assert_eq!(label(s, "strata_pipeline"), Some("e2e"), "{metric} in B: {s:?}");
        }
    }

    // Let several scrapes flow through (several remote-write batches, not just the first).
    let expr = r#"count_over_time(node_load1{strata_pipeline="e2e"}[5m]) >= 5"#;
    wait_until("5 samples of node_load1 in B", WAIT, POLL, || async {
        strata.assert_running();
        a.guard.assert_running();
        nonempty(&b.base(), expr).await
    })
    .await;

    // 2. The dropped family exists at the source.
    let in_a = nonempty(&a.base(), "count(node_cpu_seconds_total)").await;
    assert!(
        in_a.is_ok(),
        "A must have node_cpu_seconds_total (else the drop proves nothing): {in_a:?}"
    );

    // 3. Stop A (SIGTERM; it flushes its remote-write queue on the way out).
    let status = a.guard.terminate(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "Prometheus A did not stop cleanly: {status:?}");
    ne.kill();

    // 4. Strata's forwarded count settles and equals what B appended. B scrapes nothing, so
    //    all of its appended samples came from strata.
    let last_sent = Cell::new(-1.0_f64);
    let stable_polls = Cell::new(0_u32);
    let sent = wait_until(
        "strata_forward_samples_sent_total{target=\"sink_b\"} stable and == B's appended samples",
        WAIT,
        Duration::from_secs(1),
        || async {
            strata.assert_running();
            b.guard.assert_running();
            let samples = try_scrape(&strata_base).await?;
            let sent = sum_samples(
                &samples,
                "strata_forward_samples_sent_total",
                &[("target", "sink_b")],
            )
            .ok_or("strata /metrics has no strata_forward_samples_sent_total{target=\"sink_b\"}")?;
            let appended = head_samples_appended(&b.base()).await?;
            if sent == last_sent.get() {
                stable_polls.set(stable_polls.get() + 1);
            } else {
                stable_polls.set(0);
                last_sent.set(sent);
            }
            if sent > 0.0 && sent == appended && stable_polls.get() >= 2 {
                Ok(sent)
            } else {
                Err(format!(
                    "strata sent {sent}, B appended {appended}, unchanged for {} polls",
                    stable_polls.get()
                ))
            }
        },
    )
    .await;

    // 5. Strata's own accounting: received - dropped == forwarded, and the only drops are the
    //    relabel drop of node_cpu_seconds_total.
    let samples = try_scrape(&strata_base).await.expect("scrape strata /metrics");
    let received = sum_samples(
        &samples,
        "strata_ingest_samples_received_total",
        &[("protocol", "remote_write_v1")],
    )
    .expect(
        "strata /metrics has strata_ingest_samples_received_total{protocol=\"remote_write_v1\"}",
    );
    let dropped = sum_samples(&samples, "strata_ingest_items_dropped_total", &[]).unwrap_or(0.0);
    let dropped_relabel =
        sum_samples(&samples, "strata_ingest_items_dropped_total", &[("reason", "relabel")])
            .unwrap_or(0.0);
    let drops_by_reason: Vec<_> = samples
        .iter()
        .filter(|s| s.name == "strata_ingest_items_dropped_total")
        .map(|s| (s.labels.clone(), s.value))
        .collect();
    eprintln!(
        "strata: received {received}, dropped {dropped} ({drops_by_reason:?}), forwarded {sent}"
    );
    assert!(dropped_relabel > 0.0, "no relabel drops counted: {drops_by_reason:?}");
    assert_eq!(dropped, dropped_relabel, "drops other than relabel: {drops_by_reason:?}");
    assert_eq!(
        received - dropped,
        sent,
        "received {received} - dropped {dropped} != forwarded {sent}"
    );

    // 6. With everything flushed: no node_cpu_seconds_total in B, and every series in B carries
    //    the pipeline label and A's job.
    let cpu = prom_vector(&b.base(), r#"count({__name__="node_cpu_seconds_total"})"#).await;
    assert!(cpu.is_empty(), "node_cpu_seconds_total reached B: {cpu:?}");
    let all = prom_vector(&b.base(), r#"count by (__name__) ({__name__=~".+"})"#).await;
    assert!(all.len() > 5, "too few metric names in B: {all:?}");
    let unlabeled =
        prom_vector(&b.base(), r#"count by (__name__) ({__name__=~".+", strata_pipeline!="e2e"})"#)
            .await;
    assert!(unlabeled.is_empty(), "series in B without strata_pipeline=\"e2e\": {unlabeled:?}");
    let other_job = prom_vector(
        &b.base(),
        &format!(r#"count by (__name__, job) ({{__name__=~".+", job!="{SCRAPE_JOB}"}})"#),
    )
    .await;
    assert!(other_job.is_empty(), "series in B without job=\"{SCRAPE_JOB}\": {other_job:?}");

    let status = strata.terminate(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "strata did not stop cleanly: {status:?}");
}

/// The same peers wired directly (A → B, no strata): proves the peer set-up, flags and
/// timings on this machine, so a failure of the test above points at strata.
#[tokio::test]
async fn peers_baseline_prometheus_remote_writes_to_prometheus() {
    let Some(prom) = prometheus_bin() else { return };
    let Some(node_exporter) = node_exporter_bin() else { return };

    let b = start_prometheus_b(&prom).await;
    let (ne, _ne_port, a) =
        start_scraper(&prom, &node_exporter, &format!("{}/api/v1/write", b.base())).await;

    for expr in ["node_load1", "node_cpu_seconds_total"] {
        let got = wait_until(&format!("`{expr}` in B"), WAIT, POLL, || async {
            a.guard.assert_running();
            b.guard.assert_running();
            nonempty(&b.base(), expr).await
        })
        .await;
        assert!(got.iter().all(|s| label(s, "job") == Some(SCRAPE_JOB)), "{got:?}");
        assert!(got.iter().all(|s| label(s, "strata_pipeline").is_none()), "{got:?}");
    }

    let status = a.guard.terminate(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "Prometheus A did not stop cleanly: {status:?}");
    ne.kill();
    let appended = head_samples_appended(&b.base()).await.expect("B /metrics");
    assert!(appended > 0.0, "B appended nothing");
}
