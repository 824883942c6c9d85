//! Alert severity and lifecycle (issue #2; IEC 60601-1-8 priorities, clinical reference §6).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Highest first. `Red` is the "red alert": IEC 60601-1-8 high priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Red,
    Amber,
    Yellow,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Red => "red",
            Severity::Amber => "amber",
            Severity::Yellow => "yellow",
        }
    }
    /// Sort key, smaller is more urgent.
    pub fn rank(self) -> u8 {
        match self {
            Severity::Red => 0,
            Severity::Amber => 1,
            Severity::Yellow => 2,
        }
    }
}

impl FromStr for Severity {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "red" => Ok(Severity::Red),
            "amber" => Ok(Severity::Amber),
            "yellow" => Ok(Severity::Yellow),
            _ => Err(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Open,
    Acknowledged,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Open => "open",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }
    /// Open and acknowledged alerts are both still active: the condition has not been resolved.
    pub fn is_active(self) -> bool {
        !matches!(self, AlertState::Resolved)
    }
}

impl FromStr for AlertState {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "open" => Ok(AlertState::Open),
            "acknowledged" => Ok(AlertState::Acknowledged),
            "resolved" => Ok(AlertState::Resolved),
            _ => Err(()),
        }
    }
}

/// An alert as stored and served by `GET /api/v1/alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: i64,
    pub patient_id: String,
    pub patient_name: String,
    /// Rule id, e.g. `spo2_low` (see `docs/rules.md`).
    pub rule: String,
    pub severity: Severity,
    pub state: AlertState,
    pub opened_at: DateTime<Utc>,
    /// The value that raised it (canonical unit); absent for events such as a fall.
    pub value: Option<f64>,
    pub metric: Option<String>,
    pub unit: Option<String>,
    pub message: String,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub note: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Who took it on ("assign to me" in the alert inbox).
    pub assigned_to: Option<String>,
    /// The rule's threshold as the rule file states it, e.g. `< 90` (issue #16: pages and
    /// e-mails no longer parse it out of `message`).
    #[serde(default)]
    pub limit: Option<String>,
    /// The device event that raised it (`fall`, `sos`, …), if one did.
    #[serde(default)]
    pub event: Option<String>,
    /// The latest breaching value and when it came (the alert stays open while the condition
    /// goes on; `value` is the one that opened it).
    #[serde(default)]
    pub last_value: Option<f64>,
    #[serde(default)]
    pub last_at: Option<DateTime<Utc>>,
    /// The episode it belongs to (issue #17: `GET /api/v1/episodes/{id}`); `None` for alerts
    /// resolved before episodes existed.
    #[serde(default)]
    pub episode_id: Option<i64>,
    /// The device whose event raised it (issue #21: which device's battery is low).
    #[serde(default)]
    pub device_id: Option<String>,
}
