//! The ward view (issue #6), the dashboard's home page, server-rendered: open alerts with their
//! actions, then every patient the user may see, most urgent first, with the latest vitals
//! coloured against the patient's own limits, NEWS2, device status, time since the last reading
//! and a 24-hour sparkline; filters by name, facility, area and tag; grouped by facility when
//! the user sees several.
//!
//! `GET /` renders the page; `GET /ward` renders its changing part alone, which
//! `/static/app.js` fetches when the live stream reports a change (no reload, no client-side
//! templating: the same escaped server markup either way).

use super::view::{self, ago, labels, local, render, PageUser};
use super::{charts, ApiError, AppState};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use minijinja::{context, Value};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use vigil_domain::display::number;
use vigil_domain::views::{AlertFilter, PatientSummary, ReadingBucket};
use vigil_domain::{Alert, EventKind, Lang, Metric};

/// Most open alerts listed above the patients; the inbox has them all.
const ALERTS_SHOWN: usize = 200;

/// How long a sparkline is reused. A 24-hour line of hourly averages barely moves in a minute,
/// while the latest values and colours beside it are always fresh; reading a thousand
/// patients' rollups cost ≈ 55 ms, more than the rest of the view (docs/benchmarks.md).
const SPARK_TTL: std::time::Duration = std::time::Duration::from_secs(60);

type SparkKey = (String, Metric);

/// Sparkline data by (patient, metric), with when it was read.
#[derive(Default)]
pub struct SparkCache {
    map: std::sync::Mutex<HashMap<SparkKey, (std::time::Instant, Vec<ReadingBucket>)>>,
}

impl SparkCache {
    /// The fresh entries among `wanted` (index-aligned) and the keys still to read.
    fn lookup(&self, wanted: &[SparkKey]) -> (Vec<Option<Vec<ReadingBucket>>>, Vec<usize>) {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let mut found = Vec::with_capacity(wanted.len());
        let mut missing = Vec::new();
        for (i, k) in wanted.iter().enumerate() {
            match map.get(k) {
                Some((at, b)) if at.elapsed() < SPARK_TTL => found.push(Some(b.clone())),
                _ => {
                    found.push(None);
                    missing.push(i);
                }
            }
        }
        (found, missing)
    }

