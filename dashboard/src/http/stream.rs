//! `GET /api/v1/stream`: Server-Sent Events of committed readings and alert changes, so the
//! dashboard updates without a reload. A slow client that falls behind the broadcast buffer
//! gets a `resync` event and reloads its lists instead of blocking anyone.

use super::auth::Principal;
use super::AppState;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures::stream::Stream;
use std::convert::Infallible;
use tokio::sync::broadcast::error::RecvError;
use vigil_domain::views::LiveEvent;

pub fn router() -> Router<AppState> {
    Router::new().route("/stream", get(stream))
}

async fn stream(
    _who: Principal,
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.live.subscribe();
    let s = futures::stream::unfold(rx, |mut rx| async move {
        let ev = match rx.recv().await {
            Ok(ev) => {
                let name = match &ev {
                    LiveEvent::Reading { .. } => "reading",
                    LiveEvent::Alert { .. } => "alert",
                };
                Event::default()
                    .event(name)
                    .data(serde_json::to_string(&ev).unwrap_or_default())
            }
            Err(RecvError::Lagged(_)) => Event::default().event("resync").data("{}"),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(ev), rx))
    });
    Sse::new(s).keep_alive(KeepAlive::default())
}
