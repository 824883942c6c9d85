//! `vigil-sim`: simulated Vigil devices. `scenario` plays a scenario file (patients, devices,
//! episodes, faults); `device` runs one simulated patient's device; `load` publishes readings
//! from many devices as fast as the broker takes them and reports the rate; `probe` times
//! alerts.

use clap::{Args, Parser, Subcommand};
use rumqttc::QoS;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use vigil_simulators::accounting;
use vigil_simulators::load::{self, LoadConfig, Progress};
use vigil_simulators::play;
use vigil_simulators::scenario::{self, Action, Scenario};

#[derive(Parser)]
#[command(
    name = "vigil-sim",
    version,
    about = "Simulated Vigil devices and load generator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Play a scenario file (docs/scenarios.md): every device of every patient, with its
    /// cadence, battery, faults and the scripted episodes; `--print` writes the messages
    /// instead of sending them.
    Scenario(ScenarioArgs),
    /// Run one simulated device (by default a home hub reporting a patient's vitals).
    Device(DeviceArgs),
    /// Publish readings from many devices and report the acknowledged rate.
    Load(LoadArgs),
    /// Measure publish → alert visible and publish → e-mail at the SMTP server, with probe
    /// devices that each publish one critical reading.
    Probe(ProbeArgs),
}

#[derive(Args)]
struct ProbeArgs {
    /// Broker address, `mqtt://host:port`.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    broker: String,
    /// The dashboard, `http://host:port`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    http: String,
    /// API token (`vigil token create`); defaults to $VIGIL_TOKEN.
    #[arg(long, env = "VIGIL_TOKEN", hide_env_values = true)]
    token: String,
    /// JSON lines `{"id": …, "password": …, "patient": …, "tag": …}`: one probe device each,
    /// of its own patient, whose family contact's address contains `tag`.
    #[arg(long)]
    credentials: std::path::PathBuf,
    /// Milliseconds between two probes' readings.
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
    /// The SMTP server's Maildir, to time e-mails too.
    #[arg(long)]
    maildir: Option<std::path::PathBuf>,
    /// Seconds to wait for late alerts and e-mails after the last reading.
    #[arg(long, default_value_t = 15)]
    settle_s: u64,
    /// Extra live-stream (SSE) clients that each time every probe's alert.
    #[arg(long, default_value_t = 0)]
    streams: usize,
    /// A dashboard session cookie (`vigil_session=…`): each extra stream client also fetches
    /// the ward view on every alert, as the page's script does, and times it.
    #[arg(long)]
    ward_cookie: Option<String>,
}

#[derive(Args)]
struct ScenarioArgs {
    /// The scenario file (TOML).
    file: std::path::PathBuf,
    /// Broker address, `mqtt://host:port`.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    broker: String,
    /// JSON lines `{"id": …, "password": …}` for the scenario's devices (what
    /// `vigil device provision --scenario FILE` prints).
    #[arg(long)]
    credentials: Option<std::path::PathBuf>,
    /// Times faster than real time (`60`: a minute a second). Needs a duration.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Overrides the file's `duration` (`10m`, `2h`).
    #[arg(long)]
    duration: Option<String>,
    /// Print the messages as JSON lines (`t_ms`, `device`, `action`, `topic`, `payload`)
    /// instead of sending them; needs a duration.
    #[arg(long)]
    print: bool,
    /// With `--print`: the wall time of t = 0 (RFC 3339; default the file's `start`, else now).
    #[arg(long)]
    origin: Option<String>,
}

#[derive(Args)]
struct DeviceArgs {
    /// Broker address, `mqtt://host:port`.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    broker: String,
    /// Device id (the MQTT user name).
    #[arg(long)]
    device: String,
    /// Device secret (the MQTT password); defaults to $VIGIL_DEVICE_SECRET.
    #[arg(long, env = "VIGIL_DEVICE_SECRET", hide_env_values = true)]
    secret: String,
    /// `stable` or `deteriorating` (SpO₂ falls to 84 % over a minute).
    #[arg(long, default_value = "stable")]
    profile: String,
    /// The device kind (what it reports: docs/scenarios.md).
    #[arg(long, default_value = "hub")]
    kind: String,
    /// The patient's condition: healthy_elderly, copd, heart_failure, diabetes, hypertension.
    #[arg(long, default_value = "healthy_elderly")]
    condition: String,
    /// Seed of the simulated values.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Milliseconds between publishes.
    #[arg(long, default_value_t = 5000)]
    interval_ms: u64,
    /// Stop after this many publishes.
    #[arg(long)]
    count: Option<u64>,
}

