//! Wiring: builds every stage from the configuration and runs them until shutdown.
//!
//! ```text
//! MQTT (embedded rmqtt | external rumqttc) ─▶ Ingest (decode, validate, store + rules) ─▶ ack
//!                                               │ commit
//!                                 broadcast ◀───┼───▶ outbox wake ─▶ outbox loop ─▶ .eml files
//!                                     │
//!                              dashboard SSE ◀── axum (API, pages) ──▶ store reads
//! ```

use crate::app::App;
use crate::backend::{StoreBackend, StoreOutbox};
use crate::config::Config;
use crate::ingest::Ingest;
use crate::mqtt;
use crate::shutdown;
use crate::store::StoreHandle;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use vigil_alerting::RuleSet;
use vigil_dashboard::AppState;
use vigil_notify::outbox::{self, Transport};

/// The configured rule set: the file named by `[rules] file`, or the built-in defaults.
pub fn rule_set(cfg: &Config) -> anyhow::Result<RuleSet> {
    if cfg.rules.file.is_empty() {
        return Ok(RuleSet::defaults());
    }
    let text = std::fs::read_to_string(&cfg.rules.file)
        .with_context(|| format!("rules.file: cannot read {}", cfg.rules.file))?;
    RuleSet::from_toml(&text).with_context(|| format!("rules.file {}", cfg.rules.file))
}

/// How ingest checks and stores messages, from `[ingest]`, `[influxdb]` and `[rules]`.
fn ingest_settings(cfg: &Config) -> crate::ingest::Settings {
    crate::ingest::Settings {
        limits: vigil_protocol::Limits {
            max_payload: cfg.ingest.max_payload_bytes as usize,
            max_readings: cfg.ingest.max_readings_per_message as usize,
        },
        timing: vigil_protocol::validate::Timing {
            max_future_skew: chrono::Duration::minutes(cfg.ingest.max_future_skew_minutes.into()),
            late_after: chrono::Duration::minutes(cfg.ingest.late_after_minutes.into()),
        },
        rejected_keep: cfg.ingest.rejected_keep.into(),
        forward: cfg.influxdb.enabled(),
        fhir_push: cfg.fhir.enabled(),
        fall_cancel_ms: i64::from(cfg.rules.fall_cancel_seconds) * 1000,
    }
}

/// The e-mail transport `[smtp]` asks for: (transport, its name, a line for the start-up
/// banner). Reading the password or the CA file fails start-up, not the first alert.
fn mail_transport(
    cfg: &Config,
    outbox_dir: &std::path::Path,
) -> anyhow::Result<(Transport, &'static str, String)> {
    let smtp = &cfg.smtp;
    if smtp.host.is_empty() {
        return Ok((
            Transport::File(lettre::FileTransport::new(outbox_dir)),
            "file",
            format!("files in {} (no [smtp] host)", outbox_dir.display()),
        ));
    }
    let security = smtp.security().expect("validated with the config");
    let password = smtp.password().context("smtp.password_file")?;
    let ca_pem = if smtp.ca_file.is_empty() {
        None
    } else {
        Some(
            std::fs::read(&smtp.ca_file)
                .with_context(|| format!("smtp.ca_file: cannot read {}", smtp.ca_file))?,
        )
    };
    let port = if smtp.port == 0 {
        security.default_port()
    } else {
        smtp.port
    };
    let settings = outbox::SmtpSettings {
        host: smtp.host.clone(),
        port,
        security,
        credentials: (!smtp.username.is_empty()).then(|| (smtp.username.clone(), password)),
        ca_pem,
        timeout: Duration::from_secs(smtp.timeout_seconds.into()),
    };
    let transport = Transport::smtp(&settings).map_err(|e| anyhow::anyhow!("[smtp] {e}"))?;
    tracing::info!(host = %smtp.host, port, security = %smtp.security, "e-mail through SMTP");
    Ok((
        transport,
        "smtp",
        format!("SMTP {}:{port} ({})", smtp.host, smtp.security),
    ))
}

