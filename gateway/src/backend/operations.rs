//! `/metrics` and `/readyz`: the store, the broker, the outbox, free space, the InfluxDB sink.

use super::*;

impl vigil_dashboard::Operations for StoreBackend {
    fn metrics_text(&self) -> String {
        let outbox = self.store.read_blocking(outbox::counts).ok();
        self.metrics.render(outbox)
    }

    fn readiness(&self) -> Vec<(&'static str, bool)> {
        // With SMTP the directory is unused; the relay's health is reported under `detail`
        // (readings keep flowing while it is down, so it does not make the gateway unready).
        let dir_ok = self.mail_transport == "smtp"
            || std::fs::metadata(&self.outbox_dir)
                .map(|m| m.is_dir() && !m.permissions().readonly())
                .unwrap_or(false);
        // An e-mail set aside in the last hour is a family that was not told: the outbox
        // reports down until an hour has passed without one (issue #15, finding 1). The
        // `notification_failed` alert it raised stays open on the dashboard beyond that.
        let since = crate::store::now_ms() - SET_ASIDE_UNREADY_MS;
        let set_aside = self
            .store
            .read_blocking(move |c| outbox::set_aside_since(c, since))
            .unwrap_or(0);
        let outbox_ok = dir_ok && set_aside == 0;
        // A nearly full disk is not ready either: the next commit may fail, and SQLite's WAL
        // can still take a small probe write while real groups no longer fit (issue #15).
        let room = crate::datadir::free_bytes(&self.data_dir)
            .is_none_or(|free| free >= self.min_free_bytes);
        if !room {
            tracing::error!(
                min_free_mb = self.min_free_bytes >> 20,
                "data directory's filesystem is nearly full: not ready"
            );
        }
        vec![
            ("broker", self.metrics.mqtt_is_up()),
            ("store", room && self.store.is_usable()),
            ("outbox", outbox_ok),
        ]
    }

    fn readiness_detail(&self) -> Vec<(&'static str, serde_json::Value)> {
        let m = &self.metrics;
        let h = self.mail_health.get();
        let counts = self.store.read_blocking(outbox::counts).unwrap_or_default();
        let mut detail = vec![(
            "email",
            serde_json::json!({
                "transport": self.mail_transport,
                "healthy": h.healthy() && counts.undeliverable == 0,
                "consecutive_failures": h.consecutive_failures,
                "last_error": h.last_error,
                "last_success": h.last_success,
                "last_failure": h.last_failure,
                "pending": counts.pending,
                "retrying": counts.retrying,
                "undeliverable": counts.undeliverable,
                "last_set_aside": h.last_set_aside,
            }),
        )];
        if !m.forward_enabled.load(Relaxed) {
            return detail;
        }
        detail.push((
            "influxdb",
            serde_json::json!({
                "up": m.forward_up.get() == 1,
                "backlog_points": m.forward_backlog.get(),
                "lag_seconds": m.forward_lag_seconds.get(),
            }),
        ));
        detail
    }
}
