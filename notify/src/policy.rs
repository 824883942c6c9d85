//! Notification policy (issue #5): which e-mails an alert queues and when — red alerts to the
//! family at once with "I'm handling it" links and escalation to secondary contacts and
//! reminders ([`crate::escalation`]); less severe alerts as digests at most once per
//! `notify.min_interval`, outside quiet hours ([`crate::digest`]). Rendering is
//! [`crate::email`]; the rows are behind [`NotifyStore`].
//!
//! Only the gateway's alert service calls this, inside its transaction: an alert is never
//! opened without its first e-mails queued, and a link never exists without its e-mail.
//! Nothing here opens or changes an alert: what needs one (nobody reached) is returned.

use crate::digest::{self, QuietHours};
use crate::email::{self, AlertFacts};
use crate::escalation::{self, Policy};
use crate::store::{Link, NewEmail, NotifyStore};
use vigil_domain::views::{AckLinkStatus, AckLinkView};
use vigil_domain::{Alert, AlertState, Contact, ContactRole, ContactTier, Severity};

/// Settings that shape notification e-mails (`[notify]`, `[dashboard] public_url`).
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// The dashboard as users reach it, without a trailing `/`; no links without it.
    pub public_url: Option<String>,
    /// Domain part of generated Message-IDs.
    pub message_id_domain: String,
    pub policy: Policy,
    /// How long an "I'm handling it" link works.
    pub link_valid_ms: i64,
    /// Leave vital values and thresholds out of e-mails.
    pub minimal_phi: bool,
    /// Non-critical alerts: one digest per patient per contact per this.
    pub min_interval_ms: i64,
    /// Contacts' quiet hours unless they have their own.
    pub quiet_hours: Option<QuietHours>,
    /// Contacts' time zone unless they have their own (quiet hours).
    pub timezone: chrono_tz::Tz,
    /// The zone times in e-mails are shown in: the dashboard's (`dashboard.timezone`).
    pub display_tz: chrono_tz::Tz,
    /// An alert back this soon after a person resolved it reopens its episode (issue #17).
    pub reopen_grace_ms: i64,
    /// At most one update per conversation per this (falls, SOS and the all-clear excepted).
    pub update_interval_ms: i64,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            public_url: None,
            message_id_domain: "vigil.local".into(),
            policy: Policy::default(),
            link_valid_ms: 24 * 3_600_000,
            minimal_phi: false,
            min_interval_ms: 3_600_000,
            quiet_hours: None,
            timezone: chrono_tz::Asia::Ho_Chi_Minh,
            display_tz: chrono_tz::Asia::Ho_Chi_Minh,
            reopen_grace_ms: 30 * 60_000,
            update_interval_ms: 10 * 60_000,
        }
    }
}

mod episode;

use episode::{converse, Why};
pub use episode::{episode_ended, family_response, flush_updates, taken_on, tell};

/// The alert clinicians get when a red alert's e-mails reached nobody.
pub const NOTIFICATION_FAILED: &str = "notification_failed";

/// Starts the notifications of an alert that just opened or worsened: a red one e-mails its
/// contacts now and schedules the next step (docs/notifications.md); a less severe one waits
/// for the digests of the contacts who want it (anti-flood). Returns the e-mails queued.
pub fn start<S: NotifyStore>(
    db: &S,
    alert_id: i64,
    severity: Severity,
    s: &NotifySettings,
    now: i64,
) -> Result<usize, S::Error> {
    if severity != Severity::Red {
        queue_for_digest(db, alert_id, now)?;
        return Ok(0);
    }
    if let Some(episode) = db.episode_of(alert_id)? {
        return tell(db, episode, &[alert_id], s, now);
    }
    // An alert from before episodes (schema v16) keeps its own e-mails.
    let n = queue_step(db, alert_id, 0, s, now)?;
    db.schedule(alert_id, 1, escalation::next_due(0, now, &s.policy))?;
    Ok(n)
}

/// What the escalation steps due at a time did.
#[derive(Debug, Default, PartialEq)]
pub struct Steps {
    pub queued: usize,
    /// Red alerts none of whose e-mails was delivered by their first escalation step (waiting
    /// is failing by then): each calls for `notification_failed`.
    pub undelivered: Vec<i64>,
}

