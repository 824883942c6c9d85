//! Issue #15: no single bad input, client or neighbour may silence the red-alert chain. One
//! test per finding, against the real binary (and real Mosquitto and SMTP servers where the
//! finding is about them).

use crate::util::{aiosmtpd_python, register, Device, Smtpd, Vigil};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn readyz(v: &Vigil) -> (u16, Value) {
    match ureq::get(&v.url("/readyz")).call() {
        Ok(r) => (r.status(), r.into_json().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap()),
        Err(e) => panic!("/readyz: {e}"),
    }
}

fn red_spo2(v: &Vigil, device: &str, password: &str) {
    let mut dev = Device::connect(v.mqtt, device, password).unwrap();
    dev.publish(
        &format!("vigil/v1/{device}/readings"),
        r#"{"metric":"spo2","value":85,"unit":"%"}"#,
    );
}

/// Finding 1: a contact name with a line break is refused at every entry naming the field; a
/// stored value that cannot make an e-mail (an older version's row) sets that one message
/// aside with its reason, raises `notification_failed` at once and makes `/readyz` report the
/// outbox down — while every other e-mail, of this patient and of others, is delivered and no
/// stored value injects a header.
#[test]
fn one_bad_contact_cannot_silence_other_emails() {
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
    let a = register(&v, "pat-a", "pulse_oximeter");
    let b = register(&v, "pat-b", "pulse_oximeter");

    // The CLI refuses a carriage return in a name, naming the field.
    let out = v.admin_raw(
        &[
            "contact",
            "add",
            "--patient",
            "pat-a",
            "--name",
            "Trần\rVăn",
            "--email",
            "tran@example.org",
            "--lang",
            "vi",
            "--role",
            "family",
        ],
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("contact name contains a control character"),
        "{err}"
    );
    // So does the API (and the admin page, which posts to it); a bidi override too.
    for name in ["x\r\nBcc: evil@example.org", "\u{202e}nahK"] {
        let (status, body) = v.post(
            "/api/v1/patients/pat-a/contacts",
            &a.token,
            json!({"name": name, "email": "x@example.org", "lang": "en", "role": "family"}),
        );
        assert_eq!(status, 400, "{body}");
        assert!(body.to_string().contains("contact name contains"), "{body}");
    }
    // A patient's name and a user's name are checked the same way.
    let out = v.admin_raw(&["patient", "add", "--name", "An\nBình"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("patient name contains"));

    // Rows an older version let in: a name with a header in it, and an address lettre cannot
    // parse. Written straight into the store, as they would be found after an upgrade.
    {
        let db = rusqlite::Connection::open(v.data_dir().join("vigil.db")).unwrap();
        db.busy_timeout(Duration::from_secs(10)).unwrap();
        db.execute_batch(
            "INSERT INTO contacts (patient_id, name, email, lang, role, tier, created_at)
             VALUES ('pat-a', 'x\r\nBcc: evil@example.org', 'injected@example.org', 'en',
                     'family', 'primary', 0),
                    ('pat-a', 'Broken', 'not an address', 'en', 'family', 'primary', 0);",
        )
        .unwrap();
    }
    red_spo2(&v, &a.device, &a.password);
    red_spo2(&v, &b.device, &b.password);

    // Three e-mails go: pat-a's family (Vietnamese), the injected-name contact (its name one
    // line) and pat-b's family. The broken address is set aside.
    smtp.wait_for(3);
    std::thread::sleep(Duration::from_millis(500));
    let msgs: Vec<Value> = smtp.messages();
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    for addr in [
        "family.pat-a@example.org",
        "family.pat-b@example.org",
        "injected@example.org",
    ] {
        assert!(
            msgs.iter()
                .any(|m| m["to"].as_str().unwrap().contains(addr)),
            "no e-mail to {addr}: {msgs:?}"
        );
    }
    for m in &msgs {
        let names: Vec<&str> = m["header_names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect();
        assert!(!names.contains(&"bcc"), "{m}");
        assert!(!m["rcpt_to"].as_str().unwrap().contains("evil"), "{m}");
    }

    // The broken one is set aside with its reason, at once.
    let db = rusqlite::Connection::open(v.data_dir().join("vigil.db")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let reason: String = loop {
        let r: Option<String> = db
            .query_row(
                "SELECT last_error FROM outbox WHERE to_addr = 'not an address'
                   AND failed_at IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .ok();
        if let Some(r) = r {
            break r;
        }
        assert!(Instant::now() < deadline, "not set aside:\n{}", v.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(reason.contains("cannot be built"), "{reason}");
    // The clinicians see it: notification_failed for pat-a, and pat-a only.
    let (_, body) = v.get("/api/v1/alerts", &a.token);
    let failed: Vec<&Value> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["rule"] == "notification_failed")
        .collect();
    assert_eq!(failed.len(), 1, "{body}");
    assert_eq!(failed[0]["patient_id"], "pat-a");
    // And /readyz says the outbox is down.
    let (status, r) = readyz(&v);
    assert_eq!(status, 503, "{r}");
    assert_eq!(r["checks"]["outbox"], "down", "{r}");
    assert_eq!(r["detail"]["email"]["healthy"], false, "{r}");
    assert_eq!(r["detail"]["email"]["undeliverable"], 1, "{r}");
    assert!(!v.log().contains("panicked"), "{}", v.log());
}
