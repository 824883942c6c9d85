//! One connection type over the two back-ends (issue #20): SQLite (the embedded default) and
//! PostgreSQL (the store several gateways share). The store's SQL is written once, in the
//! subset both speak, with SQLite's `?N` placeholders; [`Connection::dialect`] picks the few
//! statements that must differ. The API is the part of rusqlite's the store uses, so the
//! query code reads the same whichever back-end runs it.
//!
//! Two habits keep SQL portable: PostgreSQL types a parameter by its first use, so write
//! `(x = ?1 OR ?1 IS NULL)`, never `(?1 IS NULL OR x = ?1)`; and every selected column is grouped
//! or aggregated (SQLite's bare columns are not SQL).
//!
//! Synchronous on purpose: every store function runs on the writer thread or the blocking
//! pool (`crate::StoreHandle`), never on an async worker.

mod pg;
mod value;

pub use value::{FromValue, Params, ParamsFromIter, ToValue, Value, ValueRef};

/// `params![a, b, …]`: parameters of mixed types.
#[macro_export]
macro_rules! params {
    () => {
        &[] as &[&dyn $crate::db::ToValue]
    };
    ($($p:expr),+ $(,)?) => {
        &[$(&$p as &dyn $crate::db::ToValue),+] as &[&dyn $crate::db::ToValue]
    };
}
pub use crate::params;

/// A migration's SQLite DDL in PostgreSQL's types (`crate::schema`).
pub fn postgres_ddl(sql: &str) -> String {
    pg::ddl(sql)
}

/// A plain client of the PostgreSQL store at `url` (TLS when it says `sslmode=require`), for
/// what the store's connection type does not do (`LISTEN`, `crate::live`).
pub fn postgres_client(url: &str) -> Result<postgres::Client> {
    pg::client(url)
}

/// Parameters from an iterator.
pub fn params_from_iter<I>(iter: I) -> ParamsFromIter<I>
where
    I: IntoIterator,
    I::Item: ToValue,
{
    ParamsFromIter(iter)
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no rows")]
    NoRows,
    #[error("{0}")]
    Sqlite(rusqlite::Error),
    #[error("{}", pg_message(.0))]
    Postgres(postgres::Error),
    #[error("column conversion: {0}")]
    Conversion(String),
}

fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        match e {
            rusqlite::Error::QueryReturnedNoRows => Error::NoRows,
            e => Error::Sqlite(e),
        }
    }
}

impl Error {
    /// A UNIQUE or PRIMARY KEY constraint refused the row.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Error::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => matches!(
                f.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ),
            Error::Postgres(e) => e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }

    /// Another connection holds the lock this statement needs (SQLite's BUSY/LOCKED; for
    /// PostgreSQL a serialization failure or a deadlock, both worth a retry).
    pub fn is_busy(&self) -> bool {
        match self {
            Error::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            Error::Postgres(e) => matches!(
                e.code(),
                Some(c) if *c == postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == postgres::error::SqlState::T_R_DEADLOCK_DETECTED
            ),
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `.optional()`: no row is `None`, as in rusqlite.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection to either back-end.
pub struct Connection {
    inner: Inner,
}

enum Inner {
    Sqlite(rusqlite::Connection),
    /// Boxed: the client and its statement cache are large beside a SQLite handle.
    Postgres(Box<pg::PgConn>),
}

impl From<rusqlite::Connection> for Connection {
    fn from(c: rusqlite::Connection) -> Connection {
        Connection {
            inner: Inner::Sqlite(c),
        }
    }
}

/// A parameter as rusqlite binds it: borrowed, never copied.
struct SqliteParam<'a>(ValueRef<'a>);

impl rusqlite::ToSql for SqliteParam<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::ValueRef as V;
        Ok(rusqlite::types::ToSqlOutput::Borrowed(match self.0 {
            ValueRef::Null => V::Null,
            ValueRef::Int(i) => V::Integer(i),
            ValueRef::Real(f) => V::Real(f),
            ValueRef::Text(s) => V::Text(s.as_bytes()),
            ValueRef::Blob(b) => V::Blob(b),
        }))
    }
}

