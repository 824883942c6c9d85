//! E-mail delivery from the outbox (design invariant 4: every e-mail is in the outbox before the
//! first attempt).
//!
//! [`run`] owns the loop: take due e-mails from the store, hand each to the transport, mark it
//! sent or schedule a retry with exponential backoff. The store wakes it through a `Notify`
//! when it queues new mail; a periodic tick covers retries and a missed wake-up.

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use lettre::{FileTransport, Transport as _};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// An e-mail waiting in the outbox.
#[derive(Debug, Clone)]
pub struct QueuedEmail {
    pub id: i64,
    pub message_id: String,
    pub to_name: String,
    pub to_addr: String,
    pub subject: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub attempts: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("outbox store: {0}")]
pub struct StoreError(pub String);

/// What the delivery loop needs from the store. Calls block (SQLite); the loop runs them on the
/// blocking pool.
pub trait OutboxStore: Send + Sync + 'static {
    fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<QueuedEmail>, StoreError>;
    fn mark_sent(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError>;
    fn mark_failed(&self, id: i64, error: &str, retry_at: DateTime<Utc>) -> Result<(), StoreError>;
}

/// Where e-mails go. The file transport writes `<dir>/<uuid>.eml` (lettre's file transport);
/// SMTP comes with the notifications issue (#5).
#[derive(Clone)]
pub enum Transport {
    File(FileTransport),
}

impl Transport {
    fn send(&self, msg: &lettre::Message) -> Result<(), String> {
        match self {
            Transport::File(t) => t.send(msg).map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}

/// Delay before retry `attempts` (1-based): 30 s doubling, at most an hour.
pub fn backoff(attempts: u32) -> Duration {
    let secs = 30u64.saturating_mul(1u64 << attempts.saturating_sub(1).min(10));
    Duration::from_secs(secs.min(3600))
}

/// How often the loop looks for due retries when nobody wakes it.
const TICK: Duration = Duration::from_secs(5);
/// E-mails handled per round.
const BATCH: usize = 50;

/// Delivers until `shutdown` turns true; a round in progress finishes first.
pub async fn run(
    store: Arc<dyn OutboxStore>,
    transport: Transport,
    from: Mailbox,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let s = store.clone();
        let t = transport.clone();
        let f = from.clone();
        match tokio::task::spawn_blocking(move || deliver_due(&*s, &t, &f)).await {
            Ok(Ok(n)) if n > 0 => tracing::debug!(sent = n, "outbox round"),
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "outbox round failed"),
            Err(err) => tracing::error!(error = %err, "outbox task panicked"),
        }
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// One round: sends every due e-mail once. Returns how many were sent.
pub fn deliver_due(
    store: &dyn OutboxStore,
    transport: &Transport,
    from: &Mailbox,
) -> Result<usize, StoreError> {
    let mut sent = 0;
    for mail in store.due(Utc::now(), BATCH)? {
        let result = crate::email::build_message(
            from,
            &mail.to_name,
            &mail.to_addr,
            &mail.subject,
            &mail.body,
            &mail.message_id,
            mail.created_at,
        )
        .map_err(|e| e.to_string())
        .and_then(|m| transport.send(&m));
        match result {
            Ok(()) => {
                store.mark_sent(mail.id, Utc::now())?;
                sent += 1;
                tracing::info!(outbox_id = mail.id, "e-mail sent");
            }
            Err(err) => {
                let attempts = mail.attempts + 1;
                let retry = Utc::now()
                    + chrono::Duration::from_std(backoff(attempts)).expect("at most an hour");
                tracing::warn!(outbox_id = mail.id, attempts, error = %err, "e-mail not sent, will retry");
                store.mark_failed(mail.id, &err, retry)?;
            }
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(3), Duration::from_secs(120));
        assert_eq!(backoff(50), Duration::from_secs(3600));
    }
}
