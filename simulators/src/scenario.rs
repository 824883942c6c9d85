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
pub const DEMO: &str = include_str!("../scenarios/demo.toml");

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

// ---- the file ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileScenario {
    name: String,
    #[serde(default)]
    description: String,
    seed: Option<u64>,
    start: Option<String>,
    duration: Option<String>,
    utc_offset_hours: Option<i64>,
    patient: Vec<FilePatient>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePatient {
    id: String,
    name: Option<String>,
    condition: String,
    area: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    contacts: Vec<Contact>,
    device: Vec<FileDevice>,
    #[serde(default)]
    episode: Vec<FileEpisode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDevice {
    kind: String,
    id: Option<String>,
    every: Option<String>,
    at: Option<Vec<String>>,
    battery: Option<f64>,
    drain_per_day: Option<f64>,
    format: Option<String>,
    units: Option<String>,
    #[serde(default)]
    fault: Vec<FileFault>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEpisode {
    kind: String,
    at: String,
    #[serde(rename = "for")]
    length: Option<String>,
    to: Option<f64>,
    ramp: Option<String>,
    #[serde(default)]
    cancelled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFault {
    kind: String,
    at: Option<String>,
    #[serde(rename = "for")]
    length: Option<String>,
    hours: Option<f64>,
    share: Option<f64>,
}

/// `90s`, `5m`, `2h`, `3d`, `250ms` (a bare number is seconds) to milliseconds.
pub fn parse_span(s: &str) -> Result<Ms, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((s, ""), |i| s.split_at(i));
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: a time span like 30s, 5m, 2h or 3d"))?;
    let unit_ms = match unit {
        "ms" => 1.0,
        "" | "s" => 1e3,
        "m" | "min" => 6e4,
        "h" => 3.6e6,
        "d" => 8.64e7,
        _ => return Err(format!("{s:?}: unit ms, s, m, h or d")),
    };
    if !n.is_finite() {
        return Err(format!("{s:?}: not a number"));
    }
    Ok((n * unit_ms).round() as Ms)
}

/// A 64-bit mix of the inputs (SplitMix64's finaliser, as the physiology's noise uses).
fn mix(a: u64, b: u64) -> u64 {
    physiology::finalize(a ^ b.wrapping_mul(physiology::GOLDEN))
}

fn mix_str(seed: u64, s: &str) -> u64 {
    s.bytes().fold(seed, |h, b| mix(h, u64::from(b)))
}

impl Scenario {
    pub fn parse(text: &str) -> Result<Scenario, String> {
        Self::build(toml::from_str(text).map_err(|e| e.to_string())?)
    }

    /// A scenario of one patient with one device publishing every `every` (`vigil-sim
    /// device`); `hypoxia_to`: SpO₂ falls to it from the start, over a minute, and stays.
    pub fn one_device(
        device_id: &str,
        kind: &str,
        condition: &str,
        seed: u64,
        every: Ms,
        hypoxia_to: Option<f64>,
    ) -> Result<Scenario, String> {
        let span = |ms: Ms| format!("{ms}ms");
        Self::build(FileScenario {
            name: "device".into(),
            description: String::new(),
            seed: Some(seed),
            start: None,
            duration: None,
            utc_offset_hours: None,
            patient: vec![FilePatient {
                id: "patient".into(),
                name: None,
                condition: condition.into(),
                area: None,
                tags: Vec::new(),
                contacts: Vec::new(),
                device: vec![FileDevice {
                    kind: kind.into(),
                    id: Some(device_id.into()),
                    every: Some(span(every)),
                    at: None,
                    battery: None,
                    drain_per_day: None,
                    format: None,
                    units: None,
                    fault: Vec::new(),
                }],
                episode: hypoxia_to
                    .map(|to| FileEpisode {
                        kind: "hypoxia".into(),
                        at: "0s".into(),
                        length: Some("30d".into()),
                        to: Some(to),
                        ramp: Some("60s".into()),
                        cancelled: false,
                    })
                    .into_iter()
                    .collect(),
            }],
        })
    }

    fn build(f: FileScenario) -> Result<Scenario, String> {
        let seed = f.seed.unwrap_or(1);
        let start = f
            .start
            .map(|s| {
                DateTime::parse_from_rfc3339(&s)
                    .map(|d| d.with_timezone(&Utc))
                    .map_err(|e| format!("start {s:?}: {e} (RFC 3339)"))
            })
            .transpose()?;
        let duration = f.duration.as_deref().map(parse_span).transpose()?;
        let mut patients = Vec::new();
        let mut ids = std::collections::HashSet::new();
        for p in f.patient {
            let at = |what: &str| format!("patient {}: {what}", p.id);
            // Names end up in e-mail headers and pages: the same check as every other entry
            // (issue #15).
            let check = vigil_domain::text::check_field;
            if let Some(name) = &p.name {
                check("name", name).map_err(|e| at(&e))?;
            }
            if let Some(area) = &p.area {
                check("area", area).map_err(|e| at(&e))?;
            }
            for c in &p.contacts {
                check("contact name", &c.name).map_err(|e| at(&e))?;
            }
            let condition: Condition = p.condition.parse().map_err(|e: String| at(&e))?;
            let pseed = mix_str(seed, &p.id);
            let mut devices = Vec::new();
            for d in &p.device {
                let kind: DeviceKind = d.kind.parse().map_err(|e| at(&format!("{e}")))?;
                let id =
                    d.id.clone()
                        .unwrap_or_else(|| format!("{}-{}", p.id, kind.as_str().replace('_', "-")));
                if !ids.insert(id.clone()) {
                    return Err(at(&format!("device id {id:?} twice")));
                }
                devices.push(device(d, kind, id, pseed).map_err(|e| at(&e))?);
            }
            if let Some(first) = devices
                .iter_mut()
                .find(|d| d.kind == DeviceKind::FallDetector)
            {
                first.sends_events = true;
            }
            let mut episodes = Vec::new();
            let mut events = Vec::new();
            for e in &p.episode {
                let start = parse_span(&e.at).map_err(|m| at(&m))?;
                let length = e.length.as_deref().map(parse_span).transpose();
                let length = length.map_err(|m| at(&m))?;
                let ramp = e.ramp.as_deref().map(parse_span).transpose();
                let ramp = ramp.map_err(|m| at(&m))?;
                let need_to = |what: &str| e.to.ok_or_else(|| at(&format!("{what} needs `to`")));
                let kind = match e.kind.as_str() {
                    "fall" | "sos" => {
                        if !devices.iter().any(|d| d.sends_events) {
                            return Err(at(&format!("a {} needs a fall_detector device", e.kind)));
                        }
                        if e.kind == "fall" {
                            events.push((start, "fall"));
                            if e.cancelled {
                                // The wearer presses "I'm OK" soon after (issue #5's cancel).
                                events.push((start + 10 * SECOND, "ok"));
                            }
                        } else {
                            events.push((start, "sos"));
                        }
                        continue;
                    }
                    "hypoxia" => EpisodeKind::Hypoxia(need_to("hypoxia")?),
                    "hypertensive_crisis" => EpisodeKind::HypertensiveCrisis,
                    "fever" => EpisodeKind::Fever(e.to.unwrap_or(38.8)),
                    "hypoglycaemia" => EpisodeKind::Hypoglycaemia,
                    "tachycardia" => EpisodeKind::HeartRate(e.to.unwrap_or(128.0)),
                    "bradycardia" => EpisodeKind::HeartRate(e.to.unwrap_or(42.0)),
                    "weight_gain" => EpisodeKind::WeightGain(need_to("weight_gain")?),
                    other => {
                        return Err(at(&format!(
                            "episode {other:?}: hypoxia, hypertensive_crisis, fever, \
                             hypoglycaemia, tachycardia, bradycardia, weight_gain, fall or sos"
                        )))
                    }
                };
                let length = length.ok_or_else(|| at(&format!("{} needs `for`", e.kind)))?;
                episodes.push(ScriptedEpisode {
                    kind,
                    at: start,
                    length,
                    ramp,
                });
            }
            patients.push(SimPatient {
                name: p.name.clone().unwrap_or_else(|| p.id.clone()),
                id: p.id,
                condition,
                area: p.area,
                tags: p.tags,
                contacts: p.contacts,
                devices,
                episodes,
                events,
                seed: pseed,
            });
        }
        if patients.is_empty() {
            return Err("a scenario needs at least one [[patient]]".into());
        }
        Ok(Scenario {
            name: f.name,
            description: f.description,
            seed,
            start,
            duration,
            utc_offset_hours: f.utc_offset_hours.unwrap_or(7),
            patients,
        })
    }

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

fn device(d: &FileDevice, kind: DeviceKind, id: String, pseed: u64) -> Result<SimDevice, String> {
    let salt = mix_str(pseed, &id);
    let cadence = match (&d.every, &d.at) {
        (Some(_), Some(_)) => return Err(format!("device {id}: `every` or `at`, not both")),
        (Some(e), None) => {
            let ms = parse_span(e)?;
            if ms < 100 {
                return Err(format!("device {id}: every {e} is below 100 ms"));
            }
            Cadence::Every(ms)
        }
        (None, Some(times)) => Cadence::Daily(
            times
                .iter()
                .map(|t| clock_minutes(t).map_err(|e| format!("device {id}: {e}")))
                .collect::<Result<_, _>>()?,
        ),
        (None, None) => default_cadence(kind),
    };
    let battery = match kind {
        DeviceKind::Hub => None,
        _ => {
            let start = d
                .battery
                .unwrap_or_else(|| (60.0 + 40.0 * unit(mix(salt, 1))).round());
            let drain = d.drain_per_day.unwrap_or_else(|| default_drain(kind));
            if !(0.0..=100.0).contains(&start) || drain < 0.0 {
                return Err(format!("device {id}: battery 0–100, drain_per_day ≥ 0"));
            }
            Some((start, drain))
        }
    };
    let format = match d.format.as_deref() {
        None | Some("json") => Format::Json,
        Some("senml") => Format::Senml,
        Some(o) => return Err(format!("device {id}: format {o:?}: json or senml")),
    };
    let us_units = match d.units.as_deref() {
        None | Some("si") => false,
        Some("us") => true,
        Some(o) => return Err(format!("device {id}: units {o:?}: si or us")),
    };
    let mut faults = Vec::new();
    for f in &d.fault {
        let from = f.at.as_deref().map(parse_span).transpose()?.unwrap_or(0);
        let until = match f.length.as_deref() {
            Some(l) => from + parse_span(l)?,
            None => Ms::MAX,
        };
        let share = f.share.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&share) {
            return Err(format!("device {id}: share is between 0 and 1"));
        }
        let kind = match f.kind.as_str() {
            "clock_skew" => {
                let h = f
                    .hours
                    .ok_or_else(|| format!("device {id}: clock_skew needs `hours`"))?;
                FaultKind::ClockSkew((h * HOUR as f64).round() as Ms)
            }
            "offline" => {
                if until == Ms::MAX {
                    return Err(format!("device {id}: offline needs `for`"));
                }
                FaultKind::Offline
            }
            "duplicates" => FaultKind::Duplicates(share),
            "malformed" => FaultKind::Malformed(share),
            o => {
                return Err(format!(
                    "device {id}: fault {o:?}: clock_skew, offline, duplicates or malformed"
                ))
            }
        };
        faults.push(Fault { kind, from, until });
    }
    Ok(SimDevice {
        id,
        kind,
        cadence,
        battery,
        format,
        us_units,
        faults,
        sends_events: false,
        salt,
    })
}

/// `HH:MM` to minutes after midnight.
fn clock_minutes(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?}: a time of day HH:MM");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn default_cadence(kind: DeviceKind) -> Cadence {
    let at =
        |v: &[i64]| Cadence::Daily(v.iter().map(|hhmm| hhmm / 100 * 60 + hhmm % 100).collect());
    match kind {
        DeviceKind::PulseOximeter => at(&[730, 1300, 1930]),
        DeviceKind::BpMonitor => at(&[700, 1900]),
        DeviceKind::Thermometer => at(&[800, 2000]),
        DeviceKind::GlucoseMeter => at(&[630, 1100, 1700, 2130]),
        DeviceKind::Scale => at(&[630]),
        DeviceKind::Wearable => Cadence::Every(5 * SECOND),
        DeviceKind::Hub => Cadence::Every(MINUTE),
        // Supervision message (battery level) hourly, as fall pendants do.
        DeviceKind::FallDetector => Cadence::Every(HOUR),
    }
}

/// Percent a day: wearables need charging every few days, pendants about monthly, spot-check
/// devices last months on their cells (a decision from product sheets' orders of magnitude).
fn default_drain(kind: DeviceKind) -> f64 {
    match kind {
        DeviceKind::Wearable => 30.0,
        DeviceKind::FallDetector => 3.0,
        DeviceKind::PulseOximeter => 2.0,
        DeviceKind::BpMonitor => 1.5,
        DeviceKind::GlucoseMeter | DeviceKind::Thermometer => 1.0,
        DeviceKind::Scale | DeviceKind::Hub => 0.5,
    }
}

/// What each kind reports (within `DeviceKind::allows`).
fn metrics(kind: DeviceKind) -> &'static [Metric] {
    use Metric::*;
    match kind {
        DeviceKind::PulseOximeter => &[Spo2, HeartRate],
        DeviceKind::BpMonitor => &[BpSystolic, BpDiastolic, HeartRate],
        DeviceKind::Thermometer => &[Temperature],
        DeviceKind::GlucoseMeter => &[Glucose],
        DeviceKind::Scale => &[Weight],
        DeviceKind::Wearable => &[HeartRate, RespiratoryRate, Spo2],
        DeviceKind::Hub => &[
            HeartRate,
            Spo2,
            BpSystolic,
            BpDiastolic,
            Temperature,
            RespiratoryRate,
        ],
        DeviceKind::FallDetector => &[],
    }
}

