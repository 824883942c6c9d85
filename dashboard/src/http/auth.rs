//! Who is asking: an API bearer token (`Authorization: Bearer …`) or a dashboard session
//! cookie. [`Principal`] is the extractor every protected handler takes; without valid
//! credentials it answers 401 before the handler runs.

use super::{ApiError, AppState};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

pub const SESSION_COOKIE: &str = "vigil_session";

/// An authenticated caller; `name` goes into audit records.
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: String,
}

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
            let token = auth
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or(ApiError::Unauthorized)?
                .to_string();
            let name = state.call(move |b| b.token_name(&token)).await?;
            return name
                .map(|n| Principal {
                    name: format!("token:{n}"),
                })
                .ok_or(ApiError::Unauthorized);
        }
        if let Some(token) = cookie(&parts.headers, SESSION_COOKIE) {
            if let Some(name) = state.call(move |b| b.session_user(&token)).await? {
                return Ok(Principal { name });
            }
        }
        Err(ApiError::Unauthorized)
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
}

async fn login_page() -> Html<String> {
    Html(super::pages::login_html(None))
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    Form(form): Form<LoginForm>,
) -> Result<Response, ApiError> {
    let user = form.username.clone();
    let token = state
        .call(move |b| b.login(&form.username, &form.password))
        .await?;
    match token {
        Some(token) => {
            tracing::info!(user = %user, "dashboard login");
            let cookie = format!(
                "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
                state.session_ttl.as_secs(),
                if state.secure_cookie { "; Secure" } else { "" }
            );
            Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response())
        }
        None => {
            tracing::warn!(user = %user, "dashboard login refused");
            Ok((
                StatusCode::UNAUTHORIZED,
                Html(super::pages::login_html(Some(
                    "Sai tên đăng nhập hoặc mật khẩu / Wrong user name or password",
                ))),
            )
                .into_response())
        }
    }
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        state.call(move |b| b.logout(&token)).await?;
    }
    let clear = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    Ok(([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response())
}
