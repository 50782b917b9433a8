//! The real clients of the log and trace endpoints (`tests/clients/`, installed by
//! `scripts/install-peers.sh` under `.peers/`), how to find them, and how to run them without
//! blocking the test's runtime (the receivers of [`super::receivers`] run on it).
//!
//! Like the other peers, a missing client fails the test under `CI=true` and skips it
//! elsewhere ([`super::require_peer`]).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use super::{require_peer, ChildGuard};

/// Upper bound of one client run (the clients send a few hundred items over loopback).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/clients/<file>`.
pub fn client_file(file: &str) -> PathBuf {
    repo_root().join("tests/clients").join(file)
}

/// The Python of `.peers/venv` (OpenTelemetry SDK + exporters, python-logging-loki).
pub fn python_clients() -> Option<PathBuf> {
    let venv_python = repo_root().join(".peers/venv/bin/python");
    let candidate = venv_python.to_string_lossy().into_owned();
    require_peer("python client venv", "STRATA_TEST_CLIENT_PYTHON", &[candidate.as_str()])
}

/// `node` and the `.peers/node/node_modules` holding winston-loki and pino-loki.
pub fn node_clients() -> Option<(PathBuf, PathBuf)> {
    let node = require_peer("node", "STRATA_TEST_NODE", &["/usr/bin/node", "/usr/local/bin/node"])?;
    let modules = repo_root().join(".peers/node/node_modules");
    for module in ["winston-loki", "pino-loki", "snappy"] {
        if !modules.join(module).join("package.json").is_file() {
            let message = format!(
                "node module `{module}` not installed in {} (run scripts/install-peers.sh)",
                modules.display()
            );
            if super::in_ci() {
                panic!("{message} (CI=true, so this is a failure, not a skip)");
            }
            eprintln!("skipped: {message}");
            return None;
        }
    }
    Some((node, modules))
}

pub fn curl_bin() -> Option<PathBuf> {
    require_peer("curl", "STRATA_TEST_CURL", &["/usr/bin/curl", "/usr/local/bin/curl"])
}

/// `python tests/clients/<script>`.
pub fn python_command(python: &Path, script: &str) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg(client_file(script)).env("PYTHONUNBUFFERED", "1").env("NO_PROXY", "*");
    // The exporters read OTEL_* variables; a developer's own must not leak into a test.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("OTEL_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// `node tests/clients/<script>` with `.peers/node/node_modules` on `NODE_PATH`.
pub fn node_command(node: &Path, modules: &Path, script: &str) -> Command {
    let mut cmd = Command::new(node);
    cmd.arg(client_file(script)).env("NODE_PATH", modules).env("NO_PROXY", "*");
    cmd
}

/// What a finished client run printed.
#[derive(Debug)]
pub struct ClientRun {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ClientRun {
    /// The JSON summary the client scripts print as their last stdout line.
    pub fn summary(&self) -> serde_json::Value {
        let line = self.stdout.lines().rev().find(|l| l.trim_start().starts_with('{'));
        line.and_then(|l| serde_json::from_str(l).ok()).unwrap_or_else(|| {
            panic!("no JSON summary on stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }

    /// Panics with the client's output unless it exited 0.
    pub fn assert_success(&self, what: &str) -> &Self {
        assert!(
            self.status.success(),
            "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `cmd` to completion (at most [`CLIENT_TIMEOUT`]) while the test's runtime keeps
/// serving: polls the child with async sleeps instead of blocking on it.
pub async fn run_client(name: &str, cmd: &mut Command) -> ClientRun {
    // The name also names a temp dir: keep it to file-name characters.
    let name: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect();
    let guard = ChildGuard::spawn(&name, cmd);
    let started = Instant::now();
    let max_polls = CLIENT_TIMEOUT.as_millis() / 50 + 1;
    let mut status = None;
    for _ in 0..max_polls {
        status = guard.try_status();
        if status.is_some() || started.elapsed() >= CLIENT_TIMEOUT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(status) = status else {
        guard.dump_logs();
        panic!("{name} did not finish within {CLIENT_TIMEOUT:?}");
    };
    eprintln!("[{name}] finished in {:?}: {status}", started.elapsed());
    let read = |p: &Path| {
        std::fs::read(p).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    };
    ClientRun { status, stdout: read(guard.stdout_path()), stderr: read(guard.stderr_path()) }
}
