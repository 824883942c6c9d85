//! Issue #5: rules with timing, from an operator's rule file, against the real binary. Time is
//! the readings' own (device timestamps a few minutes in the past), so the test controls the
//! clock without waiting.

use crate::util::{register, Device, Vigil};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::time::{Duration, Instant};

const RULES: &str = r#"
[[rule]]
id = "spo2_low"
severity = "critical"
metric = "spo2"
below = 90
for = "60s"
clear_at_or_above = 92
clear_for = "2m"
max_gap = "30s"
source = "test: Welch 2011 persistence, hysteresis"
"#;

fn alerts(v: &Vigil, token: &str) -> Vec<Value> {
    let (status, body) = v.get("/api/v1/alerts", token);
    assert_eq!(status, 200, "{body}");
    body["alerts"].as_array().unwrap().clone()
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_timed_rule_fires_after_persisting_survives_a_crash_and_clears_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    std::fs::write(&file, RULES).unwrap();
    let mut v = Vigil::start_env(&["run"], &[("VIGIL_RULES_FILE", file.to_str().unwrap())]);
    let f = register(&v, "pat-timed", "wearable");
    let topic = format!("vigil/v1/{}/readings", f.device);
    // Whole seconds: readings are stored at millisecond precision.
    let t0 = DateTime::from_timestamp(Utc::now().timestamp() - 20 * 60, 0).unwrap();
    let publish =
        |dev: &mut Device, seconds: std::ops::RangeInclusive<i64>, value: &dyn Fn(i64) -> f64| {
            for s in seconds.step_by(5) {
                let ts = (t0 + chrono::Duration::seconds(s)).to_rfc3339();
                dev.publish(
                    &topic,
                    &format!(r#"{{"metric":"spo2","value":{},"ts":"{ts}"}}"#, value(s)),
                );
            }
        };

    // 30 s below 90: pending, no alert yet.
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    publish(&mut dev, 0..=30, &|_| 87.0);
    assert!(alerts(&v, &f.token).is_empty(), "not yet persisted 60 s");

    // The gateway crashes with the timer running; after the restart the breach goes on and the
    // alert opens at 60 s of breach, counted across the crash.
    drop(dev);
    v.kill();
    v.launch();
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    publish(&mut dev, 35..=55, &|_| 87.0);
    assert!(alerts(&v, &f.token).is_empty(), "55 s of breach");
    publish(&mut dev, 60..=60, &|_| 87.0);
    let a = alerts(&v, &f.token);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(
        (a[0]["rule"].as_str(), a[0]["severity"].as_str()),
        (Some("spo2_low"), Some("red"))
    );
    assert_eq!(a[0]["state"], "open");
    let opened: DateTime<Utc> = a[0]["opened_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(opened, t0 + chrono::Duration::seconds(60));

    // Flapping around the limit for four minutes (89, 91, 89, …): still that one alert, open —
    // 91 is between the breach (< 90) and the clear level (≥ 92).
    publish(&mut dev, 65..=300, &|s| {
        if (s / 5) % 2 == 0 {
            89.0
        } else {
            91.0
        }
    });
    let a = alerts(&v, &f.token);
    assert_eq!(a.len(), 1, "flapping gives one alert, not twenty: {a:?}");
    assert_eq!(a[0]["state"], "open");

    // ≥ 92 for two minutes resolves it, by itself, once.
    publish(&mut dev, 305..=420, &|_| 95.0);
    assert_eq!(alerts(&v, &f.token)[0]["state"], "open", "115 s of ≥ 92");
    publish(&mut dev, 425..=430, &|_| 95.0);
    wait_until("the automatic resolution", || {
        alerts(&v, &f.token)[0]["state"] == "resolved"
    });
    let a = alerts(&v, &f.token);
    assert_eq!(a.len(), 1, "{a:?}");
    let note = a[0]["note"].as_str().unwrap_or_default();
    assert!(note.starts_with("cleared: spo2 95"), "{note}");
    let resolved: DateTime<Utc> = a[0]["resolved_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(resolved, t0 + chrono::Duration::seconds(425));
}

#[test]
fn a_rule_file_with_a_mistake_stops_the_start_with_the_rule_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    std::fs::write(
        &file,
        "[[rule]]\nid = \"spo2_low\"\nseverity = \"critical\"\nmetric = \"spo2\"\nbelow = 90\nfor = \"soon\"\n",
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(crate::util::vigil_bin())
        .args(["run", "--data-dir"])
        .arg(data.path())
        .args(["--http-addr", "127.0.0.1:0", "--mqtt-addr", "127.0.0.1:0"])
        .env("VIGIL_RULES_FILE", &file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A server that accepted the file would run forever: fail instead of hanging the suite.
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("vigil started with a rule file it should have refused");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rule \"spo2_low\"") && err.contains("soon"),
        "{err}"
    );
}

fn events_of(v: &Vigil, patient: &str) -> Vec<String> {
    let db = rusqlite::Connection::open(v.data_dir().join("vigil.db")).unwrap();
    let mut st = db
        .prepare("SELECT kind FROM events WHERE patient_id = ?1 ORDER BY ts")
        .unwrap();
    let kinds = st
        .query_map([patient], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    kinds
}

/// A fall waits `rules.fall_cancel_seconds` for "I'm OK": cancelled, nothing is raised but the
/// fall stays on record; not cancelled, the red alert comes when the window closes — also when
/// the gateway crashed in the meantime.
#[test]
fn a_fall_waits_for_im_ok_and_is_raised_when_nobody_cancels_it() {
    let mut v = Vigil::start_env(&["run"], &[("VIGIL_RULES_FALL_CANCEL_SECONDS", "2")]);
    let ok = register(&v, "pat-fine", "fall_detector");
    let down = register(&v, "pat-down", "fall_detector");
    let events = |f: &crate::util::Fixture| format!("vigil/v1/{}/events", f.device);
    let mut ok_dev = Device::connect(v.mqtt, &ok.device, &ok.password).unwrap();
    let mut down_dev = Device::connect(v.mqtt, &down.device, &down.password).unwrap();
    let sent = Instant::now();
    ok_dev.publish(&events(&ok), r#"{"event":"fall"}"#);
    down_dev.publish(&events(&down), r#"{"event":"fall"}"#);
    ok_dev.publish(&events(&ok), r#"{"event":"ok"}"#);
    assert!(
        alerts(&v, &ok.token).is_empty(),
        "nothing during the window"
    );

    // The gateway crashes during the window; the waiting fall is in its store.
    drop((ok_dev, down_dev));
    v.kill();
    v.launch();
    wait_until("the uncancelled fall's alert", || {
        !alerts(&v, &down.token).is_empty()
    });
    assert!(
        sent.elapsed() >= Duration::from_secs(2),
        "not before the window closed"
    );
    std::thread::sleep(Duration::from_millis(1500)); // past the cancelled fall's window too
    let a = alerts(&v, &down.token);
    assert_eq!(
        a.len(),
        1,
        "one alert, for the patient who did not answer: {a:?}"
    );
    assert_eq!(a[0]["patient_id"], "pat-down");
    assert_eq!(
        (a[0]["rule"].as_str(), a[0]["severity"].as_str()),
        (Some("fall"), Some("red"))
    );
    // The family e-mail went with it (red alert), and only for that patient.
    wait_until("the family e-mail", || !v.outbox_files().is_empty());
    let mail: Vec<String> = v
        .outbox_files()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert!(mail[0].contains("family.pat-down@example.org"));
    // Both falls are on record, and the "I'm OK".
    assert_eq!(events_of(&v, "pat-fine"), ["fall", "ok"]);
    assert_eq!(events_of(&v, "pat-down"), ["fall"]);
}

/// The built-in BP crisis rules confirm by re-measure: one reading ≥ 180 is an amber alert
/// asking for a re-measure (no family e-mail); a second high reading within 5 minutes makes it
/// red and e-mails the family; a normal re-measure leaves it amber.
#[test]
fn a_crisis_blood_pressure_is_confirmed_by_a_re_measure() {
    let v = Vigil::start();
    let confirmed = register(&v, "pat-bp-yes", "bp_monitor");
    let unconfirmed = register(&v, "pat-bp-no", "bp_monitor");
    let t0 = DateTime::from_timestamp(Utc::now().timestamp() - 20 * 60, 0).unwrap();
    let bp = |f: &crate::util::Fixture, minutes: i64, sys: u32, dia: u32| {
        let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
        let ts = (t0 + chrono::Duration::minutes(minutes)).to_rfc3339();
        dev.publish(
            &format!("vigil/v1/{}/readings", f.device),
            &format!(
                r#"{{"readings":[{{"metric":"bp_systolic","value":{sys},"ts":"{ts}"}},{{"metric":"bp_diastolic","value":{dia},"ts":"{ts}"}}]}}"#
            ),
        );
    };
    for f in [&confirmed, &unconfirmed] {
        bp(f, 0, 186, 95);
        let a: Vec<Value> = alerts(&v, &f.token)
            .into_iter()
            .filter(|x| x["patient_id"] == f.patient.as_str())
            .collect();
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(
            (a[0]["rule"].as_str(), a[0]["severity"].as_str()),
            (Some("bp_systolic_high"), Some("amber"))
        );
        assert!(
            a[0]["message"]
                .as_str()
                .unwrap()
                .contains("re-measure within 5 min"),
            "{a:?}"
        );
    }
    bp(&confirmed, 4, 183, 96);
    bp(&unconfirmed, 4, 150, 90);
    let a = alerts(&v, &confirmed.token);
    let mine: Vec<&Value> = a
        .iter()
        .filter(|x| x["patient_id"] == "pat-bp-yes")
        .collect();
    assert_eq!(mine.len(), 1, "the same alert, escalated: {a:?}");
    assert_eq!(mine[0]["severity"], "red");
    assert_eq!(mine[0]["state"], "open");
    let theirs: Vec<&Value> = a
        .iter()
        .filter(|x| x["patient_id"] == "pat-bp-no")
        .collect();
    assert_eq!(theirs.len(), 1, "{a:?}");
    assert_eq!(
        theirs[0]["severity"], "amber",
        "a normal re-measure does not confirm it"
    );
    // Only the confirmed crisis reached a family.
    wait_until("the family e-mail", || !v.outbox_files().is_empty());
    std::thread::sleep(Duration::from_millis(300));
    let mail: Vec<String> = v
        .outbox_files()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert!(mail[0].contains("family.pat-bp-yes@example.org"));
}

/// NEWS2 from a wearable's vitals: 5 opens the patient's NEWS2 alert as amber, 7 escalates the
/// same alert to red; the score is a lower bound (consciousness and oxygen are unknown at home).
#[test]
fn news2_opens_one_patient_alert_and_escalates_it() {
    let v = Vigil::start();
    let f = register(&v, "pat-news", "wearable");
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    let topic = format!("vigil/v1/{}/readings", f.device);
    let send = |dev: &mut Device, readings: &[(&str, f64)]| {
        let items: Vec<String> = readings
            .iter()
            .map(|(m, x)| format!(r#"{{"metric":"{m}","value":{x}}}"#))
            .collect();
        dev.publish(&topic, &format!(r#"{{"readings":[{}]}}"#, items.join(",")));
    };
    let news2 = |v: &Vigil| -> Vec<Value> {
        alerts(v, &f.token)
            .into_iter()
            .filter(|a| {
                a["patient_id"] == "pat-news" && a["rule"].as_str().unwrap().starts_with("news2")
            })
            .collect()
    };
    // RR 22 (2) + SpO₂ 93 (2) + pulse 100 (1) = 5.
    send(
        &mut dev,
        &[
            ("respiratory_rate", 22.0),
            ("spo2", 93.0),
            ("heart_rate", 100.0),
        ],
    );
    // The patient's one NEWS2 alert: its rule, severity and message.
    let expect = |rule: &str, severity: &str, message: &str| {
        let a = news2(&v);
        assert_eq!(
            a.len(),
            1,
            "one NEWS2 alert, escalated, not duplicated: {a:?}"
        );
        assert_eq!(
            (a[0]["rule"].as_str(), a[0]["severity"].as_str()),
            (Some(rule), Some(severity))
        );
        let text = a[0]["message"].as_str().unwrap();
        assert!(text.starts_with(message), "{a:?}");
    };
    expect("news2_medium", "amber", "NEWS2 5 or more");
    // Pulse 115 (2) and 38.5 °C (1): 2 + 2 + 2 + 1 = 7, the same alert escalated to red.
    send(&mut dev, &[("heart_rate", 115.0), ("temperature", 38.5)]);
    expect("news2_high", "red", "NEWS2 7 or more");
    let (_, patients) = v.get("/api/v1/patients", &f.token);
    let p = patients["patients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "pat-news")
        .unwrap()
        .clone();
    assert_eq!(
        (p["news2"]["total"].as_u64(), p["news2"]["risk"].as_str()),
        (Some(7), Some("high"))
    );
}

#[test]
fn rules_check_reads_the_defaults_and_names_a_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let vigil = |args: &[&str]| {
        std::process::Command::new(crate::util::vigil_bin())
            .args(args)
            .output()
            .unwrap()
    };
    let defaults = vigil(&["rules", "defaults"]);
    assert!(defaults.status.success());
    let file = dir.path().join("rules.toml");
    std::fs::write(&file, &defaults.stdout).unwrap();
    let ok = vigil(&["rules", "check", file.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{out}");
    assert!(out.contains("24 rules, valid"), "{out}");
    assert!(out.contains("weight +2 within 72 h"), "{out}");
    assert!(
        out.contains("bp_systolic_high") && out.contains("confirmed within 300 s"),
        "{out}"
    );
    std::fs::write(
        &file,
        "[[rule]]\nid = \"x\"\nseverity = \"critical\"\nevent = \"fell\"\n",
    )
    .unwrap();
    let bad = vigil(&["rules", "check", file.to_str().unwrap()]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("rule \"x\": unknown event \"fell\""), "{err}");
}

#[test]
fn a_threshold_order_changes_one_patient_only_and_is_kept_with_who_and_why() {
    let v = Vigil::start();
    let copd = register(&v, "pat-copd", "pulse_oximeter");
    let other = register(&v, "pat-other", "pulse_oximeter");
    // From the command line (another process than the gateway)...
    let o = v.admin(&[
        "threshold",
        "set",
        "--patient",
        "pat-copd",
        "--rule",
        "spo2_low",
        "--value",
        "85",
        "--reason",
        "COPD: target 88–92 % (BTS 2017)",
        "--by",
        "bs.lan",
    ]);
    assert_eq!(o["order"]["ordered_by"], "bs.lan");
    // ... and through the API, as the caller.
    let (status, body) = v.post(
        "/api/v1/patients/pat-copd/thresholds",
        &copd.token,
        serde_json::json!({"rule": "spo2_below_target", "enabled": false, "reason": "COPD"}),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["order"]["ordered_by"], "token:test-pat-copd");
    for (bad, why) in [
        (
            serde_json::json!({"rule": "spo2_low", "threshold": 80, "reason": " "}),
            "reason",
        ),
        (
            serde_json::json!({"rule": "nope", "threshold": 80, "reason": "x"}),
            "no rule",
        ),
        (
            serde_json::json!({"rule": "sos", "threshold": 1, "reason": "x"}),
            "not a threshold",
        ),
    ] {
        let (status, body) = v.post("/api/v1/patients/pat-copd/thresholds", &copd.token, bad);
        assert_eq!(status, 400, "{body}");
        assert!(body["error"].as_str().unwrap().contains(why), "{body}");
    }

    let publish = |f: &crate::util::Fixture, value: f64| {
        let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
        dev.publish(
            &format!("vigil/v1/{}/readings", f.device),
            &format!(r#"{{"metric":"spo2","value":{value}}}"#),
        );
    };
    publish(&copd, 88.0);
    publish(&other, 88.0);
    let a = alerts(&v, &copd.token);
    assert_eq!(a.len(), 1, "only the other patient alerts at 88 %: {a:?}");
    assert_eq!(
        (a[0]["patient_id"].as_str(), a[0]["rule"].as_str()),
        (Some("pat-other"), Some("spo2_low"))
    );
    publish(&copd, 84.0);
    let a = alerts(&v, &copd.token);
    let mine: Vec<&Value> = a.iter().filter(|a| a["patient_id"] == "pat-copd").collect();
    assert_eq!(mine.len(), 1, "{a:?}");
    assert_eq!(mine[0]["rule"], "spo2_low");
    assert!(
        mine[0]["message"].as_str().unwrap().contains("< 85"),
        "{a:?}"
    );

    let (status, t) = v.get("/api/v1/patients/pat-copd/thresholds", &copd.token);
    assert_eq!(status, 200, "{t}");
    let rule = |id: &str| {
        t["thresholds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(rule("spo2_low")["when"], "< 85");
    assert_eq!(rule("spo2_low")["default_when"], "< 90");
    assert_eq!(rule("spo2_below_target")["enabled"], false);
    assert_eq!(rule("heart_rate_high")["order_id"], Value::Null);
    let orders = t["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0]["reason"], "COPD: target 88–92 % (BTS 2017)");
    let (_, t) = v.get("/api/v1/patients/pat-other/thresholds", &other.token);
    assert!(t["orders"].as_array().unwrap().is_empty());
}

#[test]
fn weight_gain_is_measured_against_the_stored_history() {
    let v = Vigil::start();
    let f = register(&v, "pat-hf", "scale");
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    let topic = format!("vigil/v1/{}/readings", f.device);
    // Two days ago (stored as history; late readings raise nothing themselves).
    let then = (Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    dev.publish(
        &topic,
        &format!(r#"{{"metric":"weight","value":70.1,"ts":"{then}"}}"#),
    );
    dev.publish(&topic, r#"{"metric":"weight","value":71.5}"#);
    assert!(alerts(&v, &f.token).is_empty(), "+1.4 kg");
    dev.publish(&topic, r#"{"metric":"weight","value":72.3}"#);
    let a = alerts(&v, &f.token);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(
        (a[0]["rule"].as_str(), a[0]["severity"].as_str()),
        (Some("weight_gain"), Some("amber"))
    );
    assert!(
        a[0]["message"].as_str().unwrap().contains("+2.2 in 3 d"),
        "{a:?}"
    );
}

#[test]
fn a_silent_device_raises_an_alert_and_speaking_again_resolves_it() {
    let v = Vigil::start();
    let f = register(&v, "pat-quiet", "hub");
    let d = v.admin(&[
        "device",
        "add",
        "--patient",
        "pat-quiet",
        "--kind",
        "wearable",
        "--interval",
        "1s",
    ]);
    let id = d["id"].as_str().unwrap().to_string();
    wait_until("the device_silent alert", || {
        alerts(&v, &f.token)
            .iter()
            .any(|a| a["rule"] == "device_silent" && a["state"] == "open")
    });
    let a = alerts(&v, &f.token);
    let mine: Vec<&Value> = a.iter().filter(|a| a["rule"] == "device_silent").collect();
    assert_eq!(mine.len(), 1, "one per device, not one per look: {a:?}");
    assert!(mine[0]["message"].as_str().unwrap().contains(&id));
    // The hub (5 min by kind) is not silent.
    assert!(!a
        .iter()
        .any(|a| a["message"].as_str().unwrap().contains(&f.device)));
    // Heard again: resolved by the system.
    let mut dev = Device::connect(v.mqtt, &id, d["password"].as_str().unwrap()).unwrap();
    dev.publish(&format!("vigil/v1/{id}/status"), r#"{"online":true}"#);
    wait_until("the automatic resolution", || {
        let (_, body) = v.get("/api/v1/alerts?state=resolved", &f.token);
        body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["rule"] == "device_silent")
    });
}

#[test]
fn repeated_breaches_make_one_alert_with_every_reading_linked_and_an_audit_trail() {
    let v = Vigil::start();
    let f = register(&v, "pat-review", "pulse_oximeter");
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    let topic = format!("vigil/v1/{}/readings", f.device);
    let t0 = Utc::now() - chrono::Duration::minutes(3);
    for (i, value) in [85.0, 95.0, 86.0, 84.0].iter().enumerate() {
        let ts = (t0 + chrono::Duration::seconds(30 * i as i64)).to_rfc3339();
        dev.publish(
            &topic,
            &format!(r#"{{"metric":"spo2","value":{value},"ts":"{ts}"}}"#),
        );
    }
    let a = alerts(&v, &f.token);
    assert_eq!(a.len(), 1, "one alert for three breaches: {a:?}");
    let id = a[0]["id"].as_i64().unwrap();
    let (status, _) = v.post(
        &format!("/api/v1/alerts/{id}/ack"),
        &f.token,
        serde_json::json!({"note": "gọi cho con gái"}),
    );
    assert_eq!(status, 200);
    wait_until("the family e-mail", || !v.outbox_files().is_empty());
    let (status, d) = v.get(&format!("/api/v1/alerts/{id}"), &f.token);
    assert_eq!(status, 200, "{d}");
    let values: Vec<f64> = d["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_f64().unwrap())
        .collect();
    assert_eq!(
        values,
        vec![85.0, 86.0, 84.0],
        "every breaching reading, not the normal one"
    );
    assert_eq!(d["readings"][0]["device_id"], f.device.as_str());
    let audit: Vec<(String, String)> = d["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["actor"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        audit,
        vec![
            ("open".to_string(), "system".to_string()),
            (
                "acknowledge".to_string(),
                "token:test-pat-review".to_string()
            )
        ]
    );
    assert_eq!(d["emails"][0]["to_name"], "Con gái");
    let (status, _) = v.get("/api/v1/alerts/999999", &f.token);
    assert_eq!(status, 404);

    // The alert-burden report counts it once, with its e-mail and its time to acknowledge.
    let (status, b) = v.get("/api/v1/reports/alert-burden?days=7", &f.token);
    assert_eq!(status, 200, "{b}");
    let rule = &b["by_rule"][0];
    assert_eq!(
        (rule["key"].as_str(), rule["alerts"].as_u64()),
        (Some("spo2_low"), Some(1))
    );
    assert_eq!(
        (rule["acknowledged"].as_u64(), rule["emails"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(rule["ack_median_s"].as_f64().unwrap() >= 0.0, "{b}");
    assert_eq!(b["by_patient"][0]["name"], "Nguyễn Văn Test");
    assert_eq!(
        v.get("/api/v1/reports/alert-burden?days=0", &f.token).0,
        400
    );
}
