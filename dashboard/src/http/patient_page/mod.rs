//! The patient page (issue #6, #21), server-rendered with minijinja (HTML auto-escaped): the
//! patient's active episodes with their actions, charts per vital over 1 h, 6 h, 24 h, 7 days,
//! 30 days or an episode's window (`?from=&to=`) with the patient's alert limits as bands,
//! alert markers and values on hover (server-side SVG, `charts`), the alert history, the
//! thresholds as they apply to the patient with the form that orders a change (a reason is
//! required; `/static/patient.js` posts it to the JSON API), devices and contacts. The parts
//! marked `data-live` follow the live stream (`/static/common.js`). Vietnamese or English
//! (`?lang=`, else the account's choice), times in the display zone, decimal comma in
//! Vietnamese.

mod parts;

use super::episode_card::{episode_card, LONGEST_DAYS};
use super::view::{render, PageUser};
use super::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use minijinja::context;
use serde::Deserialize;
use vigil_domain::views::Resolution;
use vigil_domain::{Lang, Metric};

/// Active episodes shown above the charts.
const EPISODES_SHOWN: usize = 20;

/// Device events on the timeline, newest first.
const EVENTS_SHOWN: usize = 200;

pub fn router() -> Router<AppState> {
    Router::new().route("/patients/{id}", get(page))
}

#[derive(Deserialize)]
struct PageQuery {
    /// `1h`, `6h`, `24h` (default), `7d` or `30d`.
    range: Option<String>,
    /// A window of its own (RFC 3339), e.g. an episode's; without `to`, up to now (an episode
    /// still going on).
    from: Option<String>,
    to: Option<String>,
}

/// The time the charts cover and how finely.
pub(crate) struct Window {
    /// Which of the ranges, or `window` for `?from=&to=`.
    range: &'static str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    resolution: Resolution,
    bucket_ms: i64,
}

