//! The alert service (issue #16): the only code that opens an alert or changes its state.
//! Every path — ingest, the fall window (`deferred`), the missing-data watch, escalation, the
//! outbox, the dashboard and the family's e-mail link — goes through an [`AlertTx`] inside its
//! write job, which for each change runs, in that one transaction:
//!
//! ```text
//! lifecycle (vigil_alerting::lifecycle) → rows (store::alerts) → episode (vigil_alerting::episode,
//!   store::episodes) → notifications (vigil_notify::policy) → InfluxDB queue (store::forward,
//!   when the sink is on)
//! ```
//!
//! and after the commit [`AlertService::announce`] tells metrics, logs, live dashboards and the
//! outbox. So an alert never exists without its e-mails queued and its InfluxDB point, however
//! it was raised (docs/architecture.md invariants 3 and 4; issue #16 found the fall window, the watch and
//! `notification_failed` writing no `opened` point).

use crate::metrics::Metrics;
use crate::store::notify::Rows;
use crate::store::{
    alerts as rows, episodes, forward, now_ms, outbox, Result, StoreError, StoreHandle,
};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::sync::{broadcast, Notify};
use vigil_alerting::episode::{self, Placement};
use vigil_alerting::lifecycle::{self, Action, OnBreach};
use vigil_alerting::Breach;
use vigil_domain::views::{AckLinkStatus, AckLinkView, Live, LiveEvent, LiveMessage};
use vigil_domain::{Alert, AlertState, EventKind, Severity};
use vigil_notify::policy::{self as notify, LinkUse};
use vigil_notify::NotifySettings;
use vigil_store::db::Connection;

/// One change to announce once its transaction committed.
#[derive(Debug, Clone)]
enum Change {
    /// A new alert, or a worse one: either way people must be told.
    Opened { alert: Box<Alert>, emails: usize },
    /// One more breach of an active alert.
    Updated { alert_id: i64 },
    /// Resolved by the system: its rule's clear condition held.
    Cleared { alert: Box<Alert> },
    /// A person acknowledged, resolved or took it on.
    Acted { alert: Box<Alert> },
}

/// What a transaction changed, for [`AlertService::announce`].
#[derive(Debug, Default)]
#[must_use = "announce the changes once the transaction committed"]
pub struct Changes {
    list: Vec<Change>,
    /// E-mails queued (escalation steps and digests included).
    emails: usize,
}

struct Inner {
    settings: NotifySettings,
    /// The InfluxDB sink is on: openings and changes of state are queued for it.
    forward: bool,
    live: broadcast::Sender<Live>,
    metrics: Arc<Metrics>,
    outbox_wake: Arc<Notify>,
}

/// The cloneable handle to the alert service.
#[derive(Clone)]
pub struct AlertService(Arc<Inner>);

impl AlertService {
    pub fn new(
        settings: NotifySettings,
        forward: bool,
        live: broadcast::Sender<Live>,
        metrics: Arc<Metrics>,
        outbox_wake: Arc<Notify>,
    ) -> AlertService {
        AlertService(Arc::new(Inner {
            settings,
            forward,
            live,
            metrics,
            outbox_wake,
        }))
    }

    /// A service that announces to nobody, for unit tests.
    #[cfg(test)]
    pub fn for_tests(settings: NotifySettings, forward: bool) -> AlertService {
        AlertService::new(
            settings,
            forward,
            broadcast::channel(16).0,
            Arc::new(Metrics::default()),
            Arc::new(Notify::new()),
        )
    }

    pub fn settings(&self) -> &NotifySettings {
        &self.0.settings
    }

    /// Starts the service's work inside the write transaction `conn`.
    pub fn begin<'c>(&'c self, conn: &'c Connection) -> AlertTx<'c> {
        AlertTx {
            conn,
            svc: &self.0,
            changes: Changes::default(),
            sink: self.0.forward.then(forward::Batch::default),
            tell: Default::default(),
            locked: Default::default(),
        }
    }