#[derive(Args)]
struct LoadArgs {
    /// Broker address, `mqtt://host:port`.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    broker: String,
    /// Number of devices; ids are `{prefix}{n}`.
    #[arg(long, default_value_t = 10)]
    devices: usize,
    /// Device id prefix.
    #[arg(long, default_value = "load-")]
    prefix: String,
    /// MQTT connections (each publishes for devices/connections devices).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Messages per device.
    #[arg(long, default_value_t = 10_000)]
    messages: u64,
    /// Target total messages per second; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Run for this long (`60s`, `5m`) at `--rate`: sets the messages per device
    /// (rate × duration ÷ devices) instead of `--messages`.
    #[arg(long)]
    duration: Option<String>,
    /// 0 or 1.
    #[arg(long, default_value_t = 1)]
    qos: u8,
    /// Readings per message: more than 1 publishes hub batches (`{"readings": [...]}`).
    #[arg(long, default_value_t = 1)]
    readings_per_message: u64,
    /// Milliseconds between a device's readings.
    #[arg(long, default_value_t = 1)]
    step_ms: i64,
    /// Time of the first reading, epoch ms (default: now minus one hour).
    #[arg(long)]
    start_ms: Option<i64>,
    /// Stamp each message with its publish time instead (`--start-ms` is then unused): with
    /// `--http`, the output adds `store_p50_ms` and `store_p99_ms`, publish → stored read
    /// from Vigil's `vigil_reading_store_delay_seconds`, through any broker.
    #[arg(long)]
    live_ts: bool,
    /// JSON lines `{"id": …, "password": …}` (what `vigil device add --json` prints): publish as
    /// these devices, one authenticated connection each (needed by the embedded broker, which
    /// lets a device publish only under its own id). Replaces --devices, --prefix, --connections.
    #[arg(long)]
    credentials: Option<std::path::PathBuf>,
    /// Vigil's dashboard address (`http://127.0.0.1:8080`): read `/metrics` before and after
    /// the run and report where every acknowledged reading went (stored, duplicate, rejected,
    /// lost).
    #[arg(long)]
    http: Option<String>,
    /// API token for `/metrics` (`vigil token create`); none when `http.metrics_public`.
    #[arg(long)]
    token: Option<String>,
    /// Longest wait, after the last acknowledgement, for the gateway to settle.
    #[arg(long, default_value_t = 30)]
    settle_s: u64,
}

fn host_port(url: &str) -> anyhow::Result<(String, u16)> {
    let rest = url
        .strip_prefix("mqtt://")
        .ok_or_else(|| anyhow::anyhow!("--broker: expected mqtt://host:port"))?;
    match rest.rsplit_once(':') {
        Some((h, p)) => Ok((h.to_string(), p.parse()?)),
        None => Ok((rest.to_string(), 1883)),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Scenario(a) => scenario_cmd(a).await,
        Command::Device(a) => device(a).await,
        Command::Load(a) => load_cmd(a).await,
        Command::Probe(a) => tokio::task::spawn_blocking(move || probe_cmd(a)).await?,
    }
}

