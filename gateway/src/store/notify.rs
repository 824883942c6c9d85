//! Notification e-mails for red alerts (issue #5): queueing them into the outbox per the
//! escalation policy (`vigil_alerting::escalation`), and the "I'm handling it" links that let a
//! family contact acknowledge an alert from the e-mail.
//!
//! Every function runs inside the caller's transaction: an alert is never opened without its
//! first e-mails queued, a link never exists without its e-mail, and using a link acknowledges
//! the alert and burns the link together.

use super::{alerts, ms_to_time, registry, Result, StoreError};
use rusqlite::{params, Connection, OptionalExtension};
use vigil_alerting::digest::{self, QuietHours};
use vigil_alerting::email::{self, AlertFacts};
use vigil_alerting::escalation::{self, Policy};
use vigil_alerting::lifecycle::Action;
use vigil_domain::views::{AckLinkStatus, AckLinkView};
use vigil_domain::{AlertState, ContactRole, ContactTier, EventKind, Lang, Metric, Severity};

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
    /// Contacts' time zone unless they have their own.
    pub timezone: chrono_tz::Tz,
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
        }
    }
}

/// What an e-mail about an alert needs from the store.
struct AlertRow {
    patient_id: String,
    patient_name: String,
    rule: String,
    severity: Severity,
    state: AlertState,
    metric: Option<Metric>,
    value: Option<f64>,
    limit: Option<String>,
    event: Option<EventKind>,
    at: i64,
}

fn alert_row(conn: &Connection, id: i64) -> Result<Option<AlertRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT a.patient_id, p.name, a.rule, a.severity, a.state, a.metric, a.last_value,
                    a.limit_text, a.event, a.last_at
             FROM alerts a JOIN patients p ON p.id = a.patient_id WHERE a.id = ?1",
        )?
        .query_row([id], |r| {
            Ok(AlertRow {
                patient_id: r.get(0)?,
                patient_name: r.get(1)?,
                rule: r.get(2)?,
                severity: r.get::<_, String>(3)?.parse().unwrap_or(Severity::Red),
                state: r.get::<_, String>(4)?.parse().unwrap_or(AlertState::Open),
                metric: r.get::<_, Option<String>>(5)?.and_then(|m| m.parse().ok()),
                value: r.get(6)?,
                limit: r.get(7)?,
                event: r.get::<_, Option<String>>(8)?.and_then(|e| e.parse().ok()),
                at: r.get(9)?,
            })
        })
        .optional()?)
}

/// Starts the notifications of an alert that just became red: step 0 now, the next step
/// scheduled. Returns the e-mails queued.
pub fn start(conn: &Connection, alert_id: i64, s: &NotifySettings, now: i64) -> Result<usize> {
    let n = queue_step(conn, alert_id, 0, s, now)?;
    conn.execute(
        "UPDATE alerts SET notify_stage = 1, next_notify_at = ?2 WHERE id = ?1",
        params![alert_id, escalation::next_due(0, now, &s.policy)],
    )?;
    Ok(n)
}

/// Stops an alert's escalation (acknowledged or resolved).
pub fn stop(conn: &Connection, alert_id: i64) -> Result<()> {
    conn.execute(
        "UPDATE alerts SET next_notify_at = NULL WHERE id = ?1",
        [alert_id],
    )?;
    Ok(())
}

