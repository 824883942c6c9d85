//! Loss accounting for the load mode (issue #7): what happened to every reading the broker
//! acknowledged, read from Vigil's `/metrics` before and after a run. A reading is stored,
//! a duplicate (already stored: redelivery), or in a rejected message — anything else once
//! the gateway has settled is lost.

use std::time::{Duration, Instant};
use vigil_domain::STORE_DELAY_BUCKETS_S;

/// Buckets of `vigil_reading_store_delay_seconds`, the last one `+Inf`.
const BUCKETS: usize = STORE_DELAY_BUCKETS_S.len() + 1;

/// Vigil's counters at one moment (`/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// `vigil_readings_stored_total`.
    pub stored: u64,
    /// `vigil_readings_duplicate_total`.
    pub duplicates: u64,
    /// `vigil_messages_rejected_total`, all reasons.
    pub rejected_messages: u64,
    /// `vigil_reading_store_delay_seconds_bucket`, cumulative, in `STORE_DELAY_BUCKETS_S`
    /// order and `+Inf` last.
    pub delay: [u64; BUCKETS],
}

impl Counters {
    /// Reads the counters from Prometheus text; absent ones are 0.
    pub fn parse(text: &str) -> Counters {
        let mut c = Counters::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(v) = value.trim().parse::<f64>() else {
                continue;
            };
            let v = v as u64;
            let base = name.split('{').next().unwrap_or(name);
            match base {
                "vigil_readings_stored_total" => c.stored += v,
                "vigil_readings_duplicate_total" => c.duplicates += v,
                "vigil_messages_rejected_total" => c.rejected_messages += v,
                "vigil_reading_store_delay_seconds_bucket" => {
                    let le = name.split("le=\"").nth(1).and_then(|r| r.split('"').next());
                    let i = match le {
                        Some("+Inf") => Some(BUCKETS - 1),
                        Some(b) => b.parse::<f64>().ok().and_then(|b| {
                            STORE_DELAY_BUCKETS_S
                                .iter()
                                .position(|x| (x - b).abs() < 1e-9)
                        }),
                        None => None,
                    };
                    if let Some(i) = i {
                        c.delay[i] = v;
                    }
                }
                _ => {}
            }
        }
        c
    }

    /// `GET {http}/metrics` with an API token (none when `/metrics` is public).
    pub fn fetch(http: &str, token: Option<&str>) -> anyhow::Result<Counters> {
        let mut req = ureq::get(&format!("{}/metrics", http.trim_end_matches('/')));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        Ok(Counters::parse(&req.call()?.into_string()?))
    }

    fn accounted(&self, per_message: u64) -> u64 {
        self.stored + self.duplicates + self.rejected_messages * per_message
    }
}

/// Where the acknowledged readings of a run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Accounting {
    /// Readings the broker acknowledged (all sent ones at QoS 0).
    pub acked: u64,
    pub stored: u64,
    pub duplicates: u64,
    /// Readings in messages Vigil rejected (kept for inspection, with a reason).
    pub rejected: u64,
    /// Acknowledged but neither stored, duplicate nor rejected.
    pub lost: u64,
    /// More accounted for than acknowledged: other traffic reached Vigil during the run, so
    /// the figures are not this run's alone.
    pub foreign: u64,
    /// The run's readings per bucket of `vigil_reading_store_delay_seconds` (cumulative).
    #[serde(skip)]
    pub store_delay: [u64; BUCKETS],
}

impl Accounting {
    /// From the counters before and after the run; `per_message` readings in each message.
    pub fn new(before: Counters, after: Counters, acked: u64, per_message: u64) -> Accounting {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let stored = d(after.stored, before.stored);
        let duplicates = d(after.duplicates, before.duplicates);
        let rejected = d(after.rejected_messages, before.rejected_messages) * per_message;
        let accounted = stored + duplicates + rejected;
        Accounting {
            acked,
            stored,
            duplicates,
            rejected,
            lost: acked.saturating_sub(accounted),
            foreign: accounted.saturating_sub(acked),
            store_delay: std::array::from_fn(|i| d(after.delay[i], before.delay[i])),
        }
    }

    /// The `q` quantile (0–1) of the run's delay from a reading's time to its storage, in
    /// milliseconds, interpolated within its bucket as Prometheus' `histogram_quantile` does;
    /// `None` without readings. Above the last bound it is that bound (60 s): "at least".
    /// With readings stamped at publish (`LoadConfig::live_ts`) this is publish → stored.
    pub fn store_delay_ms(&self, q: f64) -> Option<f64> {
        let total = self.store_delay[BUCKETS - 1];
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let i = self.store_delay.iter().position(|&c| c as f64 >= rank)?;
        let Some(&upper) = STORE_DELAY_BUCKETS_S.get(i) else {
            return Some(STORE_DELAY_BUCKETS_S[BUCKETS - 2] * 1000.0);
        };
        let (lower, below) = match i {
            0 => (0.0, 0),
            _ => (STORE_DELAY_BUCKETS_S[i - 1], self.store_delay[i - 1]),
        };
        let inside = (self.store_delay[i] - below) as f64;
        let f = if inside > 0.0 {
            (rank - below as f64) / inside
        } else {
            1.0
        };
        Some((lower + (upper - lower) * f) * 1000.0)
    }

    pub fn lossy(&self) -> bool {
        self.lost > 0
    }
}

