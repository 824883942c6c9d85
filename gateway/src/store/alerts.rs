//! Alerts, their audit trail, and the e-mail outbox. Opening an alert and queueing its e-mails
//! happen in one transaction: an alert never exists without its notifications, and an e-mail is
//! in the outbox before anyone tries to send it (design invariants 3 and 4).

use super::{ms_to_time, now_ms, Result, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use vigil_alerting::lifecycle::{self, Action, OnBreach};
use vigil_alerting::outbox::QueuedEmail;
use vigil_alerting::Breach;
use vigil_domain::{Alert, AlertState, EventKind, Severity};

/// What raising a breach did.
#[derive(Debug, Clone)]
pub enum Raised {
    /// A new alert, or an escalated one: either way people must be told.
    Opened {
        alert: Box<Alert>,
        emails: usize,
    },
    Updated {
        alert_id: i64,
    },
    /// Resolved automatically: its rule's clear condition held long enough.
    Resolved {
        alert: Box<Alert>,
    },
}

impl Raised {
    /// The alert a breach opened or updated (none for a resolution).
    pub fn breached_alert(&self) -> Option<i64> {
        match self {
            Raised::Opened { alert, .. } => Some(alert.id),
            Raised::Updated { alert_id } => Some(*alert_id),
            Raised::Resolved { .. } => None,
        }
    }
}

pub use super::notify::NotifySettings;

const ALERT_COLUMNS: &str = "a.id, a.patient_id, p.name, a.rule, a.severity, a.state, a.opened_at,
    a.value, a.metric, a.unit, a.message, a.acknowledged_at, a.acknowledged_by, a.note,
    a.resolved_at, a.assigned_to";

fn alert_from_row(r: &Row<'_>) -> rusqlite::Result<Alert> {
    let opt_time = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        Ok(r.get::<_, Option<i64>>(i)?.map(ms_to_time))
    };
    Ok(Alert {
        id: r.get(0)?,
        patient_id: r.get(1)?,
        patient_name: r.get(2)?,
        rule: r.get(3)?,
        severity: r.get::<_, String>(4)?.parse().unwrap_or(Severity::Red),
        state: r.get::<_, String>(5)?.parse().unwrap_or(AlertState::Open),
        opened_at: ms_to_time(r.get(6)?),
        value: r.get(7)?,
        metric: r.get(8)?,
        unit: r.get(9)?,
        message: r.get(10)?,
        acknowledged_at: opt_time(11)?,
        acknowledged_by: r.get(12)?,
        note: r.get(13)?,
        resolved_at: opt_time(14)?,
        assigned_to: r.get(15)?,
    })
}

pub fn get(conn: &Connection, id: i64) -> Result<Option<Alert>> {
    Ok(conn
        .query_row(
            &format!("SELECT {ALERT_COLUMNS} FROM alerts a JOIN patients p ON p.id = a.patient_id WHERE a.id = ?1"),
            [id],
            alert_from_row,
        )
        .optional()?)
}

