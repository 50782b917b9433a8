//! The lookup endpoints of the query API: `series`, `labels`, `label/<name>/values`,
//! `metadata`, `query_exemplars`, `format_query` and `status/buildinfo` (Prometheus 2.53
//! `web/api/v1/api.go`). Lookups that read storage run on the blocking pool.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::params::{is_label_name, ApiError, ErrorType, Params};
use super::{api, json, ok, params, respond};
use crate::model::metrics::MetricType;
use crate::promql::{Annotations, QueryError};
use crate::server::AppState;
use crate::storage::head::LabelMatcher;

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
/// What `lookup` finds for each `match[]` set, merged, sorted and deduplicated (one call with
/// no matchers when there are no sets).
fn union_over<T: Ord>(
    sets: &[Vec<LabelMatcher>],
    mut find: impl FnMut(&[LabelMatcher]) -> Result<Vec<T>, QueryError>,
) -> Result<Vec<T>, QueryError> {
    if sets.is_empty() {
        return find(&[]);
    }
    let mut all = Vec::new();
    for set in sets {
        all.extend(find(set)?);
    }
    all.sort_unstable();
    all.dedup();
    Ok(all)
}

fn apply_limit<T>(items: &mut Vec<T>, limit: usize, annotations: &mut Annotations) {
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        annotations.warn("results truncated due to limit");
    }
}

pub(super) async fn series(
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
    let mut found =
        lookup(move || union_over(&sets, |set| storage.series(set, start, end))).await?;
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

pub(super) async fn labels(
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
    let mut names =
        lookup(move || union_over(&sets, |set| storage.label_names(set, start, end))).await?;
    let mut annotations = Annotations::default();
    apply_limit(&mut names, limit, &mut annotations);
    Ok((json::string_list(names.iter().map(String::as_str)), annotations))
}

pub(super) async fn label_values(
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
    let mut values =
        lookup(move || union_over(&sets, |set| storage.label_values(&name, set, start, end)))
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

pub(super) async fn metadata(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
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

pub(super) async fn query_exemplars(
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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

pub(super) async fn format_query(
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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

pub(super) async fn buildinfo() -> Response {
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
