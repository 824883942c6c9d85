//! An episode's conversation (issue #17): who is told what about an episode, and when. The
//! first e-mail when it turns red, replies in each contact's thread (updates held for
//! `notify.update_interval`, falls and SOS at once, reminders, the all-clear), and the
//! family's "I'm handling it" as the episode's family response. Rendering is
//! [`crate::conversation`].

use super::{enqueue, ms_to_time, NotifySettings};
use crate::conversation::{self, Kind, Told};
use crate::email;
use crate::escalation;
use crate::store::{Link, NotifyStore, Thread};
use std::collections::HashMap;
use vigil_domain::{Alert, Contact, ContactRole, ContactTier, Severity};

/// Tells episode `episode` that red alerts `alert_ids` opened or worsened in it, all at once
/// (the alert service calls it once per transaction, so the signs of one batch make one
/// message): the first e-mail of each primary contact's thread, or an update when they are
/// news. Starts the episode's escalation unless it runs already. Returns the e-mails queued.
pub fn tell<S: NotifyStore>(
    db: &S,
    episode: i64,
    alert_ids: &[i64],
    s: &NotifySettings,
    now: i64,
) -> Result<usize, S::Error> {
    let Some(&lead) = alert_ids.first() else {
        return Ok(0);
    };
    let escalating = db.escalating_in(episode)?;
    let n = converse(db, episode, alert_ids, 0, Why::Alarm, s, now)?;
    let still_open = db
        .episode_alerts(episode)?
        .iter()
        .any(|a| a.id == lead && a.state.is_active());
    // One escalation per episode: reminders are about the episode, not each alert.
    if escalating.is_none() && still_open {
        db.schedule(lead, 1, escalation::next_due(0, now, &s.policy))?;
    }
    Ok(n)
}

/// Why a conversation message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
    /// A red alert opened or worsened in the episode.
    Alarm,
    /// An escalation step: nobody has taken the episode on yet.
    Reminder,
}

/// Whether `alert` is news a family must hear at once: a fall or SOS (never held back).
fn urgent(a: &Alert) -> bool {
    matches!(a.event.as_deref(), Some("fall" | "sos"))
}

/// Whether `alert` is a new red sign of its episode: no other alert of it measured the same
/// thing (or was the same event) at red before. (Alerts told in the same message are each
/// new: none of them was told before.)
fn new_red_sign(alert: &Alert, all: &[Alert]) -> bool {
    let same = |b: &Alert| match (&alert.metric, &alert.event) {
        (Some(m), _) => b.metric.as_deref() == Some(m.as_str()),
        (None, Some(e)) => b.event.as_deref() == Some(e.as_str()),
        (None, None) => b.rule == alert.rule,
    };
    !all.iter()
        .any(|b| b.id != alert.id && b.severity == Severity::Red && same(b))
}

