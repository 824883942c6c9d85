//! The alert burden report (issue #6), server-rendered: per rule and per patient, alerts and
//! e-mails over the last 7 or 30 days and the time to acknowledge, so noisy thresholds can be
//! tuned. The same figures as `GET /api/v1/reports/alert-burden`, scoped the same way.

use super::view::{local, render, PageUser};
use super::AppState;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use minijinja::{context, Value};
use serde::Deserialize;
use vigil_domain::display::number;
use vigil_domain::views::BurdenRow;

pub fn router() -> Router<AppState> {
    Router::new().route("/reports/alert-burden", get(page))
}

#[derive(Deserialize, Default)]
struct BurdenQuery {
    days: Option<u32>,
}

/// Seconds as people read them: `45 s`, `12 min`, `3.5 h`; `45 giây`, `12 phút`, `3,5 giờ`
/// (issue #21: "11 min" on a Vietnamese page).
fn duration(s: Option<f64>, vi: bool) -> String {
    let (sec, min, hour) = if vi {
        ("giây", "phút", "giờ")
    } else {
        ("s", "min", "h")
    };
    match s {
        None => "—".into(),
        Some(s) if s < 60.0 => format!("{} {sec}", number(s.round(), vi)),
        Some(s) if s < 3600.0 => format!("{} {min}", number((s / 60.0).round(), vi)),
        Some(s) => format!("{} {hour}", number((s / 360.0).round() / 10.0, vi)),
    }
}

fn rows(list: &[BurdenRow], vi: bool) -> Vec<Value> {
    list.iter()
        .map(|r| {
            context! {
                key => &r.key,
                name => &r.name,
                // A rule row reads by the rule's name (issue #21).
                rule => r.name.is_none().then(|| {
                    vigil_domain::words::rule_name(&r.key, vigil_domain::Lang::pick(vi))
                }),
                alerts => r.alerts,
                acknowledged => r.acknowledged,
                resolved => r.resolved,
                emails => r.emails,
                family_emails => r.family_emails,
                episodes => r.episodes,
                ack_median => duration(r.ack_median_s, vi),
                ack_p90 => duration(r.ack_p90_s, vi),
            }
        })
        .collect()
}

async fn page(
    user: PageUser,
    State(state): State<AppState>,
    Query(q): Query<BurdenQuery>,
) -> Response {
    let vi = user.vi();
    let days = if q.days == Some(30) { 30 } else { 7 };
    let scope = user.access.scope.clone();
    let report = match state.call(move |b| b.alert_burden(&scope, days)).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    render(
        "burden.html",
        context! {
            days => days,
            since => local(state.tz, report.since),
            summary => context! {
                patients => report.patients,
                episodes => report.episodes,
                family_emails => report.family_emails,
                // Two decimals: a calm ward is well under one a week.
                episodes_per_week => report.episodes_per_patient_week.map(|x| number((x * 100.0).round() / 100.0, vi)),
                family_per_week => report.family_emails_per_patient_week.map(|x| number((x * 100.0).round() / 100.0, vi)),
            },
            by_rule => rows(&report.by_rule, vi),
            by_patient => rows(&report.by_patient, vi),
            ..user.layout(&state, "burden"),
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_naturally() {
        use super::duration;
        assert_eq!(duration(None, true), "—");
        assert_eq!(duration(Some(42.4), false), "42 s");
        assert_eq!(duration(Some(720.0), false), "12 min");
        assert_eq!(duration(Some(12_600.0), true), "3,5 giờ");
        assert_eq!(duration(Some(660.0), true), "11 phút");
        assert_eq!(duration(Some(12_600.0), false), "3.5 h");
    }
}
