//! Alert episodes (issue #17): Vigil's alerts are per rule, people think in episodes. One
//! deterioration of one patient is one episode:
//!
//! ```text
//!   first signal ──▶ active ──(every signal resolved)──▶ ended
//!        ▲              ▲  └─ signals opening meanwhile join it
//!        │              └──── the same condition back within `reopen_grace` after a
//!        │                    clinician resolved it: reopened, linked (no new episode)
//!        └─ any other signal after it ended: a new episode
//! ```
//!
//! An episode carries the worst severity of its open signals. A signal is an alert (a rule's,
//! NEWS2's, or an event's such as a fall). Pure functions; the alert service applies them in
//! its transaction (gateway `alerts`).

use vigil_domain::Severity;

/// A patient's latest episode, as far as placing a new signal goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    pub id: i64,
    /// When it ended; `None` while it is active.
    pub ended_at: Option<i64>,
    /// The conditions a person (not the rule's own clear condition) resolved in it.
    pub resolved_by_people: Vec<String>,
}

/// Where a newly opened signal goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Into the patient's active episode.
    Join(i64),
    /// The same condition came back within the grace period after a person resolved it:
    /// the ended episode is active again, and the signal joins it.
    Reopen(i64),
    /// Into a new episode.
    Open,
}

/// Places a signal of `condition` opening at `now` (epoch ms), given the patient's latest
/// episode. `grace_ms` is `notifications.reopen_grace`.
pub fn place(latest: Option<&Latest>, condition: &str, now: i64, grace_ms: i64) -> Placement {
    match latest {
        Some(l) if l.ended_at.is_none() => Placement::Join(l.id),
        Some(l)
            if l.ended_at.is_some_and(|t| now - t <= grace_ms)
                && l.resolved_by_people.iter().any(|c| c == condition) =>
        {
            Placement::Reopen(l.id)
        }
        _ => Placement::Open,
    }
}

/// An episode's severity from its open signals' severities: the worst of them; `None` when
/// none is open, which ends the episode.
pub fn severity(open: impl IntoIterator<Item = Severity>) -> Option<Severity> {
    open.into_iter().min_by_key(|s| s.rank())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn ended(at: i64, people: &[&str]) -> Latest {
        Latest {
            id: 7,
            ended_at: Some(at),
            resolved_by_people: people.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn signals_join_the_active_episode_whatever_their_condition() {
        let active = Latest {
            id: 3,
            ended_at: None,
            resolved_by_people: vec![],
        };
        assert_eq!(
            place(Some(&active), "spo2_low", 0, 30 * MIN),
            Placement::Join(3)
        );
        assert_eq!(
            place(Some(&active), "fall", 0, 30 * MIN),
            Placement::Join(3)
        );
    }

    #[test]
    fn the_first_signal_opens_one() {
        assert_eq!(place(None, "spo2_low", 0, 30 * MIN), Placement::Open);
    }

    #[test]
    fn a_condition_a_person_resolved_reopens_within_the_grace_only() {
        let l = ended(100 * MIN, &["spo2_low"]);
        assert_eq!(
            place(Some(&l), "spo2_low", 110 * MIN, 30 * MIN),
            Placement::Reopen(7)
        );
        assert_eq!(
            place(Some(&l), "spo2_low", 130 * MIN, 30 * MIN),
            Placement::Reopen(7),
            "the grace is inclusive"
        );
        assert_eq!(
            place(Some(&l), "spo2_low", 131 * MIN, 30 * MIN),
            Placement::Open
        );
    }

    #[test]
    fn other_conditions_and_system_clears_start_a_new_episode() {
        let l = ended(100 * MIN, &["spo2_low"]);
        assert_eq!(
            place(Some(&l), "temperature_high", 101 * MIN, 30 * MIN),
            Placement::Open
        );
        let cleared = ended(100 * MIN, &[]);
        assert_eq!(
            place(Some(&cleared), "spo2_low", 101 * MIN, 30 * MIN),
            Placement::Open
        );
    }

    #[test]
    fn severity_is_the_worst_open_signal() {
        use Severity::*;
        assert_eq!(severity([Amber, Red, Yellow]), Some(Red));
        assert_eq!(severity([Yellow, Amber]), Some(Amber));
        assert_eq!(severity([]), None);
    }
}
