//! Threshold rules over time (issue #5): a breach must **persist** before it fires, and a fired
//! rule clears only when a **separate clear condition** has held long enough (hysteresis).
//!
//! Why: a 15 s persistence delay cut SpO₂ alarms by 70 % at a 90 % limit (Welch 2011), and a
//! value hovering at the limit must not open and close an alert with every reading (clinical
//! reference §6). Example: SpO₂ < 90 % for 60 s fires; ≥ 92 % for 2 min clears.
//!
//! [`Threshold::step`] is a pure function of (rule, state, reading): the caller keeps one
//! [`State`] per (patient, rule), feeds it readings in time order, and acts on the returned
//! [`Step`]. It never sees late readings (a hub flushing hours-old data updates history, never
//! real-time alerts): the caller filters them out. Readings older than the last one seen are
//! ignored, so a redelivery or a reordering cannot move a timer backwards.

use crate::condition::Condition;
use serde::{Deserialize, Serialize};

/// When a threshold rule fires and when it clears. Times are milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    /// The breach, e.g. `< 90`.
    pub when: Condition,
    /// How long the breach must hold before the rule fires; 0 fires on the first reading.
    pub for_ms: i64,
    /// The clear condition, e.g. `≥ 92`; values between the two (90–92) neither fire nor clear.
    pub clear: Condition,
    /// How long the clear condition must hold before the rule clears; 0 clears at once.
    pub clear_for_ms: i64,
    /// Readings further apart than this restart a pending breach or clearing: nobody saw what
    /// happened in between, so "held for 60 s" must be observed, not assumed.
    pub max_gap_ms: i64,
    /// Confirm by re-measuring (spot-check devices such as a BP cuff): a first breach is only
    /// [`Step::Unconfirmed`]; a second breaching reading within this time fires. 0: off. Not
    /// combined with `for_ms`.
    pub confirm_within_ms: i64,
}

/// Where one (patient, rule) stands. Serialisable so that the store can keep it across
/// restarts (a persistence timer running at a crash is not silently reset).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Nothing wrong (or nothing seen yet).
    #[default]
    Normal,
    /// Breaching since `since`, not yet for long enough; `last` is the latest reading's time.
    Pending { since: i64, last: i64 },
    /// Fired at `since`. `clearing_since` is when the clear condition began to hold, if it does.
    Firing {
        since: i64,
        last: i64,
        clearing_since: Option<i64>,
    },
}

/// What a reading did to a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing to report (normal, pending, inside the hysteresis band, or an old reading).
    Nothing,
    /// A first breach of a confirm-by-re-measure rule: ask for a re-measure.
    Unconfirmed,
    /// The breach has persisted: open an alert (or escalate the condition's active one).
    Fire,
    /// Still breaching while firing: update the open alert (count, worst and last value).
    Repeat,
    /// The clear condition has held long enough: resolve the alert automatically.
    Clear,
}

impl Threshold {
    /// Fires on the first breaching reading and clears on the first one that does not breach:
    /// a plain threshold.
    pub fn immediate(when: Condition) -> Threshold {
        Threshold {
            when,
            for_ms: 0,
            clear: when.negated(),
            clear_for_ms: 0,
            max_gap_ms: 0,
            confirm_within_ms: 0,
        }
    }

    /// Feeds one reading (time `ts`, `value`) to the rule's `state`.
    pub fn step(&self, state: &mut State, ts: i64, value: f64) -> Step {
        let gap_ok = |last: i64| self.max_gap_ms <= 0 || ts - last <= self.max_gap_ms;
        if self.confirm_within_ms > 0 {
            if let Some(step) = self.confirm(state, ts, value) {
                return step;
            }
        }
        match *state {
            State::Normal => {
                if !self.when.matches(value) {
                    return Step::Nothing;
                }
                *state = State::Pending {
                    since: ts,
                    last: ts,
                };
                self.fire_if_held(state, ts)
            }
            State::Pending { since, last } => {
                if ts < last {
                    return Step::Nothing;
                }
                if !self.when.matches(value) {
                    *state = State::Normal;
                    return Step::Nothing;
                }
                let since = if gap_ok(last) { since } else { ts };
                *state = State::Pending { since, last: ts };
                self.fire_if_held(state, ts)
            }
            State::Firing {
                since,
                last,
                clearing_since,
            } => {
                if ts < last {
                    return Step::Nothing;
                }
                if self.when.matches(value) {
                    *state = State::Firing {
                        since,
                        last: ts,
                        clearing_since: None,
                    };
                    return Step::Repeat;
                }
                if !self.clear.matches(value) {
                    // Inside the hysteresis band: still firing, and not clearing either.
                    *state = State::Firing {
                        since,
                        last: ts,
                        clearing_since: None,
                    };
                    return Step::Nothing;
                }
                let from = match clearing_since {
                    Some(c) if gap_ok(last) => c,
                    _ => ts,
                };
                if ts - from >= self.clear_for_ms {
                    *state = State::Normal;
                    Step::Clear
                } else {
                    *state = State::Firing {
                        since,
                        last: ts,
                        clearing_since: Some(from),
                    };
                    Step::Nothing
                }
            }
        }
    }

