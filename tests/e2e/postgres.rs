//! Issue #20: PostgreSQL as the store (`[store] url`), against a real server started by the
//! test (`crate::pgserver`).

use crate::pgserver::{require_postgres, PgServer};
use crate::util::{publish, register, register_devices, wait_sent, Device, Mosquitto, Vigil};
use std::time::{Duration, Instant};

/// One gateway with `[store] url`: the schema is created in PostgreSQL, the admin commands and
/// the server share it, a reading is stored and served, a low SpO₂ raises one red alert and one
/// e-mail, and no SQLite file appears in the data directory.
#[test]
fn a_gateway_on_postgres_stores_readings_alerts_and_emails_there() {
    if !require_postgres() {
        return;
    }
    let pg = PgServer::start();
    let url = pg.database();
    let v = Vigil::start_env(&["run"], &[("VIGIL_STORE_URL", &url)]);
    let f = register(&v, "pg-a", "pulse_oximeter");
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).expect("device connects");
    dev.publish(
        &format!("vigil/v1/{}/readings", f.device),
        r#"{"metric":"spo2","value":85,"unit":"%"}"#,
    );
    dev.publish(
        &format!("vigil/v1/{}/readings", f.device),
        r#"{"metric":"spo2","value":84,"unit":"%"}"#,
    );
    let (status, body) = v.get("/api/v1/alerts?state=open", &f.token);
    assert_eq!(status, 200, "{body}\n{}\n{}", v.log(), pg.log());
    let alerts = body["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{body}");
    assert_eq!(alerts[0]["rule"], "spo2_low");
    assert_eq!(alerts[0]["severity"], "red");

    let (_, p) = v.get("/api/v1/patients", &f.token);
    let p = p["patients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == f.patient)
        .cloned()
        .unwrap();
    assert_eq!(p["latest"]["spo2"]["value"], 84.0, "{p}");

    // The e-mail went through the outbox table in PostgreSQL.
    let deadline = Instant::now() + Duration::from_secs(10);
    while v.outbox_files().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(v.outbox_files().len(), 1, "{}", v.log());

    let db = url.rsplit('/').next().unwrap();
    let mut c = pg.client(db);
    let readings: i64 = c
        .query_one("SELECT count(*) FROM readings", &[])
        .unwrap()
        .get(0);
    assert_eq!(readings, 2);
    let sent: i64 = c
        .query_one("SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL", &[])
        .unwrap()
        .get(0);
    assert_eq!(sent, 1);
    assert!(
        !v.data_dir().join("vigil.db").exists(),
        "no SQLite file beside PostgreSQL"
    );
    // The password-less URL is logged; a password would be masked (unit-tested in the store).
    assert!(v.log().contains("store open"), "{}", v.log());
}

/// A patient with a hub, a primary and a secondary family contact; the hub's password.
fn watched_patient(v: &Vigil, id: &str) -> (String, String) {
    v.admin(&["patient", "add", "--name", id, "--id", id]);
    for (tier, who) in [("primary", "con"), ("secondary", "chau")] {
        v.admin(&[
            "contact",
            "add",
            "--patient",
            id,
            "--name",
            who,
            "--email",
            &format!("{who}.{id}@example.org"),
            "--tier",
            tier,
        ]);
    }
    let d = v.admin(&["device", "add", "--patient", id, "--kind", "hub"]);
    (
        d["id"].as_str().unwrap().to_string(),
        d["password"].as_str().unwrap().to_string(),
    )
}

