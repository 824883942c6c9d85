//! Rule evaluation throughput (issue #5: ≥ 1 000 000 readings/s per core). Run with
//! `cargo bench -p vigil-alerting --bench rules`; figures in docs/benchmarks.md.

use chrono::{Duration, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::collections::HashMap;
use std::hint::black_box;
use vigil_alerting::RuleSet;
use vigil_domain::{Metric, Reading, TsSource};

/// 1 000 readings of a patient's vitals in the usual mix (mostly normal, some breaching).
fn readings() -> Vec<Reading> {
    let t0 = Utc::now();
    let metrics = [
        (Metric::Spo2, [97.0, 95.0, 92.0, 88.0]),
        (Metric::HeartRate, [72.0, 88.0, 105.0, 135.0]),
        (Metric::BpSystolic, [128.0, 141.0, 165.0, 185.0]),
        (Metric::Temperature, [36.8, 37.2, 37.9, 39.3]),
        (Metric::RespiratoryRate, [16.0, 19.0, 22.0, 26.0]),
    ];
    (0..1000)
        .map(|i| {
            let (metric, values) = metrics[i % metrics.len()];
            Reading {
                device_id: "dev-1".into(),
                patient_id: "pat-1".into(),
                metric,
                // Three normal readings in four.
                value: values[if i % 4 == 3 { 3 } else { i % 3 }],
                ts: t0 + Duration::seconds(i as i64),
                ts_source: TsSource::Device,
                seq: None,
                flags: vec![],
            }
        })
        .collect()
}

const TIMED: &str = r#"
[[rule]]
id = "spo2_low"
severity = "critical"
metric = "spo2"
below = 90
for = "60s"
clear_at_or_above = 92
clear_for = "2m"
max_gap = "30s"
[[rule]]
id = "spo2_below_target"
severity = "warning"
metric = "spo2"
below = 94
"#;

fn bench(c: &mut Criterion) {
    let readings = readings();
    let mut g = c.benchmark_group("evaluate_reading");
    g.throughput(Throughput::Elements(readings.len() as u64));
    for (name, rules) in [
        ("built-in rules", RuleSet::defaults()),
        ("timed SpO2 rules", RuleSet::from_toml(TIMED).unwrap()),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                HashMap::new,
                |states| {
                    for r in &readings {
                        black_box(rules.evaluate_reading(black_box(r), states));
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
