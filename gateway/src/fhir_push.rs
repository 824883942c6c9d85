//! The FHIR push (issue #18, docs/fhir.md): new readings, queued in the transaction that stored
//! them (`store::fhir::Queue`), are POSTed to `[fhir] push_url` as `transaction` Bundles of
//! conditional updates — the Patients and Devices they name, then their Observations.
//!
//! Store-and-forward like the InfluxDB sink: queue rows go only after the server answered 2xx,
//! so a crash or an outage resends at most the Bundle in flight, which the conditional updates
//! absorb (the same reading is the same Observation: nothing is made twice). Network errors,
//! 5xx, 401/403/404 (the operator fixes a token or an address), 408, 413 and 429: retry with
//! backoff, nothing dropped. Any other 4xx: the server will never take that Bundle; its rows move
//! to `fhir_quarantine` with the answer, so they never block the rest. One request at a time:
//! an EHR takes Bundles in order.

use crate::config::FhirConfig;
use crate::metrics::Metrics;
use crate::retry;
use crate::store::{self, now_ms, StoreHandle};
use anyhow::Context as _;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use vigil_fhir::resources;

/// The HTTP client: the configured timeout and the private CA when given.
pub fn client(cfg: &FhirConfig) -> anyhow::Result<reqwest::Client> {
    let http = crate::http_client::builder("fhir", cfg.timeout_seconds, &cfg.ca_file)?;
    reqwest::Url::parse(&cfg.push_url).context("fhir.push_url is not a URL")?;
    cfg.token()?;
    http.build().context("cannot build the FHIR client")
}

/// What a failed request means.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    Retry,
    Quarantine(u16),
}

fn classify(status: Option<u16>) -> Failure {
    match status {
        Some(code @ 400..=499) if !matches!(code, 401 | 403 | 404 | 408 | 413 | 429) => {
            Failure::Quarantine(code)
        }
        _ => Failure::Retry,
    }
}

/// The Bundle for queued readings: the Patients and Devices they name (conditional updates
/// too, so the server resolves references to its own ids), then the Observations.
fn bundle(
    conn: &vigil_store::db::Connection,
    keys: &[store::fhir::Cursor],
) -> store::Result<(Value, usize)> {
    let rows = store::fhir::by_keys(conn, keys)?;
    let (observations, _) = resources::page(rows, usize::MAX);
    let mut head: BTreeMap<String, Value> = BTreeMap::new();
    for m in &observations {
        let r = match m {
            resources::Measured::One(r) => r,
            resources::Measured::BloodPressure { systolic, .. } => systolic,
        };
        if !head.contains_key(&format!("p/{}", r.patient_id)) {
            if let Some(p) = store::registry::patient(conn, &r.patient_id)? {
                head.insert(format!("p/{}", r.patient_id), resources::patient(&p));
            }
            for d in store::devices::patient_devices(conn, &r.patient_id)? {
                head.insert(format!("d/{}", d.id), resources::device(&d));
            }
        }
    }
    let mut all: Vec<Value> = head.into_values().collect();
    let n = observations.len();
    all.extend(observations.iter().map(resources::observation));
    let refs: HashMap<String, String> = all.iter().map(resources::entry_urn).collect();
    let entry: Vec<Value> = all
        .into_iter()
        .map(|r| resources::transaction_entry(r, &refs))
        .collect();
    Ok((
        serde_json::json!({ "resourceType": "Bundle", "type": "transaction", "entry": entry }),
        n,
    ))
}

async fn observe_backlog(store: &StoreHandle, metrics: &Metrics) {
    if let Ok((n, _)) = store.read(store::fhir::backlog).await {
        metrics.fhir_backlog.set(n.max(0) as u64);
    }
}

pub async fn run(
    store: StoreHandle,
    cfg: FhirConfig,
    client: reqwest::Client,
    metrics: Arc<Metrics>,
    duty: crate::duty::Duty,
    mut shutdown: watch::Receiver<bool>,
) {
    let idle = Duration::from_millis(u64::from(cfg.flush_interval_ms));
    let max = i64::from(cfg.batch_size);
    let token = cfg.token().unwrap_or_default();
    let url = cfg.push_url.trim_end_matches('/').to_string();
    let mut delays = retry::influx();
    let mut failing = false;
    loop {
        observe_backlog(&store, &metrics).await;
        // Several gateways: the lease holder pushes (issue #20).
        if !duty.held().await {
            tokio::select! {
                _ = tokio::time::sleep(idle) => continue,
                _ = shutdown.changed() => return,
            }
        }
        let next = store
            .read(move |c| {
                let Some((last, keys)) = store::fhir::next_queued(c, 0, max)? else {
                    return Ok(None);
                };
                let (b, n) = bundle(c, &keys)?;
                Ok(Some((last, keys.len(), b, n)))
            })
            .await;
        let (last, readings, body, observations) = match next {
            Ok(Some(x)) => x,
            Ok(None) => {
                tokio::select! {
                    _ = tokio::time::sleep(idle) => continue,
                    _ = shutdown.changed() => return,
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the FHIR push queue");
                tokio::select! {
                    _ = tokio::time::sleep(idle) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        };
        let mut req = client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, vigil_fhir::MEDIA_TYPE)
            .header(reqwest::header::ACCEPT, vigil_fhir::MEDIA_TYPE)
            .body(body.to_string());
        if !token.is_empty() {
            req = req.bearer_auth(&token);
        }
        let answer = tokio::select! {
            a = req.send() => a,
            _ = shutdown.changed() => return,
        };
        let status = match &answer {
            Ok(r) => Some(r.status()),
            Err(e) => e.status(),
        };
        if status.is_some_and(|s| s.is_success()) {
            if let Err(err) = store.write(move |c| store::fhir::pushed(c, last)).await {
                // Taken but not marked: sent again later, which conditional updates absorb.
                tracing::warn!(error = %err, "cannot mark readings pushed");
            }
            metrics.fhir_pushed.inc_by(readings as u64);
            tracing::debug!(readings, observations, "pushed to the FHIR server");
            if failing {
                tracing::info!("FHIR server reachable again; pushing the backlog");
                delays = retry::influx();
                failing = false;
            }
            continue;
        }
        let code = status.map(|s| s.as_u16());
        let detail = match answer {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => e.to_string(),
        };
        let reason: String = detail.chars().take(500).collect();
        match classify(code) {
            Failure::Quarantine(code) => {
                tracing::warn!(status = code, readings, reason = %reason, "the FHIR server refused a Bundle; quarantined");
                let now = now_ms();
                if let Err(e) = store
                    .write(move |c| store::fhir::quarantine(c, (0, last), code, &reason, now))
                    .await
                {
                    tracing::warn!(error = %e, "cannot quarantine readings");
                }
                metrics.fhir_quarantined.inc_by(readings as u64);
            }
            Failure::Retry => {
                metrics.fhir_errors.inc_by(1);
                failing = true;
                let wait = delays.next().expect("endless");
                tracing::warn!(status = ?code, retry_in_ms = wait.as_millis() as u64, readings, reason = %reason, "cannot push to the FHIR server; keeping the readings");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_permanent_client_errors_quarantine() {
        assert_eq!(classify(Some(400)), Failure::Quarantine(400));
        assert_eq!(classify(Some(422)), Failure::Quarantine(422));
        for code in [401, 403, 404, 408, 413, 429, 500, 503] {
            assert_eq!(classify(Some(code)), Failure::Retry, "{code}");
        }
        assert_eq!(classify(None), Failure::Retry, "no answer at all");
    }
}
