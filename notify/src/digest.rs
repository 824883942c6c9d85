//! Anti-flood for non-critical alerts (issue #5): at most one e-mail per patient per contact per
//! `notify.min_interval_minutes`, grouping what happened meanwhile into one digest, and none in
//! the contact's quiet hours (their local time). Red alerts never come here: they are sent at
//! once and escalate (`escalation`). Pure: the store keeps the waiting items and when each
//! contact last had a digest.
//!
//! Flooded people stop reading (alarm fatigue, clinical reference §6): a clinician watching
//! forty patients needs "three things happened to Mrs Hoa this hour", not three e-mails.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::str::FromStr;

/// A daily quiet period in local time, e.g. `22:00-06:00` (may wrap midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl FromStr for QuietHours {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?}: expected HH:MM-HH:MM, e.g. 22:00-06:00");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let t = |x: &str| NaiveTime::parse_from_str(x.trim(), "%H:%M").map_err(|_| bad());
        let q = QuietHours {
            start: t(a)?,
            end: t(b)?,
        };
        if q.start == q.end {
            return Err(format!("{s:?}: start and end are the same"));
        }
        Ok(q)
    }
}

impl QuietHours {
    /// `None` for an empty setting or `none`.
    pub fn parse_setting(s: &str) -> Result<Option<QuietHours>, String> {
        match s.trim() {
            "" | "none" => Ok(None),
            other => other.parse().map(Some),
        }
    }

    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

/// When a contact's waiting digest may be sent: not before `last_sent + min_interval`, and
/// not in their quiet hours (then at the end of them, in `tz`).
pub fn send_at(
    now: DateTime<Utc>,
    last_sent: Option<DateTime<Utc>>,
    min_interval: Duration,
    quiet: Option<QuietHours>,
    tz: Tz,
) -> DateTime<Utc> {
    let earliest = match last_sent {
        Some(t) if t + min_interval > now => t + min_interval,
        _ => now,
    };
    let Some(q) = quiet else {
        return earliest;
    };
    let local = earliest.with_timezone(&tz);
    if !q.contains(local.time()) {
        return earliest;
    }
    // The end of this quiet period: the first `end` after `local` (tomorrow's once today's
    // has passed, as in 23:00 of a 22:00-06:00 period).
    let mut day = local.date_naive();
    if local.time() >= q.end {
        day = day.succ_opt().expect("not the end of time");
    }
    let end = day.and_time(q.end);
    // A daylight-saving gap swallowing the end time: an hour later exists.
    tz.from_local_datetime(&end)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(end + Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(earliest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, h, m, 0).unwrap()
    }

    const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    #[test]
    fn quiet_hours_parse_and_wrap() {
        let q: QuietHours = "22:00-06:00".parse().unwrap();
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert!(q.contains(t(23, 0)) && q.contains(t(2, 0)) && !q.contains(t(6, 0)));
        assert!(!q.contains(t(12, 0)));
        let day: QuietHours = "12:00-13:30".parse().unwrap();
        assert!(day.contains(t(12, 45)) && !day.contains(t(13, 30)));
        assert!("22-6".parse::<QuietHours>().is_err());
        assert!("08:00-08:00".parse::<QuietHours>().is_err());
        assert_eq!(QuietHours::parse_setting("none"), Ok(None));
    }

    #[test]
    fn one_per_interval() {
        let hour = Duration::minutes(60);
        assert_eq!(send_at(utc(3, 0), None, hour, None, HCM), utc(3, 0));
        assert_eq!(
            send_at(utc(3, 0), Some(utc(2, 30)), hour, None, HCM),
            utc(3, 30)
        );
        assert_eq!(
            send_at(utc(3, 0), Some(utc(1, 0)), hour, None, HCM),
            utc(3, 0)
        );
    }

    #[test]
    fn quiet_hours_are_the_contacts_local_time() {
        let q = Some("22:00-06:00".parse().unwrap());
        let hour = Duration::minutes(60);
        // 16:00 UTC is 23:00 in Ho Chi Minh City: wait for 06:00 there, 23:00 UTC.
        assert_eq!(send_at(utc(16, 0), None, hour, q, HCM), utc(23, 0));
        // 01:00 local (18:00 UTC) too.
        assert_eq!(send_at(utc(18, 0), None, hour, q, HCM), utc(23, 0));
        // 10:00 local: at once.
        assert_eq!(send_at(utc(3, 0), None, hour, q, HCM), utc(3, 0));
        // The same UTC time is mid-afternoon in Berlin: no waiting there.
        assert_eq!(
            send_at(utc(16, 0), None, hour, q, chrono_tz::Europe::Berlin),
            utc(16, 0)
        );
    }
}
