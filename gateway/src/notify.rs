//! Notification policy (issue #5): which e-mails an alert queues and when — red alerts to the
//! family at once with "I'm handling it" links and escalation to secondary contacts and
//! reminders (`vigil_alerting::escalation`); less severe alerts as digests at most once per
//! `notify.min_interval`, outside quiet hours (`vigil_alerting::digest`). Rendering is
//! `vigil_alerting::email`; the rows are `store::notify` and `store::outbox`.
//!
//! Only the alert service (`crate::alerts`) calls this, inside its transaction: an alert is
//! never opened without its first e-mails queued, and a link never exists without its e-mail.
//! Nothing here opens or changes an alert: what needs one (nobody reached) is returned.

use crate::secrets;
use crate::store::notify::{self as rows, Link};
use crate::store::{alerts, ms_to_time, outbox, registry, Result, StoreError};
use rusqlite::Connection;
use vigil_alerting::digest::{self, QuietHours};
use vigil_alerting::email::{self, AlertFacts};
use vigil_alerting::escalation::{self, Policy};
use vigil_domain::views::{AckLinkStatus, AckLinkView};
use vigil_domain::{Alert, AlertState, ContactRole, ContactTier, Severity};

/// Settings that shape notification e-mails (`[notify]`, `[dashboard] public_url`).
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// The dashboard as users reach it, without a trailing `/`; no links without it.
    pub public_url: Option<String>,
    /// Domain part of generated Message-IDs.
    pub message_id_domain: String,
    pub policy: Policy,
    /// How long an "I'm handling it" link works.
    pub link_valid_ms: i64,
    /// Leave vital values and thresholds out of e-mails.
    pub minimal_phi: bool,
    /// Non-critical alerts: one digest per patient per contact per this.
    pub min_interval_ms: i64,
    /// Contacts' quiet hours unless they have their own.
    pub quiet_hours: Option<QuietHours>,
    /// Contacts' time zone unless they have their own (quiet hours).
    pub timezone: chrono_tz::Tz,
    /// The zone times in e-mails are shown in: the dashboard's (`dashboard.timezone`).
    pub display_tz: chrono_tz::Tz,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            public_url: None,
            message_id_domain: "vigil.local".into(),
            policy: Policy::default(),
            link_valid_ms: 24 * 3_600_000,
            minimal_phi: false,
            min_interval_ms: 3_600_000,
            quiet_hours: None,
            timezone: chrono_tz::Asia::Ho_Chi_Minh,
            display_tz: chrono_tz::Asia::Ho_Chi_Minh,
        }
    }
}

/// The alert clinicians get when a red alert's e-mails reached nobody.
pub const NOTIFICATION_FAILED: &str = "notification_failed";

/// Starts the notifications of an alert that just opened or worsened: a red one e-mails its
/// contacts now and schedules the next step (docs/notifications.md); a less severe one waits
/// for the digests of the contacts who want it (anti-flood). Returns the e-mails queued.
pub fn start(
    conn: &Connection,
    alert_id: i64,
    severity: Severity,
    s: &NotifySettings,
    now: i64,
) -> Result<usize> {
    if severity != Severity::Red {
        queue_for_digest(conn, alert_id, now)?;
        return Ok(0);
    }
    let n = queue_step(conn, alert_id, 0, s, now)?;
    rows::schedule(conn, alert_id, 1, escalation::next_due(0, now, &s.policy))?;
    Ok(n)
}

/// What the escalation steps due at a time did.
#[derive(Debug, Default, PartialEq)]
pub struct Steps {
    pub queued: usize,
    /// Red alerts none of whose e-mails was delivered by their first escalation step (waiting
    /// is failing by then): each calls for `notification_failed`.
    pub undelivered: Vec<i64>,
}

