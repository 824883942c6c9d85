//! Configuration: defaults < TOML file < `VIGIL_*` environment variables < command-line flags.
//!
//! Every key is documented in `docs/configuration.md`. An environment variable overrides a key
//! by its upper-cased path with `_` between section and key: `[http] addr` is `VIGIL_HTTP_ADDR`,
//! top-level `data_dir` is `VIGIL_DATA_DIR`. A bad file is an error that names the key and the
//! line (toml's error carries both); unknown keys are errors too, so a typo never passes
//! silently.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

mod sections;
pub use sections::*;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the database, outbox and other state live.
    pub data_dir: PathBuf,
    pub http: HttpConfig,
    pub mqtt: MqttConfig,
    pub ingest: IngestConfig,
    /// `[store]`: SQLite (default) or PostgreSQL (issue #20).
    pub store: StoreConfig,
    pub storage: StorageConfig,
    pub influxdb: InfluxConfig,
    /// `[fhir]`: the FHIR push (issue #18).
    pub fhir: FhirConfig,
    pub email: EmailConfig,
    pub smtp: SmtpConfig,
    /// `[notify]`; `[notifications]` is the same section (the name issue #17 uses).
    #[serde(alias = "notifications")]
    pub notify: NotifyConfig,
    pub dashboard: DashboardConfig,
    pub rules: RulesConfig,
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("vigil-data"),
            http: HttpConfig::default(),
            mqtt: MqttConfig::default(),
            ingest: IngestConfig::default(),
            store: StoreConfig::default(),
            storage: StorageConfig::default(),
            influxdb: InfluxConfig::default(),
            fhir: FhirConfig::default(),
            email: EmailConfig::default(),
            smtp: SmtpConfig::default(),
            notify: NotifyConfig::default(),
            dashboard: DashboardConfig::default(),
            rules: RulesConfig::default(),
            log: LogConfig::default(),
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
        for (key, value) in [
            ("reopen_grace", &self.notify.reopen_grace),
            ("update_interval", &self.notify.update_interval),
        ] {
            if vigil_domain::span::parse_ms(value).is_err() {
                return Err(format!(
                    "key notify.{key}: {value:?} is not a duration such as 10m"
                ));
            }
        }
        vigil_notify::digest::QuietHours::parse_setting(&self.notify.quiet_hours)
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
        let fh = &self.fhir;
        if fh.enabled() {
            if !(fh.push_url.starts_with("http://") || fh.push_url.starts_with("https://")) {
                return Err("key fhir.push_url: expected http://… or https://…".into());
            }
            if fh.batch_size == 0 || fh.timeout_seconds == 0 || fh.flush_interval_ms == 0 {
                return Err(
                    "keys fhir.batch_size, timeout_seconds, flush_interval_ms: must be positive"
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
    /// Where the store lives: `[store] url`, else SQLite in `data_dir`.
    pub fn store_location(&self) -> Result<vigil_store::Location, ConfigError> {
        let url = self.store.url()?;
        Ok(vigil_store::Location::new(
            &self.data_dir,
            Some(url.as_str()),
        ))
    }

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
