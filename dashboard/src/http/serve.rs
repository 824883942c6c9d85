//! Connections (issue #15, finding 5): the accept loop for HTTP and HTTPS, in one place.
//!
//! - At most [`Limits::max_connections`] at once: the loop takes a permit before it accepts,
//!   so beyond the cap clients wait in the kernel's backlog instead of costing a descriptor and
//!   a task each (mini-redis `MAX_CONNECTIONS`). The gateway sizes the cap from the process's
//!   descriptor limit, so the MQTT listener and the store keep descriptors of their own.
//! - A request's headers must arrive within [`Limits::header_timeout`], counted from when the
//!   connection starts waiting for them — so a half-sent request, and a keep-alive connection
//!   idle between requests, are closed after it (hyper's `header_read_timeout`).
//! - HTTPS handshakes are time-limited too.
//! - Each request carries its client's address ([`ClientAddr`]) for the sign-in throttle.

use super::{router, AppState};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// How the listener protects itself.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once (`http.max_connections`, capped by the descriptor budget).
    pub max_connections: usize,
    /// Longest wait for a request's headers, idle keep-alive time included
    /// (`http.header_timeout_seconds`).
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Longest a TLS handshake may take.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// The TCP peer of the request. Not `X-Forwarded-For`: behind a reverse proxy every client
/// shares the proxy's address (docs/security.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(ClientAddr(
            parts.extensions.get::<ClientAddr>().and_then(|a| a.0),
        ))
    }
}

/// Serves until `shutdown` resolves (HTTPS when `tls` is given); connections in flight finish
/// on their own.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<TlsAcceptor>,
    state: AppState,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("never closed"),
            _ = &mut shutdown => return Ok(()),
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning; the connection stays
                    // in the backlog.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return Ok(()),
        };
        let app = app.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => connection(tcp, peer, app, limits).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => connection(s, peer, app, limits).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

async fn connection<I>(io: I, peer: SocketAddr, app: axum::Router, limits: Limits)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use tower::ServiceExt as _;
    let app = app.map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ClientAddr(Some(peer.ip())));
        req
    });
    let result = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(app))
        .with_upgrades()
        .await;
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "HTTP connection ended");
    }
}
