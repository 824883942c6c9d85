//! `vigil-store`: the store — one SQLite file (WAL) that is the source of truth on this node
//! (docs/storage.md), or a PostgreSQL database several gateways share (issue #20,
//! docs/scaling.md) — and the secrets it keeps only as hashes (`secrets`).
//!
//! - [`StoreHandle`]: the cloneable handle everyone holds. Writes go to one writer thread over a
//!   bounded channel and are group-committed; reads use a small pool of read connections.
//! - [`schema`]: tables and migrations.
//! - [`registry`]: facilities, patients, contacts; [`patient_edits`]: changing and removing
//!   patients; [`devices`]; [`accounts`]: users, API
//!   tokens, dashboard sessions; [`audit`]: the administrative audit.
//! - [`readings`]: readings, events and rejected messages.
//! - [`alerts`]: alerts and their audit trail; [`episodes`]: alerts grouped into episodes.
//! - [`outbox`]: the e-mail outbox.
//! - [`orders`]: per-patient threshold orders, and each patient's rule set.
//! - [`notify`]: escalation schedules, digest items and "I'm handling it" links.
//! - [`leases`]: which gateway does each background duty when several share a PostgreSQL
//!   store; [`locks`]: one transaction at a time per patient across them; [`live`]: what
//!   their commits tell each other's dashboards; [`db`]: the connection over SQLite or
//!   PostgreSQL.
//!
//! Persistence only: what to write is decided by the alert service (`crate::alerts`) and the
//! notification policy (`crate::notify`), in the transaction they are given.
//!
//! Query functions take a `&Connection` so the CLI (a separate process) and the server share
//! them; SQLite's WAL and a busy timeout let both work on the same file at once.

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod burden;
pub mod db;
pub mod devices;
pub mod episodes;
pub mod fhir;
pub mod forward;
pub mod leases;
pub mod live;
pub mod locks;
pub mod notify;
pub mod orders;
pub mod outbox;
pub mod patient_edits;
pub mod pending;
pub mod readings;
pub mod registry;
pub mod rollups;
pub mod rule_states;
pub mod schema;
pub mod secrets;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod watch;
mod writer;

use db::Connection;
use rusqlite::OpenFlags;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] db::Error),
    #[error("{0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the store is shut down")]
    Closed,
    #[error("commit failed: {0}")]
    Commit(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Db(e.into())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How long a statement waits for a lock held by another connection (the CLI, or the writer)
/// before failing. Writes are short, so five seconds means something is wrong.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read connections kept open for reuse.
const READ_POOL: usize = 4;

pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("vigil.db")
}

/// Where the store lives (issue #20): SQLite in the data directory, the embedded default, or a
/// PostgreSQL database several gateways share (`[store] url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `vigil.db` in this data directory.
    File(PathBuf),
    /// A `postgres://` URL (or libpq `key=value` string).
    Postgres(String),
}

impl Location {
    /// PostgreSQL when `url` is given, else the file in `data_dir`.
    pub fn new(data_dir: &Path, url: Option<&str>) -> Location {
        match url.map(str::trim).filter(|u| !u.is_empty()) {
            Some(u) => Location::Postgres(u.to_owned()),
            None => Location::File(data_dir.to_path_buf()),
        }
    }

    /// For logs and errors: the file, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Location::File(d) => db_path(d).display().to_string(),
            Location::Postgres(url) => redact_url(url),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; a `password=` key of the
/// libpq form likewise (secrets never in logs).
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((auth, host)) = rest.rsplit_once('@') {
            if let Some((user, _)) = auth.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
        return url.to_owned();
    }
    url.split_whitespace()
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `f` on a thread of its own when called on an async worker thread: PostgreSQL's
/// synchronous client blocks on a runtime of its own, which tokio forbids there.
fn off_async<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| {
        s.spawn(f)
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Opens the store at `at` and brings the schema up to date.
pub fn open_location(at: &Location) -> Result<Connection> {
    match at {
        Location::File(dir) => open_connection(dir),
        Location::Postgres(url) => {
            let mut conn = Connection::connect_postgres(url)?;
            schema::migrate(&mut conn)?;
            Ok(conn)
        }
    }
}

/// Opens (creating if needed) the database in `data_dir` and brings the schema up to date.
pub fn open_connection(data_dir: &Path) -> Result<Connection> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| StoreError::Invalid(format!("cannot create {}: {e}", data_dir.display())))?;
    // Processes opening a brand-new file at once (admin commands in parallel) can meet
    // SQLITE_BUSY where the busy handler does not apply — switching the new file to WAL takes
    // an exclusive lock without waiting — so the first opening is retried for a while.
    let mut tries = 0;
    loop {
        let mut conn = Connection::from(rusqlite::Connection::open(db_path(data_dir))?);
        match configure(&conn).and_then(|()| Ok(schema::migrate(&mut conn)?)) {
            Ok(()) => return Ok(conn),
            Err(StoreError::Db(e)) if tries < 50 && e.is_busy() => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20 + 10 * tries));
            }
            Err(e) => return Err(e),
        }
    }
}

