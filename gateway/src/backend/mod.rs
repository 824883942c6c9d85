//! The dashboard's `Backend` on the store, one file per part (queries, commands, auth,
//! operations); e-mails set aside go through the alert service. Every method blocks; the dashboard
//! calls them on the blocking pool.

use crate::alerts::AlertService;
use crate::metrics::Metrics;
use crate::provision;
use crate::store::{
    accounts, alerts, audit, episodes, orders, outbox, readings, registry, StoreError, StoreHandle,
};
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use vigil_alerting::lifecycle::Action;
use vigil_dashboard::{
    ActionOptions, AlertAction, BackendError, DeviceCredentials, EpisodeAction, EpisodeFilter,
    NewContactRequest, NewDeviceRequest, NewPatientRequest, NewUserRequest, ThresholdOrderRequest,
};
use vigil_domain::views::{
    AckLinkView, AlertDetail, AlertFilter, BurdenReport, Episode, EpisodeDetail, PatientPage,
    PatientSummary, PatientThreshold, ReadingBucket, ReadingPoint, Registry, RejectedMessage,
    Resolution, ThresholdOrder, UserView,
};
use vigil_domain::{Access, Alert, Contact, Metric, Patient, Scope};
use vigil_notify::outbox::{OutboxStore, QueuedEmail};

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
    pub mail_health: vigil_notify::outbox::Health,
    /// `smtp` or `file`.
    pub mail_transport: &'static str,
}

impl StoreBackend {
    /// A read on one of the store's reader connections, its error as the dashboard's.
    fn read<T>(
        &self,
        f: impl FnOnce(&vigil_store::db::Connection) -> Result<T, StoreError>,
    ) -> R<T> {
        self.store.read_blocking(f).map_err(be)
    }

    /// A write job on the store's writer, its error as the dashboard's.
    fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&vigil_store::db::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> R<T> {
        self.store.write_blocking(f).map_err(be)
    }
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
        c: &vigil_store::db::Connection,
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

mod auth;
mod commands;
mod operations;
mod queries;

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
    /// The outbox duty: with several gateways only its holder sends (issue #20).
    pub duty: crate::duty::Duty,
}

impl OutboxStore for StoreOutbox {
    fn due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<QueuedEmail>, vigil_notify::outbox::StoreError> {
        // Several gateways: the lease holder sends (issue #20).
        if !self.duty.held_blocking() {
            return Ok(Vec::new());
        }
        self.store
            .read_blocking(|c| outbox::due(c, now, limit))
            .map_err(|e| vigil_notify::outbox::StoreError(e.to_string()))
    }

    fn mark_sent(
        &self,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<(), vigil_notify::outbox::StoreError> {
        self.store
            .write_blocking(move |c| outbox::mark_sent(c, id, at))
            .map_err(|e| vigil_notify::outbox::StoreError(e.to_string()))
    }

    fn mark_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), vigil_notify::outbox::StoreError> {
        let error = error.chars().take(500).collect::<String>();
        self.store
            .write_blocking(move |c| outbox::mark_failed(c, id, &error, retry_at))
            .map_err(|e| vigil_notify::outbox::StoreError(e.to_string()))
    }

    fn mark_undeliverable(
        &self,
        id: i64,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<(), vigil_notify::outbox::StoreError> {
        let error = error.chars().take(500).collect::<String>();
        self.alerts
            .write_blocking(&self.store, move |tx| tx.set_aside(id, &error, at))
            .map_err(|e| vigil_notify::outbox::StoreError(e.to_string()))
    }
}