/// Runs every escalation step due at `now` (the escalation loop calls it each second; tests
/// call it with a simulated clock).
pub fn escalate_due(conn: &Connection, now: i64, s: &NotifySettings) -> Result<Steps> {
    let mut out = Steps::default();
    for (id, stage) in rows::due_steps(conn, now)? {
        let Some(a) = alerts::get(conn, id)? else {
            continue;
        };
        // Only an unacknowledged red alert escalates; anything else just stops.
        if a.state != AlertState::Open || a.severity != Severity::Red {
            rows::stop(conn, id)?;
            continue;
        }
        out.queued += queue_step(conn, id, stage, s, now)?;
        tracing::info!(
            alert_id = id,
            stage,
            "alert not acknowledged: escalation step"
        );
        // By the first escalation step, somebody should have received the first e-mails.
        let (queued, sent) = outbox::delivery_of(conn, id)?;
        if queued > 0 && sent == 0 {
            out.undelivered.push(id);
        }
        rows::schedule(
            conn,
            id,
            stage + 1,
            escalation::next_due(stage, now, &s.policy),
        )?;
    }
    Ok(out)
}

/// The facts an e-mail about alert `a` gives a contact of `role`: its latest breach.
fn facts<'a>(a: &'a Alert, s: &NotifySettings, role: ContactRole) -> AlertFacts<'a> {
    AlertFacts {
        patient_name: &a.patient_name,
        rule: &a.rule,
        severity: a.severity,
        metric: a.metric.as_deref().and_then(|m| m.parse().ok()),
        value: a.last_value,
        limit: a.limit.as_deref(),
        event: a.event.as_deref().and_then(|e| e.parse().ok()),
        at: a.last_at.unwrap_or(a.opened_at),
        tz: s.display_tz,
        alert_url: None,
        ack_url: None,
        minimal_phi: s.minimal_phi,
        reminder: 0,
        role,
    }
}

/// Queues step `stage`'s e-mails for alert `alert_id`, one per contact the step notifies, each
/// in the contact's language; family e-mails carry an "I'm handling it" link.
fn queue_step(
    conn: &Connection,
    alert_id: i64,
    stage: u32,
    s: &NotifySettings,
    now: i64,
) -> Result<usize> {
    let a = alerts::get(conn, alert_id)?
        .ok_or_else(|| StoreError::NotFound(format!("alert {alert_id}")))?;
    let contacts = registry::contacts(conn, &a.patient_id)?;
    let has_secondary = contacts.iter().any(|c| c.tier == ContactTier::Secondary);
    let alert_url = s
        .public_url
        .as_ref()
        .map(|u| format!("{u}/#alert-{alert_id}"));
    let mut queued = 0;
    for c in contacts
        .iter()
        .filter(|c| escalation::notifies(stage, c.tier, has_secondary))
    {
        let earlier = outbox::count_for(conn, alert_id, c.id)?;
        let ack_url = match (&s.public_url, c.role) {
            (Some(base), ContactRole::Family) => {
                let token = secrets::random_hex(16);
                let hash = secrets::sha256_hex(&token);
                rows::insert_link(conn, &hash, alert_id, c.id, now, now + s.link_valid_ms)?;
                Some(format!("{base}/ack/{token}"))
            }
            _ => None,
        };
        let r = email::render(
            c.lang,
            &AlertFacts {
                alert_url: alert_url.as_deref(),
                ack_url: ack_url.as_deref(),
                reminder: earlier,
                ..facts(&a, s, c.role)
            },
        );
        let message_id = email::new_message_id(alert_id, &s.message_id_domain);
        outbox::insert(
            conn,
            &outbox::NewEmail {
                message_id: &message_id,
                alert_id: Some(alert_id),
                contact_id: c.id,
                to_name: &c.name,
                to_addr: &c.email,
                subject: &r.subject,
                body: &r.text,
                html: &r.html,
                stage,
            },
            now,
        )?;
        queued += 1;
    }
    Ok(queued)
}

/// A non-critical alert opened (or became more severe): it waits for the next digest of each
/// contact who is e-mailed about alerts this severe (anti-flood, `vigil_alerting::digest`).
pub fn queue_for_digest(conn: &Connection, alert_id: i64, now: i64) -> Result<usize> {
    let Some(a) = alerts::get(conn, alert_id)? else {
        return Ok(0);
    };
    let mut n = 0;
    for c in registry::contacts(conn, &a.patient_id)? {
        // Lower rank is more severe.
        if a.severity.rank() > c.notified_from().rank() {
            continue;
        }
        rows::add_digest_item(conn, c.id, &a.patient_id, alert_id, now)?;
        n += 1;
    }
    Ok(n)
}

