//! Readings, device events and rejected messages: what ingestion writes and the API reads.

use super::{ms_to_time, Result};
use crate::db::{params, Connection, OptionalExtension};
use std::collections::{BTreeMap, HashMap};
use vigil_domain::views::{
    DeviceStatus, LatestValue, News2View, PatientSummary, ReadingPoint, RejectedMessage,
    BATTERY_LOW_PERCENT,
};
use vigil_domain::{EventKind, Metric, Reading, TsSource};
use vigil_protocol::validate::DeviceInfo;

/// How much of a rejected payload is kept for inspection: enough to see what went wrong,
/// little enough that a flood of garbage cannot fill the disk.
pub const EXCERPT_BYTES: usize = 256;

/// Inserts readings of `device`; a duplicate (same device, metric and time, or same device,
/// metric and `seq`) is ignored. Returns the readings that were new, for the alerting engine.
/// Inserts readings with one prepared statement for a whole write job: looking the statement
/// up in rusqlite's cache for every message cost ≈ 8 % of the writer thread (a hash of the SQL
/// text plus the cache's bookkeeping; docs/benchmarks.md).
pub struct ReadingInserter<'c> {
    st: crate::db::Statement<'c>,
    /// Keys (device, metric, time) already stored by [`ReadingInserter::store_ahead`] and not
    /// yet claimed by [`ReadingInserter::insert`].
    ahead: Option<std::collections::HashSet<(i64, i64, i64)>>,
}

/// Rows per multi-row statement of [`ReadingInserter::store_ahead`] (9 parameters each;
/// PostgreSQL allows 65 535 per statement).
const AHEAD_ROWS: usize = 500;

impl<'c> ReadingInserter<'c> {
    pub fn new(conn: &'c Connection) -> Result<Self> {
        let st = conn.prepare(
            "INSERT INTO readings
               (device, metric, ts, patient, value, ts_received, seq, flags, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT DO NOTHING",
        )?;
        Ok(ReadingInserter { st, ahead: None })
    }

    /// Stores a whole job's readings in a few multi-row statements, ahead of the per-message
    /// work, which then only asks which were new ([`ReadingInserter::insert`] answers from
    /// here). For PostgreSQL, where each statement is a round trip: one per reading held one
    /// gateway at ≈ 12 000 readings/s with the server busy ≈ 12 µs per insert
    /// (docs/benchmarks.md). The same readings, flags and keys as one at a time.
    pub fn store_ahead(
        &mut self,
        conn: &Connection,
        rows: &[(&DeviceInfo, &Reading, i64)],
    ) -> Result<()> {
        let ahead = self.ahead.get_or_insert_with(Default::default);
        for chunk in rows.chunks(AHEAD_ROWS) {
            let mut sql = String::with_capacity(64 + chunk.len() * 48);
            sql.push_str(
                "INSERT INTO readings
                   (device, metric, ts, patient, value, ts_received, seq, flags, received_at)
                 VALUES ",
            );
            let mut values: Vec<crate::db::Value> = Vec::with_capacity(chunk.len() * 9);
            for (i, (device, r, received_ms)) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                let b = i * 9;
                sql.push_str(&format!(
                    "(?{},?{},?{},?{},?{},?{},?{},?{},?{})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8,
                    b + 9
                ));
                values.extend([
                    device.num.into(),
                    r.metric.code().into(),
                    r.ts.timestamp_millis().into(),
                    device.patient_num.into(),
                    r.value.into(),
                    i64::from(r.ts_source == TsSource::Received).into(),
                    r.seq.into(),
                    flags_text(r).into(),
                    (*received_ms).into(),
                ]);
            }
            sql.push_str(" ON CONFLICT DO NOTHING RETURNING device, metric, ts");
            let mut st = conn.prepare_cached(&sql)?;
            let keys = st.query_map(crate::db::params_from_iter(values), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            for k in keys {
                ahead.insert(k?);
            }
        }
        Ok(())
    }

    /// Stores the readings; returns those that were new (a redelivery is stored once).
    pub fn insert(
        &mut self,
        device: &DeviceInfo,
        readings: Vec<Reading>,
        received_ms: i64,
    ) -> Result<Vec<Reading>> {
        let mut fresh = Vec::with_capacity(readings.len());
        if let Some(ahead) = &mut self.ahead {
            // Stored already; new if its key came back from the store, once.
            for r in readings {
                if ahead.remove(&(device.num, r.metric.code(), r.ts.timestamp_millis())) {
                    fresh.push(r);
                }
            }
            return Ok(fresh);
        }
        for r in readings {
            let flags = flags_text(&r);
            let n = self.st.execute(params![
                device.num,
                r.metric.code(),
                r.ts.timestamp_millis(),
                device.patient_num,
                r.value,
                r.ts_source == TsSource::Received,
                r.seq,
                flags,
                received_ms,
            ])?;
            if n == 1 {
                fresh.push(r);
            }
        }
        Ok(fresh)
    }
}

fn flags_text(r: &Reading) -> Option<String> {
    if r.flags.is_empty() {
        None
    } else {
        Some(r.flags.join(","))
    }
}

/// A device event as stored (`GET`-side: the patient page's timeline).
pub struct NewEvent<'a> {
    pub patient_id: &'a str,
    pub device_id: &'a str,
    pub kind: EventKind,
    pub ts_ms: i64,
    /// The battery level the event reported, if any.
    pub battery: Option<f64>,
}

