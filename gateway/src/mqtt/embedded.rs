//! The embedded broker (rmqtt 0.24; what it does and does not do: docs/architecture.md,
//! "Dependency facts").
//!
//! Hooks registered here:
//! - `ClientAuthenticate`: username = device id, password = device secret, checked against the
//!   registry's argon2 hash; disabled or unknown devices are refused, and so is a last will
//!   outside the device's own topics (wills bypass the publish ACL hook), and a client id that
//!   is not the device's own ([`client_id_claims`]; issue #15, finding 2: rmqtt keys sessions
//!   by client id alone, so a device using another's id would resume its session and push it
//!   off).
//! - `MessagePublishCheckAcl`: the ingest pipeline runs here. rmqtt sends the PUBACK only after
//!   this hook returns, so a QoS 1 publish is acknowledged only once it is committed
//!   (docs/architecture.md, invariant 1). Invalid messages are acknowledged after their rejection record is
//!   committed but never routed; a store failure disconnects the client without an ack, so it
//!   publishes again.
//! - `ClientSubscribeCheckAcl`: a device may subscribe only under its own topics. Readings are
//!   health data: a device must never see another patient's (a subscription to `#` is refused).
//! - `ClientConnected` / `ClientDisconnected`: the device's online state.

use crate::ingest::{Ingest, Outcome};
use crate::secrets::VerifiedSecrets;
use crate::store::now_ms;
use async_trait::async_trait;
use rmqtt::codec::v5::SubscribeAckReason;
use rmqtt::context::ServerContext;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType, Type};
use rmqtt::net::Builder;
use rmqtt::server::MqttServer;
use rmqtt::types::{AuthResult, ConnectInfo, LastWill, PublishAclResult, SubscribeAclResult};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use vigil_protocol::topic;

/// Room for the topic and MQTT headers above the largest payload that is parsed, so that an
/// oversized payload reaches the decoder and is rejected with a reason (kept for inspection)
/// instead of the connection being dropped. Far larger packets are refused by the broker.
const PACKET_MARGIN: usize = 64 * 1024;

/// Binds the listener now (so a port clash is reported at start-up) and returns the future
/// that serves it.
/// Subscriptions one client may hold: a device subscribes only under its own topics, so a
/// handful is plenty; the cap keeps one client from growing the broker's tables (issue #15).
const MAX_SUBSCRIPTIONS: usize = 16;

/// `max_connections`: clients connected at once (the descriptor budget's share, `fds`).
pub async fn start(
    addr: SocketAddr,
    ingest: Ingest,
    max_connections: usize,
) -> anyhow::Result<impl std::future::Future<Output = anyhow::Result<()>>> {
    let scx = ServerContext::new()
        // rmqtt's busy check refuses connections under load spikes; we prefer backpressure.
        .busy_check_enable(false)
        .build()
        .await;
    let register = scx.extends.hook_mgr().register();
    let verified = Arc::new(VerifiedSecrets::default());
    for typ in [
        Type::ClientAuthenticate,
        Type::ClientSubscribeCheckAcl,
        Type::MessagePublishCheckAcl,
        Type::ClientConnected,
        Type::ClientDisconnected,
    ] {
        register
            .add(
                typ,
                Box::new(Hooks {
                    ingest: ingest.clone(),
                    verified: verified.clone(),
                    scx: scx.clone(),
                }),
            )
            .await;
    }
    // Hooks never run until started (checked facts).
    register.start().await;
    let listener = Builder::new()
        .name("vigil/tcp")
        .laddr(addr)
        .allow_anonymous(false)
        // SO_REUSEADDR: restarting after a crash must not fail with "address in use" while
        // devices' old connections linger in TIME_WAIT (found by the InfluxDB outage test).
        .reuseaddr(Some(true))
        .max_connections(max_connections)
        .max_subscriptions(MAX_SUBSCRIPTIONS)
        .max_packet_size(
            u32::try_from(ingest.limits().max_payload.saturating_mul(2) + PACKET_MARGIN)
                .unwrap_or(u32::MAX),
        )
        .bind()
        .map_err(|e| anyhow::anyhow!("cannot listen for MQTT on {addr}: {e}"))?
        .tcp()
        .map_err(|e| anyhow::anyhow!("MQTT listener on {addr}: {e}"))?;
    ingest.metrics().mqtt_up.set(1);
    tracing::info!(%addr, "embedded MQTT broker listening");
    let server = MqttServer::new(scx).listener(listener).build();
    Ok(async move {
        server
            .run()
            .await
            .map_err(|e| anyhow::anyhow!("MQTT broker: {e}"))?;
        Ok(())
    })
}

