//! What notification policy (`vigil-notify`) keeps, as rows: each red alert's escalation
//! schedule, digest items waiting for their e-mail, and "I'm handling it" links (stored as
//! hashes) — and [`Rows`], its `NotifyStore` on a transaction. Every function runs inside the
//! caller's transaction; no decisions are taken here.

use super::Result;
use crate::db::{params, Connection, OptionalExtension};
use vigil_notify::Link;

/// Sets the escalation step an alert is at and when the next one is due.
pub fn schedule(conn: &Connection, alert_id: i64, stage: u32, next_at: i64) -> Result<()> {
    conn.execute(
        "UPDATE alerts SET notify_stage = ?2, next_notify_at = ?3 WHERE id = ?1",
        params![alert_id, stage, next_at],
    )?;
    Ok(())
}

/// Ends an alert's escalation.
pub fn stop(conn: &Connection, alert_id: i64) -> Result<()> {
    conn.execute(
        "UPDATE alerts SET next_notify_at = NULL WHERE id = ?1",
        [alert_id],
    )?;
    Ok(())
}

/// (alert, its next step) for every escalation step due at `now`, the most overdue first.
pub fn due_steps(conn: &Connection, now: i64) -> Result<Vec<(i64, u32)>> {
    let mut st = conn.prepare_cached(
        "SELECT id, notify_stage FROM alerts
         WHERE next_notify_at IS NOT NULL AND next_notify_at <= ?1 ORDER BY next_notify_at",
    )?;
    let rows = st.query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

/// Whether any escalation step is due at `now`, any digest item or any conversation update
/// waits (a read, so an idle loop never takes the writer).
pub fn anything_due(conn: &Connection, now: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM alerts WHERE next_notify_at <= ?1)
                 OR EXISTS (SELECT 1 FROM digest_items)
                 OR EXISTS (SELECT 1 FROM episode_threads WHERE pending = 1)",
        )?
        .query_row([now], |r| r.get(0))?)
}

/// An alert of episode `episode_id` whose escalation is running, if one.
pub fn escalating_in(conn: &Connection, episode_id: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM alerts WHERE episode_id = ?1 AND next_notify_at IS NOT NULL
             ORDER BY id LIMIT 1",
        )?
        .query_row([episode_id], |r| r.get(0))
        .optional()?)
}

/// Alert `alert_id` is about to stop (its rule's clear condition held) while it carries its
/// episode's escalation: the schedule moves, at the same step, to another unacknowledged red
/// alert of the episode, so the reminders go on while any red sign is open and nobody took
/// it on (issue #17: one escalation per episode). Which alert took it, if one did.
pub fn hand_on(conn: &Connection, alert_id: i64) -> Result<Option<i64>> {
    let row = conn
        .prepare_cached(
            "SELECT episode_id, notify_stage, next_notify_at FROM alerts
             WHERE id = ?1 AND episode_id IS NOT NULL AND next_notify_at IS NOT NULL",
        )?
        .query_row([alert_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .optional()?;
    let Some((episode, stage, next_at)) = row else {
        return Ok(None);
    };
    let heir: Option<i64> = conn
        .prepare_cached(
            "SELECT id FROM alerts WHERE episode_id = ?1 AND id <> ?2 AND state = 'open'
               AND severity = 'red' ORDER BY opened_at, id LIMIT 1",
        )?
        .query_row(params![episode, alert_id], |r| r.get(0))
        .optional()?;
    if let Some(heir) = heir {
        schedule(conn, heir, stage, next_at)?;
    }
    Ok(heir)
}

/// Ends the escalation of every alert of episode `episode_id` (a person took it on).
pub fn stop_episode(conn: &Connection, episode_id: i64) -> Result<()> {
    conn.prepare_cached("UPDATE alerts SET next_notify_at = NULL WHERE episode_id = ?1")?
        .execute([episode_id])?;
    Ok(())
}

/// Each contact's conversation about episode `episode_id`, by contact id.
pub fn threads(conn: &Connection, episode_id: i64) -> Result<Vec<(i64, vigil_notify::Thread)>> {
    let mut st = conn.prepare_cached(
        "SELECT contact_id, message_id, subject, last_at, pending, responded_at FROM episode_threads
         WHERE episode_id = ?1 ORDER BY contact_id",
    )?;
    let rows = st.query_map([episode_id], |r| {
        Ok((
            r.get(0)?,
            vigil_notify::Thread {
                message_id: r.get(1)?,
                subject: r.get(2)?,
                last_at: r.get(3)?,
                pending: r.get(4)?,
                responded_at: r.get(5)?,
            },
        ))
    })?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

/// Starts or updates a contact's conversation about an episode.
pub fn save_thread(
    conn: &Connection,
    episode_id: i64,
    contact_id: i64,
    t: &vigil_notify::Thread,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO episode_threads (episode_id, contact_id, message_id, subject, started_at,
                                      last_at, pending)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)
         ON CONFLICT (episode_id, contact_id) DO UPDATE SET last_at = ?5, pending = ?6",
    )?
    .execute(params![
        episode_id,
        contact_id,
        t.message_id,
        t.subject,
        t.last_at,
        t.pending
    ])?;
    Ok(())
}

/// Records a contact's "I'm handling it" for an episode (the first answer counts).
pub fn respond(conn: &Connection, episode_id: i64, contact_id: i64, at: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE episode_threads SET responded_at = coalesce(responded_at, ?3)
         WHERE episode_id = ?1 AND contact_id = ?2",
    )?
    .execute(params![episode_id, contact_id, at])?;
    Ok(())
}

