//! The notification loop (issue #5): once a second, runs the escalation steps that are due —
//! secondary contacts after `notify.escalate_after_seconds`, reminders every
//! `notify.repeat_seconds` — for red alerts nobody has acknowledged, and sends the digests of
//! non-critical alerts that may go (`notify.min_interval`, quiet hours), through the alert
//! service (which wakes the outbox). Everything it works from is in the store
//! (`alerts.next_notify_at`, `digest_items`), so it survives a restart; the policy is
//! `vigil_notify::policy`, tested with a simulated clock.

use crate::alerts::AlertService;
use crate::duty::Duty;
use crate::periodic;
use crate::store::{notify, now_ms, StoreHandle};
use std::time::Duration;
use tokio::sync::watch;

/// How late a due step may run.
const TICK: Duration = Duration::from_secs(1);

pub async fn run(
    store: StoreHandle,
    alerts: AlertService,
    duty: Duty,
    shutdown: watch::Receiver<bool>,
) {
    periodic::every(TICK, shutdown, || async {
        // Several gateways: the lease holder escalates (issue #20).
        if !duty.held().await {
            return;
        }
        // A read first: an idle loop never takes the writer.
        match store.read(|c| notify::anything_due(c, now_ms())).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(err) => {
                tracing::warn!(error = %err, "cannot look for due notifications");
                return;
            }
        }
        if let Err(err) = alerts.write(&store, |tx| tx.notify_due(now_ms())).await {
            // Still due in the store: the next tick tries again.
            tracing::warn!(error = %err, "cannot run escalation steps");
        }
    })
    .await
}