/// Readings this gateway process stored (`vigil_readings_stored_total`).
fn stored_by(v: &Vigil) -> u64 {
    v.metrics()
        .lines()
        .find_map(|l| l.strip_prefix("vigil_readings_stored_total "))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

fn count(c: &mut postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap().get(0)
}

fn eventually(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Issue #20, "Proof": two gateways share a PostgreSQL store and a Mosquitto shared
/// subscription; 100 000 QoS 1 readings from 100 devices while the first gateway — the one
/// doing the background duties — is SIGKILLed mid-stream (and restarted later). Every reading
/// the broker acknowledged is stored exactly once; an SOS and a hypoxia sent during the run
/// each raise exactly one alert and one e-mail per contact; the outbox and escalation (the
/// secondary contacts' e-mails) carry on from the survivor.
#[test]
fn two_gateways_one_killed_mid_stream_store_each_reading_once_and_alert_once() {
    if !crate::util::require_tool("mosquitto") || !require_postgres() {
        return;
    }
    const DEVICES: usize = 100;
    const PER_DEVICE: u64 = 1_000;
    let total = DEVICES as u64 * PER_DEVICE;
    let pg = PgServer::start();
    let url = pg.database();
    let db = url.rsplit('/').next().unwrap().to_string();
    // Unlimited queues: the broker keeps what waits for the dead gateway's session.
    let broker = Mosquitto::start_with("max_queued_messages 0\nmax_inflight_messages 1000");
    let broker_url = format!("mqtt://127.0.0.1:{}", broker.port);
    let gateway = |name: &str| {
        Vigil::start_env(
            &["run"],
            &[
                ("VIGIL_STORE_URL", url.as_str()),
                ("VIGIL_MQTT_BROKER_URL", broker_url.as_str()),
                ("VIGIL_MQTT_CLIENT_ID", name),
                ("VIGIL_MQTT_SHARED_GROUP", "vigil"),
                // Well beyond the failover (the dead gateway's outbox lease expires after 10 s):
                // a primary e-mail still unsent at the first escalation step would rightly
                // raise `notification_failed` (seen once with 15 s on a loaded machine).
                ("VIGIL_NOTIFY_ESCALATE_AFTER_SECONDS", "30"),
                ("VIGIL_NOTIFY_REPEAT_SECONDS", "3600"),
                ("VIGIL_NOTIFY_QUIET_HOURS", "none"),
            ],
        )
    };
    // The first gateway takes every duty (it asks first).
    let mut g1 = gateway("gw-1");
    let (devices, _) = register_devices(&g1, "ha", DEVICES);
    let (sos_dev, sos_pw) = watched_patient(&g1, "sos-patient");
    let (hyp_dev, hyp_pw) = watched_patient(&g1, "hypoxia-patient");
    let g2 = gateway("gw-2");
    let mut c = pg.client(&db);
    eventually("the first gateway to hold the outbox", 20, || {
        count(&mut c, "SELECT count(*) FROM leases WHERE name = 'outbox'") == 1
    });
    let holder_before: String = c
        .query_one("SELECT holder FROM leases WHERE name = 'outbox'", &[])
        .unwrap()
        .get(0);

    let start_ms = 1_764_500_000_000;
    let (publisher, progress) = publish(broker.port, devices, 10, PER_DEVICE, 5_000, start_ms);
    wait_sent(&progress, total / 5);
    // The scripted emergencies, through the same broker.
    let mut sos = Device::connect(broker.port, &sos_dev, &sos_pw).unwrap();
    sos.publish(&format!("vigil/v1/{sos_dev}/events"), r#"{"event":"sos"}"#);
    let mut hyp = Device::connect(broker.port, &hyp_dev, &hyp_pw).unwrap();
    for v in [85, 84] {
        hyp.publish(
            &format!("vigil/v1/{hyp_dev}/readings"),
            &format!(r#"{{"metric":"spo2","value":{v},"unit":"%"}}"#),
        );
    }
    eventually("both alerts", 30, || {
        count(
            &mut c,
            "SELECT count(*) FROM alerts WHERE patient_id IN ('sos-patient', 'hypoxia-patient')",
        ) >= 2
    });
    wait_sent(&progress, total * 2 / 5);
    g1.kill();

    // The survivor carries the outbox and escalation: the secondary contacts' e-mails (30 s
    // after the alerts) come from it once the dead gateway's leases expire.
    eventually("the escalation e-mails", 90, || {
        count(
            &mut c,
            "SELECT count(*) FROM outbox o JOIN contacts k ON k.id = o.contact_id
             WHERE k.tier = 'secondary' AND o.sent_at IS NOT NULL",
        ) == 2
    });
    let holder_after: String = c
        .query_one("SELECT holder FROM leases WHERE name = 'escalation'", &[])
        .unwrap()
        .get(0);
    assert_ne!(holder_after, holder_before, "the duty moved");
    let m = g2.metrics();
    for duty in ["outbox", "escalation"] {
        assert!(
            m.contains(&format!("vigil_duty_held{{duty=\"{duty}\"}} 1")),
            "the survivor reports {duty}:\n{m}"
        );
    }
    let escalations_by_survivor = g2
        .outbox_files()
        .iter()
        .filter(|f| std::fs::read_to_string(f).unwrap().contains("chau."))
        .count();
    assert_eq!(
        escalations_by_survivor, 2,
        "the survivor sent the escalations"
    );

    // The dead gateway comes back and drains what waited for it at the broker.
    g1.launch();
    let report = publisher.join().unwrap();
    assert_eq!(report.acked, total, "the broker acknowledged every publish");
    eventually("every reading stored", 240, || {
        count(&mut c, "SELECT count(*) FROM readings r JOIN devices d ON d.num = r.device WHERE d.id LIKE 'ha-%'") as u64 >= total
    });
    // Exactly once: the store's key refuses a second copy, so the count per device is the
    // number of distinct readings; each has the value published for its time.
    let rows = c
        .query(
            "SELECT d.id, count(*), sum(CASE WHEN r.value = 60 + ((r.ts - $1) % 60) THEN 0 ELSE 1 END)
             FROM readings r JOIN devices d ON d.num = r.device
             WHERE d.id LIKE 'ha-%' GROUP BY d.id",
            &[&start_ms],
        )
        .unwrap();
    assert_eq!(rows.len(), DEVICES);
    for r in rows {
        let (id, n, wrong): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
        assert_eq!((n, wrong), (PER_DEVICE as i64, 0), "device {id}");
    }
    // One alert each, one e-mail per contact.
    for (patient, rule) in [("sos-patient", "sos"), ("hypoxia-patient", "spo2_low")] {
        let alerts = c
            .query(
                "SELECT rule, condition, severity, state, opened_at, breaches FROM alerts
                 WHERE patient_id = $1 ORDER BY id",
                &[&patient],
            )
            .unwrap();
        let rules: Vec<String> = alerts.iter().map(|r| r.get(0)).collect();
        let detail: Vec<String> = alerts
            .iter()
            .map(|r| {
                let (a, b, s, st, at, n): (String, String, String, String, i64, i64) =
                    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
                format!("{a}/{b}/{s}/{st} at {at}, {n} breaches")
            })
            .collect();
        let events: Vec<String> = c
            .query(
                "SELECT kind || ' ' || ts || ' ' || received_at FROM events WHERE patient_id = $1",
                &[&patient],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            rules,
            vec![rule.to_string()],
            "{patient}: {detail:?}; events {events:?}\n--- gateway 1\n{}\n--- gateway 2\n{}",
            g1.log(),
            g2.log()
        );
        let mails = c
            .query(
                "SELECT k.email, count(*), count(o.sent_at) FROM contacts k
                 LEFT JOIN outbox o ON o.contact_id = k.id
                 WHERE k.patient_id = $1 GROUP BY k.email ORDER BY k.email",
                &[&patient],
            )
            .unwrap();
        let mails: Vec<(String, i64, i64)> = mails
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        assert_eq!(
            mails,
            vec![
                (format!("chau.{patient}@example.org"), 1, 1),
                (format!("con.{patient}@example.org"), 1, 1)
            ]
        );
    }
    // The shared subscription split the stream: the survivor stored a part, not all of it.
    let by_g2 = stored_by(&g2);
    assert!(
        by_g2 > 0 && by_g2 < total,
        "gateway 2 stored {by_g2} of {total}"
    );
    // Four e-mails, one per outbox row. The outbox sends, then marks the row sent: a gateway
    // killed between the two has the survivor send that one again, with the same Message-ID
    // (design invariant 4), which mail clients recognise. (CI saw it once: five files.)
    let ids: Vec<String> = c
        .query(
            "SELECT o.message_id FROM outbox o JOIN contacts k ON k.id = o.contact_id
             WHERE k.patient_id IN ('sos-patient', 'hypoxia-patient') ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids.len(), 4);
    let sent = |v: &Vigil| -> Vec<String> {
        v.outbox_files()
            .iter()
            .map(|f| {
                let eml = std::fs::read_to_string(f).unwrap();
                let id = eml
                    .lines()
                    .find_map(|l| l.strip_prefix("Message-ID: "))
                    .unwrap_or_else(|| panic!("no Message-ID in {}", f.display()));
                id.trim().to_string()
            })
            .collect()
    };
    let (by_g1, by_g2) = (sent(&g1), sent(&g2));
    let mut all: Vec<String> = by_g1.iter().chain(&by_g2).cloned().collect();
    all.sort();
    all.dedup();
    assert_eq!(
        all, ids,
        "every e-mail sent is an outbox row's, and every row was sent"
    );
    for id in &ids {
        let (a, b) = (
            by_g1.iter().filter(|x| *x == id).count(),
            by_g2.iter().filter(|x| *x == id).count(),
        );
        assert!(
            a + b == 1 || (a == 1 && b == 1),
            "{id}: sent {a} times by the killed gateway, {b} by the survivor"
        );
    }
    assert!(
        g1.log().matches("connected to MQTT broker").count() >= 2,
        "the first gateway came back"
    );
}

/// The `data:` lines of a live stream, as they arrive.
fn stream_lines(v: &Vigil, header: (&str, &str)) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let r = ureq::get(&v.url("/api/v1/stream"))
        .set(header.0, header.1)
        .call()
        .expect("stream opens");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let lines = std::io::BufReader::new(r.into_reader()).lines();
        for line in lines.map_while(Result::ok) {
            if let Some(data) = line.strip_prefix("data:") {
                if tx.send(data.trim().to_string()).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Issue #20: the dashboard works against any gateway. A user made through gateway A's
/// commands signs in on gateway B (sessions are in the store), and B's live stream shows the
/// reading and the alert that A stored (A's commit NOTIFYs, B LISTENs).
#[test]
fn a_dashboard_on_one_gateway_sees_live_what_another_stored() {
    if !require_postgres() {
        return;
    }
    let pg = PgServer::start();
    let url = pg.database();
    let a = Vigil::start_env(&["run"], &[("VIGIL_STORE_URL", &url)]);
    let b = Vigil::start_env(&["run"], &[("VIGIL_STORE_URL", &url)]);
    let f = register(&a, "pg-live", "pulse_oximeter");
    let out = a.admin_raw(
        &["user", "add", "--name", "bs.lan", "--password-stdin"],
        Some("mật-khẩu-trực-đêm\n"),
    );
    assert!(out.status.success(), "{out:?}");
    let (cookie, _) =
        crate::util::login(&b, "bs.lan", "mật-khẩu-trực-đêm").expect("signed in on B");
    let stream = stream_lines(&b, ("Cookie", &cookie));
    std::thread::sleep(Duration::from_millis(300));
    let mut dev = Device::connect(a.mqtt, &f.device, &f.password).unwrap();
    dev.publish(
        &format!("vigil/v1/{}/readings", f.device),
        r#"{"metric":"spo2","value":85,"unit":"%"}"#,
    );
    let (mut reading, mut alert) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !(reading && alert) && Instant::now() < deadline {
        if let Ok(line) = stream.recv_timeout(Duration::from_millis(200)) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            let text = v.to_string();
            if !text.contains("pg-live") {
                continue;
            }
            reading |= text.contains("\"spo2\"") && text.contains("85");
            alert |= text.contains("spo2_low");
        }
    }
    assert!(
        reading && alert,
        "B's stream: reading {reading}, alert {alert}\n{}",
        b.log()
    );
}

/// `[store] url` with `sslmode=require`: the gateway talks to PostgreSQL over TLS, verifying the
/// server's certificate against `sslrootcert` (a test CA here); a certificate it cannot verify
/// is refused with a clear error, never a silent fall-back to plain text.
#[test]
fn the_store_connection_can_be_tls_and_verifies_the_server() {
    if !require_postgres() || !crate::util::require_tool("openssl") {
        return;
    }
    let pg = PgServer::start_tls();
    let url = pg.database();
    let tls_url = format!("{url}?sslmode=require&sslrootcert={}", pg.ca().display());
    let v = Vigil::start_env(&["run"], &[("VIGIL_STORE_URL", &tls_url)]);
    let f = register(&v, "pg-tls", "pulse_oximeter");
    let (status, _) = v.get("/api/v1/patients", &f.token);
    assert_eq!(status, 200);
    let db = url.rsplit('/').next().unwrap();
    let mut c = pg.client("postgres");
    let (tls, plain): (i64, i64) = {
        let r = c
            .query_one(
                "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl)
                 FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1",
                &[&db],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(
        tls >= 2 && plain == 0,
        "gateway sessions: {tls} over TLS, {plain} plain"
    );

    // Another CA: the server's certificate cannot be verified, and the command says so.
    let other = tempfile::tempdir().unwrap();
    crate::util::make_certs(other.path());
    let bad = format!(
        "{url}?sslmode=require&sslrootcert={}",
        other.path().join("ca.crt").display()
    );
    let out = crate::util::run_vigil_env(
        &["patient", "list"],
        &v.data_dir(),
        None,
        &[("VIGIL_STORE_URL".to_string(), bad)],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open the store"), "{err}");
}
