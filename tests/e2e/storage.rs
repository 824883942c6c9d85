//! Issue #4, local store: rollups answer long ranges, retention prunes raw readings but keeps
//! hour rollups, and `vigil backup` copies a running gateway's store consistently.

use crate::util::{register, Device, Vigil};
use chrono::{DateTime, Duration as Span, DurationRound, SecondsFormat, Utc};
use std::time::{Duration, Instant};

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[test]
fn rollups_retention_and_an_online_backup() {
    let v = Vigil::start_env(&["run"], &[("VIGIL_STORAGE_RAW_RETENTION_DAYS", "30")]);
    let f = register(&v, "pat-hist", "pulse_oximeter");
    let mut dev = Device::connect(v.mqtt, &f.device, &f.password).unwrap();
    let topic = format!("vigil/v1/{}/readings", f.device);
    let hour = |t: DateTime<Utc>| t.duration_trunc(Span::hours(1)).unwrap();
    // Forty days ago (a hub's very old buffer): beyond raw retention, within rollup retention.
    let old = hour(Utc::now() - Span::days(40)) + Span::minutes(10);
    let recent = hour(Utc::now() - Span::hours(3)) + Span::minutes(10);
    for (t, value) in [
        (old, 95),
        (old + Span::seconds(70), 91),
        (recent, 97),
        (recent + Span::seconds(30), 93),
    ] {
        dev.publish(
            &topic,
            &format!(
                r#"{{"metric":"spo2","value":{value},"ts":{}}}"#,
                t.timestamp_millis()
            ),
        );
    }

    // The first retention pass runs a few seconds after start.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !v
        .metrics()
        .contains("vigil_retention_readings_deleted_total 2")
    {
        assert!(
            Instant::now() < deadline,
            "no retention pass:\n{}",
            v.metrics()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let query = |from: DateTime<Utc>, resolution: &str| {
        let (status, body) = v.get(
            &format!(
                "/api/v1/patients/{}/readings?metric=spo2&from={}&resolution={resolution}",
                f.patient,
                rfc3339(from)
            ),
            &f.token,
        );
        assert_eq!(status, 200, "{body}");
        body
    };
    let sixty_days = Utc::now() - Span::days(60);
    // Raw readings: only the recent ones are left.
    let raw = query(sixty_days, "raw");
    let values: Vec<f64> = raw["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, vec![97.0, 93.0], "{raw}");
    // A 60-day range picks hour rollups by itself; the pruned hour is still summarised.
    let auto = query(sixty_days, "auto");
    assert_eq!(auto["resolution"], "hour", "{auto}");
    let b = auto["buckets"].as_array().unwrap();
    assert_eq!(b.len(), 2, "{auto}");
    assert_eq!(b[0]["start"], rfc3339(hour(old)));
    assert_eq!(
        (
            b[0]["count"].as_i64(),
            b[0]["min"].as_f64(),
            b[0]["max"].as_f64(),
            b[0]["avg"].as_f64()
        ),
        (Some(2), Some(91.0), Some(95.0), Some(93.0)),
        "{auto}"
    );
    assert_eq!(
        (b[1]["count"].as_i64(), b[1]["avg"].as_f64()),
        (Some(2), Some(95.0))
    );
    // Minute rollups live as long as raw readings: only the recent minute is left.
    let minutes = query(sixty_days, "minute");
    let m = minutes["buckets"].as_array().unwrap();
    assert_eq!(m.len(), 1, "{minutes}");
    assert_eq!(m[0]["start"], rfc3339(recent));
    // `auto`: the last hour raw, a day in minutes.
    assert_eq!(
        query(Utc::now() - Span::hours(1), "auto")["resolution"],
        "raw"
    );
    assert_eq!(
        query(Utc::now() - Span::hours(24), "auto")["resolution"],
        "minute"
    );
    // Without `resolution` the answer stays the v1 one: raw readings, whatever the span.
    let (_, plain) = v.get(
        &format!(
            "/api/v1/patients/{}/readings?metric=spo2&from={}",
            f.patient,
            rfc3339(sixty_days)
        ),
        &f.token,
    );
    assert_eq!(plain["resolution"], "raw", "{plain}");
    assert_eq!(plain["readings"].as_array().unwrap().len(), 2, "{plain}");
    let (status, _) = v.get(
        &format!(
            "/api/v1/patients/{}/readings?metric=spo2&resolution=weekly",
            f.patient
        ),
        &f.token,
    );
    assert_eq!(status, 400);

    // Backup while the gateway runs and keeps storing.
    let out = v.dir.path().join("backup.db");
    for i in 0..20 {
        let t = Utc::now() - Span::minutes(30) + Span::seconds(i);
        dev.publish(
            &topic,
            &format!(
                r#"{{"metric":"spo2","value":96,"ts":{}}}"#,
                t.timestamp_millis()
            ),
        );
    }
    let report = v.admin(&["backup", "--out", out.to_str().unwrap()]);
    assert_eq!(report["readings"], 22, "{report}");
    let copy = rusqlite::Connection::open(&out).unwrap();
    let (readings, rollups): (i64, i64) = copy
        .query_row(
            "SELECT (SELECT count(*) FROM readings), (SELECT count(*) FROM rollups)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(readings, 22);
    assert!(rollups >= 4, "{rollups}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "health data: owner only");
    }
    // The copy stands alone: no journal files beside it.
    assert!(!v.dir.path().join("backup.db-wal").exists());
}
