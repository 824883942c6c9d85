//! The dashboard's [`Backend`], implemented on the store. Every method blocks; the dashboard
//! calls them on the blocking pool.

use crate::alerts::AlertService;
use crate::metrics::Metrics;
use crate::provision;
use crate::store::{alerts, orders, outbox, readings, registry, StoreError, StoreHandle};
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use vigil_alerting::lifecycle::Action;
use vigil_alerting::outbox::{OutboxStore, QueuedEmail};
use vigil_dashboard::{
    AlertAction, Backend, BackendError, DeviceCredentials, NewContactRequest, NewDeviceRequest,
    NewPatientRequest, NewUserRequest, ThresholdOrderRequest,
};
use vigil_domain::views::{
    AckLinkView, AlertDetail, AlertFilter, BurdenReport, FacilityView, PatientPage, PatientSummary,
    PatientThreshold, ReadingBucket, ReadingPoint, Registry, RejectedMessage, Resolution,
    ThresholdOrder, UserView,
};
use vigil_domain::{Access, Alert, Contact, Metric, Patient, Scope};

/// How long an e-mail set aside keeps `/readyz`'s outbox check down (issue #15).
const SET_ASIDE_UNREADY_MS: i64 = 3600 * 1000;

pub struct StoreBackend {
    pub store: StoreHandle,
    pub metrics: Arc<Metrics>,
    pub outbox_dir: PathBuf,
    /// The data directory, and the free space its filesystem must keep to be called ready.
    pub data_dir: PathBuf,
    pub min_free_bytes: u64,
    /// Dashboard session lifetime in milliseconds.
    pub session_ttl_ms: i64,
    /// Every change to an alert goes through it.
    pub alerts: AlertService,
    /// The rule file's rules (threshold orders are checked against them).
    pub rules: Arc<vigil_alerting::RuleSet>,
    /// Each patient's rules with their orders applied (shared with ingestion).
    pub patient_rules: Arc<crate::store::orders::PatientRules>,
    /// How e-mail delivery goes (the outbox loop updates it).
    pub mail_health: vigil_alerting::outbox::Health,
    /// `smtp` or `file`.
    pub mail_transport: &'static str,
}

/// A store error as the dashboard's (a function, not `From`: neither type is this crate's).
fn be(e: StoreError) -> BackendError {
    match e {
        StoreError::NotFound(w) => BackendError::NotFound(w),
        StoreError::Conflict(m) => BackendError::Conflict(m),
        StoreError::Invalid(m) => BackendError::Invalid(m),
        other => BackendError::Internal(other.to_string()),
    }
}

type R<T> = Result<T, BackendError>;

impl StoreBackend {
    /// Colours each latest value against the patient's own limits (issue #6).
    fn flag(
        &self,
        c: &rusqlite::Connection,
        list: &mut [PatientSummary],
    ) -> Result<(), StoreError> {
        self.patient_rules.refresh(c, crate::store::now_ms())?;
        for p in list {
            let rules = self.patient_rules.get(&p.id);
            for (name, v) in &p.latest {
                if let Some(sev) = name
                    .parse::<Metric>()
                    .ok()
                    .and_then(|m| rules.flag(m, v.value))
                {
                    p.flags.insert(name.clone(), sev.as_str());
                }
            }
        }
        Ok(())
    }
}

impl Backend for StoreBackend {
    fn patients(&self, scope: &Scope) -> R<Vec<PatientSummary>> {
        self.store
            .read_blocking(|c| {
                let mut list = readings::patient_summaries(c, scope, None)?;
                self.flag(c, &mut list)?;
                Ok(list)
            })
            .map_err(be)
    }

    fn patient_list(&self, scope: &Scope) -> R<Vec<Patient>> {
        self.store
            .read_blocking(|c| registry::patients(c, scope))
            .map_err(be)
    }

    fn patient_summary(&self, patient_id: &str) -> R<Option<PatientSummary>> {
        self.store
            .read_blocking(|c| {
                let mut list = readings::patient_summaries(c, &Scope::All, Some(patient_id))?;
                self.flag(c, &mut list)?;
                Ok(list.pop())
            })
            .map_err(be)
    }

    fn patient_facility(&self, patient_id: &str) -> R<Option<String>> {
        self.store
            .read_blocking(|c| registry::patient_facility(c, patient_id))
            .map_err(be)
    }