fn sqlite_params<'a>(values: &'a [&'a dyn ToValue]) -> Vec<SqliteParam<'a>> {
    values.iter().map(|v| SqliteParam(v.to_value())).collect()
}

fn pg_params<'a>(values: &'a [&'a dyn ToValue]) -> Vec<ValueRef<'a>> {
    values.iter().map(|v| v.to_value()).collect()
}

fn bind<'a>(v: &'a [SqliteParam<'a>]) -> rusqlite::ParamsFromIter<&'a [SqliteParam<'a>]> {
    rusqlite::params_from_iter(v)
}

impl Connection {
    /// A private in-memory SQLite database (unit tests).
    pub fn open_in_memory() -> Result<Connection> {
        Ok(rusqlite::Connection::open_in_memory()?.into())
    }

    /// Connects to PostgreSQL (`postgres://user@host:port/db`, libpq's key=value form also
    /// works). Without TLS: the database is reached over loopback or a private network.
    pub fn connect_postgres(url: &str) -> Result<Connection> {
        Ok(Connection {
            inner: Inner::Postgres(Box::new(pg::PgConn::connect(url)?)),
        })
    }

    pub fn dialect(&self) -> Dialect {
        match self.inner {
            Inner::Sqlite(_) => Dialect::Sqlite,
            Inner::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas, backups).
    pub fn as_sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.inner {
            Inner::Sqlite(c) => Some(c),
            Inner::Postgres(_) => None,
        }
    }

    pub fn as_sqlite_mut(&mut self) -> Option<&mut rusqlite::Connection> {
        match &mut self.inner {
            Inner::Sqlite(c) => Some(c),
            Inner::Postgres(_) => None,
        }
    }

    /// Whether the connection is gone (a PostgreSQL server restarted or the network broke);
    /// such a connection is replaced, not reused.
    pub fn is_closed(&self) -> bool {
        match &self.inner {
            Inner::Sqlite(_) => false,
            Inner::Postgres(c) => c.client.borrow().is_closed(),
        }
    }

    /// One of two spellings, by back-end.
    pub fn pick<'s>(&self, sqlite: &'s str, postgres: &'s str) -> &'s str {
        match self.dialect() {
            Dialect::Sqlite => sqlite,
            Dialect::Postgres => postgres,
        }
    }

    /// `SELECT` of the strings in the JSON array parameter `param` (e.g. `?3`), for
    /// `x IN (…)` with a list of any length in one statement.
    pub fn json_strings(&self, param: &str) -> String {
        match self.dialect() {
            Dialect::Sqlite => format!("SELECT value FROM json_each({param})"),
            Dialect::Postgres => {
                format!("SELECT jsonb_array_elements_text(CAST({param} AS jsonb))")
            }
        }
    }

    /// `string_agg` / `group_concat` of `expr` with `sep` (a literal).
    pub fn concat_agg(&self, expr: &str, sep: &str) -> String {
        match self.dialect() {
            Dialect::Sqlite => format!("group_concat({expr}, '{sep}')"),
            Dialect::Postgres => format!("string_agg({expr}, '{sep}')"),
        }
    }

    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    /// A transaction, rolled back unless committed. SQLite's takes the write lock first
    /// (IMMEDIATE), so two writers queue on the busy timeout instead of one failing.
    pub fn transaction(&mut self) -> Result<Transaction<'_>> {
        self.execute_batch(self.pick("BEGIN IMMEDIATE", "BEGIN"))?;
        Ok(Transaction {
            conn: self,
            done: false,
        })
    }

    /// Statements without parameters, separated by `;`.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Inner::Postgres(c) => c.batch(sql),
        }
    }

    pub fn query_row<T, P, F>(&self, sql: &str, params: P, f: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    /// A statement kept prepared on this connection (both back-ends cache by SQL text).
    pub fn prepare_cached(&self, sql: &str) -> Result<Statement<'_>> {
        Ok(Statement {
            inner: match &self.inner {
                Inner::Sqlite(c) => StmtInner::Sqlite(c.prepare_cached(sql)?),
                Inner::Postgres(c) => StmtInner::Postgres(c, c.prepare(sql)?),
            },
        })
    }

    pub fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(Statement {
                inner: StmtInner::SqliteOnce(c.prepare(sql)?),
            }),
            Inner::Postgres(_) => self.prepare_cached(sql),
        }
    }
}

/// An open transaction ([`Connection::transaction`]); use it as the connection.
pub struct Transaction<'c> {
    conn: &'c Connection,
    done: bool,
}

impl Transaction<'_> {
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        self.conn.execute_batch("COMMIT")
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

pub struct Statement<'c> {
    inner: StmtInner<'c>,
}

enum StmtInner<'c> {
    Sqlite(rusqlite::CachedStatement<'c>),
    SqliteOnce(rusqlite::Statement<'c>),
    Postgres(&'c pg::PgConn, postgres::Statement),
}

impl<'c> Statement<'c> {
    fn sqlite(&mut self) -> Option<&mut rusqlite::Statement<'c>> {
        match &mut self.inner {
            StmtInner::Sqlite(s) => Some(s),
            StmtInner::SqliteOnce(s) => Some(s),
            StmtInner::Postgres(..) => None,
        }
    }

    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        if let StmtInner::Postgres(c, st) = &self.inner {
            return params.with_values(|v| c.execute(st, &pg_params(v)).map(|n| n as usize));
        }
        let st = self.sqlite().expect("a SQLite statement");
        params.with_values(|v| Ok(st.execute(bind(&sqlite_params(v)))?))
    }

    pub fn query_row<T, P, F>(&mut self, params: P, f: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> Result<T>,
    {
        let mut rows = self.query(params)?;
        match rows.next()? {
            Some(r) => f(&r),
            None => Err(Error::NoRows),
        }
    }

    /// Each row mapped by `f`.
    pub fn query_map<T, P, F>(&mut self, params: P, f: F) -> Result<MappedRows<'_, F>>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> Result<T>,
    {
        Ok(MappedRows {
            rows: self.query(params)?,
            f,
        })
    }

    pub fn query<P: Params>(&mut self, params: P) -> Result<Rows<'_>> {
        if let StmtInner::Postgres(c, st) = &self.inner {
            let rows = params.with_values(|v| c.query(st, &pg_params(v)))?;
            return Ok(Rows {
                inner: RowsInner::Postgres(rows.into_iter(), None),
            });
        }
        let st = self.sqlite().expect("a SQLite statement");
        let rows = params.with_values(|v| st.query(bind(&sqlite_params(v))))?;
        Ok(Rows {
            inner: RowsInner::Sqlite(rows),
        })
    }
}

