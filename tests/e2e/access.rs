//! Issue #6: facilities, roles and sign-in limits against the real binary. A clinician of one
//! facility cannot read another facility's patient by id — through the API, an alert id, or
//! the live stream — and the admin routes refuse clinicians.

use crate::util::{https_request, login, make_certs, require_tool, Device, Vigil};
use serde_json::Value;
use std::io::BufRead;
use std::time::{Duration, Instant};

fn get(v: &Vigil, path: &str, cookie: &str) -> (u16, Value) {
    match ureq::get(&v.url(path)).set("Cookie", cookie).call() {
        Ok(r) => (r.status(), r.into_json().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("{e}"),
    }
}

fn add_user(v: &Vigil, args: &[&str]) {
    let out = v.admin_raw(
        &[&["user", "add", "--password-stdin"], args].concat(),
        Some("mật-khẩu-dài\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn device(v: &Vigil, patient: &str) -> (String, Device) {
    let d = v.admin(&[
        "device",
        "add",
        "--patient",
        patient,
        "--kind",
        "pulse_oximeter",
    ]);
    let id = d["id"].as_str().unwrap().to_string();
    let dev = Device::connect(v.mqtt, &id, d["password"].as_str().unwrap()).unwrap();
    (id, dev)
}

fn publish(dev: &mut (String, Device), value: f64) {
    let topic = format!("vigil/v1/{}/readings", dev.0);
    dev.1
        .publish(&topic, &format!(r#"{{"metric":"spo2","value":{value}}}"#));
}

#[test]
fn a_clinician_sees_only_their_facilitys_patients_alerts_and_live_events() {
    let v = Vigil::start();
    v.admin(&[
        "facility",
        "add",
        "--id",
        "tyt-p7",
        "--name",
        "Trạm y tế Phường 7",
    ]);
    v.admin(&[
        "facility",
        "add",
        "--id",
        "ttyt-q3",
        "--name",
        "TTYT Quận 3",
    ]);
    v.admin(&[
        "patient",
        "add",
        "--id",
        "pa",
        "--name",
        "Bà A",
        "--facility",
        "tyt-p7",
    ]);
    v.admin(&[
        "patient",
        "add",
        "--id",
        "pb",
        "--name",
        "Ông B",
        "--facility",
        "ttyt-q3",
    ]);
    add_user(&v, &["--name", "bs.a", "--facility", "tyt-p7"]);
    add_user(&v, &["--name", "admin", "--admin"]);
    let (a, _) = login(&v, "bs.a", "mật-khẩu-dài").unwrap();
    let (admin, _) = login(&v, "admin", "mật-khẩu-dài").unwrap();

    // The live stream of facility A's clinician, opened before anything happens.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    {
        let (url, cookie) = (v.url("/api/v1/stream"), a.clone());
        std::thread::spawn(move || {
            let r = ureq::get(&url).set("Cookie", &cookie).call().unwrap();
            for line in std::io::BufReader::new(r.into_reader()).lines() {
                let Ok(line) = line else { return };
                if let Some(data) = line.strip_prefix("data:") {
                    if tx.send(data.trim().to_string()).is_err() {
                        return;
                    }
                }
            }
        });
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut db = device(&v, "pb");
    let mut da = device(&v, "pa");
    publish(&mut db, 85.0); // red alert for B's patient, first
    publish(&mut da, 96.0);

    // Facility A's live stream carries A's reading and nothing of B's.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ev = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("A's reading on the stream");
        assert!(
            !ev.contains("\"pb\""),
            "B's event reached A's clinician: {ev}"
        );
        if ev.contains("\"pa\"") {
            break;
        }
    }

    let (status, p) = get(&v, "/api/v1/patients", &a);
    assert_eq!(status, 200);
    let ids: Vec<&str> = p["patients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["pa"]);
    assert_eq!(p["patients"][0]["facility_id"], "tyt-p7");
    for path in [
        "/api/v1/patients/pb/readings?metric=spo2",
        "/api/v1/patients/pb/thresholds",
        "/api/v1/patients/nobody/thresholds",
    ] {
        let (status, body) = get(&v, path, &a);
        assert_eq!(status, 404, "{path}: {body}");
    }
    let (_, all) = get(&v, "/api/v1/alerts", &admin);
    let b_alert = all["alerts"][0]["id"]
        .as_i64()
        .expect("B's alert, seen by the admin");
    let (_, mine) = get(&v, "/api/v1/alerts", &a);
    assert!(mine["alerts"].as_array().unwrap().is_empty(), "{mine}");
    let (status, _) = get(&v, &format!("/api/v1/alerts/{b_alert}"), &a);
    assert_eq!(
        status, 404,
        "another facility's alert is as unknown as a missing one"
    );
    let (status, _) = get(&v, "/api/v1/patients/pb/readings?metric=spo2", &admin);
    assert_eq!(status, 200, "admins see every facility");

    // The pages are scoped the same way: A's clinician sees A's patient and alert list only;
    // the admin sees both, grouped by facility (issue #6).
    let html = |path: &str, cookie: &str| {
        ureq::get(&v.url(path))
            .set("Cookie", cookie)
            .call()
            .unwrap()
            .into_string()
            .unwrap()
    };
    for path in [
        "/",
        "/ward",
        "/alerts?state=any",
        "/reports/alert-burden?days=30",
        // The red-alert banner every page shows (issue #21).
        "/red-alerts",
    ] {
        let page = html(path, &a);
        assert!(page.contains(r#"data-patient="pa""#) || !path.contains("ward") && path != "/");
        assert!(
            !page.contains("Ông B") && !page.contains(r#""pb""#),
            "{path} shows B's patient to A's clinician"
        );
    }
    assert!(
        !html("/", &a).contains("data-facility="),
        "one facility, no groups"
    );
    let page = html("/", &admin);
    let p7 = page
        .find(r#"<tbody data-facility="tyt-p7">"#)
        .expect("a group for P7");
    let q3 = page
        .find(r#"<tbody data-facility="ttyt-q3">"#)
        .expect("a group for Q3");
    assert!(q3 < p7, "Q3's group (a red patient) first");
    assert!(page.contains(r#"data-patient="pb""#) && page.contains("Ông B"));
    // The admin's facility filter narrows the ward to one.
    let page = html("/ward?facility=tyt-p7", &admin);
    assert!(page.contains(r#"data-patient="pa""#) && !page.contains(r#"data-patient="pb""#));
    // Another facility's alert page is as unknown as a missing one; the admin sees it.
    match ureq::get(&v.url(&format!("/alerts/{b_alert}")))
        .set("Cookie", &a)
        .call()
    {
        Err(ureq::Error::Status(404, _)) => {}
        other => panic!("expected 404, got {other:?}"),
    }
    assert!(html(&format!("/alerts/{b_alert}"), &admin).contains("Ông B"));
    assert!(
        html("/red-alerts", &admin).contains("Ông B"),
        "the administrator's banner has B's red alert"
    );
    // Without a session the live part answers 401 (the script goes to the login page).
    match ureq::get(&v.url("/ward")).call() {
        Err(ureq::Error::Status(401, _)) => {}
        other => panic!("expected 401, got {other:?}"),
    }

    // Admin routes refuse clinicians.
    let (status, body) = get(&v, "/api/v1/rejected", &a);
    assert_eq!(status, 403, "{body}");
    assert_eq!(get(&v, "/api/v1/rejected", &admin).0, 200);

    // A facility's API token sees that facility, as a clinician.
    let t = v.admin(&[
        "token",
        "create",
        "--name",
        "p7-integration",
        "--facility",
        "tyt-p7",
    ]);
    let (status, body) = v.get("/api/v1/patients", t["token"].as_str().unwrap());
    assert_eq!(status, 200);
    assert_eq!(body["patients"].as_array().unwrap().len(), 1);
    assert_eq!(
        v.get("/api/v1/rejected", t["token"].as_str().unwrap()).0,
        403
    );
}

/// Issue #15 (replacing issue #6's lockout): failures slow the guesser down, doubling, but the
/// right password works again seconds later — nobody can keep a clinician out for long.
#[test]
fn wrong_passwords_slow_the_guesser_down_without_locking_the_name() {
    let v = Vigil::start();
    add_user(&v, &["--name", "bs.c"]);
    for _ in 0..3 {
        assert_eq!(login(&v, "bs.c", "wrong-password").unwrap_err(), 401);
    }
    // Three free; then a wait of 1 s, 2 s, 4 s… for this name from this address.
    assert_eq!(login(&v, "bs.c", "mật-khẩu-dài").unwrap_err(), 429);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(login(&v, "bs.c", "wrong-password").unwrap_err(), 401);
    assert_eq!(login(&v, "bs.c", "wrong-password").unwrap_err(), 429);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert!(login(&v, "bs.c", "mật-khẩu-dài").is_ok());
}

#[test]
fn the_dashboard_is_served_over_https_with_a_secure_cookie() {
    if !require_tool("openssl") {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let (cert, key) = (
        certs.path().join("server.crt"),
        certs.path().join("server.key"),
    );
    let v = Vigil::start_env(
        &["run"],
        &[
            ("VIGIL_HTTP_TLS_CERT", cert.to_str().unwrap()),
            ("VIGIL_HTTP_TLS_KEY", key.to_str().unwrap()),
        ],
    );
    let ca = certs.path().join("ca.crt");
    let get = |path: &str| {
        https_request(
            v.http,
            &ca,
            &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        )
    };
    let (status, body) = get("/healthz");
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("ok\n"), "{body}");
    // Plain HTTP on the same port gets nothing useful.
    assert!(ureq::get(&v.url("/healthz")).call().is_err());
    // The session cookie is Secure over HTTPS.
    add_user(&v, &["--name", "bs.tls"]);
    let form = "username=bs.tls&password=m%E1%BA%ADt-kh%E1%BA%A9u-d%C3%A0i";
    let (status, head) = https_request(
        v.http,
        &ca,
        &format!(
            "POST /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    );
    assert_eq!(status, 303, "{head}");
    let cookie = head
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: vigil_session=")
        })
        .unwrap_or_else(|| panic!("{head}"));
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // Browsers keep to HTTPS (RFC 6797; issue #15).
    assert!(
        head.to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{head}"
    );
    // Plain HTTP: no HSTS header (it would be ignored, and is wrong there).
    let plain = Vigil::start();
    let r = ureq::get(&plain.url("/healthz")).call().unwrap();
    assert_eq!(r.header("strict-transport-security"), None);
}

/// `/api/v1/openapi.json` describes the API that exists: every path in it answers (401 without
/// credentials where the document says it needs them, never 404), and every route docs/api.md
/// documents is in it.
#[test]
fn the_openapi_document_matches_the_routes_and_the_docs() {
    let v = Vigil::start();
    let r = ureq::get(&v.url("/api/v1/openapi.json")).call().unwrap();
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc: Value = r.into_json().unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    // Every operation has its own operationId (issue #21: client generators need them).
    let mut ids = std::collections::BTreeSet::new();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let id = op["operationId"].as_str();
            assert!(
                id.is_some_and(|id| ids.insert(id.to_string())),
                "{method} {path}: operationId {id:?} missing or repeated"
            );
        }
    }
    for (path, ops) in paths {
        let concrete = path.replace("{id}", "1");
        for (method, op) in ops.as_object().unwrap() {
            let public = op["security"].as_array().is_some_and(|s| s.is_empty());
            let req = ureq::request(&method.to_uppercase(), &v.url(&concrete));
            let status = match req.call() {
                Ok(r) => r.status(),
                Err(ureq::Error::Status(code, _)) => code,
                Err(e) => panic!("{method} {path}: {e}"),
            };
            if public {
                assert_eq!(status, 200, "{method} {path}");
            } else {
                assert_eq!(
                    status, 401,
                    "{method} {path} must exist and need credentials"
                );
            }
        }
    }
    let api_md = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md"),
    )
    .unwrap();
    for line in api_md.lines().filter(|l| l.starts_with("### ")) {
        for part in line
            .split('`')
            .filter(|p| p.starts_with("GET ") || p.starts_with("POST "))
        {
            let (method, path) = part.split_once(' ').unwrap();
            let path = path.split('?').next().unwrap();
            let op = &paths
                .get(path)
                .unwrap_or_else(|| panic!("{path} (docs/api.md) is not in openapi.json"))
                [method.to_lowercase()];
            assert!(
                op.is_object(),
                "{method} {path} (docs/api.md) is not in openapi.json"
            );
        }
    }
    // A third-party validator (issue #21): the document as served is valid OpenAPI 3.0 —
    // schema, references, unique operationIds.
    if let Some(python) = crate::util::openapi_validator() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("openapi.json");
        std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
        let run = std::process::Command::new(python)
            .args(["-m", "openapi_spec_validator", "--schema", "3.0"])
            .arg(&file)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success() && said.contains(": OK"),
            "openapi-spec-validator: {said}{}",
            String::from_utf8_lossy(&run.stderr)
        );
        // It does find faults: the same document with a dangling reference fails.
        let mut broken = doc.clone();
        broken["paths"]["/api/v1/me"]["get"]["responses"]["200"]["content"]["application/json"]
            ["schema"] = serde_json::json!({"$ref": "#/components/schemas/NoSuchSchema"});
        std::fs::write(&file, serde_json::to_vec(&broken).unwrap()).unwrap();
        let run = std::process::Command::new(crate::util::openapi_validator().unwrap())
            .args(["-m", "openapi_spec_validator", "--schema", "3.0"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(!run.status.success(), "a dangling $ref passed");
    }
}

#[test]
fn the_patient_page_shows_charts_alerts_and_thresholds_to_whoever_may_see_the_patient() {
    let v = Vigil::start();
    v.admin(&["facility", "add", "--id", "f1", "--name", "Facility 1"]);
    v.admin(&["facility", "add", "--id", "f2", "--name", "Facility 2"]);
    let name = "<script>alert(1)</script> Bà Hoa";
    v.admin(&[
        "patient",
        "add",
        "--id",
        "hoa",
        "--name",
        name,
        "--facility",
        "f1",
    ]);
    v.admin(&[
        "patient",
        "add",
        "--id",
        "other",
        "--name",
        "Other",
        "--facility",
        "f2",
    ]);
    add_user(&v, &["--name", "bs.f1", "--facility", "f1"]);
    let (cookie, _) = login(&v, "bs.f1", "mật-khẩu-dài").unwrap();
    let mut dev = device(&v, "hoa");
    publish(&mut dev, 96.0);
    publish(&mut dev, 85.0);
    let page = |path: &str, cookie: Option<&str>| {
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        let mut req = agent.get(&v.url(path));
        if let Some(c) = cookie {
            req = req.set("Cookie", c);
        }
        match req.call() {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
            Err(e) => panic!("{e}"),
        }
    };
    // The red alert is in before the page is asked for.
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&v, "/api/v1/alerts", &cookie).1["alerts"]
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "no alert");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, html) = page("/patients/hoa?lang=en", Some(&cookie));
    assert_eq!(status, 200, "{html}");
    assert!(
        !html.contains("<script>alert(1)"),
        "the name must be escaped"
    );
    assert!(html.contains("&lt;script&gt;"));
    for want in [
        "Vital signs",
        "data-metric=\"spo2\"",
        "<svg",
        "band-red",
        "class=\"marker\"",
        "spo2_low",
        "status-red",
        "id=\"order\"",
    ] {
        assert!(html.contains(want), "{want:?} missing");
    }
    let (_, vi) = page("/patients/hoa?range=30d&lang=vi", Some(&cookie));
    assert!(vi.contains("Chỉ số sinh tồn") && vi.contains("aria-current=\"page\">30 ngày"));
    assert_eq!(
        page("/patients/other", Some(&cookie)).0,
        404,
        "another facility's patient"
    );
    assert_eq!(page("/patients/nobody", Some(&cookie)).0, 404);
    let (status, _) = page("/patients/hoa", None);
    assert_eq!(status, 303, "signed out: to the login page");
}

/// Administration from the dashboard (issue #6): an administrator registers a patient, a device
/// (its MQTT password in the answer, once — and it works), a contact and a clinician; the
/// administration page lists them escaped, with the device's rejected messages; clinicians
/// get 403 for all of it.
#[test]
fn an_administrator_registers_patients_devices_contacts_and_users_from_the_dashboard() {
    let v = Vigil::start();
    add_user(&v, &["--name", "admin", "--admin"]);
    add_user(&v, &["--name", "bs.c"]);
    let (admin, admin_csrf) = login(&v, "admin", "mật-khẩu-dài").unwrap();
    let (clin, clin_csrf) = login(&v, "bs.c", "mật-khẩu-dài").unwrap();
    let post = |path: &str, cookie: &str, csrf: &str, body: Value| -> (u16, Value) {
        // `Connection: close`: refused bodies are left unread and their connection not kept.
        match ureq::post(&v.url(path))
            .set("Cookie", cookie)
            .set("X-CSRF-Token", csrf)
            .set("Connection", "close")
            .send_json(body)
        {
            Ok(r) => (r.status(), r.into_json().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
            Err(e) => panic!("{e}"),
        }
    };
    let patient = serde_json::json!({"id": "pn", "name": "<script>x</script> Bà N",
        "area": "Tổ 5", "tags": ["copd", "Lives-Alone"]});
    assert_eq!(
        post("/api/v1/patients", &clin, &clin_csrf, patient.clone()).0,
        403
    );
    let (status, body) = post("/api/v1/patients", &admin, &admin_csrf, patient);
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["patient"]["tags"],
        serde_json::json!(["copd", "lives-alone"])
    );
    let (status, body) = post(
        "/api/v1/patients",
        &admin,
        &admin_csrf,
        serde_json::json!({"name": "X", "tags": ["no spaces"]}),
    );
    assert_eq!(status, 400, "a bad tag is refused: {body}");

    // A device: its credentials come once, and they work over MQTT.
    let dev_req =
        serde_json::json!({"patient_id": "pn", "kind": "pulse_oximeter", "interval": "5m"});
    assert_eq!(
        post("/api/v1/devices", &clin, &clin_csrf, dev_req.clone()).0,
        403
    );
    let (status, body) = post("/api/v1/devices", &admin, &admin_csrf, dev_req);
    assert_eq!(status, 201, "{body}");
    let d = &body["device"];
    let (id, password) = (d["id"].as_str().unwrap(), d["password"].as_str().unwrap());
    assert_eq!(d["username"], id);
    assert_eq!(d["topic"], format!("vigil/v1/{id}/readings"));
    let (_, list) = get(&v, "/api/v1/devices", &admin);
    assert!(
        !list.to_string().contains(password),
        "the password is not kept: {list}"
    );
    let mut dev = Device::connect(v.mqtt, id, password).expect("the new credentials work");
    dev.publish(
        &format!("vigil/v1/{id}/readings"),
        r#"{"metric":"spo2","value":97}"#,
    );
    dev.publish(
        &format!("vigil/v1/{id}/readings"),
        r#"{"metric":"spo2","value":"a lot"}"#,
    );
    // Device-supplied text with markup: kept for inspection, shown as text.
    dev.publish(
        &format!("vigil/v1/{id}/readings"),
        "<script>alert(1)</script>",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, r) = get(&v, "/api/v1/patients/pn/readings?metric=spo2", &admin);
        if r["readings"].as_array().is_some_and(|a| a.len() == 1) {
            break;
        }
        assert!(Instant::now() < deadline, "the reading was not stored: {r}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A contact and a clinician.
    let (status, body) = post(
        "/api/v1/patients/pn/contacts",
        &admin,
        &admin_csrf,
        serde_json::json!({"name": "Chị Lan", "email": "lan@example.org", "tier": "secondary"}),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["contact"]["lang"], "vi");
    let (status, body) = post(
        "/api/v1/patients/pn/contacts",
        &admin,
        &admin_csrf,
        serde_json::json!({"name": "X", "email": "not an address"}),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(
        "/api/v1/users",
        &admin,
        &admin_csrf,
        serde_json::json!({"name": "bs.moi", "password": "ngắn"}),
    );
    assert_eq!(status, 400, "a short password: {body}");
    let (status, body) = post(
        "/api/v1/users",
        &admin,
        &admin_csrf,
        serde_json::json!({"name": "bs.moi", "password": "mật-khẩu-mới-dài"}),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"]["facilities"], serde_json::json!(["default"]));
    assert!(login(&v, "bs.moi", "mật-khẩu-mới-dài").is_ok());
    let (status, _) = post(
        "/api/v1/users",
        &admin,
        &admin_csrf,
        serde_json::json!({"name": "bs.moi", "password": "mật-khẩu-mới-dài"}),
    );
    assert_eq!(status, 409, "the name is taken");

    // The page: everything listed, escaped; the device's rejected message with its reason.
    let html = |cookie: &str, path: &str| match ureq::get(&v.url(path)).set("Cookie", cookie).call()
    {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(html(&clin, "/admin").0, 403);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&v, &format!("/api/v1/rejected?device={id}"), &admin).1["rejected"]
        .as_array()
        .map_or(0, Vec::len)
        < 2
    {
        assert!(Instant::now() < deadline, "both bad messages kept");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, page) = html(&admin, &format!("/admin?device={id}"));
    assert_eq!(status, 200);
    assert!(
        page.contains("&lt;script&gt;x&lt;&#x2f;script&gt; Bà N") && !page.contains("<script>x")
    );
    for text in [
        &format!(r#"data-device="{id}""#),
        "lan@example.org",
        r#"data-user="bs.moi""#,
        "Tổ 5",
    ] {
        assert!(page.contains(text), "{text} missing from the page");
    }
    let rejected = &page[page
        .find(r#"id="admin-rejected""#)
        .expect("rejected messages")..];
    assert!(rejected.contains(id), "{rejected}");
    assert!(
        rejected.contains("&lt;script&gt;alert(1)") && !rejected.contains("<script>alert"),
        "the payload is escaped: {rejected}"
    );
    for path in ["/api/v1/devices", "/api/v1/users", "/api/v1/facilities"] {
        assert_eq!(get(&v, path, &clin).0, 403, "{path}");
        assert_eq!(get(&v, path, &admin).0, 200, "{path}");
    }
}
