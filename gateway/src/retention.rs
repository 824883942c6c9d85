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
            let nums = |sql: &str| -> vigil_store::db::Result<Vec<i64>> {
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
    duty: crate::duty::Duty,
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
        // Several gateways: the lease holder prunes (issue #20).
        if !duty.held().await {
            continue;
        }
        match prune_once(&store, &cfg, now_ms()).await {
            Ok(p) => {
                metrics.pruned_readings.inc_by(p.readings as u64);
                metrics.pruned_rollups.inc_by(p.rollups as u64);
                if p != Pruned::default() {
                    tracing::info!(readings = p.readings, rollups = p.rollups, "retention pass");
                }
            }
            // The next pass retries; nothing is lost by pruning late.
            Err(err) => tracing::warn!(error = %err, "retention pass failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Retention under a simulated clock (issue #4): `prune_once` takes "now" as an argument, so
    //! the test walks the clock forward over days and years without waiting.
    use super::*;
    use crate::store::readings::ReadingInserter;
    use crate::store::testing::TempStore;
    use crate::store::{ms_to_time, rollups::Rollups};
    use vigil_domain::views::Resolution;
    use vigil_domain::{DeviceKind, Metric, Reading, TsSource};
    use vigil_protocol::validate::DeviceInfo;

    const T0: i64 = 1_763_769_600_000; // 2025-11-22T00:00:00Z, an hour boundary
    const HOUR_MS: i64 = 3_600_000;

    /// The shared temporary store, plus what these tests do with it.
    trait Readings {
        fn add(&self, at: &[(i64, f64)]);
        fn counts(&self) -> (i64, usize, usize);
    }

    impl Readings for TempStore {
        /// Stores SpO₂ readings the way the ingest write job does (insert, roll up what was new).
        fn add(&self, at: &[(i64, f64)]) {
            let readings: Vec<Reading> = at
                .iter()
                .map(|&(ts, value)| Reading {
                    device_id: "d1".into(),
                    patient_id: "p1".into(),
                    metric: Metric::Spo2,
                    value,
                    ts: ms_to_time(ts),
                    ts_source: TsSource::Device,
                    seq: None,
                    flags: vec![],
                })
                .collect();
            self.store
                .write_blocking(move |c| {
                    let device = DeviceInfo {
                        id: "d1".into(),
                        patient_id: "p1".into(),
                        kind: DeviceKind::PulseOximeter,
                        num: 7,
                        patient_num: 1,
                    };
                    let fresh = ReadingInserter::new(c)?.insert(&device, readings, 0)?;
                    let mut r = Rollups::default();
                    for f in &fresh {
                        r.add(1, f.metric, f.ts.timestamp_millis(), f.value);
                    }
                    r.flush(c)?;
                    Ok(())
                })
                .unwrap();
        }

        /// (raw readings, minute buckets, hour buckets) over everything stored.
        fn counts(&self) -> (i64, usize, usize) {
            let raw = self
                .store
                .read_blocking(|c| {
                    Ok(c.query_row("SELECT count(*) FROM readings", [], |r| r.get(0))?)
                })
                .unwrap();
            let buckets = |res: Resolution| {
                self.store
                    .read_blocking(move |c| {
                        Ok(
                            rollups::buckets(c, "p1", Metric::Spo2, res, 0, i64::MAX / 2, 100_000)?
                                .len(),
                        )
                    })
                    .unwrap()
            };
            (raw, buckets(Resolution::Minute), buckets(Resolution::Hour))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_simulated_clock_walks_readings_through_raw_then_rollup_retention() {
        let t = tokio::task::spawn_blocking(TempStore::new).await.unwrap();
        // Two hours of readings: 3 in the first hour (two in one minute), 1 in the second.
        let first = [(T0 + 1_000, 95.0), (T0 + 30_000, 91.0), (T0 + 61_000, 97.0)];
        let second = [(T0 + HOUR_MS + 5_000, 88.0)];
        let t = tokio::task::spawn_blocking(move || {
            t.add(&first);
            t.add(&second);
            t
        })
        .await
        .unwrap();
        let cfg = StorageConfig::default(); // 30 days raw, 730 days rollups
        let counts = |t: TempStore| async move {
            tokio::task::spawn_blocking(move || (t.counts(), t))
                .await
                .unwrap()
        };
        let ((raw, minutes, hours), t) = counts(t).await;
        assert_eq!((raw, minutes, hours), (4, 3, 2));

        // Day 29: nothing is old enough.
        let p = prune_once(&t.store, &cfg, T0 + 29 * DAY_MS).await.unwrap();
        assert_eq!(p, Pruned::default());

        // 30 days and 30 minutes after T0: the first hour's raw readings and minute buckets
        // are past raw retention, the second hour's are not; hour rollups all stay.
        let now = T0 + 30 * DAY_MS + 30 * 60_000;
        let p = prune_once(&t.store, &cfg, now).await.unwrap();
        assert_eq!(
            p,
            Pruned {
                readings: 3,
                rollups: 2
            }
        );
        let (left, t) = counts(t).await;
        assert_eq!(left, (1, 1, 2));
        // A second pass at the same time finds nothing more: passes are idempotent.
        let p = prune_once(&t.store, &cfg, now).await.unwrap();
        assert_eq!(p, Pruned::default());

        // A hub flushes a very old buffer: stored (and rolled up) although already past raw
        // retention, then removed by the next pass.
        let t = tokio::task::spawn_blocking(move || {
            t.add(&[(T0 + 120_000, 93.0)]);
            t
        })
        .await
        .unwrap();
        let (late, t) = counts(t).await;
        assert_eq!(late, (2, 2, 2));
        let p = prune_once(&t.store, &cfg, now).await.unwrap();
        assert_eq!(
            p,
            Pruned {
                readings: 1,
                rollups: 1
            }
        );

        // Day 31: all raw data gone; the hour buckets still draw a chart of those days.
        let p = prune_once(&t.store, &cfg, T0 + 31 * DAY_MS).await.unwrap();
        assert_eq!(
            p,
            Pruned {
                readings: 1,
                rollups: 1
            }
        );
        let (left, t) = counts(t).await;
        assert_eq!(left, (0, 0, 2));
        let hour = tokio::task::spawn_blocking({
            let store = t.store.clone();
            move || {
                store.read_blocking(|c| {
                    rollups::buckets(c, "p1", Metric::Spo2, Resolution::Hour, T0, T0, 10)
                })
            }
        })
        .await
        .unwrap()
        .unwrap();
        // The late reading joined the first hour's bucket before its raw row was pruned.
        assert_eq!((hour[0].count, hour[0].min, hour[0].max), (4, 91.0, 97.0));

        // Two years on: past rollup retention too.
        let p = prune_once(&t.store, &cfg, T0 + 731 * DAY_MS).await.unwrap();
        assert_eq!(
            p,
            Pruned {
                readings: 0,
                rollups: 2
            }
        );
        let (left, t) = counts(t).await;
        assert_eq!(left, (0, 0, 0));

        // Retention 0 keeps everything forever.
        let forever = StorageConfig {
            raw_retention_days: 0,
            rollup_retention_days: 0,
            ..StorageConfig::default()
        };
        let t = tokio::task::spawn_blocking(move || {
            t.add(&[(T0, 90.0)]);
            t
        })
        .await
        .unwrap();
        let p = prune_once(&t.store, &forever, T0 + 10_000 * DAY_MS)
            .await
            .unwrap();
        assert_eq!(p, Pruned::default());
        let (left, _t) = counts(t).await;
        assert_eq!(left, (1, 1, 1));
    }
}