/// A query's rows, walked with [`Rows::next`].
pub struct Rows<'s> {
    inner: RowsInner<'s>,
}

enum RowsInner<'s> {
    Sqlite(rusqlite::Rows<'s>),
    /// PostgreSQL's rows arrive whole; the current one is kept to lend it out.
    Postgres(std::vec::IntoIter<postgres::Row>, Option<postgres::Row>),
}

impl Rows<'_> {
    #[allow(clippy::should_implement_trait)] // lends each row: not an `Iterator`
    pub fn next(&mut self) -> Result<Option<Row<'_>>> {
        match &mut self.inner {
            RowsInner::Sqlite(rows) => Ok(rows.next()?.map(|r| Row {
                inner: RowInner::Sqlite(r),
            })),
            RowsInner::Postgres(rows, current) => {
                *current = rows.next();
                Ok(current.as_ref().map(|r| Row {
                    inner: RowInner::Postgres(r),
                }))
            }
        }
    }
}

/// Rows mapped by a function, as an iterator of results.
pub struct MappedRows<'s, F> {
    rows: Rows<'s>,
    f: F,
}

impl<T, F> Iterator for MappedRows<'_, F>
where
    F: FnMut(&Row<'_>) -> Result<T>,
{
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        match self.rows.next() {
            Ok(Some(r)) => Some((self.f)(&r)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// One row of a result.
pub struct Row<'a> {
    inner: RowInner<'a>,
}

enum RowInner<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a postgres::Row),
}

impl Row<'_> {
    /// Column `idx` (from 0) as `T`.
    pub fn get<I: RowIndex, T: FromValue>(&self, idx: I) -> Result<T> {
        let idx = idx.index();
        match &self.inner {
            RowInner::Sqlite(r) => {
                let v = match r.get_ref(idx)? {
                    rusqlite::types::ValueRef::Null => ValueRef::Null,
                    rusqlite::types::ValueRef::Integer(i) => ValueRef::Int(i),
                    rusqlite::types::ValueRef::Real(f) => ValueRef::Real(f),
                    rusqlite::types::ValueRef::Text(t) => ValueRef::Text(
                        std::str::from_utf8(t).map_err(|e| Error::Conversion(e.to_string()))?,
                    ),
                    rusqlite::types::ValueRef::Blob(b) => ValueRef::Blob(b),
                };
                T::from_value(v).map_err(|e| column_error(idx, e))
            }
            RowInner::Postgres(r) => {
                let v: pg::Raw<'_> = r.try_get(idx)?;
                T::from_value(v.0).map_err(|e| column_error(idx, e))
            }
        }
    }
}

/// A column position (only `usize`, so a literal `0` needs no suffix).
pub trait RowIndex {
    fn index(self) -> usize;
}

impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

fn column_error(idx: usize, e: Error) -> Error {
    match e {
        Error::Conversion(m) => Error::Conversion(format!("column {idx}: {m}")),
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Device-supplied text may hold NUL (a binary payload's excerpt, `\u0000` in JSON), which
    /// PostgreSQL text refuses: it is stored with U+FFFD there, never refused (a refused
    /// message would be redelivered for ever).
    #[test]
    fn text_with_nul_is_stored_on_both_back_ends() {
        let c = crate::testing::connection();
        let id: i64 = c
            .query_row(
                "INSERT INTO rejected (device_id, topic, reason, detail, received_at, payload_excerpt)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                params!["d", "t", "malformed_json", "x", 1, "\u{0}\u{1}binary"],
                |r| r.get(0),
            )
            .unwrap();
        let back: String = c
            .query_row(
                "SELECT payload_excerpt FROM rejected WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        assert!(back.ends_with("\u{1}binary"), "{back:?}");
        assert_eq!(back.chars().count(), 8);
    }

    #[test]
    fn numbers_and_null_round_trip_and_missing_rows_are_none() {
        let c = crate::testing::connection();
        let (i, f, n, b): (i64, f64, Option<String>, bool) = c
            .query_row(
                "SELECT count(*) + ?1, CAST(?2 AS DOUBLE PRECISION) * 2, NULL, 1 = 1
                 FROM patients",
                params![41, 1.25],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!((i, f, n, b), (41, 2.5, None, true));
        let none: Option<i64> = c
            .query_row("SELECT num FROM patients WHERE id = ?1", ["nobody"], |r| {
                r.get(0)
            })
            .optional()
            .unwrap();
        assert_eq!(none, None);
    }
}
