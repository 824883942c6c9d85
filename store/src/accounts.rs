//! Dashboard users, API tokens, sessions and the administrative audit (issue #6, #15).

use crate::audit::audit;
use crate::db::{params, Connection, OptionalExtension};
use crate::registry::{check_text, on_unique, require_facility, split_tags};
use crate::{now_ms, secrets, Result, StoreError};
use vigil_domain::{Access, Scope};

/// Every dashboard user, by name, with their facilities (administration).
pub fn users(conn: &Connection) -> Result<Vec<vigil_domain::views::UserView>> {
    let sql = format!(
        "SELECT u.name, u.admin, u.lang, u.created_at,
                (SELECT {} FROM
                   (SELECT facility_id FROM user_facilities WHERE user_id = u.id
                    ORDER BY facility_id) f),
                u.disabled_at
         FROM users u ORDER BY u.name",
        conn.concat_agg("f.facility_id", ",")
    );
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map([], |r| {
        let admin: bool = r.get(1)?;
        let facilities: Option<String> = r.get(4)?;
        Ok(vigil_domain::views::UserView {
            name: r.get(0)?,
            admin,
            facilities: if admin {
                Vec::new()
            } else {
                split_tags(&facilities.unwrap_or_default())
            },
            lang: r.get(2)?,
            created_at: super::ms_to_time(r.get(3)?),
            disabled_at: r.get::<_, Option<i64>>(5)?.map(super::ms_to_time),
        })
    })?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

/// Adds a dashboard user. A clinician sees the patients of `facilities`; an admin sees all
/// (their list is ignored).
pub fn add_user(
    conn: &Connection,
    name: &str,
    password_hash: &str,
    admin: bool,
    facilities: &[String],
) -> Result<i64> {
    check_text("user name", name)?;
    for f in facilities {
        require_facility(conn, f)?;
    }
    let id: i64 = conn
        .query_row(
            "INSERT INTO users (name, password_hash, admin, created_at) VALUES (?1, ?2, ?3, ?4)
             RETURNING id",
            params![name, password_hash, admin, now_ms()],
            |r| r.get(0),
        )
        .map_err(on_unique(|| format!("user {name} already exists")))?;
    if !admin {
        for f in facilities {
            conn.execute(
                "INSERT INTO user_facilities (user_id, facility_id) VALUES (?1, ?2)
                 ON CONFLICT DO NOTHING",
                params![id, f],
            )?;
        }
    }
    Ok(id)
}

fn user_scope(conn: &Connection, user_id: i64, admin: bool) -> Result<Scope> {
    if admin {
        return Ok(Scope::All);
    }
    let mut st = conn.prepare_cached(
        "SELECT facility_id FROM user_facilities WHERE user_id = ?1 ORDER BY facility_id",
    )?;
    let rows = st.query_map([user_id], |r| r.get(0))?;
    Ok(Scope::Only(rows.collect::<crate::db::Result<_>>()?))
}

/// (user id, password hash, admin) for a login attempt.
pub fn user_by_name(conn: &Connection, name: &str) -> Result<Option<(i64, String, bool)>> {
    Ok(conn
        .query_row(
            "SELECT id, password_hash, admin FROM users WHERE name = ?1 AND disabled_at IS NULL",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?)
}

pub fn user_count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

/// An API token: without `facility` an operator's (every facility, admin); with one, a
/// clinician-level token for that facility.
pub fn add_api_token(
    conn: &Connection,
    name: &str,
    token: &str,
    facility: Option<&str>,
) -> Result<i64> {
    if let Some(f) = facility {
        require_facility(conn, f)?;
    }
    Ok(conn.query_row(
        "INSERT INTO api_tokens (name, token_hash, created_at, facility_id) VALUES (?1, ?2, ?3, ?4)
         RETURNING id",
        params![name, secrets::sha256_hex(token), now_ms(), facility],
        |r| r.get(0),
    )?)
}

/// Who a valid API token speaks for.
pub fn api_token_access(conn: &Connection, token: &str) -> Result<Option<Access>> {
    Ok(conn
        .query_row(
            "SELECT name, facility_id FROM api_tokens
             WHERE token_hash = ?1 AND revoked_at IS NULL",
            [secrets::sha256_hex(token)],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
        )
        .optional()?
        .map(|(name, facility)| Access {
            name: format!("token:{name}"),
            admin: facility.is_none(),
            scope: facility.map_or(Scope::All, |f| Scope::Only(vec![f])),
            csrf: None,
            lang: None,
            sound: true,
        }))
}

pub fn create_session(
    conn: &Connection,
    user_id: i64,
    token: &str,
    csrf: &str,
    ttl_ms: i64,
) -> Result<()> {
    let now = now_ms();
    conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [now])?;
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, csrf)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![secrets::sha256_hex(token), user_id, now, now + ttl_ms, csrf],
    )?;
    Ok(())
}

