//! Leases (issue #20): each background duty of the gateways — the outbox, escalation, the fall
//! window, the missing-data watch, retention, the forwarders — is done by one gateway at a
//! time, the holder of its lease. The holder renews it while alive; once it has expired (the
//! holder died or lost the database) the next gateway to ask takes it over. One statement
//! decides, so two gateways asking at once cannot both win.

use crate::db::{params, Connection, OptionalExtension};
use crate::Result;

/// Takes or renews lease `name` for `holder` until `now + ttl_ms`; whether `holder` has it.
/// A lease another holder keeps renewing is never taken.
pub fn hold(conn: &Connection, name: &str, holder: &str, now: i64, ttl_ms: i64) -> Result<bool> {
    let won: Option<String> = conn
        .query_row(
            "INSERT INTO leases (name, holder, expires_at, since) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET
               since = CASE WHEN leases.holder = excluded.holder THEN leases.since
                            ELSE excluded.since END,
               holder = excluded.holder,
               expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder OR leases.expires_at < excluded.since
             RETURNING holder",
            params![name, holder, now + ttl_ms, now],
            |r| r.get(0),
        )
        .optional()?;
    Ok(won.is_some())
}

/// Gives lease `name` up if `holder` has it (a clean shutdown: the next gateway need not wait
/// for it to expire).
pub fn release(conn: &Connection, name: &str, holder: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
        params![name, holder],
    )?;
    Ok(())
}

/// (name, holder, expires at) of every lease, by name.
pub fn all(conn: &Connection) -> Result<Vec<(String, String, i64)>> {
    let mut st = conn.prepare("SELECT name, holder, expires_at FROM leases ORDER BY name")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_until_its_lease_expires() {
        let c = crate::testing::connection();
        assert!(hold(&c, "outbox", "a", 1_000, 10_000).unwrap());
        assert!(
            !hold(&c, "outbox", "b", 2_000, 10_000).unwrap(),
            "a holds it"
        );
        assert!(
            hold(&c, "escalation", "b", 2_000, 10_000).unwrap(),
            "another duty"
        );
        // a renews; b still cannot take it.
        assert!(hold(&c, "outbox", "a", 9_000, 10_000).unwrap());
        assert!(
            !hold(&c, "outbox", "b", 12_000, 10_000).unwrap(),
            "renewed until 19 000"
        );
        // a stops renewing (died): b takes over once it has expired.
        assert!(hold(&c, "outbox", "b", 19_001, 10_000).unwrap());
        assert!(
            !hold(&c, "outbox", "a", 19_500, 10_000).unwrap(),
            "a lost it"
        );
        let all = all(&c).unwrap();
        assert_eq!(
            all,
            vec![
                ("escalation".into(), "b".into(), 12_000),
                ("outbox".into(), "b".into(), 29_001)
            ]
        );
        release(&c, "outbox", "a").unwrap();
        assert_eq!(super::all(&c).unwrap().len(), 2, "only the holder releases");
        release(&c, "outbox", "b").unwrap();
        assert!(
            hold(&c, "outbox", "a", 20_000, 10_000).unwrap(),
            "free at once"
        );
    }
}