/// The conversation step `stage` of episode `episode` about alerts `alert_ids`: to each contact
/// the step notifies, the first e-mail of their thread, or a reply — a reminder, or an update
/// when the alert is news (a new red sign now or after `update_interval`; a fall or SOS at
/// once). Returns the e-mails queued.
#[allow(clippy::too_many_arguments)]
pub(super) fn converse<S: NotifyStore>(
    db: &S,
    episode: i64,
    alert_ids: &[i64],
    stage: u32,
    why: Why,
    s: &NotifySettings,
    now: i64,
) -> Result<usize, S::Error> {
    let all = db.episode_alerts(episode)?;
    // Alerts resolved since (in the same transaction) are no longer news.
    let about: Vec<&Alert> = all
        .iter()
        .filter(|a| alert_ids.contains(&a.id) && a.state.is_active())
        .collect();
    let Some(alert) = about
        .iter()
        .min_by_key(|a| (a.severity.rank(), !urgent(a), a.id))
        .copied()
    else {
        return Ok(0);
    };
    let alert_id = alert.id;
    let urgent_news = about.iter().any(|a| urgent(a));
    let contacts = db.contacts(&alert.patient_id)?;
    let local = Local::read(db, episode, &alert.patient_id)?;
    let has_secondary = contacts.iter().any(|c| c.tier == ContactTier::Secondary);
    let threads: HashMap<i64, Thread> = db.threads(episode)?.into_iter().collect();
    let targets: Vec<&Contact> = contacts
        .iter()
        .filter(|c| escalation::notifies(stage, c.tier, has_secondary))
        .collect();
    let news = urgent_news || about.iter().any(|a| new_red_sign(a, &all));
    // A family member who answered "I'm handling it" silences the alarms and reminders for
    // themselves and every family contact of the same or a lower tier (issue #17).
    let answered_tier = contacts
        .iter()
        .filter(|c| c.role == ContactRole::Family)
        .filter(|c| threads.get(&c.id).is_some_and(|t| t.responded_at.is_some()))
        .map(|c| tier_rank(c.tier))
        .min();
    let mut queued = 0;
    for c in &targets {
        if c.role == ContactRole::Family && answered_tier.is_some_and(|t| tier_rank(c.tier) >= t) {
            continue;
        }
        match (threads.get(&c.id), why) {
            (None, _) => {
                let ack_url = ack_link(db, alert_id, c, s, now)?;
                let told = told(&contacts, &targets, &threads, c.id);
                let r = message(
                    Kind::First,
                    c,
                    &all,
                    &told,
                    &local,
                    None,
                    ack_url.as_deref(),
                    alert_id,
                    s,
                    now,
                );
                let message_id = email::new_message_id(alert_id, &s.message_id_domain);
                enqueue(db, c, &r, Some(alert_id), &message_id, None, stage, now)?;
                let t = Thread {
                    message_id,
                    subject: r.subject.clone(),
                    last_at: now,
                    pending: false,
                    responded_at: None,
                };
                db.save_thread(episode, c.id, &t)?;
                queued += 1;
            }
            (Some(t), Why::Reminder) => {
                queued += reply(
                    db,
                    episode,
                    c,
                    t,
                    Kind::Reminder,
                    &all,
                    &contacts,
                    alert_id,
                    stage,
                    s,
                    now,
                )?;
            }
            (Some(t), Why::Alarm)
                if urgent(alert) || (news && now - t.last_at >= s.update_interval_ms) =>
            {
                queued += reply(
                    db,
                    episode,
                    c,
                    t,
                    Kind::Update,
                    &all,
                    &contacts,
                    alert_id,
                    stage,
                    s,
                    now,
                )?;
            }
            (Some(t), Why::Alarm) if news => {
                // Too soon after the last message: the update waits (flush_updates).
                db.save_thread(
                    episode,
                    c.id,
                    &Thread {
                        pending: true,
                        ..t.clone()
                    },
                )?;
            }
            (Some(_), Why::Alarm) => {}
        }
    }
    Ok(queued)
}

fn tier_rank(t: ContactTier) -> u8 {
    match t {
        ContactTier::Primary => 0,
        ContactTier::Secondary => 1,
    }
}

/// A family contact answered "I'm handling it" through link `l` for episode `episode`: their
/// response is recorded on the episode (issue #17). It is not a clinical acknowledgement:
/// clinicians still see the alert open and their escalation goes on.
pub fn family_response<S: NotifyStore>(
    db: &S,
    episode: i64,
    l: &Link,
    now: i64,
) -> Result<(), S::Error> {
    db.respond(episode, l.contact_id, now)
}

/// The other people told about an episode so far, or now, besides contact `me`, with their
/// phones.
fn told(
    contacts: &[Contact],
    targets: &[&Contact],
    threads: &HashMap<i64, Thread>,
    me: i64,
) -> Vec<Told> {
    contacts
        .iter()
        .filter(|c| {
            c.id != me && (threads.contains_key(&c.id) || targets.iter().any(|t| t.id == c.id))
        })
        .map(|c| Told {
            name: c.name.clone(),
            role: c.role,
            phone: c.phone.clone(),
        })
        .collect()
}

