//! A clinician's action on a whole episode from its ward card (issue #17): acknowledge,
//! take on or resolve every signal at once, one message to the families; and the note a
//! clinician chooses to share with them.

use super::AlertTx;
use crate::store::notify::Rows;
use crate::store::{episodes, now_ms, Result, StoreError};
use vigil_alerting::lifecycle::Action;
use vigil_domain::views::Episode;
use vigil_domain::{display, AlertState, Lang};
use vigil_notify::policy as notify;

/// What one button of an episode's card does to its active signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpisodeAction {
    /// Acknowledges its open signals (the acknowledged ones stay as they are).
    Acknowledge,
    /// "Assign to me": takes on every active signal.
    Assign,
    /// Resolves every active signal, ending the episode.
    Resolve,
}

impl AlertTx<'_> {
    /// Applies `action` to every active signal of episode `id` as `actor`, each audited with
    /// `note`. `share`: the note is also the families' to read (in the "taken on" update).
    /// Resolving while a signal's current value is still beyond its limit needs `confirm`
    /// (a conflict naming the values otherwise). The families hear of an acknowledgement once.
    pub fn act_episode(
        &mut self,
        id: i64,
        action: EpisodeAction,
        actor: &str,
        note: Option<&str>,
        share: bool,
        confirm: bool,
    ) -> Result<Episode> {
        let c = self.conn;
        // Another gateway may be evaluating this patient (issue #20).
        crate::store::locks::episode_patient(c, id)?;
        let ep =
            episodes::get(c, id)?.ok_or_else(|| StoreError::NotFound(format!("episode {id}")))?;
        let active: Vec<_> = ep
            .signals
            .iter()
            .filter(|s| s.alert.state.is_active())
            .collect();
        if active.is_empty() {
            return Err(StoreError::Conflict("the episode has ended".into()));
        }
        match action {
            EpisodeAction::Acknowledge => {
                let open: Vec<i64> = active
                    .iter()
                    .filter(|s| s.alert.state == AlertState::Open)
                    .map(|s| s.alert.id)
                    .collect();
                if open.is_empty() {
                    return Err(StoreError::Conflict(
                        "every signal of the episode is acknowledged already".into(),
                    ));
                }
                for a in &open {
                    self.act_one(*a, Action::Acknowledge, actor, note, false)?;
                }
                if share {
                    self.share_with_family(id, actor, note)?;
                }
                self.changes.emails +=
                    notify::taken_on(&Rows(c), id, &self.svc.settings, now_ms())?;
            }
            EpisodeAction::Assign => {
                for a in active.iter().map(|s| s.alert.id) {
                    self.assign(a, actor, note)?;
                }
            }
            EpisodeAction::Resolve => {
                let abnormal: Vec<String> = active
                    .iter()
                    .filter(|s| s.abnormal)
                    .filter_map(|s| {
                        let m = s
                            .alert
                            .metric
                            .as_deref()?
                            .parse::<vigil_domain::Metric>()
                            .ok()?;
                        let v = s.current.as_ref()?;
                        Some(format!(
                            "{} {} {}",
                            m.label(Lang::En),
                            display::number(v.value, false),
                            m.display_unit()
                        ))
                    })
                    .collect();
                if !abnormal.is_empty() && !confirm {
                    return Err(StoreError::Conflict(format!(
                        "still abnormal: {}; send confirm: true to resolve anyway",
                        abnormal.join(", ")
                    )));
                }
                for a in active.iter().map(|s| s.alert.id) {
                    self.act_one(a, Action::Resolve, actor, note, false)?;
                }
            }
        }
        Ok(episodes::get(c, id)?.expect("read above in this transaction"))
    }

    /// Shares `note` by clinician `actor` with the families of episode `id`, from the
    /// acknowledgement it came with (the next update quotes it). No note: nothing to share.
    pub fn share_with_family(&mut self, id: i64, actor: &str, note: Option<&str>) -> Result<()> {
        if let Some(note) = note.map(str::trim).filter(|n| !n.is_empty()) {
            episodes::set_family_note(self.conn, id, actor, note, now_ms())?;
        }
        Ok(())
    }

    /// [`AlertTx::share_with_family`] for the episode of alert `alert_id` (the alert page's
    /// acknowledge); an alert from before episodes has nobody's thread to share it in.
    pub fn share_alert_note(
        &mut self,
        alert_id: i64,
        actor: &str,
        note: Option<&str>,
    ) -> Result<()> {
        match episodes::of_alert(self.conn, alert_id)? {
            Some(id) => self.share_with_family(id, actor, note),
            None => Ok(()),
        }
    }
}
