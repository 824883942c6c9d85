//! Resource ids (issue #18: the same reading always has the same id, so a re-export or a
//! redelivered reading never makes a duplicate). FHIR ids are `[A-Za-z0-9\-\.]{1,64}` (R4
//! datatypes.html#id); Vigil's ids may also hold `_`.

use sha2::{Digest, Sha256};
use vigil_domain::Metric;

/// The identifier system of a reading: value `{device id}/{metric}/{time in ms}`, stable across
/// Vigil instances (device ids are public names), what conditional updates match on.
pub const READING_SYSTEM: &str = "urn:vigil:reading";
/// The identifier systems of patients and devices: their Vigil ids.
pub const PATIENT_SYSTEM: &str = "urn:vigil:patient";
pub const DEVICE_SYSTEM: &str = "urn:vigil:device";

/// A Vigil id as a FHIR id: itself when FHIR allows it, else `x-` and 32 hex digits of its
/// SHA-256 (deterministic; callers resolve it by comparing).
pub fn fhir_id(vigil_id: &str) -> String {
    let ok = (1..=64).contains(&vigil_id.len())
        && vigil_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
    if ok {
        return vigil_id.to_string();
    }
    let digest = Sha256::digest(vigil_id.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("x-{hex}")
}

/// What an Observation is: one metric's reading, or a blood pressure (systolic and diastolic
/// measured together, one panel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservationKind {
    One(Metric),
    BloodPressure,
}

fn slug(kind: ObservationKind) -> &'static str {
    match kind {
        ObservationKind::BloodPressure => "bp",
        ObservationKind::One(m) => match m {
            Metric::HeartRate => "hr",
            Metric::Spo2 => "spo2",
            Metric::BpSystolic => "sbp",
            Metric::BpDiastolic => "dbp",
            Metric::Temperature => "temp",
            Metric::RespiratoryRate => "rr",
            Metric::Glucose => "glucose",
            Metric::Weight => "weight",
        },
    }
}

/// The Observation id of a reading: `{kind}-{device key}-{time in ms}` (`spo2-12-1764…`), the
/// reading's storage key, so `GET Observation/{id}` finds it without an index of ids.
pub fn observation_id(kind: ObservationKind, device_num: i64, ts_ms: i64) -> String {
    format!("{}-{device_num}-{ts_ms}", slug(kind))
}

/// The reading behind an Observation id; `None` for anything else.
pub fn parse_observation_id(id: &str) -> Option<(ObservationKind, i64, i64)> {
    let mut parts = id.splitn(3, '-');
    let (s, dev, ts) = (parts.next()?, parts.next()?, parts.next()?);
    let kind = if s == "bp" {
        ObservationKind::BloodPressure
    } else {
        ObservationKind::One(
            Metric::ALL
                .into_iter()
                .find(|m| slug(ObservationKind::One(*m)) == s)?,
        )
    };
    let (dev, ts) = (dev.parse().ok()?, ts.parse().ok()?);
    (observation_id(kind, dev, ts) == id).then_some((kind, dev, ts))
}

/// The reading identifier's value: `{device id}/{metric or bp}/{time in ms}`.
pub fn reading_identifier(kind: ObservationKind, device_id: &str, ts_ms: i64) -> String {
    let what = match kind {
        ObservationKind::BloodPressure => "bp",
        ObservationKind::One(m) => m.as_str(),
    };
    format!("{device_id}/{what}/{ts_ms}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fhir_ids_and_stable() {
        assert_eq!(fhir_id("demo-an"), "demo-an");
        let odd = fhir_id("ward_3.bed_2");
        assert_eq!(odd, fhir_id("ward_3.bed_2"), "deterministic");
        assert!(odd.starts_with("x-") && odd.len() == 34, "{odd}");
        assert_ne!(odd, fhir_id("ward_3.bed_3"));
        let id = observation_id(ObservationKind::One(Metric::Spo2), 12, 1_764_000_000_000);
        assert_eq!(id, "spo2-12-1764000000000");
        assert_eq!(
            parse_observation_id(&id),
            Some((ObservationKind::One(Metric::Spo2), 12, 1_764_000_000_000))
        );
        assert_eq!(
            parse_observation_id("bp-3-5"),
            Some((ObservationKind::BloodPressure, 3, 5))
        );
        for bad in [
            "spo2-12",
            "xx-1-2",
            "spo2-a-2",
            "spo2-01-2",
            "spo2-1-2-3",
            "",
        ] {
            assert_eq!(parse_observation_id(bad), None, "{bad}");
        }
        for m in Metric::ALL {
            let id = observation_id(ObservationKind::One(m), i64::MAX, i64::MAX);
            assert!(id.len() <= 64 && fhir_id(&id) == id, "{id}");
        }
    }
}