/// Which client ids a device may use (docs/mqtt.md, "Client id"): its device id, or its device
/// id followed by `-` and anything; or, with a clean session, the 32 hex digits rmqtt assigns
/// to an empty client id (MQTT 3.1.1 §3.1.3.1). `Err` when `client_id` can never be
/// `device_id`'s; otherwise the other device ids that would own `client_id` if registered —
/// device `hub` may not use `hub-2` when a device `hub-2` exists (the longest id owns it).
pub fn client_id_claims<'a>(
    device_id: &str,
    client_id: &'a str,
    clean_start: bool,
) -> Result<Vec<&'a str>, ()> {
    let own = client_id == device_id
        || client_id
            .strip_prefix(device_id)
            .is_some_and(|rest| rest.starts_with('-'));
    let assigned = clean_start
        && client_id.len() == 32
        && client_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !own && !assigned {
        return Err(());
    }
    // Longer ids that `client_id` equals or extends with `-…`.
    let mut claims: Vec<&str> = client_id
        .match_indices('-')
        .map(|(i, _)| &client_id[..i])
        .chain(std::iter::once(client_id))
        .filter(|c| c.len() > device_id.len() || (assigned && !own))
        .collect();
    claims.dedup();
    Ok(claims)
}

struct Hooks {
    ingest: Ingest,
    verified: Arc<VerifiedSecrets>,
    /// The broker's state: which client ids have a session (see [`Hooks::previous_session_gone`]).
    scx: ServerContext,
}

/// Longest a CONNECT waits for the previous clean session of its client id to finish closing.
const PREVIOUS_CLOSED_WAIT: Duration = Duration::from_secs(2);
/// Longest it waits when that session still counts as connected (its socket close may not have
/// been read yet; a live duplicate connection is then kicked as usual).
const PREVIOUS_LIVE_WAIT: Duration = Duration::from_millis(200);

fn will_topic(info: &ConnectInfo) -> Option<String> {
    info.last_will().map(|w| match w {
        LastWill::V3(l) => l.topic.to_string(),
        LastWill::V5(l) => l.topic.to_string(),
    })
}

impl Hooks {
    async fn authenticate(&self, info: &ConnectInfo) -> AuthResult {
        let (Some(user), Some(pass)) = (info.username(), info.password()) else {
            return AuthResult::NotAuthorized;
        };
        let device_id = user.to_string();
        let password = String::from_utf8_lossy(pass).into_owned();
        if let Some(topic) = will_topic(info) {
            if !topic.starts_with(&topic::device_prefix(&device_id)) {
                tracing::warn!(
                    device_id,
                    "connection refused: last will outside own topics"
                );
                return AuthResult::NotAuthorized;
            }
        }
        let lookup = {
            let id = device_id.clone();
            self.ingest
                .store()
                .read(move |c| crate::store::devices::device(c, &id))
                .await
        };
        let device = match lookup {
            Ok(Some(d)) if d.enabled => d,
            Ok(_) => {
                tracing::warn!(device_id, "connection refused: unknown or disabled device");
                return AuthResult::BadUsernameOrPassword;
            }
            Err(err) => {
                tracing::error!(error = %err, "device lookup failed");
                return AuthResult::NotAuthorized;
            }
        };
        // argon2 is deliberately slow: off the async workers, a few at a time, and once per
        // device secret while the gateway runs.
        let verified = &self.verified;
        let ok = if verified.known(&device_id, &device.secret_hash, &password) {
            true
        } else {
            let (hash, pass) = (device.secret_hash.clone(), password.clone());
            let ok = crate::secrets::verify_password_async(pass, hash).await;
            if ok {
                verified.remember(&device_id, &device.secret_hash, &password);
            }
            ok
        };
        if ok && !self.client_id_allowed(&device_id, info).await {
            return AuthResult::NotAuthorized;
        }
        if ok {
            self.previous_session_gone(info).await;
            tracing::info!(device_id, "device connected");
            AuthResult::Allow(false, None)
        } else {
            tracing::warn!(device_id, "connection refused: wrong password");
            AuthResult::BadUsernameOrPassword
        }
    }

