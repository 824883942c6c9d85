//! Readings with their storage keys, for FHIR (issue #18): a patient's readings of some
//! metrics in time order, resumable after a key (paging), and one reading by its key.

use super::{ms_to_time, Result};
use crate::db::{params_from_iter, Connection, Value};
use vigil_domain::views::StoredReading;
use vigil_domain::Metric;

/// Where a page of readings resumes: the (time ms, device key, metric code) of its first row.
pub type Cursor = (i64, i64, i64);

const COLUMNS: &str = "r.device, d.id, p.id, r.metric, r.ts, r.value, r.flags, r.ts_received,
                       r.received_at";

fn row(r: &crate::db::Row<'_>) -> crate::db::Result<StoredReading> {
    let mut flags: Vec<String> = r
        .get::<_, Option<String>>(6)?
        .map(|f| f.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    if r.get::<_, bool>(7)? && !flags.iter().any(|f| f == "ts_received") {
        flags.push("ts_received".into());
    }
    Ok(StoredReading {
        device_num: r.get(0)?,
        device_id: r.get(1)?,
        patient_id: r.get(2)?,
        metric: Metric::from_code(r.get(3)?).unwrap_or(Metric::HeartRate),
        ts: ms_to_time(r.get(4)?),
        value: r.get(5)?,
        flags,
        received_at: ms_to_time(r.get(8)?),
    })
}

/// `patient_id`'s readings of `metrics` timed in `[from, to)` (ms; open ends when `None`),
/// from `after` on (inclusive), ordered by (time, device, metric) — so a blood pressure's two
/// halves are neighbours —, at most `limit`.
pub fn readings(
    conn: &Connection,
    patient_id: &str,
    metrics: &[Metric],
    (from, to): (Option<i64>, Option<i64>),
    after: Option<Cursor>,
    limit: usize,
) -> Result<Vec<StoredReading>> {
    if metrics.is_empty() {
        return Ok(Vec::new());
    }
    // The metric codes follow the seven numbered parameters.
    let marks = (0..metrics.len())
        .map(|i| format!("?{}", 8 + i))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {COLUMNS} FROM readings r
         JOIN devices d ON d.num = r.device JOIN patients p ON p.num = r.patient
         WHERE r.device IN (SELECT num FROM devices WHERE patient_id = ?1)
           AND p.id = ?1 AND r.metric IN ({marks})
           AND r.ts >= ?2 AND r.ts < ?3 AND (r.ts, r.device, r.metric) >= (?4, ?5, ?6)
         ORDER BY r.ts, r.device, r.metric LIMIT ?7"
    );
    let (t, d, m) = after.unwrap_or((i64::MIN, i64::MIN, i64::MIN));
    let mut args: Vec<Value> = vec![
        patient_id.to_string().into(),
        from.unwrap_or(i64::MIN).into(),
        to.unwrap_or(i64::MAX).into(),
        t.into(),
        d.into(),
        m.into(),
        (limit as i64).into(),
    ];
    args.extend(metrics.iter().map(|m| Value::from(m.code())));
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(params_from_iter(args), row)?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

/// The readings of `metrics` stored under device key `device` at `ts` (ms): one, or both
/// halves of a blood pressure.
pub fn at(
    conn: &Connection,
    device: i64,
    metrics: &[Metric],
    ts: i64,
) -> Result<Vec<StoredReading>> {
    let mut out = Vec::new();
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM readings r
         JOIN devices d ON d.num = r.device JOIN patients p ON p.num = r.patient
         WHERE r.device = ?1 AND r.metric = ?2 AND r.ts = ?3"
    ))?;
    for m in metrics {
        out.extend(
            st.query_map(crate::params![device, m.code(), ts], row)?
                .collect::<crate::db::Result<Vec<_>>>()?,
        );
    }
    Ok(out)
}

/// The keys of one ingest job's readings for the FHIR push queue (issue #18).
#[derive(Default)]
pub struct Queue {
    keys: String,
    readings: i64,
}

impl Queue {
    pub fn reading(&mut self, device: i64, metric: Metric, ts_ms: i64) {
        if !self.keys.is_empty() {
            self.keys.push(';');
        }
        self.keys
            .push_str(&format!("{device}.{}.{ts_ms}", metric.code()));
        self.readings += 1;
    }

