//! Differential test: the same remote-write stream ([`query_common`]) goes into Strata
//! (all-in-one) and into a real Prometheus (`--web.enable-remote-write-receiver`), then a
//! corpus of dashboard queries runs through both HTTP APIs, instant and range, and the answers
//! must match: same result type, same series (label sets), same timestamps, values equal
//! within 1e-9 relative (NaN equals NaN). The metadata endpoints (`/api/v1/series`,
//! `/api/v1/labels`, `/api/v1/label/job/values`) must be identical.
//!
//! Prometheus: 2.53 (`scripts/install-prometheus-trixie.sh` unpacks it into `.peers/`), else
//! `$STRATA_TEST_PROMETHEUS` or Debian's 2.42 (both pass). Strata follows Prometheus 3 semantics; the
//! known differences from 2.x are kept out of the comparison by the data, not by exceptions:
//!
//! * range and lookback windows are left-open in 3.x (`(t - r, t]`) and closed in 2.x
//!   (`[t - r, t]`): samples sit at 3 s past 15 s boundaries and every evaluation time is on
//!   a whole minute, so no sample is ever on a window's edge;
//! * 3.x tolerates tiny non-monotonic bucket deltas in `histogram_quantile` where 2.x forces
//!   monotonicity: the buckets here are monotonic;
//! * annotations (warnings/infos) are not compared: 3.x adds infos 2.x lacks.

mod common;
mod query_common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(250);
const RELATIVE_TOLERANCE: f64 = 1e-9;
const NO_SCRAPES: &str = "global:\n  scrape_interval: 1m\nscrape_configs: []\n";

/// Dashboards' typical queries.
const CORPUS: &[&str] = &[
    "up",
    "up == 0",
    "count(up == 1)",
    "count by (job) (up)",
    "rate(http_requests_total[5m])",
    "irate(http_requests_total[5m])",
    "increase(http_requests_total[10m])",
    "sum by (job) (rate(http_requests_total[5m]))",
    "sum by (job, code) (increase(http_requests_total[15m]))",
    r#"sum(rate(http_requests_total{code="500"}[5m])) / sum(rate(http_requests_total[5m]))"#,
    r#"sum by (job) (rate(http_requests_total{code="500"}[5m])) / sum by (job) (rate(http_requests_total[5m]))"#,
    r#"rate(http_requests_total{code="500"}[5m]) / ignoring(code) rate(http_requests_total{code="200"}[5m])"#,
    "resets(http_requests_total[1h])",
    "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.5, sum by (job, le) (rate(http_request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.99, rate(http_request_duration_seconds_bucket[10m]))",
    "rate(http_request_duration_seconds_sum[5m]) / rate(http_request_duration_seconds_count[5m])",
    "topk(3, memory_usage_bytes)",
    "bottomk(2, sum by (instance) (rate(http_requests_total[5m])))",
    "avg_over_time(memory_usage_bytes[10m])",
    "max_over_time(memory_usage_bytes[5m])",
    "min_over_time(memory_usage_bytes[5m])",
    "quantile_over_time(0.9, memory_usage_bytes[10m])",
    "stddev_over_time(memory_usage_bytes[10m])",
    "delta(memory_usage_bytes[10m])",
    "deriv(memory_usage_bytes[10m])",
    "avg by (job) (memory_usage_bytes)",
    "quantile(0.5, memory_usage_bytes)",
    "stddev by (job) (memory_usage_bytes)",
    "memory_usage_bytes / 1024 / 1024",
    "sum(memory_usage_bytes) by (job) > 2e8",
    "memory_usage_bytes offset 10m",
    "changes(memory_usage_bytes[15m])",
    r#"label_replace(up, "host", "$1", "instance", "([^:]+):.*")"#,
    r#"count by (host) (label_replace(up, "host", "$1", "instance", "(10\\.0\\.[0-9]+)\\..*"))"#,
    "absent(nonexistent_metric)",
    "vector(1) + on() group_left count(up)",
    "sort_desc(sum by (job) (rate(http_requests_total[5m])))",
    // Subqueries: a range that is not a whole number of minutes keeps the (whole-minute)
    // subquery steps off the window's edge.
    "max_over_time(rate(http_requests_total[5m])[29m59s:1m])",
    "avg_over_time(sum by (job) (rate(http_requests_total[5m]))[14m59s:30s])",
    "predict_linear(memory_usage_bytes[10m], 600)",
    "count_values(\"value\", up)",
    "sum without (instance, method) (rate(http_requests_total[5m]))",
    "clamp_max(memory_usage_bytes, 1.2e8)",
    "round(memory_usage_bytes / 1e6, 0.5)",
    r#"up{job=~"a.*|d.*", instance!~"10\\.0\\.0\\.1:.*"}"#,
];

