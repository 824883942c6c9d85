//! Device events published on `vigil/v1/{device_id}/events` (issue #2, device contract).

use serde::{Deserialize, Serialize};
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Fall,
    Sos,
    BatteryLow,
    DeviceError,
    /// "I'm OK": the patient cancels a fall alarm within the cancel window (issue #5).
    Ok,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::Fall,
        EventKind::Sos,
        EventKind::BatteryLow,
        EventKind::DeviceError,
        EventKind::Ok,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Fall => "fall",
            EventKind::Sos => "sos",
            EventKind::BatteryLow => "battery_low",
            EventKind::DeviceError => "device_error",
            EventKind::Ok => "ok",
        }
    }
}

impl FromStr for EventKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(())
    }
}
