//! The patient page (issue #6), server-rendered with minijinja (HTML auto-escaped): charts
//! per vital for 24 h / 7 days / 30 days with the patient's alert limits and alert markers
//! (server-side SVG, `charts`), the alert history, the thresholds as they apply to the patient
//! with the form that orders a change (a reason is required; `/static/patient.js` posts it to
//! the JSON API), devices and contacts. Vietnamese or English (`?lang=`, remembered in a
//! cookie, else the browser's preference), times in UTC+07:00, decimal comma in Vietnamese.

use super::auth::{cookie, SESSION_COOKIE};
use super::charts::{self, Band};
use super::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use minijinja::{context, Environment};
use serde::Deserialize;
use std::sync::OnceLock;
use vigil_domain::display::{self, number};
use vigil_domain::views::Resolution;
use vigil_domain::{Metric, Severity};

pub const LANG_COOKIE: &str = "vigil_lang";
const PATIENT_JS: &str = include_str!("../../assets/patient.js");

pub fn router() -> Router<AppState> {
    Router::new().route("/patients/{id}", get(page)).route(
        "/static/patient.js",
        get(|| async {
            (
                [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                PATIENT_JS,
            )
        }),
    )
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut e = Environment::new();
        // `.html` templates escape every value unless marked safe (design invariant 7).
        e.add_template("patient.html", include_str!("../../templates/patient.html"))
            .expect("the template parses");
        e
    })
}

/// Page labels in Vietnamese (clinical reference §8) and English.
fn labels(vi: bool) -> std::collections::BTreeMap<&'static str, &'static str> {
    let pairs: &[(&str, &str, &str)] = &[
        ("other", "English", "Tiếng Việt"),
        ("facility", "Cơ sở", "Facility"),
        ("status", "Tình trạng", "Status"),
        ("red", "Khẩn cấp", "Red"),
        ("amber", "Cảnh báo", "Amber"),
        ("yellow", "Lưu ý", "Yellow"),
        ("ok", "Ổn định", "Stable"),
        ("range_24h", "24 giờ", "24 h"),
        ("range_7d", "7 ngày", "7 days"),
        ("range_30d", "30 ngày", "30 days"),
        ("charts", "Chỉ số sinh tồn", "Vital signs"),
        ("latest", "mới nhất", "latest"),
        (
            "no_readings",
            "Chưa có số đo trong khoảng này.",
            "No readings in this period.",
        ),
        ("alerts", "Cảnh báo", "Alerts"),
        ("no_alerts", "Chưa có cảnh báo.", "No alerts."),
        ("severity", "Mức", "Severity"),
        ("what", "Nội dung", "What"),
        ("time", "Thời điểm", "Time"),
        ("state", "Trạng thái", "State"),
        ("open", "Mới", "Open"),
        ("acknowledged", "Đã tiếp nhận", "Acknowledged"),
        ("resolved", "Đã xử lý", "Resolved"),
        ("thresholds", "Ngưỡng cảnh báo", "Alert thresholds"),
        ("rule", "Quy tắc", "Rule"),
        ("limit", "Ngưỡng cho người bệnh", "This patient's limit"),
        ("rule_file", "Mặc định", "Default"),
        ("disabled", "tắt", "off"),
        (
            "change_threshold",
            "Đổi ngưỡng (y lệnh)",
            "Change a threshold (clinical order)",
        ),
        ("new_value", "Ngưỡng mới", "New value"),
        (
            "disable",
            "Tắt quy tắc này cho người bệnh",
            "Turn this rule off for the patient",
        ),
        ("reason", "Lý do", "Reason"),
        ("order", "Lưu y lệnh", "Save the order"),
        ("orders", "Các y lệnh", "Orders"),
        ("devices", "Thiết bị", "Devices"),
        ("device", "Thiết bị", "Device"),
        ("kind", "Loại", "Kind"),
        ("last_seen", "Lần cuối", "Last seen"),
        ("battery", "Pin", "Battery"),
        ("contacts", "Người liên hệ", "Contacts"),
        ("name", "Tên", "Name"),
        ("role", "Vai trò", "Role"),
        ("email", "Thư điện tử", "E-mail"),
        ("language", "Ngôn ngữ", "Language"),
        ("family", "Gia đình", "Family"),
        ("clinician", "Nhân viên y tế", "Clinician"),
        ("primary", "báo ngay", "told at once"),
        (
            "secondary",
            "báo khi chưa ai nhận",
            "told if nobody responds",
        ),
        (
            "tz_note",
            "Giờ hiển thị theo múi giờ Việt Nam (UTC+07:00).",
            "Times are shown in Vietnam time (UTC+07:00).",
        ),
    ];
    pairs
        .iter()
        .map(|(k, v, e)| (*k, if vi { *v } else { *e }))
        .collect()
}

