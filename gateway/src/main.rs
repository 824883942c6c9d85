//! `vigil`: the gateway binary. Glue only — parse the command line, load the configuration,
//! set up logging, and hand over to [`server::run`] or an admin command.

mod admin;
mod alerts;
mod backend;
mod cli;
mod config;
mod datadir;
mod deferred;
mod demo;
mod escalation;
mod fds;
mod forwarder;
mod ingest;
mod metrics;
mod mqtt;
mod notify;
mod periodic;
mod provision;
mod retention;
mod secrets;
mod server;
mod shutdown;
mod store;
mod watch;

use clap::Parser;

// The ingest path allocates many small, short-lived buffers (packets, decoded readings);
// glibc's allocator took ≈ 14 % of the gateway's CPU while draining a backlog
// (docs/benchmarks.md). mimalloc's thread-local free lists make those cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use cli::{Cli, Command, ServerArgs};
use std::process::ExitCode;

fn main() -> ExitCode {
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
