//! Revocation through the JSON API (issue #15, finding 9; administrators only, each change
//! audited with the caller's name): API tokens, dashboard users, contacts and devices. The
//! `vigil` commands of the same names do the same from the shell.

use super::auth::Principal;
use super::{ApiError, AppState};
use crate::ContactEditRequest;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(tokens))
        .route("/tokens/{id}/revoke", post(revoke_token))
        .route("/users/{name}/disable", post(disable_user))
        .route("/users/{name}/enable", post(enable_user))
        .route("/contacts/{id}", delete(remove_contact).patch(edit_contact))
        .route("/devices/{id}", delete(remove_device).patch(edit_device))
        .route("/audit", get(audit))
}

async fn tokens(who: Principal, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    who.require_admin()?;
    let list = state.call(|b| b.tokens()).await?;
    Ok(Json(json!({ "tokens": list })))
}

async fn revoke_token(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    who.require_admin()?;
    let actor = who.name.clone();
    state.call(move |b| b.revoke_token(id, &actor)).await?;
    tracing::info!(actor = %who.name, token_id = id, "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}

async fn set_user(
    who: Principal,
    state: AppState,
    name: String,
    enabled: bool,
) -> Result<StatusCode, ApiError> {
    who.require_admin()?;
    if !enabled && name == who.name {
        return Err(ApiError::BadRequest(
            "an administrator cannot disable their own account".into(),
        ));
    }
    let actor = who.name.clone();
    let n = name.clone();
    state
        .call(move |b| b.set_user_enabled(&n, enabled, &actor))
        .await?;
    tracing::info!(actor = %who.name, user = %name, enabled, "dashboard user changed");
    Ok(StatusCode::NO_CONTENT)
}

async fn disable_user(
    who: Principal,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    set_user(who, state, name, false).await
}

async fn enable_user(
    who: Principal,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    set_user(who, state, name, true).await
}

/// `GET /api/v1/patients/{id}/contacts` (routed beside the `POST` in `manage.rs`).
pub(crate) async fn contacts(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    who.require_admin()?;
    who.require_patient(&state, &id).await?;
    let list = state.call(move |b| b.contacts_of(&id)).await?;
    Ok(Json(json!({ "contacts": list })))
}

async fn edit_contact(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    who.require_admin()?;
    let req: ContactEditRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?;
    let actor = who.name.clone();
    let contact = state.call(move |b| b.edit_contact(id, req, &actor)).await?;
    tracing::info!(actor = %who.name, contact_id = id, "contact changed");
    Ok(Json(json!({ "contact": contact })))
}

async fn remove_contact(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    who.require_admin()?;
    let actor = who.name.clone();
    state.call(move |b| b.remove_contact(id, &actor)).await?;
    tracing::info!(actor = %who.name, contact_id = id, "contact removed");
    Ok(StatusCode::NO_CONTENT)
}

async fn edit_device(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<StatusCode, ApiError> {
    who.require_admin()?;
    let req: crate::DeviceEditRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?;
    let (d, actor) = (id.clone(), who.name.clone());
    state.call(move |b| b.edit_device(&d, req, &actor)).await?;
    tracing::info!(actor = %who.name, device_id = %id, "device changed");
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_device(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require_admin()?;
    let actor = who.name.clone();
    let d = id.clone();
    state.call(move |b| b.remove_device(&d, &actor)).await?;
    tracing::info!(actor = %who.name, device_id = %id, "device removed");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct AuditQuery {
    limit: Option<usize>,
}

async fn audit(
    who: Principal,
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    who.require_admin()?;
    let limit = q.limit.unwrap_or(100).min(1000);
    let list = state.call(move |b| b.admin_audit(limit)).await?;
    Ok(Json(json!({ "audit": list })))
}
