//! Rules inside the `strata` binary, end to end with a real Alertmanager (Debian's 0.25): a
//! remote-written gauge feeds a recording rule, an alerting rule on the recorded series goes
//! pending → firing, Alertmanager receives it with the external labels and the expanded
//! annotation, `ALERTS`/the recorded series are queryable, `/api/v1/rules` and
//! `/api/v1/alerts` show the state, a bad rule file on `/-/reload` keeps the old rules, SIGHUP
//! reloads, a restart restores the firing alert's state, and the alert resolves in Alertmanager when the gauge drops. Without Alertmanager the test prints
//! `skipped: …`, except under `CI=true`, where it fails.

mod common;
mod query_common;

use std::sync::Arc;
use std::time::Duration;

use common::alertmanager::Alertmanager;
use common::{alertmanager_bin, free_port, http_client, spawn_strata, wait_http_ok, wait_until};
use serde_json::Value;
use strata::model::{Labels, MetricBatch, Sample, Series};
use strata::sinks::remote_write::encode::{encode_v1, EncodeOptions};

const WAIT: Duration = Duration::from_secs(40);
const POLL: Duration = Duration::from_millis(250);

const RULES: &str = r#"groups:
  - name: oven
    interval: 1s
    rules:
      - record: job:temperature_celsius:max
        expr: max by (job) (temperature_celsius)
      - alert: OvenTooHot
        expr: job:temperature_celsius:max > 50
        for: 2s
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.job }} is at {{ $value }} degrees"
"#;

async fn push_temperature(base: &str, value: f64) {
    let mut batch = MetricBatch::with_capacity(1, 1);
    let labels = Labels::from_pairs([("__name__", "temperature_celsius"), ("job", "oven")]);
    let sample = Sample { timestamp_ms: query_common::now_ms(), value };
    batch.push(Arc::new(Series::new(labels)), &[sample], &[], &[], None, 0);
    let mut raw = Vec::new();
    let options = EncodeOptions { send_exemplars: false, send_native_histograms: false };
    encode_v1(std::slice::from_ref(&batch), options, &mut raw);
    let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
    query_common::push(&format!("{base}/api/v1/write"), body).await;
}

