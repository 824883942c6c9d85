//! Issue #4, InfluxDB sink: every stored reading reaches a real server speaking the InfluxDB v2
//! write API — Debian's VictoriaMetrics — even when the server is down for a while. VictoriaMetrics
//! answers 204 to anything, so the test reads every point back and compares values.

use crate::util::{free_port, register, require_tool, Device, Vigil};
use chrono::Utc;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// VictoriaMetrics on a free loopback port with its own data directory; killed on drop.
struct Victoria {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Victoria {
    fn start() -> Victoria {
        let mut v = Victoria {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        v.launch();
        v
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("vm.log"))
            .unwrap();
        let child = Command::new("victoria-metrics")
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .arg(format!(
                "-storageDataPath={}",
                self.dir.path().join("data").display()
            ))
            // Readings carry their own (recent) times; keep everything.
            .arg("-retentionPeriod=100y")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start victoria-metrics");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while ureq::get(&format!("{}/health", self.url())).call().is_err() {
            assert!(Instant::now() < deadline, "victoria-metrics did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A clean stop (SIGTERM): VictoriaMetrics flushes what it acknowledged. (Killed with
    /// SIGKILL it loses the last second of acknowledged points — the server's durability, not
    /// Vigil's, which is why this outage is a clean one.)
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while c.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every `vitals_value` series: its labels and its points (time in ms → value).
    fn series(&self) -> Vec<(Value, Vec<(i64, f64)>)> {
        self.series_named("vitals_value")
    }

    /// Every series of one name (measurement_field): its labels and its points.
    fn series_named(&self, name: &str) -> Vec<(Value, Vec<(i64, f64)>)> {
        let body = ureq::post(&format!("{}/api/v1/export", self.url()))
            .send_form(&[("match[]", name)])
            .map(|r| r.into_string().unwrap_or_default())
            .unwrap_or_default();
        body.lines()
            .filter(|l| !l.is_empty())
            .map(|line| {
                let s: Value = serde_json::from_str(line).unwrap();
                let ts = s["timestamps"].as_array().unwrap().iter();
                let vs = s["values"].as_array().unwrap().iter();
                let points = ts
                    .zip(vs)
                    .map(|(t, v)| (t.as_i64().unwrap(), v.as_f64().unwrap()))
                    .collect();
                (s["metric"].clone(), points)
            })
            .collect()
    }

    /// Every `vitals_value` point: time (ms) → value.
    fn values(&self) -> BTreeMap<i64, f64> {
        self.series().into_iter().flat_map(|(_, p)| p).collect()
    }

    /// [`Victoria::values`], checking that every series carries the device's tags.
    fn values_of(&self, device: &str, patient: &str) -> BTreeMap<i64, f64> {
        let mut out = BTreeMap::new();
        for (labels, points) in self.series() {
            assert_eq!(labels["device_id"], device, "{labels}");
            assert_eq!(labels["patient_id"], patient, "{labels}");
            assert_eq!(labels["metric"], "spo2", "{labels}");
            out.extend(points);
        }
        out
    }
}

impl Drop for Victoria {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn gauge(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1.0)
}

#[test]
fn every_reading_reaches_influxdb_even_across_an_outage() {
    if !require_tool("victoria-metrics") {
        return;
    }
    let mut vm = Victoria::start();
    let token = "influx-secret-token-7f3a";
    let url = vm.url();
    let mut v = Vigil::start_env(
        &["run"],
        &[
            ("VIGIL_INFLUXDB_URL", url.as_str()),
            ("VIGIL_INFLUXDB_ORG", "health-dept"),
            ("VIGIL_INFLUXDB_BUCKET", "vitals"),
            ("VIGIL_INFLUXDB_TOKEN", token),
            ("VIGIL_INFLUXDB_FLUSH_INTERVAL_MS", "200"),
        ],
    );
    let f = register(&v, "pat-influx", "pulse_oximeter");
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    let topic = format!("vigil/v1/{}/readings", f.device);
    let t0 = Utc::now().timestamp_millis() - 600_000;
    let mut expected = BTreeMap::new();
    let mut publish = |dev: &mut Device, range: std::ops::Range<i64>| {
        for i in range {
            let (ts, value) = (t0 + i * 1000, 90.0 + (i % 10) as f64 + 0.5);
            dev.publish(
                &topic,
                &format!(r#"{{"metric":"spo2","value":{value},"ts":{ts}}}"#),
            );
            expected.insert(ts, value);
        }
    };

    publish(&mut dev, 0..50);
    wait_for("the first 50 points", Duration::from_secs(30), || {
        vm.values().len() == 50
    });

    // Outage: the server is gone; readings are still accepted and stored, and wait locally.
    vm.stop();
    publish(&mut dev, 50..150);
    wait_for("a backlog of 100 points", Duration::from_secs(30), || {
        let m = v.metrics();
        gauge(&m, "vigil_influxdb_backlog_points") == 100.0 && gauge(&m, "vigil_influxdb_up") == 0.0
    });
    assert_eq!(
        gauge(&v.metrics(), "vigil_readings_stored_total"),
        150.0,
        "ingestion continues during the outage"
    );
    // Still ready (ingestion works); the backlog shows in the detail.
    let ready: Value = ureq::get(&v.url("/readyz"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(
        ready["detail"]["influxdb"]["backlog_points"], 100,
        "{ready}"
    );
    assert_eq!(ready["detail"]["influxdb"]["up"], false, "{ready}");

    // The gateway crashes during the outage: the backlog is in its store and survives.
    v.kill();
    v.launch();
    wait_for(
        "the backlog after a restart",
        Duration::from_secs(30),
        || gauge(&v.metrics(), "vigil_influxdb_backlog_points") == 100.0,
    );

    // Recovery: the backlog drains and the server has every point with its value.
    vm.launch();
    wait_for("the backlog to drain", Duration::from_secs(60), || {
        gauge(&v.metrics(), "vigil_influxdb_backlog_points") == 0.0
    });
    wait_for(
        "all 150 points in the server",
        Duration::from_secs(30),
        || vm.values().len() == 150,
    );
    let expected_values: BTreeMap<i64, f64> = expected;
    assert_eq!(vm.values_of(&f.device, &f.patient), expected_values);
    let m = v.metrics();
    // Counted since the restart: the backlog's 100 (more only if a request was sent again
    // after a failure, which the exact comparison above would have caught as a duplicate).
    assert!(
        gauge(&m, "vigil_influxdb_forwarded_points_total") >= 100.0,
        "{m}"
    );
    assert_eq!(gauge(&m, "vigil_influxdb_quarantined_points_total"), 0.0);
    // The amber SpO₂ alert that the first readings opened went along, in its own measurement.
    let alerts = vm.series_named("alerts_opened");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].0["patient_id"], f.patient.as_str());
    assert_eq!(alerts[0].0["severity"], "amber");
    // A clinician acknowledges it, then resolves it: each change of state is a point in the
    // same series (tags), so time to acknowledge can be computed in InfluxDB.
    let (_, open) = v.get("/api/v1/alerts?state=open", &f.token);
    let id = open["alerts"][0]["id"].as_i64().expect("the open alert");
    for action in ["ack", "resolve"] {
        let (status, body) = v.post(
            &format!("/api/v1/alerts/{id}/{action}"),
            &f.token,
            json!({"note": "called the family"}),
        );
        assert_eq!(status, 200, "{action}: {body}");
    }
    wait_for(
        "the acknowledgement and the resolution in the server",
        Duration::from_secs(30),
        || {
            vm.series_named("alerts_acknowledged").len() == 1
                && vm.series_named("alerts_resolved").len() == 1
        },
    );
    for name in ["alerts_acknowledged", "alerts_resolved"] {
        let s = vm.series_named(name);
        assert_eq!(s[0].0["patient_id"], f.patient.as_str(), "{name}: {s:?}");
        assert_eq!(s[0].0["rule"], alerts[0].0["rule"], "{name}: {s:?}");
        assert_eq!(s[0].0["severity"], "amber", "{name}: {s:?}");
        assert_eq!(s[0].1.len(), 1, "one point: {name}: {s:?}");
        assert!(s[0].1[0].0 >= alerts[0].1[0].0, "after the opening: {s:?}");
    }
    assert!(!v.log().contains(token), "the token must never be logged");
}

#[test]
fn a_hundred_thousand_readings_arrive_with_their_tags_values_and_times() {
    if !require_tool("victoria-metrics") {
        return;
    }
    let vm = Victoria::start();
    let url = vm.url();
    let v = Vigil::start_env(
        &["run"],
        &[
            ("VIGIL_INFLUXDB_URL", url.as_str()),
            ("VIGIL_INFLUXDB_BUCKET", "vitals"),
            ("VIGIL_INFLUXDB_FLUSH_INTERVAL_MS", "200"),
        ],
    );
    let f = register(&v, "pat-100k", "pulse_oximeter");
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    let topic = format!("vigil/v1/{}/readings", f.device);
    // A hub flushing its buffer: 1 000 messages of 100 readings, one a second over ~28 hours.
    let t0 = Utc::now().timestamp_millis() - 100_000_000;
    let mut expected = BTreeMap::new();
    for m in 0..1000i64 {
        let items: Vec<String> = (0..100)
            .map(|k| {
                let i = m * 100 + k;
                let (ts, value) = (t0 + i * 1000, 85.0 + (i % 150) as f64 / 10.0);
                expected.insert(ts, value);
                format!(r#"{{"metric":"spo2","value":{value},"ts":{ts}}}"#)
            })
            .collect();
        dev.publish(&topic, &format!(r#"{{"readings":[{}]}}"#, items.join(",")));
    }
    wait_for("100 000 stored", Duration::from_secs(120), || {
        gauge(&v.metrics(), "vigil_readings_stored_total") == 100_000.0
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while gauge(&v.metrics(), "vigil_influxdb_backlog_points") != 0.0 {
        assert!(
            Instant::now() < deadline,
            "backlog not drained:\n{}\n{}",
            v.metrics(),
            v.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_for("100 000 in the server", Duration::from_secs(60), || {
        vm.values().len() == 100_000
    });
    assert_eq!(vm.values_of(&f.device, &f.patient), expected);
}

/// Issue #16: an alert reaches InfluxDB however it opens — not only from a reading. A fall
/// raised when its cancel window closes, a device gone silent (the missing-data watch), and
/// `notification_failed` (the fall's e-mails reach nobody: the SMTP relay is down by the first
/// escalation step) each write their `opened` point. Before, only ingest did.
#[test]
fn every_way_an_alert_opens_reaches_influxdb() {
    if !require_tool("victoria-metrics") {
        return;
    }
    let vm = Victoria::start();
    let url = vm.url();
    // Nothing listens there: every delivery attempt fails and is retried.
    let smtp_port = free_port().to_string();
    let v = Vigil::start_env(
        &["run"],
        &[
            ("VIGIL_INFLUXDB_URL", url.as_str()),
            ("VIGIL_INFLUXDB_ORG", "health-dept"),
            ("VIGIL_INFLUXDB_BUCKET", "vitals"),
            ("VIGIL_INFLUXDB_TOKEN", "influx-secret-token-7f3a"),
            ("VIGIL_INFLUXDB_FLUSH_INTERVAL_MS", "200"),
            ("VIGIL_RULES_FALL_CANCEL_SECONDS", "1"),
            ("VIGIL_SMTP_HOST", "127.0.0.1"),
            ("VIGIL_SMTP_PORT", smtp_port.as_str()),
            ("VIGIL_SMTP_SECURITY", "none"),
            ("VIGIL_NOTIFY_ESCALATE_AFTER_SECONDS", "2"),
        ],
    );
    let f = register(&v, "pat-paths", "fall_detector");
    v.admin(&[
        "device",
        "add",
        "--patient",
        "pat-paths",
        "--kind",
        "wearable",
        "--interval",
        "1s",
    ]);
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    dev.publish(
        &format!("vigil/v1/{}/events", f.device),
        r#"{"event":"fall"}"#,
    );
    let rules = || -> Vec<String> {
        let mut r: Vec<String> = vm
            .series_named("alerts_opened")
            .iter()
            .filter(|(labels, _)| labels["patient_id"] == "pat-paths")
            .map(|(labels, _)| labels["rule"].as_str().unwrap_or_default().to_string())
            .collect();
        r.sort();
        r
    };
    wait_for(
        "the fall, device_silent and notification_failed openings in the server",
        Duration::from_secs(60),
        || rules() == ["device_silent", "fall", "notification_failed"],
    );
    // The same alerts are open in Vigil.
    let (_, open) = v.get("/api/v1/alerts?patient_id=pat-paths", &f.token);
    let mut in_vigil: Vec<&str> = open["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap())
        .collect();
    in_vigil.sort();
    assert_eq!(in_vigil, rules(), "{open}");
}
