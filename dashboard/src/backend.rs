//! What the web layer needs from Vigil. Methods block (the gateway's store is SQLite); handlers
//! call them through `tokio::task::spawn_blocking`.

use chrono::{DateTime, Utc};
use vigil_domain::views::{
    AckLinkView, AlertDetail, AlertFilter, BurdenReport, Episode, EpisodeDetail, PatientPage,
    PatientSummary, PatientThreshold, ReadingBucket, ReadingPoint, RejectedMessage, Resolution,
    StoredReading, ThresholdOrder,
};
use vigil_domain::{Access, Alert, Metric, Scope};

/// Which episodes `GET /api/v1/episodes?state=` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpisodeFilter {
    Active,
    Ended,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertAction {
    Acknowledge,
    Resolve,
}

/// One button of an episode's ward card (issue #17), for all its active signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpisodeAction {
    Acknowledge,
    Assign,
    Resolve,
}

/// What comes with an action on an alert or an episode.
#[derive(Debug, Clone, Default)]
pub struct ActionOptions {
    pub note: Option<String>,
    /// The note is for the family too: quoted in their "taken on" update (acknowledge only).
    pub share_with_family: bool,
    /// Resolve although a signal's current value is still beyond its limit.
    pub confirm: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The request breaks a rule of the domain (e.g. a threshold order without a reason).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Internal(String),
}

/// A per-patient threshold change as a clinician orders it (`POST
/// /api/v1/patients/{id}/thresholds`, docs/api.md).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdOrderRequest {
    pub rule: String,
    #[serde(default)]
    pub threshold: Option<f64>,
    #[serde(default)]
    pub clear: Option<f64>,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub reason: String,
    #[serde(default)]
    pub effective_from: Option<DateTime<Utc>>,
}

fn yes() -> bool {
    true
}

/// A patient registered from the administration page (`POST /api/v1/patients`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPatientRequest {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub facility_id: Option<String>,
    #[serde(default)]
    pub area: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A device registered from the administration page (`POST /api/v1/devices`); its MQTT
/// password is in the answer, once.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDeviceRequest {
    #[serde(default)]
    pub id: Option<String>,
    pub patient_id: String,
    pub kind: String,
    /// Expected reporting interval (`5m`), for missing-data alerts.
    #[serde(default)]
    pub interval: Option<String>,
}

/// A person to notify (`POST /api/v1/patients/{id}/contacts`); the same fields as
/// `vigil contact add`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewContactRequest {
    pub name: String,
    pub email: String,
    #[serde(default = "vi")]
    pub lang: String,
    #[serde(default = "family")]
    pub role: String,
    #[serde(default = "primary")]
    pub tier: String,
    #[serde(default)]
    pub notify: Option<String>,
    #[serde(default)]
    pub quiet_hours: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    /// Their phone number (issue #17).
    #[serde(default)]
    pub phone: Option<String>,
}

fn vi() -> String {
    "vi".into()
}
fn family() -> String {
    "family".into()
}
fn primary() -> String {
    "primary".into()
}

/// A dashboard user (`POST /api/v1/users`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    pub name: String,
    pub password: String,
    #[serde(default)]
    pub admin: bool,
    /// A clinician's facilities (`default` when empty); ignored for administrators.
    #[serde(default)]
    pub facilities: Vec<String>,
}

/// What a new device needs to connect; the password is not kept (only hashes are).
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceCredentials {
    pub id: String,
    pub patient_id: String,
    pub kind: String,
    /// The MQTT user name is the device id.
    pub username: String,
    pub password: String,
    /// Where it publishes its readings.
    pub topic: String,
}

pub type Result<T> = std::result::Result<T, BackendError>;