impl SimPatient {
    /// The physiology model with the episodes placed at `origin`.
    pub fn model(&self, origin: DateTime<Utc>, utc_offset_hours: i64) -> physiology::Patient {
        let mut m = physiology::Patient::new(self.condition, self.seed);
        m.utc_offset_hours = utc_offset_hours;
        m.episodes = self
            .episodes
            .iter()
            .map(|e| Episode {
                kind: e.kind,
                start: origin + chrono::Duration::milliseconds(e.at),
                duration: chrono::Duration::milliseconds(e.length),
                ramp: e.ramp.map(chrono::Duration::milliseconds),
            })
            .collect();
        m
    }
}

impl Cadence {
    /// Measurement times in [from, until).
    fn times(
        &self,
        origin: DateTime<Utc>,
        offset_h: i64,
        salt: u64,
        from: Ms,
        until: Ms,
    ) -> Vec<Ms> {
        let mut out = Vec::new();
        if from >= until {
            return out;
        }
        match self {
            Cadence::Every(p) => {
                // Each device starts at its own phase, so a ward's devices do not all speak at
                // the same instant.
                let phase = (mix(salt, 2) % *p as u64) as Ms;
                let mut k = (from - phase).div_euclid(*p);
                loop {
                    let t = phase + k * p;
                    if t >= until {
                        break;
                    }
                    if t >= from {
                        out.push(t);
                    }
                    k += 1;
                }
            }
            Cadence::Daily(minutes) => {
                // Local midnight on or before origin + from.
                let local0 = origin.timestamp_millis() + offset_h * HOUR;
                let first_day = (local0 + from).div_euclid(DAY);
                let last_day = (local0 + until).div_euclid(DAY);
                for day in first_day..=last_day {
                    for (i, min) in minutes.iter().enumerate() {
                        let late = (unit(mix(mix(salt, day as u64), i as u64)) * 15.0 * 60e3) as Ms;
                        let t = day * DAY + min * MINUTE + late - local0;
                        if (from..until).contains(&t) {
                            out.push(t);
                        }
                    }
                }
                out.sort_unstable();
            }
        }
        out
    }
}

