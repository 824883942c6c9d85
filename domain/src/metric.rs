//! Canonical metrics and their units (issue #2, "Canonical metrics and units").
//!
//! Units are UCUM codes as in the FHIR vital-signs profile (clinical reference §3). Plausibility
//! limits follow the clinical reference §2 "Implausible values": values outside them are device
//! errors, not readings, and are rejected rather than alerted on.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    HeartRate,
    Spo2,
    BpSystolic,
    BpDiastolic,
    Temperature,
    RespiratoryRate,
    Glucose,
    Weight,
}

impl Metric {
    pub const ALL: [Metric; 8] = [
        Metric::HeartRate,
        Metric::Spo2,
        Metric::BpSystolic,
        Metric::BpDiastolic,
        Metric::Temperature,
        Metric::RespiratoryRate,
        Metric::Glucose,
        Metric::Weight,
    ];

    /// The wire and storage name (`heart_rate`, `spo2`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::HeartRate => "heart_rate",
            Metric::Spo2 => "spo2",
            Metric::BpSystolic => "bp_systolic",
            Metric::BpDiastolic => "bp_diastolic",
            Metric::Temperature => "temperature",
            Metric::RespiratoryRate => "respiratory_rate",
            Metric::Glucose => "glucose",
            Metric::Weight => "weight",
        }
    }

    /// Stable numeric code used as the storage key. Never renumber: stored data depends on it.
    pub fn code(self) -> i64 {
        match self {
            Metric::HeartRate => 1,
            Metric::Spo2 => 2,
            Metric::BpSystolic => 3,
            Metric::BpDiastolic => 4,
            Metric::Temperature => 5,
            Metric::RespiratoryRate => 6,
            Metric::Glucose => 7,
            Metric::Weight => 8,
        }
    }

    pub fn from_code(code: i64) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.code() == code)
    }

    /// Canonical UCUM unit in which the value is stored.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::HeartRate | Metric::RespiratoryRate => "/min",
            Metric::Spo2 => "%",
            Metric::BpSystolic | Metric::BpDiastolic => "mm[Hg]",
            Metric::Temperature => "Cel",
            Metric::Glucose => "mmol/L",
            Metric::Weight => "kg",
        }
    }

    /// LOINC code (clinical reference §3), for exports and FHIR later.
    pub fn loinc(self) -> &'static str {
        match self {
            Metric::HeartRate => "8867-4",
            Metric::Spo2 => "59408-5",
            Metric::BpSystolic => "8480-6",
            Metric::BpDiastolic => "8462-4",
            Metric::Temperature => "8310-5",
            Metric::RespiratoryRate => "9279-1",
            Metric::Glucose => "14743-9",
            Metric::Weight => "29463-7",
        }
    }

    /// Inclusive plausible range in the canonical unit. Outside it the value is a device error.
    /// Sources: clinical reference §2 (CLIF outlier filters and the suggested rejections).
    pub fn plausible_range(self) -> (f64, f64) {
        match self {
            Metric::HeartRate => (1.0, 300.0),
            Metric::Spo2 => (1.0, 100.0),
            Metric::BpSystolic => (1.0, 300.0),
            Metric::BpDiastolic => (1.0, 200.0),
            Metric::Temperature => (25.0, 45.0),
            Metric::RespiratoryRate => (0.0, 60.0),
            Metric::Glucose => (0.5, 60.0),
            Metric::Weight => (1.0, 500.0),
        }
    }

    /// Values inside the plausible range that are rare enough to ask for a re-measurement
    /// (clinical reference §2: SpO₂ < 70 %, temperature 25–32 °C are "suspect").
    pub fn is_suspect(self, value: f64) -> bool {
        match self {
            Metric::Spo2 => value < 70.0,
            Metric::Temperature => value < 32.0,
            _ => false,
        }
    }

    /// English label for people.
    pub fn label_en(self) -> &'static str {
        match self {
            Metric::HeartRate => "Heart rate",
            Metric::Spo2 => "SpO₂",
            Metric::BpSystolic => "Systolic blood pressure",
            Metric::BpDiastolic => "Diastolic blood pressure",
            Metric::Temperature => "Body temperature",
            Metric::RespiratoryRate => "Respiratory rate",
            Metric::Glucose => "Blood glucose",
            Metric::Weight => "Weight",
        }
    }

    /// Vietnamese label (clinical reference §8).
    pub fn label_vi(self) -> &'static str {
        match self {
            Metric::HeartRate => "Nhịp tim",
            Metric::Spo2 => "SpO₂ (độ bão hòa oxy máu)",
            Metric::BpSystolic => "Huyết áp tâm thu",
            Metric::BpDiastolic => "Huyết áp tâm trương",
            Metric::Temperature => "Nhiệt độ cơ thể",
            Metric::RespiratoryRate => "Nhịp thở",
            Metric::Glucose => "Đường huyết",
            Metric::Weight => "Cân nặng",
        }
    }

    /// Unit as people read it (UCUM codes are for machines).
    pub fn display_unit(self) -> &'static str {
        match self {
            Metric::HeartRate => "/min",
            Metric::Spo2 => "%",
            Metric::BpSystolic | Metric::BpDiastolic => "mmHg",
            Metric::Temperature => "°C",
            Metric::RespiratoryRate => "/min",
            Metric::Glucose => "mmol/L",
            Metric::Weight => "kg",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown metric")]
pub struct UnknownMetric;

impl FromStr for Metric {
    type Err = UnknownMetric;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Metric::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or(UnknownMetric)
    }
}

