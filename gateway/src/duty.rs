//! Background duties shared by several gateways (issue #20). With a PostgreSQL store, each
//! duty — the outbox, escalation, the fall window, the missing-data watch, retention, the
//! InfluxDB and FHIR forwarders — is done by the one gateway holding its lease
//! (`vigil_store::leases`). A keeper task renews every lease this gateway holds every
//! [`RENEW_EVERY`], independently of the duties' own rounds (a round waiting 30 s on an SMTP
//! server must not lose the outbox to another gateway, which would send the same e-mails);
//! when the gateway dies its leases expire after [`LEASE`] and the next gateway to ask takes
//! each duty over. With SQLite there is one gateway per store (the data directory's lock), so it
//! holds every duty without asking.

use crate::store::{leases, now_ms, StoreHandle};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a lease lasts without renewal: a dead gateway's duties move after this long.
pub const LEASE: Duration = Duration::from_secs(10);
/// How often the keeper renews the leases held.
const RENEW_EVERY: Duration = Duration::from_secs(3);

/// This gateway's duties.
#[derive(Clone)]
pub struct Duties {
    store: StoreHandle,
    /// Who this gateway is in the `leases` table (`vigil_store::node_id`: host, process and a
    /// random part, so a restarted process is a new holder).
    holder: Arc<str>,
    shared: bool,
    /// Per duty: whether this gateway holds it and when that was last confirmed.
    held: Arc<Mutex<HashMap<&'static str, Instant>>>,
    /// `vigil_duty_held{duty}`, when the gateway exposes metrics.
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl Duties {
    pub fn new(store: &StoreHandle) -> Duties {
        Duties {
            store: store.clone(),
            holder: crate::store::node_id().into(),
            shared: store.dialect() == crate::store::db::Dialect::Postgres,
            held: Default::default(),
            metrics: None,
        }
    }

    /// Reports which duties this gateway holds as `vigil_duty_held{duty}`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Duties {
        self.metrics = Some(metrics);
        self
    }

    pub fn duty(&self, name: &'static str) -> Duty {
        if !self.shared {
            // Alone on SQLite: every duty is this gateway's.
            if let Some(m) = &self.metrics {
                m.duty_held(name, true);
            }
        }
        Duty {
            duties: self.clone(),
            name,
        }
    }

    /// Renews the leases held every [`RENEW_EVERY`] until shutdown, then gives them up so the
    /// other gateways take over at once.
    pub async fn keep(self, mut shutdown: watch::Receiver<bool>) {
        if !self.shared {
            // Nothing to keep; a core task still ends only at shutdown.
            let _ = shutdown.changed().await;
            return;
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(RENEW_EVERY) => {}
                _ = shutdown.changed() => break,
            }
            let names: Vec<&'static str> = self.lock().keys().copied().collect();
            for name in names {
                let held = self.ask(name).await;
                self.record(name, held);
            }
        }
        let this = self.clone();
        let _ = tokio::task::spawn_blocking(move || this.release_all()).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Instant>> {
        self.held
            .lock()
            .expect("never poisoned: no panics while held")
    }

    /// Takes or renews lease `name`; false also when the store cannot answer (then this
    /// gateway may have lost it: it does nothing until the store answers).
    async fn ask(&self, name: &'static str) -> bool {
        let holder = self.holder.clone();
        let now = now_ms();
        let ttl = LEASE.as_millis() as i64;
        self.store
            .write(move |c| leases::hold(c, name, &holder, now, ttl))
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(duty = name, error = %e, "cannot renew lease");
                false
            })
    }

    fn record(&self, name: &'static str, held: bool) {
        if let Some(m) = &self.metrics {
            m.duty_held(name, held);
        }
        let mut map = self.lock();
        let had = map.contains_key(name);
        if held {
            map.insert(name, Instant::now());
            if !had {
                tracing::info!(duty = name, holder = %self.holder, "duty taken on");
            }
        } else if had {
            map.remove(name);
            tracing::warn!(duty = name, "duty lost to another gateway");
        }
    }

    fn release_all(&self) {
        let names: Vec<&'static str> = self.lock().drain().map(|(n, _)| n).collect();
        for name in names {
            if let Some(m) = &self.metrics {
                m.duty_held(name, false);
            }
            let holder = self.holder.clone();
            if let Err(e) = self
                .store
                .write_blocking(move |c| leases::release(c, name, &holder))
            {
                tracing::warn!(duty = name, error = %e, "cannot release lease");
            }
        }
    }
}

/// One duty of this gateway ([`Duties::duty`]).
#[derive(Clone)]
pub struct Duty {
    duties: Duties,
    name: &'static str,
}

impl Duty {
    /// Whether this gateway does the duty now; asks for the lease when it does not hold it.
    pub async fn held(&self) -> bool {
        if let Some(held) = self.known() {
            return held;
        }
        let held = self.duties.ask(self.name).await;
        self.duties.record(self.name, held);
        held
    }

    /// [`Duty::held`] for blocking callers (the outbox).
    pub fn held_blocking(&self) -> bool {
        if let Some(held) = self.known() {
            return held;
        }
        let holder = self.duties.holder.clone();
        let (name, now, ttl) = (self.name, now_ms(), LEASE.as_millis() as i64);
        let held = self
            .duties
            .store
            .write_blocking(move |c| leases::hold(c, name, &holder, now, ttl))
            .unwrap_or_else(|e| {
                tracing::warn!(duty = name, error = %e, "cannot renew lease");
                false
            });
        self.duties.record(self.name, held);
        held
    }

    /// Yes without asking: always alone on SQLite; while the keeper keeps the lease fresh.
    fn known(&self) -> Option<bool> {
        if !self.duties.shared {
            return Some(true);
        }
        let fresh = self
            .duties
            .lock()
            .get(self.name)
            .is_some_and(|at| at.elapsed() < LEASE - RENEW_EVERY);
        fresh.then_some(true)
    }
}
