use super::*;
use chrono::TimeZone;

fn build_facts() -> AlertFacts<'static> {
    AlertFacts {
        patient_name: "Nguyễn Văn An",
        rule: "spo2_low",
        severity: Severity::Red,
        metric: Some(Metric::Spo2),
        value: Some(85.5),
        limit: Some("< 90"),
        event: None,
        at: Utc.with_ymd_and_hms(2026, 11, 22, 1, 15, 0).unwrap(),
        tz: chrono_tz::Asia::Ho_Chi_Minh,
        alert_url: None,
        ack_url: None,
        minimal_phi: false,
        reminder: 0,
        role: ContactRole::Family,
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
    assert!(r.text.contains("85,5 %"), "{}", r.text);
    assert!(r.text.contains("Ngưỡng cảnh báo: < 90 %"), "{}", r.text);
    assert!(r.text.contains("08:15 22/11/2026"), "{}", r.text);
    assert!(r.text.contains("115"));
    assert!(!r.text.contains("báo động đỏ"));
    assert!(r.html.contains("85,5 %"), "{}", r.html);
}

#[test]
fn english_and_events() {
    let mut f = build_facts();
    f.metric = None;
    f.value = None;
    f.limit = None;
    f.event = Some(EventKind::Fall);
    f.rule = "fall";
    let r = render(Lang::En, &f);
    assert!(r.subject.contains("A fall was detected"), "{}", r.subject);
    assert!(r.text.contains("Urgent alert (red)"));
}

#[test]
fn minimal_phi_leaves_values_out() {
    let mut f = build_facts();
    f.minimal_phi = true;
    for lang in [Lang::Vi, Lang::En] {
        let r = render(lang, &f);
        for part in [&r.subject, &r.text, &r.html] {
            assert!(!part.contains("85"), "{part}");
            assert!(!part.contains("90"), "{part}");
        }
        assert!(r.text.contains("SpO₂"), "{}", r.text);
    }
}

#[test]
fn html_escapes_names_and_links() {
    let mut f = build_facts();
    f.patient_name = "<script>alert(1)</script>";
    f.ack_url = Some("https://vigil.example/ack/abc?x=\"1\"");
    let r = render(Lang::En, &f);
    assert!(!r.html.contains("<script>"), "{}", r.html);
    assert!(r.html.contains("&lt;script&gt;"));
    assert!(r
        .html
        .contains("href=\"https://vigil.example/ack/abc?x=&quot;1&quot;\""));
    assert!(r
        .text
        .contains("I'm handling it: https://vigil.example/ack/abc"));
}

#[test]
fn clinicians_get_no_family_advice_and_reminders_say_so() {
    let mut f = build_facts();
    f.role = ContactRole::Clinician;
    f.reminder = 2;
    let r = render(Lang::En, &f);
    assert!(r.subject.contains("Reminder"), "{}", r.subject);
    assert!(r.text.contains("acknowledge it"));
    assert!(!r.text.contains("carer"));
}

#[test]
fn a_digest_lists_each_alert_with_its_state() {
    let mut a = build_facts();
    a.severity = Severity::Amber;
    a.value = Some(92.0);
    a.limit = Some("< 94");
    let mut b = a.clone();
    b.metric = Some(Metric::Temperature);
    b.value = Some(38.2);
    b.limit = Some("> 38");
    let items = [(a, AlertState::Resolved), (b, AlertState::Open)];
    let r = render_digest(Lang::Vi, &items, Some("https://v.example/"));
    assert_eq!(r.subject, "[Vigil] Tóm tắt 2 cảnh báo: Nguyễn Văn An");
    assert!(
        r.text
            .contains(": 92 % (Ngưỡng cảnh báo: < 94 %) — đã xử lý"),
        "{}",
        r.text
    );
    assert!(r.text.contains("38,2 °C"), "{}", r.text);
    assert!(r.text.contains("chưa ai tiếp nhận"));
    let one = render_digest(Lang::En, &items[..1], None);
    assert!(one.subject.contains("Alert (amber)"), "{}", one.subject);
}

#[test]
fn message_has_fixed_id_and_two_parts() {
    let from: Mailbox = "Vigil <vigil@localhost>".parse().unwrap();
    let id = new_message_id(3, "vigil.local");
    let content = Content {
        subject: "s",
        text: "plain",
        html: Some("<p>rich</p>"),
        in_reply_to: None,
    };
    let m = build_message(&from, "Bình", "binh@example.org", &content, &id, Utc::now()).unwrap();
    let text = String::from_utf8(m.formatted()).unwrap();
    assert!(text.contains(&format!("Message-ID: {id}")), "{text}");
    assert!(text.contains("multipart/alternative"), "{text}");
    let plain = text.find("text/plain").unwrap();
    let html = text.find("text/html").unwrap();
    assert!(plain < html, "the HTML alternative comes last");
}

/// Issue #15, finding 1: a stored name or subject with a line break neither injects a
/// header nor makes formatting fail (lettre panicked in `formatted()` before).
#[test]
fn stored_line_breaks_cannot_inject_a_header_or_panic() {
    let from: Mailbox = "Vigil <vigil@localhost>".parse().unwrap();
    for name in [
        "x\r\nBcc: evil@example.org",
        "Trần\rVăn",
        "\r\n",
        "\u{202e}Lan",
    ] {
        let content = Content {
            subject: "[Vigil] Red: x\r\nBcc: evil@example.org",
            text: "plain",
            html: None,
            in_reply_to: None,
        };
        let m = build_message(
            &from,
            name,
            "lan@example.org",
            &content,
            "<a.1@vigil>",
            Utc::now(),
        )
        .unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        let headers = &text[..text.find("\r\n\r\n").unwrap()];
        assert!(
            !headers
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "{headers}"
        );
        assert!(!headers.contains('\u{202e}'), "{headers}");
    }
}

#[test]
fn a_malformed_message_id_is_an_error_not_a_header() {
    let from: Mailbox = "Vigil <vigil@localhost>".parse().unwrap();
    let content = Content {
        subject: "s",
        text: "t",
        html: None,
        in_reply_to: None,
    };
    for id in ["<a@b>\r\nBcc: x@y", "no-brackets@x", "<a b@c>"] {
        let e = build_message(&from, "Lan", "lan@example.org", &content, id, Utc::now());
        assert!(matches!(e, Err(BuildError::MessageId)), "{id:?}");
    }
}

/// Issue #17: a reply in a conversation carries `In-Reply-To` and `References` (RFC 5322
/// §3.6.4), so mail clients thread it under the first e-mail.
#[test]
fn replies_name_the_message_they_answer() {
    let from: Mailbox = "Vigil <vigil@localhost>".parse().unwrap();
    let id = new_message_id(4, "vigil.local");
    let content = Content {
        subject: "Re: s",
        text: "plain",
        html: None,
        in_reply_to: Some("<alert-3.00ff@vigil.local>"),
    };
    let m = build_message(&from, "Bình", "binh@example.org", &content, &id, Utc::now()).unwrap();
    let text = String::from_utf8(m.formatted()).unwrap();
    assert!(
        text.contains("In-Reply-To: <alert-3.00ff@vigil.local>"),
        "{text}"
    );
    assert!(
        text.contains("References: <alert-3.00ff@vigil.local>"),
        "{text}"
    );
}