    /// Runs `f` in one write job of `store`, then announces what it changed.
    pub async fn write<R, F>(&self, store: &StoreHandle, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&mut AlertTx<'c>) -> Result<R> + Send + 'static,
    {
        let svc = self.clone();
        let (r, changes) = store.write(move |c| svc.run(c, f)).await?;
        self.announce(changes);
        Ok(r)
    }

    /// [`AlertService::write`] for blocking callers (the dashboard's backend, the outbox).
    pub fn write_blocking<R, F>(&self, store: &StoreHandle, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&mut AlertTx<'c>) -> Result<R> + Send + 'static,
    {
        let svc = self.clone();
        let (r, changes) = store.write_blocking(move |c| svc.run(c, f))?;
        self.announce(changes);
        Ok(r)
    }

    fn run<R>(
        &self,
        conn: &Connection,
        f: impl for<'c> FnOnce(&mut AlertTx<'c>) -> Result<R>,
    ) -> Result<(R, Changes)> {
        let mut tx = self.begin(conn);
        let r = f(&mut tx)?;
        Ok((r, tx.finish()?))
    }

    /// Tells the world what a committed transaction changed: metrics, logs, live dashboards,
    /// and the outbox when e-mails were queued.
    pub fn announce(&self, changes: Changes) {
        let s = &self.0;
        let send = |alert: Box<Alert>| {
            let _ = s.live.send(LiveMessage::new(LiveEvent::Alert { alert }));
        };
        for change in changes.list {
            match change {
                Change::Updated { alert_id } => tracing::debug!(alert_id, "active alert updated"),
                Change::Cleared { alert } => {
                    tracing::info!(alert_id = alert.id, patient_id = %alert.patient_id, rule = %alert.rule, "alert resolved: clear condition held");
                    send(alert);
                }
                Change::Acted { alert } => send(alert),
                Change::Opened { alert, emails } => {
                    s.metrics.alert_raised(alert.severity.as_str());
                    tracing::info!(alert_id = alert.id, patient_id = %alert.patient_id, rule = %alert.rule, severity = alert.severity.as_str(), emails, "alert raised");
                    send(alert);
                }
            }
        }
        if changes.emails > 0 {
            s.metrics.emails_queued.inc_by(changes.emails as u64);
            s.outbox_wake.notify_one();
        }
    }
}

/// The alert service inside one write transaction. [`AlertTx::finish`] queues its InfluxDB
/// points and hands back what to announce.
pub struct AlertTx<'c> {
    conn: &'c Connection,
    svc: &'c Inner,
    changes: Changes,
    /// Points for the InfluxDB sink, enqueued with the transaction (when the sink is on).
    sink: Option<forward::Batch>,
    /// Red alerts opened or worsened in this transaction, by episode, told at `finish`.
    tell: std::collections::BTreeMap<i64, Vec<i64>>,
    /// Patients locked by this transaction ([`AlertTx::lock_patients`]).
    locked: std::collections::HashSet<String>,
}

