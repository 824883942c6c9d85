//! Administration through the JSON API (issue #6, admin role): register patients, devices
//! (the MQTT password is in the answer, once), contacts and dashboard users; list devices,
//! users and facilities. The administration page's forms call these.

use super::auth::Principal;
use super::{ApiError, AppState};
use crate::{NewContactRequest, NewDeviceRequest, NewPatientRequest, NewUserRequest};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/devices", get(devices).post(add_device))
        .route("/users", get(users).post(add_user))
        .route("/facilities", get(facilities))
        .route(
            "/patients/{id}/contacts",
            get(super::revoke::contacts).post(add_contact),
        )
}

fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))
}

async fn devices(who: Principal, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    who.require_admin()?;
    let r = state.call(|b| b.registry()).await?;
    Ok(Json(json!({ "devices": r.devices })))
}

async fn users(who: Principal, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    who.require_admin()?;
    let r = state.call(|b| b.registry()).await?;
    Ok(Json(json!({ "users": r.users })))
}

async fn facilities(
    who: Principal,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    who.require_admin()?;
    let r = state.call(|b| b.registry()).await?;
    Ok(Json(json!({ "facilities": r.facilities })))
}

/// `POST /api/v1/patients`.
pub(crate) async fn add_patient(
    who: Principal,
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    who.require_admin()?;
    let req: NewPatientRequest = body(&bytes)?;
    let patient = state.call(move |b| b.add_patient(req)).await?;
    tracing::info!(actor = %who.name, patient_id = %patient.id, "patient registered");
    Ok((StatusCode::CREATED, Json(json!({ "patient": patient }))))
}

/// The device's credentials are in this answer only: the store keeps hashes.
async fn add_device(
    who: Principal,
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    who.require_admin()?;
    let req: NewDeviceRequest = body(&bytes)?;
    let creds = state.call(move |b| b.add_device(req)).await?;
    tracing::info!(actor = %who.name, device_id = %creds.id, patient_id = %creds.patient_id, "device registered");
    Ok((StatusCode::CREATED, Json(json!({ "device": creds }))))
}

async fn add_contact(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    who.require_admin()?;
    let req: NewContactRequest = body(&bytes)?;
    let contact = state.call(move |b| b.add_contact(&id, req)).await?;
    tracing::info!(actor = %who.name, contact_id = contact.id, patient_id = %contact.patient_id, "contact added");
    Ok((StatusCode::CREATED, Json(json!({ "contact": contact }))))
}

async fn add_user(
    who: Principal,
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    who.require_admin()?;
    let req: NewUserRequest = body(&bytes)?;
    let user = state.call(move |b| b.add_user(req)).await?;
    tracing::info!(actor = %who.name, user = %user.name, admin = user.admin, "dashboard user added");
    Ok((StatusCode::CREATED, Json(json!({ "user": user }))))
}
