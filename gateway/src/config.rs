//! Configuration: defaults < TOML file < `VIGIL_*` environment variables < command-line flags.
//!
//! Every key is documented in `docs/configuration.md`. An environment variable overrides a key
//! by its upper-cased path with `_` between section and key: `[http] addr` is `VIGIL_HTTP_ADDR`,
//! top-level `data_dir` is `VIGIL_DATA_DIR`. A bad file is an error that names the key and the
//! line (toml's error carries both); unknown keys are errors too, so a typo never passes
//! silently.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the database, outbox and other state live.
    pub data_dir: PathBuf,
    pub http: HttpConfig,
    pub mqtt: MqttConfig,
    pub ingest: IngestConfig,
    pub storage: StorageConfig,
    pub influxdb: InfluxConfig,
    pub email: EmailConfig,
    pub smtp: SmtpConfig,
    pub notify: NotifyConfig,
    pub dashboard: DashboardConfig,
    pub rules: RulesConfig,
    pub log: LogConfig,
}

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

    pub fn security(&self) -> Option<vigil_alerting::outbox::Security> {
        use vigil_alerting::outbox::Security;
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

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("vigil-data"),
            http: HttpConfig::default(),
            mqtt: MqttConfig::default(),
            ingest: IngestConfig::default(),
            storage: StorageConfig::default(),
            influxdb: InfluxConfig::default(),
            email: EmailConfig::default(),
            smtp: SmtpConfig::default(),
            notify: NotifyConfig::default(),
            dashboard: DashboardConfig::default(),
            rules: RulesConfig::default(),
            log: LogConfig::default(),
        }
    }
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

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
}

