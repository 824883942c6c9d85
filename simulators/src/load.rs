//! Load mode: many connections publishing pre-encoded readings as fast as allowed, counting
//! what the broker acknowledged (the basic form of issue #7's `vigil-sim load`).
//!
//! Every message carries one `heart_rate` reading — or, like a home hub, a batch of
//! `readings_per_message` — whose time is unique per device (`start_ms + index · step_ms`), so the
//! gateway's duplicate check never hides a reading, and whose value is a function of the index
//! ([`expected_value`]) so tests can spot-check what was stored.

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil_protocol::topic::{self, Channel};

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub host: String,
    pub port: u16,
    /// Device ids to publish for; connection `i` publishes for devices `i, i+C, i+2C, …`.
    pub devices: Vec<String>,
    /// MQTT password per device when the broker authenticates (same order as `devices`);
    /// connection `i` logs in as device `i`.
    pub passwords: Option<Vec<String>>,
    pub connections: usize,
    /// Messages per device.
    pub messages_per_device: u64,
    /// Target total messages per second; 0 means as fast as the broker takes them.
    pub rate: u64,
    pub qos: QoS,
    /// Time of the first reading (epoch ms); reading `i` of a device is at
    /// `start_ms + i · step_ms`.
    pub start_ms: i64,
    /// Milliseconds between a device's readings (1 by default; 1 000 for a 1 Hz history).
    pub step_ms: i64,
    /// Readings in one message: 1 sends a single reading, more send a hub batch
    /// (`{"readings": [...]}`, docs/mqtt.md). Message `m` carries readings `m·n … m·n + n − 1`.
    pub readings_per_message: u64,
    /// Stamp each message with the time it is published (strictly increasing per device)
    /// instead of `start_ms + i · step_ms`: Vigil's `vigil_reading_store_delay_seconds` then
    /// measures publish → stored, through any broker (issue #7).
    pub live_ts: bool,
}

#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub sent: u64,
    /// PUBACKs received (QoS 1); equals `sent` at QoS 0.
    pub acked: u64,
    pub elapsed: Duration,
    /// QoS 1: milliseconds from a PUBLISH leaving the client to its PUBACK, per message. Vigil's
    /// embedded broker acknowledges after the reading's transaction commits, so there this is
    /// publish → stored; an external broker acknowledges on receipt.
    pub ack_ms: Vec<f32>,
}

