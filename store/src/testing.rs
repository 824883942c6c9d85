//! A real store in a temporary directory for unit tests that need the writer thread and the
//! read pool (`StoreHandle`), not just a connection.

use super::{Location, StoreHandle};
use crate::db::Connection;

/// The PostgreSQL server the store's tests also run against (issue #20): `VIGIL_TEST_POSTGRES`,
/// a URL (`postgres://user@host:port/db`) or libpq `key=value` string of a server where the
/// tests may create databases. Unset: SQLite only. `scripts/test.sh` starts one and runs the
/// store's and the alert service's tests a second time with it.
pub fn postgres_server() -> Option<String> {
    std::env::var("VIGIL_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// Where a fresh test store goes: a new PostgreSQL database when [`postgres_server`] is set,
/// else the SQLite file in `dir`.
pub fn fresh_location(dir: &std::path::Path) -> Location {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let Some(server) = postgres_server() else {
        return Location::File(dir.to_path_buf());
    };
    let name = format!(
        "vigil_test_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    Connection::connect_postgres(&server)
        .and_then(|c| {
            c.execute_batch(&format!("DROP DATABASE IF EXISTS {name}"))?;
            c.execute_batch(&format!("CREATE DATABASE {name}"))
        })
        .unwrap_or_else(|e| panic!("VIGIL_TEST_POSTGRES: cannot create a database: {e}"));
    Location::Postgres(with_database(&server, &name))
}

/// `server` with its database replaced by `name`.
fn with_database(server: &str, name: &str) -> String {
    match server.split_once("://") {
        Some((scheme, rest)) => {
            let (rest, query) = match rest.split_once('?') {
                Some((r, q)) => (r, format!("?{q}")),
                None => (rest, String::new()),
            };
            let host = rest.split('/').next().unwrap_or(rest);
            format!("{scheme}://{host}/{name}{query}")
        }
        None => format!("{server} dbname={name}"),
    }
}

thread_local! {
    static LAST: std::cell::RefCell<Option<Location>> = const { std::cell::RefCell::new(None) };
}

/// Where this thread's last [`connection`] is (to open a second connection to it).
pub fn last_location() -> Option<Location> {
    LAST.with(|l| l.borrow().clone())
}

/// A fresh, migrated, empty store: SQLite in memory, or a new PostgreSQL database when
/// `VIGIL_TEST_POSTGRES` is set.
pub fn connection() -> Connection {
    let at = fresh_location(std::path::Path::new(""));
    LAST.with(|l| *l.borrow_mut() = Some(at.clone()));
    match at {
        at @ Location::Postgres(_) => crate::open_location(&at).unwrap(),
        Location::File(_) => {
            let mut c = Connection::open_in_memory().unwrap();
            crate::schema::migrate(&mut c).unwrap();
            c
        }
    }
}

/// A fresh store with one patient (`p1`, number 1) and one pulse oximeter (`d1`, number 7);
/// its directory is removed when dropped.
pub struct TempStore {
    dir: std::path::PathBuf,
    pub store: StoreHandle,
}

impl TempStore {
    /// Opens the store; call it off the async worker threads (it writes through the writer).
    /// Not `Default`: it creates a directory and a database.
    #[allow(clippy::new_without_default)]
    pub fn new() -> TempStore {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vigil-test-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = StoreHandle::open_at(&fresh_location(&dir)).unwrap();
        store
            .write_blocking(|c| {
                c.execute_batch(
                    "INSERT INTO patients (num, id, name, created_at) VALUES (1, 'p1', 'P', 0);
                     INSERT INTO devices (num, id, patient_id, patient_num, kind, secret_hash, created_at)
                     VALUES (7, 'd1', 'p1', 1, 'pulse_oximeter', 'x', 0);",
                )?;
                Ok(())
            })
            .unwrap();
        TempStore { dir, store }
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// Notification fixtures, shared by the store's tests of notification policy and the gateway's
// tests of the alert service.

/// Notification settings with a public URL (so family e-mails carry links).
pub fn notify_settings() -> vigil_notify::NotifySettings {
    vigil_notify::NotifySettings {
        public_url: Some("https://vigil.example".into()),
        ..Default::default()
    }
}

/// A patient with a primary family contact (vi), a secondary one (en), an on-call
/// clinician, and one open red alert (id 1) whose notifications started at t = 0.
pub fn notify_fixture() -> Connection {
    let c = connection();
    c.execute_batch(
        "INSERT INTO patients (num, id, name, created_at) VALUES (1, 'p1', 'Bà Hoa', 0);
         INSERT INTO contacts (id, patient_id, name, email, lang, role, tier, created_at) VALUES
           (1, 'p1', 'Lan', 'lan@example.org', 'vi', 'family', 'primary', 0),
           (2, 'p1', 'Peter', 'peter@example.org', 'en', 'family', 'secondary', 0),
           (3, 'p1', 'BS Minh', 'minh@example.org', 'vi', 'clinician', 'primary', 0);
         INSERT INTO alerts (id, patient_id, rule, condition, severity, state, opened_at,
                             metric, value, unit, message, last_value, last_at, limit_text)
         VALUES (1, 'p1', 'spo2_red', 'spo2_low', 'red', 'open', 0, 'spo2', 86, '%',
                 'spo2 86 % < 90', 86, 0, '< 90');",
    )
    .unwrap();
    vigil_notify::policy::start(
        &crate::notify::Rows(&c),
        1,
        vigil_domain::Severity::Red,
        &notify_settings(),
        0,
    )
    .unwrap();
    c
}

/// (contact id, subject) of every queued e-mail, in order.
pub fn outbox(c: &Connection) -> Vec<(i64, String)> {
    let mut st = c
        .prepare("SELECT contact_id, subject FROM outbox ORDER BY id")
        .unwrap();
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.map(|r| r.unwrap()).collect()
}

/// (rule, severity) of every alert, in order.
pub fn alert_rules(c: &Connection) -> Vec<(String, String)> {
    let mut st = c
        .prepare("SELECT rule, severity FROM alerts ORDER BY id")
        .unwrap();
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.map(|r| r.unwrap()).collect()
}
