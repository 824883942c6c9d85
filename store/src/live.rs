//! What every gateway's commits tell the others' dashboards (issue #20). With a shared
//! PostgreSQL store a clinician may watch gateway B while gateway A stores the readings: each
//! write job that stores readings or changes alerts sends a `NOTIFY` on [`CHANNEL`] inside its
//! transaction — PostgreSQL delivers it only if, and when, the transaction commits — and every
//! gateway `LISTEN`s ([`Listener`]) and puts what the others committed on its own live feed.
//! SQLite: one gateway, nothing to tell.
//!
//! Readings are told as the latest value per patient and metric of the job (what the ward view
//! shows), alerts by id (the listener reads them back from the store).

use crate::db::{Connection, Dialect};
use crate::Result;
use fallible_iterator::FallibleIterator;
use serde::{Deserialize, Serialize};

pub const CHANNEL: &str = "vigil_live";
/// Entries per notification: PostgreSQL's payload limit is 8 000 bytes.
const PER_NOTICE: usize = 64;

/// One notification's payload.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Committed {
    /// The gateway that committed it ([`crate::node_id`]); it told its own dashboards already.
    pub origin: String,
    /// (patient id, metric code, value, time in ms).
    #[serde(default)]
    pub readings: Vec<(String, i64, f64, i64)>,
    /// Alerts opened, changed or resolved.
    #[serde(default)]
    pub alerts: Vec<i64>,
}

/// Tells the other gateways, when the transaction commits, about these readings and alerts.
pub fn tell(conn: &Connection, readings: &[(String, i64, f64, i64)], alerts: &[i64]) -> Result<()> {
    if conn.dialect() != Dialect::Postgres || (readings.is_empty() && alerts.is_empty()) {
        return Ok(());
    }
    let mut st = conn.prepare_cached("SELECT 1 FROM (SELECT pg_notify(?1, ?2)) n")?;
    let mut send = |c: &Committed| -> Result<()> {
        let payload = serde_json::to_string(c).expect("plain data");
        st.query_row(crate::db::params![CHANNEL, payload], |_| Ok(()))?;
        Ok(())
    };
    for chunk in readings.chunks(PER_NOTICE) {
        send(&Committed {
            origin: crate::node_id().to_string(),
            readings: chunk.to_vec(),
            alerts: Vec::new(),
        })?;
    }
    for chunk in alerts.chunks(PER_NOTICE * 4) {
        send(&Committed {
            origin: crate::node_id().to_string(),
            readings: Vec::new(),
            alerts: chunk.to_vec(),
        })?;
    }
    Ok(())
}

/// A connection that `LISTEN`s on [`CHANNEL`]. Blocking: run it on a thread of its own.
pub struct Listener {
    client: postgres::Client,
}

impl Listener {
    pub fn connect(url: &str) -> Result<Listener> {
        let mut client = crate::db::postgres_client(url)?;
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .map_err(crate::db::Error::from)?;
        Ok(Listener { client })
    }

    /// The next notification from another gateway, waiting at most `wait`; `None` when none
    /// came. Payloads that do not parse are skipped.
    pub fn next(&mut self, wait: std::time::Duration) -> Result<Option<Committed>> {
        let mut n = self.client.notifications();
        let mut it = n.timeout_iter(wait);
        while let Some(note) = it.next().map_err(crate::db::Error::from)? {
            match serde_json::from_str::<Committed>(note.payload()) {
                Ok(c) if c.origin != crate::node_id() => return Ok(Some(c)),
                Ok(_) => continue,
                Err(e) => tracing::warn!(error = %e, "unreadable live notification"),
            }
        }
        Ok(None)
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PostgreSQL (VIGIL_TEST_POSTGRES): what a transaction tells arrives after it commits, and
    /// nothing of a rolled-back one.
    #[test]
    fn the_others_hear_of_commits_only() {
        if crate::testing::postgres_server().is_none() {
            return;
        }
        let c = crate::testing::connection();
        let Some(crate::Location::Postgres(url)) = crate::testing::last_location() else {
            unreachable!()
        };
        let mut l = Listener::connect(&url).unwrap();
        // As another gateway would: an origin not ours.
        let payload = serde_json::to_string(&Committed {
            origin: "other".into(),
            readings: vec![("p1".into(), 1, 91.0, 5)],
            alerts: vec![7],
        })
        .unwrap();
        let notify = |c: &Connection| {
            c.query_row(
                "SELECT 1 FROM (SELECT pg_notify(?1, ?2)) n",
                crate::db::params![CHANNEL, payload],
                |_| Ok(()),
            )
            .unwrap()
        };
        c.execute_batch("BEGIN").unwrap();
        notify(&c);
        c.execute_batch("ROLLBACK").unwrap();
        let wait = std::time::Duration::from_millis(300);
        assert_eq!(l.next(wait).unwrap(), None, "rolled back: nothing");
        c.execute_batch("BEGIN").unwrap();
        notify(&c);
        assert_eq!(l.next(wait).unwrap(), None, "not before the commit");
        c.execute_batch("COMMIT").unwrap();
        let got = l.next(std::time::Duration::from_secs(5)).unwrap().unwrap();
        assert_eq!(got.readings, vec![("p1".to_string(), 1, 91.0, 5)]);
        assert_eq!(got.alerts, vec![7]);
        // Our own: skipped.
        tell(&c, &[("p1".into(), 1, 92.0, 6)], &[]).unwrap();
        assert_eq!(l.next(wait).unwrap(), None);
    }
}
