//! The store-and-forward queue for the InfluxDB sink (issue #4; schema version 3).
//!
//! Line protocol (docs/influxdb.md): measurement `vitals`, tags `device_id`, `metric`,
//! `patient_id` (sorted, low cardinality, never free text), field `value` (float) and one
//! integer field per flag that is set (`late=1i`, `clock_skew=1i`, `suspect=1i`,
//! `ts_received=1i`), timestamp in milliseconds (`precision=ms`).

use super::Result;
use crate::db::{params, Connection};
use std::fmt::Write as _;
use vigil_domain::Reading;

/// Escapes a tag key or value: commas, spaces and equals signs (InfluxDB line protocol).
fn tag(out: &mut String, s: &str) {
    for c in s.chars() {
        if matches!(c, ',' | ' ' | '=' | '\\') {
            out.push('\\');
        }
        // Line breaks cannot appear in a line; ids never contain them (registry::check_id).
        if c != '\n' && c != '\r' {
            out.push(c);
        }
    }
}

/// One reading as a line of line protocol (with its trailing newline).
fn line(out: &mut String, r: &Reading) {
    out.push_str("vitals,device_id=");
    tag(out, &r.device_id);
    out.push_str(",metric=");
    out.push_str(r.metric.as_str());
    out.push_str(",patient_id=");
    tag(out, &r.patient_id);
    // `{:?}` keeps a decimal point or exponent, so the field is always a float, never an
    // integer (a field's type must not change between points).
    let _ = write!(out, " value={:?}", r.value);
    for f in &r.flags {
        if matches!(
            f.as_str(),
            "late" | "clock_skew" | "suspect" | "ts_received"
        ) {
            let _ = write!(out, ",{f}=1i");
        }
    }
    let _ = writeln!(out, " {}", r.ts.timestamp_millis());
}

/// A stored device event as a line: measurement `events`, tags `device_id`, `kind`,
/// `patient_id`, field `count=1i` (counting falls or SOS per day is a `sum`).
fn event_line(out: &mut String, patient_id: &str, device_id: &str, kind: &str, ts_ms: i64) {
    out.push_str("events,device_id=");
    tag(out, device_id);
    out.push_str(",kind=");
    tag(out, kind);
    out.push_str(",patient_id=");
    tag(out, patient_id);
    let _ = writeln!(out, " count=1i {ts_ms}");
}

/// An opened (or escalated) alert as a line: measurement `alerts`, tags `patient_id`, `rule`,
/// `severity`, fields `opened=1i` and the triggering `value` when there is one, at the time it
/// opened. Numbers only: servers such as VictoriaMetrics store string fields as 0.
fn alert_line(out: &mut String, a: &vigil_domain::Alert) {
    alert_series(out, a);
    out.push_str(" opened=1i");
    if let Some(v) = a.value {
        let _ = write!(out, ",value={v:?}");
    }
    let _ = writeln!(out, " {}", a.opened_at.timestamp_millis());
}

/// An alert acknowledged or resolved, as a line in the series its opening wrote to: the same
/// tags, a field named after the new state (`acknowledged=1i`, `resolved=1i`), at the time it
/// happened. Time to acknowledge is then the distance between an `opened` and the next
/// `acknowledged` point of a series.
fn alert_transition_line(out: &mut String, a: &vigil_domain::Alert, field: &str, at_ms: i64) {
    alert_series(out, a);
    let _ = writeln!(out, " {field}=1i {at_ms}");
}

/// An alert's series: measurement `alerts` and its tags, sorted by key.
fn alert_series(out: &mut String, a: &vigil_domain::Alert) {
    out.push_str("alerts,patient_id=");
    tag(out, &a.patient_id);
    out.push_str(",rule=");
    tag(out, &a.rule);
    out.push_str(",severity=");
    out.push_str(a.severity.as_str());
}

/// The lines one write job queues: new readings, stored events, alerts opened or changed. Enqueued as one
/// row, inside the job's transaction, so they commit with what they describe.
#[derive(Debug, Default)]
pub struct Batch {
    lines: String,
    points: i64,
}

impl Batch {
    pub fn reading(&mut self, r: &Reading) {
        line(&mut self.lines, r);
        self.points += 1;
    }

    pub fn event(&mut self, patient_id: &str, device_id: &str, kind: &str, ts_ms: i64) {
        event_line(&mut self.lines, patient_id, device_id, kind, ts_ms);
        self.points += 1;
    }

    pub fn alert(&mut self, a: &vigil_domain::Alert) {
        alert_line(&mut self.lines, a);
        self.points += 1;
    }

    /// An alert's acknowledgement or resolution (`field`: `acknowledged`, `resolved`).
    pub fn transition(&mut self, a: &vigil_domain::Alert, field: &str, at_ms: i64) {
        alert_transition_line(&mut self.lines, a, field, at_ms);
        self.points += 1;
    }

