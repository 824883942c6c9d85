//! External broker mode (a basic client; the ingestion issue #3 makes it production-grade).
//!
//! Subscribes with QoS 1 to `vigil/v1/+/readings|events|status` with a persistent session
//! (clean session off) and acknowledges each message manually after [`Ingest::handle`] has
//! committed it. Each message goes to a worker task over a bounded channel; the worker stores
//! and acks in arrival order. When the channel is full the poll loop waits for the worker,
//! which can always finish because its acks have room in the client's request channel.

use crate::config::MqttConfig;
use crate::ingest::{Ingest, Outcome};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Messages received but not yet stored. When full the poll loop stops reading until the
/// worker catches up (the broker keeps the rest: its in-flight window bounds what it sends).
const PENDING: usize = 1024;

pub const TOPICS: [&str; 3] = [
    "vigil/v1/+/readings",
    "vigil/v1/+/events",
    "vigil/v1/+/status",
];

fn options(cfg: &MqttConfig) -> anyhow::Result<MqttOptions> {
    let url = cfg
        .broker_url
        .strip_prefix("mqtt://")
        .ok_or_else(|| anyhow::anyhow!("mqtt.broker_url: only mqtt:// is supported in this build (mqtts:// comes with issue #3)"))?;
    let (host, port) = match url.trim_end_matches('/').rsplit_once(':') {
        Some((h, p)) => (
            h.to_string(),
            p.parse()
                .map_err(|_| anyhow::anyhow!("mqtt.broker_url: bad port"))?,
        ),
        None => (url.to_string(), 1883),
    };
    let mut o = MqttOptions::new(cfg.client_id.clone(), host, port);
    o.set_clean_session(false);
    o.set_manual_acks(true);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_inflight(100);
    if !cfg.username.is_empty() {
        o.set_credentials(cfg.username.clone(), cfg.password.clone());
    }
    Ok(o)
}

pub async fn run(
    cfg: MqttConfig,
    ingest: Ingest,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    // The request channel holds more than every message that can be pending, so the worker's
    // acks never wait for the poll loop while the poll loop waits for the worker (the deadlock
    // in `../shared/design.md`, "rumqttc: never block the poll() loop").
    let (client, mut eventloop) = AsyncClient::new(options(&cfg)?, 2 * PENDING + 16);
    let (tx, mut rx) = mpsc::channel::<rumqttc::Publish>(PENDING);
    let worker_client = client.clone();
    let worker_ingest = ingest.clone();
    let worker = tokio::spawn(async move {
        while let Some(p) = rx.recv().await {
            let topic = p.topic.clone();
            match worker_ingest.handle(None, &topic, &p.payload).await {
                Outcome::Stored | Outcome::Rejected(_) => {
                    if let Err(err) = worker_client.ack(&p).await {
                        tracing::warn!(error = %err, "cannot ack");
                    }
                }
                // Not acked: the broker redelivers it on the next session resume.
                Outcome::Failed => {}
            }
        }
    });
    let mut backoff = Duration::from_millis(200);
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            ev = eventloop.poll() => match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff = Duration::from_millis(200);
                    tracing::info!(broker = %cfg.broker_url, "connected to MQTT broker");
                    // Resubscribe on every connection: the broker may have lost the session.
                    client.try_subscribe_many(
                        TOPICS.map(|t| rumqttc::SubscribeFilter::new(t.to_string(), QoS::AtLeastOnce)),
                    )?;
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    // Ready only once subscribed: before that, new messages would not reach us.
                    ingest.metrics.mqtt_up.store(true, Relaxed);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send(p).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    ingest.metrics.mqtt_up.store(false, Relaxed);
                    tracing::warn!(error = %err, retry_in_ms = backoff.as_millis() as u64, "MQTT connection lost");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
    drop(tx);
    let _ = worker.await;
    let _ = client.try_disconnect();
    Ok(())
}
