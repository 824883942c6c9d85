//! Changing and removing patients (issue #21: administrators could only add them). A removed
//! patient leaves every list and page and its devices can no longer connect; its readings,
//! alerts, episodes and audit stay (a health record is kept, not deleted), so its id stays
//! taken. Resolving its active alerts is the alert service's job, in the same transaction.

use super::{now_ms, Result, StoreError};
use crate::audit::audit;
use crate::db::{params, Connection};
use crate::registry::{check_text, join_tags, patient, require_facility};
use vigil_domain::Patient;

/// What an edit changes; `None` leaves a field as it is. `area: Some("")` clears the area.
#[derive(Debug, Default)]
pub struct PatientChange<'a> {
    pub name: Option<&'a str>,
    pub facility_id: Option<&'a str>,
    pub area: Option<&'a str>,
    pub tags: Option<&'a [String]>,
}

/// Changes patient `id` (checked like a new one), audited.
pub fn edit_patient(
    conn: &Connection,
    id: &str,
    c: &PatientChange<'_>,
    actor: &str,
) -> Result<Patient> {
    let Some(old) = patient(conn, id)? else {
        return Err(StoreError::NotFound(format!("patient {id}")));
    };
    if let Some(name) = c.name {
        check_text("patient name", name)?;
    }
    if let Some(f) = c.facility_id {
        require_facility(conn, f)?;
    }
    let area = match c.area.map(str::trim) {
        None => old.area.clone(),
        Some("") => None,
        Some(a) => {
            check_text("area", a)?;
            Some(a.to_string())
        }
    };
    let tags = join_tags(c.tags.unwrap_or(&old.tags))?;
    conn.execute(
        "UPDATE patients SET name = ?2, facility_id = ?3, area = ?4, tags = ?5 WHERE id = ?1",
        params![
            id,
            c.name.map(str::trim).unwrap_or(&old.name),
            c.facility_id.unwrap_or(&old.facility_id),
            area,
            tags
        ],
    )?;
    audit(conn, actor, "patient.edit", &format!("patient {id}"))?;
    Ok(patient(conn, id)?.expect("updated in this transaction"))
}

/// Removes patient `id` from monitoring: out of the lists, its devices removed (they can no
/// longer connect). Its record stays.
pub fn remove_patient(conn: &Connection, id: &str, actor: &str) -> Result<()> {
    let now = now_ms();
    let n = conn.execute(
        "UPDATE patients SET removed_at = ?2 WHERE id = ?1 AND removed_at IS NULL",
        params![id, now],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("patient {id}")));
    }
    conn.execute(
        "UPDATE devices SET removed_at = ?2, enabled = 0, online = 0
         WHERE patient_id = ?1 AND removed_at IS NULL",
        params![id, now],
    )?;
    audit(conn, actor, "patient.remove", &format!("patient {id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{add_patient, patients};
    use vigil_domain::Scope;

    #[test]
    fn a_patient_is_edited_and_removed_but_the_record_stays() {
        let c = crate::testing::connection();
        add_patient(
            &c,
            Some("p1"),
            "Bà Một",
            "default",
            Some("Ấp 1"),
            &["copd".into()],
        )
        .unwrap();
        let hashes = crate::devices::SecretHashes {
            argon2: "x".into(),
            mosquitto: "y".into(),
        };
        let d = crate::devices::add_device(
            &c,
            Some("d1"),
            "p1",
            vigil_domain::DeviceKind::Wearable,
            &hashes,
        )
        .unwrap();
        let tags = vec!["heart-failure".to_string()];
        let p = edit_patient(
            &c,
            "p1",
            &PatientChange {
                name: Some(" Bà Một Hai "),
                area: Some(""),
                tags: Some(&tags),
                ..Default::default()
            },
            "admin",
        )
        .unwrap();
        assert_eq!(
            (p.name.as_str(), p.area, p.tags),
            ("Bà Một Hai", None, tags.clone())
        );
        let bad = PatientChange {
            name: Some("<b>\u{0}</b>"),
            ..Default::default()
        };
        assert!(edit_patient(&c, "p1", &bad, "admin").is_err());
        let elsewhere = PatientChange {
            facility_id: Some("nowhere"),
            ..Default::default()
        };
        assert!(matches!(
            edit_patient(&c, "p1", &elsewhere, "admin"),
            Err(StoreError::NotFound(_))
        ));

        // A device is disabled, given an interval, enabled again with its kind's interval.
        let interval = |c: &Connection| -> Option<i64> {
            c.query_row(
                "SELECT expected_interval_s FROM devices WHERE id = 'd1'",
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        crate::devices::edit_device(&c, "d1", Some(false), Some(Some(600)), "admin").unwrap();
        assert!(!crate::devices::device(&c, "d1").unwrap().unwrap().enabled);
        assert_eq!(interval(&c), Some(600));
        crate::devices::edit_device(&c, "d1", None, Some(None), "admin").unwrap();
        assert!(
            !crate::devices::device(&c, "d1").unwrap().unwrap().enabled,
            "left as it was"
        );
        assert_eq!(interval(&c), None);
        crate::devices::edit_device(&c, "d1", Some(true), None, "admin").unwrap();
        assert!(crate::devices::device(&c, "d1").unwrap().unwrap().enabled);
        assert!(matches!(
            crate::devices::edit_device(&c, "nope", Some(true), None, "admin"),
            Err(StoreError::NotFound(_))
        ));

        remove_patient(&c, "p1", "admin").unwrap();
        assert!(patients(&c, &Scope::All).unwrap().is_empty());
        assert_eq!(crate::registry::patient_facility(&c, "p1").unwrap(), None);
        // Its device can no longer connect.
        assert!(!crate::devices::device(&c, &d).unwrap().unwrap().enabled);
        assert!(matches!(
            remove_patient(&c, "p1", "admin"),
            Err(StoreError::NotFound(_))
        ));
        // The record stays: the row, and its id is still taken.
        assert!(patient(&c, "p1").unwrap().is_some());
        assert!(add_patient(&c, Some("p1"), "Again", "default", None, &[]).is_err());
    }
}
