//! Starts `vigil` (and other real servers) on free ports and tears them down on drop
//! (mini-redis `start_server` idea; never a fixed port).

#![allow(dead_code)]

use rumqttc::{Client, Connection, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil_simulators::load::{self, LoadConfig, LoadReport, Progress};

/// The binary under test: `$VIGIL_BIN`, else `target/debug/vigil` of this workspace.
pub fn vigil_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("VIGIL_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/vigil");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p vigil-gateway` first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// The simulator beside it: `target/debug/vigil-sim` (scripts/test.sh builds both).
pub fn sim_bin() -> PathBuf {
    let bin = vigil_bin().with_file_name("vigil-sim");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p vigil-simulators` first",
        bin.display()
    );
    bin
}

/// A loopback port nobody listens on, never one this test process handed out before: the
/// kernel may offer a port again as soon as its probe socket closes, and a Vigil given the same
/// port for MQTT and HTTP fails to start (seen once in CI's run of the suite).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind an ephemeral port")
            .local_addr()
            .expect("local addr")
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Whether a missing external tool fails the run (CI) or skips the test loudly (a laptop).
pub fn require_tool(name: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{name} is not installed; in CI every test service must be present");
        }
        eprintln!("SKIPPED: {name} is not installed (scripts/test.sh installs it)");
    }
    found
}

/// A new database on the PostgreSQL server `server` (a URL ending in `/database`); its URL.
fn e2e_database(server: &str) -> String {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "vigil_e2e_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    postgres::Client::connect(server, postgres::NoTls)
        .and_then(|mut c| c.batch_execute(&format!("CREATE DATABASE {name}")))
        .expect("VIGIL_E2E_POSTGRES: create a database");
    let base = server.rsplit_once('/').map_or(server, |(b, _)| b);
    format!("{base}/{name}")
}

/// A running `vigil run` with its own data directory; killed on drop.
pub struct Vigil {
    pub dir: tempfile::TempDir,
    pub http: u16,
    pub mqtt: u16,
    args: Vec<String>,
    pub env: Vec<(String, String)>,
    child: Option<Child>,
    /// An API token for `/metrics`, made on first use.
    metrics_token: std::sync::OnceLock<String>,
    /// Soft and hard `RLIMIT_NOFILE` for the process, when set.
    pub nofile: Option<u64>,
}

impl Vigil {
    pub fn start() -> Vigil {
        Self::start_with(&["run"])
    }

    /// Starts `vigil <args…> --data-dir … --http-addr … --mqtt-addr …` and waits until ready.
    pub fn start_with(args: &[&str]) -> Vigil {
        Self::start_env(args, &[])
    }

    /// As [`Vigil::start_with`], with extra environment variables (e.g. `VIGIL_MQTT_BROKER_URL`).
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Vigil {
        let mut v = Self::prepare(args, env);
        v.launch();
        v
    }

