//! Read models shared by the store (which fills them) and the dashboard API (which serves
//! them). Field names are the public JSON contract of `docs/api.md`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

mod episodes;
pub use episodes::*;

/// The width of the points a history query returns (issue #4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    /// Every stored reading.
    Raw,
    /// One bucket per minute: count, average, minimum, maximum.
    Minute,
    /// One bucket per hour.
    Hour,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Raw => "raw",
            Resolution::Minute => "minute",
            Resolution::Hour => "hour",
        }
    }

    /// Bucket width in milliseconds; `None` for raw readings.
    pub fn millis(self) -> Option<i64> {
        match self {
            Resolution::Raw => None,
            Resolution::Minute => Some(60_000),
            Resolution::Hour => Some(3_600_000),
        }
    }

    /// `raw`, `minute` or `hour`; `auto` is `None`: pick by the span.
    pub fn parse(s: &str) -> Result<Option<Resolution>, UnknownResolution> {
        match s {
            "auto" => Ok(None),
            "raw" => Ok(Some(Resolution::Raw)),
            "minute" => Ok(Some(Resolution::Minute)),
            "hour" => Ok(Some(Resolution::Hour)),
            _ => Err(UnknownResolution),
        }
    }

    /// What a chart of this span needs, at most a few thousand points whatever the device's
    /// rate: every reading up to two hours (a 1 Hz wearable is 7 200 points), minutes up to
    /// three days (1 440 buckets for a day: a 24-hour chart of a 1 Hz series in ≈ 10 ms instead
    /// of ≈ 390 ms for its 86 400 raw readings, docs/benchmarks.md), hours beyond (a 30-day
    /// chart is 720 buckets). An hour of slack on the longer spans, so that a client asking for
    /// "now − 24 h" a moment before the server's "now" still gets minutes.
    pub fn auto(span: chrono::Duration) -> Resolution {
        let slack = chrono::Duration::hours(1);
        if span <= chrono::Duration::hours(2) {
            Resolution::Raw
        } else if span <= chrono::Duration::days(3) + slack {
            Resolution::Minute
        } else {
            Resolution::Hour
        }
    }
}

/// A resolution name other than `auto`, `raw`, `minute` or `hour`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownResolution;

impl std::fmt::Display for UnknownResolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("resolution must be auto, raw, minute or hour")
    }
}

impl std::error::Error for UnknownResolution {}

/// Readings of one metric of one patient aggregated over a minute or an hour.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadingBucket {
    /// Start of the bucket (UTC).
    pub start: DateTime<Utc>,
    pub count: i64,
    pub avg: f64,
    pub min: f64,
    pub max: f64,
    pub unit: &'static str,
}

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
    /// The facility the patient belongs to.
    pub facility_id: String,
    /// Area within the facility (ward, village, hamlet), if set.
    pub area: Option<String>,
    pub tags: Vec<String>,
    /// The patient's enabled devices at a glance.
    pub devices: DeviceStatus,
    /// Latest value per metric name.
    pub latest: BTreeMap<String, LatestValue>,
    /// Latest values that breach one of the patient's threshold rules (their own limits when a
    /// clinician ordered them): metric name → the worst severity breached.
    pub flags: BTreeMap<String, &'static str>,
    /// Worst active alert: `red`, `amber`, `yellow`, or `ok`.
    pub status: &'static str,
    pub open_alerts: u32,
    /// NEWS2 from the latest vitals; absent when there are none.
    pub news2: Option<News2View>,
}

/// How a patient's enabled devices are doing (ward view, issue #6). `online` and `offline` come
/// from the devices' MQTT status messages and last wills; a device that never sent one is
/// counted in neither.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeviceStatus {
    pub total: u32,
    pub online: u32,
    pub offline: u32,
    /// Devices whose last battery report is below [`BATTERY_LOW_PERCENT`].
    pub battery_low: u32,
    /// The lowest battery level reported, in percent.
    pub lowest_battery: Option<f64>,
}

/// Below this a device's battery is shown as low: 20 % is where common pulse oximeters and BP
/// cuffs start warning (a decision, issue #6; devices may also send a `battery_low` event).
pub const BATTERY_LOW_PERCENT: f64 = 20.0;

/// A NEWS2 score as the API shows it (docs/api.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct News2View {
    pub total: u8,
    /// `low`, `low_medium`, `medium` or `high` (RCP response bands).
    pub risk: String,
    /// Some parameters were unknown or too old: `total` is a lower bound.
    pub partial: bool,
    /// The parameters that were: `respiratory_rate`, `spo2`, `air_or_oxygen`, `systolic`,
    /// `pulse`, `consciousness`, `temperature`.
    pub missing: Vec<&'static str>,
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
        alert: Box<crate::Alert>,
    },
}

/// Which alerts a list shows (the alert inbox's filters); `None`s match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFilter {
    pub state: Option<crate::AlertState>,
    /// Open or acknowledged only (the ward view and the inbox's first list).
    pub active: bool,
    pub severity: Option<crate::Severity>,
    pub patient_id: Option<String>,
    pub rule: Option<String>,
    /// Opened at or after.
    pub since: Option<DateTime<Utc>>,
    /// Opened before.
    pub until: Option<DateTime<Utc>>,
}

