//! Episodes as the API and the dashboard read them (issue #17): one deterioration of one
//! patient, its signals with their current values, who was told and who answered.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Whether an episode still has open signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EpisodeState {
    Active,
    Ended,
}

impl EpisodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            EpisodeState::Active => "active",
            EpisodeState::Ended => "ended",
        }
    }
}

/// The latest reading of a signal's measurement, whatever its value (issue #17: an episode
/// shows current values, not only the one that opened each alert).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurrentValue {
    pub value: f64,
    pub unit: String,
    pub at: DateTime<Utc>,
}

/// One signal of an episode: its alert, and the current value of its measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpisodeSignal {
    #[serde(flatten)]
    pub alert: crate::Alert,
    /// `None` for event signals (a fall) and measurements without readings.
    pub current: Option<CurrentValue>,
    /// Open and its current value still beyond the alert's limit: resolving it asks to
    /// confirm (issue #17).
    pub abnormal: bool,
}

/// Somebody e-mailed about an episode (issue #17's "who was notified").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notified {
    pub name: String,
    /// `family` or `clinician`.
    pub role: String,
    pub phone: Option<String>,
    /// When the first e-mail to them was queued.
    pub first_at: DateTime<Utc>,
    /// Whether one reached their mail server.
    pub delivered: bool,
}

/// A clinician's acknowledgement of an episode: who took it on, when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TakenOn {
    pub name: String,
    pub at: DateTime<Utc>,
}

/// A clinician's note they chose to share with the family (issue #17).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SharedNote {
    pub by: String,
    pub note: String,
    pub at: DateTime<Utc>,
}

/// An episode (issue #17): one deterioration of one patient — the alerts that opened while it
/// was active — as `GET /api/v1/episodes` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Episode {
    pub id: i64,
    pub patient_id: String,
    pub patient_name: String,
    pub state: EpisodeState,
    /// The worst severity of its open signals (once ended: the last it had).
    pub severity: crate::Severity,
    /// The worst severity it reached.
    pub peak: crate::Severity,
    pub opened_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Times a signal came back within `notify.reopen_grace` after a person resolved it.
    pub reopened: u32,
    /// The first family member who answered "I'm handling it" (not a clinical
    /// acknowledgement: the alerts stay open for the clinicians).
    pub family_response: Option<FamilyResponse>,
    /// The first clinician who acknowledged one of its signals.
    pub taken_on: Option<TakenOn>,
    /// The note a clinician shared with the family, the latest.
    pub family_note: Option<SharedNote>,
    /// Everybody e-mailed about it, in the order they were first told.
    pub notified: Vec<Notified>,
    /// Its signals, open ones first, most severe first.
    pub signals: Vec<EpisodeSignal>,
}

/// A family member's "I'm handling it" for an episode (issue #17).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FamilyResponse {
    pub name: String,
    pub at: DateTime<Utc>,
}

/// One entry of an episode's timeline: something that happened to one of its signals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpisodeEvent {
    pub at: DateTime<Utc>,
    pub alert_id: i64,
    pub rule: String,
    pub actor: String,
    /// `open`, `escalate`, `acknowledge`, `assign`, `resolve`.
    pub action: String,
    pub note: Option<String>,
}

/// Who answered: a person's action on one of the episode's signals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpisodeResponse {
    pub at: DateTime<Utc>,
    pub alert_id: i64,
    pub who: String,
    /// `clinician` (a dashboard user or API token) or `family` (an e-mail link).
    pub role: String,
    pub action: String,
    pub note: Option<String>,
}

/// An e-mail about one of the episode's signals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpisodeEmail {
    pub alert_id: Option<i64>,
    pub to_name: String,
    pub subject: String,
    pub stage: u32,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
}

/// `GET /api/v1/episodes/{id}`: an episode with its timeline, notifications and responses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpisodeDetail {
    pub episode: Episode,
    pub timeline: Vec<EpisodeEvent>,
    pub notifications: Vec<EpisodeEmail>,
    pub responses: Vec<EpisodeResponse>,
}
