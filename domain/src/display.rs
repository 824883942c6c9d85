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

impl AlertState {
    /// Where an alert stands, as a family reads it in a sentence ("— đã tiếp nhận").
    pub fn label(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (AlertState::Open, Lang::Vi) => "chưa xác nhận",
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
}