/// Runs every escalation step due at `now` (the escalation loop calls it each second; tests
/// call it with a simulated clock).
pub fn escalate_due<S: NotifyStore>(
    db: &S,
    now: i64,
    s: &NotifySettings,
) -> Result<Steps, S::Error> {
    let mut out = Steps::default();
    for (id, stage) in db.due_steps(now)? {
        let Some(a) = db.alert(id)? else {
            continue;
        };
        // Only an unacknowledged red alert escalates; anything else just stops.
        if a.state != AlertState::Open || a.severity != Severity::Red {
            db.stop(id)?;
            continue;
        }
        out.queued += match db.episode_of(id)? {
            Some(episode) => converse(db, episode, &[id], stage, Why::Reminder, s, now)?,
            None => queue_step(db, id, stage, s, now)?,
        };
        tracing::info!(
            alert_id = id,
            stage,
            "alert not acknowledged: escalation step"
        );
        // By the first escalation step, somebody should have received the first e-mails.
        let (queued, sent) = db.delivery_of(id)?;
        if queued > 0 && sent == 0 {
            out.undelivered.push(id);
        }
        db.schedule(id, stage + 1, escalation::next_due(stage, now, &s.policy))?;
    }
    Ok(out)
}

/// The facts an e-mail about alert `a` gives a contact of `role`: its latest breach.
fn facts<'a>(a: &'a Alert, s: &NotifySettings, role: ContactRole) -> AlertFacts<'a> {
    AlertFacts {
        patient_name: &a.patient_name,
        rule: &a.rule,
        severity: a.severity,
        metric: a.metric.as_deref().and_then(|m| m.parse().ok()),
        value: a.last_value,
        limit: a.limit.as_deref(),
        event: a.event.as_deref().and_then(|e| e.parse().ok()),
        at: a.last_at.unwrap_or(a.opened_at),
        tz: s.display_tz,
        alert_url: None,
        ack_url: None,
        minimal_phi: s.minimal_phi,
        reminder: 0,
        role,
    }
}

/// Queues rendered e-mail `r` to contact `c`, due at once, about alert `about` (none for a
/// digest of several), replying to `in_reply_to` when given.
#[allow(clippy::too_many_arguments)]
fn enqueue<S: NotifyStore>(
    db: &S,
    c: &Contact,
    r: &email::Rendered,
    about: Option<i64>,
    message_id: &str,
    in_reply_to: Option<&str>,
    stage: u32,
    now: i64,
) -> Result<(), S::Error> {
    db.queue_email(
        &NewEmail {
            message_id,
            in_reply_to,
            alert_id: about,
            contact_id: c.id,
            to_name: &c.name,
            to_addr: &c.email,
            subject: &r.subject,
            body: &r.text,
            html: &r.html,
            stage,
        },
        now,
    )
}

/// Queues step `stage`'s e-mails for alert `alert_id`, one per contact the step notifies, each
/// in the contact's language; family e-mails carry an "I'm handling it" link.
fn queue_step<S: NotifyStore>(
    db: &S,
    alert_id: i64,
    stage: u32,
    s: &NotifySettings,
    now: i64,
) -> Result<usize, S::Error> {
    // Called in the transaction that wrote or read the alert: it exists.
    let Some(a) = db.alert(alert_id)? else {
        return Ok(0);
    };
    let contacts = db.contacts(&a.patient_id)?;
    let has_secondary = contacts.iter().any(|c| c.tier == ContactTier::Secondary);
    let alert_url = s
        .public_url
        .as_ref()
        .map(|u| format!("{u}/#alert-{alert_id}"));
    let mut queued = 0;
    for c in contacts
        .iter()
        .filter(|c| escalation::notifies(stage, c.tier, has_secondary))
    {
        let earlier = db.emails_for(alert_id, c.id)?;
        let ack_url = match (&s.public_url, c.role) {
            (Some(base), ContactRole::Family) => {
                let token = random_hex(16);
                let hash = sha256_hex(&token);
                db.insert_link(&hash, alert_id, c.id, now, now + s.link_valid_ms)?;
                Some(format!("{base}/ack/{token}"))
            }
            _ => None,
        };
        let r = email::render(
            c.lang,
            &AlertFacts {
                alert_url: alert_url.as_deref(),
                ack_url: ack_url.as_deref(),
                reminder: earlier,
                ..facts(&a, s, c.role)
            },
        );
        let message_id = email::new_message_id(alert_id, &s.message_id_domain);
        enqueue(db, c, &r, Some(alert_id), &message_id, None, stage, now)?;
        queued += 1;
    }
    Ok(queued)
}

