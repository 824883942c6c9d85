//! Alert e-mails (issue #5), in Vietnamese or English per contact (clinical reference §8 for
//! wording): a plain-text part and an HTML alternative (RFC 2046 multipart/alternative), the
//! patient, what was measured with its value and threshold (unless `minimal_phi`), the time in
//! UTC+07:00 (Asia/Ho_Chi_Minh has no daylight saving time, so a fixed offset is exact), what
//! to do (115 in an emergency), a link to the alert on the dashboard and, for family contacts,
//! the "I'm handling it" link.
//!
//! Patient names and device-supplied values are data, never markup: every one is escaped in the
//! HTML part (docs/architecture.md, invariant 7).

use chrono::{DateTime, Utc};
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use vigil_domain::{display, AlertState, ContactRole, EventKind, Lang, Metric, Severity};

/// What an alert e-mail says.
#[derive(Debug, Clone)]
pub struct AlertFacts<'a> {
    pub patient_name: &'a str,
    pub rule: &'a str,
    pub severity: Severity,
    pub metric: Option<Metric>,
    pub value: Option<f64>,
    /// The rule's threshold as the rule file states it, e.g. `< 90`.
    pub limit: Option<&'a str>,
    pub event: Option<EventKind>,
    pub at: DateTime<Utc>,
    /// The display time zone times are shown in (`dashboard.timezone`).
    pub tz: chrono_tz::Tz,
    /// The alert on the dashboard, when the operator configured its public URL.
    pub alert_url: Option<&'a str>,
    /// "I'm handling it": acknowledges the alert as this contact (family contacts only).
    pub ack_url: Option<&'a str>,
    /// Leave vital values and thresholds out (`notify.minimal_phi`): the e-mail says that a
    /// reading needs attention and where to look.
    pub minimal_phi: bool,
    /// 0 for the first e-mail about the alert, n for the n-th reminder while nobody has
    /// acknowledged it.
    pub reminder: u32,
    pub role: ContactRole,
}

/// A rendered e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn local(f: &AlertFacts<'_>) -> String {
    display::local_time(f.at, f.tz)
}

fn number(v: f64, lang: Lang) -> String {
    display::number(v, lang.decimal_comma())
}

fn decimal(s: String, lang: Lang) -> String {
    display::decimal(s, lang.decimal_comma())
}

pub use vigil_domain::display::escape_html;

pub fn severity_label(s: Severity, lang: Lang) -> &'static str {
    s.label(lang)
}

/// The words on the "I'm handling it" button and page.
pub fn handling_label(lang: Lang) -> &'static str {
    match lang {
        Lang::Vi => "Tôi đang xử lý",
        Lang::En => "I'm handling it",
    }
}

/// (what happened, its threshold line) in `lang`.
fn what(lang: Lang, f: &AlertFacts<'_>) -> (String, Option<String>) {
    match (f.metric, f.value, f.event) {
        (Some(m), Some(v), _) => {
            let label = match lang {
                Lang::Vi => m.label_vi(),
                Lang::En => m.label_en(),
            };
            if f.minimal_phi {
                let s = match lang {
                    Lang::Vi => format!("{label}: cần xem ngay"),
                    Lang::En => format!("{label}: needs attention"),
                };
                return (s, None);
            }
            let unit = m.display_unit();
            let limit = f.limit.map(|l| {
                let mut l = decimal(l.to_string(), lang);
                // A plain threshold (`< 90`) takes the unit; a trend limit carries its own.
                if l.ends_with(|c: char| c.is_ascii_digit()) {
                    l = format!("{l} {unit}");
                }
                match lang {
                    Lang::Vi => format!("Ngưỡng cảnh báo: {l}"),
                    Lang::En => format!("Alert threshold: {l}"),
                }
            });
            (format!("{label}: {} {unit}", number(v, lang)), limit)
        }
        (_, _, Some(e)) => (e.label(lang).to_string(), None),
        (None, Some(v), None) if f.rule.starts_with("news2") && !f.minimal_phi => {
            (format!("NEWS2: {}", number(v, lang)), None)
        }
        _ => (
            match lang {
                Lang::Vi => "Chỉ số cần xem ngay".to_string(),
                Lang::En => "A reading needs attention".to_string(),
            },
            None,
        ),
    }
}

