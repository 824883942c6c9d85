//! One card per patient episode (issue #17), shared by the ward view and the alert inbox:
//! the signals with their *current* values, time since onset, who was notified, who answered
//! (the family's response apart from the clinicians'), phones, and one acknowledge / assign /
//! resolve for the whole episode. Resolving while a signal is still abnormal asks to confirm,
//! listing the current values (`data-abnormal`; the API checks it again).

use super::alert_text::{describe, rule_title};
use super::view::ago;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use minijinja::{context, Value};
use vigil_domain::views::{Episode, EpisodeSignal};
use vigil_domain::{Lang, Metric};

/// "HH:MM" in the dashboard's zone, with the day when it is not today's.
fn clock(tz: chrono_tz::Tz, t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let (t, n) = (t.with_timezone(&tz), now.with_timezone(&tz));
    if t.date_naive() == n.date_naive() {
        t.format("%H:%M").to_string()
    } else {
        t.format("%H:%M %d/%m").to_string()
    }
}

/// A signal's current value as the page shows it (`SpO₂ 86 %`), without the label when
/// `bare`.
fn current(s: &EpisodeSignal, vi: bool, bare: bool) -> Option<String> {
    let m = s.alert.metric.as_deref()?.parse::<Metric>().ok()?;
    let v = s.current.as_ref()?;
    let value = m.screen_value(v.value, Lang::pick(vi));
    Some(if bare {
        value
    } else {
        format!("{} {value}", m.label(Lang::pick(vi)))
    })
}

/// The longest window the patient page's `?from=&to=` may ask for: the 30-day view's.
pub(crate) const LONGEST_DAYS: i64 = 31;

