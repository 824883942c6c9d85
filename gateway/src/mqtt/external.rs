//! External broker mode: a rumqttc client of the operator's Mosquitto or EMQX.
//!
//! ```text
//!  poll loop ──(Publish, received at)──▶ bounded channel (PENDING) ──▶ batcher
//!     ▲                                                                 │ decode, one write
//!     └──────────── acks, in arrival order, after the commit ◀──────────┘ job per batch
//! ```
//! - Persistent session (clean session off) with a stable client id, QoS 1 subscriptions to
//!   `vigil/v1/+/readings|events|status` (optionally `$share/{group}/…`), renewed on every
//!   connection; manual acks.
//! - The poll loop only forwards messages and never waits for the batcher: it is also the loop
//!   that sends the acks (docs/architecture.md, "Dependency facts": rumqttc). What
//!   the channel cannot take waits in an overflow queue, bounded in steady state by the
//!   broker's in-flight window; its size is exported as `vigil_mqtt_intake_overflow`. QoS 0
//!   has no in-flight window: past [`OVERFLOW_MAX`] new QoS 0 messages are dropped and counted
//!   (`vigil_mqtt_qos0_dropped`, `mqtt.qos0_when_full = "drop"`, issue #19) while QoS 1 ones
//!   still queue; at twice that, or at [`OVERFLOW_MAX`] with `"block"`, the loop stops reading
//!   from the broker (and keeps writing acks) until the batcher catches up, so TCP pushes back
//!   on the broker, which queues.
//! - Up to two batches are in flight, so decoding the next overlaps committing the last; their
//!   acks still go out in arrival order.
//! - The poll loop writes a committed batch's PUBACKs itself, all into the connection's write
//!   buffer and then one flush. rumqttc's `AsyncClient::ack` flushes every ack on its own: one
//!   `writev` per reading was a fifth of the gateway's CPU while draining a backlog
//!   (docs/benchmarks.md). Acks are only written on the connection that received the message:
//!   after a reconnect the broker redelivers what was not acked (MQTT 3.1.1 §4.4), and an ack
//!   carried over could free a packet id the broker has meanwhile given to a message not yet
//!   stored.
//! - A store failure retries the same batch with backoff instead of acking or dropping it.

use crate::config::{MqttConfig, Qos0WhenFull};
use crate::ingest::{Ingest, Message, Outcome};
use crate::retry;
use anyhow::Context as _;
use chrono::Utc;
use futures::stream::{FuturesOrdered, StreamExt};
use rumqttc::{
    AsyncClient, Event, MqttOptions, Packet, PubAck, PubRec, QoS, Request, SubscribeFilter,
    TlsConfiguration, Transport,
};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use vigil_protocol::topic::{self, Channel};

/// Messages received but not yet handed to a batch. Beyond it they wait in the poll loop's
/// overflow queue, whose size the broker's in-flight window bounds in steady state.
const PENDING: usize = 8192;
/// Received messages the poll loop holds for the batcher before it stops reading from the
/// broker. The 10 000-device benchmark at QoS 0 (issue #7) grew the overflow to 1.4 GiB of
/// RSS without it: a broker sends QoS 0 as fast as the socket takes them. Paused, the loop
/// still writes acks, so nothing waits on it (the deadlock in docs/architecture.md cannot
/// recur); the broker queues instead (Mosquitto: `max_queued_messages`).
const OVERFLOW_MAX: usize = 8 * PENDING;
/// With QoS 0 dropped past [`OVERFLOW_MAX`], where the loop still stops reading: QoS 1
/// messages are bounded by the broker's window, but a broker resuming a session may send far
/// more than it (docs/architecture.md).
const OVERFLOW_HARD: usize = 2 * OVERFLOW_MAX;

/// A message, when it arrived, and the connection (counted from 1) it arrived on.
type Received = (rumqttc::Publish, chrono::DateTime<Utc>, u64);

