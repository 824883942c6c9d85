//! Default threshold rules (issue #2 "The slice, end to end"; clinical reference §1, §2, §7).
//!
//! A rule compares one metric with a threshold, or matches a device event. Evaluation is pure.
//! Each rule id is a public name (it appears in the API and in e-mails): keep ids stable.
//! The values are defaults pending clinical sign-off; per-patient overrides come with the
//! alerting issue (#5).

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
    Threshold { metric: Metric, when: Condition },
    Event(EventKind),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    pub trigger: Trigger,
    /// Why the threshold is what it is.
    pub source: &'static str,
}

/// A rule that fired, with what made it fire.
#[derive(Debug, Clone, PartialEq)]
pub struct Breach {
    pub rule: &'static str,
    /// The clinical condition the rule watches: `{metric}_low` / `{metric}_high` for
    /// thresholds, the rule id for events. Rules sharing a condition are severity levels of one
    /// alarm (SpO₂ < 94 amber, < 90 red): an active alert escalates instead of a second one
    /// opening (a central station escalates an alarm's priority, it does not add an alarm).
    pub condition: String,
    pub severity: Severity,
    pub metric: Option<Metric>,
    pub value: Option<f64>,
    /// Short English description for the dashboard and logs, e.g. `spo2 85 % < 90`.
    pub message: String,
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
    /// The built-in rules. Red rules e-mail the family; amber and yellow ones show on the
    /// dashboard only (alarm fatigue, clinical reference §6: families get what matters).
    pub fn defaults() -> Self {
        use Condition::*;
        use Metric::*;
        use Severity::*;
        let t = |id, severity, metric, when, source| Rule {
            id,
            severity,
            trigger: Trigger::Threshold { metric, when },
            source,
        };
        let e = |id, severity, kind, source| Rule {
            id,
            severity,
            trigger: Trigger::Event(kind),
            source,
        };
        RuleSet {
            rules: vec![
                t(
                    "spo2_low",
                    Red,
                    Spo2,
                    Below(90.0),
                    "Welch 2011 limit 90 %; NEWS2 scores 3 at ≤ 91",
                ),
                t(
                    "spo2_below_target",
                    Amber,
                    Spo2,
                    Below(94.0),
                    "hypoxaemia < 94 % (BMJ 2021;372:n677)",
                ),
                t(
                    "heart_rate_high",
                    Red,
                    HeartRate,
                    Above(130.0),
                    "NEWS2 scores 3 at ≥ 131",
                ),
                t(
                    "heart_rate_low",
                    Red,
                    HeartRate,
                    Below(40.0),
                    "BEAT-HF < 40 without symptoms; NEWS2 ≤ 40",
                ),
                t(
                    "bp_systolic_high",
                    Red,
                    BpSystolic,
                    AtOrAbove(180.0),
                    "hypertensive crisis ≥ 180 (AHA, VNHA 2015)",
                ),
                t(
                    "bp_diastolic_high",
                    Red,
                    BpDiastolic,
                    AtOrAbove(120.0),
                    "hypertensive crisis ≥ 120 (AHA, VNHA 2015)",
                ),
                t(
                    "bp_systolic_low",
                    Red,
                    BpSystolic,
                    Below(90.0),
                    "Vietnam MoH: report at once if systolic < 90",
                ),
                t(
                    "temperature_high",
                    Amber,
                    Temperature,
                    Above(37.8),
                    "older adults: fever > 37.8 °C (IDSA 2009)",
                ),
                t(
                    "temperature_very_high",
                    Red,
                    Temperature,
                    AtOrAbove(39.1),
                    "NEWS2 scores 2 at ≥ 39.1 °C",
                ),
                t(
                    "temperature_low",
                    Red,
                    Temperature,
                    AtOrBelow(35.0),
                    "NEWS2 scores 3 at ≤ 35.0 °C",
                ),
                t(
                    "respiratory_rate_high",
                    Red,
                    RespiratoryRate,
                    AtOrAbove(25.0),
                    "NEWS2 scores 3 at ≥ 25",
                ),
                t(
                    "respiratory_rate_low",
                    Red,
                    RespiratoryRate,
                    AtOrBelow(8.0),
                    "NEWS2 scores 3 at ≤ 8",
                ),
                t(
                    "glucose_very_low",
                    Red,
                    Glucose,
                    Below(3.0),
                    "ADA level 2 hypoglycaemia < 3.0 mmol/L",
                ),
                t(
                    "glucose_low",
                    Amber,
                    Glucose,
                    Below(3.9),
                    "ADA level 1 hypoglycaemia < 3.9 mmol/L",
                ),
                t(
                    "glucose_high",
                    Amber,
                    Glucose,
                    Above(13.9),
                    "sick-day advice: > 13.9 mmol/L",
                ),
                e(
                    "fall",
                    Red,
                    EventKind::Fall,
                    "BMJ 2008;337:a2227: long lies after falls",
                ),
                e("sos", Red, EventKind::Sos, "the patient asked for help"),
                e(
                    "battery_low",
                    Yellow,
                    EventKind::BatteryLow,
                    "device maintenance",
                ),
                e(
                    "device_error",
                    Yellow,
                    EventKind::DeviceError,
                    "device maintenance",
                ),
            ],
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Every rule the reading breaches. When two rules of one condition fire (SpO₂ 85 breaches
    /// both `spo2_low` and `spo2_below_target`), only the most severe is kept: one condition,
    /// one alert.
    pub fn evaluate_reading(&self, r: &Reading) -> Vec<Breach> {
        let mut out: Vec<Breach> = Vec::new();
        for rule in &self.rules {
            let Trigger::Threshold { metric, when } = rule.trigger else {
                continue;
            };
            if metric != r.metric || !when.matches(r.value) {
                continue;
            }
            let breach = Breach {
                rule: rule.id,
                condition: condition_of(metric, when),
                severity: rule.severity,
                metric: Some(metric),
                value: Some(r.value),
                message: format!(
                    "{} {} {} {}",
                    metric,
                    r.value,
                    metric.display_unit(),
                    when.describe()
                ),
            };
            match out.iter_mut().find(|b| b.condition == breach.condition) {
                Some(existing) if existing.severity.rank() > breach.severity.rank() => {
                    *existing = breach
                }
                Some(_) => {}
                None => out.push(breach),
            }
        }
        out
    }

    pub fn evaluate_event(&self, kind: EventKind) -> Vec<Breach> {
        self.rules
            .iter()
            .filter(|r| r.trigger == Trigger::Event(kind))
            .map(|r| Breach {
                rule: r.id,
                condition: r.id.to_string(),
                severity: r.severity,
                metric: None,
                value: None,
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

    fn fired(metric: Metric, value: f64) -> Vec<(&'static str, Severity)> {
        RuleSet::defaults()
            .evaluate_reading(&build_reading(metric, value))
            .into_iter()
            .map(|b| (b.rule, b.severity))
            .collect()
    }

    #[test]
    fn issue_examples_raise_red() {
        assert_eq!(fired(Metric::Spo2, 85.0), vec![("spo2_low", Severity::Red)]);
        assert_eq!(fired(Metric::Spo2, 89.9), vec![("spo2_low", Severity::Red)]);
        assert_eq!(
            fired(Metric::HeartRate, 131.0),
            vec![("heart_rate_high", Severity::Red)]
        );
        assert_eq!(
            fired(Metric::HeartRate, 39.0),
            vec![("heart_rate_low", Severity::Red)]
        );
        assert_eq!(
            fired(Metric::BpSystolic, 180.0),
            vec![("bp_systolic_high", Severity::Red)]
        );
        let ev = RuleSet::defaults().evaluate_event(EventKind::Fall);
        assert_eq!(ev.len(), 1);
        assert_eq!((ev[0].rule, ev[0].severity), ("fall", Severity::Red));
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
            vec![("spo2_below_target", Severity::Amber)]
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
            vec![("temperature_very_high", Severity::Red)]
        );
        assert_eq!(
            fired(Metric::Glucose, 2.5),
            vec![("glucose_very_low", Severity::Red)]
        );
        assert_eq!(
            fired(Metric::Glucose, 3.5),
            vec![("glucose_low", Severity::Amber)]
        );
    }

    #[test]
    fn conditions_group_levels_of_one_alarm() {
        let rs = RuleSet::defaults();
        let amber = rs.evaluate_reading(&build_reading(Metric::Spo2, 92.0));
        let red = rs.evaluate_reading(&build_reading(Metric::Spo2, 85.0));
        assert_eq!(amber[0].condition, "spo2_low");
        assert_eq!(red[0].condition, "spo2_low");
        let high = rs.evaluate_reading(&build_reading(Metric::BpSystolic, 190.0));
        let low = rs.evaluate_reading(&build_reading(Metric::BpSystolic, 80.0));
        assert_eq!(high[0].condition, "bp_systolic_high");
        assert_eq!(low[0].condition, "bp_systolic_low");
        assert_eq!(rs.evaluate_event(EventKind::Fall)[0].condition, "fall");
    }

    #[test]
    fn rule_ids_are_unique() {
        let rs = RuleSet::defaults();
        let mut ids: Vec<_> = rs.rules().iter().map(|r| r.id).collect();
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
}
