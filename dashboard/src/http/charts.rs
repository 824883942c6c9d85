//! Server-side SVG charts for the patient page (issue #6: "charts drawn … server-side SVG — no
//! CDN"): per vital, the average line over minute or hour buckets with the min–max envelope,
//! the patient's alert limits as dashed lines coloured by severity with the breaching side
//! shaded (issue #21: threshold bands), a marker where each alert of that vital opened, and
//! each bucket's time and values on hover (an SVG `<title>` per bucket: no script). Only
//! numbers and escaped labels go into the markup.

use chrono::{DateTime, Utc};
use std::fmt::Write as _;
use vigil_domain::display::{escape_html as esc, number as num};
use vigil_domain::views::ReadingBucket;
use vigil_domain::{Metric, Severity};

const W: f64 = 640.0;
const H: f64 = 170.0;
const LEFT: f64 = 46.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 22.0;

/// An alert limit drawn across the chart.
#[derive(Debug, Clone)]
pub struct Band {
    pub value: f64,
    pub severity: Severity,
    /// Whether readings below it breach (`< 90`), else above (`> 130`).
    pub below: bool,
    /// e.g. `< 90`.
    pub label: String,
}

/// One vital's data over the chart's window.
pub struct Series<'a> {
    pub title: &'a str,
    pub unit: &'a str,
    /// Sets the hover values' precision ([`Metric::shown`]).
    pub metric: Metric,
    pub buckets: &'a [ReadingBucket],
    /// The buckets' width (gaps wider than three buckets break the line).
    pub bucket_ms: i64,
}

fn colour(s: Severity) -> &'static str {
    match s {
        Severity::Red => "#b00020",
        Severity::Amber => "#b35c00",
        Severity::Yellow => "#7a6400",
    }
}

fn local(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz).format("%d/%m %H:%M").to_string()
}

