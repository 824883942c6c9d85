//! Default threshold rules (issue #2 "The slice, end to end"; clinical reference §1, §2, §7).
//!
//! A rule compares one metric with a threshold, or matches a device event. Evaluation is pure.
//! Each rule id is a public name (it appears in the API and in e-mails): keep ids stable.
//! The values are defaults pending clinical sign-off; a patient's clinical orders change them for
//! that patient ([`RuleSet::for_patient`]).

use crate::engine::{State, Step, Threshold};
use std::fmt::Write as _;
use vigil_domain::{EventKind, Metric, Reading, Severity};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    Below(f64),
    AtOrAbove(f64),
    Above(f64),
    AtOrBelow(f64),
}

impl Condition {
    pub fn matches(self, v: f64) -> bool {
        match self {
            Condition::Below(t) => v < t,
            Condition::AtOrBelow(t) => v <= t,
            Condition::Above(t) => v > t,
            Condition::AtOrAbove(t) => v >= t,
        }
    }

    /// The opposite comparison at the same threshold (`< 90` → `≥ 90`): the clear condition of
    /// a rule without hysteresis.
    pub fn negated(self) -> Condition {
        match self {
            Condition::Below(t) => Condition::AtOrAbove(t),
            Condition::AtOrAbove(t) => Condition::Below(t),
            Condition::Above(t) => Condition::AtOrBelow(t),
            Condition::AtOrBelow(t) => Condition::Above(t),
        }
    }

    /// Whether some value satisfies both comparisons (a clear condition must not).
    pub fn overlaps(self, other: Condition) -> bool {
        use Condition::*;
        let (low, high) = match (self, other) {
            (Below(_) | AtOrBelow(_), Above(_) | AtOrAbove(_)) => (self, other),
            (Above(_) | AtOrAbove(_), Below(_) | AtOrBelow(_)) => (other, self),
            _ => return true, // same direction: both hold far enough out
        };
        match (low, high) {
            (AtOrBelow(a), AtOrAbove(b)) => b <= a,
            (Below(a) | AtOrBelow(a), Above(b) | AtOrAbove(b)) => b < a,
            _ => unreachable!("sorted above"),
        }
    }

    pub fn value(self) -> f64 {
        match self {
            Condition::Below(t)
            | Condition::AtOrBelow(t)
            | Condition::Above(t)
            | Condition::AtOrAbove(t) => t,
        }
    }

    /// The same comparison at another value.
    pub fn with_value(self, v: f64) -> Condition {
        match self {
            Condition::Below(_) => Condition::Below(v),
            Condition::AtOrBelow(_) => Condition::AtOrBelow(v),
            Condition::Above(_) => Condition::Above(v),
            Condition::AtOrAbove(_) => Condition::AtOrAbove(v),
        }
    }

    /// The comparison as people read it, e.g. `< 90`.
    pub fn describe(self) -> String {
        match self {
            Condition::Below(t) => format!("< {t}"),
            Condition::AtOrBelow(t) => format!("≤ {t}"),
            Condition::Above(t) => format!("> {t}"),
            Condition::AtOrAbove(t) => format!("≥ {t}"),
        }
    }
}

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

#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl Default for RuleSet {
    fn default() -> Self {
        Self::defaults()
    }
}

impl RuleSet {
    /// The built-in rules (`alerting/rules/default.toml`). Red rules e-mail the family; amber
    /// and yellow ones show on the dashboard only (alarm fatigue, clinical reference §6:
    /// families get what matters).
    pub fn defaults() -> Self {
        Self::from_toml(crate::rulefile::DEFAULT).expect("the built-in rule file is valid")
    }

