//! `vigil run` with `[mqtt] broker_url`: a real Mosquitto instead of the embedded broker
//! (the basic mode of issue #2; the ingestion issue #3 makes it production-grade).

use crate::util::{make_certs, register, require_tool, Mosquitto, Vigil};
use std::process::Command;
use std::time::{Duration, Instant};

fn mosquitto_pub(port: u16, topic: &str, payload: &str) {
    let ok = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-t",
            topic,
            "-m",
            payload,
        ])
        .status()
        .expect("run mosquitto_pub")
        .success();
    assert!(ok, "mosquitto_pub failed");
}

fn wait_readings(v: &Vigil, token: &str, patient: &str, n: usize) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = v.get(
            &format!("/api/v1/patients/{patient}/readings?metric=spo2&from=2025-01-01T00:00:00Z"),
            token,
        );
        if body["readings"].as_array().map_or(0, Vec::len) >= n || Instant::now() > deadline {
            return body;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn readings_arrive_through_an_external_mosquitto_even_across_a_gateway_crash() {
    if !require_tool("mosquitto") || !require_tool("mosquitto_pub") {
        return;
    }
    let broker = Mosquitto::start();
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let mut v = Vigil::start_env(&["run"], &[("VIGIL_MQTT_BROKER_URL", &url)]);
    let f = register(&v, "pat-ext", "pulse_oximeter");
    let topic = format!("vigil/v1/{}/readings", f.device);
    mosquitto_pub(
        broker.port,
        &topic,
        r#"{"metric":"spo2","value":96,"ts":1763774100000}"#,
    );
    let body = wait_readings(&v, &f.token, &f.patient, 1);
    assert_eq!(body["readings"][0]["value"], 96.0, "{body}\n{}", v.log());

    // The gateway's session is persistent: what is published while it is down is delivered
    // when it comes back, and stored.
    v.kill();
    // A current reading: a late one (hours old) would be stored but raise no alert.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    mosquitto_pub(
        broker.port,
        &topic,
        &format!(r#"{{"metric":"spo2","value":85,"ts":{now_ms}}}"#),
    );
    v.restart();
    let body = wait_readings(&v, &f.token, &f.patient, 2);
    assert_eq!(
        body["readings"].as_array().unwrap().len(),
        2,
        "{body}\n{}",
        v.log()
    );
    let (_, alerts) = v.get("/api/v1/alerts?state=open", &f.token);
    assert_eq!(alerts["alerts"][0]["rule"], "spo2_low", "{alerts}\n{body}");
    // A message for an unregistered device is rejected, not stored.
    mosquitto_pub(
        broker.port,
        "vigil/v1/ghost/readings",
        r#"{"metric":"spo2","value":90}"#,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, rej) = v.get("/api/v1/rejected", &f.token);
        if rej["rejected"][0]["reason"] == "unknown_device" {
            break;
        }
        assert!(Instant::now() < deadline, "{rej}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn mqtts_with_a_private_ca() {
    if !require_tool("mosquitto") || !require_tool("mosquitto_pub") || !require_tool("openssl") {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let d = certs.path();
    make_certs(d);
    let broker = Mosquitto::start_conf(&format!(
        "allow_anonymous true\npersistence false\nuser root\ncafile {0}/ca.crt\ncertfile {0}/server.crt\nkeyfile {0}/server.key",
        d.display()
    ));
    let url = format!("mqtts://127.0.0.1:{}", broker.port);
    let ca = d.join("ca.crt").display().to_string();
    let v = Vigil::start_env(
        &["run"],
        &[
            ("VIGIL_MQTT_BROKER_URL", &url),
            ("VIGIL_MQTT_CA_FILE", &ca),
            ("VIGIL_MQTT_CLIENT_ID", "tls-gw"),
        ],
    );
    let f = register(&v, "pat-tls", "pulse_oximeter");
    let ok = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port.to_string(),
            "--cafile",
            &ca,
            "-q",
            "1",
        ])
        .args([
            "-t",
            &format!("vigil/v1/{}/readings", f.device),
            "-m",
            r#"{"metric":"spo2","value":95,"ts":1763774100000}"#,
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok, "mosquitto_pub over TLS");
    let body = wait_readings(&v, &f.token, &f.patient, 1);
    assert_eq!(body["readings"][0]["value"], 95.0, "{body}\n{}", v.log());
}
