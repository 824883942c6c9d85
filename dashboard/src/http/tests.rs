//! Handler tests (issue #6: auth, roles, CSRF and escaping) on the real router with a stub
//! backend in memory; the end-to-end tests (`tests/e2e/access.rs`, `browser.rs`) do the same
//! against the real binary and store.

use super::{router, AppState};
use crate::backend::*;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tower::ServiceExt;
use vigil_domain::views::*;
use vigil_domain::{Access, Alert, Metric, Scope};

/// Two facilities, `a` and `b`; a clinician of `a` (token `clin`, session `sess` with CSRF
/// token `csrf-ok`) and an administrator (token `admin`). Patient `p1` (in `a`) has a name
/// with markup; patient `p2` and alert 7 are in `b`.
struct Stub;

fn clinician(csrf: Option<&str>) -> Access {
    Access {
        name: "bs.a".into(),
        admin: false,
        scope: Scope::Only(vec!["a".into()]),
        csrf: csrf.map(str::to_string),
        lang: None,
        sound: true,
    }
}

fn nothing<T>() -> Result<T> {
    Err(BackendError::Internal("not in this stub".into()))
}

impl crate::Queries for Stub {
    fn patients(&self, scope: &Scope) -> Result<Vec<PatientSummary>> {
        Ok([
            ("p1", "<script>alert(1)</script> Bà A", "a"),
            ("p2", "Ông B", "b"),
        ]
        .into_iter()
        .filter(|(_, _, f)| scope.allows(f))
        .map(|(id, name, f)| PatientSummary {
            id: id.into(),
            name: name.into(),
            facility_id: f.into(),
            area: Some("<i>ấp</i>".into()),
            tags: vec![],
            devices: DeviceStatus::default(),
            latest: Default::default(),
            flags: Default::default(),
            status: "ok",
            open_alerts: 0,
            news2: None,
        })
        .collect())
    }
    fn patient_list(&self, scope: &Scope) -> Result<Vec<vigil_domain::Patient>> {
        Ok(self
            .patients(scope)?
            .into_iter()
            .map(|p| vigil_domain::Patient {
                id: p.id,
                name: p.name,
                facility_id: p.facility_id,
                area: p.area,
                tags: p.tags,
            })
            .collect())
    }
    fn patient_summary(&self, _: &str) -> Result<Option<PatientSummary>> {
        Ok(None)
    }
    fn patient_facility(&self, id: &str) -> Result<Option<String>> {
        Ok(match id {
            "p1" => Some("a".into()),
            "p2" => Some("b".into()),
            _ => None,
        })
    }
    fn alert_burden(&self, _: &Scope, _: u32) -> Result<BurdenReport> {
        nothing()
    }
    fn patient_page(&self, _: &str, _: usize) -> Result<Option<PatientPage>> {
        Ok(None)
    }
    fn patient_events(
        &self,
        _: &str,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
        _: usize,
    ) -> Result<Vec<vigil_domain::views::EventView>> {
        Ok(Vec::new())
    }
    fn alert_facility(&self, id: i64) -> Result<Option<String>> {
        Ok((id == 7).then(|| "b".into()))
    }
    fn readings(
        &self,
        _: &str,
        _: Metric,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
        _: usize,
    ) -> Result<Vec<ReadingPoint>> {
        Ok(vec![])
    }
    fn reading_buckets(
        &self,
        _: &str,
        _: Metric,
        _: Resolution,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
        _: usize,
    ) -> Result<Vec<ReadingBucket>> {
        Ok(vec![])
    }
    fn alerts(&self, _: &Scope, _: &AlertFilter, _: usize) -> Result<Vec<Alert>> {
        Ok(vec![])
    }
    fn alert_detail(&self, _: i64, _: usize) -> Result<Option<AlertDetail>> {
        Ok(None)
    }
    fn episodes(
        &self,
        _: &Scope,
        _: crate::EpisodeFilter,
        _: Option<&str>,
        _: usize,
    ) -> Result<Vec<vigil_domain::views::Episode>> {
        Ok(vec![])
    }
    fn stored_readings(
        &self,
        _: &str,
        _: &[Metric],
        _: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
        _: Option<(i64, i64, i64)>,
        _: usize,
    ) -> Result<Vec<StoredReading>> {
        Ok(vec![])
    }
    fn stored_reading(&self, _: i64, _: &[Metric], _: i64) -> Result<Vec<StoredReading>> {
        Ok(vec![])
    }
    fn episode_detail(&self, _: i64) -> Result<Option<vigil_domain::views::EpisodeDetail>> {
        Ok(None)
    }
    fn episode_facility(&self, _: i64) -> Result<Option<String>> {
        Ok(None)
    }
    fn registry(&self) -> Result<Registry> {
        Ok(Registry {
            facilities: vec![],
            patients: vec![],
            devices: vec![],
            contacts: vec![],
            users: vec![],
        })
    }
    fn rejected_of(&self, _: Option<&str>, _: usize) -> Result<Vec<RejectedMessage>> {
        Ok(vec![])
    }
    fn thresholds(&self, _: &str) -> Result<(Vec<PatientThreshold>, Vec<ThresholdOrder>)> {
        Ok((vec![], vec![]))
    }
    fn tokens(&self) -> Result<Vec<vigil_domain::views::TokenView>> {
        Ok(vec![])
    }
    fn contacts_of(&self, _: &str) -> Result<Vec<vigil_domain::Contact>> {
        Ok(vec![])
    }
    fn admin_audit(&self, _: usize) -> Result<Vec<vigil_domain::views::AdminAuditEntry>> {
        Ok(vec![])
    }
}

