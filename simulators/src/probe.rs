//! Alert latency probe (issue #5's benchmark; issue #7's "publish → alert visible"): probe
//! devices publish one critical reading each (SpO₂ 85 %), and the probe measures, per reading,
//! the time until
//! - its alert appears on the dashboard's live stream (`GET /api/v1/stream`): the gateway sends
//!   it after the transaction that stored the reading and opened the alert commits, so this is
//!   "publish → alert persisted" plus one in-process broadcast and an HTTP write — an upper
//!   bound on the persistence latency;
//! - its family e-mail lands in the SMTP server's Maildir (`new/`), which the server writes at
//!   the end of the SMTP transaction: "publish → e-mail handed to SMTP", plus a file write.
//!
//! Run it beside a background load (`vigil-sim load --rate …`) to measure under load; see
//! `scripts/bench-alert-latency.sh`.

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One probe: a device of its own patient, whose family contact's address contains `tag`.
#[derive(Debug, Clone)]
pub struct Probe {
    pub device: String,
    pub password: String,
    pub patient: String,
    /// Found in the e-mail's `To:` header (e.g. `probe-7@`).
    pub tag: String,
}

#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pub host: String,
    pub port: u16,
    /// The dashboard, e.g. `http://127.0.0.1:8080`.
    pub http: String,
    /// An API token (`vigil token create`).
    pub token: String,
    pub probes: Vec<Probe>,
    /// Between two probes' readings.
    pub interval: Duration,
    /// The SMTP server's Maildir, to time e-mails; `None`: alerts only.
    pub maildir: Option<PathBuf>,
    /// How long to wait for stragglers after the last publish.
    pub settle: Duration,
    /// Extra live-stream clients (issue #6: "100 concurrent SSE clients receive an update
    /// within 1 s"): each times every probe's alert too; 0 for none.
    pub extra_streams: usize,
    /// A dashboard session cookie (`vigil_session=…`): each extra stream client then does what
    /// the ward view's script does on an alert event — fetches the ward view's changing part
    /// (`GET /ward`) — and times publish → a page showing the patient red.
    pub ward_cookie: Option<String>,
}

/// Latencies in milliseconds, one per probe that was seen; the rest were missed.
#[derive(Debug, Clone, Default)]
pub struct ProbeReport {
    pub alert_ms: Vec<f64>,
    pub email_ms: Vec<f64>,
    pub probes: usize,
    /// Publish → alert on each extra stream client, every (client, probe) pair seen.
    pub fanout_ms: Vec<f64>,
    /// Extra stream clients that were connected.
    pub streams: usize,
    /// Publish → the ward view fetched by each extra client shows the patient red.
    pub ward_ms: Vec<f64>,
}

/// The `q`-quantile (0–1) of `v` by the nearest-rank method; `NaN` when empty.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

enum Seen {
    Alert(String, Instant),
    Email(String, Instant),
    /// An extra stream client saw a patient's alert.
    Fanout(String, Instant),
    /// An extra stream client fetched a ward view showing the patient red.
    Ward(String, Instant),
}

