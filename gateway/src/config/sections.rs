//! The configuration's sections (`[smtp]`, `[notify]`, `[http]`, …) and their defaults; every
//! key is in docs/configuration.md.

use super::ConfigError;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// The SMTP relay notification e-mails go through (docs/notifications.md). Without a `host`,
/// e-mails are written to the file outbox instead.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// Relay host name; empty: the file outbox (`email.outbox_dir`).
    pub host: String,
    /// 0: the usual port of `security` (25, 587 or 465).
    pub port: u16,
    /// `none`, `starttls` (RFC 3207) or `tls` (implicit TLS, RFC 8314).
    pub security: String,
    /// For SMTP AUTH; empty: no authentication.
    pub username: String,
    /// Prefer `VIGIL_SMTP_PASSWORD` or `password_file`; never logged.
    pub password: String,
    /// A file whose first line is the password (a mounted secret); wins over `password`.
    pub password_file: String,
    /// Sender address; empty: `email.from`.
    pub from: String,
    /// Extra CA certificate (PEM) that signs the relay's certificate, beside the system roots.
    pub ca_file: String,
    /// Longest one connection or command may take, in seconds: each attempt is time-limited.
    pub timeout_seconds: u32,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: String::new(),
            port: 0,
            security: "starttls".into(),
            username: String::new(),
            password: String::new(),
            password_file: String::new(),
            from: String::new(),
            ca_file: String::new(),
            timeout_seconds: 30,
        }
    }
}

impl SmtpConfig {
    /// The relay password: from `password_file` when set, else `password`.
    pub fn password(&self) -> Result<String, ConfigError> {
        secret(&self.password, &self.password_file)
    }

    pub fn security(&self) -> Option<vigil_notify::outbox::Security> {
        use vigil_notify::outbox::Security;
        match self.security.as_str() {
            "none" => Some(Security::None),
            "starttls" => Some(Security::StartTls),
            "tls" => Some(Security::Tls),
            _ => None,
        }
    }
}

/// Who is told about red alerts, and when (docs/notifications.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Seconds an unacknowledged red alert waits before the secondary contacts are e-mailed.
    pub escalate_after_seconds: u32,
    /// Seconds between reminders to everyone after that, until somebody acknowledges.
    pub repeat_seconds: u32,
    /// Hours an "I'm handling it" link in a family e-mail works.
    pub link_valid_hours: u32,
    /// Leave vital values and thresholds out of e-mails (they say a reading needs attention).
    pub minimal_phi: bool,
    /// Non-critical alerts: at most one e-mail per patient per contact per this duration
    /// (`30m`, `1h`), what happened meanwhile grouped into one digest.
    pub min_interval: String,
    /// No non-critical e-mail in these hours of the contact's local time (`HH:MM-HH:MM`, or
    /// `none`); critical alerts ignore them.
    pub quiet_hours: String,
    /// Contacts' time zone unless they have their own (IANA name).
    pub timezone: String,
    /// An alert that comes back this soon (`30m`) after a person resolved it reopens its
    /// episode instead of starting a new one (issue #17).
    pub reopen_grace: String,
    /// At most one update e-mail per episode conversation per this (`10m`); falls, SOS and the
    /// all-clear go at once (issue #17).
    pub update_interval: String,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            escalate_after_seconds: 600,
            repeat_seconds: 900,
            link_valid_hours: 24,
            minimal_phi: false,
            min_interval: "1h".into(),
            quiet_hours: "22:00-06:00".into(),
            timezone: "Asia/Ho_Chi_Minh".into(),
            reopen_grace: "30m".into(),
            update_interval: "10m".into(),
        }
    }
}

/// The dashboard as its users reach it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    /// Base URL for links in e-mails (`https://vigil.example.org`); empty: `http.public_url`,
    /// and without either, e-mails carry no links.
    pub public_url: String,
    /// IANA time zone the dashboard shows times in (issue #6: Asia/Ho_Chi_Minh, configurable).
    pub timezone: String,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            public_url: String::new(),
            timezone: "Asia/Ho_Chi_Minh".into(),
        }
    }
}

/// Alert rules (docs/rules.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// A rule file replacing the built-in defaults; empty: the defaults. A file that does not
    /// parse stops the start-up with the rule and the problem named.
    pub file: String,
    /// Seconds a `fall` waits for the device's `ok` ("I'm OK") before it raises its alert;
    /// 0 raises at once.
    pub fall_cancel_seconds: u32,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            file: String::new(),
            fall_cancel_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Largest MQTT payload parsed; larger ones are rejected (`payload_too_large`).
    pub max_payload_bytes: u32,
    /// Most readings in one message (`batch_too_large`).
    pub max_readings_per_message: u32,
    /// A reading further in the future is stored at the receive time, flagged `clock_skew`.
    pub max_future_skew_minutes: u32,
    /// A reading older than this on arrival is flagged `late` and raises no real-time alert.
    pub late_after_minutes: u32,
    /// Rejected messages kept for inspection; older ones are dropped.
    pub rejected_keep: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_payload_bytes: 64 * 1024,
            max_readings_per_message: 500,
            max_future_skew_minutes: 5,
            late_after_minutes: 60,
            rejected_keep: 10_000,
        }
    }
}