    /// Data directory and ports without a running process: for set-up that must happen first
    /// (admin commands, a broker configured from them). Start it with [`Vigil::launch`].
    pub fn prepare(args: &[&str], env: &[(&str, &str)]) -> Vigil {
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // `VIGIL_E2E_POSTGRES=postgres://user@host:port/db`: every gateway of the run keeps its
        // store in a new database of that server (issue #20: the whole suite on PostgreSQL,
        // by hand; tests that open `vigil.db` themselves do not apply then).
        if let Ok(server) = std::env::var("VIGIL_E2E_POSTGRES") {
            if !env.iter().any(|(k, _)| k == "VIGIL_STORE_URL") {
                env.push(("VIGIL_STORE_URL".into(), e2e_database(&server)));
            }
        }
        Vigil {
            dir: tempfile::tempdir().expect("temp dir"),
            http: free_port(),
            mqtt: free_port(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env,
            child: None,
            metrics_token: std::sync::OnceLock::new(),
            nofile: None,
        }
    }

    pub fn launch(&mut self) {
        self.spawn();
        self.wait_ready();
    }

    /// Starts it and waits only until `/readyz` answers, whatever it says (a test of
    /// readiness itself).
    pub fn launch_unready(&mut self) {
        self.spawn();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match ureq::get(&self.url("/readyz")).call() {
                Ok(_) | Err(ureq::Error::Status(..)) => return,
                Err(_) => {}
            }
            assert!(
                Instant::now() < deadline,
                "vigil did not answer; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("vigil.log"))
            .expect("log file");
        let mut cmd = Command::new(vigil_bin());
        if let Some(n) = self.nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: only setrlimit(2) between fork and exec, as the docs of pre_exec allow.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n as libc::rlim_t,
                        rlim_max: n as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd
            .args(&self.args)
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{}", self.http))
            .arg("--mqtt-addr")
            .arg(format!("127.0.0.1:{}", self.mqtt))
            .env("RUST_LOG", "info")
            // Tests replay readings from fixed past dates; retention is tested on its own
            // (storage.rs) and would otherwise delete them mid-test.
            .env("VIGIL_STORAGE_RAW_RETENTION_DAYS", "0")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start vigil");
        self.child = Some(child);
    }

    /// Kills the process (no clean shutdown: a crash).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the process cleanly (SIGTERM) and waits for it to exit; the exit status and how
    /// long shutdown took. Panics if it is still running after `within`.
    pub fn terminate(&mut self, within: Duration) -> (std::process::ExitStatus, Duration) {
        let mut c = self.child.take().expect("running");
        let started = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        loop {
            if let Some(status) = c.try_wait().expect("wait for vigil") {
                return (status, started.elapsed());
            }
            if started.elapsed() > within {
                let _ = c.kill();
                let _ = c.wait();
                panic!(
                    "vigil still running {within:?} after SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts it again on the same data directory and ports.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The running process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("vigil.log")).unwrap_or_default()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        if self.env.iter().any(|(k, _)| k == "VIGIL_HTTP_TLS_CERT") {
            // HTTPS only: the listener accepting is the sign (the test checks TLS itself).
            while std::net::TcpStream::connect(("127.0.0.1", self.http)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "vigil did not start; log:\n{}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            return;
        }
        while Instant::now() < deadline {
            if let Ok(r) = ureq::get(&self.url("/readyz")).call() {
                if r.status() == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("vigil did not become ready; log:\n{}", self.log());
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http)
    }

    /// Runs an admin subcommand with `--json` against this instance's data directory.
    pub fn admin(&self, args: &[&str]) -> Value {
        let out = self.admin_raw(args, None);
        assert!(
            out.status.success(),
            "vigil {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout of vigil {args:?} is not one JSON object ({e}): {:?}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    pub fn admin_raw(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_vigil_env(args, &self.data_dir(), stdin, &self.env)
    }

    /// GET with a bearer token; returns (status, JSON body).
    pub fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let r = ureq::get(&self.url(path))
            .set("Authorization", &format!("Bearer {token}"))
            .call();
        response(r)
    }

    pub fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let r = ureq::post(&self.url(path))
            .set("Authorization", &format!("Bearer {token}"))
            .send_json(body);
        response(r)
    }

    /// `/metrics`, with an API token (it needs one unless `http.metrics_public`).
    pub fn metrics(&self) -> String {
        let token = self.metrics_token.get_or_init(|| {
            self.admin(&["token", "create", "--name", "metrics"])["token"]
                .as_str()
                .expect("a token")
                .to_string()
        });
        ureq::get(&self.url("/metrics"))
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .expect("metrics")
            .into_string()
            .expect("text")
    }

    pub fn outbox_files(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.data_dir().join("outbox")) {
            Ok(rd) => rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect(),
            Err(_) => vec![],
        }
    }
}

impl Drop for Vigil {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A real Mosquitto broker on a free port with its own config; killed on drop.
pub struct Mosquitto {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Mosquitto {
    /// An open broker (anonymous allowed): device authentication at the broker is the
    /// ingestion issue's (#3) `vigil mosquitto export`.
    pub fn start() -> Mosquitto {
        Self::start_with("")
    }

    /// With extra configuration lines (e.g. queue limits).
    pub fn start_with(extra: &str) -> Mosquitto {
        Self::start_conf(&format!("allow_anonymous true\npersistence false\n{extra}"))
    }

    /// With this configuration besides the listener and logging.
    pub fn start_conf(conf_text: &str) -> Mosquitto {
        let dir = tempfile::tempdir().expect("temp dir");
        // Mosquitto started as root drops to the `mosquitto` user, which must read its files.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        let conf_text = conf_text.replace("{dir}", &dir.path().display().to_string());
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nlog_dest stderr\n{conf_text}\n"),
        )
        .expect("write mosquitto.conf");
        let child = Self::spawn(&dir, port);
        Mosquitto { port, dir, child }
    }

    fn spawn(dir: &tempfile::TempDir, port: u16) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("mosquitto.log"))
            .expect("mosquitto log");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mosquitto");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    /// Stops the broker cleanly (SIGTERM: it saves its persistence file) and starts it again
    /// with the same configuration and port.
    pub fn restart(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        self.child = Self::spawn(&self.dir, self.port);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run_vigil(args: &[&str], data_dir: &Path, stdin: Option<&str>) -> Output {
    run_vigil_env(args, data_dir, stdin, &[])
}

pub fn run_vigil_env(
    args: &[&str],
    data_dir: &Path,
    stdin: Option<&str>,
    env: &[(String, String)],
) -> Output {
    let mut cmd = Command::new(vigil_bin());
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("--json")
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run vigil");
    if let Some(s) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(s.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("vigil output")
}

fn response(r: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    match r {
        Ok(resp) => {
            let status = resp.status();
            (status, resp.into_json().unwrap_or(Value::Null))
        }
        Err(ureq::Error::Status(status, resp)) => (status, resp.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("HTTP request failed: {e}"),
    }
}

/// A registered patient with one device, a family contact and an API token.
pub struct Fixture {
    pub patient: String,
    pub device: String,
    pub password: String,
    pub token: String,
}

pub fn register(v: &Vigil, patient: &str, kind: &str) -> Fixture {
    let p = v.admin(&[
        "patient",
        "add",
        "--name",
        "Nguyễn Văn Test",
        "--id",
        patient,
    ]);
    assert_eq!(p["id"], patient);
    v.admin(&[
        "contact",
        "add",
        "--patient",
        patient,
        "--name",
        "Con gái",
        "--email",
        &format!("family.{patient}@example.org"),
        "--lang",
        "vi",
        "--role",
        "family",
    ]);
    let d = v.admin(&["device", "add", "--patient", patient, "--kind", kind]);
    let t = v.admin(&["token", "create", "--name", &format!("test-{patient}")]);
    Fixture {
        patient: patient.to_string(),
        device: d["id"].as_str().expect("device id").to_string(),
        password: d["password"].as_str().expect("device password").to_string(),
        token: t["token"].as_str().expect("token").to_string(),
    }
}

/// A connected MQTT device client (rumqttc, MQTT 3.1.1).
pub struct Device {
    pub client: Client,
    conn: Connection,
}

#[derive(Debug)]
pub enum ConnectError {
    Refused(String),
}

impl Device {
    pub fn connect(port: u16, user: &str, password: &str) -> Result<Device, ConnectError> {
        // A device may use only its own client ids, `{device id}-…` (docs/mqtt.md).
        Self::connect_as(
            port,
            user,
            password,
            &format!("{user}-test-{}", free_port()),
            true,
        )
    }

    /// With a chosen client id, and a persistent session unless `clean`.
    pub fn connect_as(
        port: u16,
        user: &str,
        password: &str,
        client_id: &str,
        clean: bool,
    ) -> Result<Device, ConnectError> {
        let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
        o.set_clean_session(clean);
        o.set_credentials(user, password);
        o.set_keep_alive(Duration::from_secs(10));
        // Large enough to send oversized payloads on purpose.
        o.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut conn) = Client::new(o, 10);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match conn.recv_timeout(Duration::from_secs(5)) {
                Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => return Ok(Device { client, conn }),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(ConnectError::Refused(e.to_string())),
                Err(_) => break,
            }
        }
        Err(ConnectError::Refused("no CONNACK".into()))
    }

    /// Subscribes and returns whether the broker granted it.
    pub fn subscribe(&mut self, filter: &str) -> bool {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .expect("queue subscribe");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.conn.recv_timeout(Duration::from_secs(5)) {
                Ok(Ok(Event::Incoming(Packet::SubAck(ack)))) => {
                    return ack
                        .return_codes
                        .iter()
                        .all(|c| !matches!(c, rumqttc::SubscribeReasonCode::Failure));
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("MQTT error while waiting for SUBACK: {e}"),
                Err(_) => break,
            }
        }
        panic!("no SUBACK for {filter}");
    }

    /// Whether the connection is still up after `wait`: no disconnect or error meanwhile
    /// (incoming messages are dropped).
    pub fn still_connected(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.conn.recv_timeout(left) {
                Ok(Ok(Event::Incoming(Packet::Disconnect))) | Ok(Err(_)) => return false,
                Ok(Ok(_)) => {}
                Err(_) => break,
            }
        }
        true
    }

    /// Messages received within `wait`.
    pub fn received(&mut self, wait: Duration) -> Vec<String> {
        let mut out = Vec::new();
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.conn.recv_timeout(left) {
                Ok(Ok(Event::Incoming(Packet::Publish(p)))) => out.push(p.topic),
                Ok(Ok(_)) => {}
                _ => break,
            }
        }
        out
    }

    /// Publishes with QoS 1 and waits for the PUBACK (which Vigil sends after storing).
    pub fn publish(&mut self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
            .expect("queue publish");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.conn.recv_timeout(Duration::from_secs(5)) {
                Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => return,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("MQTT error while waiting for PUBACK: {e}"),
                Err(_) => break,
            }
        }
        panic!("no PUBACK for a publish on {topic}");
    }
}

/// A Python interpreter that has `aiosmtpd` (Debian's `python3-aiosmtpd` lives in the system
/// Python, which may not be the first `python3` on the PATH). Panics in CI when there is none;
/// elsewhere `None` skips the test loudly.
pub fn aiosmtpd_python() -> Option<String> {
    for py in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(py)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return Some(py.to_string());
        }
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("aiosmtpd is not installed; in CI every test service must be present");
    }
    eprintln!("SKIPPED: aiosmtpd is not installed (scripts/test.sh installs python3-aiosmtpd)");
    None
}

/// A real SMTP server: aiosmtpd with its Mailbox handler writing to a temp Maildir, on a free
/// loopback port; killed on drop. `tls`: `None`, `Some(("starttls", dir))` or
/// `Some(("smtps", dir))` with `dir/server.crt` and `dir/server.key`.
pub struct Smtpd {
    pub port: u16,
    python: String,
    dir: tempfile::TempDir,
    tls_args: Vec<String>,
    /// `smtpd_auth.py`'s arguments after PORT and MAILDIR, when it runs instead of the CLI.
    auth_args: Option<Vec<String>>,
    child: Option<Child>,
}

impl Smtpd {
    pub fn start(python: &str, tls: Option<(&str, &Path)>) -> Smtpd {
        let mut s = Self::prepare(python, tls);
        s.launch();
        s
    }

