//! E-mail delivery from the outbox (docs/architecture.md, invariant 4: every e-mail is in the outbox before the
//! first attempt).
//!
//! [`run`] owns the loop: take due e-mails from the store, hand each to the transport, mark it
//! sent, schedule a retry with exponential backoff (a transient failure: connection refused,
//! timeout, SMTP 4xx), or give it up (SMTP 5xx, RFC 5321 §4.2.1: the server will not take it
//! however often we ask). The store wakes it through a `Notify` when it queues new mail; a
//! periodic tick covers retries and a missed wake-up. Its [`Health`] says how delivery goes,
//! for `/readyz` and the dashboard.

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{FileTransport, SmtpTransport, Transport as _};
use std::sync::{Arc, Mutex};
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
    /// The HTML alternative of `body`, when the e-mail has one.
    pub html: Option<String>,
    pub created_at: DateTime<Utc>,
    pub attempts: u32,
    /// The Message-ID it answers, for a reply in a conversation (issue #17).
    pub in_reply_to: Option<String>,
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
    /// The server refused the e-mail for good: it is not tried again.
    fn mark_undeliverable(&self, id: i64, error: &str, at: DateTime<Utc>)
        -> Result<(), StoreError>;
}

/// How the SMTP connection is secured (`[smtp] security`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain SMTP: only for a relay on the same host or a trusted network.
    None,
    /// Plain connection upgraded with STARTTLS (RFC 3207), usually port 587; refused if the
    /// server does not offer it.
    StartTls,
    /// TLS from the first byte ("implicit TLS", RFC 8314), usually port 465.
    Tls,
}

impl Security {
    pub fn default_port(self) -> u16 {
        match self {
            Security::None => 25,
            Security::StartTls => 587,
            Security::Tls => 465,
        }
    }
}

/// An SMTP relay.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// User name and password for AUTH, when the relay wants them.
    pub credentials: Option<(String, String)>,
    /// Extra trusted CA certificate(s) in PEM, beside the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Longest a connection or a command may take: each attempt is time-limited.
    pub timeout: Duration,
}

// The password never reaches a log line through `{:?}`.
impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .finish_non_exhaustive()
    }
}

/// Where e-mails go: `.eml` files in a directory (lettre's file transport; the default, so a
/// demo needs no mail server) or an SMTP relay.
#[derive(Clone)]
pub enum Transport {
    File(FileTransport),
    Smtp(SmtpTransport),
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// The server refused it for good (5xx): retrying would not help.
    pub permanent: bool,
    pub message: String,
}

impl Transport {
    /// An SMTP transport, or why the settings cannot make one (a CA file that is not PEM).
    pub fn smtp(s: &SmtpSettings) -> Result<Transport, String> {
        let mut b = SmtpTransport::builder_dangerous(s.host.clone())
            .port(s.port)
            .timeout(Some(s.timeout));
        if s.security != Security::None {
            let mut tls = TlsParameters::builder(s.host.clone());
            if let Some(pem) = &s.ca_pem {
                let cert = Certificate::from_pem(pem).map_err(|e| format!("CA file: {e}"))?;
                tls = tls.add_root_certificate(cert);
            }
            let params = tls.build_rustls().map_err(|e| format!("TLS: {e}"))?;
            b = b.tls(match s.security {
                Security::StartTls => Tls::Required(params),
                _ => Tls::Wrapper(params),
            });
        }
        if let Some((user, pass)) = &s.credentials {
            b = b.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(Transport::Smtp(b.build()))
    }

    fn send(&self, msg: &lettre::Message) -> Result<(), SendError> {
        match self {
            Transport::File(t) => t.send(msg).map(|_| ()).map_err(|e| SendError {
                permanent: false,
                message: e.to_string(),
            }),
            Transport::Smtp(t) => t.send(msg).map(|_| ()).map_err(|e| SendError {
                permanent: e.is_permanent(),
                message: e.to_string(),
            }),
        }
    }
}

/// Delay before retry `attempts` (1-based): 10 s doubling, at most an hour. Short at first so a
/// relay that was restarted gets the queue within seconds.
/// The attempt count is kept in the outbox row, so the delay is the n-th of backon's sequence
/// (issue #16) rather than a live iterator; past 10 the cap has long been reached.
pub fn backoff(attempts: u32) -> Duration {
    use backon::{BackoffBuilder, ExponentialBuilder};
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_secs(10))
        .with_max_delay(Duration::from_secs(3600))
        .without_max_times()
        .build()
        .nth(attempts.saturating_sub(1).min(10) as usize)
        .expect("endless")
}

/// Consecutive failed attempts after which delivery counts as unhealthy (operator warning).
pub const UNHEALTHY_AFTER: u32 = 3;

