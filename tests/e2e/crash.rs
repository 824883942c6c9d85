//! Issue #3, "Crash test": readings published through a real Mosquitto while the gateway is
//! killed with SIGKILL twice end up in the store exactly once. The restarts also drain the
//! backlog that queued at the broker while the gateway was down.

use crate::util::{require_tool, Mosquitto, Vigil};
use rumqttc::QoS;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil_simulators::load::{self, expected_value, LoadConfig, Progress};

const DEVICES: usize = 10;
const PER_DEVICE: u64 = 10_000;

#[test]
fn gateway_killed_twice_during_100k_readings_stores_each_exactly_once() {
    if !require_tool("mosquitto") {
        return;
    }
    // The broker must queue for the offline gateway without dropping: no queue limit
    // (Mosquitto's default silently drops beyond 1000 queued messages).
    let broker = Mosquitto::start_with("max_queued_messages 0\nmax_inflight_messages 1000");
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let mut v = Vigil::start_env(
        &["run"],
        &[
            ("VIGIL_MQTT_BROKER_URL", &url),
            ("VIGIL_MQTT_CLIENT_ID", "crash-test-gw"),
        ],
    );
    let mut devices = Vec::new();
    let mut token = String::new();
    for i in 0..DEVICES {
        let p = format!("crash-p{i}");
        v.admin(&[
            "patient",
            "add",
            "--name",
            &format!("Crash {i}"),
            "--id",
            &p,
        ]);
        let d = v.admin(&[
            "device",
            "add",
            "--patient",
            &p,
            "--kind",
            "hub",
            "--id",
            &format!("crash-d{i}"),
        ]);
        devices.push(d["id"].as_str().unwrap().to_string());
        if i == 0 {
            token = v.admin(&["token", "create", "--name", "crash"])["token"]
                .as_str()
                .unwrap()
                .to_string();
        }
    }
    let start_ms = 1_763_000_000_000i64;
    let progress = Arc::new(Progress::default());
    let cfg = LoadConfig {
        host: "127.0.0.1".into(),
        port: broker.port,
        devices: devices.clone(),
        passwords: None,
        connections: 5,
        messages_per_device: PER_DEVICE,
        // Slow enough that the kills land mid-stream on a loaded CI machine.
        rate: 12_000,
        qos: QoS::AtLeastOnce,
        start_ms,
    };
    let p2 = progress.clone();
    let publisher = std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(load::run(cfg, p2))
            .expect("load run")
    });
    let total = DEVICES as u64 * PER_DEVICE;
    for at in [total / 4, total * 3 / 5] {
        while progress.sent.load(Relaxed) < at {
            std::thread::sleep(Duration::from_millis(10));
        }
        v.kill();
        // Down long enough for a backlog to queue at the broker.
        std::thread::sleep(Duration::from_millis(1500));
        v.restart();
    }
    let report = publisher.join().unwrap();
    assert_eq!(report.acked, total, "the broker acknowledged every publish");

    let deadline = Instant::now() + Duration::from_secs(240);
    let counts = loop {
        let counts: Vec<usize> = (0..DEVICES)
            .map(|i| {
                let (_, body) = v.get(
                    &format!("/api/v1/patients/crash-p{i}/readings?metric=heart_rate&from=2025-11-01T00:00:00Z&to=2026-01-01T00:00:00Z&limit=100000"),
                    &token,
                );
                body["readings"].as_array().map_or(0, Vec::len)
            })
            .collect();
        if counts.iter().sum::<usize>() as u64 >= total || Instant::now() > deadline {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        counts,
        vec![PER_DEVICE as usize; DEVICES],
        "per-device counts\n{}",
        v.log()
    );
    // Spot-check: every stored value is the one published at that time, and times are unique.
    for i in [0, DEVICES - 1] {
        let (_, body) = v.get(
            &format!("/api/v1/patients/crash-p{i}/readings?metric=heart_rate&from=2025-11-01T00:00:00Z&to=2026-01-01T00:00:00Z&limit=100000"),
            &token,
        );
        for (k, r) in body["readings"].as_array().unwrap().iter().enumerate() {
            assert_eq!(
                r["value"].as_f64().unwrap(),
                expected_value(k as u64),
                "reading {k} of device {i}"
            );
            assert_eq!(r["device_id"], devices[i]);
        }
    }
    assert!(
        v.log().matches("connected to MQTT broker").count() >= 3,
        "two restarts happened"
    );
}
