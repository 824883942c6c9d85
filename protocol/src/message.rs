//! The message types the decode and validate stages share: a reading as sent, a decoded
//! message, a rejection, and the size limits.

use chrono::{DateTime, Utc};
use vigil_domain::{EventKind, Metric};

/// Size limits (configurable under `[ingest]`, docs/configuration.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload parsed. A hub's batch is a few kB; much more is a fault or an attack.
    pub max_payload: usize,
    /// Most readings in one message.
    pub max_readings: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload: 64 * 1024,
            max_readings: 500,
        }
    }
}

/// Longest accepted text field (metric, unit, event names are all short).
pub const MAX_TEXT: usize = 64;

/// One reading as the device sent it, before unit conversion and plausibility checks.
#[derive(Debug, Clone, PartialEq)]
pub struct RawReading {
    pub metric: Metric,
    pub value: f64,
    pub unit: String,
    /// `None` when neither the reading nor its batch carried a time.
    pub ts: Option<DateTime<Utc>>,
    pub seq: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Readings {
        readings: Vec<RawReading>,
        /// Battery level in percent, when the message reported it (SenML `%EL`).
        battery: Option<f64>,
    },
    Event {
        kind: EventKind,
        ts: Option<DateTime<Utc>>,
        /// Battery level in percent, when the event reported it (`battery_low`, issue #21).
        battery: Option<f64>,
    },
    Status {
        online: bool,
    },
}

/// Why a message was not accepted. `reason` is a stable code (listed in `docs/mqtt.md`);
/// `detail` is a short human explanation that never echoes the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub reason: &'static str,
    pub detail: String,
}

impl Reject {
    pub fn new(reason: &'static str, detail: impl Into<String>) -> Self {
        Reject {
            reason,
            detail: detail.into(),
        }
    }
}

/// The first `n` characters, for rejection details that quote device text.
pub(crate) fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
