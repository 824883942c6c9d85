//! The PostgreSQL side of [`super::Connection`] (issue #20): the synchronous `postgres` client,
//! statements prepared once per connection, SQLite's `?N` placeholders turned into `$N`, and
//! values encoded as the type the server inferred for each parameter.

use super::value::ValueRef;
use super::{Error, Result};
use postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use std::cell::RefCell;
use std::collections::HashMap;
use std::mem::ManuallyDrop;

type BoxError = Box<dyn std::error::Error + Sync + Send>;

pub(crate) struct PgConn {
    /// Dropped by hand (below): closing a client blocks on its own small runtime.
    pub(crate) client: ManuallyDrop<RefCell<postgres::Client>>,
    statements: RefCell<HashMap<String, postgres::Statement>>,
}

impl PgConn {
    pub(crate) fn connect(url: &str) -> Result<PgConn> {
        // The synchronous client blocks on a runtime of its own, which must not happen on an
        // async worker thread (the server opens its store from async code): there, connect
        // from a thread of its own.
        let client = if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                s.spawn(|| client(url))
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })?
        } else {
            client(url)?
        };
        Ok(PgConn {
            client: ManuallyDrop::new(RefCell::new(client)),
            statements: RefCell::new(HashMap::new()),
        })
    }

    /// The prepared form of `sql` (written for SQLite), prepared once per connection.
    pub(crate) fn prepare(&self, sql: &str) -> Result<postgres::Statement> {
        if let Some(st) = self.statements.borrow().get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.borrow_mut().prepare(&placeholders(sql))?;
        self.statements
            .borrow_mut()
            .insert(sql.to_owned(), st.clone());
        Ok(st)
    }

    pub(crate) fn execute(&self, st: &postgres::Statement, params: &[ValueRef<'_>]) -> Result<u64> {
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        Ok(self.client.borrow_mut().execute(st, &refs)?)
    }

    pub(crate) fn query(
        &self,
        st: &postgres::Statement,
        params: &[ValueRef<'_>],
    ) -> Result<Vec<postgres::Row>> {
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        Ok(self.client.borrow_mut().query(st, &refs)?)
    }

    pub(crate) fn batch(&self, sql: &str) -> Result<()> {
        self.client.borrow_mut().batch_execute(sql)?;
        if sql.contains("INSERT INTO") {
            // Rows inserted with explicit ids (fixtures, migrations) do not move an identity
            // column's sequence as they move SQLite's rowid; move them past, so the next
            // generated id cannot collide.
            self.client.borrow_mut().batch_execute(RESYNC_IDS)?;
        }
        Ok(())
    }
}

const RESYNC_IDS: &str = "DO $$
DECLARE r record; m bigint;
BEGIN
  FOR r IN SELECT table_name, column_name FROM information_schema.columns
           WHERE table_schema = current_schema() AND is_identity = 'YES' LOOP
    EXECUTE format('SELECT MAX(%I) FROM %I', r.column_name, r.table_name) INTO m;
    IF m IS NOT NULL THEN
      PERFORM setval(pg_get_serial_sequence(quote_ident(r.table_name), r.column_name), m);
    END IF;
  END LOOP;
END $$;";

/// A client of `url`: over TLS (rustls) when the URL asks `sslmode=require`, verifying the
/// server's certificate and name against the system's roots, or against `sslrootcert=FILE`
/// (libpq's parameter, taken out of the URL here: the client does not know it). Any other
/// `sslmode` (`prefer`, the default, and `disable`) is plain TCP: PostgreSQL's `prefer` would
/// fall back to plain text silently, so TLS is asked for explicitly or not at all.
pub(crate) fn client(url: &str) -> Result<postgres::Client> {
    let (url, root) = take_param(url, "sslrootcert");
    let config: postgres::Config = url
        .parse()
        .map_err(|e: postgres::Error| Error::Conversion(format!("store url: {e}")))?;
    if config.get_ssl_mode() != postgres::config::SslMode::Require {
        return Ok(config.connect(postgres::NoTls)?);
    }
    let mut roots = rustls::RootCertStore::empty();
    match &root {
        Some(file) => {
            use rustls::pki_types::pem::PemObject;
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(file)
                .map_err(|e| Error::Conversion(format!("sslrootcert {file}: {e}")))?;
            for c in certs {
                let c = c.map_err(|e| Error::Conversion(format!("sslrootcert {file}: {e}")))?;
                roots
                    .add(c)
                    .map_err(|e| Error::Conversion(format!("sslrootcert {file}: {e}")))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))?)
}

/// `url` without parameter `name`, and its value: the URL form (`?a=1&name=v`) or libpq's
/// `key=value` form.
fn take_param(url: &str, name: &str) -> (String, Option<String>) {
    // The pairs other than `name`, and `name`'s value.
    let split = |pairs: Vec<&str>| -> (Vec<String>, Option<String>) {
        let mut value = None;
        let mut kept = Vec::new();
        for kv in pairs {
            match kv.split_once('=') {
                Some((k, v)) if k == name => value = Some(v.to_string()),
                _ => kept.push(kv.to_string()),
            }
        }
        (kept, value)
    };
    if let Some((base, query)) = url.split_once('?') {
        let (kept, value) = split(query.split('&').collect());
        let url = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return (url, value);
    }
    if url.contains("://") {
        return (url.to_string(), None);
    }
    let (kept, value) = split(url.split_whitespace().collect());
    (kept.join(" "), value)
}

impl Drop for PgConn {
    fn drop(&mut self) {
        // SAFETY: taken once, here, and never used again.
        let client = unsafe { ManuallyDrop::take(&mut self.client) };
        // The synchronous client closes its session by blocking on a runtime of its own,
        // which panics on an async worker thread — where the last `StoreHandle` may well be
        // dropped. There it is closed on a thread of its own.
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::Builder::new()
                .name("vigil-store-close".into())
                .spawn(move || drop(client));
        } else {
            drop(client);
        }
    }
}

