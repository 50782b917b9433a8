//! Black-box test of the Prometheus HTTP query API of the `strata` binary: a remote-write
//! stream in, then every endpoint Grafana calls, checking Prometheus' JSON shapes, parameter
//! handling (GET and form POST, RFC 3339 and float times) and error texts and statuses.

mod common;
mod query_common;

use std::time::Duration;

use common::{free_port, http_client, spawn_strata, wait_http_ok, wait_until, ChildGuard};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

struct Strata {
    guard: ChildGuard,
    _dir: tempfile::TempDir,
    base: String,
}

async fn start_loaded() -> (Strata, i64) {
    let port = free_port();
    let (guard, dir) = spawn_strata(&format!("server:\n  http_listen_address: 127.0.0.1:{port}\n"));
    let base = format!("http://127.0.0.1:{port}");
    wait_http_ok(&guard, &format!("{base}/-/ready"), WAIT).await;
    let now = query_common::now_ms();
    query_common::push(&format!("{base}/api/v1/write"), query_common::body(now)).await;
    (Strata { guard, _dir: dir, base }, now)
}

/// GET `path` → (status, JSON body, content type).
async fn get(strata: &Strata, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    strata.guard.assert_running();
    let response = http_client()
        .get(format!("{}{path}", strata.base))
        .query(params)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    assert_eq!(content_type, "application/json", "GET {path} {params:?}");
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
    (status, body)
}

