//! Typed, borrowing decoding of the v1 reading shapes devices send nearly always — one reading
//! object, or `{"ts", "battery", "readings": [...]}` — straight from the bytes, without building
//! a `serde_json::Value` tree (issue #19: that tree and its allocations were a sixth of the
//! gateway's CPU while draining a backlog).
//!
//! It only ever *accepts*: anything it does not fully understand — another shape, a key it
//! does not know or sees twice, an escaped string, a value of the wrong type, a reading the
//! general decoder would reject — answers `None`, and [`crate::decode`] runs the general
//! decoder, which gives the rejection its reason and detail. So an accepted message decodes
//! exactly as the general decoder would decode it (a property test holds them to that).

use crate::message::{Decoded, Limits, RawReading, MAX_TEXT};
use crate::ts::{ts_from_ms, ts_from_text};
use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use vigil_domain::Metric;

/// A `ts` as sent: epoch milliseconds or RFC 3339 text.
#[derive(Clone, Copy)]
enum Ts<'a> {
    Ms(i64),
    Text(&'a str),
}

impl Ts<'_> {
    fn time(self) -> Option<DateTime<Utc>> {
        match self {
            Ts::Ms(ms) => ts_from_ms(ms).ok(),
            Ts::Text(s) => ts_from_text(s).ok(),
        }
    }
}

/// The keys of a reading object, or of a batch (`top`: `battery` and `readings` too).
#[derive(Default)]
struct Fields<'a> {
    metric: Option<&'a str>,
    value: Option<f64>,
    unit: Option<&'a str>,
    ts: Option<Ts<'a>>,
    seq: Option<i64>,
    battery: Option<f64>,
    readings: Option<Vec<Fields<'a>>>,
}

/// Gives up on this message (the general decoder takes over); the text is never shown.
fn other<E: de::Error>() -> E {
    E::custom("not the common shape")
}

struct TsVisitor;

impl<'de> Visitor<'de> for TsVisitor {
    type Value = Ts<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("epoch milliseconds or RFC 3339 text")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Ts<'de>, E> {
        Ok(Ts::Ms(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Ts<'de>, E> {
        i64::try_from(v).map(Ts::Ms).map_err(|_| other())
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Ts<'de>, E> {
        Ok(Ts::Text(v))
    }
}

impl<'de> de::Deserialize<'de> for Ts<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TsVisitor)
    }
}

/// An object only (never an array posing as a struct); `top` allows the batch keys.
struct Object {
    top: bool,
}

impl<'de> de::DeserializeSeed<'de> for Object {
    type Value = Fields<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Fields<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Object {
    type Value = Fields<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a reading object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut f = Fields::default();
        // Borrowed: a key with escapes is not the common shape.
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "metric" if f.metric.is_none() => f.metric = Some(map.next_value()?),
                "value" if f.value.is_none() => f.value = Some(map.next_value()?),
                "unit" if f.unit.is_none() => f.unit = Some(map.next_value()?),
                "ts" if f.ts.is_none() => f.ts = Some(map.next_value()?),
                "seq" if f.seq.is_none() => f.seq = Some(map.next_value()?),
                "battery" if self.top && f.battery.is_none() => f.battery = Some(map.next_value()?),
                "readings" if self.top && f.readings.is_none() => {
                    f.readings = Some(map.next_value_seed(Elements)?)
                }
                // A key twice (the general decoder names it: `duplicate_key`) or any other.
                _ => return Err(other()),
            }
        }
        Ok(f)
    }
}

/// The `readings` array: reading objects only.
struct Elements;

impl<'de> de::DeserializeSeed<'de> for Elements {
    type Value = Vec<Fields<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Elements {
    type Value = Vec<Fields<'de>>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of readings")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(f) = seq.next_element_seed(Object { top: false })? {
            out.push(f);
        }
        Ok(out)
    }
}

/// One reading, with the batch's time when it has none of its own; `None` when the general
/// decoder would reject it.
fn reading(f: &Fields<'_>, batch_ts: Option<DateTime<Utc>>) -> Option<RawReading> {
    let metric: Metric = f.metric?.parse().ok()?;
    let value = f.value.filter(|v| v.is_finite())?;
    let unit = match f.unit {
        Some(u) if u.len() <= MAX_TEXT => u.to_string(),
        Some(_) => return None,
        None => metric.unit().to_string(),
    };
    let ts = match f.ts {
        Some(t) => Some(t.time()?),
        None => batch_ts,
    };
    Some(RawReading {
        metric,
        value,
        unit,
        ts,
        seq: f.seq,
    })
}

/// A readings payload in one of the common shapes, decoded; `None`: ask the general decoder.
pub fn readings(payload: &[u8], limits: &Limits) -> Option<Decoded> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let f = de::DeserializeSeed::deserialize(Object { top: true }, &mut de).ok()?;
    de.end().ok()?;
    let batch_ts = match f.ts {
        Some(t) => Some(t.time()?),
        None => None,
    };
    let battery = match f.battery {
        Some(p) if (0.0..=100.0).contains(&p) => Some(p),
        Some(_) => return None,
        None => None,
    };
    let readings = match &f.readings {
        Some(list) if list.is_empty() || list.len() > limits.max_readings => return None,
        Some(list) => list
            .iter()
            .map(|r| reading(r, batch_ts))
            .collect::<Option<Vec<_>>>()?,
        None => vec![reading(&f, None)?],
    };
    Some(Decoded::Readings { readings, battery })
}
