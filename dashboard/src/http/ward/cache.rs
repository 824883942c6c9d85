//! The ward view's caches: sparklines reused for a minute, and rendered bodies shared by
//! everyone with the same view (single flight), so a hundred dashboards asking at once cost one
//! render (issue #6, docs/benchmarks.md).

use minijinja::Value;
use std::collections::HashMap;
use vigil_domain::views::ReadingBucket;
use vigil_domain::Metric;

/// How long a sparkline is reused. A 24-hour line of hourly averages barely moves in a minute,
/// while the latest values and colours beside it are always fresh; reading a thousand
/// patients' rollups cost ≈ 55 ms, more than the rest of the view (docs/benchmarks.md).
const SPARK_TTL: std::time::Duration = std::time::Duration::from_secs(60);

pub(super) type SparkKey = (String, Metric);

/// Sparkline data by (patient, metric), with when it was read.
#[derive(Default)]
pub struct SparkCache {
    map: std::sync::Mutex<HashMap<SparkKey, (std::time::Instant, Vec<ReadingBucket>)>>,
}

impl SparkCache {
    /// The fresh entries among `wanted` (index-aligned) and the keys still to read.
    pub(super) fn lookup(
        &self,
        wanted: &[SparkKey],
    ) -> (Vec<Option<Vec<ReadingBucket>>>, Vec<usize>) {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let mut found = Vec::with_capacity(wanted.len());
        let mut missing = Vec::new();
        for (i, k) in wanted.iter().enumerate() {
            match map.get(k) {
                Some((at, b)) if at.elapsed() < SPARK_TTL => found.push(Some(b.clone())),
                _ => {
                    found.push(None);
                    missing.push(i);
                }
            }
        }
        (found, missing)
    }

    pub(super) fn store(&self, entries: Vec<(SparkKey, Vec<ReadingBucket>)>) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        map.retain(|_, (at, _)| at.elapsed() < SPARK_TTL);
        for (k, b) in entries {
            map.insert(k, (now, b));
        }
    }
}

/// Rendered ward bodies shared by everyone with the same view (facilities, filters,
/// language). When a change comes in, a hundred dashboards ask again at once: the first
/// renders and the others wait for it and take its result (single flight), instead of a
/// hundred renders of a thousand patients (issue #6: 100 live clients updated within 1 s).
/// An entry is good while no live event has arrived since it was begun, and for at most
/// [`BODY_TTL`] (the "5 min ago" texts age); one that misses only newer readings is still
/// served for [`READINGS_EVERY`], telling the script when to ask again.
#[derive(Default)]
pub struct BodyCache {
    /// Alert events seen (and lags of the watcher: anything may have changed).
    alerts: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Reading events seen.
    readings: std::sync::Arc<std::sync::atomic::AtomicU64>,
    watching: std::sync::OnceLock<()>,
    #[allow(clippy::type_complexity)]
    entries: std::sync::Mutex<HashMap<String, std::sync::Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

/// One rendered body: the event counts when it was begun, when, the filter lists, the HTML.
pub(super) struct Cached {
    pub(super) alerts: u64,
    pub(super) readings: u64,
    pub(super) at: std::time::Instant,
    pub(super) ctx: Value,
    pub(super) html: std::sync::Arc<str>,
}

const BODY_TTL: std::time::Duration = std::time::Duration::from_secs(15);

/// How long a body may miss newer readings (never alerts). Every reading used to re-render
/// the view for every dashboard's next fetch, so at 10 000 readings/s with 20 dashboards
/// refreshing one core rendered continuously and ingest fell by a quarter
/// (docs/benchmarks.md); now each view renders at most about once a second for readings.
const READINGS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// What a request for a view does with its cached body.
#[derive(Debug, PartialEq)]
pub(super) enum Next {
    Serve,
    /// Serve it though it misses newer readings; it is younger than [`READINGS_EVERY`], and
    /// will be rendered again after this long.
    ServeStale(std::time::Duration),
    Render,
}

/// Serve what is cached when it shows every change up to the request (`asked`: the event
/// counts and the time it came in) — nothing changed since it was begun, or it was begun after
/// the request came — within [`BODY_TTL`]. Render after an alert it does not show. When it
/// misses only readings, it is good for [`READINGS_EVERY`] after it was begun: then the
/// caller is told when to ask again (`allow_stale`; otherwise it is rendered).
pub(super) fn next(
    cached: Option<&Cached>,
    ((alerts, readings), asked_at): ((u64, u64), std::time::Instant),
    now: std::time::Instant,
    allow_stale: bool,
) -> Next {
    match cached {
        Some(c) if now.duration_since(c.at) < BODY_TTL && c.alerts >= alerts => {
            let age = now.duration_since(c.at);
            if c.readings >= readings || c.at >= asked_at {
                Next::Serve
            } else if allow_stale && age < READINGS_EVERY {
                Next::ServeStale(READINGS_EVERY - age)
            } else {
                Next::Render
            }
        }
        _ => Next::Render,
    }
}

impl BodyCache {
    /// Starts counting live events (once, on first use: needs the runtime).
    pub(super) fn watch(&self, live: &tokio::sync::broadcast::Sender<vigil_domain::views::Live>) {
        self.watching.get_or_init(|| {
            let mut rx = live.subscribe();
            let (alerts, readings) = (self.alerts.clone(), self.readings.clone());
            tokio::spawn(async move {
                use tokio::sync::broadcast::error::RecvError;
                use vigil_domain::views::LiveEvent;
                loop {
                    match rx.recv().await {
                        Ok(m) if matches!(m.event, LiveEvent::Reading { .. }) => {
                            readings.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        Ok(_) | Err(RecvError::Lagged(_)) => {
                            alerts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        Err(RecvError::Closed) => return,
                    }
                }
            });
        });
    }

    pub(super) fn counts(&self) -> (u64, u64) {
        (
            self.alerts.load(std::sync::atomic::Ordering::SeqCst),
            self.readings.load(std::sync::atomic::Ordering::SeqCst),
        )
    }

    pub(super) fn slot(&self, key: String) -> std::sync::Arc<tokio::sync::Mutex<Option<Cached>>> {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Views nobody asked for in a while go (filters typed once).
        if map.len() > 256 {
            map.retain(|_, slot| {
                slot.try_lock()
                    .map(|c| c.as_ref().is_some_and(|c| c.at.elapsed() < BODY_TTL))
                    .unwrap_or(true)
            });
        }
        map.entry(key).or_default().clone()
    }
}
