//! The gateway's metrics and their `/metrics` page (Prometheus text format 0.0.4), through
//! `prometheus-client` (issue #16): counters and gauges are atomics, cheap on the hot path;
//! labelled counters (rejections by reason, flags, alerts by severity) are families keyed by
//! `&'static str`, so counting allocates nothing. Metric names are a public contract
//! (docs/api.md, `GET /metrics`): counters are registered without `_total`, which the encoder adds, and
//! help texts without a final full stop, which it adds too.

use prometheus_client::encoding::prometheus_text::encode;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use vigil_domain::STORE_DELAY_BUCKETS_S;

/// One label; the value is one of a fixed set (reason codes, flags, severities).
type Label = [(&'static str, &'static str); 1];

/// A gauge of whole numbers that are never negative.
pub type Level = Gauge<u64, AtomicU64>;

pub struct Metrics {
    /// MQTT messages received on a device topic, before any check.
    pub messages_received: Counter,
    /// Readings in accepted messages (a batch counts each reading).
    pub readings_received: Counter,
    /// Readings newly stored.
    pub readings_stored: Counter,
    /// Readings that were already stored (broker redelivery).
    pub readings_duplicate: Counter,
    pub events_stored: Counter,
    pub emails_queued: Counter,
    pub store_errors: Counter,
    pub auth_failures: Counter,
    /// Whether the MQTT side (embedded listener or external connection) is up: 1 or 0.
    pub mqtt_up: Level,
    /// Successful connections to an external broker (more than one means reconnects).
    pub mqtt_connects: Counter,
    /// QoS 0 messages dropped at the intake (issue #19).
    pub qos0_dropped: Counter,
    /// Messages received from an external broker waiting for room in the batcher's channel.
    pub intake_overflow: Level,
    pub intake_overflow_peak: Level,
    /// Raw readings and rollup buckets deleted by retention.
    pub pruned_readings: Counter,
    pub pruned_rollups: Counter,
    /// InfluxDB sink (issue #4): whether it is configured (its metrics are shown only then),
    /// whether the last write succeeded, points forwarded and quarantined, failed requests,
    /// points waiting, age of the oldest.
    pub forward_enabled: AtomicBool,
    pub forward_up: Level,
    pub forwarded_points: Counter,
    pub quarantined_points: Counter,
    pub forward_errors: Counter,
    pub forward_backlog: Level,
    pub forward_lag_seconds: Gauge<f64, AtomicU64>,
    /// FHIR push (issue #18): readings sent, refused for good, waiting; failed requests.
    pub fhir_pushed: Counter,
    pub fhir_quarantined: Counter,
    pub fhir_errors: Counter,
    pub fhir_backlog: Level,
    rejected: Family<Label, Counter>,
    flagged: Family<Label, Counter>,
    alerts_raised: Family<Label, Counter>,
    /// Background duties this gateway does now (issue #20).
    duties: Family<Label, Level>,
    store_delay: Histogram,
    registry: Registry,
    influx: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics {
            messages_received: Counter::default(),
            readings_received: Counter::default(),
            readings_stored: Counter::default(),
            readings_duplicate: Counter::default(),
            events_stored: Counter::default(),
            emails_queued: Counter::default(),
            store_errors: Counter::default(),
            auth_failures: Counter::default(),
            mqtt_up: Level::default(),
            mqtt_connects: Counter::default(),
            qos0_dropped: Counter::default(),
            intake_overflow: Level::default(),
            intake_overflow_peak: Level::default(),
            pruned_readings: Counter::default(),
            pruned_rollups: Counter::default(),
            forward_enabled: AtomicBool::new(false),
            forward_up: Level::default(),
            forwarded_points: Counter::default(),
            quarantined_points: Counter::default(),
            forward_errors: Counter::default(),
            forward_backlog: Level::default(),
            forward_lag_seconds: Gauge::default(),
            fhir_pushed: Counter::default(),
            fhir_quarantined: Counter::default(),
            fhir_errors: Counter::default(),
            fhir_backlog: Level::default(),
            rejected: Family::default(),
            flagged: Family::default(),
            alerts_raised: Family::default(),
            duties: Family::default(),
            store_delay: Histogram::new(STORE_DELAY_BUCKETS_S.iter().copied()),
            registry: Registry::default(),
            influx: Registry::default(),
        };
        m.registered()
    }
}

