//! Raises the alerts of deferred events once their cancel window has passed (issue #5): a
//! `fall` waits `rules.fall_cancel_seconds` for the device's `ok` (see `store::pending`). The
//! waiting events are in the store, so a restart neither loses nor repeats one; the alert is
//! raised at most about a second after the window closes.

use crate::ingest::Ingest;
use crate::store::{alerts, ms_to_time, now_ms, pending};
use std::time::Duration;
use tokio::sync::watch;

/// Longest sleep between looks: bounds how late a due event is raised.
const TICK: Duration = Duration::from_secs(1);

pub async fn run(ingest: Ingest, mut shutdown: watch::Receiver<bool>) {
    loop {
        let wait = match ingest.store.read(pending::next_due).await {
            Ok(Some(due)) => Duration::from_millis((due - now_ms()).clamp(0, 1000) as u64),
            Ok(None) => TICK,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read deferred events");
                TICK
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        let (rules, notify) = (ingest.rules.clone(), ingest.notify.clone());
        let raised = ingest
            .store
            .write(move |c| {
                let mut raised = Vec::new();
                for d in pending::due(c, now_ms(), 100)? {
                    for b in rules.evaluate_event(d.kind) {
                        raised.push(alerts::raise(
                            c,
                            &d.patient_id,
                            &b,
                            Some(d.kind),
                            ms_to_time(d.ts),
                            &notify,
                        )?);
                    }
                    pending::forget(c, d.event_id)?;
                }
                Ok(raised)
            })
            .await;
        match raised {
            Ok(raised) => ingest.announce(raised),
            // Still pending in the store: the next look tries again.
            Err(err) => tracing::warn!(error = %err, "cannot raise deferred alerts"),
        }
    }
}
