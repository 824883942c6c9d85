//! What each simulated device sends and when: cadences, batteries, faults and payload
//! formats, as a pure function of the scenario and the time window.

use super::file::metrics;
use super::*;

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
    pub(super) fn window(
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
            Thing::Event(name) => {
                let mut e = json!({"event": name, "ts": ts});
                // A low battery says how low (docs/mqtt.md, issue #21).
                if name == "battery_low" {
                    if let Some(b) = self.battery_at(at) {
                        e["battery"] = json!(b.round());
                    }
                }
                (Channel::Events, e.to_string())
            }
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
