//! The Prometheus HTTP query API as Grafana's Prometheus data source calls it, after
//! Prometheus 2.53 `web/api/v1/api.go` (<https://prometheus.io/docs/prometheus/2.53/querying/api/>):
//!
//! | path | what |
//! |---|---|
//! | `GET/POST /api/v1/query` | instant query (`query`, `time`, `timeout`, `lookback_delta`) |
//! | `GET/POST /api/v1/query_range` | range query (`start`, `end`, `step`, …) |
//! | `GET/POST /api/v1/series` | label sets of `match[]` series in `start..end` (`limit`) |
//! | `GET/POST /api/v1/labels` | label names (optional `match[]`, `limit`) |
//! | `GET /api/v1/label/<name>/values` | values of one label (optional `match[]`, `limit`) |
//! | `GET /api/v1/metadata` | family metadata the head holds (`metric`, `limit`, `limit_per_metric`) |
//! | `GET /api/v1/query_exemplars` | always `[]`: exemplars are not stored |
//! | `GET/POST /api/v1/format_query` | the query pretty-printed by `promql-parser` |
//! | `GET /api/v1/status/buildinfo` | Strata's version (no `features` map) |
//!
//! Parameters and their error texts are in [`params`], the JSON encoding in [`json`].
//! Queries are evaluated on the blocking pool (the engine is synchronous, STYLE.md rule 6),
//! at most [`QueryApi::concurrency`] at once (Prometheus' `--query.max-concurrency`, 20), each
//! within the smaller of the engine's timeout and the request's `timeout`, waiting included. Ignored as
//! Prometheus' optional extras: `stats`.
//!
//! The data comes from a [`Queryable`] and a [`MetadataSource`] in [`QueryApi`]; roles
//! without storage have none and answer `unavailable` (503).

mod head;
mod json;
mod params;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::Semaphore;

pub use head::HeadQueryable;
use params::{is_label_name, parse_duration, parse_time, ApiError, ErrorType, Params};

use super::AppState;
use crate::model::metrics::{MetricType, SeriesMetadata};
use crate::promql::{Annotations, Engine, QueryError, QueryErrorKind, QueryResult, Queryable};
use crate::storage::store::Store;

/// Most points a range query may return per series (Prometheus' fixed 11,000).
const MAX_POINTS_PER_SERIES: i64 = 11_000;
/// Extra time the handler waits for an evaluation past its timeout before answering
/// `timeout` itself (the engine is expected to stop on its own first).
const TIMEOUT_GRACE: Duration = Duration::from_secs(1);

/// Family metadata for `/api/v1/metadata`: the latest per family, sorted by family name.
pub trait MetadataSource: Send + Sync {
    fn metadata(&self) -> Vec<(String, SeriesMetadata)>;
}

/// Queries evaluated at once by default (Prometheus' `--query.max-concurrency`).
pub const DEFAULT_MAX_CONCURRENCY: usize = 20;

/// What the query endpoints read and evaluate with.
#[derive(Clone)]
pub struct QueryApi {
    pub engine: Engine,
    pub storage: Arc<dyn Queryable>,
    pub metadata: Arc<dyn MetadataSource>,
    /// Permits to evaluate; further queries wait (within their timeout) for one.
    pub concurrency: Arc<Semaphore>,
}

impl QueryApi {
    pub fn new(
        engine: Engine,
        storage: Arc<dyn Queryable>,
        metadata: Arc<dyn MetadataSource>,
        max_concurrency: usize,
    ) -> Self {
        let concurrency = Arc::new(Semaphore::new(max_concurrency.max(1)));
        Self { engine, storage, metadata, concurrency }
    }

    /// The API over the heads of `store` (blocks in the bucket are not read).
    pub fn over_head(store: Arc<Store>, engine: Engine) -> Self {
        let head = Arc::new(HeadQueryable::new(store));
        Self::new(engine, head.clone(), head, DEFAULT_MAX_CONCURRENCY)
    }
}

/// The routes of this module, merged into the main router.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/query_exemplars", get(query_exemplars).post(query_exemplars))
        .route("/api/v1/format_query", get(format_query).post(format_query))
        .route("/api/v1/status/buildinfo", get(buildinfo))
}

fn json_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn ok(data: &str, annotations: &Annotations) -> Response {
    json_response(200, json::success(data, annotations))
}

fn fail(err: &ApiError, annotations: &Annotations) -> Response {
    json_response(err.kind.status(), json::error(err.kind.as_str(), &err.message, annotations))
}

/// Runs an endpoint body and encodes its outcome.
fn respond(outcome: Result<(String, Annotations), ApiError>) -> Response {
    match outcome {
        Ok((data, annotations)) => ok(&data, &annotations),
        Err(err) => fail(&err, &Annotations::default()),
    }
}