    /// Port and Maildir without a running server (an outage from the start).
    pub fn prepare(python: &str, tls: Option<(&str, &Path)>) -> Smtpd {
        let tls_args = match tls {
            None => Vec::new(),
            Some((kind, dir)) => {
                let (c, k) = if kind == "smtps" {
                    ("--smtpscert", "--smtpskey")
                } else {
                    ("--tlscert", "--tlskey")
                };
                vec![
                    c.to_string(),
                    dir.join("server.crt").display().to_string(),
                    k.to_string(),
                    dir.join("server.key").display().to_string(),
                ]
            }
        };
        Smtpd {
            port: free_port(),
            python: python.to_string(),
            dir: tempfile::tempdir().expect("temp dir"),
            tls_args,
            auth_args: None,
            child: None,
        }
    }

    /// Implicit TLS (SMTPS) with a required AUTH login (`smtpd_auth.py`, aiosmtpd's
    /// Controller): what the aiosmtpd command line cannot set.
    pub fn start_smtps_auth(python: &str, certs: &Path, user: &str, password: &str) -> Smtpd {
        let mut s = Self::prepare(python, None);
        s.auth_args = Some(vec![
            certs.join("server.crt").display().to_string(),
            certs.join("server.key").display().to_string(),
            user.to_string(),
            password.to_string(),
        ]);
        s.launch();
        s
    }

