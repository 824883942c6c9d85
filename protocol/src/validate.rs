//! Validate stage: a decoded reading from a known device → a [`Reading`] in canonical units,
//! or a rejection. Pure: the device record and the receive time are inputs.
//!
//! Rules (issues #2 and #3; clinical reference §2 "Implausible values"): the device kind must
//! allow the metric, the unit must convert to the canonical one (`unknown_unit` otherwise: no
//! guessing), and the value must be physiologically possible. Times are never a reason to lose
//! a reading: one too far in the future, or before [`EARLIEST_PLAUSIBLE`] (a device whose clock
//! was reset to 1970 or 2000; issue #15, finding 8), is stored at the receive time and flagged
//! `clock_skew` (the device's clock is wrong) and evaluated like any live reading; one much
//! older than the receive time is stored at its own time and flagged `late` (a hub flushing
//! its buffer), and raises no real-time alert.

use crate::message::{RawReading, Reject};
use chrono::{DateTime, Duration, Utc};
use vigil_domain::{metric::to_canonical, DeviceKind, Metric, Reading, TsSource};

/// When a reading's time stops being trusted (configurable under `[ingest]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Further in the future than this: the device clock is wrong (`clock_skew`).
    pub max_future_skew: Duration,
    /// Older than this at arrival: a buffered reading (`late`), not a live one.
    pub late_after: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            max_future_skew: Duration::minutes(5),
            late_after: Duration::minutes(60),
        }
    }
}

/// Readings timed before this are a clock fault, not history: no home-monitoring device of
/// Vigil's time measured then, and a reset clock (epoch 0, 2000-01-01 — the defaults of
/// real-time clocks without a battery) would otherwise make a live SpO₂ of 70 % a `late`
/// reading that raises nothing (issue #15, finding 8). 2020-01-01T00:00:00Z in ms.
pub const EARLIEST_PLAUSIBLE_MS: i64 = 1_577_836_800_000;

/// [`EARLIEST_PLAUSIBLE_MS`] as a time.
pub fn earliest_plausible() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(EARLIEST_PLAUSIBLE_MS).expect("a valid constant")
}

impl Timing {
    /// The time to store and the flag to add, if any.
    pub fn place(
        &self,
        ts: DateTime<Utc>,
        received: DateTime<Utc>,
    ) -> (DateTime<Utc>, Option<&'static str>) {
        if ts > received + self.max_future_skew || ts < earliest_plausible() {
            (received, Some("clock_skew"))
        } else if ts < received - self.late_after {
            (ts, Some("late"))
        } else {
            (ts, None)
        }
    }
}

/// The device a message came from, as the registry knows it.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub id: String,
    pub patient_id: String,
    pub kind: DeviceKind,
    /// Integer storage keys of the device and its patient.
    pub num: i64,
    pub patient_num: i64,
}

pub fn validate(
    device: &DeviceInfo,
    raw: Vec<RawReading>,
    received: DateTime<Utc>,
    timing: &Timing,
) -> Result<Vec<Reading>, Reject> {
    let mut out = Vec::with_capacity(raw.len());
    for r in raw {
        out.push(validate_one(device, r, received, timing)?);
    }
    // SBP ≤ DBP in one measurement is a device error (clinical reference §2).
    let find = |m: Metric| out.iter().find(|r| r.metric == m).map(|r| (r.value, r.ts));
    if let (Some((sys, t1)), Some((dia, t2))) =
        (find(Metric::BpSystolic), find(Metric::BpDiastolic))
    {
        if t1 == t2 && sys <= dia {
            return Err(Reject::new(
                "implausible_value",
                "systolic pressure not above diastolic",
            ));
        }
    }
    Ok(out)
}

