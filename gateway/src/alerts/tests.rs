use super::*;
use crate::store::ms_to_time;
use vigil_store::testing::{
    alert_rules, notify_fixture as store, notify_settings as settings, outbox,
};

const MIN: i64 = 60_000;

/// Runs `f` in a transaction of a service (InfluxDB sink on when `forward`), as a write
/// job would; the changes are dropped (nobody listens in a unit test).
fn tx<R>(c: &Connection, forward: bool, f: impl FnOnce(&mut AlertTx<'_>) -> R) -> R {
    let svc = AlertService::for_tests(settings(), forward);
    let mut tx = svc.begin(c);
    let r = f(&mut tx);
    let _ = tx.finish().unwrap();
    r
}

/// The InfluxDB queue's lines, in order.
fn queued(c: &Connection) -> Vec<String> {
    let mut st = c
        .prepare("SELECT lines FROM forward_queue ORDER BY id")
        .unwrap();
    let rows = st.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(Result::unwrap)
        .flat_map(|l| l.lines().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// The `opened` points queued for the InfluxDB sink, as `rule,severity`.
fn opened_points(c: &Connection) -> Vec<String> {
    queued(c)
        .into_iter()
        .filter(|l| l.contains(" opened=1i"))
        .map(|l| {
            let tags = l.split(' ').next().unwrap();
            let tag = |k: &str| {
                tags.split(',')
                    .find_map(|t| t.strip_prefix(&format!("{k}=")))
                    .unwrap()
                    .to_string()
            };
            format!("{},{}", tag("rule"), tag("severity"))
        })
        .collect()
}

#[test]
fn acknowledging_and_resolving_are_queued_for_influxdb_once_each() {
    let c = store();
    tx(&c, true, |t| {
        t.act(1, Action::Acknowledge, "bs.lan", Some("calling"))
    })
    .unwrap();
    // A second acknowledgement only adds its note: no new state, no new point.
    tx(&c, true, |t| {
        t.act(1, Action::Acknowledge, "bs.minh", Some("me too"))
    })
    .unwrap();
    let a = tx(&c, true, |t| t.act(1, Action::Resolve, "bs.lan", None)).unwrap();
    assert_eq!(a.state, AlertState::Resolved);
    assert_eq!(
        a.acknowledged_by.as_deref(),
        Some("bs.lan"),
        "the first stays"
    );
    let lines = queued(&c);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let prefix = "alerts,patient_id=p1,rule=spo2_red,severity=red ";
    assert!(
        lines[0].starts_with(&format!("{prefix}acknowledged=1i ")),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with(&format!("{prefix}resolved=1i ")),
        "{lines:?}"
    );
}

#[test]
fn nothing_is_queued_without_the_sink() {
    let c = store();
    tx(&c, false, |t| t.act(1, Action::Acknowledge, "bs.lan", None)).unwrap();
    tx(&c, false, |t| t.act(1, Action::Resolve, "bs.lan", None)).unwrap();
    assert!(queued(&c).is_empty());
}

#[test]
fn acknowledging_stops_the_escalation() {
    let c = store();
    tx(&c, false, |t| {
        t.act(1, Action::Acknowledge, "bs.minh", None)
    })
    .unwrap();
    tx(&c, false, |t| t.notify_due(60 * MIN)).unwrap();
    assert_eq!(outbox(&c).len(), 2);
}

fn token_of(c: &Connection, contact: i64) -> String {
    let body: String = c
        .query_row(
            "SELECT body FROM outbox WHERE contact_id = ?1 ORDER BY id LIMIT 1",
            [contact],
            |r| r.get(0),
        )
        .unwrap();
    let at = body.find("/ack/").expect("a link") + 5;
    body[at..at + 32].to_string()
}

#[test]
fn a_family_link_acknowledges_once_and_stops_the_escalation() {
    let c = store();
    let token = token_of(&c, 1);
    assert_eq!(outbox(&c).len(), 2, "no link for the clinician");
    let v = notify::ack_link_view(&Rows(&c), &token, MIN).unwrap();
    assert_eq!(v.status, AckLinkStatus::Valid);
    assert_eq!(
        v.alert_state,
        Some(AlertState::Open),
        "looking changes nothing"
    );
    let v = tx(&c, true, |t| t.use_ack_link(&token, MIN)).unwrap();
    assert_eq!(v.status, AckLinkStatus::Accepted);
    assert_eq!(v.alert_state, Some(AlertState::Acknowledged));
    assert_eq!(
        v.acknowledged_by.as_deref(),
        Some("Lan (family, e-mail link)")
    );
    let actor: String = c
        .query_row(
            "SELECT actor FROM alert_audit WHERE action = 'acknowledge'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(actor, "Lan (family, e-mail link)");
    assert!(
        queued(&c)[0].contains(" acknowledged=1i "),
        "{:?}",
        queued(&c)
    );
    assert_eq!(
        tx(&c, true, |t| t.use_ack_link(&token, MIN))
            .unwrap()
            .status,
        AckLinkStatus::Used
    );
    tx(&c, false, |t| t.notify_due(60 * MIN)).unwrap();
    assert_eq!(outbox(&c).len(), 2, "no escalation");
}

#[test]
fn expired_and_unknown_links_change_nothing() {
    let c = store();
    let token = token_of(&c, 1);
    let v = tx(&c, false, |t| t.use_ack_link(&token, 24 * 60 * MIN)).unwrap();
    assert_eq!(v.status, AckLinkStatus::Expired);
    assert_eq!(v.alert_state, Some(AlertState::Open));
    let v = tx(&c, false, |t| {
        t.use_ack_link("0123456789abcdef0123456789abcdef", MIN)
    })
    .unwrap();
    assert_eq!(v.status, AckLinkStatus::Unknown);
    assert!(v.patient_name.is_empty(), "an unknown link reveals nothing");
}

#[test]
fn one_refused_email_raises_an_alert_for_the_clinicians_at_once() {
    let c = store();
    let ids: Vec<i64> = {
        let mut st = c.prepare("SELECT id FROM outbox ORDER BY id").unwrap();
        let rows = st.query_map([], |r| r.get(0)).unwrap();
        rows.map(|r| r.unwrap()).collect()
    };
    tx(&c, false, |t| {
        t.set_aside(ids[0], "550 no such user", ms_to_time(MIN))
    })
    .unwrap();
    assert_eq!(
        alert_rules(&c)[1],
        ("notification_failed".to_string(), "amber".to_string()),
        "raised although the clinician's e-mail is still waiting (issue #15)"
    );
    tx(&c, false, |t| {
        t.set_aside(ids[1], "550 no such user", ms_to_time(MIN))
    })
    .unwrap();
    assert_eq!(
        alert_rules(&c).len(),
        2,
        "one open alert per (patient, rule)"
    );
}

#[test]
fn nothing_sent_by_the_first_escalation_step_raises_notification_failed() {
    let c = store();
    tx(&c, false, |t| t.notify_due(10 * MIN)).unwrap();
    assert_eq!(alert_rules(&c)[1].0, "notification_failed");
}

// Issue #16: every path that raises an alert queues its `opened` point for the InfluxDB
// sink (before, only ingest did). Ingest's is checked end to end against a real server
// (tests/e2e/influx.rs), as are these.

#[test]
fn the_fall_window_queues_the_opened_point() {
    let c = store();
    c.execute_batch(
        "INSERT INTO events (id, patient_id, device_id, kind, ts, received_at)
         VALUES (7, 'p1', 'pendant', 'fall', 1000, 1000);
         INSERT INTO pending_events (event_id, patient_id, kind, ts, due_at)
         VALUES (7, 'p1', 'fall', 1000, 31000);",
    )
    .unwrap();
    let rules = vigil_alerting::RuleSet::defaults();
    tx(&c, true, |t| crate::deferred::raise_due(t, &rules, 30_999)).unwrap();
    assert!(opened_points(&c).is_empty(), "not yet due");
    tx(&c, true, |t| crate::deferred::raise_due(t, &rules, 31_000)).unwrap();
    assert_eq!(opened_points(&c), vec!["fall,red"]);
}

#[test]
fn the_missing_data_watch_queues_the_opened_point() {
    let c = store();
    c.execute_batch(
        "INSERT INTO devices (id, patient_id, patient_num, kind, secret_hash, created_at,
                              last_seen, expected_interval_s)
         VALUES ('band', 'p1', 1, 'wearable', 'x', 0, 0, 60);",
    )
    .unwrap();
    let rules = vigil_alerting::RuleSet::defaults();
    let now = 10 * MIN;
    let plan = crate::store::watch::plan(&c, &rules, now, chrono_tz::Asia::Ho_Chi_Minh).unwrap();
    tx(&c, true, |t| crate::watch::apply(t, &plan, now)).unwrap();
    let (rule, _) = rules.silent_rule().unwrap();
    assert_eq!(
        opened_points(&c),
        vec![format!("{},{}", rule.id, rule.severity.as_str())]
    );
}

#[test]
fn notification_failed_queues_the_opened_point_both_ways() {
    // An e-mail set aside…
    let c = store();
    let id: i64 = c
        .query_row("SELECT min(id) FROM outbox", [], |r| r.get(0))
        .unwrap();
    tx(&c, true, |t| {
        t.set_aside(id, "550 no such user", ms_to_time(MIN))
    })
    .unwrap();
    assert_eq!(opened_points(&c), vec!["notification_failed,amber"]);
    // …or nothing delivered by the first escalation step.
    let c = store();
    tx(&c, true, |t| t.notify_due(10 * MIN)).unwrap();
    assert_eq!(opened_points(&c), vec!["notification_failed,amber"]);
}

#[test]
fn a_breach_opens_updates_and_worsens_one_alert_with_a_point_per_opening() {
    let c = store();
    let breach = |severity, value| Breach {
        rule: format!("hr_{}", vigil_domain::Severity::as_str(severity)),
        condition: "hr_high".into(),
        severity,
        metric: Some(vigil_domain::Metric::HeartRate),
        value: Some(value),
        limit: Some("> 110".into()),
        message: format!("hr {value}"),
    };
    let at = ms_to_time(MIN);
    let a = tx(&c, true, |t| {
        t.raise(
            "p1",
            &breach(vigil_domain::Severity::Amber, 115.0),
            None,
            at,
        )
    })
    .unwrap();
    let b = tx(&c, true, |t| {
        t.raise(
            "p1",
            &breach(vigil_domain::Severity::Amber, 118.0),
            None,
            at,
        )
    })
    .unwrap();
    let w = tx(&c, true, |t| {
        t.raise("p1", &breach(vigil_domain::Severity::Red, 135.0), None, at)
    })
    .unwrap();
    assert_eq!((a, b, w), (a, a, a), "one alert");
    assert_eq!(opened_points(&c), vec!["hr_amber,amber", "hr_red,red"]);
    let red_emails: i64 = c
        .query_row(
            "SELECT count(*) FROM outbox WHERE alert_id = ?1",
            [a],
            |r| r.get(0),
        )
        .unwrap();
    // Worse is red: the primary family contact and the clinician are e-mailed at once.
    assert_eq!(red_emails, 2);
}

fn breach_of(condition: &str, severity: vigil_domain::Severity) -> Breach {
    Breach {
        rule: format!("{condition}_{}", severity.as_str()),
        condition: condition.into(),
        severity,
        metric: Some(vigil_domain::Metric::HeartRate),
        value: Some(130.0),
        limit: Some("> 110".into()),
        message: "hr 130".into(),
    }
}

/// (episode id, severity, peak, ended, reopened) of alert `alert_id`'s episode.
fn episode_of(c: &Connection, alert_id: i64) -> (i64, String, String, bool, i64) {
    c.query_row(
        "SELECT e.id, e.severity, e.peak, e.ended_at IS NOT NULL, e.reopened
         FROM episodes e JOIN alerts a ON a.episode_id = e.id WHERE a.id = ?1",
        [alert_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )
    .unwrap()
}

/// Issue #17: one patient's alerts opening while an episode is active join it; it carries
/// the worst open severity and ends when the last is resolved, by a person or its rule.
#[test]
fn one_patients_alerts_share_an_episode_until_all_are_resolved() {
    use vigil_domain::Severity::{Amber, Red};
    let c = store();
    let at = ms_to_time(MIN);
    let hr = tx(&c, false, |t| {
        t.raise("p1", &breach_of("hr_high", Red), None, at)
    })
    .unwrap();
    let rr = tx(&c, false, |t| {
        t.raise("p1", &breach_of("rr_high", Amber), None, at)
    })
    .unwrap();
    let (episode, severity, peak, ended, _) = episode_of(&c, hr);
    assert_eq!(episode_of(&c, rr).0, episode, "one episode");
    assert_eq!(
        (severity.as_str(), peak.as_str(), ended),
        ("red", "red", false)
    );

    tx(&c, false, |t| t.act(hr, Action::Resolve, "bs.lan", None)).unwrap();
    let (_, severity, peak, ended, _) = episode_of(&c, hr);
    assert_eq!(
        (severity.as_str(), peak.as_str(), ended),
        ("amber", "red", false),
        "the worst open signal now; the peak stays"
    );
    tx(&c, false, |t| {
        t.resolve_cleared("p1", "rr_high", "rr 18", at)
    })
    .unwrap();
    assert!(episode_of(&c, rr).3, "ended with its last signal");

    // The next deterioration is a new episode.
    let again = tx(&c, false, |t| {
        t.raise("p1", &breach_of("temp_high", Amber), None, at)
    })
    .unwrap();
    assert_ne!(episode_of(&c, again).0, episode);
}

/// Issue #17: the same condition back within `reopen_grace` after a person resolved it
/// reopens its episode (audited); after the grace, or after its rule cleared it, it is new.
#[test]
fn an_alert_back_soon_after_a_person_resolved_it_reopens_its_episode() {
    use vigil_domain::Severity::Red;
    let c = store();
    let at = ms_to_time(MIN);
    let first = tx(&c, false, |t| {
        t.raise("p1", &breach_of("hr_high", Red), None, at)
    })
    .unwrap();
    let episode = episode_of(&c, first).0;
    tx(&c, false, |t| {
        t.act(first, Action::Resolve, "bs.lan", Some("đã gọi 115"))
    })
    .unwrap();
    assert!(episode_of(&c, first).3);

    let back = tx(&c, false, |t| {
        t.raise("p1", &breach_of("hr_high", Red), None, at)
    })
    .unwrap();
    assert_ne!(back, first, "a new alert");
    let (id, _, _, ended, reopened) = episode_of(&c, back);
    assert_eq!((id, ended, reopened), (episode, false, 1));
    let audit: String = c
        .query_row(
            &format!(
                "SELECT {} FROM alert_audit WHERE alert_id = ?1",
                c.concat_agg("action", ",")
            ),
            [back],
            |r| r.get(0),
        )
        .unwrap();
    assert!(audit.contains("reopen"), "{audit}");

    // Another condition after the episode ended does not reopen it.
    tx(&c, false, |t| t.act(back, Action::Resolve, "bs.lan", None)).unwrap();
    let other = tx(&c, false, |t| {
        t.raise("p1", &breach_of("rr_high", Red), None, at)
    })
    .unwrap();
    assert_ne!(episode_of(&c, other).0, episode);
    tx(&c, false, |t| t.act(other, Action::Resolve, "bs.lan", None)).unwrap();

    // Past the grace: a new episode.
    c.execute("UPDATE episodes SET ended_at = ended_at - 31 * 60000", [])
        .unwrap();
    let late = tx(&c, false, |t| {
        t.raise("p1", &breach_of("rr_high", Red), None, at)
    })
    .unwrap();
    let late_episode = episode_of(&c, late).0;
    assert_ne!(late_episode, episode_of(&c, other).0);

    // Cleared by its rule (not a person): back at once is still a new episode.
    tx(&c, false, |t| {
        t.resolve_cleared("p1", "rr_high", "rr 18", at)
    })
    .unwrap();
    let after_clear = tx(&c, false, |t| {
        t.raise("p1", &breach_of("rr_high", Red), None, at)
    })
    .unwrap();
    assert_ne!(episode_of(&c, after_clear).0, late_episode);
}

/// A worse breach of an open signal raises its episode's severity and peak.
#[test]
fn a_worse_breach_raises_the_episode_severity() {
    use vigil_domain::Severity::{Amber, Red};
    let c = store();
    let at = ms_to_time(MIN);
    let a = tx(&c, false, |t| {
        t.raise("p1", &breach_of("hr_high", Amber), None, at)
    })
    .unwrap();
    assert_eq!(episode_of(&c, a).1, "amber");
    tx(&c, false, |t| {
        t.raise("p1", &breach_of("hr_high", Red), None, at)
    })
    .unwrap();
    let (_, severity, peak, _, _) = episode_of(&c, a);
    assert_eq!((severity.as_str(), peak.as_str()), ("red", "red"));
}

/// Runs `f` in a transaction of a service with these settings.
fn tx_with<R>(
    c: &Connection,
    s: &vigil_notify::NotifySettings,
    f: impl FnOnce(&mut AlertTx<'_>) -> R,
) -> R {
    let svc = AlertService::for_tests(s.clone(), false);
    let mut tx = svc.begin(c);
    let r = f(&mut tx);
    let _ = tx.finish().unwrap();
    r
}

/// (contact id, subject, body, in_reply_to) of e-mails queued after the fixture's own.
fn mails_since(c: &Connection, after: i64) -> Vec<(i64, String, String, Option<String>)> {
    let mut st = c
        .prepare(
            "SELECT contact_id, subject, body, in_reply_to FROM outbox WHERE id > ?1 ORDER BY id",
        )
        .unwrap();
    let rows = st
        .query_map([after], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

fn last_outbox_id(c: &Connection) -> i64 {
    c.query_row("SELECT coalesce(max(id), 0) FROM outbox", [], |r| r.get(0))
        .unwrap()
}

/// A red breach of `rule` (its own condition: the fixture's open alert is `spo2_low`'s).
fn red(metric: vigil_domain::Metric, rule: &str, value: f64) -> Breach {
    Breach {
        rule: rule.into(),
        condition: format!("{rule}_test"),
        severity: vigil_domain::Severity::Red,
        metric: Some(metric),
        value: Some(value),
        limit: Some("< 90".into()),
        message: format!("{rule} {value}"),
    }
}

/// Issue #17: a deterioration on several signs is one first e-mail per contact, listing them in
/// plain words for the family; later news is a reply in that thread, held for
/// `update_interval`; the all-clear closes it.
#[test]
fn one_deterioration_is_one_conversation_per_contact() {
    use vigil_domain::Metric::{RespiratoryRate, Spo2};
    let c = store();
    // Updates every 5 min, before the first escalation step (10 min) is due.
    let s = vigil_notify::NotifySettings {
        update_interval_ms: 5 * MIN,
        ..settings()
    };
    // The fixture's own alert (from before episodes) does not escalate in this test.
    c.execute("UPDATE alerts SET next_notify_at = NULL WHERE id = 1", [])
        .unwrap();
    let start = last_outbox_id(&c);
    let at = ms_to_time(now_ms());
    let spo2 = tx_with(&c, &s, |t| {
        t.raise("p1", &red(Spo2, "spo2_low", 84.0), None, at)
    })
    .unwrap();
    let first = mails_since(&c, start);
    // The primary family contact (Lan, vi) and the on-call clinician (BS Minh).
    assert_eq!(
        first.iter().map(|m| m.0).collect::<Vec<_>>(),
        [1, 3],
        "{first:?}"
    );
    let (_, subject, body, reply_to) = &first[0];
    assert!(
        subject.starts_with("Bà Hoa: cảnh báo đỏ — SpO₂ 84 %"),
        "{subject}"
    );
    assert!(subject.chars().count() <= 60);
    assert!(reply_to.is_none());
    assert!(
        body.contains("Oxy trong máu (SpO₂): 84 % — bình thường 95–100 %"),
        "{body}"
    );
    assert!(
        body.contains("Cũng đã báo cho: BS Minh (nhân viên y tế)"),
        "{body}"
    );
    assert!(!body.contains("/min") && !body.contains("NEWS2"), "{body}");
    let clinician = &first[1].2;
    assert!(
        clinician.contains("Ngưỡng cảnh báo"),
        "clinicians keep thresholds: {clinician}"
    );

    // A second red sign a minute later: no new thread, the update waits for the interval.
    let mark = last_outbox_id(&c);
    let rr = tx_with(&c, &s, |t| {
        t.raise("p1", &red(RespiratoryRate, "rr_high", 27.0), None, at)
    })
    .unwrap();
    assert_ne!(rr, spo2);
    assert!(mails_since(&c, mark).is_empty(), "held for update_interval");
    // The same sign again is no news at all.
    tx_with(&c, &s, |t| {
        t.raise("p1", &red(Spo2, "spo2_low", 83.0), None, at)
    })
    .unwrap();
    assert!(mails_since(&c, mark).is_empty());

    // After the interval the update goes, as a reply listing both signs.
    let later = now_ms() + s.update_interval_ms + MIN;
    tx_with(&c, &s, |t| t.notify_due(later)).unwrap();
    let updates = mails_since(&c, mark);
    assert_eq!(
        updates.iter().map(|m| m.0).collect::<Vec<_>>(),
        [1, 3],
        "{updates:?}"
    );
    let first_ids: Vec<String> = c
        .prepare("SELECT message_id FROM outbox WHERE id > ?1 AND in_reply_to IS NULL ORDER BY id")
        .unwrap()
        .query_map([start], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        updates[0].3.as_deref(),
        Some(first_ids[0].as_str()),
        "threaded"
    );
    assert!(
        updates[0].1.starts_with("Re: Bà Hoa: cảnh báo đỏ"),
        "{}",
        updates[0].1
    );
    assert!(
        updates[0].2.contains("Nhịp thở: 27 lần/phút"),
        "{}",
        updates[0].2
    );
    assert!(
        updates[0].2.contains("Oxy trong máu (SpO₂): 83 %"),
        "the latest value"
    );

    // Resolving both ends the episode: the all-clear, as a reply to everyone told.
    let mark = last_outbox_id(&c);
    tx_with(&c, &s, |t| t.act(spo2, Action::Resolve, "bs.minh", None)).unwrap();
    assert!(mails_since(&c, mark).is_empty(), "one sign still open");
    tx_with(&c, &s, |t| {
        t.resolve_cleared("p1", "rr_high_test", "rr 18", at)
    })
    .unwrap();
    let clear = mails_since(&c, mark);
    assert_eq!(clear.len(), 2, "{clear:?}");
    assert!(clear.iter().all(|m| m.3.is_some()), "replies");
    assert!(clear[0].2.contains("Đã xử lý xong"), "{}", clear[0].2);
}

/// Issue #17 (found by CI at 06:06 local, outside the default quiet hours): an amber sign
/// raised with red ones — NEWS2 5–6 beside a low SpO₂ — is listed in the episode's e-mail; the
/// clinician, who also takes amber digests, gets no second e-mail about it as a digest.
#[test]
fn an_amber_sign_of_a_told_episode_is_not_digested_again() {
    use vigil_domain::Metric::Spo2;
    let c = store();
    let s = vigil_notify::NotifySettings {
        quiet_hours: None,
        ..settings()
    };
    c.execute("UPDATE alerts SET next_notify_at = NULL WHERE id = 1", [])
        .unwrap();
    let start = last_outbox_id(&c);
    let at = ms_to_time(now_ms());
    let news2 = Breach {
        rule: "news2_medium".into(),
        condition: "news2_medium_test".into(),
        severity: vigil_domain::Severity::Amber,
        metric: None,
        value: Some(6.0),
        limit: None,
        message: "NEWS2 6".into(),
    };
    tx_with(&c, &s, |t| {
        t.raise("p1", &news2, None, at)?;
        t.raise("p1", &red(Spo2, "spo2_low", 84.0), None, at)
    })
    .unwrap();
    let first = mails_since(&c, start);
    assert_eq!(
        first.iter().map(|m| m.0).collect::<Vec<_>>(),
        [1, 3],
        "{first:?}"
    );
    assert!(first[1].2.contains("NEWS2"), "listed for the clinician");
    let waiting: i64 = c
        .query_row(
            "SELECT count(*) FROM digest_items WHERE contact_id = 3",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        waiting, 1,
        "the amber sign was queued for the clinician's digest"
    );

    let mark = last_outbox_id(&c);
    tx_with(&c, &s, |t| t.notify_due(now_ms() + MIN)).unwrap();
    assert!(
        mails_since(&c, mark).is_empty(),
        "no digest about a told episode"
    );
    let waiting: i64 = c
        .query_row("SELECT count(*) FROM digest_items", [], |r| r.get(0))
        .unwrap();
    assert_eq!(waiting, 0, "done with");
    let sent: i64 = c
        .query_row("SELECT count(*) FROM digest_sent", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        sent, 0,
        "no digest went: the next one need not wait min_interval"
    );
}

/// Issue #17: a fall is never held back, and a clinician taking the episode on stops the
/// reminders and is news for the family.
#[test]
fn falls_go_at_once_and_taking_it_on_stops_the_reminders() {
    use vigil_domain::Metric::Spo2;
    let c = store();
    let s = settings();
    let at = ms_to_time(now_ms());
    let spo2 = tx_with(&c, &s, |t| {
        t.raise("p1", &red(Spo2, "spo2_low", 85.0), None, at)
    })
    .unwrap();
    let mark = last_outbox_id(&c);
    let fall = Breach {
        rule: "fall".into(),
        condition: "fall".into(),
        severity: vigil_domain::Severity::Red,
        metric: None,
        value: None,
        limit: None,
        message: "fall".into(),
    };
    tx_with(&c, &s, |t| t.raise("p1", &fall, Some(EventKind::Fall), at)).unwrap();
    let sent = mails_since(&c, mark);
    assert_eq!(sent.len(), 2, "at once, inside the interval: {sent:?}");
    assert!(sent.iter().all(|m| m.3.is_some()), "replies");
    assert!(sent[0].2.contains("Phát hiện té ngã"), "{}", sent[0].2);

    // One escalation for the episode, and it stops when a clinician takes it on.
    let escalating: i64 = c
        .query_row(
            "SELECT count(*) FROM alerts WHERE episode_id IS NOT NULL AND next_notify_at IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(escalating, 1);
    let mark = last_outbox_id(&c);
    let mut quick = s.clone();
    quick.update_interval_ms = 0;
    tx_with(&c, &quick, |t| {
        t.act(spo2, Action::Acknowledge, "BS Minh", Some("đang gọi"))
    })
    .unwrap();
    let news = mails_since(&c, mark);
    assert_eq!(
        news.iter().map(|m| m.0).collect::<Vec<_>>(),
        [1],
        "families only: {news:?}"
    );
    assert!(
        news[0].2.contains("BS Minh đã tiếp nhận lúc"),
        "{}",
        news[0].2
    );
    let escalating: i64 = c
        .query_row(
            "SELECT count(*) FROM alerts WHERE episode_id IS NOT NULL AND next_notify_at IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(escalating, 0, "no reminders once somebody is on it");
}

/// Issue #17: "I'm handling it" in an episode's e-mail is the family's response: recorded on
/// the episode and audited, not a clinical acknowledgement. The clinicians' reminders go on;
/// that contact and the lower family tier hear no more alarms.
#[test]
fn a_family_answer_is_a_response_not_an_acknowledgement() {
    use vigil_domain::Metric::Spo2;
    let c = store();
    c.execute("UPDATE alerts SET next_notify_at = NULL WHERE id = 1", [])
        .unwrap();
    let s = settings();
    let mark = last_outbox_id(&c);
    let at = ms_to_time(now_ms());
    let alert = tx_with(&c, &s, |t| {
        t.raise("p1", &red(Spo2, "spo2_low", 84.0), None, at)
    })
    .unwrap();
    let body: String = c
        .query_row(
            "SELECT body FROM outbox WHERE contact_id = 1 AND id > ?1",
            [mark],
            |r| r.get(0),
        )
        .unwrap();
    let from = body.find("/ack/").expect("a link") + 5;
    let token = body[from..from + 32].to_string();
    let v = tx_with(&c, &s, |t| t.use_ack_link(&token, now_ms())).unwrap();
    assert_eq!(v.status, AckLinkStatus::Accepted);
    assert!(v.responded);
    assert_eq!(v.alert_state, Some(AlertState::Open), "not acknowledged");
    let action: String = c
        .query_row(
            "SELECT action FROM alert_audit WHERE alert_id = ?1 ORDER BY id DESC LIMIT 1",
            [alert],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(action, "family_response");

    // The escalation steps: Peter (secondary family) is silenced by Lan's answer; the
    // clinician (3) is reminded.
    let mark = last_outbox_id(&c);
    tx_with(&c, &s, |t| t.notify_due(now_ms() + 11 * MIN)).unwrap();
    tx_with(&c, &s, |t| t.notify_due(now_ms() + 27 * MIN)).unwrap();
    let later: Vec<i64> = mails_since(&c, mark)
        .into_iter()
        .filter(|m| !m.1.contains("Chỉ số cần xem ngay") && !m.1.contains("needs attention"))
        .map(|m| m.0)
        .collect();
    assert!(
        !later.is_empty() && later.iter().all(|&id| id == 3),
        "{later:?}"
    );
}

/// Issue #17: the family's e-mail gives the station's phone and the phones of the others told.
#[test]
fn family_emails_give_the_phones_to_call() {
    use vigil_domain::Metric::Spo2;
    let c = store();
    c.execute_batch(
        "INSERT INTO facilities (id, name, created_at) VALUES ('default', 'Trạm', 0)
         ON CONFLICT DO NOTHING;
         UPDATE facilities SET phone = '028 3855 1234'
           WHERE id = (SELECT facility_id FROM patients WHERE id = 'p1');
         UPDATE contacts SET phone = '0903 000 111' WHERE id = 3;",
    )
    .unwrap();
    let mark = last_outbox_id(&c);
    let at = ms_to_time(now_ms());
    tx(&c, false, |t| {
        t.raise("p1", &red(Spo2, "spo2_low", 84.0), None, at)
    })
    .unwrap();
    let family = &mails_since(&c, mark)[0];
    assert_eq!(family.0, 1);
    assert!(
        family
            .2
            .contains("Trạm y tế theo dõi người bệnh: 028 3855 1234."),
        "{}",
        family.2
    );
    assert!(
        family.2.contains("BS Minh (nhân viên y tế, 0903 000 111)"),
        "{}",
        family.2
    );
}

/// Issue #17: one acknowledge on the ward card takes on every open signal of the episode and
/// tells the family once, quoting the note the clinician chose to share; resolving while a
/// signal's current value is still beyond its limit needs a confirmation, and then ends the
/// episode with one all-clear per person told.
#[test]
fn an_episode_is_acted_on_as_one() {
    use vigil_domain::Metric::{RespiratoryRate, Spo2};
    let c = store();
    let mut s = settings();
    s.update_interval_ms = 0;
    let at = ms_to_time(now_ms());
    let (spo2, rr) = tx_with(&c, &s, |t| {
        let a = t.raise("p1", &red(Spo2, "spo2_low", 85.0), None, at)?;
        let mut b = red(RespiratoryRate, "rr_high", 27.0);
        b.limit = Some("≥ 25".into());
        let b = t.raise("p1", &b, None, at)?;
        Ok::<_, StoreError>((a, b))
    })
    .unwrap();
    let episode = episodes::of_alert(&c, spo2).unwrap().unwrap();
    assert_eq!(episodes::of_alert(&c, rr).unwrap(), Some(episode));
    // The current SpO₂ is still low: 86 % against "< 90".
    c.execute_batch(&format!(
        "INSERT INTO devices (num, id, patient_id, patient_num, kind, secret_hash, created_at)
         VALUES (1, 'ox1', 'p1', 1, 'pulse_oximeter', 'x', 0);
         INSERT INTO readings (device, metric, ts, patient, value, received_at)
         VALUES (1, {}, {}, 1, 86, 0);",
        Spo2.code(),
        now_ms()
    ))
    .unwrap();

    let mark = last_outbox_id(&c);
    let ep = tx_with(&c, &s, |t| {
        t.act_episode(
            episode,
            EpisodeAction::Acknowledge,
            "BS Minh",
            Some("Tôi sẽ đến nhà lúc 17:00"),
            true,
            false,
        )
    })
    .unwrap();
    let open = ep
        .signals
        .iter()
        .filter(|s| s.alert.state == AlertState::Open)
        .count();
    assert_eq!(open, 0, "every signal acknowledged: {ep:?}");
    assert_eq!(
        ep.taken_on.as_ref().map(|t| t.name.as_str()),
        Some("BS Minh")
    );
    assert_eq!(
        ep.family_note.as_ref().map(|n| n.note.as_str()),
        Some("Tôi sẽ đến nhà lúc 17:00")
    );
    let news = mails_since(&c, mark);
    assert!(!news.is_empty(), "the family hears it");
    let lan: Vec<_> = news.iter().filter(|m| m.0 == 1).collect();
    assert_eq!(lan.len(), 1, "one update for two signals: {news:?}");
    assert!(lan[0].2.contains("Lời nhắn của BS Minh"), "{}", lan[0].2);
    assert!(lan[0].3.is_some(), "a reply in the thread");
    // Acknowledging again has nothing left to do.
    let again = tx_with(&c, &s, |t| {
        t.act_episode(
            episode,
            EpisodeAction::Acknowledge,
            "BS Lan",
            None,
            false,
            false,
        )
    });
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    let spo2_signal = ep.signals.iter().find(|s| s.alert.id == spo2).unwrap();
    assert!(spo2_signal.abnormal, "86 % is still < 90");
    let refused = tx_with(&c, &s, |t| {
        t.act_episode(
            episode,
            EpisodeAction::Resolve,
            "BS Minh",
            None,
            false,
            false,
        )
    });
    match refused {
        Err(StoreError::Conflict(m)) => assert!(m.contains("86 %"), "{m}"),
        other => panic!("resolved without confirming: {other:?}"),
    }
    let mark = last_outbox_id(&c);
    let ep = tx_with(&c, &s, |t| {
        t.act_episode(
            episode,
            EpisodeAction::Resolve,
            "BS Minh",
            Some("đã khám"),
            false,
            true,
        )
    })
    .unwrap();
    assert_eq!(ep.state, vigil_domain::views::EpisodeState::Ended);
    let clear = mails_since(&c, mark);
    let per_contact = |id| clear.iter().filter(|m| m.0 == id).count();
    assert_eq!(per_contact(1), 1, "one all-clear: {clear:?}");
}

/// Issue #17: the episode's one escalation is not lost when the alert carrying it clears by
/// itself while another red sign stays open and nobody took it on.
#[test]
fn the_escalation_moves_on_when_its_alert_clears_by_itself() {
    use vigil_domain::Metric::{RespiratoryRate, Spo2};
    let c = store();
    let s = settings();
    let at = ms_to_time(now_ms());
    let spo2 = tx_with(&c, &s, |t| {
        t.raise("p1", &red(Spo2, "spo2_low", 85.0), None, at)
    })
    .unwrap();
    let rr = tx_with(&c, &s, |t| {
        t.raise("p1", &red(RespiratoryRate, "rr_high", 27.0), None, at)
    })
    .unwrap();
    let schedule = |id: i64| -> (u32, Option<i64>) {
        c.query_row(
            "SELECT notify_stage, next_notify_at FROM alerts WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    let carried = schedule(spo2);
    assert!(carried.1.is_some(), "the first red sign carries it");
    assert_eq!(schedule(rr).1, None, "one escalation per episode");
    tx_with(&c, &s, |t| {
        t.resolve_cleared("p1", "spo2_low_test", "spo2 96 % ≥ 92", at)
    })
    .unwrap();
    assert_eq!(schedule(spo2).1, None);
    assert_eq!(schedule(rr), carried, "handed on at the same step");
}

/// Issue #20: two gateways raising the same condition for one patient at once (PostgreSQL,
/// `VIGIL_TEST_POSTGRES`; SQLite has one writer). The second waits for the first's commit on
/// the patient's lock, then finds its alert and updates it: one alert, both commits succeed.
/// Without the lock the second would not see the first's uncommitted alert, try to open
/// another and fail on the one-active-alert index.
#[test]
fn two_gateways_raising_one_condition_at_once_make_one_alert() {
    if vigil_store::testing::postgres_server().is_none() {
        return;
    }
    let c = store();
    let Some(vigil_store::Location::Postgres(url)) = vigil_store::testing::last_location() else {
        unreachable!("a PostgreSQL test database")
    };
    let breach = breach_of("hr_high", vigil_domain::Severity::Red);
    let svc = AlertService::for_tests(settings(), false);
    c.execute_batch("BEGIN").unwrap();
    let mut first = svc.begin(&c);
    let id = first
        .raise("p1", &breach, None, ms_to_time(now_ms()))
        .unwrap();
    let (done_tx, done) = std::sync::mpsc::channel();
    let other = {
        let (svc, breach) = (svc.clone(), breach.clone());
        std::thread::spawn(move || {
            let c2 = Connection::connect_postgres(&url).unwrap();
            c2.execute_batch("BEGIN").unwrap();
            let mut second = svc.begin(&c2);
            let r = second.raise("p1", &breach, None, ms_to_time(now_ms()));
            let _ = second.finish();
            let committed = c2.execute_batch("COMMIT");
            done_tx.send(()).unwrap();
            (r.map_err(|e| e.to_string()), committed.is_ok())
        })
    };
    assert!(
        done.recv_timeout(std::time::Duration::from_millis(300))
            .is_err(),
        "the second gateway waits for the patient"
    );
    let _ = first.finish().unwrap();
    c.execute_batch("COMMIT").unwrap();
    let (second_id, committed) = other.join().unwrap();
    assert_eq!(second_id, Ok(id), "the same alert, updated");
    assert!(committed);
    let n: i64 = c
        .query_row(
            "SELECT count(*) FROM alerts WHERE patient_id = 'p1' AND condition = 'hr_high'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
}