impl Window {
    fn pick(q: &PageQuery, now: DateTime<Utc>) -> Window {
        let parse = |s: &Option<String>| {
            s.as_deref()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let to = parse(&q.to).map_or(now, |t| t.min(now + Duration::minutes(5)));
        let (range, from, to) = match parse(&q.from) {
            Some(f) if f < to && to - f <= Duration::days(LONGEST_DAYS) => ("window", f, to),
            _ => {
                let (range, span) = match q.range.as_deref() {
                    Some("1h") => ("1h", Duration::hours(1)),
                    Some("6h") => ("6h", Duration::hours(6)),
                    Some("7d") => ("7d", Duration::days(7)),
                    Some("30d") => ("30d", Duration::days(30)),
                    _ => ("24h", Duration::hours(24)),
                };
                (range, now - span, now)
            }
        };
        // Minute buckets up to a day (a 15-minute deterioration is 15 points, not a sliver);
        // hours beyond.
        let (resolution, bucket_ms) = if to - from <= Duration::hours(25) {
            (Resolution::Minute, 60_000)
        } else {
            (Resolution::Hour, 3_600_000)
        };
        Window {
            range,
            from,
            to,
            resolution,
            bucket_ms,
        }
    }
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
    let lang = Lang::pick(vi);
    let tz = state.tz;
    let access = user.access.clone();
    let now = Utc::now();
    let w = Window::pick(&q, now);
    let (from, to, resolution) = (w.from, w.to, w.resolution);
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
            let episodes = b.episodes(
                &access.scope,
                crate::EpisodeFilter::Active,
                Some(&pid),
                EPISODES_SHOWN,
            )?;
            let events = b.patient_events(&pid, from, to, EVENTS_SHOWN)?;
            let mut series = Vec::new();
            for m in Metric::ALL {
                let buckets = b.reading_buckets(&pid, m, resolution, from, to, 2_000)?;
                if !buckets.is_empty() {
                    series.push((m, buckets));
                }
            }
            Ok(Some((
                page, thresholds, orders, series, summary, episodes, events,
            )))
        })
        .await;
    let (page, thresholds, orders, series, summary, episodes, events) = match data {
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
    let latest = summary
        .as_ref()
        .map(|p| p.latest.clone())
        .unwrap_or_default();
    let charts = parts::charts(&series, &thresholds, &page.alerts, &latest, &w, vi, tz);
    let news2 = summary.and_then(|p| p.news2).map(|n| {
        context! {
            score => format!("{}{}", n.total, if n.partial { "+" } else { "" }),
            risk => n.risk,
            partial => n.partial,
            missing => vigil_domain::words::news2_missing(&n.missing, lang),
        }
    });
    let episodes: Vec<minijinja::Value> = episodes
        .iter()
        .map(|e| episode_card(e, tz, vi, now))
        .collect();
    let facility = (page.patient.facility_id != vigil_domain::DEFAULT_FACILITY)
        .then_some(&page.patient.facility_id);
    render(
        "patient.html",
        context! {
            p => &page.patient,
            facility => facility,
            status => worst.map(|s| s.as_str()).unwrap_or("ok"),
            news2 => news2,
            range => w.range,
            ranges => ["1h", "6h", "24h", "7d", "30d"],
            window => (w.range == "window").then(|| format!(
                "{} – {}",
                super::view::local(tz, w.from),
                super::view::local(tz, w.to)
            )),
            episodes => episodes,
            charts => charts,
            events => parts::timeline(&events, &page.alerts, &w, vi, tz),
            alerts => parts::alerts(&page.alerts, vi, tz),
            thresholds => parts::thresholds(&thresholds, vi),
            orders => parts::orders(&orders, vi, tz),
            devices => parts::devices(&page.devices, vi, tz),
            contacts => parts::contacts(&page.contacts),
            ..user.layout(&state, "patient"),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::view::labels;
    use super::*;
    use crate::http::episode_card::episode_window;

    #[test]
    fn limits() {
        assert_eq!(parts::limit_value("< 90"), Some(90.0));
        assert_eq!(parts::limit_value("≥ 37.8"), Some(37.8));
    }

    #[test]
    fn windows() {
        let now = Utc::now();
        let q = |range: Option<&str>, from: Option<&str>, to: Option<&str>| PageQuery {
            range: range.map(str::to_string),
            from: from.map(str::to_string),
            to: to.map(str::to_string),
        };
        let w = Window::pick(&q(Some("1h"), None, None), now);
        assert_eq!(
            (w.range, w.to - w.from, w.bucket_ms),
            ("1h", Duration::hours(1), 60_000)
        );
        let w = Window::pick(&q(Some("30d"), None, None), now);
        assert_eq!((w.range, w.bucket_ms), ("30d", 3_600_000));
        let w = Window::pick(&q(Some("nonsense"), None, None), now);
        assert_eq!(w.range, "24h");
        let w = Window::pick(
            &q(
                None,
                Some("2026-12-01T01:00:00Z"),
                Some("2026-12-01T02:30:00Z"),
            ),
            now,
        );
        assert_eq!((w.range, w.to - w.from), ("window", Duration::minutes(90)));
        // Backwards or too long: the default view.
        let w = Window::pick(
            &q(
                None,
                Some("2026-12-01T02:00:00Z"),
                Some("2026-12-01T01:00:00Z"),
            ),
            now,
        );
        assert_eq!(w.range, "24h");
        let w = Window::pick(
            &q(
                None,
                Some("2026-01-01T00:00:00Z"),
                Some("2026-12-01T00:00:00Z"),
            ),
            now,
        );
        assert_eq!(w.range, "24h");
        // An episode's link round-trips into its window.
        let opened = now - Duration::hours(2);
        let link = episode_window("pat 1", opened, Some(opened + Duration::minutes(15)), now);
        assert!(link.starts_with("/patients/pat%201?from="), "{link}");
        let (from, to) = link
            .split_once("?from=")
            .unwrap()
            .1
            .split_once("&to=")
            .unwrap();
        let w = Window::pick(&q(None, Some(from), Some(to)), now);
        assert_eq!(w.range, "window");
        assert_eq!(w.to - w.from, Duration::minutes(75));
        // One going on runs up to now.
        let link = episode_window("p", opened, None, now);
        assert!(!link.contains("&to="), "{link}");
        let from = link.split_once("?from=").unwrap().1;
        let w = Window::pick(&q(None, Some(from), None), now);
        assert_eq!((w.range, w.to), ("window", now));
        assert_eq!((w.to - w.from).num_minutes(), 150);
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
                alerts => vec![context! { id => 1, severity => "red", what => "<img src=x>", time => "t", state => "open", by => None::<String> }],
                thresholds => Vec::<minijinja::Value>::new(), orders => Vec::<minijinja::Value>::new(),
                devices => vec![context! { id => "<b>dev</b>", kind => "Home hub", enabled => true, last_seen => "—", battery => "—" }],
                contacts => Vec::<minijinja::Value>::new(),
            })
            .unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<img src=x>") && !html.contains("<b>dev</b>"));
    }
}
