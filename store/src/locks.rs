//! Per-patient serialisation across gateways (issue #20). Within one gateway the writer
//! thread runs one transaction at a time; gateways sharing PostgreSQL run theirs at once, and
//! two of them evaluating one patient's rules, NEWS2, episodes and confirmations together
//! could each miss what the other is writing. A transaction that works on a patient first
//! takes that patient's advisory lock (held until it commits or rolls back), so the second
//! one waits and then reads what the first committed. SQLite needs none: one writer.
//!
//! Locks are taken in patient-id order within a call, so two gateways locking overlapping
//! sets cannot deadlock on them; should transactions still meet in a cycle (several jobs in
//! one group commit), PostgreSQL aborts one and its messages are redelivered.

use crate::db::{Connection, Dialect};
use crate::Result;

/// The first key of the two-key advisory locks Vigil takes: patients (any number, "VIGL").
const PATIENTS: i32 = 0x5649_474C;

/// Locks these patients (by public id) until the transaction ends.
pub fn patients<'a>(conn: &Connection, ids: impl IntoIterator<Item = &'a str>) -> Result<()> {
    if conn.dialect() != Dialect::Postgres {
        return Ok(());
    }
    let mut ids: Vec<&str> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    let mut st =
        conn.prepare_cached("SELECT 1 FROM (SELECT pg_advisory_xact_lock(?1, hashtext(?2))) l")?;
    for id in ids {
        st.query_row(crate::db::params![PATIENTS, id], |_| Ok(()))?;
    }
    Ok(())
}

/// Locks the patient of alert `id` (no-op when there is no such alert).
pub fn alert_patient(conn: &Connection, id: i64) -> Result<()> {
    patient_of(conn, "SELECT patient_id FROM alerts WHERE id = ?1", id)
}

/// Locks the patient of episode `id` (no-op when there is no such episode).
pub fn episode_patient(conn: &Connection, id: i64) -> Result<()> {
    patient_of(conn, "SELECT patient_id FROM episodes WHERE id = ?1", id)
}

/// Locks the patient `sql` finds for `id`.
fn patient_of(conn: &Connection, sql: &str, id: i64) -> Result<()> {
    if conn.dialect() != Dialect::Postgres {
        return Ok(());
    }
    let p: Option<String> =
        crate::db::OptionalExtension::optional(conn.query_row(sql, [id], |r| r.get(0)))?;
    patients(conn, p.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With PostgreSQL (VIGIL_TEST_POSTGRES), a second transaction locking the same patient
    /// waits for the first to commit; another patient does not wait.
    #[test]
    fn a_patient_is_worked_on_by_one_transaction_at_a_time() {
        let Some(_) = crate::testing::postgres_server() else {
            return; // SQLite: one writer, nothing to lock
        };
        let a = crate::testing::connection();
        let url = match crate::testing::last_location() {
            Some(crate::Location::Postgres(u)) => u,
            _ => unreachable!("a PostgreSQL test database"),
        };
        let b = Connection::connect_postgres(&url).unwrap();
        a.execute_batch("BEGIN").unwrap();
        patients(&a, ["p1", "p2"]).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            b.execute_batch("BEGIN").unwrap();
            patients(&b, ["p3"]).unwrap();
            tx.send("p3").unwrap();
            patients(&b, ["p2"]).unwrap();
            tx.send("p2").unwrap();
            b.execute_batch("COMMIT").unwrap();
        });
        assert_eq!(rx.recv().unwrap(), "p3", "another patient does not wait");
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(300))
                .is_err(),
            "p2 waits for the first transaction"
        );
        a.execute_batch("COMMIT").unwrap();
        assert_eq!(rx.recv().unwrap(), "p2");
        waiter.join().unwrap();
    }
}