/// (episode, contact) of every conversation with an update waiting.
pub fn pending_threads(conn: &Connection) -> Result<Vec<(i64, i64)>> {
    let mut st = conn.prepare_cached(
        "SELECT episode_id, contact_id FROM episode_threads WHERE pending = 1
         ORDER BY episode_id, contact_id",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

/// Stores an "I'm handling it" link by the hash of its token.
pub fn insert_link(
    conn: &Connection,
    token_hash: &str,
    alert_id: i64,
    contact_id: i64,
    now: i64,
    expires_at: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO ack_links (token_hash, alert_id, contact_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![token_hash, alert_id, contact_id, now, expires_at],
    )?;
    Ok(())
}

/// The link with this token hash, unless unknown or its contact was removed.
pub fn link(conn: &Connection, token_hash: &str) -> Result<Option<Link>> {
    Ok(conn
        .prepare_cached(
            "SELECT l.alert_id, c.name, c.lang, l.expires_at, l.used_at, l.contact_id
             FROM ack_links l JOIN contacts c ON c.id = l.contact_id
             WHERE l.token_hash = ?1 AND c.removed_at IS NULL",
        )?
        .query_row([token_hash], |r| {
            Ok(Link {
                alert_id: r.get(0)?,
                contact_name: r.get(1)?,
                lang: r.get::<_, String>(2)?.parse().unwrap_or_default(),
                expires_at: r.get(3)?,
                used_at: r.get(4)?,
                contact_id: r.get(5)?,
            })
        })
        .optional()?)
}

/// Marks a link used.
pub fn burn_link(conn: &Connection, token_hash: &str, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE ack_links SET used_at = ?2 WHERE token_hash = ?1",
        params![token_hash, now],
    )?;
    Ok(())
}

/// An alert waits for a contact's next digest.
pub fn add_digest_item(
    conn: &Connection,
    contact_id: i64,
    patient_id: &str,
    alert_id: i64,
    now: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO digest_items (contact_id, patient_id, alert_id, created_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![contact_id, patient_id, alert_id, now],
    )?;
    Ok(())
}

/// Every (contact, patient) with digest items waiting.
pub fn digest_groups(conn: &Connection) -> Result<Vec<(i64, String)>> {
    let mut st = conn.prepare_cached(
        "SELECT DISTINCT contact_id, patient_id FROM digest_items ORDER BY contact_id",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

/// Drops every digest item of a contact (the contact is gone).
pub fn drop_digests_of(conn: &Connection, contact_id: i64) -> Result<()> {
    conn.execute(
        "DELETE FROM digest_items WHERE contact_id = ?1",
        [contact_id],
    )?;
    Ok(())
}

/// When a contact was last sent a digest about a patient.
pub fn digest_last_sent(
    conn: &Connection,
    contact_id: i64,
    patient_id: &str,
) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT sent_at FROM digest_sent WHERE contact_id = ?1 AND patient_id = ?2",
        )?
        .query_row(params![contact_id, patient_id], |r| r.get(0))
        .optional()?)
}

/// The alerts waiting for a contact's digest about a patient, oldest first.
pub fn digest_alerts(conn: &Connection, contact_id: i64, patient_id: &str) -> Result<Vec<i64>> {
    let mut st = conn.prepare_cached(
        "SELECT DISTINCT alert_id FROM digest_items
         WHERE contact_id = ?1 AND patient_id = ?2 ORDER BY alert_id",
    )?;
    let rows = st.query_map(params![contact_id, patient_id], |r| r.get(0))?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

/// A contact's digest about a patient is done: its items go; `sent_at`, when a digest went,
/// is kept as the last one sent.
pub fn digest_done(
    conn: &Connection,
    contact_id: i64,
    patient_id: &str,
    sent_at: Option<i64>,
) -> Result<()> {
    conn.execute(
        "DELETE FROM digest_items WHERE contact_id = ?1 AND patient_id = ?2",
        params![contact_id, patient_id],
    )?;
    let Some(now) = sent_at else {
        return Ok(());
    };
    conn.execute(
        "INSERT INTO digest_sent (contact_id, patient_id, sent_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (contact_id, patient_id) DO UPDATE SET sent_at = excluded.sent_at",
        params![contact_id, patient_id, now],
    )?;
    Ok(())
}

/// Notification policy's view of a transaction (`vigil_notify::NotifyStore`).
pub struct Rows<'c>(pub &'c Connection);