    /// Confirm by re-measure, before the rule fires; `None` once it fires (then the usual
    /// repeat and clear logic applies). Guidance: BP re-measured after 5 min (AHA), SpO₂ after
    /// 30–60 s (Vietnam MoH); clinical reference §6.
    fn confirm(&self, state: &mut State, ts: i64, value: f64) -> Option<Step> {
        let breach = self.when.matches(value);
        match *state {
            State::Normal if breach => {
                *state = State::Pending {
                    since: ts,
                    last: ts,
                };
                Some(Step::Unconfirmed)
            }
            State::Normal => Some(Step::Nothing),
            State::Pending { last, .. } if ts < last => Some(Step::Nothing),
            State::Pending { since, .. } if breach && ts - since <= self.confirm_within_ms => {
                *state = State::Firing {
                    since: ts,
                    last: ts,
                    clearing_since: None,
                };
                Some(Step::Fire)
            }
            State::Pending { .. } if breach => {
                // Too late to confirm the first one: this is a new first breach.
                *state = State::Pending {
                    since: ts,
                    last: ts,
                };
                Some(Step::Unconfirmed)
            }
            State::Pending { .. } => {
                // The re-measure did not confirm it.
                *state = State::Normal;
                Some(Step::Nothing)
            }
            State::Firing { .. } => None,
        }
    }

