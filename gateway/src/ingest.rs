//! The ingestion pipeline: topic check → decode → validate → store → rules → alerts, ending in
//! an [`Outcome`] per message that tells the MQTT side whether to acknowledge.
//!
//! Both MQTT sources use it: the embedded broker calls [`Ingest::handle`] from its publish-ACL
//! hook (its PUBACK waits for us); the external client hands whole batches to
//! [`Ingest::handle_batch`] and acks them after the commit. Decoding (the CPU part) happens on
//! the caller's task; storing, evaluating the rules and opening alerts (with their e-mails)
//! happen in one write job, so an acknowledged reading that breaches a rule always has its
//! alert, even across a crash (docs/architecture.md invariants 1, 3, 4). What one message does
//! inside that job is [`apply`].

mod apply;

use crate::alerts::{AlertTx, Changes};
use crate::app::App;
use crate::metrics::Metrics;
use crate::store::rollups::Rollups;
use crate::store::StoreHandle;
use crate::store::{forward, readings, StoreError};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vigil_domain::views::{LiveEvent, LiveMessage};
use vigil_domain::{EventKind, Reading};
use vigil_protocol::validate::{self, DeviceInfo};
use vigil_protocol::{topic, Decoded, Limits, Reject};
use vigil_store::db::Connection;

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

/// One received MQTT message.
#[derive(Debug, Clone)]
pub struct Message {
    /// The authenticated MQTT user name when the broker knows it (embedded mode): a device may
    /// only publish under its own id.
    pub publisher: Option<String>,
    pub topic: String,
    pub payload: Bytes,
    pub received: DateTime<Utc>,
}

/// How long a device record is trusted from the cache. A device disabled with the CLI (another
/// process) is refused within this time.
const DEVICE_TTL: Duration = Duration::from_secs(5);

/// A registry answer (`None`: unknown or disabled) and when it was read. `Arc` so a hit costs a
/// reference count, not three `String` copies.
type Cached = (Option<Arc<DeviceInfo>>, Instant);

/// Device records by id, so a busy device costs one SQL lookup per [`DEVICE_TTL`], not one per
/// message. Used only inside write jobs; a std Mutex, never held across `.await`.
#[derive(Default)]
pub struct DeviceCache {
    map: Mutex<HashMap<String, Cached>>,
}

impl DeviceCache {
    fn get(&self, conn: &Connection, id: &str) -> Result<Option<Arc<DeviceInfo>>, StoreError> {
        let now = Instant::now();
        if let Some((d, at)) = self.map.lock().expect("cache lock never poisoned").get(id) {
            if now.duration_since(*at) < DEVICE_TTL {
                return Ok(d.clone());
            }
        }
        let d = crate::store::devices::device(conn, id)?
            .filter(|d| d.enabled)
            .map(|d| {
                Arc::new(DeviceInfo {
                    id: d.id,
                    patient_id: d.patient_id,
                    kind: d.kind,
                    num: d.num,
                    patient_num: d.patient_num,
                })
            });
        let mut map = self.map.lock().expect("cache lock never poisoned");
        // Bounded: unknown ids are cached too (so garbage cannot hammer the database), so
        // clear it wholesale when a flood of random ids makes it large.
        if map.len() > 100_000 {
            map.clear();
        }
        map.insert(id.to_string(), (d.clone(), now));
        Ok(d)
    }
}

/// How messages are checked and stored (`[ingest]`, `[rules] fall_cancel_seconds`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub limits: Limits,
    pub timing: validate::Timing,
    /// Rejected messages kept for inspection; older ones are dropped.
    pub rejected_keep: i64,
    /// Queue new readings for the InfluxDB sink (`[influxdb] url` set).
    pub forward: bool,
    /// Queue new readings for the FHIR push (`[fhir] push_url` set, issue #18).
    pub fhir_push: bool,
    /// How long a fall waits for the device's "I'm OK" before it raises its alert; 0: at once.
    pub fall_cancel_ms: i64,
}

/// The message handler both MQTT sources hold; cheap to clone.
#[derive(Clone)]
pub struct Ingest(Arc<Shared>);