/// The chart of `data` over `[from, to]`.
pub fn svg(
    data: &Series,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bands: &[Band],
    markers: &[(DateTime<Utc>, Severity)],
    comma: bool,
    tz: chrono_tz::Tz,
) -> String {
    let Series {
        title,
        unit,
        metric,
        buckets,
        bucket_ms,
    } = *data;
    let (t0, t1) = (from.timestamp_millis() as f64, to.timestamp_millis() as f64);
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for b in buckets {
        lo = lo.min(b.min);
        hi = hi.max(b.max);
    }
    for b in bands {
        // A limit far from the data would squash the line: show the ones within reach.
        if lo.is_finite() && (b.value - (lo + hi) / 2.0).abs() > (hi - lo).max(10.0) * 3.0 {
            continue;
        }
        lo = lo.min(b.value);
        hi = hi.max(b.value);
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(0.5);
    let (lo, hi) = (lo - pad, hi + pad);
    let x = |t: f64| LEFT + (t - t0) / (t1 - t0).max(1.0) * (W - LEFT - RIGHT);
    let y = |v: f64| TOP + (hi - v) / (hi - lo) * (H - TOP - BOTTOM);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" class=\"chart\" \
         role=\"img\" aria-label=\"{}\">",
        esc(title)
    );
    // Axes and value labels.
    let _ = write!(
        s,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\" fill=\"#fafbfc\" stroke=\"#dde3ea\"/>",
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    );
    for v in [lo + pad, (lo + hi) / 2.0, hi - pad] {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#555\">{}</text>",
            LEFT - 4.0,
            y(v) + 3.0,
            esc(&num(metric.shown(v), comma))
        );
    }
    let _ = write!(
        s,
        "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"10\" fill=\"#555\">{}</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#555\">{}</text>",
        H - 6.0,
        esc(&local(from, tz)),
        W - RIGHT,
        H - 6.0,
        esc(&local(to, tz))
    );
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#555\">{}</text>",
        LEFT + 4.0,
        TOP + 11.0,
        esc(unit)
    );
    // Alert limits.
    for b in bands {
        let yy = y(b.value);
        if !(TOP..=H - BOTTOM).contains(&yy) {
            continue;
        }
        let c = colour(b.severity);
        // The breaching side, faintly: a value inside it is outside the patient's limits.
        let (top, bottom) = if b.below { (yy, H - BOTTOM) } else { (TOP, yy) };
        let _ = write!(
            s,
            "<rect x=\"{LEFT}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{c}\" \
             fill-opacity=\"0.06\" class=\"zone zone-{}\"/>",
            W - LEFT - RIGHT,
            bottom - top,
            b.severity.as_str()
        );
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"{c}\" \
             stroke-dasharray=\"4 3\" class=\"band band-{}\"/><text x=\"{:.1}\" y=\"{:.1}\" \
             font-size=\"10\" text-anchor=\"end\" fill=\"{c}\">{}</text>",
            W - RIGHT,
            b.severity.as_str(),
            W - RIGHT - 2.0,
            yy - 2.0,
            esc(&b.label)
        );
    }
    // Envelope and average, broken at gaps.
    let gap = (bucket_ms * 3) as f64;
    let mut runs: Vec<Vec<&ReadingBucket>> = Vec::new();
    let mut last: Option<f64> = None;
    for b in buckets {
        let t = b.start.timestamp_millis() as f64;
        if last.is_none_or(|l| t - l > gap) {
            runs.push(Vec::new());
        }
        runs.last_mut().expect("pushed").push(b);
        last = Some(t);
    }
    let half = bucket_ms as f64 / 2.0;
    for run in &runs {
        let mid = |b: &ReadingBucket| b.start.timestamp_millis() as f64 + half;
        if run.len() > 1 {
            let mut env = String::new();
            for b in run.iter() {
                let _ = write!(env, "{:.1},{:.1} ", x(mid(b)), y(b.max));
            }
            for b in run.iter().rev() {
                let _ = write!(env, "{:.1},{:.1} ", x(mid(b)), y(b.min));
            }
            let _ = write!(
                s,
                "<polygon points=\"{}\" fill=\"#1565c0\" fill-opacity=\"0.12\"/>",
                env.trim_end()
            );
            let line: Vec<String> = run
                .iter()
                .map(|b| format!("{:.1},{:.1}", x(mid(b)), y(b.avg)))
                .collect();
            let _ = write!(
                s,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"#1565c0\" stroke-width=\"1.5\" class=\"avg\"/>",
                line.join(" ")
            );
        } else if let Some(b) = run.first() {
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"#1565c0\" class=\"avg\"/>",
                x(mid(b)),
                y(b.avg)
            );
        }
    }
    // Values on hover: one transparent column per bucket with its time, average and range.
    let column = ((W - LEFT - RIGHT) * bucket_ms as f64 / (t1 - t0).max(1.0)).max(2.0);
    s.push_str("<g class=\"hover\" fill=\"transparent\">");
    for b in buckets {
        let t = b.start.timestamp_millis() as f64 + half;
        let v = |x: f64| num(metric.shown(x), comma);
        let text = if b.min < b.max {
            format!(
                "{}: {} {unit} ({}–{})",
                local(b.start, tz),
                v(b.avg),
                v(b.min),
                v(b.max)
            )
        } else {
            format!("{}: {} {unit}", local(b.start, tz), v(b.avg))
        };
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{TOP}\" width=\"{column:.1}\" height=\"{:.1}\"><title>{}</title></rect>",
            x(t) - column / 2.0,
            H - TOP - BOTTOM,
            esc(&text)
        );
    }
    s.push_str("</g>");
    // Where alerts opened.
    for (t, sev) in markers {
        let xx = x(t.timestamp_millis() as f64);
        if !(LEFT..=W - RIGHT).contains(&xx) {
            continue;
        }
        let _ = write!(
            s,
            "<path d=\"M{:.1},{TOP} l-4,-8 h8 z\" fill=\"{}\" class=\"marker\"/><line x1=\"{xx:.1}\" \
             x2=\"{xx:.1}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"{}\" stroke-opacity=\"0.35\"/>",
            xx,
            colour(*sev),
            H - BOTTOM,
            colour(*sev)
        );
    }
    s.push_str("</svg>");
    s
}

