//! The ingestion pipeline for one MQTT message: topic check → decode → validate → store →
//! rules → alerts, ending in an [`Outcome`] that tells the MQTT side whether to acknowledge.
//!
//! Both MQTT sources call [`Ingest::handle`]: the embedded broker from its publish-ACL hook
//! (its PUBACK waits for us), the external client before it acks. Storing, evaluating the rules
//! and opening alerts (with their e-mails) happen in one transaction, so an acknowledged reading
//! that breaches a rule always has its alert, even across a crash (design invariants 1, 3, 4).

use crate::decode::{self, Decoded, Reject};
use crate::metrics::Metrics;
use crate::store::alerts::{self, NotifySettings, Raised};
use crate::store::{readings, registry, StoreHandle};
use crate::validate::{self, DeviceInfo};
use chrono::Utc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::sync::{broadcast, Notify};
use vigil_alerting::RuleSet;
use vigil_domain::views::LiveEvent;
use vigil_domain::Reading;

/// What the MQTT side should do with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored (or a harmless duplicate): acknowledge.
    Stored,
    /// Not a valid message; its rejection record is committed: acknowledge, do not route.
    Rejected(&'static str),
    /// The store failed: do not acknowledge, so the device or broker delivers it again.
    Failed,
}

/// Everything a message handler needs; cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    pub store: StoreHandle,
    pub metrics: Arc<Metrics>,
    pub rules: Arc<RuleSet>,
    pub notify: Arc<NotifySettings>,
    /// Live updates for dashboards; lagging receivers lose old updates, never block us.
    pub live: broadcast::Sender<LiveEvent>,
    /// Wakes the outbox when e-mails were queued.
    pub outbox_wake: Arc<Notify>,
}

#[derive(Default)]
struct Committed {
    fresh: Vec<Reading>,
    duplicates: usize,
    event_stored: bool,
    raised: Vec<Raised>,
    rejected: Option<(Option<String>, Reject)>,
}

impl Ingest {
    /// Handles one message. `publisher` is the authenticated MQTT username when the broker
    /// knows it (embedded mode): a device may only publish under its own id.
    pub async fn handle(&self, publisher: Option<&str>, topic: &str, payload: &[u8]) -> Outcome {
        self.metrics.messages_received.fetch_add(1, Relaxed);
        let received = Utc::now();
        let pre: Result<(String, decode::Channel, Decoded), (Option<String>, Reject)> =
            match decode::parse_topic(topic) {
                None => Err((
                    publisher.map(str::to_string),
                    Reject::new(
                        "unknown_topic",
                        "not vigil/v1/{device_id}/readings|events|status",
                    ),
                )),
                Some((device, _)) if publisher.is_some_and(|p| p != device) => Err((
                    publisher.map(str::to_string),
                    Reject::new(
                        "topic_not_allowed",
                        "a device may publish only under its own id",
                    ),
                )),
                Some((device, channel)) => match decode::decode(channel, payload) {
                    Ok(d) => Ok((device.to_string(), channel, d)),
                    Err(r) => Err((Some(device.to_string()), r)),
                },
            };
        let rules = self.rules.clone();
        let notify = self.notify.clone();
        let topic_owned = topic.to_string();
        let payload_owned = payload.to_vec();
        let result = self
            .store
            .write(move |conn| {
                let received_ms = received.timestamp_millis();
                let mut out = Committed::default();
                let outcome = match pre {
                    Err(rej) => Err(rej),
                    Ok((device_id, _channel, decoded)) => {
                        match registry::device(conn, &device_id)? {
                            Some(d) if d.enabled => {
                                registry::set_device_status(
                                    conn,
                                    &d.id,
                                    match decoded {
                                        Decoded::Status { online } => Some(online),
                                        _ => None,
                                    },
                                    received_ms,
                                )?;
                                let info = DeviceInfo {
                                    id: d.id,
                                    patient_id: d.patient_id,
                                    kind: d.kind,
                                };
                                apply(conn, &info, decoded, received, &rules, &notify, &mut out)?
                                    .map_err(|r| (Some(info.id.clone()), r))
                            }
                            _ => Err((
                                Some(device_id),
                                Reject::new(
                                    "unknown_device",
                                    "device is not registered or is disabled",
                                ),
                            )),
                        }
                    }
                };
                if let Err((device, rej)) = outcome {
                    readings::insert_rejected(
                        conn,
                        device.as_deref(),
                        &topic_owned,
                        rej.reason,
                        &rej.detail,
                        &payload_owned,
                        received_ms,
                    )?;
                    out.rejected = Some((device, rej));
                }
                Ok(out)
            })
            .await;
        match result {
            Ok(c) => self.after_commit(c),
            Err(err) => {
                self.metrics.store_errors.fetch_add(1, Relaxed);
                tracing::error!(error = %err, topic, "message not stored; not acknowledging");
                Outcome::Failed
            }
        }
    }