/// The alert-burden report for the patients `scope` allows, over the `days` before `now`.
pub fn burden(
    conn: &Connection,
    scope: &vigil_domain::Scope,
    days: u32,
    now: i64,
) -> Result<vigil_domain::views::BurdenReport> {
    use std::collections::BTreeMap;
    use vigil_domain::views::{BurdenReport, BurdenRow};
    let since = now - i64::from(days) * 86_400_000;
    #[derive(Default)]
    struct Acc {
        name: Option<String>,
        alerts: u64,
        acknowledged: u64,
        resolved: u64,
        emails: u64,
        delays: Vec<f64>,
    }
    let mut rules: BTreeMap<String, Acc> = BTreeMap::new();
    let mut patients: BTreeMap<String, Acc> = BTreeMap::new();
    let mut st = conn.prepare_cached(
        "SELECT a.rule, a.patient_id, p.name, p.facility_id, a.state, a.opened_at,
                a.acknowledged_at,
                (SELECT count(*) FROM outbox o WHERE o.alert_id = a.id)
         FROM alerts a JOIN patients p ON p.id = a.patient_id WHERE a.opened_at >= ?1",
    )?;
    let rows = st.query_map([since], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, Option<i64>>(6)?,
            r.get::<_, i64>(7)? as u64,
        ))
    })?;
    for row in rows {
        let (rule, pid, name, facility, state, opened, acked, emails) = row?;
        if !scope.allows(&facility) {
            continue;
        }
        let rows_of = [
            rules.entry(rule).or_default(),
            patients.entry(pid).or_insert_with(|| Acc {
                name: Some(name),
                ..Acc::default()
            }),
        ];
        for e in rows_of {
            e.alerts += 1;
            e.resolved += u64::from(state == "resolved");
            e.emails += emails;
            if let Some(t) = acked {
                e.acknowledged += 1;
                e.delays.push((t - opened).max(0) as f64 / 1000.0);
            }
        }
    }
    // Digests (no single alert) count for their patient.
    let mut st = conn.prepare_cached(
        "SELECT c.patient_id, count(*) FROM outbox o JOIN contacts c ON c.id = o.contact_id
         WHERE o.alert_id IS NULL AND o.created_at >= ?1 GROUP BY c.patient_id",
    )?;
    for row in st.query_map([since], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
    })? {
        let (pid, n) = row?;
        if let Some(a) = patients.get_mut(&pid) {
            a.emails += n;
        }
    }
    fn quantile(v: &mut [f64], q: f64) -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1])
    }
    let finish = |m: BTreeMap<String, Acc>| -> Vec<BurdenRow> {
        let mut out: Vec<BurdenRow> = m
            .into_iter()
            .map(|(key, mut a)| BurdenRow {
                key,
                name: a.name.take(),
                alerts: a.alerts,
                acknowledged: a.acknowledged,
                resolved: a.resolved,
                emails: a.emails,
                ack_median_s: quantile(&mut a.delays, 0.5),
                ack_p90_s: quantile(&mut a.delays, 0.9),
            })
            .collect();
        out.sort_by(|a, b| b.alerts.cmp(&a.alerts).then(a.key.cmp(&b.key)));
        out
    };
    Ok(BurdenReport {
        days,
        since: ms_to_time(since),
        by_rule: finish(rules),
        by_patient: finish(patients),
    })
}

