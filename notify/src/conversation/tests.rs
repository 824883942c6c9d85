use super::*;
use chrono::TimeZone;
use vigil_domain::AlertState;

fn alert(id: i64, rule: &str, metric: Option<&str>, value: Option<f64>) -> Alert {
    Alert {
        id,
        patient_id: "p".into(),
        patient_name: "Nguyễn Văn An".into(),
        rule: rule.into(),
        severity: Severity::Red,
        state: AlertState::Open,
        opened_at: Utc.with_ymd_and_hms(2026, 11, 22, 1, 15, 0).unwrap(),
        value,
        metric: metric.map(str::to_string),
        unit: None,
        message: String::new(),
        acknowledged_at: None,
        acknowledged_by: None,
        note: None,
        resolved_at: None,
        assigned_to: None,
        limit: Some("< 90".into()),
        event: None,
        last_value: value,
        last_at: None,
        episode_id: Some(1),
        device_id: None,
    }
}

fn facts<'a>(open: &'a [&'a Alert], role: ContactRole, lang: Lang) -> Facts<'a> {
    Facts {
        kind: Kind::First,
        lang,
        role,
        patient_name: "Nguyễn Văn An",
        open,
        taken_on: None,
        told: &[],
        shared_note: None,
        station_phone: None,
        at: Utc.with_ymd_and_hms(2026, 11, 22, 1, 16, 0).unwrap(),
        tz: chrono_tz::Asia::Ho_Chi_Minh,
        minimal_phi: false,
        thread_subject: None,
        alert_url: None,
        ack_url: None,
    }
}

#[test]
fn families_read_plain_signs_and_clinicians_keep_the_clinical_words() {
    let spo2 = alert(1, "spo2_low", Some("spo2"), Some(84.0));
    let news = alert(2, "news2_high", None, Some(7.0));
    let open = [&spo2, &news];
    let family = render(&facts(&open, ContactRole::Family, Lang::Vi));
    assert_eq!(family.subject, "Nguyễn Văn An: cảnh báo đỏ — SpO₂ 84 %");
    assert!(family
        .text
        .contains("- Oxy trong máu (SpO₂): 84 % — bình thường 95–100 %"));
    assert!(!family.text.contains("NEWS2"), "{}", family.text);
    assert!(family.text.contains("115"));
    let clinician = render(&facts(&open, ContactRole::Clinician, Lang::En));
    assert!(clinician.text.contains("NEWS2: 7"), "{}", clinician.text);
    assert!(
        clinician.text.contains("Alert threshold: < 90 %"),
        "{}",
        clinician.text
    );
}

#[test]
fn subjects_stay_within_60_characters_name_first() {
    let spo2 = alert(1, "spo2_low", Some("spo2"), Some(84.0));
    let open = [&spo2];
    let mut f = facts(&open, ContactRole::Family, Lang::Vi);
    f.patient_name = "Tôn Nữ Thị Hoàng Phương Thảo Nguyên Bảo Ngọc Anh";
    let s = first_subject(&f);
    assert!(s.chars().count() <= SUBJECT_MAX, "{s}");
    assert!(s.starts_with("Tôn Nữ Thị Hoàng Phương"), "{s}");
    assert!(s.ends_with('…'), "{s}");
    f.thread_subject = Some("Nguyễn Văn An: cảnh báo đỏ — SpO₂ 84 %");
    f.kind = Kind::AllClear;
    let r = render(&f);
    assert_eq!(r.subject, "Re: Nguyễn Văn An: cảnh báo đỏ — SpO₂ 84 %");
    assert!(
        !r.text.contains("Oxy trong máu"),
        "no signs in the all-clear"
    );
}

#[test]
fn a_reply_names_who_took_it_on() {
    let spo2 = alert(1, "spo2_low", Some("spo2"), Some(86.0));
    let open = [&spo2];
    let mut f = facts(&open, ContactRole::Family, Lang::En);
    f.kind = Kind::Update;
    f.thread_subject = Some("Nguyễn Văn An: red alert — SpO₂ 84 %");
    f.taken_on = Some((
        "Dr Minh",
        Utc.with_ymd_and_hms(2026, 11, 22, 1, 20, 0).unwrap(),
    ));
    let r = render(&f);
    assert!(
        r.text.contains("Dr Minh took this on at 08:20"),
        "{}",
        r.text
    );
    assert!(r.text.contains("Blood oxygen (SpO₂): 86 %"), "{}", r.text);
}

#[test]
fn a_shared_note_reaches_families_only() {
    let spo2 = alert(1, "spo2_low", Some("spo2"), Some(86.0));
    let open = [&spo2];
    let mut f = facts(&open, ContactRole::Family, Lang::Vi);
    f.kind = Kind::Update;
    f.shared_note = Some(("BS Minh", "Tôi sẽ đến nhà lúc 17:00"));
    let r = render(&f);
    assert!(
        r.text
            .contains("Lời nhắn của BS Minh: “Tôi sẽ đến nhà lúc 17:00”"),
        "{}",
        r.text
    );
    assert!(r.html.contains("Tôi sẽ đến nhà lúc 17:00"), "{}", r.html);
    f.role = ContactRole::Clinician;
    assert!(!render(&f).text.contains("Lời nhắn"));
}

#[test]
fn once_a_clinician_is_on_it_families_are_told_so_and_get_no_dashboard_link() {
    let spo2 = alert(1, "spo2_low", Some("spo2"), Some(86.0));
    let open = [&spo2];
    let mut f = facts(&open, ContactRole::Family, Lang::Vi);
    f.alert_url = Some("https://vigil.example/#alert-1");
    let first = render(&f);
    assert!(
        first.text.contains("Xin hãy liên lạc ngay"),
        "{}",
        first.text
    );
    assert!(!first.text.contains("#alert-1"), "{}", first.text);
    f.kind = Kind::Update;
    f.taken_on = Some((
        "BS Minh",
        Utc.with_ymd_and_hms(2026, 11, 22, 1, 20, 0).unwrap(),
    ));
    let update = render(&f);
    assert!(
        update.text.contains("Nhân viên y tế đang xử lý"),
        "{}",
        update.text
    );
    assert!(
        !update.text.contains("Xin hãy liên lạc ngay"),
        "{}",
        update.text
    );
    assert!(update.text.contains("115"));
    f.role = ContactRole::Clinician;
    assert!(render(&f).text.contains("#alert-1"), "clinicians keep it");
}
