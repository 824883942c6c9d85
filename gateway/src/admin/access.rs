//! Admin commands for access: API tokens, dashboard users, Mosquitto's password and ACL
//! files, and backups.

use super::*;
use crate::cli::{MosquittoCmd, TokenCmd, UserCmd};
use crate::store::accounts;
use std::io::BufRead;

pub fn mosquitto(cmd: MosquittoCmd) -> anyhow::Result<()> {
    let MosquittoCmd::Export { out, admin } = cmd;
    let cfg = config(&admin)?;
    let c = open(&admin)?;
    let creds = crate::store::devices::mosquitto_credentials(&c)?;
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
    let at = cfg.store_location()?;
    let src = store::open_location(&at)
        .with_context(|| format!("cannot open the store {}", at.describe()))?;
    let Some(src) = src.as_sqlite() else {
        anyhow::bail!(
            "the store is PostgreSQL ([store] url): back it up with pg_dump or the database's own \
             backups (docs/scaling.md)"
        );
    };
    // Health data: readable by the owner only (SQLite would create it with the umask's mode).
    let (tmp, _) = super::private_partial(out)?;
    let started = std::time::Instant::now();
    {
        let mut dst = rusqlite::Connection::open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let b = rusqlite::backup::Backup::new(src, &mut dst)?;
        // -1: all pages in one step, i.e. one snapshot (a stepwise copy restarts whenever the
        // gateway commits, which under load would be forever). Busy or locked: retry.
        let mut tries = 0;
        while b.step(-1)? != rusqlite::backup::StepResult::Done {
            tries += 1;
            anyhow::ensure!(tries < 600, "the database stayed busy for 30 s");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let dst = rusqlite::Connection::open(&tmp)?;
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
            accounts::add_api_token(&c, &name, &token, facility.as_deref())?;
            print(
                &admin,
                json!({ "token": token }),
                format!("API token {name}:\n{token}\n(shown once: only a hash is stored)"),
            );
        }
        TokenCmd::List { admin } => {
            let list = accounts::api_tokens(&open(&admin)?)?;
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
            accounts::revoke_api_token(&open(&admin)?, id, &crate::provision::cli_actor())?;
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
            let list = accounts::users(&open(&common)?)?;
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
    accounts::set_user_enabled(
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
    let id = accounts::add_user(
        &c,
        &name,
        &secrets::hash_password(&password),
        admin,
        &facilities,
    )?;
    print(common, json!({ "id": id }), format!("user {name} created"));
    Ok(())
}
