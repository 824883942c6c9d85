//! Issue #2, "Tests that must exist and pass": the first vertical slice end to end.

use crate::util::{register, require_tool, Device, Vigil};
use serde_json::json;
use std::time::{Duration, Instant};

fn readings_topic(device: &str) -> String {
    format!("vigil/v1/{device}/readings")
}

#[test]
fn reading_is_stored_and_served_by_the_api() {
    let v = Vigil::start();
    let f = register(&v, "pat-a", "pulse_oximeter");
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).expect("device connects");
    let acked = Instant::now();
    dev.publish(
        &readings_topic(&f.device),
        r#"{"metric":"spo2","value":95,"unit":"%","ts":"2026-11-22T08:15:00+07:00"}"#,
    );
    // The PUBACK came after the commit, so the reading is visible at once; allow 1 s anyway.
    let path = format!(
        "/api/v1/patients/{}/readings?metric=spo2&from=2026-11-21T00:00:00Z&to=2026-11-23T00:00:00Z",
        f.patient
    );
    let body = loop {
        let (status, body) = v.get(&path, &f.token);
        assert_eq!(status, 200, "{body}");
        if !body["readings"].as_array().unwrap().is_empty()
            || acked.elapsed() > Duration::from_secs(1)
        {
            break body;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(body["patient_id"], f.patient);
    assert_eq!(body["metric"], "spo2");
    let r = &body["readings"].as_array().unwrap();
    assert_eq!(r.len(), 1, "{body}");
    assert_eq!(r[0]["value"], 95.0);
    assert_eq!(r[0]["unit"], "%");
    assert_eq!(r[0]["device_id"], f.device);
    assert_eq!(r[0]["ts"], "2026-11-22T01:15:00Z");

    // The patient list shows the latest value; a normal SpO₂ raises nothing.
    let (_, patients) = v.get("/api/v1/patients", &f.token);
    let p = &patients["patients"][0];
    assert_eq!(p["id"], f.patient);
    assert_eq!(p["latest"]["spo2"]["value"], 95.0);
    assert_eq!(p["status"], "ok");
    // NEWS2 from that one vital (SpO₂ 95 scores 1), partial: the other six are unknown.
    assert_eq!(p["news2"]["total"], 1, "{p}");
    assert_eq!(p["news2"]["partial"], true);
    assert_eq!(p["news2"]["missing"].as_array().unwrap().len(), 6);
    let (_, alerts) = v.get("/api/v1/alerts?state=open", &f.token);
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 0);
}

