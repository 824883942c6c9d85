//! SenML JSON (RFC 8428) on the readings topic, detected by shape: a SenML pack is a JSON array,
//! a v1 message an object. Part of the decode stage: pure, the receive time is an input.
//!
//! Resolution follows RFC 8428 §4 (clinical reference §4): name = `bn` + `n`, time = `bt` + `t`,
//! unit = `u` else `bu`, value = `bv` + `v`; base fields carry forward to later records until a
//! record sets them again; a resolved time below 2^28 is relative to now (seconds, negative in
//! the past), larger ones are absolute Unix seconds; exactly one value field per record unless
//! a sum is present; unknown labels are ignored, labels ending in `_` reject the pack (§4.4).
//! Names map to metrics by their last segment (`urn:dev:mac:0024befffe804ff1:spo2` → `spo2`).
//! SenML units differ from v1 JSON: `%` and `/` are ratios 0–1 (SpO₂ 0.97 = 97 %), blood
//! pressure comes in `Pa`; they are converted here so validation sees v1 units.

use crate::message::{truncate, RawReading, Reject};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Map, Value};
use vigil_domain::Metric;

/// The SenML version this decoder implements (RFC 8428 §4.4: `bver` 10).
const VERSION: i64 = 10;
/// RFC 8428 §4.5.3: values below 2^28 are relative times.
const RELATIVE_LIMIT: f64 = 268_435_456.0;

/// What a pack carried: vital-sign readings, and the device's battery level if reported (`%EL`).
#[derive(Debug, Clone, PartialEq)]
pub struct Pack {
    pub readings: Vec<RawReading>,
    pub battery: Option<f64>,
}

fn reject(detail: impl Into<String>) -> Reject {
    Reject::new("malformed_senml", detail)
}

fn number(obj: &Map<String, Value>, key: &str) -> Result<Option<f64>, Reject> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| reject(format!("{key} is not a finite number"))),
        Some(_) => Err(reject(format!("{key} must be a number"))),
    }
}

fn text<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, Reject> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if s.len() <= 256 => Ok(Some(s)),
        Some(_) => Err(reject(format!("{key} must be a short string"))),
    }
}

/// RFC 8428 §4.5.1: name characters, first one a letter or digit.
fn valid_name(n: &str) -> bool {
    n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '/' | '_'))
}

pub fn decode(pack: &[Value], now: DateTime<Utc>, max_records: usize) -> Result<Pack, Reject> {
    if pack.is_empty() {
        return Err(Reject::new("empty_batch", "empty SenML pack"));
    }
    if pack.len() > max_records {
        return Err(Reject::new(
            "batch_too_large",
            format!("{} records, limit {max_records}", pack.len()),
        ));
    }
    let (mut bn, mut bt, mut bu, mut bv) = (String::new(), 0.0f64, None::<String>, 0.0f64);
    let mut out = Pack {
        readings: Vec::new(),
        battery: None,
    };
    for (i, rec) in pack.iter().enumerate() {
        let at = |e: Reject| Reject::new(e.reason, format!("record {i}: {}", e.detail));
        let obj = rec
            .as_object()
            .ok_or_else(|| at(reject("a record must be an object")))?;
        if let Some(k) = obj.keys().find(|k| k.ends_with('_')) {
            return Err(at(reject(format!(
                "unsupported field {:?}",
                truncate(k, 32)
            ))));
        }
        if let Some(v) = obj.get("bver") {
            match v.as_i64() {
                Some(ver) if (1..=VERSION).contains(&ver) => {}
                _ => return Err(at(reject("unsupported bver"))),
            }
        }
        if let Some(n) = text(obj, "bn").map_err(at)? {
            bn = n.to_string();
        }
        if let Some(t) = number(obj, "bt").map_err(at)? {
            bt = t;
        }
        if let Some(u) = text(obj, "bu").map_err(at)? {
            bu = Some(u.to_string());
        }
        if let Some(v) = number(obj, "bv").map_err(at)? {
            bv = v;
        }
        let n = text(obj, "n").map_err(at)?.unwrap_or("");
        let v = number(obj, "v").map_err(at)?;
        let others = ["vs", "vb", "vd"]
            .iter()
            .filter(|k| obj.contains_key(**k))
            .count();
        let has_sum = obj.contains_key("s");
        let values = others + usize::from(v.is_some());
        if values > 1 || (values == 0 && !has_sum) {
            // A record with only base fields sets context for the next ones.
            if values == 0 && n.is_empty() && !obj.contains_key("t") {
                continue;
            }
            return Err(at(reject("a record needs exactly one value field")));
        }
        let Some(v) = v else {
            continue; // string, boolean, data or sum-only records: nothing vital to store
        };
        let name = format!("{bn}{n}");
        if !valid_name(&name) {
            return Err(at(reject("invalid name")));
        }
        let unit = text(obj, "u")
            .map_err(at)?
            .map(str::to_string)
            .or(bu.clone());
        let t = bt + number(obj, "t").map_err(at)?.unwrap_or(0.0);
        let ts = resolve_time(t, now)
            .ok_or_else(|| at(Reject::new("bad_timestamp", "time out of range")))?;
        let value = bv + v;
        let last = name.rsplit([':', '/']).next().unwrap_or(&name);
        if unit.as_deref() == Some("%EL") || last == "battery" {
            out.battery = Some(value);
            continue;
        }
        let metric: Metric = last.parse().map_err(|_| {
            at(Reject::new(
                "unknown_metric",
                format!("name ending {:?}", truncate(last, 32)),
            ))
        })?;
        let (value, unit) = to_v1_unit(metric, value, unit.as_deref());
        out.readings.push(RawReading {
            metric,
            value,
            unit,
            ts: Some(ts),
            seq: None,
        });
    }
    if out.readings.is_empty() && out.battery.is_none() {
        return Err(Reject::new(
            "empty_batch",
            "no numeric record in the SenML pack",
        ));
    }
    Ok(out)
}

