//! Who hears about a red alert, and when (issue #5's escalation policy). Pure: the store
//! applies it, a loop in the gateway asks it when the next step is due.
//!
//! ```text
//! step 0  at once              primary contacts (on-call clinicians, the primary family contact)
//! step 1  + escalate_after     secondary contacts
//! step 2… then every repeat    everyone again, as a reminder
//! ```
//! Acknowledging or resolving the alert stops the steps (the store clears the due time). A
//! patient without secondary contacts gets the reminder at step 1 instead, so an
//! unacknowledged red alert is never followed by silence (decision, docs/notifications.md).

use vigil_domain::ContactTier;

/// How a red alert escalates while nobody acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// From the first e-mails to the secondary contacts (issue #5: 10 min).
    pub escalate_after_ms: i64,
    /// Between reminders after that (issue #5: 15 min).
    pub repeat_ms: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            escalate_after_ms: 10 * 60_000,
            repeat_ms: 15 * 60_000,
        }
    }
}

/// Whether step `stage` e-mails a contact of `tier`; `has_secondary` says whether the patient
/// has any secondary contact.
pub fn notifies(stage: u32, tier: ContactTier, has_secondary: bool) -> bool {
    match stage {
        0 => tier == ContactTier::Primary,
        1 if has_secondary => tier == ContactTier::Secondary,
        _ => true,
    }
}

/// When the step after `stage` is due, `now` being when `stage` ran. Counted from the step
/// that ran, not from the opening, so a gateway that was down does not send a burst of
/// reminders when it comes back.
pub fn next_due(stage: u32, now: i64, policy: &Policy) -> i64 {
    if stage == 0 {
        now + policy.escalate_after_ms
    } else {
        now + policy.repeat_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ContactTier::*;

    #[test]
    fn primary_first_then_secondary_then_everyone() {
        assert!(notifies(0, Primary, true));
        assert!(!notifies(0, Secondary, true));
        assert!(!notifies(1, Primary, true));
        assert!(notifies(1, Secondary, true));
        assert!(notifies(2, Primary, true) && notifies(2, Secondary, true));
        assert!(notifies(7, Primary, true));
    }

    #[test]
    fn without_secondaries_step_one_reminds_the_primaries() {
        assert!(notifies(1, Primary, false));
    }

    #[test]
    fn steps_are_spaced_by_the_policy() {
        let p = Policy::default();
        assert_eq!(next_due(0, 1_000, &p), 1_000 + 600_000);
        assert_eq!(next_due(1, 2_000, &p), 2_000 + 900_000);
        assert_eq!(next_due(5, 2_000, &p), 2_000 + 900_000);
    }
}
