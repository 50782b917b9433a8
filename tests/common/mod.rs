//! Helpers for black-box tests that run the `strata` binary beside real peer systems
//! (Prometheus, node_exporter, Alertmanager from Debian's packages; see
//! `scripts/install-peers.sh`).
//!
//! Rules every helper keeps: servers listen on loopback only, every wait is bounded in both
//! attempts and time, and every spawned process is killed when its guard drops (its captured
//! stdout/stderr tails are printed first if the test is failing).
#![allow(dead_code)]

pub mod alertmanager;
pub mod clients;
pub mod moto;
pub mod otlp;
pub mod receivers;
pub mod signals;

use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Timeout of every single HTTP request made by these helpers.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// Peers
// ---------------------------------------------------------------------------------------------

/// Well-known install locations of the peers (Debian packages).
pub const PROMETHEUS_BINS: &[&str] = &["/usr/bin/prometheus", "/usr/local/bin/prometheus"];
pub const NODE_EXPORTER_BINS: &[&str] = &[
    "/usr/bin/prometheus-node-exporter",
    "/usr/local/bin/node_exporter",
    "/usr/bin/node_exporter",
];
pub const ALERTMANAGER_BINS: &[&str] =
    &["/usr/bin/prometheus-alertmanager", "/usr/local/bin/alertmanager", "/usr/bin/alertmanager"];
pub const PROMTOOL_BINS: &[&str] = &["/usr/bin/promtool", "/usr/local/bin/promtool"];

fn is_executable_file(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Finds a peer binary: the path in `env_var` if set (and executable), else the first
/// executable of `candidates`.
pub fn peer_bin(name: &str, env_var: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(v) = std::env::var_os(env_var).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        if is_executable_file(&p) {
            return Some(p);
        }
        eprintln!("{name}: {env_var}={} is not an executable file", p.display());
        return None;
    }
    candidates.iter().map(PathBuf::from).find(|p| is_executable_file(p))
}

/// True when running under CI (`CI=true`), where a missing peer is an error, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").map(|v| v.eq_ignore_ascii_case("true") || v == "1").unwrap_or(false)
}

/// Like [`peer_bin`], but under CI a missing peer fails the test; elsewhere it prints
/// `skipped: ...` and returns `None` so the test can return early.
pub fn require_peer(name: &str, env_var: &str, candidates: &[&str]) -> Option<PathBuf> {
    match peer_bin(name, env_var, candidates) {
        Some(p) => Some(p),
        None if in_ci() => panic!(
            "peer `{name}` not found (looked at ${env_var} and {candidates:?}); \
             run scripts/install-peers.sh (CI=true, so this is a failure, not a skip)"
        ),
        None => {
            eprintln!(
                "skipped: peer `{name}` not found (set {env_var} or run scripts/install-peers.sh)"
            );
            None
        }
    }
}

pub fn prometheus_bin() -> Option<PathBuf> {
    require_peer("prometheus", "STRATA_TEST_PROMETHEUS", PROMETHEUS_BINS)
}

pub fn node_exporter_bin() -> Option<PathBuf> {
    require_peer("node_exporter", "STRATA_TEST_NODE_EXPORTER", NODE_EXPORTER_BINS)
}

pub fn alertmanager_bin() -> Option<PathBuf> {
    require_peer("alertmanager", "STRATA_TEST_ALERTMANAGER", ALERTMANAGER_BINS)
}

/// A TCP port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// Directory of the shared conformance material (`STRATA_CONFORMANCE_DIR`, else
/// `../shared/conformance` next to the repository).
pub fn conformance_dir() -> PathBuf {
    match std::env::var_os("STRATA_CONFORMANCE_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance"),
    }
}

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

/// A spawned process with stdout/stderr captured to files. Killed (SIGKILL, then reaped) on
/// drop; if the thread is panicking, the log tails are printed first.
pub struct ChildGuard {
    name: String,
    child: Mutex<Option<Child>>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    logs_dumped: AtomicBool,
    _log_dir: TempDir,
}

