//! `GET /api/v1/me` (who the caller is) and `POST /api/v1/me/language` (the dashboard language
//! kept with the account, issue #6: "chosen per user").

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
    }))
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
