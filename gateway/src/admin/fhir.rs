//! `vigil fhir export` (issue #18): a patient's readings as a FHIR R4 `transaction` Bundle of
//! conditional updates — Patient, Devices, Observations —, streamed to a file (a month of
//! one-minute readings does not have to fit in memory), owner-only, renamed into place when
//! complete.

use super::{open, print};
use crate::cli::FhirCmd;
use crate::store::{self, registry};
use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use vigil_domain::Metric;
use vigil_fhir::resources;

/// Readings read per step.
const STEP: usize = 5_000;

/// RFC 3339, or a day (`YYYY-MM-DD`, its start in UTC).
fn when(flag: &str, v: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .with_context(|| format!("{flag} {v:?}: an RFC 3339 time or a day YYYY-MM-DD"))?;
    Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
}

pub fn fhir(cmd: FhirCmd) -> anyhow::Result<()> {
    let FhirCmd::Export {
        patient,
        since,
        until,
        out,
        admin,
    } = cmd;
    let window = (
        since.as_deref().map(|v| when("--since", v)).transpose()?,
        until.as_deref().map(|v| when("--until", v)).transpose()?,
    );
    let c = open(&admin)?;
    let p = registry::patient(&c, &patient)?
        .ok_or_else(|| anyhow::anyhow!("no patient {patient:?}"))?;
    let devices = store::devices::patient_devices(&c, &patient)?;
    let mut head: Vec<Value> = vec![resources::patient(&p)];
    head.extend(devices.iter().map(resources::device));
    let refs: HashMap<String, String> = head.iter().map(resources::entry_urn).collect();

    let (tmp, file) = super::private_partial(&out)?;
    let mut w = std::io::BufWriter::new(file);
    let started = std::time::Instant::now();
    write!(
        w,
        r#"{{"resourceType":"Bundle","type":"transaction","entry":["#
    )?;
    let mut first = true;
    let mut entry = |w: &mut std::io::BufWriter<std::fs::File>, r: Value| -> anyhow::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        first = false;
        serde_json::to_writer(&mut *w, &resources::transaction_entry(r, &refs))?;
        Ok(())
    };
    for r in head {
        entry(&mut w, r)?;
    }
    let ms = (
        window.0.map(|t| t.timestamp_millis()),
        window.1.map(|t| t.timestamp_millis()),
    );
    let mut cursor = None;
    let mut observations = 0usize;
    loop {
        let rows = store::fhir::readings(&c, &patient, &Metric::ALL, ms, cursor, STEP * 2 + 1)?;
        let (page, next) = resources::page(rows, STEP);
        observations += page.len();
        for m in &page {
            entry(&mut w, resources::observation(m))?;
        }
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    w.write_all(b"]}")?;
    w.into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()
        .context("writing the Bundle")?;
    std::fs::rename(&tmp, &out).with_context(|| format!("cannot write {}", out.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    print(
        &admin,
        json!({
            "patient": patient,
            "devices": devices.len(),
            "observations": observations,
            "out": out,
            "seconds": seconds,
        }),
        format!(
            "{} Observations, {} Devices and the Patient of {patient} written to {} in {seconds:.1} s",
            observations,
            devices.len(),
            out.display()
        ),
    );
    Ok(())
}
