//! Alerts and their audit trail, as rows: what the alert service (`crate::alerts`) decides is
//! written here, in its transaction. No decisions are taken here.

use super::{ms_to_time, now_ms, Result};
use crate::db::{params, Connection, OptionalExtension, Row};
use chrono::{DateTime, Utc};
use vigil_alerting::lifecycle;
use vigil_alerting::Breach;
use vigil_domain::{Alert, AlertState, EventKind, Severity};

/// The columns [`alert_from_row`] reads, from `alerts a JOIN patients p`.
pub(crate) const ALERT_COLUMNS: &str =
    "a.id, a.patient_id, p.name, a.rule, a.severity, a.state, a.opened_at,
    a.value, a.metric, a.unit, a.message, a.acknowledged_at, a.acknowledged_by, a.note,
    a.resolved_at, a.assigned_to, a.limit_text, a.event, a.last_value, a.last_at, a.episode_id,
    a.device_id";

pub(crate) fn alert_from_row(r: &Row<'_>) -> crate::db::Result<Alert> {
    let opt_time = |i: usize| -> crate::db::Result<Option<DateTime<Utc>>> {
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
        limit: r.get(16)?,
        event: r.get(17)?,
        last_value: r.get(18)?,
        last_at: opt_time(19)?,
        episode_id: r.get(20)?,
        device_id: r.get(21)?,
    })
}

/// Names the device whose event raised alert `id`, and for a `battery_low` the battery level
/// (`value`, in %) — issue #21: "Device battery low" said neither.
pub fn set_source(conn: &Connection, id: i64, device_id: &str, battery: Option<f64>) -> Result<()> {
    conn.execute(
        "UPDATE alerts SET device_id = ?2 WHERE id = ?1",
        params![id, device_id],
    )?;
    if let Some(level) = battery {
        conn.execute(
            "UPDATE alerts SET value = ?2, last_value = ?2, unit = '%' WHERE id = ?1",
            params![id, level],
        )?;
    }
    Ok(())
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

/// One patient's alerts, newest first.
pub fn for_patient(conn: &Connection, patient_id: &str, limit: usize) -> Result<Vec<Alert>> {
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts a JOIN patients p ON p.id = a.patient_id
         WHERE a.patient_id = ?1 ORDER BY a.opened_at DESC LIMIT ?2"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(params![patient_id, limit as i64], alert_from_row)?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
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
    let facility_list = conn.json_strings("?3");
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts a JOIN patients p ON p.id = a.patient_id
         WHERE (a.state = ?1 OR ?1 IS NULL)
           AND (p.facility_id IN ({facility_list}) OR ?3 IS NULL)
           AND (a.patient_id = ?4 OR ?4 IS NULL)
           AND (a.rule = ?5 OR ?5 IS NULL)
           AND (a.opened_at >= ?6 OR ?6 IS NULL)
           AND (?7 = 0 OR a.state <> 'resolved')
           AND (a.severity = ?8 OR ?8 IS NULL)
           AND (a.opened_at < ?9 OR ?9 IS NULL)
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
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

/// Records who took the alert on (the service checks that it may be taken).
pub fn set_assignee(conn: &Connection, id: i64, actor: &str, at: i64) -> Result<()> {
    conn.execute(
        "UPDATE alerts SET assigned_to = ?2, assigned_at = ?3 WHERE id = ?1",
        params![id, actor, at],
    )?;
    Ok(())
}

/// Appends to an alert's audit trail.
pub fn audit(
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
pub fn active(
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

/// Counts one more breach of an active alert (its latest value and time).
pub fn note_breach(conn: &Connection, id: i64, value: Option<f64>, at: i64) -> Result<()> {
    conn.execute(
        "UPDATE alerts SET last_value = ?2, last_at = ?3, breaches = breaches + 1 WHERE id = ?1",
        params![id, value, at],
    )?;
    Ok(())
}

/// Makes an active alert the worse `breach` (reopened even if acknowledged), audited.
pub fn worsen(conn: &Connection, id: i64, breach: &Breach, at: i64) -> Result<()> {
    conn.execute(
        "UPDATE alerts SET rule = ?2, severity = ?3, state = 'open', message = ?4,
                value = ?5, last_value = ?5, last_at = ?6, breaches = breaches + 1,
                limit_text = ?7
         WHERE id = ?1",
        params![
            id,
            breach.rule,
            breach.severity.as_str(),
            breach.message,
            breach.value,
            at,
            breach.limit,
        ],
    )?;
    audit(conn, id, "system", "escalate", Some(&breach.message))
}

/// Inserts a new open alert for `breach`, audited; returns its id.
pub fn insert(
    conn: &Connection,
    patient_id: &str,
    breach: &Breach,
    event: Option<EventKind>,
    at: i64,
) -> Result<i64> {
    let id: i64 = conn.query_row(
        "INSERT INTO alerts (patient_id, rule, condition, severity, state, opened_at, metric,
                             value, unit, message, last_value, last_at, limit_text, event)
         VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6, ?7, ?8, ?9, ?7, ?5, ?10, ?11)
         RETURNING id",
        params![
            patient_id,
            breach.rule,
            breach.condition,
            breach.severity.as_str(),
            at,
            breach.metric.map(|m| m.as_str()),
            breach.value,
            breach.metric.map(|m| m.unit()),
            breach.message,
            breach.limit,
            event.map(|e| e.as_str()),
        ],
        |r| r.get(0),
    )?;
    audit(conn, id, "system", "open", Some(&breach.message))?;
    Ok(id)
}

/// Records an acknowledgement by `actor`. Of an alert already acknowledged (`open` false) only
/// the note is added: who acknowledged first is kept.
pub fn set_acknowledged(
    conn: &Connection,
    id: i64,
    open: bool,
    actor: &str,
    note: Option<&str>,
    at: i64,
) -> Result<()> {
    if open {
        conn.execute(
            "UPDATE alerts SET state = 'acknowledged', acknowledged_at = ?2, acknowledged_by = ?3,
                               note = coalesce(?4, note) WHERE id = ?1",
            params![id, at, actor, note],
        )?;
    } else {
        conn.execute(
            "UPDATE alerts SET note = coalesce(?2, note) WHERE id = ?1",
            params![id, note],
        )?;
    }
    Ok(())
}

/// Records a resolution by `actor`. `note` replaces the alert's note, unless `keep_note` (the
/// system resolving: a clinician's note stays).
pub fn set_resolved(
    conn: &Connection,
    id: i64,
    actor: &str,
    note: Option<&str>,
    keep_note: bool,
    at: i64,
) -> Result<()> {
    conn.execute(
        "UPDATE alerts SET state = 'resolved', resolved_at = ?2, resolved_by = ?3,
                           note = CASE WHEN ?5 THEN coalesce(note, ?4) ELSE coalesce(?4, note) END
         WHERE id = ?1",
        params![id, at, actor, note, keep_note],
    )?;
    Ok(())
}

/// Links a reading that breached an alert's rule to the alert (idempotent).
pub fn link_reading(
    conn: &Connection,
    alert_id: i64,
    r: &vigil_domain::Reading,
    device_num: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO alert_readings (alert_id, device, metric, ts, value)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
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
        rows.collect::<crate::db::Result<Vec<_>>>()?
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
        rows.collect::<crate::db::Result<Vec<_>>>()?
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
        rows.collect::<crate::db::Result<Vec<_>>>()?
    };
    Ok(Some(AlertDetail {
        alert,
        audit,
        readings,
        emails,
    }))
}