/// Prometheus 2.53 if unpacked, else what the other tests use.
fn prometheus() -> Option<PathBuf> {
    if std::env::var_os("STRATA_TEST_PROMETHEUS").is_none() {
        let trixie = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/.peers/prometheus-trixie/usr/bin/prometheus"
        ));
        if trixie.is_file() {
            return Some(trixie);
        }
    }
    prometheus_bin()
}

/// One series of an answer: labels → points `(t_ms, value)`.
type Answer = BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>>;

fn parse_value(v: &Value) -> f64 {
    match v.as_str().unwrap_or_default() {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        text => text.parse().unwrap_or_else(|e| panic!("value {v}: {e}")),
    }
}

fn parse_point(point: &Value) -> (i64, f64) {
    let seconds = point[0].as_f64().unwrap_or_else(|| panic!("time in {point}"));
    ((seconds * 1000.0).round() as i64, parse_value(&point[1]))
}

fn labels_of(metric: &Value) -> BTreeMap<String, String> {
    metric
        .as_object()
        .map(|m| {
            m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().into())).collect()
        })
        .unwrap_or_default()
}

/// `data` of a query answer as (result type, series).
fn answer(data: &Value) -> (String, Answer) {
    let kind = data["resultType"].as_str().unwrap_or_default().to_owned();
    let mut out = Answer::new();
    match kind.as_str() {
        "scalar" | "string" => {
            out.insert(BTreeMap::new(), vec![parse_point(&data["result"])]);
        }
        "vector" => {
            for sample in data["result"].as_array().into_iter().flatten() {
                let previous =
                    out.insert(labels_of(&sample["metric"]), vec![parse_point(&sample["value"])]);
                assert!(previous.is_none(), "duplicate series in {data}");
            }
        }
        "matrix" => {
            for series in data["result"].as_array().into_iter().flatten() {
                let points =
                    series["values"].as_array().into_iter().flatten().map(parse_point).collect();
                let previous = out.insert(labels_of(&series["metric"]), points);
                assert!(previous.is_none(), "duplicate series in {data}");
            }
        }
        other => panic!("unknown resultType {other:?}: {data}"),
    }
    (kind, out)
}

fn close(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    (a - b).abs() <= RELATIVE_TOLERANCE * a.abs().max(b.abs())
}

/// Why two answers differ, if they do.
fn differences(strata: &(String, Answer), prometheus: &(String, Answer)) -> Vec<String> {
    let mut out = Vec::new();
    if strata.0 != prometheus.0 {
        out.push(format!("resultType {} vs {}", strata.0, prometheus.0));
    }
    for (labels, points) in &prometheus.1 {
        let Some(ours) = strata.1.get(labels) else {
            out.push(format!("missing series {labels:?}"));
            continue;
        };
        if ours.len() != points.len() {
            out.push(format!("{labels:?}: {} points vs {}", ours.len(), points.len()));
        }
        for (mine, theirs) in ours.iter().zip(points) {
            if mine.0 != theirs.0 || !close(mine.1, theirs.1) {
                out.push(format!("{labels:?}: {mine:?} vs {theirs:?}"));
                break;
            }
        }
    }
    for labels in strata.1.keys().filter(|l| !prometheus.1.contains_key(*l)) {
        out.push(format!("extra series {labels:?}"));
    }
    out
}

