//! Issue #3, "Bad-input test": malformed and invalid messages interleaved with good readings.
//! Every good reading is stored, every bad one is rejected with the right reason, and the
//! gateway stays healthy.

use crate::util::{register, Device, Vigil};
use serde_json::Value;

#[test]
fn bad_messages_are_rejected_with_reasons_and_good_ones_between_them_are_stored() {
    let v = Vigil::start();
    let f = register(&v, "pat-bad", "hub");
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    let topic = format!("vigil/v1/{}/readings", f.device);
    let huge = format!(
        r#"{{"metric":"spo2","value":95,"pad":"{}"}}"#,
        "x".repeat(70_000)
    );
    let long_unit = format!(
        r#"{{"metric":"spo2","value":95,"unit":"{}"}}"#,
        "%".repeat(100)
    );
    let bad: Vec<(&str, String)> = vec![
        ("malformed_json", r#"{"metric":"spo2","value":"#.into()),
        ("malformed_json", "\u{0}\u{1}binary".into()),
        ("malformed_senml", r#"["spo2", 95]"#.into()),
        ("malformed_senml", r#"[{"n":"spo2","v":0.97,"bad_":1}]"#.into()),
        ("malformed_reading", r#"{"value":95}"#.into()),
        ("bad_value", r#"{"metric":"spo2","value":"95"}"#.into()),
        ("bad_value", r#"{"metric":"spo2","value":null}"#.into()),
        ("unknown_metric", r#"{"metric":"mood","value":3}"#.into()),
        ("unknown_unit", r#"{"metric":"temperature","value":37,"unit":"K"}"#.into()),
        ("unknown_unit", long_unit),
        ("implausible_value", r#"{"metric":"spo2","value":101}"#.into()),
        ("implausible_value", r#"{"metric":"heart_rate","value":0}"#.into()),
        ("implausible_value", r#"{"metric":"temperature","value":46}"#.into()),
        ("implausible_value", r#"{"readings":[{"metric":"bp_systolic","value":70},{"metric":"bp_diastolic","value":90}]}"#.into()),
        ("bad_timestamp", r#"{"metric":"spo2","value":95,"ts":"last tuesday"}"#.into()),
        ("empty_batch", r#"{"readings":[]}"#.into()),
        ("payload_too_large", huge),
    ];
    for (i, (_, payload)) in bad.iter().enumerate() {
        dev.publish(&topic, payload);
        // A good reading after every bad one, each at its own time.
        dev.publish(
            &topic,
            &format!(
                r#"{{"metric":"heart_rate","value":{},"ts":{}}}"#,
                60 + i,
                1_764_000_000_000u64 + i as u64 * 1000
            ),
        );
    }
    dev.publish(
        "vigil/v1/other-device/readings",
        r#"{"metric":"spo2","value":95}"#,
    );
    dev.publish(
        &format!("vigil/v1/{}/events", f.device),
        r#"{"event":"party"}"#,
    );
    dev.publish(&format!("vigil/v1/{}/status", f.device), "sleepy");

    let (_, body) = v.get(
        &format!(
            "/api/v1/patients/{}/readings?metric=heart_rate&from=2025-11-01T00:00:00Z",
            f.patient
        ),
        &f.token,
    );
    let values: Vec<f64> = body["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_f64().unwrap())
        .collect();
    let expected: Vec<f64> = (0..bad.len()).map(|i| (60 + i) as f64).collect();
    assert_eq!(values, expected, "every good reading stored, in order");

    let (_, rej) = v.get("/api/v1/rejected?limit=1000", &f.token);
    let mut reasons: Vec<String> = rej["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|r| r["reason"].as_str().unwrap().to_string())
        .collect();
    let mut want: Vec<String> = bad.iter().map(|(r, _)| r.to_string()).collect();
    want.extend(["topic_not_allowed", "unknown_event", "bad_status"].map(String::from));
    assert_eq!(reasons, want);
    reasons.sort();
    let metrics = v.metrics();
    for r in reasons.iter().collect::<std::collections::BTreeSet<_>>() {
        let n = reasons.iter().filter(|x| *x == r).count();
        assert!(
            metrics.contains(&format!(
                "vigil_messages_rejected_total{{reason=\"{r}\"}} {n}"
            )),
            "{r} × {n}\n{metrics}"
        );
    }
    // Healthy throughout: ready, and the same connection still works.
    let ready: Value = ureq::get(&v.url("/readyz"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(ready["ready"], true);
    dev.publish(&topic, r#"{"metric":"spo2","value":96}"#);
    assert!(v
        .metrics()
        .contains(&format!("vigil_readings_stored_total {}", bad.len() + 1)));
}
