use super::*;
use chrono::TimeZone;

fn reading(metric: Metric, value: f64, flags: &[&str]) -> StoredReading {
    StoredReading {
        device_num: 7,
        device_id: "an-ox_1".into(),
        patient_id: "demo-an".into(),
        metric,
        ts: Utc.with_ymd_and_hms(2026, 12, 5, 1, 15, 0).unwrap(),
        value,
        flags: flags.iter().map(|f| f.to_string()).collect(),
        received_at: Utc.with_ymd_and_hms(2026, 12, 5, 1, 15, 2).unwrap(),
    }
}

/// The R4 vital-signs profile's rules (observation-vitalsigns.html): status, the vital-signs
/// category, a LOINC code, a Patient subject, a dateTime, and a UCUM quantity.
fn assert_vital_sign(o: &Value, loinc: &str, ucum: &str) {
    assert_eq!(o["resourceType"], "Observation");
    assert_eq!(o["status"], "final");
    let cat = &o["category"][0]["coding"][0];
    assert_eq!(cat["system"], CATEGORY);
    assert_eq!(cat["code"], "vital-signs");
    assert!(
        o["code"]["coding"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["system"] == LOINC && c["code"] == loinc),
        "{o}"
    );
    assert!(o["subject"]["reference"]
        .as_str()
        .unwrap()
        .starts_with("Patient/"));
    assert_eq!(o["effectiveDateTime"], "2026-12-05T01:15:00.000+00:00");
    if ucum.is_empty() {
        return;
    }
    let q = &o["valueQuantity"];
    assert_eq!(q["system"], UCUM);
    assert_eq!(q["code"], ucum);
    assert!(q["value"].is_number());
    assert!(o["meta"]["profile"]
        .as_array()
        .unwrap()
        .contains(&json!("http://hl7.org/fhir/StructureDefinition/vitalsigns")));
}

#[test]
fn each_vital_sign_follows_its_profile() {
    for (m, loinc, ucum, profile) in [
        (Metric::HeartRate, "8867-4", "/min", "heartrate"),
        (Metric::Spo2, "2708-6", "%", "oxygensat"),
        (Metric::RespiratoryRate, "9279-1", "/min", "resprate"),
        (Metric::Temperature, "8310-5", "Cel", "bodytemp"),
        (Metric::Weight, "29463-7", "kg", "bodyweight"),
    ] {
        let o = observation(&Measured::One(reading(m, 90.0, &[])));
        assert_vital_sign(&o, loinc, ucum);
        assert!(o["meta"]["profile"]
            .as_array()
            .unwrap()
            .contains(&json!(format!(
                "http://hl7.org/fhir/StructureDefinition/{profile}"
            ))));
        assert_eq!(
            o["device"]["reference"],
            format!("Device/{}", ids::fhir_id("an-ox_1"))
        );
    }
    // SpO₂ carries both codes: the profile's and "by pulse oximetry".
    let o = observation(&Measured::One(reading(Metric::Spo2, 84.0, &[])));
    assert_vital_sign(&o, "59408-5", "%");
}

#[test]
fn systolic_and_diastolic_together_are_one_blood_pressure() {
    let list = group(vec![
        reading(Metric::BpDiastolic, 95.0, &[]),
        reading(Metric::BpSystolic, 162.0, &["late"]),
        reading(Metric::HeartRate, 88.0, &[]),
    ]);
    assert_eq!(list.len(), 2, "{list:?}");
    let bp = list
        .iter()
        .find(|m| m.kind() == ObservationKind::BloodPressure)
        .unwrap();
    let o = observation(bp);
    assert_vital_sign(&o, "85354-9", "");
    assert!(o.get("valueQuantity").is_none());
    let c = o["component"].as_array().unwrap();
    assert_eq!(c[0]["code"]["coding"][0]["code"], "8480-6");
    assert_eq!(c[0]["valueQuantity"]["value"], 162.0);
    assert_eq!(c[0]["valueQuantity"]["code"], "mm[Hg]");
    assert_eq!(c[1]["code"]["coding"][0]["code"], "8462-4");
    assert_eq!(c[1]["valueQuantity"]["value"], 95.0);
    assert!(o["meta"]["profile"]
        .as_array()
        .unwrap()
        .contains(&json!("http://hl7.org/fhir/StructureDefinition/bp")));
    assert_eq!(o["id"], "bp-7-1796433300000");
    // A flag of either half is carried, readable and machine-readable.
    assert_eq!(o["extension"][0]["valueCode"], "late");
    assert!(o["note"][0]["text"].as_str().unwrap().contains("late"));
    // The same readings always make the same resource.
    assert_eq!(o, observation(bp));
}