/// Stores an event; returns its id, or `None` when it was a redelivery.
pub fn insert_event(conn: &Connection, e: &NewEvent<'_>, received_ms: i64) -> Result<Option<i64>> {
    Ok(conn
        .query_row(
            "INSERT INTO events (patient_id, device_id, kind, ts, received_at, battery)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT DO NOTHING RETURNING id",
            params![
                e.patient_id,
                e.device_id,
                e.kind.as_str(),
                e.ts_ms,
                received_ms,
                e.battery
            ],
            |r| r.get(0),
        )
        .optional()?)
}

/// One patient's device events timed in `[from_ms, to_ms]`, newest first, at most `limit`,
/// with the device's kind (the patient page's timeline, issue #21).
pub fn patient_events(
    conn: &Connection,
    patient_id: &str,
    from_ms: i64,
    to_ms: i64,
    limit: usize,
) -> Result<Vec<vigil_domain::views::EventView>> {
    let mut st = conn.prepare_cached(
        "SELECT e.ts, e.kind, e.device_id, d.kind, e.battery, e.cancelled_at
         FROM events e LEFT JOIN devices d ON d.id = e.device_id
         WHERE e.patient_id = ?1 AND e.ts >= ?2 AND e.ts <= ?3
         ORDER BY e.ts DESC, e.id DESC LIMIT ?4",
    )?;
    let rows = st.query_map(params![patient_id, from_ms, to_ms, limit as i64], |r| {
        Ok(vigil_domain::views::EventView {
            at: crate::ms_to_time(r.get(0)?),
            kind: r.get(1)?,
            device_id: r.get(2)?,
            device_kind: r.get(3)?,
            battery: r.get(4)?,
            cancelled_at: r.get::<_, Option<i64>>(5)?.map(crate::ms_to_time),
        })
    })?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

/// Keeps the first [`EXCERPT_BYTES`] of a payload as text (invalid UTF-8 replaced), so an
/// operator can see what a device sent without the store holding arbitrary blobs.
pub fn excerpt(payload: &[u8]) -> String {
    let cut = &payload[..payload.len().min(EXCERPT_BYTES)];
    String::from_utf8_lossy(cut).into_owned()
}

pub fn insert_rejected(
    conn: &Connection,
    device_id: Option<&str>,
    topic: &str,
    reason: &str,
    detail: &str,
    payload: &[u8],
    received_ms: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO rejected (device_id, topic, reason, detail, received_at, payload_excerpt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        device_id,
        topic.chars().take(256).collect::<String>(),
        reason,
        detail,
        received_ms,
        excerpt(payload)
    ])?;
    Ok(())
}

