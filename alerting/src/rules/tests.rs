//! Tests of the rule set's evaluation.

use super::*;
use crate::condition::Condition;
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
    use crate::condition::Condition::*;
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
    let doc = include_str!("../../../docs/rules.md");
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