/// Why a unit could not be used for a metric.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unit {unit:?} is not accepted for {metric}")]
pub struct BadUnit {
    pub metric: Metric,
    pub unit: String,
}

/// Converts `value` given in `unit` to the metric's canonical unit.
///
/// Accepts the canonical UCUM code and the spellings home hubs commonly send (clinical reference
/// §5: hubs convert GATT values and may keep °F, lb, kPa and mg/dL). The ingestion issue (#3)
/// extends this with SenML units.
pub fn to_canonical(metric: Metric, value: f64, unit: &str) -> Result<f64, BadUnit> {
    let bad = || BadUnit {
        metric,
        unit: unit.chars().take(32).collect(),
    };
    let v = match (metric, unit) {
        (Metric::HeartRate | Metric::RespiratoryRate, "/min" | "bpm" | "1/min" | "beat/min") => {
            value
        }
        (Metric::Spo2, "%") => value,
        (Metric::BpSystolic | Metric::BpDiastolic, "mm[Hg]" | "mmHg") => value,
        // 1 kPa = 7.50062 mmHg (1 mmHg = 133.322 Pa, clinical reference §4).
        (Metric::BpSystolic | Metric::BpDiastolic, "kPa") => value * 1000.0 / 133.322,
        (Metric::Temperature, "Cel" | "°C" | "C") => value,
        (Metric::Temperature, "[degF]" | "°F" | "F") => (value - 32.0) * 5.0 / 9.0,
        (Metric::Glucose, "mmol/L") => value,
        // Glucose molar mass 180.16 g/mol: 1 mmol/L = 18.016 mg/dL.
        (Metric::Glucose, "mg/dL") => value / 18.016,
        (Metric::Weight, "kg") => value,
        (Metric::Weight, "[lb_av]" | "lb") => value * 0.453_592_37,
        _ => return Err(bad()),
    };
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Metric::ALL {
            assert_eq!(m.as_str().parse::<Metric>(), Ok(m));
        }
        assert!("pulse".parse::<Metric>().is_err());
    }

    #[test]
    fn storage_codes_are_stable() {
        let codes: Vec<i64> = Metric::ALL.iter().map(|m| m.code()).collect();
        assert_eq!(codes, vec![1, 2, 3, 4, 5, 6, 7, 8]);
        for m in Metric::ALL {
            assert_eq!(Metric::from_code(m.code()), Some(m));
        }
    }

    #[test]
    fn converts_hub_units() {
        let f = to_canonical(Metric::Temperature, 98.6, "[degF]").unwrap();
        assert!((f - 37.0).abs() < 1e-9, "got {f}");
        let g = to_canonical(Metric::Glucose, 70.0, "mg/dL").unwrap();
        assert!((g - 3.885).abs() < 0.01, "got {g}");
        let p = to_canonical(Metric::BpSystolic, 16.0, "kPa").unwrap();
        assert!((p - 120.0).abs() < 0.1, "got {p}");
        assert!(to_canonical(Metric::Spo2, 0.97, "kg").is_err());
    }
}
