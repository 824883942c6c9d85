//! The names people read for Vigil's internal identifiers (issue #21: no rule ids, device
//! kinds or NEWS2 parameter names on a page): alert rules, device kinds and NEWS2's
//! parameters, in Vietnamese and English. The ids stay the API's and the rule file's names;
//! these are only what a screen or an e-mail shows. Vietnamese wording follows the clinical
//! reference §8 (terms a district nurse uses: "nhịp thở", "hạ đường huyết", "té ngã").

use crate::{DeviceKind, Lang, Metric};

/// The built-in rules (`alerting/rules/default.toml`) and the gateway's own
/// (`notification_failed`): (id, Vietnamese, English).
const RULES: &[(&str, &str, &str)] = &[
    ("spo2_low", "SpO₂ thấp", "Low SpO₂"),
    (
        "spo2_below_target",
        "SpO₂ dưới mục tiêu",
        "SpO₂ below target",
    ),
    ("heart_rate_high", "Nhịp tim nhanh", "Fast heart rate"),
    ("heart_rate_low", "Nhịp tim chậm", "Slow heart rate"),
    (
        "bp_systolic_high",
        "Huyết áp tâm thu cao",
        "High systolic blood pressure",
    ),
    (
        "bp_diastolic_high",
        "Huyết áp tâm trương cao",
        "High diastolic blood pressure",
    ),
    (
        "bp_systolic_low",
        "Huyết áp tâm thu thấp",
        "Low systolic blood pressure",
    ),
    ("temperature_high", "Sốt", "Fever"),
    ("temperature_very_high", "Sốt cao", "High fever"),
    ("temperature_low", "Hạ thân nhiệt", "Low body temperature"),
    (
        "temperature_above_baseline",
        "Nhiệt độ cao hơn mức thường ngày",
        "Temperature above the patient's usual",
    ),
    ("respiratory_rate_high", "Thở nhanh", "Fast breathing"),
    ("respiratory_rate_low", "Thở chậm", "Slow breathing"),
    (
        "glucose_very_low",
        "Hạ đường huyết nặng",
        "Severe low blood sugar",
    ),
    ("glucose_low", "Hạ đường huyết", "Low blood sugar"),
    ("glucose_high", "Đường huyết cao", "High blood sugar"),
    (
        "news2_high",
        "NEWS2 từ 7 điểm trở lên",
        "NEWS2 of 7 or more",
    ),
    (
        "news2_medium",
        "NEWS2 từ 5 điểm trở lên",
        "NEWS2 of 5 or more",
    ),
    ("weight_gain", "Tăng cân nhanh", "Rapid weight gain"),
    (
        "device_silent",
        "Thiết bị không gửi số đo",
        "Device not reporting",
    ),
    ("fall", "Té ngã", "Fall"),
    ("sos", "Gọi trợ giúp (SOS)", "SOS call"),
    ("battery_low", "Thiết bị sắp hết pin", "Device battery low"),
    ("device_error", "Thiết bị báo lỗi", "Device error"),
    (
        "notification_failed",
        "Không gửi được thư báo cho gia đình",
        "Family e-mail not delivered",
    ),
];

