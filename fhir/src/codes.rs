//! What each of Vigil's metrics is in FHIR: LOINC codes, the UCUM unit, the Observation
//! category and the R4 vital-signs profile (FHIR R4 observation-vitalsigns.html; clinical
//! reference §3).

use vigil_domain::Metric;

pub const LOINC: &str = "http://loinc.org";
pub const UCUM: &str = "http://unitsofmeasure.org";
pub const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// The blood-pressure panel Vigil's systolic and diastolic readings form together.
pub const BP_PANEL: (&str, &str) = ("85354-9", "Blood pressure panel with all children optional");

/// Base of the R4 core profiles.
const PROFILES: &str = "http://hl7.org/fhir/StructureDefinition/";

/// The LOINC codings of a metric's Observation, the vital-signs profile's own code first
/// (SpO₂: 2708-6 the profile's, 59408-5 "by pulse oximetry", which is what the devices
/// measure).
pub fn codings(m: Metric) -> &'static [(&'static str, &'static str)] {
    match m {
        Metric::HeartRate => &[("8867-4", "Heart rate")],
        Metric::Spo2 => &[
            ("2708-6", "Oxygen saturation in Arterial blood"),
            (
                "59408-5",
                "Oxygen saturation in Arterial blood by Pulse oximetry",
            ),
        ],
        Metric::BpSystolic => &[("8480-6", "Systolic blood pressure")],
        Metric::BpDiastolic => &[("8462-4", "Diastolic blood pressure")],
        Metric::Temperature => &[("8310-5", "Body temperature")],
        Metric::RespiratoryRate => &[("9279-1", "Respiratory rate")],
        Metric::Glucose => &[(
            "14743-9",
            "Glucose [Moles/volume] in Capillary blood by Glucometer",
        )],
        Metric::Weight => &[("29463-7", "Body weight")],
    }
}

/// The UCUM unit: (how it is shown, its code). Vigil stores every metric in these.
pub fn unit(m: Metric) -> (&'static str, &'static str) {
    match m {
        Metric::HeartRate => ("beats/minute", "/min"),
        Metric::RespiratoryRate => ("breaths/minute", "/min"),
        Metric::Spo2 => ("%", "%"),
        Metric::BpSystolic | Metric::BpDiastolic => ("mmHg", "mm[Hg]"),
        Metric::Temperature => ("Cel", "Cel"),
        Metric::Glucose => ("mmol/L", "mmol/L"),
        Metric::Weight => ("kg", "kg"),
    }
}

/// `vital-signs`, or `laboratory` for capillary glucose (not a vital sign in FHIR).
pub fn category(m: Metric) -> (&'static str, &'static str) {
    match m {
        Metric::Glucose => ("laboratory", "Laboratory"),
        _ => ("vital-signs", "Vital Signs"),
    }
}

/// The R4 profile an Observation of `m` claims (`meta.profile`); glucose has none.
pub fn profile(m: Metric) -> Option<String> {
    let name = match m {
        Metric::HeartRate => "heartrate",
        Metric::Spo2 => "oxygensat",
        Metric::BpSystolic | Metric::BpDiastolic => "bp",
        Metric::Temperature => "bodytemp",
        Metric::RespiratoryRate => "resprate",
        Metric::Weight => "bodyweight",
        Metric::Glucose => return None,
    };
    Some(format!("{PROFILES}{name}"))
}

/// The metrics a search's `code` token names (`system|code`, or a bare code): every metric
/// with that LOINC code; the panel names both blood pressures. Empty when none.
pub fn metrics_of(token: &str) -> Vec<Metric> {
    let (system, code) = match token.split_once('|') {
        Some((s, c)) => (Some(s), c),
        None => (None, token),
    };
    if system.is_some_and(|s| !s.is_empty() && s != LOINC) {
        return Vec::new();
    }
    if code == BP_PANEL.0 {
        return vec![Metric::BpSystolic, Metric::BpDiastolic];
    }
    Metric::ALL
        .into_iter()
        .filter(|m| codings(*m).iter().any(|(c, _)| *c == code))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_has_its_loinc_code_and_ucum_unit() {
        for m in Metric::ALL {
            assert!(codings(m).iter().any(|(c, _)| *c == m.loinc()), "{m:?}");
            assert_eq!(unit(m).1, m.unit(), "{m:?}: stored in the unit served");
        }
        assert_eq!(metrics_of("http://loinc.org|59408-5"), [Metric::Spo2]);
        assert_eq!(metrics_of("2708-6"), [Metric::Spo2]);
        assert_eq!(
            metrics_of("http://loinc.org|85354-9"),
            [Metric::BpSystolic, Metric::BpDiastolic]
        );
        assert!(metrics_of("http://snomed.info/sct|8867-4").is_empty());
        assert!(metrics_of("0000-0").is_empty());
        assert_eq!(category(Metric::Glucose).0, "laboratory");
        assert_eq!(profile(Metric::Glucose), None);
    }
}