/// What acknowledging a stored message takes: its packet id, QoS and connection.
#[derive(Debug, Clone, Copy)]
struct Ack {
    pkid: u16,
    qos: QoS,
    connection: u64,
}

/// Committed batches whose acks wait for the poll loop. Small: the loop serves it first.
const ACK_QUEUE: usize = 4;
/// Most messages in one write job.
const MAX_BATCH: usize = 4096;
/// Batches decoding or committing at once.
const IN_FLIGHT_BATCHES: usize = 2;

/// The subscription filters, in a shared group when configured (MQTT 5 §4.8.2 shared
/// subscriptions, which Mosquitto and EMQX also accept from MQTT 3.1.1 clients).
pub fn filters(shared_group: &str) -> Vec<String> {
    Channel::ALL
        .into_iter()
        .map(|c| {
            let t = topic::filter(c);
            if shared_group.is_empty() {
                t
            } else {
                format!("$share/{shared_group}/{t}")
            }
        })
        .collect()
}

fn options(cfg: &MqttConfig) -> anyhow::Result<MqttOptions> {
    let (tls, rest) = if let Some(r) = cfg.broker_url.strip_prefix("mqtts://") {
        (true, r)
    } else if let Some(r) = cfg.broker_url.strip_prefix("mqtt://") {
        (false, r)
    } else {
        anyhow::bail!("mqtt.broker_url: expected mqtt://host:port or mqtts://host:port");
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (
            h.to_string(),
            p.parse()
                .map_err(|_| anyhow::anyhow!("mqtt.broker_url: bad port"))?,
        ),
        // IANA ports: 1883 for MQTT, 8883 for MQTT over TLS.
        None => (rest.to_string(), if tls { 8883 } else { 1883 }),
    };
    let mut o = MqttOptions::new(cfg.client_id.clone(), host, port);
    o.set_clean_session(false);
    o.set_manual_acks(true);
    o.set_keep_alive(Duration::from_secs(30));
    // Hub batches are small, but leave room for large ones (decode caps payloads anyway).
    o.set_max_packet_size(1024 * 1024, 1024 * 1024);
    if !cfg.username.is_empty() {
        o.set_credentials(cfg.username.clone(), cfg.password()?);
    }
    if tls {
        o.set_transport(tls_transport(cfg)?);
    }
    Ok(o)
}

/// TLS with the configured CA (or the system's roots) and an optional client certificate.
/// rustls with the ring provider, the one provider in the dependency graph.
fn tls_transport(cfg: &MqttConfig) -> anyhow::Result<Transport> {
    let read = |key: &str, path: &str| {
        std::fs::read(path).with_context(|| format!("mqtt.{key}: cannot read {path}"))
    };
    let client_auth = match (
        cfg.client_cert_file.is_empty(),
        cfg.client_key_file.is_empty(),
    ) {
        (true, true) => None,
        (false, false) => Some((
            read("client_cert_file", &cfg.client_cert_file)?,
            read("client_key_file", &cfg.client_key_file)?,
        )),
        _ => anyhow::bail!("mqtt.client_cert_file and mqtt.client_key_file go together"),
    };
    if cfg.ca_file.is_empty() && client_auth.is_none() {
        return Ok(Transport::tls_with_default_config());
    }
    let ca = if cfg.ca_file.is_empty() {
        anyhow::bail!("mqtt.ca_file is needed with a client certificate");
    } else {
        read("ca_file", &cfg.ca_file)?
    };
    Ok(Transport::tls_with_config(TlsConfiguration::Simple {
        ca,
        alpn: None,
        client_auth,
    }))
}

