//! The patient page's parts as the template reads them, in the page's language (issue #21:
//! rule names, device kinds, units and numbers as people read them, never internal ids).

use super::super::alert_text::{describe, rule_title};
use super::super::charts::{self, Band};
use super::super::view::local;
use super::Window;
use chrono::{DateTime, Utc};
use minijinja::{context, Value};
use std::collections::BTreeMap;
use vigil_domain::display::{decimal, number};
use vigil_domain::views::{
    EventView, LatestValue, PatientThreshold, ReadingBucket, ThresholdOrder,
};
use vigil_domain::words::{device_kind, rule_name};
use vigil_domain::{Alert, Contact, EventKind, Lang, Metric, Severity};

/// The number in a limit such as `< 90` or `≥ 37.8`.
pub(super) fn limit_value(when: &str) -> Option<f64> {
    when.trim_start_matches(['<', '>', '≤', '≥', ' '])
        .parse()
        .ok()
}

/// One chart per measured vital over the window, with the patient's limits and where its
/// alerts opened.
pub(super) fn charts(
    series: &[(Metric, Vec<ReadingBucket>)],
    thresholds: &[PatientThreshold],
    alerts: &[Alert],
    latest: &BTreeMap<String, LatestValue>,
    w: &Window,
    vi: bool,
    tz: chrono_tz::Tz,
) -> Vec<Value> {
    let lang = Lang::pick(vi);
    series
        .iter()
        .map(|(m, buckets)| {
            let bands: Vec<Band> = thresholds
                .iter()
                .filter(|t| t.enabled && t.metric == m.as_str())
                .filter_map(|t| {
                    Some(Band {
                        value: limit_value(&t.when)?,
                        severity: t.severity,
                        below: t.when.starts_with(['<', '≤']),
                        label: decimal(t.when.clone(), vi),
                    })
                })
                .collect();
            let markers: Vec<(DateTime<Utc>, Severity)> = alerts
                .iter()
                .filter(|a| a.metric.as_deref() == Some(m.as_str()))
                .map(|a| (a.opened_at, a.severity))
                .collect();
            let title = m.label(lang);
            let svg = charts::svg(
                &charts::Series {
                    title,
                    unit: m.screen_unit(lang),
                    metric: *m,
                    buckets,
                    bucket_ms: w.bucket_ms,
                },
                w.from,
                w.to,
                &bands,
                &markers,
                vi,
                tz,
            );
            context! {
                metric => m.as_str(),
                title => title,
                // The last reading as the device measured it, not a minute's average.
                latest => latest
                    .get(m.as_str())
                    .map(|v| v.value)
                    .or(buckets.last().map(|b| b.avg))
                    .map(|v| m.screen_value(v, lang)),
                svg => Value::from_safe_string(svg),
            }
        })
        .collect()
}

/// The patient's timeline over the window (issue #21): device events — falls, cancelled ones
/// too, SOS, "I'm OK", low batteries with the device and its level, device errors — and the
/// times a device fell silent, newest first.
pub(super) fn timeline(
    events: &[EventView],
    alerts: &[Alert],
    w: &Window,
    vi: bool,
    tz: chrono_tz::Tz,
) -> Vec<Value> {
    let lang = Lang::pick(vi);
    let clock = |t: DateTime<Utc>| t.with_timezone(&tz).format("%H:%M").to_string();
    let mut out: Vec<(DateTime<Utc>, Value)> = events
        .iter()
        .map(|e| {
            let kind = e.kind.parse::<EventKind>().ok();
            let what = kind.map_or_else(|| e.kind.clone(), |k| k.label(lang).to_string());
            let device = match &e.device_kind {
                Some(k) => format!("{} {}", device_kind(k, lang), e.device_id),
                None => e.device_id.clone(),
            };
            let mut detail = Vec::new();
            if let Some(b) = e.battery {
                let b = number(b.round(), vi);
                detail.push(if vi {
                    format!("còn {b} % pin")
                } else {
                    format!("{b} % battery left")
                });
            }
            if let Some(c) = e.cancelled_at {
                detail.push(if vi {
                    format!("đã hủy: người bệnh báo không sao lúc {}", clock(c))
                } else {
                    format!("cancelled: the patient reported being OK at {}", clock(c))
                });
            }
            let v = context! {
                at => local(tz, e.at),
                kind => &e.kind,
                what => what,
                device => device,
                detail => detail.join("; "),
                cancelled => e.cancelled_at.is_some(),
            };
            (e.at, v)
        })
        .collect();
    for a in alerts
        .iter()
        .filter(|a| a.rule == "device_silent" && a.opened_at >= w.from && a.opened_at <= w.to)
    {
        let detail = match a.resolved_at {
            Some(r) if vi => format!("đến {}", clock(r)),
            Some(r) => format!("until {}", clock(r)),
            None if vi => "chưa có lại số đo".to_string(),
            None => "still silent".to_string(),
        };
        out.push((
            a.opened_at,
            context! {
                at => local(tz, a.opened_at),
                kind => "offline",
                what => describe(a, vi),
                device => a.device_id.clone().unwrap_or_default(),
                detail => detail,
                cancelled => false,
            },
        ));
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.0));
    out.into_iter().map(|(_, v)| v).collect()
}

