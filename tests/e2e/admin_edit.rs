//! Issue #21: an administrator edits and removes patients, contacts (with their phone) and
//! devices from the administration page, in a real Chromium. Removing a patient keeps the
//! record but takes them off every list, removes their devices and resolves their open alerts
//! (no more escalation e-mails to the family).

use crate::browser::Driver;
use crate::util::{require_tool, Device, Vigil};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

#[test]
fn an_administrator_edits_and_removes_patients_contacts_and_devices() {
    if !require_tool("chromedriver") {
        return;
    }
    let v = Vigil::start();
    v.admin(&[
        "patient", "add", "--name", "Bà Sáu", "--id", "pat-sau", "--area", "Ấp 1",
    ]);
    v.admin(&[
        "contact",
        "add",
        "--patient",
        "pat-sau",
        "--name",
        "Con trai",
        "--email",
        "con.trai@example.org",
        "--lang",
        "vi",
        "--role",
        "family",
    ]);
    let d = v.admin(&[
        "device",
        "add",
        "--patient",
        "pat-sau",
        "--kind",
        "pulse_oximeter",
    ]);
    let dev_id = d["id"].as_str().unwrap().to_string();
    let dev_password = d["password"].as_str().unwrap().to_string();
    let spare = v.admin(&[
        "device",
        "add",
        "--patient",
        "pat-sau",
        "--kind",
        "thermometer",
    ]);
    let spare_id = spare["id"].as_str().unwrap().to_string();
    let mut dev = Device::connect(v.mqtt, &dev_id, &dev_password).unwrap();
    dev.publish(
        &format!("vigil/v1/{dev_id}/readings"),
        r#"{"metric":"spo2","value":84,"unit":"%"}"#,
    );
    let out = v.admin_raw(
        &[
            "user",
            "add",
            "--name",
            "quan.tri",
            "--admin",
            "--password-stdin",
        ],
        Some("mat-khau-quan-tri\n"),
    );
    assert!(out.status.success());
    let token = v.admin(&["token", "create", "--name", "check"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = std::time::Instant::now() + WAIT;
    while v.get("/api/v1/alerts?state=open", &token).1["alerts"]
        .as_array()
        .is_none_or(|a| a.is_empty())
    {
        assert!(std::time::Instant::now() < deadline, "no alert");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Changing and removing are for administrators: a facility's token (a clinician) is refused.
    let clinician = v.admin(&["token", "create", "--name", "clin", "--facility", "default"])
        ["token"]
        .as_str()
        .unwrap()
        .to_string();
    for (method, path) in [
        ("PATCH", "/api/v1/patients/pat-sau"),
        ("DELETE", "/api/v1/patients/pat-sau"),
        ("PATCH", &format!("/api/v1/devices/{spare_id}") as &str),
    ] {
        let r = ureq::request(method, &v.url(path))
            .set("Authorization", &format!("Bearer {clinician}"))
            .send_json(json!({}));
        assert!(
            matches!(r, Err(ureq::Error::Status(403, _))),
            "{method} {path} by a clinician: {r:?}"
        );
    }

    let d = Driver::start();
    d.sign_in(&v, "quan.tri", "mat-khau-quan-tri");
    d.goto(&v.url("/admin?lang=vi"));
    d.wait_for(
        "the administration page",
        "return !!document.querySelector('#admin-patients tr[data-patient=\"pat-sau\"]')",
        WAIT,
    );

    // Edit the patient: a new name, the area cleared, a tag.
    d.click("#admin-patients tr[data-patient=\"pat-sau\"] button.edit");
    d.wait_for(
        "the edit form, filled",
        "const f = document.querySelector('#edit-patient'); return !f.hidden && f.elements.name.value === 'Bà Sáu' && f.elements.area.value === 'Ấp 1'",
        WAIT,
    );
    d.js("const f = document.querySelector('#edit-patient'); f.elements.name.value = 'Bà Sáu Lớn'; f.elements.area.value = ''; f.elements.tags.value = 'copd'; return true");
    d.click("#edit-patient button[type=submit]");
    d.wait_for(
        "the patient changed",
        "const r = document.querySelector('#admin-patients tr[data-patient=\"pat-sau\"]'); return !!r && r.textContent.includes('Bà Sáu Lớn') && r.textContent.includes('copd')",
        WAIT,
    );
    let (_, p) = v.get("/api/v1/patients/pat-sau", &token);
    assert_eq!(p["patient"]["name"], "Bà Sáu Lớn", "{p}");
    assert_eq!(p["patient"]["area"], json!(null), "{p}");

    // Give the contact a phone number.
    d.click("#admin-contacts tr[data-contact] button.edit");
    d.wait_for(
        "the contact form",
        "const f = document.querySelector('#edit-contact'); return !f.hidden && f.elements.email.value === 'con.trai@example.org'",
        WAIT,
    );
    d.type_into("#edit-contact input[name=phone]", "0901 234 567");
    d.click("#edit-contact button[type=submit]");
    d.wait_for(
        "the phone listed",
        "const r = document.querySelector('#admin-contacts tr[data-contact]'); return !!r && r.textContent.includes('0901')",
        WAIT,
    );
    let (_, c) = v.get("/api/v1/patients/pat-sau/contacts", &token);
    assert!(
        c["contacts"][0]["phone"]
            .as_str()
            .is_some_and(|p| p.contains("0901")),
        "{c}"
    );

    // Suspend the spare device and give it an interval.
    d.click(&format!(
        "#admin-devices tr[data-device=\"{spare_id}\"] button.edit"
    ));
    d.wait_for(
        "the device form",
        "const f = document.querySelector('#edit-device'); return !f.hidden && f.elements.enabled.checked",
        WAIT,
    );
    d.click("#edit-device input[name=enabled]");
    d.type_into("#edit-device input[name=interval]", "10m");
    d.click("#edit-device button[type=submit]");
    d.wait_for(
        "the device suspended",
        &format!("const r = document.querySelector('#admin-devices tr[data-device=\"{spare_id}\"]'); return !!r && document.querySelector('#edit-device').hidden"),
        WAIT,
    );
    let (_, devices) = v.get("/api/v1/devices", &token);
    let spare = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == spare_id.as_str())
        .cloned()
        .expect("the spare device");
    assert_eq!(spare["enabled"], false, "{spare}");

    // Remove the spare device.
    d.click(&format!(
        "#admin-devices tr[data-device=\"{spare_id}\"] button.remove"
    ));
    let asked = d.accept_dialog();
    assert!(asked.contains(&spare_id), "{asked}");
    d.wait_for(
        "the device gone",
        &format!("return !!document.querySelector('#admin-devices') && !document.querySelector('#admin-devices tr[data-device=\"{spare_id}\"]')"),
        WAIT,
    );

    // Stop monitoring the patient: off the lists, devices removed, open alerts resolved.
    d.click("#admin-patients tr[data-patient=\"pat-sau\"] button.remove");
    let asked = d.accept_dialog();
    assert!(
        asked.contains("Ngừng theo dõi") && asked.contains("Bà Sáu Lớn"),
        "{asked}"
    );
    d.wait_for(
        "the patient gone",
        "return !!document.querySelector('#admin-patients') && !document.querySelector('#admin-patients tr[data-patient=\"pat-sau\"]')",
        WAIT,
    );
    let (status, _) = v.get("/api/v1/patients/pat-sau", &token);
    assert_eq!(
        status, 404,
        "a removed patient is as unknown as a missing one"
    );
    let (_, list) = v.get("/api/v1/patients", &token);
    assert!(list["patients"].as_array().unwrap().is_empty(), "{list}");
    let (_, alerts) = v.get("/api/v1/alerts?state=active", &token);
    assert!(
        alerts["alerts"].as_array().unwrap().is_empty(),
        "open alerts of a removed patient: {alerts}"
    );
    let (_, resolved) = v.get("/api/v1/alerts?state=resolved&patient_id=pat-sau", &token);
    assert_eq!(resolved["alerts"][0]["acknowledged_by"], json!(null));
    let id = resolved["alerts"][0]["id"]
        .as_i64()
        .expect("the resolved alert");
    let (_, detail) = v.get(&format!("/api/v1/alerts/{id}"), &token);
    assert!(
        detail["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "resolve"
                && e["actor"] == "quan.tri"
                && e["note"] == "patient removed from monitoring"),
        "{detail}"
    );
    // Its device can no longer connect, with its own password.
    drop(dev);
    assert!(
        Device::connect(v.mqtt, &dev_id, &dev_password).is_err(),
        "a removed patient's device connected"
    );
    // The administrative audit has both changes.
    let (_, audit) = v.get("/api/v1/audit?limit=50", &token);
    let actions: Vec<&str> = audit["audit"]
        .as_array()
        .expect("the audit")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for want in [
        "patient.edit",
        "contact.edit",
        "device.edit",
        "device.remove",
        "patient.remove",
    ] {
        assert!(actions.contains(&want), "{want} not audited: {audit}");
    }
}