/// RFC 8428 §4.5.3: absolute Unix seconds, or relative to now below 2^28 (0 means now).
fn resolve_time(t: f64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if t.abs() < RELATIVE_LIMIT {
        Some(now + Duration::milliseconds((t * 1000.0).round() as i64))
    } else {
        let ms = (t * 1000.0).round();
        if !(0.0..=253_402_300_799_000.0).contains(&ms) {
            return None;
        }
        Utc.timestamp_millis_opt(ms as i64).single()
    }
}

/// SenML units → the v1 units validation understands. Unknown ones pass through unchanged and
/// are rejected there as `unknown_unit`.
fn to_v1_unit(metric: Metric, value: f64, unit: Option<&str>) -> (f64, String) {
    match (metric, unit) {
        (_, None) => (value, metric.unit().to_string()),
        // SenML `%` and `/` are ratios (RFC 8428 §12.1): 0.97 is 97 %.
        (Metric::Spo2, Some("%" | "/")) => (value * 100.0, "%".into()),
        // 1 mmHg = 133.322 Pa (clinical reference §4).
        (Metric::BpSystolic | Metric::BpDiastolic, Some("Pa")) => {
            (value / 133.322, "mm[Hg]".into())
        }
        (Metric::HeartRate | Metric::RespiratoryRate, Some("beat/min" | "1/min" | "/min")) => {
            (value, "/min".into())
        }
        // Mass concentration: 1 mg/dL = 0.01 kg/m³ (clinical reference §4).
        (Metric::Glucose, Some("kg/m3")) => (value * 100.0, "mg/dL".into()),
        (_, Some(u)) => (value, u.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, 0).unwrap()
    }

    fn pack(s: &str) -> Result<Pack, Reject> {
        let v: Value = serde_json::from_str(s).unwrap();
        decode(v.as_array().unwrap(), now(), 500)
    }

    #[test]
    fn base_fields_resolve_and_carry_forward() {
        let p = pack(
            r#"[{"bn":"urn:dev:mac:0024befffe804ff1:","bt":1.7637741e9,"bu":"beat/min","n":"heart_rate","v":72},
                {"n":"spo2","u":"%","v":0.97,"t":2},
                {"n":"heart_rate","v":75,"t":60}]"#,
        )
        .unwrap();
        assert_eq!(p.readings.len(), 3);
        assert_eq!(p.readings[0].metric, Metric::HeartRate);
        assert_eq!(p.readings[0].unit, "/min");
        assert_eq!(p.readings[0].ts.unwrap().timestamp(), 1_763_774_100);
        assert_eq!(p.readings[1].metric, Metric::Spo2);
        assert!(
            (p.readings[1].value - 97.0).abs() < 1e-9,
            "ratio to percent"
        );
        assert_eq!(p.readings[1].ts.unwrap().timestamp(), 1_763_774_102);
        assert_eq!(p.readings[2].unit, "/min", "bu carried forward");
        assert_eq!(p.readings[2].ts.unwrap().timestamp(), 1_763_774_160);
    }

    #[test]
    fn relative_times_and_pascal() {
        let p = pack(r#"[{"n":"dev/bp_systolic","u":"Pa","v":16000,"t":-30}]"#).unwrap();
        let r = &p.readings[0];
        assert_eq!(r.metric, Metric::BpSystolic);
        assert!((r.value - 120.01).abs() < 0.01, "{}", r.value);
        assert_eq!(r.unit, "mm[Hg]");
        assert_eq!(r.ts, Some(now() - Duration::seconds(30)));
    }

    #[test]
    fn base_value_and_battery() {
        let p = pack(r#"[{"bn":"hub1/","bv":36,"n":"temperature","u":"Cel","v":0.8},{"bv":0,"n":"battery","u":"%EL","v":41}]"#).unwrap();
        assert!((p.readings[0].value - 36.8).abs() < 1e-9);
        assert_eq!(p.battery, Some(41.0));
    }

    #[test]
    fn rejections() {
        let reason = |s: &str| pack(s).unwrap_err().reason;
        assert_eq!(reason(r#"[{"n":"spo2","v":97,"x_":1}]"#), "malformed_senml");
        assert_eq!(
            reason(r#"[{"bver":99,"n":"spo2","v":0.97}]"#),
            "malformed_senml"
        );
        assert_eq!(
            reason(r#"[{"n":"spo2","v":0.97,"vs":"x"}]"#),
            "malformed_senml"
        );
        assert_eq!(reason(r#"[{"n":"-bad","v":1}]"#), "malformed_senml");
        assert_eq!(reason(r#"[{"n":"mood","v":1}]"#), "unknown_metric");
        assert_eq!(reason(r#"[{"bn":5,"n":"spo2","v":1}]"#), "malformed_senml");
        assert_eq!(
            reason(r#"[{"n":"spo2","v":0.9,"t":1e300}]"#),
            "bad_timestamp"
        );
        assert_eq!(reason(r#"[]"#), "empty_batch");
        assert_eq!(reason(r#"[{"n":"status","vs":"ok"}]"#), "empty_batch");
    }
}
