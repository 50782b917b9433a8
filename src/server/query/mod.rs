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
//! Query evaluation is here; the lookup endpoints are in `lookup`, parameters and their error
//! texts in `params`, the JSON encoding in `json`, the head-only storage in `head`.
//! Queries are evaluated on the blocking pool (the engine is synchronous, STYLE.md rule 6),
//! at most [`QueryApi::concurrency`] at once (Prometheus' `--query.max-concurrency`, 20), each
//! within the smaller of the engine's timeout and the request's `timeout`, waiting included.
//! Ignored, as optional extras of Prometheus': `stats`.
//!
//! The data comes from a [`Queryable`] and a [`MetadataSource`] in [`QueryApi`]; roles
//! without storage have none and answer `unavailable` (503).

mod json;
mod lookup;
mod params;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::Semaphore;

pub use crate::storage::query::HeadQueryable;
use params::{parse_duration, parse_time, ApiError, ErrorType, Params};

use super::AppState;
use crate::model::metrics::SeriesMetadata;
use crate::promql::{Annotations, Engine, QueryError, QueryErrorKind, QueryResult, Queryable};

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

impl MetadataSource for HeadQueryable {
    fn metadata(&self) -> Vec<(String, SeriesMetadata)> {
        HeadQueryable::metadata(self)
    }
}

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
}

/// The routes of this module, merged into the main router.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(lookup::series).post(lookup::series))
        .route("/api/v1/labels", get(lookup::labels).post(lookup::labels))
        .route("/api/v1/label/{name}/values", get(lookup::label_values))
        .route("/api/v1/metadata", get(lookup::metadata))
        .route(
            "/api/v1/query_exemplars",
            get(lookup::query_exemplars).post(lookup::query_exemplars),
        )
        .route("/api/v1/format_query", get(lookup::format_query).post(lookup::format_query))
        .route("/api/v1/status/buildinfo", get(lookup::buildinfo))
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
