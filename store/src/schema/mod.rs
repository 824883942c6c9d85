//! The schema. Times are Unix epoch milliseconds (UTC) in INTEGER (PostgreSQL: BIGINT)
//! columns: compact, fast to range-scan, and converted to RFC 3339 only at the API.
//!
//! Migrations are numbered; [`migrate`] brings any older store up to date, so a data directory
//! (or database) from an earlier release keeps working. SQLite keeps the number in
//! `user_version`; PostgreSQL in `vigil_schema`.

mod versions;

use crate::db::Connection;
pub(crate) use versions::MIGRATIONS;

/// Brings the store up to date, whichever back-end it is on.
pub fn migrate(conn: &mut Connection) -> crate::db::Result<()> {
    if let Some(c) = conn.as_sqlite_mut() {
        return Ok(migrate_sqlite(c)?);
    }
    migrate_postgres(conn)
}

/// PostgreSQL: one migration per transaction, under a transaction-scoped advisory lock, so
/// gateways starting together against a new database take turns (as SQLite's IMMEDIATE
/// transactions make processes do below). DDL is transactional in PostgreSQL: a step that
/// fails leaves nothing behind.
fn migrate_postgres(conn: &Connection) -> crate::db::Result<()> {
    loop {
        conn.execute_batch(
            "BEGIN;
             SELECT pg_advisory_xact_lock(7420020);
             CREATE TABLE IF NOT EXISTS vigil_schema (version BIGINT NOT NULL);",
        )?;
        let step = (|| {
            let current: i64 = conn.query_row(
                "SELECT COALESCE(MAX(version), 0) FROM vigil_schema",
                [],
                |r| r.get(0),
            )?;
            let Some(sql) = MIGRATIONS.get(current.max(0) as usize) else {
                return Ok(false);
            };
            conn.execute_batch(&crate::db::postgres_ddl(sql))?;
            conn.execute("DELETE FROM vigil_schema", [])?;
            conn.execute(
                "INSERT INTO vigil_schema (version) VALUES (?1)",
                [current.max(0) + 1],
            )?;
            Ok(true)
        })();
        match step {
            Ok(more) => {
                conn.execute_batch("COMMIT")?;
                if !more {
                    return Ok(());
                }
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
}

/// Brings the file up to date, one migration per transaction. Each step reads the version
/// inside an IMMEDIATE transaction (the write lock first), so processes opening a new file at
/// once — admin commands in parallel, or one beside the starting server — take turns instead
/// of both creating the same tables (found by `scripts/bench-dashboard.sh`).
fn migrate_sqlite(conn: &mut rusqlite::Connection) -> rusqlite::Result<()> {
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let Some(sql) = MIGRATIONS.get(current.max(0) as usize) else {
            return tx.commit();
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", current.max(0) + 1)?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// Several connections migrating one new file at once: each step happens once.
    #[test]
    fn parallel_migrations_take_turns() {
        let dir = std::env::temp_dir().join(format!("vigil-mig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        let _ = std::fs::remove_file(&path);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut c = Connection::open(&path).unwrap();
                    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
                    migrate_sqlite(&mut c)
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        let c = Connection::open(&path).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Issue #17: alerts active at the upgrade to episodes become one active episode per
    /// patient, with the worst severity; resolved ones belong to none.
    #[test]
    fn active_alerts_become_one_episode_per_patient_at_the_upgrade() {
        let mut c = Connection::open_in_memory().unwrap();
        for (v, sql) in MIGRATIONS[..15].iter().enumerate() {
            c.execute_batch(sql).unwrap();
            c.pragma_update(None, "user_version", v as i64 + 1).unwrap();
        }
        c.execute_batch(
            "INSERT INTO patients (num, id, name, created_at) VALUES
               (1, 'a', 'A', 0), (2, 'b', 'B', 0);
             INSERT INTO alerts (id, patient_id, rule, condition, severity, state, opened_at,
                                 message, last_at) VALUES
               (1, 'a', 'spo2_low', 'spo2_low', 'red', 'open', 50, 'm', 50),
               (2, 'a', 'rr_high', 'rr_high', 'amber', 'acknowledged', 20, 'm', 20),
               (3, 'a', 'old', 'old', 'red', 'resolved', 10, 'm', 10),
               (4, 'b', 'temp', 'temp', 'yellow', 'open', 30, 'm', 30);",
        )
        .unwrap();
        migrate_sqlite(&mut c).unwrap();
        let episodes: Vec<(String, i64, String, bool)> = c
            .prepare("SELECT patient_id, opened_at, severity, ended_at IS NULL FROM episodes ORDER BY patient_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            episodes,
            [
                ("a".to_string(), 20, "red".to_string(), true),
                ("b".to_string(), 30, "yellow".to_string(), true)
            ]
        );
        let linked: Vec<(i64, Option<i64>)> = c
            .prepare("SELECT a.id, e.id FROM alerts a LEFT JOIN episodes e ON e.id = a.episode_id ORDER BY a.id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            linked[0].1, linked[1].1,
            "one episode for a's two active alerts"
        );
        assert!(linked[0].1.is_some());
        assert_eq!(linked[2].1, None, "resolved before episodes existed");
        assert!(linked[3].1.is_some() && linked[3].1 != linked[0].1);
    }
}
