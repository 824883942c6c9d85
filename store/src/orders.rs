//! Per-patient threshold changes as clinical orders (issue #5): who ordered it, when, why, and
//! from when it applies. The `threshold_orders` table is append-only, so it is its own audit
//! log; the order in force for a (patient, rule) is the latest that has begun.
//!
//! [`PatientRules`] gives the ingest path each patient's rule set without a query per message:
//! it reloads the orders when one was added (by the API or by `vigil threshold set` from
//! another process: `max(id)` moves) or when a future-dated order begins.

use super::{ms_to_time, registry, Result, StoreError};
use crate::db::{params, Connection};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use vigil_alerting::rules::{Override, Trigger};
use vigil_alerting::RuleSet;
use vigil_domain::views::{PatientThreshold, ThresholdOrder};

/// A new order, as a clinician gives it.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub rule: String,
    pub threshold: Option<f64>,
    pub clear: Option<f64>,
    pub enabled: bool,
    pub reason: String,
    pub ordered_by: String,
    /// Epoch ms; `None`: now.
    pub effective_from: Option<i64>,
}

const COLUMNS: &str = "id, patient_id, rule, threshold, clear, enabled, reason, ordered_by,
    ordered_at, effective_from";

fn from_row(r: &crate::db::Row<'_>) -> crate::db::Result<ThresholdOrder> {
    Ok(ThresholdOrder {
        id: r.get(0)?,
        patient_id: r.get(1)?,
        rule: r.get(2)?,
        threshold: r.get(3)?,
        clear: r.get(4)?,
        enabled: r.get(5)?,
        reason: r.get(6)?,
        ordered_by: r.get(7)?,
        ordered_at: ms_to_time(r.get(8)?),
        effective_from: ms_to_time(r.get(9)?),
    })
}

fn as_override(o: &ThresholdOrder) -> Override {
    Override {
        rule: o.rule.clone(),
        threshold: o.threshold,
        clear: o.clear,
        enabled: o.enabled,
    }
}

/// Records an order after checking it: the patient exists, a reason and an author are given,
/// and the change applies to the rule (a threshold rule, no overlapping clear condition).
pub fn add(
    conn: &Connection,
    patient_id: &str,
    o: &NewOrder,
    rules: &RuleSet,
    now: i64,
) -> Result<ThresholdOrder> {
    if registry::patient(conn, patient_id)?.is_none() {
        return Err(StoreError::NotFound(format!("patient {patient_id}")));
    }
    if o.reason.trim().is_empty() {
        return Err(StoreError::Invalid(
            "reason is required: a threshold change is a clinical order".into(),
        ));
    }
    if o.ordered_by.trim().is_empty() {
        return Err(StoreError::Invalid("who ordered it is required".into()));
    }
    rules
        .overridden(&Override {
            rule: o.rule.clone(),
            threshold: o.threshold,
            clear: o.clear,
            enabled: o.enabled,
        })
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    let id: i64 = conn.query_row(
        "INSERT INTO threshold_orders (patient_id, rule, threshold, clear, enabled, reason,
                                       ordered_by, ordered_at, effective_from)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         RETURNING id",
        params![
            patient_id,
            o.rule,
            o.threshold,
            o.clear,
            o.enabled,
            o.reason.trim(),
            o.ordered_by.trim(),
            now,
            o.effective_from.unwrap_or(now)
        ],
        |r| r.get(0),
    )?;
    Ok(conn.query_row(
        &format!("SELECT {COLUMNS} FROM threshold_orders WHERE id = ?1"),
        [id],
        from_row,
    )?)
}

/// A patient's orders, oldest first (the audit trail).
pub fn list(conn: &Connection, patient_id: &str) -> Result<Vec<ThresholdOrder>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM threshold_orders WHERE patient_id = ?1
         ORDER BY effective_from, id"
    ))?;
    let rows = st.query_map([patient_id], from_row)?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

/// The threshold rules as they apply to `patient_id` at `now`, beside the rule file's.
pub fn thresholds(
    conn: &Connection,
    patient_id: &str,
    rules: &RuleSet,
    now: i64,
) -> Result<Vec<PatientThreshold>> {
    if registry::patient(conn, patient_id)?.is_none() {
        return Err(StoreError::NotFound(format!("patient {patient_id}")));
    }
    let in_force: Vec<ThresholdOrder> = list(conn, patient_id)?
        .into_iter()
        .filter(|o| o.effective_from.timestamp_millis() <= now)
        .collect();
    let mut out = Vec::new();
    for rule in rules.rules() {
        let Trigger::Threshold { metric, threshold } = rule.trigger else {
            continue;
        };
        let order = in_force.iter().rev().find(|o| o.rule == rule.id);
        let effective = match order {
            Some(o) if o.enabled => rules.overridden(&as_override(o)).ok(),
            _ => None,
        };
        let (when, clear) = match effective.map(|r| r.trigger) {
            Some(Trigger::Threshold { threshold: t, .. }) => (t.when, t.clear),
            _ => (threshold.when, threshold.clear),
        };
        out.push(PatientThreshold {
            rule: rule.id.clone(),
            metric: metric.as_str().to_string(),
            severity: rule.severity,
            default_when: threshold.when.describe(),
            default_clear: threshold.clear.describe(),
            when: when.describe(),
            clear: clear.describe(),
            enabled: order.is_none_or(|o| o.enabled),
            order_id: order.map(|o| o.id),
        });
    }
    Ok(out)
}

