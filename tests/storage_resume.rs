//! The WAL as the agent's disk buffer: each forward target resumes from its own acknowledged
//! position after a kill -9, so data acknowledged while the destination was down arrives once
//! it is up, and data already delivered is not sent again.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::http_client;
use common::receivers::LokiReceiver;
use common::signals::{start_strata, Strata, FAST_QUEUE, POLL, WAIT};
use common::wait_until;

fn agent_config(data: &std::path::Path, url: &str) -> String {
    format!(
        "role: agent\nstorage:\n  path: {}\nforward:\n  loki:\n    - name: central\n      url: {url}\n      queue_config: {FAST_QUEUE}\n",
        data.display()
    )
}

/// Pushes lines `first..first + count` (one JSON push each), all must get 204.
async fn push_lines(strata: &Strata, first: usize, count: usize) {
    let now_ns =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    for i in first..first + count {
        let body = format!(
            "{{\"streams\":[{{\"stream\":{{\"app\":\"resume\"}},\"values\":[[\"{}\",\"line {i}\"]]}}]}}",
            now_ns + i as u128
        );
        let response = http_client()
            .post(format!("{}/loki/api/v1/push", strata.base))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "{}", response.text().await.unwrap());
    }
}

fn received(receiver: &LokiReceiver) -> Vec<String> {
    receiver.lines().into_iter().map(|l| l.entry.line).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_targets_resume_from_their_own_position_after_kill_9() {
    let data = tempfile::tempdir().unwrap();
    // The destination is down: a port nothing listens on.
    let dead = format!("http://127.0.0.1:{}/loki/api/v1/push", common::free_port());
    let agent = start_strata(&agent_config(data.path(), &dead)).await;
    push_lines(&agent, 0, 50).await;
    agent.guard.kill();

    // Same target name, now reachable: the 50 acknowledged lines arrive, each once.
    let receiver = LokiReceiver::start().await;
    let agent = start_strata(&agent_config(data.path(), &receiver.push_url)).await;
    wait_until("the buffered lines", WAIT, POLL, || async {
        let lines = received(&receiver);
        if lines.len() >= 50 {
            Ok(())
        } else {
            Err(format!("{} lines", lines.len()))
        }
    })
    .await;
    push_lines(&agent, 50, 30).await;
    wait_until("the new lines", WAIT, POLL, || async {
        let lines = received(&receiver);
        if lines.len() >= 80 {
            Ok(())
        } else {
            Err(format!("{} lines", lines.len()))
        }
    })
    .await;
    // Positions are saved every second: let one checkpoint pass, then crash again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    agent.guard.kill();
    let agent = start_strata(&agent_config(data.path(), &receiver.push_url)).await;
    push_lines(&agent, 80, 1).await;
    wait_until("the line after the restart", WAIT, POLL, || async {
        let lines = received(&receiver);
        if lines.len() >= 81 {
            Ok(())
        } else {
            Err(format!("{} lines", lines.len()))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let lines = received(&receiver);
    let distinct: BTreeSet<&String> = lines.iter().collect();
    let expected: BTreeSet<String> = (0..81).map(|i| format!("line {i}")).collect();
    assert_eq!(distinct.into_iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(lines.len(), 81, "delivered lines were not sent again after the restart");
    assert!(receiver.errors().is_empty(), "{:?}", receiver.errors());
    agent.assert_ready().await;
}
