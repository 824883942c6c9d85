//! Issue #3, "Device security" with an external Mosquitto: `vigil mosquitto export` writes a
//! password file and ACL that Mosquitto loads; a device cannot publish as another device and
//! an unknown client cannot connect.

use crate::util::{require_tool, Mosquitto, Vigil};
use std::process::Command;
use std::time::{Duration, Instant};

fn publish(port: u16, user: &str, pass: &str, topic: &str, payload: &str) -> bool {
    Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(["-u", user, "-P", pass, "-t", topic, "-m", payload])
        .output()
        .expect("run mosquitto_pub")
        .status
        .success()
}

#[test]
fn exported_password_file_and_acl_keep_devices_in_their_own_topics() {
    if !require_tool("mosquitto") || !require_tool("mosquitto_pub") {
        return;
    }
    let mut v = Vigil::prepare(
        &["run"],
        &[
            ("VIGIL_MQTT_USERNAME", "vigil-gateway"),
            ("VIGIL_MQTT_PASSWORD", "gateway-secret-123"),
            ("VIGIL_MQTT_CLIENT_ID", "acl-test-gw"),
        ],
    );
    v.admin(&["patient", "add", "--name", "A", "--id", "pa"]);
    v.admin(&["patient", "add", "--name", "B", "--id", "pb"]);
    let a = v.admin(&[
        "device",
        "add",
        "--patient",
        "pa",
        "--kind",
        "pulse_oximeter",
        "--id",
        "ox-a",
    ]);
    let b = v.admin(&[
        "device",
        "add",
        "--patient",
        "pb",
        "--kind",
        "pulse_oximeter",
        "--id",
        "ox-b",
    ]);
    let disabled = v.admin(&[
        "device",
        "add",
        "--patient",
        "pb",
        "--kind",
        "scale",
        "--id",
        "old-scale",
    ]);
    v.admin(&["device", "disable", "--id", "old-scale"]);
    let token = v.admin(&["token", "create", "--name", "t"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let out = v.dir.path().join("mosquitto");
    let exported = v.admin(&["mosquitto", "export", "--out", out.to_str().unwrap()]);
    assert_eq!(
        exported["devices"], 2,
        "the disabled device is not exported: {exported}"
    );

    let broker = Mosquitto::start_conf(&format!(
        "allow_anonymous false\npersistence false\npassword_file {}\nacl_file {}",
        out.join("password_file").display(),
        out.join("acl_file").display()
    ));
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    v.env.push(("VIGIL_MQTT_BROKER_URL".into(), url));
    v.launch();

    let (pa, pb) = (
        a["password"].as_str().unwrap(),
        b["password"].as_str().unwrap(),
    );
    assert!(publish(
        broker.port,
        "ox-a",
        pa,
        "vigil/v1/ox-a/readings",
        r#"{"metric":"spo2","value":97}"#
    ));
    // ox-a publishing as ox-b: Mosquitto drops it (MQTT 3.1.1 still acknowledges).
    publish(
        broker.port,
        "ox-a",
        pa,
        "vigil/v1/ox-b/readings",
        r#"{"metric":"spo2","value":80}"#,
    );
    assert!(!publish(
        broker.port,
        "ox-a",
        "wrong-password",
        "vigil/v1/ox-a/readings",
        "{}"
    ));
    assert!(!publish(
        broker.port,
        "stranger",
        "whatever",
        "vigil/v1/stranger/readings",
        "{}"
    ));
    assert!(!publish(
        broker.port,
        "old-scale",
        disabled["password"].as_str().unwrap(),
        "vigil/v1/old-scale/readings",
        "{}"
    ));
    assert!(publish(
        broker.port,
        "ox-b",
        pb,
        "vigil/v1/ox-b/readings",
        r#"{"metric":"spo2","value":96}"#
    ));

    let deadline = Instant::now() + Duration::from_secs(10);
    let (a_vals, b_vals) = loop {
        let vals = |p: &str| -> Vec<f64> {
            let (_, body) = v.get(
                &format!("/api/v1/patients/{p}/readings?metric=spo2"),
                &token,
            );
            body["readings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["value"].as_f64().unwrap())
                .collect()
        };
        let (x, y) = (vals("pa"), vals("pb"));
        if (!x.is_empty() && !y.is_empty()) || Instant::now() > deadline {
            break (x, y);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(a_vals, vec![97.0]);
    assert_eq!(
        b_vals,
        vec![96.0],
        "the forged 80 never reached the gateway"
    );
}
