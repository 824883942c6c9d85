//! The resources: Patient, Device, Observation (vital signs; blood pressure as one panel), the
//! CapabilityStatement, and searchset / transaction Bundles (FHIR R4).

use crate::codes::{self, BP_PANEL, CATEGORY, LOINC, UCUM};
use crate::ids::{self, ObservationKind};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use vigil_domain::views::{DeviceView, StoredReading};
use vigil_domain::{Metric, Patient};

/// Where Vigil's reading flags go: one extension per flag, its code the flag (`late`,
/// `clock_skew`, `ts_received`, `suspect`; docs/fhir.md).
pub const FLAG_EXTENSION: &str =
    "https://github.com/vigil-rpm/vigil/fhir/StructureDefinition/reading-flag";

/// A FHIR `dateTime`/`instant` in UTC with its offset and milliseconds.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, false)
}

pub fn patient(p: &Patient) -> Value {
    json!({
        "resourceType": "Patient",
        "id": ids::fhir_id(&p.id),
        "identifier": [{ "system": ids::PATIENT_SYSTEM, "value": p.id }],
        "active": true,
        "name": [{ "text": p.name }],
    })
}

pub fn device(d: &DeviceView) -> Value {
    json!({
        "resourceType": "Device",
        "id": ids::fhir_id(&d.id),
        "identifier": [{ "system": ids::DEVICE_SYSTEM, "value": d.id }],
        "status": if d.enabled { "active" } else { "inactive" },
        "deviceName": [{ "name": d.id, "type": "user-friendly-name" }],
        "type": { "text": d.kind },
        "patient": { "reference": format!("Patient/{}", ids::fhir_id(&d.patient_id)) },
    })
}

/// What one Observation is made of: one reading, or a blood pressure's two.
#[derive(Debug, Clone, PartialEq)]
pub enum Measured {
    One(StoredReading),
    BloodPressure {
        systolic: StoredReading,
        diastolic: StoredReading,
    },
}

impl Measured {
    fn first(&self) -> &StoredReading {
        match self {
            Measured::One(r) => r,
            Measured::BloodPressure { systolic, .. } => systolic,
        }
    }

    pub fn kind(&self) -> ObservationKind {
        match self {
            Measured::One(r) => ObservationKind::One(r.metric),
            Measured::BloodPressure { .. } => ObservationKind::BloodPressure,
        }
    }

    pub fn id(&self) -> String {
        let r = self.first();
        ids::observation_id(self.kind(), r.device_num, r.ts.timestamp_millis())
    }

    pub fn ts(&self) -> DateTime<Utc> {
        self.first().ts
    }
}

/// Readings as Observations, in their order: a systolic and a diastolic of the same device at
/// the same time become one blood pressure (R4 `bp` profile); a lone one stays itself.
pub fn group(readings: Vec<StoredReading>) -> Vec<Measured> {
    let mut out: Vec<Measured> = Vec::with_capacity(readings.len());
    let mut diastolic: Vec<StoredReading> = Vec::new();
    let mut rest: Vec<StoredReading> = Vec::with_capacity(readings.len());
    for r in readings {
        if r.metric == Metric::BpDiastolic {
            diastolic.push(r);
        } else {
            rest.push(r);
        }
    }
    for r in rest {
        let pair = (r.metric == Metric::BpSystolic)
            .then(|| {
                diastolic
                    .iter()
                    .position(|d| d.device_num == r.device_num && d.ts == r.ts)
            })
            .flatten();
        out.push(match pair {
            Some(i) => Measured::BloodPressure {
                systolic: r,
                diastolic: diastolic.swap_remove(i),
            },
            None => Measured::One(r),
        });
    }
    out.extend(diastolic.into_iter().map(Measured::One));
    out.sort_by_key(|m| (m.ts(), m.id()));
    out
}

