//! The alert-burden report (issue #6; families' share and episodes, issue #17): alerts,
//! e-mails and time to acknowledgement per rule and per patient, and how often a family is
//! e-mailed and a patient has an episode per patient-week, so noisy thresholds can be tuned.

use super::{ms_to_time, Result};
use crate::db::Connection;

/// The alert-burden report for the patients `scope` allows, over the `days` before `now`.
pub fn burden(
    conn: &Connection,
    scope: &vigil_domain::Scope,
    days: u32,
    now: i64,
) -> Result<vigil_domain::views::BurdenReport> {
    use std::collections::BTreeMap;
    use vigil_domain::views::{BurdenReport, BurdenRow};
    let since = now - i64::from(days) * 86_400_000;
    #[derive(Default)]
    struct Acc {
        name: Option<String>,
        alerts: u64,
        acknowledged: u64,
        resolved: u64,
        emails: u64,
        family_emails: u64,
        delays: Vec<f64>,
    }
    let mut rules: BTreeMap<String, Acc> = BTreeMap::new();
    let mut patients: BTreeMap<String, Acc> = BTreeMap::new();
    let mut st = conn.prepare_cached(
        "SELECT a.rule, a.patient_id, p.name, p.facility_id, a.state, a.opened_at,
                a.acknowledged_at,
                (SELECT count(*) FROM outbox o WHERE o.alert_id = a.id),
                (SELECT count(*) FROM outbox o JOIN contacts c ON c.id = o.contact_id
                 WHERE o.alert_id = a.id AND c.role = 'family' AND o.cancelled_at IS NULL)
         FROM alerts a JOIN patients p ON p.id = a.patient_id WHERE a.opened_at >= ?1",
    )?;
    let rows = st.query_map([since], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, Option<i64>>(6)?,
            r.get::<_, i64>(7)? as u64,
            r.get::<_, i64>(8)? as u64,
        ))
    })?;
    for row in rows {
        let (rule, pid, name, facility, state, opened, acked, emails, family) = row?;
        if !scope.allows(&facility) {
            continue;
        }
        let rows_of = [
            rules.entry(rule).or_default(),
            patients.entry(pid).or_insert_with(|| Acc {
                name: Some(name),
                ..Acc::default()
            }),
        ];
        for e in rows_of {
            e.alerts += 1;
            e.resolved += u64::from(state == "resolved");
            e.emails += emails;
            e.family_emails += family;
            if let Some(t) = acked {
                e.acknowledged += 1;
                e.delays.push((t - opened).max(0) as f64 / 1000.0);
            }
        }
    }
    // Digests (no single alert) count for their patient.
    let mut st = conn.prepare_cached(
        "SELECT c.patient_id, count(*),
                sum(CASE WHEN c.role = 'family' AND o.cancelled_at IS NULL THEN 1 ELSE 0 END)
         FROM outbox o JOIN contacts c ON c.id = o.contact_id
         WHERE o.alert_id IS NULL AND o.created_at >= ?1 GROUP BY c.patient_id",
    )?;
    for row in st.query_map([since], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)? as u64,
            r.get::<_, i64>(2)? as u64,
        ))
    })? {
        let (pid, n, family) = row?;
        if let Some(a) = patients.get_mut(&pid) {
            a.emails += n;
            a.family_emails += family;
        }
    }
    // Episodes that began in the period, per patient (issue #17).
    let mut episodes: BTreeMap<String, u64> = BTreeMap::new();
    let mut st = conn.prepare_cached(
        "SELECT e.patient_id, p.facility_id, count(*) FROM episodes e
         JOIN patients p ON p.id = e.patient_id
         WHERE e.opened_at >= ?1 GROUP BY e.patient_id, p.facility_id",
    )?;
    for row in st.query_map([since], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)? as u64,
        ))
    })? {
        let (pid, facility, n) = row?;
        if scope.allows(&facility) {
            episodes.insert(pid, n);
        }
    }
    // Every patient of the scope counts towards patient-weeks, alerts or not.
    let mut st = conn.prepare_cached("SELECT facility_id FROM patients")?;
    let mut registered = 0u64;
    for f in st.query_map([], |r| r.get::<_, String>(0))? {
        registered += u64::from(scope.allows(&f?));
    }
    fn quantile(v: &mut [f64], q: f64) -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1])
    }
    let family_emails: u64 = patients.values().map(|a| a.family_emails).sum();
    let episode_count: u64 = episodes.values().sum();
    let finish = |m: BTreeMap<String, Acc>, per_patient: bool| -> Vec<BurdenRow> {
        let mut out: Vec<BurdenRow> = m
            .into_iter()
            .map(|(key, mut a)| BurdenRow {
                episodes: per_patient.then(|| episodes.get(&key).copied().unwrap_or(0)),
                key,
                name: a.name.take(),
                alerts: a.alerts,
                acknowledged: a.acknowledged,
                resolved: a.resolved,
                emails: a.emails,
                family_emails: a.family_emails,
                ack_median_s: quantile(&mut a.delays, 0.5),
                ack_p90_s: quantile(&mut a.delays, 0.9),
            })
            .collect();
        out.sort_by(|a, b| b.alerts.cmp(&a.alerts).then(a.key.cmp(&b.key)));
        out
    };
    let patient_weeks = registered as f64 * f64::from(days) / 7.0;
    let per_week = |n: u64| (patient_weeks > 0.0).then(|| n as f64 / patient_weeks);
    Ok(BurdenReport {
        days,
        since: ms_to_time(since),
        patients: registered,
        patient_weeks,
        episodes: episode_count,
        episodes_per_patient_week: per_week(episode_count),
        family_emails,
        family_emails_per_patient_week: per_week(family_emails),
        by_rule: finish(rules, false),
        by_patient: finish(patients, true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_domain::{Scope, Severity};

    const DAY: i64 = 86_400_000;

    #[test]
    fn families_and_episodes_are_counted_per_patient_week() {
        // p1's red alert e-mailed its primary family contact and its clinician (fixture).
        let c = crate::testing::notify_fixture();
        crate::episodes::open(&c, "p1", Severity::Red, 0).unwrap();
        c.execute(
            "INSERT INTO patients (num, id, name, created_at) VALUES (2, 'p2', 'Ông Calm', 0)",
            [],
        )
        .unwrap();
        let r = burden(&c, &Scope::All, 7, 7 * DAY).unwrap();
        assert_eq!(r.patients, 2);
        assert_eq!(r.patient_weeks, 2.0);
        assert_eq!(r.episodes, 1);
        assert_eq!(r.episodes_per_patient_week, Some(0.5));
        assert_eq!(r.family_emails, 1, "Lan only: the clinician is no family");
        assert_eq!(r.family_emails_per_patient_week, Some(0.5));
        let p1 = &r.by_patient[0];
        assert_eq!(
            (p1.key.as_str(), p1.episodes, p1.family_emails),
            ("p1", Some(1), 1)
        );
        assert_eq!(p1.emails, 2);
        assert_eq!(r.by_rule[0].episodes, None);
        // Another facility's caller sees none of it.
        let other = burden(&c, &Scope::Only(vec!["elsewhere".into()]), 7, 7 * DAY).unwrap();
        assert_eq!(
            (other.patients, other.episodes, other.family_emails),
            (0, 0, 0)
        );
        assert_eq!(other.family_emails_per_patient_week, None);
    }
}
