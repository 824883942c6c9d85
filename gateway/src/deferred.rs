//! Raises the alerts of deferred events once their cancel window has passed (issue #5): a
//! `fall` waits `rules.fall_cancel_seconds` for the device's `ok` (see `store::pending`). The
//! waiting events are in the store, so a restart neither loses nor repeats one; the alert is
//! raised, through the alert service, at most about a second after the window closes.

use crate::alerts::{AlertService, AlertTx};
use crate::duty::Duty;
use crate::periodic;
use crate::store::{ms_to_time, now_ms, pending, Result, StoreHandle};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use vigil_alerting::RuleSet;

/// Longest sleep between looks: bounds how late a due event is raised.
const TICK: Duration = Duration::from_secs(1);

pub async fn run(
    store: StoreHandle,
    alerts: AlertService,
    rules: Arc<RuleSet>,
    duty: Duty,
    shutdown: watch::Receiver<bool>,
) {
    periodic::paced(shutdown, Duration::ZERO, || async {
        // Several gateways: the lease holder raises them (issue #20).
        if !duty.held().await {
            return TICK;
        }
        let rules = rules.clone();
        if let Err(err) = alerts
            .write(&store, move |tx| raise_due(tx, &rules, now_ms()))
            .await
        {
            // Still pending in the store: the next look tries again.
            tracing::warn!(error = %err, "cannot raise deferred alerts");
        }
        match store.read(pending::next_due).await {
            Ok(Some(due)) => Duration::from_millis((due - now_ms()).clamp(0, 1000) as u64),
            Ok(None) => TICK,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read deferred events");
                TICK
            }
        }
    })
    .await
}

/// Raises the alerts of the deferred events due at `now` (at most 100 per job).
pub fn raise_due(tx: &mut AlertTx<'_>, rules: &RuleSet, now: i64) -> Result<()> {
    for d in pending::due(tx.conn(), now, 100)? {
        for b in rules.evaluate_event(d.kind) {
            let id = tx.raise(&d.patient_id, &b, Some(d.kind), ms_to_time(d.ts))?;
            if let Some(device) = &d.device_id {
                crate::store::alerts::set_source(tx.conn(), id, device, None)?;
            }
        }
        pending::forget(tx.conn(), d.event_id)?;
    }
    Ok(())
}