/// Runs every escalation step due at `now` (the escalation loop calls it each second; tests
/// call it with a simulated clock). Returns the e-mails queued.
pub fn escalate_due(conn: &Connection, now: i64, s: &NotifySettings) -> Result<usize> {
    let due: Vec<(i64, u32)> = {
        let mut st = conn.prepare_cached(
            "SELECT id, notify_stage FROM alerts
             WHERE next_notify_at IS NOT NULL AND next_notify_at <= ?1 ORDER BY next_notify_at",
        )?;
        let rows = st.query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut queued = 0;
    for (id, stage) in due {
        let Some(a) = alert_row(conn, id)? else {
            continue;
        };
        // Only an unacknowledged red alert escalates; anything else just stops.
        if a.state != AlertState::Open || a.severity != Severity::Red {
            stop(conn, id)?;
            continue;
        }
        queued += queue_step(conn, id, stage, s, now)?;
        tracing::info!(
            alert_id = id,
            stage,
            "alert not acknowledged: escalation step"
        );
        // By the first escalation step, somebody should have received the first e-mails.
        undelivered(conn, id, now)?;
        conn.execute(
            "UPDATE alerts SET notify_stage = ?2, next_notify_at = ?3 WHERE id = ?1",
            params![id, stage + 1, escalation::next_due(stage, now, &s.policy)],
        )?;
    }
    Ok(queued)
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
    let a = alert_row(conn, alert_id)?
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
        let earlier: u32 = conn
            .prepare_cached("SELECT count(*) FROM outbox WHERE alert_id = ?1 AND contact_id = ?2")?
            .query_row(params![alert_id, c.id], |r| r.get(0))?;
        let ack_url = match (&s.public_url, c.role) {
            (Some(base), ContactRole::Family) => {
                let token = crate::secrets::random_hex(16);
                conn.execute(
                    "INSERT INTO ack_links (token_hash, alert_id, contact_id, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        crate::secrets::sha256_hex(&token),
                        alert_id,
                        c.id,
                        now,
                        now + s.link_valid_ms
                    ],
                )?;
                Some(format!("{base}/ack/{token}"))
            }
            _ => None,
        };
        let r = email::render(
            c.lang,
            &AlertFacts {
                patient_name: &a.patient_name,
                rule: &a.rule,
                severity: a.severity,
                metric: a.metric,
                value: a.value,
                limit: a.limit.as_deref(),
                event: a.event,
                at: ms_to_time(a.at),
                alert_url: alert_url.as_deref(),
                ack_url: ack_url.as_deref(),
                minimal_phi: s.minimal_phi,
                reminder: earlier,
                role: c.role,
            },
        );
        conn.execute(
            "INSERT INTO outbox (message_id, alert_id, contact_id, to_name, to_addr, subject,
                                 body, html, stage, created_at, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
            params![
                email::new_message_id(alert_id, &s.message_id_domain),
                alert_id,
                c.id,
                c.name,
                c.email,
                r.subject,
                r.text,
                r.html,
                stage,
                now
            ],
        )?;
        queued += 1;
    }
    Ok(queued)
}

/// Whether the notification loop has anything to do at `now` (a read, so an idle loop never
/// takes the writer).
pub fn anything_due(conn: &Connection, now: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM alerts WHERE next_notify_at <= ?1)
                 OR EXISTS (SELECT 1 FROM digest_items)",
        )?
        .query_row([now], |r| r.get(0))?)
}

/// A non-critical alert opened (or became more severe): it waits for the next digest of each
/// contact who is e-mailed about alerts this severe (anti-flood, `vigil_alerting::digest`).
pub fn queue_for_digest(conn: &Connection, alert_id: i64, now: i64) -> Result<usize> {
    let Some(a) = alert_row(conn, alert_id)? else {
        return Ok(0);
    };
    let mut n = 0;
    for c in registry::contacts(conn, &a.patient_id)? {
        // Lower rank is more severe.
        if a.severity.rank() > c.notified_from().rank() {
            continue;
        }
        conn.execute(
            "INSERT INTO digest_items (contact_id, patient_id, alert_id, created_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![c.id, a.patient_id, alert_id, now],
        )?;
        n += 1;
    }
    Ok(n)
}