    pub fn launch(&mut self) {
        let maildir = self.dir.path().join("mail");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("smtpd.log"))
            .expect("smtpd log");
        let mut cmd = Command::new(&self.python);
        match &self.auth_args {
            None => cmd
                .args(["-m", "aiosmtpd", "-n", "-l"])
                .arg(format!("127.0.0.1:{}", self.port))
                .args(&self.tls_args)
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(&maildir),
            Some(args) => cmd
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/smtpd_auth.py"))
                .arg(self.port.to_string())
                .arg(&maildir)
                .args(args),
        };
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start aiosmtpd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("smtpd.log")).unwrap_or_default()
    }

    /// Where the server writes what it receives.
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// Every message received so far, decoded by `maildir.py` (headers, text and HTML parts),
    /// sorted by Message-ID.
    pub fn messages(&self) -> Vec<Value> {
        let maildir = self.dir.path().join("mail");
        if !maildir.join("new").exists() {
            return Vec::new();
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/maildir.py");
        let out = Command::new(&self.python)
            .arg(script)
            .arg(&maildir)
            .output()
            .expect("run maildir.py");
        assert!(
            out.status.success(),
            "maildir.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        match serde_json::from_slice::<Value>(&out.stdout).expect("maildir.py prints JSON") {
            Value::Array(v) => v,
            other => panic!("maildir.py printed {other}"),
        }
    }

    /// Waits until `n` messages arrived (or panics after 30 s) and returns them.
    pub fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} e-mails after 30 s: {m:?}\n{}",
                m.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A private CA and a server certificate for 127.0.0.1/localhost in `dir` (`ca.crt`,
/// `server.crt`, `server.key`), made with openssl.
pub fn make_certs(dir: &Path) {
    let sh = |cmd: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(dir)
            .output()
            .expect("run sh");
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj '/CN=Vigil Test CA'");
    sh("openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj '/CN=localhost'");
    sh("printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\n' > ext.cnf");
    sh("openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile ext.cnf");
}

/// One HTTPS request with rustls, trusting only `ca_pem`: (status code, raw response head and
/// body). Enough to check the dashboard's TLS without a TLS-capable HTTP client crate.
pub fn https_request(port: u16, ca_pem: &Path, request: &str) -> (u16, String) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use std::io::{Read, Write};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_pem).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn = rustls::ClientConnection::new(
        std::sync::Arc::new(cfg),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// Signs in; (session cookie pair, CSRF token).
pub fn login(v: &Vigil, user: &str, password: &str) -> Result<(String, String), u16> {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let r = match agent
        .post(&v.url("/login"))
        .send_form(&[("username", user), ("password", password)])
    {
        Ok(r) => r,
        Err(ureq::Error::Status(code, _)) => return Err(code),
        Err(e) => panic!("{e}"),
    };
    let value = |name: &str| {
        r.all("set-cookie")
            .iter()
            .find(|c| c.starts_with(name))
            .map(|c| c.split(';').next().unwrap().to_string())
            .unwrap()
    };
    let csrf = value("vigil_csrf=")["vigil_csrf=".len()..].to_string();
    Ok((value("vigil_session="), csrf))
}

/// `/readyz`: (status, body), whatever the status.
pub fn readyz(v: &Vigil) -> (u16, Value) {
    match ureq::get(&v.url("/readyz")).call() {
        Ok(r) => (r.status(), r.into_json().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap()),
        Err(e) => panic!("/readyz: {e}"),
    }
}

/// Registers a scenario file's patients, contacts and devices (`vigil device provision
/// --scenario`), then plays it with `vigil-sim scenario` at `speed`: the number of devices
/// provisioned, the wall time (Unix seconds) just before the player started, and its report.
pub fn play_scenario(v: &Vigil, path: &Path, speed: u32) -> (usize, f64, Value) {
    let out = v.admin_raw(
        &["device", "provision", "--scenario", path.to_str().unwrap()],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let creds = v
        .data_dir()
        .join(format!("scenario-{speed}-credentials.jsonl"));
    std::fs::write(&creds, &out.stdout).unwrap();
    let devices = String::from_utf8_lossy(&out.stdout).lines().count();
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let run = Command::new(sim_bin())
        .args([
            "scenario",
            path.to_str().unwrap(),
            "--broker",
            &format!("mqtt://127.0.0.1:{}", v.mqtt),
            "--credentials",
            creds.to_str().unwrap(),
            "--speed",
            &speed.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["published"], report["acknowledged"], "{report}");
    (devices, start, report)
}

/// The two third-party FHIR validators `scripts/test.sh` installs under `target/fhir-tools`:
/// PyPI's fhir.resources in a virtualenv (its Python) and npm's
/// @asymmetrik/fhir-json-schema-validator (its `node_modules`). In CI both must be there.
pub fn fhir_validators() -> Option<(PathBuf, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fhir-tools");
    let python = root.join("venv/bin/python");
    let modules = root.join("npm/node_modules");
    let ok = python.exists()
        && modules
            .join("@asymmetrik/fhir-json-schema-validator")
            .exists();
    if ok {
        return Some((python, modules));
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "the FHIR validators are not installed under {root:?}; scripts/test.sh installs them"
        );
    }
    eprintln!("SKIPPED: the FHIR validators are not installed (run scripts/test.sh once)");
    None
}

/// PyPI's openapi-spec-validator (OpenAPI 3.0 schema, `$ref`s, unique operationIds), installed
/// by `scripts/test.sh` in the same virtualenv: its Python. In CI it must be there.
pub fn openapi_validator() -> Option<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fhir-tools/venv/bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import openapi_spec_validator"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("openapi-spec-validator is not installed; scripts/test.sh installs it");
    }
    eprintln!("SKIPPED: openapi-spec-validator is not installed (run scripts/test.sh once)");
    None
}

