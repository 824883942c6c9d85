//! Issue #7: a simulator scenario file played against the real gateway. `vigil device provision
//! --scenario` registers its patients and devices, `vigil-sim scenario --speed 30` plays twelve
//! minutes in about 25 seconds, and what Vigil stored and raised is compared with the stream
//! the same file generates (`vigil_simulators::scenario`, deterministic): every valid reading
//! stored once (duplicates dropped, a hub's buffer flushed, °F/lb/mg/dL and SenML converted),
//! every broken message rejected with its reason, the scripted emergencies alerted, the
//! cancelled fall not.

use crate::util::{play_scenario, Vigil};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use vigil_simulators::scenario::{Action, Channel, Scenario};

const FILE: &str = "../simulators/scenarios/ward-emergencies.toml";

/// What the file's stream should leave in Vigil: readings per (patient, metric), broken
/// messages per device, messages delivered twice.
#[derive(Default)]
struct Expected {
    readings: BTreeMap<(String, String), usize>,
    malformed: BTreeMap<String, usize>,
    duplicated: usize,
}

fn expected(s: &Scenario) -> Expected {
    let patient_of: HashMap<&str, &str> = s
        .patients
        .iter()
        .flat_map(|p| {
            p.devices
                .iter()
                .map(move |d| (d.id.as_str(), p.id.as_str()))
        })
        .collect();
    let mut e = Expected::default();
    let mut seen = BTreeSet::new();
    // Counts do not depend on the origin: any fixed one will do.
    let origin = DateTime::parse_from_rfc3339("2026-11-28T09:00:00+07:00")
        .unwrap()
        .with_timezone(&Utc);
    for m in s.window(origin, 0, s.duration.unwrap()) {
        let Action::Publish {
            channel: Channel::Readings,
            payload,
        } = &m.action
        else {
            continue;
        };
        if !seen.insert((m.device.clone(), payload.clone())) {
            e.duplicated += 1;
            continue;
        }
        let patient = patient_of[m.device.as_str()].to_string();
        let metrics: Vec<String> = match serde_json::from_str::<Value>(payload) {
            Ok(Value::Array(pack)) => pack
                .iter()
                .filter(|r| r["n"] != "battery")
                .map(|r| r["n"].as_str().unwrap().to_string())
                .collect(),
            Ok(v) if v["readings"].is_array() => v["readings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["metric"].as_str().unwrap().to_string())
                .collect(),
            _ => {
                *e.malformed.entry(m.device.clone()).or_default() += 1;
                continue;
            }
        };
        for metric in metrics {
            *e.readings.entry((patient.clone(), metric)).or_default() += 1;
        }
    }
    e
}

#[test]
fn a_scenario_file_plays_through_the_gateway_as_scripted() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FILE);
    let scenario = Scenario::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let want = expected(&scenario);
    assert!(want.duplicated > 0 && !want.malformed.is_empty());

    // A short fall-cancel window: the replay is 30× faster than the clock the window runs on.
    let v = Vigil::start_env(&["run"], &[("VIGIL_RULES_FALL_CANCEL_SECONDS", "3")]);
    let (devices, _, report) = play_scenario(&v, &path, 30);
    assert_eq!(devices, 10);
    assert_eq!(report["devices"], 10, "{report}");
    assert_eq!(report["unsent"], 0, "{report}");
    // One reconnect after the hub's outage; one drop for it.
    assert_eq!(report["connects"], 11, "{report}");
    assert_eq!(report["drops"], 1, "{report}");

    let token = v.admin(&["token", "create", "--name", "sim"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let alerts = |patient: &str| -> Vec<Value> {
        let (_, body) = v.get(&format!("/api/v1/alerts?patient_id={patient}"), &token);
        body["alerts"].as_array().unwrap().clone()
    };
    // The fall at 8 min is raised after its (3 s) cancel window: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while alerts("sim-p5").is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // Every valid reading stored once, whatever its format, units or delay.
    let from = "2000-01-01T00:00:00Z";
    let to = "2100-01-01T00:00:00Z";
    for ((patient, metric), n) in &want.readings {
        let (status, body) = v.get(
            &format!("/api/v1/patients/{patient}/readings?metric={metric}&from={from}&to={to}"),
            &token,
        );
        assert_eq!(status, 200, "{body}");
        let got = body["readings"].as_array().unwrap();
        assert_eq!(got.len(), *n, "{patient} {metric}");
        for r in got {
            let x = r["value"].as_f64().unwrap();
            let (lo, hi) = match metric.as_str() {
                "temperature" => (35.5, 37.6),  // sent in °F by one device
                "weight" => (50.0, 75.0),       // sent in lb
                "glucose" => (3.0, 15.0),       // sent as SenML kg/m3
                "bp_systolic" => (95.0, 200.0), // sent in Pa by nobody here, mm[Hg]
                "spo2" => (80.0, 100.0),
                _ => (5.0, 160.0),
            };
            assert!((lo..=hi).contains(&x), "{patient} {metric} {x}");
            if patient == "sim-clock" {
                assert!(
                    r["flags"]
                        .as_array()
                        .unwrap()
                        .contains(&"clock_skew".into()),
                    "{r}"
                );
            }
        }
    }
    // Duplicates are counted, not stored.
    let metrics = v.metrics();
    let duplicates: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("vigil_readings_duplicate_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        duplicates >= want.duplicated as f64,
        "{duplicates} < {}",
        want.duplicated
    );

    // Broken messages: rejected with their reason, kept for inspection; nobody else's.
    let (_, rejected) = v.get("/api/v1/rejected?limit=1000", &token);
    let rejected = rejected["rejected"].as_array().unwrap();
    let mut by_device: BTreeMap<String, usize> = BTreeMap::new();
    for r in rejected {
        assert!(
            ["malformed_json", "unknown_metric", "bad_value"]
                .contains(&r["reason"].as_str().unwrap()),
            "{r}"
        );
        *by_device
            .entry(r["device_id"].as_str().unwrap().into())
            .or_default() += 1;
    }
    assert_eq!(by_device, want.malformed);

    // The scripted emergencies: red where scripted, and the cancelled fall not alerted.
    let red = |patient: &str, rule: &str| {
        alerts(patient)
            .iter()
            .any(|a| a["severity"] == "red" && a["rule"].as_str().unwrap().starts_with(rule))
    };
    assert!(red("sim-p3", "spo2_low"), "{:?}", alerts("sim-p3"));
    assert!(red("sim-crisis", "bp_"), "{:?}", alerts("sim-crisis"));
    let falls: Vec<Value> = alerts("sim-p5")
        .into_iter()
        .filter(|a| a["rule"] == "fall")
        .collect();
    assert_eq!(falls.len(), 1, "{falls:?}");

    // Devices: the clock fault noticed, batteries reported, everyone signed off at the end.
    let (_, devices) = v.get("/api/v1/devices", &token);
    let devices = devices["devices"].as_array().unwrap();
    let dev = |id: &str| devices.iter().find(|d| d["id"] == id).unwrap().clone();
    assert!(dev("sim-clock-hub")["clock_skew_at"].is_string());
    assert!(dev("sim-flaky-hub")["clock_skew_at"].is_null());
    assert!(dev("sim-mixed-wearable")["battery"].is_number());
    assert!(dev("sim-mixed-glucose-meter")["battery"].is_number());
    assert!(
        dev("sim-clock-hub")["battery"].is_null(),
        "hubs are mains-powered"
    );
    for d in devices {
        assert_eq!(d["online"], false, "{d}");
    }
}
