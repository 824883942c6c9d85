//! `vigil-sim`: runs one simulated device against a broker (the load generator comes with
//! issue #7).

use clap::Parser;
use std::time::Duration;
use vigil_simulators::{run_device, DeviceSim, Profile, Trend, Vitals};

#[derive(Parser)]
#[command(
    name = "vigil-sim",
    about = "Simulated Vigil device: publishes vital signs over MQTT"
)]
struct Args {
    /// Broker host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Broker port.
    #[arg(long, default_value_t = 1883)]
    port: u16,
    /// Device id (the MQTT user name).
    #[arg(long)]
    device: String,
    /// Device secret (the MQTT password); defaults to $VIGIL_DEVICE_SECRET.
    #[arg(long, env = "VIGIL_DEVICE_SECRET", hide_env_values = true)]
    secret: String,
    /// `stable` or `deteriorating` (SpO₂ falls to 84 % over a minute).
    #[arg(long, default_value = "stable")]
    profile: String,
    /// Milliseconds between publishes.
    #[arg(long, default_value_t = 5000)]
    interval_ms: u64,
    /// Stop after this many publishes.
    #[arg(long)]
    count: Option<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let baseline = Vitals {
        heart_rate: 78.0,
        spo2: 96.0,
        bp_systolic: 132.0,
        bp_diastolic: 82.0,
        temperature: 36.7,
        respiratory_rate: 16.0,
    };
    let trend = match args.profile.as_str() {
        "stable" => Trend::Stable,
        "deteriorating" => Trend::Deteriorating {
            to: Vitals {
                spo2: 84.0,
                heart_rate: 124.0,
                respiratory_rate: 26.0,
                ..baseline
            },
            over: Duration::from_secs(60),
        },
        other => anyhow::bail!("unknown profile {other:?} (stable or deteriorating)"),
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    run_device(
        DeviceSim {
            host: args.host,
            port: args.port,
            device_id: args.device,
            secret: args.secret,
            profile: Profile { baseline, trend },
            interval: Duration::from_millis(args.interval_ms),
            count: args.count,
        },
        rx,
    )
    .await;
    Ok(())
}
