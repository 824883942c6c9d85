//! The InfluxDB sink (issue #4): ships the store-and-forward queue (`store::forward`) to
//! InfluxDB's v2 write API with the `influxdb2` crate, gzip-compressed, millisecond precision.
//!
//! - Oldest rows first, up to `influxdb.batch_size` points per request; the rows are deleted
//!   (the watermark moves) only after the server answered 2xx, in a write job, so a crash or a
//!   restart resends at most the request in flight — harmless, InfluxDB overwrites a point with
//!   the same series and time.
//! - Network errors, timeouts, 5xx, 401/403/404 (a token or bucket problem the operator fixes),
//!   408, 413 and 429: nothing is dropped; retry with exponential backoff (200 ms … 30 s).
//! - Any other 4xx: the server refuses these points for good; they move to
//!   `forward_quarantine` with the server's answer, so they never block the rest.
//! - Up to four requests are in flight, answered in queue order, so a backlog drains as fast
//!   as the server takes it; ingestion meanwhile keeps committing (the forwarder only reads and
//!   deletes). After a failure it starts again from the watermark: points that were in flight
//!   may be sent twice, which InfluxDB absorbs (same series and time overwrite).

use crate::config::InfluxConfig;
use crate::metrics::Metrics;
use crate::retry;
use crate::store::{forward, now_ms, StoreHandle};
use anyhow::Context as _;
use influxdb2::api::write::TimestampPrecision;
use influxdb2::models::WriteDataPoint;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A chunk of pre-encoded line protocol, handed to `influxdb2` as one "point".
struct Lines(String);

impl WriteDataPoint for Lines {
    fn write_data_point_to<W: std::io::Write>(&self, mut w: W) -> std::io::Result<()> {
        w.write_all(self.0.as_bytes())
    }
}

/// Builds the client: gzip (unless `influxdb.gzip = false`), the configured timeout, and the
/// private CA when given.
pub fn client(cfg: &InfluxConfig) -> anyhow::Result<influxdb2::Client> {
    let http = crate::http_client::builder("influxdb", cfg.timeout_seconds, &cfg.ca_file)?;
    let token = cfg.token()?;
    reqwest::Url::parse(&cfg.url).context("influxdb.url is not a URL")?;
    let mut builder = influxdb2::ClientBuilder::with_builder(http, &cfg.url, &cfg.org, token);
    if cfg.gzip {
        builder = builder.gzip(true);
    }
    builder.build().context("cannot build the InfluxDB client")
}

/// What to do after a failed request.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// Keep the points and try again later.
    Retry,
    /// The server will never take these points.
    Quarantine(u16),
}

fn classify(err: &influxdb2::RequestError) -> Failure {
    match err {
        influxdb2::RequestError::Http { status, .. } => {
            let code = status.as_u16();
            let operator_fixable = matches!(code, 401 | 403 | 404 | 408 | 413 | 429);
            if status.is_client_error() && !operator_fixable {
                Failure::Quarantine(code)
            } else {
                Failure::Retry
            }
        }
        _ => Failure::Retry,
    }
}

/// Refreshes the backlog gauges from the queue.
async fn observe_backlog(store: &StoreHandle, metrics: &Metrics) {
    if let Ok((points, oldest)) = store.read(forward::backlog).await {
        metrics.forward_backlog.set(points.max(0) as u64);
        let lag = oldest.map_or(0, |t| (now_ms() - t).max(0));
        metrics.forward_lag_seconds.set(lag as f64 / 1000.0);
    }
}

/// Requests in flight at once: one at a time left both the gateway and the server mostly
/// waiting on each other (docs/benchmarks.md).
const PIPELINE: usize = 4;

type Sent = (forward::Chunk, Result<(), influxdb2::RequestError>);

fn send(
    client: &influxdb2::Client,
    bucket: &str,
    chunk: forward::Chunk,
) -> impl std::future::Future<Output = Sent> + Send + 'static {
    let (client, bucket) = (client.clone(), bucket.to_string());
    async move {
        // The body takes the lines; the chunk keeps its ids and count for the answer.
        let mut chunk = chunk;
        let body = futures::stream::iter(vec![Lines(std::mem::take(&mut chunk.lines))]);
        let r = client
            .write_with_precision(&bucket, body, TimestampPrecision::Milliseconds)
            .await;
        (chunk, r)
    }
}

