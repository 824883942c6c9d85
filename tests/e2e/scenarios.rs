//! Issue #5's scenario tests: scripted timelines in `tests/scenarios/*.toml` (hypoxia, BP
//! crisis confirmed and not, fever over baseline, weight gain, falls, a silent device, flapping
//! SpO₂, a hub flushing old readings) replayed through the real gateway, with the alerts
//! asserted through the API and the e-mails through a real SMTP server (aiosmtpd).
//!
//! Scenario time: each step's `at` is an offset from the scenario's anchor, which is placed so
//! the latest reading is 30 s in the past (or 30 s ago, when every step is before it) (readings carry their times: the rules see the
//! scripted timeline, not the replay's speed). Events carry no time (the receive time): the
//! fall cancel window runs on the clock (`cancel_seconds`). `wait` sleeps after a step.

use crate::util::{aiosmtpd_python, Device, Smtpd, Vigil};
use chrono::{DateTime, Duration as Span, Utc};
use serde::Deserialize;
use serde_json::Value;
use std::time::{Duration, Instant};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    name: String,
    #[allow(dead_code)]
    description: String,
    /// `rules.fall_cancel_seconds` for this scenario.
    cancel_seconds: Option<u32>,
    patient: Vec<Patient>,
    step: Vec<Step>,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Patient {
    id: String,
    device: String,
    interval: Option<String>,
    #[serde(default)]
    contacts: Vec<Contact>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Contact {
    name: String,
    email: String,
    lang: String,
    role: String,
    tier: Option<String>,
    notify: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    at: Option<String>,
    patient: String,
    readings: Option<Series>,
    batch: Option<Vec<One>>,
    event: Option<String>,
    wait: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Series {
    metric: String,
    values: Vec<f64>,
    every: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct One {
    metric: String,
    value: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    alerts: usize,
    emails: usize,
    stored_readings: Option<u64>,
    #[serde(default)]
    alert: Vec<ExpectAlert>,
    #[serde(default)]
    email: Vec<ExpectEmail>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectAlert {
    patient: String,
    rule: String,
    severity: String,
    state: Option<String>,
    linked_readings: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectEmail {
    to: String,
    subject_contains: String,
    #[serde(default)]
    body_contains: Vec<String>,
    count: Option<usize>,
}

/// `"90s"`, `"5m"`, `"-3h"`, `"4d"` as a signed span.
fn span(s: &str) -> Span {
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let at = s.find(|c: char| !c.is_ascii_digit()).expect("a unit");
    let n: i64 = s[..at].parse().expect("a number");
    let d = match &s[at..] {
        "s" => Span::seconds(n),
        "m" => Span::minutes(n),
        "h" => Span::hours(n),
        "d" => Span::days(n),
        u => panic!("unit {u:?}"),
    };
    if neg {
        -d
    } else {
        d
    }
}

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match ok() {
            Ok(()) => return,
            Err(why) if Instant::now() > deadline => panic!("{what}: {why}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn run(file: &str) {
    let Some(py) = aiosmtpd_python() else { return };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(file);
    let sc: Scenario = toml::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let smtp = Smtpd::start(&py, None);
    let port = smtp.port.to_string();
    let cancel = sc.cancel_seconds.unwrap_or(30).to_string();
    let v = Vigil::start_env(
        &["run"],
        &[
            ("VIGIL_SMTP_HOST", "127.0.0.1"),
            ("VIGIL_SMTP_PORT", &port),
            ("VIGIL_SMTP_SECURITY", "none"),
            ("VIGIL_RULES_FALL_CANCEL_SECONDS", &cancel),
            // Scenarios must not depend on the hour they run at.
            ("VIGIL_NOTIFY_QUIET_HOURS", "none"),
        ],
    );
    let token = v.admin(&["token", "create", "--name", "scenario"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut devices = std::collections::HashMap::new();
    for p in &sc.patient {
        v.admin(&[
            "patient",
            "add",
            "--name",
            &format!("Patient {}", p.id),
            "--id",
            &p.id,
        ]);
        for c in &p.contacts {
            let mut args = vec![
                "contact",
                "add",
                "--patient",
                &p.id,
                "--name",
                &c.name,
                "--email",
                &c.email,
                "--lang",
                &c.lang,
                "--role",
                &c.role,
            ];
            if let Some(t) = &c.tier {
                args.extend(["--tier", t]);
            }
            if let Some(n) = &c.notify {
                args.extend(["--notify", n]);
            }
            v.admin(&args);
        }
        let mut args = vec!["device", "add", "--patient", &p.id, "--kind", &p.device];
        if let Some(i) = &p.interval {
            args.extend(["--interval", i]);
        }
        let d = v.admin(&args);
        let id = d["id"].as_str().unwrap().to_string();
        let dev = Device::connect(v.mqtt, &id, d["password"].as_str().unwrap()).unwrap();
        devices.insert(p.id.clone(), (id, dev));
    }

    // Place the anchor so the latest reading is 30 s old.
    let end_of = |s: &Step| -> Span {
        let at = s.at.as_deref().map(span).unwrap_or_default();
        match &s.readings {
            Some(r) => at + span(r.every.as_deref().unwrap_or("0s")) * (r.values.len() as i32 - 1),
            None => at,
        }
    };
    // Steps all in the past ("-3h") stay relative to now.
    let latest = sc
        .step
        .iter()
        .map(end_of)
        .max()
        .unwrap_or_default()
        .max(Span::zero());
    let anchor: DateTime<Utc> = Utc::now() - latest - Span::seconds(30);
    for s in &sc.step {
        let (id, dev) = devices
            .get_mut(&s.patient)
            .expect("a patient of the scenario");
        let at = anchor + s.at.as_deref().map(span).unwrap_or_default();
        let topic = |kind: &str| format!("vigil/v1/{id}/{kind}");
        if let Some(r) = &s.readings {
            let every = span(r.every.as_deref().unwrap_or("0s"));
            for (i, value) in r.values.iter().enumerate() {
                let ts = (at + every * i as i32).to_rfc3339();
                dev.publish(
                    &topic("readings"),
                    &format!(r#"{{"metric":"{}","value":{value},"ts":"{ts}"}}"#, r.metric),
                );
            }
        }
        if let Some(b) = &s.batch {
            let readings: Vec<Value> = b
                .iter()
                .map(|o| serde_json::json!({"metric": o.metric, "value": o.value}))
                .collect();
            dev.publish(
                &topic("readings"),
                &serde_json::json!({"ts": at.timestamp_millis(), "readings": readings}).to_string(),
            );
        }
        if let Some(e) = &s.event {
            dev.publish(
                &topic("events"),
                &serde_json::json!({ "event": e }).to_string(),
            );
        }
        if let Some(w) = &s.wait {
            std::thread::sleep(span(w).to_std().unwrap());
        }
    }

    // The expected alerts and e-mails arrive...
    let e = &sc.expect;
    let alerts = || -> Vec<Value> {
        let (status, body) = v.get("/api/v1/alerts", &token);
        assert_eq!(status, 200, "{body}");
        body["alerts"].as_array().unwrap().clone()
    };
    wait_for(&format!("{}: alerts", sc.name), 20, || {
        let a = alerts();
        for want in &e.alert {
            let found = a.iter().any(|x| {
                x["patient_id"] == want.patient.as_str()
                    && x["rule"] == want.rule.as_str()
                    && x["severity"] == want.severity.as_str()
                    && want.state.as_deref().is_none_or(|s| x["state"] == s)
            });
            if !found {
                return Err(format!(
                    "no {} {} alert for {} in {a:?}",
                    want.severity, want.rule, want.patient
                ));
            }
        }
        (a.len() >= e.alerts)
            .then_some(())
            .ok_or(format!("{} alerts: {a:?}", a.len()))
    });
    wait_for(&format!("{}: e-mails", sc.name), 20, || {
        let n = smtp.messages().len();
        (n >= e.emails)
            .then_some(())
            .ok_or(format!("{n} of {} e-mails", e.emails))
    });
    // ... and nothing more comes: one alert is one alert, not one per crossing.
    std::thread::sleep(Duration::from_secs(2));
    let a = alerts();
    assert_eq!(a.len(), e.alerts, "{}: alerts {a:#?}", sc.name);
    let mail = smtp.messages();
    assert_eq!(mail.len(), e.emails, "{}: e-mails {mail:#?}", sc.name);
    for want in &e.alert {
        let Some(n) = want.linked_readings else {
            continue;
        };
        let x = a
            .iter()
            .find(|x| x["patient_id"] == want.patient.as_str() && x["rule"] == want.rule.as_str())
            .unwrap();
        let (_, d) = v.get(&format!("/api/v1/alerts/{}", x["id"]), &token);
        assert_eq!(
            d["readings"].as_array().unwrap().len(),
            n,
            "{}: {d}",
            sc.name
        );
    }
    for want in &e.email {
        let to_them: Vec<&Value> = mail
            .iter()
            .filter(|m| m["to"].as_str().unwrap().contains(&want.to))
            .collect();
        assert_eq!(
            to_them.len(),
            want.count.unwrap_or(1),
            "{}: to {}: {mail:#?}",
            sc.name,
            want.to
        );
        for m in to_them {
            let subject = m["subject"].as_str().unwrap();
            assert!(
                subject.contains(&want.subject_contains),
                "{}: {subject}",
                sc.name
            );
            let text = m["text"].as_str().unwrap();
            for b in &want.body_contains {
                assert!(text.contains(b), "{}: {b:?} not in {text}", sc.name);
            }
        }
    }
    if let Some(n) = e.stored_readings {
        assert!(
            v.metrics()
                .contains(&format!("vigil_readings_stored_total {n}\n")),
            "{}: {}",
            sc.name,
            v.metrics()
        );
    }
}

#[test]
fn hypoxia_episode() {
    run("hypoxia.toml");
}

#[test]
fn hypertensive_crisis_confirmed() {
    run("bp_crisis_confirmed.toml");
}

#[test]
fn hypertensive_crisis_not_confirmed() {
    run("bp_crisis_unconfirmed.toml");
}

#[test]
fn fever_in_an_older_adult() {
    run("fever_older_adult.toml");
}

#[test]
fn weight_gain_in_heart_failure() {
    run("weight_gain.toml");
}

#[test]
fn falls_cancelled_and_not() {
    run("fall.toml");
}

#[test]
fn a_device_goes_silent() {
    run("device_silent.toml");
}

#[test]
fn flapping_spo2_gives_one_alert_not_thirty() {
    run("flapping_spo2.toml");
}

#[test]
fn a_hub_flushing_old_readings_alerts_nobody() {
    run("hub_flush.toml");
}