    fn alert_burden(&self, scope: &Scope, days: u32) -> R<BurdenReport> {
        let now = crate::store::now_ms();
        self.store
            .read_blocking(|c| alerts::burden(c, scope, days, now))
            .map_err(be)
    }

    fn patient_page(&self, patient_id: &str, alerts_limit: usize) -> R<Option<PatientPage>> {
        self.store
            .read_blocking(|c| {
                let Some(patient) = registry::patient(c, patient_id)? else {
                    return Ok(None);
                };
                Ok(Some(PatientPage {
                    patient,
                    devices: registry::patient_devices(c, patient_id)?,
                    contacts: registry::contacts(c, patient_id)?,
                    alerts: alerts::for_patient(c, patient_id, alerts_limit)?,
                }))
            })
            .map_err(be)
    }

    fn alert_facility(&self, alert_id: i64) -> R<Option<String>> {
        self.store
            .read_blocking(|c| registry::alert_facility(c, alert_id))
            .map_err(be)
    }

    fn readings(
        &self,
        patient_id: &str,
        metric: Metric,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> R<Vec<ReadingPoint>> {
        self.store
            .read_blocking(|c| {
                readings::range(
                    c,
                    patient_id,
                    metric,
                    from.timestamp_millis(),
                    to.timestamp_millis(),
                    limit,
                )
            })
            .map_err(be)
    }

    fn reading_buckets(
        &self,
        patient_id: &str,
        metric: Metric,
        resolution: Resolution,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> R<Vec<ReadingBucket>> {
        self.store
            .read_blocking(|c| {
                crate::store::rollups::buckets(
                    c,
                    patient_id,
                    metric,
                    resolution,
                    from.timestamp_millis(),
                    to.timestamp_millis(),
                    limit,
                )
            })
            .map_err(be)
    }

    /// One read turn for all of them: a thousand sparklines cost one pool checkout, not a
    /// thousand (issue #6: the ward view in < 100 ms).
    fn sparklines(
        &self,
        wanted: &[(String, Metric)],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> R<Vec<Vec<ReadingBucket>>> {
        self.store
            .read_blocking(|c| {
                wanted
                    .iter()
                    .map(|(p, m)| {
                        crate::store::rollups::buckets(
                            c,
                            p,
                            *m,
                            Resolution::Hour,
                            from.timestamp_millis(),
                            to.timestamp_millis(),
                            48,
                        )
                    })
                    .collect()
            })
            .map_err(be)
    }

    fn alerts(&self, scope: &Scope, filter: &AlertFilter, limit: usize) -> R<Vec<Alert>> {
        self.store
            .read_blocking(|c| alerts::list(c, scope, filter, limit))
            .map_err(be)
    }

    fn alert_assign(&self, id: i64, actor: &str, note: Option<&str>) -> R<Alert> {
        let (actor, note) = (actor.to_string(), note.map(str::to_string));
        self.alerts
            .write_blocking(&self.store, move |tx| {
                tx.assign(id, &actor, note.as_deref())
            })
            .map_err(be)
    }

    fn alert_detail(&self, id: i64, readings_limit: usize) -> R<Option<AlertDetail>> {
        self.store
            .read_blocking(|c| alerts::detail(c, id, readings_limit))
            .map_err(be)
    }

    fn alert_action(
        &self,
        id: i64,
        action: AlertAction,
        actor: &str,
        note: Option<&str>,
    ) -> R<Alert> {
        let action = match action {
            AlertAction::Acknowledge => Action::Acknowledge,
            AlertAction::Resolve => Action::Resolve,
        };
        let actor = actor.to_string();
        let note = note.map(str::to_string);
        self.alerts
            .write_blocking(&self.store, move |tx| {
                tx.act(id, action, &actor, note.as_deref())
            })
            .map_err(be)
    }

    fn rejected_of(&self, device: Option<&str>, limit: usize) -> R<Vec<RejectedMessage>> {
        self.store
            .read_blocking(|c| readings::rejected(c, device, limit))
            .map_err(be)
    }

    fn registry(&self) -> R<Registry> {
        self.store
            .read_blocking(|c| {
                Ok(Registry {
                    facilities: registry::facilities(c)?
                        .into_iter()
                        .map(|(id, name, patients)| FacilityView { id, name, patients })
                        .collect(),
                    patients: registry::patients(c, &Scope::All)?,
                    devices: registry::all_devices(c)?,
                    contacts: registry::all_contacts(c)?,
                    users: registry::users(c)?,
                })
            })
            .map_err(be)
    }

    fn add_patient(&self, req: NewPatientRequest) -> R<Patient> {
        self.store
            .write_blocking(move |c| {
                let facility = req
                    .facility_id
                    .as_deref()
                    .filter(|f| !f.is_empty())
                    .unwrap_or(vigil_domain::DEFAULT_FACILITY);
                let id = registry::add_patient(
                    c,
                    req.id.as_deref().filter(|i| !i.is_empty()),
                    &req.name,
                    facility,
                    req.area.as_deref(),
                    &req.tags,
                )?;
                Ok(registry::patient(c, &id)?.expect("inserted in this transaction"))
            })
            .map_err(be)
    }

    fn add_device(&self, req: NewDeviceRequest) -> R<DeviceCredentials> {
        let kind = provision::device_kind(&req.kind).map_err(be)?;
        let interval = provision::device_interval(req.interval.as_deref()).map_err(be)?;
        // argon2 before the write turn: it is slow on purpose.
        let (secret, hashes) = provision::new_secret();
        let patient = req.patient_id.clone();
        let id = self
            .store
            .write_blocking(move |c| {
                provision::add_device(
                    c,
                    req.id.as_deref().filter(|i| !i.is_empty()),
                    &req.patient_id,
                    kind,
                    interval,
                    &hashes,
                )
            })
            .map_err(be)?;
        Ok(DeviceCredentials {
            topic: format!("vigil/v1/{id}/readings"),
            username: id.clone(),
            id,
            patient_id: patient,
            kind: kind.as_str().to_string(),
            password: secret,
        })
    }

    fn add_contact(&self, patient_id: &str, req: NewContactRequest) -> R<Contact> {
        let pid = patient_id.to_string();
        self.store
            .write_blocking(move |c| {
                let input = provision::ContactInput {
                    name: req.name,
                    email: req.email,
                    lang: req.lang,
                    role: req.role,
                    tier: req.tier,
                    notify: req.notify,
                    quiet_hours: req.quiet_hours,
                    timezone: req.timezone,
                };
                let id = provision::add_contact(c, &pid, &input)?;
                Ok(registry::contact(c, id)?.expect("inserted in this transaction"))
            })
            .map_err(be)
    }

    fn add_user(&self, req: NewUserRequest) -> R<UserView> {
        provision::check_password(&req.password, &req.name).map_err(be)?;
        let hash = crate::secrets::hash_password(&req.password);
        let mut facilities = req.facilities;
        if facilities.is_empty() && !req.admin {
            facilities.push(vigil_domain::DEFAULT_FACILITY.to_string());
        }
        let name = req.name.trim().to_string();
        self.store
            .write_blocking(move |c| {
                registry::add_user(c, &name, &hash, req.admin, &facilities)?;
                Ok(registry::users(c)?
                    .into_iter()
                    .find(|u| u.name == name)
                    .expect("inserted in this transaction"))
            })
            .map_err(be)
    }

    fn token_access(&self, token: &str) -> R<Option<Access>> {
        self.store
            .read_blocking(|c| registry::api_token_access(c, token))
            .map_err(be)
    }

    fn login(&self, user: &str, password: &str) -> R<Option<(String, String)>> {
        let Some((id, hash, _admin)) = self
            .store
            .read_blocking(|c| registry::user_by_name(c, user))
            .map_err(be)?
        else {
            // Spend the same time as a real check so user names cannot be probed by timing.
            let _ = crate::secrets::verify_password(password, dummy_hash());
            return Ok(None);
        };
        if !crate::secrets::verify_password(password, &hash) {
            return Ok(None);
        }
        let token = crate::secrets::new_session_token();
        let csrf = crate::secrets::random_hex(16);
        let (t, x) = (token.clone(), csrf.clone());
        let ttl = self.session_ttl_ms;
        self.store
            .write_blocking(move |c| registry::create_session(c, id, &t, &x, ttl))
            .map_err(be)?;
        Ok(Some((token, csrf)))
    }

    fn session_access(&self, token: &str) -> R<Option<Access>> {
        self.store
            .read_blocking(|c| registry::session_access(c, token))
            .map_err(be)
    }

    fn set_language(&self, user: &str, lang: vigil_domain::Lang) -> R<()> {
        let user = user.to_string();
        self.store
            .write_blocking(move |c| registry::set_user_lang(c, &user, lang))
            .map_err(be)
    }

    fn logout(&self, token: &str) -> R<()> {
        let t = token.to_string();
        self.store
            .write_blocking(move |c| registry::delete_session(c, &t))
            .map_err(be)
    }

    fn metrics_text(&self) -> String {
        let outbox = self.store.read_blocking(outbox::counts).ok();
        self.metrics.render(outbox)
    }

    fn readiness(&self) -> Vec<(&'static str, bool)> {
        // With SMTP the directory is unused; the relay's health is reported under `detail`
        // (readings keep flowing while it is down, so it does not make the gateway unready).
        let dir_ok = self.mail_transport == "smtp"
            || std::fs::metadata(&self.outbox_dir)
                .map(|m| m.is_dir() && !m.permissions().readonly())
                .unwrap_or(false);
        // An e-mail set aside in the last hour is a family that was not told: the outbox
        // reports down until an hour has passed without one (issue #15, finding 1). The
        // `notification_failed` alert it raised stays open on the dashboard beyond that.
        let since = crate::store::now_ms() - SET_ASIDE_UNREADY_MS;
        let set_aside = self
            .store
            .read_blocking(move |c| outbox::set_aside_since(c, since))
            .unwrap_or(0);
        let outbox_ok = dir_ok && set_aside == 0;
        // A nearly full disk is not ready either: the next commit may fail, and SQLite's WAL
        // can still take a small probe write while real groups no longer fit (issue #15).
        let room = crate::datadir::free_bytes(&self.data_dir)
            .is_none_or(|free| free >= self.min_free_bytes);
        if !room {
            tracing::error!(
                min_free_mb = self.min_free_bytes >> 20,
                "data directory's filesystem is nearly full: not ready"
            );
        }
        vec![
            ("broker", self.metrics.mqtt_up.load(Relaxed)),
            ("store", room && self.store.is_usable()),
            ("outbox", outbox_ok),
        ]
    }

    fn readiness_detail(&self) -> Vec<(&'static str, serde_json::Value)> {
        let m = &self.metrics;
        let h = self.mail_health.get();
        let counts = self.store.read_blocking(outbox::counts).unwrap_or_default();
        let mut detail = vec![(
            "email",
            serde_json::json!({
                "transport": self.mail_transport,
                "healthy": h.healthy() && counts.undeliverable == 0,
                "consecutive_failures": h.consecutive_failures,
                "last_error": h.last_error,
                "last_success": h.last_success,
                "last_failure": h.last_failure,
                "pending": counts.pending,
                "retrying": counts.retrying,
                "undeliverable": counts.undeliverable,
                "last_set_aside": h.last_set_aside,
            }),
        )];
        if !m.forward_enabled.load(Relaxed) {
            return detail;
        }
        detail.push((
            "influxdb",
            serde_json::json!({
                "up": m.forward_up.load(Relaxed),
                "backlog_points": m.forward_backlog.load(Relaxed),
                "lag_seconds": m.forward_lag_ms.load(Relaxed) as f64 / 1000.0,
            }),
        ));
        detail
    }

    fn thresholds(&self, patient_id: &str) -> R<(Vec<PatientThreshold>, Vec<ThresholdOrder>)> {
        let now = crate::store::now_ms();
        self.store
            .read_blocking(|c| {
                Ok((
                    orders::thresholds(c, patient_id, &self.rules, now)?,
                    orders::list(c, patient_id)?,
                ))
            })
            .map_err(be)
    }

    fn order_threshold(
        &self,
        patient_id: &str,
        o: ThresholdOrderRequest,
        actor: &str,
    ) -> R<ThresholdOrder> {
        let order = orders::NewOrder {
            rule: o.rule,
            threshold: o.threshold,
            clear: o.clear,
            enabled: o.enabled,
            reason: o.reason,
            ordered_by: actor.to_string(),
            effective_from: o.effective_from.map(|t| t.timestamp_millis()),
        };
        let (rules, pid) = (self.rules.clone(), patient_id.to_string());
        self.store
            .write_blocking(move |c| orders::add(c, &pid, &order, &rules, crate::store::now_ms()))
            .map_err(be)
    }

    fn ack_link(&self, token: &str, accept: bool) -> R<AckLinkView> {
        let now = crate::store::now_ms();
        let t = token.to_string();
        if accept {
            self.alerts
                .write_blocking(&self.store, move |tx| tx.use_ack_link(&t, now))
                .map_err(be)
        } else {
            self.store
                .read_blocking(|c| crate::notify::ack_link_view(c, &t, now))
                .map_err(be)
        }
    }

    fn tokens(&self) -> R<Vec<vigil_domain::views::TokenView>> {
        self.store.read_blocking(registry::api_tokens).map_err(be)
    }

    fn revoke_token(&self, id: i64, actor: &str) -> R<()> {
        let actor = actor.to_string();
        self.store
            .write_blocking(move |c| registry::revoke_api_token(c, id, &actor))
            .map_err(be)
    }

    fn set_user_enabled(&self, name: &str, enabled: bool, actor: &str) -> R<()> {
        let (name, actor) = (name.to_string(), actor.to_string());
        self.store
            .write_blocking(move |c| registry::set_user_enabled(c, &name, enabled, &actor))
            .map_err(be)
    }

    fn contacts_of(&self, patient_id: &str) -> R<Vec<Contact>> {
        self.store
            .read_blocking(|c| registry::contacts(c, patient_id))
            .map_err(be)
    }

    fn edit_contact(
        &self,
        id: i64,
        req: vigil_dashboard::ContactEditRequest,
        actor: &str,
    ) -> R<Contact> {
        let edit = provision::ContactEdit {
            name: req.name,
            email: req.email,
            lang: req.lang,
            role: req.role,
            tier: req.tier,
            notify: req.notify,
            quiet_hours: req.quiet_hours,
            timezone: req.timezone,
        };
        let actor = actor.to_string();
        self.store
            .write_blocking(move |c| provision::edit_contact(c, id, &edit, &actor))
            .map_err(be)
    }

    fn remove_contact(&self, id: i64, actor: &str) -> R<()> {
        let actor = actor.to_string();
        self.store
            .write_blocking(move |c| registry::remove_contact(c, id, &actor))
            .map_err(be)
    }

    fn remove_device(&self, id: &str, actor: &str) -> R<()> {
        let (id, actor) = (id.to_string(), actor.to_string());
        self.store
            .write_blocking(move |c| registry::remove_device(c, &id, &actor))
            .map_err(be)
    }

    fn admin_audit(&self, limit: usize) -> R<Vec<vigil_domain::views::AdminAuditEntry>> {
        let rows = self
            .store
            .read_blocking(|c| registry::audit_log(c, limit))
            .map_err(be)?;
        Ok(rows
            .into_iter()
            .map(
                |(at, actor, action, target)| vigil_domain::views::AdminAuditEntry {
                    at: crate::store::ms_to_time(at),
                    actor,
                    action,
                    target,
                },
            )
            .collect())
    }
}

/// An argon2id hash of a random string, used to equalise login timing for unknown users.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| crate::secrets::hash_password(&crate::secrets::random_hex(16)))
}

/// The outbox loop's view of the store; an e-mail set aside goes through the alert service
/// (it raises `notification_failed`).
pub struct StoreOutbox {
    pub store: StoreHandle,
    pub alerts: AlertService,
}

impl OutboxStore for StoreOutbox {
    fn due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<QueuedEmail>, vigil_alerting::outbox::StoreError> {
        self.store
            .read_blocking(|c| outbox::due(c, now, limit))
            .map_err(|e| vigil_alerting::outbox::StoreError(e.to_string()))
    }

    fn mark_sent(
        &self,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<(), vigil_alerting::outbox::StoreError> {
        self.store
            .write_blocking(move |c| outbox::mark_sent(c, id, at))
            .map_err(|e| vigil_alerting::outbox::StoreError(e.to_string()))
    }

    fn mark_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), vigil_alerting::outbox::StoreError> {
        let error = error.chars().take(500).collect::<String>();
        self.store
            .write_blocking(move |c| outbox::mark_failed(c, id, &error, retry_at))
            .map_err(|e| vigil_alerting::outbox::StoreError(e.to_string()))
    }

    fn mark_undeliverable(
        &self,
        id: i64,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<(), vigil_alerting::outbox::StoreError> {
        let error = error.chars().take(500).collect::<String>();
        self.alerts
            .write_blocking(&self.store, move |tx| tx.set_aside(id, &error, at))
            .map_err(|e| vigil_alerting::outbox::StoreError(e.to_string()))
    }
}