impl SimDevice {
    /// The fixed interval between its messages in whole seconds (at least 1), when it has
    /// one: what Vigil should expect to hear from it (`vigil device add --interval`).
    pub fn interval_s(&self) -> Option<i64> {
        match self.cadence {
            Cadence::Every(ms) => Some((ms / SECOND).max(1)),
            Cadence::Daily(_) => None,
        }
    }

    fn battery_at(&self, t: Ms) -> Option<f64> {
        self.battery
            .map(|(b0, drain)| (b0 - drain * t as f64 / DAY as f64).max(0.0))
    }

    /// When the battery runs flat, if it does.
    fn dies_at(&self) -> Option<Ms> {
        let (b0, drain) = self.battery?;
        (drain > 0.0).then(|| (b0 / drain * DAY as f64).ceil() as Ms)
    }

    /// When it first reports under 20 % (the dashboard's battery-low mark).
    fn low_at(&self) -> Option<Ms> {
        let (b0, drain) = self.battery?;
        let low = vigil_domain::views::BATTERY_LOW_PERCENT;
        if b0 < low {
            return Some(SECOND);
        }
        (drain > 0.0).then(|| ((b0 - low) / drain * DAY as f64).ceil() as Ms + 1)
    }

    fn offline_at(&self, t: Ms) -> Option<Fault> {
        self.faults
            .iter()
            .find(|f| f.kind == FaultKind::Offline && (f.from..f.until).contains(&t))
            .copied()
    }

