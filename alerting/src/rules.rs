//! Default threshold rules (issue #2 "The slice, end to end"; clinical reference §1, §2, §7).
//!
//! A rule compares one metric with a threshold, or matches a device event. Evaluation is pure.
//! Each rule id is a public name (it appears in the API and in e-mails): keep ids stable.
//! The values are defaults pending clinical sign-off; a patient's clinical orders change them for
//! that patient ([`RuleSet::for_patient`]).

use crate::engine::{State, Step};
pub use crate::rule::{
    condition_of, Breach, History, Outcome, Override, OverrideError, RangeStats, Rule, RuleStates,
    Trigger, BASELINE_GAP_MS, BASELINE_MIN_READINGS,
};
use std::fmt::Write as _;
use vigil_domain::{EventKind, Metric, Reading, Severity};

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

#[cfg(test)]
mod tests;
