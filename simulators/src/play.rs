//! Plays a [`Scenario`] against an MQTT broker: one connection per device with its own
//! credentials and last will, each message sent when its scenario time comes, `speed` times
//! faster than real time.
//!
//! Time: message `t` is sent at `start + t / speed` and reports `origin + t`. Real time
//! (`speed` 1) reports the wall clock. Accelerated, the origin is placed so the last message
//! of the run reports "now" when it is sent: every reported time is in the past as Vigil sees
//! it, and the alert rules see the scripted timeline, not the replay's speed (a run longer
//! than Vigil's `ingest.late_after_minutes` would mark its first readings late).

use crate::scenario::{Action, Message, Ms, Scenario};
use chrono::{DateTime, Utc};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use vigil_protocol::topic::{self, Channel};

/// Messages are produced a window of scenario time at a time, so a run that never ends (the
/// demo) holds only the next few minutes.
const WINDOW: Ms = 5 * 60 * 1000;

#[derive(Debug, Clone)]
pub struct PlayConfig {
    pub host: String,
    pub port: u16,
    /// Device id → MQTT password.
    pub credentials: HashMap<String, String>,
    pub speed: f64,
    /// Overrides the scenario's duration.
    pub duration: Option<Ms>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlayReport {
    pub devices: usize,
    pub published: u64,
    pub acknowledged: u64,
    /// Messages not sent: the device's connection was down and its queue full.
    pub unsent: u64,
    pub connects: u64,
    pub drops: u64,
}

/// The origin for a run starting at `now` (see the module docs).
pub fn origin_for(
    s: &Scenario,
    speed: f64,
    duration: Option<Ms>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    if let Some(start) = s.start {
        return start;
    }
    match duration.or(s.duration) {
        Some(d) if speed > 1.0 => {
            let behind = d as f64 - d as f64 / speed;
            now - chrono::Duration::milliseconds(behind.round() as i64)
        }
        _ => now,
    }
}

/// Runs every device until the scenario's end (or shutdown). Fails before connecting anything
/// when a device has no credentials.
pub async fn play(
    s: Arc<Scenario>,
    cfg: PlayConfig,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<PlayReport> {
    let duration = cfg.duration.or(s.duration);
    if cfg.speed > 1.0 && duration.is_none() {
        anyhow::bail!("an accelerated run needs a duration (the scenario's or --duration)");
    }
    if !(cfg.speed > 0.0 && cfg.speed.is_finite()) {
        anyhow::bail!("speed must be a positive number");
    }
    let devices: Vec<String> = s
        .patients
        .iter()
        .flat_map(|p| p.devices.iter().map(|d| d.id.clone()))
        .collect();
    if let Some(missing) = devices.iter().find(|d| !cfg.credentials.contains_key(*d)) {
        anyhow::bail!("no credentials for device {missing} (provision the scenario first)");
    }
    let origin = origin_for(&s, cfg.speed, duration, Utc::now());
    let start = tokio::time::Instant::now();
    let counters = Arc::new(Counters::default());
    let mut tasks = JoinSet::new();
    for id in &devices {
        let dev = DeviceRun {
            id: id.clone(),
            secret: cfg.credentials[id].clone(),
            host: cfg.host.clone(),
            port: cfg.port,
            counters: counters.clone(),
            sent: Arc::new(AtomicU64::new(0)),
            acked: Arc::new(AtomicU64::new(0)),
        };
        let (s, speed, shutdown) = (s.clone(), cfg.speed, shutdown.clone());
        tasks.spawn(async move { dev.run(&s, origin, start, speed, duration, shutdown).await });
    }
    loop {
        tokio::select! {
            done = tasks.join_next() => if done.is_none() { break },
            _ = shutdown.changed() => {
                // The device tasks see it too and say goodbye; wait for them.
                while tasks.join_next().await.is_some() {}
                break;
            }
        }
    }
    Ok(PlayReport {
        devices: devices.len(),
        published: counters.published.load(Ordering::Relaxed),
        acknowledged: counters.acked.load(Ordering::Relaxed),
        unsent: counters.unsent.load(Ordering::Relaxed),
        connects: counters.connects.load(Ordering::Relaxed),
        drops: counters.drops.load(Ordering::Relaxed),
    })
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    unsent: AtomicU64,
    acked: AtomicU64,
    connects: AtomicU64,
    drops: AtomicU64,
}

struct DeviceRun {
    id: String,
    secret: String,
    host: String,
    port: u16,
    counters: Arc<Counters>,
    /// This device's publishes and their acknowledgements, to let in-flight messages land
    /// before a planned drop or the end.
    sent: Arc<AtomicU64>,
    acked: Arc<AtomicU64>,
}

/// A live connection: the client and the task that drives its event loop. Aborting the task
/// drops the socket without a DISCONNECT, which is what a device losing power or network does.
struct Conn {
    client: AsyncClient,
    driver: tokio::task::JoinHandle<()>,
}

impl DeviceRun {
    fn status_topic(&self) -> String {
        topic::topic(&self.id, Channel::Status)
    }

    fn connect(&self) -> Conn {
        let status = self.status_topic();
        let mut opts = MqttOptions::new(format!("{}-sim", self.id), self.host.clone(), self.port);
        opts.set_credentials(self.id.clone(), self.secret.clone());
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_last_will(LastWill::new(&status, "offline", QoS::AtLeastOnce, true));
        let (client, mut events) = AsyncClient::new(opts, 256);
        let (c2, counters, id) = (client.clone(), self.counters.clone(), self.id.clone());
        let (acked, sent) = (self.acked.clone(), self.sent.clone());
        let driver = tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        counters.connects.fetch_add(1, Ordering::Relaxed);
                        if c2
                            .try_publish(&status, QoS::AtLeastOnce, true, "online")
                            .is_ok()
                        {
                            counters.published.fetch_add(1, Ordering::Relaxed);
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        counters.acked.fetch_add(1, Ordering::Relaxed);
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::debug!(device_id = %id, error = %err, "simulated device: connection error");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        Conn { client, driver }
    }

    /// Waits (at most 2 s) until everything sent was acknowledged.
    async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while self.acked.load(Ordering::Relaxed) < self.sent.load(Ordering::Relaxed)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn run(
        self,
        s: &Scenario,
        origin: DateTime<Utc>,
        start: tokio::time::Instant,
        speed: f64,
        duration: Option<Ms>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let end = duration.unwrap_or(Ms::MAX);
        let mut conn: Option<Conn> = None;
        let mut from = 0;
        'run: while from < end {
            let until = from.saturating_add(WINDOW).min(end);
            let msgs: Vec<Message> = s.device_window(&self.id, origin, from, until);
            for m in msgs {
                let due = start + Duration::from_secs_f64(m.t as f64 / 1e3 / speed);
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = shutdown.changed() => break 'run,
                }
                match m.action {
                    Action::Connect => {
                        // Overlapping outages in a file could connect twice: one connection.
                        if let Some(old) = conn.replace(self.connect()) {
                            old.driver.abort();
                        }
                    }
                    Action::Drop => {
                        if let Some(c) = conn.take() {
                            self.settle().await;
                            c.driver.abort();
                            self.counters.drops.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Action::Publish { channel, payload } => {
                        if let Some(c) = &conn {
                            let topic = topic::topic(&self.id, channel);
                            // Never wait for a connection that does not come up (a wrong
                            // password, no broker): what the client cannot queue is counted.
                            if c.client
                                .try_publish(topic, QoS::AtLeastOnce, false, payload)
                                .is_ok()
                            {
                                self.counters.published.fetch_add(1, Ordering::Relaxed);
                                self.sent.fetch_add(1, Ordering::Relaxed);
                            } else {
                                self.counters.unsent.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            }
            from = until;
            // A window without messages still takes its time.
            let due = start + Duration::from_secs_f64(from.min(end) as f64 / 1e3 / speed);
            if from < end {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = shutdown.changed() => break 'run,
                }
            }
        }
        if let Some(c) = conn {
            // A device switched off properly says so; give the broker a moment to acknowledge
            // what is still in flight.
            if c.client
                .publish(self.status_topic(), QoS::AtLeastOnce, true, "offline")
                .await
                .is_ok()
            {
                self.counters.published.fetch_add(1, Ordering::Relaxed);
                self.sent.fetch_add(1, Ordering::Relaxed);
            }
            self.settle().await;
            let _ = c.client.try_disconnect();
            tokio::time::sleep(Duration::from_millis(100)).await;
            c.driver.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn accelerated_runs_end_at_now_and_real_time_starts_at_now() {
        let s = Scenario::parse(
            "name = \"x\"\nduration = \"12m\"\n[[patient]]\nid = \"p\"\ncondition = \"copd\"\ndevice = [{ kind = \"hub\" }]",
        )
        .unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap();
        assert_eq!(origin_for(&s, 1.0, None, now), now);
        // 30×: 12 min take 24 s, so t = 12 min reports now + 24 s, when it is sent.
        let o = origin_for(&s, 30.0, None, now);
        assert_eq!(o, now - chrono::Duration::seconds(12 * 60 - 24));
        assert_eq!(
            o + chrono::Duration::minutes(12),
            now + chrono::Duration::seconds(24)
        );
        // --duration overrides the file's; a fixed start wins over both.
        let o = origin_for(&s, 60.0, Some(60_000), now);
        assert_eq!(o, now - chrono::Duration::seconds(59));
        let fixed = Scenario::parse(&format!(
            "start = \"2026-01-01T00:00:00Z\"\n{}",
            "name = \"x\"\n[[patient]]\nid = \"p\"\ncondition = \"copd\"\ndevice = [{ kind = \"hub\" }]"
        ))
        .unwrap();
        assert_eq!(
            origin_for(&fixed, 30.0, Some(60_000), now),
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
        );
    }
}
