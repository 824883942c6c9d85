//! Readings with their storage keys, for FHIR (issue #18): a patient's readings of some
//! metrics in time order, resumable after a key (paging), and one reading by its key.

use super::{ms_to_time, Result};
use rusqlite::{params_from_iter, types::Value, Connection};
use vigil_domain::views::StoredReading;
use vigil_domain::Metric;

/// Where a page of readings resumes: the (time ms, device key, metric code) of its first row.
pub type Cursor = (i64, i64, i64);

const COLUMNS: &str = "r.device, d.id, p.id, r.metric, r.ts, r.value, r.flags, r.ts_received,
                       r.received_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredReading> {
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
    Ok(rows.collect::<rusqlite::Result<_>>()?)
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
            st.query_map(rusqlite::params![device, m.code(), ts], row)?
                .collect::<rusqlite::Result<Vec<_>>>()?,
        );
    }
    Ok(out)
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
    }
}
