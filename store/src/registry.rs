//! Facilities, patients, contacts and devices (users, tokens and sessions: `accounts`).

use super::{now_ms, Result, StoreError};
use crate::audit::audit;
use crate::db::{params, Connection, OptionalExtension};
use crate::secrets;
use vigil_domain::{Contact, ContactRole, ContactTier, Lang, Patient, Scope};

/// Ids are chosen by people (`--id`) or generated; keep them safe in MQTT topics and URLs.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "invalid id {id:?}: use 1–64 letters, digits, '-', '_' or '.'"
        )))
    }
}

/// Maps a primary-key or unique violation to a `Conflict` saying `what` (realworld-axum-sqlx's
/// `on_constraint` idea); any other error passes through.
pub(crate) fn on_unique(
    what: impl FnOnce() -> String,
) -> impl FnOnce(crate::db::Error) -> StoreError {
    move |e| {
        if e.is_unique_violation() {
            StoreError::Conflict(what())
        } else {
            e.into()
        }
    }
}

/// A free-text field checked by name (issue #15: no control characters, line breaks or bidi
/// overrides in anything that reaches an e-mail header, a log line or a page).
pub(crate) fn check_text(field: &str, value: &str) -> Result<()> {
    vigil_domain::text::check_field(field, value).map_err(StoreError::Invalid)
}

/// An e-mail address lettre can send to.
fn check_email(email: &str) -> Result<()> {
    match email.parse::<lettre::Address>() {
        Ok(_) => Ok(()),
        Err(_) => Err(StoreError::Invalid(format!(
            "invalid e-mail address {email:?}"
        ))),
    }
}

pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", &secrets::random_hex(4))
}

/// A phone number tidied, or why it is refused.
fn check_phone(phone: Option<&str>) -> Result<Option<String>> {
    phone
        .filter(|p| !p.trim().is_empty())
        .map(|p| vigil_domain::text::phone(p).map_err(StoreError::Invalid))
        .transpose()
}

/// Adds a facility (issue #6): a commune health station, a district centre, a care home; its
/// phone is the number families are told to call (issue #17).
pub fn add_facility(conn: &Connection, id: &str, name: &str, phone: Option<&str>) -> Result<()> {
    check_id(id)?;
    check_text("facility name", name)?;
    let phone = check_phone(phone)?;
    conn.execute(
        "INSERT INTO facilities (id, name, created_at, phone) VALUES (?1, ?2, ?3, ?4)",
        params![id, name.trim(), now_ms(), phone],
    )
    .map_err(on_unique(|| format!("facility {id} already exists")))?;
    Ok(())
}

/// Every facility with its number of patients.
pub fn facilities(conn: &Connection) -> Result<Vec<vigil_domain::views::FacilityView>> {
    let mut st = conn.prepare(
        "SELECT f.id, f.name, (SELECT count(*) FROM patients p WHERE p.facility_id = f.id),
                f.phone
         FROM facilities f ORDER BY f.id",
    )?;
    let rows = st.query_map([], |r| {
        Ok(vigil_domain::views::FacilityView {
            id: r.get(0)?,
            name: r.get(1)?,
            patients: r.get(2)?,
            phone: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

/// The phone of a patient's facility (the station families call), if it has one.
pub fn station_phone(conn: &Connection, patient_id: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT f.phone FROM patients p JOIN facilities f ON f.id = p.facility_id
             WHERE p.id = ?1",
        )?
        .query_row([patient_id], |r| r.get(0))
        .optional()?
        .flatten())
}

pub(crate) fn require_facility(conn: &Connection, id: &str) -> Result<()> {
    let found: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM facilities WHERE id = ?1)",
        [id],
        |r| r.get(0),
    )?;
    if found {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!("facility {id}")))
    }
}

/// The facility of a patient.
pub fn patient_facility(conn: &Connection, patient_id: &str) -> Result<Option<String>> {
    Ok(conn
        // A removed patient (issue #21) is as unknown as a missing one to pages and the API.
        .prepare_cached("SELECT facility_id FROM patients WHERE id = ?1 AND removed_at IS NULL")?
        .query_row([patient_id], |r| r.get(0))
        .optional()?)
}

/// The facility of an alert's patient.
pub fn alert_facility(conn: &Connection, alert_id: i64) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT p.facility_id FROM alerts a JOIN patients p ON p.id = a.patient_id
             WHERE a.id = ?1",
        )?
        .query_row([alert_id], |r| r.get(0))
        .optional()?)
}

