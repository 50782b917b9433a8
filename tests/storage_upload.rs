//! The object store unreachable for a while: blocks cut from the head wait in the local spool
//! and are uploaded once the store answers; nothing is lost. The store is a real
//! S3-compatible server (moto_server) that is simply not running yet when the head is cut.

mod common;

use std::time::Duration;

use common::moto;
use common::signals::{start_strata, POLL};
use common::{free_port, http_client, wait_until};
use serde_json::Value;

const BUCKET: &str = "strata-upload";

async fn status(base: &str) -> Value {
    let response = http_client().get(format!("{base}/api/v1/status/storage")).send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_wait_in_the_spool_until_the_store_is_back() {
    let Some(bin) = moto::moto_server() else { return };
    let port = free_port();
    let data = tempfile::tempdir().unwrap();
    let options: String =
        moto::options(port).iter().map(|(k, v)| format!("    {k}: \"{v}\"\n")).collect();
    let strata = start_strata(&format!(
        "storage:\n  path: {}\n  bucket_url: s3://{BUCKET}/blocks\n  bucket_options:\n{options}",
        data.path().display()
    ))
    .await;
    let now_ns =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let values: Vec<String> =
        (0..100).map(|i| format!("[\"{}\", \"request {i} served\"]", now_ns + i)).collect();
    let push = http_client()
        .post(format!("{}/loki/api/v1/push", strata.base))
        .header("Content-Type", "application/json")
        .body(format!(
            "{{\"streams\":[{{\"stream\":{{\"app\":\"api\"}},\"values\":[{}]}}]}}",
            values.join(",")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(push.status(), 204);

    let flush = http_client()
        .post(format!("{}/api/v1/admin/storage/flush", strata.base))
        .send()
        .await
        .unwrap();
    assert!(flush.status().is_success(), "{}", flush.text().await.unwrap());
    // The store is down: the block stays in the spool (and the status says why listing fails).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let down = status(&strata.base).await;
    assert_eq!(down["data"]["spool_blocks"], 1, "{down}");
    assert!(down["data"]["blocks_error"].is_string(), "{down}");
    assert!(strata.metric("strata_storage_upload_failures_total", &[]).await >= 0.0);

    // The store comes up: the spooled block is uploaded, with every line in it.
    let _moto = moto::start(&bin, port, BUCKET).await;
    let up = wait_until("the spool drains", Duration::from_secs(90), POLL, || async {
        let status = status(&strata.base).await;
        if status["data"]["spool_blocks"] == 0 && status["data"]["blocks"].is_array() {
            Ok(status)
        } else {
            Err(status.to_string())
        }
    })
    .await;
    let blocks = up["data"]["blocks"].as_array().unwrap();
    let logs: Vec<&Value> = blocks.iter().filter(|b| b["signal"] == "logs").collect();
    assert_eq!(logs.len(), 1, "{up}");
    assert_eq!(logs[0]["rows"], 100, "{up}");
    strata.assert_ready().await;
}
