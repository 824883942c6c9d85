//! Alert e-mails (issue #5), in Vietnamese or English per contact (clinical reference §8 for
//! wording): a plain-text part and an HTML alternative (RFC 2046 multipart/alternative), the
//! patient, what was measured with its value and threshold (unless `minimal_phi`), the time in
//! UTC+07:00 (Asia/Ho_Chi_Minh has no daylight saving time, so a fixed offset is exact), what
//! to do (115 in an emergency), a link to the alert on the dashboard and, for family contacts,
//! the "I'm handling it" link.
//!
//! Patient names and device-supplied values are data, never markup: every one is escaped in the
//! HTML part (docs/architecture.md, invariant 7). This module decides what an e-mail says; the
//! minijinja templates `templates/email.txt` and `templates/email.html` lay both parts out.

use chrono::{DateTime, Utc};
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use minijinja::{context, AutoEscape, Environment};
use std::sync::OnceLock;
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

/// The words on the "I'm handling it" button and page.
pub fn handling_label(lang: Lang) -> &'static str {
    match lang {
        Lang::Vi => "Tôi đang xử lý",
        Lang::En => "I'm handling it",
    }
}

/// (what happened, its threshold line) in `lang`.
pub(crate) fn what(lang: Lang, f: &AlertFacts<'_>) -> (String, Option<String>) {
    match (f.metric, f.value, f.event) {
        (Some(m), Some(v), _) => {
            let label = m.label(lang);
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
    let sev = f.severity.label(lang);
    let reminder = match (f.reminder, lang) {
        (0, _) => String::new(),
        (_, Lang::Vi) => "Nhắc lại — chưa ai tiếp nhận: ".to_string(),
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
            "Xin xem cảnh báo trên bảng theo dõi và bấm «Tiếp nhận» khi đã nắm tình hình.",
            "Nếu cần cấp cứu: gọi 115.",
        ],
        (ContactRole::Clinician, Lang::En) => &[
            "Please review the alert on the dashboard and acknowledge it.",
            "In an emergency: call the ambulance on 115.",
        ],
    };
    let ack_line = f.ack_url.map(|url| match lang {
        Lang::Vi => (
            "Nếu quý vị đang xử lý việc này, xin bấm vào liên kết dưới đây để nhân viên y tế và người nhà khác biết:",
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
        Lang::Vi => "— Vigil, hệ thống theo dõi sức khỏe tại nhà. Đây là thư tự động: thư trả lời không có người đọc, xin gọi điện nếu cần.",
        Lang::En => "— Vigil home monitoring. This is an automatic message: replies are not read; please phone if needed.",
    };

    let colour = match f.severity {
        Severity::Red => "#b00020",
        Severity::Amber => "#b35c00",
        Severity::Yellow => "#7a6400",
    };
    let mut facts = vec![what];
    facts.extend(limit);
    facts.push(format!("{time_l}: {}", local(f)));
    let ack = ack_line.map(|(intro, url)| {
        context! { intro, url, button => handling_label(lang) }
    });
    let link = alert_line.map(|(label, url)| context! { label, url });
    fill(context! {
        lang => lang.as_str(),
        subject,
        heading => format!("{reminder}{sev}"),
        colour,
        patient_label => patient_l,
        patient => f.patient_name,
        facts,
        advice,
        ack,
        link,
        footer => [footer],
    })
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
            let mut l = format!("{} — {} — {what}", local(f), f.severity.label(lang));
            if let Some(limit) = limit {
                l += &format!(" ({limit})");
            }
            l += &format!(" — {}", st.label(lang));
            l
        })
        .collect();
    let footer = match lang {
        Lang::Vi => "Thư này gộp các cảnh báo không khẩn cấp để tránh gửi quá nhiều thư. Cảnh báo khẩn cấp (mức đỏ) luôn được gửi ngay.\n— Vigil, hệ thống theo dõi sức khỏe tại nhà. Đây là thư tự động: thư trả lời không có người đọc, xin gọi điện nếu cần.",
        Lang::En => "Non-urgent alerts are grouped to avoid a flood of e-mails. Urgent (red) alerts are always sent at once.\n— Vigil home monitoring. This is an automatic message: replies are not read; please phone if needed.",
    };
    let see = match lang {
        Lang::Vi => "Xem trên bảng theo dõi:",
        Lang::En => "See the dashboard:",
    };
    fill(context! {
        lang => lang.as_str(),
        subject,
        patient_label => patient_l,
        patient,
        facts => [intro],
        items => lines,
        link => alert_url.map(|url| context! { label => see, url }),
        footer => footer.lines().collect::<Vec<_>>(),
    })
}

/// The templates every e-mail is laid out with (`templates/email.{txt,html}`).
fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut e = Environment::new();
        e.set_trim_blocks(true);
        e.set_lstrip_blocks(true);
        e.set_keep_trailing_newline(true);
        // minijinja's HTML escaping also writes `/` as `&#x2f;`; links in e-mails stay
        // readable (and recognisable to the mail filters that check them) with the five
        // characters HTML needs escaped (invariant 7).
        e.set_formatter(
            |out, state, value| match (state.auto_escape(), value.as_str()) {
                (AutoEscape::Html, Some(s)) if !value.is_safe() => out
                    .write_str(&escape_html(s))
                    .map_err(minijinja::Error::from),
                _ => minijinja::escape_formatter(out, state, value),
            },
        );
        for (name, src) in [
            ("email.txt", include_str!("../templates/email.txt")),
            ("email.html", include_str!("../templates/email.html")),
        ] {
            e.add_template(name, src).expect("the template parses");
        }
        e
    })
}

/// Both parts of an e-mail from its parts. The templates are compiled in and tested, so an
/// error is a bug: logged, and the e-mail still goes out saying what its subject says.
pub(crate) fn fill(parts: minijinja::Value) -> Rendered {
    let subject = parts
        .get_attr("subject")
        .ok()
        .and_then(|s| s.as_str().map(str::to_string))
        .unwrap_or_default();
    let render = |name: &str| {
        templates()
            .get_template(name)
            .and_then(|t| t.render(&parts))
            .unwrap_or_else(|e| {
                tracing::error!(template = name, error = %e, "e-mail template");
                escape_html(&subject)
            })
    };
    Rendered {
        text: render("email.txt"),
        html: render("email.html"),
        subject,
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
    /// The Message-ID this e-mail answers: `In-Reply-To` and `References` (RFC 5322 §3.6.4),
    /// so mail clients thread a conversation (issue #17).
    pub in_reply_to: Option<&'a str>,
}

/// A msg-id is `<left@right>` in printable ASCII without spaces (RFC 5322 §3.6.4).
fn msg_id_ok(id: &str) -> bool {
    id.starts_with('<')
        && id.ends_with('>')
        && id.contains('@')
        && id.bytes().all(|b| b.is_ascii_graphic())
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
    if !msg_id_ok(message_id) {
        return Err(BuildError::MessageId);
    }
    let mut b = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(vigil_domain::text::one_line(content.subject))
        .message_id(Some(message_id.to_string()))
        .date(date.into());
    if let Some(parent) = content.in_reply_to.filter(|p| msg_id_ok(p)) {
        b = b
            .in_reply_to(parent.to_string())
            .references(parent.to_string());
    }
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
