//! The axum application: one [`AppState`], a router per area merged here, one `ApiError`
//! (the realworld-axum-sqlx layout).

mod acklink;
mod admin;
mod admin_page;
mod alert_page;
mod alert_text;
mod alerts;
mod auth;
mod burden_page;
mod charts;
mod episode_card;
mod episodes;
mod error;
mod fhir;
mod inbox;
mod labels;
mod limit;
mod manage;
mod me;
mod pages;
mod patient_page;
mod patients;
mod red_alerts;
mod revoke;
mod serve;
mod stream;
mod templates;
#[cfg(test)]
mod tests;
pub mod tls;
mod view;
pub mod ward;

use crate::Backend;
use axum::http::{header, HeaderValue};
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use vigil_domain::views::Live;

pub use auth::{CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE};
pub use error::ApiError;
pub use limit::{LoginGate, LoginLimiter};
pub use serve::{ClientAddr, Limits};

/// What the gateway decides about the dashboard (`[http]`, `[dashboard]`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a dashboard login lasts (cookie max-age).
    pub session_ttl: Duration,
    /// Mark the session cookie `Secure` (the dashboard is reached over HTTPS).
    pub secure_cookie: bool,
    /// The time zone pages show times in (`dashboard.timezone`).
    pub tz: chrono_tz::Tz,
    /// `/metrics` without credentials (`http.metrics_public`).
    pub metrics_public: bool,
}

/// Shared by every handler; cheap to clone. Built with [`AppState::new`].
#[derive(Clone)]
pub struct AppState {
    pub(crate) backend: Arc<dyn Backend>,
    /// Committed readings and alert changes, for the SSE stream.
    pub(crate) live: broadcast::Sender<Live>,
    /// How long a dashboard login lasts (cookie max-age).
    pub(crate) session_ttl: Duration,
    /// Mark the session cookie `Secure` (the dashboard is reached over HTTPS).
    pub(crate) secure_cookie: bool,
    /// Failed sign-ins by address, (name, address) and name.
    pub(crate) logins: Arc<limit::LoginLimiter>,
    /// Sign-ins hashing or waiting to.
    pub(crate) login_gate: Arc<limit::LoginGate>,
    /// The time zone pages show times in (`dashboard.timezone`).
    pub(crate) tz: chrono_tz::Tz,
    /// The ward view's sparklines, kept for a minute.
    pub(crate) sparklines: Arc<ward::SparkCache>,
    /// Rendered ward views, shared while nothing changes.
    pub(crate) ward_bodies: Arc<ward::BodyCache>,
    /// `/metrics` without credentials (`http.metrics_public`).
    pub(crate) metrics_public: bool,
    /// Becomes `true` when the server shuts down: live streams end so the drain can finish.
    pub(crate) closing: tokio::sync::watch::Receiver<bool>,
}

impl AppState {
    pub fn new(backend: Arc<dyn Backend>, live: broadcast::Sender<Live>, s: Settings) -> AppState {
        AppState {
            backend,
            live,
            session_ttl: s.session_ttl,
            secure_cookie: s.secure_cookie,
            logins: Default::default(),
            login_gate: Default::default(),
            tz: s.tz,
            sparklines: Default::default(),
            ward_bodies: Default::default(),
            metrics_public: s.metrics_public,
            // Never closing until `closable` hands out a sender (the server does).
            closing: tokio::sync::watch::channel(false).1,
        }
    }

    /// This state with a fresh closing signal, and its sender.
    pub(crate) fn closable(mut self) -> (AppState, tokio::sync::watch::Sender<bool>) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        self.closing = rx;
        (self, tx)
    }

    /// Runs a blocking backend call off the async workers.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Backend) -> crate::backend::Result<T> + Send + 'static,
    {
        let b = self.backend.clone();
        tokio::task::spawn_blocking(move || f(&*b))
            .await
            .map_err(|e| ApiError::Internal(format!("backend task: {e}")))?
            .map_err(ApiError::from)
    }
}

pub fn router(state: AppState) -> Router {
    let hsts = state.secure_cookie;
    let api = Router::new()
        .merge(patients::router())
        .merge(alerts::router())
        .merge(episodes::router())
        .merge(admin::api_router())
        .merge(me::router())
        .merge(manage::router())
        .merge(revoke::router())
        .merge(stream::router())
        // An unknown API route answers like the others do: JSON saying what was asked
        // (issue #21: it was a 404 with an empty body).
        .fallback(
            |method: axum::http::Method, uri: axum::extract::OriginalUri| async move {
                ApiError::NotFound(format!("route {method} {}", uri.path()))
            },
        );
    Router::new()
        .nest("/api/v1", api)
        .nest("/fhir/r4", fhir::router())
        .merge(admin::router())
        .merge(auth::router())
        .merge(pages::router())
        .merge(ward::router())
        .merge(inbox::router())
        .merge(alert_page::router())
        .merge(admin_page::router())
        .merge(burden_page::router())
        .merge(acklink::router())
        .merge(patient_page::router())
        .merge(red_alerts::router())
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::map_response(
            move |mut res: axum::response::Response| async move {
                // Reached over HTTPS (served with TLS, or behind a TLS proxy): browsers keep
                // to HTTPS for a year (RFC 6797; issue #15).
                if hsts {
                    res.headers_mut().insert(
                        header::STRICT_TRANSPORT_SECURITY,
                        HeaderValue::from_static("max-age=31536000"),
                    );
                }
                res
            },
        ))
        .with_state(state)
}

/// Health data is sensitive: no caching, no framing, no foreign scripts.
async fn security_headers(mut res: axum::response::Response) -> axum::response::Response {
    let h = res.headers_mut();
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // `same-origin`, not `no-referrer`: no address (with patient ids in it) leaks to another
    // site either way, but under `no-referrer` browsers send `Origin: null` on the dashboard's
    // own form posts (Fetch standard), and the login's CSRF check needs the real origin.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    );
    res
}

/// Serves plain HTTP until `shutdown` resolves (see [`serve::serve`] for the limits).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve::serve(listener, None, state, limits, shutdown).await
}
