//! Devices: registration, their secrets' hashes, what ingestion looks up, status, battery and
//! clock, disabling and removal (issues #2, #5, #15).

use crate::audit::audit;
use crate::db::{params, Connection, OptionalExtension};
use crate::registry::{check_id, new_id, on_unique, require_patient};
use crate::{now_ms, secrets, Result, StoreError};
use vigil_domain::DeviceKind;

fn device_view(r: &crate::db::Row) -> crate::db::Result<vigil_domain::views::DeviceView> {
    Ok(vigil_domain::views::DeviceView {
        id: r.get(0)?,
        patient_id: r.get(1)?,
        kind: r.get(2)?,
        enabled: r.get(3)?,
        last_seen: r.get::<_, Option<i64>>(4)?.map(super::ms_to_time),
        online: r.get(5)?,
        battery: r.get(6)?,
        clock_skew_at: r.get::<_, Option<i64>>(7)?.map(super::ms_to_time),
    })
}

const DEVICE_VIEW_COLUMNS: &str =
    "id, patient_id, kind, enabled, last_seen, online, battery, clock_skew_at";

/// A patient's devices, by id.
pub fn patient_devices(
    conn: &Connection,
    patient_id: &str,
) -> Result<Vec<vigil_domain::views::DeviceView>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {DEVICE_VIEW_COLUMNS} FROM devices
         WHERE patient_id = ?1 AND removed_at IS NULL ORDER BY id"
    ))?;
    let rows = st.query_map([patient_id], device_view)?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

/// Every device, by patient then id (administration).
pub fn all_devices(conn: &Connection) -> Result<Vec<vigil_domain::views::DeviceView>> {
    let mut st = conn.prepare(&format!(
        "SELECT {DEVICE_VIEW_COLUMNS} FROM devices WHERE removed_at IS NULL ORDER BY patient_id, id"
    ))?;
    let rows = st.query_map([], device_view)?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

/// A device as the ingestion path needs it.
#[derive(Debug, Clone)]
pub struct DeviceRecord {
    pub id: String,
    pub num: i64,
    pub patient_id: String,
    pub patient_num: i64,
    pub kind: DeviceKind,
    pub secret_hash: String,
    pub enabled: bool,
}

/// The stored forms of a device secret.
#[derive(Debug, Clone)]
pub struct SecretHashes {
    /// argon2id, checked by the embedded broker.
    pub argon2: String,
    /// PBKDF2 in Mosquitto's format, exported for an external Mosquitto.
    pub mosquitto: String,
}

impl SecretHashes {
    pub fn of(secret: &str) -> SecretHashes {
        SecretHashes {
            argon2: secrets::hash_device_secret(secret),
            mosquitto: secrets::mosquitto_hash(secret),
        }
    }
}

/// Registers a device with a given secret's hashes (the caller generated and will show the
/// secret).
pub fn add_device(
    conn: &Connection,
    id: Option<&str>,
    patient_id: &str,
    kind: DeviceKind,
    hashes: &SecretHashes,
) -> Result<String> {
    require_patient(conn, patient_id)?;
    let id = id
        .map(str::to_string)
        .unwrap_or_else(|| new_id(kind.as_str()));
    check_id(&id)?;
    conn.execute(
        "INSERT INTO devices (id, patient_id, patient_num, kind, secret_hash, mosquitto_hash,
                              enabled, created_at)
         VALUES (?1, ?2, (SELECT num FROM patients WHERE id = ?2), ?3, ?4, ?5, 1, ?6)",
        params![
            id,
            patient_id,
            kind.as_str(),
            hashes.argon2,
            hashes.mosquitto,
            now_ms()
        ],
    )
    .map_err(on_unique(|| format!("device {id} already exists")))?;
    Ok(id)
}

pub fn device(conn: &Connection, id: &str) -> Result<Option<DeviceRecord>> {
    Ok(conn
        .query_row(
            "SELECT id, num, patient_id, patient_num, kind, secret_hash, enabled
             FROM devices WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, bool>(6)?,
                ))
            },
        )
        .optional()?
        .and_then(
            |(id, num, patient_id, patient_num, kind, secret_hash, enabled)| {
                Some(DeviceRecord {
                    id,
                    num,
                    patient_id,
                    patient_num,
                    kind: kind.parse().ok()?,
                    secret_hash,
                    enabled,
                })
            },
        ))
}