/// Alert burden of one rule or one patient over a period (issue #6: "so noisy thresholds can
/// be tuned").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BurdenRow {
    /// The rule id, or the patient id.
    pub key: String,
    /// The patient's name (patient rows only).
    pub name: Option<String>,
    pub alerts: u64,
    pub acknowledged: u64,
    pub resolved: u64,
    /// E-mails queued for them (digests count for their patient only).
    pub emails: u64,
    /// Of those, the ones to family contacts that were not withdrawn (issue #17).
    pub family_emails: u64,
    /// Episodes that began in the period (patient rows; `None` for rules).
    pub episodes: Option<u64>,
    /// Median and 90th percentile time from opening to acknowledgement, in seconds, over the
    /// acknowledged alerts.
    pub ack_median_s: Option<f64>,
    pub ack_p90_s: Option<f64>,
}

/// The alert-burden report.
#[derive(Debug, Clone, Serialize)]
pub struct BurdenReport {
    pub days: u32,
    pub since: DateTime<Utc>,
    /// Patients of the caller's facilities (with alerts or not).
    pub patients: u64,
    /// `patients × days / 7`.
    pub patient_weeks: f64,
    /// Episodes that began in the period, and per patient-week (`None` without patients).
    pub episodes: u64,
    pub episodes_per_patient_week: Option<f64>,
    /// E-mails to families, and per patient-week: what a family actually receives.
    pub family_emails: u64,
    pub family_emails_per_patient_week: Option<f64>,
    pub by_rule: Vec<BurdenRow>,
    pub by_patient: Vec<BurdenRow>,
}

/// One stored reading with its storage key (device, metric, time), as FHIR serves and exports
/// it (issue #18).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReading {
    /// The device's storage key: with the metric and the time, the reading's identity.
    pub device_num: i64,
    pub device_id: String,
    pub patient_id: String,
    pub metric: crate::Metric,
    pub ts: DateTime<Utc>,
    /// In the metric's canonical UCUM unit (`Metric::unit`).
    pub value: f64,
    /// `late`, `clock_skew`, `ts_received`, `suspect`.
    pub flags: Vec<String>,
    pub received_at: DateTime<Utc>,
}

/// A device as the patient page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceView {
    pub id: String,
    pub patient_id: String,
    pub kind: String,
    pub enabled: bool,
    pub last_seen: Option<DateTime<Utc>>,
    pub online: Option<bool>,
    pub battery: Option<f64>,
    /// When its clock was last seen wrong.
    pub clock_skew_at: Option<DateTime<Utc>>,
}

/// A dashboard user as administrators see them (never the password hash).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserView {
    pub name: String,
    pub admin: bool,
    /// A clinician's facilities; empty for administrators (they see all).
    pub facilities: Vec<String>,
    pub lang: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Set while the account is disabled (issue #15): no sign-in, no session.
    pub disabled_at: Option<DateTime<Utc>>,
}

/// An API token as administrators see it (never the token or its hash).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    /// The one facility it sees; none: an operator's token, every facility.
    pub facility_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used: Option<DateTime<Utc>>,
    /// Set once revoked: it stops working at once.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// One administrative change (issue #15): who, what, to what, when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdminAuditEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
}

/// A facility and how many patients it has.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FacilityView {
    pub id: String,
    pub name: String,
    pub patients: i64,
    /// The station's phone, which families are told to call (issue #17).
    pub phone: Option<String>,
}

/// Everything registered, for the administration page.
#[derive(Debug, Clone, Serialize)]
pub struct Registry {
    pub facilities: Vec<FacilityView>,
    pub patients: Vec<crate::Patient>,
    pub devices: Vec<DeviceView>,
    pub contacts: Vec<crate::Contact>,
    pub users: Vec<UserView>,
}

/// Everything the patient page needs besides charts and thresholds.
#[derive(Debug, Clone, Serialize)]
pub struct PatientPage {
    pub patient: crate::Patient,
    pub devices: Vec<DeviceView>,
    pub contacts: Vec<crate::Contact>,
    /// The patient's alerts, newest first.
    pub alerts: Vec<crate::Alert>,
}

/// A device event on a patient's timeline (issue #21).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventView {
    pub at: DateTime<Utc>,
    /// `fall`, `sos`, `battery_low`, `device_error` or `ok`.
    pub kind: String,
    pub device_id: String,
    /// The device's kind (`None` once the device was deleted).
    pub device_kind: Option<String>,
    /// The battery level the event reported.
    pub battery: Option<f64>,
    /// A fall the patient cancelled ("I'm OK") within the cancel window: no alert was raised.
    pub cancelled_at: Option<DateTime<Utc>>,
}

/// One entry of an alert's audit trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    /// `open`, `escalate`, `acknowledge`, `resolve`.
    pub action: String,
    pub note: Option<String>,
}

/// A reading that breached an alert's rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertReading {
    pub ts: DateTime<Utc>,
    pub metric: String,
    pub value: f64,
    pub unit: &'static str,
    pub device_id: String,
}

