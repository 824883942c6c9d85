//! The administrative audit (issue #15): who revoked, disabled, edited or removed what.

use crate::db::{params, Connection};
use crate::{now_ms, Result};

/// Records an administrative change (issue #15: every revocation is audited).
pub fn audit(conn: &Connection, actor: &str, action: &str, target: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO admin_audit (at, actor, action, target) VALUES (?1, ?2, ?3, ?4)",
        params![now_ms(), actor, action, target],
    )?;
    Ok(())
}

/// The administrative audit, newest first: (at ms, actor, action, target).
pub fn audit_log(conn: &Connection, limit: usize) -> Result<Vec<(i64, String, String, String)>> {
    let mut st = conn
        .prepare("SELECT at, actor, action, target FROM admin_audit ORDER BY id DESC LIMIT ?1")?;
    let rows = st.query_map([limit as i64], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}