/// What the dashboard reads: patients, readings, alerts, the registry, the audit.
pub trait Queries: Send + Sync + 'static {
    /// The patients of the facilities `scope` allows.
    fn patients(&self, scope: &Scope) -> Result<Vec<PatientSummary>>;
    /// The patients of the facilities `scope` allows, by name, without their readings (lists
    /// to choose from).
    fn patient_list(&self, scope: &Scope) -> Result<Vec<vigil_domain::Patient>>;
    /// One patient's summary (latest values, NEWS2, devices), whatever their facility: callers
    /// check the scope first.
    fn patient_summary(&self, patient_id: &str) -> Result<Option<PatientSummary>>;
    /// The facility of a patient (`None`: no such patient); handlers check it against the
    /// caller's scope and answer 404 either way, so ids of other facilities stay unknown.
    fn patient_facility(&self, patient_id: &str) -> Result<Option<String>>;
    /// Alerts and e-mails per rule and per patient over the last `days` (the patients `scope`
    /// allows).
    fn alert_burden(&self, scope: &Scope, days: u32) -> Result<BurdenReport>;
    /// The patient page's facts: the patient, devices, contacts and latest alerts.
    fn patient_page(&self, patient_id: &str, alerts_limit: usize) -> Result<Option<PatientPage>>;
    /// A patient's device events timed in `[from, to]`, newest first (the timeline).
    fn patient_events(
        &self,
        patient_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<vigil_domain::views::EventView>>;
    /// The facility of an alert's patient.
    fn alert_facility(&self, alert_id: i64) -> Result<Option<String>>;
    fn readings(
        &self,
        patient_id: &str,
        metric: Metric,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ReadingPoint>>;
    /// Minute or hour rollups of a patient's metric whose bucket starts in `[from, to]`.
    fn reading_buckets(
        &self,
        patient_id: &str,
        metric: Metric,
        resolution: Resolution,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ReadingBucket>>;
    /// Hourly rollups for many (patient, metric) pairs at once (the ward view's sparklines), in
    /// the order asked; the default asks one pair at a time.
    fn sparklines(
        &self,
        wanted: &[(String, Metric)],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Vec<ReadingBucket>>> {
        wanted
            .iter()
            .map(|(p, m)| self.reading_buckets(p, *m, Resolution::Hour, from, to, 48))
            .collect()
    }
    fn alerts(&self, scope: &Scope, filter: &AlertFilter, limit: usize) -> Result<Vec<Alert>>;
    /// One alert with its audit trail, the readings that breached its rule (oldest first, at
    /// most `readings_limit`) and its e-mails; `None` when there is no such alert.
    fn alert_detail(&self, id: i64, readings_limit: usize) -> Result<Option<AlertDetail>>;
    /// Episodes (issue #17) of the facilities `scope` allows, active ones most severe first,
    /// then newest first; one patient's when given.
    fn episodes(
        &self,
        scope: &Scope,
        which: EpisodeFilter,
        patient_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Episode>>;
    /// One episode with its timeline, notifications and responses.
    fn episode_detail(&self, id: i64) -> Result<Option<EpisodeDetail>>;
    /// The facility of an episode's patient.
    fn episode_facility(&self, id: i64) -> Result<Option<String>>;
    /// FHIR (issue #18): `patient_id`'s readings of `metrics` timed in `[from, to)`, from
    /// `after` (time ms, device key, metric code) on, ordered by (time, device, metric), at
    /// most `limit`.
    fn stored_readings(
        &self,
        patient_id: &str,
        metrics: &[Metric],
        window: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
        after: Option<(i64, i64, i64)>,
        limit: usize,
    ) -> Result<Vec<StoredReading>>;
    /// The readings of `metrics` stored under device key `device` at `ts_ms` (a blood
    /// pressure's two halves, or one).
    fn stored_reading(
        &self,
        device: i64,
        metrics: &[Metric],
        ts_ms: i64,
    ) -> Result<Vec<StoredReading>>;
    /// Administration (admins only; handlers check the role): everything registered.
    fn registry(&self) -> Result<vigil_domain::views::Registry>;
    /// Rejected messages, newest first, of one device when given.
    fn rejected_of(&self, device: Option<&str>, limit: usize) -> Result<Vec<RejectedMessage>>;
    /// A patient's threshold rules as they apply now, and every order ever given (oldest first).
    fn thresholds(&self, patient_id: &str) -> Result<(Vec<PatientThreshold>, Vec<ThresholdOrder>)>;
    /// Revocation (issue #15, admins only; each change audited as `actor`).
    /// Every API token, revoked ones included (never a token itself).
    fn tokens(&self) -> Result<Vec<vigil_domain::views::TokenView>>;
    fn contacts_of(&self, patient_id: &str) -> Result<Vec<vigil_domain::Contact>>;
    /// The administrative audit, newest first.
    fn admin_audit(&self, limit: usize) -> Result<Vec<vigil_domain::views::AdminAuditEntry>>;
}

/// What the dashboard changes: alerts (through the gateway's alert service), the registry, thresholds, revocations.
pub trait Commands: Send + Sync + 'static {
    /// "Assign to me": `actor` takes the alert on.
    fn alert_assign(&self, id: i64, actor: &str, note: Option<&str>) -> Result<Alert>;
    fn alert_action(
        &self,
        id: i64,
        action: AlertAction,
        actor: &str,
        opts: &ActionOptions,
    ) -> Result<Alert>;
    /// `action` on every active signal of episode `id` (issue #17).
    fn episode_action(
        &self,
        id: i64,
        action: EpisodeAction,
        actor: &str,
        opts: &ActionOptions,
    ) -> Result<Episode>;
    fn add_patient(&self, req: NewPatientRequest) -> Result<vigil_domain::Patient>;
    fn add_device(&self, req: NewDeviceRequest) -> Result<DeviceCredentials>;
    fn add_contact(
        &self,
        patient_id: &str,
        req: NewContactRequest,
    ) -> Result<vigil_domain::Contact>;
    fn add_user(&self, req: NewUserRequest) -> Result<vigil_domain::views::UserView>;
    /// Records a threshold order by `actor`.
    fn order_threshold(
        &self,
        patient_id: &str,
        order: ThresholdOrderRequest,
        actor: &str,
    ) -> Result<ThresholdOrder>;
    /// The "I'm handling it" link `token` from a family e-mail: what it stands for, and with
    /// `accept` its use (acknowledges the alert as that contact, single use).
    fn ack_link(&self, token: &str, accept: bool) -> Result<AckLinkView>;
    fn revoke_token(&self, id: i64, actor: &str) -> Result<()>;
    fn set_user_enabled(&self, name: &str, enabled: bool, actor: &str) -> Result<()>;
    fn edit_contact(
        &self,
        id: i64,
        req: ContactEditRequest,
        actor: &str,
    ) -> Result<vigil_domain::Contact>;
    fn remove_contact(&self, id: i64, actor: &str) -> Result<()>;
    fn remove_device(&self, id: &str, actor: &str) -> Result<()>;
    /// Enables or disables a device, or changes its expected interval (issue #21), audited.
    fn edit_device(&self, id: &str, req: DeviceEditRequest, actor: &str) -> Result<()>;
    /// Changes a patient (issue #21), audited.
    fn edit_patient(
        &self,
        id: &str,
        req: PatientEditRequest,
        actor: &str,
    ) -> Result<vigil_domain::Patient>;
    /// Removes a patient from monitoring (issue #21): out of every list, devices removed,
    /// active alerts resolved as `actor`; the record stays.
    fn remove_patient(&self, id: &str, actor: &str) -> Result<()>;
}

/// `PATCH /api/v1/devices/{id}`: absent fields stay; `interval` `""` or `"default"` returns to
/// the kind's.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceEditRequest {
    pub enabled: Option<bool>,
    pub interval: Option<String>,
}

/// `PATCH /api/v1/patients/{id}`: absent fields stay; `area: ""` clears the area.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientEditRequest {
    pub name: Option<String>,
    pub facility_id: Option<String>,
    pub area: Option<String>,
    pub tags: Option<Vec<String>>,
}

/// Who is asking: API tokens, sign-in and sessions.
pub trait Auth: Send + Sync + 'static {
    /// Who a valid API token speaks for.
    fn token_access(&self, token: &str) -> Result<Option<Access>>;
    /// A new session when the name and password are right: (session token, CSRF token).
    fn login(&self, user: &str, password: &str) -> Result<Option<(String, String)>>;
    /// Who is behind a live session token.
    fn session_access(&self, token: &str) -> Result<Option<Access>>;
    fn logout(&self, token: &str) -> Result<()>;
    /// Keeps the language a dashboard user chose with their account.
    fn set_language(&self, user: &str, lang: vigil_domain::Lang) -> Result<()>;
    /// Keeps whether a dashboard user hears the red-alert tone (issue #21).
    fn set_sound(&self, user: &str, on: bool) -> Result<()>;
}