/// Polls `/metrics` until `expected` more readings than in `before` are accounted for, or the
/// counts stop moving for `quiet`, or `limit` passes: the gateway has settled. Also when the
/// counters last moved (the end of the gateway's work, for its rate).
pub fn settle(
    http: &str,
    token: Option<&str>,
    before: Counters,
    expected: u64,
    per_message: u64,
    quiet: Duration,
    limit: Duration,
) -> anyhow::Result<(Counters, Instant)> {
    let deadline = Instant::now() + limit;
    let mut last = Counters::fetch(http, token)?;
    let mut since = Instant::now();
    loop {
        let done = last
            .accounted(per_message)
            .saturating_sub(before.accounted(per_message));
        if done >= expected || since.elapsed() >= quiet || Instant::now() >= deadline {
            return Ok((last, since));
        }
        std::thread::sleep(Duration::from_millis(100));
        let now = Counters::fetch(http, token)?;
        if now != last {
            since = Instant::now();
            last = now;
        }
    }
}

/// Runs the load and accounts for it against the gateway at `http`: counters before, the
/// run, then the counters once the gateway has settled (at most `settle` after the run).
/// The run's report, the accounting, and the seconds from the start of the run until the
/// gateway's counters last moved (its work on this load done).
pub async fn run_accounted(
    cfg: crate::load::LoadConfig,
    http: String,
    token: Option<String>,
    settle: Duration,
) -> anyhow::Result<(crate::load::LoadReport, Accounting, f64)> {
    let per_message = cfg.readings_per_message.max(1);
    let (h, t) = (http.clone(), token.clone());
    let before = tokio::task::spawn_blocking(move || Counters::fetch(&h, t.as_deref())).await??;
    let started = Instant::now();
    let report = crate::load::run(cfg, Default::default()).await?;
    let acked = report.acked * per_message;
    let (after, last_moved) = tokio::task::spawn_blocking(move || {
        self::settle(
            &http,
            token.as_deref(),
            before,
            acked,
            per_message,
            Duration::from_secs(3),
            settle,
        )
    })
    .await??;
    let busy = last_moved.saturating_duration_since(started).as_secs_f64();
    Ok((
        report,
        Accounting::new(before, after, acked, per_message),
        busy,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP vigil_readings_stored_total Readings stored\n\
        # TYPE vigil_readings_stored_total counter\n\
        vigil_readings_stored_total 1500\n\
        vigil_readings_duplicate_total 20\n\
        vigil_messages_rejected_total{reason=\"malformed_json\"} 3\n\
        vigil_messages_rejected_total{reason=\"unknown_metric\"} 2\n\
        vigil_readings_received_total 1525\n";

    #[test]
    fn counters_come_from_prometheus_text() {
        assert_eq!(
            Counters::parse(TEXT),
            Counters {
                stored: 1500,
                duplicates: 20,
                rejected_messages: 5,
                delay: [0; BUCKETS],
            }
        );
    }

    #[test]
    fn publish_to_stored_percentiles_come_from_the_histogram() {
        let hist = |counts: [u64; BUCKETS]| {
            let mut text = String::new();
            let mut c = 0;
            for (i, n) in counts.iter().enumerate() {
                c += n;
                let le = STORE_DELAY_BUCKETS_S
                    .get(i)
                    .map_or("+Inf".into(), |b| b.to_string());
                text += &format!("vigil_reading_store_delay_seconds_bucket{{le=\"{le}\"}} {c}\n");
            }
            Counters::parse(&text)
        };
        let before = hist([5; BUCKETS]);
        // The run: 100 readings, 50 within 1 ms, 40 in (1, 2.5] ms, 9 in (2.5, 5] ms, 1 over 60 s.
        let mut run = [0; BUCKETS];
        run[0] = 50;
        run[1] = 40;
        run[2] = 9;
        run[BUCKETS - 1] = 1;
        let after = hist(std::array::from_fn(|i| 5 + run[i]));
        let acc = Accounting::new(before, after, 100, 1);
        assert_eq!(acc.store_delay[BUCKETS - 1], 100);
        assert_eq!(acc.store_delay_ms(0.5), Some(1.0));
        // Rank 90 is the top of the second bucket; 99 the top of the third.
        assert!((acc.store_delay_ms(0.9).unwrap() - 2.5).abs() < 1e-9);
        assert!((acc.store_delay_ms(0.99).unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(acc.store_delay_ms(1.0), Some(60_000.0));
        assert_eq!(
            Accounting::new(before, before, 0, 1).store_delay_ms(0.5),
            None
        );
    }

    #[test]
    fn a_clean_run_is_not_lossy_and_a_lossy_one_is() {
        let before = Counters::parse(TEXT);
        let after = Counters {
            stored: before.stored + 990,
            duplicates: before.duplicates + 6,
            rejected_messages: before.rejected_messages + 4,
            delay: before.delay,
        };
        let clean = Accounting::new(before, after, 1000, 1);
        assert_eq!((clean.lost, clean.foreign), (0, 0));
        assert!(!clean.lossy());
        // The same counts, but 1 200 acknowledged: 200 readings never reached the store.
        let lossy = Accounting::new(before, after, 1200, 1);
        assert_eq!(lossy.lost, 200);
        assert!(lossy.lossy());
        // Hub batches: a rejected message takes all its readings with it.
        let batches = Accounting::new(before, after, 1016, 5);
        assert_eq!((batches.rejected, batches.lost), (20, 0));
        // Someone else's traffic shows as foreign, not as negative loss.
        let busy = Accounting::new(before, after, 900, 1);
        assert_eq!((busy.lost, busy.foreign), (0, 100));
    }
}