pub fn render(lang: Lang, f: &AlertFacts<'_>) -> Rendered {
    let (what, limit) = what(lang, f);
    let sev = severity_label(f.severity, lang);
    let reminder = match (f.reminder, lang) {
        (0, _) => String::new(),
        (_, Lang::Vi) => "Nhắc lại — chưa ai xác nhận: ".to_string(),
        (_, Lang::En) => "Reminder — not yet acknowledged: ".to_string(),
    };
    let subject = format!("[Vigil] {reminder}{sev}: {} — {what}", f.patient_name);
    let (patient_l, time_l) = match lang {
        Lang::Vi => ("Người bệnh", "Thời điểm"),
        Lang::En => ("Patient", "Time"),
    };
    let advice: &[&str] = match (f.role, lang) {
        (ContactRole::Family, Lang::Vi) => &[
            "Xin hãy liên lạc ngay với người bệnh hoặc người chăm sóc.",
            "Nếu người bệnh khó thở, đau ngực, lơ mơ hoặc không trả lời: gọi cấp cứu 115.",
            "Nhân viên y tế theo dõi đã nhận được cảnh báo này.",
        ],
        (ContactRole::Family, Lang::En) => &[
            "Please contact the patient or their carer now.",
            "If the patient is short of breath, has chest pain, is drowsy or does not answer: \
             call the ambulance on 115.",
            "The monitoring clinicians have received this alert too.",
        ],
        (ContactRole::Clinician, Lang::Vi) => &[
            "Xin xem cảnh báo trên bảng theo dõi và xác nhận khi đã tiếp nhận.",
            "Nếu cần cấp cứu: gọi 115.",
        ],
        (ContactRole::Clinician, Lang::En) => &[
            "Please review the alert on the dashboard and acknowledge it.",
            "In an emergency: call the ambulance on 115.",
        ],
    };
    let ack_line = f.ack_url.map(|url| match lang {
        Lang::Vi => (
            "Nếu quý vị đang lo việc này, xin bấm vào liên kết dưới đây để mọi người biết:",
            url,
        ),
        Lang::En => (
            "If you are taking care of this, open the link below so everyone knows:",
            url,
        ),
    });
    let alert_line = f.alert_url.map(|url| match lang {
        Lang::Vi => ("Xem cảnh báo:", url),
        Lang::En => ("View the alert:", url),
    });
    let footer = match lang {
        Lang::Vi => "— Vigil, hệ thống theo dõi sức khỏe tại nhà. Đây là thư tự động.",
        Lang::En => "— Vigil home monitoring. This is an automatic message.",
    };

    // Plain text.
    let mut text = format!(
        "{reminder}{sev}\n\n{patient_l}: {}\n{what}\n",
        f.patient_name
    );
    if let Some(l) = &limit {
        text.push_str(l);
        text.push('\n');
    }
    text.push_str(&format!("{time_l}: {}\n\n", local(f)));
    for a in advice {
        text.push_str(a);
        text.push('\n');
    }
    if let Some((l, url)) = ack_line {
        text.push_str(&format!("\n{l}\n{}: {url}\n", handling_label(lang)));
    }
    if let Some((l, url)) = alert_line {
        text.push_str(&format!("\n{l} {url}\n"));
    }
    text.push_str(&format!("\n{footer}\n"));

    // HTML: the same content, every value escaped.
    let colour = match f.severity {
        Severity::Red => "#b00020",
        Severity::Amber => "#b35c00",
        Severity::Yellow => "#7a6400",
    };
    let e = escape_html;
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family:sans-serif;font-size:16px;line-height:1.5;color:#222\">\n\
         <p style=\"font-weight:bold;color:{colour}\">{}{}</p>\n\
         <p>{patient_l}: <strong>{}</strong><br>{}",
        lang.as_str(),
        e(&subject),
        e(&reminder),
        e(sev),
        e(f.patient_name),
        e(&what),
    );
    if let Some(l) = &limit {
        html.push_str(&format!("<br>{}", e(l)));
    }
    html.push_str(&format!("<br>{time_l}: {}</p>\n<p>", e(&local(f))));
    html.push_str(
        &advice
            .iter()
            .map(|a| e(a))
            .collect::<Vec<_>>()
            .join("<br>\n"),
    );
    html.push_str("</p>\n");
    if let Some((l, url)) = ack_line {
        html.push_str(&format!(
            "<p>{}</p>\n<p><a href=\"{}\" style=\"display:inline-block;padding:10px 18px;\
             background:#1b5e20;color:#fff;text-decoration:none;border-radius:4px\">{}</a></p>\n",
            e(l),
            e(url),
            e(handling_label(lang))
        ));
    }
    if let Some((l, url)) = alert_line {
        html.push_str(&format!(
            "<p>{} <a href=\"{}\">{}</a></p>\n",
            e(l),
            e(url),
            e(url)
        ));
    }
    html.push_str(&format!(
        "<p style=\"color:#666;font-size:13px\">{}</p>\n</body></html>\n",
        e(footer)
    ));
    Rendered {
        subject,
        text,
        html,
    }
}

fn state_label(s: AlertState, lang: Lang) -> &'static str {
    match (s, lang) {
        (AlertState::Open, Lang::Vi) => "chưa xác nhận",
        (AlertState::Open, Lang::En) => "not yet acknowledged",
        (AlertState::Acknowledged, Lang::Vi) => "đã tiếp nhận",
        (AlertState::Acknowledged, Lang::En) => "acknowledged",
        (AlertState::Resolved, Lang::Vi) => "đã xử lý",
        (AlertState::Resolved, Lang::En) => "resolved",
    }
}