/// What the handler and its write jobs share (a job gets the `Arc`, not copies).
struct Shared {
    app: App,
    settings: Settings,
    devices: DeviceCache,
    /// Each patient's latest NEWS2 vitals, kept by the write jobs (see [`Vitals`]).
    vitals: Vitals,
}

/// Each patient's latest NEWS2 vitals, so that scoring NEWS2 on every message costs a hash
/// lookup, not five index seeks per device. Filled from the store on a patient's first message
/// after start; only the writer thread touches it. A job whose transaction then fails may leave
/// a value here that the store does not have — a device resends such a reading (it got no ack),
/// so the value comes back anyway.
#[derive(Default)]
pub struct Vitals(std::sync::Mutex<HashMap<i64, readings::LatestVitals>>);

/// A message after the pure stages, ready for the write job: its place in the batch (the
/// message itself stays shared, not copied) and what decoding made of it.
struct Prepared {
    index: usize,
    decoded: Result<(String, Decoded), (Option<String>, Reject)>,
}

#[derive(Default)]
struct Committed {
    fresh: Vec<Reading>,
    duplicates: usize,
    /// The event stored (not a redelivery): its kind and time (epoch ms).
    event: Option<(EventKind, i64)>,
    rejected: Option<(Option<String>, Reject)>,
}

fn prepare(index: usize, msg: &Message, limits: &Limits) -> Prepared {
    let publisher = msg.publisher.as_deref();
    let decoded = match topic::parse(&msg.topic) {
        None => Err((
            msg.publisher.clone(),
            Reject::new(
                "unknown_topic",
                "not vigil/v1/{device_id}/readings|events|status",
            ),
        )),
        Some((device, _)) if publisher.is_some_and(|p| p != device) => Err((
            msg.publisher.clone(),
            Reject::new(
                "topic_not_allowed",
                "a device may publish only under its own id",
            ),
        )),
        Some((device, channel)) => {
            match vigil_protocol::decode(channel, &msg.payload, limits, msg.received) {
                Ok(d) => Ok((device.to_string(), d)),
                Err(r) => Err((Some(device.to_string()), r)),
            }
        }
    };
    Prepared { index, decoded }
}

impl Ingest {
    pub fn new(app: App, settings: Settings) -> Ingest {
        Ingest(Arc::new(Shared {
            app,
            settings,
            devices: DeviceCache::default(),
            vitals: Vitals::default(),
        }))
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.app.metrics
    }

    pub fn limits(&self) -> &Limits {
        &self.0.settings.limits
    }

    pub fn store(&self) -> &StoreHandle {
        &self.0.app.store
    }

    /// Handles one message (embedded broker hook).
    pub async fn handle(&self, publisher: Option<&str>, topic: &str, payload: Bytes) -> Outcome {
        let msg = Message {
            publisher: publisher.map(str::to_string),
            topic: topic.to_string(),
            payload,
            received: Utc::now(),
        };
        self.handle_batch(Arc::new([msg]))
            .await
            .pop()
            .expect("one outcome per message")
    }