    fn after_commit(&self, c: Committed) -> Outcome {
        if let Some((device, rej)) = c.rejected {
            self.metrics.reject(rej.reason);
            tracing::warn!(device_id = device.as_deref().unwrap_or("-"), reason = rej.reason, detail = %rej.detail, "message rejected");
            return Outcome::Rejected(rej.reason);
        }
        let n = c.fresh.len() as u64;
        self.metrics
            .readings_received
            .fetch_add(n + c.duplicates as u64, Relaxed);
        self.metrics.readings_stored.fetch_add(n, Relaxed);
        self.metrics
            .readings_duplicate
            .fetch_add(c.duplicates as u64, Relaxed);
        if c.event_stored {
            self.metrics.events_stored.fetch_add(1, Relaxed);
        }
        for r in c.fresh {
            // No receivers is normal (no dashboard open).
            let _ = self.live.send(LiveEvent::Reading {
                patient_id: r.patient_id,
                metric: r.metric.as_str().to_string(),
                value: r.value,
                unit: r.metric.unit(),
                ts: r.ts,
            });
        }
        let mut wake = false;
        for raised in c.raised {
            if let Raised::Updated { alert_id } = raised {
                tracing::debug!(alert_id, "active alert updated");
            } else if let Raised::Opened { alert, emails } = raised {
                self.metrics.alert_raised(alert.severity.as_str());
                self.metrics.emails_queued.fetch_add(emails as u64, Relaxed);
                wake |= emails > 0;
                tracing::info!(alert_id = alert.id, patient_id = %alert.patient_id, rule = %alert.rule, severity = alert.severity.as_str(), emails, "alert raised");
                let _ = self.live.send(LiveEvent::Alert { alert: *alert });
            }
        }
        if wake {
            self.outbox_wake.notify_one();
        }
        Outcome::Stored
    }
}

/// Applies a decoded message from a known, enabled device inside the write transaction.
/// `Ok(Err(reject))` is a validation rejection; `Err(_)` a store error.
fn apply(
    conn: &rusqlite::Connection,
    device: &DeviceInfo,
    decoded: Decoded,
    received: chrono::DateTime<Utc>,
    rules: &RuleSet,
    notify: &NotifySettings,
    out: &mut Committed,
) -> Result<Result<(), Reject>, crate::store::StoreError> {
    match decoded {
        Decoded::Status { .. } => {}
        Decoded::Readings(raw) => {
            let valid = match validate::validate(device, raw, received) {
                Ok(v) => v,
                Err(rej) => return Ok(Err(rej)),
            };
            let total = valid.len();
            let fresh = readings::insert_readings(conn, valid, received.timestamp_millis())?;
            out.duplicates = total - fresh.len();
            for r in &fresh {
                for b in rules.evaluate_reading(r) {
                    out.raised
                        .push(alerts::raise(conn, &r.patient_id, &b, None, r.ts, notify)?);
                }
            }
            out.fresh = fresh;
        }
        Decoded::Event { kind, ts } => {
            let ts = ts.unwrap_or(received);
            if ts > received + validate::MAX_FUTURE_SKEW {
                return Ok(Err(Reject::new("bad_timestamp", "ts is in the future")));
            }
            out.event_stored = readings::insert_event(
                conn,
                &device.patient_id,
                &device.id,
                kind,
                ts.timestamp_millis(),
                received.timestamp_millis(),
            )?;
            if out.event_stored {
                for b in rules.evaluate_event(kind) {
                    out.raised.push(alerts::raise(
                        conn,
                        &device.patient_id,
                        &b,
                        Some(kind),
                        ts,
                        notify,
                    )?);
                }
            }
        }
    }
    Ok(Ok(()))
}
