//! Timed rules' states in the store (`rule_state`, schema v4), for one patient during one write
//! job: read on first use, written when they change, inside the job's transaction, so a state
//! commits with the reading that moved it (and rolls back with it).

use super::Result;
use crate::db::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use vigil_alerting::engine::State;
use vigil_alerting::RuleStates;

pub struct StoreRuleStates<'c> {
    conn: &'c Connection,
    patient_num: i64,
    seen: HashMap<String, State>,
    /// The first storage error; the caller fails the job with it (the trait cannot return it).
    pub error: Option<crate::db::Error>,
}

impl<'c> StoreRuleStates<'c> {
    pub fn new(conn: &'c Connection, patient_num: i64) -> Self {
        StoreRuleStates {
            conn,
            patient_num,
            seen: HashMap::new(),
            error: None,
        }
    }

    /// Ends the job's use: the first error, if any.
    pub fn finish(self) -> Result<()> {
        match self.error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    fn load(&self, rule: &str) -> crate::db::Result<State> {
        let json: Option<String> = self
            .conn
            .prepare_cached("SELECT state FROM rule_state WHERE patient_num = ?1 AND rule = ?2")?
            .query_row(params![self.patient_num, rule], |r| r.get(0))
            .optional()?;
        // A row this version cannot read (written by a newer one) starts over from normal:
        // the timer restarts, which delays an alert, never invents one.
        Ok(json
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default())
    }

    fn store(&self, rule: &str, state: State) -> crate::db::Result<()> {
        if state == State::Normal {
            self.conn
                .prepare_cached("DELETE FROM rule_state WHERE patient_num = ?1 AND rule = ?2")?
                .execute(params![self.patient_num, rule])?;
        } else {
            let json = serde_json::to_string(&state).expect("a state serialises");
            self.conn
                .prepare_cached(
                    "INSERT INTO rule_state (patient_num, rule, state) VALUES (?1, ?2, ?3)
                     ON CONFLICT (patient_num, rule) DO UPDATE SET state = excluded.state",
                )?
                .execute(params![self.patient_num, rule, json])?;
        }
        Ok(())
    }
}

impl RuleStates for StoreRuleStates<'_> {
    fn get(&mut self, rule: &str) -> State {
        if let Some(s) = self.seen.get(rule) {
            return *s;
        }
        let s = match self.load(rule) {
            Ok(s) => s,
            Err(e) => {
                self.error.get_or_insert(e);
                State::Normal
            }
        };
        self.seen.insert(rule.to_string(), s);
        s
    }

    fn set(&mut self, rule: &str, state: State) {
        if self.seen.get(rule) == Some(&state) {
            return;
        }
        if let Err(e) = self.store(rule, state) {
            self.error.get_or_insert(e);
        }
        match self.seen.get_mut(rule) {
            Some(s) => *s = state,
            None => {
                self.seen.insert(rule.to_string(), state);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_persist_per_patient_and_rule_and_normal_leaves_no_row() {
        let c = crate::testing::connection();
        let firing = State::Firing {
            since: 5,
            last: 9,
            clearing_since: None,
        };
        {
            let mut s = StoreRuleStates::new(&c, 1);
            assert_eq!(s.get("spo2_low"), State::Normal);
            s.set("spo2_low", firing);
            s.finish().unwrap();
        }
        // A later job (or a restart) reads it back; another patient is unaffected.
        let mut s = StoreRuleStates::new(&c, 1);
        assert_eq!(s.get("spo2_low"), firing);
        assert_eq!(StoreRuleStates::new(&c, 2).get("spo2_low"), State::Normal);
        s.set("spo2_low", State::Normal);
        s.finish().unwrap();
        let rows: i64 = c
            .query_row("SELECT count(*) FROM rule_state", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0);
    }
}
