//! The writer thread: the only owner of the write connection (style guide §2, "rusqlite
//! blocks"). Jobs arrive over a bounded channel; the thread takes whatever is queued (up to
//! [`GROUP`]), runs each job in its own savepoint inside one transaction, commits once, and only
//! then replies. One fsync covers the whole group, which is what makes ack-after-store cheap.

use super::{Result, StoreError};
use crate::db::Connection;
use crate::Location;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Jobs that may wait for the writer. When full, writers wait (`send().await`), which slows
/// the MQTT sessions that feed them: backpressure reaches the devices instead of memory.
pub const WRITE_QUEUE: usize = 1024;
/// Most jobs in one transaction: bounds commit latency under load.
const GROUP: usize = 512;

type Reply = Box<dyn FnOnce(Option<&str>) + Send>;
/// A job runs against the open transaction, or is told why there is none; it returns whether it
/// succeeded (to keep or roll back its savepoint) and the reply to send after the commit.
type Job = Box<dyn FnOnce(std::result::Result<&Connection, &str>) -> (bool, Reply) + Send>;

pub struct WriterHandle {
    tx: mpsc::Sender<Job>,
    health: Arc<CommitHealth>,
}

/// How the last commit went, for `/readyz` (issue #15, finding 10: a full disk stops every
/// acknowledgement, and readiness must say so).
#[derive(Debug, Default)]
pub struct CommitHealth {
    /// Whether the last group failed to begin or commit.
    failing: AtomicBool,
    /// When the last group was committed or failed (ms since the epoch).
    last_at: AtomicI64,
}

impl CommitHealth {
    fn record(&self, ok: bool) {
        self.failing.store(!ok, Relaxed);
        self.last_at.store(super::now_ms(), Relaxed);
    }
}

pub fn spawn(conn: Connection, at: Location) -> Result<WriterHandle> {
    let (tx, rx) = mpsc::channel::<Job>(WRITE_QUEUE);
    let health = Arc::new(CommitHealth::default());
    let h = health.clone();
    std::thread::Builder::new()
        .name("vigil-store-writer".into())
        .spawn(move || run(conn, &at, rx, &h))
        .map_err(|e| StoreError::Invalid(format!("cannot start writer thread: {e}")))?;
    Ok(WriterHandle { tx, health })
}

fn job<R, F>(f: F) -> (Job, oneshot::Receiver<Result<R>>)
where
    R: Send + 'static,
    F: FnOnce(&Connection) -> Result<R> + Send + 'static,
{
    let (reply_tx, reply_rx) = oneshot::channel();
    let job: Job = Box::new(move |conn| {
        let out = match conn {
            Ok(conn) => f(conn),
            Err(e) => Err(StoreError::Commit(e.to_string())),
        };
        let ok = out.is_ok();
        let reply: Reply = Box::new(move |commit_error: Option<&str>| {
            let out = match commit_error {
                Some(e) => Err(StoreError::Commit(e.to_string())),
                None => out,
            };
            // The caller may have gone away (e.g. a client disconnected); nothing to do then.
            let _ = reply_tx.send(out);
        });
        (ok, reply)
    });
    (job, reply_rx)
}

impl WriterHandle {
    pub async fn write<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let (job, rx) = job(f);
        self.tx.send(job).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    pub fn write_blocking<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let (job, rx) = job(f);
        self.tx.blocking_send(job).map_err(|_| StoreError::Closed)?;
        rx.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Whether the last group failed to commit, and when the last group ended (ms).
    pub fn commit_state(&self) -> (bool, i64) {
        (
            self.health.failing.load(Relaxed),
            self.health.last_at.load(Relaxed),
        )
    }
}

fn run(mut conn: Connection, at: &Location, mut rx: mpsc::Receiver<Job>, health: &CommitHealth) {
    let mut batch: Vec<Job> = Vec::with_capacity(GROUP);
    loop {
        match rx.blocking_recv() {
            Some(j) => batch.push(j),
            None => return, // every handle dropped: shutdown
        }
        while batch.len() < GROUP {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        if conn.is_closed() {
            // PostgreSQL restarted or the network broke: a new session for this group (its
            // jobs fail and are retried by their callers if this fails too).
            match crate::open_location(at) {
                Ok(c) => {
                    tracing::warn!("store connection lost; reconnected");
                    conn = c;
                }
                Err(e) => tracing::error!(error = %e, "store connection lost; reconnecting failed"),
            }
        }
        let (began, replies) = run_group(&conn, &mut batch);
        // Without a transaction the jobs already hold their error.
        let commit_error = if began {
            conn.execute_batch("COMMIT").err().map(|e| e.to_string())
        } else {
            None
        };
        health.record(began && commit_error.is_none());
        if let Some(e) = &commit_error {
            tracing::error!(error = %e, jobs = replies.len(), "store commit failed");
            let _ = conn.execute_batch("ROLLBACK");
        }
        for reply in replies {
            reply(commit_error.as_deref());
        }
    }
}

/// SQLite takes the write lock at the start, so a reader-turned-writer never deadlocks;
/// PostgreSQL locks rows as they are written.
fn begin(conn: &Connection) -> &'static str {
    conn.pick("BEGIN IMMEDIATE", "BEGIN")
}

/// Runs the group's jobs in one transaction; false when it could not even begin (the jobs were
/// told why, and their replies carry that error).
fn run_group(conn: &Connection, jobs: &mut Vec<Job>) -> (bool, Vec<Reply>) {
    if let Err(e) = conn.execute_batch(begin(conn)) {
        tracing::error!(error = %e, "store cannot begin a transaction");
        let msg = e.to_string();
        return (false, jobs.drain(..).map(|j| j(Err(&msg)).1).collect());
    }
    if jobs.len() == 1 {
        // A group of one job needs no savepoint: if it fails, rolling back the whole
        // transaction is the same thing. Spares the savepoint's subjournal writes on the busy
        // external-broker path, where one job carries a whole batch of messages.
        let job = jobs.pop().expect("one job");
        let (ok, reply) = job(Ok(conn));
        if !ok {
            let again = conn.pick("ROLLBACK; BEGIN IMMEDIATE", "ROLLBACK; BEGIN");
            if let Err(e) = conn.execute_batch(again) {
                tracing::error!(error = %e, "store rollback failed");
            }
        }
        return (true, vec![reply]);
    }
    let mut replies = Vec::new();
    for j in jobs.drain(..) {
        // A savepoint per job: one failing job does not undo the others in the group.
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            replies.push(j(Err(&e.to_string())).1);
            continue;
        }
        let (ok, reply) = j(Ok(conn));
        let end = if ok {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        if let Err(e) = conn.execute_batch(end) {
            tracing::error!(error = %e, "store savepoint failed");
        }
        replies.push(reply);
    }
    (true, replies)
}
