//! `GET /api/v1/rules`, `GET /api/v1/alerts` (bodies from [`crate::rules::api`]) and
//! `POST /-/reload` (rule files re-read and validated first; a bad file keeps the old rules and
//! the answer says why, as Prometheus' `/-/reload` does with `--web.enable-lifecycle`).

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::rules::{Manager, RulesQuery};

fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, error_type: &str, message: &str) -> Response {
    json(status, &serde_json::json!({"status": "error", "errorType": error_type, "error": message}))
}

fn manager(state: &AppState) -> Result<&Manager, Box<Response>> {
    state.rules.as_ref().ok_or_else(|| {
        Box::new(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this role evaluates no rules (role: agent)",
        ))
    })
}

/// `type`, `rule_name[]`, `rule_group[]`, `file[]`, `exclude_alerts` from the query string.
fn rules_query(raw: Option<&str>) -> RulesQuery {
    let mut query = RulesQuery::default();
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "type" => query.kind = Some(value.into_owned()),
            "rule_name[]" => query.rule_names.push(value.into_owned()),
            "rule_group[]" => query.group_names.push(value.into_owned()),
            "file[]" => query.files.push(value.into_owned()),
            "exclude_alerts" => query.exclude_alerts = value == "true" || value == "1",
            _ => {}
        }
    }
    query
}

pub(super) async fn rules(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let manager = match manager(&state) {
        Ok(manager) => manager,
        Err(response) => return *response,
    };
    match manager.rules_json(&rules_query(raw.as_deref())) {
        Ok(body) => json(StatusCode::OK, &body),
        Err(bad) => error(StatusCode::BAD_REQUEST, "bad_data", &bad.0),
    }
}

pub(super) async fn alerts(State(state): State<AppState>) -> Response {
    match manager(&state) {
        Ok(manager) => json(StatusCode::OK, &manager.alerts_json()),
        Err(response) => *response,
    }
}

pub(super) async fn reload(State(state): State<AppState>) -> Response {
    let manager = match manager(&state) {
        Ok(manager) => manager.clone(),
        Err(response) => return *response,
    };
    match reload_rules(&manager).await {
        Ok(()) => (StatusCode::OK, "rules reloaded\n").into_response(),
        Err(message) => (StatusCode::INTERNAL_SERVER_ERROR, message).into_response(),
    }
}

/// Re-reads the configured rule files off the runtime; the error text lists every problem.
pub async fn reload_rules(manager: &Manager) -> Result<(), String> {
    let manager = manager.clone();
    let outcome = tokio::task::spawn_blocking(move || manager.load_configured())
        .await
        .map_err(|e| format!("reload failed: {e}\n"))?;
    match outcome {
        Ok(()) => {
            tracing::info!("rule files reloaded");
            Ok(())
        }
        Err(errors) => {
            tracing::error!(errors = ?errors, "rule reload failed; the previous rules stay loaded");
            Err(format!(
                "failed to reload rules, the previous rules stay loaded:\n{}\n",
                errors.join("\n")
            ))
        }
    }
}
