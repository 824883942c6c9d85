//! An alert in a page's words: the vital and its value with the limit, NEWS2, or the event —
//! shared by the ward's rows and the episode cards.

use vigil_domain::display::number;
use vigil_domain::{Alert, EventKind, Lang, Metric};

/// What an alert is about in the page's language: the vital and its value, NEWS2, or the
/// event; the rule's name otherwise (issue #21: never the stored, language-neutral message).
/// The rule's name is also the tooltip ([`rule_title`]).
pub(crate) fn describe(a: &Alert, vi: bool) -> String {
    let lang = if vi { Lang::Vi } else { Lang::En };
    if let (Some(m), Some(v)) = (
        a.metric.as_deref().and_then(|m| m.parse::<Metric>().ok()),
        a.value,
    ) {
        let label = m.label(Lang::pick(vi));
        let limit = a
            .limit
            .as_deref()
            .map(|l| {
                let l = vigil_domain::display::decimal(l.to_string(), vi);
                if vi {
                    format!(" (ngưỡng {l})")
                } else {
                    format!(" (limit {l})")
                }
            })
            .unwrap_or_default();
        let unit = m.screen_unit(Lang::pick(vi));
        return format!("{label}: {} {unit}{limit}", number(v, vi));
    }
    if let Some(v) = a.value.filter(|_| a.rule.starts_with("news2")) {
        return format!("NEWS2: {}", number(v, vi));
    }
    let event = a.event.as_deref().unwrap_or(&a.rule).parse::<EventKind>();
    if let Ok(e) = event {
        let mut s = e.label(lang).to_string();
        // Which device, and how low (issue #21: "Device battery low" said neither).
        if matches!(e, EventKind::BatteryLow | EventKind::DeviceError) {
            if let Some(d) = &a.device_id {
                s += &format!(": {d}");
            }
            if let Some(v) = a.value.filter(|_| e == EventKind::BatteryLow) {
                let v = number(v.round(), vi);
                s += &if vi {
                    format!(", còn {v} %")
                } else {
                    format!(", {v} % left")
                };
            }
        }
        return s;
    }
    match &a.device_id {
        Some(d) => format!("{}: {d}", rule_title(a, vi)),
        None => rule_title(a, vi),
    }
}

/// The alert's rule by name in the page's language (`spo2_low` → "SpO₂ thấp").
pub(crate) fn rule_title(a: &Alert, vi: bool) -> String {
    vigil_domain::words::rule_name(&a.rule, Lang::pick(vi))
}
