//! The other gateways' commits on this gateway's live feed (issue #20). With a shared
//! PostgreSQL store, each gateway's write jobs `NOTIFY` what they stored and which alerts they
//! changed (`vigil_store::live`); this task `LISTEN`s and puts it on the local broadcast the
//! dashboards' event streams read, so a clinician sees every reading and alert whichever
//! gateway took it. Alerts are read back from the store (the notification carries ids).
//! A lost connection is made again; what was committed meanwhile is in the store, and a page
//! reload shows it.

use crate::store::{alerts, live, Location, StoreHandle};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use vigil_domain::views::{Live, LiveEvent, LiveMessage};
use vigil_domain::Metric;

/// Starts listening when the store is PostgreSQL; the thread ends when `stop` is set.
pub fn start(store: &StoreHandle, feed: broadcast::Sender<Live>, stop: Arc<AtomicBool>) {
    let Location::Postgres(url) = store.location().clone() else {
        return;
    };
    let store = store.clone();
    let spawned = std::thread::Builder::new()
        .name("vigil-peers".into())
        .spawn(move || run(&url, &store, &feed, &stop));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start listening to the other gateways");
    }
}

fn run(url: &str, store: &StoreHandle, feed: &broadcast::Sender<Live>, stop: &AtomicBool) {
    let mut warned = false;
    while !stop.load(Relaxed) {
        let mut listener = match live::Listener::connect(url) {
            Ok(l) => {
                tracing::info!("listening to the other gateways' commits");
                warned = false;
                l
            }
            Err(e) => {
                if !warned {
                    tracing::warn!(error = %e, "cannot listen to the other gateways; retrying");
                    warned = true;
                }
                std::thread::sleep(Duration::from_secs(2));
                continue;
            }
        };
        while !stop.load(Relaxed) && !listener.is_closed() {
            match listener.next(Duration::from_millis(500)) {
                Ok(Some(c)) => relay(c, store, feed),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "lost the other gateways' notifications; reconnecting");
                    break;
                }
            }
        }
    }
}

fn relay(c: live::Committed, store: &StoreHandle, feed: &broadcast::Sender<Live>) {
    if feed.receiver_count() == 0 {
        return; // no dashboard listens here
    }
    for (patient_id, code, value, ts) in c.readings {
        let (Some(metric), Some(ts)) = (
            Metric::from_code(code),
            chrono::DateTime::from_timestamp_millis(ts),
        ) else {
            continue;
        };
        let _ = feed.send(LiveMessage::new(LiveEvent::Reading {
            patient_id,
            metric: metric.as_str().to_string(),
            value,
            unit: metric.unit(),
            ts,
        }));
    }
    for id in c.alerts {
        match store.read_blocking(|conn| alerts::get(conn, id)) {
            Ok(Some(alert)) => {
                let _ = feed.send(LiveMessage::new(LiveEvent::Alert {
                    alert: Box::new(alert),
                }));
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(alert_id = id, error = %e, "cannot read a peer's alert"),
        }
    }
}
