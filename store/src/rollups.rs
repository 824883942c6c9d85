//! Rollups and retention (issue #4).
//!
//! Rollups: per patient, metric and minute or hour, the count, sum, minimum and maximum of the
//! readings stored. The write job that stores readings adds the new ones (never a redelivered
//! duplicate) to a [`Rollups`] accumulator and upserts each touched bucket once at the end, so a
//! batch of 2 048 readings from 20 devices costs about 40 upserts, not 4 096, and the rollups
//! commit with the readings they summarise.
//!
//! Retention: raw readings and minute rollups for `storage.raw_retention_days`, hour rollups
//! for `storage.rollup_retention_days`; [`prune_device`] and [`prune_patient`] delete by
//! primary-key range, one device or patient per write job, so pruning never holds the writer
//! for long.

use super::{ms_to_time, Result};
use crate::db::{params, Connection};
use std::collections::HashMap;
use vigil_domain::views::{ReadingBucket, Resolution};
use vigil_domain::Metric;

/// Bucket widths maintained, in milliseconds.
pub const WIDTHS: [i64; 2] = [60_000, 3_600_000];

#[derive(Debug, Clone, Copy, PartialEq)]
struct Agg {
    n: i64,
    sum: f64,
    min: f64,
    max: f64,
}

/// Buckets touched by one write job.
#[derive(Debug, Default)]
pub struct Rollups {
    /// (patient num, metric code, width, bucket start) → aggregate.
    buckets: HashMap<(i64, i64, i64, i64), Agg>,
}

/// Start of the bucket of width `width` that holds `ts` (epoch ms; floor also before 1970).
fn bucket_start(ts: i64, width: i64) -> i64 {
    ts - ts.rem_euclid(width)
}

impl Rollups {
    /// Counts a newly stored reading.
    pub fn add(&mut self, patient: i64, metric: Metric, ts: i64, value: f64) {
        for w in WIDTHS {
            let key = (patient, metric.code(), w, bucket_start(ts, w));
            self.buckets
                .entry(key)
                .and_modify(|a| {
                    a.n += 1;
                    a.sum += value;
                    a.min = a.min.min(value);
                    a.max = a.max.max(value);
                })
                .or_insert(Agg {
                    n: 1,
                    sum: value,
                    min: value,
                    max: value,
                });
        }
    }

    /// Adds the touched buckets to the stored rollups (inside the caller's transaction).
    pub fn flush(&mut self, conn: &Connection) -> Result<()> {
        if self.buckets.is_empty() {
            return Ok(());
        }
        let mut st = conn.prepare_cached(
            "INSERT INTO rollups (patient, metric, res, bucket, n, sum, min, max)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (patient, metric, res, bucket) DO UPDATE SET
               n = rollups.n + excluded.n, sum = rollups.sum + excluded.sum,
               min = CASE WHEN excluded.min < rollups.min THEN excluded.min ELSE rollups.min END,
               max = CASE WHEN excluded.max > rollups.max THEN excluded.max ELSE rollups.max END",
        )?;
        for ((patient, metric, res, bucket), a) in self.buckets.drain() {
            st.execute(params![
                patient, metric, res, bucket, a.n, a.sum, a.min, a.max
            ])?;
        }
        Ok(())
    }
}

/// Rollup buckets of a patient's metric whose start lies in `[from_ms, to_ms]`, oldest first.
pub fn buckets(
    conn: &Connection,
    patient_id: &str,
    metric: Metric,
    res: Resolution,
    from_ms: i64,
    to_ms: i64,
    limit: usize,
) -> Result<Vec<ReadingBucket>> {
    let Some(width) = res.millis() else {
        return Ok(Vec::new());
    };
    let mut st = conn.prepare_cached(
        "SELECT r.bucket, r.n, r.sum, r.min, r.max
         FROM patients p JOIN rollups r ON r.patient = p.num AND r.metric = ?2 AND r.res = ?3
              AND r.bucket >= ?4 AND r.bucket <= ?5
         WHERE p.id = ?1
         ORDER BY r.bucket LIMIT ?6",
    )?;
    let from = bucket_start(from_ms, width);
    let rows = st.query_map(
        params![patient_id, metric.code(), width, from, to_ms, limit as i64],
        |r| {
            let n: i64 = r.get(1)?;
            let sum: f64 = r.get(2)?;
            Ok(ReadingBucket {
                start: ms_to_time(r.get(0)?),
                count: n,
                avg: ((sum / n.max(1) as f64) * 100.0).round() / 100.0,
                min: r.get(3)?,
                max: r.get(4)?,
                unit: metric.unit(),
            })
        },
    )?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

/// Deletes one device's raw readings older than `cutoff_ms`; returns how many.
pub fn prune_device(conn: &Connection, device_num: i64, cutoff_ms: i64) -> Result<usize> {
    let mut st =
        conn.prepare_cached("DELETE FROM readings WHERE device = ?1 AND metric = ?2 AND ts < ?3")?;
    let mut n = 0;
    // One range delete per metric: the key is (device, metric, ts).
    for m in Metric::ALL {
        n += st.execute(params![device_num, m.code(), cutoff_ms])?;
    }
    Ok(n)
}

/// Deletes one patient's rollups of width `width` older than `cutoff_ms`; returns how many.
pub fn prune_patient(
    conn: &Connection,
    patient_num: i64,
    width: i64,
    cutoff_ms: i64,
) -> Result<usize> {
    let mut st = conn.prepare_cached(
        "DELETE FROM rollups WHERE patient = ?1 AND metric = ?2 AND res = ?3 AND bucket < ?4",
    )?;
    let mut n = 0;
    for m in Metric::ALL {
        n += st.execute(params![patient_num, m.code(), width, cutoff_ms])?;
    }
    Ok(n)
}

/// A patient's history as rate-of-change and baseline rules ask for it (issue #5), from the
/// minute rollups: one indexed range read per question, whatever the device's rate. Minute
/// rollups live as long as raw readings (`storage.raw_retention_days`), which bounds the
/// windows rules can look back over.
pub struct RollupHistory<'c> {
    pub conn: &'c Connection,
    pub patient_num: i64,
    /// The first storage error; the caller fails the job with it (the trait cannot return it).
    pub error: Option<crate::db::Error>,
}