fn validate_one(
    device: &DeviceInfo,
    raw: RawReading,
    received: DateTime<Utc>,
    timing: &Timing,
) -> Result<Reading, Reject> {
    if !device.kind.allows(raw.metric) {
        return Err(Reject::new(
            "metric_not_allowed",
            format!("a {} does not report {}", device.kind, raw.metric),
        ));
    }
    let value = to_canonical(raw.metric, raw.value, &raw.unit)
        .map_err(|e| Reject::new("unknown_unit", e.to_string()))?;
    let (lo, hi) = raw.metric.plausible_range();
    if !(lo..=hi).contains(&value) {
        return Err(Reject::new(
            "implausible_value",
            format!("{} outside {lo}–{hi} {}", raw.metric, raw.metric.unit()),
        ));
    }
    let mut flags = Vec::new();
    let (ts, ts_source) = match raw.ts {
        Some(t) => match timing.place(t, received) {
            (t, None) => (t, TsSource::Device),
            (t, Some("late")) => {
                flags.push("late".to_string());
                (t, TsSource::Device)
            }
            (t, Some(flag)) => {
                flags.push(flag.to_string());
                (t, TsSource::Received)
            }
        },
        None => {
            flags.push("ts_received".to_string());
            (received, TsSource::Received)
        }
    };
    if raw.metric.is_suspect(value) {
        flags.push("suspect".to_string());
    }
    // Round to what devices resolve; avoids 36.99999 after a °F conversion.
    let value = (value * 100.0).round() / 100.0;
    Ok(Reading {
        device_id: device.id.clone(),
        patient_id: device.patient_id.clone(),
        metric: raw.metric,
        value,
        ts,
        ts_source,
        seq: raw.seq,
        flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn build_device(kind: DeviceKind) -> DeviceInfo {
        DeviceInfo {
            id: "dev-1".into(),
            patient_id: "p-1".into(),
            kind,
            num: 1,
            patient_num: 1,
        }
    }

    fn raw(metric: Metric, value: f64, unit: &str) -> RawReading {
        RawReading {
            metric,
            value,
            unit: unit.into(),
            ts: None,
            seq: None,
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, 0).unwrap()
    }

    #[test]
    fn accepts_and_marks_receive_time() {
        let r = validate(
            &build_device(DeviceKind::PulseOximeter),
            vec![raw(Metric::Spo2, 93.0, "%")],
            now(),
            &Timing::default(),
        )
        .unwrap();
        assert_eq!(r[0].ts, now());
        assert_eq!(r[0].ts_source, TsSource::Received);
        assert_eq!(r[0].flags, vec!["ts_received"]);
        assert_eq!(r[0].patient_id, "p-1");
    }

    #[test]
    fn converts_units() {
        let r = validate(
            &build_device(DeviceKind::Thermometer),
            vec![raw(Metric::Temperature, 101.3, "[degF]")],
            now(),
            &Timing::default(),
        )
        .unwrap();
        assert_eq!(r[0].value, 38.5);
    }

    #[test]
    fn rejects_implausible_and_wrong_kind() {
        let ox = build_device(DeviceKind::PulseOximeter);
        let reason = |d: &DeviceInfo, r: RawReading| {
            validate(d, vec![r], now(), &Timing::default())
                .unwrap_err()
                .reason
        };
        assert_eq!(
            reason(&ox, raw(Metric::Spo2, 101.0, "%")),
            "implausible_value"
        );
        assert_eq!(
            reason(&ox, raw(Metric::HeartRate, 0.0, "/min")),
            "implausible_value"
        );
        assert_eq!(
            reason(&ox, raw(Metric::Weight, 70.0, "kg")),
            "metric_not_allowed"
        );
        assert_eq!(reason(&ox, raw(Metric::Spo2, 93.0, "kg")), "unknown_unit");
        assert_eq!(
            reason(&ox, raw(Metric::Spo2, 93.0, "percent")),
            "unknown_unit"
        );
    }

    #[test]
    fn a_clock_reset_to_1970_or_2000_is_a_clock_fault_not_a_late_reading() {
        let ox = build_device(DeviceKind::PulseOximeter);
        for ts in [
            "1970-01-01T00:00:00Z",
            "2000-01-01T00:00:00Z",
            "2019-12-31T23:59:59Z",
        ] {
            let mut r = raw(Metric::Spo2, 70.0, "%");
            r.ts = Some(ts.parse().unwrap());
            let r = &validate(&ox, vec![r], now(), &Timing::default()).unwrap()[0];
            assert_eq!(r.flags, vec!["clock_skew"], "{ts}");
            assert_eq!((r.ts, r.ts_source), (now(), TsSource::Received), "{ts}");
        }
        // 2020 onwards is history: late.
        let mut r = raw(Metric::Spo2, 70.0, "%");
        r.ts = Some("2020-01-01T00:00:00Z".parse().unwrap());
        let r = &validate(&ox, vec![r], now(), &Timing::default()).unwrap()[0];
        assert_eq!(r.flags, vec!["late"]);
    }

    #[test]
    fn wrong_clocks_and_late_readings_are_stored_and_flagged() {
        let ox = build_device(DeviceKind::PulseOximeter);
        let mut future = raw(Metric::Spo2, 93.0, "%");
        future.ts = Some(now() + Duration::hours(3));
        let r = &validate(&ox, vec![future], now(), &Timing::default()).unwrap()[0];
        assert_eq!(r.ts, now(), "stored at the receive time");
        assert_eq!(r.flags, vec!["clock_skew"]);
        let mut small_skew = raw(Metric::Spo2, 93.0, "%");
        small_skew.ts = Some(now() + Duration::minutes(4));
        let r = &validate(&ox, vec![small_skew], now(), &Timing::default()).unwrap()[0];
        assert!(r.flags.is_empty(), "{:?}", r.flags);
        let mut old = raw(Metric::Spo2, 93.0, "%");
        old.ts = Some(now() - Duration::hours(5));
        let r = &validate(&ox, vec![old], now(), &Timing::default()).unwrap()[0];
        assert_eq!(r.ts, now() - Duration::hours(5), "stored at its own time");
        assert_eq!(r.flags, vec!["late"]);
    }

    #[test]
    fn systolic_must_exceed_diastolic() {
        let bp = build_device(DeviceKind::BpMonitor);
        let err = validate(
            &bp,
            vec![
                raw(Metric::BpSystolic, 80.0, "mm[Hg]"),
                raw(Metric::BpDiastolic, 90.0, "mm[Hg]"),
            ],
            now(),
            &Timing::default(),
        )
        .unwrap_err();
        assert_eq!(err.reason, "implausible_value");
    }

    #[test]
    fn suspect_values_are_kept_and_flagged() {
        let r = validate(
            &build_device(DeviceKind::PulseOximeter),
            vec![raw(Metric::Spo2, 65.0, "%")],
            now(),
            &Timing::default(),
        )
        .unwrap();
        assert!(r[0].flags.contains(&"suspect".to_string()));
    }
}
