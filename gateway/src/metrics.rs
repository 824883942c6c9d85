//! Counters for `/metrics` (Prometheus text exposition format 0.0.4).
//!
//! Plain atomics: increments happen on the hot path and must not lock. Rejections are counted
//! per reason code; the set of codes is small and fixed by `decode`/`validate`, so a mutex-held
//! map touched only on rejection is fine.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use vigil_domain::STORE_DELAY_BUCKETS_S;

#[derive(Default)]
pub struct Metrics {
    /// MQTT messages received on a device topic, before any check.
    pub messages_received: AtomicU64,
    /// Readings in accepted messages (a batch counts each reading).
    pub readings_received: AtomicU64,
    /// Readings newly stored.
    pub readings_stored: AtomicU64,
    /// Readings that were already stored (broker redelivery).
    pub readings_duplicate: AtomicU64,
    pub events_stored: AtomicU64,
    /// Messages rejected, by reason. A std Mutex: short, never held across `.await`.
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    /// Stored readings carrying a flag (`late`, `clock_skew`, `suspect`, `ts_received`).
    flagged: Mutex<BTreeMap<String, u64>>,
    /// Alerts opened, by severity.
    alerts_raised: Mutex<BTreeMap<&'static str, u64>>,
    pub emails_queued: AtomicU64,
    pub store_errors: AtomicU64,
    pub auth_failures: AtomicU64,
    /// Whether the MQTT side (embedded listener or external connection) is up.
    pub mqtt_up: AtomicBool,
    /// Successful connections to an external broker (more than one means reconnects).
    pub mqtt_connects: AtomicU64,
    /// Messages received from an external broker waiting for room in the batcher's channel.
    pub intake_overflow: AtomicU64,
    pub intake_overflow_peak: AtomicU64,
    /// Raw readings and rollup buckets deleted by retention.
    pub pruned_readings: AtomicU64,
    pub pruned_rollups: AtomicU64,
    /// InfluxDB sink (issue #4): whether it is configured, whether the last write succeeded,
    /// points forwarded and quarantined, failed requests, points waiting, age of the oldest.
    pub forward_enabled: AtomicBool,
    pub forward_up: AtomicBool,
    pub forwarded_points: AtomicU64,
    pub quarantined_points: AtomicU64,
    pub forward_errors: AtomicU64,
    pub forward_backlog: AtomicU64,
    pub forward_lag_ms: AtomicU64,
    /// `vigil_reading_store_delay_seconds`: per bucket of [`STORE_DELAY_BUCKETS_S`] (not
    /// cumulative) and the last for anything above; the sum in milliseconds.
    store_delay: [AtomicU64; STORE_DELAY_BUCKETS_S.len() + 1],
    store_delay_sum_ms: AtomicU64,
}

impl Metrics {
    pub fn reject(&self, reason: &'static str) {
        *self
            .rejected
            .lock()
            .expect("metrics lock never poisoned")
            .entry(reason)
            .or_default() += 1;
    }

    /// A reading stored `ms` after its own time. Only readings stamped by their device and on
    /// time (no flag) count: the delay from publish to stored when devices stamp as they send.
    pub fn store_delay(&self, ms: i64) {
        let ms = ms.max(0);
        let secs = ms as f64 / 1000.0;
        let i = STORE_DELAY_BUCKETS_S
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(STORE_DELAY_BUCKETS_S.len());
        self.store_delay[i].fetch_add(1, Relaxed);
        self.store_delay_sum_ms.fetch_add(ms as u64, Relaxed);
    }

    pub fn flagged(&self, flag: &str) {
        let mut m = self.flagged.lock().expect("metrics lock never poisoned");
        match m.get_mut(flag) {
            Some(n) => *n += 1,
            None => {
                m.insert(flag.to_string(), 1);
            }
        }
    }

    pub fn alert_raised(&self, severity: &'static str) {
        *self
            .alerts_raised
            .lock()
            .expect("metrics lock never poisoned")
            .entry(severity)
            .or_default() += 1;
    }

