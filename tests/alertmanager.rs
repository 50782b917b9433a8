//! The notifier against the real Alertmanager (Debian's `prometheus-alertmanager`, 0.25, from
//! `scripts/install-peers.sh`): a firing alert is received and listed by Alertmanager's
//! `GET /api/v2/alerts`, and the same alert sent resolved disappears from that list (the API
//! lists only unresolved alerts). Without the peer the test prints `skipped: ...`, except under
//! `CI=true`, where it fails.

mod common;

use std::time::{Duration, SystemTime};

use common::alertmanager::Alertmanager;
use common::*;
use strata::model::Labels;
use strata::notifier::{
    AlertingConfig, AlertmanagerConfig, Notifier, NotifierMetrics, SendAlerts, StaticConfig,
};
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(200);

fn alert(ends_at: SystemTime, starts_at: SystemTime) -> strata::notifier::Alert {
    strata::notifier::Alert {
        labels: Labels::from_pairs([
            ("alertname", "StrataTestDown"),
            ("job", "node"),
            ("severity", "critical"),
        ]),
        annotations: Labels::from_pairs([("summary", "node is down")]),
        starts_at,
        ends_at,
        generator_url: "http://strata.test/graph?g0.expr=up%20%3D%3D%200".into(),
    }
}

#[tokio::test]
async fn an_alert_fires_is_received_and_resolves() {
    let Some(bin) = alertmanager_bin() else { return };
    let am = Alertmanager::start(&bin).await;

    // The static-target form of the config, as Prometheus' `alertmanagers` section has it.
    let config = AlertingConfig {
        alertmanagers: vec![AlertmanagerConfig {
            urls: Vec::new(),
            static_configs: vec![StaticConfig { targets: vec![format!("127.0.0.1:{}", am.port)] }],
            scheme: "http".into(),
            path_prefix: String::new(),
            timeout: strata::config::units::PromDuration::from_secs(10),
            api_version: "v2".into(),
        }],
        ..AlertingConfig::default()
    };
    let mut errors = Vec::new();
    config.validate("alerting", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let external = Labels::from_pairs([("cluster", "test")]);
    let metrics = NotifierMetrics::unregistered(config.endpoint_urls().len());
    let notifier = Notifier::new(&config, external, metrics).expect("notifier");
    let (stop_tx, stop) = watch::channel(false);
    let task = tokio::spawn(notifier.clone().run(stop));

    // Firing: endsAt a few minutes ahead, as Prometheus sends it.
    let started = SystemTime::now() - Duration::from_secs(60);
    notifier.send(vec![alert(SystemTime::now() + Duration::from_secs(240), started)]);
    let got = wait_until("the firing alert in Alertmanager", WAIT, POLL, || async {
        let found = am.listed("StrataTestDown").await?;
        if found.is_empty() {
            Err("not listed yet".to_string())
        } else {
            Ok(found)
        }
    })
    .await;
    assert_eq!(got.len(), 1, "{got:?}");
    let received = &got[0];
    assert_eq!(received["status"]["state"], "active", "{received}");
    assert_eq!(received["labels"]["job"], "node");
    assert_eq!(received["labels"]["severity"], "critical");
    assert_eq!(received["labels"]["cluster"], "test", "external label added");
    assert_eq!(received["annotations"]["summary"], "node is down");
    assert_eq!(
        received["generatorURL"], "http://strata.test/graph?g0.expr=up%20%3D%3D%200",
        "{received}"
    );
    let starts_at = received["startsAt"].as_str().unwrap_or_default();
    let expected_start = started.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    assert!(
        starts_at.starts_with(&strata_rfc3339_seconds(expected_start)),
        "startsAt {starts_at} is not our start time"
    );

    // Resolved: endsAt now; Alertmanager stops listing it.
    notifier.send(vec![alert(SystemTime::now(), started)]);
    wait_until("the resolved alert gone from Alertmanager's list", WAIT, POLL, || async {
        let found = am.listed("StrataTestDown").await?;
        if found.is_empty() {
            Ok(())
        } else {
            Err(format!("still listed: {found:?}"))
        }
    })
    .await;

    // Alertmanager counts both posts as received alerts (firing, then resolved).
    let received = wait_until("alertmanager_alerts_received_total", WAIT, POLL, || async {
        let samples = try_scrape(&format!("http://127.0.0.1:{}", am.port)).await?;
        let firing =
            sum_samples(&samples, "alertmanager_alerts_received_total", &[("status", "firing")])
                .unwrap_or(0.0);
        let resolved =
            sum_samples(&samples, "alertmanager_alerts_received_total", &[("status", "resolved")])
                .unwrap_or(0.0);
        if firing >= 1.0 && resolved >= 1.0 {
            Ok((firing, resolved))
        } else {
            Err(format!("firing {firing}, resolved {resolved}"))
        }
    })
    .await;
    assert_eq!(received, (1.0, 1.0));

    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("notifier stops").unwrap();
}

/// `YYYY-MM-DDTHH:MM:SS` of unix seconds, to compare with Alertmanager's `startsAt`.
fn strata_rfc3339_seconds(seconds: u64) -> String {
    let text =
        strata::notifier::wire::rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds));
    text.trim_end_matches('Z').to_owned()
}