/// `?`, `?N` → `$N`, outside quoted strings and identifiers: the store's SQL is written once,
/// with SQLite's placeholders.
pub(crate) fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    let mut next_bare = 1;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let n = if digits.is_empty() {
                    next_bare
                } else {
                    digits.parse().unwrap_or(next_bare)
                };
                next_bare = next_bare.max(n + 1);
                out.push('$');
                out.push_str(&n.to_string());
            }
            None => out.push(c),
        }
    }
    out
}

/// The SQLite DDL of a migration in PostgreSQL's words: 64-bit integers, double precision,
/// identity columns for SQLite's row-id aliases, no `WITHOUT ROWID`. The migrations are
/// written in the subset where this is all that differs.
pub(crate) fn ddl(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 64);
    for line in sql.lines() {
        let l = line
            .replace(
                "INTEGER PRIMARY KEY AUTOINCREMENT",
                "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            )
            .replace(
                "INTEGER PRIMARY KEY",
                "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            )
            .replace(") WITHOUT ROWID", ")");
        out.push_str(&words(&l));
        out.push('\n');
    }
    out
}

/// `INTEGER` → `BIGINT`, `REAL` → `DOUBLE PRECISION` as whole words.
fn words(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        match word.as_str() {
            "INTEGER" => out.push_str("BIGINT"),
            "REAL" => out.push_str("DOUBLE PRECISION"),
            w => out.push_str(w),
        }
        word.clear();
    };
    for c in line.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

impl ToSql for ValueRef<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, BoxError> {
        match *self {
            ValueRef::Null => Ok(IsNull::Yes),
            ValueRef::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                Type::FLOAT4 => (i as f32).to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    i.to_string().as_str().to_sql(ty, out)
                }
                _ => Err(format!("an integer cannot be sent as {ty}").into()),
            },
            ValueRef::Real(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                Type::FLOAT4 => (f as f32).to_sql(ty, out),
                Type::INT8 if f.fract() == 0.0 => (f as i64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::UNKNOWN => {
                    f.to_string().as_str().to_sql(ty, out)
                }
                _ => Err(format!("a real cannot be sent as {ty}").into()),
            },
            ValueRef::Text(s) => match *ty {
                Type::JSONB => {
                    out.extend_from_slice(&[1]);
                    out.extend_from_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                Type::JSON | Type::BYTEA => {
                    out.extend_from_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                Type::INT8 => s.parse::<i64>()?.to_sql(ty, out),
                // PostgreSQL text cannot hold NUL, which SQLite keeps. Device-supplied text
                // (a rejected payload's excerpt, a JSON string with \u0000) must still be
                // stored, or the message is refused for ever: NUL becomes U+FFFD.
                _ if s.contains('\0') => {
                    out.extend_from_slice(s.replace('\0', "\u{FFFD}").as_bytes());
                    Ok(IsNull::No)
                }
                _ => {
                    out.extend_from_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
            },
            ValueRef::Blob(b) => match *ty {
                Type::BYTEA => b.to_sql(ty, out),
                _ => Err(format!("a blob cannot be sent as {ty}").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Any column, read as the SQLite storage class it corresponds to.
pub(crate) struct Raw<'a>(pub(crate) ValueRef<'a>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Self, BoxError> {
        Ok(Raw(match *ty {
            Type::INT8 => ValueRef::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => ValueRef::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => ValueRef::Int(i16::from_sql(ty, raw)?.into()),
            Type::OID => ValueRef::Int(u32::from_sql(ty, raw)?.into()),
            Type::BOOL => ValueRef::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => ValueRef::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => ValueRef::Real(f32::from_sql(ty, raw)?.into()),
            Type::NUMERIC => numeric(raw)?,
            Type::BYTEA => ValueRef::Blob(raw),
            Type::JSONB => ValueRef::Text(std::str::from_utf8(raw.get(1..).unwrap_or(&[]))?),
            _ => ValueRef::Text(std::str::from_utf8(raw)?),
        }))
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Self, BoxError> {
        Ok(Raw(ValueRef::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// PostgreSQL's binary `numeric` (what `sum` of integers returns): digit count, weight, sign,
/// display scale, then base-10 000 digits (src/backend/utils/adt/numeric.c, `numeric_send`).
fn numeric(raw: &[u8]) -> std::result::Result<ValueRef<'static>, BoxError> {
    let word = |i: usize| -> std::result::Result<u16, BoxError> {
        raw.get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "short numeric".into())
    };
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i16 as i32;
    let sign = word(4)?;
    let dscale = word(6)?;
    if sign == 0xC000 {
        return Ok(ValueRef::Real(f64::NAN));
    }
    let mut v = 0f64;
    for i in 0..ndigits {
        let d = f64::from(word(8 + 2 * i)?);
        v += d * 10_000f64.powi(weight - i as i32);
    }
    if sign == 0x4000 {
        v = -v;
    }
    Ok(if dscale == 0 && v.abs() < 9.0e15 {
        ValueRef::Int(v as i64)
    } else {
        ValueRef::Real(v)
    })
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Error {
        Error::Postgres(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered_outside_quotes() {
        assert_eq!(
            placeholders("SELECT a FROM t WHERE b = ?1 AND c = ?12 AND d = '?1' AND e = ?"),
            "SELECT a FROM t WHERE b = $1 AND c = $12 AND d = '?1' AND e = $13"
        );
        assert_eq!(placeholders("VALUES (?, ?, ?)"), "VALUES ($1, $2, $3)");
    }

    #[test]
    fn sslrootcert_is_taken_out_of_either_form() {
        assert_eq!(
            take_param(
                "postgres://u@h/db?sslmode=require&sslrootcert=/ca.pem",
                "sslrootcert"
            ),
            (
                "postgres://u@h/db?sslmode=require".into(),
                Some("/ca.pem".into())
            )
        );
        assert_eq!(
            take_param("postgres://u@h/db?sslrootcert=/ca.pem", "sslrootcert"),
            ("postgres://u@h/db".into(), Some("/ca.pem".into()))
        );
        assert_eq!(
            take_param("host=h sslrootcert=/ca.pem sslmode=require", "sslrootcert"),
            ("host=h sslmode=require".into(), Some("/ca.pem".into()))
        );
        assert_eq!(take_param("postgres://u@h/db", "sslrootcert").1, None);
    }

    #[test]
    fn ddl_uses_postgres_types() {
        let sql = "CREATE TABLE t (\n  id INTEGER PRIMARY KEY,\n  v REAL NOT NULL,\n  n INTEGER,\n  realm TEXT\n) WITHOUT ROWID;";
        assert_eq!(
            ddl(sql),
            "CREATE TABLE t (\n  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n  v DOUBLE PRECISION NOT NULL,\n  n BIGINT,\n  realm TEXT\n);\n"
        );
    }

    #[test]
    fn numerics_decode() {
        // 12345.67: ndigits 3, weight 1, sign +, dscale 2, digits 1 2345 6700.
        let raw = [0, 3, 0, 1, 0, 0, 0, 2, 0, 1, 0x09, 0x29, 0x1a, 0x2c];
        match numeric(&raw).unwrap() {
            ValueRef::Real(f) => assert!((f - 12345.67).abs() < 1e-9),
            v => panic!("{v:?}"),
        }
        // -20000: ndigits 1, weight 1, sign −, dscale 0, digit 2.
        let raw = [0, 1, 0, 1, 0x40, 0, 0, 0, 0, 2];
        assert_eq!(numeric(&raw).unwrap(), ValueRef::Int(-20000));
    }
}
