//! One shutdown signal for every task (mini-redis `shutdown.rs` idea on a `watch` channel).
//!
//! Drain order on Ctrl-C or SIGTERM: stop accepting MQTT (the broker task is dropped, so no new
//! PUBACKs are promised), let the HTTP server finish requests in flight, let the outbox finish
//! its round, then drop the store handles, which lets the writer thread commit what it holds
//! and exit.

use tokio::sync::watch;

pub fn channel() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(false)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Resolves once `rx` turns true.
pub async fn wait(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}
