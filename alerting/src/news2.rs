//! NEWS2, the National Early Warning Score 2 (Royal College of Physicians, 2017, Chart 1;
//! clinical reference §1), as a pure function of a patient's latest vitals.
//!
//! Home devices cannot tell consciousness (ACVPU) or whether the patient is on oxygen: those come
//! from the patient's record or a caregiver. A parameter nobody knows scores nothing and makes
//! the score **partial** — a lower bound, shown as such. NEWS2 was designed for hospital
//! patients; at home it is an extrapolation, and the UI says so.

use serde::Serialize;

/// SpO₂ scale: 2 only for hypercapnic respiratory failure with a prescribed 88–92 % target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Spo2Scale {
    #[default]
    Scale1,
    Scale2,
}

/// What the score is computed from; `None` where unknown.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Vitals {
    pub respiratory_rate: Option<f64>,
    pub spo2: Option<f64>,
    pub scale: Spo2Scale,
    /// On supplemental oxygen (true) or air (false).
    pub on_oxygen: Option<bool>,
    pub systolic: Option<f64>,
    pub pulse: Option<f64>,
    /// ACVPU: `Some(true)` alert, `Some(false)` new confusion, voice, pain or unresponsive.
    pub alert: Option<bool>,
    pub temperature: Option<f64>,
}

