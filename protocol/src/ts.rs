//! A reading's `ts` as the contract gives it (issue #2): RFC 3339 text or Unix epoch
//! milliseconds. Shared by the general decoder and the typed fast path.

use crate::message::Reject;
use chrono::{DateTime, TimeZone, Utc};

/// A `ts` given as RFC 3339 text.
pub(crate) fn ts_from_text(s: &str) -> Result<DateTime<Utc>, Reject> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| Reject::new("bad_timestamp", "ts is not RFC 3339"))
}

/// A `ts` given as epoch milliseconds.
pub(crate) fn ts_from_ms(ms: i64) -> Result<DateTime<Utc>, Reject> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map_or_else(not_epoch_ms, Ok)
}

pub(crate) fn not_epoch_ms<T>() -> Result<T, Reject> {
    Err(Reject::new("bad_timestamp", "ts is not epoch milliseconds"))
}
