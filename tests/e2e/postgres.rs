//! Issue #20: PostgreSQL as the store (`[store] url`), against a real server started by the
//! test (`crate::pgserver`).

use crate::pgserver::{require_postgres, PgServer};
use crate::util::{register, Device, Vigil};
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