/// At most `n` Observations from readings ordered by (time, device, metric) — a blood
/// pressure's halves are neighbours there —, and where the next page starts: the (time ms,
/// device key, metric code) of the first reading not used, when one is left.
pub fn page(rows: Vec<StoredReading>, n: usize) -> (Vec<Measured>, Option<(i64, i64, i64)>) {
    let mut out = Vec::with_capacity(n.min(rows.len()));
    let mut it = rows.into_iter().peekable();
    while let Some(r) = it.next() {
        if out.len() == n {
            return (
                out,
                Some((r.ts.timestamp_millis(), r.device_num, r.metric.code())),
            );
        }
        let pairs = |d: &StoredReading| {
            r.metric == Metric::BpSystolic
                && d.metric == Metric::BpDiastolic
                && d.device_num == r.device_num
                && d.ts == r.ts
        };
        match it.next_if(pairs) {
            Some(diastolic) => out.push(Measured::BloodPressure {
                systolic: r,
                diastolic,
            }),
            None => out.push(Measured::One(r)),
        }
    }
    (out, None)
}

fn quantity(m: Metric, v: f64) -> Value {
    let (unit, code) = codes::unit(m);
    json!({ "value": v, "unit": unit, "system": UCUM, "code": code })
}

fn concept(codings: &[(&str, &str)], text: &str) -> Value {
    let list: Vec<Value> = codings
        .iter()
        .map(|(c, d)| json!({ "system": LOINC, "code": c, "display": d }))
        .collect();
    json!({ "coding": list, "text": text })
}

/// A reading (or a blood pressure) as an Observation, with its profile, LOINC code, UCUM
/// value, patient, device, times and flags.
pub fn observation(m: &Measured) -> Value {
    let r = m.first();
    let (category, category_display, code, profile) = match m {
        Measured::One(r) => (
            codes::category(r.metric).0,
            codes::category(r.metric).1,
            concept(codes::codings(r.metric), codes::codings(r.metric)[0].1),
            codes::profile(r.metric).filter(|_| {
                // A lone half of a blood pressure meets no bp profile: only the base one.
                !matches!(r.metric, Metric::BpSystolic | Metric::BpDiastolic)
            }),
        ),
        Measured::BloodPressure { .. } => (
            "vital-signs",
            "Vital Signs",
            concept(&[BP_PANEL], "Blood pressure"),
            codes::profile(Metric::BpSystolic),
        ),
    };
    let mut profiles = Vec::new();
    if category == "vital-signs" {
        profiles.push("http://hl7.org/fhir/StructureDefinition/vitalsigns".to_string());
    }
    profiles.extend(profile);
    let mut o = Map::new();
    o.insert("resourceType".into(), json!("Observation"));
    o.insert("id".into(), json!(m.id()));
    if !profiles.is_empty() {
        o.insert("meta".into(), json!({ "profile": profiles }));
    }
    let flags: Vec<&String> = match m {
        Measured::One(r) => r.flags.iter().collect(),
        Measured::BloodPressure {
            systolic,
            diastolic,
        } => {
            let mut f: Vec<&String> = systolic.flags.iter().collect();
            f.extend(
                diastolic
                    .flags
                    .iter()
                    .filter(|x| !systolic.flags.contains(x)),
            );
            f
        }
    };
    if !flags.is_empty() {
        let ext: Vec<Value> = flags
            .iter()
            .map(|f| json!({ "url": FLAG_EXTENSION, "valueCode": f }))
            .collect();
        o.insert("extension".into(), json!(ext));
    }
    o.insert(
        "identifier".into(),
        json!([{
            "system": ids::READING_SYSTEM,
            "value": ids::reading_identifier(m.kind(), &r.device_id, r.ts.timestamp_millis()),
        }]),
    );
    o.insert("status".into(), json!("final"));
    o.insert(
        "category".into(),
        json!([{
            "coding": [{ "system": CATEGORY, "code": category, "display": category_display }],
            "text": category_display,
        }]),
    );
    o.insert("code".into(), code);
    o.insert(
        "subject".into(),
        json!({ "reference": format!("Patient/{}", ids::fhir_id(&r.patient_id)) }),
    );
    o.insert("effectiveDateTime".into(), json!(time(r.ts)));
    o.insert("issued".into(), json!(time(r.received_at)));
    match m {
        Measured::One(r) => {
            o.insert("valueQuantity".into(), quantity(r.metric, r.value));
        }
        Measured::BloodPressure {
            systolic,
            diastolic,
        } => {
            let part = |r: &StoredReading| {
                json!({
                    "code": concept(codes::codings(r.metric), codes::codings(r.metric)[0].1),
                    "valueQuantity": quantity(r.metric, r.value),
                })
            };
            o.insert("component".into(), json!([part(systolic), part(diastolic)]));
        }
    }
    o.insert(
        "device".into(),
        json!({ "reference": format!("Device/{}", ids::fhir_id(&r.device_id)) }),
    );
    if !flags.is_empty() {
        let said: Vec<&str> = flags.iter().map(|f| f.as_str()).collect();
        o.insert(
            "note".into(),
            json!([{ "text": format!("Vigil reading flags: {}", said.join(", ")) }]),
        );
    }
    Value::Object(o)
}