/// A ward-view sparkline (issue #6): the hourly averages of one vital over `[from, to]` as a
/// small line, scaled to its own range; `label` (e.g. `SpO₂ 24 h: 93–97`) is escaped into its
/// title. Coordinates are whole numbers in a box twice the drawn size: a thousand rows render
/// in a few milliseconds (float formatting was most of the ward view's time).
pub fn sparkline(
    label: &str,
    points: &[(DateTime<Utc>, f64)],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Option<String> {
    const SW: i64 = 192;
    const SH: i64 = 48;
    let last = points.last()?;
    let (t0, t1) = (from.timestamp_millis(), to.timestamp_millis());
    let span_t = (t1 - t0).max(1) as f64;
    let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let flat = hi - lo < 1e-9;
    let xy = |(t, v): &(DateTime<Utc>, f64)| {
        let x = ((t.timestamp_millis() - t0) as f64 / span_t * SW as f64).round() as i64;
        // A flat series sits in the middle; otherwise 4 units of margin top and bottom.
        let y = if flat {
            SH / 2
        } else {
            (SH as f64 - 4.0 - (v - lo) / (hi - lo) * (SH as f64 - 8.0)).round() as i64
        };
        (x.clamp(0, SW), y)
    };
    let mut line = String::with_capacity(points.len() * 8);
    for p in points {
        let (x, y) = xy(p);
        if !line.is_empty() {
            line.push(' ');
        }
        let _ = write!(line, "{x},{y}");
    }
    let (cx, cy) = xy(last);
    Some(format!(
        r#"<svg class="spark" viewBox="0 0 {SW} {SH}" width="{}" height="{}" role="img"><title>{}</title><polyline points="{line}"/><circle cx="{cx}" cy="{cy}" r="3.5"/></svg>"#,
        SW / 2,
        SH / 2,
        esc(label),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn bucket(min: i64, avg: f64) -> ReadingBucket {
        ReadingBucket {
            start: Utc.timestamp_millis_opt(min * 60_000).unwrap(),
            count: 1,
            avg,
            min: avg - 1.0,
            max: avg + 1.0,
            unit: "%",
        }
    }

    #[test]
    fn draws_line_bands_and_markers_and_breaks_at_gaps() {
        let b: Vec<_> = [0, 1, 2, 10, 11].iter().map(|m| bucket(*m, 95.0)).collect();
        let from = Utc.timestamp_millis_opt(0).unwrap();
        let to = Utc.timestamp_millis_opt(12 * 60_000).unwrap();
        let s = svg(
            &Series {
                title: "SpO₂ <x>",
                unit: "%",
                metric: Metric::Spo2,
                buckets: &b,
                bucket_ms: 60_000,
            },
            from,
            to,
            &[Band {
                value: 90.0,
                severity: Severity::Red,
                below: true,
                label: "< 90".into(),
            }],
            &[(Utc.timestamp_millis_opt(5 * 60_000).unwrap(), Severity::Red)],
            true,
            chrono_tz::Asia::Ho_Chi_Minh,
        );
        assert_eq!(s.matches("<polyline").count(), 2, "a gap breaks the line");
        assert!(s.contains("band-red") && s.contains("&lt; 90"));
        assert!(s.contains("class=\"marker\""));
        assert!(s.contains("SpO₂ &lt;x&gt;") && !s.contains("<x>"));
        // The breaching side is shaded below the limit; every bucket has its values on hover.
        assert!(s.contains("class=\"zone zone-red\""));
        assert_eq!(s.matches("<title>").count(), 5);
        assert!(
            s.contains("<title>01/01 08:00: 95 % (94–96)</title>"),
            "{s}"
        );
    }

    #[test]
    fn no_data_is_an_empty_frame() {
        let t = Utc::now();
        let data = Series {
            title: "x",
            unit: "%",
            metric: Metric::Spo2,
            buckets: &[],
            bucket_ms: 60_000,
        };
        let s = svg(&data, t, t, &[], &[], false, chrono_tz::UTC);
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(!s.contains("polyline"));
    }

    #[test]
    fn sparkline_scales_to_its_box_and_escapes_its_label() {
        let from = Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap();
        let to = from + chrono::Duration::hours(24);
        let pts = [
            (from, 90.0),
            (from + chrono::Duration::hours(12), 95.0),
            (to, 100.0),
        ];
        let svg = sparkline("<b>SpO₂</b>", &pts, from, to).unwrap();
        assert!(svg.contains(r#"points="0,44 96,24 192,4""#), "{svg}");
        assert!(svg.contains(r#"cx="192" cy="4""#), "{svg}");
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"), "{svg}");
        assert!(sparkline("x", &[], from, to).is_none());
        let flat = sparkline("x", &[(from, 5.0), (to, 5.0)], from, to).unwrap();
        assert!(flat.contains(r#"points="0,24 192,24""#), "{flat}");
    }
}
