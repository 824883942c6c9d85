//! The outbound HTTP client settings the InfluxDB sink and the FHIR push share: a request
//! timeout, a short connect timeout, and a private CA when one is configured.

use anyhow::Context as _;
use std::time::Duration;

/// A client builder with `timeout_seconds` and, when `ca_file` is set, that CA (PEM) trusted;
/// `section` names the configuration section in errors (`influxdb`, `fhir`).
pub fn builder(
    section: &str,
    timeout_seconds: u32,
    ca_file: &str,
) -> anyhow::Result<reqwest::ClientBuilder> {
    let mut http = reqwest::ClientBuilder::new()
        .timeout(Duration::from_secs(u64::from(timeout_seconds)))
        .connect_timeout(Duration::from_secs(5));
    if !ca_file.is_empty() {
        let pem = std::fs::read(ca_file)
            .with_context(|| format!("{section}.ca_file: cannot read {ca_file}"))?;
        let ca = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("{section}.ca_file: not a PEM"))?;
        http = http.add_root_certificate(ca);
    }
    Ok(http)
}