/// One patient's alerts, newest first.
pub fn for_patient(conn: &Connection, patient_id: &str, limit: usize) -> Result<Vec<Alert>> {
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts a JOIN patients p ON p.id = a.patient_id
         WHERE a.patient_id = ?1 ORDER BY a.opened_at DESC LIMIT ?2"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(params![patient_id, limit as i64], alert_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Alerts of the facilities `scope` allows, most urgent first (severity, then newest),
/// optionally of one state.
pub fn list(
    conn: &Connection,
    scope: &vigil_domain::Scope,
    filter: &vigil_domain::views::AlertFilter,
    limit: usize,
) -> Result<Vec<Alert>> {
    // The facility list as JSON: one statement whatever the number of facilities.
    let facilities = match scope {
        vigil_domain::Scope::All => None,
        vigil_domain::Scope::Only(f) => Some(serde_json::to_string(f).expect("strings")),
    };
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts a JOIN patients p ON p.id = a.patient_id
         WHERE (?1 IS NULL OR a.state = ?1)
           AND (?3 IS NULL OR p.facility_id IN (SELECT value FROM json_each(?3)))
           AND (?4 IS NULL OR a.patient_id = ?4)
           AND (?5 IS NULL OR a.rule = ?5)
           AND (?6 IS NULL OR a.opened_at >= ?6)
           AND (?7 = 0 OR a.state <> 'resolved')
           AND (?8 IS NULL OR a.severity = ?8)
           AND (?9 IS NULL OR a.opened_at < ?9)
         ORDER BY CASE a.severity WHEN 'red' THEN 0 WHEN 'amber' THEN 1 ELSE 2 END, a.opened_at DESC
         LIMIT ?2"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(
        params![
            filter.state.map(|s| s.as_str()),
            limit as i64,
            facilities,
            filter.patient_id,
            filter.rule,
            filter.since.map(|t| t.timestamp_millis()),
            filter.active,
            filter.severity.map(|s| s.as_str()),
            filter.until.map(|t| t.timestamp_millis()),
        ],
        alert_from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// "Assign to me": `actor` takes the alert on (audited; a resolved alert cannot be taken).
pub fn assign(conn: &Connection, id: i64, actor: &str, note: Option<&str>) -> Result<Alert> {
    let alert = get(conn, id)?.ok_or_else(|| StoreError::NotFound(format!("alert {id}")))?;
    if alert.state == AlertState::Resolved {
        return Err(StoreError::Conflict("alert is already resolved".into()));
    }
    conn.execute(
        "UPDATE alerts SET assigned_to = ?2, assigned_at = ?3 WHERE id = ?1",
        params![id, actor, now_ms()],
    )?;
    audit(conn, id, actor, "assign", note)?;
    Ok(get(conn, id)?.expect("exists: read above in this transaction"))
}

fn audit(
    conn: &Connection,
    alert_id: i64,
    actor: &str,
    action: &str,
    note: Option<&str>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO alert_audit (alert_id, at, actor, action, note) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![alert_id, now_ms(), actor, action, note],
    )?;
    Ok(())
}

/// The active (open or acknowledged) alert of `patient_id`'s `condition`, if any.
fn active(
    conn: &Connection,
    patient_id: &str,
    condition: &str,
) -> Result<Option<lifecycle::Active>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, state, severity FROM alerts
             WHERE patient_id = ?1 AND condition = ?2 AND state <> 'resolved'",
        )?
        .query_row(params![patient_id, condition], |r| {
            Ok(lifecycle::Active {
                id: r.get(0)?,
                state: r.get::<_, String>(1)?.parse().unwrap_or(AlertState::Open),
                severity: r.get::<_, String>(2)?.parse().unwrap_or(Severity::Red),
            })
        })
        .optional()?)
}

/// Applies a breach for `patient_id`: opens an alert, or updates or escalates the active alert
/// of the same condition (see `vigil_alerting::lifecycle`). A new or escalated red alert queues
/// e-mails to the patient's family contacts in the same transaction.
pub fn raise(
    conn: &Connection,
    patient_id: &str,
    breach: &Breach,
    event: Option<EventKind>,
    at: DateTime<Utc>,
    notify: &NotifySettings,
) -> Result<Raised> {
    let active = active(conn, patient_id, &breach.condition)?;
    let alert_id = match lifecycle::on_breach(active, breach.severity) {
        OnBreach::Update { alert_id } => {
            conn.execute(
                "UPDATE alerts SET last_value = ?2, last_at = ?3, breaches = breaches + 1 WHERE id = ?1",
                params![alert_id, breach.value, at.timestamp_millis()],
            )?;
            return Ok(Raised::Updated { alert_id });
        }
        OnBreach::Escalate { alert_id } => {
            // Reopened even if acknowledged: a worse condition must be seen again.
            conn.execute(
                "UPDATE alerts SET rule = ?2, severity = ?3, state = 'open', message = ?4,
                        value = ?5, last_value = ?5, last_at = ?6, breaches = breaches + 1,
                        limit_text = ?7
                 WHERE id = ?1",
                params![
                    alert_id,
                    breach.rule,
                    breach.severity.as_str(),
                    breach.message,
                    breach.value,
                    at.timestamp_millis(),
                    breach.limit,
                ],
            )?;
            audit(conn, alert_id, "system", "escalate", Some(&breach.message))?;
            alert_id
        }
        OnBreach::Open => {
            conn.execute(
                "INSERT INTO alerts (patient_id, rule, condition, severity, state, opened_at, metric,
                                     value, unit, message, last_value, last_at, limit_text, event)
                 VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6, ?7, ?8, ?9, ?7, ?5, ?10, ?11)",
                params![
                    patient_id,
                    breach.rule,
                    breach.condition,
                    breach.severity.as_str(),
                    at.timestamp_millis(),
                    breach.metric.map(|m| m.as_str()),
                    breach.value,
                    breach.metric.map(|m| m.unit()),
                    breach.message,
                    breach.limit,
                    event.map(|e| e.as_str()),
                ],
            )?;
            let alert_id = conn.last_insert_rowid();
            audit(conn, alert_id, "system", "open", Some(&breach.message))?;
            alert_id
        }
    };
    // Red alerts e-mail the patient's contacts at once and escalate (docs/notifications.md).
    // Less severe alerts wait for the digests of the contacts who want them (anti-flood).
    let emails = if breach.severity == Severity::Red {
        super::notify::start(conn, alert_id, notify, now_ms())?
    } else {
        super::notify::queue_for_digest(conn, alert_id, now_ms())?;
        0
    };
    let alert = get(conn, alert_id)?.expect("written in this transaction");
    Ok(Raised::Opened {
        alert: Box::new(alert),
        emails,
    })
}