/// One e-mail for several non-critical alerts of one patient (anti-flood, `digest`): what
/// happened, when, and where each alert stands now. One item reads as an ordinary alert e-mail.
pub fn render_digest(
    lang: Lang,
    items: &[(AlertFacts<'_>, AlertState)],
    alert_url: Option<&str>,
) -> Rendered {
    let (first, _) = &items[0];
    if items.len() == 1 {
        return render(lang, first);
    }
    let patient = first.patient_name;
    let n = items.len();
    let (subject, intro, patient_l) = match lang {
        Lang::Vi => (
            format!("[Vigil] Tóm tắt {n} cảnh báo: {patient}"),
            format!("{n} cảnh báo (không khẩn cấp) từ lần gửi thư trước:"),
            "Người bệnh",
        ),
        Lang::En => (
            format!("[Vigil] {n} alerts for {patient}"),
            format!("{n} alerts (not urgent) since the last e-mail:"),
            "Patient",
        ),
    };
    let lines: Vec<String> = items
        .iter()
        .map(|(f, st)| {
            let (what, limit) = what(lang, f);
            let mut l = format!(
                "{} — {} — {what}",
                local(f),
                severity_label(f.severity, lang)
            );
            if let Some(limit) = limit {
                l += &format!(" ({limit})");
            }
            l += &format!(" — {}", state_label(*st, lang));
            l
        })
        .collect();
    let footer = match lang {
        Lang::Vi => "Thư này gộp các cảnh báo không khẩn cấp để tránh gửi quá nhiều thư. Cảnh báo khẩn cấp (mức đỏ) luôn được gửi ngay.\n— Vigil, hệ thống theo dõi sức khỏe tại nhà. Đây là thư tự động.",
        Lang::En => "Non-urgent alerts are grouped to avoid a flood of e-mails. Urgent (red) alerts are always sent at once.\n— Vigil home monitoring. This is an automatic message.",
    };
    let see = match lang {
        Lang::Vi => "Xem trên bảng theo dõi:",
        Lang::En => "See the dashboard:",
    };
    let mut text = format!("{patient_l}: {patient}\n{intro}\n\n");
    for l in &lines {
        text += &format!("- {l}\n");
    }
    if let Some(u) = alert_url {
        text += &format!("\n{see} {u}\n");
    }
    text += &format!("\n{footer}\n");
    let e = escape_html;
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family:sans-serif;font-size:16px;line-height:1.5;color:#222\">\n\
         <p>{patient_l}: <strong>{}</strong><br>{}</p>\n<ul>\n",
        lang.as_str(),
        e(&subject),
        e(patient),
        e(&intro)
    );
    for l in &lines {
        html += &format!("<li>{}</li>\n", e(l));
    }
    html += "</ul>\n";
    if let Some(u) = alert_url {
        html += &format!("<p>{} <a href=\"{}\">{}</a></p>\n", e(see), e(u), e(u));
    }
    html += &format!(
        "<p style=\"color:#666;font-size:13px\">{}</p>\n</body></html>\n",
        e(footer).replace('\n', "<br>")
    );
    Rendered {
        subject,
        text,
        html,
    }
}

/// A Message-ID fixed when the e-mail is queued, so that a retry after a crash is recognisably
/// the same message (docs/architecture.md, invariant 4; RFC 5322 §3.6.4).
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
    #[error("bad Message-ID")]
    MessageId,
}

/// The parts of a queued e-mail.
#[derive(Debug, Clone, Copy)]
pub struct Content<'a> {
    pub subject: &'a str,
    pub text: &'a str,
    pub html: Option<&'a str>,
}

/// The RFC 5322 message for a queued e-mail: plain text, or multipart/alternative with the
/// HTML part last (RFC 2046 §5.1.4: the preferred, richest alternative comes last).
///
/// Every header value built from stored text (the recipient's name, the subject) goes through
/// [`vigil_domain::text::one_line`] first: whatever a row holds, it cannot start a new header
/// line (RFC 5322 §2.2; issue #15, finding 1) nor make lettre's header encoder fail.
pub fn build_message(
    from: &Mailbox,
    to_name: &str,
    to_addr: &str,
    content: &Content<'_>,
    message_id: &str,
    date: DateTime<Utc>,
) -> Result<Message, BuildError> {
    let name = vigil_domain::text::one_line(to_name);
    let to = Mailbox::new(Some(name).filter(|n| !n.is_empty()), to_addr.parse()?);
    // A msg-id is `<left@right>` in printable ASCII without spaces (RFC 5322 §3.6.4).
    let id_ok = message_id.starts_with('<')
        && message_id.ends_with('>')
        && message_id.contains('@')
        && message_id.bytes().all(|b| b.is_ascii_graphic());
    if !id_ok {
        return Err(BuildError::MessageId);
    }
    let b = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(vigil_domain::text::one_line(content.subject))
        .message_id(Some(message_id.to_string()))
        .date(date.into());
    Ok(match content.html {
        Some(html) => b.multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(content.text.to_string()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html.to_string()),
                ),
        )?,
        None => b
            .header(ContentType::TEXT_PLAIN)
            .body(content.text.to_string())?,
    })
}

#[cfg(test)]
mod tests;
