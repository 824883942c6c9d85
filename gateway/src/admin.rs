//! The admin subcommands. Each opens the database directly (WAL lets it share the file with a
//! running server) and prints a human line, or with `--json` one JSON object and nothing else
//! on stdout.

use crate::cli::{
    AdminArgs, ContactCmd, DeviceCmd, FacilityCmd, MosquittoCmd, PatientCmd, TokenCmd, UserCmd,
};
use crate::config::Config;
use crate::secrets;
use crate::store::{self, registry};
use anyhow::Context;
use rusqlite::Connection;
use serde_json::{json, Value};
use std::io::BufRead;

fn config(admin: &AdminArgs) -> anyhow::Result<Config> {
    let mut cfg = Config::load(admin.config.as_deref(), std::env::vars())?;
    if let Some(d) = &admin.data_dir {
        cfg.data_dir = d.clone();
    }
    Ok(cfg)
}

fn open(admin: &AdminArgs) -> anyhow::Result<Connection> {
    let cfg = config(admin)?;
    store::open_connection(&cfg.data_dir)
        .with_context(|| format!("cannot open the store in {}", cfg.data_dir.display()))
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
        FacilityCmd::Add { id, name, admin } => {
            let c = open(&admin)?;
            registry::add_facility(&c, &id, &name)?;
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
                .map(|(id, name, n)| format!("{id}\t{name}\t{n} patients"))
                .collect::<Vec<_>>()
                .join("\n");
            let json: Vec<Value> = list
                .iter()
                .map(|(id, name, n)| json!({"id": id, "name": name, "patients": n}))
                .collect();
            print(&admin, json!({ "facilities": json }), human);
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
            registry::remove_device(&open(&admin)?, &id, &crate::provision::cli_actor())?;
            print(
                &admin,
                json!({ "id": id, "removed": true }),
                format!("device {id} removed"),
            );
        }
        DeviceCmd::Disable { id, admin } => {
            registry::set_device_enabled(&open(&admin)?, &id, false)?;
            print(
                &admin,
                json!({ "id": id, "enabled": false }),
                format!("device {id} disabled"),
            );
        }
        DeviceCmd::Enable { id, admin } => {
            registry::set_device_enabled(&open(&admin)?, &id, true)?;
            print(
                &admin,
                json!({ "id": id, "enabled": true }),
                format!("device {id} enabled"),
            );
        }
        DeviceCmd::RotateSecret { id, admin } => {
            let secret = secrets::new_device_secret();
            registry::set_device_secret(&open(&admin)?, &id, &registry::SecretHashes::of(&secret))?;
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
pub fn mosquitto(cmd: MosquittoCmd) -> anyhow::Result<()> {
    let MosquittoCmd::Export { out, admin } = cmd;
    let cfg = config(&admin)?;
    let c = open(&admin)?;
    let creds = registry::mosquitto_credentials(&c)?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    // The process umask is 077 (datadir): Mosquitto, as the `mosquitto` user, must still
    // reach the files when it reloads them on SIGHUP.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o750))?;
        give_to_mosquitto_group(&out);
    }
    let mut passwords = String::new();
    let gateway = (!cfg.mqtt.username.is_empty()).then_some(cfg.mqtt.username.as_str());
    if let Some(user) = gateway {
        anyhow::ensure!(
            !cfg.mqtt.password.is_empty(),
            "mqtt.username is set but mqtt.password is empty"
        );
        passwords.push_str(&format!(
            "{user}:{}\n",
            secrets::mosquitto_hash(&cfg.mqtt.password)
        ));
    }
    for (id, hash) in &creds {
        passwords.push_str(&format!("{id}:{hash}\n"));
    }
    let mut acl = String::from(
        "# Written by `vigil mosquitto export`; regenerate after adding or disabling devices.\n",
    );
    if let Some(user) = gateway {
        acl.push_str(&format!(
            "\nuser {user}\ntopic read vigil/v1/+/readings\ntopic read vigil/v1/+/events\ntopic read vigil/v1/+/status\n"
        ));
    }
    acl.push_str("\n# Every device: only its own topics.\npattern readwrite vigil/v1/%u/#\n");
    let pw_path = out.join("password_file");
    let acl_path = out.join("acl_file");
    write_private(&pw_path, &passwords)?;
    write_private(&acl_path, &acl)?;
    print(
        &admin,
        json!({ "password_file": pw_path, "acl_file": acl_path, "devices": creds.len() }),
        format!(
            "wrote {} ({} devices{}) and {}\nmosquitto.conf: password_file {}\n                acl_file {}\n                use_username_as_clientid true (under each listener)",
            pw_path.display(),
            creds.len(),
            if gateway.is_some() { " + gateway" } else { "" },
            acl_path.display(),
            pw_path.display(),
            acl_path.display()
        ),
    );
    Ok(())
}

/// `vigil backup`: SQLite's online backup API copies every page in one step, inside one read
/// transaction, so the copy is one consistent snapshot; in WAL mode the gateway keeps writing
/// meanwhile (readers never block the writer). The copy is written beside `out`, checked with
/// `PRAGMA quick_check`, and renamed into place, so `out` is never a half-written file.
pub fn backup(out: &std::path::Path, admin: &AdminArgs) -> anyhow::Result<()> {
    let cfg = config(admin)?;
    let src = store::open_connection(&cfg.data_dir)
        .with_context(|| format!("cannot open the store in {}", cfg.data_dir.display()))?;
    let name = out
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("--out must name a file"))?
        .to_string_lossy();
    let tmp = out.with_file_name(format!(".{name}.partial"));
    let _ = std::fs::remove_file(&tmp);
    // Health data: readable by the owner only (SQLite would create it with the umask's mode).
    {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        o.open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
    }
    let started = std::time::Instant::now();
    {
        let mut dst =
            Connection::open(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let b = rusqlite::backup::Backup::new(&src, &mut dst)?;
        // -1: all pages in one step, i.e. one snapshot (a stepwise copy restarts whenever the
        // gateway commits, which under load would be forever). Busy or locked: retry.
        let mut tries = 0;
        while b.step(-1)? != rusqlite::backup::StepResult::Done {
            tries += 1;
            anyhow::ensure!(tries < 600, "the database stayed busy for 30 s");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let dst = Connection::open(&tmp)?;
    let check: String = dst.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    anyhow::ensure!(
        check == "ok",
        "the copy failed its integrity check: {check}"
    );
    // A standalone file: no -wal/-shm beside it is needed to read it.
    dst.pragma_update(None, "journal_mode", "DELETE")?;
    let readings: i64 = dst.query_row("SELECT count(*) FROM readings", [], |r| r.get(0))?;
    drop(dst);
    std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))?;
    let bytes = std::fs::metadata(out)?.len();
    print(
        admin,
        json!({ "out": out, "bytes": bytes, "readings": readings,
                "seconds": started.elapsed().as_secs_f64() }),
        format!(
            "wrote {} ({bytes} bytes, {readings} readings) in {:.1} s",
            out.display(),
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(())
}

/// Writes `path` readable by its owner and group only, and gives it to the `mosquitto` group
/// when that exists: Mosquitto started as root reads it as the `mosquitto` user.
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o640))?;
        give_to_mosquitto_group(path);
    }
    Ok(())
}

