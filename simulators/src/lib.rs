//! Simulated devices: patient profiles that produce plausible vital signs, and an MQTT device
//! that publishes them under the v1 contract (`docs/mqtt.md`) with its own credentials.
//!
//! - [`Profile`]: baseline vitals plus a trend (stable, or deteriorating over a duration).
//! - [`run_device`]: one device's loop — connect, publish a batch every interval, stop on
//!   shutdown. Used by `vigil demo` and by the `vigil-sim` binary.
//!
//! - [`load`]: many connections publishing pre-encoded readings as fast as allowed;
//!   [`accounting`]: where every acknowledged reading went, from Vigil's `/metrics`.
//! - [`physiology`]: seeded, reproducible vitals per condition with a daily rhythm, noise and
//!   scripted episodes (issue #7; scenario files and device kinds build on it next).

pub mod accounting;
pub mod load;
pub mod physiology;
pub mod play;
pub mod probe;
pub mod scenario;

use chrono::Utc;
use rand::{Rng, SeedableRng};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use serde_json::json;
use std::time::Duration;
use tokio::sync::watch;
use vigil_domain::TOPIC_PREFIX;

/// A set of vital signs in canonical units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vitals {
    pub heart_rate: f64,
    pub spo2: f64,
    pub bp_systolic: f64,
    pub bp_diastolic: f64,
    pub temperature: f64,
    pub respiratory_rate: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trend {
    Stable,
    /// Moves linearly from the baseline to `to` over `over`, then stays there.
    Deteriorating {
        to: Vitals,
        over: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    pub baseline: Vitals,
    pub trend: Trend,
}

impl Profile {
    /// Vitals at `elapsed` since the start, with measurement noise from `rng`.
    pub fn sample(&self, elapsed: Duration, rng: &mut impl Rng) -> Vitals {
        let target = match self.trend {
            Trend::Stable => self.baseline,
            Trend::Deteriorating { to, over } => {
                let f = (elapsed.as_secs_f64() / over.as_secs_f64().max(0.001)).min(1.0);
                let lerp = |a: f64, b: f64| a + (b - a) * f;
                let b = self.baseline;
                Vitals {
                    heart_rate: lerp(b.heart_rate, to.heart_rate),
                    spo2: lerp(b.spo2, to.spo2),
                    bp_systolic: lerp(b.bp_systolic, to.bp_systolic),
                    bp_diastolic: lerp(b.bp_diastolic, to.bp_diastolic),
                    temperature: lerp(b.temperature, to.temperature),
                    respiratory_rate: lerp(b.respiratory_rate, to.respiratory_rate),
                }
            }
        };
        let mut n = |v: f64, spread: f64| v + rng.gen_range(-spread..=spread);
        Vitals {
            heart_rate: n(target.heart_rate, 2.0).round(),
            spo2: n(target.spo2, 0.6).round().min(100.0),
            bp_systolic: n(target.bp_systolic, 3.0).round(),
            bp_diastolic: n(target.bp_diastolic, 2.0).round(),
            temperature: (n(target.temperature, 0.1) * 10.0).round() / 10.0,
            respiratory_rate: n(target.respiratory_rate, 1.0).round(),
        }
    }
}

/// The v1 batch payload for a set of vitals.
pub fn batch_payload(v: &Vitals, ts_ms: i64) -> String {
    json!({
        "ts": ts_ms,
        "readings": [
            {"metric": "heart_rate", "value": v.heart_rate, "unit": "/min"},
            {"metric": "spo2", "value": v.spo2, "unit": "%"},
            {"metric": "bp_systolic", "value": v.bp_systolic, "unit": "mm[Hg]"},
            {"metric": "bp_diastolic", "value": v.bp_diastolic, "unit": "mm[Hg]"},
            {"metric": "temperature", "value": v.temperature, "unit": "Cel"},
            {"metric": "respiratory_rate", "value": v.respiratory_rate, "unit": "/min"},
        ]
    })
    .to_string()
}

/// One simulated device.
#[derive(Debug, Clone)]
pub struct DeviceSim {
    pub host: String,
    pub port: u16,
    pub device_id: String,
    pub secret: String,
    pub profile: Profile,
    pub interval: Duration,
    /// Stop after this many publishes (`None`: until shutdown).
    pub count: Option<u64>,
}

/// Publishes until shutdown (or `count`). Reconnects on its own: rumqttc retries when polled.
pub async fn run_device(sim: DeviceSim, mut shutdown: watch::Receiver<bool>) {
    let status = format!("{TOPIC_PREFIX}/{}/status", sim.device_id);
    let readings = format!("{TOPIC_PREFIX}/{}/readings", sim.device_id);
    let mut opts = MqttOptions::new(format!("sim-{}", sim.device_id), sim.host.clone(), sim.port);
    opts.set_credentials(sim.device_id.clone(), sim.secret.clone());
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_last_will(LastWill::new(&status, "offline", QoS::AtLeastOnce, true));
    let (client, mut eventloop) = AsyncClient::new(opts, 16);
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(sim.interval);
    let mut sent = 0u64;
    let mut connected = false;
    let mut rng = rand::rngs::StdRng::from_entropy();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            ev = eventloop.poll() => match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    connected = true;
                    let _ = client.try_publish(&status, QoS::AtLeastOnce, true, "online");
                }
                Ok(_) => {}
                Err(err) => {
                    connected = false;
                    tracing::debug!(device_id = %sim.device_id, error = %err, "simulator connection error");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            _ = tick.tick(), if connected => {
                let v = sim.profile.sample(start.elapsed(), &mut rng);
                let payload = batch_payload(&v, Utc::now().timestamp_millis());
                if client.try_publish(&readings, QoS::AtLeastOnce, false, payload).is_ok() {
                    sent += 1;
                }
                if sim.count.is_some_and(|c| sent >= c) {
                    // Let the last publish go out.
                    let deadline = tokio::time::sleep(Duration::from_millis(500));
                    tokio::pin!(deadline);
                    loop {
                        tokio::select! {
                            _ = &mut deadline => break,
                            _ = eventloop.poll() => {}
                        }
                    }
                    break;
                }
            }
        }
    }
    let _ = client.try_disconnect();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vitals {
        Vitals {
            heart_rate: 80.0,
            spo2: 96.0,
            bp_systolic: 130.0,
            bp_diastolic: 80.0,
            temperature: 36.8,
            respiratory_rate: 16.0,
        }
    }

    #[test]
    fn deterioration_reaches_target() {
        let p = Profile {
            baseline: base(),
            trend: Trend::Deteriorating {
                to: Vitals {
                    spo2: 84.0,
                    ..base()
                },
                over: Duration::from_secs(40),
            },
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let early = p.sample(Duration::ZERO, &mut rng);
        let late = p.sample(Duration::from_secs(60), &mut rng);
        assert!(early.spo2 >= 95.0, "{early:?}");
        assert!(late.spo2 <= 85.0, "{late:?}");
    }

    #[test]
    fn payload_is_v1_batch() {
        let s = batch_payload(&base(), 1);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["readings"].as_array().unwrap().len(), 6);
        assert_eq!(v["ts"], 1);
    }
}