    /// Queues them in the job's transaction (nothing when there were none).
    pub fn enqueue(self, conn: &Connection, now: i64) -> Result<()> {
        if self.readings > 0 {
            conn.prepare_cached(
                "INSERT INTO fhir_queue (keys, readings, created_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(crate::params![self.keys, self.readings, now])?;
        }
        Ok(())
    }
}

/// Queue rows after `after`, oldest first, until they hold `max` readings (at least one row):
/// (last row id, readings' keys).
pub fn next_queued(conn: &Connection, after: i64, max: i64) -> Result<Option<(i64, Vec<Cursor>)>> {
    let mut st = conn.prepare_cached(
        "SELECT id, keys, readings FROM fhir_queue WHERE id > ?1 ORDER BY id LIMIT 1000",
    )?;
    let mut rows = st.query([after])?;
    let (mut last, mut keys) = (None, Vec::new());
    while let Some(r) = rows.next()? {
        let n: i64 = r.get(2)?;
        if last.is_some() && keys.len() as i64 + n > max {
            break;
        }
        last = Some(r.get::<_, i64>(0)?);
        let text: String = r.get(1)?;
        keys.extend(text.split(';').filter_map(|k| {
            let mut p = k.split('.').map(|x| x.parse::<i64>());
            match (p.next(), p.next(), p.next()) {
                (Some(Ok(d)), Some(Ok(m)), Some(Ok(t))) => Some((t, d, m)),
                _ => None,
            }
        }));
    }
    Ok(last.map(|l| (l, keys)))
}

/// The stored readings of `keys` ((time, device, metric)), in (time, device, metric) order;
/// keys whose reading is gone (retention) are skipped.
pub fn by_keys(conn: &Connection, keys: &[Cursor]) -> Result<Vec<StoredReading>> {
    let mut keys = keys.to_vec();
    keys.sort_unstable();
    keys.dedup();
    let mut out = Vec::with_capacity(keys.len());
    for (t, d, m) in keys {
        let Some(metric) = Metric::from_code(m) else {
            continue;
        };
        out.extend(at(conn, d, &[metric], t)?);
    }
    Ok(out)
}

/// The receiving server took everything up to queue row `last`.
pub fn pushed(conn: &Connection, last: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM fhir_queue WHERE id <= ?1")?
        .execute([last])?;
    Ok(())
}

/// The receiving server refused rows `(after, last]` for good: kept aside with its answer.
pub fn quarantine(
    conn: &Connection,
    (after, last): (i64, i64),
    status: u16,
    reason: &str,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO fhir_quarantine (keys, readings, status, reason, at)
         SELECT keys, readings, ?3, ?4, ?5 FROM fhir_queue WHERE id > ?1 AND id <= ?2",
    )?
    .execute(crate::params![after, last, status, reason, now])?;
    conn.prepare_cached("DELETE FROM fhir_queue WHERE id > ?1 AND id <= ?2")?
        .execute([after, last])?;
    Ok(())
}

/// Readings waiting, and when the oldest row was queued.
pub fn backlog(conn: &Connection) -> Result<(i64, Option<i64>)> {
    Ok(conn.query_row(
        "SELECT coalesce(sum(readings), 0), min(created_at) FROM fhir_queue",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patients_readings_come_in_order_and_resume_after_a_cursor() {
        let c = crate::testing::notify_fixture();
        c.execute_batch(
            "INSERT INTO devices (num, id, patient_id, patient_num, kind, secret_hash, created_at)
             VALUES (1, 'bp_1', 'p1', 1, 'bp_monitor', 'x', 0);
             INSERT INTO patients (num, id, name, created_at) VALUES (2, 'p2', 'Other', 0);
             INSERT INTO devices (num, id, patient_id, patient_num, kind, secret_hash, created_at)
             VALUES (2, 'ox_2', 'p2', 2, 'pulse_oximeter', 'x', 0);
             INSERT INTO readings (device, metric, ts, patient, value, received_at, flags, ts_received)
             VALUES (1, 3, 1000, 1, 150, 1001, NULL, 0), (1, 4, 1000, 1, 90, 1001, NULL, 0),
                    (1, 1, 1000, 1, 70, 1001, 'late', 1), (1, 3, 2000, 1, 140, 2001, NULL, 0),
                    (2, 2, 1000, 2, 97, 1001, NULL, 0);",
        )
        .unwrap();
        let all = [Metric::BpSystolic, Metric::BpDiastolic, Metric::HeartRate];
        let r = readings(&c, "p1", &all, (None, None), None, 10).unwrap();
        let keys: Vec<(i64, Metric)> = r
            .iter()
            .map(|x| (x.ts.timestamp_millis(), x.metric))
            .collect();
        assert_eq!(
            keys,
            [
                (1000, Metric::HeartRate),
                (1000, Metric::BpSystolic),
                (1000, Metric::BpDiastolic),
                (2000, Metric::BpSystolic)
            ]
        );
        assert_eq!(r[0].flags, ["late", "ts_received"]);
        assert_eq!(
            (r[1].device_id.as_str(), r[1].patient_id.as_str()),
            ("bp_1", "p1")
        );
        // Resume at the third row; a time window; another patient's readings never come.
        let rest = readings(&c, "p1", &all, (None, None), Some((1000, 1, 4)), 10).unwrap();
        assert_eq!(rest.len(), 2);
        let window = readings(&c, "p1", &all, (Some(1500), Some(2500)), None, 10).unwrap();
        assert_eq!(window.len(), 1);
        assert!(readings(&c, "p1", &[Metric::Spo2], (None, None), None, 10)
            .unwrap()
            .is_empty());
        let bp = at(&c, 1, &[Metric::BpSystolic, Metric::BpDiastolic], 1000).unwrap();
        assert_eq!(bp.len(), 2);

        // The push queue: one row per job, read back up to a size, then gone once pushed.
        let mut q = Queue::default();
        q.reading(1, Metric::BpSystolic, 1000);
        q.reading(1, Metric::BpDiastolic, 1000);
        q.enqueue(&c, 5).unwrap();
        let mut q = Queue::default();
        q.reading(1, Metric::HeartRate, 1000);
        q.enqueue(&c, 6).unwrap();
        Queue::default().enqueue(&c, 7).unwrap();
        assert_eq!(backlog(&c).unwrap(), (3, Some(5)));
        let (last, keys) = next_queued(&c, 0, 2).unwrap().unwrap();
        assert_eq!((last, keys.len()), (1, 2), "the first row fills the Bundle");
        let rows = by_keys(&c, &keys).unwrap();
        assert_eq!(rows.len(), 2);
        pushed(&c, last).unwrap();
        let (last, keys) = next_queued(&c, 0, 100).unwrap().unwrap();
        assert_eq!((last, keys), (2, vec![(1000, 1, 1)]));
        quarantine(&c, (0, last), 400, "refused", 8).unwrap();
        assert_eq!(backlog(&c).unwrap(), (0, None));
        assert!(next_queued(&c, 0, 100).unwrap().is_none());
    }
}
