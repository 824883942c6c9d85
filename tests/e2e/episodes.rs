//! Issue #17: alert episodes — one deterioration of one patient is one episode — through the
//! real binary and its API.

use crate::util::{register, Device, Vigil};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Polls `GET path` until `done` holds for its answer (at most 15 s).
fn wait_for(v: &Vigil, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = v.get(path, token);
        assert_eq!(status, 200, "{path}: {body}");
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path}: still {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_deterioration_is_one_episode_with_current_values_until_every_alert_is_resolved() {
    let v = Vigil::start();
    let f = register(&v, "pat-ep", "pulse_oximeter");
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    let topic = format!("vigil/v1/{}/readings", f.device);
    dev.publish(&topic, r#"{"metric":"spo2","value":85,"unit":"%"}"#);
    dev.publish(
        &topic,
        r#"{"metric":"heart_rate","value":135,"unit":"/min"}"#,
    );

    let active = "/api/v1/alerts?state=active&patient_id=pat-ep";
    let alerts = wait_for(&v, active, &f.token, |b| {
        b["alerts"].as_array().unwrap().len() >= 2
    });
    let list = wait_for(&v, "/api/v1/episodes", &f.token, |b| {
        b["episodes"][0]["signals"].as_array().map_or(0, Vec::len)
            == alerts["alerts"].as_array().unwrap().len()
    });
    let episodes = list["episodes"].as_array().unwrap();
    assert_eq!(episodes.len(), 1, "one episode: {list}");
    let e = &episodes[0];
    let id = e["id"].as_i64().unwrap();
    assert_eq!(e["patient_id"], "pat-ep");
    assert_eq!(e["state"], "active");
    assert_eq!(e["severity"], "red");
    assert_eq!(e["peak"], "red");
    for s in e["signals"].as_array().unwrap() {
        assert_eq!(s["episode_id"], id, "every alert names its episode");
    }
    for a in alerts["alerts"].as_array().unwrap() {
        assert_eq!(a["episode_id"], id, "{a}");
    }

    // The card shows where the patient is now, not only the value that opened the alert.
    dev.publish(&topic, r#"{"metric":"spo2","value":87,"unit":"%"}"#);
    let now = wait_for(&v, &format!("/api/v1/episodes/{id}"), &f.token, |b| {
        b["episode"]["signals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["metric"] == "spo2" && s["current"]["value"] == 87.0)
    });
    let spo2 = now["episode"]["signals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metric"] == "spo2")
        .unwrap();
    assert_eq!(spo2["value"], 85.0, "the opening value stays");
    assert_eq!(spo2["current"]["unit"], "%");

    // Resolving every alert ends the episode.
    let ids: Vec<i64> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    for (n, a) in ids.iter().enumerate() {
        let (status, body) = v.post(
            &format!("/api/v1/alerts/{a}/resolve"),
            &f.token,
            json!({"note": "đã gọi điện"}),
        );
        assert_eq!(status, 200, "{body}");
        let (_, e) = v.get(&format!("/api/v1/episodes/{id}"), &f.token);
        let last = n + 1 == ids.len();
        assert_eq!(
            e["episode"]["state"],
            if last { "ended" } else { "active" },
            "after {} of {} resolved: {e}",
            n + 1,
            ids.len()
        );
    }
    let (_, active_list) = v.get("/api/v1/episodes?patient_id=pat-ep", &f.token);
    assert_eq!(active_list["episodes"], json!([]));
    let (_, ended) = v.get("/api/v1/episodes?state=ended", &f.token);
    assert_eq!(ended["episodes"][0]["id"], id);
    assert!(ended["episodes"][0]["ended_at"].is_string());

    let (_, d) = v.get(&format!("/api/v1/episodes/{id}"), &f.token);
    let timeline = d["timeline"].as_array().unwrap();
    assert!(timeline.iter().any(|t| t["action"] == "open"), "{d}");
    let responses = d["responses"].as_array().unwrap();
    assert_eq!(responses.len(), ids.len(), "{d}");
    for r in responses {
        assert_eq!(r["role"], "clinician");
        assert_eq!(r["action"], "resolve");
        assert_eq!(r["who"], "token:test-pat-ep");
        assert_eq!(r["note"], "đã gọi điện");
    }
    // The family was told about the red alert.
    assert!(
        d["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["to_name"] == "Con gái"),
        "{d}"
    );

    assert_eq!(v.get("/api/v1/episodes/999999", &f.token).0, 404);
    assert_eq!(v.get("/api/v1/episodes?state=open", &f.token).0, 400);
    assert_eq!(v.get("/api/v1/episodes?patient_id=nobody", &f.token).0, 404);
}

/// Issue #17: two red signs in one message are one e-mail per contact listing both — plain
/// words for the family, clinical ones for the clinician — and the episode's end is a reply in
/// the same thread (`In-Reply-To`/`References`), delivered by a real SMTP server.
#[test]
fn one_deterioration_is_one_threaded_conversation_per_contact() {
    let Some(py) = crate::util::aiosmtpd_python() else {
        return;
    };
    let smtp = crate::util::Smtpd::start(&py, None);
    let port = smtp.port.to_string();
    let v = Vigil::start_env(
        &["run"],
        &[
            ("VIGIL_SMTP_HOST", "127.0.0.1"),
            ("VIGIL_SMTP_PORT", &port),
            ("VIGIL_SMTP_SECURITY", "none"),
            ("VIGIL_DASHBOARD_PUBLIC_URL", "https://vigil.example"),
            // Whatever the hour: the amber NEWS2 beside the red signs must not reach the
            // clinician a second time as a digest (CI found it at 06:06 local, issue #17).
            ("VIGIL_NOTIFY_QUIET_HOURS", "none"),
        ],
    );
    let f = register(&v, "pat-conv", "pulse_oximeter");
    v.admin(&[
        "contact",
        "add",
        "--patient",
        "pat-conv",
        "--name",
        "BS. Minh",
        "--email",
        "minh@example.org",
        "--lang",
        "en",
        "--role",
        "clinician",
    ]);
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    dev.publish(
        &format!("vigil/v1/{}/readings", f.device),
        r#"{"readings":[{"metric":"spo2","value":84,"unit":"%"},{"metric":"heart_rate","value":135,"unit":"/min"}]}"#,
    );
    let first = smtp.wait_for(2);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        smtp.messages().len(),
        2,
        "one e-mail per contact: {first:#?}"
    );
    let by = |msgs: &[Value], addr: &str| -> Value {
        msgs.iter()
            .find(|m| m["to"].as_str().unwrap().contains(addr))
            .unwrap_or_else(|| panic!("nothing to {addr}"))
            .clone()
    };
    let family = by(&first, "family.pat-conv@example.org");
    let text = family["text"].as_str().unwrap();
    assert_eq!(
        family["subject"],
        "Nguyễn Văn Test: cảnh báo đỏ — SpO₂ 84 %"
    );
    for want in [
        "Oxy trong máu (SpO₂): 84 % — bình thường 95–100 %",
        "Nhịp tim: 135 nhịp/phút — bình thường 60–100 nhịp/phút",
        "Cũng đã báo cho: BS. Minh (nhân viên y tế)",
        "115",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    assert!(!text.contains("/min") && !text.contains("NEWS2"), "{text}");
    assert_eq!(family["in_reply_to"], "");
    let clinician = by(&first, "minh@example.org");
    let ctext = clinician["text"].as_str().unwrap();
    assert!(ctext.contains("Heart rate: 135 /min"), "{ctext}");

    // Everything resolved: the all-clear, as a reply in each thread.
    let (_, alerts) = v.get("/api/v1/alerts?state=active&patient_id=pat-conv", &f.token);
    for a in alerts["alerts"].as_array().unwrap() {
        let id = a["id"].as_i64().unwrap();
        let (status, body) = v.post(&format!("/api/v1/alerts/{id}/resolve"), &f.token, json!({}));
        assert_eq!(status, 200, "{body}");
    }
    let all = smtp.wait_for(4);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(smtp.messages().len(), 4, "{all:#?}");
    for (addr, first) in [
        ("family.pat-conv@example.org", &family),
        ("minh@example.org", &clinician),
    ] {
        let reply = all
            .iter()
            .find(|m| m["to"].as_str().unwrap().contains(addr) && m["in_reply_to"] != "")
            .unwrap_or_else(|| panic!("no reply to {addr}: {all:#?}"));
        assert_eq!(reply["in_reply_to"], first["message_id"]);
        assert_eq!(reply["references"], first["message_id"]);
        assert_eq!(
            reply["subject"].as_str().unwrap(),
            format!("Re: {}", first["subject"].as_str().unwrap())
        );
    }
    let clear = all
        .iter()
        .find(|m| m["to"].as_str().unwrap().contains("family.pat-conv") && m["in_reply_to"] != "")
        .unwrap();
    assert!(
        clear["text"].as_str().unwrap().contains("Đã xử lý xong"),
        "{clear}"
    );
}
