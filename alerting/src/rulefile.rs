//! The rule file (issue #5): TOML, one `[[rule]]` table per rule. The defaults ship in
//! `alerting/rules/default.toml`, built into the binary; docs/rules.md documents every key.
//!
//! Parsing is strict, because a typo in a clinical rule must stop the gateway at start-up, not
//! silently disable an alarm: unknown keys, unknown metrics, events or severities, a threshold
//! rule without exactly one comparison, a duplicate id or a malformed duration are errors that
//! name the rule.

use crate::condition::Condition;
use crate::engine::Threshold;
use crate::rule::{Rule, Trigger};
use serde::Deserialize;
use vigil_domain::{EventKind, Metric, Severity};

/// Why a rule file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleFileError {
    #[error("rule file is not valid TOML: {0}")]
    Toml(String),
    #[error("rule {id:?}: {problem}")]
    Rule { id: String, problem: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    severity: String,
    metric: Option<String>,
    event: Option<String>,
    below: Option<f64>,
    at_or_below: Option<f64>,
    above: Option<f64>,
    at_or_above: Option<f64>,
    #[serde(rename = "for")]
    for_: Option<String>,
    clear_below: Option<f64>,
    clear_at_or_below: Option<f64>,
    clear_above: Option<f64>,
    clear_at_or_above: Option<f64>,
    clear_for: Option<String>,
    max_gap: Option<String>,
    confirm_within: Option<String>,
    news2_at_least: Option<u8>,
    #[serde(default)]
    news2_single_three: bool,
    rise: Option<f64>,
    fall: Option<f64>,
    within: Option<String>,
    above_baseline: Option<f64>,
    below_baseline: Option<f64>,
    baseline: Option<String>,
    silent_intervals: Option<f64>,
    expect_by: Option<String>,
    #[serde(default)]
    source: String,
}

/// Severity by its clinical name (`critical`, `warning`, `info`) or its colour (`red`, `amber`,
/// `yellow`, IEC 60601-1-8 priorities high, medium, low).
fn severity(s: &str) -> Option<Severity> {
    match s {
        "critical" | "red" => Some(Severity::Red),
        "warning" | "amber" => Some(Severity::Amber),
        "info" | "yellow" => Some(Severity::Yellow),
        _ => None,
    }
}

/// `"90s"`, `"2m"`, `"1h30m"`, `"3d"` in milliseconds (`vigil_domain::span`, the one grammar).
pub fn duration_ms(s: &str) -> Option<i64> {
    vigil_domain::span::parse_ms(s).ok()
}

/// The one comparison among the four optional keys, if exactly one is given.
fn one_of(
    below: Option<f64>,
    at_or_below: Option<f64>,
    above: Option<f64>,
    at_or_above: Option<f64>,
) -> Result<Option<Condition>, String> {
    let given: Vec<Condition> = [
        below.map(Condition::Below),
        at_or_below.map(Condition::AtOrBelow),
        above.map(Condition::Above),
        at_or_above.map(Condition::AtOrAbove),
    ]
    .into_iter()
    .flatten()
    .collect();
    match given.as_slice() {
        [] => Ok(None),
        [c] => Ok(Some(*c)),
        _ => Err("give exactly one comparison".into()),
    }
}