    /// Appends the batch to the queue as one row (nothing when it is empty).
    pub fn enqueue(self, conn: &Connection, now_ms: i64) -> Result<()> {
        if self.points == 0 {
            return Ok(());
        }
        conn.prepare_cached(
            "INSERT INTO forward_queue (lines, points, created_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![self.lines, self.points, now_ms])?;
        Ok(())
    }
}

/// Queues readings as one row (what a write job storing them does).
#[cfg(test)]
pub fn enqueue(conn: &Connection, readings: &[Reading], now_ms: i64) -> Result<()> {
    let mut batch = Batch::default();
    readings.iter().for_each(|r| batch.reading(r));
    batch.enqueue(conn, now_ms)
}

/// A run of queue rows to send together.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub first_id: i64,
    pub last_id: i64,
    pub points: i64,
    pub oldest_ms: i64,
    pub lines: String,
}

/// The oldest rows, up to about `max_points` points (at least one row).
#[cfg(test)]
pub fn next_chunk(conn: &Connection, max_points: i64) -> Result<Option<Chunk>> {
    next_chunk_after(conn, 0, max_points)
}

/// The oldest rows after id `after`, up to about `max_points` points (at least one row).
pub fn next_chunk_after(conn: &Connection, after: i64, max_points: i64) -> Result<Option<Chunk>> {
    let mut st = conn.prepare_cached(
        "SELECT id, lines, points, created_at FROM forward_queue WHERE id > ?1
         ORDER BY id LIMIT 1000",
    )?;
    let mut rows = st.query([after])?;
    let mut chunk: Option<Chunk> = None;
    while let Some(r) = rows.next()? {
        let (id, lines, points, at): (i64, String, i64, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        match &mut chunk {
            None => {
                chunk = Some(Chunk {
                    first_id: id,
                    last_id: id,
                    points,
                    oldest_ms: at,
                    lines,
                })
            }
            Some(c) if c.points + points <= max_points => {
                c.last_id = id;
                c.points += points;
                c.lines.push_str(&lines);
            }
            Some(_) => break,
        }
    }
    Ok(chunk)
}

/// The server took the chunk: forget it (this is the watermark moving).
pub fn forwarded(conn: &Connection, chunk_last_id: i64) -> Result<usize> {
    Ok(conn.execute("DELETE FROM forward_queue WHERE id <= ?1", [chunk_last_id])?)
}

/// The server refused the chunk for good (4xx): keep it with the reason, out of the way.
pub fn quarantine(
    conn: &Connection,
    chunk: &Chunk,
    status: u16,
    reason: &str,
    now_ms: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO forward_quarantine
           (id, lines, points, created_at, status, reason, quarantined_at)
         SELECT id, lines, points, created_at, ?3, ?4, ?5 FROM forward_queue
         WHERE id BETWEEN ?1 AND ?2",
        params![chunk.first_id, chunk.last_id, status, reason, now_ms],
    )?;
    conn.execute(
        "DELETE FROM forward_queue WHERE id BETWEEN ?1 AND ?2",
        params![chunk.first_id, chunk.last_id],
    )?;
    Ok(())
}

/// Points waiting and the age of the oldest row (ms), for `/metrics` and `/readyz`.
pub fn backlog(conn: &Connection) -> Result<(i64, Option<i64>)> {
    Ok(conn.query_row(
        "SELECT coalesce(sum(points), 0), min(created_at) FROM forward_queue",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ms_to_time;
    use vigil_domain::{Metric, TsSource};

    fn reading(value: f64, flags: &[&str]) -> Reading {
        Reading {
            device_id: "ox 1".into(),
            patient_id: "p=1,a".into(),
            metric: Metric::Spo2,
            value,
            ts: ms_to_time(1_763_774_100_123),
            ts_source: TsSource::Device,
            seq: None,
            flags: flags.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn line_protocol_escapes_tags_and_keeps_floats_floats() {
        let mut s = String::new();
        line(&mut s, &reading(93.0, &["late", "other"]));
        assert_eq!(
            s,
            "vitals,device_id=ox\\ 1,metric=spo2,patient_id=p\\=1\\,a value=93.0,late=1i 1763774100123\n"
        );
    }

    #[test]
    fn events_are_numeric_lines() {
        let mut s = String::new();
        event_line(&mut s, "an", "pendant-1", "fall", 1_763_774_100_000);
        assert_eq!(
            s,
            "events,device_id=pendant-1,kind=fall,patient_id=an count=1i 1763774100000\n"
        );
    }

    #[test]
    fn queue_chunks_in_order_quarantines_and_forgets() {
        let c = crate::testing::connection();
        for v in [90.0, 91.0, 92.0] {
            enqueue(&c, &[reading(v, &[]), reading(v + 0.5, &[])], 1_000).unwrap();
        }
        assert_eq!(backlog(&c).unwrap(), (6, Some(1_000)));
        let first = next_chunk(&c, 4).unwrap().unwrap();
        assert_eq!((first.first_id, first.last_id, first.points), (1, 2, 4));
        assert!(first.lines.starts_with("vitals,") && first.lines.contains("value=91.5"));
        quarantine(&c, &first, 400, "bad line", 2_000).unwrap();
        let rest = next_chunk(&c, 4).unwrap().unwrap();
        assert_eq!((rest.first_id, rest.points), (3, 2));
        assert_eq!(forwarded(&c, rest.last_id).unwrap(), 1);
        assert_eq!(next_chunk(&c, 4).unwrap(), None);
        assert_eq!(backlog(&c).unwrap(), (0, None));
        let q: i64 = c
            .query_row("SELECT sum(points) FROM forward_quarantine", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(q, 4);
    }
}
