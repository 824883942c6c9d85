//! Applying one decoded message inside the write transaction (split from `ingest`): readings
//! validated and stored, their rules evaluated and alerts raised with the readings behind them
//! linked, NEWS2 scored, device events stored (a fall deferred for its cancel window, an "I'm
//! OK" cancelling one), the battery level kept.

use super::{Committed, Shared, Vitals};
use crate::alerts::AlertTx;
use crate::store::rule_states::StoreRuleStates;
use crate::store::{pending, readings, StoreError};
use chrono::{DateTime, Utc};
use vigil_alerting::{Outcome as RuleOutcome, RuleSet};
use vigil_domain::{EventKind, Reading};
use vigil_protocol::validate::{self, DeviceInfo};
use vigil_protocol::{Decoded, Reject};
use vigil_store::db::Connection;

/// Scores NEWS2 for the patient after these new live (not late) readings, when one of them is
/// a NEWS2 vital, and returns the NEWS2 rule it meets, if any.
fn news2(
    conn: &Connection,
    device: &DeviceInfo,
    live: &[&Reading],
    vitals: &Vitals,
    rules: &RuleSet,
) -> Result<Option<vigil_alerting::Breach>, StoreError> {
    if !live
        .iter()
        .any(|r| readings::NEWS2_METRICS.contains(&r.metric))
    {
        return Ok(None);
    }
    let mut cache = vitals.0.lock().unwrap_or_else(|e| e.into_inner());
    let v = match cache.entry(device.patient_num) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        // The store already holds this job's readings: they are in what it returns.
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(readings::latest_vitals(conn, &device.patient_id)?)
        }
    };
    for r in live {
        readings::note_vital(v, r.metric, r.ts.timestamp_millis(), r.value);
    }
    Ok(readings::news2_score(v).and_then(|n| rules.evaluate_news2(&n)))
}

/// Raises a breach and links the readings behind it to the alert it opened or updated, so every
/// triggering reading stays reviewable (`GET /api/v1/alerts/{id}`).
fn raise_linked<'r>(
    tx: &mut AlertTx<'_>,
    device: &DeviceInfo,
    breach: &vigil_alerting::Breach,
    at: DateTime<Utc>,
    readings: impl IntoIterator<Item = &'r Reading>,
) -> Result<(), StoreError> {
    let id = tx.raise(&device.patient_id, breach, None, at)?;
    for r in readings {
        tx.link_reading(id, r, device.num)?;
    }
    Ok(())
}

/// The battery level a message reported, kept with its device.
fn keep_battery(
    conn: &Connection,
    device: &DeviceInfo,
    battery: Option<f64>,
    received: DateTime<Utc>,
) -> Result<(), StoreError> {
    match battery {
        Some(level) => {
            crate::store::devices::set_battery(conn, &device.id, level, received.timestamp_millis())
        }
        None => Ok(()),
    }
}