/// An "I'm handling it" link for a family contact about alert `alert_id` (none without a
/// public URL, or for clinicians, who use the dashboard).
fn ack_link<S: NotifyStore>(
    db: &S,
    alert_id: i64,
    c: &Contact,
    s: &NotifySettings,
    now: i64,
) -> Result<Option<String>, S::Error> {
    match (&s.public_url, c.role) {
        (Some(base), ContactRole::Family) => {
            let token = super::random_hex(16);
            db.insert_link(
                &super::sha256_hex(&token),
                alert_id,
                c.id,
                now,
                now + s.link_valid_ms,
            )?;
            Ok(Some(format!("{base}/ack/{token}")))
        }
        _ => Ok(None),
    }
}

/// What a message says beyond the alerts: the station's phone and the clinician's note shared
/// with the family.
#[derive(Default)]
struct Local {
    station_phone: Option<String>,
    /// (who, note).
    family_note: Option<(String, String)>,
}

impl Local {
    fn read<S: NotifyStore>(db: &S, episode: i64, patient_id: &str) -> Result<Local, S::Error> {
        Ok(Local {
            station_phone: db.station_phone(patient_id)?,
            family_note: db.family_note(episode)?,
        })
    }
}

/// Renders message `kind` of a conversation for contact `c` from the episode as it stands.
#[allow(clippy::too_many_arguments)]
fn message(
    kind: Kind,
    c: &Contact,
    all: &[Alert],
    told: &[Told],
    local: &Local,
    thread_subject: Option<&str>,
    ack_url: Option<&str>,
    alert_id: i64,
    s: &NotifySettings,
    now: i64,
) -> email::Rendered {
    let mut open: Vec<&Alert> = all.iter().filter(|a| a.state.is_active()).collect();
    open.sort_by_key(|a| (a.severity.rank(), a.opened_at));
    // Who took it on: the first clinician acknowledgement (a family link is not one).
    let taken_on = all
        .iter()
        .filter_map(|a| Some((a.acknowledged_by.as_deref()?, a.acknowledged_at?)))
        .filter(|(by, _)| !by.ends_with("(family, e-mail link)"))
        .min_by_key(|(_, at)| *at);
    let patient_name = all.first().map(|a| a.patient_name.as_str()).unwrap_or("");

    let alert_url = s
        .public_url
        .as_ref()
        .map(|u| format!("{u}/#alert-{alert_id}"));
    conversation::render(&conversation::Facts {
        kind,
        lang: c.lang,
        role: c.role,
        patient_name,
        open: &open,
        taken_on,
        told,
        station_phone: local.station_phone.as_deref(),
        shared_note: local
            .family_note
            .as_ref()
            .map(|(by, n)| (by.as_str(), n.as_str())),
        at: ms_to_time(now),
        tz: s.display_tz,
        minimal_phi: s.minimal_phi,
        thread_subject,
        alert_url: alert_url.as_deref(),
        ack_url,
    })
}

/// Queues reply `kind` in contact `c`'s thread `t` and notes it; 1 (the e-mail queued).
#[allow(clippy::too_many_arguments)]
fn reply<S: NotifyStore>(
    db: &S,
    episode: i64,
    c: &Contact,
    t: &Thread,
    kind: Kind,
    all: &[Alert],
    contacts: &[Contact],
    alert_id: i64,
    stage: u32,
    s: &NotifySettings,
    now: i64,
) -> Result<usize, S::Error> {
    let threads: HashMap<i64, Thread> = db.threads(episode)?.into_iter().collect();
    let told = told(contacts, &[], &threads, c.id);
    let ack_url = if kind == Kind::AllClear {
        None
    } else {
        ack_link(db, alert_id, c, s, now)?
    };
    let local = match all.first() {
        Some(a) => Local::read(db, episode, &a.patient_id)?,
        None => Local::default(),
    };
    let r = message(
        kind,
        c,
        all,
        &told,
        &local,
        Some(&t.subject),
        ack_url.as_deref(),
        alert_id,
        s,
        now,
    );
    let message_id = email::new_message_id(alert_id, &s.message_id_domain);
    enqueue(
        db,
        c,
        &r,
        Some(alert_id),
        &message_id,
        Some(&t.message_id),
        stage,
        now,
    )?;
    db.save_thread(
        episode,
        c.id,
        &Thread {
            last_at: now,
            pending: false,
            ..t.clone()
        },
    )?;
    Ok(1)
}