    /// Handles messages in one write job; returns one outcome per message, in order. On a store
    /// failure every message of the batch is `Failed`: nothing of it was committed. The batch
    /// is shared, so a caller that retries it copies nothing.
    pub async fn handle_batch(&self, msgs: Arc<[Message]>) -> Vec<Outcome> {
        let n = msgs.len();
        self.0.app.metrics.messages_received.inc_by(n as u64);
        let prepared: Vec<Prepared> = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| prepare(i, m, &self.0.settings.limits))
            .collect();
        let ctx = self.0.clone();
        let result = self
            .0
            .app
            .store
            .write(move |conn| apply_batch(conn, &msgs, prepared, &ctx))
            .await;
        match result {
            Ok((list, changes)) => {
                let now = Utc::now().timestamp_millis();
                let out = list
                    .into_iter()
                    .map(|c| self.after_commit(c, now))
                    .collect();
                self.0.app.alerts.announce(changes);
                out
            }
            Err(err) => {
                self.0.app.metrics.store_errors.inc_by(n as u64);
                tracing::error!(error = %err, messages = n, "messages not stored; not acknowledging");
                vec![Outcome::Failed; n]
            }
        }
    }

    fn after_commit(&self, c: Committed, now: i64) -> Outcome {
        if let Some((device, rej)) = c.rejected {
            self.0.app.metrics.reject(rej.reason);
            tracing::warn!(device_id = device.as_deref().unwrap_or("-"), reason = rej.reason, detail = %rej.detail, "message rejected");
            return Outcome::Rejected(rej.reason);
        }
        for r in &c.fresh {
            for f in &r.flags {
                self.0.app.metrics.flagged(f);
            }
            if r.flags.is_empty() {
                self.0
                    .app
                    .metrics
                    .store_delay(now - r.ts.timestamp_millis());
            }
        }
        let n = c.fresh.len() as u64;
        self.0
            .app
            .metrics
            .readings_received
            .inc_by(n + c.duplicates as u64);
        self.0.app.metrics.readings_stored.inc_by(n);
        self.0
            .app
            .metrics
            .readings_duplicate
            .inc_by(c.duplicates as u64);
        if c.event.is_some() {
            self.0.app.metrics.events_stored.inc_by(1);
        }
        // Building live events costs allocations; skip it when no dashboard listens.
        if self.0.app.live.receiver_count() > 0 {
            for r in c.fresh {
                let _ = self.0.app.live.send(LiveMessage::new(LiveEvent::Reading {
                    patient_id: r.patient_id,
                    metric: r.metric.as_str().to_string(),
                    value: r.value,
                    unit: r.metric.unit(),
                    ts: r.ts,
                }));
            }
        }
        Outcome::Stored
    }
}

/// Per device in a batch: last seen, reported status, and whether its clock looked wrong.
#[derive(Default)]
struct Seen {
    at: i64,
    online: Option<bool>,
    clock_skew: bool,
}

/// The write job: applies every prepared message in order, then records when each device was
/// last seen (once per device per batch, not once per message).
fn apply_batch(
    conn: &Connection,
    msgs: &[Message],
    prepared: Vec<Prepared>,
    ctx: &Shared,
) -> Result<(Vec<Committed>, Changes), StoreError> {
    let mut out = Vec::with_capacity(prepared.len());
    // Alerts the rules call for, opened in this job (lifecycle, e-mails, InfluxDB points).
    let mut tx = ctx.app.alerts.begin(conn);
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut rejected_any = false;
    let mut inserter = readings::ReadingInserter::new(conn)?;
    let mut rollups = Rollups::default();
    // What the InfluxDB sink gets from this job (store-and-forward), when it is on.
    let mut queue = ctx.settings.forward.then(forward::Batch::default);
    // What the FHIR push gets (issue #18), in the same transaction.
    let mut fhir_queue = ctx
        .settings
        .fhir_push
        .then(crate::store::fhir::Queue::default);
    // Threshold orders added since the last job (API or CLI) apply from this one.
    ctx.app
        .patient_rules
        .refresh(conn, crate::store::now_ms())?;
    if conn.dialect() == crate::store::db::Dialect::Postgres {
        prepare_shared(conn, msgs, &prepared, ctx, &mut tx, &mut inserter)?;
    }
    for p in prepared {
        let msg = &msgs[p.index];
        let received_ms = msg.received.timestamp_millis();
        let mut c = Committed::default();
        let outcome = match p.decoded {
            Err(rej) => Err(rej),
            Ok((device_id, decoded)) => match ctx.devices.get(conn, &device_id)? {
                Some(info) => {
                    let status = match decoded {
                        Decoded::Status { online } => Some(online),
                        _ => None,
                    };
                    let r = apply::apply(
                        &mut inserter,
                        &info,
                        decoded,
                        msg.received,
                        ctx,
                        &mut tx,
                        &mut c,
                    )?
                    .map_err(|r| (Some(info.id.clone()), r));
                    for fresh in &c.fresh {
                        let ts = fresh.ts.timestamp_millis();
                        rollups.add(info.patient_num, fresh.metric, ts, fresh.value);
                    }
                    if let Some(q) = &mut fhir_queue {
                        for r in &c.fresh {
                            q.reading(info.num, r.metric, r.ts.timestamp_millis());
                        }
                    }
                    if let Some(q) = &mut queue {
                        c.fresh.iter().for_each(|r| q.reading(r));
                        if let Some((kind, ts)) = c.event {
                            q.event(&info.patient_id, &info.id, kind.as_str(), ts);
                        }
                    }
                    // Look up before inserting: a busy device costs no `String` copy per message.
                    if !seen.contains_key(&info.id) {
                        seen.insert(info.id.clone(), Seen::default());
                    }
                    let e = seen.get_mut(&info.id).expect("inserted above");
                    e.at = e.at.max(received_ms);
                    e.online = status.or(e.online);
                    e.clock_skew |= c
                        .fresh
                        .iter()
                        .any(|r| r.flags.iter().any(|f| f == "clock_skew"));
                    r
                }
                None => Err((
                    Some(device_id),
                    Reject::new("unknown_device", "device is not registered or is disabled"),
                )),
            },
        };
        if let Err((device, rej)) = outcome {
            readings::insert_rejected(
                conn,
                device.as_deref(),
                &msg.topic,
                rej.reason,
                &rej.detail,
                &msg.payload,
                received_ms,
            )?;
            c.rejected = Some((device, rej));
            rejected_any = true;
        }
        out.push(c);
    }
    rollups.flush(conn)?;
    if let Some(q) = queue {
        q.enqueue(conn, crate::store::now_ms())?;
    }
    if let Some(q) = fhir_queue {
        q.enqueue(conn, crate::store::now_ms())?;
    }
    for (id, s) in seen {
        crate::store::devices::set_device_status(conn, &id, s.online, s.at)?;
        if s.clock_skew {
            crate::store::devices::mark_clock_skew(conn, &id, s.at)?;
        }
    }
    if rejected_any {
        readings::trim_rejected(conn, ctx.settings.rejected_keep)?;
    }
    if conn.dialect() == crate::store::db::Dialect::Postgres {
        tell_others(conn, &out)?;
    }
    Ok((out, tx.finish()?))
}

