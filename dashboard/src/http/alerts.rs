//! `GET /api/v1/alerts`, `GET /api/v1/alerts/{id}`, `POST /api/v1/alerts/{id}/ack`,
//! `POST /api/v1/alerts/{id}/resolve`.

use super::auth::Principal;
use super::{ApiError, AppState};
use crate::AlertAction;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use vigil_domain::views::AlertFilter;
use vigil_domain::AlertState;

/// Most alerts in one answer.
const LIMIT: usize = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/alerts", get(list))
        .route("/alerts/{id}", get(detail))
        .route("/reports/alert-burden", get(burden))
        .route("/alerts/{id}/ack", post(ack))
        .route("/alerts/{id}/resolve", post(resolve))
        .route("/alerts/{id}/assign", post(assign))
}

/// The alert list's filters, shared by `GET /api/v1/alerts` and the alert inbox page.
#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    /// `open`, `acknowledged`, `resolved`, or `active` (open or acknowledged).
    pub state: Option<String>,
    /// `red`, `amber` or `yellow`.
    pub severity: Option<String>,
    pub patient_id: Option<String>,
    pub rule: Option<String>,
    /// RFC 3339: opened at or after.
    pub since: Option<String>,
    /// RFC 3339: opened before.
    pub until: Option<String>,
}

fn time_param(
    name: &str,
    v: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|_| ApiError::BadRequest(format!("{name} must be an RFC 3339 time")))
        })
        .transpose()
}

impl ListQuery {
    pub(crate) fn filter(&self) -> Result<AlertFilter, ApiError> {
        let (state, active) = match self.state.as_deref() {
            None | Some("") => (None, false),
            Some("active") => (None, true),
            Some(s) => (
                Some(s.parse::<AlertState>().map_err(|_| {
                    ApiError::BadRequest(
                        "state must be open, acknowledged, resolved or active".into(),
                    )
                })?),
                false,
            ),
        };
        let severity = match self.severity.as_deref() {
            None | Some("") => None,
            Some(s) => Some(s.parse::<vigil_domain::Severity>().map_err(|_| {
                ApiError::BadRequest("severity must be red, amber or yellow".into())
            })?),
        };
        Ok(AlertFilter {
            state,
            active,
            severity,
            patient_id: self.patient_id.clone().filter(|s| !s.is_empty()),
            rule: self.rule.clone().filter(|s| !s.is_empty()),
            since: time_param("since", self.since.as_deref())?,
            until: time_param("until", self.until.as_deref())?,
        })
    }
}

async fn list(
    who: Principal,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = q.filter()?;
    let alerts = state
        .call(move |b| b.alerts(&who.scope, &filter, LIMIT))
        .await?;
    Ok(Json(json!({ "alerts": alerts })))
}

#[derive(Deserialize)]
struct BurdenQuery {
    days: Option<u32>,
}

/// Alert burden per rule and per patient (issue #6), so noisy thresholds can be tuned.
async fn burden(
    who: Principal,
    State(state): State<AppState>,
    Query(q): Query<BurdenQuery>,
) -> Result<Json<Value>, ApiError> {
    let days = q.days.unwrap_or(7);
    if !(1..=365).contains(&days) {
        return Err(ApiError::BadRequest("days must be 1 to 365".into()));
    }
    let report = state
        .call(move |b| b.alert_burden(&who.scope, days))
        .await?;
    Ok(Json(json!(report)))
}

/// "Assign to me" (issue #6's alert inbox): the caller takes the alert on, audited.
async fn assign(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    who.require_alert(&state, id).await?;
    let note = parse_body(&body)?.note.filter(|n| !n.trim().is_empty());
    let actor = who.name.clone();
    let alert = state
        .call(move |b| b.alert_assign(id, &actor, note.as_deref()))
        .await?;
    // The backend's alert service announces the change to live dashboards (issue #16).
    tracing::info!(alert_id = id, actor = %who.name, "alert assigned");
    Ok(Json(json!({ "alert": alert })))
}

/// Linked readings in one answer: a long episode of a 1 Hz device can link many.
const READINGS_LIMIT: usize = 10_000;

async fn detail(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    who.require_alert(&state, id).await?;
    let d = state
        .call(move |b| b.alert_detail(id, READINGS_LIMIT))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("alert {id}")))?;
    Ok(Json(json!({
        "alert": d.alert,
        "audit": d.audit,
        "readings": d.readings,
        "emails": d.emails,
    })))
}

/// The body of an action on an alert or an episode (docs/api.md).
#[derive(Deserialize, Default)]
pub(crate) struct ActionBody {
    pub note: Option<String>,
    /// Acknowledge: the note is for the family too (issue #17).
    #[serde(default)]
    pub share_with_family: bool,
    /// Resolve an episode although a signal is still abnormal.
    #[serde(default)]
    pub confirm: bool,
}

impl ActionBody {
    /// The options of an action: a blank note is none; a note is at most 2000 bytes.
    pub(crate) fn options(self) -> Result<crate::ActionOptions, ApiError> {
        let note = self.note.filter(|n| !n.trim().is_empty());
        if note.as_ref().is_some_and(|n| n.len() > 2000) {
            return Err(ApiError::BadRequest(
                "note is longer than 2000 bytes".into(),
            ));
        }
        Ok(crate::ActionOptions {
            note,
            share_with_family: self.share_with_family,
            confirm: self.confirm,
        })
    }
}

/// The body is optional: an empty body or `{}` both mean "no note".
pub(crate) fn parse_body(body: &Bytes) -> Result<ActionBody, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ActionBody::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

async fn act(
    who: Principal,
    state: AppState,
    id: i64,
    action: AlertAction,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    who.require_alert(&state, id).await?;
    let opts = parse_body(&body)?.options()?;
    let actor = who.name.clone();
    let alert = state
        .call(move |b| b.alert_action(id, action, &actor, &opts))
        .await?;
    tracing::info!(alert_id = id, actor = %who.name, action = ?action, "alert updated");
    Ok(Json(json!({ "alert": alert })))
}

async fn ack(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    act(who, state, id, AlertAction::Acknowledge, body).await
}

async fn resolve(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    act(who, state, id, AlertAction::Resolve, body).await
}
