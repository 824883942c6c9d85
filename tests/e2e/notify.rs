//! Issue #5, notifications: red-alert e-mails through a real SMTP server (aiosmtpd, started on
//! a free loopback port writing to a temp Maildir), checked by parsing what it received.

use crate::util::{
    aiosmtpd_python, make_certs, readyz, register, require_tool, Device, Smtpd, Vigil,
};
use serde_json::Value;
use std::time::{Duration, Instant};

const PUBLIC_URL: &str = "https://vigil.example";

/// A patient with the fixture's primary family contact (Vietnamese), a secondary family
/// contact (English) and an on-call clinician (English); then a red SpO₂ reading.
fn patient_with_contacts_and_a_red_reading(v: &Vigil, patient: &str) -> crate::util::Fixture {
    let f = register(v, patient, "pulse_oximeter");
    for (name, email, lang, role, tier) in [
        (
            "Peter Pham",
            "peter@example.org",
            "en",
            "family",
            "secondary",
        ),
        (
            "BS. Minh",
            "bs.minh@example.org",
            "en",
            "clinician",
            "primary",
        ),
    ] {
        v.admin(&[
            "contact",
            "add",
            "--patient",
            patient,
            "--name",
            name,
            "--email",
            email,
            "--lang",
            lang,
            "--role",
            role,
            "--tier",
            tier,
        ]);
    }
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    dev.publish(
        &format!("vigil/v1/{}/readings", f.device),
        r#"{"metric":"spo2","value":85,"unit":"%"}"#,
    );
    f
}

fn to(m: &Value) -> &str {
    m["to"].as_str().unwrap()
}

fn mail_to<'a>(msgs: &'a [Value], addr: &str) -> &'a Value {
    msgs.iter()
        .find(|m| to(m).contains(addr))
        .unwrap_or_else(|| panic!("no e-mail to {addr}: {msgs:?}"))
}