pub fn add_patient(
    conn: &Connection,
    id: Option<&str>,
    name: &str,
    facility: &str,
    area: Option<&str>,
    tags: &[String],
) -> Result<String> {
    let id = id.map(str::to_string).unwrap_or_else(|| new_id("p"));
    check_id(&id)?;
    check_text("patient name", name)?;
    require_facility(conn, facility)?;
    let area = area.map(str::trim).filter(|a| !a.is_empty());
    if let Some(a) = area {
        check_text("area", a)?;
    }
    conn.execute(
        "INSERT INTO patients (id, name, created_at, facility_id, area, tags)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, name.trim(), now_ms(), facility, area, join_tags(tags)?],
    )
    .map_err(on_unique(|| format!("patient {id} already exists")))?;
    Ok(id)
}

/// Tags stored between commas (schema V13): lower case, letters, digits, `-` and `_`.
pub(crate) fn join_tags(tags: &[String]) -> Result<String> {
    let mut out = Vec::new();
    for t in tags {
        let t = t.trim().to_lowercase();
        if t.is_empty()
            || t.len() > 40
            || !t
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        {
            return Err(StoreError::Invalid(format!(
                "tag {t:?}: use 1–40 letters, digits, '-' or '_'"
            )));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(if out.is_empty() {
        String::new()
    } else {
        format!(",{},", out.join(","))
    })
}

pub(crate) fn split_tags(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

const PATIENT_COLUMNS: &str = "id, name, facility_id, area, tags";

fn patient_row(r: &crate::db::Row) -> crate::db::Result<Patient> {
    Ok(Patient {
        id: r.get(0)?,
        name: r.get(1)?,
        facility_id: r.get(2)?,
        area: r.get(3)?,
        tags: split_tags(&r.get::<_, String>(4)?),
    })
}

pub fn patient(conn: &Connection, id: &str) -> Result<Option<Patient>> {
    Ok(conn
        .query_row(
            &format!("SELECT {PATIENT_COLUMNS} FROM patients WHERE id = ?1"),
            [id],
            patient_row,
        )
        .optional()?)
}

/// The patients of the facilities `scope` allows, by name.
pub fn patients(conn: &Connection, scope: &Scope) -> Result<Vec<Patient>> {
    patients_where(conn, scope, None)
}

/// [`patients`], or just patient `only` (if `scope` allows it).
pub fn patients_where(
    conn: &Connection,
    scope: &Scope,
    only: Option<&str>,
) -> Result<Vec<Patient>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {PATIENT_COLUMNS} FROM patients WHERE (id = ?1 OR ?1 IS NULL) AND removed_at IS NULL
         ORDER BY name, id"
    ))?;
    let rows = st.query_map([only], patient_row)?;
    let mut out = Vec::new();
    for p in rows {
        let p = p?;
        if scope.allows(&p.facility_id) {
            out.push(p);
        }
    }
    Ok(out)
}

pub(crate) fn require_patient(conn: &Connection, id: &str) -> Result<()> {
    if patient(conn, id)?.is_none() {
        return Err(StoreError::NotFound(format!("patient {id}")));
    }
    Ok(())
}

/// A person to notify about a patient. `None`s take the defaults (by role, `[notify]`).
#[derive(Debug, Clone)]
pub struct NewContact<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub lang: Lang,
    pub role: ContactRole,
    pub tier: ContactTier,
    /// The least severe alert they are e-mailed about.
    pub min_severity: Option<vigil_domain::Severity>,
    pub quiet_hours: Option<&'a str>,
    pub timezone: Option<&'a str>,
    pub phone: Option<&'a str>,
}

pub fn add_contact(conn: &Connection, patient_id: &str, c: &NewContact<'_>) -> Result<i64> {
    let NewContact {
        name,
        email,
        lang,
        role,
        tier,
        ..
    } = *c;
    require_patient(conn, patient_id)?;
    check_text("contact name", name)?;
    check_email(email)?;
    let phone = check_phone(c.phone)?;
    Ok(conn.query_row(
        "INSERT INTO contacts (patient_id, name, email, lang, role, tier, created_at,
                               min_severity, quiet_hours, timezone, phone)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         RETURNING id",
        params![
            patient_id,
            name,
            email,
            lang.as_str(),
            role.as_str(),
            tier.as_str(),
            now_ms(),
            c.min_severity.map(|s| s.as_str()),
            c.quiet_hours,
            c.timezone,
            phone,
        ],
        |r| r.get(0),
    )?)
}

const CONTACT_COLUMNS: &str =
    "id, patient_id, name, email, lang, role, tier, min_severity, quiet_hours, timezone, phone";