impl Config {
    /// Loads defaults, then `file` (when given), then `VIGIL_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = match file {
            Some(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.display().to_string(),
                source,
            })?,
            None => String::new(),
        };
        let path = file.map(|p| p.display().to_string()).unwrap_or_default();
        // Parse the file on its own first, so its errors point at its own lines.
        let mut cfg: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        cfg.apply_env(env)?;
        cfg.validate()
            .map_err(|message| ConfigError::Parse { path, message })?;
        Ok(cfg)
    }

    /// Overrides keys from `VIGIL_SECTION_KEY` variables. The key set and each key's type come
    /// from the config itself, so a new key is overridable without touching this function.
    fn apply_env(
        &mut self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        let mut table = toml::Table::try_from(&*self).expect("Config serialises to a table");
        let mut changed = false;
        for (var, raw) in env {
            let Some(rest) = var.strip_prefix("VIGIL_") else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            let Some((section, key)) = locate(&table, &rest) else {
                continue; // Not a config key (e.g. VIGIL_BIN used by tests).
            };
            let slot = match &section {
                Some(s) => table
                    .get_mut(s)
                    .and_then(|v| v.as_table_mut())
                    .and_then(|t| t.get_mut(&key)),
                None => table.get_mut(&key),
            }
            .expect("located above");
            *slot = match slot {
                toml::Value::Integer(_) => {
                    toml::Value::Integer(raw.parse().map_err(|_| ConfigError::Env {
                        var: var.clone(),
                        message: "expected an integer".into(),
                    })?)
                }
                toml::Value::Boolean(_) => {
                    toml::Value::Boolean(raw.parse().map_err(|_| ConfigError::Env {
                        var: var.clone(),
                        message: "expected true or false".into(),
                    })?)
                }
                _ => toml::Value::String(raw),
            };
            changed = true;
        }
        if changed {
            *self = table
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Env {
                    var: "VIGIL_*".into(),
                    message: e.message().to_string(),
                })?;
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        let url = &self.mqtt.broker_url;
        if !(url.is_empty() || url.starts_with("mqtt://") || url.starts_with("mqtts://")) {
            return Err(
                "key mqtt.broker_url: expected mqtt://host:port or mqtts://host:port".into(),
            );
        }
        if self.email.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(format!(
                "key email.from: {:?} is not an e-mail address",
                self.email.from
            ));
        }
        if self.smtp.security().is_none() {
            return Err(format!(
                "key smtp.security: {:?} is not one of none, starttls, tls",
                self.smtp.security
            ));
        }
        if !self.smtp.from.is_empty() && self.smtp.from.parse::<lettre::message::Mailbox>().is_err()
        {
            return Err(format!(
                "key smtp.from: {:?} is not an e-mail address",
                self.smtp.from
            ));
        }
        if self.smtp.timeout_seconds == 0 {
            return Err("key smtp.timeout_seconds: must be at least 1".into());
        }
        if self.notify.repeat_seconds == 0 || self.notify.link_valid_hours == 0 {
            return Err(
                "keys notify.repeat_seconds, notify.link_valid_hours: must be positive".into(),
            );
        }
        if vigil_alerting::rulefile::duration_ms(&self.notify.min_interval).is_none() {
            return Err(format!(
                "key notify.min_interval: {:?} is not a duration such as 30m or 1h",
                self.notify.min_interval
            ));
        }
        vigil_alerting::digest::QuietHours::parse_setting(&self.notify.quiet_hours)
            .map_err(|e| format!("key notify.quiet_hours: {e}"))?;
        if self.notify.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(format!(
                "key notify.timezone: {:?} is not an IANA time zone",
                self.notify.timezone
            ));
        }
        if self.dashboard.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(format!(
                "key dashboard.timezone: {:?} is not an IANA time zone",
                self.dashboard.timezone
            ));
        }
        let url = self.public_url();
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err("key dashboard.public_url: expected http://… or https://…".into());
        }
        if self.http.tls_cert.is_empty() != self.http.tls_key.is_empty() {
            return Err("keys http.tls_cert and http.tls_key go together".into());
        }
        if self.http.session_ttl_hours == 0 {
            return Err("key http.session_ttl_hours: must be at least 1".into());
        }
        let st = &self.storage;
        // Hour rollups are what long charts read once raw data is gone: keeping them for less
        // time than the raw data would leave holes in 30-day charts.
        if st.raw_retention_days > 0
            && st.rollup_retention_days > 0
            && st.rollup_retention_days < st.raw_retention_days
        {
            return Err(
                "key storage.rollup_retention_days: must not be shorter than raw_retention_days"
                    .into(),
            );
        }
        let ix = &self.influxdb;
        if ix.enabled() {
            if !(ix.url.starts_with("http://") || ix.url.starts_with("https://")) {
                return Err("key influxdb.url: expected http://host:port or https://…".into());
            }
            if ix.bucket.is_empty() {
                return Err("key influxdb.bucket: required when influxdb.url is set".into());
            }
            if ix.batch_size == 0 || ix.timeout_seconds == 0 || ix.flush_interval_ms == 0 {
                return Err(
                    "keys influxdb.batch_size, timeout_seconds, flush_interval_ms: must be positive"
                        .into(),
                );
            }
        }
        if st.prune_interval_minutes == 0 {
            return Err("key storage.prune_interval_minutes: must be at least 1".into());
        }
        Ok(())
    }

    /// The one zone people read times in — pages, e-mails, the family's link page
    /// (`dashboard.timezone`; validated at load).
    pub fn display_timezone(&self) -> chrono_tz::Tz {
        self.dashboard
            .timezone
            .parse()
            .expect("validated with the config")
    }

    /// Where users reach the dashboard (`dashboard.public_url`, else the older
    /// `http.public_url`), without a trailing `/`; empty when neither is set.
    pub fn public_url(&self) -> &str {
        let u = if self.dashboard.public_url.is_empty() {
            &self.http.public_url
        } else {
            &self.dashboard.public_url
        };
        u.trim_end_matches('/')
    }

    /// The sender of notification e-mails: `smtp.from`, else `email.from`.
    pub fn mail_from(&self) -> &str {
        if self.smtp.from.is_empty() {
            &self.email.from
        } else {
            &self.smtp.from
        }
    }

    pub fn outbox_dir(&self) -> PathBuf {
        if self.email.outbox_dir.is_empty() {
            self.data_dir.join("outbox")
        } else {
            PathBuf::from(&self.email.outbox_dir)
        }
    }
}

/// Finds which (section, key) an upper-cased variable suffix names: `http_addr` →
/// (`http`, `addr`), `data_dir` → (top level, `data_dir`).
fn locate(table: &toml::Table, rest: &str) -> Option<(Option<String>, String)> {
    if table.get(rest).is_some_and(|v| !v.is_table()) {
        return Some((None, rest.to_string()));
    }
    let (section, key) = rest.split_once('_')?;
    let t = table.get(section)?.as_table()?;
    t.get(key)
        .map(|_| (Some(section.to_string()), key.to_string()))
}

#[cfg(test)]
mod tests;