    fn fault_share(&self, t: Ms, pick: impl Fn(FaultKind) -> Option<f64>) -> Option<f64> {
        self.faults
            .iter()
            .filter(|f| (f.from..f.until).contains(&t))
            .find_map(|f| pick(f.kind))
    }

    /// This device's messages in [from, until).
    fn window(
        &self,
        p: &SimPatient,
        model: &physiology::Patient,
        origin: DateTime<Utc>,
        offset_h: i64,
        from: Ms,
        until: Ms,
    ) -> Vec<Message> {
        let dead = self.dies_at().unwrap_or(Ms::MAX);
        let mut out = Vec::new();
        let mut emit = |t: Ms, action: Action| {
            out.push(Message {
                t,
                device: self.id.clone(),
                action,
            })
        };
        // What happens at `at` (measured or pressed), sent at `sent`.
        let mut things: Vec<(Ms, Ms, Thing)> = Vec::new();
        let sent_at = |at: Ms| self.offline_at(at).map_or(at, |f| f.until);
        let collect = |lo: Ms, hi: Ms, things: &mut Vec<(Ms, Ms, Thing)>| {
            for at in self
                .cadence
                .times(origin, offset_h, self.salt, lo, hi.min(dead))
            {
                things.push((at, sent_at(at), Thing::Measure));
            }
            if self.sends_events {
                for (at, name) in &p.events {
                    if (lo..hi.min(dead)).contains(at) {
                        things.push((*at, sent_at(*at), Thing::Event(name)));
                    }
                }
            }
            if let Some(at) = self.low_at().filter(|at| (lo..hi.min(dead)).contains(at)) {
                things.push((at, sent_at(at), Thing::Event("battery_low")));
            }
        };
        collect(from, until, &mut things);
        // Buffered while offline, sent when back in [from, until).
        for f in self.faults.iter().filter(|f| f.kind == FaultKind::Offline) {
            if (from..until).contains(&f.until) && f.from < from {
                collect(f.from, from, &mut things);
            }
        }
        things.retain(|(_, sent, _)| (from..until).contains(sent) && *sent < dead);
        things.sort_by_key(|(at, sent, _)| (*sent, *at));

        let mut timeline: Vec<(Ms, Action)> = Vec::new();
        if (from..until).contains(&0) {
            timeline.push((0, Action::Connect));
        }
        for f in self.faults.iter().filter(|f| f.kind == FaultKind::Offline) {
            if (from..until).contains(&f.from) && f.from < dead {
                timeline.push((f.from, Action::Drop));
            }
            if (from..until).contains(&f.until) && f.until < dead {
                timeline.push((f.until, Action::Connect));
            }
        }
        if (from..until).contains(&dead) {
            timeline.push((dead, Action::Drop));
        }
        for (at, sent, thing) in things {
            for payload in self.payloads(model, origin, at, thing) {
                timeline.push((sent, payload));
            }
        }
        // Connects before what is sent at the same instant; a drop after it.
        timeline.sort_by_key(|(t, a)| {
            (
                *t,
                match a {
                    Action::Connect => 0,
                    Action::Publish { .. } => 1,
                    Action::Drop => 2,
                },
            )
        });
        for (t, a) in timeline {
            emit(t, a);
        }
        out
    }

