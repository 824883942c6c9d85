//! Strict JSON parsing for device payloads: no key twice in an object.

use crate::message::Reject;
use serde_json::Value;

pub fn parse_json(payload: &[u8]) -> Result<Value, Reject> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let value = serde::Deserialize::deserialize(&mut de)
        .and_then(|UniqueKeys(v)| de.end().map(|()| v))
        .map_err(|e| {
            // serde_json's message names line/column and the kind of error (a duplicate key by
            // its name, which the contract defines), not the content.
            let reason = if e.to_string().starts_with("duplicate key") {
                "duplicate_key"
            } else {
                "malformed_json"
            };
            Reject::new(reason, e.to_string())
        })?;
    Ok(value)
}

/// A JSON value whose objects have no key twice (issue #15, finding 11): with duplicates,
/// `{"value":70,"value":97}` meant whichever the parser kept — here the last, elsewhere the
/// first — so a device and Vigil could disagree about a vital sign. RFC 8259 §4: names
/// "SHOULD be unique"; Vigil requires it.
struct UniqueKeys(Value);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueVisitor).map(UniqueKeys)
    }
}

struct UniqueVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(UniqueVisitor)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(UniqueKeys(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                // The key is the device's text: named only when it is a plain field name.
                let plain =
                    key.len() <= 32 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                return Err(serde::de::Error::custom(if plain {
                    format!("duplicate key {key:?}")
                } else {
                    "duplicate key".to_string()
                }));
            }
            let UniqueKeys(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}