/// Sends the updates that waited for `notify.update_interval` and may go now.
pub fn flush_updates<S: NotifyStore>(
    db: &S,
    s: &NotifySettings,
    now: i64,
) -> Result<usize, S::Error> {
    let mut queued = 0;
    for (episode, contact_id) in db.pending_threads()? {
        let threads: HashMap<i64, Thread> = db.threads(episode)?.into_iter().collect();
        let Some(t) = threads.get(&contact_id) else {
            continue;
        };
        if now - t.last_at < s.update_interval_ms {
            continue;
        }
        let all = db.episode_alerts(episode)?;
        let Some(first) = all.first() else { continue };
        let contacts = db.contacts(&first.patient_id)?;
        let Some(c) = contacts.iter().find(|c| c.id == contact_id) else {
            // The contact was removed: nothing to send.
            db.save_thread(
                episode,
                contact_id,
                &Thread {
                    pending: false,
                    ..t.clone()
                },
            )?;
            continue;
        };
        let about = all
            .iter()
            .rev()
            .find(|a| a.state.is_active())
            .unwrap_or(first)
            .id;
        queued += reply(
            db,
            episode,
            c,
            t,
            Kind::Update,
            &all,
            &contacts,
            about,
            0,
            s,
            now,
        )?;
    }
    Ok(queued)
}

/// The episode ended (its last alert resolved): the all-clear, as a reply to everyone who
/// was told about it. Returns the e-mails queued.
pub fn episode_ended<S: NotifyStore>(
    db: &S,
    episode: i64,
    s: &NotifySettings,
    now: i64,
) -> Result<usize, S::Error> {
    let threads = db.threads(episode)?;
    if threads.is_empty() {
        return Ok(0);
    }
    let all = db.episode_alerts(episode)?;
    let Some(last) = all.iter().max_by_key(|a| a.resolved_at) else {
        return Ok(0);
    };
    let contacts = db.contacts(&last.patient_id)?;
    let mut queued = 0;
    for (contact_id, t) in &threads {
        if let Some(c) = contacts.iter().find(|c| c.id == *contact_id) {
            queued += reply(
                db,
                episode,
                c,
                t,
                Kind::AllClear,
                &all,
                &contacts,
                last.id,
                0,
                s,
                now,
            )?;
        }
    }
    Ok(queued)
}

/// A clinician took on an alert of the episode: the families hear it (an update, at once or
/// after `update_interval`).
pub fn taken_on<S: NotifyStore>(
    db: &S,
    episode: i64,
    s: &NotifySettings,
    now: i64,
) -> Result<usize, S::Error> {
    let all = db.episode_alerts(episode)?;
    let Some(first) = all.first() else {
        return Ok(0);
    };
    let contacts = db.contacts(&first.patient_id)?;
    let about = all
        .iter()
        .rev()
        .find(|a| a.state.is_active())
        .unwrap_or(first)
        .id;
    let mut queued = 0;
    for (contact_id, t) in db.threads(episode)? {
        let Some(c) = contacts
            .iter()
            .find(|c| c.id == contact_id && c.role == ContactRole::Family)
        else {
            continue;
        };
        if now - t.last_at >= s.update_interval_ms {
            queued += reply(
                db,
                episode,
                c,
                &t,
                Kind::Update,
                &all,
                &contacts,
                about,
                0,
                s,
                now,
            )?;
        } else {
            db.save_thread(episode, contact_id, &Thread { pending: true, ..t })?;
        }
    }
    Ok(queued)
}
