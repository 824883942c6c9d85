//! `vigil demo`: the patients, family contacts and devices of the demo scenario
//! (`simulators/scenarios/demo.toml`, issue #7), played in real time by simulated devices
//! against the embedded broker. One of them (Nguyễn Văn An) deteriorates: his SpO₂ falls
//! below 90 % about half a minute after the start, which raises a red alert, e-mails the family
//! (into the file outbox) and shows on the dashboard.
//!
//! Seeding is idempotent. Each start gives the demo devices fresh secrets (the simulators need
//! the plain text, which is never stored) and the demo user a fresh printed password.

use crate::config::Config;
use crate::secrets;
use crate::store::{accounts, StoreError, StoreHandle};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinSet;
use vigil_simulators::scenario::Scenario;
use vigil_store::params;

pub const DEMO_USER: &str = "demo";

pub struct Seeded {
    pub password: String,
    pub scenario: Arc<Scenario>,
    /// Device id → secret.
    pub credentials: HashMap<String, String>,
}

pub async fn seed(store: &StoreHandle) -> anyhow::Result<Seeded> {
    let scenario = Scenario::parse(vigil_simulators::scenario::DEMO)
        .map_err(|e| anyhow::anyhow!("the demo scenario: {e}"))?;
    let password = secrets::random_hex(6);
    let user_hash = secrets::hash_password(&password);
    let s = scenario.clone();
    let secrets = crate::provision::scenario_secrets(&s);
    let devices = store
        .write(move |c| {
            let devices =
                crate::provision::scenario(c, &s, vigil_domain::DEFAULT_FACILITY, secrets)?;
            match accounts::add_user(c, DEMO_USER, &user_hash, true, &[]) {
                Ok(_) => {}
                Err(StoreError::Conflict(_)) => {
                    c.execute(
                        "UPDATE users SET password_hash = ?2 WHERE name = ?1",
                        params![DEMO_USER, user_hash],
                    )?;
                }
                Err(e) => return Err(e),
            }
            Ok(devices)
        })
        .await?;
    Ok(Seeded {
        password,
        scenario: Arc::new(scenario),
        credentials: devices
            .into_iter()
            .map(|(id, secret, _)| (id, secret))
            .collect(),
    })
}

/// Plays the demo scenario against the embedded broker until shutdown.
pub fn start_devices(
    cfg: &Config,
    seeded: &Seeded,
    tasks: &mut JoinSet<()>,
    shutdown: watch::Receiver<bool>,
) {
    let host = match cfg.mqtt.addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        ip => ip.to_string(),
    };
    let play = vigil_simulators::play::play(
        seeded.scenario.clone(),
        vigil_simulators::play::PlayConfig {
            host,
            port: cfg.mqtt.addr.port(),
            credentials: seeded.credentials.clone(),
            speed: 1.0,
            duration: None,
        },
        shutdown.clone(),
    );
    // Simulators are not core tasks: their end must not stop the server.
    tasks.spawn(async move {
        if let Err(e) = play.await {
            tracing::warn!(error = %e, "demo devices stopped");
        }
        crate::shutdown::wait(shutdown).await;
    });
}
