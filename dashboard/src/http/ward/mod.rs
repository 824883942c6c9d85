//! The ward view (issue #6), the dashboard's home page, server-rendered: open alerts with their
//! actions, then every patient the user may see, most urgent first, with the latest vitals
//! coloured against the patient's own limits, NEWS2, device status, time since the last reading
//! and a 24-hour sparkline; filters by name, facility, area and tag; grouped by facility when
//! the user sees several.
//!
//! `GET /` renders the page; `GET /ward` renders its changing part alone, which
//! `/static/app.js` fetches when the live stream reports a change (no reload, no client-side
//! templating: the same escaped server markup either way).

use super::alert_text::{describe, rule_title};
use super::view::{self, ago, labels, local, render, PageUser};
use super::{charts, ApiError, AppState};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use minijinja::{context, Value};
use serde::Deserialize;
use std::collections::BTreeSet;
use vigil_domain::display::number;
use vigil_domain::views::{AlertFilter, PatientSummary, ReadingBucket};
use vigil_domain::{Alert, Lang, Metric};

/// Most open alerts listed above the patients; the inbox has them all.
const ALERTS_SHOWN: usize = 200;

mod cache;

use cache::SparkKey;
use cache::{next, Cached, Next};
pub use cache::{BodyCache, SparkCache};

/// Answer header of `GET /ward`: the body misses readings newer than it; ask again in this
/// many milliseconds (docs/api.md).
const REFRESH_HEADER: &str = "x-vigil-refresh-in";

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
    let (all, shown, (episodes, alerts), sparks, mail) = state
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
            // One card per patient episode (issue #17); rows for alerts from before episodes.
            let mut episodes =
                b.episodes(&scope, crate::EpisodeFilter::Active, None, ALERTS_SHOWN)?;
            // The ward's filters narrow the cards too (one facility, one area, a name).
            let kept: std::collections::HashSet<&str> =
                shown.iter().map(|p| p.id.as_str()).collect();
            episodes.retain(|e| kept.contains(e.patient_id.as_str()));
            let mut alerts = b.alerts(&scope, &filter, ALERTS_SHOWN)?;
            alerts.retain(|a| a.episode_id.is_none());
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
            Ok((all, shown, (episodes, alerts), sparks, mail))
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
    let episodes: Vec<Value> = episodes
        .iter()
        .map(|e| super::episode_card::episode_card(e, tz, vi, now))
        .collect();
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
        episodes => episodes,
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

/// The limit at the end of a threshold alert's message (`spo2 85 % < 90` → `< 90`).
pub(crate) fn alert_row(a: &Alert, tz: chrono_tz::Tz, vi: bool) -> Value {
    context! {
        id => a.id,
        patient_id => &a.patient_id,
        patient_name => &a.patient_name,
        severity => a.severity.as_str(),
        state => a.state.as_str(),
        what => describe(a, vi),
        rule => &a.rule,
        rule_title => rule_title(a, vi),
        time => local(tz, a.opened_at),
        acknowledged_by => a.acknowledged_by.as_deref().map(|w| view::actor(w, vi)),
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
                p.latest
                    .get(m.as_str())
                    .map(|v| number(m.shown(v.value), vi))
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
        let name = m.label(Lang::pick(vi));
        let label = format!(
            "{name} {}: {}–{} {}",
            if vi { "24 giờ" } else { "24 h" },
            number(m.shown(lo), vi),
            number(m.shown(hi), vi),
            m.screen_unit(Lang::pick(vi))
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
            missing => vigil_domain::words::news2_missing(&n.missing, Lang::pick(vi)),
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
mod tests;