fn probe_cmd(a: ProbeArgs) -> anyhow::Result<()> {
    use vigil_simulators::probe::{self, quantile, Probe, ProbeConfig};
    let (host, port) = host_port(&a.broker)?;
    let mut probes = Vec::new();
    for line in std::fs::read_to_string(&a.credentials)?
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let f = |k: &str| {
            v[k].as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow::anyhow!("--credentials: a line without {k}"))
        };
        probes.push(Probe {
            device: f("id")?,
            password: f("password")?,
            patient: f("patient")?,
            tag: f("tag")?,
        });
    }
    let r = probe::run(ProbeConfig {
        host,
        port,
        http: a.http.trim_end_matches('/').to_string(),
        token: a.token,
        probes,
        interval: Duration::from_millis(a.interval_ms),
        maildir: a.maildir,
        settle: Duration::from_secs(a.settle_s),
        extra_streams: a.streams,
        ward_cookie: a.ward_cookie,
    })?;
    let q = |v: &[f64], x: f64| {
        let n = quantile(v, x);
        if n.is_nan() {
            serde_json::Value::Null
        } else {
            serde_json::json!((n * 10.0).round() / 10.0)
        }
    };
    println!(
        "{}",
        serde_json::json!({
            "probes": r.probes,
            "alerts_seen": r.alert_ms.len(),
            "alert_p50_ms": q(&r.alert_ms, 0.5),
            "alert_p99_ms": q(&r.alert_ms, 0.99),
            "alert_max_ms": q(&r.alert_ms, 1.0),
            "emails_seen": r.email_ms.len(),
            "email_p50_ms": q(&r.email_ms, 0.5),
            "email_p99_ms": q(&r.email_ms, 0.99),
            "email_max_ms": q(&r.email_ms, 1.0),
            "streams": r.streams,
            "stream_updates_seen": r.fanout_ms.len(),
            "stream_p50_ms": q(&r.fanout_ms, 0.5),
            "stream_p99_ms": q(&r.fanout_ms, 0.99),
            "stream_max_ms": q(&r.fanout_ms, 1.0),
            "ward_updates_seen": r.ward_ms.len(),
            "ward_p50_ms": q(&r.ward_ms, 0.5),
            "ward_p99_ms": q(&r.ward_ms, 0.99),
            "ward_max_ms": q(&r.ward_ms, 1.0),
        })
    );
    Ok(())
}

/// One device of one patient: a scenario of one.
async fn device(args: DeviceArgs) -> anyhow::Result<()> {
    let (host, port) = host_port(&args.broker)?;
    let hypoxia_to = match args.profile.as_str() {
        "stable" => None,
        // SpO₂ down to 84 % within about a minute, heart and breathing faster (hypoxia).
        "deteriorating" => Some(84.0),
        other => anyhow::bail!("unknown profile {other:?} (stable or deteriorating)"),
    };
    let s = Scenario::one_device(
        &args.device,
        &args.kind,
        &args.condition,
        args.seed,
        args.interval_ms as i64,
        hypoxia_to,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = tx.send(true);
    });
    // `count` publishes: the first comes within one interval (each device has its own phase).
    let duration = args
        .count
        .map(|c| (c as i64).saturating_mul(args.interval_ms as i64));
    play::play(
        Arc::new(s),
        play::PlayConfig {
            host,
            port,
            credentials: HashMap::from([(args.device, args.secret)]),
            speed: 1.0,
            duration,
        },
        rx,
    )
    .await?;
    Ok(())
}

/// `90s`, `5m`, `1h` or plain seconds.
fn parse_duration(s: &str) -> anyhow::Result<f64> {
    let ms = scenario::parse_span(s).map_err(|e| anyhow::anyhow!("--duration {e}"))?;
    Ok(ms as f64 / 1e3)
}

/// (id, password) of each JSON line with `id` and `password` (what `vigil device add --json`
/// and `vigil device provision` print), in file order.
fn read_credentials(path: &std::path::Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("--credentials {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), i + 1))?;
        match (v["id"].as_str(), v["password"].as_str()) {
            (Some(id), Some(pw)) => out.push((id.to_string(), pw.to_string())),
            _ => anyhow::bail!("{}:{}: needs id and password", path.display(), i + 1),
        }
    }
    Ok(out)
}

async fn scenario_cmd(a: ScenarioArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.file.display()))?;
    let s = Scenario::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", a.file.display()))?;
    let duration = a
        .duration
        .as_deref()
        .map(scenario::parse_span)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--duration {e}"))?;
    if a.print {
        let until = duration
            .or(s.duration)
            .ok_or_else(|| anyhow::anyhow!("--print needs a duration"))?;
        let origin = match a.origin.as_deref() {
            Some(o) => chrono::DateTime::parse_from_rfc3339(o)?.with_timezone(&chrono::Utc),
            None => s.start.unwrap_or_else(chrono::Utc::now),
        };
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for m in s.window(origin, 0, until) {
            use std::io::Write;
            let line = match &m.action {
                Action::Publish { channel, payload } => serde_json::json!({
                    "t_ms": m.t, "device": m.device, "action": "publish",
                    "topic": vigil_protocol::topic::topic(&m.device, *channel),
                    "payload": payload,
                }),
                Action::Connect => {
                    serde_json::json!({"t_ms": m.t, "device": m.device, "action": "connect"})
                }
                Action::Drop => {
                    serde_json::json!({"t_ms": m.t, "device": m.device, "action": "drop"})
                }
            };
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    let (host, port) = host_port(&a.broker)?;
    let credentials = match &a.credentials {
        Some(p) => read_credentials(p)?.into_iter().collect(),
        None => anyhow::bail!(
            "--credentials: the devices' passwords (vigil device provision --scenario)"
        ),
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = tx.send(true);
    });
    let started = std::time::Instant::now();
    let report = play::play(
        Arc::new(s),
        play::PlayConfig {
            host,
            port,
            credentials,
            speed: a.speed,
            duration,
        },
        rx,
    )
    .await?;
    let mut v = serde_json::to_value(&report)?;
    v["seconds"] = serde_json::json!((started.elapsed().as_secs_f64() * 10.0).round() / 10.0);
    println!("{v}");
    Ok(())
}

