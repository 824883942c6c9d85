//! The notification loop (issue #5): once a second, runs the escalation steps that are due —
//! secondary contacts after `notify.escalate_after_seconds`, reminders every
//! `notify.repeat_seconds` — for red alerts nobody has acknowledged, sends the digests of
//! non-critical alerts that may go (`notify.min_interval`, quiet hours), and wakes the outbox.
//! Everything it works from is in the store (`alerts.next_notify_at`, `digest_items`), so it
//! survives a restart; the logic is in `store::notify`, tested there with a simulated clock.

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
        // A read first: an idle loop never takes the writer.
        match ingest
            .store
            .read(|c| notify::anything_due(c, now_ms()))
            .await
        {
            Ok(true) => {}
            Ok(false) => continue,
            Err(err) => {
                tracing::warn!(error = %err, "cannot look for due notifications");
                continue;
            }
        }
        let settings = ingest.notify.clone();
        match ingest
            .store
            .write(move |c| {
                let now = now_ms();
                Ok(notify::escalate_due(c, now, &settings)?
                    + notify::flush_digests(c, now, &settings)?)
            })
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