impl vigil_notify::NotifyStore for Rows<'_> {
    type Error = crate::StoreError;

    fn alert(&self, id: i64) -> Result<Option<vigil_domain::Alert>> {
        crate::alerts::get(self.0, id)
    }
    fn contacts(&self, patient_id: &str) -> Result<Vec<vigil_domain::Contact>> {
        crate::registry::contacts(self.0, patient_id)
    }
    fn emails_for(&self, alert_id: i64, contact_id: i64) -> Result<u32> {
        crate::outbox::count_for(self.0, alert_id, contact_id)
    }
    fn queue_email(&self, e: &vigil_notify::NewEmail<'_>, now: i64) -> Result<()> {
        crate::outbox::insert(self.0, e, now)
    }
    fn delivery_of(&self, alert_id: i64) -> Result<(i64, i64)> {
        crate::outbox::delivery_of(self.0, alert_id)
    }
    fn schedule(&self, alert_id: i64, stage: u32, next_at: i64) -> Result<()> {
        schedule(self.0, alert_id, stage, next_at)
    }
    fn stop(&self, alert_id: i64) -> Result<()> {
        stop(self.0, alert_id)
    }
    fn due_steps(&self, now: i64) -> Result<Vec<(i64, u32)>> {
        due_steps(self.0, now)
    }
    fn insert_link(
        &self,
        token_hash: &str,
        alert_id: i64,
        contact_id: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        insert_link(self.0, token_hash, alert_id, contact_id, now, expires_at)
    }
    fn link(&self, token_hash: &str) -> Result<Option<Link>> {
        link(self.0, token_hash)
    }
    fn burn_link(&self, token_hash: &str, now: i64) -> Result<()> {
        burn_link(self.0, token_hash, now)
    }
    fn add_digest_item(
        &self,
        contact_id: i64,
        patient_id: &str,
        alert_id: i64,
        now: i64,
    ) -> Result<()> {
        add_digest_item(self.0, contact_id, patient_id, alert_id, now)
    }
    fn digest_groups(&self) -> Result<Vec<(i64, String)>> {
        digest_groups(self.0)
    }
    fn drop_digests_of(&self, contact_id: i64) -> Result<()> {
        drop_digests_of(self.0, contact_id)
    }
    fn digest_last_sent(&self, contact_id: i64, patient_id: &str) -> Result<Option<i64>> {
        digest_last_sent(self.0, contact_id, patient_id)
    }
    fn digest_alerts(&self, contact_id: i64, patient_id: &str) -> Result<Vec<i64>> {
        digest_alerts(self.0, contact_id, patient_id)
    }
    fn digest_done(&self, contact_id: i64, patient_id: &str, sent_at: Option<i64>) -> Result<()> {
        digest_done(self.0, contact_id, patient_id, sent_at)
    }
    fn episode_of(&self, alert_id: i64) -> Result<Option<i64>> {
        crate::episodes::of_alert(self.0, alert_id)
    }
    fn episode_alerts(&self, episode_id: i64) -> Result<Vec<vigil_domain::Alert>> {
        crate::episodes::alerts(self.0, episode_id)
    }
    fn escalating_in(&self, episode_id: i64) -> Result<Option<i64>> {
        escalating_in(self.0, episode_id)
    }
    fn threads(&self, episode_id: i64) -> Result<Vec<(i64, vigil_notify::Thread)>> {
        threads(self.0, episode_id)
    }
    fn save_thread(
        &self,
        episode_id: i64,
        contact_id: i64,
        t: &vigil_notify::Thread,
    ) -> Result<()> {
        save_thread(self.0, episode_id, contact_id, t)
    }
    fn pending_threads(&self) -> Result<Vec<(i64, i64)>> {
        pending_threads(self.0)
    }
    fn station_phone(&self, patient_id: &str) -> Result<Option<String>> {
        crate::registry::station_phone(self.0, patient_id)
    }
    fn family_note(&self, episode_id: i64) -> Result<Option<(String, String)>> {
        crate::episodes::family_note(self.0, episode_id)
    }
    fn respond(&self, episode_id: i64, contact_id: i64, at: i64) -> Result<()> {
        respond(self.0, episode_id, contact_id, at)
    }
}

#[cfg(test)]
mod tests;
