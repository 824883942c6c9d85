//! Operations endpoints: `/healthz`, `/readyz`, `/metrics`, `GET /api/v1/rejected` and the
//! OpenAPI document `GET /api/v1/openapi.json`.

use super::auth::Principal;
use super::{ApiError, AppState};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

pub fn api_router() -> Router<AppState> {
    Router::new()
        .route("/rejected", get(rejected))
        // Public: it describes the API, it holds no data (issue #6).
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
}

/// The OpenAPI 3.0 document of the JSON API (kept true by `tests/e2e/access.rs`, which calls
/// every path in it and checks docs/api.md against it).
const OPENAPI: &str = include_str!("../../assets/openapi.json");

async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let (checks, detail) = state
        .call(|b| Ok((b.readiness(), b.readiness_detail())))
        .await?;
    let ready = checks.iter().all(|(_, ok)| *ok);
    let body: serde_json::Map<String, Value> = checks
        .into_iter()
        .map(|(k, ok)| (k.to_string(), json!(if ok { "ok" } else { "down" })))
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut out = json!({ "ready": ready, "checks": body });
    if !detail.is_empty() {
        let detail: serde_json::Map<String, Value> = detail
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        out["detail"] = Value::Object(detail);
    }
    Ok((status, Json(out)))
}

/// Any valid API token or session unless `http.metrics_public` (Prometheus:
/// `authorization: {credentials_file: …}`).
async fn metrics(
    State(state): State<AppState>,
    mut parts: axum::http::request::Parts,
) -> Result<impl IntoResponse, ApiError> {
    if !state.metrics_public {
        use axum::extract::FromRequestParts;
        Principal::from_request_parts(&mut parts, &state).await?;
    }
    let text = state.call(|b| Ok(b.metrics_text())).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}

#[derive(Deserialize)]
struct RejectedQuery {
    limit: Option<usize>,
    /// One device's only.
    device: Option<String>,
}

/// Administration (issue #6): support staff fixing a misconfigured hub; admins only.
async fn rejected(
    who: Principal,
    State(state): State<AppState>,
    Query(q): Query<RejectedQuery>,
) -> Result<Json<Value>, ApiError> {
    who.require_admin()?;
    let limit = q.limit.unwrap_or(100).min(1000);
    let device = q.device.filter(|d| !d.is_empty());
    let rows = state
        .call(move |b| b.rejected_of(device.as_deref(), limit))
        .await?;
    Ok(Json(json!({ "rejected": rows })))
}
