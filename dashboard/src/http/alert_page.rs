//! One alert for review (issue #6, #21): what raised it, a chart of its vital around it (the
//! breaching side of its limit shaded, a marker where it opened — the 200 breaching readings
//! were a list one per line), its audit trail (every action, who, when, the note), the readings
//! that breached its rule (folded away) and the e-mails it caused. Another facility's alert is
//! as unknown as a missing one (404). Its audit follows the live stream.

use super::charts::{self, Band};
use super::episode_card::episode_window;
use super::view::{local, render, PageUser};
use super::ward::alert_row;
use super::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use minijinja::{context, Value};
use vigil_domain::views::Resolution;
use vigil_domain::{Alert, Lang, Metric};

/// What the system wrote in the audit trail, in the page's language (issue #21: the stored
/// notes are English and technical: "respiratory_rate 25 /min ≥ 25", "cleared: …"). People's
/// notes are shown as they wrote them.
fn system_note(
    a: &Alert,
    action: &str,
    actor: &str,
    note: Option<&str>,
    vi: bool,
) -> Option<String> {
    if actor != "system" {
        // A family member's link speaks both languages ("I'm handling it / Tôi đang xử lý",
        // vigil-notify): the page's half.
        if let Some((en, vi_half)) = note
            .filter(|_| actor.ends_with("(family, e-mail link)"))
            .and_then(|n| n.split_once(" / "))
        {
            return Some(if vi { vi_half } else { en }.to_string());
        }
        return note.map(str::to_string);
    }
    let said = match action {
        // The breach that opened or escalated it: the alert's own words.
        "open" | "escalate" => return Some(super::alert_text::describe(a, vi)),
        "resolve" if note.is_some_and(|n| n.starts_with("cleared")) => {
            if vi {
                "Tự đóng: chỉ số đã trở lại trong ngưỡng"
            } else {
                "Closed by itself: back within the limit"
            }
        }
        "reopen" => {
            if vi {
                "Mở lại: bất thường trở lại ngay sau khi đã xử lý"
            } else {
                "Reopened: abnormal again soon after it was resolved"
            }
        }
        _ => return note.map(str::to_string),
    };
    Some(said.to_string())
}

pub fn router() -> Router<AppState> {
    Router::new().route("/alerts/{id}", get(detail))
}

/// The chart's window: an hour before the alert opened to half an hour after it was resolved
/// (now while it is active), at most 7 days; minute averages up to a day, hourly beyond.
fn window(a: &Alert, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>, Resolution, i64) {
    let to = a
        .resolved_at
        .map(|r| r + Duration::minutes(30))
        .unwrap_or(now)
        .min(now);
    let from = (a.opened_at - Duration::hours(1)).max(to - Duration::days(7));
    if to - from <= Duration::hours(25) {
        (from, to, Resolution::Minute, 60_000)
    } else {
        (from, to, Resolution::Hour, 3_600_000)
    }
}