pub(super) fn alerts(alerts: &[Alert], vi: bool, tz: chrono_tz::Tz) -> Vec<Value> {
    alerts
        .iter()
        .map(|a| {
            context! {
                id => a.id,
                severity => a.severity.as_str(),
                what => describe(a, vi),
                rule_title => rule_title(a, vi),
                time => local(tz, a.opened_at),
                state => a.state.as_str(),
                by => a.acknowledged_by.as_deref().map(|w| super::super::view::actor(w, vi)),
            }
        })
        .collect()
}

pub(super) fn thresholds(rows: &[PatientThreshold], vi: bool) -> Vec<Value> {
    rows.iter()
        .map(|r| {
            context! {
                rule => &r.rule,
                name => rule_name(&r.rule, Lang::pick(vi)),
                severity => r.severity.as_str(),
                enabled => r.enabled,
                when => decimal(r.when.clone(), vi),
                default_when => decimal(r.default_when.clone(), vi),
                order_id => r.order_id,
            }
        })
        .collect()
}

pub(super) fn orders(orders: &[ThresholdOrder], vi: bool, tz: chrono_tz::Tz) -> Vec<Value> {
    orders
        .iter()
        .rev()
        .map(|o| {
            let what = match (o.enabled, o.threshold) {
                (false, _) => if vi { "tắt" } else { "off" }.to_string(),
                (true, Some(v)) => number(v, vi),
                (true, None) => if vi { "mặc định" } else { "default" }.to_string(),
            };
            context! {
                at => local(tz, o.ordered_at),
                rule => rule_name(&o.rule, Lang::pick(vi)),
                what => what,
                by => &o.ordered_by,
                reason => &o.reason,
            }
        })
        .collect()
}

pub(super) fn devices(
    devices: &[vigil_domain::views::DeviceView],
    vi: bool,
    tz: chrono_tz::Tz,
) -> Vec<Value> {
    devices
        .iter()
        .map(|d| {
            context! {
                id => &d.id,
                kind => device_kind(&d.kind, Lang::pick(vi)),
                enabled => d.enabled,
                last_seen => d.last_seen.map(|t| local(tz, t)).unwrap_or_else(|| "—".into()),
                online => d.online,
                battery => d.battery.map(|b| format!("{} %", number(b.round(), vi))).unwrap_or_else(|| "—".into()),
                battery_low => d.battery.is_some_and(|b| b < vigil_domain::views::BATTERY_LOW_PERCENT),
            }
        })
        .collect()
}

pub(super) fn contacts(contacts: &[Contact]) -> Vec<Value> {
    contacts
        .iter()
        .map(|c| {
            context! {
                name => &c.name,
                role => c.role.as_str(),
                tier => c.tier.as_str(),
                email => &c.email,
                phone => &c.phone,
                tel => c.phone.as_deref().map(|p| format!("tel:{}", p.replace(' ', ""))),
                lang => match c.lang { Lang::Vi => "Tiếng Việt", Lang::En => "English" },
            }
        })
        .collect()
}
