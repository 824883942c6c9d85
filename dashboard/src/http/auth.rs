//! Who is asking: an API bearer token (`Authorization: Bearer …`) or a dashboard session
//! cookie. [`Principal`] is the extractor every protected handler takes; without valid
//! credentials it answers 401 before the handler runs.
//!
//! CSRF (issue #6): a session cookie is sent by the browser on any request, so a
//! state-changing request (not GET/HEAD/OPTIONS) authenticated by the cookie must also carry
//! the session's CSRF token in `X-CSRF-Token` (the synchronizer-token pattern, OWASP CSRF
//! cheat sheet); the dashboard's script reads it from the `vigil_csrf` cookie, which another
//! site can neither read nor set (SameSite=Strict, and it must equal the value stored with the
//! session). Bearer tokens are not ambient, so they need none. The login form is checked by
//! its `Origin` header (login CSRF); sign-ins are throttled and their hashing bounded
//! ([`super::limit`]).

use super::{ApiError, AppState};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use vigil_domain::{Access, Scope};

pub const SESSION_COOKIE: &str = "vigil_session";
/// Readable by the dashboard's script, which echoes it in `X-CSRF-Token`.
pub const CSRF_COOKIE: &str = "vigil_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// An authenticated caller; `name` goes into audit records.
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: String,
    pub admin: bool,
    pub scope: Scope,
    /// The user's saved dashboard language (sessions only).
    pub lang: Option<vigil_domain::Lang>,
    /// The red-alert tone (issue #21; sessions only, `true` otherwise).
    pub sound: bool,
    /// Signed in with a session cookie (a user), not an API token.
    pub session: bool,
    /// What the caller showed, so a long-lived response (the live stream) can ask again
    /// whether it still holds (issue #15: revoked tokens, disabled users, logouts).
    pub credential: Credential,
}

/// A credential as presented (the secret itself: kept in memory for the request only).
#[derive(Clone)]
pub enum Credential {
    Token(String),
    Session(String),
}

// The secrets never reach a log line through `{:?}`.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::Token(_) => "Token(…)",
            Credential::Session(_) => "Session(…)",
        })
    }
}

impl Credential {
    /// Who it speaks for now: `None` once revoked, disabled, expired or signed out.
    async fn access(&self, state: &AppState) -> Result<Option<Access>, ApiError> {
        let c = self.clone();
        state
            .call(move |b| match &c {
                Credential::Token(t) => b.token_access(t),
                Credential::Session(t) => b.session_access(t),
            })
            .await
    }

    /// Whether it still grants access.
    pub async fn still_valid(&self, state: &AppState) -> bool {
        self.access(state).await.is_ok_and(|a| a.is_some())
    }
}

impl Principal {
    /// 403 unless an administrator.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden("administrators only".into()))
        }
    }

    /// 404 unless the patient exists in a facility the caller may see.
    pub async fn require_patient(
        &self,
        state: &AppState,
        patient_id: &str,
    ) -> Result<(), ApiError> {
        let pid = patient_id.to_string();
        match state.call(move |b| b.patient_facility(&pid)).await? {
            Some(f) if self.scope.allows(&f) => Ok(()),
            _ => Err(ApiError::NotFound(format!("patient {patient_id}"))),
        }
    }

    /// 404 unless the alert exists and its patient is in a facility the caller may see.
    pub async fn require_alert(&self, state: &AppState, alert_id: i64) -> Result<(), ApiError> {
        match state.call(move |b| b.alert_facility(alert_id)).await? {
            Some(f) if self.scope.allows(&f) => Ok(()),
            _ => Err(ApiError::NotFound(format!("alert {alert_id}"))),
        }
    }
}

fn from_access(a: Access, credential: Credential) -> Principal {
    Principal {
        name: a.name,
        admin: a.admin,
        scope: a.scope,
        lang: a.lang,
        sound: a.sound,
        session: matches!(credential, Credential::Session(_)),
        credential,
    }
}

/// Constant-time comparison, so the check does not leak how much of a guess was right.
/// Whether two tokens are equal, in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name` the request sent.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(|c| c.value().to_string())
}