/// Applies a decoded message from a known, enabled device inside the write transaction.
/// `Ok(Err(reject))` is a validation rejection; `Err(_)` a store error.
pub(super) fn apply(
    inserter: &mut readings::ReadingInserter<'_>,
    device: &DeviceInfo,
    decoded: Decoded,
    received: DateTime<Utc>,
    ctx: &Shared,
    tx: &mut AlertTx<'_>,
    out: &mut Committed,
) -> Result<Result<(), Reject>, StoreError> {
    let (conn, rules) = (tx.conn(), &ctx.app.rules);
    match decoded {
        Decoded::Status { .. } => {}
        Decoded::Readings {
            readings: raw,
            battery,
        } => {
            keep_battery(conn, device, battery, received)?;
            let valid = match validate::validate(device, raw, received, &ctx.settings.timing) {
                Ok(v) => v,
                Err(rej) => return Ok(Err(rej)),
            };
            let total = valid.len();
            let fresh = inserter.insert(device, valid, received.timestamp_millis())?;
            out.duplicates = total - fresh.len();
            // A late reading (a hub flushing its buffer) is history, not news: no real-time
            // alert for it (issue #3).
            let live: Vec<&Reading> = fresh.iter().filter(|r| !r.is_late()).collect();
            // Timed rules' states for this patient: read once, written with this job.
            let mut states = StoreRuleStates::new(conn, device.patient_num);
            // The patient's rules (their threshold orders applied), looked up once per message.
            if !live.is_empty() {
                let prules = ctx.app.patient_rules.get(&device.patient_id);
                for &r in &live {
                    for outcome in prules.evaluate_reading(r, &mut states) {
                        match outcome {
                            RuleOutcome::Breach(b) => raise_linked(tx, device, &b, r.ts, [r])?,
                            RuleOutcome::Cleared {
                                condition, message, ..
                            } => {
                                tx.resolve_cleared(&r.patient_id, &condition, &message, r.ts)?;
                            }
                        }
                    }
                }
                // Rate of change and baselines: only metrics that have such rules look back.
                let mut history = crate::store::rollups::RollupHistory {
                    conn,
                    patient_num: device.patient_num,
                    error: None,
                };
                for &r in live.iter().filter(|r| prules.has_trends(r.metric)) {
                    for b in prules.evaluate_trends(r, &mut history) {
                        raise_linked(tx, device, &b, r.ts, [r])?;
                    }
                }
                if let Some(e) = history.error {
                    return Err(e.into());
                }
            }
            states.finish()?;
            if rules.has_news2() {
                if let Some(b) = news2(conn, device, &live, &ctx.vitals, rules)? {
                    let at = live.iter().map(|r| r.ts).max().unwrap_or(received);
                    // The vitals of this message that went into the score.
                    let vitals = live
                        .iter()
                        .copied()
                        .filter(|r| readings::NEWS2_METRICS.contains(&r.metric));
                    raise_linked(tx, device, &b, at, vitals)?;
                }
            }
            out.fresh = fresh;
        }
        Decoded::Event { kind, ts, battery } => {
            keep_battery(conn, device, battery, received)?;
            // A wrong clock moves the event to the receive time. A late fall or SOS still
            // alerts: the person may still be on the floor.
            let ts = ctx
                .settings
                .timing
                .place(ts.unwrap_or(received), received)
                .0;
            let stored = readings::insert_event(
                conn,
                &readings::NewEvent {
                    patient_id: &device.patient_id,
                    device_id: &device.id,
                    kind,
                    ts_ms: ts.timestamp_millis(),
                    battery,
                },
                received.timestamp_millis(),
            )?;
            if let Some(id) = stored {
                let ts_ms = ts.timestamp_millis();
                out.event = Some((kind, ts_ms));
                match kind {
                    // Recorded now; the alert waits for the cancel window (crate::deferred).
                    EventKind::Fall if ctx.settings.fall_cancel_ms > 0 => {
                        let due = ts_ms + ctx.settings.fall_cancel_ms;
                        pending::defer(conn, id, &device.patient_id, kind, ts_ms, due)?;
                        return Ok(Ok(()));
                    }
                    EventKind::Ok => {
                        let n = pending::cancel_falls(conn, &device.patient_id, ts_ms)?;
                        if n > 0 {
                            tracing::info!(patient_id = %device.patient_id, device_id = %device.id, falls = n, "fall cancelled: the patient reported being OK");
                        }
                    }
                    _ => {}
                }
                // The alert names the device, and a low battery its level (issue #21): the
                // event's own, else the last the device reported.
                let level = match (kind, battery) {
                    (EventKind::BatteryLow, Some(b)) => Some(b),
                    (EventKind::BatteryLow, None) => {
                        crate::store::devices::battery(tx.conn(), &device.id)?
                    }
                    _ => None,
                };
                for b in rules.evaluate_event(kind) {
                    let id = tx.raise(&device.patient_id, &b, Some(kind), ts)?;
                    crate::store::alerts::set_source(tx.conn(), id, &device.id, level)?;
                }
            }
        }
    }
    Ok(Ok(()))
}