async fn post_form(strata: &Strata, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let response = http_client()
        .post(format!("{}{path}", strata.base))
        .form(params)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn data(strata: &Strata, path: &str, params: &[(&str, &str)]) -> Value {
    let (status, body) = get(strata, path, params).await;
    assert_eq!(status, 200, "GET {path} {params:?}: {body}");
    assert_eq!(body["status"], "success", "{body}");
    body["data"].clone()
}

async fn assert_error(
    strata: &Strata,
    path: &str,
    params: &[(&str, &str)],
    status: u16,
    error: &str,
) {
    let (got_status, body) = get(strata, path, params).await;
    assert_eq!(
        body,
        json!({"status": "error", "errorType": "bad_data", "error": error}),
        "GET {path} {params:?}"
    );
    assert_eq!(got_status, status, "GET {path} {params:?}: {body}");
}

fn seconds(t_ms: i64) -> String {
    format!("{}", t_ms as f64 / 1000.0)
}

#[tokio::test]
async fn every_endpoint_answers_in_prometheus_shapes() {
    let (strata, now) = start_loaded().await;
    let (first, last) = query_common::sample_range(now);
    let at = seconds(last + 57_000);

    // Data is visible once the head took the write.
    let up = wait_until("up in strata", WAIT, Duration::from_millis(200), || async {
        let result = data(&strata, "/api/v1/query", &[("query", "up"), ("time", &at)]).await;
        match result["result"].as_array() {
            Some(list) if list.len() == 5 => Ok(result),
            _ => Err(format!("not yet: {result}")),
        }
    })
    .await;

    // Instant vector.
    assert_eq!(up["resultType"], "vector");
    let sample = &up["result"][0];
    assert_eq!(sample["metric"]["__name__"], "up");
    assert_eq!(sample["metric"]["job"], "api");
    assert_eq!(sample["value"][0].as_f64().unwrap(), (last + 57_000) as f64 / 1000.0);
    assert_eq!(sample["value"][1], "1");
    let down = data(&strata, "/api/v1/query", &[("query", "up == 0"), ("time", &at)]).await;
    assert_eq!(down["result"][0]["metric"]["instance"], "10.0.1.1:9187", "{down}");

    // An RFC 3339 time is the same instant.
    let rfc = rfc3339_of(last + 57_000);
    let by_rfc = data(&strata, "/api/v1/query", &[("query", "up"), ("time", &rfc)]).await;
    assert_eq!(by_rfc, up);

    // Scalar, string, and a range selector (a matrix) from an instant query.
    let scalar = data(&strata, "/api/v1/query", &[("query", "1 + 1.5"), ("time", "100.5")]).await;
    assert_eq!(scalar, json!({"resultType": "scalar", "result": [100.5, "2.5"]}));
    let string = data(&strata, "/api/v1/query", &[("query", "\"hi\""), ("time", "7")]).await;
    assert_eq!(string, json!({"resultType": "string", "result": [7, "hi"]}));
    let special =
        data(&strata, "/api/v1/query", &[("query", "vector(1/0) or vector(-1/0)"), ("time", "7")])
            .await;
    assert_eq!(special["result"][0]["value"][1], "+Inf", "{special}");
    let matrix = data(
        &strata,
        "/api/v1/query",
        &[("query", r#"memory_usage_bytes{instance="10.0.0.0:8080"}[5m]"#), ("time", &at)],
    )
    .await;
    assert_eq!(matrix["resultType"], "matrix");
    assert_eq!(matrix["result"][0]["values"].as_array().unwrap().len(), 17, "{matrix}");

    // Range query, GET and form POST alike.
    let start = seconds(first + 57_000 + 600_000);
    let end = seconds(last + 57_000);
    let range_params = [
        ("query", "sum by (job) (rate(http_requests_total[5m]))"),
        ("start", start.as_str()),
        ("end", end.as_str()),
        ("step", "60s"),
    ];
    let range = data(&strata, "/api/v1/query_range", &range_params).await;
    assert_eq!(range["resultType"], "matrix");
    let series = range["result"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{range}");
    assert_eq!(series[0]["metric"], json!({"job": "api"}));
    assert_eq!(series[0]["values"].as_array().unwrap().len(), 50);
    let rate: f64 = series[0]["values"][10][1].as_str().unwrap().parse().unwrap();
    assert!((rate - 60.0).abs() < 3.0, "api's 3 instances serve ~10+20+30 req/s: {rate}");
    let (status, posted) = post_form(&strata, "/api/v1/query_range", &range_params).await;
    assert_eq!(status, 200);
    assert_eq!(posted["data"], range);
    let float_step = [range_params[0], range_params[1], range_params[2], ("step", "60")];
    assert_eq!(data(&strata, "/api/v1/query_range", &float_step).await, range);

    // Series, labels, label values.
    let found = data(
        &strata,
        "/api/v1/series",
        &[("match[]", "up"), ("match[]", r#"memory_usage_bytes{job="db"}"#)],
    )
    .await;
    assert_eq!(found.as_array().unwrap().len(), 7, "{found}");
    assert!(found
        .as_array()
        .unwrap()
        .contains(&json!({"__name__": "up", "job": "db", "instance": "10.0.1.0:9187"})));
    let (status, limited) =
        get(&strata, "/api/v1/series", &[("match[]", "up"), ("limit", "2")]).await;
    assert_eq!(status, 200);
    assert_eq!(limited["data"].as_array().unwrap().len(), 2);
    assert_eq!(limited["warnings"], json!(["results truncated due to limit"]));
    let names = data(&strata, "/api/v1/labels", &[]).await;
    assert_eq!(names, json!(["__name__", "code", "instance", "job", "le", "method"]));
    let up_names = data(&strata, "/api/v1/labels", &[("match[]", "up")]).await;
    assert_eq!(up_names, json!(["__name__", "instance", "job"]));
    let jobs = data(&strata, "/api/v1/label/job/values", &[]).await;
    assert_eq!(jobs, json!(["api", "db"]));
    let metric_names =
        data(&strata, "/api/v1/label/__name__/values", &[("match[]", r#"{job="db"}"#)]).await;
    assert_eq!(metric_names.as_array().unwrap().len(), 6, "{metric_names}");
    let none = data(&strata, "/api/v1/label/job/values", &[("start", "0"), ("end", "1")]).await;
    assert_eq!(none, json!([]), "nothing in the first second of 1970");

    // A request's timeout below the engine's applies: zero times out at once.
    let (status, body) = get(
        &strata,
        "/api/v1/query",
        &[("query", "rate(http_requests_total[5m])"), ("timeout", "0")],
    )
    .await;
    assert_eq!((status, body["errorType"].as_str()), (503, Some("timeout")), "{body}");

    // Metadata from the remote-write family metadata.
    let metadata = data(&strata, "/api/v1/metadata", &[]).await;
    // Strata's remote-write encoder names a counter's family without `_total` (OpenMetrics).
    assert_eq!(
        metadata["http_requests"],
        json!([{"type": "counter", "help": "Requests served.", "unit": ""}])
    );
    let one = data(&strata, "/api/v1/metadata", &[("metric", "memory_usage_bytes")]).await;
    assert_eq!(
        one,
        json!({"memory_usage_bytes": [{"type": "gauge", "help": "Resident memory.", "unit": "bytes"}]})
    );
    assert_eq!(
        data(&strata, "/api/v1/metadata", &[("limit", "1")]).await.as_object().unwrap().len(),
        1
    );

    // Exemplars (none stored), format_query, buildinfo.
    assert_eq!(data(&strata, "/api/v1/query_exemplars", &[("query", "up")]).await, json!([]));
    let formatted =
        data(&strata, "/api/v1/format_query", &[("query", "sum(rate(x[5m]))by(job)")]).await;
    assert_eq!(formatted, "sum by (job) (rate(x[5m]))");
    let build = data(&strata, "/api/v1/status/buildinfo", &[]).await;
    for key in ["version", "revision", "branch", "buildUser", "buildDate", "goVersion"] {
        assert!(build[key].is_string(), "buildinfo.{key}: {build}");
    }
    assert!(build.get("features").is_none(), "{build}");
}

#[tokio::test]
async fn bad_requests_get_prometheus_errors() {
    let port = free_port();
    let (guard, _dir) =
        spawn_strata(&format!("server:\n  http_listen_address: 127.0.0.1:{port}\n"));
    let base = format!("http://127.0.0.1:{port}");
    wait_http_ok(&guard, &format!("{base}/-/ready"), WAIT).await;
    let strata = Strata { guard, _dir: tempfile::tempdir().unwrap(), base };
    let query = "/api/v1/query";
    let range = "/api/v1/query_range";
    assert_error(&strata, query, &[("query", "1"), ("time", "abc")], 400,
        "invalid parameter \"time\": Invalid time value for 'time': cannot parse \"abc\" to a valid timestamp").await;
    assert_error(
        &strata,
        query,
        &[("query", "1"), ("timeout", "x")],
        400,
        "invalid parameter \"timeout\": cannot parse \"x\" to a valid duration",
    )
    .await;
    assert_error(
        &strata,
        query,
        &[("query", "up"), ("lookback_delta", "x")],
        400,
        "error parsing lookback delta duration: cannot parse \"x\" to a valid duration",
    )
    .await;
    assert_error(
        &strata,
        range,
        &[("query", "1")],
        400,
        "invalid parameter \"start\": cannot parse \"\" to a valid timestamp",
    )
    .await;
    assert_error(
        &strata,
        range,
        &[("query", "1"), ("start", "1"), ("end", "0"), ("step", "1")],
        400,
        "invalid parameter \"end\": end timestamp must not be before start time",
    )
    .await;
    assert_error(
        &strata,
        range,
        &[("query", "1"), ("start", "0"), ("end", "1")],
        400,
        "invalid parameter \"step\": cannot parse \"\" to a valid duration",
    )
    .await;
    assert_error(&strata, range, &[("query", "1"), ("start", "0"), ("end", "1"), ("step", "0")], 400,
        "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer").await;
    assert_error(&strata, range, &[("query", "1"), ("start", "0"), ("end", "100000"), ("step", "1")], 400,
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)").await;
    assert_error(&strata, "/api/v1/series", &[], 400, "no match[] parameter provided").await;
    assert_error(
        &strata,
        "/api/v1/series",
        &[("match[]", r#"{a=""}"#)],
        400,
        "invalid parameter \"match[]\": match[] must contain at least one non-empty matcher",
    )
    .await;
    assert_error(&strata, "/api/v1/series", &[("match[]", "up"), ("start", "x")], 400,
        "invalid parameter \"start\": Invalid time value for 'start': cannot parse \"x\" to a valid timestamp").await;
    assert_error(&strata, "/api/v1/label/a-b/values", &[], 400, "invalid label name: \"a-b\"")
        .await;
    assert_error(
        &strata,
        "/api/v1/labels",
        &[("limit", "0")],
        400,
        "invalid parameter \"limit\": limit must be positive",
    )
    .await;
    assert_error(&strata, "/api/v1/metadata", &[("limit", "x")], 400, "limit must be a number")
        .await;
    assert_error(
        &strata,
        "/api/v1/query_exemplars",
        &[("query", "up"), ("start", "10"), ("end", "5")],
        400,
        "end timestamp must not be before start timestamp",
    )
    .await;

    // Parse errors: the parser's own words, behind the parameter name.
    for path in [query, "/api/v1/format_query"] {
        let (status, body) = get(&strata, path, &[("query", "foo(")]).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["errorType"], "bad_data");
        let error = body["error"].as_str().unwrap();
        assert!(error.starts_with("invalid parameter \"query\": "), "{error}");
    }
    let (status, body) =
        get(&strata, range, &[("query", "sum("), ("start", "0"), ("end", "1"), ("step", "1")])
            .await;
    assert_eq!((status, body["errorType"].as_str()), (400, Some("bad_data")), "{body}");

    // An execution error is 422.
    let (status, body) =
        get(&strata, query, &[("query", r#"label_replace(vector(1), "a", "b", "c", "(")"#)]).await;
    assert!(status == 400 || status == 422, "{status} {body}");
    assert_eq!(body["status"], "error");
}

/// Milliseconds → RFC 3339 with milliseconds (a format Grafana and curl users send).
fn rfc3339_of(t_ms: i64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_millis(t_ms as u64);
    strata::notifier::wire::rfc3339(time)
}
