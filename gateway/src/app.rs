//! The application context (issue #16): what the gateway's parts share — the store, the rules,
//! the alert service, the live bus and the metrics — built in one place from the configuration
//! and handed to each task, instead of every part reaching into another's fields.

use crate::alerts::AlertService;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::orders::PatientRules;
use crate::store::StoreHandle;
use std::sync::Arc;
use tokio::sync::{broadcast, Notify};
use vigil_alerting::RuleSet;
use vigil_domain::views::Live;
use vigil_notify::NotifySettings;

/// Live updates buffered per dashboard connection before it must resync.
const LIVE_BUFFER: usize = 1024;

/// Cheap to clone: handles and `Arc`s.
#[derive(Clone)]
pub struct App {
    pub store: StoreHandle,
    /// The rule file's rules.
    pub rules: Arc<RuleSet>,
    /// The rules per patient: `rules` with each patient's threshold orders applied.
    pub patient_rules: Arc<PatientRules>,
    /// The only way to open or change an alert.
    pub alerts: AlertService,
    /// Live updates for dashboards; lagging receivers lose old updates, never block a sender.
    pub live: broadcast::Sender<Live>,
    pub metrics: Arc<Metrics>,
    /// Wakes the outbox loop when e-mails were queued.
    pub outbox_wake: Arc<Notify>,
}

impl App {
    /// Builds the context on an opened store.
    pub fn new(cfg: &Config, store: StoreHandle, rules: RuleSet) -> App {
        let metrics = Arc::new(Metrics::default());
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        let outbox_wake = Arc::new(Notify::new());
        let rules = Arc::new(rules);
        let alerts = AlertService::new(
            notify_settings(cfg),
            cfg.influxdb.enabled(),
            live.clone(),
            metrics.clone(),
            outbox_wake.clone(),
        );
        App {
            store,
            patient_rules: Arc::new(PatientRules::new(rules.clone())),
            rules,
            alerts,
            live,
            metrics,
            outbox_wake,
        }
    }
}

/// Notification settings from `[notify]` and the dashboard's public URL.
fn notify_settings(cfg: &Config) -> NotifySettings {
    let n = &cfg.notify;
    NotifySettings {
        public_url: Some(cfg.public_url().to_string()).filter(|u| !u.is_empty()),
        message_id_domain: cfg.email.message_id_domain.clone(),
        policy: vigil_notify::escalation::Policy {
            escalate_after_ms: i64::from(n.escalate_after_seconds) * 1000,
            repeat_ms: i64::from(n.repeat_seconds) * 1000,
        },
        link_valid_ms: i64::from(n.link_valid_hours) * 3_600_000,
        minimal_phi: n.minimal_phi,
        min_interval_ms: vigil_alerting::rulefile::duration_ms(&n.min_interval)
            .expect("validated with the config"),
        quiet_hours: vigil_notify::digest::QuietHours::parse_setting(&n.quiet_hours)
            .expect("validated with the config"),
        timezone: n.timezone.parse().expect("validated with the config"),
        display_tz: cfg.display_timezone(),
        reopen_grace_ms: vigil_domain::span::parse_ms(&n.reopen_grace)
            .expect("validated with the config"),
        update_interval_ms: vigil_domain::span::parse_ms(&n.update_interval)
            .expect("validated with the config"),
    }
}
