//! The dashboard in a real browser (Debian's Chromium driven over WebDriver by chromedriver):
//! a red alert appears without a page reload and can be acknowledged with its button.
//!
//! The WebDriver client is a few W3C WebDriver calls over HTTP (ureq), enough for this test.

use crate::util::{free_port, require_tool, Device, Vigil};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Driver {
    child: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Driver {
    pub(crate) fn start() -> Driver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while ureq::get(&format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let binary = [
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
            "/usr/bin/google-chrome",
        ]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("a Chromium binary");
        // Flags: headless as root on a closed network (see the machine notes): no sandbox, no
        // background connections that the network would refuse.
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": binary, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                // The red-alert tone (issue #21) without a click first.
                "--autoplay-policy=no-user-gesture-required",
                format!("--user-data-dir={}", profile.path().display()),
            ]}
        }}});
        let mut d = Driver {
            child,
            base,
            session: String::new(),
            _profile: profile,
        };
        let v = d.call("POST", "/session", Some(caps));
        d.session = v["sessionId"].as_str().expect("session id").to_string();
        d
    }

    pub(crate) fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{}", self.base, path);
        let req = ureq::request(method, &url).timeout(Duration::from_secs(60));
        let res = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        let v: Value = match res {
            Ok(r) => r.into_json().expect("WebDriver JSON"),
            Err(ureq::Error::Status(code, r)) => {
                panic!(
                    "WebDriver {method} {path}: {code} {}",
                    r.into_string().unwrap_or_default()
                )
            }
            Err(e) => panic!("WebDriver {method} {path}: {e}"),
        };
        v["value"].clone()
    }

    pub(crate) fn s(&self, path: &str) -> String {
        format!("/session/{}{}", self.session, path)
    }

    /// Saves a PNG of the page to `target/screenshots/{name}.png` (issue #6: screenshots as
    /// test artifacts; `docs/` holds copies for the README).
    pub(crate) fn screenshot(&self, name: &str) {
        use base64::Engine as _;
        let v = self.call("GET", &self.s("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 PNG"))
            .expect("valid base64");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Sets the window to `width` × `height` CSS pixels (a 390 × 844 phone, a 1440 × 900 desktop).
    pub(crate) fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            &self.s("/window/rect"),
            Some(json!({"width": width, "height": height})),
        );
    }

    /// Accepts the page's `confirm()` dialog once it is open; its text.
    pub(crate) fn accept_dialog(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = format!("{}{}", self.base, self.s("/alert/text"));
            if let Ok(r) = ureq::get(&url).call() {
                let text = r.into_json::<Value>().unwrap()["value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                self.call("POST", &self.s("/alert/accept"), Some(json!({})));
                return text;
            }
            assert!(Instant::now() < deadline, "no dialog opened");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Signs in on `v`'s login page as `user`; returns once the ward view is there.
    pub(crate) fn sign_in(&self, v: &Vigil, user: &str, password: &str) {
        self.goto(&v.url("/login"));
        self.wait_for(
            "the login page",
            "return !!document.querySelector('#username')",
            Duration::from_secs(20),
        );
        self.type_into("#username", user);
        self.type_into("#password", password);
        self.click("#login");
        self.wait_for(
            "the ward view",
            "return !!document.querySelector('#patients, #ward')",
            Duration::from_secs(20),
        );
    }

    pub(crate) fn goto(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({ "url": url })));
    }

    pub(crate) fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            &self.s("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("element reference")
            .to_string()
    }

    pub(crate) fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/value")),
            Some(json!({ "text": text })),
        );
    }

    /// Clicks; again when a live refresh replaced the element between finding and clicking
    /// (the ward view swaps its rows in on every change: "stale element reference").
    pub(crate) fn click(&self, css: &str) {
        for attempt in 0.. {
            let e = self.find(css);
            let url = format!("{}{}", self.base, self.s(&format!("/element/{e}/click")));
            match ureq::post(&url)
                .timeout(Duration::from_secs(60))
                .send_json(json!({}))
            {
                Ok(_) => return,
                Err(ureq::Error::Status(404, r)) if attempt < 5 => {
                    let body = r.into_string().unwrap_or_default();
                    assert!(body.contains("stale element"), "click {css}: {body}");
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("click {css}: {e}"),
            }
        }
    }

    pub(crate) fn js(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Polls `script` until it returns true.
    pub(crate) fn wait_for(&self, what: &str, script: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.js(script) == json!(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; page text:\n{}",
                self.js("return document.body.innerText")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session)).call();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn red_alert_appears_live_and_is_acknowledged_in_the_browser() {
    if !require_tool("chromedriver") {
        return;
    }
    let v = Vigil::start();
    // A name with markup: it must show as text, never become an element (docs/architecture.md, invariant 7).
    let name = "<b>Bà Ba</b>";
    v.admin(&[
        "patient", "add", "--name", name, "--id", "pat-web", "--area", "Ấp <3>", "--tag", "copd",
    ]);
    // A patient of another facility: never shown to this clinician (issue #6).
    v.admin(&[
        "facility",
        "add",
        "--id",
        "xa-khac",
        "--name",
        "Trạm y tế khác",
    ]);
    v.admin(&[
        "patient",
        "add",
        "--name",
        "Ông Khác",
        "--id",
        "pat-other",
        "--facility",
        "xa-khac",
    ]);
    let dev = v.admin(&[
        "device",
        "add",
        "--patient",
        "pat-web",
        "--kind",
        "pulse_oximeter",
    ]);
    // A calm patient with a normal reading: above the never-measured one until the alert.
    v.admin(&[
        "patient",
        "add",
        "--name",
        "Ông Bình An",
        "--id",
        "pat-calm",
        "--area",
        "Ấp 2",
    ]);
    let calm = v.admin(&[
        "device",
        "add",
        "--patient",
        "pat-calm",
        "--kind",
        "pulse_oximeter",
    ]);
    let calm_id = calm["id"].as_str().unwrap().to_string();
    let mut calm_dev =
        Device::connect(v.mqtt, &calm_id, calm["password"].as_str().unwrap()).unwrap();
    calm_dev.publish(
        &format!("vigil/v1/{calm_id}/readings"),
        r#"{"metric":"spo2","value":97,"unit":"%"}"#,
    );
    let out = v.admin_raw(
        &["user", "add", "--name", "bs.web", "--password-stdin"],
        Some("mat-khau-web\n"),
    );
    assert!(out.status.success());
    let token = v.admin(&["token", "create", "--name", "check"])["token"]
        .as_str()
        .unwrap()
        .to_string();

    let d = Driver::start();
    d.goto(&v.url("/"));
    d.wait_for(
        "the login page",
        "return !!document.querySelector('#username')",
        Duration::from_secs(20),
    );
    d.type_into("#username", "bs.web");
    d.type_into("#password", "mat-khau-web");
    d.click("#login");
    d.wait_for(
        "the patient row",
        "return !!document.querySelector('#patients tbody tr[data-patient=\"pat-web\"]')",
        Duration::from_secs(20),
    );
    d.wait_for(
        "the live stream",
        "return document.querySelector('#live').className === 'live on'",
        Duration::from_secs(20),
    );
    assert_eq!(
        d.js("return document.querySelectorAll('#patients tbody tr[data-patient=\"pat-other\"]').length"),
        json!(0),
        "another facility's patient"
    );
    let cell = d.js("return document.querySelector('#patients tbody tr[data-patient=\"pat-web\"] td:nth-child(2)').textContent");
    assert_eq!(cell, json!(name));
    assert_eq!(
        d.js("return document.querySelectorAll('#patients b').length"),
        json!(0)
    );
    d.wait_for(
        "the calm patient first",
        "const r = document.querySelectorAll('#patients tbody tr[data-patient]'); return r.length === 2 && r[0].dataset.patient === 'pat-calm'",
        Duration::from_secs(10),
    );
    // A marker that a page reload would wipe out.
    d.js("window.__noReload = 42; return true");

    let mut device = Device::connect(
        v.mqtt,
        dev["id"].as_str().unwrap(),
        dev["password"].as_str().unwrap(),
    )
    .unwrap();
    device.publish(
        &format!("vigil/v1/{}/readings", dev["id"].as_str().unwrap()),
        r#"{"metric":"spo2","value":85,"unit":"%"}"#,
    );

    d.wait_for(
        "the red alert",
        "return !!document.querySelector('#episodes article[data-severity=\"red\"] li[data-state=\"open\"]')",
        Duration::from_secs(10),
    );
    assert_eq!(
        d.js("return window.__noReload"),
        json!(42),
        "the page was reloaded"
    );
    // The new red alert is announced by name (text, not markup).
    d.wait_for(
        "the announcement",
        "const b = document.querySelector('#new-red'); return !b.hidden && b.textContent.includes('<b>Bà Ba</b>') && b.textContent.includes('SpO₂: 85 %')",
        Duration::from_secs(5),
    );
    assert_eq!(
        d.js("return document.querySelector('#patients tbody tr[data-patient=\"pat-web\"]').dataset.status"),
        json!("red")
    );
    // … and moved to the top, without a reload.
    d.wait_for(
        "the red patient on top",
        "return document.querySelector('#patients tbody tr[data-patient]').dataset.patient === 'pat-web'",
        Duration::from_secs(10),
    );
    // NEWS2 from SpO₂ 85 alone: 3, shown as a lower bound ("3+") in the amber band.
    d.wait_for(
        "the NEWS2 score",
        "return document.querySelector('#patients tbody tr[data-patient=\"pat-web\"] td:nth-child(3)').textContent === '3+'",
        Duration::from_secs(10),
    );
    assert_eq!(
        d.js("return document.querySelector('#patients tbody tr[data-patient=\"pat-web\"] td:nth-child(3)').classList.contains('news2-low_medium')"),
        json!(true)
    );
    // The value is coloured against the patient's limits, and the 24-hour sparkline is drawn.
    assert_eq!(
        d.js("return document.querySelector('#patients tbody tr[data-patient=\"pat-web\"] td[data-metric=spo2]').classList.contains('flag-red')"),
        json!(true)
    );
    d.wait_for(
        "the sparkline",
        "return !!document.querySelector('#patients tbody tr[data-patient=\"pat-web\"] td.spark svg polyline')",
        Duration::from_secs(10),
    );
    // One card for the episode (issue #17): its current value, and one acknowledge whose
    // note the clinician chose to share with the family.
    assert!(d
        .js("return document.querySelector('#episodes article[data-severity=\"red\"] li.signal .current').textContent")
        .as_str()
        .unwrap()
        .contains("85 %"));
    d.type_into(
        "#episodes article[data-severity=\"red\"] input.note",
        "Đang gọi cho gia đình",
    );
    d.click("#episodes article[data-severity=\"red\"] input.share");
    d.click("#episodes article[data-severity=\"red\"] button.ack");
    d.wait_for(
        "the acknowledgement",
        "const c = document.querySelector('#episodes article[data-severity=\"red\"]'); return !!c && !!c.querySelector('li[data-state=\"acknowledged\"]') && c.querySelector('.taken-on').textContent.includes('bs.web') && c.querySelector('input.note').value === ''",
        Duration::from_secs(10),
    );
    let (_, alerts) = v.get("/api/v1/alerts?state=acknowledged", &token);
    assert_eq!(alerts["alerts"][0]["acknowledged_by"], "bs.web", "{alerts}");
    let (_, episodes) = v.get("/api/v1/episodes", &token);
    assert_eq!(
        episodes["episodes"][0]["family_note"]["note"], "Đang gọi cho gia đình",
        "{episodes}"
    );
    d.screenshot("ward-view");

    // Search by name: typing hides the rows that do not match (text only, no reload).
    d.type_into("#search", "không có ai");
    d.wait_for(
        "the filtered ward",
        "return document.querySelectorAll('#patients tbody tr').length === 0",
        Duration::from_secs(5),
    );
    d.js("const s = document.querySelector('#search'); s.value = 'bà ba'; s.dispatchEvent(new Event('input', { bubbles: true })); return true");
    d.wait_for(
        "the match",
        "return document.querySelectorAll('#patients tbody tr[data-patient=\"pat-web\"]').length === 1",
        Duration::from_secs(5),
    );

    // Filter by tag: the select lists the caller's tags; choosing one applies at once.
    d.js("const s = document.querySelector('#search'); s.value = ''; s.dispatchEvent(new Event('input', { bubbles: true })); return true");
    assert_eq!(
        d.js("return [...document.querySelectorAll('#tag option')].map(o => o.value).join(',')"),
        json!(",copd")
    );

    // The page language came from the browser (English); switching to Vietnamese is kept with
    // the account: after the switch the browser's own note of it is wiped, and the pages
    // still come in Vietnamese.
    assert_eq!(d.js("return document.documentElement.lang"), json!("en"));
    d.click("#lang");
    d.wait_for(
        "Vietnamese",
        "return document.documentElement.lang === 'vi' && document.querySelector('nav.main a[href=\"/alerts\"]').textContent === 'Hộp cảnh báo'",
        Duration::from_secs(10),
    );
    let (_, me) = v.get("/api/v1/me", &token);
    assert_eq!(me["lang"], json!(null), "a token has no language: {me}");
    d.js("document.cookie = 'vigil_lang=; path=/; max-age=0'; return true");
    d.wait_for(
        "the patient row",
        "return !!document.querySelector('#patients tbody tr[data-patient=\"pat-web\"] td:nth-child(2) a')",
        Duration::from_secs(10),
    );
    d.click("#patients tbody tr[data-patient=\"pat-web\"] td:nth-child(2) a");
    d.wait_for(
        "the patient page",
        "return !!document.querySelector('figure.vital[data-metric=\"spo2\"] svg .band-red')",
        Duration::from_secs(10),
    );
    assert_eq!(d.js("return document.documentElement.lang"), json!("vi"));
    assert_eq!(
        d.js("return document.querySelector('#patient-name').textContent"),
        json!(name),
        "the name is text, not markup"
    );
    assert_eq!(
        d.js("return document.querySelectorAll('#patient-alerts tbody tr.status-red').length"),
        json!(1)
    );
    assert_eq!(
        d.js("return document.querySelector('#news2').textContent"),
        json!("NEWS2 hiện tại: 3+")
    );
    d.screenshot("patient-page");

    // A threshold order from the page's form (issue #5/#6): reason required, audited, applied.
    d.js("document.querySelector('#order select[name=rule]').value = 'spo2_low'; return true");
    d.type_into("#order input[name=threshold]", "85");
    d.type_into("#order input[name=reason]", "COPD, target 88–92 %");
    d.click("#order button[type=submit]");
    d.wait_for(
        "the order applied",
        "return !!document.querySelector('#thresholds tr[data-rule=\"spo2_low\"].ordered') && document.querySelector('#orders').textContent.includes('COPD')",
        Duration::from_secs(10),
    );
    let (_, th) = v.get("/api/v1/patients/pat-web/thresholds", &token);
    let order = &th["orders"][0];
    assert_eq!(order["ordered_by"], "bs.web", "{th}");
    assert_eq!(order["threshold"], json!(85.0), "{th}");

    // Another facility's patient page is as unknown as a missing one.
    d.goto(&v.url("/patients/pat-other"));
    d.wait_for(
        "the 404 page",
        "return document.body.innerText.includes('Không tìm thấy người bệnh') && !document.body.innerText.includes('Ông Khác')",
        Duration::from_secs(10),
    );

    // The alert inbox: resolve the acknowledged alert with a note; the history filter finds it.
    d.goto(&v.url("/alerts"));
    d.wait_for(
        "the inbox",
        "return !!document.querySelector('#episodes article[data-patient=\"pat-web\"] button.resolve')",
        Duration::from_secs(10),
    );
    d.type_into(
        "#episodes article[data-patient=\"pat-web\"] input.note",
        "Gọi 115, đã nhập viện",
    );
    // SpO₂ is still 85 %: resolving asks first, with the current value (accepted here).
    d.js(
        "window.confirm = (m) => { sessionStorage.setItem('asked', m); return true; }; return true",
    );
    d.click("#episodes article[data-patient=\"pat-web\"] button.resolve");
    d.wait_for(
        "the resolved episode gone from the open list",
        "return !!document.querySelector('#filters, #alert-filters') && !document.querySelector('#episodes article[data-patient=\"pat-web\"]')",
        Duration::from_secs(10),
    );
    let asked = d.js("return sessionStorage.getItem('asked')");
    assert!(asked.as_str().unwrap_or("").contains("85 %"), "{asked}");
    let (_, episodes) = v.get("/api/v1/episodes?state=ended", &token);
    assert_eq!(episodes["episodes"][0]["state"], "ended", "{episodes}");
    d.goto(&v.url("/alerts?state=resolved&severity=red"));
    d.wait_for(
        "the history",
        "return !!document.querySelector('#alerts tbody tr[data-state=\"resolved\"]') && document.querySelector('#alerts').textContent.includes('Gọi 115')",
        Duration::from_secs(10),
    );
    d.screenshot("alert-inbox");
    // Its page: the audit trail with every action, who and the note; the breaching reading.
    d.click("#alerts tbody tr[data-state=\"resolved\"] td:nth-child(3) a");
    d.wait_for(
        "the alert's audit trail",
        "const t = document.querySelector('#audit'); return !!t && ['open', 'acknowledge', 'resolve'].every(a => !!t.querySelector('tr[data-action=' + a + ']')) && t.querySelector('tr[data-action=resolve]').textContent.includes('Gọi 115') && t.querySelector('tr[data-action=acknowledge]').textContent.includes('bs.web')",
        Duration::from_secs(10),
    );
    assert!(d
        .js("return document.querySelector('#alert-readings').textContent")
        .as_str()
        .unwrap()
        .contains("85"));
    // Its vital as a chart (issue #21: the readings were a list one per line), the limit's
    // breaching side shaded, a marker where it opened; the readings folded away.
    assert_eq!(
        d.js("const c = document.querySelector('#alert-chart svg'); return !!c && !!c.querySelector('.zone-red') && !!c.querySelector('.marker') && !document.querySelector('#alert-readings').closest('details').open"),
        json!(true)
    );
    // The alert burden report counts it, per rule and per patient.
    d.click("nav.main a[href=\"/reports/alert-burden\"]");
    d.wait_for(
        "the alert burden report",
        "const r = document.querySelector('#burden-by_rule tr[data-key=\"spo2_low\"]'); return !!r && r.children[1].textContent === '1' && !!document.querySelector('#burden-by_patient tr[data-key=\"pat-web\"]')",
        Duration::from_secs(10),
    );
    let (_, alerts) = v.get("/api/v1/alerts?state=resolved", &token);
    assert_eq!(
        alerts["alerts"][0]["note"], "Gọi 115, đã nhập viện",
        "{alerts}"
    );

    // Administration is not for clinicians: no link, and the page refuses.
    assert_eq!(
        d.js("return !!document.querySelector('nav.main a[href=\"/admin\"]')"),
        json!(false)
    );
    // An administrator registers a device: its MQTT password is shown once, in the page.
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
    d.click("header form button[type=submit]"); // sign out
    d.wait_for(
        "the login page",
        "return !!document.querySelector('#username')",
        Duration::from_secs(10),
    );
    d.type_into("#username", "quan.tri");
    d.type_into("#password", "mat-khau-quan-tri");
    d.click("#login");
    d.wait_for(
        "the administration link",
        "return !!document.querySelector('nav.main a[href=\"/admin\"]')",
        Duration::from_secs(10),
    );
    d.click("nav.main a[href=\"/admin\"]");
    d.wait_for(
        "the administration page",
        "return !!document.querySelector('#add-device') && !!document.querySelector('#admin-patients tr[data-patient=\"pat-other\"]')",
        Duration::from_secs(10),
    );
    d.js("document.querySelector('#add-device select[name=patient_id]').value = 'pat-web'; document.querySelector('#add-device select[name=kind]').value = 'thermometer'; return true");
    d.type_into("#add-device input[name=id]", "nhiet-ke-1");
    d.click("#add-device button[type=submit]");
    d.wait_for(
        "the credentials",
        "const b = document.querySelector('#credentials'); return !b.hidden && b.querySelector('[data-field=password]').textContent.length >= 16",
        Duration::from_secs(10),
    );
    assert_eq!(
        d.js("return document.querySelector('#credentials [data-field=username]').textContent"),
        json!("nhiet-ke-1")
    );
    let password =
        d.js("return document.querySelector('#credentials [data-field=password]').textContent");
    let password = password.as_str().unwrap().to_string();
    d.screenshot("administration");
    Device::connect(v.mqtt, "nhiet-ke-1", &password).expect("the credentials shown work");
    // Once: after closing, the page lists the device and the password is nowhere.
    d.click("#credentials-done");
    d.wait_for(
        "the device listed",
        "return !!document.querySelector('#admin-devices tr[data-device=\"nhiet-ke-1\"]')",
        Duration::from_secs(10),
    );
    assert_eq!(
        d.js(&format!(
            "return document.documentElement.innerHTML.includes('{password}')"
        )),
        json!(false)
    );
}
