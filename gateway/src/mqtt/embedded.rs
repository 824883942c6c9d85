//! The embedded broker (rmqtt 0.24, see `../shared/design.md` "Checked facts").
//!
//! Hooks registered here:
//! - `ClientAuthenticate`: username = device id, password = device secret, checked against the
//!   registry's argon2 hash; disabled or unknown devices are refused, and so is a last will
//!   outside the device's own topics (wills bypass the publish ACL hook).
//! - `MessagePublishCheckAcl`: the ingest pipeline runs here. rmqtt sends the PUBACK only after
//!   this hook returns, so a QoS 1 publish is acknowledged only once it is committed
//!   (design invariant 1). Invalid messages are acknowledged after their rejection record is
//!   committed but never routed; a store failure disconnects the client without an ack, so it
//!   publishes again.
//! - `ClientSubscribeCheckAcl`: a device may subscribe only under its own topics. Readings are
//!   health data: a device must never see another patient's (a subscription to `#` is refused).
//! - `ClientConnected` / `ClientDisconnected`: the device's online state.

use crate::ingest::{Ingest, Outcome};
use crate::secrets::VerifiedSecrets;
use crate::store::{now_ms, registry};
use async_trait::async_trait;
use rmqtt::codec::v5::SubscribeAckReason;
use rmqtt::context::ServerContext;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType, Type};
use rmqtt::net::Builder;
use rmqtt::server::MqttServer;
use rmqtt::types::{AuthResult, ConnectInfo, LastWill, PublishAclResult, SubscribeAclResult};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use vigil_domain::TOPIC_PREFIX;

/// Room for the topic and MQTT headers above the largest payload that is parsed, so that an
/// oversized payload reaches the decoder and is rejected with a reason (kept for inspection)
/// instead of the connection being dropped. Far larger packets are refused by the broker.
const PACKET_MARGIN: usize = 64 * 1024;

/// Binds the listener now (so a port clash is reported at start-up) and returns the future
/// that serves it.
pub async fn start(
    addr: SocketAddr,
    ingest: Ingest,
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
        .max_packet_size(
            u32::try_from(ingest.limits.max_payload.saturating_mul(2) + PACKET_MARGIN)
                .unwrap_or(u32::MAX),
        )
        .bind()
        .map_err(|e| anyhow::anyhow!("cannot listen for MQTT on {addr}: {e}"))?
        .tcp()
        .map_err(|e| anyhow::anyhow!("MQTT listener on {addr}: {e}"))?;
    ingest.metrics.mqtt_up.store(true, Relaxed);
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

struct Hooks {
    ingest: Ingest,
    verified: Arc<VerifiedSecrets>,
}

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
            if !topic.starts_with(&format!("{TOPIC_PREFIX}/{device_id}/")) {
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
                .store
                .read(move |c| registry::device(c, &id))
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
        if ok {
            tracing::info!(device_id, "device connected");
            AuthResult::Allow(false, None)
        } else {
            tracing::warn!(device_id, "connection refused: wrong password");
            AuthResult::BadUsernameOrPassword
        }
    }

    async fn set_online(&self, device_id: String, online: bool) {
        let r = self
            .ingest
            .store
            .write(move |c| registry::set_device_status(c, &device_id, Some(online), now_ms()))
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
                    self.ingest.metrics.auth_failures.fetch_add(1, Relaxed);
                }
                (false, Some(HookResult::AuthResult(r)))
            }
            Parameter::ClientSubscribeCheckAcl(session, sub) => {
                let own = session.id.username.as_ref().is_some_and(|u| {
                    sub.topic_filter
                        .starts_with(&format!("{TOPIC_PREFIX}/{u}/"))
                });
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