/// A dashboard cookie: `SameSite=Strict`, the whole site, `Secure` over HTTPS.
fn site_cookie(name: &'static str, value: String, max_age: u64, secure: bool) -> Cookie<'static> {
    Cookie::build((name, value))
        .same_site(SameSite::Strict)
        .path("/")
        .max_age(::cookie::time::Duration::seconds(max_age as i64))
        .secure(secure)
        .build()
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
            let credential = Credential::Token(token);
            return credential
                .access(state)
                .await?
                .map(|a| from_access(a, credential))
                .ok_or(ApiError::Unauthorized);
        }
        if let Some(token) = cookie(&parts.headers, SESSION_COOKIE) {
            let credential = Credential::Session(token);
            if let Some(access) = credential.access(state).await? {
                let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
                if !safe {
                    let sent = parts
                        .headers
                        .get(CSRF_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let expected = access.csrf.as_deref().unwrap_or("");
                    if expected.is_empty() || !same(sent, expected) {
                        return Err(ApiError::Forbidden(
                            "missing or wrong CSRF token (X-CSRF-Token)".into(),
                        ));
                    }
                }
                return Ok(from_access(access, credential));
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

/// Whether a form post comes from this site: browsers send `Origin` on POST; when they do,
/// its host must be the one the request was sent to (login CSRF, OWASP).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true; // not a browser form post, or an old browser: SameSite still applies
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    origin != "null" && !host.is_empty() && origin_host == host
}

/// 429 with `Retry-After` (whole seconds, at least one) and the sign-in page saying why.
fn too_many(wait: std::time::Duration, busy: bool) -> Response {
    let secs = wait.as_secs().max(1);
    let text = if busy {
        "Hệ thống đang bận, xin thử lại sau giây lát / Busy, please try again in a moment"
            .to_string()
    } else if secs < 60 {
        format!(
            "Đăng nhập sai nhiều lần, xin thử lại sau {secs} giây / \
             Too many failed sign-ins, try again in {secs} s"
        )
    } else {
        let minutes = secs.div_ceil(60);
        format!(
            "Đăng nhập sai quá nhiều lần, xin thử lại sau {minutes} phút / \
             Too many failed sign-ins, try again in {minutes} min"
        )
    };
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, secs.to_string())],
        Html(super::pages::login_html(Some(&text))),
    )
        .into_response()
}

async fn login(
    State(state): State<AppState>,
    super::ClientAddr(addr): super::ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, ApiError> {
    if !same_origin(&headers) {
        return Err(ApiError::Forbidden("cross-site login refused".into()));
    }
    let user = form.username.clone();
    if let Some(wait) = state.logins.blocked(&user, addr) {
        tracing::warn!(
            user = %user,
            wait_s = wait.as_secs(),
            "dashboard login throttled"
        );
        return Ok(too_many(wait, false));
    }
    // Hashing a password is slow on purpose: a few at a time, a few waiting, the rest
    // refused at once (issue #15).
    let trusted = state.logins.trusted(&user, addr);
    let Some(_turn) = state.login_gate.enter(trusted).await else {
        tracing::warn!("dashboard logins busy: refused");
        return Ok(too_many(std::time::Duration::from_secs(1), true));
    };
    let session = state
        .call(move |b| b.login(&form.username, &form.password))
        .await?;
    match session {
        Some((token, csrf)) => {
            state.logins.succeeded(&user, addr);
            tracing::info!(user = %user, "dashboard login");
            let (ttl, secure) = (state.session_ttl.as_secs(), state.secure_cookie);
            let mut session = site_cookie(SESSION_COOKIE, token, ttl, secure);
            session.set_http_only(true);
            // The CSRF cookie is for the page's script to read: not HttpOnly.
            let csrf = site_cookie(CSRF_COOKIE, csrf, ttl, secure);
            let jar = CookieJar::new().add(session).add(csrf);
            Ok((jar, Redirect::to("/")).into_response())
        }
        None => {
            state.logins.failed(&user, addr);
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
    if !same_origin(&headers) {
        return Err(ApiError::Forbidden("cross-site sign-out refused".into()));
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        state.call(move |b| b.logout(&token)).await?;
    }
    let mut clear = site_cookie(SESSION_COOKIE, String::new(), 0, state.secure_cookie);
    clear.set_http_only(true);
    let clear_csrf = site_cookie(CSRF_COOKIE, String::new(), 0, state.secure_cookie);
    let jar = CookieJar::new().add(clear).add(clear_csrf);
    Ok((jar, Redirect::to("/login")).into_response())
}
