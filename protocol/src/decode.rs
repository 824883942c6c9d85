//! Decode stage: MQTT topic + payload bytes → a typed message, or a rejection reason.
//!
//! Pure: no I/O, no clock (the receive time is passed in). The contract is `docs/mqtt.md`
//! (issue #2, "The device contract, v1"). Anything this stage cannot make sense of becomes a
//! [`Reject`] with a stable reason code that is logged, counted and stored.

use crate::json::parse_json;
use crate::message::{truncate, Decoded, Limits, RawReading, Reject, MAX_TEXT};
use crate::topic::Channel;
use crate::ts::{not_epoch_ms, ts_from_ms, ts_from_text};
use chrono::{DateTime, Utc};
use serde_json::Value;
use vigil_domain::{EventKind, Metric};

/// Decodes a payload received at `received` (SenML relative times count from it).
pub fn decode(
    channel: Channel,
    payload: &[u8],
    limits: &Limits,
    received: DateTime<Utc>,
) -> Result<Decoded, Reject> {
    if payload.len() > limits.max_payload {
        return Err(Reject::new(
            "payload_too_large",
            format!("{} bytes, limit {}", payload.len(), limits.max_payload),
        ));
    }
    match channel {
        Channel::Status => decode_status(payload),
        // The common shapes typed and borrowed; anything else, or anything to reject, the
        // general way (issue #19).
        Channel::Readings => match crate::fast::readings(payload, limits) {
            Some(d) => Ok(d),
            None => decode_readings(&parse_json(payload)?, limits, received),
        },
        Channel::Events => decode_event(&parse_json(payload)?),
    }
}

fn decode_status(payload: &[u8]) -> Result<Decoded, Reject> {
    // Plain text per the contract; tolerate a JSON string and surrounding whitespace.
    let text = std::str::from_utf8(payload)
        .map_err(|_| Reject::new("bad_status", "not UTF-8"))?
        .trim()
        .trim_matches('"');
    match text {
        "online" => Ok(Decoded::Status { online: true }),
        "offline" => Ok(Decoded::Status { online: false }),
        _ => Err(Reject::new("bad_status", "expected online or offline")),
    }
}

