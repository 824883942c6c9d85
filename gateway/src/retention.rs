//! Retention (issue #4): a background task that deletes raw readings and minute rollups older
//! than `storage.raw_retention_days` and hour rollups older than
//! `storage.rollup_retention_days`, every `storage.prune_interval_minutes`.
//!
//! Each device's (and patient's) deletion is its own small write job, so ingestion's write jobs
//! interleave with pruning instead of waiting behind one large `DELETE`; the writer thread's
//! group commit batches the small jobs. A reading that arrives already older than the retention
//! period (a hub flushing a very old buffer) is stored and removed on the next pass.

use crate::config::StorageConfig;
use crate::metrics::Metrics;
use crate::store::{now_ms, rollups, StoreHandle};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const DAY_MS: i64 = 86_400_000;
/// The first pass runs soon after start: each deletion is a small write job, so it barely
/// competes with start-up, and an operator who shortened the retention sees it applied.
const FIRST_PASS_AFTER: Duration = Duration::from_secs(5);

/// What one pass deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub readings: usize,
    pub rollups: usize,
}

/// One retention pass at time `now_ms`.
pub async fn prune_once(
    store: &StoreHandle,
    cfg: &StorageConfig,
    now: i64,
) -> anyhow::Result<Pruned> {
    let mut out = Pruned::default();
    let (devices, patients) = store
        .read(|c| {
            let nums = |sql: &str| -> rusqlite::Result<Vec<i64>> {
                let mut st = c.prepare(sql)?;
                let rows = st.query_map([], |r| r.get(0))?;
                rows.collect()
            };
            Ok((
                nums("SELECT num FROM devices")?,
                nums("SELECT num FROM patients")?,
            ))
        })
        .await?;
    if cfg.raw_retention_days > 0 {
        let cutoff = now - i64::from(cfg.raw_retention_days) * DAY_MS;
        for d in devices {
            out.readings += store
                .write(move |c| rollups::prune_device(c, d, cutoff))
                .await?;
        }
        for &p in &patients {
            out.rollups += store
                .write(move |c| rollups::prune_patient(c, p, rollups::WIDTHS[0], cutoff))
                .await?;
        }
    }
    if cfg.rollup_retention_days > 0 {
        let cutoff = now - i64::from(cfg.rollup_retention_days) * DAY_MS;
        for &p in &patients {
            out.rollups += store
                .write(move |c| rollups::prune_patient(c, p, rollups::WIDTHS[1], cutoff))
                .await?;
        }
    }
    Ok(out)
}

/// Runs retention passes until shutdown.
pub async fn run(
    store: StoreHandle,
    cfg: StorageConfig,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let every = Duration::from_secs(u64::from(cfg.prune_interval_minutes.max(1)) * 60);
    let mut wait = FIRST_PASS_AFTER.min(every);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        wait = every;
        match prune_once(&store, &cfg, now_ms()).await {
            Ok(p) => {
                metrics
                    .pruned_readings
                    .fetch_add(p.readings as u64, Relaxed);
                metrics.pruned_rollups.fetch_add(p.rollups as u64, Relaxed);
                if p != Pruned::default() {
                    tracing::info!(readings = p.readings, rollups = p.rollups, "retention pass");
                }
            }
            // The next pass retries; nothing is lost by pruning late.
            Err(err) => tracing::warn!(error = %err, "retention pass failed"),
        }
    }
}