    /// Rules from a rule file's text (docs/rules.md).
    pub fn from_toml(text: &str) -> Result<Self, crate::rulefile::RuleFileError> {
        Ok(RuleSet {
            rules: crate::rulefile::parse(text)?,
        })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// `rule` with an order applied (unchanged when the order changes nothing), or why the
    /// order cannot apply. A rule whose clear condition is simply "no longer breaching" keeps
    /// it so: its clear value moves with the threshold.
    pub fn overridden(&self, o: &Override) -> Result<Rule, OverrideError> {
        let rule = self
            .get(&o.rule)
            .ok_or_else(|| OverrideError::UnknownRule(o.rule.clone()))?;
        let Trigger::Threshold { metric, threshold } = rule.trigger else {
            return Err(OverrideError::NotThreshold(o.rule.clone()));
        };
        if o.threshold.is_some_and(|v| !v.is_finite()) || o.clear.is_some_and(|v| !v.is_finite()) {
            return Err(OverrideError::NotFinite(o.rule.clone()));
        }
        let mut t = threshold;
        let plain_clear = t.clear == t.when.negated();
        if let Some(v) = o.threshold {
            t.when = t.when.with_value(v);
            if plain_clear {
                t.clear = t.when.negated();
            }
        }
        if let Some(v) = o.clear {
            t.clear = t.clear.with_value(v);
        }
        if t.when.overlaps(t.clear) {
            return Err(OverrideError::Overlap {
                rule: o.rule.clone(),
                when: t.when.describe(),
                clear: t.clear.describe(),
            });
        }
        let mut r = rule.clone();
        r.trigger = Trigger::Threshold {
            metric,
            threshold: t,
        };
        Ok(r)
    }

    /// The most severe threshold rule that `value` of `metric` breaches on its own, ignoring
    /// persistence and confirmation: how the ward view colours a patient's latest value
    /// against their limits (issue #6).
    pub fn flag(&self, metric: Metric, value: f64) -> Option<Severity> {
        self.rules
            .iter()
            .filter_map(|r| match r.trigger {
                Trigger::Threshold {
                    metric: m,
                    threshold,
                } if m == metric && threshold.when.matches(value) => Some(r.severity),
                _ => None,
            })
            .min_by_key(|s| s.rank())
    }

    /// The rules as they apply to one patient: every order applied, disabled rules left out.
    /// Orders that cannot apply (checked when they were made; a new rule file may have changed
    /// the rule since) are skipped with a warning, keeping the rule file's value.
    pub fn for_patient(&self, orders: &[Override]) -> RuleSet {
        let mut rules = Vec::with_capacity(self.rules.len());
        for rule in &self.rules {
            match orders.iter().rev().find(|o| o.rule == rule.id) {
                None => rules.push(rule.clone()),
                Some(o) if !o.enabled => {}
                Some(o) => match self.overridden(o) {
                    Ok(r) => rules.push(r),
                    Err(err) => {
                        tracing::warn!(rule = %rule.id, error = %err, "order not applied");
                        rules.push(rule.clone());
                    }
                },
            }
        }
        RuleSet { rules }
    }

    /// What the reading does to the rules of its metric, one [`Outcome`] per condition at most.
    ///
    /// Rules without timing fire on every breaching reading (no state). Timed rules
    /// ([`Rule::is_timed`]) step their [`State`] for this patient in `states`. Per condition,
    /// the most severe rule that breaches (or fires, or repeats) wins: SpO₂ 85 breaches both
    /// `spo2_low` and `spo2_below_target`, one alert. When nothing of a condition breaches and a
    /// timed rule that resolves its alerts has just cleared — and no other timed rule of the
    /// condition is still firing — the condition clears.
    pub fn evaluate_reading(&self, r: &Reading, states: &mut dyn RuleStates) -> Vec<Outcome> {
        let mut out: Vec<Outcome> = Vec::new();
        // Conditions a timed rule cleared in, and conditions still firing (so not cleared).
        let mut cleared: Vec<(String, &Rule)> = Vec::new();
        let mut still_firing: Vec<String> = Vec::new();
        for rule in &self.rules {
            let Trigger::Threshold { metric, threshold } = rule.trigger else {
                continue;
            };
            if metric != r.metric {
                continue;
            }
            // The condition's name is built only when needed: most readings breach nothing.
            let mut unconfirmed = false;
            let breached = if rule.is_timed() {
                let mut state = states.get(&rule.id);
                let step = threshold.step(&mut state, r.ts.timestamp_millis(), r.value);
                states.set(&rule.id, state);
                if matches!(state, State::Firing { .. }) {
                    still_firing.push(condition_of(metric, threshold.when));
                }
                match step {
                    Step::Fire | Step::Repeat => true,
                    Step::Unconfirmed => {
                        unconfirmed = true;
                        true
                    }
                    Step::Clear if rule.resolves => {
                        cleared.push((condition_of(metric, threshold.when), rule));
                        false
                    }
                    _ => false,
                }
            } else {
                threshold.when.matches(r.value)
            };
            if !breached {
                continue;
            }
            let condition = condition_of(metric, threshold.when);
            let mut breach = Breach {
                rule: rule.id.clone(),
                condition,
                severity: rule.severity,
                metric: Some(metric),
                value: Some(r.value),
                limit: Some(threshold.when.describe()),
                message: format!(
                    "{} {} {} {}",
                    metric,
                    r.value,
                    metric.display_unit(),
                    threshold.when.describe()
                ),
            };
            if unconfirmed {
                // A single spot-check reading: a warning asking for a re-measure; the rule's
                // own severity only once a second reading confirms it.
                if breach.severity.rank() < Severity::Amber.rank() {
                    breach.severity = Severity::Amber;
                }
                let _ = write!(
                    breach.message,
                    " (re-measure within {} min to confirm)",
                    (threshold.confirm_within_ms + 59_999) / 60_000
                );
            }
            let same = out.iter_mut().find_map(|o| match o {
                Outcome::Breach(b) if b.condition == breach.condition => Some(b),
                _ => None,
            });
            match same {
                Some(existing) if existing.severity.rank() > breach.severity.rank() => {
                    *existing = breach
                }
                Some(_) => {}
                None => out.push(Outcome::Breach(breach)),
            }
        }
        for (condition, rule) in cleared {
            let breaching = out
                .iter()
                .any(|o| matches!(o, Outcome::Breach(b) if b.condition == condition));
            let done = out
                .iter()
                .any(|o| matches!(o, Outcome::Cleared { condition: c, .. } if *c == condition));
            if breaching || done || still_firing.contains(&condition) {
                continue;
            }
            let Trigger::Threshold { metric, threshold } = rule.trigger else {
                continue;
            };
            out.push(Outcome::Cleared {
                condition,
                rule: rule.id.clone(),
                message: format!(
                    "{} {} {} {} for {} s",
                    metric,
                    r.value,
                    metric.display_unit(),
                    threshold.clear.describe(),
                    threshold.clear_for_ms / 1000
                ),
            });
        }
        out
    }

    /// Whether any rule watches NEWS2 (the gateway then keeps each patient's latest vitals).
    /// Whether a reading of `metric` is compared with the patient's history (rate of change,
    /// baseline): only then does the store need to look it up.
    pub fn has_trends(&self, metric: Metric) -> bool {
        self.rules.iter().any(|r| match r.trigger {
            Trigger::Change { metric: m, .. } | Trigger::Baseline { metric: m, .. } => m == metric,
            _ => false,
        })
    }

    /// What the reading does to the rate-of-change and baseline rules of its metric.
    /// Untimed: each breaching reading breaches (updating the condition's open alert).
    pub fn evaluate_trends(&self, r: &Reading, history: &mut dyn History) -> Vec<Breach> {
        let ts = r.ts.timestamp_millis();
        let mut out: Vec<Breach> = Vec::new();
        for rule in &self.rules {
            let (condition, limit, message) = match rule.trigger {
                Trigger::Change {
                    metric,
                    rise,
                    by,
                    within_ms,
                } if metric == r.metric => {
                    let Some(past) = history.range(metric, ts - within_ms, ts) else {
                        continue;
                    };
                    let change = if rise {
                        r.value - past.min
                    } else {
                        past.max - r.value
                    };
                    if change < by {
                        continue;
                    }
                    let days = within_ms as f64 / 86_400_000.0;
                    let sign = if rise { "+" } else { "-" };
                    (
                        format!("{metric}_{}", if rise { "rise" } else { "fall" }),
                        format!("{sign}{by} {} / {days} d", metric.display_unit()),
                        format!(
                            "{metric} {} {} {sign}{:.1} in {days} d (limit {sign}{by})",
                            r.value,
                            metric.display_unit(),
                            change
                        ),
                    )
                }
                Trigger::Baseline {
                    metric,
                    above,
                    by,
                    window_ms,
                } if metric == r.metric => {
                    let to = ts - BASELINE_GAP_MS;
                    let Some(base) = history.range(metric, to - window_ms, to) else {
                        continue;
                    };
                    if base.n < BASELINE_MIN_READINGS {
                        continue;
                    }
                    let diff = if above {
                        r.value - base.mean
                    } else {
                        base.mean - r.value
                    };
                    if diff < by {
                        continue;
                    }
                    let sign = if above { "+" } else { "-" };
                    (
                        format!("{metric}_{}_baseline", if above { "above" } else { "below" }),
                        format!(
                            "{sign}{by} {unit} over baseline {:.1} {unit}",
                            base.mean,
                            unit = metric.display_unit()
                        ),
                        format!(
                            "{metric} {} {} is {sign}{:.1} over the patient's baseline {:.1} (limit {sign}{by})",
                            r.value,
                            metric.display_unit(),
                            diff,
                            base.mean
                        ),
                    )
                }
                _ => continue,
            };
            let breach = Breach {
                rule: rule.id.clone(),
                condition,
                severity: rule.severity,
                metric: Some(r.metric),
                value: Some(r.value),
                limit: Some(limit),
                message,
            };
            match out.iter_mut().find(|b| b.condition == breach.condition) {
                Some(b) if b.severity.rank() > breach.severity.rank() => *b = breach,
                Some(_) => {}
                None => out.push(breach),
            }
        }
        out
    }

    /// The device-silence rule, if the rule file has one (the most severe).
    pub fn silent_rule(&self) -> Option<(&Rule, f64)> {
        self.rules
            .iter()
            .filter_map(|r| match r.trigger {
                Trigger::Silent { intervals } => Some((r, intervals)),
                _ => None,
            })
            .min_by_key(|(r, _)| r.severity.rank())
    }

    /// The adherence rules.
    pub fn expect_by_rules(&self) -> impl Iterator<Item = (&Rule, Metric, chrono::NaiveTime)> {
        self.rules.iter().filter_map(|r| match r.trigger {
            Trigger::ExpectBy { metric, by } => Some((r, metric, by)),
            _ => None,
        })
    }

    pub fn has_news2(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.trigger, Trigger::News2 { .. }))
    }

    /// The most severe NEWS2 rule a score meets, as a breach of condition `news2` (one NEWS2
    /// alert per patient, escalating from amber to red).
    pub fn evaluate_news2(&self, n: &crate::news2::News2) -> Option<Breach> {
        let single_three = n.parts.iter().any(|(_, s)| *s == 3);
        self.rules
            .iter()
            .filter(|r| match r.trigger {
                Trigger::News2 {
                    at_least,
                    single_three: s3,
                } => n.total >= at_least || (s3 && single_three),
                _ => false,
            })
            .min_by_key(|r| r.severity.rank())
            .map(|r| Breach {
                rule: r.id.clone(),
                condition: "news2".into(),
                severity: r.severity,
                metric: None,
                value: Some(f64::from(n.total)),
                limit: None,
                message: if n.partial {
                    format!(
                        "NEWS2 {} or more (not known: {})",
                        n.total,
                        n.missing.join(", ")
                    )
                } else {
                    format!("NEWS2 {}", n.total)
                },
            })
    }

    pub fn evaluate_event(&self, kind: EventKind) -> Vec<Breach> {
        self.rules
            .iter()
            .filter(|r| r.trigger == Trigger::Event(kind))
            .map(|r| Breach {
                rule: r.id.clone(),
                condition: r.id.clone(),
                severity: r.severity,
                metric: None,
                value: None,
                limit: None,
                message: format!("event {}", kind.as_str()),
            })
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use vigil_domain::TsSource;

    use std::collections::HashMap;

    fn build_reading(metric: Metric, value: f64) -> Reading {
        Reading {
            device_id: "d".into(),
            patient_id: "p".into(),
            metric,
            value,
            ts: Utc::now(),
            ts_source: TsSource::Device,
            seq: None,
            flags: vec![],
        }
    }

    /// Breaches of a reading under rules without timing (no state needed).
    fn breaches(rs: &RuleSet, r: &Reading) -> Vec<Breach> {
        rs.evaluate_reading(r, &mut HashMap::new())
            .into_iter()
            .map(|o| match o {
                Outcome::Breach(b) => b,
                other => panic!("untimed rules never clear: {other:?}"),
            })
            .collect()
    }

    fn order(rule: &str, threshold: Option<f64>, clear: Option<f64>, enabled: bool) -> Override {
        Override {
            rule: rule.into(),
            threshold,
            clear,
            enabled,
        }
    }

    #[test]
    fn a_copd_patient_order_lowers_the_spo2_limits() {
        let base = RuleSet::defaults();
        // COPD: target 88–92 % (BTS 2017): red below 85, no amber below 94.
        let rs = base.for_patient(&[
            order("spo2_low", Some(85.0), None, true),
            order("spo2_below_target", None, None, false),
        ]);
        let sev = |v| {
            breaches(&rs, &build_reading(Metric::Spo2, v))
                .into_iter()
                .map(|b| (b.rule, b.severity))
                .collect::<Vec<_>>()
        };
        assert_eq!(sev(88.0), vec![], "within the patient's target");
        assert_eq!(sev(84.0), want("spo2_low", Severity::Red));
        assert_eq!(
            breaches(&rs, &build_reading(Metric::Spo2, 84.0))[0]
                .limit
                .as_deref(),
            Some("< 85")
        );
        // Everyone else keeps the rule file's values.
        assert_eq!(
            breaches(&base, &build_reading(Metric::Spo2, 88.0))[0].rule,
            "spo2_low"
        );
        // A later order replaces an earlier one of the same rule.
        let rs = base.for_patient(&[
            order("spo2_low", Some(85.0), None, true),
            order("spo2_low", None, None, true),
        ]);
        assert_eq!(
            breaches(&rs, &build_reading(Metric::Spo2, 88.0))[0].rule,
            "spo2_low"
        );
    }

    #[test]
    fn orders_that_cannot_apply_are_refused() {
        let rs = RuleSet::from_toml(
            r#"
[[rule]]
id = "spo2_low"
severity = "critical"
metric = "spo2"
below = 90
clear_at_or_above = 92
source = "test"

[[rule]]
id = "sos"
severity = "critical"
event = "sos"
source = "test"
"#,
        )
        .unwrap();
        assert!(matches!(
            rs.overridden(&order("nope", Some(1.0), None, true)),
            Err(OverrideError::UnknownRule(_))
        ));
        assert!(matches!(
            rs.overridden(&order("sos", Some(1.0), None, true)),
            Err(OverrideError::NotThreshold(_))
        ));
        // Raising the limit past the explicit clear value needs a new clear value too.
        assert!(matches!(
            rs.overridden(&order("spo2_low", Some(93.0), None, true)),
            Err(OverrideError::Overlap { .. })
        ));
        let r = rs
            .overridden(&order("spo2_low", Some(93.0), Some(95.0), true))
            .unwrap();
        let Trigger::Threshold { threshold, .. } = r.trigger else {
            unreachable!()
        };
        assert_eq!(threshold.when, Condition::Below(93.0));
        assert_eq!(threshold.clear, Condition::AtOrAbove(95.0));
        assert!(matches!(
            rs.overridden(&order("spo2_low", Some(f64::NAN), None, true)),
            Err(OverrideError::NotFinite(_))
        ));
    }

    /// Readings in memory: (metric, ts ms, value).
    struct Past(Vec<(Metric, i64, f64)>);

    impl History for Past {
        fn range(&mut self, metric: Metric, from: i64, to: i64) -> Option<RangeStats> {
            let v: Vec<f64> = self
                .0
                .iter()
                .filter(|(m, t, _)| *m == metric && *t >= from && *t < to)
                .map(|x| x.2)
                .collect();
            (!v.is_empty()).then(|| RangeStats {
                n: v.len() as u64,
                min: v.iter().copied().fold(f64::INFINITY, f64::min),
                max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                mean: v.iter().sum::<f64>() / v.len() as f64,
            })
        }
    }

    #[test]
    fn weight_gain_over_three_days_and_fever_over_the_baseline() {
        let rs = RuleSet::defaults();
        let day = 86_400_000;
        let mut r = build_reading(Metric::Weight, 71.9);
        let now = r.ts.timestamp_millis();
        // 70.0 four days ago is outside the window; 70.2 two days ago is in it.
        let mut past = Past(vec![
            (Metric::Weight, now - 4 * day, 70.0),
            (Metric::Weight, now - 2 * day, 70.2),
        ]);
        assert!(rs.evaluate_trends(&r, &mut past).is_empty(), "+1.7 kg");
        r.value = 72.3;
        let b = rs.evaluate_trends(&r, &mut past);
        assert_eq!(b.len(), 1);
        assert_eq!(
            (b[0].rule.as_str(), b[0].condition.as_str()),
            ("weight_gain", "weight_rise")
        );
        assert_eq!(b[0].severity, Severity::Amber);

        let mut t = build_reading(Metric::Temperature, 37.6);
        let mut past = Past(vec![(Metric::Temperature, now - 3 * day, 36.3)]);
        assert!(
            rs.evaluate_trends(&t, &mut past).is_empty(),
            "one reading is no baseline"
        );
        past.0.push((Metric::Temperature, now - 4 * day, 36.4));
        past.0.push((Metric::Temperature, now - 5 * day, 36.5));
        // Yesterday's fever does not count in the baseline.
        past.0.push((Metric::Temperature, now - 3_600_000, 38.0));
        let b = rs.evaluate_trends(&t, &mut past);
        assert_eq!(
            b.len(),
            1,
            "37.6 is 1.2 above a baseline of 36.4, under the 37.8 rule"
        );
        assert_eq!(b[0].condition, "temperature_above_baseline");
        t.value = 37.4;
        assert!(rs.evaluate_trends(&t, &mut past).is_empty());
        assert!(!rs.has_trends(Metric::Spo2) && rs.has_trends(Metric::Weight));
    }

    fn want(rule: &str, severity: Severity) -> Vec<(String, Severity)> {
        vec![(rule.to_string(), severity)]
    }

    fn fired(metric: Metric, value: f64) -> Vec<(String, Severity)> {
        breaches(&RuleSet::defaults(), &build_reading(metric, value))
            .into_iter()
            .map(|b| (b.rule, b.severity))
            .collect()
    }

    #[test]
    fn issue_examples_raise_red() {
        assert_eq!(fired(Metric::Spo2, 85.0), want("spo2_low", Severity::Red));
        assert_eq!(fired(Metric::Spo2, 89.9), want("spo2_low", Severity::Red));
        assert_eq!(
            fired(Metric::HeartRate, 131.0),
            want("heart_rate_high", Severity::Red)
        );
        assert_eq!(
            fired(Metric::HeartRate, 39.0),
            want("heart_rate_low", Severity::Red)
        );
        // One crisis-level BP reading asks for a re-measure (amber); a confirming one is red.
        assert_eq!(
            fired(Metric::BpSystolic, 180.0),
            want("bp_systolic_high", Severity::Amber)
        );
        let rs = RuleSet::defaults();
        let mut states = HashMap::new();
        let first = build_reading(Metric::BpSystolic, 186.0);
        let mut second = build_reading(Metric::BpSystolic, 182.0);
        second.ts = first.ts + chrono::Duration::minutes(4);
        let one = rs.evaluate_reading(&first, &mut states);
        let Outcome::Breach(b) = &one[0] else {
            panic!("{one:?}")
        };
        assert_eq!(b.severity, Severity::Amber);
        assert!(
            b.message.ends_with("(re-measure within 5 min to confirm)"),
            "{}",
            b.message
        );
        let two = rs.evaluate_reading(&second, &mut states);
        assert!(
            matches!(&two[..], [Outcome::Breach(b)] if b.severity == Severity::Red && b.rule == "bp_systolic_high"),
            "{two:?}"
        );
        let ev = RuleSet::defaults().evaluate_event(EventKind::Fall);
        assert_eq!(ev.len(), 1);
        assert_eq!(
            (ev[0].rule.as_str(), ev[0].severity),
            ("fall", Severity::Red)
        );
        assert_eq!(
            RuleSet::defaults().evaluate_event(EventKind::Sos)[0].rule,
            "sos"
        );
    }

    #[test]
    fn boundaries_do_not_fire() {
        assert!(fired(Metric::Spo2, 94.0).is_empty());
        assert_eq!(
            fired(Metric::Spo2, 90.0),
            want("spo2_below_target", Severity::Amber)
        );
        assert!(fired(Metric::HeartRate, 130.0).is_empty());
        assert!(fired(Metric::HeartRate, 40.0).is_empty());
        assert!(fired(Metric::BpSystolic, 179.0).is_empty());
        assert!(fired(Metric::Temperature, 37.8).is_empty());
        assert!(fired(Metric::Weight, 120.0).is_empty());
    }

    #[test]
    fn most_severe_of_same_direction_wins_but_directions_stay_apart() {
        assert_eq!(
            fired(Metric::Temperature, 39.5),
            want("temperature_very_high", Severity::Red)
        );
        assert_eq!(
            fired(Metric::Glucose, 2.5),
            want("glucose_very_low", Severity::Red)
        );
        assert_eq!(
            fired(Metric::Glucose, 3.5),
            want("glucose_low", Severity::Amber)
        );
    }

    #[test]
    fn conditions_group_levels_of_one_alarm() {
        let rs = RuleSet::defaults();
        let amber = breaches(&rs, &build_reading(Metric::Spo2, 92.0));
        let red = breaches(&rs, &build_reading(Metric::Spo2, 85.0));
        assert_eq!(amber[0].condition, "spo2_low");
        assert_eq!(red[0].condition, "spo2_low");
        let high = breaches(&rs, &build_reading(Metric::BpSystolic, 190.0));
        let low = breaches(&rs, &build_reading(Metric::BpSystolic, 80.0));
        assert_eq!(high[0].condition, "bp_systolic_high");
        assert_eq!(low[0].condition, "bp_systolic_low");
        assert_eq!(rs.evaluate_event(EventKind::Fall)[0].condition, "fall");
    }

    /// A timed red rule and a plain amber rule watching one condition (`spo2_low`).
    const TIMED: &str = r#"
        [[rule]]
        id = "spo2_low"
        severity = "critical"
        metric = "spo2"
        below = 90
        for = "60s"
        clear_at_or_above = 92
        clear_for = "2m"
        [[rule]]
        id = "spo2_below_target"
        severity = "warning"
        metric = "spo2"
        below = 94
    "#;

    /// (seconds, value) readings of one patient through `rs`; the outcomes with their time.
    fn timeline(rs: &RuleSet, readings: &[(i64, f64)]) -> Vec<(i64, String)> {
        let mut states = HashMap::new();
        let t0 = Utc::now();
        let mut out = Vec::new();
        for &(t, v) in readings {
            let mut r = build_reading(Metric::Spo2, v);
            r.ts = t0 + chrono::Duration::seconds(t);
            for o in rs.evaluate_reading(&r, &mut states) {
                out.push((
                    t,
                    match o {
                        Outcome::Breach(b) => format!("breach {} {}", b.rule, b.severity.as_str()),
                        Outcome::Cleared { rule, .. } => format!("cleared by {rule}"),
                    },
                ));
            }
        }
        out
    }

    #[test]
    fn a_timed_rule_escalates_its_condition_after_persisting_and_clears_it_after_holding() {
        let rs = RuleSet::from_toml(TIMED).unwrap();
        let mut readings: Vec<(i64, f64)> = (0..=65).step_by(5).map(|t| (t, 87.0)).collect();
        readings.extend((70..=300).step_by(10).map(|t| (t, 95.0)));
        let got = timeline(&rs, &readings);
        // Amber at once (plain rule), red once < 90 has lasted 60 s.
        assert_eq!(got[0], (0, "breach spo2_below_target amber".into()));
        assert_eq!(got[11], (55, "breach spo2_below_target amber".into()));
        assert_eq!(got[12], (60, "breach spo2_low red".into()));
        assert_eq!(got[13], (65, "breach spo2_low red".into()));
        // ≥ 92 from 70 s: cleared 2 minutes later, once.
        assert_eq!(got[14..], [(190, "cleared by spo2_low".to_string())]);
    }

    #[test]
    fn a_condition_does_not_clear_while_another_of_its_rules_breaches() {
        let rs = RuleSet::from_toml(TIMED).unwrap();
        let mut readings: Vec<(i64, f64)> = (0..=60).step_by(5).map(|t| (t, 87.0)).collect();
        // 93: the red rule's clear level (≥ 92) holds, but 93 < 94 still breaches the amber one.
        readings.extend((70..=300).step_by(10).map(|t| (t, 93.0)));
        let got = timeline(&rs, &readings);
        assert!(
            got.iter().all(|(_, o)| !o.starts_with("cleared")),
            "{got:?}"
        );
        assert_eq!(
            got.last().unwrap(),
            &(300, "breach spo2_below_target amber".into())
        );
    }

    #[test]
    fn plain_rules_latch_and_never_clear_by_themselves() {
        let rs = RuleSet::defaults();
        assert!(rs
            .rules()
            .iter()
            .all(|r| !r.is_timed() || r.id.starts_with("bp_")));
        let got = timeline(&rs, &[(0, 85.0), (5, 99.0), (10, 99.0)]);
        assert_eq!(got, vec![(0, "breach spo2_low red".into())]);
    }

    #[test]
    fn news2_rules_pick_the_most_severe_band_met() {
        use crate::news2::{score, Vitals};
        let rs = RuleSet::defaults();
        assert!(rs.has_news2());
        let v = |rr: f64, spo2: f64, pulse: f64| Vitals {
            respiratory_rate: Some(rr),
            spo2: Some(spo2),
            pulse: Some(pulse),
            ..Vitals::default()
        };
        // 2 + 2 + 1 = 5: amber; 3 + 3 + 2 = 8: red; a single 3 alone: nothing by default.
        let medium = rs.evaluate_news2(&score(&v(22.0, 93.0, 100.0))).unwrap();
        assert_eq!(
            (
                medium.rule.as_str(),
                medium.severity,
                medium.condition.as_str()
            ),
            ("news2_medium", Severity::Amber, "news2")
        );
        let high = rs.evaluate_news2(&score(&v(26.0, 90.0, 120.0))).unwrap();
        assert_eq!(
            (high.rule.as_str(), high.severity),
            ("news2_high", Severity::Red)
        );
        assert_eq!(rs.evaluate_news2(&score(&v(16.0, 90.0, 70.0))), None);
        let literal = RuleSet::from_toml(
            "[[rule]]\nid = \"n\"\nseverity = \"warning\"\nnews2_at_least = 5\nnews2_single_three = true\n",
        )
        .unwrap();
        assert!(literal
            .evaluate_news2(&score(&v(16.0, 90.0, 70.0)))
            .is_some());
    }

    #[test]
    fn clear_conditions_must_not_overlap_the_breach() {
        use Condition::*;
        assert!(!AtOrAbove(92.0).overlaps(Below(90.0)));
        assert!(!AtOrAbove(90.0).overlaps(Below(90.0)), "the plain negation");
        assert!(Above(85.0).overlaps(Below(90.0)), "87 would be both");
        assert!(
            AtOrAbove(90.0).overlaps(AtOrBelow(90.0)),
            "90 would be both"
        );
        assert!(!Above(90.0).overlaps(AtOrBelow(90.0)));
        assert!(Below(80.0).overlaps(Below(90.0)), "same direction");
        for c in [Below(1.0), AtOrBelow(1.0), Above(1.0), AtOrAbove(1.0)] {
            assert!(!c.negated().overlaps(c), "{c:?}");
        }
    }

    #[test]
    fn rule_ids_are_unique() {
        let rs = RuleSet::defaults();
        let mut ids: Vec<_> = rs.rules().iter().map(|r| r.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), rs.rules().len());
    }

    #[test]
    fn every_rule_is_documented() {
        let doc = include_str!("../../docs/rules.md");
        for r in RuleSet::defaults().rules() {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", r.id)))
                .unwrap_or_else(|| panic!("{} missing from docs/rules.md", r.id));
            assert!(
                row.contains(&format!("| {} |", r.severity.as_str())),
                "{row}"
            );
        }
    }

    #[test]
    fn flag_is_the_worst_threshold_a_value_breaches() {
        let rules = RuleSet::defaults();
        assert_eq!(rules.flag(Metric::Spo2, 97.0), None);
        assert_eq!(rules.flag(Metric::Spo2, 85.0), Some(Severity::Red));
        assert_eq!(rules.flag(Metric::Spo2, 92.0), Some(Severity::Amber));
        // A patient whose low limit was lowered to 85 (a COPD target, clinical reference §2).
        let order = Override {
            rule: "spo2_low".into(),
            threshold: Some(85.0),
            clear: None,
            enabled: true,
        };
        let copd = rules.for_patient(&[order]);
        assert_eq!(copd.flag(Metric::Spo2, 87.0), Some(Severity::Amber));
        assert_eq!(copd.flag(Metric::Spo2, 84.0), Some(Severity::Red));
    }
}
