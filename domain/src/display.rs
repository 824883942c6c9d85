//! How values are shown to people, the same in e-mails and on every page: the names of
//! severities, events, measurements and alert states in Vietnamese and English (the one place
//! for them; pages keep only their short column headers in their own label table); times in
//! the display time zone (`dashboard.timezone`, Asia/Ho_Chi_Minh by default; one setting for
//! pages, e-mails and the family's link page, issue #16); numbers with the decimal comma in
//! Vietnamese (clinical reference §8); and text escaped for HTML (docs/architecture.md,
//! invariant 7: device- and person-supplied text is data, never markup).

use crate::{AlertState, EventKind, Lang, Metric, Severity};
use chrono::{DateTime, Utc};

/// `t` in the display time zone as people read it, with its offset:
/// `08:15 22/11/2026 (UTC+07:00)`.
pub fn local_time(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz)
        .format("%H:%M %d/%m/%Y (UTC%:z)")
        .to_string()
}

/// A measured value: whole numbers without decimals, others with one; `comma` for Vietnamese.
pub fn number(v: f64, comma: bool) -> String {
    let s = if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    };
    decimal(s, comma)
}

/// `s` with its decimal points as commas when `comma`.
pub fn decimal(s: String, comma: bool) -> String {
    if comma {
        s.replace('.', ",")
    } else {
        s
    }
}

impl Lang {
    /// Whether numbers take the decimal comma.
    pub fn decimal_comma(self) -> bool {
        self == Lang::Vi
    }

    /// Vietnamese when `vi`, else English (pages carry the choice as a flag).
    pub fn pick(vi: bool) -> Lang {
        if vi {
            Lang::Vi
        } else {
            Lang::En
        }
    }
}

impl Metric {
    /// The measurement's name in `lang` (clinical reference §8).
    pub fn label(self, lang: Lang) -> &'static str {
        match lang {
            Lang::Vi => self.label_vi(),
            Lang::En => self.label_en(),
        }
    }
}

impl Metric {
    /// The measurement's name for a family without medical training (issue #17: no jargon in
    /// family e-mails; clinical reference §8 for the Vietnamese).
    pub fn plain_label(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Metric::Spo2, Lang::Vi) => "Oxy trong máu (SpO₂)",
            (Metric::Spo2, Lang::En) => "Blood oxygen (SpO₂)",
            (Metric::HeartRate, Lang::Vi) => "Nhịp tim",
            (Metric::HeartRate, Lang::En) => "Heart rate",
            (Metric::RespiratoryRate, Lang::Vi) => "Nhịp thở",
            (Metric::RespiratoryRate, Lang::En) => "Breathing rate",
            (Metric::Temperature, Lang::Vi) => "Nhiệt độ cơ thể",
            (Metric::Temperature, Lang::En) => "Body temperature",
            (Metric::BpSystolic, Lang::Vi) => "Huyết áp tối đa (số trên)",
            (Metric::BpSystolic, Lang::En) => "Blood pressure, upper number",
            (Metric::BpDiastolic, Lang::Vi) => "Huyết áp tối thiểu (số dưới)",
            (Metric::BpDiastolic, Lang::En) => "Blood pressure, lower number",
            (Metric::Glucose, Lang::Vi) => "Đường huyết",
            (Metric::Glucose, Lang::En) => "Blood sugar",
            (Metric::Weight, Lang::Vi) => "Cân nặng",
            (Metric::Weight, Lang::En) => "Weight",
        }
    }

    /// The unit as a family reads it: "lần/phút" rather than "/min" (clinical reference §8).
    pub fn plain_unit(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Metric::HeartRate, Lang::Vi) => "nhịp/phút",
            (Metric::HeartRate, Lang::En) => "beats a minute",
            (Metric::RespiratoryRate, Lang::Vi) => "lần/phút",
            (Metric::RespiratoryRate, Lang::En) => "breaths a minute",
            (m, _) => m.display_unit(),
        }
    }

    /// The unit on a screen in `lang` (issue #21): Vietnamese reads "nhịp/phút" and "lần/phút"
    /// as the families' e-mails do; English keeps the clinical "/min".
    pub fn screen_unit(self, lang: Lang) -> &'static str {
        match lang {
            Lang::Vi => self.plain_unit(Lang::Vi),
            Lang::En => self.display_unit(),
        }
    }

    /// `v` as precise as devices measure it (issue #21: a minute's average heart rate of 102.3
    /// reads "102"): whole numbers for SpO₂, heart rate, breathing rate and blood pressure,
    /// one decimal for temperature, glucose and weight.
    pub fn shown(self, v: f64) -> f64 {
        match self {
            Metric::Temperature | Metric::Glucose | Metric::Weight => (v * 10.0).round() / 10.0,
            _ => v.round(),
        }
    }

    /// `v` for a screen in `lang`: rounded as [`Metric::shown`], the language's decimal
    /// separator, the screen unit ("102 nhịp/phút", "37,2 °C").
    pub fn screen_value(self, v: f64, lang: Lang) -> String {
        format!(
            "{} {}",
            number(self.shown(v), lang.decimal_comma()),
            self.screen_unit(lang)
        )
    }

    /// The usual range of an adult at rest, for "— usual 95–100 %" in family e-mails; `None`
    /// where there is no one range (weight). Sources: SpO₂ ≥ 95 % (hypoxaemia < 94 %, BMJ
    /// 2021;372:n677); breathing 12–20 and heart rate 51–90 are NEWS2's zero-score bands
    /// (clinical reference §1), heart rate given as the familiar 60–100; temperature 36.1 °C
    /// (NEWS2) to 37.2 °C (older adults, IDSA 2009); blood pressure 90–139 / 60–89 (Vietnam
    /// MoH < 90 / < 60 report at once; 140/90 hypertension); glucose 3.9–10.0 mmol/L (ATTD
    /// 2019 target range).
    pub fn usual_range(self) -> Option<(f64, f64)> {
        match self {
            Metric::Spo2 => Some((95.0, 100.0)),
            Metric::RespiratoryRate => Some((12.0, 20.0)),
            Metric::HeartRate => Some((60.0, 100.0)),
            Metric::Temperature => Some((36.1, 37.2)),
            Metric::BpSystolic => Some((90.0, 139.0)),
            Metric::BpDiastolic => Some((60.0, 89.0)),
            Metric::Glucose => Some((3.9, 10.0)),
            Metric::Weight => None,
        }
    }

    /// One abnormal sign in plain words: "Oxy trong máu (SpO₂): 84 % — bình thường 95–100 %".
    pub fn plain_sign(self, value: f64, lang: Lang) -> String {
        let comma = lang.decimal_comma();
        let unit = self.plain_unit(lang);
        let mut s = format!(
            "{}: {} {unit}",
            self.plain_label(lang),
            number(value, comma)
        );
        if let Some((lo, hi)) = self.usual_range() {
            let usual = match lang {
                Lang::Vi => "bình thường",
                Lang::En => "usually",
            };
            s += &format!(
                " — {usual} {}–{} {unit}",
                number(lo, comma),
                number(hi, comma)
            );
        }
        s
    }
}