pub fn set_device_status(conn: &Connection, id: &str, online: Option<bool>, at: i64) -> Result<()> {
    match online {
        Some(o) => conn.execute(
            "UPDATE devices SET online = ?2,
               last_seen = CASE WHEN last_seen > ?3 THEN last_seen ELSE ?3 END WHERE id = ?1",
            params![id, o, at],
        )?,
        None => conn.execute(
            "UPDATE devices SET last_seen = CASE WHEN last_seen > ?2 THEN last_seen ELSE ?2 END
             WHERE id = ?1",
            params![id, at],
        )?,
    };
    Ok(())
}

/// Replaces a device's secret hashes (`vigil device rotate-secret`, the demo's restart).
pub fn set_device_secret(conn: &Connection, id: &str, hashes: &SecretHashes) -> Result<()> {
    let n = conn.execute(
        "UPDATE devices SET secret_hash = ?2, mosquitto_hash = ?3 WHERE id = ?1",
        params![id, hashes.argon2, hashes.mosquitto],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("device {id}")));
    }
    Ok(())
}

pub fn set_device_enabled(conn: &Connection, id: &str, enabled: bool) -> Result<()> {
    let n = conn.execute(
        "UPDATE devices SET enabled = ?2 WHERE id = ?1 AND removed_at IS NULL",
        params![id, enabled],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("device {id}")));
    }
    Ok(())
}

/// (device id, Mosquitto hash) of every enabled device, for the password file.
pub fn mosquitto_credentials(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut st = conn.prepare(
        "SELECT id, mosquitto_hash FROM devices
         WHERE enabled = 1 AND mosquitto_hash IS NOT NULL ORDER BY id",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

/// The device's battery level in percent, as last reported.
/// The battery level device `id` last reported, in percent.
pub fn battery(conn: &Connection, id: &str) -> Result<Option<f64>> {
    Ok(conn
        .query_row("SELECT battery FROM devices WHERE id = ?1", [id], |r| {
            r.get::<_, Option<f64>>(0)
        })
        .optional()?
        .flatten())
}

pub fn set_battery(conn: &Connection, id: &str, level: f64, at: i64) -> Result<()> {
    conn.execute(
        "UPDATE devices SET battery = ?2, battery_at = ?3 WHERE id = ?1",
        params![id, level.clamp(0.0, 100.0), at],
    )?;
    Ok(())
}

/// Records that the device's clock was found wrong (surfaced in `vigil device list`).
pub fn mark_clock_skew(conn: &Connection, id: &str, at: i64) -> Result<()> {
    conn.execute(
        "UPDATE devices SET clock_skew_at = ?2 WHERE id = ?1",
        params![id, at],
    )?;
    Ok(())
}

/// Changes device `id` (issue #21): `enabled` (a disabled device cannot connect, and one still
/// connected is dropped at its next message), its expected reporting interval in seconds
/// (`Some(None)`: its kind's). Audited.
pub fn edit_device(
    conn: &Connection,
    id: &str,
    enabled: Option<bool>,
    interval_s: Option<Option<i64>>,
    actor: &str,
) -> Result<()> {
    let n = conn.execute(
        "UPDATE devices SET enabled = CASE WHEN ?2 = 1 THEN 1 WHEN ?2 = 0 THEN 0 ELSE enabled END
         WHERE id = ?1 AND removed_at IS NULL",
        params![id, enabled.map(i64::from).unwrap_or(-1)],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("device {id}")));
    }
    if let Some(interval) = interval_s {
        conn.execute(
            "UPDATE devices SET expected_interval_s = ?2 WHERE id = ?1",
            params![id, interval],
        )?;
    }
    audit(conn, actor, "device.edit", &format!("device {id}"))
}

/// Removes device `id`: it can no longer connect or publish, it leaves the lists and the
/// Mosquitto export; its readings stay, so its id stays taken.
pub fn remove_device(conn: &Connection, id: &str, actor: &str) -> Result<()> {
    let n = conn.execute(
        "UPDATE devices SET removed_at = ?2, enabled = 0, online = 0
         WHERE id = ?1 AND removed_at IS NULL",
        params![id, now_ms()],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("device {id}")));
    }
    audit(conn, actor, "device.remove", &format!("device {id}"))
}