    fn fire_if_held(&self, state: &mut State, ts: i64) -> Step {
        match *state {
            State::Pending { since, .. } if ts - since >= self.for_ms => {
                *state = State::Firing {
                    since: ts,
                    last: ts,
                    clearing_since: None,
                };
                Step::Fire
            }
            _ => Step::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Step::*;

    const S: i64 = 1000;

    /// SpO₂ < 90 for 60 s fires; ≥ 92 for 2 min clears; readings more than 30 s apart restart.
    fn spo2() -> Threshold {
        Threshold {
            when: Condition::Below(90.0),
            for_ms: 60 * S,
            clear: Condition::AtOrAbove(92.0),
            clear_for_ms: 120 * S,
            max_gap_ms: 30 * S,
            confirm_within_ms: 0,
        }
    }

    /// Feeds (seconds, value) pairs; returns the steps that were not `Nothing`, with their time.
    fn run(rule: &Threshold, state: &mut State, readings: &[(i64, f64)]) -> Vec<(i64, Step)> {
        readings
            .iter()
            .map(|&(t, v)| (t, rule.step(state, t * S, v)))
            .filter(|(_, s)| *s != Nothing)
            .collect()
    }

    /// A reading every 5 s from `from` to `to` seconds (inclusive) at `value`.
    fn every5(from: i64, to: i64, value: f64) -> Vec<(i64, f64)> {
        (from..=to).step_by(5).map(|t| (t, value)).collect()
    }

    #[test]
    fn a_breach_fires_only_once_it_has_persisted() {
        let mut s = State::default();
        let steps = run(&spo2(), &mut s, &every5(0, 70, 87.0));
        assert_eq!(steps[0], (60, Fire), "{steps:?}");
        assert!(steps[1..].iter().all(|(_, st)| *st == Repeat), "{steps:?}");
    }

    #[test]
    fn a_short_dip_never_fires() {
        let mut s = State::default();
        let mut readings = every5(0, 55, 87.0);
        readings.push((60, 95.0));
        readings.extend(every5(65, 110, 87.0)); // a new dip: its own 60 s start at 65
        let steps = run(&spo2(), &mut s, &readings);
        assert_eq!(steps, vec![]);
        assert_eq!(
            s,
            State::Pending {
                since: 65 * S,
                last: 110 * S
            }
        );
    }

    #[test]
    fn clearing_needs_the_clear_condition_for_its_own_duration() {
        let mut s = State::default();
        run(&spo2(), &mut s, &every5(0, 60, 87.0));
        // 91 is inside the band (not < 90, not ≥ 92): neither repeats nor clears.
        assert_eq!(run(&spo2(), &mut s, &every5(65, 300, 91.0)), vec![]);
        // ≥ 92 from 305 s: clears at 425 s (2 min later), not before.
        let steps = run(&spo2(), &mut s, &every5(305, 430, 93.0));
        assert_eq!(steps, vec![(425, Clear)]);
        assert_eq!(s, State::Normal);
    }

    #[test]
    fn flapping_around_the_limit_gives_one_alert_not_twenty() {
        // 89, 91, 89, 91, … every 5 s for 10 minutes: with a plain threshold that would open
        // and close an alert on every other reading.
        let readings: Vec<(i64, f64)> = (0..120)
            .map(|i| (i * 5, if i % 2 == 0 { 89.0 } else { 91.0 }))
            .collect();
        let mut s = State::default();
        let steps = run(&spo2(), &mut s, &readings);
        assert_eq!(
            steps,
            vec![],
            "91 breaks the persistence of < 90: never fires"
        );

        // The same flapping once the alert is open (a sustained breach first): one alert, kept
        // open, never cleared, because 91 does not reach the clear level.
        let mut s = State::default();
        let mut readings = every5(0, 60, 85.0);
        readings.extend((13..133).map(|i| (i * 5, if i % 2 == 0 { 89.0 } else { 91.0 })));
        let steps = run(&spo2(), &mut s, &readings);
        assert_eq!(steps.iter().filter(|(_, s)| *s == Fire).count(), 1);
        assert_eq!(steps.iter().filter(|(_, s)| *s == Clear).count(), 0);

        // With a plain threshold the same stream would have fired 61 times.
        let plain = Threshold::immediate(Condition::Below(90.0));
        let mut s = State::default();
        let fired = run(&plain, &mut s, &readings)
            .iter()
            .filter(|(_, s)| *s == Fire)
            .count();
        assert_eq!(fired, 61);
    }

    #[test]
    fn gaps_restart_what_was_not_observed() {
        let mut s = State::default();
        // 87 at 0 s, then nothing for 10 minutes, then 87 again: not "10 minutes below 90".
        assert_eq!(run(&spo2(), &mut s, &[(0, 87.0), (600, 87.0)]), vec![]);
        assert_eq!(
            s,
            State::Pending {
                since: 600 * S,
                last: 600 * S
            }
        );
        // Firing, clearing from 700 s, then a 10-minute gap: the clearing restarts.
        let mut s = State::default();
        run(&spo2(), &mut s, &every5(0, 60, 87.0));
        assert_eq!(run(&spo2(), &mut s, &[(700, 95.0), (1300, 95.0)]), vec![]);
        assert_eq!(
            run(&spo2(), &mut s, &every5(1305, 1420, 95.0)),
            vec![(1420, Clear)]
        );
    }

    #[test]
    fn older_readings_never_move_a_timer() {
        let mut s = State::default();
        run(&spo2(), &mut s, &every5(0, 30, 87.0));
        let before = s;
        assert_eq!(spo2().step(&mut s, 10 * S, 95.0), Nothing);
        assert_eq!(s, before, "a reordered reading is ignored");
    }

    #[test]
    fn immediate_rules_fire_and_clear_on_single_readings() {
        let r = Threshold::immediate(Condition::AtOrAbove(180.0));
        let mut s = State::default();
        assert_eq!(r.step(&mut s, 0, 185.0), Fire);
        assert_eq!(r.step(&mut s, S, 181.0), Repeat);
        assert_eq!(r.step(&mut s, 2 * S, 150.0), Clear);
        assert_eq!(
            r.step(&mut s, 3 * S, 180.0),
            Fire,
            "a new breach after clearing"
        );
    }

    #[test]
    fn a_spot_check_breach_asks_for_a_re_measure_and_a_confirming_one_fires() {
        let bp = Threshold {
            confirm_within_ms: 300 * S,
            ..Threshold::immediate(Condition::AtOrAbove(180.0))
        };
        // Confirmed: 185, then 183 four minutes later.
        let mut s = State::default();
        assert_eq!(
            run(&bp, &mut s, &[(0, 185.0), (240, 183.0), (300, 181.0)]),
            vec![(0, Unconfirmed), (240, Fire), (300, Repeat)]
        );
        // Not confirmed: 185, then 150.
        let mut s = State::default();
        assert_eq!(
            run(&bp, &mut s, &[(0, 185.0), (240, 150.0)]),
            vec![(0, Unconfirmed)]
        );
        assert_eq!(s, State::Normal);
        // A second high reading after the window is a new first breach, not a confirmation.
        let mut s = State::default();
        assert_eq!(
            run(&bp, &mut s, &[(0, 185.0), (900, 186.0), (1000, 184.0)]),
            vec![(0, Unconfirmed), (900, Unconfirmed), (1000, Fire)]
        );
    }

    #[test]
    fn state_round_trips_through_json_for_the_store() {
        let s = State::Firing {
            since: 1,
            last: 2,
            clearing_since: Some(2),
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            r#"{"state":"firing","since":1,"last":2,"clearing_since":2}"#
        );
        assert_eq!(serde_json::from_str::<State>(&json).unwrap(), s);
    }
}
