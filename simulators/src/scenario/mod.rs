//! Scenario files (issue #7): patients with a condition, their devices, scripted episodes and
//! device faults, as a TOML file — turned into the exact stream of MQTT messages each device
//! sends. The demo, the scenario tests and anyone evaluating Vigil run the same files.
//!
//! The stream is a pure function of (file, origin): scenario time `t` (milliseconds from the
//! start) maps to the wall time `origin + t`, which is both the time physiology is evaluated
//! at and the `ts` the device reports. A value depends on (seed, metric, time) only
//! ([`physiology`]), so a window of the stream can be produced without the ones before it and
//! a replay is byte-identical. `docs/scenarios.md` describes the file format.
//!
//! Device behaviour follows what the kinds do at home: spot-check devices measure on a daily
//! schedule in local time (home BP morning and evening — ESH 2023; glucose fasting and before
//! meals; weight on waking — heart failure self-care), wearables every few seconds, hubs every
//! minute, fall detectors send an hourly supervision message (`DeviceKind::default_interval_s`).
//! Batteries drain by kind; below 20 % a device sends `battery_low` once, at 0 % it drops off
//! the network without saying goodbye (the broker publishes its last will).

use crate::physiology::{self, unit, Condition, Episode, EpisodeKind};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use vigil_domain::{DeviceKind, Metric};
pub use vigil_protocol::Channel;

/// Milliseconds of scenario time.
pub type Ms = i64;

const SECOND: Ms = 1_000;
const MINUTE: Ms = 60 * SECOND;
const HOUR: Ms = 60 * MINUTE;
const DAY: Ms = 24 * HOUR;

/// The demo's scenario (`vigil demo`), shipped in the binary.
pub const DEMO: &str = include_str!("../../scenarios/demo.toml");

