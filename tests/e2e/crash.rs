//! Issue #3, "Crash test" and "Broker restart test": readings published through a real
//! Mosquitto end up in the store exactly once although the gateway is killed with SIGKILL twice
//! (each restart also drains the backlog that queued at the broker meanwhile), or the broker
//! itself restarts mid-stream.

use crate::util::{publish, register_devices, require_tool, wait_sent, Mosquitto, Vigil};
use std::time::{Duration, Instant};
use vigil_simulators::load::expected_value;

/// (time in ms, value) stored for patient `{prefix}-p{i}`, in time order.
fn stored(v: &Vigil, token: &str, prefix: &str, i: usize) -> Vec<(i64, f64)> {
    let (_, body) = v.get(
        &format!("/api/v1/patients/{prefix}-p{i}/readings?metric=heart_rate&from=2025-11-01T00:00:00Z&to=2026-01-01T00:00:00Z&limit=100000"),
        token,
    );
    body["readings"].as_array().map_or(vec![], |a| {
        a.iter()
            .map(|r| {
                let ts = chrono_ms(r["ts"].as_str().unwrap());
                (ts, r["value"].as_f64().unwrap())
            })
            .collect()
    })
}

/// Parses the API's RFC 3339 UTC times (`2025-11-12T23:33:20.001Z`) to epoch ms.
fn chrono_ms(s: &str) -> i64 {
    let (date, time) = s.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let ms: i64 = format!("{frac:0<3}")[..3].parse().unwrap();
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000 + ms
}

/// Waits until at least `at_least` readings are stored (or a deadline); checks that every
/// stored reading is one that was published (its value is the one published for its time) and
/// returns the count per device. The store's key makes a duplicate impossible to store, so the
/// count is the number of distinct readings stored.
fn wait_stored(
    v: &Vigil,
    token: &str,
    prefix: &str,
    devices: usize,
    start_ms: i64,
    at_least: u64,
) -> Vec<usize> {
    let deadline = Instant::now() + Duration::from_secs(240);
    let all = loop {
        let all: Vec<Vec<(i64, f64)>> = (0..devices).map(|i| stored(v, token, prefix, i)).collect();
        let total: usize = all.iter().map(Vec::len).sum();
        if total as u64 >= at_least || Instant::now() > deadline {
            break all;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    for (i, vals) in all.iter().enumerate() {
        for (ts, val) in vals {
            let k = (ts - start_ms) as u64;
            assert_eq!(*val, expected_value(k), "reading {k} of device {i}");
        }
    }
    all.iter().map(Vec::len).collect()
}

#[test]
fn gateway_killed_twice_during_100k_readings_stores_each_exactly_once() {
    if !require_tool("mosquitto") {
        return;
    }
    const DEVICES: usize = 10;
    const PER_DEVICE: u64 = 10_000;
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
    let (devices, token) = register_devices(&v, "crash", DEVICES);
    let total = DEVICES as u64 * PER_DEVICE;
    let start_ms = 1_763_000_000_000;
    // Slow enough that the kills land mid-stream on a loaded CI machine.
    let (publisher, progress) = publish(broker.port, devices, 5, PER_DEVICE, 12_000, start_ms);
    for at in [total / 4, total * 3 / 5] {
        wait_sent(&progress, at);
        v.kill();
        // Down long enough for a backlog to queue at the broker.
        std::thread::sleep(Duration::from_millis(1500));
        v.restart();
    }
    let report = publisher.join().unwrap();
    assert_eq!(report.acked, total, "the broker acknowledged every publish");
    let counts = wait_stored(&v, &token, "crash", DEVICES, start_ms, total);
    assert_eq!(
        counts,
        vec![PER_DEVICE as usize; DEVICES],
        "every reading exactly once\n{}",
        v.log()
    );
    assert!(
        v.log().matches("connected to MQTT broker").count() >= 3,
        "two restarts happened"
    );
}

#[test]
fn broker_restart_mid_stream_loses_nothing_acknowledged() {
    if !require_tool("mosquitto") {
        return;
    }
    const DEVICES: usize = 5;
    const PER_DEVICE: u64 = 6_000;
    // Persistence on, so what the broker acknowledged survives its restart. `user root` keeps
    // a root-run Mosquitto from dropping to a user that cannot write the temp directory.
    let mut broker = Mosquitto::start_conf(
        "allow_anonymous true\npersistence true\npersistence_location {dir}/\nuser root\nmax_queued_messages 0\nmax_inflight_messages 1000",
    );
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let v = Vigil::start_env(
        &["run"],
        &[
            ("VIGIL_MQTT_BROKER_URL", &url),
            ("VIGIL_MQTT_CLIENT_ID", "restart-test-gw"),
        ],
    );
    let (devices, token) = register_devices(&v, "brk", DEVICES);
    let start_ms = 1_763_500_000_000;
    let (publisher, progress) = publish(broker.port, devices, 5, PER_DEVICE, 6_000, start_ms);
    wait_sent(&progress, DEVICES as u64 * PER_DEVICE / 3);
    broker.restart();
    let report = publisher.join().unwrap();
    // Publishes in flight while the broker went down may never be acknowledged (the publisher
    // reports them as unacknowledged); every acknowledged one must be stored.
    assert!(
        report.acked as f64 >= 0.95 * report.sent as f64,
        "{report:?}"
    );
    let counts = wait_stored(&v, &token, "brk", DEVICES, start_ms, report.acked);
    let stored: usize = counts.iter().sum();
    eprintln!(
        "broker restart: sent {}, acknowledged {}, stored {stored}",
        report.sent, report.acked
    );
    assert!(
        stored as u64 >= report.acked && stored as u64 <= report.sent,
        "stored {stored}, acknowledged {}, sent {}\n{}",
        report.acked,
        report.sent,
        v.log()
    );
    assert!(
        v.log().matches("connected to MQTT broker").count() >= 2,
        "the gateway reconnected\n{}",
        broker.log()
    );
}