fn decode_readings(v: &Value, limits: &Limits, received: DateTime<Utc>) -> Result<Decoded, Reject> {
    // Detected by shape: a SenML pack is an array, a v1 message an object.
    if let Value::Array(pack) = v {
        let p = crate::senml::decode(pack, received, limits.max_readings)?;
        return Ok(Decoded::Readings {
            readings: p.readings,
            battery: p.battery,
        });
    }
    let obj = v.as_object().ok_or_else(|| {
        Reject::new(
            "malformed_reading",
            "expected a JSON object or a SenML array",
        )
    })?;
    let batch_ts = match obj.get("ts") {
        Some(t) => Some(parse_ts(t)?),
        None => None,
    };
    let battery = battery(obj, "malformed_reading")?;
    if let Some(list) = obj.get("readings") {
        let list = list
            .as_array()
            .ok_or_else(|| Reject::new("malformed_reading", "readings must be an array"))?;
        if list.is_empty() {
            return Err(Reject::new("empty_batch", "readings is empty"));
        }
        if list.len() > limits.max_readings {
            return Err(Reject::new(
                "batch_too_large",
                format!("{} readings, limit {}", list.len(), limits.max_readings),
            ));
        }
        // A batch is all or nothing: a hub resends the whole message, so storing half of it
        // would make the stored state depend on which half failed.
        let readings = list
            .iter()
            .enumerate()
            .map(|(i, r)| {
                decode_one(r, batch_ts).map_err(|mut e| {
                    e.detail = format!("readings[{i}]: {}", e.detail);
                    e
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Decoded::Readings { readings, battery })
    } else {
        Ok(Decoded::Readings {
            readings: vec![decode_one(v, None)?],
            battery,
        })
    }
}

fn decode_one(v: &Value, batch_ts: Option<DateTime<Utc>>) -> Result<RawReading, Reject> {
    let obj = v
        .as_object()
        .ok_or_else(|| Reject::new("malformed_reading", "a reading must be a JSON object"))?;
    let metric_name = obj
        .get("metric")
        .and_then(Value::as_str)
        .ok_or_else(|| Reject::new("malformed_reading", "missing metric"))?;
    let metric: Metric = metric_name.parse().map_err(|_| {
        Reject::new(
            "unknown_metric",
            format!("metric {:?}", truncate(metric_name, 32)),
        )
    })?;
    let value = match obj.get("value") {
        Some(Value::Number(n)) => n.as_f64(),
        _ => None,
    }
    .filter(|v| v.is_finite())
    .ok_or_else(|| Reject::new("bad_value", "value must be a finite number"))?;
    let unit = match obj.get("unit") {
        Some(Value::String(u)) if u.len() <= MAX_TEXT => u.clone(),
        Some(Value::String(_)) => return Err(Reject::new("unknown_unit", "unit is too long")),
        // The unit may be left out when the canonical one is meant.
        None => metric.unit().to_string(),
        Some(_) => return Err(Reject::new("unknown_unit", "unit must be a string")),
    };
    let ts = match obj.get("ts") {
        Some(t) => Some(parse_ts(t)?),
        None => batch_ts,
    };
    let seq = match obj.get("seq") {
        None => None,
        Some(s) => Some(
            s.as_i64()
                .ok_or_else(|| Reject::new("malformed_reading", "seq must be an integer"))?,
        ),
    };
    Ok(RawReading {
        metric,
        value,
        unit,
        ts,
        seq,
    })
}

/// The device's own battery level, in percent (issue #7: devices report it with their
/// readings, as SenML does with `%EL`; issue #21: and with a `battery_low` event).
fn battery(
    obj: &serde_json::Map<String, Value>,
    reason: &'static str,
) -> Result<Option<f64>, Reject> {
    match obj.get("battery") {
        None => Ok(None),
        Some(b) => match b.as_f64() {
            Some(p) if (0.0..=100.0).contains(&p) => Ok(Some(p)),
            _ => Err(Reject::new(
                reason,
                "battery must be a number from 0 to 100",
            )),
        },
    }
}

fn decode_event(v: &Value) -> Result<Decoded, Reject> {
    let obj = v
        .as_object()
        .ok_or_else(|| Reject::new("malformed_event", "expected a JSON object"))?;
    let name = obj
        .get("event")
        .and_then(Value::as_str)
        .ok_or_else(|| Reject::new("malformed_event", "missing event"))?;
    let kind: EventKind = name
        .parse()
        .map_err(|_| Reject::new("unknown_event", format!("event {:?}", truncate(name, 32))))?;
    let ts = match obj.get("ts") {
        Some(t) => Some(parse_ts(t)?),
        None => None,
    };
    let battery = battery(obj, "malformed_event")?;
    Ok(Decoded::Event { kind, ts, battery })
}

/// `ts` is RFC 3339 text or Unix epoch milliseconds (issue #2).
pub fn parse_ts(v: &Value) -> Result<DateTime<Utc>, Reject> {
    match v {
        Value::String(s) => ts_from_text(s),
        Value::Number(n) => n.as_i64().map_or_else(not_epoch_ms, ts_from_ms),
        _ => Err(Reject::new(
            "bad_timestamp",
            "ts must be RFC 3339 text or epoch milliseconds",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn readings(p: &str) -> Vec<RawReading> {
        match decode(
            Channel::Readings,
            p.as_bytes(),
            &Limits::default(),
            Utc::now(),
        ) {
            Ok(Decoded::Readings { readings, .. }) => readings,
            other => panic!("expected readings, got {other:?}"),
        }
    }

    fn reject(channel: Channel, p: &str) -> &'static str {
        match decode(channel, p.as_bytes(), &Limits::default(), Utc::now()) {
            Err(r) => r.reason,
            Ok(d) => panic!("expected a rejection, got {d:?}"),
        }
    }

    #[test]
    fn single_reading_with_rfc3339_time() {
        let r =
            readings(r#"{"metric":"spo2","value":93,"unit":"%","ts":"2026-11-22T08:15:00+07:00"}"#);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].metric, Metric::Spo2);
        assert_eq!(r[0].value, 93.0);
        assert_eq!(r[0].unit, "%");
        assert_eq!(
            r[0].ts.unwrap().to_rfc3339(),
            "2026-11-22T01:15:00+00:00",
            "offset applied"
        );
    }

    #[test]
    fn batch_inherits_time_and_epoch_millis() {
        let r = readings(
            r#"{"ts":1763774100000,"readings":[{"metric":"heart_rate","value":88,"unit":"/min"},
               {"metric":"bp_systolic","value":150,"unit":"mm[Hg]","ts":1763774160000}]}"#,
        );
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].ts.unwrap().timestamp_millis(), 1763774100000);
        assert_eq!(r[1].ts.unwrap().timestamp_millis(), 1763774160000);
    }

    #[test]
    fn missing_time_and_unit_are_allowed() {
        let r = readings(r#"{"metric":"temperature","value":37.2}"#);
        assert_eq!(r[0].ts, None);
        assert_eq!(r[0].unit, "Cel");
    }

    #[test]
    fn rejections_have_stable_reasons() {
        assert_eq!(reject(Channel::Readings, "{not json"), "malformed_json");
        // Issue #15: a key twice is refused, however deep.
        assert_eq!(
            reject(
                Channel::Readings,
                r#"{"metric":"spo2","value":70,"value":97}"#
            ),
            "duplicate_key"
        );
        assert_eq!(
            reject(
                Channel::Readings,
                r#"{"readings":[{"metric":"spo2","metric":"heart_rate","value":70}]}"#
            ),
            "duplicate_key"
        );
        assert_eq!(
            reject(Channel::Events, r#"{"event":"ok","event":"fall"}"#),
            "duplicate_key"
        );
        assert_eq!(reject(Channel::Readings, "[1,2]"), "malformed_senml");
        assert_eq!(reject(Channel::Readings, "42"), "malformed_reading");
        assert_eq!(
            reject(Channel::Readings, r#"{"metric":"mood","value":1}"#),
            "unknown_metric"
        );
        assert_eq!(
            reject(Channel::Readings, r#"{"metric":"spo2","value":"93"}"#),
            "bad_value"
        );
        assert_eq!(
            reject(
                Channel::Readings,
                r#"{"metric":"spo2","value":93,"ts":"yesterday"}"#
            ),
            "bad_timestamp"
        );
        assert_eq!(
            reject(Channel::Readings, r#"{"readings":[]}"#),
            "empty_batch"
        );
        assert_eq!(
            reject(
                Channel::Readings,
                r#"{"readings":[{"metric":"spo2","value":93},{"metric":"x","value":1}]}"#
            ),
            "unknown_metric",
            "one bad reading rejects the batch"
        );
        assert_eq!(
            reject(Channel::Events, r#"{"event":"party"}"#),
            "unknown_event"
        );
        assert_eq!(reject(Channel::Status, "maybe"), "bad_status");
        let big = format!(
            r#"{{"metric":"spo2","value":93,"pad":"{}"}}"#,
            "x".repeat(Limits::default().max_payload)
        );
        assert_eq!(reject(Channel::Readings, &big), "payload_too_large");
    }

    #[test]
    fn a_batch_may_carry_the_battery_level() {
        let d = decode(
            Channel::Readings,
            br#"{"ts":1763774100000,"battery":41,"readings":[{"metric":"spo2","value":95}]}"#,
            &Limits::default(),
            Utc::now(),
        )
        .unwrap();
        assert!(matches!(d, Decoded::Readings { battery: Some(b), .. } if b == 41.0));
        for bad in [r#""41""#, "101", "-1"] {
            let p = format!(r#"{{"battery":{bad},"metric":"spo2","value":95}}"#);
            assert_eq!(reject(Channel::Readings, &p), "malformed_reading", "{bad}");
        }
    }

    #[test]
    fn events_and_status() {
        assert_eq!(
            decode(
                Channel::Events,
                br#"{"event":"fall","ts":1763774100000}"#,
                &Limits::default(),
                Utc::now()
            ),
            Ok(Decoded::Event {
                kind: EventKind::Fall,
                ts: Utc.timestamp_millis_opt(1763774100000).single(),
                battery: None,
            })
        );
        assert_eq!(
            decode(
                Channel::Events,
                br#"{"event":"battery_low","battery":12}"#,
                &Limits::default(),
                Utc::now()
            ),
            Ok(Decoded::Event {
                kind: EventKind::BatteryLow,
                ts: None,
                battery: Some(12.0),
            })
        );
        assert_eq!(
            decode(
                Channel::Events,
                br#"{"event":"battery_low","battery":"low"}"#,
                &Limits::default(),
                Utc::now()
            )
            .unwrap_err()
            .reason,
            "malformed_event"
        );
        assert_eq!(
            decode(Channel::Status, b"offline", &Limits::default(), Utc::now()),
            Ok(Decoded::Status { online: false })
        );
    }

    mod prop {
        //! No input makes the decoder panic (issue #3, "Property tests"). Longer runs: the
        //! `cargo fuzz` target in `fuzz/`.
        use super::super::*;
        use proptest::prelude::*;

        fn json_value() -> impl Strategy<Value = serde_json::Value> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::from),
                any::<i64>().prop_map(serde_json::Value::from),
                any::<f64>().prop_map(serde_json::Value::from),
                "[a-z_%/\\[\\]]{0,12}".prop_map(serde_json::Value::from),
                prop_oneof![
                    Just("spo2"),
                    Just("heart_rate"),
                    Just("temperature"),
                    Just("readings"),
                    Just("metric"),
                    Just("value"),
                    Just("unit"),
                    Just("ts"),
                    Just("fall"),
                ]
                .prop_map(serde_json::Value::from),
            ];
            leaf.prop_recursive(4, 64, 8, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
                    prop::collection::btree_map(
                        prop_oneof![
                            Just("metric".to_string()),
                            Just("value".to_string()),
                            Just("unit".to_string()),
                            Just("ts".to_string()),
                            Just("readings".to_string()),
                            Just("seq".to_string()),
                            Just("event".to_string()),
                            "[a-z]{1,6}",
                        ],
                        inner,
                        0..6,
                    )
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// Decodes `bytes` both ways: what the fast path accepts, the general decoder accepts
        /// identically.
        fn agree(bytes: &[u8]) {
            let limits = Limits::default();
            let received = Utc::now();
            if let Some(fast) = crate::fast::readings(bytes, &limits) {
                let general =
                    parse_json(bytes).and_then(|v| decode_readings(&v, &limits, received));
                assert_eq!(Ok(fast), general, "{}", String::from_utf8_lossy(bytes));
            }
        }

        /// One reading object's text, mostly well formed, sometimes not (unknown metric, a
        /// value as text, a long unit, a bad time, a key twice, an escape, an extra key).
        fn reading_text() -> impl Strategy<Value = String> {
            let metric = prop_oneof![
                6 => prop_oneof![Just("spo2"), Just("heart_rate"), Just("temperature")],
                1 => prop_oneof![Just("mood"), Just("sp\\u006f2")],
            ];
            let value = prop_oneof![
                4 => (0i64..300).prop_map(|v| v.to_string()),
                4 => (0.0f64..300.0).prop_map(|v| v.to_string()),
                1 => prop_oneof![Just(r#""93""#.to_string()), Just("1e400".to_string())],
            ];
            let unit = prop_oneof![
                3 => Just(""),
                3 => prop_oneof![Just(r#","unit":"%""#), Just(r#","unit":"Cel""#)],
                1 => prop_oneof![Just(r#","unit":null"#), Just(r#","unit":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx""#)],
            ];
            let ts = prop_oneof![
                3 => Just(String::new()),
                3 => prop_oneof![
                    (1_600_000_000_000i64..1_900_000_000_000).prop_map(|t| format!(r#","ts":{t}"#)),
                    Just(r#","ts":"2026-11-22T08:15:00+07:00""#.to_string()),
                ],
                1 => prop_oneof![
                    Just(r#","ts":"yesterday""#.to_string()),
                    Just(r#","ts":1.5"#.to_string()),
                    Just(r#","ts":99999999999999999999"#.to_string()),
                ],
            ];
            let seq = prop_oneof![
                3 => Just(String::new()),
                3 => (0i64..1000).prop_map(|n| format!(r#","seq":{n}"#)),
                1 => Just(r#","seq":-1.0"#.to_string()),
            ];
            let odd = prop_oneof![
                8 => Just(""),
                1 => prop_oneof![Just(r#","value":70"#), Just(r#","note":"x""#)],
            ];
            (metric, value, unit, ts, seq, odd).prop_map(|(m, v, u, t, s, o)| {
                format!(r#"{{"metric":"{m}","value":{v}{u}{t}{s}{o}}}"#)
            })
        }

        /// The keys of a batch (or beside a single reading), each at most once.
        fn top_fields() -> impl Strategy<Value = Vec<String>> {
            let ts = prop_oneof![
                2 => Just(None),
                2 => Just(Some(r#""ts":1763774100000"#.to_string())),
                2 => Just(Some(r#""ts":"2026-11-22T01:15:00Z""#.to_string())),
                1 => Just(Some(r#""ts":false"#.to_string())),
            ];
            let battery = prop_oneof![
                2 => Just(None),
                3 => (-5.0f64..110.0).prop_map(|b| Some(format!(r#""battery":{b}"#))),
                1 => Just(Some(r#""battery":"41""#.to_string())),
            ];
            (ts, battery).prop_map(|(t, b)| t.into_iter().chain(b).collect())
        }

        /// The fast path takes the messages devices actually send.
        #[test]
        fn the_usual_messages_take_the_fast_path() {
            let limits = Limits::default();
            for p in [
                r#"{"metric":"spo2","value":93,"unit":"%","ts":1763774100000,"seq":12}"#,
                r#"{"metric":"temperature","value":37.2}"#,
                r#"{"ts":"2026-11-22T08:15:00+07:00","battery":41,"readings":[{"metric":"heart_rate","value":88,"unit":"/min"},{"metric":"spo2","value":95,"ts":1763774160000}]}"#,
            ] {
                assert!(
                    crate::fast::readings(p.as_bytes(), &limits).is_some(),
                    "{p}"
                );
                agree(p.as_bytes());
            }
            for p in [
                r#"[{"bn":"dev-1/","n":"spo2","v":93}]"#,
                r#"["spo2",93]"#,
                r#"{"readings":[["spo2",93]]}"#,
                r#"{"metric":"spo2","value":93,"value":70}"#,
                r#"{"metric":"spo2","value":93,"pad":1}"#,
            ] {
                assert!(
                    crate::fast::readings(p.as_bytes(), &limits).is_none(),
                    "{p}"
                );
            }
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
                for ch in [Channel::Readings, Channel::Events, Channel::Status] {
                    let _ = decode(ch, &bytes, &Limits::default(), Utc::now());
                }
            }

            #[test]
            fn arbitrary_json_never_panics(v in json_value()) {
                let bytes = serde_json::to_vec(&v).unwrap();
                for ch in [Channel::Readings, Channel::Events] {
                    let _ = decode(ch, &bytes, &Limits::default(), Utc::now());
                }
            }

            /// Issue #19: the typed fast path accepts only what the general decoder accepts,
            /// and decodes it the same.
            #[test]
            fn the_fast_path_agrees_with_the_general_decoder(v in json_value()) {
                agree(&serde_json::to_vec(&v).unwrap());
            }

            #[test]
            fn common_shapes_take_the_fast_path_and_agree(
                readings in prop::collection::vec(reading_text(), 1..4),
                batch in any::<bool>(),
                top in top_fields(),
            ) {
                let body = if batch {
                    let mut fields = top;
                    fields.push(format!(r#""readings":[{}]"#, readings.join(",")));
                    format!("{{{}}}", fields.join(","))
                } else {
                    let inner = readings[0].trim_start_matches('{').to_string();
                    match top.is_empty() {
                        true => readings[0].clone(),
                        false => format!("{{{},{inner}", top.join(",")),
                    }
                };
                agree(body.as_bytes());
            }

            #[test]
            fn arbitrary_topics_never_panic(t in "\\PC{0,64}") {
                let _ = crate::topic::parse(&t);
            }
        }
    }
}