async fn load_cmd(a: LoadArgs) -> anyhow::Result<()> {
    let (host, port) = host_port(&a.broker)?;
    let qos = match a.qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => anyhow::bail!("--qos: 0 or 1"),
    };
    let (devices, passwords, connections) = match &a.credentials {
        Some(path) => {
            let (ids, pws): (Vec<String>, Vec<String>) =
                read_credentials(path)?.into_iter().unzip();
            let n = ids.len();
            (ids, Some(pws), n)
        }
        None => (
            (0..a.devices).map(|i| format!("{}{i}", a.prefix)).collect(),
            None,
            a.connections.min(a.devices),
        ),
    };
    let messages_per_device = match a.duration.as_deref() {
        None => a.messages,
        Some(d) => {
            anyhow::ensure!(a.rate > 0, "--duration needs --rate");
            let secs = parse_duration(d)?;
            (a.rate as f64 * secs / devices.len().max(1) as f64).ceil() as u64
        }
    };
    let cfg = LoadConfig {
        host,
        port,
        devices,
        passwords,
        connections,
        messages_per_device,
        rate: a.rate,
        qos,
        start_ms: a
            .start_ms
            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis() - 3_600_000),
        readings_per_message: a.readings_per_message.max(1),
        step_ms: a.step_ms.max(1),
        live_ts: a.live_ts,
    };
    let per_message = a.readings_per_message.max(1);
    let (report, acc) = match a.http.clone() {
        Some(http) => {
            let settle = Duration::from_secs(a.settle_s);
            let (r, acc, busy) =
                accounting::run_accounted(cfg, http, a.token.clone(), settle).await?;
            (r, Some((acc, busy)))
        }
        None => (load::run(cfg, Arc::new(Progress::default())).await?, None),
    };
    let mut out = serde_json::json!({
        "sent": report.sent,
        "acked": report.acked,
        "readings": report.acked * per_message,
        "seconds": (report.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        "acked_per_second": report.rate().round(),
    });
    if !report.ack_ms.is_empty() {
        let ms: Vec<f64> = report.ack_ms.iter().map(|m| f64::from(*m)).collect();
        let q = |x: f64| (vigil_simulators::probe::quantile(&ms, x) * 10.0).round() / 10.0;
        out["ack_p50_ms"] = q(0.5).into();
        out["ack_p99_ms"] = q(0.99).into();
        out["ack_max_ms"] = q(1.0).into();
    }
    if let Some((acc, busy)) = acc {
        // From the start of the run until Vigil's counters last moved: its rate, not the
        // publisher's (at QoS 0, or behind an external broker, Vigil may finish later).
        out["gateway_seconds"] =
            ((busy.max(report.elapsed.as_secs_f64()) * 1000.0).round() / 1000.0).into();
        out["stored_per_second"] = (acc.stored as f64
            / busy.max(report.elapsed.as_secs_f64()).max(1e-9))
        .round()
        .into();
        out["stored"] = acc.stored.into();
        out["duplicates"] = acc.duplicates.into();
        out["rejected"] = acc.rejected.into();
        out["lost"] = acc.lost.into();
        out["foreign"] = acc.foreign.into();
        out["lossy"] = acc.lossy().into();
        // Publish → stored from Vigil's histogram, when the readings carried their publish
        // time (bucket resolution, interpolated).
        if a.live_ts {
            for (key, q) in [("store_p50_ms", 0.5), ("store_p99_ms", 0.99)] {
                if let Some(ms) = acc.store_delay_ms(q) {
                    out[key] = ((ms * 10.0).round() / 10.0).into();
                }
            }
        }
    }
    println!("{out}");
    Ok(())
}