/// How the gateway is doing: `/metrics` and `/readyz`.
pub trait Operations: Send + Sync + 'static {
    /// Prometheus text for `/metrics`.
    fn metrics_text(&self) -> String;
    /// Each dependency and whether it is usable, for `/readyz`.
    fn readiness(&self) -> Vec<(&'static str, bool)>;
    /// Facts shown under `detail` in `/readyz` that do not make the gateway unready (e.g. the
    /// InfluxDB backlog: ingestion goes on while InfluxDB is down).
    fn readiness_detail(&self) -> Vec<(&'static str, serde_json::Value)> {
        Vec::new()
    }
}

/// Everything the dashboard needs from the gateway, split by purpose (issue #16); a type with
/// all four parts is a `Backend`.
pub trait Backend: Queries + Commands + Auth + Operations {}

impl<T: Queries + Commands + Auth + Operations> Backend for T {}

/// Changes to a contact (`PATCH /api/v1/contacts/{id}`): absent fields stay; `notify`,
/// `quiet_hours` and `timezone` take `"default"`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactEditRequest {
    pub name: Option<String>,
    pub email: Option<String>,
    pub lang: Option<String>,
    pub role: Option<String>,
    pub tier: Option<String>,
    pub notify: Option<String>,
    pub quiet_hours: Option<String>,
    pub timezone: Option<String>,
    /// A phone number; `"none"` or `""` removes it.
    pub phone: Option<String>,
}