async fn get_data(base: &str, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
    let url = format!("{base}{path}");
    let response =
        http_client().get(&url).query(params).send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    let body: Value = serde_json::from_str(&text).map_err(|e| format!("{url}: {e}: {text}"))?;
    if !status.is_success() || body["status"] != "success" {
        return Err(format!("{url} {params:?}: {status}: {text}"));
    }
    Ok(body["data"].clone())
}

#[tokio::test]
async fn strata_answers_dashboard_queries_as_prometheus_does() {
    let Some(prometheus_path) = prometheus() else { return };
    let prometheus = spawn_prometheus(
        &prometheus_path,
        "prometheus",
        free_port(),
        NO_SCRAPES,
        &["--web.enable-remote-write-receiver"],
    );
    let strata_port = free_port();
    let (strata, _strata_dir) =
        spawn_strata(&format!("server:\n  http_listen_address: 127.0.0.1:{strata_port}\n"));
    let strata_base = format!("http://127.0.0.1:{strata_port}");
    wait_http_ok(&prometheus.guard, &format!("{}/-/ready", prometheus.base()), WAIT).await;
    wait_http_ok(&strata, &format!("{strata_base}/-/ready"), WAIT).await;

    let now = query_common::now_ms();
    let body = query_common::body(now);
    query_common::push(&format!("{}/api/v1/write", prometheus.base()), body.clone()).await;
    query_common::push(&format!("{strata_base}/api/v1/write"), body).await;
    let (_, last) = query_common::sample_range(now);
    // On a whole minute, 57 s after the last sample.
    let end_ms = last + 57_000;
    let expected_up = 5;
    for base in [prometheus.base(), strata_base.clone()] {
        let at = format!("{}", end_ms / 1000);
        wait_until(&format!("all up series at {base}"), WAIT, POLL, || async {
            let data = get_data(&base, "/api/v1/query", &[("query", "up"), ("time", &at)]).await?;
            let n = data["result"].as_array().map_or(0, Vec::len);
            if n == expected_up {
                Ok(())
            } else {
                Err(format!("{n} up series"))
            }
        })
        .await;
    }

    let mut failures = Vec::new();
    let mut compared = 0;
    // Queries whose answers were all empty compare nothing: each must have some series.
    let mut empty: Vec<&str> = Vec::new();
    let bases = [strata_base.as_str(), &prometheus.base()];
    for query in CORPUS {
        // Instant queries at three times, 10 minutes apart.
        for back_minutes in [0, 10, 20] {
            let time = format!("{}", (end_ms - back_minutes * 60_000) / 1000);
            let params = [("query", *query), ("time", time.as_str())];
            let mut answers = Vec::new();
            for base in bases {
                answers.push(get_data(base, "/api/v1/query", &params).await);
            }
            compared += 1;
            match (&answers[0], &answers[1]) {
                (Ok(ours), Ok(theirs)) => {
                    let diff = differences(&answer(ours), &answer(theirs));
                    if !diff.is_empty() {
                        failures.push(format!("instant {query} @{time}: {}", diff.join("; ")));
                    }
                }
                (ours, theirs) => failures.push(format!(
                    "instant {query} @{time}: strata {ours:?}, prometheus {theirs:?}"
                )),
            }
        }
        // A 40-minute range at 1-minute steps.
        let start = format!("{}", (end_ms - 40 * 60_000) / 1000);
        let end = format!("{}", end_ms / 1000);
        let params =
            [("query", *query), ("start", start.as_str()), ("end", end.as_str()), ("step", "60")];
        let mut answers = Vec::new();
        for base in bases {
            answers.push(get_data(base, "/api/v1/query_range", &params).await);
        }
        compared += 1;
        match (&answers[0], &answers[1]) {
            (Ok(ours), Ok(theirs)) => {
                let theirs = answer(theirs);
                if theirs.1.values().all(Vec::is_empty) {
                    empty.push(query);
                }
                let diff = differences(&answer(ours), &theirs);
                if !diff.is_empty() {
                    failures.push(format!("range {query}: {}", diff.join("; ")));
                }
            }
            (ours, theirs) => {
                failures.push(format!("range {query}: strata {ours:?}, prometheus {theirs:?}"))
            }
        }
    }

    // Raw data (no arithmetic): identical JSON, value strings and times included.
    let at = format!("{}", end_ms / 1000);
    let start = format!("{}", (end_ms - 30 * 60_000) / 1000);
    let exact: [(&str, Vec<(&str, &str)>); 4] = [
        ("/api/v1/query", vec![("query", "memory_usage_bytes"), ("time", &at)]),
        ("/api/v1/query", vec![("query", "http_requests_total[1m]"), ("time", &at)]),
        ("/api/v1/query", vec![("query", "http_request_duration_seconds_sum / 7"), ("time", &at)]),
        (
            "/api/v1/query_range",
            vec![("query", "memory_usage_bytes"), ("start", &start), ("end", &at), ("step", "45")],
        ),
    ];
    for (path, params) in &exact {
        let ours = get_data(&strata_base, path, params).await;
        let theirs = get_data(&prometheus.base(), path, params).await;
        compared += 1;
        if ours.is_err() || ours != theirs {
            failures
                .push(format!("exact {path} {params:?}: strata {ours:?}, prometheus {theirs:?}"));
        }
    }

    // Metadata endpoints: identical JSON (both sort).
    let lookups: [(&str, &[(&str, &str)]); 5] = [
        ("/api/v1/series", &[("match[]", "up")]),
        (
            "/api/v1/series",
            &[("match[]", r#"http_requests_total{code="500"}"#), ("match[]", "memory_usage_bytes")],
        ),
        ("/api/v1/labels", &[]),
        ("/api/v1/label/job/values", &[]),
        ("/api/v1/label/__name__/values", &[]),
    ];
    for (path, params) in lookups {
        let ours = get_data(&strata_base, path, params).await;
        let theirs = get_data(&prometheus.base(), path, params).await;
        compared += 1;
        let same = match (&ours, &theirs) {
            (Ok(a), Ok(b)) if path == "/api/v1/series" => {
                let set = |v: &Value| -> std::collections::BTreeSet<String> {
                    v.as_array()
                        .into_iter()
                        .flatten()
                        .map(labels_of)
                        .map(|l| format!("{l:?}"))
                        .collect()
                };
                set(a) == set(b)
            }
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if !same {
            failures.push(format!("{path} {params:?}: strata {ours:?}, prometheus {theirs:?}"));
        }
    }

    eprintln!("compared {compared} answers, {} differ", failures.len());
    assert!(empty.is_empty(), "queries without any series in Prometheus: {empty:?}");
    assert!(
        failures.is_empty(),
        "{} of {compared} answers differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    strata.assert_running();
}

#[test]
fn differences_see_missing_series_points_and_values() {
    let series = |value: f64| -> (String, Answer) {
        let labels = BTreeMap::from([("job".to_owned(), "a".to_owned())]);
        ("vector".into(), Answer::from([(labels, vec![(1000, value)])]))
    };
    assert!(differences(&series(1.0), &series(1.0 + 1e-12)).is_empty());
    assert!(differences(&series(f64::NAN), &series(f64::NAN)).is_empty());
    assert_eq!(differences(&series(1.0), &series(1.001)).len(), 1);
    assert_eq!(differences(&series(1.0), &series(f64::NAN)).len(), 1);
    let empty = ("vector".to_owned(), Answer::new());
    assert_eq!(differences(&empty, &series(1.0)), ["missing series {\"job\": \"a\"}"]);
    assert_eq!(differences(&series(1.0), &empty), ["extra series {\"job\": \"a\"}"]);
    let matrix = ("matrix".to_owned(), series(1.0).1);
    assert_eq!(differences(&matrix, &series(1.0)), ["resultType matrix vs vector"]);
}