impl crate::Commands for Stub {
    fn alert_assign(&self, _: i64, _: &str, _: Option<&str>) -> Result<Alert> {
        nothing()
    }
    fn alert_action(&self, _: i64, _: AlertAction, _: &str, _: &ActionOptions) -> Result<Alert> {
        nothing()
    }
    fn episode_action(
        &self,
        _: i64,
        _: crate::EpisodeAction,
        _: &str,
        _: &ActionOptions,
    ) -> Result<vigil_domain::views::Episode> {
        nothing()
    }
    fn add_patient(&self, _: NewPatientRequest) -> Result<vigil_domain::Patient> {
        nothing()
    }
    fn add_device(&self, _: NewDeviceRequest) -> Result<DeviceCredentials> {
        nothing()
    }
    fn add_contact(&self, _: &str, _: NewContactRequest) -> Result<vigil_domain::Contact> {
        nothing()
    }
    fn add_user(&self, _: NewUserRequest) -> Result<UserView> {
        nothing()
    }
    fn order_threshold(
        &self,
        _: &str,
        _: ThresholdOrderRequest,
        _: &str,
    ) -> Result<ThresholdOrder> {
        nothing()
    }
    fn ack_link(&self, _: &str, _: bool) -> Result<AckLinkView> {
        nothing()
    }
    fn revoke_token(&self, _: i64, _: &str) -> Result<()> {
        nothing()
    }
    fn set_user_enabled(&self, _: &str, _: bool, _: &str) -> Result<()> {
        nothing()
    }
    fn edit_contact(
        &self,
        _: i64,
        _: crate::ContactEditRequest,
        _: &str,
    ) -> Result<vigil_domain::Contact> {
        nothing()
    }
    fn remove_contact(&self, _: i64, _: &str) -> Result<()> {
        nothing()
    }
    fn remove_device(&self, _: &str, _: &str) -> Result<()> {
        nothing()
    }
    fn edit_patient(
        &self,
        _: &str,
        _: crate::PatientEditRequest,
        _: &str,
    ) -> Result<vigil_domain::Patient> {
        nothing()
    }
    fn edit_device(&self, _: &str, _: crate::DeviceEditRequest, _: &str) -> Result<()> {
        Ok(())
    }
    fn remove_patient(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
}

impl crate::Auth for Stub {
    fn token_access(&self, token: &str) -> Result<Option<Access>> {
        Ok(match token {
            "clin" => Some(clinician(None)),
            "admin" => Some(Access {
                name: "token:admin".into(),
                admin: true,
                scope: Scope::All,
                csrf: None,
                lang: None,
                sound: true,
            }),
            _ => None,
        })
    }
    fn login(&self, _: &str, _: &str) -> Result<Option<(String, String)>> {
        Ok(None)
    }
    fn session_access(&self, token: &str) -> Result<Option<Access>> {
        Ok((token == "sess").then(|| clinician(Some("csrf-ok"))))
    }
    fn logout(&self, _: &str) -> Result<()> {
        Ok(())
    }
    fn set_sound(&self, _: &str, _: bool) -> Result<()> {
        Ok(())
    }
    fn set_language(&self, _: &str, _: vigil_domain::Lang) -> Result<()> {
        Ok(())
    }
}

impl crate::Operations for Stub {
    fn metrics_text(&self) -> String {
        "vigil_up 1\n".into()
    }
    fn readiness(&self) -> Vec<(&'static str, bool)> {
        vec![("store", true)]
    }
}

fn app() -> axum::Router {
    let (live, _) = tokio::sync::broadcast::channel(16);
    router(AppState::new(
        Arc::new(Stub),
        live,
        crate::http::Settings {
            session_ttl: std::time::Duration::from_secs(3600),
            secure_cookie: false,
            tz: chrono_tz::Asia::Ho_Chi_Minh,
            metrics_public: false,
        },
    ))
}

async fn send(req: Request<Body>) -> (StatusCode, String) {
    let res = app().oneshot(req).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn get(path: &str, auth: Option<&str>) -> Request<Body> {
    let mut r = Request::get(path);
    match auth {
        Some(c) if c.starts_with("vigil_session=") => r = r.header(header::COOKIE, c),
        Some(t) => r = r.header(header::AUTHORIZATION, format!("Bearer {t}")),
        None => {}
    }
    r.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn every_api_route_needs_credentials_and_pages_send_to_the_login() {
    for path in [
        "/api/v1/patients",
        "/api/v1/alerts",
        "/api/v1/me",
        "/metrics",
        "/ward",
        "/red-alerts",
    ] {
        assert_eq!(
            send(get(path, None)).await.0,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        assert_eq!(
            send(get(path, Some("wrong"))).await.0,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    for path in [
        "/",
        "/alerts",
        "/admin",
        "/patients/p1",
        "/reports/alert-burden",
    ] {
        let (status, _) = send(get(path, None)).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
    }
    for path in [
        "/healthz",
        "/login",
        "/static/app.js",
        "/api/v1/openapi.json",
    ] {
        assert_eq!(send(get(path, None)).await.0, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn admin_routes_refuse_clinicians() {
    for path in [
        "/api/v1/rejected",
        "/api/v1/devices",
        "/api/v1/users",
        "/api/v1/facilities",
    ] {
        assert_eq!(
            send(get(path, Some("clin"))).await.0,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(
            send(get(path, Some("admin"))).await.0,
            StatusCode::OK,
            "{path}"
        );
    }
    let (status, _) = send(get("/admin", Some("vigil_session=sess"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn another_facilitys_patient_and_alert_are_unknown() {
    let (status, _) = send(get(
        "/api/v1/patients/p2/readings?metric=spo2",
        Some("clin"),
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        send(get(
            "/api/v1/patients/p1/readings?metric=spo2",
            Some("clin")
        ))
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        send(get("/api/v1/alerts/7", Some("clin"))).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, body) = send(get("/api/v1/patients", Some("clin"))).await;
    assert!(body.contains("p1") && !body.contains("p2"), "{body}");
}

/// Issue #21, the API gaps: one patient by id (404 outside the caller's facilities), an
/// unknown route answered in JSON, an unknown metric answered with the valid ones.
#[tokio::test]
async fn one_patient_unknown_routes_and_unknown_metrics_answer_usefully() {
    let (status, body) = send(get("/api/v1/patients/p1", Some("clin"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["patient"]["id"], "p1");
    let (status, _) = send(get("/api/v1/patients/p2", Some("clin"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = send(get("/api/v1/no-such-thing", Some("clin"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let v: serde_json::Value = serde_json::from_str(&body).expect("a JSON body");
    assert_eq!(v["error"], "route GET /api/v1/no-such-thing not found");

    let (status, body) = send(get(
        "/api/v1/patients/p1/readings?metric=mood",
        Some("clin"),
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("unknown metric") && body.contains("spo2") && body.contains("heart_rate"),
        "{body}"
    );
}

#[tokio::test]
async fn cookie_changes_need_the_sessions_csrf_token() {
    let post = |csrf: Option<&str>| {
        let mut r = Request::post("/api/v1/alerts/7/ack")
            .header(header::COOKIE, "vigil_session=sess")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(c) = csrf {
            r = r.header("X-CSRF-Token", c);
        }
        r.body(Body::from("{}")).unwrap()
    };
    assert_eq!(send(post(None)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(send(post(Some("csrf-bad"))).await.0, StatusCode::FORBIDDEN);
    // The right token passes the check; the alert is then another facility's: 404.
    assert_eq!(send(post(Some("csrf-ok"))).await.0, StatusCode::NOT_FOUND);
    // A bearer token carries no ambient authority: no CSRF token needed.
    let r = Request::post("/api/v1/alerts/7/ack")
        .header(header::AUTHORIZATION, "Bearer clin")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(send(r).await.0, StatusCode::NOT_FOUND);
    // A sign-in posted from another site is refused.
    let r = Request::post("/login")
        .header(header::HOST, "vigil.local")
        .header(header::ORIGIN, "https://evil.example")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("username=a&password=b"))
        .unwrap();
    assert_eq!(send(r).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_ward_view_escapes_what_people_and_devices_typed() {
    let (status, html) = send(get("/", Some("vigil_session=sess"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; Bà A"),
        "{html}"
    );
    assert!(
        !html.contains("<script>alert(1)") && !html.contains("<i>ấp"),
        "{html}"
    );
    assert!(!html.contains("Ông B"), "another facility's patient");
}
