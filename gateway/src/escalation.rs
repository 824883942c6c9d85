//! The escalation loop (issue #5): once a second, runs the escalation steps that are due —
//! secondary contacts after `notify.escalate_after_seconds`, reminders every
//! `notify.repeat_seconds` — for red alerts nobody has acknowledged, and wakes the outbox.
//! The schedule is in the store (`alerts.next_notify_at`), so it survives a restart; the logic
//! is `store::notify::escalate_due`, tested there with a simulated clock.

use crate::ingest::Ingest;
use crate::store::{notify, now_ms};
use std::time::Duration;
use tokio::sync::watch;

/// How late a due step may run.
const TICK: Duration = Duration::from_secs(1);

pub async fn run(ingest: Ingest, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.changed() => return,
        }
        let settings = ingest.notify.clone();
        match ingest
            .store
            .write(move |c| notify::escalate_due(c, now_ms(), &settings))
            .await
        {
            Ok(0) => {}
            Ok(n) => {
                ingest
                    .metrics
                    .emails_queued
                    .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                ingest.outbox_wake.notify_one();
            }
            // Still due in the store: the next tick tries again.
            Err(err) => tracing::warn!(error = %err, "cannot run escalation steps"),
        }
    }
}
