//! What a rule is and what evaluating one produces: the rule (its trigger, severity and
//! source), a clinician's per-patient override, a breach, and the traits through which rules
//! see a patient's history and timed states. The evaluation is `rules::RuleSet`.

use crate::condition::Condition;
use crate::engine::{State, Threshold};
use vigil_domain::{EventKind, Metric, Severity};

#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A metric against a threshold, with its timing (persistence, hysteresis).
    Threshold {
        metric: Metric,
        threshold: Threshold,
    },
    Event(EventKind),
    /// The patient's NEWS2 total reaches `at_least`, or (with `single_three`) any one
    /// parameter scores 3 (RCP 2017: a single 3 calls for an urgent ward-based response).
    News2 {
        at_least: u8,
        single_three: bool,
    },
    /// Rate of change: the reading differs from the lowest (`rise`) or highest (`fall`) of the
    /// patient's readings of the metric in the `within_ms` before it by at least `by` (heart
    /// failure: weight +2 kg in 3 days).
    Change {
        metric: Metric,
        rise: bool,
        by: f64,
        within_ms: i64,
    },
    /// The reading is `by` above (or below) the patient's own baseline: the mean of their
    /// readings in the `window_ms` before the last day (older adults: fever is +1.1 °C over
    /// baseline). No baseline yet (fewer than [`BASELINE_MIN_READINGS`]): no alert.
    Baseline {
        metric: Metric,
        above: bool,
        by: f64,
        window_ms: i64,
    },
    /// A device sent nothing for `intervals` times its expected interval (missing data, device
    /// offline). Checked by the gateway's clock, not by readings.
    Silent {
        intervals: f64,
    },
    /// Adherence: a reading of `metric` is expected every day by `by` (the patient's local
    /// time), from patients who measured it in the past week. Checked by the gateway's clock.
    ExpectBy {
        metric: Metric,
        by: chrono::NaiveTime,
    },
}

/// Readings needed before a baseline counts.
pub const BASELINE_MIN_READINGS: u64 = 3;
/// The most recent stretch left out of a baseline, so a fever that began yesterday does not
/// raise the baseline it is measured against.
pub const BASELINE_GAP_MS: i64 = 24 * 3_600_000;

/// Summary of a patient's readings of one metric over a time range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeStats {
    pub n: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

/// A patient's past readings, wherever they are kept (the gateway: its store's rollups).
pub trait History {
    /// Stats of the patient's readings of `metric` with `from_ms <= ts < to_ms`; `None` when
    /// there are none.
    fn range(&mut self, metric: Metric, from_ms: i64, to_ms: i64) -> Option<RangeStats>;
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub severity: Severity,
    pub trigger: Trigger,
    /// Why the threshold is what it is.
    pub source: String,
    /// The rule states when its condition is over (a `clear_*` comparison or `clear_for`), so
    /// its alert resolves automatically once that holds. Without one an alert stays until a
    /// clinician resolves it: a latching alarm (IEC 60601-1-8).
    pub resolves: bool,
}

impl Rule {
    /// Whether the rule needs state over time: persistence, a stated clear condition or a gap
    /// limit. Other threshold rules fire on every breaching reading.
    pub fn is_timed(&self) -> bool {
        match self.trigger {
            Trigger::Threshold { threshold, .. } => {
                threshold.for_ms > 0
                    || self.resolves
                    || threshold.max_gap_ms > 0
                    || threshold.confirm_within_ms > 0
            }
            Trigger::Event(_)
            | Trigger::News2 { .. }
            | Trigger::Change { .. }
            | Trigger::Baseline { .. }
            | Trigger::Silent { .. }
            | Trigger::ExpectBy { .. } => false,
        }
    }
}

/// A per-patient change to one threshold rule: what a clinical order says (issue #5: "per-patient
/// threshold changes are clinical orders"). `None` keeps the rule file's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub rule: String,
    /// The new threshold, compared the same way (`spo2_low`'s `< 90` becomes `< 85`).
    pub threshold: Option<f64>,
    /// The new clear value (hysteresis), compared the same way as the rule's clear condition.
    pub clear: Option<f64>,
    /// `false`: the rule does not apply to this patient.
    pub enabled: bool,
}

/// Why an order cannot apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    #[error("no rule {0:?}")]
    UnknownRule(String),
    #[error("rule {0:?} is not a threshold rule: only thresholds change per patient")]
    NotThreshold(String),
    #[error("rule {rule:?}: the clear condition {clear} overlaps the alert condition {when}; set clear too")]
    Overlap {
        rule: String,
        when: String,
        clear: String,
    },
    #[error("rule {0:?}: values must be finite numbers")]
    NotFinite(String),
}

/// A rule that fired, with what made it fire.
#[derive(Debug, Clone, PartialEq)]
pub struct Breach {
    pub rule: String,
    /// The clinical condition the rule watches: `{metric}_low` / `{metric}_high` for
    /// thresholds, the rule id for events. Rules sharing a condition are severity levels of one
    /// alarm (SpO₂ < 94 amber, < 90 red): an active alert escalates instead of a second one
    /// opening (a central station escalates an alarm's priority, it does not add an alarm).
    pub condition: String,
    pub severity: Severity,
    pub metric: Option<Metric>,
    pub value: Option<f64>,
    /// The threshold that was crossed, as the rule states it (`< 90`); none for events.
    pub limit: Option<String>,
    /// Short English description for the dashboard and logs, e.g. `spo2 85 % < 90`.
    pub message: String,
}

/// What a reading did to one condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Open an alert, or update or escalate the condition's active one.
    Breach(Breach),
    /// The condition is over (its rule's clear condition held long enough): resolve its active
    /// alert automatically.
    Cleared {
        condition: String,
        /// The rule whose clear condition held.
        rule: String,
        /// Short English description, e.g. `spo2 95 % ≥ 92 for 120 s`.
        message: String,
    },
}

/// The timed rules' states of one patient, wherever they are kept (the gateway: its store, so
/// that a running timer survives a restart).
pub trait RuleStates {
    /// The rule's state; [`State::Normal`] when none is kept.
    fn get(&mut self, rule: &str) -> State;
    fn set(&mut self, rule: &str, state: State);
}

/// States in memory (tests, benchmarks).
impl RuleStates for std::collections::HashMap<String, State> {
    fn get(&mut self, rule: &str) -> State {
        std::collections::HashMap::get(self, rule)
            .copied()
            .unwrap_or_default()
    }
    fn set(&mut self, rule: &str, state: State) {
        match self.get_mut(rule) {
            Some(s) => *s = state,
            None => {
                self.insert(rule.to_string(), state);
            }
        }
    }
}

/// The condition a threshold watches: `spo2_low`, `temperature_high`, ...
pub fn condition_of(metric: Metric, when: Condition) -> String {
    let dir = match when {
        Condition::Above(_) | Condition::AtOrAbove(_) => "high",
        Condition::Below(_) | Condition::AtOrBelow(_) => "low",
    };
    format!("{}_{dir}", metric.as_str())
}
