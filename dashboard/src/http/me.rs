//! `GET /api/v1/me` (who the caller is), `POST /api/v1/me/language` (the dashboard language
//! kept with the account, issue #6: "chosen per user") and `POST /api/v1/me/sound` (whether
//! the dashboard sounds a tone for a new red alert, issue #21: on by default, per account).

use super::auth::Principal;
use super::{ApiError, AppState};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use vigil_domain::{Lang, Scope};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me", get(me))
        .route("/me/language", post(set_language))
        .route("/me/sound", post(set_sound))
}

async fn me(who: Principal) -> Json<Value> {
    let facilities = match &who.scope {
        Scope::All => Value::Null,
        Scope::Only(f) => json!(f),
    };
    Json(json!({
        "name": who.name,
        "role": if who.admin { "admin" } else { "clinician" },
        "facilities": facilities,
        "lang": who.lang.map(Lang::as_str),
        "sound": who.sound,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SoundBody {
    on: bool,
}

async fn set_sound(
    who: Principal,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: SoundBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?;
    if !who.session {
        return Err(ApiError::BadRequest(
            "API tokens have no sound setting; sign in as a user".into(),
        ));
    }
    let (name, on) = (who.name.clone(), body.on);
    state.call(move |b| b.set_sound(&name, on)).await?;
    tracing::info!(user = %who.name, on, "red-alert tone");
    Ok(Json(json!({ "sound": on })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LanguageBody {
    lang: String,
}

async fn set_language(
    who: Principal,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: LanguageBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?;
    let lang: Lang = body
        .lang
        .parse()
        .map_err(|_| ApiError::BadRequest("lang must be vi or en".into()))?;
    if !who.session {
        return Err(ApiError::BadRequest(
            "API tokens have no language; sign in as a user".into(),
        ));
    }
    let name = who.name.clone();
    state.call(move |b| b.set_language(&name, lang)).await?;
    tracing::info!(user = %who.name, lang = lang.as_str(), "dashboard language");
    Ok(Json(json!({ "lang": lang.as_str() })))
}