fn params(query: Option<&str>, headers: &HeaderMap, body: &Bytes) -> Params {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    Params::parse(query, body, is_form)
}

fn api(state: &AppState) -> Result<Arc<QueryApi>, ApiError> {
    state.query.clone().ok_or(ApiError {
        kind: ErrorType::Unavailable,
        message: "this role keeps no data to query (role: agent)".into(),
    })
}

/// The engine for one request: `timeout` and `lookback_delta` applied over the defaults.
fn request_engine(api: &QueryApi, params: &Params) -> Result<Engine, ApiError> {
    let mut options = api.engine.options().clone();
    let timeout = params.get("timeout");
    if !timeout.is_empty() {
        let ms = parse_duration(timeout).map_err(|why| ApiError::invalid_param("timeout", why))?;
        let requested = Duration::from_millis(u64::try_from(ms).unwrap_or(0));
        options.timeout = options.timeout.min(requested);
    }
    let lookback = params.get("lookback_delta");
    if !lookback.is_empty() {
        let ms = parse_duration(lookback).map_err(|why| {
            ApiError::bad_data(format!("error parsing lookback delta duration: {why}"))
        })?;
        // Zero or less keeps the default, as in Prometheus.
        if ms > 0 {
            options.lookback_delta_ms = ms;
        }
    }
    Ok(Engine::new(options))
}

/// Evaluates on the blocking pool once a concurrency permit is free, all bounded by the
/// engine's timeout (plus a grace period for the engine to notice it first).
async fn evaluate(
    api: &QueryApi,
    engine: Engine,
    run: impl FnOnce(&Engine, &dyn Queryable) -> Result<QueryResult, QueryError> + Send + 'static,
) -> Result<QueryResult, ApiError> {
    let timeout = engine.options().timeout;
    let storage = api.storage.clone();
    let concurrency = api.concurrency.clone();
    let queued_and_run = async move {
        let Ok(_permit) = concurrency.acquire_owned().await else {
            return Err(ApiError {
                kind: ErrorType::Unavailable,
                message: "query engine is shutting down".into(),
            });
        };
        let task = tokio::task::spawn_blocking(move || run(&engine, storage.as_ref()));
        match task.await {
            Ok(result) => result.map_err(query_error),
            Err(join) => Err(ApiError {
                kind: ErrorType::Internal,
                message: format!("query evaluation failed: {join}"),
            }),
        }
    };
    match tokio::time::timeout(timeout + TIMEOUT_GRACE, queued_and_run).await {
        Ok(outcome) => outcome,
        Err(_) => Err(ApiError {
            kind: ErrorType::Timeout,
            message: "query timed out in query queue or expression evaluation".into(),
        }),
    }
}

/// A parse error of the query is an invalid `query` parameter; other errors keep their text.
fn query_error(err: QueryError) -> ApiError {
    if err.kind == QueryErrorKind::BadData {
        return ApiError::invalid_param("query", err.message);
    }
    err.into()
}