pub async fn run(
    cfg: MqttConfig,
    ingest: Ingest,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let (client, mut eventloop) = AsyncClient::new(options(&cfg)?, 64);
    let (tx, rx) = mpsc::channel::<Received>(PENDING);
    let mut shed = Shed {
        drop_qos0: cfg.qos0_when_full == Qos0WhenFull::Drop,
        dropping: false,
    };
    let pause_at = if shed.drop_qos0 {
        OVERFLOW_HARD
    } else {
        OVERFLOW_MAX
    };
    let (ack_tx, mut ack_rx) = mpsc::channel::<Vec<Ack>>(ACK_QUEUE);
    let worker = tokio::spawn(batcher(rx, ack_tx, ingest.clone()));
    let filters = filters(&cfg.shared_group);
    let mut delays = retry::broker();
    // Which connection is current; 0 while disconnected.
    let mut connection = 0u64;
    let mut connections = 0u64;
    // Messages the batcher has no room for yet. The poll loop never waits for the batcher: it
    // also carries the acks, and a broker resuming a session may send far more than its
    // in-flight window at once (docs/architecture.md, "Dependency facts"). Waiting here while
    // the batcher waits for ack room in the request channel deadlocked in the crash test.
    let mut overflow: VecDeque<Received> = VecDeque::new();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            Some(acks) = ack_rx.recv() => {
                write_acks(&mut eventloop, &acks, connection).await;
            }
            permit = tx.reserve(), if !overflow.is_empty() => {
                let Ok(permit) = permit else { break };
                permit.send(overflow.pop_front().expect("not empty"));
                ingest.metrics().intake_overflow.set(overflow.len() as u64);
            }
            ev = eventloop.poll(), if overflow.len() < pause_at => match ev {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    delays = retry::broker();
                    connections += 1;
                    connection = connections;
                    ingest.metrics().mqtt_connects.inc_by(1);
                    tracing::info!(broker = %cfg.broker_url, session_present = ack.session_present, "connected to MQTT broker");
                    // Resubscribe on every connection: the broker may have lost the session.
                    client.try_subscribe_many(
                        filters.iter().map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce)),
                    )?;
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    // Ready only once subscribed: before that, new messages would not reach us.
                    ingest.metrics().mqtt_up.set(1);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let at = Utc::now();
                    let m = ingest.metrics();
                    if !take(&tx, &mut overflow, &mut shed, m, (p, at, connection)) {
                        break;
                    }
                    // The rest of what the same read brought (rumqttc parses up to ten packets
                    // per read and hands them out one per poll): taken here, not one `select!`
                    // round each (issue #19); they arrived together, so at the same time.
                    let mut open = true;
                    while open
                        && overflow.len() < pause_at
                        && matches!(
                            eventloop.state.events.front(),
                            Some(Event::Incoming(Packet::Publish(_)))
                        )
                    {
                        let Some(Event::Incoming(Packet::Publish(p))) =
                            eventloop.state.events.pop_front()
                        else {
                            unreachable!("checked above");
                        };
                        open = take(&tx, &mut overflow, &mut shed, m, (p, at, connection));
                    }
                    if !open {
                        break;
                    }
                    let n = overflow.len() as u64;
                    m.intake_overflow.set(n);
                    m.intake_overflow_peak.inner().fetch_max(n, Relaxed);
                }
                Ok(_) => {}
                Err(err) => {
                    connection = 0;
                    ingest.metrics().mqtt_up.set(0);
                    let wait = delays.next().expect("endless");
                    tracing::warn!(error = %err, retry_in_ms = wait.as_millis() as u64, "MQTT connection lost");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => break,
                    }
                }
            }
        }
    }
    ingest.metrics().mqtt_up.set(0);
    // Stop intake, let the batcher commit and ack what it holds, then disconnect.
    drop(tx);
    let drain = async {
        // The batcher ends once its last batch is committed and its acks are queued.
        let _ = worker.await;
        while let Some(acks) = ack_rx.recv().await {
            write_acks(&mut eventloop, &acks, connection).await;
        }
        let _ = client.disconnect().await;
        // Flush the acks and the DISCONNECT.
        let flush = async { while eventloop.poll().await.is_ok() {} };
        let _ = tokio::time::timeout(Duration::from_secs(2), flush).await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
    Ok(())
}