/// One alert for review: what raised it, its audit trail (every action, who, when, the note),
/// the readings that breached its rule and the e-mails it caused. Another facility's alert is
/// as unknown as a missing one (404).
async fn detail(
    user: PageUser,
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<i64>,
) -> Response {
    let vi = user.vi();
    let tz = state.tz;
    let scope = user.access.scope.clone();
    let now = Utc::now();
    let data = state
        .call(move |b| {
            let Some(d) = (match b.alert_facility(id)? {
                Some(f) if scope.allows(&f) => b.alert_detail(id, 200)?,
                _ => None,
            }) else {
                return Ok(None);
            };
            // Its vital around it, when it is about one.
            let metric = d
                .alert
                .metric
                .as_deref()
                .and_then(|m| m.parse::<Metric>().ok());
            let buckets = match metric {
                Some(m) => {
                    let (from, to, res, _) = window(&d.alert, now);
                    b.reading_buckets(&d.alert.patient_id, m, res, from, to, 2_000)?
                }
                None => Vec::new(),
            };
            Ok(Some((d, metric, buckets)))
        })
        .await;
    let (d, metric, buckets) = match data {
        Ok(Some(d)) => d,
        Ok(None) => {
            let text = if vi {
                "Không tìm thấy cảnh báo."
            } else {
                "No such alert."
            };
            return (axum::http::StatusCode::NOT_FOUND, text).into_response();
        }
        Err(e) => return e.into_response(),
    };
    let audit: Vec<Value> = d
        .audit
        .iter()
        .map(|a| {
            context! {
                at => local(tz, a.at),
                actor => super::view::actor(&a.actor, vi),
                system => a.actor == "system",
                action => &a.action,
                note => system_note(&d.alert, &a.action, &a.actor, a.note.as_deref(), vi),
            }
        })
        .collect();
    let lang = Lang::pick(vi);
    let readings: Vec<Value> = d
        .readings
        .iter()
        .map(|r| {
            let m = r.metric.parse::<Metric>().ok();
            context! {
                at => local(tz, r.ts),
                metric => m.map_or(r.metric.as_str(), |m| m.label(lang)),
                value => m.map_or_else(
                    || format!("{} {}", vigil_domain::display::number(r.value, vi), r.unit),
                    |m| m.screen_value(r.value, lang),
                ),
                device => &r.device_id,
            }
        })
        .collect();
    let chart = metric.filter(|_| !buckets.is_empty()).map(|m| {
        let (from, to, _, bucket_ms) = window(&d.alert, now);
        let bands: Vec<Band> = d
            .alert
            .limit
            .as_deref()
            .and_then(|l| {
                Some(Band {
                    value: l.trim_start_matches(['<', '>', '≤', '≥', ' ']).parse().ok()?,
                    severity: d.alert.severity,
                    below: l.starts_with(['<', '≤']),
                    label: vigil_domain::display::decimal(l.to_string(), vi),
                })
            })
            .into_iter()
            .collect();
        let svg = charts::svg(
            &charts::Series {
                title: m.label(lang),
                unit: m.screen_unit(lang),
                metric: m,
                buckets: &buckets,
                bucket_ms,
            },
            from,
            to,
            &bands,
            &[(d.alert.opened_at, d.alert.severity)],
            vi,
            tz,
        );
        context! {
            title => m.label(lang),
            svg => Value::from_safe_string(svg),
            link => episode_window(&d.alert.patient_id, d.alert.opened_at, d.alert.resolved_at, now),
        }
    });
    let emails: Vec<Value> = d
        .emails
        .iter()
        .map(|e| {
            context! {
                to => &e.to_name,
                stage => e.stage,
                queued => local(tz, e.created_at),
                sent => e.sent_at.map(|t| local(tz, t)),
                failed => e.failed_at.map(|t| local(tz, t)),
                attempts => e.attempts,
                error => &e.last_error,
            }
        })
        .collect();
    render(
        "alert.html",
        context! {
            a => alert_row(&d.alert, tz, vi),
            alerts => vec![alert_row(&d.alert, tz, vi)],
            audit => audit,
            readings => readings,
            chart => chart,
            emails => emails,
            ..user.layout(&state, "inbox"),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_trail_reads_in_the_page_language() {
        let a: Alert = serde_json::from_value(serde_json::json!({
            "id": 1, "patient_id": "p", "patient_name": "P", "rule": "respiratory_rate_high",
            "severity": "red", "state": "open", "opened_at": Utc::now().to_rfc3339(),
            "value": 25.0, "metric": "respiratory_rate", "unit": "/min", "limit": "≥ 25",
            "message": "respiratory_rate 25 /min ≥ 25",
            "acknowledged_at": null, "acknowledged_by": null, "note": null, "resolved_at": null,
            "assigned_to": null
        }))
        .unwrap();
        let note = |action: &str, actor: &str, note: Option<&str>, vi: bool| {
            system_note(&a, action, actor, note, vi)
        };
        assert_eq!(
            note("open", "system", Some(&a.message), true).as_deref(),
            Some("Nhịp thở: 25 lần/phút (ngưỡng ≥ 25)")
        );
        assert!(note("resolve", "system", Some("cleared: back"), true)
            .is_some_and(|n| n.starts_with("Tự đóng")));
        let link = "Lan (family, e-mail link)";
        let said = Some("I'm handling it / Tôi đang xử lý");
        assert_eq!(
            note("family_response", link, said, true).as_deref(),
            Some("Tôi đang xử lý")
        );
        assert_eq!(
            note("family_response", link, said, false).as_deref(),
            Some("I'm handling it")
        );
        // People's notes as they wrote them.
        assert_eq!(
            note("resolve", "bs.lan", Some("Gọi 115 / đã nhập viện"), true).as_deref(),
            Some("Gọi 115 / đã nhập viện")
        );
    }

    #[test]
    fn the_chart_covers_the_alert_with_an_hour_before() {
        let now = Utc::now();
        let mut a: Alert = serde_json::from_value(serde_json::json!({
            "id": 1, "patient_id": "p", "patient_name": "P", "rule": "spo2_low",
            "severity": "red", "state": "open", "opened_at": (now - Duration::minutes(20)).to_rfc3339(),
            "value": 85.0, "metric": "spo2", "unit": "%", "message": "m",
            "acknowledged_at": null, "acknowledged_by": null, "note": null, "resolved_at": null,
            "assigned_to": null
        }))
        .unwrap();
        let (from, to, res, ms) = window(&a, now);
        assert_eq!(
            (to, (to - from).num_minutes(), res, ms),
            (now, 80, Resolution::Minute, 60_000)
        );
        // Resolved long ago and open for days: at most a week, hourly.
        a.opened_at = now - Duration::days(20);
        a.resolved_at = Some(now - Duration::days(10));
        let (from, to, res, _) = window(&a, now);
        assert_eq!(to, now - Duration::days(10) + Duration::minutes(30));
        assert_eq!((to - from, res), (Duration::days(7), Resolution::Hour));
    }
}
