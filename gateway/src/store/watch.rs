//! Rules that fire on the clock rather than on a reading (issue #5): a device that went silent
//! (missing data, `silent_intervals`) and a daily reading that did not come (adherence,
//! `expect_by`). [`plan`] reads what should change at `now` (on a read connection, so an idle
//! check never takes the writer); [`apply`] raises and resolves alerts in a write job. Both take
//! the time as an argument, so tests run them on a simulated clock.

use super::{alerts, ms_to_time, Result};
use chrono::{NaiveTime, TimeZone};
use rusqlite::Connection;
use std::collections::HashSet;
use vigil_alerting::{Breach, RuleSet};
use vigil_domain::DeviceKind;

/// One change the clock calls for.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Raise {
        patient_id: String,
        breach: Breach,
    },
    Resolve {
        patient_id: String,
        condition: String,
        message: String,
    },
}

fn active_conditions(conn: &Connection, prefix: &str) -> Result<HashSet<(String, String)>> {
    let mut st = conn.prepare_cached(
        "SELECT patient_id, condition FROM alerts
         WHERE state <> 'resolved' AND substr(condition, 1, length(?1)) = ?1",
    )?;
    let rows = st.query_map([prefix], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Local midnight of `now` in `tz`, as epoch ms.
fn local_midnight(now: i64, tz: chrono_tz::Tz) -> i64 {
    let local = ms_to_time(now).with_timezone(&tz);
    tz.from_local_datetime(&local.date_naive().and_time(NaiveTime::MIN))
        .earliest()
        .map(|t| t.timestamp_millis())
        // A daylight-saving jump at midnight: the day's first hour is good enough.
        .unwrap_or(now - 86_400_000)
}

/// What the clock-driven rules of `rules` call for at `now`.
pub fn plan(
    conn: &Connection,
    rules: &RuleSet,
    now: i64,
    tz: chrono_tz::Tz,
) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    if let Some((rule, intervals)) = rules.silent_rule() {
        let active = active_conditions(conn, "device_silent_")?;
        let mut st = conn.prepare_cached(
            "SELECT id, patient_id, kind, expected_interval_s, coalesce(last_seen, created_at),
                    last_seen IS NULL
             FROM devices WHERE enabled = 1",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, bool>(5)?,
            ))
        })?;
        for row in rows {
            let (device, patient_id, kind, interval_s, seen, never) = row?;
            let interval_s = interval_s.unwrap_or_else(|| {
                kind.parse::<DeviceKind>()
                    .map(|k| k.default_interval_s())
                    .unwrap_or(86_400)
            });
            let limit_ms = (intervals * interval_s as f64 * 1000.0) as i64;
            let silent = now - seen > limit_ms;
            let condition = format!("device_silent_{device}");
            let is_active = active.contains(&(patient_id.clone(), condition.clone()));
            if silent && !is_active {
                let since = ms_to_time(seen).to_rfc3339();
                out.push(Change::Raise {
                    patient_id,
                    breach: Breach {
                        rule: rule.id.clone(),
                        condition,
                        severity: rule.severity,
                        metric: None,
                        value: None,
                        limit: None,
                        message: if never {
                            format!("device {device} ({kind}) never heard from since its registration at {since}")
                        } else {
                            format!("device {device} ({kind}) silent since {since}")
                        },
                    },
                });
            } else if !silent && is_active {
                out.push(Change::Resolve {
                    patient_id,
                    condition,
                    message: format!("device {device} heard again"),
                });
            }
        }
    }
    let adherence: Vec<_> = rules.expect_by_rules().collect();
    if !adherence.is_empty() {
        let midnight = local_midnight(now, tz);
        let local_time = ms_to_time(now).with_timezone(&tz).time();
        let week_ago = midnight - 7 * 86_400_000;
        for (rule, metric, by) in adherence {
            let active = active_conditions(conn, &rule.id)?;
            let patients = |from: i64, to: i64| -> Result<HashSet<String>> {
                let mut st = conn.prepare_cached(
                    "SELECT DISTINCT p.id FROM rollups r JOIN patients p ON p.num = r.patient
                     WHERE r.metric = ?1 AND r.res = 60000 AND r.bucket >= ?2 AND r.bucket < ?3",
                )?;
                let rows =
                    st.query_map(rusqlite::params![metric.code(), from, to], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            };
            let today = patients(midnight, i64::MAX)?;
            // Measured today: the alert is over.
            for (patient_id, condition) in &active {
                if condition == &rule.id && today.contains(patient_id) {
                    out.push(Change::Resolve {
                        patient_id: patient_id.clone(),
                        condition: condition.clone(),
                        message: format!("{metric} measured"),
                    });
                }
            }
            if local_time < by {
                continue;
            }
            for patient_id in patients(week_ago, midnight)? {
                if today.contains(&patient_id)
                    || active.contains(&(patient_id.clone(), rule.id.clone()))
                {
                    continue;
                }
                out.push(Change::Raise {
                    patient_id,
                    breach: Breach {
                        rule: rule.id.clone(),
                        condition: rule.id.clone(),
                        severity: rule.severity,
                        metric: None,
                        value: None,
                        limit: None,
                        message: format!("no {metric} reading today by {}", by.format("%H:%M")),
                    },
                });
            }
        }
    }
    Ok(out)
}

