//! The alert inbox (issue #6), server-rendered: open and acknowledged alerts, most urgent and
//! newest first, each with acknowledge / assign to me / resolve and a note (the actions go to
//! the JSON API and are audited there); and the history, filtered by state, severity, patient,
//! rule and the days they opened (in the dashboard's time zone). What is active shows as one
//! card per patient episode (issue #17); the history, and any filter by rule or day, as rows.

use super::alerts::ListQuery;
use super::view::{render, PageUser};
use super::ward::alert_row;
use super::AppState;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use minijinja::{context, Value};
use serde::Deserialize;

/// Most alerts on one page; narrow the filters for older ones.
const LIMIT: usize = 500;

pub fn router() -> Router<AppState> {
    Router::new().route("/alerts", get(page))
}

#[derive(Deserialize, Default)]
struct InboxQuery {
    /// `active` (default), `open`, `acknowledged`, `resolved` or `any`.
    state: Option<String>,
    severity: Option<String>,
    patient_id: Option<String>,
    rule: Option<String>,
    /// `YYYY-MM-DD`: opened on or after that day (local).
    from: Option<String>,
    /// `YYYY-MM-DD`: opened on or before that day (local).
    to: Option<String>,
}

/// The start of a local day, in UTC.
fn day_start(tz: chrono_tz::Tz, day: &str) -> Option<DateTime<Utc>> {
    let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    tz.from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

async fn page(
    user: PageUser,
    State(state): State<AppState>,
    Query(q): Query<InboxQuery>,
) -> Response {
    let vi = user.vi();
    let tz = state.tz;
    let st = q.state.clone().unwrap_or_else(|| "active".into());
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let mut error = None;
    let since = nonempty(&q.from).and_then(|d| {
        let t = day_start(tz, &d);
        if t.is_none() {
            error = Some(format!("{d}: YYYY-MM-DD"));
        }
        t
    });
    let until = nonempty(&q.to).and_then(|d| {
        let t = day_start(tz, &d).map(|t| t + chrono::Duration::days(1));
        if t.is_none() {
            error = Some(format!("{d}: YYYY-MM-DD"));
        }
        t
    });
    let list = ListQuery {
        state: Some(if st == "any" {
            String::new()
        } else {
            st.clone()
        }),
        severity: nonempty(&q.severity),
        patient_id: nonempty(&q.patient_id),
        rule: nonempty(&q.rule),
        since: since.map(|t| t.to_rfc3339()),
        until: until.map(|t| t.to_rfc3339()),
    };
    let filter = match list.filter() {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let scope = user.access.scope.clone();
    // Active alerts are read as episodes: one card per patient's deterioration (issue #17).
    let cards = st == "active" && filter.rule.is_none() && since.is_none() && until.is_none();
    let data = state
        .call(move |b| {
            // Names for the patient filter only: no readings needed (sorted by name).
            let patients = b.patient_list(&scope)?;
            let mut alerts = b.alerts(&scope, &filter, LIMIT)?;
            let mut episodes = Vec::new();
            if cards {
                episodes = b.episodes(
                    &scope,
                    crate::EpisodeFilter::Active,
                    filter.patient_id.as_deref(),
                    LIMIT,
                )?;
                episodes.retain(|e| filter.severity.is_none_or(|s| e.severity == s));
                alerts.retain(|a| a.episode_id.is_none());
            }
            Ok((patients, alerts, episodes))
        })
        .await;
    let (patients, alerts, episodes) = match data {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let patients: Vec<Value> = patients
        .iter()
        .map(|p| context! { id => &p.id, name => &p.name })
        .collect();
    let alerts: Vec<Value> = alerts.iter().map(|a| alert_row(a, tz, vi)).collect();
    let now = Utc::now();
    let episodes: Vec<Value> = episodes
        .iter()
        .map(|e| super::episode_card::episode_card(e, tz, vi, now))
        .collect();
    render(
        "inbox.html",
        context! {
            f => context! {
                state => st,
                severity => q.severity.unwrap_or_default(),
                patient_id => q.patient_id.unwrap_or_default(),
                rule => q.rule.unwrap_or_default(),
                from => q.from.unwrap_or_default(),
                to => q.to.unwrap_or_default(),
            },
            patients => patients,
            // Rules by name for the rule filter; a site's own rule can still be typed by id.
            rules => vigil_domain::words::named_rules(vigil_domain::Lang::pick(vi))
                .into_iter()
                .map(|(id, name)| context! { id => id, name => name })
                .collect::<Vec<_>>(),
            alerts => alerts,
            episodes => episodes,
            limit => LIMIT,
            error => error,
            ..user.layout(&state, "inbox"),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_start_at_local_midnight() {
        let t = day_start(chrono_tz::Asia::Ho_Chi_Minh, "2026-11-28").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-27T17:00:00+00:00");
        assert!(day_start(chrono_tz::Asia::Ho_Chi_Minh, "28/11/2026").is_none());
    }
}
