//! Patients and the people to notify about them.

use serde::{Deserialize, Serialize};
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patient {
    pub id: String,
    pub name: String,
    /// The facility the patient belongs to (issue #6).
    pub facility_id: String,
    /// Where the patient lives or is cared for within the facility (a ward, village, hamlet),
    /// for grouping and filtering the ward view.
    #[serde(default)]
    pub area: Option<String>,
    /// Free labels to filter by (e.g. `copd`, `lives-alone`).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Language of a contact's e-mails. Vietnamese first: the first deployment is in Vietnam.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    #[default]
    Vi,
    En,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }
}

impl FromStr for Lang {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "vi" => Ok(Lang::Vi),
            "en" => Ok(Lang::En),
            _ => Err(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ContactRole {
    #[default]
    Family,
    Clinician,
}

impl ContactRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactRole::Family => "family",
            ContactRole::Clinician => "clinician",
        }
    }
}

impl FromStr for ContactRole {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "family" => Ok(ContactRole::Family),
            "clinician" => Ok(ContactRole::Clinician),
            _ => Err(()),
        }
    }
}

/// When a contact hears about a red alert (issue #5's escalation policy): `primary` contacts
/// at once, `secondary` ones when nobody has acknowledged it after `notify.escalate_after_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ContactTier {
    #[default]
    Primary,
    Secondary,
}

impl ContactTier {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactTier::Primary => "primary",
            ContactTier::Secondary => "secondary",
        }
    }
}

impl FromStr for ContactTier {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "primary" => Ok(ContactTier::Primary),
            "secondary" => Ok(ContactTier::Secondary),
            _ => Err(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: i64,
    pub patient_id: String,
    pub name: String,
    pub email: String,
    pub lang: Lang,
    pub role: ContactRole,
    pub tier: ContactTier,
    /// The least severe alert e-mailed to them; `None`: by role (family red, clinician amber).
    pub min_severity: Option<crate::Severity>,
    /// Their quiet hours (`22:00-06:00`, or `none`); `None`: `notify.quiet_hours`.
    pub quiet_hours: Option<String>,
    /// Their IANA time zone; `None`: `notify.timezone`.
    pub timezone: Option<String>,
    /// Their phone number (issue #17), shown to the others told and on the ward.
    #[serde(default)]
    pub phone: Option<String>,
}

impl Contact {
    /// The least severe alert this contact is e-mailed about.
    pub fn notified_from(&self) -> crate::Severity {
        self.min_severity.unwrap_or(match self.role {
            ContactRole::Family => crate::Severity::Red,
            ContactRole::Clinician => crate::Severity::Amber,
        })
    }
}