/// Applies a plan in one write job. Returns what was raised or resolved (for live dashboards
/// and the outbox).
pub fn apply(
    conn: &Connection,
    changes: &[Change],
    now: i64,
    notify: &alerts::NotifySettings,
    forward: bool,
) -> Result<Vec<alerts::Raised>> {
    let mut out = Vec::new();
    for c in changes {
        match c {
            Change::Raise { patient_id, breach } => {
                // The plan was read before this job: someone may have been quicker.
                let open: bool = conn.query_row(
                    "SELECT EXISTS (SELECT 1 FROM alerts WHERE patient_id = ?1 AND condition = ?2
                                    AND state <> 'resolved')",
                    [patient_id, &breach.condition],
                    |r| r.get(0),
                )?;
                if !open {
                    out.push(alerts::raise(
                        conn,
                        patient_id,
                        breach,
                        None,
                        ms_to_time(now),
                        notify,
                    )?);
                }
            }
            Change::Resolve {
                patient_id,
                condition,
                message,
            } => {
                if let Some(alert) = alerts::resolve_cleared(
                    conn,
                    patient_id,
                    condition,
                    message,
                    ms_to_time(now),
                    forward,
                )? {
                    out.push(alerts::Raised::Resolved {
                        alert: Box::new(alert),
                    });
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema;
    use chrono::Utc;

    const H: i64 = 3_600_000;
    const HCM: chrono_tz::Tz = chrono_tz::Asia::Ho_Chi_Minh;

    fn store() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        schema::migrate(&mut c).unwrap();
        c.execute_batch(
            "INSERT INTO patients (num, id, name, created_at) VALUES (1, 'p1', 'P', 0),
                                                                   (2, 'p2', 'Q', 0);",
        )
        .unwrap();
        c
    }

    fn device(c: &Connection, id: &str, kind: &str, interval: Option<i64>, seen: Option<i64>) {
        c.execute(
            "INSERT INTO devices (id, patient_id, patient_num, kind, secret_hash, created_at,
                                  last_seen, expected_interval_s)
             VALUES (?1, 'p1', 1, ?2, 'x', 0, ?3, ?4)",
            rusqlite::params![id, kind, seen, interval],
        )
        .unwrap();
    }

    fn run(c: &Connection, rules: &RuleSet, now: i64) -> Vec<Change> {
        let plan = plan(c, rules, now, HCM).unwrap();
        apply(c, &plan, now, &alerts::NotifySettings::default(), false).unwrap();
        plan
    }

    fn open(c: &Connection) -> Vec<String> {
        let mut st = c
            .prepare("SELECT condition FROM alerts WHERE state <> 'resolved' ORDER BY id")
            .unwrap();
        let rows = st.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    #[test]
    fn a_silent_device_alerts_once_and_resolves_when_heard_again() {
        let c = store();
        let rules = RuleSet::defaults();
        device(&c, "cuff", "bp_monitor", None, Some(0));
        device(&c, "band", "wearable", Some(60), Some(0));
        assert!(
            run(&c, &rules, 2 * 60_000).is_empty(),
            "exactly 2 intervals is not yet silent"
        );
        run(&c, &rules, 2 * 60_000 + 1);
        assert_eq!(open(&c), vec!["device_silent_band"]);
        assert!(
            run(&c, &rules, 10 * 60_000).is_empty(),
            "one alert, not one per look"
        );
        // The BP cuff (daily by kind) is flagged after 48 h.
        run(&c, &rules, 48 * H + 1);
        assert_eq!(open(&c), vec!["device_silent_band", "device_silent_cuff"]);
        c.execute(
            "UPDATE devices SET last_seen = ?1 WHERE id = 'band'",
            [48 * H],
        )
        .unwrap();
        run(&c, &rules, 48 * H + 2);
        assert_eq!(open(&c), vec!["device_silent_cuff"]);
        let by: String = c
            .query_row(
                "SELECT resolved_by FROM alerts WHERE condition = 'device_silent_band'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(by, "system");
    }

    #[test]
    fn a_missed_morning_reading_alerts_at_the_hour_and_a_reading_resolves_it() {
        let c = store();
        let rules = RuleSet::from_toml(
            r#"
[[rule]]
id = "bp_morning"
severity = "info"
metric = "bp_systolic"
expect_by = "10:00"
source = "test"
"#,
        )
        .unwrap();
        // 2026-11-28 00:00 in Ho Chi Minh City is 2026-11-27 17:00 UTC.
        let midnight = Utc
            .with_ymd_and_hms(2026, 11, 27, 17, 0, 0)
            .unwrap()
            .timestamp_millis();
        let bucket = |t: i64| t - t.rem_euclid(60_000);
        // p1 measured yesterday; p2 never: only p1 is on the schedule.
        c.execute(
            "INSERT INTO rollups (patient, metric, res, bucket, n, sum, min, max)
             VALUES (1, 3, 60000, ?1, 1, 130, 130, 130)",
            [bucket(midnight - 10 * H)],
        )
        .unwrap();
        assert!(
            run(&c, &rules, midnight + 9 * H).is_empty(),
            "09:00: not yet"
        );
        run(&c, &rules, midnight + 10 * H);
        assert_eq!(open(&c), vec!["bp_morning"]);
        assert!(run(&c, &rules, midnight + 11 * H).is_empty(), "raised once");
        c.execute(
            "INSERT INTO rollups (patient, metric, res, bucket, n, sum, min, max)
             VALUES (1, 3, 60000, ?1, 1, 128, 128, 128)",
            [bucket(midnight + 11 * H)],
        )
        .unwrap();
        run(&c, &rules, midnight + 11 * H + 1000);
        assert!(open(&c).is_empty(), "the reading resolved it");
    }
}
