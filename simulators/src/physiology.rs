//! Plausible vital signs for simulated patients (issue #7): a baseline per condition, a daily
//! rhythm, measurement noise and scripted episodes — reproducible from a seed. A value depends
//! only on (seed, metric, time), never on how many values were asked for before, so a scenario
//! replays the same at any speed and in any order.
//!
//! Baselines and episode values follow common clinical figures: COPD SpO₂ target 88–92 % (BTS
//! 2017 oxygen guideline), hypertensive crisis ≥ 180/120 mm Hg (ACC/AHA 2017), level 2
//! hypoglycaemia < 3.0 mmol/L (ADA), fever ≥ 38.0 °C, fluid retention ≥ 2 kg in 3 days (heart
//! failure self-care advice); circadian swings: body temperature lowest around 04:00 and highest
//! late afternoon (≈ ±0.3 °C), blood pressure's morning surge, heart rate lower in sleep.

use chrono::{DateTime, Timelike, Utc};
use vigil_domain::Metric;

/// What the patient lives with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    HealthyElderly,
    Copd,
    HeartFailure,
    Diabetes,
    Hypertension,
}

impl std::str::FromStr for Condition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "healthy_elderly" => Condition::HealthyElderly,
            "copd" => Condition::Copd,
            "heart_failure" => Condition::HeartFailure,
            "diabetes" => Condition::Diabetes,
            "hypertension" => Condition::Hypertension,
            _ => {
                return Err(format!(
                    "{s:?}: healthy_elderly, copd, heart_failure, diabetes or hypertension"
                ))
            }
        })
    }
}

/// A scripted change, e.g. "SpO₂ falls to 86 % at t = 5 min for 3 min".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Episode {
    pub kind: EpisodeKind,
    pub start: DateTime<Utc>,
    pub duration: chrono::Duration,
    /// How long the change takes to build up and to wear off; `None`: a fifth of the
    /// episode, at most 10 minutes.
    pub ramp: Option<chrono::Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EpisodeKind {
    /// SpO₂ down to this value.
    Hypoxia(f64),
    /// Systolic/diastolic up to 185/122.
    HypertensiveCrisis,
    /// Temperature up to this value.
    Fever(f64),
    /// Glucose down to 2.8 mmol/L.
    Hypoglycaemia,
    /// Heart rate to this value (tachycardia above 100, bradycardia below 50).
    HeartRate(f64),
    /// Weight up by this many kg, gained over the whole episode and kept after it.
    WeightGain(f64),
}

/// One simulated patient.
#[derive(Debug, Clone, PartialEq)]
pub struct Patient {
    pub condition: Condition,
    pub seed: u64,
    pub episodes: Vec<Episode>,
    /// Hours east of UTC where the patient lives (the daily rhythm follows local time).
    pub utc_offset_hours: i64,
}

impl Patient {
    pub fn new(condition: Condition, seed: u64) -> Patient {
        Patient {
            condition,
            seed,
            episodes: Vec::new(),
            utc_offset_hours: 7,
        }
    }

    fn baseline(&self, m: Metric) -> f64 {
        use Condition::*;
        match (m, self.condition) {
            (Metric::HeartRate, Copd) => 86.0,
            (Metric::HeartRate, HeartFailure) => 82.0,
            (Metric::HeartRate, _) => 72.0,
            (Metric::Spo2, Copd) => 90.0,
            (Metric::Spo2, HeartFailure) => 95.0,
            (Metric::Spo2, _) => 96.5,
            (Metric::BpSystolic, Hypertension) => 152.0,
            (Metric::BpSystolic, HeartFailure) => 116.0,
            (Metric::BpSystolic, Diabetes) => 136.0,
            (Metric::BpSystolic, _) => 130.0,
            (Metric::BpDiastolic, Hypertension) => 94.0,
            (Metric::BpDiastolic, HeartFailure) => 70.0,
            (Metric::BpDiastolic, _) => 78.0,
            (Metric::Temperature, _) => 36.6,
            (Metric::RespiratoryRate, Copd) => 20.0,
            (Metric::RespiratoryRate, HeartFailure) => 18.0,
            (Metric::RespiratoryRate, _) => 15.0,
            (Metric::Glucose, Diabetes) => 8.5,
            (Metric::Glucose, _) => 5.6,
            (Metric::Weight, HeartFailure) => 64.0,
            (Metric::Weight, _) => 58.0,
        }
    }

