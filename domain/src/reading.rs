//! A validated reading, in canonical units, as the store keeps it.

use crate::Metric;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a reading's timestamp came from. A clinician must know when a time is the gateway's
/// guess rather than the device's clock (HL7 PHD: home gateways correct unreliable clocks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TsSource {
    Device,
    Received,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub device_id: String,
    pub patient_id: String,
    pub metric: Metric,
    /// In the metric's canonical unit ([`Metric::unit`]).
    pub value: f64,
    pub ts: DateTime<Utc>,
    pub ts_source: TsSource,
    /// Device-supplied sequence number, when sent; part of the idempotency key.
    pub seq: Option<i64>,
    /// Annotations such as `ts_received` or `suspect` (see `docs/api.md`).
    pub flags: Vec<String>,
}

impl Reading {
    /// Flagged `late`: a buffered reading arriving long after it was taken (a hub flushing its
    /// buffer). History, not news: it never raises a real-time alert.
    pub fn is_late(&self) -> bool {
        self.flags.iter().any(|f| f == "late")
    }
}
