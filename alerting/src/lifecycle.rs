//! The alert state machine (issue #2; design invariant 3: one active alert per (patient, rule),
//! every change audited).
//!
//! ```text
//!   breach ──▶ open ──ack──▶ acknowledged ──resolve──▶ resolved
//!                └───────────────resolve───────────────────┘
//! ```
//! A breach while an alert for the same (patient, rule) is open or acknowledged does not open a
//! second one: it updates the existing alert's latest value (a hospital central station latches
//! one alarm per condition). Pure functions; the store applies the decisions in a transaction.

use vigil_domain::AlertState;

/// What to do with a new breach, given the active alert for its (patient, rule), if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBreach {
    /// No active alert: open one and notify.
    Open,
    /// Already active: record the latest value, notify nobody again.
    Update { alert_id: i64 },
}

pub fn on_breach(active: Option<(i64, AlertState)>) -> OnBreach {
    match active {
        Some((alert_id, state)) if state.is_active() => OnBreach::Update { alert_id },
        _ => OnBreach::Open,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Acknowledge,
    Resolve,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Acknowledge => "acknowledge",
            Action::Resolve => "resolve",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("alert is already {0}")]
    NotAllowed(&'static str),
}

/// The state after `action`, or why it is not allowed. Acknowledging twice is not an error
/// (two clinicians clicking at once must both succeed), it simply changes nothing.
pub fn transition(from: AlertState, action: Action) -> Result<AlertState, TransitionError> {
    match (from, action) {
        (AlertState::Open | AlertState::Acknowledged, Action::Acknowledge) => {
            Ok(AlertState::Acknowledged)
        }
        (AlertState::Open | AlertState::Acknowledged, Action::Resolve) => Ok(AlertState::Resolved),
        (AlertState::Resolved, _) => Err(TransitionError::NotAllowed("resolved")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_active_alert_per_rule() {
        assert_eq!(on_breach(None), OnBreach::Open);
        assert_eq!(
            on_breach(Some((7, AlertState::Open))),
            OnBreach::Update { alert_id: 7 }
        );
        assert_eq!(
            on_breach(Some((7, AlertState::Acknowledged))),
            OnBreach::Update { alert_id: 7 }
        );
        assert_eq!(on_breach(Some((7, AlertState::Resolved))), OnBreach::Open);
    }

    #[test]
    fn transitions() {
        use AlertState::*;
        assert_eq!(transition(Open, Action::Acknowledge), Ok(Acknowledged));
        assert_eq!(
            transition(Acknowledged, Action::Acknowledge),
            Ok(Acknowledged)
        );
        assert_eq!(transition(Acknowledged, Action::Resolve), Ok(Resolved));
        assert_eq!(transition(Open, Action::Resolve), Ok(Resolved));
        assert!(transition(Resolved, Action::Acknowledge).is_err());
    }
}
