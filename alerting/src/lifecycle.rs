//! The alert state machine (issue #2; docs/architecture.md invariant 3: one active alert per (patient, rule),
//! every change audited).
//!
//! ```text
//!   breach ──▶ open ──ack──▶ acknowledged ──resolve──▶ resolved
//!                └───────────────resolve───────────────────┘
//! ```
//! A breach while an alert for the same (patient, condition) is open or acknowledged does not
//! open a second one (a hospital central station latches one alarm per condition): it updates
//! the existing alert, or escalates it when the breach is more severe (amber SpO₂ < 94 becoming
//! red SpO₂ < 90). Pure functions; the store applies the decisions in a transaction.

use vigil_domain::{AlertState, Severity};

/// The active alert of a (patient, condition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Active {
    pub id: i64,
    pub state: AlertState,
    pub severity: Severity,
}

/// What to do with a new breach, given the active alert for its (patient, condition), if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBreach {
    /// No active alert: open one and notify.
    Open,
    /// Already active at this severity or higher: record the latest value, notify nobody again.
    Update { alert_id: i64 },
    /// Active at a lower severity: raise its severity, reopen it if acknowledged, and notify as
    /// for a new alert of the higher severity.
    Escalate { alert_id: i64 },
}

pub fn on_breach(active: Option<Active>, severity: Severity) -> OnBreach {
    match active {
        Some(a) if a.state.is_active() && severity.rank() < a.severity.rank() => {
            OnBreach::Escalate { alert_id: a.id }
        }
        Some(a) if a.state.is_active() => OnBreach::Update { alert_id: a.id },
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

    fn build_active(state: AlertState, severity: Severity) -> Option<Active> {
        Some(Active {
            id: 7,
            state,
            severity,
        })
    }

    #[test]
    fn one_active_alert_per_condition() {
        use AlertState::*;
        use Severity::*;
        assert_eq!(on_breach(None, Red), OnBreach::Open);
        assert_eq!(
            on_breach(build_active(Open, Red), Red),
            OnBreach::Update { alert_id: 7 }
        );
        assert_eq!(
            on_breach(build_active(Acknowledged, Red), Amber),
            OnBreach::Update { alert_id: 7 },
            "never downgraded"
        );
        assert_eq!(on_breach(build_active(Resolved, Red), Red), OnBreach::Open);
    }

    #[test]
    fn more_severe_breach_escalates() {
        use AlertState::*;
        use Severity::*;
        assert_eq!(
            on_breach(build_active(Open, Amber), Red),
            OnBreach::Escalate { alert_id: 7 }
        );
        assert_eq!(
            on_breach(build_active(Acknowledged, Yellow), Amber),
            OnBreach::Escalate { alert_id: 7 }
        );
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
