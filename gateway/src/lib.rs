//! `vigil-gateway`: the `vigil` binary's code — command line, configuration, the MQTT sources,
//! the ingest pipeline, the alert service, the background tasks, and the wiring of the store,
//! the dashboard and alerting into one process. `main.rs` only calls [`main`].
//!
//! Layout (where to look for what; docs/architecture.md has the why):
//!
//! ```text
//! cli, config          the command line (clap) and `vigil.toml` + VIGIL_* overrides
//! admin, provision     the admin commands, and the checks they share with the API
//! server               wiring: builds every task from the configuration, runs them to shutdown
//! shutdown, periodic   the shutdown signal; the helper every periodic task runs in
//! duty                 which gateway does each background task when several share PostgreSQL
//! peers                the other gateways' commits on this one's live feed (LISTEN/NOTIFY)
//! datadir, fds         the private data directory and its lock; the descriptor budget
//! mqtt::{embedded,     MQTT sources: the rmqtt broker in-process, or a client of Mosquitto/EMQX;
//!        external}       both hand messages to ingest and ack after the commit
//! ingest               topic → decode → validate (vigil-protocol) → store + rules, one write job
//! alerts               the alert service: the only code that opens or changes an alert
//! escalation, watch,   periodic tasks through the alert service: escalation and digests,
//!   deferred             missing data and adherence, the fall window
//! fhir_push            the FHIR push (store-and-forward queue → transaction Bundles, issue #18)
//! forwarder            the InfluxDB sink (store-and-forward queue → influxdb2)
//! retention            rollups and raw-reading retention
//! retry                the retry delays of the forwarder, the MQTT client and its batcher
//! backend              the dashboard's Backend and the outbox's OutboxStore on the store
//! metrics              Prometheus exposition
//! demo                 the demo's patients and simulated devices
//! ```
//!
//! The store is the `vigil-store` crate, used here as `crate::store`; notification policy,
//! e-mails and the outbox loop are `vigil-notify`.

mod admin;
mod alerts;
mod app;
mod backend;
mod cli;
mod config;
mod datadir;
mod deferred;
mod demo;
mod duty;
mod escalation;
mod fds;
mod fhir_push;
mod forwarder;
mod http_client;
mod ingest;
mod metrics;
mod mqtt;
mod peers;
mod periodic;
mod provision;
mod retention;
mod retry;
mod server;
mod shutdown;
mod watch;

// The store crate under the short name the modules use (`crate::store::…`).
use vigil_store as store;
use vigil_store::secrets;

use clap::Parser;

use cli::{Cli, Command, ServerArgs};
use std::process::ExitCode;

/// The `vigil` command: parses the command line and runs the command asked for.
pub fn main() -> ExitCode {
    // One rustls crypto provider for the whole process (issue #2): ring, which the embedded
    // broker's TLS stack already uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Health data: whatever umask we were started with, what we write is ours only (issue #15).
    datadir::private_umask();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => serve(args, true),
        Command::Run(args) => serve(args, false),
        Command::Patient(c) => admin::patient(c),
        Command::Facility(c) => admin::facility(c),
        Command::Contact(c) => admin::contact(c),
        Command::Device(c) => admin::device(c),
        Command::Token(c) => admin::token(c),
        Command::User(c) => admin::user(c),
        Command::Mosquitto(c) => admin::mosquitto(c),
        Command::Rules(c) => admin::rules(c),
        Command::Threshold(c) => admin::threshold(c),
        Command::Fhir(c) => admin::fhir(c),
        Command::Backup { out, admin } => admin::backup(&out, &admin),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The demo's own address for links in its e-mails: the HTTP listener, on loopback when it
/// listens on every interface.
fn demo_public_url(cfg: &config::Config) -> String {
    let mut addr = cfg.http.addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let scheme = if cfg.http.tls_cert.is_empty() {
        "http"
    } else {
        "https"
    };
    format!("{scheme}://{addr}")
}

fn serve(args: ServerArgs, demo: bool) -> anyhow::Result<()> {
    let mut cfg = config::Config::load(args.config.as_deref(), std::env::vars())?;
    if demo && args.config.is_none() && std::env::var_os("VIGIL_DATA_DIR").is_none() {
        // Keep demo patients out of a real data directory.
        cfg.data_dir = "vigil-demo-data".into();
    }
    if let Some(d) = args.data_dir {
        cfg.data_dir = d;
    }
    if let Some(a) = args.http_addr {
        cfg.http.addr = a;
    }
    if let Some(a) = args.mqtt_addr {
        cfg.mqtt.addr = a;
    }
    if demo && cfg.public_url().is_empty() {
        // The demo's e-mails carry working links (issue #17): to itself, as this machine
        // reaches it.
        cfg.dashboard.public_url = demo_public_url(&cfg);
    }
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| cfg.log.level.clone());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(server::run(cfg, demo))
}

#[cfg(test)]
mod demo_url_tests {
    #[test]
    fn the_demo_links_to_itself_on_loopback() {
        let mut cfg = crate::config::Config::default();
        cfg.http.addr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(super::demo_public_url(&cfg), "http://127.0.0.1:8080");
        cfg.http.addr = "127.0.0.1:9000".parse().unwrap();
        cfg.http.tls_cert = "c.pem".into();
        assert_eq!(super::demo_public_url(&cfg), "https://127.0.0.1:9000");
    }
}
