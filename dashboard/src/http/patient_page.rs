//! The patient page (issue #6), server-rendered with minijinja (HTML auto-escaped): charts
//! per vital for 24 h / 7 days / 30 days with the patient's alert limits and alert markers
//! (server-side SVG, `charts`), the alert history, the thresholds as they apply to the patient
//! with the form that orders a change (a reason is required; `/static/patient.js` posts it to
//! the JSON API), devices and contacts. Vietnamese or English (`?lang=`, remembered in a
//! cookie, else the browser's preference), times in UTC+07:00, decimal comma in Vietnamese.

use super::charts::{self, Band};
use super::view::{local, render, PageUser};
use super::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use minijinja::context;
use serde::Deserialize;
use vigil_domain::display::number;
use vigil_domain::views::Resolution;
use vigil_domain::{Lang, Metric, Severity};

pub fn router() -> Router<AppState> {
    Router::new().route("/patients/{id}", get(page))
}

#[derive(Deserialize)]
struct PageQuery {
    range: Option<String>,
}

/// The number in a limit such as `< 90` or `≥ 37.8`.
fn limit_value(when: &str) -> Option<f64> {
    when.trim_start_matches(['<', '>', '≤', '≥', ' '])
        .parse()
        .ok()
}

fn not_found(vi: bool) -> Response {
    let text = if vi {
        "Không tìm thấy người bệnh."
    } else {
        "No such patient."
    };
    (
        StatusCode::NOT_FOUND,
        Html(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Vigil</title>\
             <link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main>\
             <p>{text}</p><p><a href=\"/\">Vigil</a></p></main></body></html>"
        )),
    )
        .into_response()
}