/// Best effort: without a `mosquitto` group the operator sets ownership.
#[cfg(unix)]
fn give_to_mosquitto_group(path: &std::path::Path) {
    let _ = std::process::Command::new("chgrp")
        .arg("mosquitto")
        .arg(path)
        .stderr(std::process::Stdio::null())
        .status();
}

pub fn token(cmd: TokenCmd) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Create {
            name,
            facility,
            admin,
        } => {
            let c = open(&admin)?;
            let token = secrets::new_api_token();
            registry::add_api_token(&c, &name, &token, facility.as_deref())?;
            print(
                &admin,
                json!({ "token": token }),
                format!("API token {name}:\n{token}\n(shown once: only a hash is stored)"),
            );
        }
        TokenCmd::List { admin } => {
            let list = registry::api_tokens(&open(&admin)?)?;
            let human = list
                .iter()
                .map(|t| {
                    format!(
                        "{}\t{}\t{}\t{}",
                        t.id,
                        t.name,
                        t.facility_id.as_deref().unwrap_or("(all)"),
                        if t.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            print(&admin, json!({ "tokens": list }), human);
        }
        TokenCmd::Revoke { id, admin } => {
            registry::revoke_api_token(&open(&admin)?, id, &crate::provision::cli_actor())?;
            print(
                &admin,
                json!({ "id": id, "revoked": true }),
                format!("token {id} revoked"),
            );
        }
    }
    Ok(())
}

pub fn user(cmd: UserCmd) -> anyhow::Result<()> {
    let (name, enabled, common) = match cmd {
        UserCmd::Add {
            name,
            admin,
            facilities,
            password_stdin,
            common,
        } => return add_user(name, admin, facilities, password_stdin, &common),
        UserCmd::List { common } => {
            let list = registry::users(&open(&common)?)?;
            let human = list
                .iter()
                .map(|u| {
                    format!(
                        "{}\t{}\t{}",
                        u.name,
                        if u.admin { "admin" } else { "clinician" },
                        if u.disabled_at.is_some() {
                            "disabled"
                        } else {
                            "active"
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            print(&common, json!({ "users": list }), human);
            return Ok(());
        }
        UserCmd::Disable { name, common } => (name, false, common),
        UserCmd::Enable { name, common } => (name, true, common),
    };
    registry::set_user_enabled(
        &open(&common)?,
        &name,
        enabled,
        &crate::provision::cli_actor(),
    )?;
    let word = if enabled { "enabled" } else { "disabled" };
    print(
        &common,
        json!({ "name": name, "enabled": enabled }),
        format!("user {name} {word}"),
    );
    Ok(())
}

fn add_user(
    name: String,
    admin: bool,
    mut facilities: Vec<String>,
    password_stdin: bool,
    common: &AdminArgs,
) -> anyhow::Result<()> {
    if facilities.is_empty() && !admin {
        facilities.push(vigil_domain::DEFAULT_FACILITY.to_string());
    }
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        let p = rpassword::prompt_password(format!("Password for {name}: "))?;
        let again = rpassword::prompt_password("Again: ")?;
        anyhow::ensure!(p == again, "the passwords differ");
        p
    };
    crate::provision::check_password(&password, &name)?;
    let c = open(common)?;
    let id = registry::add_user(
        &c,
        &name,
        &secrets::hash_password(&password),
        admin,
        &facilities,
    )?;
    print(common, json!({ "id": id }), format!("user {name} created"));
    Ok(())
}

/// `vigil rules check FILE` and `vigil rules defaults`.
pub fn threshold(cmd: crate::cli::ThresholdCmd) -> anyhow::Result<()> {
    use crate::cli::ThresholdCmd;
    use crate::store::orders;
    let now = store::now_ms();
    match cmd {
        ThresholdCmd::Set {
            patient,
            rule,
            value,
            clear,
            disable,
            default,
            reason,
            by,
            effective_from,
            admin,
        } => {
            if !disable && !default && value.is_none() && clear.is_none() {
                anyhow::bail!("say what changes: --value, --clear, --disable or --default");
            }
            let effective_from = effective_from
                .map(|t| {
                    chrono::DateTime::parse_from_rfc3339(&t)
                        .map(|t| t.timestamp_millis())
                        .map_err(|_| anyhow::anyhow!("--effective-from: an RFC 3339 time"))
                })
                .transpose()?;
            let rules = crate::server::rule_set(&config(&admin)?)?;
            let c = open(&admin)?;
            let o = orders::add(
                &c,
                &patient,
                &orders::NewOrder {
                    rule,
                    threshold: value,
                    clear,
                    enabled: !disable,
                    reason,
                    ordered_by: by,
                    effective_from,
                },
                &rules,
                now,
            )?;
            let what = if !o.enabled {
                "disabled".to_string()
            } else if o.threshold.is_none() && o.clear.is_none() {
                "back to the rule file's values".to_string()
            } else {
                let t =
                    orders::thresholds(&c, &patient, &rules, o.effective_from.timestamp_millis())?;
                let r = t
                    .iter()
                    .find(|t| t.rule == o.rule)
                    .expect("a threshold rule");
                format!("{} (clears {})", r.when, r.clear)
            };
            print(
                &admin,
                json!({ "order": o }),
                format!(
                    "order {}: {} for patient {} {} from {}",
                    o.id,
                    o.rule,
                    o.patient_id,
                    what,
                    o.effective_from.to_rfc3339()
                ),
            );
            Ok(())
        }
        ThresholdCmd::List { patient, admin } => {
            let rules = crate::server::rule_set(&config(&admin)?)?;
            let c = open(&admin)?;
            let t = orders::thresholds(&c, &patient, &rules, now)?;
            let o = orders::list(&c, &patient)?;
            let mut human = String::new();
            for r in &t {
                let changed = if !r.enabled {
                    "  (disabled by order)".to_string()
                } else if let Some(id) = r.order_id {
                    format!("  (order {id}; rule file: {})", r.default_when)
                } else {
                    String::new()
                };
                human += &format!(
                    "{:<26} {:<6} {}{changed}\n",
                    r.rule,
                    r.severity.as_str(),
                    r.when
                );
            }
            for o in &o {
                human += &format!(
                    "order {} {} {}: {} by {} from {} — {}\n",
                    o.id,
                    o.ordered_at.to_rfc3339(),
                    o.rule,
                    match (o.enabled, o.threshold, o.clear) {
                        (false, _, _) => "disabled".to_string(),
                        (true, None, None) => "rule file's values".to_string(),
                        (true, t, c) => format!("value {t:?}, clear {c:?}"),
                    },
                    o.ordered_by,
                    o.effective_from.to_rfc3339(),
                    o.reason
                );
            }
            print(
                &admin,
                json!({ "thresholds": t, "orders": o }),
                human.trim_end().to_string(),
            );
            Ok(())
        }
    }
}

pub fn rules(cmd: crate::cli::RulesCmd) -> anyhow::Result<()> {
    use vigil_alerting::rules::Trigger;
    match cmd {
        crate::cli::RulesCmd::Defaults => {
            print!("{}", vigil_alerting::rulefile::DEFAULT);
            Ok(())
        }
        crate::cli::RulesCmd::Check { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let set = vigil_alerting::RuleSet::from_toml(&text)
                .with_context(|| format!("{}", file.display()))?;
            for r in set.rules() {
                let what = match &r.trigger {
                    Trigger::Threshold { metric, threshold } => {
                        let mut w = format!("{metric} {}", threshold.when.describe());
                        if threshold.for_ms > 0 {
                            w += &format!(" for {} s", threshold.for_ms / 1000);
                        }
                        if threshold.confirm_within_ms > 0 {
                            w += &format!(
                                ", confirmed within {} s",
                                threshold.confirm_within_ms / 1000
                            );
                        }
                        if r.resolves {
                            w += &format!(
                                "; clears at {} for {} s",
                                threshold.clear.describe(),
                                threshold.clear_for_ms / 1000
                            );
                        }
                        w
                    }
                    Trigger::Event(kind) => format!("event {}", kind.as_str()),
                    Trigger::News2 {
                        at_least,
                        single_three,
                    } => format!(
                        "NEWS2 ≥ {at_least}{}",
                        if *single_three { " or a single 3" } else { "" }
                    ),
                    Trigger::Change {
                        metric,
                        rise,
                        by,
                        within_ms,
                    } => format!(
                        "{metric} {}{by} within {} h",
                        if *rise { "+" } else { "-" },
                        within_ms / 3_600_000
                    ),
                    Trigger::Baseline {
                        metric,
                        above,
                        by,
                        window_ms,
                    } => format!(
                        "{metric} {}{by} over the mean of {} d (before the last day)",
                        if *above { "+" } else { "-" },
                        window_ms / 86_400_000
                    ),
                    Trigger::Silent { intervals } => {
                        format!("a device silent for {intervals} × its expected interval")
                    }
                    Trigger::ExpectBy { metric, by } => {
                        format!("a {metric} reading every day by {}", by.format("%H:%M"))
                    }
                };
                println!("{:<24} {:<6} {what}", r.id, r.severity.as_str());
            }
            println!("{}: {} rules, valid", file.display(), set.rules().len());
            Ok(())
        }
    }
}