#[derive(Default)]
struct Loaded {
    /// `max(id)` when loaded; `None`: never loaded.
    max_id: Option<i64>,
    /// When the next future-dated order begins.
    next_effective: Option<i64>,
    /// Orders in force, per patient, oldest first.
    orders: HashMap<String, Vec<Override>>,
    /// Rule sets built so far.
    built: HashMap<String, Arc<RuleSet>>,
}

/// Each patient's rule set: the rule file's, with the patient's orders in force applied.
pub struct PatientRules {
    base: Arc<RuleSet>,
    loaded: Mutex<Loaded>,
}

impl PatientRules {
    pub fn new(base: Arc<RuleSet>) -> PatientRules {
        PatientRules {
            base,
            loaded: Mutex::new(Loaded::default()),
        }
    }

    /// Reloads the orders when one was added or a future one began; once per write job (one
    /// indexed `max(id)` read).
    pub fn refresh(&self, conn: &Connection, now: i64) -> Result<()> {
        let max_id: i64 = conn
            .prepare_cached("SELECT coalesce(max(id), 0) FROM threshold_orders")?
            .query_row([], |r| r.get(0))?;
        let mut l = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if l.max_id == Some(max_id) && l.next_effective.is_none_or(|t| t > now) {
            return Ok(());
        }
        let mut orders: HashMap<String, Vec<Override>> = HashMap::new();
        let mut next_effective = None;
        let mut st = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM threshold_orders ORDER BY effective_from, id"
        ))?;
        for o in st.query_map([], from_row)? {
            let o = o?;
            let from = o.effective_from.timestamp_millis();
            if from > now {
                next_effective = Some(next_effective.map_or(from, |t: i64| t.min(from)));
                continue;
            }
            orders
                .entry(o.patient_id.clone())
                .or_default()
                .push(as_override(&o));
        }
        *l = Loaded {
            max_id: Some(max_id),
            next_effective,
            orders,
            built: HashMap::new(),
        };
        Ok(())
    }

    /// `patient_id`'s rule set (the rule file's when no order is in force).
    pub fn get(&self, patient_id: &str) -> Arc<RuleSet> {
        let mut l = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        let Some(orders) = l.orders.get(patient_id) else {
            return self.base.clone();
        };
        let built = Arc::new(self.base.for_patient(orders));
        l.built
            .entry(patient_id.to_string())
            .or_insert(built)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Connection {
        let c = crate::testing::connection();
        c.execute_batch(
            "INSERT INTO patients (num, id, name, created_at) VALUES (1, 'p1', 'Ông Tư', 0),
                                                                   (2, 'p2', 'Bà Năm', 0);",
        )
        .unwrap();
        c
    }

    fn order(rule: &str, threshold: Option<f64>, reason: &str, from: Option<i64>) -> NewOrder {
        NewOrder {
            rule: rule.into(),
            threshold,
            clear: None,
            enabled: true,
            reason: reason.into(),
            ordered_by: "bs.lan".into(),
            effective_from: from,
        }
    }

    #[test]
    fn orders_need_a_reason_and_a_rule_they_fit() {
        let c = store();
        let rules = RuleSet::defaults();
        let err = add(
            &c,
            "p1",
            &order("spo2_low", Some(85.0), "  ", None),
            &rules,
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("reason is required"), "{err}");
        let err = add(&c, "p1", &order("sos", Some(1.0), "x", None), &rules, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a threshold rule"), "{err}");
        assert!(matches!(
            add(
                &c,
                "nobody",
                &order("spo2_low", Some(85.0), "x", None),
                &rules,
                0
            ),
            Err(StoreError::NotFound(_))
        ));
        let o = add(
            &c,
            "p1",
            &order("spo2_low", Some(85.0), "COPD", None),
            &rules,
            5,
        )
        .unwrap();
        assert_eq!(
            (o.ordered_by.as_str(), o.effective_from.timestamp_millis()),
            ("bs.lan", 5)
        );
    }

    #[test]
    fn the_cache_follows_new_and_future_orders() {
        let c = store();
        let rules = Arc::new(RuleSet::defaults());
        let pr = PatientRules::new(rules.clone());
        pr.refresh(&c, 0).unwrap();
        assert!(
            Arc::ptr_eq(&pr.get("p1"), &rules),
            "no orders: the shared rule set"
        );

        add(
            &c,
            "p1",
            &order("spo2_low", Some(85.0), "COPD", None),
            &rules,
            10,
        )
        .unwrap();
        add(
            &c,
            "p1",
            &order("spo2_low", Some(80.0), "later", Some(1_000)),
            &rules,
            10,
        )
        .unwrap();
        pr.refresh(&c, 20).unwrap();
        let limit = |rs: &RuleSet| match rs.get("spo2_low").unwrap().trigger {
            Trigger::Threshold { threshold, .. } => threshold.when.value(),
            _ => unreachable!(),
        };
        assert_eq!(limit(&pr.get("p1")), 85.0);
        assert_eq!(
            limit(&pr.get("p2")),
            90.0,
            "other patients keep the rule file's"
        );
        pr.refresh(&c, 1_000).unwrap();
        assert_eq!(limit(&pr.get("p1")), 80.0, "the future order began");

        let t = thresholds(&c, "p1", &rules, 1_000).unwrap();
        let spo2 = t.iter().find(|t| t.rule == "spo2_low").unwrap();
        assert_eq!(
            (spo2.default_when.as_str(), spo2.when.as_str()),
            ("< 90", "< 80")
        );
        assert_eq!(
            list(&c, "p1").unwrap().len(),
            2,
            "both kept in the audit trail"
        );
    }
}