/// The InfluxDB sink (issue #4, docs/influxdb.md); off while `url` is empty.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InfluxConfig {
    /// `http://host:8086` or `https://…`; empty: no forwarding.
    pub url: String,
    pub org: String,
    pub bucket: String,
    /// API token. Prefer `VIGIL_INFLUXDB_TOKEN` or `token_file`; never logged.
    pub token: String,
    /// A file whose first line is the token; wins over `token`.
    pub token_file: String,
    /// CA certificate (PEM) for an `https://` server with a private CA; empty: system roots.
    pub ca_file: String,
    /// Most points in one write request.
    pub batch_size: u32,
    /// How often the forwarder looks for new points when it is idle, in milliseconds.
    pub flush_interval_ms: u32,
    /// Timeout of one write request, in seconds.
    pub timeout_seconds: u32,
    /// Compress request bodies (the `influxdb2` crate uses gzip's best, slowest level): worth it
    /// over a WAN, a CPU cost on a LAN (docs/benchmarks.md).
    pub gzip: bool,
}

// Hand-written so that the token can never reach a log line through `{:?}`.
impl std::fmt::Debug for InfluxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfluxConfig")
            .field("url", &self.url)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("token", &if self.token.is_empty() { "" } else { "***" })
            .field("batch_size", &self.batch_size)
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
    }
}

impl Default for InfluxConfig {
    fn default() -> Self {
        InfluxConfig {
            url: String::new(),
            org: String::new(),
            bucket: String::new(),
            token: String::new(),
            token_file: String::new(),
            ca_file: String::new(),
            batch_size: 5000,
            flush_interval_ms: 1000,
            timeout_seconds: 10,
            gzip: true,
        }
    }
}

impl InfluxConfig {
    pub fn enabled(&self) -> bool {
        !self.url.is_empty()
    }

    pub fn token(&self) -> Result<String, ConfigError> {
        secret(&self.token, &self.token_file)
    }
}

/// The FHIR push (issue #18, docs/fhir.md): new readings sent as `transaction` Bundles to an
/// EHR's FHIR endpoint, store-and-forward; off while `push_url` is empty.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FhirConfig {
    /// The FHIR server's base (`https://ehr.example/fhir`): Bundles are POSTed there.
    pub push_url: String,
    /// Bearer token for it. Prefer `VIGIL_FHIR_TOKEN` or `token_file`; never logged.
    pub token: String,
    /// A file whose first line is the token; wins over `token`.
    pub token_file: String,
    /// CA certificate (PEM) for a server with a private CA; empty: system roots.
    pub ca_file: String,
    /// Most readings in one Bundle.
    pub batch_size: u32,
    /// How often the pusher looks for new readings when it is idle, in milliseconds.
    pub flush_interval_ms: u32,
    /// Timeout of one request, in seconds.
    pub timeout_seconds: u32,
}

// Hand-written so that the token can never reach a log line through `{:?}`.
impl std::fmt::Debug for FhirConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FhirConfig")
            .field("push_url", &self.push_url)
            .field("token", &if self.token.is_empty() { "" } else { "***" })
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl Default for FhirConfig {
    fn default() -> Self {
        FhirConfig {
            push_url: String::new(),
            token: String::new(),
            token_file: String::new(),
            ca_file: String::new(),
            batch_size: 500,
            flush_interval_ms: 1000,
            timeout_seconds: 10,
        }
    }
}

impl FhirConfig {
    pub fn enabled(&self) -> bool {
        !self.push_url.is_empty()
    }

    pub fn token(&self) -> Result<String, ConfigError> {
        secret(&self.token, &self.token_file)
    }
}

/// `[store]` (issue #20): where the store lives.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `postgres://user:password@host:port/database`: PostgreSQL, which several gateways can
    /// share (docs/scaling.md). Empty: SQLite in `data_dir`. Holds a password: prefer
    /// `VIGIL_STORE_URL` or `url_file`; logged only without the password.
    pub url: String,
    /// A file whose first line is the URL.
    pub url_file: String,
}

