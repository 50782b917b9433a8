//! Storage operations over HTTP (Strata's own; Prometheus keeps the same kind under
//! `/api/v1/status/tsdb` and `/api/v1/admin/tsdb/*`):
//!
//! * `GET /api/v1/status/storage`: WAL size and end, head contents per signal (the generation
//!   taking appends, and those cut but not yet uploaded), the upload spool, and the blocks in
//!   the bucket per signal and tier (count, rows, bytes, time range).
//! * `POST /api/v1/admin/storage/flush`: cuts the head into blocks now (before a planned
//!   scale-down, or in tests); answers with what was spooled, uploads follow in the background
//!   (`spool_blocks` in the status falls to 0).
//!
//! Answers use Prometheus' envelope: `{"status":"success","data":…}` or
//! `{"status":"error","errorType":…,"error":…}`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::AppState;
use crate::storage::bucket::BlockFilter;

/// Longest the status waits for the bucket listing.
const LISTING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

fn error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (status, Json(json!({"status": "error", "errorType": error_type, "error": message})))
        .into_response()
}

/// Blocks, rows, bytes, min and max time of one signal and tier.
type TierTotals = (u64, u64, u64, i64, i64);

fn unavailable() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "this role keeps no head or blocks (role: agent)",
    )
}

pub(super) async fn status(State(state): State<AppState>) -> Response {
    let mut data = serde_json::Map::new();
    if let Some(durable) = state.route.durable() {
        let end = durable.end();
        data.insert(
            "wal".into(),
            json!({"size_bytes": durable.size_bytes(), "end": {"segment": end.segment, "offset": end.offset}}),
        );
    }
    let Some(store) = state.route.store() else {
        return Json(json!({"status": "success", "data": data})).into_response();
    };
    let generations = store.generations();
    let head: Vec<Value> = generations
        .iter()
        .map(|generation| {
            let stats = generation.head.stats();
            json!({
                "metrics": {
                    "series": stats.metrics.series,
                    "samples": stats.metrics.samples,
                    "histograms": stats.metrics.histograms,
                    "chunks": stats.metrics.chunks,
                    "min_time_ms": stats.metrics.min_time_ms,
                    "max_time_ms": stats.metrics.max_time_ms,
                },
                "logs": {
                    "streams": stats.logs.streams,
                    "entries": stats.logs.entries,
                    "bytes": stats.logs.bytes,
                },
                "traces": {"traces": stats.traces.traces, "spans": stats.traces.spans},
            })
        })
        .collect();
    data.insert("head".into(), head.first().cloned().unwrap_or(Value::Null));
    data.insert("frozen".into(), Value::Array(head.into_iter().skip(1).collect()));
    data.insert("spool_blocks".into(), json!(store.spool_len()));
    // The object store's client retries a dead endpoint for minutes; the status answers now.
    let listing =
        tokio::time::timeout(LISTING_TIMEOUT, store.bucket().list_blocks(&BlockFilter::default()))
            .await
            .map_err(|_| {
                format!(
                    "listing blocks took over {} s (object store unreachable or slow)",
                    LISTING_TIMEOUT.as_secs()
                )
            })
            .and_then(|listed| listed.map_err(|e| e.to_string()));
    match listing {
        Ok(metas) => {
            let mut totals: BTreeMap<(String, String), TierTotals> = BTreeMap::new();
            for meta in &metas {
                let entry = totals
                    .entry((meta.signal.as_str().to_owned(), meta.tier.as_str().to_owned()))
                    .or_insert((0, 0, 0, i64::MAX, i64::MIN));
                entry.0 += 1;
                entry.1 += meta.rows;
                entry.2 += meta.files.iter().map(|f| f.size).sum::<u64>();
                entry.3 = entry.3.min(meta.min_time_ms);
                entry.4 = entry.4.max(meta.max_time_ms);
            }
            let blocks: Vec<Value> = totals
                .into_iter()
                .map(|((signal, tier), (count, rows, bytes, min, max))| {
                    json!({"signal": signal, "tier": tier, "blocks": count, "rows": rows,
                           "bytes": bytes, "min_time_ms": min, "max_time_ms": max})
                })
                .collect();
            data.insert("blocks".into(), Value::Array(blocks));
        }
        // Storage status matters most when the store is unreachable: say so, keep the rest.
        Err(err) => {
            data.insert("blocks_error".into(), json!(err));
        }
    }
    Json(json!({"status": "success", "data": data})).into_response()
}

pub(super) async fn flush(State(state): State<AppState>) -> Response {
    let (Some(durable), Some(store)) = (state.route.durable(), state.route.store()) else {
        return unavailable();
    };
    match store.flush(durable).await {
        Ok(report) => Json(json!({"status": "success", "data": {
            "blocks": report.blocks,
            "rows": report.rows,
            "spool_blocks": store.spool_len(),
        }}))
        .into_response(),
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", &err.to_string()),
    }
}