/// Patient ids of alerts on the live stream, as they arrive; `client` numbers an extra
/// stream client (`None`: the main one).
fn watch_stream(
    http: String,
    token: String,
    client: Option<usize>,
    ward_cookie: Option<String>,
    tx: mpsc::Sender<Seen>,
) -> anyhow::Result<()> {
    let resp = ureq::get(&format!("{http}/api/v1/stream"))
        .set("Authorization", &format!("Bearer {token}"))
        .call()?;
    let reader = std::io::BufReader::new(resp.into_reader());
    for line in reader.lines() {
        let line = line?;
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let at = Instant::now();
        // Readings are most of the stream: skip them without parsing (the probe must not be
        // the bottleneck when it runs many clients).
        if !data.contains("\"type\":\"alert\"") {
            continue;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim()) else {
            continue;
        };
        if v["type"] == "alert" && v["alert"]["state"] == "open" {
            if let Some(p) = v["alert"]["patient_id"].as_str() {
                let seen = match client {
                    None => Seen::Alert(p.to_string(), at),
                    Some(_) => Seen::Fanout(p.to_string(), at),
                };
                if tx.send(seen).is_err() {
                    return Ok(());
                }
                if let (Some(_), Some(cookie)) = (client, ward_cookie.as_deref()) {
                    if let Some(at) = fetch_ward(&http, cookie, p) {
                        if tx.send(Seen::Ward(p.to_string(), at)).is_err() {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Fetches the ward view's changing part until it shows `patient` red (at most 5 s): when.
fn fetch_ward(http: &str, cookie: &str, patient: &str) -> Option<Instant> {
    let want = format!(r#"data-patient="{patient}" data-status="red""#);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let body = ureq::get(&format!("{http}/ward"))
            .set("Cookie", cookie)
            .call()
            .ok()?
            .into_string()
            .ok()?;
        if body.contains(&want) {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// `To:` headers of e-mails as they land in `maildir/new`.
fn watch_maildir(dir: PathBuf, tags: Vec<String>, tx: mpsc::Sender<Seen>) {
    let mut seen = std::collections::HashSet::new();
    let new = dir.join("new");
    loop {
        if let Ok(entries) = std::fs::read_dir(&new) {
            for e in entries.flatten() {
                let name = e.file_name();
                if !seen.insert(name) {
                    continue;
                }
                let at = Instant::now();
                let Ok(text) = std::fs::read_to_string(e.path()) else {
                    continue;
                };
                let to = text
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("to:"))
                    .unwrap_or("");
                if let Some(tag) = tags.iter().find(|t| to.contains(t.as_str())) {
                    if tx.send(Seen::Email(tag.clone(), at)).is_err() {
                        return;
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Records a sighting against its publish time; only the first per probe counts.
fn absorb(
    s: Seen,
    published: &mut HashMap<String, Instant>,
    by_tag: &mut HashMap<String, Instant>,
    sent: &HashMap<String, Instant>,
    r: &mut ProbeReport,
) {
    match s {
        Seen::Ward(p, at) => {
            if let Some(t) = sent.get(&p) {
                r.ward_ms.push(at.duration_since(*t).as_secs_f64() * 1000.0);
            }
        }
        Seen::Fanout(p, at) => {
            if let Some(t) = sent.get(&p) {
                r.fanout_ms
                    .push(at.duration_since(*t).as_secs_f64() * 1000.0);
            }
        }
        Seen::Alert(p, at) => {
            if let Some(t) = published.remove(&p) {
                r.alert_ms.push(at.duration_since(t).as_secs_f64() * 1000.0);
            }
        }
        Seen::Email(tag, at) => {
            if let Some(t) = by_tag.remove(&tag) {
                r.email_ms.push(at.duration_since(t).as_secs_f64() * 1000.0);
            }
        }
    }
}

/// Connects a device and waits for the broker's CONNACK.
fn connect(cfg: &ProbeConfig, p: &Probe) -> anyhow::Result<Client> {
    let mut o = MqttOptions::new(format!("{}-probe", p.device), cfg.host.clone(), cfg.port);
    o.set_credentials(p.device.clone(), p.password.clone());
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut conn) = Client::new(o, 10);
    loop {
        match conn.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => break,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => anyhow::bail!("{}: {e}", p.device),
            Err(_) => anyhow::bail!("{}: no CONNACK", p.device),
        }
    }
    // Drive the connection (PUBACKs, pings) for as long as the client lives.
    std::thread::spawn(move || for _ in conn.iter() {});
    Ok(client)
}

pub fn run(cfg: ProbeConfig) -> anyhow::Result<ProbeReport> {
    let (tx, rx) = mpsc::channel();
    for client in std::iter::once(None).chain((0..cfg.extra_streams).map(Some)) {
        let (http, token, tx) = (cfg.http.clone(), cfg.token.clone(), tx.clone());
        let cookie = cfg.ward_cookie.clone();
        std::thread::spawn(move || {
            if let Err(e) = watch_stream(http, token, client, cookie, tx) {
                eprintln!("live stream: {e}");
            }
        });
    }
    if let Some(dir) = cfg.maildir.clone() {
        let tags = cfg.probes.iter().map(|p| p.tag.clone()).collect();
        let tx = tx.clone();
        std::thread::spawn(move || watch_maildir(dir, tags, tx));
    }
    drop(tx);
    // Connect every probe first: connection set-up is not part of the latency.
    let clients: Vec<Client> = cfg
        .probes
        .iter()
        .map(|p| connect(&cfg, p))
        .collect::<anyhow::Result<_>>()?;
    // Let the stream subscription settle.
    std::thread::sleep(Duration::from_millis(500));
    let mut published: HashMap<String, Instant> = HashMap::new();
    let mut by_tag: HashMap<String, Instant> = HashMap::new();
    let mut report = ProbeReport {
        probes: cfg.probes.len(),
        streams: cfg.extra_streams,
        ..Default::default()
    };
    // Publish times that stay (the fan-out counts one sighting per client).
    let mut sent: HashMap<String, Instant> = HashMap::new();
    for (p, client) in cfg.probes.iter().zip(&clients) {
        let payload = format!(
            r#"{{"metric":"spo2","value":85,"unit":"%","ts":{}}}"#,
            chrono::Utc::now().timestamp_millis()
        );
        let t = Instant::now();
        published.insert(p.patient.clone(), t);
        sent.insert(p.patient.clone(), t);
        by_tag.insert(p.tag.clone(), t);
        client.publish(
            vigil_protocol::topic::topic(&p.device, vigil_protocol::Channel::Readings),
            QoS::AtLeastOnce,
            false,
            payload,
        )?;
        let until = Instant::now() + cfg.interval;
        while let Ok(s) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            absorb(s, &mut published, &mut by_tag, &sent, &mut report);
        }
    }
    let until = Instant::now() + cfg.settle;
    let want = cfg.probes.len() * if cfg.maildir.is_some() { 2 } else { 1 }
        + cfg.probes.len() * cfg.extra_streams * if cfg.ward_cookie.is_some() { 2 } else { 1 };
    while report.alert_ms.len()
        + report.email_ms.len()
        + report.fanout_ms.len()
        + report.ward_ms.len()
        < want
    {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(s) => absorb(s, &mut published, &mut by_tag, &sent, &mut report),
            Err(_) => break,
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
