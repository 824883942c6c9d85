//! The administration page (issue #6, admin role), server-rendered: facilities; patients,
//! devices, contacts and users with a form each to register more (the forms post to the JSON
//! API, `manage`; a new device's MQTT password is shown once, in the page, never stored); and
//! the rejected messages, per device, so support staff can fix a misconfigured hub.

use super::view::{local, render, PageUser};
use super::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use minijinja::{context, Value};
use serde::Deserialize;
use vigil_domain::display::number;
use vigil_domain::DeviceKind;

/// Rejected messages listed.
const REJECTED_SHOWN: usize = 200;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin", get(page))
}

#[derive(Deserialize, Default)]
struct AdminQuery {
    /// Rejected messages of this device only.
    device: Option<String>,
}

async fn page(
    user: PageUser,
    State(state): State<AppState>,
    Query(q): Query<AdminQuery>,
) -> Response {
    let vi = user.vi();
    let tz = state.tz;
    if !user.access.admin {
        let text = if vi {
            "Chỉ quản trị viên được mở trang này."
        } else {
            "Administrators only."
        };
        return (StatusCode::FORBIDDEN, text).into_response();
    }
    let device = q.device.clone().filter(|d| !d.is_empty());
    let dev = device.clone();
    let data = state
        .call(move |b| {
            let registry = b.registry()?;
            let rejected = b.rejected_of(dev.as_deref(), REJECTED_SHOWN)?;
            Ok((registry, rejected))
        })
        .await;
    let (registry, rejected) = match data {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let devices: Vec<Value> = registry
        .devices
        .iter()
        .map(|d| {
            context! {
                id => &d.id,
                patient_id => &d.patient_id,
                kind => vigil_domain::words::device_kind(&d.kind, vigil_domain::Lang::pick(vi)),
                enabled => d.enabled,
                online => d.online,
                last_seen => d.last_seen.map(|t| local(tz, t)),
                battery => d.battery.map(|b| number(b, vi)),
                clock_skew => d.clock_skew_at.map(|t| local(tz, t)),
            }
        })
        .collect();
    let rejected: Vec<Value> = rejected
        .iter()
        .map(|r| {
            context! {
                time => local(tz, r.received_at),
                device_id => &r.device_id,
                topic => &r.topic,
                reason => &r.reason,
                detail => &r.detail,
                excerpt => &r.payload_excerpt,
            }
        })
        .collect();
    let users: Vec<Value> = registry
        .users
        .iter()
        .map(|u| {
            context! {
                name => &u.name,
                admin => u.admin,
                facilities => u.facilities.join(", "),
                lang => &u.lang,
                created => local(tz, u.created_at),
            }
        })
        .collect();
    let kinds: Vec<Value> = DeviceKind::ALL
        .iter()
        .map(|k| context! { id => k.as_str(), name => k.label(vigil_domain::Lang::pick(vi)) })
        .collect();
    render(
        "admin.html",
        context! {
            facilities => &registry.facilities,
            patients => &registry.patients,
            devices => devices,
            contacts => &registry.contacts,
            users => users,
            rejected => rejected,
            device => device.unwrap_or_default(),
            kinds => kinds,
            ..user.layout(&state, "admin"),
        },
    )
}