/// An alert rule's name in `lang`: the built-in rules by name; a rule from a site's own rule
/// file by its id made readable ("bp_morning" → "Bp morning"), since only the site knows what
/// it means.
pub fn rule_name(id: &str, lang: Lang) -> String {
    if let Some((_, vi, en)) = RULES.iter().find(|(r, _, _)| *r == id) {
        return match lang {
            Lang::Vi => vi,
            Lang::En => en,
        }
        .to_string();
    }
    let plain = id.replace(['_', '-'], " ");
    let mut c = plain.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

impl DeviceKind {
    /// The kind as a nurse names the device.
    pub fn label(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (DeviceKind::PulseOximeter, Lang::Vi) => "Máy đo SpO₂",
            (DeviceKind::PulseOximeter, Lang::En) => "Pulse oximeter",
            (DeviceKind::BpMonitor, Lang::Vi) => "Máy đo huyết áp",
            (DeviceKind::BpMonitor, Lang::En) => "Blood-pressure monitor",
            (DeviceKind::Thermometer, Lang::Vi) => "Nhiệt kế",
            (DeviceKind::Thermometer, Lang::En) => "Thermometer",
            (DeviceKind::GlucoseMeter, Lang::Vi) => "Máy đo đường huyết",
            (DeviceKind::GlucoseMeter, Lang::En) => "Glucose meter",
            (DeviceKind::Scale, Lang::Vi) => "Cân",
            (DeviceKind::Scale, Lang::En) => "Scale",
            (DeviceKind::Wearable, Lang::Vi) => "Thiết bị đeo",
            (DeviceKind::Wearable, Lang::En) => "Wearable",
            (DeviceKind::FallDetector, Lang::Vi) => "Thiết bị phát hiện té ngã",
            (DeviceKind::FallDetector, Lang::En) => "Fall detector",
            (DeviceKind::Hub, Lang::Vi) => "Bộ thu tại nhà",
            (DeviceKind::Hub, Lang::En) => "Home hub",
        }
    }
}

/// A device kind stored as text (`pulse_oximeter`) in `lang`; an unknown one as stored.
pub fn device_kind(kind: &str, lang: Lang) -> String {
    match kind.parse::<DeviceKind>() {
        Ok(k) => k.label(lang).to_string(),
        Err(_) => kind.to_string(),
    }
}

/// A NEWS2 parameter (`News2View::missing`) in `lang` (RCP 2017 names the seven).
pub fn news2_parameter(p: &str, lang: Lang) -> String {
    let metric = match p {
        "respiratory_rate" => Some(Metric::RespiratoryRate),
        "spo2" => Some(Metric::Spo2),
        "systolic" => Some(Metric::BpSystolic),
        "pulse" => Some(Metric::HeartRate),
        "temperature" => Some(Metric::Temperature),
        _ => None,
    };
    if let Some(m) = metric {
        return m.label(lang).to_string();
    }
    match (p, lang) {
        ("air_or_oxygen", Lang::Vi) => "thở oxy hay khí trời",
        ("air_or_oxygen", Lang::En) => "air or oxygen",
        ("consciousness", Lang::Vi) => "mức độ tỉnh táo",
        ("consciousness", Lang::En) => "consciousness",
        (other, _) => other,
    }
    .to_string()
}

/// The built-in rules as (id, name in `lang`), for pickers.
pub fn named_rules(lang: Lang) -> Vec<(&'static str, String)> {
    RULES
        .iter()
        .map(|(id, _, _)| (*id, rule_name(id, lang)))
        .collect()
}

/// Whether `id` is a rule with a name of its own (the built-in ones).
pub fn rule_named(id: &str) -> bool {
    RULES.iter().any(|(r, _, _)| *r == id)
}

/// The missing NEWS2 parameters as one list in `lang`.
pub fn news2_missing(missing: &[&str], lang: Lang) -> String {
    missing
        .iter()
        .map(|p| news2_parameter(p, lang))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_rule_has_a_name_in_both_languages_without_its_id() {
        for (id, vi, en) in RULES {
            assert_eq!(rule_name(id, Lang::Vi), *vi);
            assert_eq!(rule_name(id, Lang::En), *en);
            assert!(!vi.contains('_') && !en.contains('_'), "{id}");
        }
        assert_eq!(rule_name("bp_morning", Lang::Vi), "Bp morning");
        assert_eq!(rule_name("", Lang::En), "");
    }

    #[test]
    fn kinds_and_parameters_read_as_words() {
        for k in DeviceKind::ALL {
            assert!(!k.label(Lang::Vi).contains('_'));
            assert_eq!(device_kind(k.as_str(), Lang::En), k.label(Lang::En));
        }
        assert_eq!(device_kind("toaster", Lang::Vi), "toaster");
        assert_eq!(
            news2_missing(&["air_or_oxygen", "consciousness"], Lang::Vi),
            "thở oxy hay khí trời, mức độ tỉnh táo"
        );
        assert_eq!(news2_parameter("pulse", Lang::En), "Heart rate");
    }
}