pub async fn run(cfg: Config, demo: bool) -> anyhow::Result<()> {
    let rules = rule_set(&cfg)?;
    tracing::info!(
        rules = rules.rules().len(),
        file = if cfg.rules.file.is_empty() {
            "(built-in)"
        } else {
            cfg.rules.file.as_str()
        },
        "alert rules loaded"
    );
    // Private, and one server per data directory (issue #15): the lock is held until `run`
    // returns, and by the kernel until the process ends however it ends.
    crate::datadir::make_private(&cfg.data_dir)?;
    let _lock = crate::datadir::ServerLock::acquire(&cfg.data_dir)?;
    // One descriptor budget for the listeners, the store and the rest (issue #15).
    let fd_limit = crate::fds::raise_limit();
    let (http_connections, mqtt_connections) =
        crate::fds::budget(fd_limit, cfg.http.max_connections);
    tracing::info!(
        fd_limit,
        http_connections,
        mqtt_connections,
        "connection limits"
    );
    let outbox_dir = cfg.outbox_dir();
    crate::datadir::make_private(&outbox_dir)
        .with_context(|| format!("cannot create the outbox {}", outbox_dir.display()))?;
    let at = cfg.store_location()?;
    let store = StoreHandle::open_at(&at)
        .with_context(|| format!("cannot open the store {}", at.describe()))?;
    tracing::info!(store = %at.describe(), "store open");
    let app = App::new(&cfg, store.clone(), rules);
    let ingest = Ingest::new(app.clone(), ingest_settings(&cfg));
    let App {
        metrics,
        live,
        outbox_wake,
        rules,
        patient_rules,
        alerts,
        ..
    } = app;
    // Seed before anything listens, so the first API answer already has the demo patients.
    let seeded = if demo {
        Some(crate::demo::seed(&store).await?)
    } else {
        None
    };
    let (stop_tx, stop_rx) = shutdown::channel();
    let mut tasks = tokio::task::JoinSet::new();

    // MQTT source.
    let mqtt_desc;
    if cfg.mqtt.broker_url.is_empty() {
        let broker = mqtt::embedded::start(cfg.mqtt.addr, ingest.clone(), mqtt_connections).await?;
        let rx = stop_rx.clone();
        tasks.spawn(async move {
            tokio::select! {
                r = broker => if let Err(e) = r { tracing::error!(error = %e, "MQTT broker stopped"); },
                _ = shutdown::wait(rx) => {}
            }
        });
        mqtt_desc = format!("embedded broker on {}", cfg.mqtt.addr);
    } else {
        let mcfg = cfg.mqtt.clone();
        let ing = ingest.clone();
        let rx = stop_rx.clone();
        tasks.spawn(async move {
            if let Err(e) = mqtt::external::run(mcfg, ing, rx).await {
                tracing::error!(error = %e, "MQTT client stopped");
            }
        });
        mqtt_desc = format!("external broker {}", cfg.mqtt.broker_url);
    }

    // Outbox: SMTP when a relay is configured, else .eml files.
    let from = cfg
        .mail_from()
        .parse()
        .context("smtp.from / email.from is not an e-mail address")?;
    let (transport, mail_transport, mail_desc) = mail_transport(&cfg, &outbox_dir)?;
    let mail_health = outbox::Health::default();
    // Background duties: with a shared PostgreSQL store, each runs on one gateway at a time.
    let duties = crate::duty::Duties::new(&store).with_metrics(metrics.clone());
    // Renews the leases held; gives them up at shutdown so others take over at once.
    tasks.spawn(duties.clone().keep(stop_rx.clone()));
    tasks.spawn(outbox::run(
        Arc::new(StoreOutbox {
            store: store.clone(),
            alerts: alerts.clone(),
            duty: duties.duty("outbox"),
        }),
        transport,
        from,
        outbox_wake,
        mail_health.clone(),
        stop_rx.clone(),
    ));
    // Escalation of unacknowledged red alerts, digests.
    tasks.spawn(crate::escalation::run(
        store.clone(),
        alerts.clone(),
        duties.duty("escalation"),
        stop_rx.clone(),
    ));
    // Missing data and adherence.
    tasks.spawn(crate::watch::run(
        store.clone(),
        alerts.clone(),
        rules.clone(),
        alerts.settings().timezone,
        duties.duty("watch"),
        stop_rx.clone(),
    ));

    // InfluxDB sink: the client is built before anything starts, so a bad setting stops
    // start-up with a clear error instead of failing later.
    if cfg.influxdb.enabled() {
        let client = crate::forwarder::client(&cfg.influxdb)?;
        tasks.spawn(crate::forwarder::run(
            store.clone(),
            cfg.influxdb.clone(),
            client,
            metrics.clone(),
            duties.duty("influxdb"),
            stop_rx.clone(),
        ));
        tracing::info!(url = %cfg.influxdb.url, bucket = %cfg.influxdb.bucket, "forwarding readings to InfluxDB");
    }

    // FHIR push (issue #18): checked before anything starts, as the InfluxDB sink.
    if cfg.fhir.enabled() {
        let client = crate::fhir_push::client(&cfg.fhir)?;
        tasks.spawn(crate::fhir_push::run(
            store.clone(),
            cfg.fhir.clone(),
            client,
            metrics.clone(),
            duties.duty("fhir_push"),
            stop_rx.clone(),
        ));
        tracing::info!(url = %cfg.fhir.push_url, "pushing readings to a FHIR server");
    }

    // Falls waiting for "I'm OK".
    tasks.spawn(crate::deferred::run(
        store.clone(),
        alerts.clone(),
        rules.clone(),
        duties.duty("fall_window"),
        stop_rx.clone(),
    ));

    // Retention.
    tasks.spawn(crate::retention::run(
        store.clone(),
        cfg.storage.clone(),
        metrics.clone(),
        duties.duty("retention"),
        stop_rx.clone(),
    ));

    // Dashboard: HTTPS when a certificate is configured (read before anything listens, so a
    // bad file stops start-up with its name).
    let tls = if cfg.http.tls_cert.is_empty() {
        None
    } else {
        Some(vigil_dashboard::http::tls::acceptor(
            std::path::Path::new(&cfg.http.tls_cert),
            std::path::Path::new(&cfg.http.tls_key),
        )?)
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = tokio::net::TcpListener::bind(cfg.http.addr)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", cfg.http.addr))?;
    let backend = Arc::new(StoreBackend {
        store: store.clone(),
        metrics: metrics.clone(),
        outbox_dir: outbox_dir.clone(),
        data_dir: cfg.data_dir.clone(),
        min_free_bytes: u64::from(cfg.storage.min_free_mb) << 20,
        session_ttl_ms: i64::from(cfg.http.session_ttl_hours) * 3_600_000,
        alerts: alerts.clone(),
        rules: rules.clone(),
        patient_rules,
        mail_health,
        mail_transport,
    });
    let settings = vigil_dashboard::http::Settings {
        session_ttl: Duration::from_secs(u64::from(cfg.http.session_ttl_hours) * 3600),
        // Served over TLS, or behind a TLS-terminating proxy (the public URL says so).
        secure_cookie: tls.is_some() || cfg.public_url().starts_with("https://"),
        metrics_public: cfg.http.metrics_public,
        tz: cfg.display_timezone(),
    };
    // Other gateways sharing the store: their commits on this one's live feed.
    let peers_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    crate::peers::start(&store, live.clone(), peers_stop.clone());
    let state = AppState::new(backend, live, settings);
    let rx = stop_rx.clone();
    let limits = vigil_dashboard::http::Limits {
        max_connections: http_connections,
        header_timeout: Duration::from_secs(u64::from(cfg.http.header_timeout_seconds.max(1))),
    };
    tasks.spawn(async move {
        let stop = shutdown::wait(rx);
        let served = match tls {
            Some(acceptor) => {
                vigil_dashboard::http::tls::serve(listener, acceptor, state, limits, stop).await
            }
            None => vigil_dashboard::http::serve(listener, state, limits, stop).await,
        };
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    tracing::info!(addr = %cfg.http.addr, scheme, "dashboard listening");

    let login_hint = if let Some(seeded) = seeded {
        crate::demo::start_devices(&cfg, &seeded, &mut tasks, stop_rx.clone());
        format!(
            "user \"{}\", password \"{}\"",
            crate::demo::DEMO_USER,
            seeded.password
        )
    } else {
        let users = store.read(crate::store::accounts::user_count).await?;
        if users == 0 {
            "no users yet: create one with `vigil user add --name NAME`".to_string()
        } else {
            "with a dashboard user (`vigil user add` creates one)".to_string()
        }
    };
    println!(
        "Vigil {} is running.\n  Dashboard: {scheme}://{}\n  Sign in:   {}\n  MQTT:      {}\n  Data:      {}\n  E-mail:    {}\nPress Ctrl-C to stop.",
        if demo { "demo" } else { "gateway" },
        cfg.http.addr,
        login_hint,
        mqtt_desc,
        cfg.data_dir.display(),
        mail_desc,
    );

    tokio::select! {
        _ = shutdown::signal() => tracing::info!("shutting down"),
        Some(done) = tasks.join_next() => {
            if let Err(e) = done { tracing::error!(error = %e, "a task failed"); }
            tracing::error!("a core task ended; shutting down");
        }
    }
    let _ = stop_tx.send(true);
    peers_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    // Give tasks a bounded time to drain; the store writer commits what it holds when the
    // last handle drops.
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        tracing::warn!("tasks did not stop within 10 s");
    }
    Ok(())
}
