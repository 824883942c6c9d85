//! The e-mails of an episode's conversation (issue #17): one first e-mail when an episode turns
//! red, then replies in the same thread — an update (a new red sign, a fall or SOS, a clinician
//! took it on), a reminder while nobody has answered, and the all-clear when it ends.
//!
//! Families read plain words with the usual range ("Oxy trong máu (SpO₂): 84 % — bình thường
//! 95–100 %"), no "NEWS2" and no "/min"; clinicians keep the clinical wording and thresholds.
//! Each message lists every abnormal sign of the episode as it stands when the message goes,
//! and says who else was told. Laid out by the same templates as every e-mail (`email.rs`).

use crate::email::{self, AlertFacts, Rendered};
use chrono::{DateTime, Utc};
use minijinja::context;
use vigil_domain::{display, Alert, ContactRole, EventKind, Lang, Metric, Severity};

/// Longest subject (issue #17): the patient's name first, then what happened.
pub const SUBJECT_MAX: usize = 60;

/// Which message of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The episode turned red: the first e-mail of the thread.
    First,
    /// Something a family needs to know changed (a reply).
    Update,
    /// Nobody has answered yet (a reply).
    Reminder,
    /// Every alert of the episode is resolved (a reply).
    AllClear,
}

/// Somebody else told about the episode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Told {
    pub name: String,
    pub role: ContactRole,
    pub phone: Option<String>,
}

/// What a message says, gathered by the policy.
pub struct Facts<'a> {
    pub kind: Kind,
    pub lang: Lang,
    pub role: ContactRole,
    pub patient_name: &'a str,
    /// The episode's open alerts, most severe first (all of them once it ended: none open).
    pub open: &'a [&'a Alert],
    /// Who took it on and when (a clinician's acknowledgement), if somebody did.
    pub taken_on: Option<(&'a str, DateTime<Utc>)>,
    /// The other people this episode was e-mailed to.
    pub told: &'a [Told],
    /// A clinician's note shared with the family: (who, note). Families only read it.
    pub shared_note: Option<(&'a str, &'a str)>,
    /// The phone of the patient's health station, which families are told to call.
    pub station_phone: Option<&'a str>,
    pub at: DateTime<Utc>,
    pub tz: chrono_tz::Tz,
    pub minimal_phi: bool,
    /// The thread's subject, for replies.
    pub thread_subject: Option<&'a str>,
    pub alert_url: Option<&'a str>,
    pub ack_url: Option<&'a str>,
}

/// One abnormal sign of `a` as `role` reads it; `None` when a family need not read it (NEWS2,
/// a device's own trouble).
fn sign(a: &Alert, f: &Facts<'_>) -> Option<String> {
    let metric = a.metric.as_deref().and_then(|m| m.parse::<Metric>().ok());
    let event = a.event.as_deref().and_then(|e| e.parse::<EventKind>().ok());
    let value = a.last_value.or(a.value);
    if f.role == ContactRole::Clinician {
        let facts = AlertFacts {
            patient_name: f.patient_name,
            rule: &a.rule,
            severity: a.severity,
            metric,
            value,
            limit: a.limit.as_deref(),
            event,
            at: a.last_at.unwrap_or(a.opened_at),
            tz: f.tz,
            alert_url: None,
            ack_url: None,
            minimal_phi: f.minimal_phi,
            reminder: 0,
            role: f.role,
        };
        let (what, limit) = email::what(f.lang, &facts);
        return Some(match limit {
            Some(l) => format!("{what} ({l})"),
            None => what,
        });
    }
    match (metric, value, event) {
        (Some(m), Some(_), _) if f.minimal_phi => Some(format!(
            "{}: {}",
            m.plain_label(f.lang),
            match f.lang {
                Lang::Vi => "cần xem ngay",
                Lang::En => "needs attention",
            }
        )),
        (Some(m), Some(v), _) => Some(m.plain_sign(v, f.lang)),
        (_, _, Some(e @ (EventKind::Fall | EventKind::Sos))) => Some(e.label(f.lang).to_string()),
        _ => None,
    }
}

/// The episode's open signs as a family reads them (the link page, issue #17), with when each
/// was last measured.
pub fn family_signs(
    open: &[&Alert],
    lang: Lang,
    minimal_phi: bool,
) -> Vec<(String, DateTime<Utc>)> {
    let f = Facts {
        kind: Kind::Update,
        lang,
        role: ContactRole::Family,
        patient_name: "",
        open,
        taken_on: None,
        told: &[],
        shared_note: None,
        station_phone: None,
        at: Utc::now(),
        tz: chrono_tz::UTC,
        minimal_phi,
        thread_subject: None,
        alert_url: None,
        ack_url: None,
    };
    open.iter()
        .filter_map(|a| Some((sign(a, &f)?, a.last_at.unwrap_or(a.opened_at))))
        .collect()
}

