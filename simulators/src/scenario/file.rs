//! The scenario file (TOML, docs/scenarios.md): its shape, and turning it into a checked
//! [`Scenario`].

use super::*;

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

/// `90s`, `5m`, `2h`, `3d`, `250ms` (a bare number is seconds) to milliseconds
/// (`vigil_domain::span`, the grammar config and rule files use too).
pub fn parse_span(s: &str) -> Result<Ms, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<Ms>()
            .ok()
            .and_then(|n| n.checked_mul(1000))
            .ok_or_else(|| format!("{t:?}: too long"));
    }
    vigil_domain::span::parse_ms(t)
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
pub(super) fn metrics(kind: DeviceKind) -> &'static [Metric] {
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
