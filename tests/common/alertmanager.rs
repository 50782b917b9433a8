//! A real Alertmanager (Debian's `prometheus-alertmanager`) on loopback, for notifier and rule
//! tests: one instance, no gossip, a receiver that drops everything.

use std::path::Path;
use std::time::Duration;

use super::{free_port, http_client, wait_http_ok, ChildGuard};

const AM_CONFIG: &str = r#"route:
  receiver: blackhole
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: blackhole
"#;

pub struct Alertmanager {
    pub guard: ChildGuard,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    pub async fn start(bin: &Path) -> Self {
        let dir = tempfile::Builder::new().prefix("strata-test-am-").tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(&config, AM_CONFIG).unwrap();
        let port = free_port();
        let mut cmd = std::process::Command::new(bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // No gossip: a single instance, nothing listening beyond loopback.
            .arg("--cluster.listen-address=")
            .current_dir(dir.path());
        let guard = ChildGuard::spawn("alertmanager", &mut cmd);
        let url = format!("http://127.0.0.1:{port}/-/ready");
        wait_http_ok(&guard, &url, Duration::from_secs(30)).await;
        Self { guard, port, _dir: dir }
    }

    /// Alerts Alertmanager lists (unresolved ones) whose `alertname` is `name`.
    pub async fn listed(&self, name: &str) -> Result<Vec<serde_json::Value>, String> {
        self.guard.assert_running();
        let url = format!("http://127.0.0.1:{}/api/v2/alerts", self.port);
        let response = http_client().get(&url).send().await.map_err(|e| e.to_string())?;
        let alerts: Vec<serde_json::Value> = response.json().await.map_err(|e| e.to_string())?;
        Ok(alerts.into_iter().filter(|a| a["labels"]["alertname"] == name).collect())
    }
}