/// Sends every digest that may go at `now`: one e-mail per (contact, patient) with all the
/// alerts waiting for it, unless the contact had one within `min_interval` or is in their
/// quiet hours. Returns the e-mails queued.
pub fn flush_digests(conn: &Connection, now: i64, s: &NotifySettings) -> Result<usize> {
    let groups: Vec<(i64, String)> = {
        let mut st = conn.prepare_cached(
            "SELECT DISTINCT contact_id, patient_id FROM digest_items ORDER BY contact_id",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut queued = 0;
    for (contact_id, patient_id) in groups {
        let Some(c) = registry::contacts(conn, &patient_id)?
            .into_iter()
            .find(|c| c.id == contact_id)
        else {
            // The contact is gone: nobody to tell.
            conn.execute(
                "DELETE FROM digest_items WHERE contact_id = ?1",
                [contact_id],
            )?;
            continue;
        };
        let last: Option<i64> = conn
            .prepare_cached(
                "SELECT sent_at FROM digest_sent WHERE contact_id = ?1 AND patient_id = ?2",
            )?
            .query_row(params![contact_id, patient_id], |r| r.get(0))
            .optional()?;
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
        let alert_ids: Vec<i64> = {
            let mut st = conn.prepare_cached(
                "SELECT DISTINCT alert_id FROM digest_items
                 WHERE contact_id = ?1 AND patient_id = ?2 ORDER BY alert_id",
            )?;
            let rows = st.query_map(params![contact_id, patient_id], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let rows: Vec<AlertRow> = alert_ids
            .iter()
            .filter_map(|id| alert_row(conn, *id).transpose())
            .collect::<Result<_>>()?;
        let items: Vec<(AlertFacts<'_>, AlertState)> = rows
            .iter()
            .map(|a| {
                (
                    AlertFacts {
                        patient_name: &a.patient_name,
                        rule: &a.rule,
                        severity: a.severity,
                        metric: a.metric,
                        value: a.value,
                        limit: a.limit.as_deref(),
                        event: a.event,
                        at: ms_to_time(a.at),
                        alert_url: None,
                        ack_url: None,
                        minimal_phi: s.minimal_phi,
                        reminder: 0,
                        role: c.role,
                    },
                    a.state,
                )
            })
            .collect();
        if !items.is_empty() {
            let url = s.public_url.as_ref().map(|u| format!("{u}/"));
            let r = email::render_digest(c.lang, &items, url.as_deref());
            conn.execute(
                "INSERT INTO outbox (message_id, alert_id, contact_id, to_name, to_addr, subject,
                                     body, html, stage, created_at, next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, ?9)",
                params![
                    email::new_message_id(alert_ids[0], &s.message_id_domain),
                    // One alert: the e-mail is about it; several: a digest about none alone.
                    (alert_ids.len() == 1).then_some(alert_ids[0]),
                    c.id,
                    c.name,
                    c.email,
                    r.subject,
                    r.text,
                    r.html,
                    now
                ],
            )?;
            queued += 1;
        }
        conn.execute(
            "DELETE FROM digest_items WHERE contact_id = ?1 AND patient_id = ?2",
            params![contact_id, patient_id],
        )?;
        conn.execute(
            "INSERT INTO digest_sent (contact_id, patient_id, sent_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (contact_id, patient_id) DO UPDATE SET sent_at = excluded.sent_at",
            params![contact_id, patient_id, now],
        )?;
    }
    Ok(queued)
}

/// Called when outbox row `outbox_id` was set aside (refused for good, or impossible to build):
/// the clinicians get a `notification_failed` alert about its alert at once (issue #15,
/// finding 1: a family that was not told is the clinicians' to phone), whatever became of the
/// other e-mails (issue #5 waited until none could reach anyone).
pub fn check_delivered(conn: &Connection, outbox_id: i64, now: i64) -> Result<()> {
    let alert_id: Option<i64> = conn
        .query_row(
            "SELECT alert_id FROM outbox WHERE id = ?1",
            [outbox_id],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    match alert_id {
        Some(id) => raise_failed(conn, id, now),
        None => Ok(()),
    }
}

/// Raises `notification_failed` (amber, for the clinicians on the dashboard) for the patient of
/// red alert `alert_id` when none of its e-mails was delivered by the first escalation step
/// (waiting is failing by then).
fn undelivered(conn: &Connection, alert_id: i64, now: i64) -> Result<()> {
    let (queued, sent): (i64, i64) = conn.query_row(
        "SELECT count(*), count(sent_at) FROM outbox WHERE alert_id = ?1",
        [alert_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if queued == 0 || sent > 0 {
        return Ok(());
    }
    raise_failed(conn, alert_id, now)
}

/// Opens (or refreshes) `notification_failed` for the patient of alert `alert_id`, unless that
/// alert is resolved or is itself `notification_failed`.
fn raise_failed(conn: &Connection, alert_id: i64, now: i64) -> Result<()> {
    let Some(a) = alert_row(conn, alert_id)? else {
        return Ok(());
    };
    if a.state == AlertState::Resolved || a.rule == NOTIFICATION_FAILED {
        return Ok(());
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
    tracing::warn!(
        alert_id,
        "no notification e-mail delivered: raising notification_failed"
    );
    alerts::raise(
        conn,
        &a.patient_id,
        &breach,
        None,
        ms_to_time(now),
        &NotifySettings::default(),
    )?;
    Ok(())
}

/// The alert clinicians get when a red alert's e-mails reached nobody.
pub const NOTIFICATION_FAILED: &str = "notification_failed";

/// A link as stored, with its contact and alert.
struct Link {
    alert_id: i64,
    contact_name: String,
    lang: Lang,
    expires_at: i64,
    used_at: Option<i64>,
}

fn link(conn: &Connection, token: &str) -> Result<Option<Link>> {
    Ok(conn
        .prepare_cached(
            "SELECT l.alert_id, c.name, c.lang, l.expires_at, l.used_at
             FROM ack_links l JOIN contacts c ON c.id = l.contact_id
             WHERE l.token_hash = ?1 AND c.removed_at IS NULL",
        )?
        .query_row([crate::secrets::sha256_hex(token)], |r| {
            Ok(Link {
                alert_id: r.get(0)?,
                contact_name: r.get(1)?,
                lang: r.get::<_, String>(2)?.parse().unwrap_or_default(),
                expires_at: r.get(3)?,
                used_at: r.get(4)?,
            })
        })
        .optional()?)
}

fn view(conn: &Connection, l: &Link, status: AckLinkStatus) -> Result<AckLinkView> {
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
    match link(conn, token)? {
        Some(l) => view(conn, &l, status(&l, now)),
        None => Ok(AckLinkView::unknown()),
    }
}

/// Uses the link: acknowledges its alert as the contact (audited as them, escalation stopped)
/// and burns the link. An alert somebody else acknowledged already stays theirs; an alert
/// already resolved is left alone; the link is burnt either way.
pub fn use_ack_link(
    conn: &Connection,
    token: &str,
    now: i64,
    forward: bool,
) -> Result<AckLinkView> {
    let Some(l) = link(conn, token)? else {
        return Ok(AckLinkView::unknown());
    };
    let st = status(&l, now);
    if st != AckLinkStatus::Valid {
        return view(conn, &l, st);
    }
    conn.execute(
        "UPDATE ack_links SET used_at = ?2 WHERE token_hash = ?1",
        params![crate::secrets::sha256_hex(token), now],
    )?;
    let state = alerts::get(conn, l.alert_id)?.map(|a| a.state);
    if state == Some(AlertState::Open) {
        let actor = format!("{} (family, e-mail link)", l.contact_name);
        alerts::act(
            conn,
            l.alert_id,
            Action::Acknowledge,
            &actor,
            Some("I'm handling it / Tôi đang xử lý"),
            forward,
        )?;
        tracing::info!(
            alert_id = l.alert_id,
            "alert acknowledged from a family e-mail link"
        );
    }
    view(conn, &l, AckLinkStatus::Accepted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema;
    use chrono::TimeZone;

    const MIN: i64 = 60_000;

    fn settings() -> NotifySettings {
        NotifySettings {
            public_url: Some("https://vigil.example".into()),
            ..NotifySettings::default()
        }
    }

    /// A patient with a primary family contact (vi), a secondary one (en), an on-call
    /// clinician, and one open red alert whose notifications started at t = 0.
    fn store() -> Connection {
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
        start(&c, 1, &settings(), 0).unwrap();
        c
    }

    /// (contact id, subject) of every queued e-mail, in order.
    fn outbox(c: &Connection) -> Vec<(i64, String)> {
        let mut st = c
            .prepare("SELECT contact_id, subject FROM outbox ORDER BY id")
            .unwrap();
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        rows.map(|r| r.unwrap()).collect()
    }

    fn token_of(c: &Connection, contact: i64) -> String {
        let body: String = c
            .query_row(
                "SELECT body FROM outbox WHERE contact_id = ?1 ORDER BY id LIMIT 1",
                [contact],
                |r| r.get(0),
            )
            .unwrap();
        let at = body.find("/ack/").expect("a link") + 5;
        body[at..at + 32].to_string()
    }

    #[test]
    fn primaries_at_once_secondaries_after_ten_minutes_then_everyone_every_fifteen() {
        let c = store();
        let s = settings();
        let first: Vec<i64> = outbox(&c).iter().map(|e| e.0).collect();
        assert_eq!(
            first,
            vec![1, 3],
            "the primary family contact and the clinician"
        );
        assert_eq!(escalate_due(&c, 10 * MIN - 1, &s).unwrap(), 0);
        assert_eq!(escalate_due(&c, 10 * MIN, &s).unwrap(), 1);
        assert_eq!(outbox(&c)[2].0, 2, "then the secondary contact");
        assert!(!outbox(&c)[2].1.contains("Reminder"), "their first e-mail");
        assert_eq!(escalate_due(&c, 25 * MIN - 1, &s).unwrap(), 0);
        assert_eq!(escalate_due(&c, 25 * MIN, &s).unwrap(), 3);
        let reminders = &outbox(&c)[3..];
        assert!(reminders
            .iter()
            .all(|(_, subj)| subj.contains("Nhắc lại") || subj.contains("Reminder")));
        assert_eq!(escalate_due(&c, 40 * MIN, &s).unwrap(), 3);
    }

    #[test]
    fn acknowledging_stops_the_escalation() {
        let c = store();
        alerts::act(&c, 1, Action::Acknowledge, "bs.minh", None, false).unwrap();
        assert_eq!(escalate_due(&c, 60 * MIN, &settings()).unwrap(), 0);
        assert_eq!(outbox(&c).len(), 2);
    }

    #[test]
    fn a_family_link_acknowledges_once_and_stops_the_escalation() {
        let c = store();
        let token = token_of(&c, 1);
        assert_eq!(outbox(&c).len(), 2, "no link for the clinician");
        let v = ack_link_view(&c, &token, MIN).unwrap();
        assert_eq!(v.status, AckLinkStatus::Valid);
        assert_eq!(
            v.alert_state,
            Some(AlertState::Open),
            "looking changes nothing"
        );
        let v = use_ack_link(&c, &token, MIN, false).unwrap();
        assert_eq!(v.status, AckLinkStatus::Accepted);
        assert_eq!(v.alert_state, Some(AlertState::Acknowledged));
        assert_eq!(
            v.acknowledged_by.as_deref(),
            Some("Lan (family, e-mail link)")
        );
        let actor: String = c
            .query_row(
                "SELECT actor FROM alert_audit WHERE action = 'acknowledge'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(actor, "Lan (family, e-mail link)");
        assert_eq!(
            use_ack_link(&c, &token, MIN, false).unwrap().status,
            AckLinkStatus::Used
        );
        assert_eq!(escalate_due(&c, 60 * MIN, &settings()).unwrap(), 0);
    }

    #[test]
    fn expired_and_unknown_links_change_nothing() {
        let c = store();
        let token = token_of(&c, 1);
        let v = use_ack_link(&c, &token, 24 * 60 * MIN, false).unwrap();
        assert_eq!(v.status, AckLinkStatus::Expired);
        assert_eq!(v.alert_state, Some(AlertState::Open));
        let v = use_ack_link(&c, "0123456789abcdef0123456789abcdef", MIN, false).unwrap();
        assert_eq!(v.status, AckLinkStatus::Unknown);
        assert!(v.patient_name.is_empty(), "an unknown link reveals nothing");
    }

    fn alert_rules(c: &Connection) -> Vec<(String, String)> {
        let mut st = c
            .prepare("SELECT rule, severity FROM alerts ORDER BY id")
            .unwrap();
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        rows.map(|r| r.unwrap()).collect()
    }

    #[test]
    fn one_refused_email_raises_an_alert_for_the_clinicians_at_once() {
        let c = store();
        let ids: Vec<i64> = {
            let mut st = c.prepare("SELECT id FROM outbox ORDER BY id").unwrap();
            let rows = st.query_map([], |r| r.get(0)).unwrap();
            rows.map(|r| r.unwrap()).collect()
        };
        alerts::outbox_mark_undeliverable(&c, ids[0], "550 no such user", ms_to_time(MIN)).unwrap();
        check_delivered(&c, ids[0], MIN).unwrap();
        assert_eq!(
            alert_rules(&c)[1],
            ("notification_failed".to_string(), "amber".to_string()),
            "raised although the clinician's e-mail is still waiting (issue #15)"
        );
        alerts::outbox_mark_undeliverable(&c, ids[1], "550 no such user", ms_to_time(MIN)).unwrap();
        check_delivered(&c, ids[1], MIN).unwrap();
        assert_eq!(
            alert_rules(&c).len(),
            2,
            "one open alert per (patient, rule)"
        );
    }

    /// Issue #15: removing a contact cancels what waited for them — not sent, and not counted
    /// as a delivery failure (no `/readyz` outage, no unhealthy delivery, no alert).
    #[test]
    fn a_removed_contacts_waiting_emails_are_cancelled_not_failed() {
        let c = store();
        let before = alerts::outbox_counts(&c).unwrap().pending;
        registry::remove_contact(&c, 1, "test").unwrap();
        let counts = alerts::outbox_counts(&c).unwrap();
        assert_eq!(counts.pending, before - 1);
        assert_eq!(counts.undeliverable, 0);
        assert_eq!(alerts::outbox_set_aside_since(&c, 0).unwrap(), 0);
        assert!(alerts::outbox_due(&c, ms_to_time(i64::MAX / 2), 10)
            .unwrap()
            .iter()
            .all(|m| m.to_addr != "lan@example.org"));
        assert_eq!(alert_rules(&c).len(), 1, "no notification_failed");
    }

    #[test]
    fn nothing_sent_by_the_first_escalation_step_raises_it_too() {
        let c = store();
        escalate_due(&c, 10 * MIN, &settings()).unwrap();
        assert_eq!(alert_rules(&c)[1].0, "notification_failed");
        // Delivered mail: no such alert.
        let c = store();
        c.execute("UPDATE outbox SET sent_at = 1", []).unwrap();
        escalate_due(&c, 10 * MIN, &settings()).unwrap();
        assert_eq!(alert_rules(&c).len(), 1);
    }

    /// Amber alert `id` for patient p1, opened at `at` (ms), queued for digests.
    fn amber(c: &Connection, id: i64, metric: &str, value: f64, at: i64) {
        c.execute(
            "INSERT INTO alerts (id, patient_id, rule, condition, severity, state, opened_at,
                                 metric, value, message, last_value, last_at, limit_text)
             VALUES (?1, 'p1', ?2, ?2, 'amber', 'open', ?3, ?4, ?5, 'm', ?5, ?3, '< 94')",
            params![id, format!("{metric}_amber_{id}"), at, metric, value],
        )
        .unwrap();
        queue_for_digest(c, id, at).unwrap();
    }

    #[test]
    fn non_critical_alerts_reach_who_wants_them_at_most_once_an_hour_as_a_digest() {
        let c = store();
        let s = settings();
        let before = outbox(&c).len();
        amber(&c, 10, "spo2", 92.0, MIN);
        assert_eq!(
            flush_digests(&c, MIN, &s).unwrap(),
            1,
            "the first goes at once"
        );
        let sent = outbox(&c);
        assert_eq!(sent.len(), before + 1);
        assert_eq!(
            sent[before].0, 3,
            "to the clinician; families hear of red alerts only"
        );
        amber(&c, 11, "temperature", 38.3, 5 * MIN);
        amber(&c, 12, "spo2", 91.0, 10 * MIN);
        assert_eq!(
            flush_digests(&c, 30 * MIN, &s).unwrap(),
            0,
            "within the hour"
        );
        assert_eq!(
            flush_digests(&c, 61 * MIN, &s).unwrap(),
            1,
            "one digest of two"
        );
        let last = outbox(&c).pop().unwrap();
        assert!(last.1.contains("Tóm tắt 2 cảnh báo"), "{}", last.1);
        assert_eq!(flush_digests(&c, 200 * MIN, &s).unwrap(), 0, "nothing left");
    }

    #[test]
    fn quiet_hours_hold_digests_but_never_red_alerts() {
        let c = store();
        c.execute(
            "UPDATE contacts SET quiet_hours = '22:00-06:00' WHERE id = 3",
            [],
        )
        .unwrap();
        let s = settings();
        // 2026-11-28 16:00 UTC is 23:00 in Ho Chi Minh City.
        let night = chrono::Utc
            .with_ymd_and_hms(2026, 11, 28, 16, 0, 0)
            .unwrap()
            .timestamp_millis();
        amber(&c, 10, "spo2", 92.0, night);
        assert_eq!(flush_digests(&c, night, &s).unwrap(), 0);
        assert_eq!(
            flush_digests(&c, night + 6 * 60 * MIN, &s).unwrap(),
            0,
            "05:00"
        );
        assert_eq!(
            flush_digests(&c, night + 7 * 60 * MIN, &s).unwrap(),
            1,
            "06:00"
        );
        // A red alert at night e-mails the clinician at once (store() started one at t = 0,
        // whatever the hour).
        assert!(outbox(&c).iter().filter(|e| e.0 == 3).count() >= 2);
    }

    #[test]
    fn no_public_url_no_links() {
        let mut c = Connection::open_in_memory().unwrap();
        schema::migrate(&mut c).unwrap();
        c.execute_batch(
            "INSERT INTO patients (num, id, name, created_at) VALUES (1, 'p1', 'P', 0);
             INSERT INTO contacts (id, patient_id, name, email, lang, role, created_at) VALUES
               (1, 'p1', 'Lan', 'lan@example.org', 'vi', 'family', 0);
             INSERT INTO alerts (id, patient_id, rule, condition, severity, state, opened_at,
                                 message, last_at)
             VALUES (1, 'p1', 'sos', 'sos', 'red', 'open', 0, 'event sos', 0);",
        )
        .unwrap();
        assert_eq!(start(&c, 1, &NotifySettings::default(), 0).unwrap(), 1);
        let body: String = c
            .query_row("SELECT body FROM outbox", [], |r| r.get(0))
            .unwrap();
        assert!(!body.contains("/ack/"), "{body}");
        let links: i64 = c
            .query_row("SELECT count(*) FROM ack_links", [], |r| r.get(0))
            .unwrap();
        assert_eq!(links, 0);
    }
}
