//! Episodes (issue #17) as rows: which alerts belong to which episode of a patient, and the
//! episode's severity and end, as the alert service decides them (`vigil_alerting::episode`)
//! in its transaction. No decisions are taken here.

use super::alerts::{alert_from_row, ALERT_COLUMNS};
use super::{ms_to_time, Result};
use crate::db::{params, Connection, OptionalExtension};
use vigil_alerting::condition::Condition;
use vigil_alerting::episode::Latest;
use vigil_domain::views::{
    CurrentValue, Episode, EpisodeDetail, EpisodeEmail, EpisodeEvent, EpisodeResponse,
    EpisodeSignal, EpisodeState, FamilyResponse, Notified, SharedNote, TakenOn,
};
use vigil_domain::{Metric, Scope, Severity};

/// `patient_id`'s active episode, else their most recently ended one, with the conditions
/// people resolved in it.
pub fn latest(conn: &Connection, patient_id: &str) -> Result<Option<Latest>> {
    let row = conn
        .prepare_cached(
            "SELECT id, ended_at FROM episodes WHERE patient_id = ?1
             ORDER BY ended_at IS NOT NULL, ended_at DESC LIMIT 1",
        )?
        .query_row([patient_id], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?)))
        .optional()?;
    let Some((id, ended_at)) = row else {
        return Ok(None);
    };
    let resolved_by_people = conn
        .prepare_cached(
            "SELECT DISTINCT condition FROM alerts
             WHERE episode_id = ?1 AND state = 'resolved' AND resolved_by <> 'system'",
        )?
        .query_map([id], |r| r.get(0))?
        .collect::<crate::db::Result<_>>()?;
    Ok(Some(Latest {
        id,
        ended_at,
        resolved_by_people,
    }))
}

/// Opens an episode for `patient_id` at `at`.
pub fn open(conn: &Connection, patient_id: &str, severity: Severity, at: i64) -> Result<i64> {
    Ok(conn.query_row(
        "INSERT INTO episodes (patient_id, opened_at, severity, peak) VALUES (?1, ?2, ?3, ?3)
         RETURNING id",
        params![patient_id, at, severity.as_str()],
        |r| r.get(0),
    )?)
}

/// Makes an ended episode active again (a signal came back within the grace period).
pub fn reopen(conn: &Connection, id: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE episodes SET ended_at = NULL, reopened = reopened + 1 WHERE id = ?1",
    )?
    .execute([id])?;
    Ok(())
}

/// Puts alert `alert_id` in episode `episode_id`.
pub fn attach(conn: &Connection, alert_id: i64, episode_id: i64) -> Result<()> {
    conn.prepare_cached("UPDATE alerts SET episode_id = ?2 WHERE id = ?1")?
        .execute(params![alert_id, episode_id])?;
    Ok(())
}

/// The episode of alert `alert_id`, if it has one (alerts resolved before episodes existed
/// have none).
pub fn of_alert(conn: &Connection, alert_id: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT episode_id FROM alerts WHERE id = ?1")?
        .query_row([alert_id], |r| r.get(0))
        .optional()?
        .flatten())
}

/// Every alert of episode `id`, oldest first.
pub fn alerts(conn: &Connection, id: i64) -> Result<Vec<vigil_domain::Alert>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts a JOIN patients p ON p.id = a.patient_id
             WHERE a.episode_id = ?1 ORDER BY a.id"
        ))?
        .query_map([id], alert_from_row)?
        .collect::<crate::db::Result<_>>()?)
}

/// The severities of episode `id`'s open (not resolved) signals.
pub fn open_severities(conn: &Connection, id: i64) -> Result<Vec<Severity>> {
    Ok(conn
        .prepare_cached(
            "SELECT severity FROM alerts WHERE episode_id = ?1 AND state <> 'resolved'",
        )?
        .query_map([id], |r| r.get::<_, String>(0))?
        .filter_map(|s| s.map(|s| s.parse().ok()).transpose())
        .collect::<crate::db::Result<_>>()?)
}

/// Sets episode `id`'s severity (and its peak, if worse), or ends it at `at` when `severity`
/// is `None` (no signal open).
pub fn set_severity(conn: &Connection, id: i64, severity: Option<Severity>, at: i64) -> Result<()> {
    match severity {
        Some(s) => conn
            .prepare_cached(
                "UPDATE episodes SET severity = ?2,
                   peak = CASE WHEN ?3 < (CASE peak WHEN 'red' THEN 0 WHEN 'amber' THEN 1 ELSE 2 END)
                               THEN ?2 ELSE peak END
                 WHERE id = ?1",
            )?
            .execute(params![id, s.as_str(), s.rank()])?,
        None => conn
            .prepare_cached("UPDATE episodes SET ended_at = ?2 WHERE id = ?1 AND ended_at IS NULL")?
            .execute(params![id, at])?,
    };
    Ok(())
}

/// Which episodes [`list`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Active,
    Ended,
    All,
}