impl<'c> AlertTx<'c> {
    /// Makes these patients this transaction's alone until it ends, when several gateways
    /// share a PostgreSQL store (issue #20; `vigil_store::locks`). Each is locked once.
    pub fn lock_patients<'p>(&mut self, ids: impl IntoIterator<Item = &'p str>) -> Result<()> {
        if self.conn.dialect() != crate::store::db::Dialect::Postgres {
            return Ok(());
        }
        let new: Vec<&str> = ids
            .into_iter()
            .filter(|id| !self.locked.contains(*id))
            .collect();
        crate::store::locks::patients(self.conn, new.iter().copied())?;
        self.locked.extend(new.into_iter().map(str::to_owned));
        Ok(())
    }

    /// The transaction, for the caller's own rows.
    pub fn conn(&self) -> &'c Connection {
        self.conn
    }

    /// Applies a breach for `patient_id`: opens an alert, or updates or worsens the active
    /// alert of the same condition (`vigil_alerting::lifecycle`), with its notifications.
    /// Returns the alert the breach opened or updated.
    pub fn raise(
        &mut self,
        patient_id: &str,
        breach: &Breach,
        event: Option<EventKind>,
        at: DateTime<Utc>,
    ) -> Result<i64> {
        let c = self.conn;
        self.lock_patients([patient_id])?;
        let at_ms = at.timestamp_millis();
        let active = rows::active(c, patient_id, &breach.condition)?;
        let id = match lifecycle::on_breach(active, breach.severity) {
            OnBreach::Update { alert_id } => {
                rows::note_breach(c, alert_id, breach.value, at_ms)?;
                self.changes.list.push(Change::Updated { alert_id });
                return Ok(alert_id);
            }
            OnBreach::Escalate { alert_id } => {
                rows::worsen(c, alert_id, breach, at_ms)?;
                if let Some(episode) = episodes::of_alert(c, alert_id)? {
                    self.refresh_episode(episode, at_ms)?;
                }
                alert_id
            }
            OnBreach::Open => {
                let id = rows::insert(c, patient_id, breach, event, at_ms)?;
                self.place(id, patient_id, breach, at_ms)?;
                id
            }
        };
        // A red alert of an episode is told with the others of this transaction, at `finish`
        // (one message per contact for the signs of one batch, issue #17).
        let emails = match episodes::of_alert(c, id)? {
            Some(episode) if breach.severity == Severity::Red => {
                self.tell.entry(episode).or_default().push(id);
                0
            }
            _ => notify::start(&Rows(c), id, breach.severity, &self.svc.settings, now_ms())?,
        };
        let alert = rows::get(c, id)?.expect("written in this transaction");
        if let Some(sink) = &mut self.sink {
            sink.alert(&alert);
        }
        self.changes.emails += emails;
        self.changes.list.push(Change::Opened {
            alert: Box::new(alert),
            emails,
        });
        Ok(id)
    }

    /// Resolves `patient_id`'s active alert of `condition` because its rule's clear condition
    /// held (`message` says which), as actor `system`. Whether one was: none when no alert of
    /// that condition is active (a clinician resolved it already).
    pub fn resolve_cleared(
        &mut self,
        patient_id: &str,
        condition: &str,
        message: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let Some(id) = rows::active(self.conn, patient_id, condition)?.map(|a| a.id) else {
            return Ok(false);
        };
        let note = format!("cleared: {message}");
        let at_ms = at.timestamp_millis();
        rows::set_resolved(self.conn, id, "system", Some(&note), true, at_ms)?;
        rows::audit(self.conn, id, "system", "resolve", Some(&note))?;
        // Other red signs of its episode may still be open and nobody on them.
        crate::store::notify::hand_on(self.conn, id)?;
        crate::store::notify::stop(self.conn, id)?;
        self.resolved(id, at_ms)?;
        let alert = rows::get(self.conn, id)?.expect("updated in this transaction");
        self.transition_point(&alert, AlertState::Resolved, at_ms);
        self.changes.list.push(Change::Cleared {
            alert: Box::new(alert),
        });
        Ok(true)
    }

    /// Acknowledges or resolves alert `id` on behalf of `actor`, audited; escalation stops
    /// (somebody is on it, issue #5).
    pub fn act(
        &mut self,
        id: i64,
        action: Action,
        actor: &str,
        note: Option<&str>,
    ) -> Result<Alert> {
        self.act_one(id, action, actor, note, true)
    }

    /// [`AlertTx::act`]; `tell`: a clinician's acknowledgement is told to the families (an
    /// episode's action tells them once, for all its signals).
    fn act_one(
        &mut self,
        id: i64,
        action: Action,
        actor: &str,
        note: Option<&str>,
        tell: bool,
    ) -> Result<Alert> {
        let c = self.conn;
        // Another gateway may be evaluating this patient (issue #20).
        crate::store::locks::alert_patient(c, id)?;
        let alert = rows::get(c, id)?.ok_or_else(|| StoreError::NotFound(format!("alert {id}")))?;
        let to = lifecycle::transition(alert.state, action)
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
        let now = now_ms();
        match action {
            Action::Acknowledge => {
                rows::set_acknowledged(c, id, alert.state == AlertState::Open, actor, note, now)?
            }
            Action::Resolve => {
                rows::set_resolved(c, id, actor, note, false, now)?;
                self.resolved(id, now)?;
            }
        }
        rows::audit(c, id, actor, action.as_str(), note)?;
        crate::store::notify::stop(c, id)?;
        if let Some(episode) = episodes::of_alert(c, id)? {
            // Somebody is on the episode: no more reminders about any of its alerts.
            crate::store::notify::stop_episode(c, episode)?;
            let clinician = !actor.ends_with("(family, e-mail link)");
            if tell && action == Action::Acknowledge && alert.state == AlertState::Open && clinician
            {
                self.changes.emails +=
                    notify::taken_on(&Rows(c), episode, &self.svc.settings, now)?;
            }
        }
        if to != alert.state {
            self.transition_point(&alert, to, now);
        }
        self.acted(id)
    }

    /// "Assign to me": `actor` takes the alert on (audited; a resolved alert cannot be taken).
    pub fn assign(&mut self, id: i64, actor: &str, note: Option<&str>) -> Result<Alert> {
        crate::store::locks::alert_patient(self.conn, id)?;
        let alert =
            rows::get(self.conn, id)?.ok_or_else(|| StoreError::NotFound(format!("alert {id}")))?;
        if alert.state == AlertState::Resolved {
            return Err(StoreError::Conflict("alert is already resolved".into()));
        }
        rows::set_assignee(self.conn, id, actor, now_ms())?;
        rows::audit(self.conn, id, actor, "assign", note)?;
        self.acted(id)
    }

    /// Puts alert `alert_id`, just opened, into its patient's episode
    /// (`vigil_alerting::episode`): the active one, the one it came back to within the reopen
    /// grace, or a new one.
    fn place(
        &mut self,
        alert_id: i64,
        patient_id: &str,
        breach: &Breach,
        at_ms: i64,
    ) -> Result<()> {
        let c = self.conn;
        let latest = episodes::latest(c, patient_id)?;
        let grace = self.svc.settings.reopen_grace_ms;
        let id = match episode::place(latest.as_ref(), &breach.condition, now_ms(), grace) {
            Placement::Join(id) => id,
            Placement::Reopen(id) => {
                episodes::reopen(c, id)?;
                rows::audit(
                    c,
                    alert_id,
                    "system",
                    "reopen",
                    Some("back within notify.reopen_grace after it was resolved"),
                )?;
                id
            }
            Placement::Open => episodes::open(c, patient_id, breach.severity, at_ms)?,
        };
        episodes::attach(c, alert_id, id)?;
        self.refresh_episode(id, at_ms)?;
        Ok(())
    }

    /// Alert `alert_id` was resolved: its episode ends if it was the last open signal, and
    /// everyone told about it gets the all-clear.
    fn resolved(&mut self, alert_id: i64, at_ms: i64) -> Result<()> {
        let Some(episode) = episodes::of_alert(self.conn, alert_id)? else {
            return Ok(());
        };
        if self.refresh_episode(episode, at_ms)? {
            self.changes.emails +=
                notify::episode_ended(&Rows(self.conn), episode, &self.svc.settings, now_ms())?;
        }
        Ok(())
    }

    /// Sets an episode's severity from its open signals, ending it when none is left; whether
    /// it ended.
    fn refresh_episode(&mut self, episode: i64, at_ms: i64) -> Result<bool> {
        let severity = episode::severity(episodes::open_severities(self.conn, episode)?);
        episodes::set_severity(self.conn, episode, severity, at_ms)?;
        Ok(severity.is_none())
    }

    fn acted(&mut self, id: i64) -> Result<Alert> {
        let alert = rows::get(self.conn, id)?.expect("exists: read above in this transaction");
        self.changes.list.push(Change::Acted {
            alert: Box::new(alert.clone()),
        });
        Ok(alert)
    }

    /// Uses a family member's "I'm handling it" link: acknowledges its alert as them (audited
    /// as them, escalation stopped) and burns the link. An alert somebody else acknowledged
    /// already stays theirs; an alert already resolved is left alone; the link is burnt
    /// either way.
    pub fn use_ack_link(&mut self, token: &str, now: i64) -> Result<AckLinkView> {
        let l = match notify::take_link(&Rows(self.conn), token, now)? {
            LinkUse::Show(view) => return Ok(view),
            LinkUse::Accept(l) => l,
        };
        let state = rows::get(self.conn, l.alert_id)?.map(|a| a.state);
        match episodes::of_alert(self.conn, l.alert_id)? {
            // Issue #17: the family's response to the episode, not a clinical acknowledgement.
            Some(episode) if state.is_some_and(AlertState::is_active) => {
                notify::family_response(&Rows(self.conn), episode, &l, now)?;
                let (actor, note) = notify::link_actor(&l);
                rows::audit(self.conn, l.alert_id, &actor, "family_response", Some(note))?;
                self.acted(l.alert_id)?;
                tracing::info!(
                    alert_id = l.alert_id,
                    episode,
                    "family response from an e-mail link"
                );
            }
            Some(_) => {}
            None if state == Some(AlertState::Open) => {
                let (actor, note) = notify::link_actor(&l);
                self.act(l.alert_id, Action::Acknowledge, &actor, Some(note))?;
                tracing::info!(
                    alert_id = l.alert_id,
                    "alert acknowledged from a family e-mail link"
                );
            }
            None => {}
        }
        notify::view(&Rows(self.conn), &l, AckLinkStatus::Accepted)
    }

    /// Runs the escalation steps and digests due at `now`; a red alert whose e-mails reached
    /// nobody by its first step raises `notification_failed`.
    pub fn notify_due(&mut self, now: i64) -> Result<()> {
        let steps = notify::escalate_due(&Rows(self.conn), now, &self.svc.settings)?;
        self.changes.emails += steps.queued;
        for id in steps.undelivered {
            self.notification_failed(id, now)?;
        }
        self.changes.emails += notify::flush_digests(&Rows(self.conn), now, &self.svc.settings)?;
        self.changes.emails += notify::flush_updates(&Rows(self.conn), &self.svc.settings, now)?;
        Ok(())
    }

    /// The relay refused outbox e-mail `outbox_id` for good, or it could not be built: it is
    /// set aside with the reason, and the clinicians get `notification_failed` about its alert
    /// at once (issue #15, finding 1: a family that was not told is the clinicians' to phone).
    pub fn set_aside(&mut self, outbox_id: i64, error: &str, at: DateTime<Utc>) -> Result<()> {
        outbox::mark_undeliverable(self.conn, outbox_id, error, at)?;
        match outbox::alert_of(self.conn, outbox_id)? {
            Some(id) => self.notification_failed(id, at.timestamp_millis()),
            None => Ok(()),
        }
    }

    /// Opens (or refreshes) `notification_failed` for the patient of alert `alert_id`.
    fn notification_failed(&mut self, alert_id: i64, now: i64) -> Result<()> {
        let Some((patient_id, breach)) = notify::failed_breach(&Rows(self.conn), alert_id)? else {
            return Ok(());
        };
        tracing::warn!(
            alert_id,
            "no notification e-mail delivered: raising notification_failed"
        );
        self.raise(&patient_id, &breach, None, crate::store::ms_to_time(now))?;
        Ok(())
    }

    /// Queues an alert's change of state for the InfluxDB sink (docs/influxdb.md).
    fn transition_point(&mut self, alert: &Alert, to: AlertState, at_ms: i64) {
        if let Some(sink) = &mut self.sink {
            sink.transition(alert, to.as_str(), at_ms);
        }
    }

    /// Links a reading that breached alert `alert_id` to it, so every triggering reading stays
    /// reviewable (`GET /api/v1/alerts/{id}`).
    pub fn link_reading(
        &self,
        alert_id: i64,
        r: &vigil_domain::Reading,
        device_num: i64,
    ) -> Result<()> {
        rows::link_reading(self.conn, alert_id, r, device_num)
    }

    /// Tells each episode its red alerts of this transaction, queues the InfluxDB points (in
    /// it) and returns what to announce.
    pub fn finish(mut self) -> Result<Changes> {
        for (episode, ids) in std::mem::take(&mut self.tell) {
            self.changes.emails += notify::tell(
                &Rows(self.conn),
                episode,
                &ids,
                &self.svc.settings,
                now_ms(),
            )?;
        }
        if let Some(sink) = self.sink {
            sink.enqueue(self.conn, now_ms())?;
        }
        // The other gateways' dashboards hear of these alerts when this commits (issue #20).
        if self.conn.dialect() == crate::store::db::Dialect::Postgres {
            let ids: Vec<i64> = self
                .changes
                .list
                .iter()
                .filter_map(|c| match c {
                    Change::Updated { .. } => None,
                    Change::Cleared { alert } | Change::Acted { alert } => Some(alert.id),
                    Change::Opened { alert, .. } => Some(alert.id),
                })
                .collect();
            crate::store::live::tell(self.conn, &[], &ids)?;
        }
        Ok(self.changes)
    }
}

mod episode_actions;
pub use episode_actions::EpisodeAction;

#[cfg(test)]
mod tests;
