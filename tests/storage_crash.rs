//! Crash and fault tests of the storage path (non-negotiable 4: acknowledged means durable):
//!
//! * kill -9 during sustained load from `../shared/tools/loadgen` (remote-write, Loki push and
//!   OTLP traces at once), restart on the same data directory: every sample, line and span
//!   that got a 2xx is in head + blocks afterwards, counted exactly (at most the requests in
//!   flight at the kill come on top: appended, not yet answered);
//! * a torn tail and a bit flip in the WAL: the daemon starts, the records before the damage
//!   are kept, to the record;
//! * a full disk (a 4 MiB tmpfs as data directory): 503 with a message, never a 2xx, and the
//!   daemon keeps serving.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{free_port, http_client, in_ci, spawn_strata, wait_http_ok, wait_until, ChildGuard};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn loadgen_bin() -> Option<PathBuf> {
    common::require_peer(
        "loadgen",
        "STRATA_LOADGEN",
        &[".peers/loadgen-target/release/loadgen", "/tmp/loadgen-target/release/loadgen"],
    )
}

fn config(http: u16, data: &Path) -> String {
    format!(
        "server:\n  http_listen_address: 127.0.0.1:{http}\n  shutdown_timeout: 5s\n\
         storage:\n  path: {}\n",
        data.display()
    )
}

async fn start(http: u16, data: &Path) -> (ChildGuard, tempfile::TempDir) {
    let (guard, dir) = spawn_strata(&config(http, data));
    wait_http_ok(&guard, &format!("http://127.0.0.1:{http}/-/ready"), WAIT).await;
    (guard, dir)
}

async fn get_json(url: &str) -> Value {
    let response = http_client().get(url).send().await.expect("get");
    assert!(response.status().is_success(), "{url}: {}", response.status());
    response.json().await.expect("json")
}