/// A `searchset` Bundle: `resources` as matches, `total` when known, and the paging links
/// (`self`, `next` when there is more).
pub fn searchset(
    base: &str,
    resources: Vec<Value>,
    total: Option<usize>,
    self_url: &str,
    next_url: Option<&str>,
) -> Value {
    let entry: Vec<Value> = resources
        .into_iter()
        .map(|r| {
            let full = format!(
                "{base}/{}/{}",
                r["resourceType"].as_str().unwrap_or(""),
                r["id"].as_str().unwrap_or("")
            );
            json!({ "fullUrl": full, "resource": r, "search": { "mode": "match" } })
        })
        .collect();
    let mut link = vec![json!({ "relation": "self", "url": self_url })];
    if let Some(next) = next_url {
        link.push(json!({ "relation": "next", "url": next }));
    }
    let mut b = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "link": link,
    });
    // FHIR JSON has no empty arrays (R4 json.html#arrays): no matches, no `entry`.
    if !entry.is_empty() {
        b["entry"] = json!(entry);
    }
    if let Some(total) = total {
        b["total"] = json!(total);
    }
    b
}

/// A transaction entry's conditional URL (`Observation?identifier=system|value`): each
/// resource is `PUT` where its first identifier matches, so sending it twice changes nothing
/// (FHIR R4 http.html#cond-update).
fn conditional_url(r: &Value) -> String {
    let id = &r["identifier"][0];
    format!(
        "{}?identifier={}|{}",
        r["resourceType"].as_str().unwrap_or(""),
        id["system"].as_str().unwrap_or(""),
        id["value"].as_str().unwrap_or("")
    )
}

/// The local reference of a resource (`Patient/demo-an`) and the `fullUrl` its transaction
/// entry has (`urn:uuid:…`, deterministic). References between a transaction's resources name
/// the `fullUrl`, which the receiving server replaces with the id it keeps (R4
/// bundle.html#references) — its id for the patient may not be Vigil's.
pub fn entry_urn(r: &Value) -> (String, String) {
    (
        format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap_or(""),
            r["id"].as_str().unwrap_or("")
        ),
        format!("urn:uuid:{}", uuid_like(&conditional_url(r))),
    )
}

/// Replaces every `reference` in `v` that `refs` maps (local reference → `fullUrl`).
fn rewrite(v: &mut Value, refs: &std::collections::HashMap<String, String>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                match (k.as_str(), x.as_str().and_then(|r| refs.get(r))) {
                    ("reference", Some(urn)) => *x = Value::String(urn.clone()),
                    _ => rewrite(x, refs),
                }
            }
        }
        Value::Array(list) => list.iter_mut().for_each(|x| rewrite(x, refs)),
        _ => {}
    }
}

