//! The read-only FHIR R4 API (issue #18) at `/fhir/r4`: `metadata`, `Patient/{id}`,
//! `Device/{id}`, `Observation/{id}` and `Observation?patient=&code=&date=&_count=`, JSON as
//! `application/fhir+json`, with the same bearer tokens (or session) and facility scoping as
//! `/api/v1` — another facility's resource is as unknown as a missing one (404). Errors are
//! `OperationOutcome`s. The resources are `vigil_fhir`'s; docs/fhir.md.

use super::auth::Principal;
use super::view::percent_encode;
use super::{ApiError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::Value;
use vigil_domain::Metric;
use vigil_fhir::ids::{self, ObservationKind};
use vigil_fhir::resources;

/// Observations per page unless `_count` says otherwise, and the most it may say.
const DEFAULT_COUNT: usize = 100;
const MAX_COUNT: usize = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metadata", get(metadata))
        .route("/Patient/{id}", get(patient))
        .route("/Device/{id}", get(device))
        .route("/Observation/{id}", get(observation))
        .route("/Observation", get(search))
}

/// A FHIR answer: a resource (or an `OperationOutcome`) with its status.
struct Fhir(StatusCode, Value);

impl IntoResponse for Fhir {
    fn into_response(self) -> Response {
        (
            self.0,
            [(header::CONTENT_TYPE, vigil_fhir::MEDIA_TYPE)],
            self.1.to_string(),
        )
            .into_response()
    }
}

fn ok(v: Value) -> Fhir {
    Fhir(StatusCode::OK, v)
}

/// The web layer's errors as `OperationOutcome`s (FHIR R4 operationoutcome.html).
impl From<ApiError> for Fhir {
    fn from(e: ApiError) -> Fhir {
        let (status, code) = match &e {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "login"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "FHIR request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "exception")
            }
        };
        Fhir(status, resources::outcome(code, &e.to_string()))
    }
}

type Answer = Result<Fhir, Fhir>;

fn who(p: Result<Principal, ApiError>) -> Result<Principal, Fhir> {
    p.map_err(Fhir::from)
}

/// The server's base address as the client reached it, for `fullUrl`s and paging links.
fn base(state: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if state.secure_cookie { "https" } else { "http" };
    format!("{scheme}://{host}/fhir/r4")
}

/// The CapabilityStatement; public, as FHIR servers' `metadata` usually is (it says nothing
/// about patients).
async fn metadata(State(state): State<AppState>, headers: HeaderMap) -> Fhir {
    ok(resources::capability_statement(
        &base(&state, &headers),
        env!("CARGO_PKG_VERSION"),
        Utc::now(),
    ))
}

/// The Vigil id of the caller's patient whose FHIR id is `fhir_id`.
async fn resolve_patient(
    state: &AppState,
    who: &Principal,
    fhir_id: &str,
) -> Result<vigil_domain::Patient, ApiError> {
    let scope = who.scope.clone();
    let list = state.call(move |b| b.patient_list(&scope)).await?;
    list.into_iter()
        .find(|p| ids::fhir_id(&p.id) == fhir_id)
        .ok_or_else(|| ApiError::NotFound(format!("Patient/{fhir_id}")))
}

