//! Retry delays for the gateway's loops, in one place (issue #16: backon's exponential backoff
//! instead of a hand-written calculator per loop). Each loop keeps its own `tokio::select!`
//! with the shutdown signal, so only the delays come from backon; a fresh iterator after a
//! success starts again from the shortest delay.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::time::Duration;

/// Delays between attempts, endless (the loops retry until shutdown).
pub type Delays = backon::ExponentialBackoff;

/// InfluxDB unreachable: 200 ms doubling to 30 s. No jitter: there is one forwarder per
/// gateway and the server's recovery is what it waits for.
pub fn influx() -> Delays {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(30))
        .without_max_times()
        .build()
}

/// The MQTT broker lost: 100 ms doubling to 15 s, and backon's jitter adds 0–100 %, so
/// 100–200 ms at first and 15–30 s at most. Jitter keeps many gateways (and their devices'
/// broker) from reconnecting in lock-step after a broker restart. backon's jitter only adds,
/// so the bases are half the old ±25 % ones' (200 ms … 30 s) and the ceiling stays 30 s.
pub fn broker() -> Delays {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(15))
        .with_jitter()
        .without_max_times()
        .build()
}

/// The store refused a batch (disk full, locked): 100 ms doubling to 5 s, the batch kept
/// and unacked meanwhile.
pub fn store() -> Delays {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .without_max_times()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(delays: Delays, n: usize) -> Vec<u128> {
        delays.take(n).map(|d| d.as_millis()).collect()
    }

    #[test]
    fn influx_doubles_from_200_ms_and_caps_at_30_s() {
        let got = ms(influx(), 12);
        assert_eq!(&got[..4], &[200, 400, 800, 1600]);
        assert_eq!(got[11], 30_000);
        assert!(got.windows(2).all(|w| w[0] <= w[1]), "{got:?}");
    }

    #[test]
    fn broker_jitters_upwards_and_never_waits_past_30_s() {
        for _ in 0..50 {
            let got = ms(broker(), 20);
            assert!((100..=200).contains(&got[0]), "{got:?}");
            assert!((15_000..=30_000).contains(&got[19]), "{got:?}");
            assert!(got.iter().all(|&d| d <= 30_000), "{got:?}");
        }
    }

    #[test]
    fn store_retries_stay_within_5_s() {
        let got = ms(store(), 10);
        assert_eq!(&got[..3], &[100, 200, 400]);
        assert_eq!(got[9], 5_000);
    }

    #[test]
    fn the_delays_never_end() {
        assert_eq!(influx().take(1000).count(), 1000);
    }
}