    fn store(&self, entries: Vec<(SparkKey, Vec<ReadingBucket>)>) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        map.retain(|_, (at, _)| at.elapsed() < SPARK_TTL);
        for (k, b) in entries {
            map.insert(k, (now, b));
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/ward", get(fragment))
}

/// The filters, as query parameters so a filtered ward view can be bookmarked.
#[derive(Deserialize, Default, Clone)]
pub(crate) struct WardQuery {
    /// Part of a name or id.
    pub q: Option<String>,
    pub facility: Option<String>,
    pub area: Option<String>,
    pub tag: Option<String>,
}

fn set(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl WardQuery {
    fn keeps(&self, p: &PatientSummary) -> bool {
        if let Some(q) = set(&self.q) {
            let q = q.to_lowercase();
            if !p.name.to_lowercase().contains(&q) && !p.id.to_lowercase().contains(&q) {
                return false;
            }
        }
        set(&self.facility).is_none_or(|f| p.facility_id == f)
            && set(&self.area).is_none_or(|a| p.area.as_deref() == Some(a))
            && set(&self.tag).is_none_or(|t| p.tags.iter().any(|x| x == t))
    }
}

async fn page(
    user: PageUser,
    State(state): State<AppState>,
    Query(q): Query<WardQuery>,
) -> Response {
    let (ctx, body, _) = match body(&state, &user, &q, false).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    render(
        "ward.html",
        minijinja::value::merge_maps([
            context! { body => Value::from_safe_string(body.to_string()) },
            ctx,
            user.layout(&state, "ward"),
        ]),
    )
}

/// The changing part of the page alone, for the live refresh. Without a session: 401 (the
/// script then goes to the login page), not a redirect it would follow into a login form.
async fn fragment(
    user: Result<PageUser, Response>,
    State(state): State<AppState>,
    Query(q): Query<WardQuery>,
) -> Response {
    let Ok(user) = user else {
        return ApiError::Unauthorized.into_response();
    };
    match body(&state, &user, &q, true).await {
        Ok((_, body, None)) => axum::response::Html(body.to_string()).into_response(),
        // Newer readings than this body holds: the script asks again then.
        Ok((_, body, Some(later))) => (
            [(REFRESH_HEADER, later.as_millis().to_string())],
            axum::response::Html(body.to_string()),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Rendered ward bodies shared by everyone with the same view (facilities, filters,
/// language). When a change comes in, a hundred dashboards ask again at once: the first
/// renders and the others wait for it and take its result (single flight), instead of a
/// hundred renders of a thousand patients (issue #6: 100 live clients updated within 1 s).
/// An entry is good while no live event has arrived since it was begun, and for at most
/// [`BODY_TTL`] (the "5 min ago" texts age); one that misses only newer readings is still
/// served for [`READINGS_EVERY`], telling the script when to ask again.
#[derive(Default)]
pub struct BodyCache {
    /// Alert events seen (and lags of the watcher: anything may have changed).
    alerts: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Reading events seen.
    readings: std::sync::Arc<std::sync::atomic::AtomicU64>,
    watching: std::sync::OnceLock<()>,
    #[allow(clippy::type_complexity)]
    entries: std::sync::Mutex<HashMap<String, std::sync::Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

/// One rendered body: the event counts when it was begun, when, the filter lists, the HTML.
struct Cached {
    alerts: u64,
    readings: u64,
    at: std::time::Instant,
    ctx: Value,
    html: std::sync::Arc<str>,
}

const BODY_TTL: std::time::Duration = std::time::Duration::from_secs(15);

/// How long a body may miss newer readings (never alerts). Every reading used to re-render
/// the view for every dashboard's next fetch, so at 10 000 readings/s with 20 dashboards
/// refreshing one core rendered continuously and ingest fell by a quarter
/// (docs/benchmarks.md); now each view renders at most about once a second for readings.
const READINGS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Answer header of `GET /ward`: the body misses readings newer than it; ask again in this
/// many milliseconds (docs/api.md).
const REFRESH_HEADER: &str = "x-vigil-refresh-in";

/// What a request for a view does with its cached body.
#[derive(Debug, PartialEq)]
enum Next {
    Serve,
    /// Serve it though it misses newer readings; it is younger than [`READINGS_EVERY`], and
    /// will be rendered again after this long.
    ServeStale(std::time::Duration),
    Render,
}

/// Serve what is cached when it shows every change up to the request (`asked`: the event
/// counts and the time it came in) — nothing changed since it was begun, or it was begun after
/// the request came — within [`BODY_TTL`]. Render after an alert it does not show. When it
/// misses only readings, it is good for [`READINGS_EVERY`] after it was begun: then the
/// caller is told when to ask again (`allow_stale`; otherwise it is rendered).
fn next(
    cached: Option<&Cached>,
    ((alerts, readings), asked_at): ((u64, u64), std::time::Instant),
    now: std::time::Instant,
    allow_stale: bool,
) -> Next {
    match cached {
        Some(c) if now.duration_since(c.at) < BODY_TTL && c.alerts >= alerts => {
            let age = now.duration_since(c.at);
            if c.readings >= readings || c.at >= asked_at {
                Next::Serve
            } else if allow_stale && age < READINGS_EVERY {
                Next::ServeStale(READINGS_EVERY - age)
            } else {
                Next::Render
            }
        }
        _ => Next::Render,
    }
}

impl BodyCache {
    /// Starts counting live events (once, on first use: needs the runtime).
    fn watch(&self, live: &tokio::sync::broadcast::Sender<vigil_domain::views::Live>) {
        self.watching.get_or_init(|| {
            let mut rx = live.subscribe();
            let (alerts, readings) = (self.alerts.clone(), self.readings.clone());
            tokio::spawn(async move {
                use tokio::sync::broadcast::error::RecvError;
                use vigil_domain::views::LiveEvent;
                loop {
                    match rx.recv().await {
                        Ok(m) if matches!(m.event, LiveEvent::Reading { .. }) => {
                            readings.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        Ok(_) | Err(RecvError::Lagged(_)) => {
                            alerts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        Err(RecvError::Closed) => return,
                    }
                }
            });
        });
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.alerts.load(std::sync::atomic::Ordering::SeqCst),
            self.readings.load(std::sync::atomic::Ordering::SeqCst),
        )
    }

    fn slot(&self, key: String) -> std::sync::Arc<tokio::sync::Mutex<Option<Cached>>> {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Views nobody asked for in a while go (filters typed once).
        if map.len() > 256 {
            map.retain(|_, slot| {
                slot.try_lock()
                    .map(|c| c.as_ref().is_some_and(|c| c.at.elapsed() < BODY_TTL))
                    .unwrap_or(true)
            });
        }
        map.entry(key).or_default().clone()
    }
}

/// The ward body for this user's view: the shared filter lists (for the page's form) and the
/// rendered HTML of the changing part.
async fn body(
    state: &AppState,
    user: &PageUser,
    q: &WardQuery,
    allow_stale: bool,
) -> Result<(Value, std::sync::Arc<str>, Option<std::time::Duration>), ApiError> {
    let cache = &state.ward_bodies;
    cache.watch(&state.live);
    let key = format!(
        "{:?}|{}|{}|{}|{}|{}",
        user.access.scope,
        user.lang,
        set(&q.q).unwrap_or(""),
        set(&q.facility).unwrap_or(""),
        set(&q.area).unwrap_or(""),
        set(&q.tag).unwrap_or("")
    );
    let slot = cache.slot(key);
    // What this request has to show: the changes up to now. A body begun after this moment,
    // by a request that held the lock meanwhile, has them (single flight).
    let asked = (cache.counts(), std::time::Instant::now());
    let mut entry = slot.lock().await;
    let later = match next(
        entry.as_ref(),
        asked,
        std::time::Instant::now(),
        allow_stale,
    ) {
        Next::Serve => None,
        Next::ServeStale(later) => Some(later),
        Next::Render => {
            return render_body(state, user, q, cache, &mut entry).await;
        }
    };
    let c = entry.as_ref().expect("served from an entry");
    Ok((c.ctx.clone(), c.html.clone(), later))
}

async fn render_body(
    state: &AppState,
    user: &PageUser,
    q: &WardQuery,
    cache: &BodyCache,
    entry: &mut Option<Cached>,
) -> Result<(Value, std::sync::Arc<str>, Option<std::time::Duration>), ApiError> {
    let begun = cache.counts();
    let at = std::time::Instant::now();
    let ctx = ward(state, user, q).await?;
    let t = std::time::Instant::now();
    let html: std::sync::Arc<str> = view::env()
        .get_template("ward_body.html")
        .and_then(|t| t.render(&ctx))
        .map_err(|e| ApiError::Internal(format!("ward template: {e}")))?
        .into();
    tracing::debug!(
        ms = t.elapsed().as_secs_f64() * 1e3,
        bytes = html.len(),
        "ward body rendered"
    );
    *entry = Some(Cached {
        alerts: begun.0,
        readings: begun.1,
        at,
        ctx: ctx.clone(),
        html: html.clone(),
    });
    Ok((ctx, html, None))
}

/// Vitals in the order of the columns, with the digits each is shown with.
const COLUMNS: [(Metric, &str); 7] = [
    (Metric::Spo2, "spo2"),
    (Metric::HeartRate, "heart_rate"),
    (Metric::BpSystolic, "bp"),
    (Metric::Temperature, "temperature"),
    (Metric::RespiratoryRate, "respiratory_rate"),
    (Metric::Glucose, "glucose"),
    (Metric::Weight, "weight"),
];

/// The vital a patient's sparkline shows: the worst one breaching a limit, else the first
/// measured in the order clinicians scan (SpO₂, pulse, blood pressure, …).
fn spark_metric(p: &PatientSummary) -> Option<Metric> {
    let rank = |s: &str| match s {
        "red" => 0,
        "amber" => 1,
        _ => 2,
    };
    if let Some((name, _)) = p.flags.iter().min_by_key(|(_, s)| rank(s)) {
        if let Ok(m) = name.parse() {
            return Some(m);
        }
    }
    COLUMNS
        .iter()
        .map(|(m, _)| *m)
        .find(|m| p.latest.contains_key(m.as_str()))
}

fn last_reading(p: &PatientSummary) -> Option<DateTime<Utc>> {
    p.latest.values().map(|v| v.ts).max()
}

/// Most urgent first (issue #6): open red, amber, yellow, then the higher NEWS2, then the
/// longest silence (stale data wants a look), patients never measured last; then by name.
fn sort(list: &mut [PatientSummary]) {
    let rank = |s: &str| match s {
        "red" => 0,
        "amber" => 1,
        "yellow" => 2,
        _ => 3,
    };
    list.sort_by(|a, b| {
        let news2 = |p: &PatientSummary| p.news2.as_ref().map_or(-1, |n| i32::from(n.total));
        rank(a.status)
            .cmp(&rank(b.status))
            .then(news2(b).cmp(&news2(a)))
            .then_with(|| match (last_reading(a), last_reading(b)) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .then_with(|| a.name.cmp(&b.name))
    });
}

pub(crate) async fn ward(
    state: &AppState,
    user: &PageUser,
    q: &WardQuery,
) -> Result<Value, ApiError> {
    let scope = user.access.scope.clone();
    let q2 = q.clone();
    let cache = state.sparklines.clone();
    let now = Utc::now();
    let from = now - Duration::hours(24);
    let (all, shown, alerts, sparks, mail) = state
        .call(move |b| {
            let t0 = std::time::Instant::now();
            let all = b.patients(&scope)?;
            let t_patients = t0.elapsed();
            let mut shown: Vec<PatientSummary> =
                all.iter().filter(|p| q2.keeps(p)).cloned().collect();
            sort(&mut shown);
            let filter = AlertFilter {
                active: true,
                ..AlertFilter::default()
            };
            let alerts = b.alerts(&scope, &filter, ALERTS_SHOWN)?;
            let wanted: Vec<(usize, SparkKey)> = shown
                .iter()
                .enumerate()
                .filter_map(|(i, p)| spark_metric(p).map(|m| (i, (p.id.clone(), m))))
                .collect();
            let keys: Vec<SparkKey> = wanted.iter().map(|(_, k)| k.clone()).collect();
            let (mut found, missing) = cache.lookup(&keys);
            let t1 = std::time::Instant::now();
            let to_read: Vec<SparkKey> = missing.iter().map(|i| keys[*i].clone()).collect();
            let read = b.sparklines(&to_read, from, now)?;
            tracing::debug!(
                patients_ms = t_patients.as_secs_f64() * 1e3,
                sparklines_read = to_read.len(),
                sparklines_ms = t1.elapsed().as_secs_f64() * 1e3,
                "ward view data"
            );
            for (i, buckets) in missing.iter().zip(&read) {
                found[*i] = Some(buckets.clone());
            }
            cache.store(to_read.into_iter().zip(read).collect());
            let mut sparks: Vec<Option<(Metric, Vec<ReadingBucket>)>> = vec![None; shown.len()];
            for ((i, (_, m)), buckets) in wanted.into_iter().zip(found) {
                sparks[i] = buckets.map(|b| (m, b));
            }
            let mail = b
                .readiness_detail()
                .into_iter()
                .find(|(k, _)| *k == "email")
                .map(|(_, v)| v);
            Ok((all, shown, alerts, sparks, mail))
        })
        .await?;
    let t_rows = std::time::Instant::now();
    let vi = user.vi();
    let tz = state.tz;
    let facilities: BTreeSet<&str> = all.iter().map(|p| p.facility_id.as_str()).collect();
    let areas: BTreeSet<&str> = all.iter().filter_map(|p| p.area.as_deref()).collect();
    let tags: BTreeSet<&str> = all
        .iter()
        .flat_map(|p| &p.tags)
        .map(String::as_str)
        .collect();
    let rows: Vec<Value> = shown
        .iter()
        .zip(sparks)
        .map(|(p, spark)| patient_row(p, spark, from, now, vi))
        .collect();
    let keys: Vec<&str> = shown.iter().map(|p| p.facility_id.as_str()).collect();
    let groups: Vec<Value> = group(&keys, rows, facilities.len() > 1)
        .into_iter()
        .map(|(facility, rows)| context! { facility => facility, rows => rows })
        .collect();
    let alerts: Vec<Value> = alerts.iter().map(|a| alert_row(a, tz, vi)).collect();
    let mail_failing = mail
        .as_ref()
        .is_some_and(|m| m.get("healthy") == Some(&serde_json::Value::Bool(false)));
    let mail_counts = mail
        .map(|m| format!("{} / {}", m["retrying"], m["undeliverable"]))
        .unwrap_or_default();
    tracing::debug!(
        rows_ms = t_rows.elapsed().as_secs_f64() * 1e3,
        "ward view rows"
    );
    Ok(context! {
        lang => user.lang,
        t => labels(vi),
        q => set(&q.q).unwrap_or(""),
        facility => set(&q.facility).unwrap_or(""),
        area => set(&q.area).unwrap_or(""),
        tag => set(&q.tag).unwrap_or(""),
        facilities => facilities,
        areas => areas,
        tags => tags,
        groups => groups,
        shown => shown.len(),
        alerts => alerts,
        mail_failing => mail_failing,
        mail_counts => mail_counts,
    })
}

/// Rows grouped by facility when the user sees several (issue #6): each group keeps the sorted
/// order, and the group with the most urgent patient comes first, so a red patient is never
/// below a calm facility. `keys` are the rows' facilities.
fn group<T>(keys: &[&str], rows: Vec<T>, grouped: bool) -> Vec<(String, Vec<T>)> {
    let mut groups: Vec<(String, Vec<T>)> = Vec::new();
    for (key, row) in keys.iter().zip(rows) {
        let key = if grouped { *key } else { "" };
        match groups.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => v.push(row),
            None => groups.push((key.to_string(), vec![row])),
        }
    }
    groups
}

/// What an alert is about in the page's language: the vital and its value, NEWS2, or the
/// event; the stored message (with the limit, language-neutral) otherwise and as a tooltip.
fn describe(a: &Alert, vi: bool) -> String {
    let lang = if vi { Lang::Vi } else { Lang::En };
    if let (Some(m), Some(v)) = (
        a.metric.as_deref().and_then(|m| m.parse::<Metric>().ok()),
        a.value,
    ) {
        let label = if vi { m.label_vi() } else { m.label_en() };
        let limit = limit_of(&a.message)
            .map(|l| {
                let l = vigil_domain::display::decimal(l.to_string(), vi);
                if vi {
                    format!(" (ngưỡng {l})")
                } else {
                    format!(" (limit {l})")
                }
            })
            .unwrap_or_default();
        return format!("{label}: {} {}{limit}", number(v, vi), m.display_unit());
    }
    if let Some(v) = a.value.filter(|_| a.rule.starts_with("news2")) {
        return format!("NEWS2: {}", number(v, vi));
    }
    if let Ok(e) = a.rule.parse::<EventKind>() {
        return e.label(lang).to_string();
    }
    a.message.clone()
}

/// The limit at the end of a threshold alert's message (`spo2 85 % < 90` → `< 90`).
fn limit_of(message: &str) -> Option<&str> {
    let i = message.rfind(['<', '>', '≤', '≥'])?;
    let limit = message[i..].trim();
    (limit.len() <= 16).then_some(limit)
}

pub(crate) fn alert_row(a: &Alert, tz: chrono_tz::Tz, vi: bool) -> Value {
    context! {
        id => a.id,
        patient_id => &a.patient_id,
        patient_name => &a.patient_name,
        severity => a.severity.as_str(),
        state => a.state.as_str(),
        what => describe(a, vi),
        message => &a.message,
        rule => &a.rule,
        time => local(tz, a.opened_at),
        acknowledged_by => &a.acknowledged_by,
        assigned_to => &a.assigned_to,
        note => &a.note,
    }
}

fn patient_row(
    p: &PatientSummary,
    spark: Option<(Metric, Vec<ReadingBucket>)>,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
    vi: bool,
) -> Value {
    let vitals: Vec<Value> = COLUMNS
        .iter()
        .map(|(m, key)| {
            let value = if *m == Metric::BpSystolic {
                p.latest.get("bp_systolic").map(|s| {
                    let dia = p
                        .latest
                        .get("bp_diastolic")
                        .map(|d| format!("/{}", number(d.value.round(), vi)))
                        .unwrap_or_default();
                    format!("{}{dia}", number(s.value.round(), vi))
                })
            } else {
                p.latest.get(m.as_str()).map(|v| {
                    let shown =
                        if matches!(m, Metric::Temperature | Metric::Glucose | Metric::Weight) {
                            (v.value * 10.0).round() / 10.0
                        } else {
                            v.value.round()
                        };
                    number(shown, vi)
                })
            };
            // Blood pressure is flagged by either number.
            let flag = if *m == Metric::BpSystolic {
                worse(p.flags.get("bp_systolic"), p.flags.get("bp_diastolic"))
            } else {
                p.flags.get(m.as_str()).copied()
            };
            context! { metric => key, value => value, flag => flag }
        })
        .collect();
    let spark = spark.and_then(|(m, buckets)| {
        let points: Vec<(DateTime<Utc>, f64)> = buckets.iter().map(|b| (b.start, b.avg)).collect();
        let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        let name = if vi { m.label_vi() } else { m.label_en() };
        let label = format!(
            "{name} 24 h: {}–{} {}",
            number((lo * 10.0).round() / 10.0, vi),
            number((hi * 10.0).round() / 10.0, vi),
            m.display_unit()
        );
        charts::sparkline(&label, &points, from, now).map(Value::from_safe_string)
    });
    let last = last_reading(p);
    let d = &p.devices;
    context! {
        id => &p.id,
        name => &p.name,
        status => p.status,
        facility => &p.facility_id,
        area => &p.area,
        tags => &p.tags,
        news2 => p.news2.as_ref().map(|n| context! {
            score => format!("{}{}", n.total, if n.partial { "+" } else { "" }),
            risk => &n.risk,
            partial => n.partial,
            missing => n.missing.join(", "),
        }),
        vitals => vitals,
        devices => context! {
            total => d.total,
            online => d.online,
            offline => d.offline,
            battery_low => d.battery_low,
            lowest_battery => d.lowest_battery.map(|b| format!("{} %", number(b.round(), vi))),
        },
        last_ago => last.map(|t| ago(now, t, vi)),
        last_at => last.map(|t| t.to_rfc3339()),
        spark => spark,
    }
}

fn worse(a: Option<&&'static str>, b: Option<&&'static str>) -> Option<&'static str> {
    match (a.copied(), b.copied()) {
        (Some("red"), _) | (_, Some("red")) => Some("red"),
        (Some(x), _) | (None, Some(x)) => Some(x),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use vigil_domain::views::{DeviceStatus, LatestValue, News2View};

    fn patient(
        id: &str,
        status: &'static str,
        news2: Option<u8>,
        hours_ago: Option<i64>,
    ) -> PatientSummary {
        let mut latest = BTreeMap::new();
        if let Some(h) = hours_ago {
            latest.insert(
                "spo2".to_string(),
                LatestValue {
                    ts: Utc::now() - Duration::hours(h),
                    value: 95.0,
                    unit: "%",
                },
            );
        }
        PatientSummary {
            id: id.into(),
            name: id.into(),
            facility_id: "default".into(),
            area: Some("A".into()),
            tags: vec!["copd".into()],
            devices: DeviceStatus::default(),
            latest,
            flags: BTreeMap::new(),
            status,
            open_alerts: 0,
            news2: news2.map(|total| News2View {
                total,
                risk: "low".into(),
                partial: true,
                missing: vec![],
            }),
        }
    }

    #[test]
    fn a_view_renders_at_once_for_alerts_and_at_most_once_a_second_for_readings() {
        let t0 = std::time::Instant::now();
        let cached = Cached {
            alerts: 3,
            readings: 10,
            at: t0,
            ctx: Value::from(()),
            html: "".into(),
        };
        let s = std::time::Duration::from_millis;
        // Requests that came in after the cached body was begun.
        let asked = t0 + s(100);
        let now = t0 + s(200);
        let next =
            |counts, asked_at, now| super::next(Some(&cached), (counts, asked_at), now, true);
        assert_eq!(super::next(None, ((0, 0), t0), t0, true), Next::Render);
        assert_eq!(next((3, 10), asked, t0 + s(500)), Next::Serve);
        // A new alert: render.
        assert_eq!(next((4, 10), asked, now), Next::Render);
        // New readings: served for a second after the cached render began, with when to ask
        // again; rendered after that (and for the page itself, which cannot ask again).
        assert_eq!(next((3, 11), asked, now), Next::ServeStale(s(800)));
        assert_eq!(next((3, 11), asked, t0 + s(1500)), Next::Render);
        assert_eq!(
            super::next(Some(&cached), ((3, 11), asked), now, false),
            Next::Render
        );
        // Single flight: a body begun after the request came in (while it waited for the one
        // rendering) has its readings...
        assert_eq!(next((3, 11), t0 - s(1), now), Next::Serve);
        // ... but not an alert it has not seen.
        assert_eq!(next((4, 11), t0 - s(1), now), Next::Render);
        // Too old, even unchanged ("5 min ago" texts age).
        assert_eq!(next((3, 10), asked, t0 + s(15_000)), Next::Render);
    }

    #[test]
    fn most_urgent_first() {
        let mut list = vec![
            patient("quiet-recent", "ok", Some(1), Some(1)),
            patient("never", "ok", None, None),
            patient("quiet-stale", "ok", Some(1), Some(30)),
            patient("amber", "amber", Some(0), Some(1)),
            patient("high-news2", "ok", Some(6), Some(1)),
            patient("red", "red", Some(0), Some(1)),
        ];
        sort(&mut list);
        let ids: Vec<&str> = list.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "red",
                "amber",
                "high-news2",
                "quiet-stale",
                "quiet-recent",
                "never"
            ]
        );
    }

    #[test]
    fn groups_follow_their_most_urgent_patient() {
        // Sorted rows: the red patient of "z-commune" first.
        let g = group(&["z-commune", "a-centre", "z-commune"], vec![1, 2, 3], true);
        assert_eq!(
            g,
            [
                ("z-commune".to_string(), vec![1, 3]),
                ("a-centre".to_string(), vec![2])
            ]
        );
        let one = group(&["z", "a"], vec![1, 2], false);
        assert_eq!(one, [(String::new(), vec![1, 2])]);
    }

    #[test]
    fn alerts_read_in_the_page_language() {
        let mut a = Alert {
            id: 1,
            patient_id: "p".into(),
            patient_name: "P".into(),
            rule: "spo2_low".into(),
            severity: vigil_domain::Severity::Red,
            state: vigil_domain::AlertState::Open,
            opened_at: Utc::now(),
            value: Some(85.0),
            metric: Some("spo2".into()),
            unit: Some("%".into()),
            message: "spo2 85 % < 90".into(),
            acknowledged_at: None,
            acknowledged_by: None,
            note: None,
            resolved_at: None,
            assigned_to: None,
        };
        assert_eq!(describe(&a, false), "SpO₂: 85 % (limit < 90)");
        a.metric = Some("temperature".into());
        a.value = Some(38.5);
        a.message = "temperature 38.5 °C > 37.8".into();
        assert!(
            describe(&a, true).ends_with("38,5 °C (ngưỡng > 37,8)"),
            "{}",
            describe(&a, true)
        );
        a.metric = None;
        a.value = None;
        a.rule = "fall".into();
        assert_eq!(describe(&a, true), "Phát hiện té ngã");
        a.rule = "something_else".into();
        a.message = "as stored".into();
        assert_eq!(describe(&a, false), "as stored");
    }

    #[test]
    fn filters() {
        let p = patient("Bà-Ba", "ok", None, None);
        let q = |q: &str, area: &str, tag: &str| WardQuery {
            q: Some(q.into()),
            area: Some(area.into()),
            tag: Some(tag.into()),
            ..WardQuery::default()
        };
        assert!(q("bà", "", "").keeps(&p));
        assert!(q("", "A", "copd").keeps(&p));
        assert!(!q("", "B", "").keeps(&p));
        assert!(!q("", "", "diabetes").keeps(&p));
        assert!(!q("không", "", "").keeps(&p));
    }

    #[test]
    fn the_ward_escapes_what_devices_and_people_typed() {
        let mut p = patient("p1", "red", Some(3), Some(1));
        p.name = "<script>alert(1)</script>".into();
        p.area = Some("<i>area</i>".into());
        let row = patient_row(
            &p,
            None,
            Utc::now() - Duration::hours(24),
            Utc::now(),
            false,
        );
        let html = view::env()
            .get_template("ward_body.html")
            .unwrap()
            .render(context! {
                lang => "en", t => labels(false),
                groups => vec![context! { facility => "", rows => vec![row] }],
                shown => 1,
                alerts => Vec::<Value>::new(),
            })
            .unwrap();
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(
            !html.contains("<script>") && !html.contains("<i>area"),
            "{html}"
        );
        assert!(html.contains(r#"data-patient="p1""#), "{html}");
    }
}