/// What the intake does with QoS 0 messages it has no room for (`mqtt.qos0_when_full`).
struct Shed {
    /// Drop them past [`OVERFLOW_MAX`] (else the loop stops reading from the broker there).
    drop_qos0: bool,
    /// Dropping now: logged once when it starts and once when it ends.
    dropping: bool,
}

/// Hands a received message to the batcher, or queues it in `overflow` while the batcher has
/// no room (keeping arrival order), or drops it: a QoS 0 message the intake has no room for
/// (MQTT's "at most once"; counted). False when the batcher is gone.
fn take(
    tx: &mpsc::Sender<Received>,
    overflow: &mut VecDeque<Received>,
    shed: &mut Shed,
    metrics: &crate::metrics::Metrics,
    item: Received,
) -> bool {
    let full = overflow.len() >= OVERFLOW_MAX;
    if shed.drop_qos0 && full && item.0.qos == QoS::AtMostOnce {
        metrics.qos0_dropped.inc_by(1);
        if !shed.dropping {
            shed.dropping = true;
            tracing::warn!(
                waiting = overflow.len(),
                "the gateway cannot keep up: dropping QoS 0 messages until it does (vigil_mqtt_qos0_dropped)"
            );
        }
        return true;
    }
    if shed.dropping && !full {
        shed.dropping = false;
        tracing::info!(
            dropped_total = metrics.qos0_dropped.get(),
            "the gateway caught up: QoS 0 messages are taken again"
        );
    }
    if !overflow.is_empty() {
        overflow.push_back(item);
        return true;
    }
    match tx.try_send(item) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(item)) => {
            overflow.push_back(item);
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// Writes the PUBACKs of committed messages into the connection's buffer and flushes once.
/// Acks for messages of an earlier connection are dropped: the broker redelivers those.
async fn write_acks(eventloop: &mut rumqttc::EventLoop, acks: &[Ack], connection: u64) {
    if eventloop.network.is_none() {
        return;
    }
    let mut written = 0usize;
    for a in acks.iter().filter(|a| a.connection == connection) {
        let packet = match a.qos {
            QoS::AtMostOnce => continue,
            QoS::AtLeastOnce => Packet::PubAck(PubAck::new(a.pkid)),
            // We subscribe with QoS 1, so the broker never sends QoS 2; if one did, the state
            // machine records the PUBREC so that the PUBREL that follows is answered.
            QoS::ExactlyOnce => match eventloop
                .state
                .handle_outgoing_packet(Request::PubRec(PubRec::new(a.pkid)))
            {
                Ok(Some(p)) => p,
                _ => continue,
            },
        };
        let Some(network) = eventloop.network.as_mut() else {
            return;
        };
        if let Err(err) = network.write(packet).await {
            // The next poll sees the broken connection, reconnects, and the broker redelivers.
            tracing::warn!(error = ?err, "cannot write acks");
            return;
        }
        written += 1;
    }
    if let (true, Some(network)) = (written > 0, eventloop.network.as_mut()) {
        if let Err(err) = network.flush().await {
            tracing::warn!(error = ?err, "cannot flush acks");
        }
    }
}

/// Takes what is queued (up to [`MAX_BATCH`]), stores it as one job, and hands the acks of
/// each committed batch, in arrival order, to the poll loop.
async fn batcher(mut rx: mpsc::Receiver<Received>, acks: mpsc::Sender<Vec<Ack>>, ingest: Ingest) {
    let mut inflight = FuturesOrdered::new();
    let mut open = true;
    while open || !inflight.is_empty() {
        tokio::select! {
            // Ack finished batches first, in order.
            Some(done) = inflight.next(), if !inflight.is_empty() => {
                let batch: Vec<Ack> = done;
                tracing::debug!(messages = batch.len(), "batch committed; acking");
                if acks.send(batch).await.is_err() {
                    return; // the poll loop is gone: nothing left to ack on
                }
            }
            first = rx.recv(), if open && inflight.len() < IN_FLIGHT_BATCHES => {
                let Some(first) = first else { open = false; continue; };
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(m) => batch.push(m),
                        Err(_) => break,
                    }
                }
                tracing::debug!(messages = batch.len(), "batch started");
                inflight.push_back(store_batch(ingest.clone(), batch));
            }
        }
    }
}