fn configure(conn: &Connection) -> Result<()> {
    let Some(conn) = conn.as_sqlite() else {
        return Ok(());
    };
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on disk before we PUBACK (docs/architecture.md, invariant 1). NORMAL could lose the
    // last transactions on power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Savepoint subjournals (one per write job in a group) in memory, not in temporary files:
    // they only live until the group commits.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// Read connections (the pool). Reads go through a memory map instead of a read() per page:
/// the ward view touches a few leaf pages per patient, thousands per view, more than the
/// default 2 MB page cache holds, and each miss was a system call (issue #6,
/// docs/benchmarks.md). Address space, not memory: the pages are the OS's file cache, shared
/// by every connection. Writes are unchanged.
fn configure_reader(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "mmap_size", 256i64 * 1024 * 1024)?;
    Ok(())
}

struct Shared {
    writer: writer::WriterHandle,
    location: Location,
    /// Idle read connections. A std Mutex: held only to push/pop, never across `.await`.
    readers: Mutex<Vec<Connection>>,
    /// Async reads running at once. Unbounded, 600 devices connecting together (each looked
    /// up on the blocking pool) opened 918 SQLite connections and 44 MiB of page caches
    /// (heaptrack, docs/benchmarks.md); now they queue as futures.
    reading: tokio::sync::Semaphore,
    /// Tells the checkpoint thread to end with the store.
    checkpointer_stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.checkpointer_stop
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The writer checkpoints by itself only past this many WAL pages (64 MiB); normally the
/// checkpoint thread has long done it.
const WRITER_AUTOCHECKPOINT_PAGES: i64 = 16_384;
/// How often the checkpoint thread copies the WAL into the database. Every 0.5 s cut latency
/// as much but, with the machine saturated (10 000 readings/s and 200 dashboard clients on 2
/// cores), seemed to cost ingest throughput (more, smaller checkpoints, each with its fsync);
/// 2 s kept the latency and the throughput (docs/benchmarks.md).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(2000);

/// Copies committed WAL frames into the database from a connection of its own. SQLite's
/// automatic checkpoint runs inside the commit that crosses 1 000 pages, in the writer thread:
/// at 10 000 readings/s through Mosquitto that was every second or two, and the readings of
/// that commit — and the ones queued behind it — waited for the copy and its fsync: the
/// publish → stored p99 of 250–460 ms (docs/benchmarks.md). A PASSIVE checkpoint takes no
/// lock the writer needs (sqlite.org/wal.html#ckpt), so commits go on meanwhile; durability is
/// unchanged (a commit is durable in the WAL, `synchronous = FULL`).
fn spawn_checkpointer(data_dir: &Path, stop: Arc<std::sync::atomic::AtomicBool>) -> Result<()> {
    let conn = rusqlite::Connection::open(db_path(data_dir))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    std::thread::Builder::new()
        .name("vigil-store-checkpoint".into())
        .spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(CHECKPOINT_EVERY);
                // (busy, WAL pages, pages checkpointed); failures are retried next round.
                let r = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                });
                if let Err(e) = r {
                    tracing::debug!(error = %e, "checkpoint failed; retrying");
                }
            }
        })
        .map_err(|e| StoreError::Invalid(format!("cannot start checkpoint thread: {e}")))?;
    Ok(())
}

/// The cloneable front of the store (rumqttc `AsyncClient` / mini-redis handle style).
#[derive(Clone)]
pub struct StoreHandle {
    shared: Arc<Shared>,
}

impl StoreHandle {
    /// Opens the store and starts its writer thread. The thread ends when the last handle drops.
    pub fn open(data_dir: &Path) -> Result<StoreHandle> {
        StoreHandle::open_at(&Location::File(data_dir.to_path_buf()))
    }

