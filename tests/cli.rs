//! The command line as users run it: `check config` on every shipped example and on bad input,
//! `--version`, `--help`, and `run` shutting down cleanly on SIGTERM.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn strata() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
    command.env("PROMETHEUS_PASSWORD", "secret").env("NODE_NAME", "node-1").env_remove("RUST_LOG");
    command
}

/// Runs `strata check config file` and fails naming `origin` (where the config came from).
fn assert_check_config_ok(file: &Path, origin: &Path) {
    let output = strata().args(["check", "config"]).arg(file).output().unwrap();
    assert!(
        output.status.success(),
        "{}: {}",
        origin.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn every_shipped_config_passes_check_config() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            assert_check_config_ok(&path, &path);
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} example configs");
}

#[test]
fn check_config_names_the_path_and_the_bad_value() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("server:\n  http_listen_address: nowhere\n", "server.http_listen_address: \"nowhere\""),
        ("forward:\n  remote_write:\n    - url: http://127.0.0.1:1/\n      protocol_version: 3\n", "forward.remote_write[0].protocol_version: 3"),
        ("ingest:\n  remote_write:\n    max_body_size: 12 parsecs\n", "ingest.remote_write.max_body_size"),
        ("ingest:\n  remote_write:\n    metric_relabel_configs: [{regex: '(', action: drop}]\n", "ingest.remote_write.metric_relabel_configs"),
        ("servers: {}\n", "unknown field `servers`"),
        ("forward:\n  remote_write:\n    - url: http://x:1/\n      bearer_token: ${STRATA_TEST_UNSET_VAR}\n", "STRATA_TEST_UNSET_VAR is not set"),
    ];
    for (index, (yaml, expected)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{index}.yml"));
        std::fs::write(&path, yaml).unwrap();
        let output = strata().args(["check", "config"]).arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{yaml}: {stderr}");
        assert!(stderr.contains(expected), "{yaml}: expected {expected:?} in {stderr}");
    }
    let output = strata().args(["check", "config", "/nonexistent/strata.yml"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read"));
}

#[test]
fn version_and_help() {
    let output = strata().arg("--version").output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("strata {}", env!("CARGO_PKG_VERSION"))
    );
    let output = strata().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("run") && help.contains("check"), "{help}");
}

#[test]
fn run_serves_and_exits_zero_on_sigterm() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.yml");
    std::fs::write(
        &config,
        format!(
            "server:\n  http_listen_address: 127.0.0.1:{port}\ningest:\n  otlp:\n    grpc_listen_address: \"\"\n    http_listen_address: \"\"\n"
        ),
    )
    .unwrap();
    let mut child = strata()
        .args(["run", "--log-format", "json", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ready = false;
    while Instant::now() < deadline {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            stream
                .write_all(b"GET /-/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut response = String::new();
            let _ = stream.read_to_string(&mut response);
            if response.starts_with("HTTP/1.1 200") {
                ready = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ready, "strata did not become ready");
    // The kill command delivers the signal, so the test needs no libc bindings.
    let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "strata did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    use std::io::Read;
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(exit.code(), Some(0), "{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "--log-format json must log JSON: {first}"
    );
    assert!(stderr.contains("shutdown complete"), "{stderr}");
}

#[test]
fn configs_embedded_in_kubernetes_manifests_pass_check_config() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let scratch = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = <serde_yaml::Value as serde::Deserialize>::deserialize(document).unwrap();
            if value["kind"].as_str() != Some("ConfigMap") {
                continue;
            }
            let Some(config) = value["data"]["strata.yml"].as_str() else { continue };
            let file = scratch.path().join(format!("embedded-{checked}.yml"));
            std::fs::write(&file, config).unwrap();
            assert_check_config_ok(&file, &path);
            checked += 1;
        }
    }
    assert!(checked >= 1, "no strata.yml ConfigMap in {}", dir.display());
}