impl AlertState {
    /// Where an alert stands, as a family reads it in a sentence ("— đã tiếp nhận").
    pub fn label(self, lang: Lang) -> &'static str {
        match (self, lang) {
            // One verb for acknowledging, as the dashboard's button (issue #21).
            (AlertState::Open, Lang::Vi) => "chưa ai tiếp nhận",
            (AlertState::Open, Lang::En) => "not yet acknowledged",
            (AlertState::Acknowledged, Lang::Vi) => "đã tiếp nhận",
            (AlertState::Acknowledged, Lang::En) => "acknowledged",
            (AlertState::Resolved, Lang::Vi) => "đã xử lý",
            (AlertState::Resolved, Lang::En) => "resolved",
        }
    }
}

impl Severity {
    /// The severity as families read it. "Báo động đỏ" is avoided on purpose: in Vietnamese
    /// hospitals it names a formal inter-hospital emergency procedure (clinical reference §8).
    pub fn label(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Severity::Red, Lang::Vi) => "Cảnh báo khẩn cấp (mức đỏ)",
            (Severity::Red, Lang::En) => "Urgent alert (red)",
            (Severity::Amber, Lang::Vi) => "Cảnh báo (mức cam)",
            (Severity::Amber, Lang::En) => "Alert (amber)",
            (Severity::Yellow, Lang::Vi) => "Thông báo (mức vàng)",
            (Severity::Yellow, Lang::En) => "Notice (yellow)",
        }
    }
}

impl EventKind {
    /// What the event means, as families and clinicians read it.
    pub fn label(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (EventKind::Fall, Lang::Vi) => "Phát hiện té ngã",
            (EventKind::Fall, Lang::En) => "A fall was detected",
            (EventKind::Sos, Lang::Vi) => "Người bệnh bấm nút gọi trợ giúp (SOS)",
            (EventKind::Sos, Lang::En) => "The patient pressed the SOS button",
            (EventKind::BatteryLow, Lang::Vi) => "Thiết bị sắp hết pin",
            (EventKind::BatteryLow, Lang::En) => "Device battery low",
            (EventKind::DeviceError, Lang::Vi) => "Thiết bị báo lỗi",
            (EventKind::DeviceError, Lang::En) => "Device error",
            (EventKind::Ok, Lang::Vi) => "Người bệnh báo không sao",
            (EventKind::Ok, Lang::En) => "The patient reported being OK",
        }
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn numbers_times_and_escaping() {
        assert_eq!(number(85.0, true), "85");
        assert_eq!(number(38.25, true), "38,2");
        assert_eq!(number(3.9, false), "3.9");
        let t = Utc.with_ymd_and_hms(2026, 11, 22, 1, 15, 0).unwrap();
        assert_eq!(
            local_time(t, chrono_tz::Asia::Ho_Chi_Minh),
            "08:15 22/11/2026 (UTC+07:00)"
        );
        assert_eq!(
            escape_html("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn signs_read_plainly_with_their_usual_range() {
        use crate::Metric;
        assert_eq!(
            Metric::Spo2.plain_sign(84.0, Lang::Vi),
            "Oxy trong máu (SpO₂): 84 % — bình thường 95–100 %"
        );
        assert_eq!(
            Metric::RespiratoryRate.plain_sign(27.0, Lang::Vi),
            "Nhịp thở: 27 lần/phút — bình thường 12–20 lần/phút"
        );
        assert_eq!(
            Metric::Temperature.plain_sign(39.4, Lang::En),
            "Body temperature: 39.4 °C — usually 36.1–37.2 °C"
        );
        assert_eq!(
            Metric::Weight.plain_sign(61.5, Lang::Vi),
            "Cân nặng: 61,5 kg"
        );
        for m in Metric::ALL {
            for lang in [Lang::Vi, Lang::En] {
                assert!(!m.plain_sign(1.0, lang).contains("/min"), "{m:?}");
            }
        }
    }
}