impl StoreConfig {
    pub fn url(&self) -> Result<String, ConfigError> {
        secret(&self.url, &self.url_file)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Days raw readings (and minute rollups) are kept; 0 keeps them forever.
    pub raw_retention_days: u32,
    /// Days hour rollups are kept; 0 keeps them forever.
    pub rollup_retention_days: u32,
    /// Minutes between retention passes.
    pub prune_interval_minutes: u32,
    /// Free space (MiB) the data directory's filesystem must keep for `/readyz` to report the
    /// store ready (issue #15: a full disk stops every acknowledgement).
    pub min_free_mb: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            raw_retention_days: 30,
            rollup_retention_days: 730,
            prune_interval_minutes: 60,
            min_free_mb: 64,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Dashboard and API listen address.
    pub addr: SocketAddr,
    /// The dashboard's address as users reach it (for links in e-mails); empty for none.
    pub public_url: String,
    /// How long a dashboard login lasts, in hours.
    pub session_ttl_hours: u32,
    /// Certificate chain (PEM, leaf first): with `tls_key`, the dashboard and API are served
    /// over HTTPS only; empty: plain HTTP (behind a TLS-terminating proxy, say).
    pub tls_cert: String,
    /// The certificate's private key (PEM).
    pub tls_key: String,
    /// Serve `/metrics` without credentials (a Prometheus on a trusted network). Off: it needs
    /// an API token like the JSON API (issue #6: only `/healthz`, `/readyz`, the login page and
    /// static assets are open). It carries counts only, never patient data.
    pub metrics_public: bool,
    /// Connections served at once; more wait in the backlog (issue #15). Also capped at a
    /// quarter of the process's descriptor budget, so MQTT and the store keep theirs.
    pub max_connections: u32,
    /// Seconds a connection may take to send a request's headers, and may stay idle between
    /// requests (issue #15: half-sent requests held connections forever).
    pub header_timeout_seconds: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Listen address of the embedded broker (used when `broker_url` is empty).
    pub addr: SocketAddr,
    /// External broker (`mqtt://host:port`); when set, no broker is embedded.
    pub broker_url: String,
    /// Client id at the external broker; stable so the persistent session survives restarts.
    pub client_id: String,
    pub username: String,
    /// Password at the external broker. Prefer the `VIGIL_MQTT_PASSWORD` variable or
    /// `password_file` to writing it here.
    pub password: String,
    /// A file whose first line is the password (e.g. a mounted secret); wins over `password`.
    pub password_file: String,
    /// CA certificate (PEM) to verify the broker with `mqtts://`; empty: the system's roots.
    pub ca_file: String,
    /// Client certificate and key (PEM) for brokers that require one.
    pub client_cert_file: String,
    pub client_key_file: String,
    /// Shared-subscription group (`$share/{group}/…`) so several gateways split the load.
    pub shared_group: String,
    /// QoS 0 messages the gateway cannot keep up with: dropped and counted (`drop`), or left
    /// at the broker by reading no further until it catches up (`block`). Issue #19.
    pub qos0_when_full: Qos0WhenFull,
}

/// `mqtt.qos0_when_full` (the names follow Vector's `buffer.when_full`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Qos0WhenFull {
    /// Drop new QoS 0 messages while the intake is full; `vigil_mqtt_qos0_dropped` counts them.
    Drop,
    /// Stop reading from the broker: TCP pushes back and the broker queues (or drops, by its
    /// own limits).
    Block,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// Sender of notification e-mails.
    pub from: String,
    /// Directory of the file outbox; empty means `<data_dir>/outbox`.
    pub outbox_dir: String,
    /// Domain used in Message-IDs.
    pub message_id_domain: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `vigil=debug,info`; `RUST_LOG` wins when set.
    pub level: String,
}

/// A secret given inline or as the first line of a file (a mounted secret); the file wins.
fn secret(inline: &str, file: &str) -> Result<String, ConfigError> {
    if file.is_empty() {
        return Ok(inline.to_string());
    }
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        path: file.to_string(),
        source,
    })?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: "127.0.0.1:8080".parse().expect("valid literal"),
            public_url: String::new(),
            session_ttl_hours: 12,
            tls_cert: String::new(),
            tls_key: String::new(),
            metrics_public: false,
            max_connections: 512,
            header_timeout_seconds: 10,
        }
    }
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            addr: "127.0.0.1:1883".parse().expect("valid literal"),
            broker_url: String::new(),
            client_id: "vigil-gateway".into(),
            username: String::new(),
            password: String::new(),
            password_file: String::new(),
            ca_file: String::new(),
            client_cert_file: String::new(),
            client_key_file: String::new(),
            shared_group: String::new(),
            qos0_when_full: Qos0WhenFull::Drop,
        }
    }
}

impl MqttConfig {
    /// The broker password: from `password_file` when set, else `password`.
    pub fn password(&self) -> Result<String, ConfigError> {
        secret(&self.password, &self.password_file)
    }
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            from: "Vigil <vigil@localhost>".into(),
            outbox_dir: String::new(),
            message_id_domain: "vigil.local".into(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}