/// The link to a patient's charts over an episode: from 30 minutes before its onset to 30
/// minutes after its end (now while it goes on).
pub(crate) fn episode_window(
    patient_id: &str,
    opened: DateTime<Utc>,
    ended: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> String {
    let margin = Duration::minutes(30);
    let fmt = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let path = format!("/patients/{}", super::view::percent_encode(patient_id));
    match ended {
        // Still going on: up to now, whenever the link is followed (a day to spare before the
        // longest window).
        None => {
            let start = (opened - margin).max(now - Duration::days(LONGEST_DAYS - 1));
            format!("{path}?from={}", fmt(start))
        }
        Some(e) => {
            let end = (e + margin).min(now);
            let start = (opened - margin).max(end - Duration::days(LONGEST_DAYS - 1));
            format!("{path}?from={}&to={}", fmt(start), fmt(end))
        }
    }
}

pub(crate) fn episode_card(e: &Episode, tz: chrono_tz::Tz, vi: bool, now: DateTime<Utc>) -> Value {
    let signals: Vec<Value> = e
        .signals
        .iter()
        .map(|s| {
            context! {
                id => s.alert.id,
                severity => s.alert.severity.as_str(),
                state => s.alert.state.as_str(),
                what => describe(&s.alert, vi),
                rule_title => rule_title(&s.alert, vi),
                current => current(s, vi, true),
                current_at => s.current.as_ref().map(|c| ago(now, c.at, vi)),
                abnormal => s.abnormal,
                acknowledged_by => s.alert.acknowledged_by.as_deref().map(|w| super::view::actor(w, vi)),
                assigned_to => &s.alert.assigned_to,
            }
        })
        .collect();
    let abnormal: Vec<String> = e
        .signals
        .iter()
        .filter(|s| s.abnormal)
        .filter_map(|s| current(s, vi, false))
        .collect();
    let notified: Vec<Value> = e
        .notified
        .iter()
        .map(|n| {
            context! {
                name => &n.name,
                role => &n.role,
                phone => &n.phone,
                tel => n.phone.as_deref().map(vigil_domain::text::tel_uri),
                at => clock(tz, n.first_at, now),
                delivered => n.delivered,
            }
        })
        .collect();
    let open = e
        .signals
        .iter()
        .any(|s| s.alert.state == vigil_domain::AlertState::Open);
    let assigned = e
        .signals
        .iter()
        .filter(|s| s.alert.state.is_active())
        .all(|s| s.alert.assigned_to.is_some());
    context! {
        id => e.id,
        patient_id => &e.patient_id,
        patient_name => &e.patient_name,
        severity => e.severity.as_str(),
        state => e.state.as_str(),
        onset => clock(tz, e.opened_at, now),
        onset_at => e.opened_at.to_rfc3339(),
        age => ago(now, e.opened_at, vi),
        chart => episode_window(&e.patient_id, e.opened_at, e.ended_at, now),
        signals => signals,
        abnormal => abnormal.join("; "),
        notified => notified,
        family_response => e.family_response.as_ref().map(|r| context! {
            name => &r.name, at => clock(tz, r.at, now),
        }),
        taken_on => e.taken_on.as_ref().map(|t| context! {
            name => &t.name, at => clock(tz, t.at, now),
        }),
        family_note => e.family_note.as_ref().map(|n| context! {
            by => &n.by, note => &n.note,
        }),
        open => open,
        assigned => assigned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use vigil_domain::views::{
        CurrentValue, EpisodeState, FamilyResponse, Notified, SharedNote, TakenOn,
    };
    use vigil_domain::{Alert, AlertState, Severity};

    fn signal(id: i64, metric: &str, value: f64, now: f64, abnormal: bool) -> EpisodeSignal {
        let at = Utc.with_ymd_and_hms(2026, 12, 5, 9, 0, 0).unwrap();
        EpisodeSignal {
            alert: Alert {
                id,
                patient_id: "an".into(),
                patient_name: "<b>An</b>".into(),
                rule: format!("{metric}_rule"),
                severity: Severity::Red,
                state: AlertState::Open,
                opened_at: at,
                value: Some(value),
                metric: Some(metric.into()),
                unit: None,
                message: String::new(),
                acknowledged_at: None,
                acknowledged_by: None,
                note: None,
                resolved_at: None,
                assigned_to: None,
                limit: Some("< 90".into()),
                event: None,
                last_value: Some(value),
                last_at: Some(at),
                episode_id: Some(4),
                device_id: None,
            },
            current: Some(CurrentValue {
                value: now,
                unit: "%".into(),
                at,
            }),
            abnormal,
        }
    }

    #[test]
    fn a_card_shows_current_values_who_was_told_and_who_answered() {
        let t = |h, m| Utc.with_ymd_and_hms(2026, 12, 5, h, m, 0).unwrap();
        let e = Episode {
            id: 4,
            patient_id: "an".into(),
            patient_name: "<b>An</b>".into(),
            state: EpisodeState::Active,
            severity: Severity::Red,
            peak: Severity::Red,
            opened_at: t(8, 55),
            ended_at: None,
            reopened: 0,
            family_response: Some(FamilyResponse {
                name: "Lan".into(),
                at: t(9, 2),
            }),
            taken_on: Some(TakenOn {
                name: "BS Minh".into(),
                at: t(9, 5),
            }),
            family_note: Some(SharedNote {
                by: "BS Minh".into(),
                note: "<i>đến lúc 17:00</i>".into(),
                at: t(9, 5),
            }),
            notified: vec![Notified {
                name: "Lan".into(),
                role: "family".into(),
                phone: Some("0903 123 456".into()),
                first_at: t(8, 56),
                delivered: true,
            }],
            signals: vec![signal(9, "spo2", 84.0, 86.0, true)],
        };
        let ctx = context! {
            e => episode_card(&e, chrono_tz::Asia::Ho_Chi_Minh, true, t(9, 10)),
            t => super::super::view::labels(true),
        };
        let html = super::super::view::env()
            .get_template("episode_card.html")
            .unwrap()
            .render(ctx)
            .unwrap();
        assert!(html.contains("Gia đình: Lan đang xử lý, 16:02"), "{html}");
        assert!(html.contains("BS Minh đã tiếp nhận, 16:05"), "{html}");
        assert!(html.contains("hiện tại: 86 %"), "the current value: {html}");
        assert!(
            html.contains(r#"data-abnormal="SpO₂ (độ bão hòa oxy máu) 86 %""#),
            "{html}"
        );
        assert!(html.contains(r#"href="tel:0903123456""#), "{html}");
        assert!(html.contains("Bắt đầu <time"), "{html}");
        assert!(
            !html.contains("<b>An</b>") && !html.contains("<i>"),
            "escaped: {html}"
        );
    }

    /// Issue #21: Vietnamese pages read "nhịp/phút", not "/min"; English keeps "/min".
    #[test]
    fn units_read_in_the_pages_language() {
        let a = signal(1, "heart_rate", 135.0, 135.0, true).alert;
        let vi = crate::http::alert_text::describe(&a, true);
        let en = crate::http::alert_text::describe(&a, false);
        assert!(vi.contains("135 nhịp/phút") && !vi.contains("/min"), "{vi}");
        assert!(en.contains("135 /min"), "{en}");
        let rr = signal(2, "respiratory_rate", 26.0, 26.0, true).alert;
        let vi = crate::http::alert_text::describe(&rr, true);
        assert!(vi.contains("26 lần/phút"), "{vi}");
    }
}