/// An e-mail about an alert and where its delivery stands (addresses are left out).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertEmail {
    pub to_name: String,
    /// Escalation step: 0 first e-mails, 1 secondary contacts, 2… reminders.
    pub stage: u32,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub attempts: u32,
    /// Refused for good (SMTP 5xx).
    pub failed_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// An alert with everything a reviewer needs: its audit trail, the readings that breached
/// its rule, and the e-mails it sent.
#[derive(Debug, Clone, Serialize)]
pub struct AlertDetail {
    pub alert: crate::Alert,
    pub audit: Vec<AuditEntry>,
    pub readings: Vec<AlertReading>,
    pub emails: Vec<AlertEmail>,
}

/// A per-patient threshold change: a clinical order, kept for good (the table is the audit
/// log: orders are never edited or deleted; a later order replaces an earlier one of the same
/// rule from its `effective_from`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdOrder {
    pub id: i64,
    pub patient_id: String,
    pub rule: String,
    /// The new threshold value (same comparison as the rule); `null`: the rule file's.
    pub threshold: Option<f64>,
    /// The new clear value; `null`: the rule file's (or following the threshold).
    pub clear: Option<f64>,
    /// `false`: the rule does not apply to this patient.
    pub enabled: bool,
    pub reason: String,
    pub ordered_by: String,
    pub ordered_at: DateTime<Utc>,
    pub effective_from: DateTime<Utc>,
}

/// A threshold rule as it applies to one patient now, beside the rule file's version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatientThreshold {
    pub rule: String,
    pub metric: String,
    pub severity: crate::Severity,
    /// The alert condition as the rule file states it, e.g. `< 90`.
    pub default_when: String,
    pub default_clear: String,
    /// As it applies to this patient.
    pub when: String,
    pub clear: String,
    pub enabled: bool,
    /// The order in force, if any.
    pub order_id: Option<i64>,
}

/// A live event with its JSON, serialized once however many dashboards listen (100 stream
/// clients at 10 000 readings/s would otherwise serialize a million events a second).
#[derive(Debug)]
pub struct LiveMessage {
    pub event: LiveEvent,
    pub json: String,
}

/// What the live broadcast carries: cheap to clone for every subscriber.
pub type Live = std::sync::Arc<LiveMessage>;

impl LiveMessage {
    pub fn new(event: LiveEvent) -> Live {
        let json = serde_json::to_string(&event).unwrap_or_default();
        std::sync::Arc::new(LiveMessage { event, json })
    }
}

/// Where an "I'm handling it" link from a family e-mail stands (issue #5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AckLinkStatus {
    /// Can be used: the page offers the button.
    Valid,
    /// Just used by this request.
    Accepted,
    /// Used before (single use).
    Used,
    Expired,
    /// Not a link Vigil made (or its alert is gone).
    Unknown,
}

/// What the page behind an "I'm handling it" link shows: enough to reassure the contact, no
/// more (the link works without a login).
#[derive(Debug, Clone, Serialize)]
pub struct AckLinkView {
    pub status: AckLinkStatus,
    pub lang: crate::Lang,
    pub contact_name: String,
    pub patient_name: String,
    pub severity: Option<crate::Severity>,
    pub alert_state: Option<crate::AlertState>,
    /// Who acknowledged the alert, when somebody has.
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// This contact answered "I'm handling it" for the alert's episode (issue #17).
    pub responded: bool,
    /// The family member who answered first for the episode, if one did.
    pub family_response: Option<FamilyResponse>,
    /// The patient's health station's phone (tap to call on the page).
    pub station_phone: Option<String>,
    /// The episode's open signs in plain words, with when each was last measured.
    pub signs: Vec<(String, DateTime<Utc>)>,
}

impl AckLinkView {
    pub fn unknown() -> AckLinkView {
        AckLinkView {
            status: AckLinkStatus::Unknown,
            lang: crate::Lang::Vi,
            contact_name: String::new(),
            patient_name: String::new(),
            severity: None,
            alert_state: None,
            acknowledged_by: None,
            acknowledged_at: None,
            responded: false,
            family_response: None,
            station_phone: None,
            signs: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn auto_resolution_follows_the_span() {
        assert_eq!(Resolution::auto(Duration::hours(2)), Resolution::Raw);
        assert_eq!(Resolution::auto(Duration::hours(24)), Resolution::Minute);
        assert_eq!(Resolution::auto(Duration::hours(48)), Resolution::Minute);
        assert_eq!(Resolution::auto(Duration::days(7)), Resolution::Hour);
        assert_eq!(Resolution::auto(Duration::days(30)), Resolution::Hour);
    }

    #[test]
    fn resolution_names() {
        assert_eq!(Resolution::parse("auto"), Ok(None));
        assert_eq!(Resolution::parse("hour"), Ok(Some(Resolution::Hour)));
        assert_eq!(Resolution::parse("weekly"), Err(UnknownResolution));
        assert_eq!(Resolution::Minute.millis(), Some(60_000));
        assert_eq!(Resolution::Raw.millis(), None);
    }
}