/// Stores a batch, retrying on store failure until it is committed; returns the publishes to
/// ack. Rejected messages are acked too: their rejection records are committed.
async fn store_batch(ingest: Ingest, batch: Vec<Received>) -> Vec<Ack> {
    let acks: Vec<Ack> = batch
        .iter()
        .map(|(p, _, connection)| Ack {
            pkid: p.pkid,
            qos: p.qos,
            connection: *connection,
        })
        .collect();
    // Topic and payload move over, not copied; a retry shares them again.
    let msgs: Arc<[Message]> = batch
        .into_iter()
        .map(|(p, at, _)| Message {
            publisher: None,
            topic: p.topic,
            payload: p.payload,
            received: at,
        })
        .collect();
    let mut delays = retry::store();
    loop {
        let outcomes = ingest.handle_batch(msgs.clone()).await;
        if !outcomes.contains(&Outcome::Failed) {
            break;
        }
        let wait = delays.next().expect("endless");
        tracing::warn!(
            retry_in_ms = wait.as_millis() as u64,
            "store failed; retrying the batch"
        );
        tokio::time::sleep(wait).await;
    }
    acks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #19: QoS 0 beyond the intake's room is dropped and counted; QoS 1 never is.
    #[test]
    fn a_full_intake_drops_qos0_and_counts_it_but_queues_qos1() {
        let metrics = crate::metrics::Metrics::default();
        let item = |qos| {
            let p = rumqttc::Publish::new("vigil/v1/d/readings", qos, "{}");
            (p, Utc::now(), 1)
        };
        for drop_qos0 in [true, false] {
            let (tx, _rx) = mpsc::channel::<Received>(1);
            let mut shed = Shed {
                drop_qos0,
                dropping: false,
            };
            let mut overflow = VecDeque::new();
            // The channel takes one; the rest wait in the overflow up to its limit.
            for _ in 0..=OVERFLOW_MAX {
                assert!(take(
                    &tx,
                    &mut overflow,
                    &mut shed,
                    &metrics,
                    item(QoS::AtMostOnce)
                ));
            }
            assert_eq!(overflow.len(), OVERFLOW_MAX);
            assert!(take(
                &tx,
                &mut overflow,
                &mut shed,
                &metrics,
                item(QoS::AtMostOnce)
            ));
            assert!(take(
                &tx,
                &mut overflow,
                &mut shed,
                &metrics,
                item(QoS::AtLeastOnce)
            ));
            if drop_qos0 {
                assert_eq!(overflow.len(), OVERFLOW_MAX + 1, "QoS 1 still queued");
                assert_eq!(metrics.qos0_dropped.get(), 1);
                assert!(shed.dropping);
                // Room again: taken again.
                overflow.clear();
                assert!(take(
                    &tx,
                    &mut overflow,
                    &mut shed,
                    &metrics,
                    item(QoS::AtMostOnce)
                ));
                assert!(!shed.dropping);
                assert_eq!(overflow.len(), 1);
            } else {
                assert_eq!(overflow.len(), OVERFLOW_MAX + 2, "blocking drops nothing");
                assert_eq!(metrics.qos0_dropped.get(), 1, "no more than before");
            }
        }
    }

    #[test]
    fn shared_group_prefixes_every_filter() {
        assert_eq!(filters("")[0], "vigil/v1/+/readings");
        assert_eq!(filters("vigil")[2], "$share/vigil/vigil/v1/+/status");
    }
}