/// Episodes of the facilities `scope` allows: active ones most severe first, then newest
/// first; optionally one patient's.
pub fn list(
    conn: &Connection,
    scope: &Scope,
    which: Which,
    patient_id: Option<&str>,
    limit: usize,
) -> Result<Vec<Episode>> {
    let facilities = match scope {
        Scope::All => None,
        Scope::Only(f) => Some(serde_json::to_string(f).expect("strings")),
    };
    let state = match which {
        Which::Active => Some("active"),
        Which::Ended => Some("ended"),
        Which::All => None,
    };
    let sql = format!(
        "SELECT e.id FROM episodes e JOIN patients p ON p.id = e.patient_id
         WHERE ((?1 = 'active') = (e.ended_at IS NULL) OR ?1 IS NULL)
           AND (p.facility_id IN ({}) OR ?2 IS NULL)
           AND (e.patient_id = ?3 OR ?3 IS NULL)
         ORDER BY e.ended_at IS NOT NULL,
                  CASE e.severity WHEN 'red' THEN 0 WHEN 'amber' THEN 1 ELSE 2 END,
                  e.opened_at DESC
         LIMIT ?4",
        conn.json_strings("?2")
    );
    let ids: Vec<i64> = conn
        .prepare_cached(&sql)?
        .query_map(params![state, facilities, patient_id, limit as i64], |r| {
            r.get(0)
        })?
        .collect::<crate::db::Result<_>>()?;
    ids.into_iter()
        .filter_map(|id| get(conn, id).transpose())
        .collect()
}

/// Episode `id` with its signals and their current values.
pub fn get(conn: &Connection, id: i64) -> Result<Option<Episode>> {
    let row = conn
        .prepare_cached(
            "SELECT e.patient_id, p.name, e.severity, e.peak, e.opened_at, e.ended_at, e.reopened,
                    e.family_note, e.family_note_by, e.family_note_at
             FROM episodes e JOIN patients p ON p.id = e.patient_id WHERE e.id = ?1",
        )?
        .query_row([id], |r| {
            let note = match (r.get(7)?, r.get(8)?, r.get::<_, Option<i64>>(9)?) {
                (Some(note), Some(by), Some(at)) => Some(SharedNote {
                    by,
                    note,
                    at: ms_to_time(at),
                }),
                _ => None,
            };
            Ok((
                (
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ),
                (
                    r.get::<_, i64>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, u32>(6)?,
                ),
                note,
            ))
        })
        .optional()?;
    let Some((
        (patient_id, patient_name, severity, peak),
        (opened_at, ended_at, reopened),
        family_note,
    )) = row
    else {
        return Ok(None);
    };
    let alerts = conn
        .prepare_cached(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts a JOIN patients p ON p.id = a.patient_id
             WHERE a.episode_id = ?1
             ORDER BY a.state = 'resolved',
                      CASE a.severity WHEN 'red' THEN 0 WHEN 'amber' THEN 1 ELSE 2 END,
                      a.opened_at"
        ))?
        .query_map([id], alert_from_row)?
        .collect::<crate::db::Result<Vec<_>>>()?;
    let family_response = conn
        .prepare_cached(
            "SELECT c.name, t.responded_at FROM episode_threads t JOIN contacts c ON c.id = t.contact_id
             WHERE t.episode_id = ?1 AND t.responded_at IS NOT NULL
             ORDER BY t.responded_at LIMIT 1",
        )?
        .query_row([id], |r| {
            Ok(FamilyResponse {
                name: r.get(0)?,
                at: ms_to_time(r.get(1)?),
            })
        })
        .optional()?;
    let mut signals = Vec::with_capacity(alerts.len());
    for alert in alerts {
        let metric = alert
            .metric
            .as_deref()
            .and_then(|m| m.parse::<Metric>().ok());
        let current = match metric {
            Some(m) => {
                super::readings::latest_of(conn, &patient_id, m)?.map(|(at, value)| CurrentValue {
                    value,
                    unit: m.unit().to_string(),
                    at: ms_to_time(at),
                })
            }
            None => None,
        };
        let abnormal = alert.state.is_active()
            && match (&current, alert.limit.as_deref().and_then(Condition::parse)) {
                (Some(v), Some(limit)) => limit.matches(v.value),
                _ => false,
            };
        signals.push(EpisodeSignal {
            alert,
            current,
            abnormal,
        });
    }
    // A family link acts as "Name (family, e-mail link)" (vigil-notify): not a clinician.
    let taken_on = signals
        .iter()
        .filter_map(|s| Some((s.alert.acknowledged_by.as_ref()?, s.alert.acknowledged_at?)))
        .filter(|(by, _)| !by.ends_with("(family, e-mail link)"))
        .min_by_key(|(_, at)| *at)
        .map(|(name, at)| TakenOn {
            name: name.clone(),
            at,
        });
    Ok(Some(Episode {
        id,
        patient_id,
        patient_name,
        state: if ended_at.is_some() {
            EpisodeState::Ended
        } else {
            EpisodeState::Active
        },
        severity: severity.parse().unwrap_or(Severity::Red),
        peak: peak.parse().unwrap_or(Severity::Red),
        opened_at: ms_to_time(opened_at),
        ended_at: ended_at.map(ms_to_time),
        reopened,
        family_response,
        taken_on,
        family_note,
        notified: notified(conn, id)?,
        signals,
    }))
}

