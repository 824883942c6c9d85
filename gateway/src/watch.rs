//! The clock-driven rules' loop (issue #5): every 2 s, looks (on a read connection) for devices
//! gone silent or heard again and for daily readings that did not come or came
//! (`store::watch::plan`), and raises or resolves their alerts through the alert service in one
//! write job ([`apply`]). Both take the time as an argument, so tests run them on a simulated
//! clock.

use crate::alerts::{AlertService, AlertTx};
use crate::duty::Duty;
use crate::periodic;
use crate::store::watch::{self, Change};
use crate::store::{alerts, ms_to_time, now_ms, Result, StoreHandle};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch as signal;
use vigil_alerting::RuleSet;

/// How often the clock-driven rules are checked; bounds how late such an alert is raised.
const TICK: Duration = Duration::from_secs(2);

pub async fn run(
    store: StoreHandle,
    alerts: AlertService,
    rules: Arc<RuleSet>,
    timezone: chrono_tz::Tz,
    duty: Duty,
    shutdown: signal::Receiver<bool>,
) {
    if rules.silent_rule().is_none() && rules.expect_by_rules().next().is_none() {
        let mut shutdown = shutdown;
        return shutdown.changed().await.unwrap_or(());
    }
    periodic::every(TICK, shutdown, || async {
        // Several gateways: the lease holder watches (issue #20).
        if !duty.held().await {
            return;
        }
        let now = now_ms();
        let r = rules.clone();
        let plan = match store.read(move |c| watch::plan(c, &r, now, timezone)).await {
            Ok(p) if p.is_empty() => return,
            Ok(p) => p,
            Err(err) => {
                tracing::warn!(error = %err, "cannot check missing-data and adherence rules");
                return;
            }
        };
        match alerts.write(&store, move |tx| apply(tx, &plan, now)).await {
            Ok(n) => tracing::info!(changes = n, "missing-data and adherence rules"),
            Err(err) => {
                tracing::warn!(error = %err, "cannot apply missing-data and adherence rules")
            }
        }
    })
    .await
}

/// Applies a plan through the alert service. Returns how many changes it made.
pub fn apply(tx: &mut AlertTx<'_>, changes: &[Change], now: i64) -> Result<usize> {
    let mut n = 0;
    for c in changes {
        match c {
            Change::Raise { patient_id, breach } => {
                // The plan was read before this job: someone may have been quicker.
                if alerts::active(tx.conn(), patient_id, &breach.condition)?.is_none() {
                    let id = tx.raise(patient_id, breach, None, ms_to_time(now))?;
                    // The alert names the silent device (issue #21: the patient's timeline).
                    if let Some(device) = breach.condition.strip_prefix("device_silent_") {
                        alerts::set_source(tx.conn(), id, device, None)?;
                    }
                    n += 1;
                }
            }
            Change::Resolve {
                patient_id,
                condition,
                message,
            } => {
                n += usize::from(tx.resolve_cleared(
                    patient_id,
                    condition,
                    message,
                    ms_to_time(now),
                )?);
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::watch::plan;
    use chrono::TimeZone;
    use chrono::Utc;
    use vigil_alerting::RuleSet;
    use vigil_store::db::Connection;

    const H: i64 = 3_600_000;
    const HCM: chrono_tz::Tz = chrono_tz::Asia::Ho_Chi_Minh;

    fn store() -> Connection {
        let c = vigil_store::testing::connection();
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
            vigil_store::params![id, kind, seen, interval],
        )
        .unwrap();
    }

    fn run(c: &Connection, rules: &RuleSet, now: i64) -> Vec<Change> {
        let plan = plan(c, rules, now, HCM).unwrap();
        let svc = crate::alerts::AlertService::for_tests(Default::default(), false);
        let mut tx = svc.begin(c);
        apply(&mut tx, &plan, now).unwrap();
        let _ = tx.finish().unwrap();
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