impl RawRule {
    fn into_rule(self) -> Result<Rule, String> {
        let severity = severity(&self.severity).ok_or_else(|| {
            format!(
                "severity {:?}: use critical, warning or info",
                self.severity
            )
        })?;
        let when = one_of(self.below, self.at_or_below, self.above, self.at_or_above)?;
        let resolves = self.clear_below.is_some()
            || self.clear_at_or_below.is_some()
            || self.clear_above.is_some()
            || self.clear_at_or_above.is_some()
            || self.clear_for.is_some();
        let clear = one_of(
            self.clear_below,
            self.clear_at_or_below,
            self.clear_above,
            self.clear_at_or_above,
        )
        .map_err(|_| "give at most one clear_ comparison".to_string())?;
        let dur = |key: &str, v: &Option<String>| -> Result<i64, String> {
            match v {
                None => Ok(0),
                Some(s) => duration_ms(s).ok_or_else(|| {
                    format!("{key} {s:?}: use a duration such as \"90s\" or \"2m\"")
                }),
            }
        };
        let trend_keys = [
            self.rise.is_some(),
            self.fall.is_some(),
            self.above_baseline.is_some(),
            self.below_baseline.is_some(),
            self.expect_by.is_some(),
        ];
        if trend_keys.iter().filter(|k| **k).count() > 1 {
            return Err("give one of rise, fall, above_baseline, below_baseline, expect_by".into());
        }
        let timing_given = self.for_.is_some()
            || self.clear_for.is_some()
            || self.max_gap.is_some()
            || self.confirm_within.is_some()
            || clear.is_some();
        if let Some(intervals) = self.silent_intervals {
            if self.metric.is_some()
                || self.event.is_some()
                || when.is_some()
                || timing_given
                || trend_keys.contains(&true)
            {
                return Err("a silent_intervals rule takes nothing else".into());
            }
            if !(intervals.is_finite() && intervals >= 1.0) {
                return Err("silent_intervals must be at least 1".into());
            }
            return Ok(Rule {
                id: self.id,
                severity,
                trigger: Trigger::Silent { intervals },
                source: self.source,
                // The alert resolves when the device is heard again.
                resolves: true,
            });
        }
        if trend_keys.contains(&true) {
            let m = self
                .metric
                .as_deref()
                .ok_or("rise, fall, baselines and expect_by need a metric")?;
            let metric: Metric = m.parse().map_err(|_| format!("unknown metric {m:?}"))?;
            if when.is_some() || self.event.is_some() || timing_given {
                return Err(
                    "a trend or adherence rule takes no comparison, event or timing".into(),
                );
            }
            let positive = |key: &str, v: f64| {
                if v.is_finite() && v > 0.0 {
                    Ok(v)
                } else {
                    Err(format!("{key} must be a positive number"))
                }
            };
            let trigger = if let Some(by) = self.expect_by.as_deref() {
                if self.within.is_some() || self.baseline.is_some() {
                    return Err("expect_by takes no within or baseline".into());
                }
                let by = chrono::NaiveTime::parse_from_str(by, "%H:%M")
                    .map_err(|_| format!("expect_by {by:?}: use HH:MM, e.g. \"10:00\""))?;
                Trigger::ExpectBy { metric, by }
            } else if let Some(by) = self.rise.or(self.fall) {
                if self.baseline.is_some() {
                    return Err("rise and fall take within, not baseline".into());
                }
                let within = self.within.as_deref().ok_or("rise and fall need within")?;
                Trigger::Change {
                    metric,
                    rise: self.rise.is_some(),
                    by: positive(if self.rise.is_some() { "rise" } else { "fall" }, by)?,
                    within_ms: duration_ms(within).filter(|d| *d > 0).ok_or_else(|| {
                        format!("within {within:?}: use a duration such as \"3d\"")
                    })?,
                }
            } else {
                if self.within.is_some() {
                    return Err("baselines take baseline (its window), not within".into());
                }
                let above = self.above_baseline.is_some();
                let by = self
                    .above_baseline
                    .or(self.below_baseline)
                    .expect("one given");
                let window = self.baseline.as_deref().unwrap_or("7d");
                Trigger::Baseline {
                    metric,
                    above,
                    by: positive("above_baseline / below_baseline", by)?,
                    window_ms: duration_ms(window).filter(|d| *d > 0).ok_or_else(|| {
                        format!("baseline {window:?}: use a duration such as \"7d\"")
                    })?,
                }
            };
            return Ok(Rule {
                id: self.id,
                severity,
                // Adherence alerts resolve when the reading comes; trends latch.
                resolves: matches!(trigger, Trigger::ExpectBy { .. }),
                trigger,
                source: self.source,
            });
        }
        if self.within.is_some() || self.baseline.is_some() {
            return Err("within and baseline go with rise, fall or a baseline comparison".into());
        }
        if let Some(at_least) = self.news2_at_least {
            if self.metric.is_some() || self.event.is_some() || when.is_some() || clear.is_some() {
                return Err("a NEWS2 rule takes no metric, event or comparison".into());
            }
            return Ok(Rule {
                id: self.id,
                severity,
                trigger: Trigger::News2 {
                    at_least,
                    single_three: self.news2_single_three,
                },
                source: self.source,
                resolves: false,
            });
        }
        if self.news2_single_three {
            return Err("news2_single_three needs news2_at_least".into());
        }
        let trigger = match (&self.metric, &self.event) {
            (Some(m), None) => {
                let metric: Metric = m.parse().map_err(|_| format!("unknown metric {m:?}"))?;
                let when =
                    when.ok_or("a threshold rule needs below, at_or_below, above or at_or_above")?;
                let clear = clear.unwrap_or_else(|| when.negated());
                if self.confirm_within.is_some() && self.for_.is_some() {
                    return Err(
                        "use either for (streaming devices) or confirm_within (spot checks)".into(),
                    );
                }
                if clear.overlaps(when) {
                    return Err(format!(
                        "the clear condition {} overlaps the breach {}",
                        clear.describe(),
                        when.describe()
                    ));
                }
                Trigger::Threshold {
                    metric,
                    threshold: Threshold {
                        when,
                        for_ms: dur("for", &self.for_)?,
                        clear,
                        clear_for_ms: dur("clear_for", &self.clear_for)?,
                        max_gap_ms: dur("max_gap", &self.max_gap)?,
                        confirm_within_ms: dur("confirm_within", &self.confirm_within)?,
                    },
                }
            }
            (None, Some(e)) => {
                if when.is_some()
                    || clear.is_some()
                    || self.for_.is_some()
                    || self.clear_for.is_some()
                    || self.confirm_within.is_some()
                {
                    return Err("an event rule takes no comparison or timing".into());
                }
                let kind: EventKind = e.parse().map_err(|_| format!("unknown event {e:?}"))?;
                Trigger::Event(kind)
            }
            _ => return Err("give one of metric, event or news2_at_least".into()),
        };
        Ok(Rule {
            id: self.id,
            severity,
            trigger,
            source: self.source,
            resolves,
        })
    }
}