impl Metrics {
    /// Registers every metric (the registry holds clones: they share the same atomics).
    fn registered(mut self) -> Self {
        let r = &mut self.registry;
        for (name, help, c) in [
            (
                "vigil_mqtt_messages_received",
                "MQTT messages received on device topics",
                &self.messages_received,
            ),
            (
                "vigil_readings_received",
                "Readings in accepted messages",
                &self.readings_received,
            ),
            (
                "vigil_readings_stored",
                "Readings newly stored",
                &self.readings_stored,
            ),
            (
                "vigil_readings_duplicate",
                "Redelivered readings that were already stored",
                &self.readings_duplicate,
            ),
            (
                "vigil_events_stored",
                "Device events stored",
                &self.events_stored,
            ),
            (
                "vigil_store_errors",
                "Messages not acknowledged because the store failed",
                &self.store_errors,
            ),
            (
                "vigil_mqtt_auth_failures",
                "Refused MQTT connections",
                &self.auth_failures,
            ),
            (
                "vigil_mqtt_connects",
                "Connections made to an external MQTT broker (more than one means reconnects)",
                &self.mqtt_connects,
            ),
            (
                "vigil_mqtt_qos0_dropped",
                "QoS 0 messages dropped on arrival because the gateway could not keep up \
                 (external broker, mqtt.qos0_when_full = drop)",
                &self.qos0_dropped,
            ),
            (
                "vigil_retention_readings_deleted",
                "Raw readings deleted by retention (storage.raw_retention_days)",
                &self.pruned_readings,
            ),
            (
                "vigil_retention_rollups_deleted",
                "Rollup buckets deleted by retention",
                &self.pruned_rollups,
            ),
            (
                "vigil_emails_queued",
                "E-mails queued in the outbox since start",
                &self.emails_queued,
            ),
            (
                "vigil_fhir_pushed_readings",
                "Readings the FHIR server took ([fhir] push_url)",
                &self.fhir_pushed,
            ),
            (
                "vigil_fhir_quarantined_readings",
                "Readings the FHIR server refused for good, kept in fhir_quarantine",
                &self.fhir_quarantined,
            ),
            (
                "vigil_fhir_push_errors",
                "Failed requests to the FHIR server (retried)",
                &self.fhir_errors,
            ),
        ] {
            r.register(name, help, c.clone());
        }
        r.register(
            "vigil_messages_rejected",
            "Messages rejected, by reason",
            self.rejected.clone(),
        );
        r.register(
            "vigil_readings_flagged",
            "Stored readings carrying a flag, by flag",
            self.flagged.clone(),
        );
        r.register(
            "vigil_alerts_raised",
            "Alerts opened, by severity",
            self.alerts_raised.clone(),
        );
        r.register(
            "vigil_duty_held",
            "Background duties this gateway does now (1), by duty; with a shared PostgreSQL \
             store each is held by one gateway (docs/scaling.md)",
            self.duties.clone(),
        );
        for (name, help, g) in [
            (
                "vigil_mqtt_intake_overflow",
                "Received messages waiting for the batcher",
                &self.intake_overflow,
            ),
            (
                "vigil_mqtt_intake_overflow_peak",
                "Highest intake overflow since start",
                &self.intake_overflow_peak,
            ),
            (
                "vigil_mqtt_up",
                "Whether the MQTT side is up",
                &self.mqtt_up,
            ),
            (
                "vigil_fhir_backlog_readings",
                "Readings waiting for the FHIR push",
                &self.fhir_backlog,
            ),
        ] {
            r.register(name, help, g.clone());
        }
        r.register(
            "vigil_reading_store_delay_seconds",
            "From a reading's own time to the commit that stored it (readings stamped by their \
             device, without flags): publish to stored when devices stamp as they send",
            self.store_delay.clone(),
        );
        let i = &mut self.influx;
        for (name, help, c) in [
            (
                "vigil_influxdb_forwarded_points",
                "Points InfluxDB accepted (a request sent again after a failure counts again)",
                &self.forwarded_points,
            ),
            (
                "vigil_influxdb_quarantined_points",
                "Points InfluxDB refused for good (4xx), kept in forward_quarantine",
                &self.quarantined_points,
            ),
            (
                "vigil_influxdb_write_errors",
                "Failed write requests (retried)",
                &self.forward_errors,
            ),
        ] {
            i.register(name, help, c.clone());
        }
        i.register(
            "vigil_influxdb_backlog_points",
            "Points stored locally and not yet forwarded",
            self.forward_backlog.clone(),
        );
        i.register(
            "vigil_influxdb_lag_seconds",
            "Age of the oldest point not yet forwarded",
            self.forward_lag_seconds.clone(),
        );
        i.register(
            "vigil_influxdb_up",
            "Whether the last write to InfluxDB succeeded",
            self.forward_up.clone(),
        );
        self
    }