/// Resolves `patient_id`'s active alert of `condition` because its rule's clear condition held
/// (`message` says which), as actor `system`, with an audit record; queued for the InfluxDB sink
/// when `forward`. `None` when no alert of that condition is active (a clinician resolved it
/// already).
pub fn resolve_cleared(
    conn: &Connection,
    patient_id: &str,
    condition: &str,
    message: &str,
    at: DateTime<Utc>,
    forward: bool,
) -> Result<Option<Alert>> {
    let Some(id) = active(conn, patient_id, condition)?.map(|a| a.id) else {
        return Ok(None);
    };
    let note = format!("cleared: {message}");
    conn.execute(
        "UPDATE alerts SET state = 'resolved', resolved_at = ?2, resolved_by = 'system',
                           note = coalesce(note, ?3) WHERE id = ?1",
        params![id, at.timestamp_millis(), note],
    )?;
    audit(conn, id, "system", "resolve", Some(&note))?;
    super::notify::stop(conn, id)?;
    let alert = get(conn, id)?.expect("updated in this transaction");
    if forward {
        super::forward::enqueue_transition(conn, &alert, "resolved", at.timestamp_millis())?;
    }
    Ok(Some(alert))
}

/// Acknowledges or resolves an alert on behalf of `actor`, with an audit record. With
/// `forward` (the InfluxDB sink is on) a change of state is queued for it in the same
/// transaction, like the readings and the alert's opening (docs/influxdb.md).
pub fn act(
    conn: &Connection,
    id: i64,
    action: Action,
    actor: &str,
    note: Option<&str>,
    forward: bool,
) -> Result<Alert> {
    let alert = get(conn, id)?.ok_or_else(|| StoreError::NotFound(format!("alert {id}")))?;
    let to = lifecycle::transition(alert.state, action)
        .map_err(|e| StoreError::Conflict(e.to_string()))?;
    let now = now_ms();
    match action {
        Action::Acknowledge if alert.state == AlertState::Open => {
            conn.execute(
                "UPDATE alerts SET state = ?2, acknowledged_at = ?3, acknowledged_by = ?4,
                                   note = coalesce(?5, note) WHERE id = ?1",
                params![id, to.as_str(), now, actor, note],
            )?;
        }
        Action::Acknowledge => {
            // Already acknowledged: keep who did it first, add the note.
            conn.execute(
                "UPDATE alerts SET note = coalesce(?2, note) WHERE id = ?1",
                params![id, note],
            )?;
        }
        Action::Resolve => {
            conn.execute(
                "UPDATE alerts SET state = ?2, resolved_at = ?3, resolved_by = ?4,
                                   note = coalesce(?5, note) WHERE id = ?1",
                params![id, to.as_str(), now, actor, note],
            )?;
        }
    }
    audit(conn, id, actor, action.as_str(), note)?;
    // Somebody is on it: no further escalation e-mails (issue #5).
    super::notify::stop(conn, id)?;
    if forward && to != alert.state {
        super::forward::enqueue_transition(conn, &alert, to.as_str(), now)?;
    }
    Ok(get(conn, id)?.expect("exists: read above in this transaction"))
}

