//! One helper for the gateway's periodic tasks (escalation, the missing-data watch, the fall
//! window): run a tick, wait, repeat, until shutdown — the shutdown signal also cuts a wait short.

use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;

/// Waits `first`, runs `tick`, then waits what that tick returned, and so on until shutdown.
pub async fn paced<F, Fut>(mut shutdown: watch::Receiver<bool>, first: Duration, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Duration>,
{
    let mut wait = first;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        wait = tick().await;
    }
}

/// Runs `tick` every `period` (the first one a period after the start) until shutdown.
pub async fn every<F, Fut>(period: Duration, shutdown: watch::Receiver<bool>, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    paced(shutdown, period, || {
        let t = tick();
        async move {
            t.await;
            period
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn ticks_at_the_pace_asked_and_stops_on_shutdown() {
        let (tx, rx) = watch::channel(false);
        let n = AtomicUsize::new(0);
        let task = paced(rx, Duration::ZERO, || async {
            n.fetch_add(1, Ordering::Relaxed);
            Duration::from_secs(10)
        });
        let stop = async {
            tokio::time::sleep(Duration::from_secs(25)).await;
            tx.send(true).unwrap();
        };
        tokio::join!(task, stop);
        // At 0, 10 and 20 s; the wait until 30 s was cut short.
        assert_eq!(n.load(Ordering::Relaxed), 3);
    }
}