#[test]
fn redelivered_reading_is_stored_once() {
    let v = Vigil::start();
    let f = register(&v, "pat-dup", "wearable");
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    let msg =
        r#"{"ts":1763774100000,"readings":[{"metric":"heart_rate","value":72,"unit":"/min"}]}"#;
    dev.publish(&readings_topic(&f.device), msg);
    dev.publish(&readings_topic(&f.device), msg);
    let (_, body) = v.get(
        &format!(
            "/api/v1/patients/{}/readings?metric=heart_rate&from=2025-11-21T00:00:00Z",
            f.patient
        ),
        &f.token,
    );
    assert_eq!(body["readings"].as_array().unwrap().len(), 1, "{body}");
    assert!(v.metrics().contains("vigil_readings_duplicate_total 1"));
    // Same device-supplied `seq` (a resend with a re-stamped time): still stored once.
    let with_seq = |ts: u64| format!(r#"{{"metric":"heart_rate","value":75,"seq":42,"ts":{ts}}}"#);
    dev.publish(&readings_topic(&f.device), &with_seq(1763774200000));
    dev.publish(&readings_topic(&f.device), &with_seq(1763774260000));
    let (_, body) = v.get(
        &format!(
            "/api/v1/patients/{}/readings?metric=heart_rate&from=2025-11-21T00:00:00Z",
            f.patient
        ),
        &f.token,
    );
    assert_eq!(body["readings"].as_array().unwrap().len(), 2, "{body}");
    assert!(v.metrics().contains("vigil_readings_duplicate_total 2"));
}

#[test]
fn wrong_password_and_unknown_device_are_refused() {
    let v = Vigil::start();
    let f = register(&v, "pat-b", "thermometer");
    assert!(Device::connect(v.mqtt, &f.device, "not-the-secret").is_err());
    assert!(Device::connect(v.mqtt, "no-such-device", &f.password).is_err());
    assert!(Device::connect(v.mqtt, &f.device, &f.password).is_ok());
    assert!(
        v.metrics().contains("vigil_mqtt_auth_failures_total 2"),
        "{}",
        v.metrics()
    );
}

#[test]
fn publishing_under_another_device_is_not_stored() {
    let v = Vigil::start();
    let a = register(&v, "pat-c", "pulse_oximeter");
    let b = register(&v, "pat-d", "pulse_oximeter");
    let mut dev_a = Device::connect(v.mqtt, &a.device, &a.password).unwrap();
    // A publishes as B: acknowledged (MQTT 3.1.1 has no negative PUBACK) but never stored.
    dev_a.publish(
        &readings_topic(&b.device),
        r#"{"metric":"spo2","value":85}"#,
    );
    let (_, body) = v.get(
        &format!("/api/v1/patients/{}/readings?metric=spo2", b.patient),
        &a.token,
    );
    assert_eq!(body["readings"].as_array().unwrap().len(), 0, "{body}");
    let (_, alerts) = v.get("/api/v1/alerts", &a.token);
    assert_eq!(
        alerts["alerts"].as_array().unwrap().len(),
        0,
        "no alert from a forged reading"
    );
    let (_, rej) = v.get("/api/v1/rejected", &a.token);
    let r = &rej["rejected"][0];
    assert_eq!(r["reason"], "topic_not_allowed", "{rej}");
    assert_eq!(r["device_id"], a.device);
    assert_eq!(r["topic"], readings_topic(&b.device));
}

#[test]
fn malformed_json_is_rejected_and_counted_and_the_next_reading_is_stored() {
    let v = Vigil::start();
    let f = register(&v, "pat-e", "thermometer");
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    dev.publish(
        &readings_topic(&f.device),
        r#"{"metric":"temperature","value":37.1"#,
    );
    dev.publish(
        &readings_topic(&f.device),
        r#"{"metric":"temperature","value":37.2,"unit":"Cel"}"#,
    );
    let metrics = v.metrics();
    assert!(
        metrics.contains("vigil_messages_rejected_total{reason=\"malformed_json\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vigil_readings_stored_total 1"),
        "{metrics}"
    );
    let (_, body) = v.get(
        &format!("/api/v1/patients/{}/readings?metric=temperature", f.patient),
        &f.token,
    );
    let r = body["readings"].as_array().unwrap();
    assert_eq!(r.len(), 1, "{body}");
    assert_eq!(r[0]["value"], 37.2);
    assert_eq!(
        r[0]["flags"],
        json!(["ts_received"]),
        "no device time: marked"
    );
    let (_, rej) = v.get("/api/v1/rejected", &f.token);
    let first = &rej["rejected"][0];
    assert_eq!(first["reason"], "malformed_json");
    assert_eq!(first["device_id"], f.device);
    assert_eq!(
        first["payload_excerpt"],
        r#"{"metric":"temperature","value":37.1"#
    );
    assert!(
        v.log().contains("malformed_json"),
        "the rejection is logged with its reason"
    );
}

#[test]
fn low_spo2_raises_exactly_one_red_alert_and_one_email() {
    let v = Vigil::start();
    let f = register(&v, "pat-f", "pulse_oximeter");
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    dev.publish(
        &readings_topic(&f.device),
        r#"{"metric":"spo2","value":85,"unit":"%"}"#,
    );
    // A second low reading updates the same alert: one open alert per (patient, rule).
    dev.publish(
        &readings_topic(&f.device),
        r#"{"metric":"spo2","value":84,"unit":"%"}"#,
    );
    let (status, body) = v.get("/api/v1/alerts?state=open", &f.token);
    assert_eq!(status, 200);
    let alerts = body["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{body}");
    let a = &alerts[0];
    assert_eq!(a["patient_id"], f.patient);
    assert_eq!(a["rule"], "spo2_low");
    assert_eq!(a["severity"], "red");
    assert_eq!(a["state"], "open");
    assert_eq!(a["value"], 85.0);
    assert!(a["opened_at"].as_str().unwrap().ends_with('Z'));

    // The outbox loop writes the e-mail shortly after the commit.
    let deadline = Instant::now() + Duration::from_secs(10);
    while v.outbox_files().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let files = v.outbox_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        eml.contains("To: ") && eml.contains("family.pat-f@example.org"),
        "{eml}"
    );
    assert!(eml.contains("Message-ID: <alert-"), "{eml}");
    assert!(v
        .metrics()
        .contains("vigil_alerts_raised_total{severity=\"red\"} 1"));

    // Acknowledge through the API, with a note; the alert stays active but acknowledged.
    let id = a["id"].as_i64().unwrap();
    let (status, body) = v.post(
        &format!("/api/v1/alerts/{id}/ack"),
        &f.token,
        json!({"note": "gọi điện cho gia đình"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["alert"]["state"], "acknowledged");
    assert_eq!(body["alert"]["note"], "gọi điện cho gia đình");
    let (_, open) = v.get("/api/v1/alerts?state=open", &f.token);
    assert_eq!(open["alerts"].as_array().unwrap().len(), 0);
    let (_, acked) = v.get("/api/v1/alerts?state=acknowledged", &f.token);
    assert_eq!(
        acked["alerts"][0]["acknowledged_by"],
        format!("token:test-{}", f.patient)
    );
}

#[test]
fn fall_event_raises_a_red_alert() {
    // Without a cancel window the alert is raised with the event (rules.rs tests the window).
    let v = Vigil::start_env(&["run"], &[("VIGIL_RULES_FALL_CANCEL_SECONDS", "0")]);
    let f = register(&v, "pat-g", "fall_detector");
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    dev.publish(
        &format!("vigil/v1/{}/events", f.device),
        r#"{"event":"fall"}"#,
    );
    let (_, body) = v.get("/api/v1/alerts?state=open", &f.token);
    assert_eq!(body["alerts"][0]["rule"], "fall", "{body}");
    assert_eq!(body["alerts"][0]["severity"], "red");
}

#[test]
fn api_requires_credentials() {
    let v = Vigil::start();
    for path in [
        "/api/v1/patients",
        "/api/v1/alerts",
        "/api/v1/rejected",
        "/api/v1/patients/x/readings?metric=spo2",
    ] {
        match ureq::get(&v.url(path)).call() {
            Err(ureq::Error::Status(401, _)) => {}
            other => panic!("{path}: expected 401, got {other:?}"),
        }
        match ureq::get(&v.url(path))
            .set("Authorization", "Bearer vgl_wrong")
            .call()
        {
            Err(ureq::Error::Status(401, _)) => {}
            other => panic!("{path} with a bad token: expected 401, got {other:?}"),
        }
    }
    assert_eq!(ureq::get(&v.url("/healthz")).call().unwrap().status(), 200);
}

#[test]
fn dashboard_login_gives_a_session_that_the_api_accepts() {
    let v = Vigil::start();
    let out = v.admin_raw(
        &["user", "add", "--name", "bs.lan", "--password-stdin"],
        Some("mật-khẩu-dài\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    // Wrong password: 401 and no cookie.
    match agent
        .post(&v.url("/login"))
        .send_form(&[("username", "bs.lan"), ("password", "sai")])
    {
        Err(ureq::Error::Status(401, r)) => assert!(r.header("set-cookie").is_none()),
        other => panic!("expected 401, got {other:?}"),
    }
    let r = agent
        .post(&v.url("/login"))
        .send_form(&[("username", "bs.lan"), ("password", "mật-khẩu-dài")])
        .expect("login");
    assert_eq!(r.status(), 303);
    let cookies = r.all("set-cookie");
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("vigil_session="))
        .expect("session cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let csrf_cookie = cookies
        .iter()
        .find(|c| c.starts_with("vigil_csrf="))
        .expect("CSRF cookie");
    assert!(
        !csrf_cookie.contains("HttpOnly"),
        "the page's script reads it"
    );
    let csrf = csrf_cookie.split(';').next().unwrap()["vigil_csrf=".len()..].to_string();
    let pair = cookie.split(';').next().unwrap().to_string();
    let page = agent.get(&v.url("/")).set("Cookie", &pair).call().unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.into_string().unwrap().contains("/static/app.js"));
    let api = agent
        .get(&v.url("/api/v1/patients"))
        .set("Cookie", &pair)
        .call()
        .unwrap();
    assert_eq!(api.status(), 200);
    // A state-changing request on the cookie needs the session's CSRF token (issue #6).
    let post = |token: Option<&str>| {
        // `Connection: close`: a refused request's body is left unread, so the server does not
        // keep that connection; a pooled reuse would race its closing (ureq retries only GETs).
        let mut req = agent
            .post(&v.url("/api/v1/alerts/999/ack"))
            .set("Cookie", &pair)
            .set("Connection", "close");
        if let Some(t) = token {
            req = req.set("X-CSRF-Token", t);
        }
        match req.send_string("{}") {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(post(None), 403, "no token");
    assert_eq!(
        post(Some("0123456789abcdef0123456789abcdef")),
        403,
        "a wrong token"
    );
    assert_eq!(
        post(Some(&csrf)),
        404,
        "the right token reaches the handler"
    );
    // A login form posted from another site is refused.
    match agent
        .post(&v.url("/login"))
        .set("Origin", "https://evil.example")
        .send_form(&[("username", "bs.lan"), ("password", "mật-khẩu-dài")])
    {
        Err(ureq::Error::Status(403, _)) => {}
        other => panic!("expected 403, got {other:?}"),
    }
    // Without the cookie the dashboard sends you to the login page.
    let anon = agent.get(&v.url("/")).call().unwrap();
    assert_eq!(anon.status(), 303);
    assert_eq!(anon.header("location"), Some("/login"));
}

#[test]
fn a_standard_client_mosquitto_pub_can_publish() {
    if !require_tool("mosquitto_pub") {
        return;
    }
    let v = Vigil::start();
    let f = register(&v, "pat-h", "bp_monitor");
    let status = std::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &v.mqtt.to_string(), "-q", "1", "-u", &f.device, "-P", &f.password])
        .args(["-i", &format!("{}-mosquitto-pub", f.device), "-t", &readings_topic(&f.device)])
        .args(["-m", r#"{"readings":[{"metric":"bp_systolic","value":185,"unit":"mm[Hg]"},{"metric":"bp_diastolic","value":95,"unit":"mm[Hg]"}]}"#])
        .status()
        .expect("run mosquitto_pub");
    assert!(status.success());
    let (_, body) = v.get(
        &format!("/api/v1/patients/{}/readings?metric=bp_systolic", f.patient),
        &f.token,
    );
    assert_eq!(body["readings"][0]["value"], 185.0, "{body}");
    let (_, alerts) = v.get("/api/v1/alerts?state=open", &f.token);
    assert_eq!(alerts["alerts"][0]["rule"], "bp_systolic_high", "{alerts}");
    // A wrong password is refused by a standard client too.
    let refused = std::process::Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &v.mqtt.to_string(),
            "-q",
            "1",
            "-u",
            &f.device,
            "-P",
            "wrong",
        ])
        .args(["-t", &readings_topic(&f.device), "-m", "{}"])
        .output()
        .expect("run mosquitto_pub");
    assert!(!refused.status.success());
}

#[test]
fn a_worse_reading_escalates_the_same_alert_and_only_red_emails_the_family() {
    let v = Vigil::start();
    let f = register(&v, "pat-i", "pulse_oximeter");
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    dev.publish(
        &readings_topic(&f.device),
        r#"{"metric":"spo2","value":92}"#,
    );
    let (_, amber) = v.get("/api/v1/alerts?state=open", &f.token);
    assert_eq!(amber["alerts"].as_array().unwrap().len(), 1, "{amber}");
    assert_eq!(amber["alerts"][0]["severity"], "amber");
    assert_eq!(amber["alerts"][0]["rule"], "spo2_below_target");
    let id = amber["alerts"][0]["id"].clone();
    let (s, _) = v.post(&format!("/api/v1/alerts/{id}/ack"), &f.token, json!({}));
    assert_eq!(s, 200);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        v.outbox_files().is_empty(),
        "amber alerts do not e-mail families"
    );

    dev.publish(
        &readings_topic(&f.device),
        r#"{"metric":"spo2","value":86}"#,
    );
    let (_, all) = v.get("/api/v1/alerts", &f.token);
    let alerts = all["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "escalated, not duplicated: {all}");
    assert_eq!(alerts[0]["id"], id);
    assert_eq!(alerts[0]["severity"], "red");
    assert_eq!(alerts[0]["rule"], "spo2_low");
    assert_eq!(
        alerts[0]["state"], "open",
        "an acknowledged alert that worsens is reopened"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while v.outbox_files().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(v.outbox_files().len(), 1);
}

#[test]
fn a_device_cannot_subscribe_to_other_devices_readings() {
    let v = Vigil::start();
    let a = register(&v, "pat-j", "pulse_oximeter");
    let b = register(&v, "pat-k", "pulse_oximeter");
    let mut spy = Device::connect(v.mqtt, &a.device, &a.password).unwrap();
    assert!(
        !spy.subscribe("vigil/v1/#"),
        "a wildcard over all devices is refused"
    );
    assert!(!spy.subscribe(&format!("vigil/v1/{}/readings", b.device)));
    assert!(
        spy.subscribe(&format!("vigil/v1/{}/#", a.device)),
        "its own topics are fine"
    );
    let mut dev_b = Device::connect(v.mqtt, &b.device, &b.password).unwrap();
    dev_b.publish(
        &readings_topic(&b.device),
        r#"{"metric":"spo2","value":97}"#,
    );
    assert_eq!(
        spy.received(Duration::from_millis(500)),
        Vec::<String>::new()
    );
}

#[test]
fn late_and_clock_skewed_readings_are_stored_flagged_and_late_ones_raise_no_alert() {
    let v = Vigil::start();
    let f = register(&v, "pat-l", "pulse_oximeter");
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    // Six hours old (a hub flushing its buffer): stored at its own time, no alert.
    dev.publish(
        &readings_topic(&f.device),
        r#"{"metric":"spo2","value":85,"ts":"2026-01-01T00:00:00Z"}"#,
    );
    // A clock set a year ahead: stored at the receive time, flagged.
    dev.publish(
        &readings_topic(&f.device),
        r#"{"metric":"spo2","value":97,"ts":"2030-01-01T00:00:00Z"}"#,
    );
    let (_, body) = v.get(
        &format!(
            "/api/v1/patients/{}/readings?metric=spo2&from=2025-12-31T00:00:00Z",
            f.patient
        ),
        &f.token,
    );
    let r = body["readings"].as_array().unwrap();
    assert_eq!(r.len(), 2, "{body}");
    assert_eq!(r[0]["ts"], "2026-01-01T00:00:00Z");
    assert_eq!(r[0]["flags"], json!(["late"]));
    assert_eq!(r[1]["flags"], json!(["clock_skew"]));
    assert!(!r[1]["ts"].as_str().unwrap().starts_with("2030"));
    let (_, alerts) = v.get("/api/v1/alerts", &f.token);
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 0, "{alerts}");
    let devices = v.admin(&["device", "list"]);
    assert!(
        devices["devices"][0]["clock_skew_at"].is_string(),
        "{devices}"
    );
    let m = v.metrics();
    assert!(
        m.contains("vigil_readings_flagged_total{flag=\"late\"} 1"),
        "{m}"
    );
}

#[test]
fn disabled_devices_and_rotated_secrets_are_refused() {
    let v = Vigil::start();
    let f = register(&v, "pat-m", "thermometer");
    assert!(Device::connect(v.mqtt, &f.device, &f.password).is_ok());
    let rotated = v.admin(&["device", "rotate-secret", "--id", &f.device]);
    let new_password = rotated["password"].as_str().unwrap();
    assert_ne!(new_password, f.password);
    assert!(
        Device::connect(v.mqtt, &f.device, &f.password).is_err(),
        "old secret refused"
    );
    assert!(Device::connect(v.mqtt, &f.device, new_password).is_ok());
    v.admin(&["device", "disable", "--id", &f.device]);
    assert!(
        Device::connect(v.mqtt, &f.device, new_password).is_err(),
        "disabled device refused"
    );
    v.admin(&["device", "enable", "--id", &f.device]);
    assert!(Device::connect(v.mqtt, &f.device, new_password).is_ok());
}

#[test]
fn senml_packs_are_accepted_on_the_same_topic() {
    let v = Vigil::start();
    let f = register(&v, "pat-s", "hub");
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    // RFC 8428: base name and time, SpO₂ as a ratio, blood pressure in pascal, a battery level.
    dev.publish(
        &readings_topic(&f.device),
        r#"[{"bn":"urn:dev:mac:0024befffe804ff1:","bt":1764000000,"n":"spo2","u":"%","v":0.86},
            {"n":"bp_systolic","u":"Pa","v":17332,"t":1},
            {"n":"heart_rate","u":"beat/min","v":88,"t":2},
            {"n":"battery","u":"%EL","v":41}]"#,
    );
    let get = |m: &str| {
        v.get(
            &format!(
                "/api/v1/patients/{}/readings?metric={m}&from=2025-11-01T00:00:00Z",
                f.patient
            ),
            &f.token,
        )
        .1
    };
    assert_eq!(get("spo2")["readings"][0]["value"], 86.0);
    assert_eq!(get("spo2")["readings"][0]["ts"], "2025-11-24T16:00:00Z");
    assert_eq!(get("bp_systolic")["readings"][0]["value"], 130.0);
    assert_eq!(get("heart_rate")["readings"][0]["value"], 88.0);
    assert_eq!(v.admin(&["device", "list"])["devices"][0]["battery"], 41.0);
    // A label ending in `_` rejects the whole pack (RFC 8428 §4.4).
    dev.publish(
        &readings_topic(&f.device),
        r#"[{"n":"spo2","v":0.99,"t":-1,"x_":1}]"#,
    );
    let (_, rej) = v.get("/api/v1/rejected", &f.token);
    assert_eq!(rej["rejected"][0]["reason"], "malformed_senml");
}