async fn get_json(url: &str, params: &[(&str, &str)]) -> Value {
    http_client().get(url).query(params).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn a_rule_file_fires_to_alertmanager_and_resolves() {
    let Some(bin) = alertmanager_bin() else { return };
    let am = Alertmanager::start(&bin).await;
    let rules_dir = tempfile::tempdir().unwrap();
    let rule_file = rules_dir.path().join("oven.yml");
    std::fs::write(&rule_file, RULES).unwrap();
    let port = free_port();
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        "server: {{http_listen_address: 127.0.0.1:{port}}}
storage: {{path: {data}}}
rules:
  rule_files: [{rules}]
  external_labels: {{cluster: test}}
  external_url: http://strata.example
  resend_delay: 1s
  # Prometheus restores only rules whose `for` is at least the grace period.
  for_grace_period: 1s
alerting:
  alertmanagers:
    - static_configs: [{{targets: ['127.0.0.1:{am}']}}]
",
        data = data.path().display(),
        rules = rules_dir.path().join("*.yml").display(),
        am = am.port
    );
    let (strata, _dir) = spawn_strata(&config);
    let base = format!("http://127.0.0.1:{port}");
    wait_http_ok(&strata, &format!("{base}/-/ready"), WAIT).await;
    push_temperature(&base, 80.0).await;

    let received = wait_until("OvenTooHot in Alertmanager", WAIT, POLL, || async {
        strata.assert_running();
        match am.listed("OvenTooHot").await? {
            found if found.len() == 1 => Ok(found[0].clone()),
            found => Err(format!("listed: {found:?}")),
        }
    })
    .await;
    assert_eq!(received["labels"]["job"], "oven", "{received}");
    assert_eq!(received["labels"]["severity"], "page");
    assert_eq!(received["labels"]["cluster"], "test", "external label");
    assert_eq!(received["annotations"]["summary"], "oven is at 80 degrees");
    let generator = received["generatorURL"].as_str().unwrap_or_default();
    assert!(generator.starts_with("http://strata.example/graph?g0.expr="), "{generator}");

    // What the rules wrote is stored like any series.
    let query = format!("{base}/api/v1/query");
    let recorded = get_json(&query, &[("query", "job:temperature_celsius:max")]).await;
    assert_eq!(recorded["data"]["result"][0]["value"][1], "80", "{recorded}");
    let alerts_series = get_json(&query, &[("query", "ALERTS{alertname=\"OvenTooHot\"}")]).await;
    let result = &alerts_series["data"]["result"];
    assert_eq!(result[0]["metric"]["alertstate"], "firing", "{alerts_series}");
    assert!(result[0]["metric"].get("cluster").is_none(), "no external labels in ALERTS");
    let for_state = get_json(&query, &[("query", "ALERTS_FOR_STATE")]).await;
    assert_eq!(for_state["data"]["result"].as_array().map(Vec::len), Some(1), "{for_state}");

    let alerts = get_json(&format!("{base}/api/v1/alerts"), &[]).await;
    assert_eq!(alerts["status"], "success");
    assert_eq!(alerts["data"]["alerts"][0]["state"], "firing", "{alerts}");
    let rules = get_json(&format!("{base}/api/v1/rules"), &[]).await;
    let group = &rules["data"]["groups"][0];
    assert_eq!(group["name"], "oven", "{rules}");
    assert_eq!(group["rules"].as_array().map(Vec::len), Some(2));
    assert_eq!(group["rules"][1]["state"], "firing");

    // A bad file is refused on reload; the old rules keep running.
    std::fs::write(&rule_file, RULES.replace("> 50", "> > 50")).unwrap();
    let reload = http_client().post(format!("{base}/-/reload")).send().await.unwrap();
    assert_eq!(reload.status().as_u16(), 500);
    let why = reload.text().await.unwrap();
    assert!(why.contains("oven.yml"), "the answer names the file: {why}");
    let rules = get_json(&format!("{base}/api/v1/rules"), &[]).await;
    assert_eq!(rules["data"]["groups"][0]["rules"].as_array().map(Vec::len), Some(2));
    std::fs::write(&rule_file, RULES).unwrap();
    let reload = http_client().post(format!("{base}/-/reload")).send().await.unwrap();
    assert_eq!(reload.status().as_u16(), 200, "{}", reload.text().await.unwrap());

    // SIGHUP reloads too: a third rule appears, and the firing alert keeps its state.
    let extra = "      - record: job:temperature_celsius:min\n        expr: min by (job) (temperature_celsius)\n";
    std::fs::write(&rule_file, format!("{RULES}{extra}")).unwrap();
    strata.signal("HUP");
    wait_until("three rules after SIGHUP", WAIT, POLL, || async {
        let rules = get_json(&format!("{base}/api/v1/rules"), &[]).await;
        match rules["data"]["groups"][0]["rules"].as_array().map(Vec::len) {
            Some(3) => Ok(rules),
            other => Err(format!("{other:?} rules")),
        }
    })
    .await;
    let alerts = get_json(&format!("{base}/api/v1/alerts"), &[]).await;
    assert_eq!(alerts["data"]["alerts"][0]["state"], "firing", "{alerts}");
    let active_at = alerts["data"]["alerts"][0]["activeAt"].clone();

    // A restart on the same data: the alert's state comes back from ALERTS_FOR_STATE, so it
    // is firing with its original activeAt rather than pending anew (without the restore it
    // would be pending with the restart as activeAt).
    assert!(strata.terminate(Duration::from_secs(30)).is_some(), "strata stops on SIGTERM");
    let (strata, _dir) = spawn_strata(&config);
    wait_http_ok(&strata, &format!("{base}/-/ready"), WAIT).await;
    let restored = wait_until("the alert after the restart", WAIT, POLL, || async {
        let alerts = get_json(&format!("{base}/api/v1/alerts"), &[]).await;
        // The first evaluation after the start restores activeAt; the next one fires.
        match alerts["data"]["alerts"].as_array() {
            Some(list) if !list.is_empty() && list[0]["state"] == "firing" => Ok(list[0].clone()),
            _ => Err(format!("{alerts}")),
        }
    })
    .await;
    // ALERTS_FOR_STATE keeps whole seconds (Prometheus writes `ActiveAt.Unix()`).
    let seconds =
        |v: &Value| v.as_str().unwrap_or_default().get(..19).unwrap_or_default().to_owned();
    assert_eq!(seconds(&restored["activeAt"]), seconds(&active_at), "restored: {restored}");

    // The oven cools down: the alert resolves and Alertmanager stops listing it.
    push_temperature(&base, 20.0).await;
    wait_until("OvenTooHot resolved in Alertmanager", WAIT, POLL, || async {
        strata.assert_running();
        match am.listed("OvenTooHot").await? {
            found if found.is_empty() => Ok(()),
            found => Err(format!("still listed: {found:?}")),
        }
    })
    .await;
    let alerts = get_json(&format!("{base}/api/v1/alerts"), &[]).await;
    assert_eq!(alerts["data"]["alerts"], serde_json::json!([]), "{alerts}");
}