/// A non-critical alert opened (or became more severe): it waits for the next digest of each
/// contact who is e-mailed about alerts this severe (anti-flood, `vigil_alerting::digest`).
pub fn queue_for_digest<S: NotifyStore>(
    db: &S,
    alert_id: i64,
    now: i64,
) -> Result<usize, S::Error> {
    let Some(a) = db.alert(alert_id)? else {
        return Ok(0);
    };
    let mut n = 0;
    for c in db.contacts(&a.patient_id)? {
        // Lower rank is more severe.
        if a.severity.rank() > c.notified_from().rank() {
            continue;
        }
        db.add_digest_item(c.id, &a.patient_id, alert_id, now)?;
        n += 1;
    }
    Ok(n)
}

/// Sends every digest that may go at `now`: one e-mail per (contact, patient) with all the
/// alerts waiting for it, unless the contact had one within `min_interval` or is in their
/// quiet hours. Returns the e-mails queued.
pub fn flush_digests<S: NotifyStore>(
    db: &S,
    now: i64,
    s: &NotifySettings,
) -> Result<usize, S::Error> {
    let mut queued = 0;
    for (contact_id, patient_id) in db.digest_groups()? {
        let Some(c) = db
            .contacts(&patient_id)?
            .into_iter()
            .find(|c| c.id == contact_id)
        else {
            // The contact is gone: nobody to tell.
            db.drop_digests_of(contact_id)?;
            continue;
        };
        let last = db.digest_last_sent(contact_id, &patient_id)?;
        let quiet = match &c.quiet_hours {
            Some(q) => QuietHours::parse_setting(q).unwrap_or(s.quiet_hours),
            None => s.quiet_hours,
        };
        let tz = c
            .timezone
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or(s.timezone);
        let at = digest::send_at(
            ms_to_time(now),
            last.map(ms_to_time),
            chrono::Duration::milliseconds(s.min_interval_ms),
            quiet,
            tz,
        );
        if at.timestamp_millis() > now {
            continue;
        }
        let mut alert_ids = Vec::new();
        let mut waiting: Vec<Alert> = Vec::new();
        for id in db.digest_alerts(contact_id, &patient_id)? {
            let Some(a) = db.alert(id)? else { continue };
            // An alert of an episode this contact already has a conversation about was (or
            // will be) listed there: a digest about it too would be a second e-mail about
            // one deterioration (issue #17).
            if in_conversation(db, id, contact_id)? {
                continue;
            }
            alert_ids.push(id);
            waiting.push(a);
        }
        let items: Vec<(AlertFacts<'_>, AlertState)> = waiting
            .iter()
            .map(|a| (facts(a, s, c.role), a.state))
            .collect();
        let mut sent_at = None;
        if !items.is_empty() {
            let url = s.public_url.as_ref().map(|u| format!("{u}/"));
            let r = email::render_digest(c.lang, &items, url.as_deref());
            // One alert: the e-mail is about it; several: a digest about none alone.
            let about = (alert_ids.len() == 1).then_some(alert_ids[0]);
            let message_id = email::new_message_id(alert_ids[0], &s.message_id_domain);
            enqueue(db, &c, &r, about, &message_id, None, 0, now)?;
            queued += 1;
            sent_at = Some(now);
        }
        db.digest_done(contact_id, &patient_id, sent_at)?;
    }
    Ok(queued)
}

/// Whether contact `contact_id` has a conversation about the episode of alert `alert_id`.
fn in_conversation<S: NotifyStore>(
    db: &S,
    alert_id: i64,
    contact_id: i64,
) -> Result<bool, S::Error> {
    Ok(match db.episode_of(alert_id)? {
        Some(episode) => db.threads(episode)?.iter().any(|(c, _)| *c == contact_id),
        None => false,
    })
}

/// The `notification_failed` breach for the patient of alert `alert_id`, unless that alert is
/// resolved, unknown, or is itself `notification_failed`: (patient id, breach).
pub fn failed_breach<S: NotifyStore>(
    db: &S,
    alert_id: i64,
) -> Result<Option<(String, vigil_alerting::Breach)>, S::Error> {
    let Some(a) = db.alert(alert_id)? else {
        return Ok(None);
    };
    if a.state == AlertState::Resolved || a.rule == NOTIFICATION_FAILED {
        return Ok(None);
    }
    let breach = vigil_alerting::Breach {
        rule: NOTIFICATION_FAILED.into(),
        condition: NOTIFICATION_FAILED.into(),
        severity: Severity::Amber,
        metric: None,
        value: None,
        limit: None,
        message: format!(
            "no e-mail about alert {alert_id} ({}) reached anyone",
            a.rule
        ),
    };
    Ok(Some((a.patient_id, breach)))
}

/// What a link's token leads to.
pub enum LinkUse {
    /// Nothing to do: the page to show (unknown, expired or used link).
    Show(AckLinkView),
    /// A valid link, now burnt: its alert is to be acknowledged as its contact.
    Accept(Link),
}

/// Takes a link for use: a valid one is burnt (in the caller's transaction).
pub fn take_link<S: NotifyStore>(db: &S, token: &str, now: i64) -> Result<LinkUse, S::Error> {
    let hash = sha256_hex(token);
    let Some(l) = db.link(&hash)? else {
        return Ok(LinkUse::Show(AckLinkView::unknown()));
    };
    let st = status(&l, now);
    if st != AckLinkStatus::Valid {
        return Ok(LinkUse::Show(view(db, &l, st)?));
    }
    db.burn_link(&hash, now)?;
    Ok(LinkUse::Accept(l))
}

/// The actor and note an acknowledgement through a family link is recorded with.
pub fn link_actor(l: &Link) -> (String, &'static str) {
    (
        format!("{} (family, e-mail link)", l.contact_name),
        "I'm handling it / Tôi đang xử lý",
    )
}

/// What the page of link `l` shows.
pub fn view<S: NotifyStore>(
    db: &S,
    l: &Link,
    status: AckLinkStatus,
) -> Result<AckLinkView, S::Error> {
    let Some(alert) = db.alert(l.alert_id)? else {
        return Ok(AckLinkView::unknown());
    };
    let episode = db.episode_of(l.alert_id)?;
    let threads = match episode {
        Some(episode) => db.threads(episode)?,
        None => Vec::new(),
    };
    // What is abnormal now: the episode's open alerts, or this alert alone.
    let alerts = match episode {
        Some(episode) => db.episode_alerts(episode)?,
        None => vec![alert.clone()],
    };
    let mut open: Vec<&Alert> = alerts.iter().filter(|a| a.state.is_active()).collect();
    open.sort_by_key(|a| (a.severity.rank(), a.opened_at));
    let signs = crate::conversation::family_signs(&open, l.lang, false);
    let responded = threads
        .iter()
        .any(|(c, t)| *c == l.contact_id && t.responded_at.is_some());
    let first = threads
        .iter()
        .filter_map(|(c, t)| Some((*c, t.responded_at?)))
        .min_by_key(|(_, at)| *at);
    let family_response = match first {
        Some((contact, at)) => db
            .contacts(&alert.patient_id)?
            .into_iter()
            .find(|c| c.id == contact)
            .map(|c| vigil_domain::views::FamilyResponse {
                name: c.name,
                at: ms_to_time(at),
            }),
        None => None,
    };
    Ok(AckLinkView {
        status,
        lang: l.lang,
        contact_name: l.contact_name.clone(),
        patient_name: alert.patient_name,
        severity: Some(alert.severity),
        alert_state: Some(alert.state),
        acknowledged_by: alert.acknowledged_by,
        acknowledged_at: alert.acknowledged_at,
        responded,
        family_response,
        station_phone: db.station_phone(&alert.patient_id)?,
        signs,
    })
}

fn status(l: &Link, now: i64) -> AckLinkStatus {
    if l.used_at.is_some() {
        AckLinkStatus::Used
    } else if now >= l.expires_at {
        AckLinkStatus::Expired
    } else {
        AckLinkStatus::Valid
    }
}

/// What the page behind `token` shows; changes nothing (mail scanners open links).
pub fn ack_link_view<S: NotifyStore>(
    db: &S,
    token: &str,
    now: i64,
) -> Result<AckLinkView, S::Error> {
    match db.link(&sha256_hex(token))? {
        Some(l) => view(db, &l, status(&l, now)),
        None => Ok(AckLinkView::unknown()),
    }
}

/// A point in time from epoch milliseconds (the store's unit).
fn ms_to_time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// `bytes` random bytes as hex: an ack-link token (128 bits from the OS's generator).
fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex(&b)
}

/// How a link's token is kept: its SHA-256 (a 128-bit random token needs no slow hash).
fn sha256_hex(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(s.as_bytes()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