    /// What the device publishes for `thing` happening at `at` (twice when duplicated).
    fn payloads(
        &self,
        model: &physiology::Patient,
        origin: DateTime<Utc>,
        at: Ms,
        thing: Thing,
    ) -> Vec<Action> {
        let skew = self
            .fault_share(at, |k| match k {
                FaultKind::ClockSkew(ms) => Some(ms as f64),
                _ => None,
            })
            .unwrap_or(0.0) as Ms;
        let real = origin + chrono::Duration::milliseconds(at);
        let ts = real.timestamp_millis() + skew;
        let h = mix(self.salt, at as u64);
        let (channel, payload) = match thing {
            Thing::Event(name) => (
                Channel::Events,
                json!({"event": name, "ts": ts}).to_string(),
            ),
            Thing::Measure => {
                let malformed = self.fault_share(at, |k| match k {
                    FaultKind::Malformed(s) => Some(s),
                    _ => None,
                });
                let payload = match malformed {
                    Some(share) if unit(mix(h, 3)) < share => malformed_payload(h, ts),
                    _ => self.reading_payload(model, real, ts, at),
                };
                (Channel::Readings, payload)
            }
        };
        let once = Action::Publish { channel, payload };
        let dup = self.fault_share(at, |k| match k {
            FaultKind::Duplicates(s) => Some(s),
            _ => None,
        });
        match dup {
            Some(share) if unit(mix(h, 4)) < share => vec![once.clone(), once],
            _ => vec![once],
        }
    }