    /// Opens the store at `at`: the SQLite file, or a PostgreSQL database (issue #20).
    pub fn open_at(at: &Location) -> Result<StoreHandle> {
        let conn = off_async(|| open_location(at))?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if let (Some(c), Location::File(data_dir)) = (conn.as_sqlite(), at) {
            // Checkpoints run beside the writer (below); the writer's own automatic
            // checkpoint stays only as a backstop should they fall far behind.
            c.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)?;
            spawn_checkpointer(data_dir, stop.clone())?;
        }
        let writer = writer::spawn(conn, at.clone())?;
        Ok(StoreHandle {
            shared: Arc::new(Shared {
                writer,
                location: at.clone(),
                readers: Mutex::new(Vec::new()),
                reading: tokio::sync::Semaphore::new(READ_POOL),
                checkpointer_stop: stop,
            }),
        })
    }

    /// Runs `f` in the writer thread inside the next group commit; resolves after the commit.
    pub async fn write<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        self.shared.writer.write(f).await
    }

    /// [`StoreHandle::write`] for blocking callers (never call it on an async worker thread).
    pub fn write_blocking<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        self.shared.writer.write_blocking(f)
    }

    /// Runs `f` on a read connection on the blocking pool.
    pub async fn read<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let _permit = self
            .shared
            .reading
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.read_blocking(f))
            .await
            .map_err(|e| StoreError::Invalid(format!("read task failed: {e}")))?
    }

    /// Runs `f` on a read connection in the calling (blocking) thread.
    pub fn read_blocking<R, F>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&Connection) -> Result<R>,
    {
        let conn = self.take_reader()?;
        let out = f(&conn);
        let mut pool = self
            .shared
            .readers
            .lock()
            .expect("pool lock is never poisoned: no panics while held");
        if pool.len() < READ_POOL && !conn.is_closed() {
            pool.push(conn);
        }
        out
    }

    fn take_reader(&self) -> Result<Connection> {
        if let Some(c) = self
            .shared
            .readers
            .lock()
            .expect("pool lock is never poisoned: no panics while held")
            .pop()
        {
            return Ok(c);
        }
        match &self.shared.location {
            Location::File(dir) => {
                let conn = rusqlite::Connection::open_with_flags(
                    db_path(dir),
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure_reader(&conn)?;
                Ok(conn.into())
            }
            Location::Postgres(url) => Ok(Connection::connect_postgres(url)?),
        }
    }

    /// Where this store lives.
    pub fn location(&self) -> &Location {
        &self.shared.location
    }

    /// The back-end's SQL dialect.
    pub fn dialect(&self) -> db::Dialect {
        match self.shared.location {
            Location::File(_) => db::Dialect::Sqlite,
            Location::Postgres(_) => db::Dialect::Postgres,
        }
    }

    /// Whether the store can take writes, for `/readyz`: the writer runs, its last commit
    /// succeeded and a read answers. When the last commit failed, or none happened for a while,
    /// a probe commit (one row rewritten) asks again, so readiness follows a full disk both
    /// ways even while no reading arrives (issue #15, finding 10). Blocking.
    pub fn is_usable(&self) -> bool {
        if self.shared.writer.is_closed() {
            return false;
        }
        let (failing, last_at) = self.shared.writer.commit_state();
        if failing || now_ms() - last_at > PROBE_IDLE_MS {
            let probe = self.write_blocking(|c| {
                c.execute(
                    "INSERT INTO store_probe (id, at) VALUES (1, ?1)
                     ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                    [now_ms()],
                )?;
                Ok(())
            });
            // The probe's reply carries its commit's outcome.
            if probe.is_err() {
                return false;
            }
        }
        self.read_blocking(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .is_ok()
    }
}

/// A store that has not committed for this long is probed before it is called ready.
const PROBE_IDLE_MS: i64 = 10_000;

/// This process among the gateways sharing a store: host, process id and a random part (a
/// restarted process is another node). Names lease holders and the origin of notifications.
pub fn node_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "gateway".into());
        format!("{host}/{}/{}", std::process::id(), secrets::random_hex(3))
    })
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn ms_to_time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::testing::TempStore;
    use std::time::{Duration, Instant};

    #[test]
    fn the_checkpoint_thread_moves_commits_into_the_database_file() {
        let t = TempStore::new();
        let super::Location::File(dir) = t.store.location().clone() else {
            return; // SQLite only
        };
        let db = super::db_path(&dir);
        let size = || std::fs::metadata(&db).unwrap().len();
        let before = size();
        // About 2 MiB in a few commits: far below the writer's own checkpoint threshold, so
        // only the checkpoint thread can bring it into the main file.
        for _ in 0..4 {
            t.store
                .write_blocking(|c| {
                    c.execute_batch(
                        "CREATE TABLE IF NOT EXISTS filler (x BLOB);
                         INSERT INTO filler SELECT randomblob(4096)
                           FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 128) SELECT i FROM n);",
                    )?;
                    Ok(())
                })
                .unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while size() < before + 2_000_000 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(size() >= before + 2_000_000, "{} → {}", before, size());
    }
}