/// Sends every digest that may go at `now`: one e-mail per (contact, patient) with all the
/// alerts waiting for it, unless the contact had one within `min_interval` or is in their
/// quiet hours. Returns the e-mails queued.
pub fn flush_digests(conn: &Connection, now: i64, s: &NotifySettings) -> Result<usize> {
    let mut queued = 0;
    for (contact_id, patient_id) in rows::digest_groups(conn)? {
        let Some(c) = registry::contacts(conn, &patient_id)?
            .into_iter()
            .find(|c| c.id == contact_id)
        else {
            // The contact is gone: nobody to tell.
            rows::drop_digests_of(conn, contact_id)?;
            continue;
        };
        let last = rows::digest_last_sent(conn, contact_id, &patient_id)?;
        let quiet = match &c.quiet_hours {
            Some(q) => QuietHours::parse_setting(q).unwrap_or(s.quiet_hours),
            None => s.quiet_hours,
        };
        let tz = c
            .timezone
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or(s.timezone);
        let at = digest::send_at(
            ms_to_time(now),
            last.map(ms_to_time),
            chrono::Duration::milliseconds(s.min_interval_ms),
            quiet,
            tz,
        );
        if at.timestamp_millis() > now {
            continue;
        }
        let alert_ids = rows::digest_alerts(conn, contact_id, &patient_id)?;
        let waiting: Vec<Alert> = alert_ids
            .iter()
            .filter_map(|id| alerts::get(conn, *id).transpose())
            .collect::<Result<_>>()?;
        let items: Vec<(AlertFacts<'_>, AlertState)> = waiting
            .iter()
            .map(|a| (facts(a, s, c.role), a.state))
            .collect();
        if !items.is_empty() {
            let url = s.public_url.as_ref().map(|u| format!("{u}/"));
            let r = email::render_digest(c.lang, &items, url.as_deref());
            let message_id = email::new_message_id(alert_ids[0], &s.message_id_domain);
            outbox::insert(
                conn,
                &outbox::NewEmail {
                    message_id: &message_id,
                    // One alert: the e-mail is about it; several: a digest about none alone.
                    alert_id: (alert_ids.len() == 1).then_some(alert_ids[0]),
                    contact_id: c.id,
                    to_name: &c.name,
                    to_addr: &c.email,
                    subject: &r.subject,
                    body: &r.text,
                    html: &r.html,
                    stage: 0,
                },
                now,
            )?;
            queued += 1;
        }
        rows::digest_done(conn, contact_id, &patient_id, now)?;
    }
    Ok(queued)
}

/// The `notification_failed` breach for the patient of alert `alert_id`, unless that alert is
/// resolved, unknown, or is itself `notification_failed`: (patient id, breach).
pub fn failed_breach(
    conn: &Connection,
    alert_id: i64,
) -> Result<Option<(String, vigil_alerting::Breach)>> {
    let Some(a) = alerts::get(conn, alert_id)? else {
        return Ok(None);
    };
    if a.state == AlertState::Resolved || a.rule == NOTIFICATION_FAILED {
        return Ok(None);
    }
    let breach = vigil_alerting::Breach {
        rule: NOTIFICATION_FAILED.into(),
        condition: NOTIFICATION_FAILED.into(),
        severity: Severity::Amber,
        metric: None,
        value: None,
        limit: None,
        message: format!(
            "no e-mail about alert {alert_id} ({}) reached anyone",
            a.rule
        ),
    };
    Ok(Some((a.patient_id, breach)))
}

/// What a link's token leads to.
pub enum LinkUse {
    /// Nothing to do: the page to show (unknown, expired or used link).
    Show(AckLinkView),
    /// A valid link, now burnt: its alert is to be acknowledged as its contact.
    Accept(Link),
}

/// Takes a link for use: a valid one is burnt (in the caller's transaction).
pub fn take_link(conn: &Connection, token: &str, now: i64) -> Result<LinkUse> {
    let hash = secrets::sha256_hex(token);
    let Some(l) = rows::link(conn, &hash)? else {
        return Ok(LinkUse::Show(AckLinkView::unknown()));
    };
    let st = status(&l, now);
    if st != AckLinkStatus::Valid {
        return Ok(LinkUse::Show(view(conn, &l, st)?));
    }
    rows::burn_link(conn, &hash, now)?;
    Ok(LinkUse::Accept(l))
}

/// The actor and note an acknowledgement through a family link is recorded with.
pub fn link_actor(l: &Link) -> (String, &'static str) {
    (
        format!("{} (family, e-mail link)", l.contact_name),
        "I'm handling it / Tôi đang xử lý",
    )
}

/// What the page of link `l` shows.
pub fn view(conn: &Connection, l: &Link, status: AckLinkStatus) -> Result<AckLinkView> {
    let Some(alert) = alerts::get(conn, l.alert_id)? else {
        return Ok(AckLinkView::unknown());
    };
    Ok(AckLinkView {
        status,
        lang: l.lang,
        contact_name: l.contact_name.clone(),
        patient_name: alert.patient_name,
        severity: Some(alert.severity),
        alert_state: Some(alert.state),
        acknowledged_by: alert.acknowledged_by,
        acknowledged_at: alert.acknowledged_at,
    })
}

fn status(l: &Link, now: i64) -> AckLinkStatus {
    if l.used_at.is_some() {
        AckLinkStatus::Used
    } else if now >= l.expires_at {
        AckLinkStatus::Expired
    } else {
        AckLinkStatus::Valid
    }
}

/// What the page behind `token` shows; changes nothing (mail scanners open links).
pub fn ack_link_view(conn: &Connection, token: &str, now: i64) -> Result<AckLinkView> {
    match rows::link(conn, &secrets::sha256_hex(token))? {
        Some(l) => view(conn, &l, status(&l, now)),
        None => Ok(AckLinkView::unknown()),
    }
}

/// A patient with contacts and a red alert, shared by this module's and the alert service's
/// tests.
#[cfg(test)]
pub mod testing {
    use super::*;
    use crate::store::schema;

    pub fn settings() -> NotifySettings {
        NotifySettings {
            public_url: Some("https://vigil.example".into()),
            ..NotifySettings::default()
        }
    }

    /// A patient with a primary family contact (vi), a secondary one (en), an on-call
    /// clinician, and one open red alert (id 1) whose notifications started at t = 0.
    pub fn store() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        schema::migrate(&mut c).unwrap();
        c.execute_batch(
            "INSERT INTO patients (num, id, name, created_at) VALUES (1, 'p1', 'Bà Hoa', 0);
             INSERT INTO contacts (id, patient_id, name, email, lang, role, tier, created_at) VALUES
               (1, 'p1', 'Lan', 'lan@example.org', 'vi', 'family', 'primary', 0),
               (2, 'p1', 'Peter', 'peter@example.org', 'en', 'family', 'secondary', 0),
               (3, 'p1', 'BS Minh', 'minh@example.org', 'vi', 'clinician', 'primary', 0);
             INSERT INTO alerts (id, patient_id, rule, condition, severity, state, opened_at,
                                 metric, value, unit, message, last_value, last_at, limit_text)
             VALUES (1, 'p1', 'spo2_red', 'spo2_low', 'red', 'open', 0, 'spo2', 86, '%',
                     'spo2 86 % < 90', 86, 0, '< 90');",
        )
        .unwrap();
        start(&c, 1, Severity::Red, &settings(), 0).unwrap();
        c
    }

    /// (contact id, subject) of every queued e-mail, in order.
    pub fn outbox(c: &Connection) -> Vec<(i64, String)> {
        let mut st = c
            .prepare("SELECT contact_id, subject FROM outbox ORDER BY id")
            .unwrap();
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        rows.map(|r| r.unwrap()).collect()
    }

    /// (rule, severity) of every alert, in order.
    pub fn alert_rules(c: &Connection) -> Vec<(String, String)> {
        let mut st = c
            .prepare("SELECT rule, severity FROM alerts ORDER BY id")
            .unwrap();
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        rows.map(|r| r.unwrap()).collect()
    }
}

#[cfg(test)]
mod tests;
