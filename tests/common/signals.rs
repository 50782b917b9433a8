//! Starting strata for the log and trace tests: the main HTTP listener and both OTLP
//! listeners on free loopback ports, the test's own config merged on top.

use std::time::Duration;

use serde_yaml::Value;

use super::{free_port, http_client, spawn_strata, wait_http_ok, wait_until, ChildGuard};

/// Upper bound of every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(30);
pub const POLL: Duration = Duration::from_millis(100);

/// A forward queue that sends soon and retries fast, for `queue_config:` of test targets.
pub const FAST_QUEUE: &str = "{batch_send_deadline: 100ms, min_backoff: 10ms, max_backoff: 200ms}";

/// A running strata with its listeners.
pub struct Strata {
    pub guard: ChildGuard,
    pub _dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`: the main listener (ingest, `/metrics`, `/-/ready`).
    pub base: String,
    /// `http://127.0.0.1:PORT`: `ingest.otlp.grpc_listen_address`.
    pub otlp_grpc: String,
    /// `http://127.0.0.1:PORT`: `ingest.otlp.http_listen_address`.
    pub otlp_http: String,
}

/// Recursively merges `overlay` into `base` (mappings merge, anything else replaces).
pub fn merge_yaml(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Mapping(base), Value::Mapping(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge_yaml(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// Starts strata with `config_yaml` merged over the listener addresses, and waits until
/// `/-/ready` answers 200 and both OTLP listeners accept connections.
pub async fn start_strata(config_yaml: &str) -> Strata {
    let (http, grpc, otlp_http) = (free_port(), free_port(), free_port());
    let mut config: Value = serde_yaml::from_str(&format!(
        "server:\n  http_listen_address: 127.0.0.1:{http}\n\
         ingest:\n  otlp:\n    grpc_listen_address: 127.0.0.1:{grpc}\n    \
         http_listen_address: 127.0.0.1:{otlp_http}\n"
    ))
    .unwrap();
    let overlay: Value = serde_yaml::from_str(config_yaml).expect("test config is YAML");
    if !overlay.is_null() {
        merge_yaml(&mut config, overlay);
    }
    let text = serde_yaml::to_string(&config).unwrap();
    eprintln!("strata config:\n{text}");
    let (guard, dir) = spawn_strata(&text);
    let base = format!("http://127.0.0.1:{http}");
    wait_http_ok(&guard, &format!("{base}/-/ready"), WAIT).await;
    for (what, port) in [("OTLP gRPC listener", grpc), ("OTLP HTTP listener", otlp_http)] {
        wait_until(&format!("strata {what} on port {port}"), WAIT, POLL, || {
            guard.assert_running();
            async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .map(drop)
                    .map_err(|e| format!("connect: {e}"))
            }
        })
        .await;
    }
    Strata {
        guard,
        _dir: dir,
        base,
        otlp_grpc: format!("http://127.0.0.1:{grpc}"),
        otlp_http: format!("http://127.0.0.1:{otlp_http}"),
    }
}

impl Strata {
    /// Panics unless the process runs and `/-/ready` answers 200.
    pub async fn assert_ready(&self) {
        self.guard.assert_running();
        let ready = http_client()
            .get(format!("{}/-/ready", self.base))
            .send()
            .await
            .expect("strata answers /-/ready");
        assert!(ready.status().is_success(), "/-/ready: {}", ready.status());
    }

    /// Sum of `name{labels}` on strata's `/metrics` (0 if absent).
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        super::scrape_metric(&self.base, name, labels).await
    }
}
