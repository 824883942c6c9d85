//! The CLI contract (issue #2): admin commands, `--json`, help, configuration errors.

use crate::util::{run_vigil, vigil_bin, Vigil};
use std::process::Command;

#[test]
fn admin_commands_print_one_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = run_vigil(
        &["patient", "add", "--name", "Bà Tư", "--id", "ba-tu"],
        &data,
        None,
    );
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"id": "ba-tu"}));
    let out = run_vigil(
        &[
            "device",
            "add",
            "--patient",
            "ba-tu",
            "--kind",
            "scale",
            "--id",
            "scale-1",
        ],
        &data,
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["id"], "scale-1");
    assert_eq!(v["password"].as_str().unwrap().len(), 32);
    let out = run_vigil(&["token", "create", "--name", "ops"], &data, None);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["token"].as_str().unwrap().starts_with("vgl_"));
    // The secret is not stored in clear.
    let db = std::fs::read(data.join("vigil.db")).unwrap();
    let secret = serde_json::from_slice::<serde_json::Value>(
        &run_vigil(
            &[
                "device",
                "add",
                "--patient",
                "ba-tu",
                "--kind",
                "thermometer",
            ],
            &data,
            None,
        )
        .stdout,
    )
    .unwrap()["password"]
        .as_str()
        .unwrap()
        .to_string();
    let db_after = [
        db,
        std::fs::read(data.join("vigil.db")).unwrap(),
        std::fs::read(data.join("vigil.db-wal")).unwrap_or_default(),
    ]
    .concat();
    assert!(!String::from_utf8_lossy(&db_after).contains(&secret));
}

#[test]
fn admin_errors_are_clear_and_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = run_vigil(
        &["device", "add", "--patient", "nobody", "--kind", "scale"],
        &data,
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("patient nobody not found"));
    let out = run_vigil(
        &["device", "add", "--patient", "nobody", "--kind", "toaster"],
        &data,
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown device kind"));
    assert!(out.stdout.is_empty(), "nothing on stdout on failure");
}

#[test]
fn admin_works_while_the_server_runs() {
    let v = Vigil::start();
    let p = v.admin(&["patient", "add", "--name", "Ông Năm"]);
    let (_, body) = {
        let t = v.admin(&["token", "create", "--name", "t"]);
        v.get("/api/v1/patients", t["token"].as_str().unwrap())
    };
    assert_eq!(body["patients"][0]["id"], p["id"]);
}

#[test]
fn bad_config_names_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(&cfg, "data_dir = \"x\"\n\n[http]\naddr = 8080\n").unwrap();
    let out = Command::new(vigil_bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 4") && err.contains("addr"), "{err}");
    std::fs::write(&cfg, "[mqtt]\nbrokr_url = \"mqtt://x\"\n").unwrap();
    let out = Command::new(vigil_bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("brokr_url"));
}

#[test]
fn help_explains_every_subcommand() {
    for args in [
        vec!["--help"],
        vec!["demo", "--help"],
        vec!["run", "--help"],
        vec!["patient", "add", "--help"],
        vec!["contact", "add", "--help"],
        vec!["device", "add", "--help"],
        vec!["token", "create", "--help"],
        vec!["user", "add", "--help"],
        vec!["backup", "--help"],
    ] {
        let out = Command::new(vigil_bin()).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage:"), "{args:?}: {text}");
    }
}

#[test]
fn demo_raises_a_red_alert_within_a_minute() {
    let v = Vigil::start_with(&["demo"]);
    let t = v.admin(&["token", "create", "--name", "demo-check"]);
    let token = t["token"].as_str().unwrap();
    let (_, body) = v.get("/api/v1/patients", token);
    assert!(body["patients"].as_array().unwrap().len() >= 6, "{body}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, alerts) = v.get("/api/v1/alerts?state=open", token);
        if alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["severity"] == "red" && a["patient_id"] == "demo-an")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no red alert within a minute: {alerts}\n{}",
            v.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while v.outbox_files().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no e-mail in the outbox"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