#[test]
fn glucose_is_a_laboratory_observation_in_mmol_per_litre() {
    let o = observation(&Measured::One(reading(Metric::Glucose, 5.6, &[])));
    assert_eq!(o["category"][0]["coding"][0]["code"], "laboratory");
    assert_eq!(o["code"]["coding"][0]["code"], "14743-9");
    assert_eq!(o["valueQuantity"]["code"], "mmol/L");
    assert!(o.get("meta").is_none(), "no vital-signs profile: {o}");
}

#[test]
fn bundles_page_and_update_conditionally() {
    let o = observation(&Measured::One(reading(Metric::HeartRate, 72.0, &[])));
    let b = searchset(
        "https://vigil.example/fhir/r4",
        vec![o.clone()],
        None,
        "https://vigil.example/fhir/r4/Observation?patient=demo-an",
        Some("https://vigil.example/fhir/r4/Observation?patient=demo-an&_offset=1"),
    );
    assert_eq!(b["type"], "searchset");
    assert_eq!(b["link"][1]["relation"], "next");
    assert_eq!(
        b["entry"][0]["fullUrl"],
        "https://vigil.example/fhir/r4/Observation/hr-7-1796433300000"
    );
    let p = patient(&Patient {
        id: "demo-an".into(),
        name: "Nguyễn Văn An".into(),
        facility_id: "default".into(),
        area: None,
        tags: vec![],
    });
    let t = transaction(vec![o, p]);
    assert_eq!(t["type"], "transaction");
    // The Observation names the Patient's entry, which the server resolves to its own id.
    assert_eq!(
        t["entry"][0]["resource"]["subject"]["reference"],
        t["entry"][1]["fullUrl"]
    );
    assert_eq!(
        t["entry"][1]["request"]["url"],
        "Patient?identifier=urn:vigil:patient|demo-an"
    );
    assert!(
        t["entry"][1]["resource"].get("id").is_none(),
        "the server's ids"
    );
    assert_eq!(t["entry"][0]["request"]["method"], "PUT");
    assert_eq!(
        t["entry"][0]["request"]["url"],
        "Observation?identifier=urn:vigil:reading|an-ox_1/heart_rate/1796433300000"
    );
    assert!(t["entry"][0]["fullUrl"]
        .as_str()
        .unwrap()
        .starts_with("urn:uuid:"));
}

#[test]
fn a_page_keeps_a_blood_pressure_whole_and_says_where_to_resume() {
    let mut hr = reading(Metric::HeartRate, 70.0, &[]);
    hr.ts += chrono::Duration::seconds(60);
    let rows = vec![
        reading(Metric::BpSystolic, 150.0, &[]),
        reading(Metric::BpDiastolic, 90.0, &[]),
        hr.clone(),
    ];
    let (first, next) = page(rows.clone(), 1);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].kind(), ObservationKind::BloodPressure);
    assert_eq!(
        next,
        Some((hr.ts.timestamp_millis(), 7, Metric::HeartRate.code()))
    );
    let (all, next) = page(rows, 10);
    assert_eq!((all.len(), next), (2, None));
}
