//! The admin subcommands. Each opens the database directly (WAL lets it share the file with a
//! running server) and prints a human line, or with `--json` one JSON object and nothing else
//! on stdout.

use crate::cli::{AdminArgs, ContactCmd, DeviceCmd, FacilityCmd, PatientCmd};
use crate::config::Config;
use crate::secrets;
use crate::store::{self, registry};
use anyhow::Context;
use serde_json::{json, Value};
use vigil_store::db::Connection;

fn config(admin: &AdminArgs) -> anyhow::Result<Config> {
    let mut cfg = Config::load(admin.config.as_deref(), std::env::vars())?;
    if let Some(d) = &admin.data_dir {
        cfg.data_dir = d.clone();
    }
    Ok(cfg)
}

fn open(admin: &AdminArgs) -> anyhow::Result<Connection> {
    let cfg = config(admin)?;
    let at = cfg.store_location()?;
    store::open_location(&at).with_context(|| format!("cannot open the store {}", at.describe()))
}

/// `vigil device disable|enable ID`.
fn set_device_enabled(admin: &AdminArgs, id: &str, enabled: bool) -> anyhow::Result<()> {
    crate::store::devices::set_device_enabled(&open(admin)?, id, enabled)?;
    let word = if enabled { "enabled" } else { "disabled" };
    print(
        admin,
        json!({ "id": id, "enabled": enabled }),
        format!("device {id} {word}"),
    );
    Ok(())
}

/// A new file beside `out` (`.NAME.partial`) that only its owner may read — health data —,
/// to be renamed onto `out` once complete (`vigil backup`, `vigil fhir export`).
fn private_partial(out: &std::path::Path) -> anyhow::Result<(std::path::PathBuf, std::fs::File)> {
    let name = out
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("--out must name a file"))?
        .to_string_lossy();
    let tmp = out.with_file_name(format!(".{name}.partial"));
    let _ = std::fs::remove_file(&tmp);
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let file = o
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    Ok((tmp, file))
}

fn print(admin: &AdminArgs, value: Value, human: String) {
    if admin.json {
        println!("{value}");
    } else {
        println!("{human}");
    }
}