#[derive(Deserialize)]
struct PageQuery {
    range: Option<String>,
    lang: Option<String>,
}

/// The page's language: `?lang=`, else the cookie, else the browser's first choice.
fn language(q: Option<&str>, headers: &HeaderMap) -> &'static str {
    let pick = |s: &str| if s.starts_with("en") { "en" } else { "vi" };
    if let Some(l) = q {
        return pick(l);
    }
    if let Some(l) = cookie(headers, LANG_COOKIE) {
        return pick(&l);
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| pick(v.trim()))
        .unwrap_or("vi")
}

fn local(t: DateTime<Utc>) -> String {
    display::local_time(t).format("%H:%M %d/%m/%Y").to_string()
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
    headers: HeaderMap,
) -> Response {
    let lang = language(q.lang.as_deref(), &headers);
    let vi = lang == "vi";
    let Some(token) = cookie(&headers, SESSION_COOKIE) else {
        return Redirect::to("/login").into_response();
    };
    let access = match state.call(move |b| b.session_access(&token)).await {
        Ok(Some(a)) => a,
        Ok(None) => return Redirect::to("/login").into_response(),
        Err(e) => return e.into_response(),
    };
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
            let mut series = Vec::new();
            for m in Metric::ALL {
                let buckets = b.reading_buckets(&pid, m, resolution, from, to, 2_000)?;
                if !buckets.is_empty() {
                    series.push((m, buckets));
                }
            }
            Ok(Some((page, thresholds, orders, series)))
        })
        .await;
    let (page, thresholds, orders, series) = match data {
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
            let title = if vi { m.label_vi() } else { m.label_en() };
            let latest = buckets
                .last()
                .map(|b| format!("{} {}", number(b.avg, vi), m.display_unit()));
            let svg = charts::svg(
                title,
                m.display_unit(),
                buckets,
                bucket_ms,
                from,
                to,
                &bands,
                &markers,
                vi,
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
                time => local(a.opened_at),
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
                at => local(o.ordered_at),
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
                last_seen => d.last_seen.map(local).unwrap_or_else(|| "—".into()),
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
    let html = env().get_template("patient.html").and_then(|t| {
        t.render(context! {
            lang => lang,
            other_lang => if vi { "en" } else { "vi" },
            t => labels(vi),
            p => &page.patient,
            status => worst.map(|s| s.as_str()).unwrap_or("ok"),
            range => range,
            ranges => ["24h", "7d", "30d"],
            charts => charts,
            alerts => alerts,
            thresholds => &thresholds,
            orders => orders,
            devices => devices,
            contacts => contacts,
        })
    });
    match html {
        Ok(h) => {
            let remember =
                format!("{LANG_COOKIE}={lang}; SameSite=Strict; Path=/; Max-Age=31536000");
            ([(header::SET_COOKIE, remember)], Html(h)).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "patient page template");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_languages() {
        assert_eq!(limit_value("< 90"), Some(90.0));
        assert_eq!(limit_value("≥ 37.8"), Some(37.8));
        let mut h = HeaderMap::new();
        assert_eq!(language(None, &h), "vi");
        h.insert(header::ACCEPT_LANGUAGE, "en-GB,en;q=0.9".parse().unwrap());
        assert_eq!(language(None, &h), "en");
        assert_eq!(language(Some("vi"), &h), "vi");
        h.insert(header::COOKIE, "vigil_lang=vi".parse().unwrap());
        assert_eq!(language(None, &h), "vi");
    }

    #[test]
    fn the_template_escapes_what_devices_and_people_typed() {
        let html = env()
            .get_template("patient.html")
            .unwrap()
            .render(context! {
                lang => "en", other_lang => "vi", t => labels(false),
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