    /// The daily rhythm's offset at local hour `h` (0–24).
    fn circadian(m: Metric, h: f64) -> f64 {
        // A cosine with its low at `low` o'clock and amplitude `a`.
        let wave = |a: f64, low: f64| -a * ((h - low) / 24.0 * std::f64::consts::TAU).cos();
        match m {
            Metric::Temperature => wave(0.3, 4.0),
            Metric::HeartRate => wave(6.0, 3.0),
            Metric::BpSystolic => wave(8.0, 2.0),
            Metric::BpDiastolic => wave(5.0, 2.0),
            Metric::RespiratoryRate => wave(1.0, 3.0),
            _ => 0.0,
        }
    }

    /// Measurement noise's standard deviation.
    fn noise_sd(m: Metric) -> f64 {
        match m {
            Metric::HeartRate => 2.5,
            Metric::Spo2 => 0.7,
            Metric::BpSystolic => 4.0,
            Metric::BpDiastolic => 3.0,
            Metric::Temperature => 0.1,
            Metric::RespiratoryRate => 1.0,
            Metric::Glucose => 0.4,
            Metric::Weight => 0.15,
        }
    }

    /// The value of `m` at `t`, as a device would report it (rounded like one).
    pub fn value(&self, m: Metric, t: DateTime<Utc>) -> f64 {
        let local = t + chrono::Duration::hours(self.utc_offset_hours);
        let h = f64::from(local.hour()) + f64::from(local.minute()) / 60.0;
        let mut v = self.baseline(m) + Self::circadian(m, h);
        for e in &self.episodes {
            v = e.apply(m, v, t);
        }
        v += normal(self.seed, m.code() as u64, t.timestamp_millis()) * Self::noise_sd(m);
        match m {
            Metric::Spo2 => v.round().clamp(70.0, 100.0),
            Metric::Temperature | Metric::Glucose | Metric::Weight => (v * 10.0).round() / 10.0,
            _ => v.round(),
        }
    }
}

impl Episode {
    /// `v` as the episode changes it at `t`: a ramp over the first and last fifth (at most 10
    /// min each), full in between; weight gain builds over the whole episode and stays.
    fn apply(&self, m: Metric, v: f64, t: DateTime<Utc>) -> f64 {
        let end = self.start + self.duration;
        if let EpisodeKind::WeightGain(kg) = self.kind {
            if m != Metric::Weight || t < self.start {
                return v;
            }
            let f = ((t - self.start).num_milliseconds() as f64
                / self.duration.num_milliseconds().max(1) as f64)
                .min(1.0);
            return v + kg * f;
        }
        if t < self.start || t >= end {
            return v;
        }
        let total = self.duration.num_milliseconds().max(1) as f64;
        let ramp = match self.ramp {
            Some(r) => (r.num_milliseconds() as f64).clamp(1.0, total / 2.0),
            None => (total / 5.0).clamp(1.0, 600_000.0),
        };
        let since = (t - self.start).num_milliseconds() as f64;
        let until = (end - t).num_milliseconds() as f64;
        let f = (since / ramp).min(until / ramp).min(1.0);
        let toward = |target: f64| v + (target - v) * f;
        match (self.kind, m) {
            (EpisodeKind::Hypoxia(to), Metric::Spo2) => toward(to),
            (EpisodeKind::Hypoxia(_), Metric::HeartRate) => v + 15.0 * f,
            (EpisodeKind::Hypoxia(_), Metric::RespiratoryRate) => v + 8.0 * f,
            (EpisodeKind::HypertensiveCrisis, Metric::BpSystolic) => toward(185.0),
            (EpisodeKind::HypertensiveCrisis, Metric::BpDiastolic) => toward(122.0),
            (EpisodeKind::Fever(to), Metric::Temperature) => toward(to),
            (EpisodeKind::Fever(_), Metric::HeartRate) => v + 10.0 * f,
            (EpisodeKind::Hypoglycaemia, Metric::Glucose) => toward(2.8),
            (EpisodeKind::Hypoglycaemia, Metric::HeartRate) => v + 12.0 * f,
            (EpisodeKind::HeartRate(to), Metric::HeartRate) => toward(to),
            _ => v,
        }
    }
}

/// SplitMix64's increment (the golden ratio) and finaliser (Steele et al. 2014): stable across
/// platforms and releases, unlike `std`'s hasher. The scenario engine hashes with them too.
pub(crate) const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