fn outbox_message_ids(v: &Vigil) -> Vec<String> {
    let db = rusqlite::Connection::open(v.data_dir().join("vigil.db")).unwrap();
    let mut st = db
        .prepare("SELECT message_id FROM outbox ORDER BY message_id")
        .unwrap();
    let rows = st.query_map([], |r| r.get(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

fn alerts(v: &Vigil, token: &str) -> Vec<Value> {
    let (status, body) = v.get("/api/v1/alerts", token);
    assert_eq!(status, 200, "{body}");
    body["alerts"].as_array().unwrap().clone()
}

/// (status, body) of a GET or POST to an "I'm handling it" link, without any login.
fn open_link(url: &str, post: bool) -> (u16, String) {
    let r = if post {
        ureq::post(url).call()
    } else {
        ureq::get(url).call()
    };
    match r {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("{url}: {e}"),
    }
}

#[test]
fn a_red_alert_emails_the_primary_contacts_in_their_languages_over_starttls() {
    let Some(py) = aiosmtpd_python() else { return };
    if !require_tool("openssl") {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let smtp = Smtpd::start(&py, Some(("starttls", certs.path())));
    let port = smtp.port.to_string();
    let ca = certs.path().join("ca.crt").display().to_string();
    let v = Vigil::start_env(
        &["run"],
        &[
            ("VIGIL_SMTP_HOST", "localhost"),
            ("VIGIL_SMTP_PORT", &port),
            ("VIGIL_SMTP_SECURITY", "starttls"),
            ("VIGIL_SMTP_CA_FILE", &ca),
            ("VIGIL_SMTP_FROM", "Vigil Phường 7 <canhbao@vigil.example>"),
            ("VIGIL_DASHBOARD_PUBLIC_URL", PUBLIC_URL),
        ],
    );
    patient_with_contacts_and_a_red_reading(&v, "pat-mail");

    smtp.wait_for(2);
    std::thread::sleep(Duration::from_millis(500));
    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 2, "the secondary contact waits: {msgs:?}");

    let family = mail_to(&msgs, "family.pat-mail@example.org");
    let subject = family["subject"].as_str().unwrap();
    // Issue #17: the patient's name first, what happened, at most 60 characters.
    assert_eq!(subject, "Nguyễn Văn Test: cảnh báo đỏ — SpO₂ 85 %");
    assert!(family["from"]
        .as_str()
        .unwrap()
        .contains("canhbao@vigil.example"));
    assert_eq!(family["content_type"], "multipart/alternative");
    assert_eq!(
        family["parts"],
        serde_json::json!(["text/plain", "text/html"])
    );
    let text = family["text"].as_str().unwrap();
    for want in [
        "Người bệnh: Nguyễn Văn Test",
        // Plain words and the usual range for a family (issue #17), not the rule's threshold.
        "Oxy trong máu (SpO₂): 85 % — bình thường 95–100 %",
        "(UTC+07:00)",
        "Cũng đã báo cho: BS. Minh (nhân viên y tế)",
        "115",
        "Tôi đang xử lý: https://vigil.example/ack/",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
    // Families cannot sign in to the dashboard: their link is the "I'm handling it" page.
    assert!(!text.contains("https://vigil.example/#alert-"), "{text}");
    let html = family["html"].as_str().unwrap();
    assert!(html.contains("Tôi đang xử lý") && html.contains("href=\"https://vigil.example/ack/"));
    assert!(!text.contains("báo động đỏ"));

    let clinician = mail_to(&msgs, "bs.minh@example.org");
    let subject = clinician["subject"].as_str().unwrap();
    assert_eq!(subject, "Nguyễn Văn Test: red alert — SpO₂ 85 %");
    let text = clinician["text"].as_str().unwrap();
    // Clinicians keep the clinical wording and the threshold.
    assert!(
        text.contains("SpO₂: 85 % (Alert threshold: < 90 %)"),
        "{text}"
    );
    assert!(text.contains("acknowledge it"), "{text}");
    assert!(text.contains("https://vigil.example/#alert-"), "{text}");
    assert!(
        !text.contains("/ack/"),
        "links that acknowledge are for family: {text}"
    );

    // The Message-IDs are the ones fixed in the outbox when the e-mails were queued.
    let mut received: Vec<String> = msgs
        .iter()
        .map(|m| m["message_id"].as_str().unwrap().to_string())
        .collect();
    received.sort();
    assert_eq!(received, outbox_message_ids(&v));

    let r = readyz(&v).1;
    assert_eq!(r["detail"]["email"]["transport"], "smtp", "{r}");
    assert_eq!(r["detail"]["email"]["healthy"], true, "{r}");
    assert!(v.metrics().contains("vigil_emails_sent_total 2"));
    // The password of a relay never shows; nothing about the patient is logged either.
    assert!(!v.log().contains("Nguyễn Văn Test"));
}

#[test]
fn smtp_down_when_the_alert_fires_then_a_restart_then_delivered_exactly_once() {
    let Some(py) = aiosmtpd_python() else { return };
    let mut smtp = Smtpd::prepare(&py, None);
    let port = smtp.port.to_string();
    let mut v = Vigil::start_env(
        &["run"],
        &[
            ("VIGIL_SMTP_HOST", "127.0.0.1"),
            ("VIGIL_SMTP_PORT", &port),
            ("VIGIL_SMTP_SECURITY", "none"),
            ("VIGIL_SMTP_TIMEOUT_SECONDS", "5"),
        ],
    );
    let f = register(&v, "pat-outage", "pulse_oximeter");
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    dev.publish(
        &format!("vigil/v1/{}/readings", f.device),
        r#"{"metric":"spo2","value":84}"#,
    );
    // The first attempt fails (nothing listens); the e-mail waits in the outbox.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = readyz(&v).1;
        if r["detail"]["email"]["retrying"] == 1 {
            assert!(r["detail"]["email"]["last_error"].is_string(), "{r}");
            break;
        }
        assert!(Instant::now() < deadline, "no failed attempt: {r}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(alerts(&v, &f.token).len(), 1);

    // The gateway crashes; the relay comes back; the gateway restarts and delivers the e-mail
    // it had queued (its retry is due within the 10 s backoff), once.
    v.kill();
    smtp.launch();
    v.launch();
    let msgs = smtp.wait_for(1);
    assert!(to(&msgs[0]).contains("family.pat-outage@example.org"));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(smtp.messages().len(), 1, "delivered exactly once");
    assert_eq!(
        vec![msgs[0]["message_id"].as_str().unwrap().to_string()],
        outbox_message_ids(&v)
    );
    assert_eq!(readyz(&v).1["detail"]["email"]["pending"], 0);
}

#[test]
fn no_acknowledgement_escalates_and_the_family_link_answers_for_the_family() {
    let Some(py) = aiosmtpd_python() else { return };
    let smtp = Smtpd::start(&py, None);
    let port = smtp.port.to_string();
    let v = Vigil::start_env(
        &["run"],
        &[
            ("VIGIL_SMTP_HOST", "127.0.0.1"),
            ("VIGIL_SMTP_PORT", &port),
            ("VIGIL_SMTP_SECURITY", "none"),
            ("VIGIL_DASHBOARD_PUBLIC_URL", PUBLIC_URL),
            ("VIGIL_NOTIFY_ESCALATE_AFTER_SECONDS", "2"),
            ("VIGIL_NOTIFY_REPEAT_SECONDS", "3"),
        ],
    );
    let f = patient_with_contacts_and_a_red_reading(&v, "pat-esc");
    let first = smtp.wait_for(2);
    assert!(first.iter().all(|m| !to(m).contains("peter@example.org")));

    // Nobody acknowledges: the secondary contact hears about it after the delay.
    let msgs = smtp.wait_for(3);
    let peter = mail_to(&msgs, "peter@example.org");
    assert!(peter["subject"]
        .as_str()
        .unwrap()
        .contains("red alert — SpO₂ 85 %"));
    let date =
        |m: &Value| chrono::DateTime::parse_from_rfc2822(m["date"].as_str().unwrap()).unwrap();
    let opened = date(mail_to(&msgs, "family.pat-esc@example.org"));
    assert!(
        date(peter) - opened >= chrono::Duration::seconds(2),
        "secondary only after escalate_after_seconds"
    );

    // The family link: looking does not acknowledge (mail scanners open links).
    let text = mail_to(&msgs, "family.pat-esc@example.org")["text"]
        .as_str()
        .unwrap()
        .to_string();
    let at = text.find("https://vigil.example/ack/").unwrap() + PUBLIC_URL.len();
    let path = &text[at..at + "/ack/".len() + 32];
    let link = v.url(path);
    let (status, page) = open_link(&link, false);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Tôi đang xử lý") && page.contains("method=\"post\""),
        "{page}"
    );
    // Issue #17: the page shows what is abnormal, and tap-to-call for 115.
    assert!(
        page.contains("Oxy trong máu (SpO₂): 85 % — bình thường 95–100 %")
            && page.contains("href=\"tel:115\""),
        "{page}"
    );
    assert_eq!(alerts(&v, &f.token)[0]["state"], "open");

    // Pressing the button is the family's response to the episode (issue #17): recorded as
    // theirs, not a clinical acknowledgement — the alert stays open for the clinicians, whose
    // reminders go on, while this contact and the lower family tier hear no more alarms.
    let before: Vec<Value> = smtp.messages();
    let (status, page) = open_link(&link, true);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Cảm ơn"), "{page}");
    let a = &alerts(&v, &f.token)[0];
    assert_eq!(a["state"], "open", "{a}");
    let episode = a["episode_id"].as_i64().unwrap();
    let (_, d) = v.get(&format!("/api/v1/episodes/{episode}"), &f.token);
    assert_eq!(d["episode"]["family_response"]["name"], "Con gái", "{d}");
    assert!(
        d["responses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["role"] == "family" && r["action"] == "family_response"),
        "{d}"
    );
    std::thread::sleep(Duration::from_secs(7));
    let later = smtp.messages();
    let new: Vec<&Value> = later
        .iter()
        .filter(|m| !before.iter().any(|b| b["message_id"] == m["message_id"]))
        .collect();
    assert!(
        !new.is_empty() && new.iter().all(|m| to(m).contains("bs.minh@example.org")),
        "after the family answered only the clinician is reminded: {new:#?}"
    );

    // Single use; an unknown link says so plainly.
    let (status, page) = open_link(&link, true);
    assert_eq!(status, 410);
    assert!(
        page.contains("đã được dùng") && page.contains("Con gái"),
        "{page}"
    );
    let (status, page) = open_link(&v.url("/ack/00000000000000000000000000000000"), false);
    assert_eq!(status, 404);
    assert!(
        page.contains("not valid") && !page.contains("Nguyễn"),
        "{page}"
    );
}

#[test]
fn implicit_tls_with_auth_and_the_password_from_a_file_never_logged() {
    let Some(py) = aiosmtpd_python() else { return };
    if !require_tool("openssl") {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let password = "Mật-khẩu-relay-7";
    let smtp = Smtpd::start_smtps_auth(&py, certs.path(), "vigil", password);
    let pw_file = certs.path().join("smtp-password");
    std::fs::write(&pw_file, format!("{password}\n")).unwrap();
    let port = smtp.port.to_string();
    let ca = certs.path().join("ca.crt").display().to_string();
    let v = Vigil::start_env(
        &["run"],
        &[
            ("VIGIL_SMTP_HOST", "127.0.0.1"),
            ("VIGIL_SMTP_PORT", &port),
            ("VIGIL_SMTP_SECURITY", "tls"),
            ("VIGIL_SMTP_CA_FILE", &ca),
            ("VIGIL_SMTP_USERNAME", "vigil"),
            ("VIGIL_SMTP_PASSWORD_FILE", pw_file.to_str().unwrap()),
            ("RUST_LOG", "debug"),
        ],
    );
    let f = register(&v, "pat-auth", "pulse_oximeter");
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    dev.publish(
        &format!("vigil/v1/{}/readings", f.device),
        r#"{"metric":"spo2","value":83}"#,
    );
    let msgs = smtp.wait_for(1);
    assert!(to(&msgs[0]).contains("family.pat-auth@example.org"));
    assert!(!smtp.log().contains("AUTH refused"), "{}", smtp.log());
    assert!(
        !v.log().contains(password),
        "the relay password reached the log"
    );
}

#[test]
fn non_critical_alerts_reach_the_clinician_as_one_digest_per_interval_families_not_at_all() {
    let Some(py) = aiosmtpd_python() else { return };
    let smtp = Smtpd::start(&py, None);
    let port = smtp.port.to_string();
    let v = Vigil::start_env(
        &["run"],
        &[
            ("VIGIL_SMTP_HOST", "127.0.0.1"),
            ("VIGIL_SMTP_PORT", &port),
            ("VIGIL_SMTP_SECURITY", "none"),
            ("VIGIL_NOTIFY_MIN_INTERVAL", "4s"),
            // The test must not depend on the hour it runs at.
            ("VIGIL_NOTIFY_QUIET_HOURS", "none"),
        ],
    );
    let f = register(&v, "pat-digest", "hub");
    v.admin(&[
        "contact",
        "add",
        "--patient",
        "pat-digest",
        "--name",
        "BS. Minh",
        "--email",
        "bs.minh@example.org",
        "--lang",
        "en",
        "--role",
        "clinician",
        "--notify",
        "warning",
    ]);
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    let topic = format!("vigil/v1/{}/readings", f.device);
    dev.publish(&topic, r#"{"metric":"spo2","value":92}"#);
    let first = smtp.wait_for(1);
    assert!(to(&first[0]).contains("bs.minh@example.org"), "{first:?}");
    assert!(first[0]["subject"]
        .as_str()
        .unwrap()
        .contains("Alert (amber)"));
    // Two more amber alerts within the interval: one e-mail with both, after it.
    dev.publish(&topic, r#"{"metric":"temperature","value":38.4}"#);
    dev.publish(&topic, r#"{"metric":"glucose","value":3.5}"#);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(smtp.messages().len(), 1, "held for the interval");
    let msgs = smtp.wait_for(2);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        smtp.messages().len(),
        2,
        "one digest, then nothing: {msgs:?}"
    );
    let digest = msgs
        .iter()
        .find(|m| m["subject"].as_str().unwrap().contains("2 alerts"))
        .unwrap_or_else(|| panic!("{msgs:?}"));
    let text = digest["text"].as_str().unwrap();
    assert!(
        text.contains("38.4 °C") && text.contains("3.5 mmol/L"),
        "{text}"
    );
    // The family contact (red alerts only, the default) got none of them.
    assert!(msgs.iter().all(|m| !to(m).contains("family.pat-digest")));
}

/// The latency probe behind `scripts/bench-alert-latency.sh` sees every alert and e-mail it
/// causes (the benchmark's numbers are only as good as its accounting).
#[test]
fn the_latency_probe_times_each_alert_and_email() {
    let Some(py) = aiosmtpd_python() else { return };
    let smtp = Smtpd::start(&py, None);
    let port = smtp.port.to_string();
    let v = Vigil::start_env(
        &["run"],
        &[
            ("VIGIL_SMTP_HOST", "127.0.0.1"),
            ("VIGIL_SMTP_PORT", &port),
            ("VIGIL_SMTP_SECURITY", "none"),
        ],
    );
    let mut probes = Vec::new();
    let mut token = String::new();
    for i in 0..3 {
        let f = register(&v, &format!("probe-{i}"), "pulse_oximeter");
        token = f.token.clone();
        probes.push(vigil_simulators::probe::Probe {
            device: f.device,
            password: f.password,
            patient: f.patient,
            tag: format!("family.probe-{i}@"),
        });
    }
    // A signed-in dashboard user: the extra stream clients fetch the ward view like its script.
    let out = v.admin_raw(
        &["user", "add", "--name", "bs.probe", "--password-stdin"],
        Some("mat-khau-probe\n"),
    );
    assert!(out.status.success());
    let login = ureq::AgentBuilder::new()
        .redirects(0)
        .build()
        .post(&v.url("/login"))
        .send_form(&[("username", "bs.probe"), ("password", "mat-khau-probe")])
        .unwrap();
    let cookie = login
        .all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("vigil_session="))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    let r = vigil_simulators::probe::run(vigil_simulators::probe::ProbeConfig {
        host: "127.0.0.1".into(),
        port: v.mqtt,
        http: v.url(""),
        token,
        probes,
        interval: Duration::from_millis(100),
        maildir: Some(smtp.maildir()),
        settle: Duration::from_secs(15),
        extra_streams: 2,
        ward_cookie: Some(cookie),
    })
    .unwrap();
    assert_eq!(
        r.ward_ms.len(),
        6,
        "each extra client fetched a ward view showing each patient red: {r:?}"
    );
    assert_eq!((r.alert_ms.len(), r.email_ms.len()), (3, 3), "{r:?}");
    assert_eq!(
        r.fanout_ms.len(),
        6,
        "each extra stream client saw each alert: {r:?}"
    );
    assert!(
        r.alert_ms
            .iter()
            .chain(&r.email_ms)
            .all(|ms| *ms > 0.0 && *ms < 15_000.0),
        "{r:?}"
    );
}
