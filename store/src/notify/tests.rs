//! Notification policy (`vigil_notify::policy`) over the real rows, on a simulated clock.

use super::Rows;
use crate::db::{params, Connection};
use crate::testing::{self, notify_fixture as store, notify_settings as settings, outbox};
use crate::{ms_to_time, outbox, registry, Result};
use chrono::TimeZone;
use vigil_domain::Severity;
use vigil_notify::policy::{self, Steps};
use vigil_notify::NotifySettings;

fn escalate_due(c: &Connection, now: i64, s: &NotifySettings) -> Result<Steps> {
    policy::escalate_due(&Rows(c), now, s)
}

fn flush_digests(c: &Connection, now: i64, s: &NotifySettings) -> Result<usize> {
    policy::flush_digests(&Rows(c), now, s)
}

fn start(c: &Connection, id: i64, sev: Severity, s: &NotifySettings, now: i64) -> Result<usize> {
    policy::start(&Rows(c), id, sev, s, now)
}

const MIN: i64 = 60_000;

#[test]
fn primaries_at_once_secondaries_after_ten_minutes_then_everyone_every_fifteen() {
    let c = store();
    let s = settings();
    let first: Vec<i64> = outbox(&c).iter().map(|e| e.0).collect();
    assert_eq!(
        first,
        vec![1, 3],
        "the primary family contact and the clinician"
    );
    let queued = |now| escalate_due(&c, now, &s).unwrap().queued;
    assert_eq!(queued(10 * MIN - 1), 0);
    assert_eq!(queued(10 * MIN), 1);
    assert_eq!(outbox(&c)[2].0, 2, "then the secondary contact");
    assert!(!outbox(&c)[2].1.contains("Reminder"), "their first e-mail");
    assert_eq!(queued(25 * MIN - 1), 0);
    assert_eq!(queued(25 * MIN), 3);
    let reminders = &outbox(&c)[3..];
    assert!(reminders
        .iter()
        .all(|(_, subj)| subj.contains("Nhắc lại") || subj.contains("Reminder")));
    assert_eq!(queued(40 * MIN), 3);
}

#[test]
fn nothing_sent_by_the_first_escalation_step_calls_for_notification_failed() {
    let c = store();
    assert_eq!(
        escalate_due(&c, 10 * MIN, &settings()).unwrap().undelivered,
        vec![1]
    );
    // Delivered mail: nothing to raise.
    let c = store();
    c.execute("UPDATE outbox SET sent_at = 1", []).unwrap();
    assert!(escalate_due(&c, 10 * MIN, &settings())
        .unwrap()
        .undelivered
        .is_empty());
}

/// Issue #15: removing a contact cancels what waited for them — not sent, and not counted
/// as a delivery failure (no `/readyz` outage, no unhealthy delivery, no alert).
#[test]
fn a_removed_contacts_waiting_emails_are_cancelled_not_failed() {
    let c = store();
    let before = outbox::counts(&c).unwrap().pending;
    registry::remove_contact(&c, 1, "test").unwrap();
    let counts = outbox::counts(&c).unwrap();
    assert_eq!(counts.pending, before - 1);
    assert_eq!(counts.undeliverable, 0);
    assert_eq!(outbox::set_aside_since(&c, 0).unwrap(), 0);
    assert!(outbox::due(&c, ms_to_time(i64::MAX / 2), 10)
        .unwrap()
        .iter()
        .all(|m| m.to_addr != "lan@example.org"));
    assert_eq!(testing::alert_rules(&c).len(), 1, "no notification_failed");
}

/// Amber alert `id` for patient p1, opened at `at` (ms), queued for digests.
fn amber(c: &Connection, id: i64, metric: &str, value: f64, at: i64) {
    c.execute(
        "INSERT INTO alerts (id, patient_id, rule, condition, severity, state, opened_at,
                             metric, value, message, last_value, last_at, limit_text)
         VALUES (?1, 'p1', ?2, ?2, 'amber', 'open', ?3, ?4, ?5, 'm', ?5, ?3, '< 94')",
        params![id, format!("{metric}_amber_{id}"), at, metric, value],
    )
    .unwrap();
    start(c, id, Severity::Amber, &settings(), at).unwrap();
}

#[test]
fn non_critical_alerts_reach_who_wants_them_at_most_once_an_hour_as_a_digest() {
    let c = store();
    let s = settings();
    let before = outbox(&c).len();
    amber(&c, 10, "spo2", 92.0, MIN);
    assert_eq!(
        flush_digests(&c, MIN, &s).unwrap(),
        1,
        "the first goes at once"
    );
    let sent = outbox(&c);
    assert_eq!(sent.len(), before + 1);
    assert_eq!(
        sent[before].0, 3,
        "to the clinician; families hear of red alerts only"
    );
    amber(&c, 11, "temperature", 38.3, 5 * MIN);
    amber(&c, 12, "spo2", 91.0, 10 * MIN);
    assert_eq!(
        flush_digests(&c, 30 * MIN, &s).unwrap(),
        0,
        "within the hour"
    );
    assert_eq!(
        flush_digests(&c, 61 * MIN, &s).unwrap(),
        1,
        "one digest of two"
    );
    let last = outbox(&c).pop().unwrap();
    assert!(last.1.contains("Tóm tắt 2 cảnh báo"), "{}", last.1);
    assert_eq!(flush_digests(&c, 200 * MIN, &s).unwrap(), 0, "nothing left");
}

#[test]
fn quiet_hours_hold_digests_but_never_red_alerts() {
    let c = store();
    c.execute(
        "UPDATE contacts SET quiet_hours = '22:00-06:00' WHERE id = 3",
        [],
    )
    .unwrap();
    let s = settings();
    // 2026-11-28 16:00 UTC is 23:00 in Ho Chi Minh City.
    let night = chrono::Utc
        .with_ymd_and_hms(2026, 11, 28, 16, 0, 0)
        .unwrap()
        .timestamp_millis();
    amber(&c, 10, "spo2", 92.0, night);
    assert_eq!(flush_digests(&c, night, &s).unwrap(), 0);
    assert_eq!(
        flush_digests(&c, night + 6 * 60 * MIN, &s).unwrap(),
        0,
        "05:00"
    );
    assert_eq!(
        flush_digests(&c, night + 7 * 60 * MIN, &s).unwrap(),
        1,
        "06:00"
    );
    // A red alert at night e-mails the clinician at once (store() started one at t = 0,
    // whatever the hour).
    assert!(outbox(&c).iter().filter(|e| e.0 == 3).count() >= 2);
}

#[test]
fn no_public_url_no_links() {
    let c = crate::testing::connection();
    c.execute_batch(
        "INSERT INTO patients (num, id, name, created_at) VALUES (1, 'p1', 'P', 0);
         INSERT INTO contacts (id, patient_id, name, email, lang, role, created_at) VALUES
           (1, 'p1', 'Lan', 'lan@example.org', 'vi', 'family', 0);
         INSERT INTO alerts (id, patient_id, rule, condition, severity, state, opened_at,
                             message, last_at)
         VALUES (1, 'p1', 'sos', 'sos', 'red', 'open', 0, 'event sos', 0);",
    )
    .unwrap();
    assert_eq!(
        start(&c, 1, Severity::Red, &NotifySettings::default(), 0).unwrap(),
        1
    );
    let body: String = c
        .query_row("SELECT body FROM outbox", [], |r| r.get(0))
        .unwrap();
    assert!(!body.contains("/ack/"), "{body}");
    let links: i64 = c
        .query_row("SELECT count(*) FROM ack_links", [], |r| r.get(0))
        .unwrap();
    assert_eq!(links, 0);
}