    pub fn reject(&self, reason: &'static str) {
        self.rejected.get_or_create(&[("reason", reason)]).inc();
    }

    /// A reading stored `ms` after its own time. Only readings stamped by their device and on
    /// time (no flag) count: the delay from publish to stored when devices stamp as they send.
    pub fn store_delay(&self, ms: i64) {
        self.store_delay.observe(ms.max(0) as f64 / 1000.0);
    }

    /// A stored reading carrying `flag`. Flags are Vigil's own (vigil-protocol's validation);
    /// anything else counts as `other`, so the label set stays fixed.
    pub fn flagged(&self, flag: &str) {
        let flag = ["late", "clock_skew", "suspect", "ts_received"]
            .into_iter()
            .find(|f| *f == flag)
            .unwrap_or("other");
        self.flagged.get_or_create(&[("flag", flag)]).inc();
    }

    /// Whether this gateway does `duty` now (issue #20).
    pub fn duty_held(&self, duty: &'static str, held: bool) {
        self.duties
            .get_or_create(&[("duty", duty)])
            .set(u64::from(held));
    }

    pub fn alert_raised(&self, severity: &'static str) {
        self.alerts_raised
            .get_or_create(&[("severity", severity)])
            .inc();
    }

    /// Whether the MQTT side is up.
    pub fn mqtt_is_up(&self) -> bool {
        self.mqtt_up.get() == 1
    }

    /// The page; `outbox` is read from the store at scrape time (its metrics are left out
    /// when the store cannot answer).
    pub fn render(&self, outbox: Option<crate::store::outbox::Counts>) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut s, &self.registry);
        if self.forward_enabled.load(Relaxed) {
            let _ = encode(&mut s, &self.influx);
        }
        if let Some(o) = outbox {
            let mut r = Registry::default();
            let n = |v: i64| v.max(0) as u64;
            r.register(
                "vigil_emails_pending",
                "E-mails in the outbox not yet sent",
                ConstGauge::new(n(o.pending)),
            );
            r.register(
                "vigil_emails_retrying",
                "E-mails waiting for another attempt after a failed one",
                ConstGauge::new(n(o.retrying)),
            );
            r.register(
                "vigil_emails_sent",
                "E-mails delivered to the transport",
                ConstCounter::new(n(o.sent)),
            );
            r.register(
                "vigil_emails_undeliverable",
                "E-mails the relay refused for good (5xx), kept in the outbox",
                ConstCounter::new(n(o.undeliverable)),
            );
            let _ = encode(&mut s, &r);
        }
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
        m.readings_stored.inc_by(3);
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