/// How delivery goes, shared between the loop and whoever reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthState {
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_failure: Option<DateTime<Utc>>,
    /// E-mails refused for good since start.
    pub undeliverable: u64,
    /// When an e-mail was last set aside (refused for good, or impossible to build).
    pub last_set_aside: Option<DateTime<Utc>>,
}

impl HealthState {
    pub fn healthy(&self) -> bool {
        self.consecutive_failures < UNHEALTHY_AFTER
    }
}

/// A cloneable view of the delivery health.
#[derive(Debug, Clone, Default)]
pub struct Health(Arc<Mutex<HealthState>>);

impl Health {
    pub fn get(&self) -> HealthState {
        self.0.lock().expect("health lock").clone()
    }

    fn update(&self, f: impl FnOnce(&mut HealthState)) {
        f(&mut self.0.lock().expect("health lock"))
    }
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
    health: Health,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let s = store.clone();
        let t = transport.clone();
        let f = from.clone();
        let h = health.clone();
        match tokio::task::spawn_blocking(move || deliver_due(&*s, &t, &f, &h)).await {
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

/// Builds and sends one queued e-mail. Never panics: a panic while building or formatting it
/// (a stored value lettre cannot encode; issue #15, finding 1) is a permanent failure of this
/// one message, so it is set aside with its reason and the others still go.
fn attempt(transport: &Transport, from: &Mailbox, mail: &QueuedEmail) -> Result<(), SendError> {
    let run = || {
        crate::email::build_message(
            from,
            &mail.to_name,
            &mail.to_addr,
            &crate::email::Content {
                subject: &mail.subject,
                text: &mail.body,
                html: mail.html.as_deref(),
                in_reply_to: mail.in_reply_to.as_deref(),
            },
            &mail.message_id,
            mail.created_at,
        )
        .map_err(|e| SendError {
            // A message that cannot be built (a bad address) never will be.
            permanent: true,
            message: format!("cannot be built: {e}"),
        })
        .and_then(|m| transport.send(&m))
    };
    // The closure only reads its captures; a panic leaves nothing half-changed behind.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        Err(SendError {
            permanent: true,
            message: format!("cannot be rendered: {why}"),
        })
    })
}

