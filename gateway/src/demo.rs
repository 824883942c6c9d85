//! `vigil demo`: six demo patients with family contacts and a simulated home hub each. One of
//! them (Nguyễn Văn An) deteriorates: SpO₂ falls below 90 % within about half a minute, which
//! raises a red alert, e-mails the family (into the file outbox) and shows on the dashboard.
//!
//! Seeding is idempotent. Each start gives the demo devices fresh secrets (the simulators need
//! the plain text, which is never stored) and the demo user a fresh printed password.

use crate::config::Config;
use crate::secrets;
use crate::store::{registry, StoreError, StoreHandle};
use rusqlite::params;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use vigil_domain::{DeviceKind, Lang};
use vigil_simulators::{DeviceSim, Profile, Trend, Vitals};

pub const DEMO_USER: &str = "demo";

/// How often each demo hub publishes.
const INTERVAL: Duration = Duration::from_secs(3);

struct DemoPatient {
    id: &'static str,
    name: &'static str,
    contact: (&'static str, &'static str, Lang),
    profile: Profile,
    /// Ward-view grouping and filters (issue #6).
    area: &'static str,
    tags: &'static [&'static str],
}

fn vitals(hr: f64, spo2: f64, sys: f64, dia: f64, temp: f64, rr: f64) -> Vitals {
    Vitals {
        heart_rate: hr,
        spo2,
        bp_systolic: sys,
        bp_diastolic: dia,
        temperature: temp,
        respiratory_rate: rr,
    }
}

fn patients() -> Vec<DemoPatient> {
    let stable = |v| Profile {
        baseline: v,
        trend: Trend::Stable,
    };
    let an = vitals(84.0, 95.0, 134.0, 84.0, 37.0, 18.0);
    vec![
        DemoPatient {
            id: "demo-an",
            name: "Nguyễn Văn An",
            contact: ("Nguyễn Thị Lan", "lan.nguyen@example.org", Lang::Vi),
            profile: Profile {
                baseline: an,
                trend: Trend::Deteriorating {
                    to: vitals(122.0, 84.0, 128.0, 80.0, 37.6, 26.0),
                    over: Duration::from_secs(45),
                },
            },
            area: "Phường Bến Nghé",
            tags: &["copd", "lives-alone"],
        },
        DemoPatient {
            id: "demo-binh",
            name: "Trần Thị Bình",
            contact: ("Trần Văn Hùng", "hung.tran@example.org", Lang::Vi),
            profile: stable(vitals(72.0, 97.0, 126.0, 78.0, 36.6, 15.0)),
            area: "Phường Bến Nghé",
            tags: &[],
        },
        DemoPatient {
            id: "demo-cuong",
            name: "Lê Văn Cường",
            contact: ("Lê Thị Mai", "mai.le@example.org", Lang::Vi),
            profile: stable(vitals(76.0, 96.0, 156.0, 92.0, 36.8, 16.0)),
            area: "Phường Đa Kao",
            tags: &["hypertension"],
        },
        DemoPatient {
            id: "demo-dung",
            name: "Phạm Thị Dung",
            contact: ("Peter Pham", "peter.pham@example.org", Lang::En),
            profile: stable(vitals(68.0, 98.0, 118.0, 74.0, 36.5, 14.0)),
            area: "Phường Đa Kao",
            tags: &["diabetes"],
        },
        DemoPatient {
            id: "demo-hoa",
            name: "Hoàng Thị Hoa",
            contact: ("Hoàng Văn Nam", "nam.hoang@example.org", Lang::Vi),
            profile: stable(vitals(92.0, 95.0, 132.0, 82.0, 37.9, 19.0)),
            area: "Phường Tân Định",
            tags: &["heart-failure"],
        },
        DemoPatient {
            id: "demo-minh",
            name: "Võ Văn Minh",
            contact: ("Võ Thị Thu", "thu.vo@example.org", Lang::Vi),
            profile: stable(vitals(64.0, 97.0, 122.0, 76.0, 36.4, 14.0)),
            area: "Phường Tân Định",
            tags: &[],
        },
    ]
}

pub struct Seeded {
    pub password: String,
    /// (device id, secret, profile)
    pub devices: Vec<(String, String, Profile)>,
}

pub async fn seed(store: &StoreHandle) -> anyhow::Result<Seeded> {
    let password = secrets::random_hex(6);
    let user_hash = secrets::hash_password(&password);
    let mut devices = Vec::new();
    let mut hashes = Vec::new();
    for p in patients() {
        let secret = secrets::new_device_secret();
        hashes.push((
            p.id,
            p.name,
            p.contact,
            p.area,
            p.tags,
            registry::SecretHashes::of(&secret),
        ));
        devices.push((format!("{}-hub", p.id), secret, p.profile));
    }
    store
        .write(move |c| {
            for (id, name, (cname, email, lang), area, tags, hash) in &hashes {
                if registry::patient(c, id)?.is_none() {
                    let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
                    registry::add_patient(
                        c,
                        Some(id),
                        name,
                        vigil_domain::DEFAULT_FACILITY,
                        Some(area),
                        &tags,
                    )?;
                    registry::add_contact(
                        c,
                        id,
                        &registry::NewContact::family(cname, email, *lang),
                    )?;
                }
                let dev = format!("{id}-hub");
                if registry::device(c, &dev)?.is_none() {
                    registry::add_device(c, Some(&dev), id, DeviceKind::Hub, hash)?;
                } else {
                    registry::set_device_secret(c, &dev, hash)?;
                    registry::set_device_enabled(c, &dev, true)?;
                }
            }
            match registry::add_user(c, DEMO_USER, &user_hash, true, &[]) {
                Ok(_) => {}
                Err(StoreError::Conflict(_)) => {
                    c.execute(
                        "UPDATE users SET password_hash = ?2 WHERE name = ?1",
                        params![DEMO_USER, user_hash],
                    )?;
                }
                Err(e) => return Err(e),
            }
            Ok(())
        })
        .await?;
    Ok(Seeded { password, devices })
}

pub fn start_devices(
    cfg: &Config,
    devices: Vec<(String, String, Profile)>,
    tasks: &mut JoinSet<()>,
    shutdown: watch::Receiver<bool>,
) {
    let host = match cfg.mqtt.addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        ip => ip.to_string(),
    };
    for (device_id, secret, profile) in devices {
        let sim = DeviceSim {
            host: host.clone(),
            port: cfg.mqtt.addr.port(),
            device_id,
            secret,
            profile,
            interval: INTERVAL,
            count: None,
        };
        let rx = shutdown.clone();
        // Simulators are not core tasks: one ending must not stop the server.
        tasks.spawn(async move {
            vigil_simulators::run_device(sim, rx.clone()).await;
            crate::shutdown::wait(rx).await;
        });
    }
}
