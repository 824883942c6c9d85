//! The e-mail outbox, as rows: e-mails queued in the transaction that decided them (design
//! invariant 4), what the outbox loop reads, and what became of each attempt.

use super::{ms_to_time, Result};
use crate::db::{params, Connection, OptionalExtension};
use chrono::{DateTime, Utc};
use vigil_notify::outbox::QueuedEmail;

pub use vigil_notify::NewEmail;

/// Queues an e-mail, due at once.
pub fn insert(conn: &Connection, e: &NewEmail<'_>, now: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO outbox (message_id, alert_id, contact_id, to_name, to_addr, subject,
                             body, html, stage, created_at, next_attempt_at, in_reply_to)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11)",
    )?
    .execute(params![
        e.message_id,
        e.alert_id,
        e.contact_id,
        e.to_name,
        e.to_addr,
        e.subject,
        e.body,
        e.html,
        e.stage,
        now,
        e.in_reply_to
    ])?;
    Ok(())
}

/// The alert an outbox row is about, if one.
pub fn alert_of(conn: &Connection, outbox_id: i64) -> Result<Option<i64>> {
    Ok(conn
        .query_row(
            "SELECT alert_id FROM outbox WHERE id = ?1",
            [outbox_id],
            |r| r.get(0),
        )
        .optional()?
        .flatten())
}

/// E-mails queued about an alert for a contact so far.
pub fn count_for(conn: &Connection, alert_id: i64, contact_id: i64) -> Result<u32> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM outbox WHERE alert_id = ?1 AND contact_id = ?2")?
        .query_row(params![alert_id, contact_id], |r| r.get(0))?)
}

/// (queued, sent) e-mails about an alert.
pub fn delivery_of(conn: &Connection, alert_id: i64) -> Result<(i64, i64)> {
    Ok(conn.query_row(
        "SELECT count(*), count(sent_at) FROM outbox WHERE alert_id = ?1",
        [alert_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

pub fn due(conn: &Connection, now: DateTime<Utc>, limit: usize) -> Result<Vec<QueuedEmail>> {
    let mut st = conn.prepare_cached(
        "SELECT id, message_id, to_name, to_addr, subject, body, html, created_at, attempts,
                in_reply_to
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
            in_reply_to: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

pub fn mark_sent(conn: &Connection, id: i64, at: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "UPDATE outbox SET sent_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
        params![id, at.timestamp_millis()],
    )?;
    Ok(())
}

pub fn mark_failed(conn: &Connection, id: i64, error: &str, retry_at: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
        params![id, error, retry_at.timestamp_millis()],
    )?;
    Ok(())
}

/// The relay refused the e-mail for good (5xx): it leaves the queue, kept with the reason.
pub fn mark_undeliverable(
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
pub fn set_aside_since(conn: &Connection, since: i64) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM outbox WHERE failed_at >= ?1 AND cancelled_at IS NULL",
        [since],
        |r| r.get(0),
    )?)
}

/// The outbox in numbers, for `/metrics` and `/readyz`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Waiting for their first or next attempt.
    pub pending: i64,
    pub sent: i64,
    /// Refused for good (not counting those cancelled with their removed contact).
    pub undeliverable: i64,
    /// Waiting, and tried at least once already.
    pub retrying: i64,
}

pub fn counts(conn: &Connection) -> Result<Counts> {
    Ok(conn.query_row(
        "SELECT count(*) FILTER (WHERE sent_at IS NULL AND failed_at IS NULL),
                count(*) FILTER (WHERE sent_at IS NOT NULL),
                count(*) FILTER (WHERE failed_at IS NOT NULL AND cancelled_at IS NULL),
                count(*) FILTER (WHERE sent_at IS NULL AND failed_at IS NULL AND attempts > 0)
         FROM outbox",
        [],
        |r| {
            Ok(Counts {
                pending: r.get(0)?,
                sent: r.get(1)?,
                undeliverable: r.get(2)?,
                retrying: r.get(3)?,
            })
        },
    )?)
}
