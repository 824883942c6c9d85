//! `GET /red-alerts`: the open red alerts of the caller's patients as the page banner shows
//! them (issue #21: "an unseen red alert stays visible until a person acknowledges or
//! dismisses it on that screen"), server-rendered in the page's language like every other
//! fragment. `/static/common.js` fetches it on every page when the live stream reports an
//! alert, hides the ones dismissed on that screen, counts the rest in the tab title, turns the
//! favicon red and sounds the tone. An alert leaves the banner when anyone acknowledges it.

use super::alert_text::describe;
use super::view::{ago, render, PageUser};
use super::{ApiError, AppState};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use minijinja::context;
use vigil_domain::views::AlertFilter;
use vigil_domain::{Alert, AlertState, Severity};

/// At most this many in the banner; the inbox has them all.
const SHOWN: usize = 20;

pub fn router() -> Router<AppState> {
    Router::new().route("/red-alerts", get(fragment))
}

async fn fragment(user: Result<PageUser, Response>, State(state): State<AppState>) -> Response {
    // Without a session: 401 for the script (it then goes to the login page), not a redirect.
    let Ok(user) = user else {
        return ApiError::Unauthorized.into_response();
    };
    let scope = user.access.scope.clone();
    let filter = AlertFilter {
        state: Some(AlertState::Open),
        severity: Some(Severity::Red),
        ..AlertFilter::default()
    };
    let alerts = match state.call(move |b| b.alerts(&scope, &filter, SHOWN)).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let vi = user.vi();
    let now = Utc::now();
    // One line per patient (a deterioration raises several red signs at once), most urgent
    // patient first; "Seen" dismisses that patient's alerts shown, a new one brings it back.
    let mut groups: Vec<(&str, &str, Vec<&Alert>)> = Vec::new();
    for a in &alerts {
        match groups.iter_mut().find(|g| g.0 == a.patient_id) {
            Some(g) => g.2.push(a),
            None => groups.push((&a.patient_id, &a.patient_name, vec![a])),
        }
    }
    let groups: Vec<minijinja::Value> = groups
        .iter()
        .map(|(id, name, list)| {
            context! {
                patient_id => id,
                patient_name => name,
                ids => list.iter().map(|a| a.id.to_string()).collect::<Vec<_>>().join(" "),
                first => list[0].id,
                alerts => list.iter().map(|a| context! {
                    what => describe(a, vi),
                    age => ago(now, a.opened_at, vi),
                }).collect::<Vec<_>>(),
            }
        })
        .collect();
    render(
        "red_alerts.html",
        context! { groups => groups, t => super::view::labels(vi) },
    )
}
