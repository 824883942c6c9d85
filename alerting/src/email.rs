//! The family e-mail (issue #2: "an e-mail to the patient's family contact"), in Vietnamese or
//! English (clinical reference §8 for wording).
//!
//! Plain text only: patient names and device-supplied values are data, never markup (design
//! invariant 7), and plain text reads well on every phone. Times are shown in UTC+07:00
//! (Asia/Ho_Chi_Minh has no daylight saving time, so a fixed offset is exact).

use chrono::{DateTime, FixedOffset, Utc};
use lettre::message::{header::ContentType, Mailbox};
use lettre::Message;
use vigil_domain::{EventKind, Lang, Metric, Severity, DISPLAY_TZ_OFFSET_SECS};

/// What an alert e-mail says.
#[derive(Debug, Clone)]
pub struct AlertFacts<'a> {
    pub patient_name: &'a str,
    pub rule: &'a str,
    pub severity: Severity,
    pub metric: Option<Metric>,
    pub value: Option<f64>,
    pub event: Option<EventKind>,
    pub at: DateTime<Utc>,
    /// Where the dashboard is, when the operator configured a public URL.
    pub dashboard_url: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

fn local(at: DateTime<Utc>) -> String {
    let tz = FixedOffset::east_opt(DISPLAY_TZ_OFFSET_SECS).expect("+07:00 is a valid offset");
    at.with_timezone(&tz)
        .format("%H:%M %d/%m/%Y (UTC+07:00)")
        .to_string()
}

/// Vietnamese writes decimals with a comma ("3,9 mmol/L", clinical reference §8).
fn number(v: f64, lang: Lang) -> String {
    let s = if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    };
    match lang {
        Lang::Vi => s.replace('.', ","),
        Lang::En => s,
    }
}

fn event_label(e: EventKind, lang: Lang) -> &'static str {
    match (e, lang) {
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

fn severity_label(s: Severity, lang: Lang) -> &'static str {
    // "Báo động đỏ" is avoided on purpose: in Vietnamese hospitals it names a formal
    // inter-hospital emergency procedure (clinical reference §8).
    match (s, lang) {
        (Severity::Red, Lang::Vi) => "Cảnh báo khẩn cấp (mức đỏ)",
        (Severity::Red, Lang::En) => "Urgent alert (red)",
        (Severity::Amber, Lang::Vi) => "Cảnh báo (mức cam)",
        (Severity::Amber, Lang::En) => "Alert (amber)",
        (Severity::Yellow, Lang::Vi) => "Thông báo (mức vàng)",
        (Severity::Yellow, Lang::En) => "Notice (yellow)",
    }
}

pub fn render(lang: Lang, f: &AlertFacts<'_>) -> Rendered {
    let what = match (f.metric, f.value, f.event) {
        (Some(m), Some(v), _) => {
            let label = match lang {
                Lang::Vi => m.label_vi(),
                Lang::En => m.label_en(),
            };
            format!("{label}: {} {}", number(v, lang), m.display_unit())
        }
        (_, _, Some(e)) => event_label(e, lang).to_string(),
        _ => f.rule.to_string(),
    };
    let sev = severity_label(f.severity, lang);
    let subject = format!("[Vigil] {sev}: {} — {what}", f.patient_name);
    let mut body = match lang {
        Lang::Vi => format!(
            "{sev}\n\nNgười bệnh: {}\n{what}\nThời điểm: {}\n\n\
             Xin hãy liên lạc ngay với người bệnh hoặc người chăm sóc.\n\
             Nếu người bệnh khó thở, đau ngực, lơ mơ hoặc không trả lời: gọi cấp cứu 115.\n\
             Nhân viên y tế theo dõi đã nhận được cảnh báo này.\n",
            f.patient_name,
            local(f.at)
        ),
        Lang::En => format!(
            "{sev}\n\nPatient: {}\n{what}\nTime: {}\n\n\
             Please contact the patient or their carer now.\n\
             If the patient is short of breath, has chest pain, is drowsy or does not answer: \
             call the ambulance on 115.\n\
             The monitoring clinicians have received this alert too.\n",
            f.patient_name,
            local(f.at)
        ),
    };
    if let Some(url) = f.dashboard_url {
        body.push_str(&format!("\n{url}\n"));
    }
    body.push_str(match lang {
        Lang::Vi => "\n— Vigil, hệ thống theo dõi sức khỏe tại nhà. Đây là thư tự động.\n",
        Lang::En => "\n— Vigil home monitoring. This is an automatic message.\n",
    });
    Rendered { subject, body }
}

/// A Message-ID fixed when the e-mail is queued, so that a retry after a crash is recognisably
/// the same message (design invariant 4; RFC 5322 §3.6.4).
pub fn new_message_id(alert_id: i64, domain: &str) -> String {
    let nonce: u64 = rand::random();
    format!("<alert-{alert_id}.{nonce:016x}@{domain}>")
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("bad address: {0}")]
    Address(#[from] lettre::address::AddressError),
    #[error("cannot build message: {0}")]
    Message(#[from] lettre::error::Error),
}

/// The RFC 5322 message for a queued e-mail.
pub fn build_message(
    from: &Mailbox,
    to_name: &str,
    to_addr: &str,
    subject: &str,
    body: &str,
    message_id: &str,
    date: DateTime<Utc>,
) -> Result<Message, BuildError> {
    let to = Mailbox::new(Some(to_name.to_string()), to_addr.parse()?);
    Ok(Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(message_id.to_string()))
        .date(date.into())
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_string())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn build_facts() -> AlertFacts<'static> {
        AlertFacts {
            patient_name: "Nguyễn Văn An",
            rule: "spo2_low",
            severity: Severity::Red,
            metric: Some(Metric::Spo2),
            value: Some(85.5),
            event: None,
            at: Utc.with_ymd_and_hms(2026, 11, 22, 1, 15, 0).unwrap(),
            dashboard_url: None,
        }
    }

    #[test]
    fn vietnamese_uses_local_time_comma_and_115() {
        let r = render(Lang::Vi, &build_facts());
        assert!(
            r.subject.contains("Cảnh báo khẩn cấp (mức đỏ)"),
            "{}",
            r.subject
        );
        assert!(r.subject.contains("Nguyễn Văn An"));
        assert!(r.body.contains("85,5 %"), "{}", r.body);
        assert!(r.body.contains("08:15 22/11/2026"), "{}", r.body);
        assert!(r.body.contains("115"));
        assert!(!r.body.contains("báo động đỏ"));
    }

    #[test]
    fn english_and_events() {
        let mut f = build_facts();
        f.metric = None;
        f.value = None;
        f.event = Some(EventKind::Fall);
        f.rule = "fall";
        let r = render(Lang::En, &f);
        assert!(r.subject.contains("A fall was detected"), "{}", r.subject);
        assert!(r.body.contains("Urgent alert (red)"));
    }

    #[test]
    fn message_has_fixed_id() {
        let from: Mailbox = "Vigil <vigil@localhost>".parse().unwrap();
        let id = new_message_id(3, "vigil.local");
        let m =
            build_message(&from, "Bình", "binh@example.org", "s", "b", &id, Utc::now()).unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(text.contains(&format!("Message-ID: {id}")), "{text}");
    }
}