pub async fn run(
    store: StoreHandle,
    cfg: InfluxConfig,
    client: influxdb2::Client,
    metrics: Arc<Metrics>,
    duty: crate::duty::Duty,
    mut shutdown: watch::Receiver<bool>,
) {
    use futures::stream::{FuturesOrdered, StreamExt};
    let idle = Duration::from_millis(u64::from(cfg.flush_interval_ms));
    let max = i64::from(cfg.batch_size);
    let mut delays = retry::influx();
    let mut failing = false;
    // Requests in flight, answered in queue order; `taken` is the last queue id handed out.
    let mut inflight: FuturesOrdered<_> = FuturesOrdered::new();
    // The oldest point's time of each request in flight, in the same order: after an answer,
    // the next one's is the age of the backlog (the full count is only re-read when idle).
    let mut oldest: std::collections::VecDeque<i64> = std::collections::VecDeque::new();
    let mut taken = 0i64;
    metrics.forward_enabled.store(true, Relaxed);
    loop {
        if inflight.is_empty() {
            observe_backlog(&store, &metrics).await;
        }
        // Several gateways: the lease holder forwards (issue #20); another starts again from
        // the watermark.
        let on_duty = duty.held().await;
        if !on_duty {
            taken = 0;
        }
        while on_duty && inflight.len() < PIPELINE {
            match store
                .read(move |c| forward::next_chunk_after(c, taken, max))
                .await
            {
                Ok(Some(chunk)) => {
                    taken = chunk.last_id;
                    oldest.push_back(chunk.oldest_ms);
                    inflight.push_back(send(&client, &cfg.bucket, chunk));
                }
                Ok(None) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read the forward queue");
                    break;
                }
            }
        }
        if inflight.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(idle) => continue,
                _ = shutdown.changed() => return,
            }
        }
        let (chunk, sent) = tokio::select! {
            Some(done) = inflight.next() => done,
            _ = shutdown.changed() => return,
        };
        let last = chunk.last_id;
        oldest.pop_front();
        if sent.is_ok() || matches!(sent.as_ref().map_err(classify), Err(Failure::Quarantine(_))) {
            // Gone from the queue either way: keep the gauges moving during a long drain
            // (they were refreshed only when the forwarder was idle).
            let points = chunk.points.max(0) as u64;
            let _ = metrics
                .forward_backlog
                .inner()
                .fetch_update(Relaxed, Relaxed, |b| Some(b.saturating_sub(points)));
            if let Some(next) = oldest.front() {
                metrics
                    .forward_lag_seconds
                    .set((now_ms() - next).max(0) as f64 / 1000.0);
            }
        }
        match sent {
            Ok(()) => {
                // Answers come in queue order, so everything up to `last` is in the server.
                if let Err(err) = store.write(move |c| forward::forwarded(c, last)).await {
                    // Sent but not marked: it is sent again later, which InfluxDB absorbs.
                    tracing::warn!(error = %err, "cannot advance the forward watermark");
                }
                metrics.forwarded_points.inc_by(chunk.points as u64);
                metrics.forward_up.set(1);
                if failing {
                    tracing::info!("InfluxDB reachable again; draining the backlog");
                    delays = retry::influx();
                    failing = false;
                }
            }
            Err(err) => match classify(&err) {
                Failure::Quarantine(status) => {
                    let reason: String = err.to_string().chars().take(500).collect();
                    tracing::warn!(status, points = chunk.points, reason = %reason, "InfluxDB refused points; quarantined");
                    let now = now_ms();
                    let points = chunk.points;
                    if let Err(e) = store
                        .write(move |conn| forward::quarantine(conn, &chunk, status, &reason, now))
                        .await
                    {
                        tracing::warn!(error = %e, "cannot quarantine points");
                    }
                    metrics.quarantined_points.inc_by(points as u64);
                }
                Failure::Retry => {
                    metrics.forward_up.set(0);
                    metrics.forward_errors.inc_by(1);
                    // Start again from the watermark: requests still in flight may succeed or
                    // not; what they carried stays queued and is sent again (harmless).
                    inflight = FuturesOrdered::new();
                    oldest.clear();
                    taken = 0;
                    let wait = delays.next().expect("endless");
                    failing = true;
                    tracing::warn!(error = %err, retry_in_ms = wait.as_millis() as u64, points = chunk.points, "cannot write to InfluxDB; keeping the points");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(code: u16) -> influxdb2::RequestError {
        influxdb2::RequestError::Http {
            status: reqwest::StatusCode::from_u16(code).unwrap(),
            text: String::new(),
        }
    }

    #[test]
    fn only_permanent_client_errors_quarantine() {
        assert_eq!(classify(&http(400)), Failure::Quarantine(400));
        assert_eq!(classify(&http(422)), Failure::Quarantine(422));
        for code in [401, 403, 404, 408, 413, 429, 500, 503] {
            assert_eq!(classify(&http(code)), Failure::Retry, "{code}");
        }
    }

    /// The run loop against a stand-in server (a unit test: the end-to-end tests use a real
    /// VictoriaMetrics, which never answers 4xx to well-formed lines). Rows whose lines name
    /// patient `refused` get a 400, as InfluxDB answers a field type conflict; the others 204.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refused_rows_are_quarantined_and_the_rest_still_arrive() {
        use crate::store::testing::TempStore;
        use axum::{http::StatusCode, routing::post, Router};
        use std::sync::Mutex;

        let received = Arc::new(Mutex::new(Vec::<String>::new()));
        let app = Router::new().route(
            "/api/v2/write",
            post({
                let received = received.clone();
                move |body: String| async move {
                    if body.contains("patient_id=refused") {
                        return (
                            StatusCode::BAD_REQUEST,
                            r#"{"code":"invalid","message":"field type conflict"}"#,
                        );
                    }
                    received.lock().unwrap().push(body);
                    (StatusCode::NO_CONTENT, "")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let t = tokio::task::spawn_blocking(TempStore::new).await.unwrap();
        // Five queue rows, one event line each: p1, refused, p1, refused, p1.
        for (i, patient) in ["p1", "refused", "p1", "refused", "p1"].iter().enumerate() {
            let patient = patient.to_string();
            t.store
                .write(move |c| {
                    let mut b = forward::Batch::default();
                    b.event(&patient, "d1", "fall", 1_000 + i as i64);
                    b.enqueue(c, 0)
                })
                .await
                .unwrap();
        }
        let cfg = InfluxConfig {
            url: format!("http://{addr}"),
            org: "o".into(),
            bucket: "b".into(),
            token: "t".into(),
            batch_size: 1, // one row per request
            flush_interval_ms: 20,
            gzip: false,
            ..InfluxConfig::default()
        };
        let metrics = Arc::new(Metrics::default());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(
            t.store.clone(),
            cfg.clone(),
            client(&cfg).unwrap(),
            metrics.clone(),
            crate::duty::Duties::new(&t.store).duty("influxdb"),
            stopped,
        ));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while t.store.read(forward::backlog).await.unwrap().0 > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the queue never emptied"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.send(true).unwrap();
        task.await.unwrap();

        let got = received.lock().unwrap().clone();
        // Requests in flight together may reach the server in any order; each arrived once.
        let mut times: Vec<&str> = got
            .iter()
            .map(|b| b.trim_end().rsplit(' ').next().unwrap())
            .collect();
        times.sort();
        assert_eq!(times, ["1000", "1002", "1004"], "{got:?}");
        let quarantined: Vec<(i64, i64, String)> = t
            .store
            .read(|c| {
                let mut st =
                    c.prepare("SELECT id, status, reason FROM forward_quarantine ORDER BY id")?;
                let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(quarantined.len(), 2, "{quarantined:?}");
        assert_eq!((quarantined[0].0, quarantined[0].1), (2, 400));
        assert_eq!((quarantined[1].0, quarantined[1].1), (4, 400));
        assert!(
            quarantined[0].2.contains("field type conflict"),
            "{quarantined:?}"
        );
        assert_eq!(metrics.quarantined_points.get(), 2);
        assert_eq!(metrics.forwarded_points.get(), 3);
        assert_eq!(
            metrics.forward_errors.get(),
            0,
            "a refusal is not an outage"
        );
    }
}
