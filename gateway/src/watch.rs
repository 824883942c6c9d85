//! The clock-driven rules' loop (issue #5): every 2 s, looks (on a read connection) for devices
//! gone silent or heard again and for daily readings that did not come or came, and raises or
//! resolves their alerts in one write job. The logic is `store::watch`, tested there with a
//! simulated clock.

use crate::ingest::Ingest;
use crate::store::{now_ms, watch};
use std::time::Duration;
use tokio::sync::watch as signal;

/// How often the clock-driven rules are checked; bounds how late such an alert is raised.
const TICK: Duration = Duration::from_secs(2);

pub async fn run(ingest: Ingest, timezone: chrono_tz::Tz, mut shutdown: signal::Receiver<bool>) {
    let rules = ingest.rules.clone();
    if rules.silent_rule().is_none() && rules.expect_by_rules().next().is_none() {
        return shutdown.changed().await.unwrap_or(());
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.changed() => return,
        }
        let now = now_ms();
        let r = rules.clone();
        let plan = match ingest
            .store
            .read(move |c| watch::plan(c, &r, now, timezone))
            .await
        {
            Ok(p) if p.is_empty() => continue,
            Ok(p) => p,
            Err(err) => {
                tracing::warn!(error = %err, "cannot check missing-data and adherence rules");
                continue;
            }
        };
        let (notify, forward) = (ingest.notify.clone(), ingest.forward);
        match ingest
            .store
            .write(move |c| watch::apply(c, &plan, now, &notify, forward))
            .await
        {
            Ok(raised) => {
                tracing::info!(changes = raised.len(), "missing-data and adherence rules");
                ingest.announce(raised);
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot apply missing-data and adherence rules")
            }
        }
    }
}