/// The sign a subject names: the most severe one a family can read.
fn headline(f: &Facts<'_>) -> String {
    for a in f.open {
        let event = a.event.as_deref().and_then(|e| e.parse::<EventKind>().ok());
        match (event, f.lang) {
            (Some(EventKind::Fall), Lang::Vi) => return "té ngã".into(),
            (Some(EventKind::Fall), Lang::En) => return "a fall".into(),
            (Some(EventKind::Sos), Lang::Vi) => return "bấm nút SOS".into(),
            (Some(EventKind::Sos), Lang::En) => return "SOS button".into(),
            _ => {}
        }
        let metric = a.metric.as_deref().and_then(|m| m.parse::<Metric>().ok());
        if let (Some(m), Some(v)) = (metric, a.last_value.or(a.value)) {
            let name = match (m, f.lang) {
                (Metric::Spo2, _) => "SpO₂",
                (Metric::HeartRate, Lang::Vi) => "nhịp tim",
                (Metric::HeartRate, Lang::En) => "heart rate",
                (Metric::RespiratoryRate, Lang::Vi) => "nhịp thở",
                (Metric::RespiratoryRate, Lang::En) => "breathing",
                (Metric::Temperature, Lang::Vi) => "nhiệt độ",
                (Metric::Temperature, Lang::En) => "temperature",
                (Metric::BpSystolic | Metric::BpDiastolic, Lang::Vi) => "huyết áp",
                (Metric::BpSystolic | Metric::BpDiastolic, Lang::En) => "blood pressure",
                (Metric::Glucose, Lang::Vi) => "đường huyết",
                (Metric::Glucose, Lang::En) => "blood sugar",
                (Metric::Weight, Lang::Vi) => "cân nặng",
                (Metric::Weight, Lang::En) => "weight",
            };
            if f.minimal_phi {
                return name.to_string();
            }
            let unit = if f.role == ContactRole::Clinician {
                m.display_unit()
            } else {
                m.plain_unit(f.lang)
            };
            return format!(
                "{name} {} {unit}",
                display::number(v, f.lang.decimal_comma())
            );
        }
    }
    match f.lang {
        Lang::Vi => "chỉ số bất thường".into(),
        Lang::En => "abnormal readings".into(),
    }
}

/// `s` cut to [`SUBJECT_MAX`] characters, with an ellipsis when cut.
fn clip(s: String) -> String {
    if s.chars().count() <= SUBJECT_MAX {
        return s;
    }
    let mut out: String = s.chars().take(SUBJECT_MAX - 1).collect();
    out.push('…');
    out
}

/// The subject of the first e-mail: "Nguyễn Văn An: cảnh báo đỏ — SpO₂ 84 %".
pub fn first_subject(f: &Facts<'_>) -> String {
    let red = match f.lang {
        Lang::Vi => "cảnh báo đỏ",
        Lang::En => "red alert",
    };
    clip(format!("{}: {red} — {}", f.patient_name, headline(f)))
}

fn role_label(role: ContactRole, lang: Lang) -> &'static str {
    match (role, lang) {
        (ContactRole::Family, Lang::Vi) => "gia đình",
        (ContactRole::Family, Lang::En) => "family",
        (ContactRole::Clinician, Lang::Vi) => "nhân viên y tế",
        (ContactRole::Clinician, Lang::En) => "health staff",
    }
}

