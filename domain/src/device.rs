//! Device kinds (issue #2, `vigil device add --kind`) and the metrics each may report.

use crate::Metric;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    PulseOximeter,
    BpMonitor,
    Thermometer,
    GlucoseMeter,
    Scale,
    Wearable,
    FallDetector,
    /// A home hub relays several devices and may report any metric.
    Hub,
}

impl DeviceKind {
    pub const ALL: [DeviceKind; 8] = [
        DeviceKind::PulseOximeter,
        DeviceKind::BpMonitor,
        DeviceKind::Thermometer,
        DeviceKind::GlucoseMeter,
        DeviceKind::Scale,
        DeviceKind::Wearable,
        DeviceKind::FallDetector,
        DeviceKind::Hub,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::PulseOximeter => "pulse_oximeter",
            DeviceKind::BpMonitor => "bp_monitor",
            DeviceKind::Thermometer => "thermometer",
            DeviceKind::GlucoseMeter => "glucose_meter",
            DeviceKind::Scale => "scale",
            DeviceKind::Wearable => "wearable",
            DeviceKind::FallDetector => "fall_detector",
            DeviceKind::Hub => "hub",
        }
    }

    /// How often a device of this kind is normally heard from, in seconds, when it was not
    /// registered with its own interval: streaming devices every few seconds (5 min leaves room
    /// for a reconnect), fall detectors by their supervision message, spot-check devices at
    /// least daily (clinical reference §7). Missing-data rules count in these.
    pub fn default_interval_s(self) -> i64 {
        match self {
            DeviceKind::Wearable | DeviceKind::Hub => 300,
            DeviceKind::FallDetector => 3_600,
            DeviceKind::PulseOximeter
            | DeviceKind::BpMonitor
            | DeviceKind::Thermometer
            | DeviceKind::GlucoseMeter
            | DeviceKind::Scale => 86_400,
        }
    }

    /// Whether a device of this kind may report `metric`. A reading of another metric is
    /// rejected (`metric_not_allowed`): it points at a misconfigured device or a wrong topic.
    /// IEEE 11073 specialisations (clinical reference §5) decide what each kind measures.
    pub fn allows(self, metric: Metric) -> bool {
        use Metric::*;
        match self {
            DeviceKind::Hub => true,
            DeviceKind::PulseOximeter => matches!(metric, Spo2 | HeartRate),
            DeviceKind::BpMonitor => matches!(metric, BpSystolic | BpDiastolic | HeartRate),
            DeviceKind::Thermometer => matches!(metric, Temperature),
            DeviceKind::GlucoseMeter => matches!(metric, Glucose),
            DeviceKind::Scale => matches!(metric, Weight),
            DeviceKind::Wearable => {
                matches!(metric, HeartRate | Spo2 | RespiratoryRate | Temperature)
            }
            DeviceKind::FallDetector => false,
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown device kind (expected one of pulse_oximeter, bp_monitor, thermometer, glucose_meter, scale, wearable, fall_detector, hub)")]
pub struct UnknownKind;

impl FromStr for DeviceKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeviceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(UnknownKind)
    }
}