async fn patient(
    p: Result<Principal, ApiError>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Answer {
    let who = who(p)?;
    let found = resolve_patient(&state, &who, &id).await?;
    Ok(ok(resources::patient(&found)))
}

async fn device(
    p: Result<Principal, ApiError>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Answer {
    let who = who(p)?;
    let scope = who.scope.clone();
    let want = id.clone();
    let found = state
        .call(move |b| {
            let Some(d) = b
                .registry()?
                .devices
                .into_iter()
                .find(|d| ids::fhir_id(&d.id) == want)
            else {
                return Ok(None);
            };
            Ok(match b.patient_facility(&d.patient_id)? {
                Some(f) if scope.allows(&f) => Some(d),
                _ => None,
            })
        })
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Device/{id}")))?;
    Ok(ok(resources::device(&found)))
}

fn metrics_of(kind: ObservationKind) -> Vec<Metric> {
    match kind {
        ObservationKind::BloodPressure => vec![Metric::BpSystolic, Metric::BpDiastolic],
        ObservationKind::One(m) => vec![m],
    }
}

async fn observation(
    p: Result<Principal, ApiError>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Answer {
    let who = who(p)?;
    let missing = || ApiError::NotFound(format!("Observation/{id}"));
    let (kind, device, ts) = ids::parse_observation_id(&id).ok_or_else(missing)?;
    let scope = who.scope.clone();
    let rows = state
        .call(move |b| {
            let rows = b.stored_reading(device, &metrics_of(kind), ts)?;
            let allowed = match rows.first() {
                Some(r) => b
                    .patient_facility(&r.patient_id)?
                    .is_some_and(|f| scope.allows(&f)),
                None => false,
            };
            Ok(if allowed { rows } else { Vec::new() })
        })
        .await?;
    let (mut found, _) = resources::page(rows, 1);
    match found.pop() {
        Some(m) if m.kind() == kind => Ok(ok(resources::observation(&m))),
        _ => Err(missing().into()),
    }
}

/// The `[start, end)` a FHIR date or dateTime value stands for: a year, a month, a day (UTC)
/// or an instant (R4 search.html#date).
fn period(v: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        let t = t.with_timezone(&Utc);
        return Some((t, t + chrono::Duration::milliseconds(1)));
    }
    let day = |y: i32, m: u32, d: u32| {
        NaiveDate::from_ymd_opt(y, m, d)
            .map(|d| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap()))
    };
    let parts: Vec<&str> = v.split('-').collect();
    let num = |s: &str| s.parse::<u32>().ok();
    match parts.as_slice() {
        [y] if y.len() == 4 => {
            let y = num(y)? as i32;
            Some((day(y, 1, 1)?, day(y + 1, 1, 1)?))
        }
        [y, m] if y.len() == 4 => {
            let (y, m) = (num(y)? as i32, num(m)?);
            let next = if m == 12 {
                day(y + 1, 1, 1)?
            } else {
                day(y, m + 1, 1)?
            };
            Some((day(y, m, 1)?, next))
        }
        [y, m, d] if y.len() == 4 => {
            let start = day(num(y)? as i32, num(m)?, num(d)?)?;
            Some((start, start + chrono::Duration::days(1)))
        }
        _ => None,
    }
}

/// Narrows `window` by one `date` parameter (`ge`, `gt`, `le`, `lt`, `eq`, or none for `eq`).
fn narrow(
    window: &mut (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    param: &str,
) -> Result<(), ApiError> {
    let (prefix, value) = match param.get(..2) {
        Some(p @ ("ge" | "gt" | "le" | "lt" | "eq")) => (p, &param[2..]),
        _ => ("eq", param),
    };
    let (start, end) = period(value)
        .ok_or_else(|| ApiError::BadRequest(format!("date {param:?}: not a FHIR date")))?;
    let from = |w: &mut (Option<DateTime<Utc>>, _), t| {
        w.0 = Some(w.0.map_or(t, |x: DateTime<Utc>| x.max(t)))
    };
    let to = |w: &mut (_, Option<DateTime<Utc>>), t| {
        w.1 = Some(w.1.map_or(t, |x: DateTime<Utc>| x.min(t)))
    };
    match prefix {
        "ge" => from(window, start),
        "gt" => from(window, end),
        "le" => to(window, end),
        "lt" => to(window, start),
        _ => {
            from(window, start);
            to(window, end);
        }
    }
    Ok(())
}

/// `Observation?patient=&code=&date=&_count=` (and `_cursor`, the paging links' own): the
/// patient's Observations in time order, a `searchset` Bundle with a `next` link while more
/// remain. `patient` is required; an unknown or another facility's patient finds nothing.
async fn search(
    p: Result<Principal, ApiError>,
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Answer {
    let who = who(p)?;
    let mut patient = None;
    let mut metrics: Option<Vec<Metric>> = None;
    let mut window = (None, None);
    let mut count = DEFAULT_COUNT;
    let mut cursor = None;
    for (k, v) in &params {
        match k.as_str() {
            "patient" | "subject" => {
                patient = Some(v.strip_prefix("Patient/").unwrap_or(v).to_string())
            }
            // Comma-separated codes are alternatives (R4 search.html#escaping).
            "code" => {
                let list = metrics.get_or_insert_with(Vec::new);
                for token in v.split(',') {
                    list.extend(vigil_fhir::codes::metrics_of(token));
                }
            }
            "date" => narrow(&mut window, v)?,
            "_count" => {
                count = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_COUNT).contains(n))
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!("_count must be 1 to {MAX_COUNT}"))
                    })?
            }
            "_cursor" => {
                let parts: Vec<i64> = v.split('.').filter_map(|x| x.parse().ok()).collect();
                cursor = match parts.as_slice() {
                    [t, d, m] => Some((*t, *d, *m)),
                    _ => {
                        return Err(ApiError::BadRequest("_cursor is not one of ours".into()).into())
                    }
                };
            }
            "_format" => {}
            other => {
                return Err(ApiError::BadRequest(format!(
                    "search parameter {other:?} is not supported (patient, code, date, _count)"
                ))
                .into())
            }
        }
    }
    let Some(patient) = patient else {
        return Err(ApiError::BadRequest("patient is required".into()).into());
    };
    let mut metrics = metrics.unwrap_or_else(|| Metric::ALL.to_vec());
    metrics.sort_by_key(|m| m.code());
    metrics.dedup();
    let base = base(&state, &headers);
    let query = params
        .iter()
        .filter(|(k, _)| k != "_cursor")
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let self_url = format!("{base}/Observation?{query}");
    let found = match resolve_patient(&state, &who, &patient).await {
        Ok(p) => Some(p.id),
        Err(ApiError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let (list, next) = match found {
        None => (Vec::new(), None),
        Some(pid) => {
            // One more reading than a page of singles: enough to pair a blood pressure at the
            // page's edge and to know whether more follow.
            let rows = state
                .call(move |b| b.stored_readings(&pid, &metrics, window, cursor, count * 2 + 1))
                .await?;
            resources::page(rows, count)
        }
    };
    let next_url = next.map(|(t, d, m)| format!("{self_url}&_cursor={t}.{d}.{m}"));
    let resources: Vec<Value> = list.iter().map(resources::observation).collect();
    Ok(ok(resources::searchset(
        &base,
        resources,
        None,
        &self_url,
        next_url.as_deref(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_narrow_the_window_as_fhir_reads_them() {
        let mut w = (None, None);
        narrow(&mut w, "ge2026-12-01").unwrap();
        narrow(&mut w, "lt2026-12-05T10:00:00+07:00").unwrap();
        assert_eq!(w.0.unwrap().to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(w.1.unwrap().to_rfc3339(), "2026-12-05T03:00:00+00:00");
        let mut day = (None, None);
        narrow(&mut day, "2026-02").unwrap();
        assert_eq!(day.1.unwrap().to_rfc3339(), "2026-03-01T00:00:00+00:00");
        let mut year = (None, None);
        narrow(&mut year, "le2026").unwrap();
        assert_eq!(year.1.unwrap().to_rfc3339(), "2027-01-01T00:00:00+00:00");
        assert!(narrow(&mut year, "ge yesterday").is_err());
        assert_eq!(
            percent_encode("http://loinc.org|8867-4"),
            "http%3A%2F%2Floinc.org%7C8867-4"
        );
    }
}
