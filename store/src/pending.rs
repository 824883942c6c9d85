//! Events waiting out a cancel window before they raise an alert (schema v5): a `fall` waits
//! `rules.fall_cancel_seconds` for the device's `ok` ("I'm OK"), because fall detectors have
//! false alarms and the wearer can say so (clinical reference §7). The fall itself is recorded
//! in `events` at once either way.

use super::Result;
use crate::db::{params, Connection, OptionalExtension};
use vigil_domain::EventKind;

/// A deferred event that is due.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub event_id: i64,
    pub patient_id: String,
    pub kind: EventKind,
    pub ts: i64,
    /// The device that sent it (issue #21: the alert names it).
    pub device_id: Option<String>,
}

/// Defers the event just stored as `event_id` until `due_at` (epoch ms).
pub fn defer(
    conn: &Connection,
    event_id: i64,
    patient_id: &str,
    kind: EventKind,
    ts: i64,
    due_at: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO pending_events (event_id, patient_id, kind, ts, due_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![event_id, patient_id, kind.as_str(), ts, due_at])?;
    Ok(())
}

/// The patient said "I'm OK" at `ok_ts`: the falls waiting before then are cancelled (they stay
/// in `events`). Returns how many.
pub fn cancel_falls(conn: &Connection, patient_id: &str, ok_ts: i64) -> Result<usize> {
    // Marked on the event first (issue #21: a cancelled fall shows on the patient's timeline).
    conn.prepare_cached(
        "UPDATE events SET cancelled_at = ?2 WHERE id IN
             (SELECT event_id FROM pending_events
              WHERE patient_id = ?1 AND kind = 'fall' AND ts <= ?2)",
    )?
    .execute(params![patient_id, ok_ts])?;
    Ok(conn
        .prepare_cached(
            "DELETE FROM pending_events WHERE patient_id = ?1 AND kind = 'fall' AND ts <= ?2",
        )?
        .execute(params![patient_id, ok_ts])?)
}

/// Deferred events due at `now` (oldest first), at most `limit`.
pub fn due(conn: &Connection, now: i64, limit: usize) -> Result<Vec<Due>> {
    let mut st = conn.prepare_cached(
        "SELECT p.event_id, p.patient_id, p.kind, p.ts, e.device_id FROM pending_events p
         LEFT JOIN events e ON e.id = p.event_id
         WHERE p.due_at <= ?1 ORDER BY p.due_at LIMIT ?2",
    )?;
    let rows = st.query_map(params![now, limit as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Option<String>>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (event_id, patient_id, kind, ts, device_id) = row?;
        // A kind this version does not know (written by a newer one) is left alone.
        if let Ok(kind) = kind.parse() {
            out.push(Due {
                event_id,
                patient_id,
                kind,
                ts,
                device_id,
            });
        }
    }
    Ok(out)
}

/// Removes a deferred event once its alert is raised.
pub fn forget(conn: &Connection, event_id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM pending_events WHERE event_id = ?1")?
        .execute([event_id])?;
    Ok(())
}

/// When the next deferred event is due, if any.
pub fn next_due(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn
        .query_row("SELECT min(due_at) FROM pending_events", [], |r| r.get(0))
        .optional()?
        .flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ok_cancels_the_earlier_falls_of_its_patient_only() {
        let c = crate::testing::connection();
        c.execute_batch(
            "INSERT INTO events (id, patient_id, device_id, kind, ts, received_at) VALUES
               (1, 'an', 'd', 'fall', 1000, 1000), (2, 'binh', 'e', 'fall', 1000, 1000),
               (3, 'an', 'd', 'fall', 9000, 9000);",
        )
        .unwrap();
        defer(&c, 1, "an", EventKind::Fall, 1000, 31_000).unwrap();
        defer(&c, 2, "binh", EventKind::Fall, 1000, 31_000).unwrap();
        defer(&c, 3, "an", EventKind::Fall, 9000, 39_000).unwrap();
        assert_eq!(next_due(&c).unwrap(), Some(31_000));
        assert!(due(&c, 30_999, 10).unwrap().is_empty());
        // "I'm OK" at 5 s cancels An's first fall, not the later one nor Bình's.
        assert_eq!(cancel_falls(&c, "an", 5000).unwrap(), 1);
        let d = due(&c, 40_000, 10).unwrap();
        let ids: Vec<i64> = d.iter().map(|d| d.event_id).collect();
        assert_eq!(ids, [2, 3]);
        forget(&c, 2).unwrap();
        forget(&c, 3).unwrap();
        assert_eq!(next_due(&c).unwrap(), None);
    }
}