/// One entry of a `transaction` Bundle: `resource` as a conditional update, its references to
/// other entries (`refs`, from [`entry_urn`]) pointing at their `fullUrl`s.
pub fn transaction_entry(
    mut resource: Value,
    refs: &std::collections::HashMap<String, String>,
) -> Value {
    let url = conditional_url(&resource);
    let (_, full) = entry_urn(&resource);
    rewrite(&mut resource, refs);
    // The receiving server keeps its own ids: a conditional update's body carries none, or it
    // would have to match the one the server finds (R4 http.html#cond-update).
    if let Value::Object(map) = &mut resource {
        map.remove("id");
    }
    json!({ "fullUrl": full, "resource": resource, "request": { "method": "PUT", "url": url } })
}

/// A `transaction` Bundle of conditional updates of `resources`, referring to each other
/// through their entries.
pub fn transaction(resources: Vec<Value>) -> Value {
    let refs = resources.iter().map(entry_urn).collect();
    let entry: Vec<Value> = resources
        .into_iter()
        .map(|r| transaction_entry(r, &refs))
        .collect();
    json!({ "resourceType": "Bundle", "type": "transaction", "entry": entry })
}

/// A UUID-shaped digest of `s` (the transaction entries' `fullUrl`s must be absolute).
fn uuid_like(s: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(s.as_bytes());
    let h: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-5{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// The CapabilityStatement of `GET /fhir/r4/metadata`: a read-only server of Patient, Device
/// and Observation (search by patient, code, date; `_count` paging), JSON, bearer tokens.
pub fn capability_statement(base: &str, version: &str, date: DateTime<Utc>) -> Value {
    let read = |kind: &str, profile: &str| {
        json!({
            "type": kind,
            "profile": profile,
            "interaction": [{ "code": "read" }],
        })
    };
    let mut observation = read(
        "Observation",
        "http://hl7.org/fhir/StructureDefinition/Observation",
    );
    observation["supportedProfile"] = json!([
        "http://hl7.org/fhir/StructureDefinition/vitalsigns",
        "http://hl7.org/fhir/StructureDefinition/heartrate",
        "http://hl7.org/fhir/StructureDefinition/oxygensat",
        "http://hl7.org/fhir/StructureDefinition/resprate",
        "http://hl7.org/fhir/StructureDefinition/bodytemp",
        "http://hl7.org/fhir/StructureDefinition/bodyweight",
        "http://hl7.org/fhir/StructureDefinition/bp",
    ]);
    observation["interaction"] = json!([{ "code": "read" }, { "code": "search-type" }]);
    observation["searchParam"] = json!([
        { "name": "patient", "type": "reference", "documentation": "Required: the patient's id." },
        { "name": "code", "type": "token", "documentation": "LOINC code, `http://loinc.org|8867-4` or `8867-4`; 85354-9 for blood pressure." },
        { "name": "date", "type": "date", "documentation": "`ge`, `gt`, `le`, `lt` or `eq` with a dateTime; may repeat." },
        { "name": "_count", "type": "number", "documentation": "Page size, 1–1000 (default 100)." },
    ]);
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": time(date),
        "publisher": "Vigil",
        "kind": "instance",
        "software": { "name": "Vigil", "version": version },
        "implementation": { "description": "Vigil remote patient monitoring gateway", "url": base },
        "fhirVersion": crate::FHIR_VERSION,
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "security": {
                "description": "Bearer API tokens (`vigil token create`) scoped to facilities, as for /api/v1."
            },
            "resource": [
                read("Patient", "http://hl7.org/fhir/StructureDefinition/Patient"),
                read("Device", "http://hl7.org/fhir/StructureDefinition/Device"),
                observation,
            ],
        }],
    })
}

/// An `OperationOutcome` saying what went wrong (FHIR's error body).
pub fn outcome(code: &str, diagnostics: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{ "severity": "error", "code": code, "diagnostics": diagnostics }],
    })
}

#[cfg(test)]
mod tests;