/// Keeps the newest `keep` rejected messages: a device sending garbage forever must not fill
/// the disk (issue #3, "the rejected table (bounded, oldest dropped)").
pub fn trim_rejected(conn: &Connection, keep: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM rejected WHERE id <= (SELECT max(id) FROM rejected) - ?1")?
        .execute([keep])?;
    Ok(())
}

pub fn rejected(
    conn: &Connection,
    device: Option<&str>,
    limit: usize,
) -> Result<Vec<RejectedMessage>> {
    let mut st = conn.prepare_cached(
        "SELECT id, device_id, topic, reason, detail, received_at, payload_excerpt
         FROM rejected WHERE device_id = ?2 OR ?2 IS NULL ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = st.query_map(params![limit as i64, device], |r| {
        Ok(RejectedMessage {
            id: r.get(0)?,
            device_id: r.get(1)?,
            topic: r.get(2)?,
            reason: r.get(3)?,
            detail: r.get(4)?,
            received_at: ms_to_time(r.get(5)?),
            payload_excerpt: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

/// Readings of one patient and metric in `[from, to]`, oldest first. Each of the patient's
/// devices is one range scan of the readings key.
pub fn range(
    conn: &Connection,
    patient_id: &str,
    metric: Metric,
    from_ms: i64,
    to_ms: i64,
    limit: usize,
) -> Result<Vec<ReadingPoint>> {
    let mut st = conn.prepare_cached(
        "SELECT r.ts, r.value, d.id, r.flags
         FROM devices d JOIN patients p ON p.id = d.patient_id
         JOIN readings r ON r.device = d.num AND r.metric = ?2 AND r.ts >= ?3 AND r.ts <= ?4
                        AND r.patient = p.num
         WHERE d.patient_id = ?1
         ORDER BY r.ts LIMIT ?5",
    )?;
    let rows = st.query_map(
        params![patient_id, metric.code(), from_ms, to_ms, limit as i64],
        |r| {
            let flags: Option<String> = r.get(3)?;
            Ok(ReadingPoint {
                ts: ms_to_time(r.get(0)?),
                value: r.get(1)?,
                unit: metric.unit(),
                device_id: r.get(2)?,
                flags: flags
                    .unwrap_or_default()
                    .split(',')
                    .filter(|f| !f.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        },
    )?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

/// Every patient with the latest value of each metric and the worst active alert.
/// The metrics NEWS2 scores, in [`LatestVitals`] order.
pub const NEWS2_METRICS: [Metric; 5] = [
    Metric::RespiratoryRate,
    Metric::Spo2,
    Metric::BpSystolic,
    Metric::HeartRate,
    Metric::Temperature,
];

/// The latest (time ms, value) of each of [`NEWS2_METRICS`] for one patient.
pub type LatestVitals = [Option<(i64, f64)>; 5];

/// Reads a patient's [`LatestVitals`] from the store.
pub fn latest_vitals(conn: &Connection, patient_id: &str) -> Result<LatestVitals> {
    latest_values(conn, patient_id, NEWS2_METRICS)
}

/// The latest (time ms, value) of `metric` for a patient, whatever the value.
pub fn latest_of(
    conn: &Connection,
    patient_id: &str,
    metric: Metric,
) -> Result<Option<(i64, f64)>> {
    Ok(latest_values(conn, patient_id, [metric])?[0])
}

/// The latest (time ms, value) of each of `metrics` for a patient, over all their devices: one
/// index seek per (device, metric), the key's last column being the time.
fn latest_values<const N: usize>(
    conn: &Connection,
    patient_id: &str,
    metrics: [Metric; N],
) -> Result<[Option<(i64, f64)>; N]> {
    let mut devices_st = conn.prepare_cached(
        "SELECT d.num, p.num FROM devices d JOIN patients p ON p.id = d.patient_id
         WHERE d.patient_id = ?1",
    )?;
    let devices: Vec<(i64, i64)> = devices_st
        .query_map([patient_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<crate::db::Result<_>>()?;
    let mut latest_st = conn.prepare_cached(
        "SELECT ts, value FROM readings WHERE device = ?1 AND metric = ?2 AND patient = ?3
         ORDER BY ts DESC LIMIT 1",
    )?;
    let mut out = [None; N];
    for (slot, m) in out.iter_mut().zip(metrics) {
        for (dev, pat) in &devices {
            let mut rows = latest_st.query(params![dev, m.code(), pat])?;
            if let Some(row) = rows.next()? {
                let (ts, v): (i64, f64) = (row.get(0)?, row.get(1)?);
                if slot.is_none_or(|(t, _)| ts > t) {
                    *slot = Some((ts, v));
                }
            }
        }
    }
    Ok(out)
}

/// Takes a newer reading into `v`, if it is one of [`NEWS2_METRICS`]; whether it did.
pub fn note_vital(v: &mut LatestVitals, metric: Metric, ts: i64, value: f64) -> bool {
    match NEWS2_METRICS.iter().position(|m| *m == metric) {
        Some(i) if v[i].is_none_or(|(t, _)| ts >= t) => {
            v[i] = Some((ts, value));
            true
        }
        _ => false,
    }
}

/// NEWS2 of latest vitals: only those within [`NEWS2_WINDOW_MS`] of the newest count.
pub fn news2_score(v: &LatestVitals) -> Option<vigil_alerting::news2::News2> {
    let newest = v.iter().flatten().map(|(t, _)| *t).max()?;
    let get = |i: usize| {
        v[i].filter(|(t, _)| newest - t <= NEWS2_WINDOW_MS)
            .map(|(_, value)| value)
    };
    Some(vigil_alerting::news2::score(
        &vigil_alerting::news2::Vitals {
            respiratory_rate: get(0),
            spo2: get(1),
            systolic: get(2),
            pulse: get(3),
            temperature: get(4),
            ..Default::default()
        },
    ))
}

/// Vitals older than this before the newest one do not count towards NEWS2: a score mixes
/// only measurements from about the same time (a morning's spot checks), not last week's.
const NEWS2_WINDOW_MS: i64 = 4 * 3_600_000;

/// NEWS2 from the latest value of each vital (issue #5). Consciousness and oxygen use are not
/// measured at home, so the score is partial (a lower bound) until the record holds them.
fn news2_of(latest: &BTreeMap<String, LatestValue>) -> Option<News2View> {
    use vigil_alerting::news2::Risk;
    let mut v: LatestVitals = [None; 5];
    for (slot, m) in v.iter_mut().zip(NEWS2_METRICS) {
        *slot = latest
            .get(m.as_str())
            .map(|l| (l.ts.timestamp_millis(), l.value));
    }
    let n = news2_score(&v)?;
    Some(News2View {
        total: n.total,
        risk: match n.risk {
            Risk::Low => "low",
            Risk::LowMedium => "low_medium",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
        .to_string(),
        partial: n.partial,
        missing: n.missing,
    })
}

/// The ward view's rows: the patients `scope` allows, with their latest values and alerts.
///
/// Four statements whatever the number of patients (issue #6: 1 000 patients in < 100 ms):
/// the patients, every device's latest reading of every metric (one backwards index seek per
/// (device, metric), done inside SQLite), and the open alerts grouped by patient. Per-patient
/// queries cost ≈ 0.26 ms a patient in round trips (docs/benchmarks.md); and the devices'
/// status grouped by patient.
pub fn patient_summaries(
    conn: &Connection,
    scope: &vigil_domain::Scope,
    only: Option<&str>,
) -> Result<Vec<PatientSummary>> {
    let patients = super::registry::patients_where(conn, scope, only)?;
    // Latest (ts, value) per patient and metric code, over all their devices.
    let mut latest: HashMap<String, HashMap<i64, (i64, f64)>> = HashMap::new();
    {
        let codes = Metric::ALL
            .iter()
            .map(|m| format!("({})", m.code()))
            .collect::<Vec<_>>()
            .join(",");
        let mut st = conn.prepare_cached(&format!(
            "WITH m(code) AS (VALUES {codes}),
                  last AS (
                    SELECT p.id AS patient_id, d.num AS device, m.code AS metric,
                           (SELECT r.ts FROM readings r
                             WHERE r.device = d.num AND r.metric = m.code AND r.patient = p.num
                             ORDER BY r.ts DESC LIMIT 1) AS ts
                    FROM devices d JOIN patients p ON p.id = d.patient_id CROSS JOIN m
                    WHERE p.id = ?1 OR ?1 IS NULL)
             SELECT l.patient_id, l.metric, l.ts, r.value FROM last l
             JOIN readings r ON r.device = l.device AND r.metric = l.metric AND r.ts = l.ts"
        ))?;
        let rows = st.query_map([only], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, f64>(3)?,
            ))
        })?;
        for row in rows {
            let (pid, code, ts, value) = row?;
            let slot = latest
                .entry(pid)
                .or_default()
                .entry(code)
                .or_insert((ts, value));
            if ts > slot.0 {
                *slot = (ts, value);
            }
        }
    }
    // Open alerts: (worst severity, count) per patient.
    let mut alerts: HashMap<String, (Option<vigil_domain::Severity>, u32)> = HashMap::new();
    {
        let mut st = conn.prepare_cached(
            "SELECT patient_id, severity, count(*) FROM alerts
             WHERE state <> 'resolved' AND (patient_id = ?1 OR ?1 IS NULL)
             GROUP BY patient_id, severity",
        )?;
        let rows = st.query_map([only], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
            ))
        })?;
        for row in rows {
            let (pid, sev, n) = row?;
            let e = alerts.entry(pid).or_default();
            e.1 += n;
            if let Ok(s) = sev.parse::<vigil_domain::Severity>() {
                e.0 = Some(match e.0 {
                    Some(w) if w.rank() <= s.rank() => w,
                    _ => s,
                });
            }
        }
    }
    // Device status per patient: the fourth statement.
    let mut devices: HashMap<String, DeviceStatus> = HashMap::new();
    {
        let mut st = conn.prepare_cached(
            "SELECT patient_id, count(*), count(CASE WHEN online = 1 THEN 1 END),
                    count(CASE WHEN online = 0 THEN 1 END),
                    count(CASE WHEN battery < ?1 THEN 1 END), min(battery)
             FROM devices WHERE enabled = 1 AND (patient_id = ?2 OR ?2 IS NULL)
             GROUP BY patient_id",
        )?;
        let rows = st.query_map(params![BATTERY_LOW_PERCENT, only], |r| {
            Ok((
                r.get::<_, String>(0)?,
                DeviceStatus {
                    total: r.get(1)?,
                    online: r.get(2)?,
                    offline: r.get(3)?,
                    battery_low: r.get(4)?,
                    lowest_battery: r.get(5)?,
                },
            ))
        })?;
        for row in rows {
            let (pid, d) = row?;
            devices.insert(pid, d);
        }
    }
    let mut out = Vec::with_capacity(patients.len());
    for p in patients {
        let mut values = BTreeMap::new();
        if let Some(by_code) = latest.get(&p.id) {
            for m in Metric::ALL {
                if let Some((ts, value)) = by_code.get(&m.code()) {
                    values.insert(
                        m.as_str().to_string(),
                        LatestValue {
                            ts: ms_to_time(*ts),
                            value: *value,
                            unit: m.unit(),
                        },
                    );
                }
            }
        }
        let (worst, open) = alerts.get(&p.id).copied().unwrap_or((None, 0));
        let news2 = news2_of(&values);
        let device_status = devices.remove(&p.id).unwrap_or_default();
        out.push(PatientSummary {
            id: p.id,
            name: p.name,
            facility_id: p.facility_id,
            area: p.area,
            tags: p.tags,
            devices: device_status,
            latest: values,
            flags: BTreeMap::new(),
            status: worst.map(|s| s.as_str()).unwrap_or("ok"),
            open_alerts: open,
            news2,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn news2_counts_only_vitals_measured_about_the_same_time() {
        let t = chrono::Utc::now();
        let at = |m: Metric, value: f64, hours_ago: i64| {
            (
                m.as_str().to_string(),
                LatestValue {
                    ts: t - chrono::Duration::hours(hours_ago),
                    value,
                    unit: m.unit(),
                },
            )
        };
        let latest: BTreeMap<String, LatestValue> = [
            at(Metric::Spo2, 93.0, 0),
            at(Metric::HeartRate, 115.0, 1),
            at(Metric::Temperature, 38.5, 5), // yesterday's fever does not count
            at(Metric::Glucose, 2.0, 0),      // not a NEWS2 parameter
        ]
        .into_iter()
        .collect();
        let n = news2_of(&latest).unwrap();
        assert_eq!((n.total, n.risk.as_str(), n.partial), (4, "low", true));
        assert!(n.missing.contains(&"temperature"), "{:?}", n.missing);
        assert_eq!(news2_of(&BTreeMap::new()), None);
    }

    /// Issue #20: storing a job's readings ahead in multi-row statements answers "which were
    /// new" as one at a time does: a redelivery (across jobs or inside one) is new once, a
    /// repeated `seq` is refused, and nothing is stored twice. On both back-ends.
    #[test]
    fn readings_stored_ahead_are_new_once() {
        let c = crate::testing::connection();
        c.execute_batch(
            "INSERT INTO patients (num, id, name, created_at) VALUES (1, 'p1', 'P', 0);
             INSERT INTO devices (num, id, patient_id, patient_num, kind, secret_hash, created_at)
             VALUES (7, 'd1', 'p1', 1, 'hub', 'x', 0);",
        )
        .unwrap();
        let device = DeviceInfo {
            id: "d1".into(),
            patient_id: "p1".into(),
            kind: vigil_domain::DeviceKind::Hub,
            num: 7,
            patient_num: 1,
        };
        let reading = |ms: i64, seq: Option<i64>| Reading {
            device_id: "d1".into(),
            patient_id: "p1".into(),
            metric: Metric::HeartRate,
            value: 70.0,
            ts: crate::ms_to_time(ms),
            ts_source: TsSource::Device,
            seq,
            flags: vec!["late".into()],
        };
        let job = |rs: Vec<Reading>| -> Vec<i64> {
            let mut ins = ReadingInserter::new(&c).unwrap();
            let rows: Vec<(&DeviceInfo, &Reading, i64)> =
                rs.iter().map(|r| (&device, r, 5)).collect();
            ins.store_ahead(&c, &rows).unwrap();
            // One message per reading, as the job would ask.
            rs.iter()
                .flat_map(|r| ins.insert(&device, vec![r.clone()], 5).unwrap())
                .map(|r| r.ts.timestamp_millis())
                .collect()
        };
        // 600 readings: two statements; the repeated one inside the job is new once.
        let mut first: Vec<Reading> = (0..600).map(|i| reading(1_000 + i, None)).collect();
        first.push(reading(1_000, None));
        let fresh = job(first);
        assert_eq!(fresh.len(), 600);
        // Redelivered with one new reading, and a new time under an old `seq`.
        let fresh = job(vec![
            reading(1_000, None),
            reading(5_000, Some(9)),
            reading(6_000, Some(9)),
            reading(1_599, None),
        ]);
        assert_eq!(fresh, vec![5_000]);
        let (n, flags): (i64, String) = c
            .query_row(
                "SELECT count(*), min(flags) FROM readings WHERE device = 7",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((n, flags.as_str()), (601, "late"));
    }
}
