//! `GET /api/v1/patients`, `GET|PATCH|DELETE /api/v1/patients/{id}` (issue #21; changing and
//! removing are for administrators),
//! `GET /api/v1/patients/{id}/readings` and the per-patient threshold
//! orders `GET|POST /api/v1/patients/{id}/thresholds` (docs/api.md).

use super::auth::Principal;
use super::{ApiError, AppState};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use vigil_domain::views::Resolution;
use vigil_domain::Metric;

/// Default and largest `limit` for readings: a day of one reading a second fits the default.
const DEFAULT_LIMIT: usize = 10_000;
const MAX_LIMIT: usize = 100_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/patients", get(list).post(super::manage::add_patient))
        .route("/patients/{id}", get(one).patch(edit).delete(remove))
        .route("/patients/{id}/readings", get(readings))
        .route("/patients/{id}/events", get(events))
        .route(
            "/patients/{id}/thresholds",
            get(thresholds).post(order_threshold),
        )
}

async fn edit(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    who.require_admin()?;
    let req: crate::PatientEditRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?;
    let (pid, actor) = (id.clone(), who.name.clone());
    let patient = state
        .call(move |b| b.edit_patient(&pid, req, &actor))
        .await?;
    tracing::info!(actor = %who.name, patient_id = %id, "patient changed");
    Ok(Json(json!({ "patient": patient })))
}

async fn remove(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require_admin()?;
    let (pid, actor) = (id.clone(), who.name.clone());
    state.call(move |b| b.remove_patient(&pid, &actor)).await?;
    tracing::info!(actor = %who.name, patient_id = %id, "patient removed from monitoring");
    Ok(StatusCode::NO_CONTENT)
}

async fn thresholds(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    who.require_patient(&state, &id).await?;
    let pid = id.clone();
    let (rules, orders) = state.call(move |b| b.thresholds(&pid)).await?;
    Ok(Json(
        json!({ "patient_id": id, "thresholds": rules, "orders": orders }),
    ))
}

/// A threshold change is a clinical order: the author is the signed-in user (or API token),
/// the reason is required, and it is kept for good.
async fn order_threshold(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    who.require_patient(&state, &id).await?;
    let req: crate::ThresholdOrderRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?;
    if req.reason.len() > 2000 {
        return Err(ApiError::BadRequest(
            "reason is longer than 2000 bytes".into(),
        ));
    }
    let actor = who.name.clone();
    let order = state
        .call(move |b| b.order_threshold(&id, req, &actor))
        .await?;
    tracing::info!(order_id = order.id, actor = %who.name, rule = %order.rule, "threshold order");
    Ok((StatusCode::CREATED, Json(json!({ "order": order }))))
}

/// One patient, as one entry of the list (404 outside the caller's facilities).
async fn one(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    who.require_patient(&state, &id).await?;
    let pid = id.clone();
    let patient = state
        .call(move |b| b.patients(&who.scope))
        .await?
        .into_iter()
        .find(|p| p.id == pid)
        .ok_or_else(|| ApiError::NotFound(format!("patient {id}")))?;
    Ok(Json(json!({ "patient": patient })))
}

async fn list(who: Principal, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let patients = state.call(move |b| b.patients(&who.scope)).await?;
    Ok(Json(json!({ "patients": patients })))
}

#[derive(Deserialize)]
struct RangeQuery {
    metric: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    /// `raw` (default), `auto`, `minute` or `hour` (issue #4).
    resolution: Option<String>,
}

fn time_param(name: &str, v: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    v.map(|s| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| ApiError::BadRequest(format!("{name} must be an RFC 3339 time")))
    })
    .transpose()
}

/// Events on the patient's timeline, newest first (issue #21).
const EVENTS_LIMIT: usize = 1_000;

/// `GET /api/v1/patients/{id}/events?from=&to=&limit=`: the patient's device events (fall,
/// cancelled or not, SOS, "I'm OK", low battery with its level, device error), newest first.
async fn events(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<Value>, ApiError> {
    let to = time_param("to", q.to.as_deref())?.unwrap_or_else(Utc::now);
    let from = time_param("from", q.from.as_deref())?.unwrap_or(to - Duration::days(7));
    if from > to {
        return Err(ApiError::BadRequest("from is after to".into()));
    }
    let limit = q.limit.unwrap_or(200).min(EVENTS_LIMIT);
    who.require_patient(&state, &id).await?;
    let pid = id.clone();
    let list = state
        .call(move |b| b.patient_events(&pid, from, to, limit))
        .await?;
    Ok(Json(
        json!({ "patient_id": id, "from": from, "to": to, "events": list }),
    ))
}

async fn readings(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<Value>, ApiError> {
    let metric: Metric = q
        .metric
        .as_deref()
        .ok_or_else(|| ApiError::BadRequest("metric is required".into()))?
        .parse()
        .map_err(|_| {
            let known: Vec<&str> = Metric::ALL.iter().map(|m| m.as_str()).collect();
            ApiError::BadRequest(format!("unknown metric; one of: {}", known.join(", ")))
        })?;
    let to = time_param("to", q.to.as_deref())?.unwrap_or_else(Utc::now);
    let from = time_param("from", q.from.as_deref())?.unwrap_or(to - Duration::hours(24));
    if from > to {
        return Err(ApiError::BadRequest("from is after to".into()));
    }
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    // Raw unless asked: `readings` for any range is the v1 contract (issue #2) that scripts
    // and the tests rely on; `auto` and rollups are the extension (issue #4).
    let resolution = Resolution::parse(q.resolution.as_deref().unwrap_or("raw"))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?
        .unwrap_or_else(|| Resolution::auto(to - from));
    // A patient of another facility is as unknown as one that does not exist.
    who.require_patient(&state, &id).await?;
    let pid = id.clone();
    let mut body = json!({
        "patient_id": id,
        "metric": metric.as_str(),
        "unit": metric.unit(),
        "from": from,
        "to": to,
        "resolution": resolution.as_str(),
    });
    if resolution == Resolution::Raw {
        let rows = state
            .call(move |b| b.readings(&pid, metric, from, to, limit))
            .await?;
        body["readings"] = json!(rows);
    } else {
        let rows = state
            .call(move |b| b.reading_buckets(&pid, metric, resolution, from, to, limit))
            .await?;
        body["buckets"] = json!(rows);
    }
    Ok(Json(body))
}