    fn reading_payload(
        &self,
        model: &physiology::Patient,
        real: DateTime<Utc>,
        ts: i64,
        at: Ms,
    ) -> String {
        let battery = self.battery_at(at).map(f64::round);
        let values: Vec<(Metric, f64)> = metrics(self.kind)
            .iter()
            .map(|m| (*m, model.value(*m, real)))
            .collect();
        // A fall detector's supervision message carries only its battery: SenML can say that.
        let format = if values.is_empty() {
            Format::Senml
        } else {
            self.format
        };
        match format {
            Format::Json => {
                let readings: Vec<_> = values
                    .iter()
                    .map(|(m, v)| {
                        let (v, u) = if self.us_units {
                            us_unit(*m, *v)
                        } else {
                            (*v, m.unit())
                        };
                        json!({"metric": m.as_str(), "value": v, "unit": u})
                    })
                    .collect();
                let mut o = json!({"ts": ts, "readings": readings});
                if let Some(b) = battery {
                    o["battery"] = json!(b);
                }
                o.to_string()
            }
            Format::Senml => {
                let mut pack = Vec::new();
                let base = json!({"bn": format!("urn:dev:id:{}:", self.id), "bt": ts as f64 / 1e3});
                let mut first = Some(base);
                for (m, v) in &values {
                    let (v, u) = senml_unit(*m, *v);
                    let mut r = first.take().unwrap_or_else(|| json!({}));
                    r["n"] = json!(m.as_str());
                    r["u"] = json!(u);
                    r["v"] = json!(v);
                    pack.push(r);
                }
                if let Some(b) = battery {
                    let mut r = first.take().unwrap_or_else(|| json!({}));
                    r["n"] = json!("battery");
                    r["u"] = json!("%EL");
                    r["v"] = json!(b);
                    pack.push(r);
                }
                serde_json::Value::Array(pack).to_string()
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Thing {
    Measure,
    Event(&'static str),
}

fn round_to(v: f64, step: f64) -> f64 {
    (v / step).round() * step
}

/// Values in US customary units, as many home devices sold there report them.
fn us_unit(m: Metric, v: f64) -> (f64, &'static str) {
    match m {
        Metric::Temperature => (round_to(v * 9.0 / 5.0 + 32.0, 0.1), "[degF]"),
        Metric::Weight => (round_to(v / 0.453_592_37, 0.1), "[lb_av]"),
        Metric::Glucose => ((v * 18.016).round(), "mg/dL"),
        _ => (v, m.unit()),
    }
}

/// SenML units (RFC 8428 §12.1): ratios for %, pascals for pressure, kg/m3 for glucose.
fn senml_unit(m: Metric, v: f64) -> (f64, &'static str) {
    match m {
        Metric::Spo2 => (round_to(v / 100.0, 0.001), "%"),
        Metric::BpSystolic | Metric::BpDiastolic => ((v * 133.322).round(), "Pa"),
        Metric::HeartRate => (v, "beat/min"),
        Metric::RespiratoryRate => (v, "1/min"),
        Metric::Temperature => (v, "Cel"),
        Metric::Weight => (v, "kg"),
        // mmol/L → mg/dL (× 18.016) → kg/m3 (× 0.01).
        Metric::Glucose => (round_to(v * 0.180_16, 0.0001), "kg/m3"),
    }
}

/// Broken payloads of the kinds devices really send: cut off, a metric the contract does not
/// know, a value as text.
fn malformed_payload(h: u64, ts: i64) -> String {
    match mix(h, 5) % 3 {
        0 => format!("{{\"ts\": {ts}, \"readings\": [{{\"metric\": \"spo2\", \"val"),
        1 => json!({"ts": ts, "metric": "spo3", "value": 97}).to_string(),
        _ => json!({"ts": ts, "metric": "heart_rate", "value": "seventy"}).to_string(),
    }
}

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

    const WARD: &str = include_str!("../scenarios/ward-emergencies.toml");

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
        assert_eq!(parse_span("1.5h"), Ok(5_400_000));
        assert!(parse_span("5 parsecs").is_err());
        // The demo's file is valid.
        let demo = Scenario::parse(DEMO).unwrap();
        assert_eq!(demo.patients.len(), 6);
    }
}
