//! Read models shared by the store (which fills them) and the dashboard API (which serves
//! them). Field names are the public JSON contract of `docs/api.md`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatestValue {
    pub ts: DateTime<Utc>,
    pub value: f64,
    pub unit: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatientSummary {
    pub id: String,
    pub name: String,
    /// Latest value per metric name.
    pub latest: BTreeMap<String, LatestValue>,
    /// Worst active alert: `red`, `amber`, `yellow`, or `ok`.
    pub status: &'static str,
    pub open_alerts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadingPoint {
    pub ts: DateTime<Utc>,
    pub value: f64,
    pub unit: &'static str,
    pub device_id: String,
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectedMessage {
    pub id: i64,
    pub device_id: Option<String>,
    pub topic: String,
    pub reason: String,
    pub detail: String,
    pub received_at: DateTime<Utc>,
    pub payload_excerpt: String,
}

/// A change pushed to live dashboards (SSE `/api/v1/stream`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    Reading {
        patient_id: String,
        metric: String,
        value: f64,
        unit: &'static str,
        ts: DateTime<Utc>,
    },
    Alert {
        alert: crate::Alert,
    },
}