impl vigil_alerting::rules::History for RollupHistory<'_> {
    fn range(
        &mut self,
        metric: vigil_domain::Metric,
        from_ms: i64,
        to_ms: i64,
    ) -> Option<vigil_alerting::rules::RangeStats> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT sum(n), min(min), max(max), sum(sum) FROM rollups
                 WHERE patient = ?1 AND metric = ?2 AND res = 60000
                   AND bucket >= ?3 AND bucket < ?4",
            )
            .and_then(|mut st| {
                st.query_row(
                    // The minute holding `from` counts: a daily weight taken at 07:20:31 three
                    // days ago is "within 3 days" of one taken at 07:20:05 today.
                    crate::params![
                        self.patient_num,
                        metric.code(),
                        from_ms - from_ms.rem_euclid(60_000),
                        to_ms
                    ],
                    |r| {
                        Ok((
                            r.get::<_, Option<i64>>(0)?,
                            r.get::<_, Option<f64>>(1)?,
                            r.get::<_, Option<f64>>(2)?,
                            r.get::<_, Option<f64>>(3)?,
                        ))
                    },
                )
            });
        match row {
            Ok((Some(n), Some(min), Some(max), Some(sum))) if n > 0 => {
                Some(vigil_alerting::rules::RangeStats {
                    n: n as u64,
                    min,
                    max,
                    mean: sum / n as f64,
                })
            }
            Ok(_) => None,
            Err(e) => {
                self.error.get_or_insert(e);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readings::ReadingInserter;
    use crate::schema;
    use vigil_domain::{DeviceKind, Reading, TsSource};
    use vigil_protocol::validate::DeviceInfo;

    const PEOPLE: &str =
        "INSERT INTO patients (num, id, name, created_at) VALUES (1, 'p1', 'P', 0);
        INSERT INTO devices (num, id, patient_id, patient_num, kind, secret_hash, created_at)
        VALUES (7, 'd1', 'p1', 1, 'pulse_oximeter', 'x', 0);";

    fn device() -> DeviceInfo {
        DeviceInfo {
            id: "d1".into(),
            patient_id: "p1".into(),
            kind: DeviceKind::PulseOximeter,
            num: 7,
            patient_num: 1,
        }
    }

    fn reading(ts_ms: i64, value: f64) -> Reading {
        Reading {
            device_id: "d1".into(),
            patient_id: "p1".into(),
            metric: Metric::Spo2,
            value,
            ts: ms_to_time(ts_ms),
            ts_source: TsSource::Device,
            seq: None,
            flags: vec![],
        }
    }

    /// Stores readings the way the ingest write job does: insert, then roll up what was new.
    fn store(c: &Connection, readings: Vec<Reading>) -> usize {
        let mut ins = ReadingInserter::new(c).unwrap();
        let fresh = ins.insert(&device(), readings, 0).unwrap();
        let mut r = Rollups::default();
        for f in &fresh {
            r.add(1, f.metric, f.ts.timestamp_millis(), f.value);
        }
        r.flush(c).unwrap();
        fresh.len()
    }

    const T0: i64 = 1_763_769_600_000; // 2025-11-22T00:00:00Z, an hour boundary

    #[test]
    fn rollups_follow_new_readings_and_ignore_redeliveries() {
        let c = crate::testing::connection();
        c.execute_batch(PEOPLE).unwrap();
        let batch = || {
            vec![
                reading(T0 + 1_000, 95.0),
                reading(T0 + 30_000, 91.0),
                reading(T0 + 61_000, 97.0),
                reading(T0 + 3_600_000, 88.0),
            ]
        };
        assert_eq!(store(&c, batch()), 4);
        assert_eq!(store(&c, batch()), 0, "a redelivery is not new");
        let minutes = buckets(
            &c,
            "p1",
            Metric::Spo2,
            Resolution::Minute,
            T0,
            T0 + 7_200_000,
            100,
        )
        .unwrap();
        let got: Vec<(i64, i64, f64, f64, f64)> = minutes
            .iter()
            .map(|b| {
                (
                    b.start.timestamp_millis() - T0,
                    b.count,
                    b.avg,
                    b.min,
                    b.max,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 2, 93.0, 91.0, 95.0),
                (60_000, 1, 97.0, 97.0, 97.0),
                (3_600_000, 1, 88.0, 88.0, 88.0)
            ]
        );
        let hours = buckets(
            &c,
            "p1",
            Metric::Spo2,
            Resolution::Hour,
            T0,
            T0 + 7_200_000,
            100,
        )
        .unwrap();
        assert_eq!(hours.len(), 2);
        assert_eq!((hours[0].count, hours[0].avg), (3, 94.33));
        // A query starting inside a bucket still gets that bucket.
        let inside = buckets(
            &c,
            "p1",
            Metric::Spo2,
            Resolution::Hour,
            T0 + 10,
            T0 + 10,
            100,
        )
        .unwrap();
        assert_eq!(inside.len(), 1);
    }

    #[test]
    fn retention_deletes_only_what_is_older_than_the_cutoff() {
        let c = crate::testing::connection();
        c.execute_batch(PEOPLE).unwrap();
        store(&c, vec![reading(T0, 95.0), reading(T0 + 3_600_000, 96.0)]);
        let cutoff = T0 + 1_800_000;
        assert_eq!(prune_device(&c, 7, cutoff).unwrap(), 1);
        assert_eq!(prune_device(&c, 7, cutoff).unwrap(), 0);
        let left: i64 = c
            .query_row("SELECT count(*) FROM readings", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 1);
        assert_eq!(prune_patient(&c, 1, 60_000, cutoff).unwrap(), 1);
        assert_eq!(prune_patient(&c, 1, 3_600_000, cutoff).unwrap(), 1);
        let kept: Vec<(i64, i64)> = {
            let mut st = c
                .prepare("SELECT res, bucket FROM rollups ORDER BY res")
                .unwrap();
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
            rows.map(Result::unwrap).collect()
        };
        assert_eq!(
            kept,
            vec![(60_000, T0 + 3_600_000), (3_600_000, T0 + 3_600_000)]
        );
    }

    #[test]
    fn upgrading_a_v1_store_rolls_up_existing_readings() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(schema::MIGRATIONS[0]).unwrap();
        c.as_sqlite()
            .unwrap()
            .pragma_update(None, "user_version", 1)
            .unwrap();
        c.execute_batch(PEOPLE).unwrap();
        c.execute_batch(&format!(
            "INSERT INTO readings (device, metric, ts, patient, value, received_at)
             VALUES (7, {m}, {a}, 1, 90.0, 0), (7, {m}, {b}, 1, 94.0, 0)",
            m = Metric::Spo2.code(),
            a = T0,
            b = T0 + 5_000
        ))
        .unwrap();
        schema::migrate(&mut c).unwrap();
        let hours = buckets(&c, "p1", Metric::Spo2, Resolution::Hour, T0, T0, 10).unwrap();
        assert_eq!(
            (hours[0].count, hours[0].min, hours[0].max, hours[0].avg),
            (2, 90.0, 94.0, 92.0)
        );
    }

    #[test]
    fn buckets_floor_to_their_width() {
        assert_eq!(bucket_start(1_763_774_159_999, 60_000), 1_763_774_100_000);
        assert_eq!(bucket_start(-1, 60_000), -60_000);
        assert_eq!(bucket_start(7_200_000, 3_600_000), 7_200_000);
    }

    #[test]
    fn accumulates_per_bucket_and_width() {
        let mut r = Rollups::default();
        r.add(1, Metric::Spo2, 60_000, 95.0);
        r.add(1, Metric::Spo2, 119_999, 91.0);
        r.add(1, Metric::Spo2, 120_000, 97.0);
        let minute = r.buckets[&(1, Metric::Spo2.code(), 60_000, 60_000)];
        assert_eq!(
            minute,
            Agg {
                n: 2,
                sum: 186.0,
                min: 91.0,
                max: 95.0
            }
        );
        let hour = r.buckets[&(1, Metric::Spo2.code(), 3_600_000, 0)];
        assert_eq!((hour.n, hour.min, hour.max), (3, 91.0, 97.0));
    }
}