/// The clinical response band (RCP Charts 3–4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Total 0–4.
    Low,
    /// Total 0–4 but one parameter scores 3.
    LowMedium,
    /// Total 5–6: urgent response threshold.
    Medium,
    /// Total 7 or more: emergency response threshold.
    High,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct News2 {
    pub total: u8,
    pub risk: Risk,
    /// Some parameters were unknown: the total is a lower bound.
    pub partial: bool,
    /// The unknown parameters, by name.
    pub missing: Vec<&'static str>,
    /// Each known parameter's score, by name, in chart order.
    pub parts: Vec<(&'static str, u8)>,
}

/// Whole numbers for everything but temperature, which is rounded to 0.1 °C: the chart's bands
/// have gaps (91 | 92) that unrounded device values would fall into (clinical reference §1).
fn whole(v: f64) -> f64 {
    v.round()
}

fn respiratory_rate(v: f64) -> u8 {
    match whole(v) {
        r if r <= 8.0 => 3,
        r if r <= 11.0 => 1,
        r if r <= 20.0 => 0,
        r if r <= 24.0 => 2,
        _ => 3,
    }
}

fn spo2(v: f64, scale: Spo2Scale, on_oxygen: Option<bool>) -> u8 {
    let s = whole(v);
    match scale {
        Spo2Scale::Scale1 => match s {
            s if s <= 91.0 => 3,
            s if s <= 93.0 => 2,
            s if s <= 95.0 => 1,
            _ => 0,
        },
        Spo2Scale::Scale2 => match s {
            s if s <= 83.0 => 3,
            s if s <= 85.0 => 2,
            s if s <= 87.0 => 1,
            s if s <= 92.0 => 0,
            // ≥ 93 scores 0 on air; on oxygen it means too much oxygen for this patient. Unknown
            // oxygen: the lower bound (0); the score is partial anyway.
            s => match on_oxygen {
                Some(true) if s <= 94.0 => 1,
                Some(true) if s <= 96.0 => 2,
                Some(true) => 3,
                _ => 0,
            },
        },
    }
}

fn systolic(v: f64) -> u8 {
    match whole(v) {
        s if s <= 90.0 => 3,
        s if s <= 100.0 => 2,
        s if s <= 110.0 => 1,
        s if s <= 219.0 => 0,
        _ => 3,
    }
}

fn pulse(v: f64) -> u8 {
    match whole(v) {
        p if p <= 40.0 => 3,
        p if p <= 50.0 => 1,
        p if p <= 90.0 => 0,
        p if p <= 110.0 => 1,
        p if p <= 130.0 => 2,
        _ => 3,
    }
}

fn temperature(v: f64) -> u8 {
    // Tenths as integers, so 36.05 → 36.1 and the comparisons are exact.
    match (v * 10.0).round() as i64 {
        t if t <= 350 => 3,
        t if t <= 360 => 1,
        t if t <= 380 => 0,
        t if t <= 390 => 1,
        _ => 2,
    }
}

/// The score of `v`.
pub fn score(v: &Vitals) -> News2 {
    let mut parts = Vec::with_capacity(7);
    let mut missing = Vec::new();
    let mut part = |name: &'static str, s: Option<u8>| match s {
        Some(s) => parts.push((name, s)),
        None => missing.push(name),
    };
    part("respiratory_rate", v.respiratory_rate.map(respiratory_rate));
    part("spo2", v.spo2.map(|s| spo2(s, v.scale, v.on_oxygen)));
    part("air_or_oxygen", v.on_oxygen.map(|o| if o { 2 } else { 0 }));
    part("systolic", v.systolic.map(systolic));
    part("pulse", v.pulse.map(pulse));
    part("consciousness", v.alert.map(|a| if a { 0 } else { 3 }));
    part("temperature", v.temperature.map(temperature));
    let total: u8 = parts.iter().map(|(_, s)| s).sum();
    let risk = match total {
        t if t >= 7 => Risk::High,
        t if t >= 5 => Risk::Medium,
        _ if parts.iter().any(|(_, s)| *s == 3) => Risk::LowMedium,
        _ => Risk::Low,
    };
    News2 {
        total,
        risk,
        partial: !missing.is_empty(),
        missing,
        parts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(rr: f64, spo2: f64, o2: bool, sys: f64, pulse: f64, alert: bool, t: f64) -> Vitals {
        Vitals {
            respiratory_rate: Some(rr),
            spo2: Some(spo2),
            scale: Spo2Scale::Scale1,
            on_oxygen: Some(o2),
            systolic: Some(sys),
            pulse: Some(pulse),
            alert: Some(alert),
            temperature: Some(t),
        }
    }

    #[test]
    fn a_well_patient_scores_zero() {
        let n = score(&all(16.0, 97.0, false, 125.0, 72.0, true, 36.8));
        assert_eq!((n.total, n.risk, n.partial), (0, Risk::Low, false));
        assert_eq!(n.parts.len(), 7);
    }

    #[test]
    fn a_deteriorating_patient_crosses_the_emergency_threshold() {
        // RR 24 (2) + SpO₂ 93 (2) + air (0) + SBP 105 (1) + pulse 115 (2) + alert (0)
        // + 38.5 °C (1) = 8.
        let n = score(&all(24.0, 93.0, false, 105.0, 115.0, true, 38.5));
        assert_eq!((n.total, n.risk), (8, Risk::High));
        // Five or six is the urgent band; a single 3 alone is low-medium.
        assert_eq!(
            score(&all(22.0, 94.0, false, 100.0, 60.0, true, 37.0)).risk,
            Risk::Medium
        );
        let one_three = score(&all(16.0, 97.0, false, 125.0, 72.0, false, 36.8));
        assert_eq!((one_three.total, one_three.risk), (3, Risk::LowMedium));
    }

    #[test]
    fn every_band_edge_of_chart_1() {
        let rr = [
            (8.0, 3),
            (9.0, 1),
            (11.0, 1),
            (12.0, 0),
            (20.0, 0),
            (21.0, 2),
            (24.0, 2),
            (25.0, 3),
        ];
        for (v, s) in rr {
            assert_eq!(respiratory_rate(v), s, "RR {v}");
        }
        let sp = [
            (91.0, 3),
            (92.0, 2),
            (93.0, 2),
            (94.0, 1),
            (95.0, 1),
            (96.0, 0),
            (100.0, 0),
        ];
        for (v, s) in sp {
            assert_eq!(spo2(v, Spo2Scale::Scale1, None), s, "SpO₂ {v}");
        }
        let sys = [
            (90.0, 3),
            (91.0, 2),
            (100.0, 2),
            (101.0, 1),
            (110.0, 1),
            (111.0, 0),
            (219.0, 0),
            (220.0, 3),
        ];
        for (v, s) in sys {
            assert_eq!(systolic(v), s, "SBP {v}");
        }
        let p = [
            (40.0, 3),
            (41.0, 1),
            (50.0, 1),
            (51.0, 0),
            (90.0, 0),
            (91.0, 1),
            (110.0, 1),
            (111.0, 2),
            (130.0, 2),
            (131.0, 3),
        ];
        for (v, s) in p {
            assert_eq!(pulse(v), s, "pulse {v}");
        }
        let t = [
            (35.0, 3),
            (35.1, 1),
            (36.0, 1),
            (36.1, 0),
            (38.0, 0),
            (38.1, 1),
            (39.0, 1),
            (39.1, 2),
        ];
        for (v, s) in t {
            assert_eq!(temperature(v), s, "temperature {v}");
        }
    }

    #[test]
    fn device_values_are_rounded_before_scoring() {
        assert_eq!(spo2(91.6, Spo2Scale::Scale1, None), 2, "91.6 → 92");
        assert_eq!(spo2(91.4, Spo2Scale::Scale1, None), 3, "91.4 → 91");
        assert_eq!(temperature(36.04), 1, "36.04 → 36.0");
        assert_eq!(temperature(36.05), 0, "36.05 → 36.1");
        assert_eq!(pulse(90.4), 0);
        assert_eq!(pulse(90.5), 1);
    }

    #[test]
    fn scale_2_for_hypercapnic_patients_depends_on_oxygen() {
        let s2 = Spo2Scale::Scale2;
        assert_eq!(spo2(83.0, s2, Some(false)), 3);
        assert_eq!(spo2(85.0, s2, Some(false)), 2);
        assert_eq!(spo2(87.0, s2, Some(false)), 1);
        assert_eq!(
            spo2(90.0, s2, Some(true)),
            0,
            "in the prescribed 88–92 % range"
        );
        assert_eq!(spo2(95.0, s2, Some(false)), 0, "≥ 93 on air");
        assert_eq!(spo2(94.0, s2, Some(true)), 1);
        assert_eq!(spo2(96.0, s2, Some(true)), 2);
        assert_eq!(spo2(97.0, s2, Some(true)), 3);
    }

    #[test]
    fn unknown_consciousness_and_oxygen_make_a_partial_lower_bound() {
        // What home devices can measure: no ACVPU, no air/oxygen.
        let v = Vitals {
            on_oxygen: None,
            alert: None,
            ..all(26.0, 90.0, false, 95.0, 120.0, true, 39.5)
        };
        let n = score(&v);
        // RR 3 + SpO₂ 3 + SBP 2 + pulse 2 + temperature 2 = 12, at least.
        assert_eq!((n.total, n.risk, n.partial), (12, Risk::High, true));
        assert_eq!(n.missing, ["air_or_oxygen", "consciousness"]);
        // Nothing known at all: 0, partial, never "low risk" as if measured.
        let none = score(&Vitals::default());
        assert_eq!((none.total, none.partial, none.missing.len()), (0, true, 7));
    }
}