impl std::fmt::Debug for ChildGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildGuard").field("name", &self.name).field("pid", &self.pid()).finish()
    }
}

impl ChildGuard {
    /// Spawns `cmd` (stdin null, stdout/stderr to files in a fresh temp dir).
    pub fn spawn(name: &str, cmd: &mut Command) -> ChildGuard {
        let log_dir = tempfile::Builder::new()
            .prefix(&format!("strata-test-{name}-logs-"))
            .tempdir()
            .expect("tempdir for logs");
        let stdout_path = log_dir.path().join("stdout.log");
        let stderr_path = log_dir.path().join("stderr.log");
        let out = File::create(&stdout_path).expect("create stdout log");
        let err = File::create(&stderr_path).expect("create stderr log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("failed to spawn {name} ({cmd:?}): {e}"));
        eprintln!("[{name}] started pid {}: {cmd:?}", child.id());
        ChildGuard {
            name: name.to_string(),
            child: Mutex::new(Some(child)),
            stdout_path,
            stderr_path,
            logs_dumped: AtomicBool::new(false),
            _log_dir: log_dir,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(Child::id)
    }

    /// `Some(status)` once the process has exited.
    pub fn try_status(&self) -> Option<ExitStatus> {
        let mut g = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let child = g.as_mut()?;
        child.try_wait().ok().flatten()
    }

    /// Panics (after printing the logs) if the process has exited. Call it inside wait loops
    /// so a crashed peer fails the test at once instead of at the timeout.
    pub fn assert_running(&self) {
        if let Some(st) = self.try_status() {
            self.dump_logs();
            panic!("{} exited unexpectedly: {st}", self.name);
        }
    }

    /// Sends `signal` (e.g. "TERM") with /bin/kill (the crate forbids `unsafe`, so no libc).
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Waits (bounded) for the process to exit on its own.
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let max_polls = timeout.as_millis() / 50 + 2;
        for _ in 0..max_polls {
            if let Some(st) = self.try_status() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.try_status()
    }

    /// SIGTERM, wait up to `timeout` for a clean exit, SIGKILL if it did not. Returns the exit
    /// status of the graceful stop, or `None` if it had to be killed.
    pub fn terminate(&self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(st) = self.try_status() {
            return Some(st);
        }
        let started = Instant::now();
        self.signal("TERM");
        let st = self.wait_exit(timeout);
        match st {
            Some(s) => {
                eprintln!("[{}] exited after SIGTERM in {:?}: {s}", self.name, started.elapsed())
            }
            None => {
                eprintln!("[{}] did not exit within {timeout:?} of SIGTERM; killing", self.name);
                self.kill();
            }
        }
        st
    }

    /// SIGKILL and reap.
    pub fn kill(&self) {
        let mut g = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(child) = g.as_mut() {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }

    pub fn stdout_path(&self) -> &Path {
        &self.stdout_path
    }

    pub fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }

    /// Everything the process wrote to stderr so far (lossy UTF-8).
    pub fn stderr_text(&self) -> String {
        std::fs::read(&self.stderr_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Prints the last lines of the captured stdout and stderr to the test's stderr.
    pub fn dump_logs(&self) {
        self.logs_dumped.store(true, Ordering::Relaxed);
        for (what, path) in [("stdout", &self.stdout_path), ("stderr", &self.stderr_path)] {
            let tail = tail_lines(path, 60, 64 * 1024);
            eprintln!(
                "----- [{}] {what} (last lines of {}) -----\n{tail}\n----- end [{}] {what} -----",
                self.name,
                path.display(),
                self.name
            );
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.logs_dumped.load(Ordering::Relaxed) {
            self.dump_logs();
        }
        self.kill();
    }
}

/// The last `lines` lines of a file, reading at most its last `max_bytes` bytes.
pub fn tail_lines(path: &Path, lines: usize, max_bytes: u64) -> String {
    let Ok(mut f) = File::open(path) else {
        return format!("<cannot open {}>", path.display());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(max_bytes);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------------------------

/// Polls `f` every `interval` until it returns `Ok(value)`, for at most `timeout` (and at most
/// `timeout / interval + 1` attempts). Panics on timeout with `what` and the last `Err` reason.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, interval: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    let max_attempts = timeout.as_millis() / interval.as_millis().max(1) + 1;
    let mut last = String::from("never polled");
    for attempt in 1..=max_attempts {
        let remaining = timeout.saturating_sub(started.elapsed());
        // A single attempt may not outlive the overall deadline by more than one HTTP timeout.
        match tokio::time::timeout(remaining.max(Duration::from_millis(1)) + HTTP_TIMEOUT, f())
            .await
        {
            Ok(Ok(v)) => {
                eprintln!("waited {:?} ({attempt} attempts) for {what}", started.elapsed());
                return v;
            }
            Ok(Err(e)) => last = e,
            Err(_) => last = "attempt timed out".to_string(),
        }
        if started.elapsed() >= timeout {
            break;
        }
        tokio::time::sleep(interval.min(timeout.saturating_sub(started.elapsed()))).await;
    }
    panic!("timed out after {:?} waiting for {what}; last: {last}", started.elapsed());
}

/// Waits until `GET url` answers 2xx; panics (with the guard's logs) if `guard`'s process
/// exits meanwhile.
pub async fn wait_http_ok(guard: &ChildGuard, url: &str, timeout: Duration) {
    let c = http_client();
    wait_until(&format!("{} at {url}", guard.name()), timeout, Duration::from_millis(100), || {
        let c = c.clone();
        async move {
            guard.assert_running();
            let r = c.get(url).send().await.map_err(|e| e.to_string())?;
            if r.status().is_success() {
                Ok(())
            } else {
                Err(format!("status {}", r.status()))
            }
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// HTTP and Prometheus API
// ---------------------------------------------------------------------------------------------

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// `"127.0.0.1:9090"` or `"http://127.0.0.1:9090/"` → `"http://127.0.0.1:9090"`.
pub fn http_base(base: &str) -> String {
    let b = base.trim_end_matches('/');
    if b.starts_with("http://") || b.starts_with("https://") {
        b.to_string()
    } else {
        format!("http://{b}")
    }
}

/// `GET {base}/api/v1/query?query=expr` → the whole JSON answer, or why it failed (transport
/// error, non-2xx, `status != "success"`).
pub async fn try_prom_query(base: &str, expr: &str) -> Result<serde_json::Value, String> {
    let url = format!("{}/api/v1/query", http_base(base));
    let resp = http_client()
        .get(&url)
        .query(&[("query", expr)])
        .send()
        .await
        .map_err(|e| format!("GET {url} query={expr}: {e}"))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| format!("GET {url}: reading body: {e}"))?;
    if !status.is_success() {
        return Err(format!("GET {url} query={expr}: status {status}: {text}"));
    }
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("query={expr}: bad JSON ({e}): {text}"))?;
    if v["status"] != "success" {
        return Err(format!("query={expr}: {text}"));
    }
    Ok(v)
}

/// Like [`try_prom_query`], panicking on failure.
pub async fn prom_query(base: &str, expr: &str) -> serde_json::Value {
    try_prom_query(base, expr).await.unwrap_or_else(|e| panic!("prometheus query failed: {e}"))
}

/// A sample of an instant vector: its labels (with `__name__` when present) and value.
pub type PromSample = (BTreeMap<String, String>, f64);

/// Instant-vector results of `expr`.
pub async fn try_prom_vector(base: &str, expr: &str) -> Result<Vec<PromSample>, String> {
    let v = try_prom_query(base, expr).await?;
    parse_prom_vector(&v).map_err(|e| format!("query={expr}: {e}"))
}

/// Like [`try_prom_vector`], panicking on failure.
pub async fn prom_vector(base: &str, expr: &str) -> Vec<PromSample> {
    try_prom_vector(base, expr).await.unwrap_or_else(|e| panic!("prometheus query failed: {e}"))
}

/// Parses `{"data":{"resultType":"vector","result":[{"metric":{..},"value":[ts,"v"]}]}}`.
pub fn parse_prom_vector(v: &serde_json::Value) -> Result<Vec<PromSample>, String> {
    let data = &v["data"];
    if data["resultType"] != "vector" {
        return Err(format!("not a vector: {v}"));
    }
    let results = data["result"].as_array().ok_or_else(|| format!("no result array: {v}"))?;
    results
        .iter()
        .map(|r| {
            let labels = r["metric"]
                .as_object()
                .ok_or_else(|| format!("no metric object: {r}"))?
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            let value = r["value"][1]
                .as_str()
                .ok_or_else(|| format!("no value: {r}"))?
                .parse::<f64>()
                .map_err(|e| format!("bad value in {r}: {e}"))?;
            Ok((labels, value))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Text exposition format (/metrics)
// ---------------------------------------------------------------------------------------------

/// One sample line of the Prometheus/OpenMetrics text format.
#[derive(Debug, Clone, PartialEq)]
pub struct TextSample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses the sample lines of a Prometheus text / OpenMetrics exposition (comments, `# EOF`,
/// timestamps and exemplars are ignored). Lines that do not parse are skipped.
pub fn parse_exposition(text: &str) -> Vec<TextSample> {
    text.lines().filter_map(parse_sample_line).collect()
}

fn parse_sample_line(line: &str) -> Option<TextSample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace()).unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        let consumed = loop {
            // Skip separators.
            while let Some(&(_, c)) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    chars.next();
                } else {
                    break;
                }
            }
            let &(i, c) = chars.peek()?;
            if c == '}' {
                break i + 1;
            }
            let mut key = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if c == '=' || c.is_whitespace() {
                    break;
                }
                key.push(c);
                chars.next();
            }
            while chars.peek().is_some_and(|&(_, c)| c.is_whitespace()) {
                chars.next();
            }
            if chars.next()?.1 != '=' {
                return None;
            }
            while chars.peek().is_some_and(|&(_, c)| c.is_whitespace()) {
                chars.next();
            }
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut val = String::new();
            loop {
                let (_, c) = chars.next()?;
                match c {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => val.push('\n'),
                        other => val.push(other),
                    },
                    other => val.push(other),
                }
            }
            labels.insert(key, val);
        };
        rest = &after[consumed..];
    }
    let value_str = rest.split_whitespace().next()?;
    let value = match value_str {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        s => s.parse().ok()?,
    };
    Some(TextSample { name: name.to_string(), labels, value })
}

/// Sum of the samples named `name` whose labels include every pair of `labels`; `None` if no
/// sample matches.
pub fn sum_samples(samples: &[TextSample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = false;
    let mut sum = 0.0;
    for s in samples.iter().filter(|s| s.name == name) {
        if labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)) {
            found = true;
            sum += s.value;
        }
    }
    found.then_some(sum)
}

/// `GET http://ADDR/metrics` → parsed samples.
pub async fn try_scrape(base: &str) -> Result<Vec<TextSample>, String> {
    let url = format!("{}/metrics", http_base(base));
    let resp = http_client().get(&url).send().await.map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| format!("GET {url}: reading body: {e}"))?;
    if !status.is_success() {
        return Err(format!("GET {url}: status {status}: {text}"));
    }
    Ok(parse_exposition(&text))
}

/// Sum of the samples of series `name` matching `labels` on `base`'s `/metrics` (0 when none
/// match; use [`try_scrape`] + [`sum_samples`] to tell "absent" from 0). Panics if the scrape
/// fails.
pub async fn scrape_metric(base: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let samples = try_scrape(base).await.unwrap_or_else(|e| panic!("scrape failed: {e}"));
    sum_samples(&samples, name, labels).unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------------
// Strata
// ---------------------------------------------------------------------------------------------

pub fn strata_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_strata"))
}

/// Writes `config_yaml` to `<tempdir>/strata.yaml` and starts `strata run --config FILE` with
/// the temp dir as working directory (so a default `./data` lands there). `RUST_LOG` defaults
/// to `info`. Returns the guard and the temp dir (keep it alive for the test's duration).
pub fn spawn_strata(config_yaml: &str) -> (ChildGuard, TempDir) {
    let dir = tempfile::Builder::new().prefix("strata-test-").tempdir().expect("tempdir");
    let cfg = dir.path().join("strata.yaml");
    std::fs::write(&cfg, otlp_listeners_off_unless_set(config_yaml)).expect("write strata config");
    let mut cmd = Command::new(strata_bin());
    cmd.arg("run").arg("--config").arg(&cfg).current_dir(dir.path());
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "info");
    }
    let guard = ChildGuard::spawn("strata", &mut cmd);
    (guard, dir)
}

/// Tests run in parallel, so the OTLP listeners must not take their fixed default ports
/// (4317/4318): turns them off (empty address) unless the config sets them.
pub fn otlp_listeners_off_unless_set(config_yaml: &str) -> String {
    let mut root: serde_yaml::Value = serde_yaml::from_str(config_yaml).expect("test config yaml");
    if root.is_null() {
        root = serde_yaml::Value::Mapping(Default::default());
    }
    let mapping = |v: &mut serde_yaml::Value, key: &str| -> serde_yaml::Value {
        let map = v.as_mapping_mut().expect("config mapping");
        map.entry(key.into())
            .or_insert_with(|| serde_yaml::Value::Mapping(Default::default()))
            .clone()
    };
    let mut ingest = mapping(&mut root, "ingest");
    let mut otlp = mapping(&mut ingest, "otlp");
    let otlp_map = otlp.as_mapping_mut().expect("otlp mapping");
    for key in ["grpc_listen_address", "http_listen_address"] {
        otlp_map.entry(key.into()).or_insert_with(|| "".into());
    }
    ingest.as_mapping_mut().unwrap().insert("otlp".into(), otlp);
    root.as_mapping_mut().unwrap().insert("ingest".into(), ingest);
    serde_yaml::to_string(&root).expect("serialize test config")
}

// ---------------------------------------------------------------------------------------------
// Prometheus / node_exporter processes
// ---------------------------------------------------------------------------------------------

/// A Prometheus server on 127.0.0.1 with its config and TSDB in a temp dir.
pub struct PromServer {
    pub guard: ChildGuard,
    pub port: u16,
    pub dir: TempDir,
}

impl PromServer {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Starts Prometheus with `config_yaml` on `127.0.0.1:port`, plus `extra_args`. Does not wait;
/// use [`wait_http_ok`] on `/-/ready`.
pub fn spawn_prometheus(
    bin: &Path,
    name: &str,
    port: u16,
    config_yaml: &str,
    extra_args: &[&str],
) -> PromServer {
    let dir = tempfile::Builder::new()
        .prefix(&format!("strata-test-{name}-"))
        .tempdir()
        .expect("tempdir");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, config_yaml).expect("write prometheus config");
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=info")
        .args(extra_args)
        .current_dir(dir.path());
    let guard = ChildGuard::spawn(name, &mut cmd);
    PromServer { guard, port, dir }
}

/// Starts node_exporter on `127.0.0.1:port` with only the cpu, loadavg and meminfo collectors
/// (fast, and enough families for relabel tests).
pub fn spawn_node_exporter(bin: &Path, port: u16) -> ChildGuard {
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--collector.disable-defaults")
        .arg("--collector.cpu")
        .arg("--collector.loadavg")
        .arg("--collector.meminfo");
    ChildGuard::spawn("node_exporter", &mut cmd)
}