/// Links a reading that breached an alert's rule to the alert (idempotent).
pub fn link_reading(
    conn: &Connection,
    alert_id: i64,
    r: &vigil_domain::Reading,
    device_num: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO alert_readings (alert_id, device, metric, ts, value)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        alert_id,
        device_num,
        r.metric.code(),
        r.ts.timestamp_millis(),
        r.value
    ])?;
    Ok(())
}

/// An alert with its audit trail, linked readings (oldest first, at most `limit`) and e-mails.
pub fn detail(
    conn: &Connection,
    id: i64,
    limit: usize,
) -> Result<Option<vigil_domain::views::AlertDetail>> {
    use vigil_domain::views::{AlertDetail, AlertEmail, AlertReading, AuditEntry};
    let Some(alert) = get(conn, id)? else {
        return Ok(None);
    };
    let audit = {
        let mut st = conn.prepare_cached(
            "SELECT at, actor, action, note FROM alert_audit WHERE alert_id = ?1 ORDER BY id",
        )?;
        let rows = st.query_map([id], |r| {
            Ok(AuditEntry {
                at: ms_to_time(r.get(0)?),
                actor: r.get(1)?,
                action: r.get(2)?,
                note: r.get(3)?,
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let readings = {
        let mut st = conn.prepare_cached(
            "SELECT l.ts, l.metric, l.value, d.id FROM alert_readings l
             JOIN devices d ON d.num = l.device
             WHERE l.alert_id = ?1 ORDER BY l.ts LIMIT ?2",
        )?;
        let rows = st.query_map(params![id, limit as i64], |r| {
            let metric = vigil_domain::Metric::from_code(r.get(1)?);
            Ok(AlertReading {
                ts: ms_to_time(r.get(0)?),
                metric: metric.map(|m| m.as_str()).unwrap_or("unknown").to_string(),
                value: r.get(2)?,
                unit: metric.map(|m| m.unit()).unwrap_or(""),
                device_id: r.get(3)?,
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let emails = {
        let mut st = conn.prepare_cached(
            "SELECT to_name, stage, created_at, sent_at, attempts, failed_at, last_error
             FROM outbox WHERE alert_id = ?1 ORDER BY id",
        )?;
        let rows = st.query_map([id], |r| {
            Ok(AlertEmail {
                to_name: r.get(0)?,
                stage: r.get(1)?,
                created_at: ms_to_time(r.get(2)?),
                sent_at: r.get::<_, Option<i64>>(3)?.map(ms_to_time),
                attempts: r.get(4)?,
                failed_at: r.get::<_, Option<i64>>(5)?.map(ms_to_time),
                last_error: r.get(6)?,
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    Ok(Some(AlertDetail {
        alert,
        audit,
        readings,
        emails,
    }))
}

pub fn outbox_due(conn: &Connection, now: DateTime<Utc>, limit: usize) -> Result<Vec<QueuedEmail>> {
    let mut st = conn.prepare_cached(
        "SELECT id, message_id, to_name, to_addr, subject, body, html, created_at, attempts
         FROM outbox
         WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?1
         ORDER BY id LIMIT ?2",
    )?;
    let rows = st.query_map(params![now.timestamp_millis(), limit as i64], |r| {
        Ok(QueuedEmail {
            id: r.get(0)?,
            message_id: r.get(1)?,
            to_name: r.get(2)?,
            to_addr: r.get(3)?,
            subject: r.get(4)?,
            body: r.get(5)?,
            html: r.get(6)?,
            created_at: ms_to_time(r.get(7)?),
            attempts: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn outbox_mark_sent(conn: &Connection, id: i64, at: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "UPDATE outbox SET sent_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
        params![id, at.timestamp_millis()],
    )?;
    Ok(())
}

pub fn outbox_mark_failed(
    conn: &Connection,
    id: i64,
    error: &str,
    retry_at: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
        params![id, error, retry_at.timestamp_millis()],
    )?;
    Ok(())
}

/// The relay refused the e-mail for good (5xx): it leaves the queue, kept with the reason.
pub fn outbox_mark_undeliverable(
    conn: &Connection,
    id: i64,
    error: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, failed_at = ?3 WHERE id = ?1",
        params![id, error, at.timestamp_millis()],
    )?;
    Ok(())
}

/// E-mails set aside (refused for good, or impossible to build) at or after `since` (ms);
/// not those cancelled with their removed contact.
pub fn outbox_set_aside_since(conn: &Connection, since: i64) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM outbox WHERE failed_at >= ?1 AND cancelled_at IS NULL",
        [since],
        |r| r.get(0),
    )?)
}

/// The outbox in numbers, for `/metrics` and `/readyz`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting for their first or next attempt.
    pub pending: i64,
    pub sent: i64,
    /// Refused for good (not counting those cancelled with their removed contact).
    pub undeliverable: i64,
    /// Waiting, and tried at least once already.
    pub retrying: i64,
}

pub fn outbox_counts(conn: &Connection) -> Result<OutboxCounts> {
    Ok(conn.query_row(
        "SELECT count(*) FILTER (WHERE sent_at IS NULL AND failed_at IS NULL),
                count(*) FILTER (WHERE sent_at IS NOT NULL),
                count(*) FILTER (WHERE failed_at IS NOT NULL AND cancelled_at IS NULL),
                count(*) FILTER (WHERE sent_at IS NULL AND failed_at IS NULL AND attempts > 0)
         FROM outbox",
        [],
        |r| {
            Ok(OutboxCounts {
                pending: r.get(0)?,
                sent: r.get(1)?,
                undeliverable: r.get(2)?,
                retrying: r.get(3)?,
            })
        },
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_an_open_alert() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut c).unwrap();
        c.execute_batch(
            "INSERT INTO patients (num, id, name, created_at) VALUES (1, 'p1', 'P', 0);
             INSERT INTO alerts (id, patient_id, rule, condition, severity, state, opened_at,
                                 message, last_at)
             VALUES (1, 'p1', 'spo2_red', 'spo2_low', 'red', 'open', 1000, 'SpO2 87', 1000);",
        )
        .unwrap();
        c
    }

    fn queued(c: &Connection) -> Vec<String> {
        let mut st = c
            .prepare("SELECT lines FROM forward_queue ORDER BY id")
            .unwrap();
        let rows = st.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    #[test]
    fn acknowledging_and_resolving_are_queued_for_influxdb_once_each() {
        let c = store_with_an_open_alert();
        act(&c, 1, Action::Acknowledge, "bs.lan", Some("calling"), true).unwrap();
        // A second acknowledgement only adds its note: no new state, no new point.
        act(&c, 1, Action::Acknowledge, "bs.minh", Some("me too"), true).unwrap();
        let a = act(&c, 1, Action::Resolve, "bs.lan", None, true).unwrap();
        assert_eq!(a.state, AlertState::Resolved);
        let lines = queued(&c);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let prefix = "alerts,patient_id=p1,rule=spo2_red,severity=red ";
        assert!(
            lines[0].starts_with(&format!("{prefix}acknowledged=1i ")),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with(&format!("{prefix}resolved=1i ")),
            "{lines:?}"
        );
    }

    #[test]
    fn nothing_is_queued_without_the_sink() {
        let c = store_with_an_open_alert();
        act(&c, 1, Action::Acknowledge, "bs.lan", None, false).unwrap();
        act(&c, 1, Action::Resolve, "bs.lan", None, false).unwrap();
        assert!(queued(&c).is_empty());
    }
}
