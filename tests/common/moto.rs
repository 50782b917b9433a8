//! moto's `moto_server`, the S3-compatible server the storage tests write blocks to (PyPI
//! `moto[server]`, pinned in `tests/clients/requirements.txt`, installed into `.peers/venv` by
//! `scripts/install-peers.sh`; `STRATA_TEST_MOTO_SERVER` overrides the path). Loopback only.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::{http_client, require_peer, wait_until, ChildGuard};

/// The moto_server binary, or `None` (skip) outside CI; under `CI=true` a missing one panics.
pub fn moto_server() -> Option<PathBuf> {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.peers/venv/bin/moto_server");
    require_peer("moto_server", "STRATA_TEST_MOTO_SERVER", &[venv])
}

/// Starts moto_server on `127.0.0.1:port`, waits until it answers, creates `bucket`.
pub async fn start(bin: &PathBuf, port: u16, bucket: &str) -> ChildGuard {
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut command = Command::new(bin);
    command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    let moto = ChildGuard::spawn("moto_server", &mut command);
    let client = http_client();
    wait_until("moto_server ready", Duration::from_secs(30), Duration::from_millis(200), || {
        let (client, url) = (client.clone(), format!("{endpoint}/"));
        let moto = &moto;
        async move {
            moto.assert_running();
            client.get(&url).send().await.map(|_| ()).map_err(|e| e.to_string())
        }
    })
    .await;
    let created = client.put(format!("{endpoint}/{bucket}")).send().await.expect("create bucket");
    assert!(created.status().is_success(), "create bucket: {}", created.status());
    moto
}

/// The `object_store` options for a moto endpoint (also `storage.bucket_options`).
pub fn options(port: u16) -> BTreeMap<String, String> {
    [
        ("aws_endpoint", format!("http://127.0.0.1:{port}")),
        ("aws_allow_http", "true".into()),
        ("aws_access_key_id", "test".into()),
        ("aws_secret_access_key", "test".into()),
        ("aws_region", "us-east-1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}