/// Parses a rule file.
pub fn parse(text: &str) -> Result<Vec<Rule>, RuleFileError> {
    let file: File = toml::from_str(text).map_err(|e| RuleFileError::Toml(e.to_string()))?;
    let mut rules: Vec<Rule> = Vec::with_capacity(file.rule.len());
    for raw in file.rule {
        let id = raw.id.clone();
        let err = |problem: String| RuleFileError::Rule {
            id: id.clone(),
            problem,
        };
        let valid_id = !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_id {
            return Err(err("ids are 1–64 of a–z, 0–9 and _".into()));
        }
        if rules.iter().any(|r| r.id == id) {
            return Err(err("duplicate id".into()));
        }
        rules.push(raw.into_rule().map_err(err)?);
    }
    Ok(rules)
}

/// The built-in rule file.
pub const DEFAULT: &str = include_str!("../rules/default.toml");

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn the_built_in_file_parses() {
        let rules = parse(DEFAULT).unwrap();
        assert_eq!(rules.len(), 24);
        assert!(
            rules.iter().all(|r| !r.source.is_empty()),
            "every default cites a source"
        );
        // Pages show each by name, never by id (issue #21).
        for r in &rules {
            assert!(
                vigil_domain::words::rule_named(&r.id),
                "{} has no name",
                r.id
            );
        }
    }

    #[test]
    fn timing_and_hysteresis_are_read() {
        let rules = parse(
            r#"
            [[rule]]
            id = "spo2_low"
            severity = "critical"
            metric = "spo2"
            below = 90
            for = "60s"
            clear_at_or_above = 92
            clear_for = "2m"
            max_gap = "30s"
            "#,
        )
        .unwrap();
        let Trigger::Threshold { metric, threshold } = rules[0].trigger else {
            panic!("a threshold rule");
        };
        assert_eq!(metric, Metric::Spo2);
        assert_eq!(
            threshold,
            Threshold {
                when: Condition::Below(90.0),
                for_ms: 60_000,
                clear: Condition::AtOrAbove(92.0),
                clear_for_ms: 120_000,
                max_gap_ms: 30_000,
                confirm_within_ms: 0,
            }
        );
        assert_eq!(rules[0].severity, Severity::Red);
    }

    #[test]
    fn trends_silence_and_adherence_are_read() {
        let rules = parse(
            r#"
            [[rule]]
            id = "weight_gain"
            severity = "warning"
            metric = "weight"
            rise = 2
            within = "3d"

            [[rule]]
            id = "fever"
            severity = "warning"
            metric = "temperature"
            above_baseline = 1.1

            [[rule]]
            id = "silent"
            severity = "info"
            silent_intervals = 2

            [[rule]]
            id = "bp_morning"
            severity = "info"
            metric = "bp_systolic"
            expect_by = "10:00"
            "#,
        )
        .unwrap();
        assert_eq!(
            rules[0].trigger,
            Trigger::Change {
                metric: Metric::Weight,
                rise: true,
                by: 2.0,
                within_ms: 3 * 86_400_000
            }
        );
        assert_eq!(
            rules[1].trigger,
            Trigger::Baseline {
                metric: Metric::Temperature,
                above: true,
                by: 1.1,
                window_ms: 7 * 86_400_000
            }
        );
        assert_eq!(rules[2].trigger, Trigger::Silent { intervals: 2.0 });
        assert!(rules[2].resolves && rules[3].resolves && !rules[0].resolves);
        assert!(matches!(
            rules[3].trigger,
            Trigger::ExpectBy {
                metric: Metric::BpSystolic,
                ..
            }
        ));
        let base = "[[rule]]\nid = \"x\"\nseverity = \"warning\"\n";
        assert!(problem(&format!("{base}metric = \"weight\"\nrise = 2\n")).contains("need within"));
        assert!(problem(&format!("{base}rise = 2\nwithin = \"3d\"\n")).contains("need a metric"));
        assert!(problem(&format!(
            "{base}metric = \"weight\"\nrise = 2\nwithin = \"3d\"\nabove = 1\n"
        ))
        .contains("no comparison"));
        assert!(problem(&format!(
            "{base}metric = \"weight\"\nrise = -2\nwithin = \"3d\"\n"
        ))
        .contains("positive"));
        assert!(problem(&format!(
            "{base}metric = \"bp_systolic\"\nexpect_by = \"10h\"\n"
        ))
        .contains("HH:MM"));
        assert!(problem(&format!("{base}silent_intervals = 0.5\n")).contains("at least 1"));
        assert!(
            problem(&format!("{base}silent_intervals = 2\nmetric = \"spo2\"\n"))
                .contains("nothing else")
        );
        assert!(problem(&format!(
            "{base}metric = \"spo2\"\nbelow = 90\nwithin = \"1d\"\n"
        ))
        .contains("within and baseline"));
    }

    #[test]
    fn mistakes_are_refused_with_the_rule_named() {
        let base = "[[rule]]\nid = \"x\"\nseverity = \"warning\"\n";
        assert!(problem(&format!(
            "{base}metric = \"spo2\"\nbelow = 90\nabove = 99\n"
        ))
        .contains("rule \"x\": give exactly one comparison"));
        assert!(problem(&format!("{base}metric = \"spo2\"\n")).contains("needs below"));
        assert!(
            problem(&format!("{base}metric = \"sp02\"\nbelow = 90\n")).contains("unknown metric")
        );
        assert!(problem(&format!("{base}event = \"fell\"\n")).contains("unknown event"));
        assert!(problem(&format!("{base}event = \"fall\"\nbelow = 1\n")).contains("no comparison"));
        assert!(problem(&format!(
            "{base}metric = \"spo2\"\nbelow = 90\nfor = \"soon\"\n"
        ))
        .contains("for \"soon\""));
        assert!(problem(&format!(
            "{base}metric = \"spo2\"\nbelow = 90\nfor = \"1m\"\nconfirm_within = \"1m\"\n"
        ))
        .contains("either for"));
        assert!(problem(&format!(
            "{base}metric = \"spo2\"\nbelow = 90\nclear_above = 85\n"
        ))
        .contains("overlaps"));
        assert!(
            problem(&format!("{base}metric = \"spo2\"\nbelow = 90\nbelo = 3\n"))
                .contains("unknown field")
        );
        assert!(
            problem("[[rule]]\nid = \"x\"\nseverity = \"urgent\"\nevent = \"sos\"\n")
                .contains("severity \"urgent\"")
        );
        let twice = format!("{base}event = \"sos\"\n{base}event = \"fall\"\n");
        assert!(problem(&twice).contains("duplicate id"));
        assert!(
            problem("[[rule]]\nid = \"Bad Id\"\nseverity = \"info\"\nevent = \"sos\"\n")
                .contains("ids are")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(duration_ms("90s"), Some(90_000));
        assert_eq!(duration_ms("2m"), Some(120_000));
        assert_eq!(duration_ms("3d"), Some(259_200_000));
        assert_eq!(duration_ms("250ms"), Some(250));
        assert_eq!(
            duration_ms("1 minute"),
            Some(60_000),
            "humantime's words too"
        );
        assert_eq!(duration_ms("2"), None);
        assert_eq!(duration_ms("m"), None);
        assert_eq!(duration_ms("-5s"), None);
    }
}