pub(crate) fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in [0, 1) from 64 random bits.
pub(crate) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A standard normal deviate from (seed, stream, time): SplitMix64 of the three, four uniforms
/// summed (Irwin–Hall, close enough to normal for measurement noise).
fn normal(seed: u64, stream: u64, t_ms: i64) -> f64 {
    let mut x = seed ^ stream.wrapping_mul(GOLDEN) ^ (t_ms as u64).rotate_left(17);
    let mut next = || {
        x = x.wrapping_add(GOLDEN);
        unit(finalize(x))
    };
    // Sum of 4 uniforms: mean 2, variance 1/3; scaled to unit variance.
    (next() + next() + next() + next() - 2.0) * 3f64.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day() -> impl Iterator<Item = DateTime<Utc>> {
        let start = Utc.with_ymd_and_hms(2026, 11, 27, 17, 0, 0).unwrap(); // local midnight
        (0..24 * 12).map(move |i| start + chrono::Duration::minutes(5 * i))
    }

    #[test]
    fn the_same_seed_gives_the_same_stream_and_another_seed_another() {
        let a = Patient::new(Condition::Copd, 42);
        let b = Patient::new(Condition::Copd, 42);
        let c = Patient::new(Condition::Copd, 43);
        let stream = |p: &Patient| -> Vec<f64> {
            day()
                .flat_map(|t| Metric::ALL.map(|m| p.value(m, t)))
                .collect()
        };
        assert_eq!(stream(&a), stream(&b));
        assert_ne!(stream(&a), stream(&c));
        // Order does not matter: a value depends on (seed, metric, time) only.
        let t = Utc.with_ymd_and_hms(2026, 11, 28, 3, 0, 0).unwrap();
        assert_eq!(a.value(Metric::Spo2, t), b.value(Metric::Spo2, t));
    }

    #[test]
    fn values_are_plausible_for_each_condition() {
        for (cond, spo2, sys) in [
            (Condition::HealthyElderly, (93.0, 100.0), (105.0, 160.0)),
            (Condition::Copd, (86.0, 95.0), (105.0, 160.0)),
            (Condition::HeartFailure, (91.0, 99.0), (95.0, 140.0)),
            (Condition::Diabetes, (93.0, 100.0), (110.0, 165.0)),
            (Condition::Hypertension, (93.0, 100.0), (125.0, 185.0)),
        ] {
            let p = Patient::new(cond, 7);
            for t in day() {
                let s = p.value(Metric::Spo2, t);
                assert!((spo2.0..=spo2.1).contains(&s), "{cond:?} SpO₂ {s}");
                let b = p.value(Metric::BpSystolic, t);
                assert!((sys.0..=sys.1).contains(&b), "{cond:?} systolic {b}");
                let temp = p.value(Metric::Temperature, t);
                assert!((35.8..=37.4).contains(&temp), "{cond:?} temperature {temp}");
            }
        }
    }

    #[test]
    fn temperature_follows_the_day() {
        let p = Patient::new(Condition::HealthyElderly, 1);
        let mean_at = |local_hour: u32| {
            (0..20)
                .map(|d| {
                    let t = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
                        + chrono::Duration::days(d)
                        + chrono::Duration::hours(i64::from(local_hour) - 7);
                    p.value(Metric::Temperature, t)
                })
                .sum::<f64>()
                / 20.0
        };
        assert!(
            mean_at(16) - mean_at(4) > 0.4,
            "{} {}",
            mean_at(16),
            mean_at(4)
        );
    }

    #[test]
    fn a_scripted_hypoxia_episode_happens_when_scripted() {
        // "Patient 3: SpO₂ falls to 86 % at t = 5 min for 3 min."
        let t0 = Utc.with_ymd_and_hms(2026, 11, 28, 2, 0, 0).unwrap();
        let mut p = Patient::new(Condition::HealthyElderly, 3);
        p.episodes.push(Episode {
            kind: EpisodeKind::Hypoxia(86.0),
            start: t0 + chrono::Duration::minutes(5),
            duration: chrono::Duration::minutes(3),
            ramp: None,
        });
        let at = |s: i64| p.value(Metric::Spo2, t0 + chrono::Duration::seconds(s));
        assert!(at(4 * 60) >= 93.0, "before: {}", at(4 * 60));
        assert!(at(6 * 60 + 30) <= 88.0, "during: {}", at(6 * 60 + 30));
        assert!(at(9 * 60) >= 93.0, "after: {}", at(9 * 60));
        // Weight gain builds and stays.
        p.episodes.push(Episode {
            kind: EpisodeKind::WeightGain(2.5),
            start: t0,
            duration: chrono::Duration::days(3),
            ramp: None,
        });
        let w = |d: i64| p.value(Metric::Weight, t0 + chrono::Duration::days(d));
        assert!(w(4) - w(0) > 2.0, "{} → {}", w(0), w(4));
    }
}
