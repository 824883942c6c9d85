//! Connections (issue #15, finding 5; issue #16): HTTP and HTTPS through `axum-server`, which
//! runs the accept loop, the rustls handshake and a draining shutdown. What Vigil adds:
//!
//! - At most [`Limits::max_connections`] at once: the make-service is not ready until a
//!   connection slot is free, and axum-server asks it before accepting the next connection
//!   after that, so beyond the cap clients wait in the kernel's backlog (at most one accepted
//!   connection waits for a slot) instead of costing a descriptor and a task each
//!   (mini-redis `MAX_CONNECTIONS`). The gateway sizes the cap from the process's descriptor
//!   limit, so the MQTT listener and the store keep descriptors of their own.
//! - A request's headers must arrive within [`Limits::header_timeout`], counted from when the
//!   connection starts waiting for them — so a connection that sends nothing, a half-sent
//!   request and a keep-alive connection idle between requests are closed after it (hyper's
//!   `header_read_timeout`, axum-server's first-request timeout). HTTPS handshakes are
//!   time-limited too.
//! - On shutdown the listener closes, live streams end, and requests in flight get up to
//!   [`DRAIN`] to finish (the old loop dropped them).
//! - Each request carries its client's address ([`ClientAddr`]) for the sign-in throttle.

use super::{router, AppState};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Request;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use hyper_util::rt::TokioTimer;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::PollSemaphore;

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

/// Longest requests in flight may take to finish once shutdown starts.
pub const DRAIN: Duration = Duration::from_secs(10);

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

/// Serves until `shutdown` resolves (HTTPS when `tls` is given), then drains.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<RustlsConfig>,
    state: AppState,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (state, closing) = state.closable();
    let handle = axum_server::Handle::new();
    let drain = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        // Live streams never finish on their own: end them, then let requests finish.
        let _ = closing.send(true);
        drain.graceful_shutdown(Some(DRAIN));
    });
    let make = Slots {
        app: router(state),
        slots: PollSemaphore::new(Arc::new(Semaphore::new(limits.max_connections.max(1)))),
        slot: None,
    };
    let mut server = axum_server::Server::from_listener(listener)
        .handle(handle)
        .http1_only()
        .first_request_timeout(limits.header_timeout);
    server
        .http_builder()
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    match tls {
        None => server.serve(make).await,
        Some(config) => {
            let tls = RustlsAcceptor::new(config).handshake_timeout(HANDSHAKE);
            server.acceptor(tls).serve(make).await
        }
    }
}

/// Makes one service per connection, when a connection slot is free.
struct Slots {
    app: axum::Router,
    slots: PollSemaphore,
    /// The slot taken in `poll_ready` for the next connection.
    slot: Option<OwnedSemaphorePermit>,
}

impl tower::Service<SocketAddr> for Slots {
    type Response = Connection;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Connection, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.slot.is_none() {
            match self.slots.poll_acquire(cx) {
                Poll::Ready(permit) => self.slot = permit,
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, peer: SocketAddr) -> Self::Future {
        std::future::ready(Ok(Connection {
            app: self.app.clone(),
            peer: ClientAddr(Some(peer.ip())),
            _slot: Arc::new(self.slot.take()),
        }))
    }
}

/// One connection's service: the router, with the peer's address on every request. The slot
/// is freed when the connection's last clone is dropped.
#[derive(Clone)]
struct Connection {
    app: axum::Router,
    peer: ClientAddr,
    _slot: Arc<Option<OwnedSemaphorePermit>>,
}

impl<B> tower::Service<Request<B>> for Connection
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = <axum::Router as tower::Service<Request<B>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        tower::Service::<Request<B>>::poll_ready(&mut self.app, cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        req.extensions_mut().insert(self.peer);
        self.app.call(req)
    }
}
