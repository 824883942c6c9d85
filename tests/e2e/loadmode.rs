//! `vigil-sim load`'s loss accounting (issue #7): every reading a broker acknowledged is found
//! stored, duplicate or rejected in Vigil's `/metrics` — and a deliberately lossy run (a broker
//! Vigil does not listen to) is reported as lossy.

use crate::util::{require_tool, Mosquitto, Vigil};
use rumqttc::QoS;
use std::time::Duration;
use vigil_simulators::accounting;
use vigil_simulators::load::LoadConfig;

fn config(
    port: u16,
    devices: Vec<String>,
    passwords: Option<Vec<String>>,
    start_ms: i64,
) -> LoadConfig {
    LoadConfig {
        host: "127.0.0.1".into(),
        port,
        connections: devices.len(),
        devices,
        passwords,
        messages_per_device: 200,
        rate: 0,
        qos: QoS::AtLeastOnce,
        start_ms,
        readings_per_message: 1,
        live_ts: false,
        step_ms: 1,
    }
}

#[test]
fn the_load_mode_accounts_for_every_reading_and_reports_a_lossy_run() {
    if !require_tool("mosquitto") {
        return;
    }
    let v = Vigil::start();
    v.admin(&["patient", "add", "--name", "Load", "--id", "load"]);
    let (mut ids, mut passwords) = (Vec::new(), Vec::new());
    for i in 0..3 {
        let d = v.admin(&[
            "device",
            "add",
            "--patient",
            "load",
            "--kind",
            "hub",
            "--id",
            &format!("load-{i}"),
        ]);
        ids.push(d["id"].as_str().unwrap().to_string());
        passwords.push(d["password"].as_str().unwrap().to_string());
    }
    let token = v.admin(&["token", "create", "--name", "load"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let run = |cfg: LoadConfig| {
        rt.block_on(accounting::run_accounted(
            cfg,
            v.url(""),
            Some(token.clone()),
            Duration::from_secs(20),
        ))
        .expect("load run")
    };

    // Into Vigil's own broker: all 600 acknowledged, all stored.
    let start = chrono::Utc::now().timestamp_millis() - 3_600_000;
    let (report, acc, _) = run(config(v.mqtt, ids.clone(), Some(passwords.clone()), start));
    assert_eq!(report.acked, 600, "{report:?}");
    assert_eq!((acc.stored, acc.lost, acc.foreign), (600, 0, 0), "{acc:?}");
    assert!(!acc.lossy());

    // Those readings were an hour old, flagged `late`: not in the store-delay histogram.
    assert_eq!(acc.store_delay_ms(0.5), None, "{acc:?}");

    // Stamped as they are published: publish → stored from Vigil's histogram, every reading
    // in it, the median under the PUBACK's p99 (the embedded broker acks after the commit).
    let mut live = config(v.mqtt, ids.clone(), Some(passwords.clone()), 0);
    live.live_ts = true;
    let (report, acc, _) = run(live);
    assert_eq!((acc.stored, acc.lost), (600, 0), "{acc:?}");
    assert_eq!(acc.store_delay[acc.store_delay.len() - 1], 600);
    let p50 = acc.store_delay_ms(0.5).unwrap();
    let mut acks = report.ack_ms.clone();
    acks.sort_by(f32::total_cmp);
    let ack_p99 = f64::from(acks[acks.len() * 99 / 100]);
    // Readings carry whole milliseconds: allow one.
    assert!(
        p50 <= ack_p99 + 1.0,
        "publish → stored p50 {p50} ms, PUBACK p99 {ack_p99} ms"
    );

    // The same again: every reading is already stored (same times), so all are duplicates.
    let mut again = config(v.mqtt, ids.clone(), Some(passwords), start);
    again.messages_per_device = 100;
    let (_, acc, _) = run(again);
    assert_eq!((acc.duplicates, acc.lost), (300, 0), "{acc:?}");

    // Into a Mosquitto that Vigil is not connected to: acknowledged by that broker, never seen
    // by Vigil — reported lost, the run lossy.
    let stray = Mosquitto::start();
    let (report, acc, _) = run(config(stray.port, ids, None, start + 10_000));
    assert_eq!(report.acked, 600, "{report:?}");
    assert_eq!((acc.stored, acc.lost), (0, 600), "{acc:?}");
    assert!(acc.lossy());
}