/// Everybody e-mailed about episode `id` (cancelled e-mails aside), first told first.
fn notified(conn: &Connection, id: i64) -> Result<Vec<Notified>> {
    Ok(conn
        .prepare_cached(
            // One row per address; name, role and phone are the address's (MIN picks one where
            // SQLite would take any row's).
            "SELECT MIN(o.to_name), MIN(c.role), MIN(c.phone), MIN(o.created_at),
                    MAX(CASE WHEN o.sent_at IS NOT NULL THEN 1 ELSE 0 END)
             FROM outbox o JOIN alerts a ON a.id = o.alert_id
             LEFT JOIN contacts c ON c.id = o.contact_id
             WHERE a.episode_id = ?1 AND o.cancelled_at IS NULL
             GROUP BY o.to_addr ORDER BY MIN(o.created_at), MIN(o.id)",
        )?
        .query_map([id], |r| {
            Ok(Notified {
                name: r.get(0)?,
                role: r
                    .get::<_, Option<String>>(1)?
                    .unwrap_or_else(|| "clinician".into()),
                phone: r.get(2)?,
                first_at: ms_to_time(r.get(3)?),
                delivered: r.get(4)?,
            })
        })?
        .collect::<crate::db::Result<Vec<_>>>()?)
}

/// Records `note` by `by` as the one shared with episode `id`'s family.
pub fn set_family_note(conn: &Connection, id: i64, by: &str, note: &str, at_ms: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE episodes SET family_note = ?2, family_note_by = ?3, family_note_at = ?4
         WHERE id = ?1",
    )?
    .execute(params![id, note, by, at_ms])?;
    Ok(())
}

/// The note shared with episode `id`'s family and who wrote it.
pub fn family_note(conn: &Connection, id: i64) -> Result<Option<(String, String)>> {
    Ok(conn
        .prepare_cached(
            "SELECT family_note_by, family_note FROM episodes
             WHERE id = ?1 AND family_note IS NOT NULL",
        )?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Episode `id` with its timeline (every audit entry of its signals, in order), its e-mails
/// and the people's responses.
pub fn detail(conn: &Connection, id: i64) -> Result<Option<EpisodeDetail>> {
    let Some(episode) = get(conn, id)? else {
        return Ok(None);
    };
    let timeline = conn
        .prepare_cached(
            "SELECT au.at, au.alert_id, a.rule, au.actor, au.action, au.note
             FROM alert_audit au JOIN alerts a ON a.id = au.alert_id
             WHERE a.episode_id = ?1 ORDER BY au.at, au.id",
        )?
        .query_map([id], |r| {
            Ok(EpisodeEvent {
                at: ms_to_time(r.get(0)?),
                alert_id: r.get(1)?,
                rule: r.get(2)?,
                actor: r.get(3)?,
                action: r.get(4)?,
                note: r.get(5)?,
            })
        })?
        .collect::<crate::db::Result<Vec<_>>>()?;
    let responses = timeline
        .iter()
        .filter(|e| e.actor != "system" && e.action != "open" && e.action != "escalate")
        .map(|e| EpisodeResponse {
            at: e.at,
            alert_id: e.alert_id,
            who: e.actor.clone(),
            // The family's e-mail link acts as "Name (family, e-mail link)" (vigil-notify).
            role: if e.actor.ends_with("(family, e-mail link)") {
                "family"
            } else {
                "clinician"
            }
            .to_string(),
            action: e.action.clone(),
            note: e.note.clone(),
        })
        .collect();
    let notifications = conn
        .prepare_cached(
            "SELECT o.alert_id, o.to_name, o.subject, o.stage, o.created_at, o.sent_at, o.failed_at
             FROM outbox o JOIN alerts a ON a.id = o.alert_id
             WHERE a.episode_id = ?1 ORDER BY o.id",
        )?
        .query_map([id], |r| {
            Ok(EpisodeEmail {
                alert_id: r.get(0)?,
                to_name: r.get(1)?,
                subject: r.get(2)?,
                stage: r.get(3)?,
                created_at: ms_to_time(r.get(4)?),
                sent_at: r.get::<_, Option<i64>>(5)?.map(ms_to_time),
                failed_at: r.get::<_, Option<i64>>(6)?.map(ms_to_time),
            })
        })?
        .collect::<crate::db::Result<Vec<_>>>()?;
    Ok(Some(EpisodeDetail {
        episode,
        timeline,
        notifications,
        responses,
    }))
}

/// The facility of episode `id`'s patient, for access checks; `None`: no such episode.
pub fn facility(conn: &Connection, id: i64) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT p.facility_id FROM episodes e JOIN patients p ON p.id = e.patient_id
             WHERE e.id = ?1",
        )?
        .query_row([id], |r| r.get(0))
        .optional()?)
}