impl LoadReport {
    pub fn rate(&self) -> f64 {
        self.acked as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The message with index `m` of a device, its first reading at `ts0` and the next ones
/// `step_ms` apart.
fn payload(m: u64, per_message: u64, ts0: i64, step_ms: i64) -> String {
    let first = m * per_message.max(1);
    let one = |i: u64| {
        format!(
            r#"{{"metric":"heart_rate","value":{},"unit":"/min","ts":{}}}"#,
            expected_value(i),
            ts0 + (i - first) as i64 * step_ms
        )
    };
    if per_message <= 1 {
        return one(m);
    }
    let items: Vec<String> = (m * per_message..(m + 1) * per_message).map(one).collect();
    format!(r#"{{"readings":[{}]}}"#, items.join(","))
}

/// The value published as reading `index` of any device.
pub fn expected_value(index: u64) -> f64 {
    (60 + index % 60) as f64
}

/// Shared progress counters, readable while the load runs (tests use them to time crashes).
#[derive(Debug, Default)]
pub struct Progress {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
}

pub async fn run(cfg: LoadConfig, progress: Arc<Progress>) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(cfg.connections > 0, "at least one connection");
    anyhow::ensure!(
        cfg.devices.len() >= cfg.connections,
        "at least one device per connection"
    );
    let start = Instant::now();
    let per_conn_rate = if cfg.rate == 0 {
        0.0
    } else {
        cfg.rate as f64 / cfg.connections as f64
    };
    let mut tasks = Vec::new();
    for c in 0..cfg.connections {
        let devices: Vec<String> = cfg
            .devices
            .iter()
            .skip(c)
            .step_by(cfg.connections)
            .cloned()
            .collect();
        let login = cfg
            .passwords
            .as_ref()
            .map(|p| (cfg.devices[c].clone(), p[c].clone()));
        tasks.push(tokio::spawn(connection(
            cfg.clone(),
            c,
            devices,
            login,
            per_conn_rate,
            progress.clone(),
        )));
    }
    let mut ack_ms = Vec::new();
    for t in tasks {
        ack_ms.extend(t.await??);
    }
    Ok(LoadReport {
        sent: progress.sent.load(Relaxed),
        acked: progress.acked.load(Relaxed),
        elapsed: start.elapsed(),
        ack_ms,
    })
}

async fn connection(
    cfg: LoadConfig,
    index: usize,
    devices: Vec<String>,
    login: Option<(String, String)>,
    rate: f64,
    progress: Arc<Progress>,
) -> anyhow::Result<Vec<f32>> {
    // A device may only use its own client ids (`{device id}-…`, docs/mqtt.md).
    let client_id = match &login {
        Some((user, _)) => format!("{user}-load-{}", std::process::id()),
        None => format!("vigil-sim-load-{index}-{}", std::process::id()),
    };
    let mut o = MqttOptions::new(client_id, cfg.host.clone(), cfg.port);
    o.set_keep_alive(Duration::from_secs(30));
    // Few connections carry many messages each; many connections (one per device) carry few.
    // rumqttc sizes per-connection state by these numbers, so keep them small when there are
    // thousands of connections (at 1000 each, 10 000 connections took 12 GB).
    let window: u16 = if cfg.connections > 64 { 16 } else { 1000 };
    o.set_inflight(window);
    if let Some((user, pass)) = login {
        o.set_credentials(user, pass);
    }
    let (client, mut eventloop) = AsyncClient::new(o, usize::from(window));
    let total = devices.len() as u64 * cfg.messages_per_device;
    let qos = cfg.qos;
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    // The event loop runs beside the publisher and counts acknowledgements. Once everything is
    // published it waits at most ACK_WAIT for each further event, so a lossy run ends and is
    // reported with acked < sent instead of hanging.
    const ACK_WAIT: Duration = Duration::from_secs(20);
    const CONNECT_PATIENCE: Duration = Duration::from_secs(300);
    let started = Instant::now();
    let acks = tokio::spawn({
        let progress = progress.clone();
        async move {
            let mut acked = 0u64;
            let mut connected_once = false;
            // When each packet id went out; a PUBACK names the id (MQTT 3.1.1 §3.4).
            let mut out_at: std::collections::HashMap<u16, Instant> = Default::default();
            let mut ack_ms: Vec<f32> = Vec::new();
            loop {
                let ev = if *done_rx.borrow() {
                    match tokio::time::timeout(ACK_WAIT, eventloop.poll()).await {
                        Ok(ev) => ev,
                        Err(_) => return Ok(ack_ms),
                    }
                } else {
                    eventloop.poll().await
                };
                match ev {
                    Ok(Event::Outgoing(rumqttc::Outgoing::Publish(pkid))) if pkid != 0 => {
                        out_at.insert(pkid, Instant::now());
                    }
                    Ok(Event::Incoming(Packet::PubAck(ack))) => {
                        acked += 1;
                        progress.acked.fetch_add(1, Relaxed);
                        if let Some(t) = out_at.remove(&ack.pkid) {
                            ack_ms.push(t.elapsed().as_secs_f32() * 1000.0);
                        }
                    }
                    Ok(Event::Incoming(Packet::ConnAck(_))) => connected_once = true,
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return Ok(ack_ms),
                    Ok(_) => {}
                    Err(e) => {
                        // Thousands of devices connecting at once queue at the broker (each
                        // password check is deliberately slow): keep trying for a while.
                        if !connected_once && started.elapsed() > CONNECT_PATIENCE {
                            return Err(anyhow::anyhow!("cannot connect: {e}"));
                        }
                        // rumqttc resends unacknowledged QoS 1 messages after reconnecting.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
                if qos == QoS::AtMostOnce {
                    continue;
                }
                if acked >= total {
                    return Ok(ack_ms);
                }
            }
        }
    });
    let started = Instant::now();
    let mut n = 0u64;
    let per_message = cfg.readings_per_message.max(1);
    // Live stamps: the last one used per device, so a device's times never repeat.
    let mut last_ts = vec![i64::MIN; devices.len()];
    for i in 0..cfg.messages_per_device {
        for (k, d) in devices.iter().enumerate() {
            let ts0 = if cfg.live_ts {
                let now = chrono::Utc::now().timestamp_millis();
                let ts = now.max(last_ts[k].saturating_add(1));
                last_ts[k] = ts + (per_message as i64 - 1) * cfg.step_ms;
                ts
            } else {
                cfg.start_ms + (i * per_message) as i64 * cfg.step_ms
            };
            let payload = payload(i, cfg.readings_per_message, ts0, cfg.step_ms);
            client
                .publish(topic::topic(d, Channel::Readings), qos, false, payload)
                .await?;
            progress.sent.fetch_add(1, Relaxed);
            n += 1;
            if rate > 0.0 {
                let due = Duration::from_secs_f64(n as f64 / rate);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
    let _ = done_tx.send(true);
    if qos == QoS::AtMostOnce {
        progress.acked.fetch_add(n, Relaxed);
        // Give the event loop time to write everything out before disconnecting.
        tokio::time::sleep(Duration::from_millis(500)).await;
        client.disconnect().await?;
    }
    acks.await?
}