    /// Waits (briefly) until the previous clean session of this client id has left the broker.
    /// rmqtt 0.24 takes a new connection over by sending the old session a kick and awaiting its
    /// reply; a session that is closing drops the request unanswered and the new CONNECT is
    /// refused "server unavailable" (issue #15, finding 3: about 5 in 100 immediate
    /// reconnects). A persistent session's offline loop answers kicks, so it is not waited for.
    async fn previous_session_gone(&self, info: &ConnectInfo) {
        let start = tokio::time::Instant::now();
        loop {
            let previous = self
                .scx
                .extends
                .shared()
                .await
                .entry(info.id().clone())
                .session();
            let Some(s) = previous else { return };
            let clean = s
                .connect_info()
                .await
                .map(|c| c.clean_start())
                .unwrap_or(false);
            if !clean {
                return;
            }
            let limit = if s.connected().await.unwrap_or(false) {
                PREVIOUS_LIVE_WAIT
            } else {
                PREVIOUS_CLOSED_WAIT
            };
            drop(s);
            if start.elapsed() >= limit {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Whether the device may connect with this client id (see [`client_id_claims`]).
    async fn client_id_allowed(&self, device_id: &str, info: &ConnectInfo) -> bool {
        let client_id = info.client_id().to_string();
        let claims = match client_id_claims(device_id, &client_id, info.clean_start()) {
            Ok(c) => c.into_iter().map(str::to_string).collect::<Vec<_>>(),
            Err(()) => {
                tracing::warn!(
                    device_id,
                    "connection refused: client id is not the device's own"
                );
                return false;
            }
        };
        if claims.is_empty() {
            return true;
        }
        let taken = self
            .ingest
            .store()
            .read(move |c| {
                for id in &claims {
                    if crate::store::devices::device(c, id)?.is_some() {
                        return Ok(true);
                    }
                }
                Ok(false)
            })
            .await;
        match taken {
            Ok(false) => true,
            Ok(true) => {
                tracing::warn!(
                    device_id,
                    "connection refused: client id belongs to another device"
                );
                false
            }
            Err(err) => {
                tracing::error!(error = %err, "device lookup failed");
                false
            }
        }
    }

    async fn set_online(&self, device_id: String, online: bool) {
        let r = self
            .ingest
            .store()
            .write(move |c| {
                crate::store::devices::set_device_status(c, &device_id, Some(online), now_ms())
            })
            .await;
        if let Err(err) = r {
            tracing::warn!(error = %err, "cannot record device status");
        }
    }
}

#[async_trait]
impl Handler for Hooks {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        match param {
            Parameter::ClientAuthenticate(info) => {
                let r = self.authenticate(info).await;
                if !matches!(r, AuthResult::Allow(..)) {
                    self.ingest.metrics().auth_failures.inc_by(1);
                }
                (false, Some(HookResult::AuthResult(r)))
            }
            Parameter::ClientSubscribeCheckAcl(session, sub) => {
                let own = session
                    .id
                    .username
                    .as_ref()
                    .is_some_and(|u| sub.topic_filter.starts_with(&topic::device_prefix(u)));
                if own {
                    (true, acc)
                } else {
                    tracing::warn!(
                        device_id = session.id.username_ref(),
                        "subscription outside own topics refused"
                    );
                    (
                        false,
                        Some(HookResult::SubscribeAclResult(
                            SubscribeAclResult::new_failure(SubscribeAckReason::NotAuthorized),
                        )),
                    )
                }
            }
            Parameter::MessagePublishCheckAcl(session, publish) => {
                let user = session.id.username.as_ref().map(|u| u.to_string());
                let outcome = self
                    .ingest
                    .handle(user.as_deref(), &publish.topic, publish.payload.clone())
                    .await;
                let acl = match outcome {
                    Outcome::Stored => PublishAclResult::allow(),
                    // Acknowledged (the rejection is stored) but not routed anywhere.
                    // The connected device itself was disabled or removed since it connected
                    // (only its own topics get this far): its rejection is committed, and the
                    // connection is closed; it cannot connect again (issue #15, finding 9).
                    Outcome::Rejected("unknown_device") => {
                        tracing::warn!(
                            device_id = user.as_deref().unwrap_or(""),
                            "disabled or removed device disconnected"
                        );
                        PublishAclResult::rejected(true, Some("unknown_device".into()))
                    }
                    Outcome::Rejected(reason) => {
                        PublishAclResult::rejected(false, Some(reason.into()))
                    }
                    // No PUBACK: the device keeps the message and sends it again.
                    Outcome::Failed => {
                        PublishAclResult::rejected(true, Some("store unavailable".into()))
                    }
                };
                (false, Some(HookResult::PublishAclResult(acl)))
            }
            Parameter::ClientConnected(session) => {
                if let Some(u) = &session.id.username {
                    self.set_online(u.to_string(), true).await;
                }
                (true, acc)
            }
            Parameter::ClientDisconnected(session, _reason) => {
                if let Some(u) = &session.id.username {
                    self.set_online(u.to_string(), false).await;
                }
                (true, acc)
            }
            _ => (true, acc),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::client_id_claims;

    #[test]
    fn a_device_may_use_only_its_own_client_ids() {
        // Its id, or its id and `-…`; nothing to look up when no longer id can claim it.
        assert_eq!(client_id_claims("ox-a", "ox-a", false), Ok(vec![]));
        // `ox-a-hub` would be device `ox-a-hub`'s if that existed.
        assert_eq!(
            client_id_claims("ox-a", "ox-a-hub", false),
            Ok(vec!["ox-a-hub"])
        );
        assert_eq!(
            client_id_claims("hub", "hub-2-x", true),
            Ok(vec!["hub-2", "hub-2-x"])
        );
        // Another device's id, any other id, a prefix without the dash: refused.
        for other in ["ox-b", "mosq-abc", "ox-ab", "ox", "", "test-ox-a"] {
            assert_eq!(client_id_claims("ox-a", other, false), Err(()), "{other:?}");
        }
        // The id rmqtt assigns to an empty client id (clean session only), unless a device
        // has that id.
        let assigned = "0123456789abcdef0123456789abcdef";
        assert_eq!(client_id_claims("ox-a", assigned, true), Ok(vec![assigned]));
        assert_eq!(client_id_claims("ox-a", assigned, false), Err(()));
    }
}
