//! `GET /api/v1/episodes`, `GET /api/v1/episodes/{id}` (issue #17): a patient's alerts grouped
//! into episodes — one deterioration, one card — with their current values, timeline, e-mails
//! and who answered. Alerts keep their own endpoints and name their episode (`episode_id`).
//! `POST /api/v1/episodes/{id}/ack|assign|resolve` act on every active signal at once.

use super::alerts::parse_body;
use super::auth::Principal;
use super::{ApiError, AppState};
use crate::{EpisodeAction, EpisodeFilter};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

/// Most episodes in one answer.
const LIMIT: usize = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/episodes", get(list))
        .route("/episodes/{id}", get(detail))
        // `ack`, `assign` or `resolve`.
        .route("/episodes/{id}/{action}", post(act))
}

#[derive(Deserialize, Default)]
struct ListQuery {
    /// `active` (default), `ended` or `all`.
    state: Option<String>,
    patient_id: Option<String>,
    limit: Option<usize>,
}

async fn list(
    who: Principal,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let which = match q.state.as_deref().unwrap_or("active") {
        "active" => EpisodeFilter::Active,
        "ended" => EpisodeFilter::Ended,
        "all" => EpisodeFilter::All,
        other => {
            return Err(ApiError::BadRequest(format!(
                "state {other:?}: expected active, ended or all"
            )))
        }
    };
    if let Some(p) = &q.patient_id {
        who.require_patient(&state, p).await?;
    }
    let limit = q.limit.unwrap_or(LIMIT).clamp(1, LIMIT);
    let scope = who.scope.clone();
    let list = state
        .call(move |b| b.episodes(&scope, which, q.patient_id.as_deref(), limit))
        .await?;
    Ok(Json(json!({ "episodes": list })))
}

/// Another facility's episode is as unknown as a missing one.
async fn require_episode(who: &Principal, state: &AppState, id: i64) -> Result<(), ApiError> {
    match state.call(move |b| b.episode_facility(id)).await? {
        Some(f) if who.scope.allows(&f) => Ok(()),
        _ => Err(ApiError::NotFound(format!("episode {id}"))),
    }
}

async fn detail(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    require_episode(&who, &state, id).await?;
    let d = state
        .call(move |b| b.episode_detail(id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("episode {id}")))?;
    Ok(Json(json!(d)))
}

async fn act(
    who: Principal,
    State(state): State<AppState>,
    Path((id, action)): Path<(i64, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let action = match action.as_str() {
        "ack" => EpisodeAction::Acknowledge,
        "assign" => EpisodeAction::Assign,
        "resolve" => EpisodeAction::Resolve,
        other => return Err(ApiError::NotFound(format!("episode action {other:?}"))),
    };
    require_episode(&who, &state, id).await?;
    let opts = parse_body(&body)?.options()?;
    let actor = who.name.clone();
    let episode = state
        .call(move |b| b.episode_action(id, action, &actor, &opts))
        .await?;
    tracing::info!(episode_id = id, actor = %who.name, action = ?action, "episode updated");
    Ok(Json(json!({ "episode": episode })))
}
