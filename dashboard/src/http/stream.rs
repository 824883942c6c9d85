//! `GET /api/v1/stream`: Server-Sent Events of committed readings and alert changes, so the
//! dashboard updates without a reload. A slow client that falls behind the broadcast buffer
//! gets a `resync` event and reloads its lists instead of blocking anyone. Readings are
//! coalesced per client (the latest per patient and metric, at most every 250 ms); alerts go at
//! once. A caller limited to
//! some facilities (issue #6) gets only their patients' events: each patient's facility is
//! looked up once per connection.

use super::auth::{Credential, Principal};
use super::AppState;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures::stream::Stream;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};
use vigil_domain::views::{Live, LiveEvent};
use vigil_domain::Scope;

pub fn router() -> Router<AppState> {
    Router::new().route("/stream", get(stream))
}

/// Reading events are coalesced per client: the latest reading of each (patient, metric) goes
/// out at most this often. A dashboard shows latest values; sending every reading to every
/// client cost half of the ingest rate at 10 000 readings/s with 100 clients
/// (docs/benchmarks.md). Alert events are never held back.
const READING_EVERY: Duration = Duration::from_millis(250);

/// How often a stream asks whether its credentials still hold: a revoked token, a disabled
/// user or a sign-out ends it within this (issue #15, finding 9).
const RECHECK_EVERY: Duration = Duration::from_secs(2);

struct Follow {
    rx: broadcast::Receiver<Live>,
    scope: Scope,
    /// Patient id → whether the caller may see them.
    allowed: HashMap<String, bool>,
    state: AppState,
    /// Latest reading per (patient, metric) not yet sent, in arrival order.
    held: HashMap<(String, String), Live>,
    order: VecDeque<(String, String)>,
    /// Events ready to go out.
    ready: VecDeque<Event>,
    next_flush: tokio::time::Instant,
    credential: Credential,
    next_check: tokio::time::Instant,
    closing: tokio::sync::watch::Receiver<bool>,
}

/// Resolves `Ok` once the server is shutting down.
async fn closed(
    closing: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), tokio::sync::watch::error::RecvError> {
    closing.wait_for(|c| *c).await.map(|_| ())
}

fn event(msg: &Live) -> Event {
    let name = match &msg.event {
        LiveEvent::Reading { .. } => "reading",
        LiveEvent::Alert { .. } => "alert",
    };
    // Serialized once by the sender, for every client.
    Event::default().event(name).data(msg.json.as_str())
}

impl Follow {
    async fn may_see(&mut self, ev: &LiveEvent) -> bool {
        if self.scope == Scope::All {
            return true;
        }
        let pid = match ev {
            LiveEvent::Reading { patient_id, .. } => patient_id,
            LiveEvent::Alert { alert } => &alert.patient_id,
        };
        if let Some(ok) = self.allowed.get(pid) {
            return *ok;
        }
        let p = pid.clone();
        let facility = self
            .state
            .call(move |b| b.patient_facility(&p))
            .await
            .ok()
            .flatten();
        let ok = facility.is_some_and(|f| self.scope.allows(&f));
        self.allowed.insert(pid.clone(), ok);
        ok
    }

    fn flush(&mut self) {
        while let Some(k) = self.order.pop_front() {
            if let Some(msg) = self.held.remove(&k) {
                self.ready.push_back(event(&msg));
            }
        }
        self.next_flush = tokio::time::Instant::now() + READING_EVERY;
    }

    /// The next event for this client; `None` when the broadcast closed.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(e);
            }
            let wait = !self.held.is_empty();
            let msg = tokio::select! {
                r = self.rx.recv() => r,
                // Err (no sender: a server that never closes) disables this branch.
                Ok(()) = closed(&mut self.closing) => {
                    // Shutting down: end the stream so the server can drain (serve.rs).
                    return None;
                }
                _ = tokio::time::sleep_until(self.next_flush), if wait => {
                    self.flush();
                    continue;
                }
                _ = tokio::time::sleep_until(self.next_check) => {
                    if !self.credential.still_valid(&self.state).await {
                        tracing::info!("live stream ended: credentials revoked or expired");
                        return None;
                    }
                    self.next_check = tokio::time::Instant::now() + RECHECK_EVERY;
                    continue;
                }
            };
            match msg {
                Ok(msg) => {
                    if !self.may_see(&msg.event).await {
                        continue;
                    }
                    match &msg.event {
                        LiveEvent::Reading {
                            patient_id, metric, ..
                        } => {
                            let key = (patient_id.clone(), metric.clone());
                            if self.held.insert(key.clone(), msg.clone()).is_none() {
                                self.order.push_back(key);
                            }
                            if tokio::time::Instant::now() >= self.next_flush {
                                self.flush();
                            }
                        }
                        LiveEvent::Alert { .. } => return Some(event(&msg)),
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    return Some(Event::default().event("resync").data("{}"))
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

async fn stream(
    who: Principal,
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let follow = Follow {
        rx: state.live.subscribe(),
        scope: who.scope,
        allowed: HashMap::new(),
        state: state.clone(),
        held: HashMap::new(),
        order: VecDeque::new(),
        ready: VecDeque::new(),
        next_flush: tokio::time::Instant::now(),
        credential: who.credential,
        next_check: tokio::time::Instant::now() + RECHECK_EVERY,
        closing: state.closing.clone(),
    };
    let s = futures::stream::unfold(follow, |mut f| async move {
        let ev = f.next().await?;
        Some((Ok(ev), f))
    });
    Sse::new(s).keep_alive(KeepAlive::default())
}