    /// Renders all counters; `outbox` is read from the store at scrape time.
    pub fn render(&self, outbox: Option<crate::store::outbox::Counts>) -> String {
        let mut s = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            "vigil_mqtt_messages_received_total",
            "MQTT messages received on device topics.",
            self.messages_received.load(Relaxed),
        );
        counter(
            "vigil_readings_received_total",
            "Readings in accepted messages.",
            self.readings_received.load(Relaxed),
        );
        counter(
            "vigil_readings_stored_total",
            "Readings newly stored.",
            self.readings_stored.load(Relaxed),
        );
        counter(
            "vigil_readings_duplicate_total",
            "Redelivered readings that were already stored.",
            self.readings_duplicate.load(Relaxed),
        );
        counter(
            "vigil_events_stored_total",
            "Device events stored.",
            self.events_stored.load(Relaxed),
        );
        counter(
            "vigil_store_errors_total",
            "Messages not acknowledged because the store failed.",
            self.store_errors.load(Relaxed),
        );
        counter(
            "vigil_mqtt_auth_failures_total",
            "Refused MQTT connections.",
            self.auth_failures.load(Relaxed),
        );
        counter(
            "vigil_retention_readings_deleted_total",
            "Raw readings deleted by retention (storage.raw_retention_days).",
            self.pruned_readings.load(Relaxed),
        );
        counter(
            "vigil_retention_rollups_deleted_total",
            "Rollup buckets deleted by retention.",
            self.pruned_rollups.load(Relaxed),
        );
        counter(
            "vigil_emails_queued_total",
            "E-mails queued in the outbox since start.",
            self.emails_queued.load(Relaxed),
        );
        let _ = writeln!(s, "# HELP vigil_messages_rejected_total Messages rejected, by reason.\n# TYPE vigil_messages_rejected_total counter");
        for (reason, n) in self
            .rejected
            .lock()
            .expect("metrics lock never poisoned")
            .iter()
        {
            let _ = writeln!(
                s,
                "vigil_messages_rejected_total{{reason=\"{reason}\"}} {n}"
            );
        }
        let _ = writeln!(s, "# HELP vigil_readings_flagged_total Stored readings carrying a flag, by flag.\n# TYPE vigil_readings_flagged_total counter");
        for (flag, n) in self
            .flagged
            .lock()
            .expect("metrics lock never poisoned")
            .iter()
        {
            let _ = writeln!(s, "vigil_readings_flagged_total{{flag=\"{flag}\"}} {n}");
        }
        let _ = writeln!(s, "# HELP vigil_alerts_raised_total Alerts opened, by severity.\n# TYPE vigil_alerts_raised_total counter");
        for (sev, n) in self
            .alerts_raised
            .lock()
            .expect("metrics lock never poisoned")
            .iter()
        {
            let _ = writeln!(s, "vigil_alerts_raised_total{{severity=\"{sev}\"}} {n}");
        }
        if let Some(o) = outbox {
            let _ = writeln!(s, "# HELP vigil_emails_pending E-mails in the outbox not yet sent.\n# TYPE vigil_emails_pending gauge\nvigil_emails_pending {}", o.pending);
            let _ = writeln!(s, "# HELP vigil_emails_retrying E-mails waiting for another attempt after a failed one.\n# TYPE vigil_emails_retrying gauge\nvigil_emails_retrying {}", o.retrying);
            let _ = writeln!(s, "# HELP vigil_emails_sent_total E-mails delivered to the transport.\n# TYPE vigil_emails_sent_total counter\nvigil_emails_sent_total {}", o.sent);
            let _ = writeln!(s, "# HELP vigil_emails_undeliverable_total E-mails the relay refused for good (5xx), kept in the outbox.\n# TYPE vigil_emails_undeliverable_total counter\nvigil_emails_undeliverable_total {}", o.undeliverable);
        }
        let _ = writeln!(s, "# HELP vigil_mqtt_intake_overflow Received messages waiting for the batcher.\n# TYPE vigil_mqtt_intake_overflow gauge\nvigil_mqtt_intake_overflow {}", self.intake_overflow.load(Relaxed));
        let _ = writeln!(s, "# HELP vigil_mqtt_intake_overflow_peak Highest intake overflow since start.\n# TYPE vigil_mqtt_intake_overflow_peak gauge\nvigil_mqtt_intake_overflow_peak {}", self.intake_overflow_peak.load(Relaxed));
        if self.forward_enabled.load(Relaxed) {
            let _ = writeln!(s, "# HELP vigil_influxdb_forwarded_points_total Points InfluxDB accepted (a request sent again after a failure counts again).\n# TYPE vigil_influxdb_forwarded_points_total counter\nvigil_influxdb_forwarded_points_total {}", self.forwarded_points.load(Relaxed));
            let _ = writeln!(s, "# HELP vigil_influxdb_quarantined_points_total Points InfluxDB refused for good (4xx), kept in forward_quarantine.\n# TYPE vigil_influxdb_quarantined_points_total counter\nvigil_influxdb_quarantined_points_total {}", self.quarantined_points.load(Relaxed));
            let _ = writeln!(s, "# HELP vigil_influxdb_write_errors_total Failed write requests (retried).\n# TYPE vigil_influxdb_write_errors_total counter\nvigil_influxdb_write_errors_total {}", self.forward_errors.load(Relaxed));
            let _ = writeln!(s, "# HELP vigil_influxdb_backlog_points Points stored locally and not yet forwarded.\n# TYPE vigil_influxdb_backlog_points gauge\nvigil_influxdb_backlog_points {}", self.forward_backlog.load(Relaxed));
            let _ = writeln!(s, "# HELP vigil_influxdb_lag_seconds Age of the oldest point not yet forwarded.\n# TYPE vigil_influxdb_lag_seconds gauge\nvigil_influxdb_lag_seconds {:.3}", self.forward_lag_ms.load(Relaxed) as f64 / 1000.0);
            let _ = writeln!(s, "# HELP vigil_influxdb_up Whether the last write to InfluxDB succeeded.\n# TYPE vigil_influxdb_up gauge\nvigil_influxdb_up {}", u8::from(self.forward_up.load(Relaxed)));
        }
        let _ = writeln!(s, "# HELP vigil_mqtt_up Whether the MQTT side is up.\n# TYPE vigil_mqtt_up gauge\nvigil_mqtt_up {}", u8::from(self.mqtt_up.load(Relaxed)));
        let name = "vigil_reading_store_delay_seconds";
        let _ = writeln!(s, "# HELP {name} From a reading's own time to the commit that stored it (readings stamped by their device, without flags): publish to stored when devices stamp as they send.\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, n) in self.store_delay.iter().enumerate() {
            cumulative += n.load(Relaxed);
            match STORE_DELAY_BUCKETS_S.get(i) {
                Some(le) => {
                    let _ = writeln!(s, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
                }
                None => {
                    let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let sum = self.store_delay_sum_ms.load(Relaxed) as f64 / 1000.0;
        let _ = writeln!(s, "{name}_sum {sum:.3}\n{name}_count {cumulative}");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_delay_is_a_cumulative_histogram() {
        let m = Metrics::default();
        for ms in [0, 1, 3, 3, 70, 120_000, -5] {
            m.store_delay(ms);
        }
        let text = m.render(None);
        let name = "vigil_reading_store_delay_seconds";
        assert!(
            text.contains(&format!("{name}_bucket{{le=\"0.001\"}} 3\n")),
            "{text}"
        );
        assert!(text.contains(&format!("{name}_bucket{{le=\"0.005\"}} 5\n")));
        assert!(text.contains(&format!("{name}_bucket{{le=\"0.1\"}} 6\n")));
        assert!(text.contains(&format!("{name}_bucket{{le=\"60\"}} 6\n")));
        assert!(text.contains(&format!("{name}_bucket{{le=\"+Inf\"}} 7\n")));
        assert!(text.contains(&format!("{name}_sum 120.077\n{name}_count 7\n")));
    }

    #[test]
    fn renders_labels() {
        let m = Metrics::default();
        m.reject("malformed_json");
        m.reject("malformed_json");
        m.alert_raised("red");
        m.readings_stored.fetch_add(3, Relaxed);
        let text = m.render(Some(crate::store::outbox::Counts {
            pending: 1,
            sent: 2,
            undeliverable: 1,
            retrying: 0,
        }));
        assert!(
            text.contains("vigil_messages_rejected_total{reason=\"malformed_json\"} 2"),
            "{text}"
        );
        assert!(text.contains("vigil_alerts_raised_total{severity=\"red\"} 1"));
        assert!(text.contains("vigil_readings_stored_total 3"));
        assert!(text.contains("vigil_emails_sent_total 2"));
        assert!(text.contains("vigil_emails_undeliverable_total 1"));
    }
}
