//! Admin commands for alert rules: the rule file, and per-patient threshold orders.

use super::*;

/// `vigil threshold set|clear|list`: per-patient threshold orders (docs/rules.md).
pub fn threshold(cmd: crate::cli::ThresholdCmd) -> anyhow::Result<()> {
    use crate::cli::ThresholdCmd;
    use crate::store::orders;
    let now = store::now_ms();
    match cmd {
        ThresholdCmd::Set {
            patient,
            rule,
            value,
            clear,
            disable,
            default,
            reason,
            by,
            effective_from,
            admin,
        } => {
            if !disable && !default && value.is_none() && clear.is_none() {
                anyhow::bail!("say what changes: --value, --clear, --disable or --default");
            }
            let effective_from = effective_from
                .map(|t| {
                    chrono::DateTime::parse_from_rfc3339(&t)
                        .map(|t| t.timestamp_millis())
                        .map_err(|_| anyhow::anyhow!("--effective-from: an RFC 3339 time"))
                })
                .transpose()?;
            let rules = crate::server::rule_set(&config(&admin)?)?;
            let c = open(&admin)?;
            let o = orders::add(
                &c,
                &patient,
                &orders::NewOrder {
                    rule,
                    threshold: value,
                    clear,
                    enabled: !disable,
                    reason,
                    ordered_by: by,
                    effective_from,
                },
                &rules,
                now,
            )?;
            let what = if !o.enabled {
                "disabled".to_string()
            } else if o.threshold.is_none() && o.clear.is_none() {
                "back to the rule file's values".to_string()
            } else {
                let t =
                    orders::thresholds(&c, &patient, &rules, o.effective_from.timestamp_millis())?;
                let r = t
                    .iter()
                    .find(|t| t.rule == o.rule)
                    .expect("a threshold rule");
                format!("{} (clears {})", r.when, r.clear)
            };
            print(
                &admin,
                json!({ "order": o }),
                format!(
                    "order {}: {} for patient {} {} from {}",
                    o.id,
                    o.rule,
                    o.patient_id,
                    what,
                    o.effective_from.to_rfc3339()
                ),
            );
            Ok(())
        }
        ThresholdCmd::List { patient, admin } => {
            let rules = crate::server::rule_set(&config(&admin)?)?;
            let c = open(&admin)?;
            let t = orders::thresholds(&c, &patient, &rules, now)?;
            let o = orders::list(&c, &patient)?;
            let mut human = String::new();
            for r in &t {
                let changed = if !r.enabled {
                    "  (disabled by order)".to_string()
                } else if let Some(id) = r.order_id {
                    format!("  (order {id}; rule file: {})", r.default_when)
                } else {
                    String::new()
                };
                human += &format!(
                    "{:<26} {:<6} {}{changed}\n",
                    r.rule,
                    r.severity.as_str(),
                    r.when
                );
            }
            for o in &o {
                human += &format!(
                    "order {} {} {}: {} by {} from {} — {}\n",
                    o.id,
                    o.ordered_at.to_rfc3339(),
                    o.rule,
                    match (o.enabled, o.threshold, o.clear) {
                        (false, _, _) => "disabled".to_string(),
                        (true, None, None) => "rule file's values".to_string(),
                        (true, t, c) => format!("value {t:?}, clear {c:?}"),
                    },
                    o.ordered_by,
                    o.effective_from.to_rfc3339(),
                    o.reason
                );
            }
            print(
                &admin,
                json!({ "thresholds": t, "orders": o }),
                human.trim_end().to_string(),
            );
            Ok(())
        }
    }
}

/// `vigil rules check FILE` and `vigil rules defaults`.
pub fn rules(cmd: crate::cli::RulesCmd) -> anyhow::Result<()> {
    use vigil_alerting::rules::Trigger;
    match cmd {
        crate::cli::RulesCmd::Defaults => {
            print!("{}", vigil_alerting::rulefile::DEFAULT);
            Ok(())
        }
        crate::cli::RulesCmd::Check { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let set = vigil_alerting::RuleSet::from_toml(&text)
                .with_context(|| format!("{}", file.display()))?;
            for r in set.rules() {
                let what = match &r.trigger {
                    Trigger::Threshold { metric, threshold } => {
                        let mut w = format!("{metric} {}", threshold.when.describe());
                        if threshold.for_ms > 0 {
                            w += &format!(" for {} s", threshold.for_ms / 1000);
                        }
                        if threshold.confirm_within_ms > 0 {
                            w += &format!(
                                ", confirmed within {} s",
                                threshold.confirm_within_ms / 1000
                            );
                        }
                        if r.resolves {
                            w += &format!(
                                "; clears at {} for {} s",
                                threshold.clear.describe(),
                                threshold.clear_for_ms / 1000
                            );
                        }
                        w
                    }
                    Trigger::Event(kind) => format!("event {}", kind.as_str()),
                    Trigger::News2 {
                        at_least,
                        single_three,
                    } => format!(
                        "NEWS2 ≥ {at_least}{}",
                        if *single_three { " or a single 3" } else { "" }
                    ),
                    Trigger::Change {
                        metric,
                        rise,
                        by,
                        within_ms,
                    } => format!(
                        "{metric} {}{by} within {} h",
                        if *rise { "+" } else { "-" },
                        within_ms / 3_600_000
                    ),
                    Trigger::Baseline {
                        metric,
                        above,
                        by,
                        window_ms,
                    } => format!(
                        "{metric} {}{by} over the mean of {} d (before the last day)",
                        if *above { "+" } else { "-" },
                        window_ms / 86_400_000
                    ),
                    Trigger::Silent { intervals } => {
                        format!("a device silent for {intervals} × its expected interval")
                    }
                    Trigger::ExpectBy { metric, by } => {
                        format!("a {metric} reading every day by {}", by.format("%H:%M"))
                    }
                };
                println!("{:<24} {:<6} {what}", r.id, r.severity.as_str());
            }
            println!("{}: {} rules, valid", file.display(), set.rules().len());
            Ok(())
        }
    }
}