fn query_response(outcome: Result<QueryResult, ApiError>) -> Response {
    match outcome {
        Ok(result) => ok(&json::query_data(&result.value), &result.annotations),
        Err(err) => fail(&err, &Annotations::default()),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn query(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = params(raw.as_deref(), &headers, &body);
    let prepared = (|| {
        let api = api(&state)?;
        let time = params.time_or("time", now_ms())?;
        let engine = request_engine(&api, &params)?;
        Ok::<_, ApiError>((api, time, engine))
    })();
    let (api, time, engine) = match prepared {
        Ok(prepared) => prepared,
        Err(err) => return fail(&err, &Annotations::default()),
    };
    let text = params.get("query").to_owned();
    let outcome =
        evaluate(&api, engine, move |engine, storage| engine.instant_query(storage, &text, time))
            .await;
    query_response(outcome)
}

/// `start`, `end` and `step` of a range query, checked as Prometheus checks them.
fn range_params(params: &Params) -> Result<(i64, i64, i64), ApiError> {
    let start =
        parse_time(params.get("start")).map_err(|why| ApiError::invalid_param("start", why))?;
    let end = parse_time(params.get("end")).map_err(|why| ApiError::invalid_param("end", why))?;
    if end < start {
        return Err(ApiError::invalid_param("end", "end timestamp must not be before start time"));
    }
    let step =
        parse_duration(params.get("step")).map_err(|why| ApiError::invalid_param("step", why))?;
    if step <= 0 {
        return Err(ApiError::invalid_param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    Ok((start, end, step))
}

async fn query_range(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = params(raw.as_deref(), &headers, &body);
    let prepared = (|| {
        let (start, end, step) = range_params(&params)?;
        let api = api(&state)?;
        let engine = request_engine(&api, &params)?;
        Ok::<_, ApiError>((api, start, end, step, engine))
    })();
    let (api, start, end, step, engine) = match prepared {
        Ok(prepared) => prepared,
        Err(err) => return fail(&err, &Annotations::default()),
    };
    let text = params.get("query").to_owned();
    let outcome = evaluate(&api, engine, move |engine, storage| {
        engine.range_query(storage, &text, start, end, step)
    })
    .await;
    query_response(outcome)
}

/// Runs a metadata lookup on the blocking pool (it may decode many chunks).
async fn lookup<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, QueryError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(|err| ApiError { kind: ErrorType::Execution, ..err.into() }),
        Err(join) => {
            Err(ApiError { kind: ErrorType::Internal, message: format!("lookup failed: {join}") })
        }
    }
}

/// Cuts `items` to `limit` (0: no limit), warning as Prometheus does when it cuts.
fn apply_limit<T>(items: &mut Vec<T>, limit: usize, annotations: &mut Annotations) {
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        annotations.warn("results truncated due to limit");
    }
}

async fn series(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = params(raw.as_deref(), &headers, &body);
    respond(series_data(&state, params).await)
}

async fn series_data(state: &AppState, params: Params) -> Result<(String, Annotations), ApiError> {
    if params.all("match[]").is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let (start, end) = params.start_end()?;
    let sets = params.matcher_sets().map_err(|why| ApiError::invalid_param("match[]", why))?;
    let limit = params.limit()?;
    let storage = api(state)?.storage.clone();
    let mut found = lookup(move || {
        let mut all = Vec::new();
        for set in &sets {
            all.extend(storage.series(set, start, end)?);
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    })
    .await?;
    let mut annotations = Annotations::default();
    apply_limit(&mut found, limit, &mut annotations);
    let mut out = String::from("[");
    for (i, labels) in found.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::push_labels(&mut out, labels);
    }
    out.push(']');
    Ok((out, annotations))
}

async fn labels(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = params(raw.as_deref(), &headers, &body);
    respond(labels_data(&state, params).await)
}

async fn labels_data(state: &AppState, params: Params) -> Result<(String, Annotations), ApiError> {
    let (start, end) = params.start_end()?;
    let sets = params.matcher_sets().map_err(ApiError::bad_data)?;
    let limit = params.limit()?;
    let storage = api(state)?.storage.clone();
    let mut names = lookup(move || {
        if sets.is_empty() {
            return storage.label_names(&[], start, end);
        }
        let mut all = Vec::new();
        for set in &sets {
            all.extend(storage.label_names(set, start, end)?);
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    })
    .await?;
    let mut annotations = Annotations::default();
    apply_limit(&mut names, limit, &mut annotations);
    Ok((json::string_list(names.iter().map(String::as_str)), annotations))
}

async fn label_values(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let params = Params::parse(raw.as_deref(), b"", false);
    respond(label_values_data(&state, name, params).await)
}

async fn label_values_data(
    state: &AppState,
    name: String,
    params: Params,
) -> Result<(String, Annotations), ApiError> {
    if !is_label_name(&name) {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let (start, end) = params.start_end()?;
    let sets = params.matcher_sets().map_err(ApiError::bad_data)?;
    let limit = params.limit()?;
    let storage = api(state)?.storage.clone();
    let mut values = lookup(move || {
        if sets.is_empty() {
            return storage.label_values(&name, &[], start, end);
        }
        let mut all = Vec::new();
        for set in &sets {
            all.extend(storage.label_values(&name, set, start, end)?);
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    })
    .await?;
    let mut annotations = Annotations::default();
    apply_limit(&mut values, limit, &mut annotations);
    Ok((json::string_list(values.iter().map(String::as_str)), annotations))
}

/// Prometheus' spelling of a metric type (`model.MetricType`).
fn type_name(metric_type: MetricType) -> &'static str {
    match metric_type {
        MetricType::Unknown => "unknown",
        MetricType::Counter => "counter",
        MetricType::Gauge => "gauge",
        MetricType::Histogram => "histogram",
        MetricType::GaugeHistogram => "gaugehistogram",
        MetricType::Summary => "summary",
        MetricType::Info => "info",
        MetricType::StateSet => "stateset",
    }
}

async fn metadata(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let params = Params::parse(raw.as_deref(), b"", false);
    respond(metadata_data(&state, &params))
}

/// Optional integer parameter of `/api/v1/metadata` (`limit`, `limit_per_metric`): Prometheus
/// takes any integer and treats a negative one as no limit.
fn metadata_limit(params: &Params, name: &str) -> Result<Option<usize>, ApiError> {
    let text = params.get(name);
    if text.is_empty() {
        return Ok(None);
    }
    let limit: i64 =
        text.parse().map_err(|_| ApiError::bad_data(format!("{name} must be a number")))?;
    Ok(usize::try_from(limit).ok())
}

fn metadata_data(state: &AppState, params: &Params) -> Result<(String, Annotations), ApiError> {
    let limit = metadata_limit(params, "limit")?;
    let per_metric = metadata_limit(params, "limit_per_metric")?;
    let wanted = params.get("metric");
    let source = api(state)?.metadata.clone();
    let mut out = String::from("{");
    let mut written = 0;
    for (family, metadata) in source.metadata() {
        if !wanted.is_empty() && family != wanted {
            continue;
        }
        if limit.is_some_and(|limit| written >= limit) {
            break;
        }
        // One entry per family: the head keeps the latest metadata only.
        if per_metric == Some(0) {
            continue;
        }
        if written > 0 {
            out.push(',');
        }
        json::push_str(&mut out, &family);
        out.push_str(":[{\"type\":");
        json::push_str(&mut out, type_name(metadata.metric_type));
        out.push_str(",\"help\":");
        json::push_str(&mut out, &metadata.help);
        out.push_str(",\"unit\":");
        json::push_str(&mut out, &metadata.unit);
        out.push_str("}]");
        written += 1;
    }
    out.push('}');
    Ok((out, Annotations::default()))
}

async fn query_exemplars(RawQuery(raw): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let params = params(raw.as_deref(), &headers, &body);
    respond(exemplars_data(&params))
}

fn exemplars_data(params: &Params) -> Result<(String, Annotations), ApiError> {
    let (start, end) = params.start_end()?;
    if end < start {
        return Err(ApiError::bad_data("end timestamp must not be before start timestamp"));
    }
    promql_parser::parser::parse(params.get("query")).map_err(ApiError::bad_data)?;
    // Exemplars are not stored: a valid query has none.
    Ok(("[]".into(), Annotations::default()))
}

async fn format_query(RawQuery(raw): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let params = params(raw.as_deref(), &headers, &body);
    let outcome = promql_parser::parser::parse(params.get("query"))
        .map_err(|why| ApiError::invalid_param("query", why))
        .map(|expr| {
            let mut data = String::new();
            json::push_str(&mut data, &expr.prettify());
            (data, Annotations::default())
        });
    respond(outcome)
}

async fn buildinfo() -> Response {
    let mut data = String::from("{");
    let fields = [
        ("version", env!("CARGO_PKG_VERSION")),
        ("revision", option_env!("STRATA_GIT_REVISION").unwrap_or("unknown")),
        ("branch", option_env!("STRATA_GIT_BRANCH").unwrap_or("unknown")),
        ("buildUser", option_env!("STRATA_BUILD_USER").unwrap_or("unknown")),
        ("buildDate", option_env!("STRATA_BUILD_DATE").unwrap_or("unknown")),
        // Prometheus reports its Go toolchain; Strata is Rust and says so.
        ("goVersion", concat!("rust (strata ", env!("CARGO_PKG_VERSION"), ")")),
    ];
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        json::push_str(&mut data, key);
        data.push(':');
        json::push_str(&mut data, value);
    }
    data.push('}');
    ok(&data, &Annotations::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::{EngineOptions, MemStorage, Value};

    struct NoMetadata;

    impl MetadataSource for NoMetadata {
        fn metadata(&self) -> Vec<(String, SeriesMetadata)> {
            Vec::new()
        }
    }

    fn api(max_concurrency: usize) -> QueryApi {
        let options = EngineOptions { timeout: Duration::ZERO, ..EngineOptions::default() };
        QueryApi::new(
            Engine::new(options),
            Arc::new(MemStorage::new()),
            Arc::new(NoMetadata),
            max_concurrency,
        )
    }

    #[tokio::test]
    async fn queries_wait_for_a_permit_within_their_timeout() {
        let api = api(1);
        let engine = Engine::new(EngineOptions::default());
        let result = evaluate(&api, engine.clone(), |engine, storage| {
            engine.instant_query(storage, "1 + 1", 0)
        })
        .await
        .expect("a free permit");
        assert_eq!(result.value, Value::Scalar { t: 0, v: 2.0 });
        // With the only permit taken, a query with a zero timeout gives up after the grace.
        let _held = api.concurrency.clone().acquire_owned().await.unwrap();
        let waiting = evaluate(&api, api.engine.clone(), |engine, storage| {
            engine.instant_query(storage, "1 + 1", 0)
        })
        .await
        .unwrap_err();
        assert_eq!(waiting.kind, ErrorType::Timeout);
    }

    #[test]
    fn parse_errors_name_the_query_parameter() {
        let err = query_error(QueryError::bad_data("unclosed left parenthesis"));
        assert_eq!(err.message, "invalid parameter \"query\": unclosed left parenthesis");
        let err = query_error(QueryError::execution("too many samples"));
        assert_eq!((err.kind, err.message.as_str()), (ErrorType::Execution, "too many samples"));
    }
}