/// Runs both validators over `resources`; the problems each found (empty when valid).
pub fn fhir_validate(tools: &(PathBuf, PathBuf), resources: &[Value]) -> (Value, Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("resources.json");
    std::fs::write(&file, serde_json::to_vec(resources).unwrap()).unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e");
    let py = Command::new(&tools.0)
        .arg(here.join("fhir_validate.py"))
        .arg(&file)
        .output()
        .expect("run fhir_validate.py");
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let js = Command::new("node")
        .arg(here.join("fhir_validate.js"))
        .arg(&file)
        .env("NODE_PATH", &tools.1)
        .output()
        .expect("run fhir_validate.js");
    assert!(
        js.status.success(),
        "{}",
        String::from_utf8_lossy(&js.stderr)
    );
    (
        serde_json::from_slice(&py.stdout).expect("fhir_validate.py prints JSON"),
        serde_json::from_slice(&js.stdout).expect("fhir_validate.js prints JSON"),
    )
}

// Load runs shared by the crash tests and the two-gateway test (issue #20).

/// Registers `n` patients with one hub each; returns device ids and an API token.
pub fn register_devices(v: &Vigil, prefix: &str, n: usize) -> (Vec<String>, String) {
    let mut devices = Vec::new();
    for i in 0..n {
        let p = format!("{prefix}-p{i}");
        v.admin(&[
            "patient",
            "add",
            "--name",
            &format!("{prefix} {i}"),
            "--id",
            &p,
        ]);
        let d = v.admin(&[
            "device",
            "add",
            "--patient",
            &p,
            "--kind",
            "hub",
            "--id",
            &format!("{prefix}-d{i}"),
        ]);
        devices.push(d["id"].as_str().unwrap().to_string());
    }
    let token = v.admin(&["token", "create", "--name", prefix])["token"]
        .as_str()
        .unwrap()
        .to_string();
    (devices, token)
}

/// Starts publishing QoS 1 load (`vigil_simulators::load`) in a background thread over
/// `connections` connections; returns its handle and live progress.
pub fn publish(
    port: u16,
    devices: Vec<String>,
    connections: usize,
    per_device: u64,
    rate: u64,
    start_ms: i64,
) -> (std::thread::JoinHandle<LoadReport>, Arc<Progress>) {
    let progress = Arc::new(Progress::default());
    let cfg = LoadConfig {
        host: "127.0.0.1".into(),
        port,
        connections,
        devices,
        passwords: None,
        messages_per_device: per_device,
        rate,
        qos: QoS::AtLeastOnce,
        start_ms,
        readings_per_message: 1,
        live_ts: false,
        step_ms: 1,
    };
    let p = progress.clone();
    let handle = std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(load::run(cfg, p))
            .expect("load run")
    });
    (handle, progress)
}

pub fn wait_sent(progress: &Progress, at: u64) {
    while progress.sent.load(Relaxed) < at {
        std::thread::sleep(Duration::from_millis(10));
    }
}
