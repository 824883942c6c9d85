use super::*;
use std::collections::BTreeMap;
use vigil_domain::views::{DeviceStatus, LatestValue, News2View};

fn patient(
    id: &str,
    status: &'static str,
    news2: Option<u8>,
    hours_ago: Option<i64>,
) -> PatientSummary {
    let mut latest = BTreeMap::new();
    if let Some(h) = hours_ago {
        latest.insert(
            "spo2".to_string(),
            LatestValue {
                ts: Utc::now() - Duration::hours(h),
                value: 95.0,
                unit: "%",
            },
        );
    }
    PatientSummary {
        id: id.into(),
        name: id.into(),
        facility_id: "default".into(),
        area: Some("A".into()),
        tags: vec!["copd".into()],
        devices: DeviceStatus::default(),
        latest,
        flags: BTreeMap::new(),
        status,
        open_alerts: 0,
        news2: news2.map(|total| News2View {
            total,
            risk: "low".into(),
            partial: true,
            missing: vec![],
        }),
    }
}

#[test]
fn a_view_renders_at_once_for_alerts_and_at_most_once_a_second_for_readings() {
    let t0 = std::time::Instant::now();
    let cached = Cached {
        alerts: 3,
        readings: 10,
        at: t0,
        ctx: Value::from(()),
        html: "".into(),
    };
    let s = std::time::Duration::from_millis;
    // Requests that came in after the cached body was begun.
    let asked = t0 + s(100);
    let now = t0 + s(200);
    let next = |counts, asked_at, now| super::next(Some(&cached), (counts, asked_at), now, true);
    assert_eq!(super::next(None, ((0, 0), t0), t0, true), Next::Render);
    assert_eq!(next((3, 10), asked, t0 + s(500)), Next::Serve);
    // A new alert: render.
    assert_eq!(next((4, 10), asked, now), Next::Render);
    // New readings: served for a second after the cached render began, with when to ask
    // again; rendered after that (and for the page itself, which cannot ask again).
    assert_eq!(next((3, 11), asked, now), Next::ServeStale(s(800)));
    assert_eq!(next((3, 11), asked, t0 + s(1500)), Next::Render);
    assert_eq!(
        super::next(Some(&cached), ((3, 11), asked), now, false),
        Next::Render
    );
    // Single flight: a body begun after the request came in (while it waited for the one
    // rendering) has its readings...
    assert_eq!(next((3, 11), t0 - s(1), now), Next::Serve);
    // ... but not an alert it has not seen.
    assert_eq!(next((4, 11), t0 - s(1), now), Next::Render);
    // Too old, even unchanged ("5 min ago" texts age).
    assert_eq!(next((3, 10), asked, t0 + s(15_000)), Next::Render);
}

#[test]
fn most_urgent_first() {
    let mut list = vec![
        patient("quiet-recent", "ok", Some(1), Some(1)),
        patient("never", "ok", None, None),
        patient("quiet-stale", "ok", Some(1), Some(30)),
        patient("amber", "amber", Some(0), Some(1)),
        patient("high-news2", "ok", Some(6), Some(1)),
        patient("red", "red", Some(0), Some(1)),
    ];
    sort(&mut list);
    let ids: Vec<&str> = list.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "red",
            "amber",
            "high-news2",
            "quiet-stale",
            "quiet-recent",
            "never"
        ]
    );
}

#[test]
fn groups_follow_their_most_urgent_patient() {
    // Sorted rows: the red patient of "z-commune" first.
    let g = group(&["z-commune", "a-centre", "z-commune"], vec![1, 2, 3], true);
    assert_eq!(
        g,
        [
            ("z-commune".to_string(), vec![1, 3]),
            ("a-centre".to_string(), vec![2])
        ]
    );
    let one = group(&["z", "a"], vec![1, 2], false);
    assert_eq!(one, [(String::new(), vec![1, 2])]);
}

#[test]
fn alerts_read_in_the_page_language() {
    let mut a = Alert {
        id: 1,
        patient_id: "p".into(),
        patient_name: "P".into(),
        rule: "spo2_low".into(),
        severity: vigil_domain::Severity::Red,
        state: vigil_domain::AlertState::Open,
        opened_at: Utc::now(),
        value: Some(85.0),
        metric: Some("spo2".into()),
        unit: Some("%".into()),
        message: "spo2 85 % < 90".into(),
        acknowledged_at: None,
        acknowledged_by: None,
        note: None,
        resolved_at: None,
        assigned_to: None,
        limit: Some("< 90".into()),
        event: None,
        last_value: Some(85.0),
        last_at: None,
        episode_id: None,
        device_id: None,
    };
    assert_eq!(describe(&a, false), "SpO₂: 85 % (limit < 90)");
    a.metric = Some("temperature".into());
    a.value = Some(38.5);
    a.message = "temperature 38.5 °C > 37.8".into();
    a.limit = Some("> 37.8".into());
    assert!(
        describe(&a, true).ends_with("38,5 °C (ngưỡng > 37,8)"),
        "{}",
        describe(&a, true)
    );
    a.metric = None;
    a.value = None;
    a.rule = "fall".into();
    assert_eq!(describe(&a, true), "Phát hiện té ngã");
    a.rule = "battery_low".into();
    a.event = Some("battery_low".into());
    a.device_id = Some("oxi-1".into());
    a.value = Some(12.0);
    assert_eq!(describe(&a, true), "Thiết bị sắp hết pin: oxi-1, còn 12 %");
    assert_eq!(describe(&a, false), "Device battery low: oxi-1, 12 % left");
    a.event = None;
    a.value = None;
    a.device_id = None;
    // A site's own rule reads by its name, never the stored message (issue #21).
    a.rule = "something_else".into();
    a.message = "as stored".into();
    assert_eq!(describe(&a, false), "Something else");
    a.rule = "device_silent".into();
    assert_eq!(describe(&a, true), "Thiết bị không gửi số đo");
    a.device_id = Some("cuff-2".into());
    assert_eq!(describe(&a, false), "Device not reporting: cuff-2");
}

#[test]
fn filters() {
    let p = patient("Bà-Ba", "ok", None, None);
    let q = |q: &str, area: &str, tag: &str| WardQuery {
        q: Some(q.into()),
        area: Some(area.into()),
        tag: Some(tag.into()),
        ..WardQuery::default()
    };
    assert!(q("bà", "", "").keeps(&p));
    assert!(q("", "A", "copd").keeps(&p));
    assert!(!q("", "B", "").keeps(&p));
    assert!(!q("", "", "diabetes").keeps(&p));
    assert!(!q("không", "", "").keeps(&p));
}

#[test]
fn the_ward_escapes_what_devices_and_people_typed() {
    let mut p = patient("p1", "red", Some(3), Some(1));
    p.name = "<script>alert(1)</script>".into();
    p.area = Some("<i>area</i>".into());
    let row = patient_row(
        &p,
        None,
        Utc::now() - Duration::hours(24),
        Utc::now(),
        false,
    );
    let html = view::env()
        .get_template("ward_body.html")
        .unwrap()
        .render(context! {
            lang => "en", t => labels(false),
            groups => vec![context! { facility => "", rows => vec![row] }],
            shown => 1,
            alerts => Vec::<Value>::new(),
        })
        .unwrap();
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(
        !html.contains("<script>") && !html.contains("<i>area"),
        "{html}"
    );
    assert!(html.contains(r#"data-patient="p1""#), "{html}");
}
