//! `GET /api/v1/stream`: Server-Sent Events of committed readings and alert changes, so the
//! dashboard updates without a reload. A slow client that falls behind the broadcast buffer
//! gets a `resync` event and reloads its lists instead of blocking anyone. A caller limited to
//! some facilities (issue #6) gets only their patients' events: each patient's facility is
//! looked up once per connection.

use super::auth::Principal;
use super::AppState;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures::stream::Stream;
use std::collections::HashMap;
use std::convert::Infallible;
use tokio::sync::broadcast::{self, error::RecvError};
use vigil_domain::views::{Live, LiveEvent};
use vigil_domain::Scope;

pub fn router() -> Router<AppState> {
    Router::new().route("/stream", get(stream))
}

struct Follow {
    rx: broadcast::Receiver<Live>,
    scope: Scope,
    /// Patient id → whether the caller may see them.
    allowed: HashMap<String, bool>,
    state: AppState,
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
    };
    let s = futures::stream::unfold(follow, |mut f| async move {
        let ev = loop {
            match f.rx.recv().await {
                Ok(msg) => {
                    if !f.may_see(&msg.event).await {
                        continue;
                    }
                    let name = match &msg.event {
                        LiveEvent::Reading { .. } => "reading",
                        LiveEvent::Alert { .. } => "alert",
                    };
                    // Serialized once by the sender, for every client.
                    break Event::default().event(name).data(msg.json.as_str());
                }
                Err(RecvError::Lagged(_)) => break Event::default().event("resync").data("{}"),
                Err(RecvError::Closed) => return None,
            }
        };
        Some((Ok(ev), f))
    });
    Sse::new(s).keep_alive(KeepAlive::default())
}