/// One round: sends every due e-mail once. Returns how many were sent.
pub fn deliver_due(
    store: &dyn OutboxStore,
    transport: &Transport,
    from: &Mailbox,
    health: &Health,
) -> Result<usize, StoreError> {
    let mut sent = 0;
    for mail in store.due(Utc::now(), BATCH)? {
        let result = attempt(transport, from, &mail);
        let now = Utc::now();
        match result {
            Ok(()) => {
                store.mark_sent(mail.id, now)?;
                sent += 1;
                health.update(|h| {
                    h.consecutive_failures = 0;
                    h.last_success = Some(now);
                });
                tracing::info!(outbox_id = mail.id, "e-mail sent");
            }
            Err(err) if err.permanent => {
                // Addresses are personal data: the id leads to the row, the log does not name it.
                tracing::error!(outbox_id = mail.id, error = %err.message, "e-mail refused for good");
                // Health first: whoever sees the row change sees the health that goes with it.
                health.update(|h| {
                    h.undeliverable += 1;
                    h.last_error = Some(err.message.clone());
                    h.last_failure = Some(now);
                    h.last_set_aside = Some(now);
                });
                store.mark_undeliverable(mail.id, &err.message, now)?;
            }
            Err(err) => {
                let attempts = mail.attempts + 1;
                let retry =
                    now + chrono::Duration::from_std(backoff(attempts)).expect("at most an hour");
                tracing::warn!(outbox_id = mail.id, attempts, error = %err.message, "e-mail not sent, will retry");
                health.update(|h| {
                    h.consecutive_failures += 1;
                    h.last_error = Some(err.message.clone());
                    h.last_failure = Some(now);
                });
                store.mark_failed(mail.id, &err.message, retry)?;
                // Most likely the relay is down: the rest wait for the next round instead of
                // each paying a connection timeout now.
                break;
            }
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};

    /// The store side, in memory: what the loop marked.
    #[derive(Default)]
    struct Memory {
        queue: Mutex<Vec<QueuedEmail>>,
        marks: Mutex<Vec<String>>,
    }

    impl OutboxStore for Memory {
        fn due(&self, _: DateTime<Utc>, _: usize) -> Result<Vec<QueuedEmail>, StoreError> {
            Ok(self.queue.lock().unwrap().clone())
        }
        fn mark_sent(&self, id: i64, _: DateTime<Utc>) -> Result<(), StoreError> {
            self.marks.lock().unwrap().push(format!("sent {id}"));
            Ok(())
        }
        fn mark_failed(&self, id: i64, e: &str, _: DateTime<Utc>) -> Result<(), StoreError> {
            self.marks.lock().unwrap().push(format!("retry {id}: {e}"));
            Ok(())
        }
        fn mark_undeliverable(&self, id: i64, e: &str, _: DateTime<Utc>) -> Result<(), StoreError> {
            self.marks
                .lock()
                .unwrap()
                .push(format!("refused {id}: {e}"));
            Ok(())
        }
    }

    fn mail(id: i64, to: &str) -> QueuedEmail {
        QueuedEmail {
            id,
            message_id: format!("<m{id}@test>"),
            to_name: "Lan".into(),
            to_addr: to.into(),
            subject: "s".into(),
            body: "b".into(),
            html: None,
            created_at: Utc::now(),
            attempts: 0,
            in_reply_to: None,
        }
    }

    /// A minimal SMTP dialogue on a loopback port (RFC 5321 replies) that refuses one recipient
    /// for good; a unit-test stand-in (the real relay is aiosmtpd in tests/e2e/notify.rs).
    fn refusing_relay(refuse: &'static str) -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let mut w = conn.unwrap();
                let mut r = BufReader::new(w.try_clone().unwrap());
                w.write_all(b"220 test ESMTP\r\n").unwrap();
                let mut line = String::new();
                let mut in_data = false;
                while r.read_line(&mut line).unwrap_or(0) > 0 {
                    let cmd = line.to_ascii_uppercase();
                    let reply: &[u8] = if in_data {
                        if line == ".\r\n" {
                            in_data = false;
                            b"250 queued\r\n"
                        } else {
                            b""
                        }
                    } else if cmd.starts_with("EHLO") {
                        b"250 test\r\n"
                    } else if cmd.starts_with("RCPT") && line.contains(refuse) {
                        b"550 5.1.1 no such user\r\n"
                    } else if cmd.starts_with("DATA") {
                        in_data = true;
                        b"354 go on\r\n"
                    } else if cmd.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n");
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    w.write_all(reply).unwrap();
                    line.clear();
                }
            }
        });
        port
    }

    fn smtp(port: u16) -> Transport {
        Transport::smtp(&SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            security: Security::None,
            credentials: None,
            ca_pem: None,
            timeout: Duration::from_secs(5),
        })
        .unwrap()
    }

    #[test]
    fn a_5xx_is_final_and_the_rest_still_goes() {
        let port = refusing_relay("gone@example.org");
        let store = Memory::default();
        *store.queue.lock().unwrap() =
            vec![mail(1, "gone@example.org"), mail(2, "lan@example.org")];
        let health = Health::default();
        let from: Mailbox = "Vigil <vigil@localhost>".parse().unwrap();
        let sent = deliver_due(&store, &smtp(port), &from, &health).unwrap();
        assert_eq!(sent, 1);
        let marks = store.marks.lock().unwrap().clone();
        assert!(
            marks[0].starts_with("refused 1:") && marks[0].contains("550"),
            "{marks:?}"
        );
        assert_eq!(marks[1], "sent 2");
        let h = health.get();
        assert_eq!((h.undeliverable, h.consecutive_failures), (1, 0));
        assert!(h.last_success.is_some());
    }

    #[test]
    fn a_relay_that_is_down_is_retried_and_stops_the_round() {
        // A port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = Memory::default();
        *store.queue.lock().unwrap() = vec![mail(1, "a@example.org"), mail(2, "b@example.org")];
        let health = Health::default();
        let from: Mailbox = "Vigil <vigil@localhost>".parse().unwrap();
        assert_eq!(deliver_due(&store, &smtp(port), &from, &health).unwrap(), 0);
        let marks = store.marks.lock().unwrap().clone();
        assert_eq!(
            marks.len(),
            1,
            "the second waits for the next round: {marks:?}"
        );
        assert!(marks[0].starts_with("retry 1:"), "{marks:?}");
        let h = health.get();
        assert_eq!(h.consecutive_failures, 1);
        assert!(h.healthy(), "one failure is not yet a warning");
        for _ in 1..UNHEALTHY_AFTER {
            deliver_due(&store, &smtp(port), &from, &health).unwrap();
        }
        assert!(!health.get().healthy());
    }

    #[test]
    fn the_password_stays_out_of_debug_output() {
        let s = SmtpSettings {
            host: "relay".into(),
            port: 587,
            security: Security::StartTls,
            credentials: Some(("vigil".into(), "s3cret-pw".into())),
            ca_pem: None,
            timeout: Duration::from_secs(5),
        };
        let text = format!("{s:?}");
        assert!(
            text.contains("vigil") && !text.contains("s3cret-pw"),
            "{text}"
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(2), Duration::from_secs(20));
        assert_eq!(backoff(3), Duration::from_secs(40));
        assert_eq!(backoff(50), Duration::from_secs(3600));
    }
}