fn contact_row(r: &crate::db::Row) -> crate::db::Result<Contact> {
    Ok(Contact {
        id: r.get(0)?,
        patient_id: r.get(1)?,
        name: r.get(2)?,
        email: r.get(3)?,
        lang: r.get::<_, String>(4)?.parse().unwrap_or_default(),
        role: r.get::<_, String>(5)?.parse().unwrap_or_default(),
        tier: r.get::<_, String>(6)?.parse().unwrap_or_default(),
        min_severity: r.get::<_, Option<String>>(7)?.and_then(|s| s.parse().ok()),
        quiet_hours: r.get(8)?,
        timezone: r.get(9)?,
        phone: r.get(10)?,
    })
}

pub fn contacts(conn: &Connection, patient_id: &str) -> Result<Vec<Contact>> {
    let mut st = conn.prepare(&format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts
         WHERE patient_id = ?1 AND removed_at IS NULL ORDER BY id"
    ))?;
    let rows = st.query_map([patient_id], contact_row)?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

/// One contact by id.
pub fn contact(conn: &Connection, id: i64) -> Result<Option<Contact>> {
    Ok(conn
        .query_row(
            &format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = ?1 AND removed_at IS NULL"),
            [id],
            contact_row,
        )
        .optional()?)
}

/// Every contact, by patient (administration).
pub fn all_contacts(conn: &Connection) -> Result<Vec<Contact>> {
    let mut st = conn.prepare(&format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts WHERE removed_at IS NULL ORDER BY patient_id, id"
    ))?;
    let rows = st.query_map([], contact_row)?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

/// A contact's fields to change; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct ContactChange<'a> {
    pub name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub lang: Option<Lang>,
    pub role: Option<ContactRole>,
    pub tier: Option<ContactTier>,
    /// `Some(None)` clears the setting (the role's default).
    pub min_severity: Option<Option<vigil_domain::Severity>>,
    pub quiet_hours: Option<Option<&'a str>>,
    pub timezone: Option<Option<&'a str>>,
    /// `Some(None)` removes the number.
    pub phone: Option<Option<&'a str>>,
}

/// Changes contact `id` (checked like a new one), audited.
pub fn edit_contact(
    conn: &Connection,
    id: i64,
    c: &ContactChange<'_>,
    actor: &str,
) -> Result<Contact> {
    let Some(old) = contact(conn, id)? else {
        return Err(StoreError::NotFound(format!("contact {id}")));
    };
    if let Some(name) = c.name {
        check_text("contact name", name)?;
    }
    if let Some(email) = c.email {
        check_email(email)?;
    }
    let phone = match c.phone {
        None => old.phone.clone(),
        Some(p) => check_phone(p)?,
    };
    conn.execute(
        "UPDATE contacts SET name = ?2, email = ?3, lang = ?4, role = ?5, tier = ?6,
                             min_severity = ?7, quiet_hours = ?8, timezone = ?9, phone = ?10
         WHERE id = ?1",
        params![
            id,
            c.name.map(str::trim).unwrap_or(&old.name),
            c.email.map(str::trim).unwrap_or(&old.email),
            c.lang.unwrap_or(old.lang).as_str(),
            c.role.unwrap_or(old.role).as_str(),
            c.tier.unwrap_or(old.tier).as_str(),
            c.min_severity
                .unwrap_or(old.min_severity)
                .map(|s| s.as_str()),
            c.quiet_hours
                .map(|q| q.map(str::to_string))
                .unwrap_or(old.quiet_hours),
            c.timezone
                .map(|t| t.map(str::to_string))
                .unwrap_or(old.timezone),
            phone,
        ],
    )?;
    audit(
        conn,
        actor,
        "contact.edit",
        &format!("contact {id} of patient {}", old.patient_id),
    )?;
    Ok(contact(conn, id)?.expect("updated in this transaction"))
}

/// Removes contact `id`: no e-mail, digest or "I'm handling it" link reaches them any more;
/// e-mails already sent keep naming them.
pub fn remove_contact(conn: &Connection, id: i64, actor: &str) -> Result<()> {
    let Some(old) = contact(conn, id)? else {
        return Err(StoreError::NotFound(format!("contact {id}")));
    };
    conn.execute(
        "UPDATE contacts SET removed_at = ?2 WHERE id = ?1",
        params![id, now_ms()],
    )?;
    conn.execute("DELETE FROM digest_items WHERE contact_id = ?1", [id])?;
    // Queued e-mails to them are not sent.
    conn.execute(
        "UPDATE outbox SET failed_at = ?2, cancelled_at = ?2, last_error = 'contact removed'
         WHERE contact_id = ?1 AND sent_at IS NULL AND failed_at IS NULL",
        params![id, now_ms()],
    )?;
    audit(
        conn,
        actor,
        "contact.remove",
        &format!("contact {id} of patient {}", old.patient_id),
    )
}