/// Renders one message of the conversation.
pub fn render(f: &Facts<'_>) -> Rendered {
    let lang = f.lang;
    let vi = lang == Lang::Vi;
    let local = display::local_time(f.at, f.tz);
    let subject = match (f.kind, f.thread_subject) {
        (Kind::First, _) | (_, None) => first_subject(f),
        (_, Some(s)) => clip(format!("Re: {s}")),
    };
    let heading = match (f.kind, vi) {
        (Kind::First, _) => Severity::Red.label(lang).to_string(),
        (Kind::Update, true) => "Cập nhật".into(),
        (Kind::Update, false) => "Update".into(),
        (Kind::Reminder, true) => "Nhắc lại — chưa có nhân viên y tế nào tiếp nhận".into(),
        (Kind::Reminder, false) => "Reminder — no health worker has taken this on yet".into(),
        // Only what is true (issue #17): the alerts were dealt with — which may be a transfer
        // to hospital —, not that the patient is well.
        (Kind::AllClear, true) => "Đã xử lý xong — cảnh báo đã đóng".into(),
        (Kind::AllClear, false) => "Dealt with — the alert is closed".into(),
    };
    let mut facts = vec![format!(
        "{}: {local}",
        if vi { "Thời điểm" } else { "Time" }
    )];
    if let Some((who, at)) = f.taken_on {
        let at = display::local_time(at, f.tz);
        facts.push(if vi {
            format!("{who} đã tiếp nhận lúc {at}.")
        } else {
            format!("{who} took this on at {at}.")
        });
    }
    // The note is the clinician's words to the family (opt-in on acknowledge, issue #17).
    if let (Some((who, note)), ContactRole::Family) = (f.shared_note, f.role) {
        facts.push(if vi {
            format!("Lời nhắn của {who}: “{note}”")
        } else {
            format!("Message from {who}: “{note}”")
        });
    }
    let items: Vec<String> = if f.kind == Kind::AllClear {
        Vec::new()
    } else {
        f.open.iter().filter_map(|a| sign(a, f)).collect()
    };
    match (f.kind, items.is_empty(), vi) {
        (Kind::AllClear, _, true) => facts.push(
            "Tất cả các cảnh báo của đợt này đã được nhân viên y tế hoặc hệ thống xử lý xong. Nếu quý vị còn lo lắng, xin gọi cho người bệnh hoặc trạm y tế."
                .into(),
        ),
        (Kind::AllClear, _, false) => facts.push(
            "Every alert of this episode has been dealt with by the health staff or the system. \
             If you are still worried, please phone the patient or the health station."
                .into(),
        ),
        (_, false, true) => facts.push("Các dấu hiệu bất thường:".into()),
        (_, false, false) => facts.push("What is abnormal:".into()),
        (_, true, _) => {}
    }
    let mut advice: Vec<String> = match (f.kind, f.role, vi) {
        (Kind::AllClear, _, _) => Vec::new(),
        // A clinician is on it: the family need not rush, but may still help (issue #17).
        (_, ContactRole::Family, true) if f.taken_on.is_some() => vec![
            "Nhân viên y tế đang xử lý. Quý vị có thể gọi hỏi thăm người bệnh.".into(),
            "Nếu người bệnh khó thở, đau ngực, lơ mơ hoặc không trả lời: gọi cấp cứu 115.".into(),
        ],
        (_, ContactRole::Family, false) if f.taken_on.is_some() => vec![
            "The health staff are on it. You may phone the patient to check on them.".into(),
            "If the patient is short of breath, has chest pain, is drowsy or does not answer: \
             call the ambulance on 115."
                .into(),
        ],
        (_, ContactRole::Family, true) => vec![
            "Xin hãy liên lạc ngay với người bệnh hoặc người chăm sóc.".into(),
            "Nếu người bệnh khó thở, đau ngực, lơ mơ hoặc không trả lời: gọi cấp cứu 115.".into(),
        ],
        (_, ContactRole::Family, false) => vec![
            "Please contact the patient or their carer now.".into(),
            "If the patient is short of breath, has chest pain, is drowsy or does not answer: \
             call the ambulance on 115."
                .into(),
        ],
        (_, ContactRole::Clinician, true) => vec![
            "Xin xem cảnh báo trên bảng theo dõi và bấm «Tiếp nhận» khi đã nắm tình hình.".into(),
            "Nếu cần cấp cứu: gọi 115.".into(),
        ],
        (_, ContactRole::Clinician, false) => vec![
            "Please review the alert on the dashboard and acknowledge it.".into(),
            "In an emergency: call the ambulance on 115.".into(),
        ],
    };
    if let (Some(phone), ContactRole::Family, false) =
        (f.station_phone, f.role, f.kind == Kind::AllClear)
    {
        advice.insert(
            1,
            if vi {
                format!("Trạm y tế theo dõi người bệnh: {phone}.")
            } else {
                format!("The patient's health station: {phone}.")
            },
        );
    }
    // Only what is true: who was actually e-mailed (issue #17).
    if f.kind != Kind::AllClear && !f.told.is_empty() {
        let names: Vec<String> = f
            .told
            .iter()
            .map(|t| match &t.phone {
                Some(p) => format!("{} ({}, {p})", t.name, role_label(t.role, lang)),
                None => format!("{} ({})", t.name, role_label(t.role, lang)),
            })
            .collect();
        advice.push(format!(
            "{} {}.",
            if vi {
                "Cũng đã báo cho:"
            } else {
                "Also told:"
            },
            names.join(", ")
        ));
    }
    let ack = f.ack_url.filter(|_| f.kind != Kind::AllClear).map(|url| {
        context! {
            intro => if vi {
                "Nếu quý vị đang xử lý việc này, xin bấm vào liên kết dưới đây để nhân viên y tế và người nhà khác biết:"
            } else {
                "If you are taking care of this, open the link below so everyone knows:"
            },
            url,
            button => email::handling_label(lang),
        }
    });
    // The dashboard's link is for clinicians: a family cannot sign in there (their page is
    // the "I'm handling it" link's, with the signs).
    let link = f
        .alert_url
        .filter(|_| f.role == ContactRole::Clinician)
        .map(|url| {
            context! { label => if vi { "Xem cảnh báo:" } else { "View the alert:" }, url }
        });
    let footer = if vi {
        "— Vigil, hệ thống theo dõi sức khỏe tại nhà. Đây là thư tự động: thư trả lời không có người đọc, xin gọi điện nếu cần."
    } else {
        "— Vigil home monitoring. This is an automatic message: replies are not read; please phone if needed."
    };
    email::fill(context! {
        lang => lang.as_str(),
        subject,
        heading,
        colour => if f.kind == Kind::AllClear { "#1b5e20" } else { "#b00020" },
        patient_label => if vi { "Người bệnh" } else { "Patient" },
        patient => f.patient_name,
        facts,
        items,
        advice,
        ack,
        link,
        footer => [footer],
    })
}

#[cfg(test)]
mod tests;
