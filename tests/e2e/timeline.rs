//! Issue #21: device events on the patient's timeline — a fall the patient cancelled with
//! "I'm OK" (it raised nothing, but a nurse should see it), SOS, a low battery with its device
//! and level, a device error — and alerts that say which device and how low its battery is.

use crate::util::{login, register, Device, Vigil};
use serde_json::Value;
use std::time::{Duration, Instant};

fn alerts(v: &Vigil, token: &str) -> Vec<Value> {
    let (_, body) = v.get("/api/v1/alerts?state=active", token);
    body["alerts"].as_array().cloned().unwrap_or_default()
}

fn page(v: &Vigil, path: &str, cookie: &str) -> String {
    let r = ureq::get(&v.url(path))
        .set("Cookie", cookie)
        .call()
        .expect("the page");
    r.into_string().unwrap()
}

#[test]
fn the_patient_timeline_shows_cancelled_falls_sos_and_which_battery_is_low() {
    let v = Vigil::start_env(&["run"], &[("VIGIL_RULES_FALL_CANCEL_SECONDS", "2")]);
    let f = register(&v, "pat-tl", "fall_detector");
    let topic = format!("vigil/v1/{}/events", f.device);
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    dev.publish(&topic, r#"{"event":"fall"}"#);
    dev.publish(&topic, r#"{"event":"ok"}"#);
    dev.publish(&topic, r#"{"event":"battery_low","battery":12}"#);
    dev.publish(&topic, r#"{"event":"sos"}"#);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut found = Vec::new();
    while found.len() < 2 {
        assert!(Instant::now() < deadline, "alerts: {found:?}");
        std::thread::sleep(Duration::from_millis(100));
        found = alerts(&v, &f.token);
    }
    // Past the cancelled fall's window: it raised nothing.
    std::thread::sleep(Duration::from_millis(2500));
    let found = alerts(&v, &f.token);
    let rules: Vec<&str> = found.iter().filter_map(|a| a["rule"].as_str()).collect();
    assert!(
        !rules.contains(&"fall") && rules.contains(&"sos"),
        "{rules:?}"
    );
    // The battery alert names the device and its level.
    let battery = found
        .iter()
        .find(|a| a["rule"] == "battery_low")
        .expect("the battery alert");
    assert_eq!(battery["device_id"], f.device.as_str(), "{battery}");
    assert_eq!(battery["value"], 12.0, "{battery}");
    // The ward's count of low batteries agrees with the alert (it said 0 before).
    let (_, p) = v.get("/api/v1/patients/pat-tl", &f.token);
    assert_eq!(p["patient"]["devices"]["battery_low"], 1, "{p}");

    // The same timeline through the API, newest first.
    let (_, ev) = v.get("/api/v1/patients/pat-tl/events", &f.token);
    let kinds: Vec<&str> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds.len(), 4, "{ev}");
    for k in ["fall", "ok", "battery_low", "sos"] {
        assert!(kinds.contains(&k), "{k}: {ev}");
    }
    let fall = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "fall")
        .unwrap();
    assert!(fall["cancelled_at"].is_string(), "{fall}");
    assert_eq!(fall["device_kind"], "fall_detector", "{fall}");
    let low = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "battery_low")
        .unwrap();
    assert_eq!(low["battery"], 12.0, "{low}");

    let out = v.admin_raw(
        &["user", "add", "--name", "dd.tl", "--password-stdin"],
        Some("mat-khau-dai-tl\n"),
    );
    assert!(out.status.success());
    let (cookie, _) = login(&v, "dd.tl", "mat-khau-dai-tl").unwrap();
    let html = page(&v, "/patients/pat-tl?lang=vi&range=1h", &cookie);
    let timeline = html
        .split("id=\"timeline\"")
        .nth(1)
        .and_then(|t| t.split("</ol>").next())
        .unwrap_or_else(|| panic!("no timeline:\n{html}"));
    for (kind, want) in [
        ("fall", "đã hủy: người bệnh báo không sao lúc"),
        ("ok", "Người bệnh báo không sao"),
        ("sos", "Người bệnh bấm nút gọi trợ giúp (SOS)"),
        ("battery_low", "còn 12 % pin"),
    ] {
        let entry = timeline
            .split("<li ")
            .find(|li| li.contains(&format!("data-kind=\"{kind}\"")))
            .unwrap_or_else(|| panic!("no {kind} on the timeline:\n{timeline}"));
        assert!(entry.contains(want), "{kind}: {entry}");
        assert!(
            entry.contains(&format!("Thiết bị phát hiện té ngã {}", f.device)),
            "{kind} without its device: {entry}"
        );
    }
    assert!(
        timeline.contains("class=\"ev-fall cancelled\""),
        "{timeline}"
    );
    // The battery alert reads with its device and level on the ward, in English too.
    let ward = page(&v, "/ward?lang=vi", &cookie);
    assert!(
        ward.contains(&format!("Thiết bị sắp hết pin: {}, còn 12 %", f.device)),
        "{ward}"
    );
    let ward = page(&v, "/ward?lang=en", &cookie);
    assert!(
        ward.contains(&format!("Device battery low: {}, 12 % left", f.device)),
        "{ward}"
    );
}