/// A job on a PostgreSQL store several gateways may share (issue #20): first its patients are
/// made its own until it commits (advisory locks), then its readings are stored in a few
/// multi-row statements (one round trip per reading held a gateway at ≈ 12 000 readings/s),
/// so the per-message work only asks which were new. Validation is pure, so the messages are
/// validated here exactly as `apply` validates them again.
fn prepare_shared(
    conn: &Connection,
    msgs: &[Message],
    prepared: &[Prepared],
    ctx: &Shared,
    tx: &mut AlertTx<'_>,
    inserter: &mut readings::ReadingInserter<'_>,
) -> Result<(), StoreError> {
    let mut devices = Vec::new();
    let mut rows = Vec::new();
    for p in prepared {
        let Ok((device_id, decoded)) = &p.decoded else {
            continue;
        };
        let Some(info) = ctx.devices.get(conn, device_id)? else {
            continue;
        };
        if let Decoded::Readings { readings, .. } = decoded {
            let received = msgs[p.index].received;
            if let Ok(valid) =
                validate::validate(&info, readings.clone(), received, &ctx.settings.timing)
            {
                rows.extend(
                    valid
                        .into_iter()
                        .map(|r| (info.clone(), r, received.timestamp_millis())),
                );
            }
        }
        devices.push(info);
    }
    tx.lock_patients(devices.iter().map(|i| i.patient_id.as_str()))?;
    let rows: Vec<(&DeviceInfo, &Reading, i64)> =
        rows.iter().map(|(d, r, t)| (&**d, r, *t)).collect();
    inserter.store_ahead(conn, &rows)
}

/// The other gateways' dashboards hear of this job's readings when it commits (issue #20):
/// the latest value per patient and metric.
fn tell_others(conn: &Connection, out: &[Committed]) -> Result<(), StoreError> {
    let mut latest: HashMap<(&str, i64), (f64, i64)> = HashMap::new();
    for r in out.iter().flat_map(|c| &c.fresh) {
        let ts = r.ts.timestamp_millis();
        let e = latest
            .entry((r.patient_id.as_str(), r.metric.code()))
            .or_insert((r.value, ts));
        if ts >= e.1 {
            *e = (r.value, ts);
        }
    }
    let list: Vec<_> = latest
        .into_iter()
        .map(|((p, m), (v, ts))| (p.to_string(), m, v, ts))
        .collect();
    crate::store::live::tell(conn, &list, &[])
}
