//! A real PostgreSQL server for the tests (issue #20), started like Mosquitto: Debian's
//! binaries, a new cluster in a temporary directory, a free loopback port, stopped on drop.
//! Each test that needs one takes its own databases from it.

use crate::util::free_port;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A PostgreSQL program: on `PATH`, else the newest of Debian's `/usr/lib/postgresql/*/bin`.
pub fn pg_bin(name: &str) -> Option<PathBuf> {
    if let Ok(out) = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
    {
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !p.is_empty() {
            return Some(p.into());
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let p = e.path().join("bin").join(name);
            p.exists().then_some((v, p))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p)
}

/// Whether PostgreSQL is installed; in CI its absence fails the test (never a silent skip).
pub fn require_postgres() -> bool {
    let found = pg_bin("initdb").is_some() && pg_bin("postgres").is_some();
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("PostgreSQL is not installed; in CI every test service must be present");
        }
        eprintln!("SKIPPED: PostgreSQL is not installed (scripts/test.sh installs it)");
    }
    found
}

pub struct PgServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
    seq: std::sync::atomic::AtomicU32,
}

/// PostgreSQL refuses to run as root: as root the server runs as Debian's `postgres` user.
fn as_server_user(program: PathBuf) -> Command {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Command::new(program);
    }
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=postgres",
        "--regid=postgres",
        "--init-groups",
        "--reset-env",
    ])
    .arg(program);
    c
}

fn chown_to_server_user(path: &std::path::Path) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let name = std::ffi::CString::new("postgres").unwrap();
    // SAFETY: a valid C string; the result is checked for NULL before use.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(
        !pw.is_null(),
        "no `postgres` user (Debian's postgresql package makes it)"
    );
    // SAFETY: pw is non-null and points to libc's static passwd record.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown the cluster directory");
}

impl PgServer {
    /// A new cluster (`initdb`, trust authentication on loopback) and its server.
    pub fn start() -> PgServer {
        Self::start_opts(false)
    }

    /// As [`PgServer::start`], serving TLS too (`ssl = on`) with a certificate for 127.0.0.1
    /// signed by a test CA; the CA certificate is [`PgServer::ca`].
    pub fn start_tls() -> PgServer {
        Self::start_opts(true)
    }

    /// The test CA's certificate (after [`PgServer::start_tls`]).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("certs/ca.crt")
    }

    fn start_opts(tls: bool) -> PgServer {
        let dir = tempfile::tempdir().expect("temp dir");
        chown_to_server_user(dir.path());
        let data = dir.path().join("data");
        let out = as_server_user(pg_bin("initdb").expect("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "vigil", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if tls {
            let certs = dir.path().join("certs");
            std::fs::create_dir_all(&certs).unwrap();
            crate::util::make_certs(&certs);
            // The server reads its key as its own user, and only a private one.
            for f in ["server.crt", "server.key"] {
                let to = data.join(f);
                std::fs::copy(certs.join(f), &to).unwrap();
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
                chown_to_server_user(&to);
            }
            let conf = data.join("postgresql.conf");
            let mut text = std::fs::read_to_string(&conf).unwrap();
            text.push_str(
                "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
            );
            std::fs::write(&conf, text).unwrap();
        }
        let port = free_port();
        let child = Self::spawn(&dir, port);
        PgServer {
            port,
            dir,
            child,
            seq: Default::default(),
        }
    }

    fn spawn(dir: &tempfile::TempDir, port: u16) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("postgres.log"))
            .expect("postgres log");
        let child = as_server_user(pg_bin("postgres").expect("postgres"))
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("postgres://vigil@127.0.0.1:{port}/postgres");
        while postgres::Client::connect(&url, postgres::NoTls).is_err() {
            assert!(
                Instant::now() < deadline,
                "postgres did not start: {}",
                std::fs::read_to_string(dir.path().join("postgres.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        child
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://vigil@127.0.0.1:{}/{database}", self.port)
    }

    /// A new empty database; its URL.
    pub fn database(&self) -> String {
        let name = format!(
            "vigil_{}",
            self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        self.client("postgres")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        self.url(&name)
    }

    /// A client of `database` (for checks the API does not answer).
    pub fn client(&self, database: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(database), postgres::NoTls).expect("connect")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's fast shutdown (ends sessions, no waiting for clients).
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