async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
    user: PageUser,
) -> Response {
    let vi = user.vi();
    let tz = state.tz;
    let access = user.access.clone();
    let range = match q.range.as_deref() {
        Some("7d") => "7d",
        Some("30d") => "30d",
        _ => "24h",
    };
    let (span, resolution, bucket_ms) = match range {
        "7d" => (Duration::days(7), Resolution::Hour, 3_600_000),
        "30d" => (Duration::days(30), Resolution::Hour, 3_600_000),
        _ => (Duration::hours(24), Resolution::Minute, 60_000),
    };
    let to = Utc::now();
    let from = to - span;
    let pid = id.clone();
    let data = state
        .call(move |b| {
            let Some(f) = b.patient_facility(&pid)? else {
                return Ok(None);
            };
            if !access.scope.allows(&f) {
                return Ok(None);
            }
            let Some(page) = b.patient_page(&pid, 50)? else {
                return Ok(None);
            };
            let (thresholds, orders) = b.thresholds(&pid)?;
            let summary = b.patient_summary(&pid)?;
            let mut series = Vec::new();
            for m in Metric::ALL {
                let buckets = b.reading_buckets(&pid, m, resolution, from, to, 2_000)?;
                if !buckets.is_empty() {
                    series.push((m, buckets));
                }
            }
            Ok(Some((page, thresholds, orders, series, summary)))
        })
        .await;
    let (page, thresholds, orders, series, summary) = match data {
        Ok(Some(d)) => d,
        Ok(None) => return not_found(vi),
        Err(e) => return e.into_response(),
    };
    let worst = page
        .alerts
        .iter()
        .filter(|a| a.state != vigil_domain::AlertState::Resolved)
        .map(|a| a.severity)
        .min_by_key(|s| s.rank());
    let charts: Vec<minijinja::Value> = series
        .iter()
        .map(|(m, buckets)| {
            let bands: Vec<Band> = thresholds
                .iter()
                .filter(|t| t.enabled && t.metric == m.as_str())
                .filter_map(|t| {
                    Some(Band {
                        value: limit_value(&t.when)?,
                        severity: t.severity,
                        label: t.when.clone(),
                    })
                })
                .collect();
            let markers: Vec<(DateTime<Utc>, Severity)> = page
                .alerts
                .iter()
                .filter(|a| a.metric.as_deref() == Some(m.as_str()))
                .map(|a| (a.opened_at, a.severity))
                .collect();
            let title = m.label(Lang::pick(vi));
            let latest = buckets
                .last()
                .map(|b| format!("{} {}", number(b.avg, vi), m.screen_unit(Lang::pick(vi))));
            let svg = charts::svg(
                title,
                m.screen_unit(Lang::pick(vi)),
                buckets,
                bucket_ms,
                from,
                to,
                &bands,
                &markers,
                vi,
                tz,
            );
            context! {
                metric => m.as_str(),
                title => title,
                latest => latest,
                svg => minijinja::Value::from_safe_string(svg),
            }
        })
        .collect();
    let alerts: Vec<minijinja::Value> = page
        .alerts
        .iter()
        .map(|a| {
            context! {
                id => a.id,
                severity => a.severity.as_str(),
                message => &a.message,
                time => local(tz, a.opened_at),
                state => a.state.as_str(),
                by => &a.acknowledged_by,
            }
        })
        .collect();
    let orders: Vec<minijinja::Value> = orders
        .iter()
        .rev()
        .map(|o| {
            let what = match (o.enabled, o.threshold) {
                (false, _) => if vi { "tắt" } else { "off" }.to_string(),
                (true, Some(v)) => number(v, vi),
                (true, None) => if vi { "mặc định" } else { "default" }.to_string(),
            };
            context! {
                at => local(tz, o.ordered_at),
                rule => &o.rule,
                what => what,
                by => &o.ordered_by,
                reason => &o.reason,
            }
        })
        .collect();
    let devices: Vec<minijinja::Value> = page
        .devices
        .iter()
        .map(|d| {
            context! {
                id => &d.id,
                kind => &d.kind,
                enabled => d.enabled,
                last_seen => d.last_seen.map(|t| local(tz, t)).unwrap_or_else(|| "—".into()),
                online => d.online,
                battery => d.battery.map(|b| format!("{} %", number(b, vi))).unwrap_or_else(|| "—".into()),
            }
        })
        .collect();
    let contacts: Vec<minijinja::Value> = page
        .contacts
        .iter()
        .map(|c| {
            context! {
                name => &c.name,
                role => c.role.as_str(),
                tier => c.tier.as_str(),
                email => &c.email,
                lang => c.lang.as_str(),
            }
        })
        .collect();
    let news2 = summary.and_then(|p| p.news2).map(|n| {
        context! {
            score => format!("{}{}", n.total, if n.partial { "+" } else { "" }),
            risk => n.risk,
            partial => n.partial,
            missing => n.missing.join(", "),
        }
    });
    render(
        "patient.html",
        context! {
            p => &page.patient,
            status => worst.map(|s| s.as_str()).unwrap_or("ok"),
            news2 => news2,
            range => range,
            ranges => ["24h", "7d", "30d"],
            charts => charts,
            alerts => alerts,
            thresholds => &thresholds,
            orders => orders,
            devices => devices,
            contacts => contacts,
            ..user.layout(&state, "patient"),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::view::labels;
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(limit_value("< 90"), Some(90.0));
        assert_eq!(limit_value("≥ 37.8"), Some(37.8));
    }

    #[test]
    fn the_template_escapes_what_devices_and_people_typed() {
        let html = super::super::view::env()
            .get_template("patient.html")
            .unwrap()
            .render(context! {
                lang => "en", other_lang => "vi", t => labels(false), user => "<u>x</u>",
                p => context! { id => "p1", name => "<script>alert(1)</script>", facility_id => "f" },
                status => "ok", range => "24h", ranges => ["24h"],
                charts => Vec::<minijinja::Value>::new(),
                alerts => vec![context! { id => 1, severity => "red", message => "<img src=x>", time => "t", state => "open", by => None::<String> }],
                thresholds => Vec::<minijinja::Value>::new(), orders => Vec::<minijinja::Value>::new(),
                devices => vec![context! { id => "<b>dev</b>", kind => "hub", enabled => true, last_seen => "—", battery => "—" }],
                contacts => Vec::<minijinja::Value>::new(),
            })
            .unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<img src=x>") && !html.contains("<b>dev</b>"));
    }
}