/// Who is behind a live session token.
pub fn session_access(conn: &Connection, token: &str) -> Result<Option<Access>> {
    let row = conn
        .prepare_cached(
            "SELECT u.id, u.name, u.admin, s.csrf, u.lang, u.sound FROM sessions s
             JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.disabled_at IS NULL",
        )?
        .query_row(params![secrets::sha256_hex(token), now_ms()], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        })
        .optional()?;
    let Some((id, name, admin, csrf, lang, sound)) = row else {
        return Ok(None);
    };
    Ok(Some(Access {
        name,
        admin,
        scope: user_scope(conn, id, admin)?,
        // Sessions from before schema 11 have none: they must sign in again to change things.
        csrf: Some(csrf.unwrap_or_default()),
        lang: lang.and_then(|l| l.parse().ok()),
        sound: sound != Some(0),
    }))
}

/// Keeps whether a dashboard user hears the red-alert tone (issue #21: per account).
pub fn set_user_sound(conn: &Connection, name: &str, on: bool) -> Result<()> {
    let n = conn.execute(
        "UPDATE users SET sound = ?2 WHERE name = ?1",
        params![name, i64::from(on)],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("user {name}")));
    }
    Ok(())
}

/// Keeps a dashboard user's language with the account (issue #6: chosen per user).
pub fn set_user_lang(conn: &Connection, name: &str, lang: vigil_domain::Lang) -> Result<()> {
    let n = conn.execute(
        "UPDATE users SET lang = ?2 WHERE name = ?1",
        params![name, lang.as_str()],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("user {name}")));
    }
    Ok(())
}

pub fn delete_session(conn: &Connection, token: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM sessions WHERE token_hash = ?1",
        [secrets::sha256_hex(token)],
    )?;
    Ok(())
}

/// Every API token (never its secret): id, name, facility, created, last used, revoked.
pub fn api_tokens(conn: &Connection) -> Result<Vec<vigil_domain::views::TokenView>> {
    let mut st = conn.prepare(
        "SELECT id, name, facility_id, created_at, last_used, revoked_at FROM api_tokens
         ORDER BY id",
    )?;
    let rows = st.query_map([], |r| {
        Ok(vigil_domain::views::TokenView {
            id: r.get(0)?,
            name: r.get(1)?,
            facility_id: r.get(2)?,
            created_at: super::ms_to_time(r.get(3)?),
            last_used: r.get::<_, Option<i64>>(4)?.map(super::ms_to_time),
            revoked_at: r.get::<_, Option<i64>>(5)?.map(super::ms_to_time),
        })
    })?;
    Ok(rows.collect::<crate::db::Result<_>>()?)
}

/// Revokes API token `id`: it stops working at once (each request looks it up).
pub fn revoke_api_token(conn: &Connection, id: i64, actor: &str) -> Result<()> {
    let n = conn.execute(
        "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now_ms()],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!(
            "token {id} (or already revoked)"
        )));
    }
    audit(conn, actor, "token.revoke", &format!("token {id}"))
}

/// Disables or enables dashboard user `name`. Disabling ends every session of theirs (their
/// open live streams notice within seconds, `stream.rs`).
pub fn set_user_enabled(conn: &Connection, name: &str, enabled: bool, actor: &str) -> Result<()> {
    let n = conn.execute(
        "UPDATE users SET disabled_at = CASE WHEN ?2 THEN NULL ELSE CAST(?3 AS BIGINT) END
         WHERE name = ?1",
        params![name, enabled, now_ms()],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("user {name}")));
    }
    if !enabled {
        conn.execute(
            "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?1)",
            [name],
        )?;
    }
    let action = if enabled {
        "user.enable"
    } else {
        "user.disable"
    };
    audit(conn, actor, action, &format!("user {name}"))
}