/// A parsed, checked scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub seed: u64,
    /// A fixed origin (for a replay that reads the same every time); `None`: when it runs.
    pub start: Option<DateTime<Utc>>,
    /// `None`: runs until stopped (the demo).
    pub duration: Option<Ms>,
    /// Hours east of UTC where the patients live; daily schedules and rhythms follow it.
    pub utc_offset_hours: i64,
    pub patients: Vec<SimPatient>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimPatient {
    pub id: String,
    pub name: String,
    pub condition: Condition,
    pub area: Option<String>,
    pub tags: Vec<String>,
    pub contacts: Vec<Contact>,
    pub devices: Vec<SimDevice>,
    episodes: Vec<ScriptedEpisode>,
    /// (time, event name): falls, their "I'm OK" cancels and SOS presses.
    events: Vec<(Ms, &'static str)>,
    seed: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub name: String,
    pub email: String,
    /// `vi` or `en`.
    pub lang: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct ScriptedEpisode {
    kind: EpisodeKind,
    at: Ms,
    length: Ms,
    ramp: Option<Ms>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimDevice {
    pub id: String,
    pub kind: DeviceKind,
    cadence: Cadence,
    /// Battery at the start and its drain; `None` for mains-powered hubs.
    battery: Option<(f64, f64)>,
    format: Format,
    us_units: bool,
    faults: Vec<Fault>,
    /// Events of the patient this device sends (the first fall detector sends them).
    sends_events: bool,
    salt: u64,
}

#[derive(Debug, Clone, PartialEq)]
enum Cadence {
    Every(Ms),
    /// Minutes after local midnight, each day (plus up to 15 min of the patient's own lateness).
    Daily(Vec<i64>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Json,
    Senml,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Fault {
    kind: FaultKind,
    from: Ms,
    until: Ms,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum FaultKind {
    /// The device's clock is this many milliseconds off.
    ClockSkew(Ms),
    /// No connection; what it measures is kept and sent when it is back (a hub's buffer).
    Offline,
    /// This share of messages is delivered twice.
    Duplicates(f64),
    /// This share of messages is broken (bad JSON, unknown metric, a value as text).
    Malformed(f64),
}

/// One thing a device does at scenario time `t`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub t: Ms,
    pub device: String,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Connect with its last will (`offline`, retained) and say `online` (retained).
    Connect,
    /// Lose the connection without a DISCONNECT: the broker publishes the last will.
    Drop,
    Publish {
        channel: Channel,
        payload: String,
    },
}

/// A 64-bit mix of the inputs (SplitMix64's finaliser, as the physiology's noise uses).
fn mix(a: u64, b: u64) -> u64 {
    physiology::finalize(a ^ b.wrapping_mul(physiology::GOLDEN))
}

fn mix_str(seed: u64, s: &str) -> u64 {
    s.bytes().fold(seed, |h, b| mix(h, u64::from(b)))
}

impl Scenario {
    /// Every message of every device in [from, until), in time order (ties: patient, device,
    /// then the device's own order).
    pub fn window(&self, origin: DateTime<Utc>, from: Ms, until: Ms) -> Vec<Message> {
        let mut all: Vec<Message> = self
            .patients
            .iter()
            .flat_map(|p| {
                let model = p.model(origin, self.utc_offset_hours);
                p.devices.iter().flat_map(move |d| {
                    d.window(p, &model, origin, self.utc_offset_hours, from, until)
                })
            })
            .collect();
        all.sort_by_key(|m| m.t); // stable: keeps the tie order above
        all
    }
}

impl Scenario {
    /// One device's messages in [from, until) (empty for an unknown id).
    pub fn device_window(
        &self,
        id: &str,
        origin: DateTime<Utc>,
        from: Ms,
        until: Ms,
    ) -> Vec<Message> {
        for p in &self.patients {
            if let Some(d) = p.devices.iter().find(|d| d.id == id) {
                let model = p.model(origin, self.utc_offset_hours);
                return d.window(p, &model, origin, self.utc_offset_hours, from, until);
            }
        }
        Vec::new()
    }
}

mod file;
mod stream;

pub use file::parse_span;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    /// Minutes after local midnight.
    fn local_minutes(t: DateTime<Utc>, offset_h: i64) -> u32 {
        let l = t + chrono::Duration::hours(offset_h);
        l.hour() * 60 + l.minute()
    }
    use chrono::TimeZone;
    use serde_json::Value;

    const WARD: &str = include_str!("../../scenarios/ward-emergencies.toml");

    fn origin() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 2, 0, 0).unwrap() // 09:00 in Vietnam
    }

    fn of(msgs: &[Message], device: &str) -> Vec<(Ms, Value)> {
        msgs.iter()
            .filter(|m| m.device == device)
            .filter_map(|m| match &m.action {
                Action::Publish { payload, .. } => {
                    Some((m.t, serde_json::from_str(payload).unwrap_or(Value::Null)))
                }
                _ => None,
            })
            .collect()
    }

    fn value(v: &Value, metric: &str) -> f64 {
        v["readings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["metric"] == metric)
            .unwrap()["value"]
            .as_f64()
            .unwrap()
    }

    #[test]
    fn a_seeded_scenario_replays_byte_for_byte_in_any_windows() {
        let s = Scenario::parse(WARD).unwrap();
        let all = s.window(origin(), 0, 12 * MINUTE);
        assert_eq!(
            all,
            Scenario::parse(WARD)
                .unwrap()
                .window(origin(), 0, 12 * MINUTE)
        );
        // Produced in pieces (as the player does), the stream is the same.
        let mut pieces = s.window(origin(), 0, 5 * MINUTE);
        pieces.extend(s.window(origin(), 5 * MINUTE, 7 * MINUTE));
        pieces.extend(s.window(origin(), 7 * MINUTE, 12 * MINUTE));
        assert_eq!(all, pieces);
        let by_device: usize = s
            .patients
            .iter()
            .flat_map(|p| &p.devices)
            .map(|d| s.device_window(&d.id, origin(), 0, 12 * MINUTE).len())
            .sum();
        assert_eq!(by_device, all.len());
        // Another seed, other noise.
        let other = Scenario::parse(&WARD.replace("seed = 7", "seed = 8")).unwrap();
        assert_ne!(all, other.window(origin(), 0, 12 * MINUTE));
        assert!(all.windows(2).all(|w| w[0].t <= w[1].t));
        // A summary that a change to the model or the file would move: 12 min of this ward.
        let publishes = all
            .iter()
            .filter(|m| matches!(m.action, Action::Publish { .. }))
            .count();
        assert!((150..260).contains(&publishes), "{publishes}");
    }

    #[test]
    fn the_scripted_emergencies_happen_when_scripted() {
        let s = Scenario::parse(WARD).unwrap();
        let all = s.window(origin(), 0, 12 * MINUTE);
        let ox = of(&all, "sim-p3-pulse-oximeter");
        assert_eq!(ox.len(), 36, "every 20 s for 12 min");
        for (t, v) in &ox {
            let spo2 = value(v, "spo2");
            // Each message reports its own scenario time.
            assert_eq!(v["ts"], origin().timestamp_millis() + t);
            if *t < 5 * MINUTE {
                assert!(spo2 >= 92.0, "t={t} {spo2}");
            } else if (6 * MINUTE..7 * MINUTE + 30 * SECOND).contains(t) {
                assert!(spo2 <= 88.0, "t={t} {spo2}");
            } else if *t >= 9 * MINUTE {
                assert!(spo2 >= 92.0, "t={t} {spo2}");
            }
        }
        let events: Vec<(Ms, String)> = of(&all, "sim-p5-fall-detector")
            .into_iter()
            .filter(|(_, v)| v.get("event").is_some())
            .map(|(t, v)| (t, v["event"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(
            events,
            [
                (2 * MINUTE, "fall".to_string()),
                (2 * MINUTE + 10 * SECOND, "ok".to_string()),
                (8 * MINUTE, "fall".to_string()),
            ]
        );
        let bp = of(&all, "sim-crisis-bp-monitor");
        let crisis = bp
            .iter()
            .filter(|(_, v)| value(v, "bp_systolic") >= 180.0)
            .map(|(t, _)| *t)
            .collect::<Vec<_>>();
        assert!(crisis.len() >= 5, "{crisis:?}");
        assert!(crisis.iter().all(|t| (4 * MINUTE..11 * MINUTE).contains(t)));
    }

    #[test]
    fn device_faults_look_like_the_real_ones() {
        let s = Scenario::parse(WARD).unwrap();
        let all = s.window(origin(), 0, 12 * MINUTE);
        let o = origin().timestamp_millis();
        // Clock five hours fast.
        for (t, v) in of(&all, "sim-clock-hub") {
            assert_eq!(v["ts"], o + t + 5 * HOUR);
        }
        // Offline 2–6 min: a drop, a reconnect, and the kept readings sent at 6 min, in order.
        let flaky: Vec<&Message> = all.iter().filter(|m| m.device == "sim-flaky-hub").collect();
        let at = |a: &Action| {
            flaky
                .iter()
                .filter(|m| &m.action == a)
                .map(|m| m.t)
                .collect::<Vec<_>>()
        };
        assert_eq!(at(&Action::Connect), [0, 6 * MINUTE]);
        assert_eq!(at(&Action::Drop), [2 * MINUTE]);
        let sent = of(&all, "sim-flaky-hub");
        assert!(sent
            .iter()
            .all(|(t, _)| !(2 * MINUTE..6 * MINUTE).contains(t)));
        let flushed: Vec<i64> = sent
            .iter()
            .filter(|(t, _)| *t == 6 * MINUTE)
            .map(|(_, v)| v["ts"].as_i64().unwrap() - o)
            .collect();
        assert!(flushed.len() >= 8, "{flushed:?}");
        assert!(flushed.windows(2).all(|w| w[0] <= w[1]));
        assert!(flushed[0] >= 2 * MINUTE && flushed[0] < 2 * MINUTE + 30 * SECOND);
        // About a fifth delivered twice: the same payload back to back.
        let twice = sent.windows(2).filter(|w| w[0] == w[1]).count();
        assert!((2..=12).contains(&twice), "{twice}");
        // US units, SenML, broken firmware.
        let thermo = of(&all, "sim-mixed-thermometer");
        let f = &thermo[0].1["readings"][0];
        assert_eq!(f["unit"], "[degF]");
        assert!((96.0..=99.8).contains(&f["value"].as_f64().unwrap()), "{f}");
        assert_eq!(
            of(&all, "sim-mixed-scale")[0].1["readings"][0]["unit"],
            "[lb_av]"
        );
        let senml = &of(&all, "sim-mixed-glucose-meter")[0].1;
        assert_eq!(senml[0]["bn"], "urn:dev:id:sim-mixed-glucose-meter:");
        assert_eq!(senml[0]["u"], "kg/m3");
        assert_eq!(senml[1]["u"], "%EL");
        let wearable: Vec<&Message> = all
            .iter()
            .filter(|m| {
                m.device == "sim-mixed-wearable" && matches!(m.action, Action::Publish { .. })
            })
            .collect();
        let broken = wearable
            .iter()
            .filter(|m| match &m.action {
                Action::Publish { payload, .. } => serde_json::from_str::<Value>(payload)
                    .map_or(true, |v| v.get("readings").is_none()),
                _ => false,
            })
            .count();
        assert!(
            broken * 8 > wearable.len() && broken * 2 < wearable.len(),
            "{broken} of {}",
            wearable.len()
        );
    }

    #[test]
    fn batteries_drain_warn_and_die() {
        let s = Scenario::parse(
            r#"name = "battery"
            [[patient]]
            id = "b"
            condition = "healthy_elderly"
            device = [{ kind = "wearable", every = "1m", battery = 21, drain_per_day = 24 }]"#,
        )
        .unwrap();
        // 1 %/h: under 20 % after an hour, flat after 21 h.
        let all = s.window(origin(), 0, DAY);
        let low: Vec<Ms> = of(&all, "b-wearable")
            .iter()
            .filter(|(_, v)| v["event"] == "battery_low")
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(low.len(), 1);
        assert!((HOUR..HOUR + MINUTE).contains(&low[0]), "{low:?}");
        let said = of(&all, "b-wearable")
            .iter()
            .find(|(_, v)| v["event"] == "battery_low")
            .map(|(_, v)| v["battery"].clone());
        assert_eq!(said, Some(json!(20.0)), "the event says how low");
        let drop = all.iter().find(|m| m.action == Action::Drop).expect("dies");
        assert_eq!(drop.t, 21 * HOUR);
        assert!(all.iter().all(|m| m.t <= drop.t));
        let readings = of(&all, "b-wearable");
        let first = readings.first().unwrap().1["battery"].as_f64().unwrap();
        let last = readings.last().unwrap().1["battery"].as_f64().unwrap();
        assert_eq!((first, last), (21.0, 0.0));
    }

    #[test]
    fn spot_check_devices_keep_a_daily_schedule_in_local_time() {
        let s = Scenario::parse(
            r#"name = "schedule"
            [[patient]]
            id = "s"
            condition = "hypertension"
            device = [{ kind = "bp_monitor" }, { kind = "scale", at = ["06:00"] }]"#,
        )
        .unwrap();
        let all = s.window(origin(), 0, 3 * DAY);
        let local = |t: Ms| local_minutes(origin() + chrono::Duration::milliseconds(t), 7);
        let bp: Vec<u32> = of(&all, "s-bp-monitor")
            .iter()
            .map(|(t, _)| local(*t))
            .collect();
        // Starting at 09:00: evening, then morning and evening twice, then the last morning.
        assert_eq!(bp.len(), 6, "{bp:?}");
        for m in &bp {
            assert!((420..435).contains(m) || (1140..1155).contains(m), "{bp:?}");
        }
        let scale: Vec<u32> = of(&all, "s-scale").iter().map(|(t, _)| local(*t)).collect();
        assert_eq!(scale.len(), 3);
        assert!(scale.iter().all(|m| (360..375).contains(m)), "{scale:?}");
    }

    #[test]
    fn one_device_deteriorates_when_asked() {
        let s = Scenario::one_device(
            "ox-1",
            "pulse_oximeter",
            "healthy_elderly",
            3,
            10_000,
            Some(84.0),
        )
        .unwrap();
        let all = s.window(origin(), 0, 5 * MINUTE);
        let ox = of(&all, "ox-1");
        assert_eq!(ox.len(), 30);
        assert!(value(&ox[0].1, "spo2") >= 92.0, "{:?}", ox[0]);
        assert!(ox[12..].iter().all(|(_, v)| value(v, "spo2") <= 86.0));
        assert!(Scenario::one_device("x", "toaster", "copd", 1, 1000, None).is_err());
    }

    #[test]
    fn mistakes_in_a_file_are_named() {
        let err = |text: &str| Scenario::parse(text).unwrap_err();
        let base = "name = \"x\"\n[[patient]]\nid = \"p\"\ncondition = \"copd\"\n";
        assert!(err(&format!("{base}device = [{{ kind = \"toaster\" }}]")).contains("patient p"));
        assert!(err(&format!(
            "{base}device = [{{ kind = \"hub\" }}]\nepisode = [{{ kind = \"fall\", at = \"1m\" }}]"
        ))
        .contains("fall_detector"));
        assert!(err(&format!(
            "{base}device = [{{ kind = \"hub\" }}]\nepisode = [{{ kind = \"hypoxia\", at = \"1m\", for = \"1m\" }}]"
        ))
        .contains("needs `to`"));
        assert!(err(&format!(
            "{base}device = [{{ kind = \"hub\", evry = \"1m\" }}]"
        ))
        .contains("evry"));
        // Issue #15: a line break in a name is refused, naming the patient and the field.
        let e = err(&format!(
            "{base}name = \"An\\r\\nBcc: x@y\"\ndevice = [{{ kind = \"hub\" }}]"
        ));
        assert!(
            e.contains("patient p: name contains a control character"),
            "{e}"
        );
        assert_eq!(parse_span("90s"), Ok(90_000));
        assert_eq!(parse_span("1h30m"), Ok(5_400_000));
        assert_eq!(parse_span("45"), Ok(45_000));
        assert!(parse_span("5 parsecs").is_err());
        // The demo's file is valid.
        let demo = Scenario::parse(DEMO).unwrap();
        assert_eq!(demo.patients.len(), 6);
    }
}
