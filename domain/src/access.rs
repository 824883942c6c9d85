//! Who may see what (issue #6, facilities): patients belong to one facility — a commune health
//! station, a district centre, a care home — and a dashboard user sees the patients, alerts and
//! devices of the facilities they are assigned to; administrators see all.

use serde::Serialize;

/// The facilities a caller may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every facility (administrators, operator API tokens).
    All,
    /// These facilities only.
    Only(Vec<String>),
}

impl Scope {
    pub fn allows(&self, facility: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(f) => f.iter().any(|x| x == facility),
        }
    }
}

/// An authenticated caller: who (for the audit trail), what role, what they may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The audit name: the user name, or `token:NAME` for an API token.
    pub name: String,
    pub admin: bool,
    pub scope: Scope,
    /// The session's CSRF token; `None` for bearer tokens (nothing ambient to forge).
    pub csrf: Option<String>,
    /// The language the user chose for the dashboard; `None` until they choose (pages then
    /// follow the browser) and for API tokens.
    pub lang: Option<crate::Lang>,
    /// Whether the dashboard sounds a tone for a new red alert (issue #21: on by default, kept
    /// with the account); `true` for API tokens, which have no screen.
    pub sound: bool,
}

/// The facility every install has: single-site installs never need another.
pub const DEFAULT_FACILITY: &str = "default";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_allows() {
        assert!(Scope::All.allows("x"));
        let s = Scope::Only(vec!["a".into()]);
        assert!(s.allows("a") && !s.allows("b"));
    }
}