/// Cuts the head into blocks, waits until nothing is left in the spool, and returns the block
/// rows per signal (the head is then empty).
async fn flush_and_count(base: &str) -> (u64, u64, u64) {
    // Encoding runs unoptimised in test builds: allow it far longer than a normal request.
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(180))
        .build()
        .unwrap()
        .post(format!("{base}/api/v1/admin/storage/flush"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(status.is_success(), "flush: {status} {body}");
    let status = wait_until("spool empty", WAIT, Duration::from_millis(200), || async {
        let status = get_json(&format!("{base}/api/v1/status/storage")).await;
        match status["data"]["spool_blocks"].as_u64() {
            Some(0) => Ok(status),
            other => Err(format!("spool_blocks = {other:?}")),
        }
    })
    .await;
    let head = &status["data"]["head"];
    assert_eq!(head["metrics"]["samples"], 0, "{status}");
    let rows = |signal: &str| -> u64 {
        status["data"]["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["signal"] == signal)
            .map(|b| b["rows"].as_u64().unwrap())
            .sum()
    };
    (rows("metrics"), rows("logs"), rows("traces"))
}

fn loadgen(bin: &Path, args: &[&str]) -> std::process::Child {
    Command::new(bin)
        .args(args)
        .args(["--json", "-q", "--buffer-mb", "64"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn loadgen")
}

/// `items_ok` and `items_sent` from loadgen's JSON line.
fn loadgen_result(child: std::process::Child) -> (u64, u64) {
    let output = child.wait_with_output().expect("loadgen");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no json from loadgen: {stdout}"));
    eprintln!(
        "loadgen {}: ok {} err_4xx {} err_5xx {} errors {} first error {}",
        json["mode"],
        json["ok"],
        json["err_4xx"],
        json["err_5xx"],
        json["errors"],
        json["first_error"]
    );
    (json["items_ok"].as_u64().unwrap(), json["items_sent"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_load_loses_nothing_acknowledged() {
    let Some(loadgen_path) = loadgen_bin() else { return };
    let data = tempfile::tempdir().unwrap();
    let http = free_port();
    let base = format!("http://127.0.0.1:{http}");
    let (strata, _cwd) = start(http, data.path()).await;

    let duration = "10";
    let rw = loadgen(
        &loadgen_path,
        &[
            "remote-write",
            "--url",
            &format!("{base}/api/v1/write"),
            "--series",
            "20000",
            "--batch-samples",
            "1000",
            "--concurrency",
            "2",
            "--duration",
            duration,
        ],
    );
    let loki = loadgen(
        &loadgen_path,
        &[
            "loki",
            "--url",
            &format!("{base}/loki/api/v1/push"),
            "--streams",
            "200",
            "--lines-per-request",
            "500",
            "--concurrency",
            "2",
            "--duration",
            duration,
        ],
    );
    let traces = loadgen(
        &loadgen_path,
        &[
            "otlp-traces",
            "--url",
            &format!("{base}/v1/traces"),
            "--protocol",
            "http",
            "--spans-per-request",
            "256",
            "--concurrency",
            "2",
            "--duration",
            duration,
        ],
    );
    // Generation before each loadgen's clock takes a couple of seconds on two cores.
    tokio::time::sleep(Duration::from_secs(6)).await;
    strata.assert_running();
    strata.kill();
    let (rw_ok, rw_sent) = loadgen_result(rw);
    let (loki_ok, loki_sent) = loadgen_result(loki);
    let (spans_ok, spans_sent) = loadgen_result(traces);
    eprintln!("acknowledged before the kill: {rw_ok} samples, {loki_ok} lines, {spans_ok} spans");
    assert!(rw_ok > 0 && loki_ok > 0 && spans_ok > 0, "load reached strata before the kill");

    let (strata, _cwd) = start(http, data.path()).await;
    let (samples, lines, spans) = flush_and_count(&base).await;
    eprintln!(
        "acknowledged/stored/sent: samples {rw_ok}/{samples}/{rw_sent}, \
         lines {loki_ok}/{lines}/{loki_sent}, spans {spans_ok}/{spans}/{spans_sent}"
    );
    // Everything acknowledged is there; anything more came from requests in flight at the
    // kill (2 connections per protocol: at most 2 requests each).
    assert!(samples >= rw_ok && samples <= rw_ok + 2 * 1000, "samples {samples} vs {rw_ok}");
    assert!(lines >= loki_ok && lines <= loki_ok + 2 * 500, "lines {lines} vs {loki_ok}");
    assert!(spans >= spans_ok && spans <= spans_ok + 2 * 256, "spans {spans} vs {spans_ok}");
    strata.assert_running();
}

/// Sends `count` remote-write requests of one sample each (distinct series), one at a time.
async fn send_samples(base: &str, count: usize, first: usize) {
    for i in first..first + count {
        let body = remote_write_one(&format!("series_{i}"), 1_700_000_000_000 + i as i64, i as f64);
        let response = http_client()
            .post(format!("{base}/api/v1/write"))
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    }
}

/// A snappy-compressed 1.0 `WriteRequest` with one series `name{job="crash"}` and one sample.
fn remote_write_one(name: &str, timestamp_ms: i64, value: f64) -> Vec<u8> {
    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn put_len(out: &mut Vec<u8>, key: u8, body: &[u8]) {
        out.push(key);
        put_varint(out, body.len() as u64);
        out.extend_from_slice(body);
    }
    let label = |n: &str, v: &str| {
        let mut l = Vec::new();
        put_len(&mut l, 0x0a, n.as_bytes());
        put_len(&mut l, 0x12, v.as_bytes());
        l
    };
    let mut series = Vec::new();
    put_len(&mut series, 0x0a, &label("__name__", name));
    put_len(&mut series, 0x0a, &label("job", "crash"));
    let mut sample = vec![0x09];
    sample.extend_from_slice(&value.to_bits().to_le_bytes());
    sample.push(0x10);
    put_varint(&mut sample, timestamp_ms as u64);
    put_len(&mut series, 0x12, &sample);
    let mut request = Vec::new();
    put_len(&mut request, 0x0a, &series);
    snap::raw::Encoder::new().compress_vec(&request).unwrap()
}

/// The WAL segments of a data directory, oldest first.
fn segments(data: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(data.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    found.sort();
    found
}

/// Start offsets of the records of a segment (format v1: 12-byte header, then
/// `len u32 | crc u32 | kind u8 | payload` with `len` counting kind and payload).
fn record_offsets(segment: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 12;
    while at + 8 <= segment.len() {
        offsets.push(at);
        let len = u32::from_le_bytes(segment[at..at + 4].try_into().unwrap()) as usize;
        at += 8 + len;
    }
    offsets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_and_a_bit_flip_keep_every_record_before_them() {
    let data = tempfile::tempdir().unwrap();
    let http = free_port();
    let base = format!("http://127.0.0.1:{http}");

    // Torn tail: the last record loses its last bytes.
    let (strata, _cwd) = start(http, data.path()).await;
    send_samples(&base, 20, 0).await;
    strata.kill();
    let last = segments(data.path()).pop().unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&last).unwrap().set_len(len - 3).unwrap();
    let (strata, _cwd) = start(http, data.path()).await;
    assert!(strata.stderr_text().contains("wal repaired"), "the repair is logged");
    let (samples, _, _) = flush_and_count(&base).await;
    assert_eq!(samples, 19, "every record before the torn one is kept");

    // Bit flip in the middle of a record: it and everything after it go, the rest stays.
    send_samples(&base, 30, 100).await;
    strata.kill();
    let last = segments(data.path()).pop().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    let offsets = record_offsets(&bytes);
    assert!(offsets.len() >= 30, "{} records in the last segment", offsets.len());
    let victim = offsets.len() - 10;
    bytes[offsets[victim] + 20] ^= 0x10;
    std::fs::write(&last, &bytes).unwrap();
    let (strata, _cwd) = start(http, data.path()).await;
    let (samples, _, _) = flush_and_count(&base).await;
    assert_eq!(samples, 19 + 20, "the 20 records before the flipped one are kept");
    strata.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_the_daemon_keeps_serving() {
    let mount = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(mount.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(!in_ci(), "cannot mount a tmpfs (needs root): CI must run this test");
        eprintln!("skipped: cannot mount a tmpfs (needs root)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.path().to_owned());
    let http = free_port();
    let base = format!("http://127.0.0.1:{http}");
    let (strata, _cwd) = start(http, mount.path()).await;
    // 4 MiB fill up after a few hundred 20 KiB records; the lines are random hex so the WAL's
    // snappy compression cannot shrink them.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = move |len: usize| -> String {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from_digit((state % 16) as u32, 16).unwrap()
            })
            .collect()
    };
    let mut refused = None;
    for i in 0..2000 {
        let now_ns =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
                as i64;
        let lines: Vec<String> =
            (0..100).map(|j| format!("[\"{}\", \"{}\"]", now_ns + j, noise(200))).collect();
        let body = format!(
            "{{\"streams\":[{{\"stream\":{{\"app\":\"fill\",\"n\":\"{i}\"}},\"values\":[{}]}}]}}",
            lines.join(",")
        );
        let response = http_client()
            .post(format!("{base}/loki/api/v1/push"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        if !status.is_success() {
            refused = Some((status, response.text().await.unwrap()));
            break;
        }
    }
    let (status, message) = refused.expect("a full disk must refuse data");
    assert_eq!(status, 503, "{message}");
    assert!(message.contains("durable") && message.contains("wal"), "{message}");
    let ready = http_client().get(format!("{base}/-/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "still serving");
    strata.assert_running();
}
