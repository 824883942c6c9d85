//! Rules that fire on the clock rather than on a reading (issue #5): a device that went silent
//! (missing data, `silent_intervals`) and a daily reading that did not come (adherence,
//! `expect_by`). [`plan`] reads what should change at `now` (on a read connection, so an idle
//! check never takes the writer); `crate::watch::apply` raises and resolves alerts in a write job. Both take
//! the time as an argument, so tests run them on a simulated clock.

use super::{ms_to_time, Result};
use crate::db::Connection;
use chrono::{NaiveTime, TimeZone};
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
    Ok(rows.collect::<crate::db::Result<_>>()?)
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
                let rows = st.query_map(crate::params![metric.code(), from, to], |r| r.get(0))?;
                Ok(rows.collect::<crate::db::Result<_>>()?)
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