pub fn facility(cmd: FacilityCmd) -> anyhow::Result<()> {
    match cmd {
        FacilityCmd::Add {
            id,
            name,
            phone,
            admin,
        } => {
            let c = open(&admin)?;
            registry::add_facility(&c, &id, &name, phone.as_deref())?;
            print(
                &admin,
                json!({ "id": id }),
                format!("facility {id} created"),
            );
        }
        FacilityCmd::List { admin } => {
            let c = open(&admin)?;
            let list = registry::facilities(&c)?;
            let human = list
                .iter()
                .map(|f| {
                    format!(
                        "{}\t{}\t{} patients\t{}",
                        f.id,
                        f.name,
                        f.patients,
                        f.phone.as_deref().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            print(&admin, json!({ "facilities": list }), human);
        }
    }
    Ok(())
}

pub fn patient(cmd: PatientCmd) -> anyhow::Result<()> {
    match cmd {
        PatientCmd::Add {
            name,
            id,
            facility,
            area,
            tags,
            admin,
        } => {
            let c = open(&admin)?;
            let id =
                registry::add_patient(&c, id.as_deref(), &name, &facility, area.as_deref(), &tags)?;
            print(&admin, json!({ "id": id }), format!("patient {id} created"));
        }
        PatientCmd::List { admin } => {
            let c = open(&admin)?;
            let list = registry::patients(&c, &vigil_domain::Scope::All)?;
            let human = list
                .iter()
                .map(|p| format!("{}\t{}\t{}", p.id, p.name, p.facility_id))
                .collect::<Vec<_>>()
                .join("\n");
            print(&admin, json!({ "patients": list }), human);
        }
    }
    Ok(())
}

pub fn contact(cmd: ContactCmd) -> anyhow::Result<()> {
    match cmd {
        ContactCmd::Add {
            patient,
            name,
            email,
            lang,
            role,
            tier,
            notify,
            quiet_hours,
            timezone,
            phone,
            admin,
        } => {
            let c = open(&admin)?;
            let id = crate::provision::add_contact(
                &c,
                &patient,
                &crate::provision::ContactInput {
                    name,
                    email,
                    lang,
                    role,
                    tier,
                    notify,
                    quiet_hours,
                    timezone,
                    phone,
                },
            )?;
            print(
                &admin,
                json!({ "id": id }),
                format!("contact {id} added to patient {patient}"),
            );
        }
        ContactCmd::List { patient, admin } => {
            let c = open(&admin)?;
            let list = match &patient {
                Some(p) => registry::contacts(&c, p)?,
                None => registry::all_contacts(&c)?,
            };
            let human = list
                .iter()
                .map(|x| {
                    format!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        x.id,
                        x.patient_id,
                        x.name,
                        x.email,
                        x.lang.as_str(),
                        x.role.as_str(),
                        x.tier.as_str()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            print(&admin, json!({ "contacts": list }), human);
        }
        ContactCmd::Edit {
            id,
            name,
            email,
            lang,
            role,
            tier,
            notify,
            quiet_hours,
            timezone,
            phone,
            admin,
        } => {
            let c = open(&admin)?;
            let edit = crate::provision::ContactEdit {
                name,
                email,
                lang,
                role,
                tier,
                notify,
                quiet_hours,
                timezone,
                phone,
            };
            let contact =
                crate::provision::edit_contact(&c, id, &edit, &crate::provision::cli_actor())?;
            print(
                &admin,
                json!({ "contact": contact }),
                format!("contact {id} changed"),
            );
        }
        ContactCmd::Remove { id, admin } => {
            registry::remove_contact(&open(&admin)?, id, &crate::provision::cli_actor())?;
            print(
                &admin,
                json!({ "id": id, "removed": true }),
                format!("contact {id} removed"),
            );
        }
    }
    Ok(())
}

pub fn device(cmd: DeviceCmd) -> anyhow::Result<()> {
    match cmd {
        DeviceCmd::Add {
            patient,
            kind,
            id,
            interval,
            admin,
        } => {
            let kind = crate::provision::device_kind(&kind)?;
            let interval_s = crate::provision::device_interval(interval.as_deref())?;
            let c = open(&admin)?;
            let (secret, hashes) = crate::provision::new_secret();
            let id = crate::provision::add_device(
                &c,
                id.as_deref(),
                &patient,
                kind,
                interval_s,
                &hashes,
            )?;
            print(
                &admin,
                json!({ "id": id, "password": secret }),
                format!(
                    "device {id} registered for patient {patient}\n\
                     MQTT user name: {id}\nMQTT password:  {secret}\n\
                     (shown once: only a hash is stored)"
                ),
            );
        }
        DeviceCmd::Provision {
            count,
            scenario,
            prefix,
            kind,
            facility,
            admin,
        } => {
            let kind = crate::provision::device_kind(&kind)?;
            let mut c = open(&admin)?;
            let started = std::time::Instant::now();
            let devices = match (count, scenario) {
                (_, Some(path)) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                    let s = vigil_simulators::scenario::Scenario::parse(&text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                    let secrets = crate::provision::scenario_secrets(&s);
                    let tx = c.transaction()?;
                    let out = crate::provision::scenario(&tx, &s, &facility, secrets)?;
                    tx.commit()?;
                    out
                }
                (Some(count), None) => {
                    crate::provision::bulk(&mut c, &prefix, count, kind, &facility)?
                }
                (None, None) => anyhow::bail!("--count or --scenario"),
            };
            let mut out = std::io::stdout().lock();
            for (id, password, patient) in &devices {
                use std::io::Write as _;
                writeln!(
                    out,
                    "{}",
                    json!({ "id": id, "password": password, "patient": patient })
                )?;
            }
            eprintln!(
                "{} devices provisioned in {:.1} s",
                devices.len(),
                started.elapsed().as_secs_f64()
            );
        }
        DeviceCmd::List { admin } => {
            let c = open(&admin)?;
            let mut st = c.prepare(
                "SELECT id, patient_id, kind, enabled, last_seen, online, clock_skew_at, battery
                 FROM devices WHERE removed_at IS NULL ORDER BY id",
            )?;
            let rows: Vec<Value> = st
                .query_map([], |r| {
                    Ok(json!({
                        "id": r.get::<_, String>(0)?,
                        "patient_id": r.get::<_, String>(1)?,
                        "kind": r.get::<_, String>(2)?,
                        "enabled": r.get::<_, bool>(3)?,
                        "last_seen": r.get::<_, Option<i64>>(4)?.map(store::ms_to_time),
                        "online": r.get::<_, Option<bool>>(5)?,
                        "clock_skew_at": r.get::<_, Option<i64>>(6)?.map(store::ms_to_time),
                        "battery": r.get::<_, Option<f64>>(7)?,
                    }))
                })?
                .collect::<Result<_, _>>()?;
            let human = rows
                .iter()
                .map(|d| {
                    format!(
                        "{}\t{}\t{}",
                        d["id"].as_str().unwrap_or(""),
                        d["patient_id"].as_str().unwrap_or(""),
                        d["kind"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            print(&admin, json!({ "devices": rows }), human);
        }
        DeviceCmd::Remove { id, admin } => {
            crate::store::devices::remove_device(
                &open(&admin)?,
                &id,
                &crate::provision::cli_actor(),
            )?;
            print(
                &admin,
                json!({ "id": id, "removed": true }),
                format!("device {id} removed"),
            );
        }
        DeviceCmd::Disable { id, admin } => set_device_enabled(&admin, &id, false)?,
        DeviceCmd::Enable { id, admin } => set_device_enabled(&admin, &id, true)?,
        DeviceCmd::RotateSecret { id, admin } => {
            let secret = secrets::new_device_secret();
            crate::store::devices::set_device_secret(
                &open(&admin)?,
                &id,
                &crate::store::devices::SecretHashes::of(&secret),
            )?;
            print(
                &admin,
                json!({ "id": id, "password": secret }),
                format!(
                    "device {id}: new MQTT password {secret}\n(shown once: only a hash is stored)"
                ),
            );
        }
    }
    Ok(())
}

/// `vigil mosquitto export`: a password file in `mosquitto_passwd` format and an ACL that lets
/// each device write and read only under `vigil/v1/{its id}/` (Mosquitto's `%u` pattern) and the
/// gateway read every device's topics.
mod access;
mod fhir;
pub use fhir::fhir;
mod rules;

pub use access::{backup, mosquitto, token, user};
pub use rules::{rules, threshold};
