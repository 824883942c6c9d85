//! The page templates (issue #6; minijinja, compiled in, HTML auto-escaped: device and user
//! text is data, never markup — docs/architecture.md invariant 7), and rendering them. It
//! depends on no other page module, so the sign-in and family-link pages use it too.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use std::sync::OnceLock;

pub(crate) fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut e = Environment::new();
        // `.html` templates escape every value unless marked safe.
        for (name, src) in [
            ("layout.html", include_str!("../../templates/layout.html")),
            ("ward.html", include_str!("../../templates/ward.html")),
            (
                "ward_body.html",
                include_str!("../../templates/ward_body.html"),
            ),
            (
                "alert_row.html",
                include_str!("../../templates/alert_row.html"),
            ),
            (
                "alerts_table.html",
                include_str!("../../templates/alerts_table.html"),
            ),
            (
                "episode_card.html",
                include_str!("../../templates/episode_card.html"),
            ),
            (
                "episodes.html",
                include_str!("../../templates/episodes.html"),
            ),
            ("inbox.html", include_str!("../../templates/inbox.html")),
            ("patient.html", include_str!("../../templates/patient.html")),
            ("admin.html", include_str!("../../templates/admin.html")),
            ("burden.html", include_str!("../../templates/burden.html")),
            ("alert.html", include_str!("../../templates/alert.html")),
            ("login.html", include_str!("../../templates/login.html")),
            ("ack.html", include_str!("../../templates/ack.html")),
            (
                "red_alerts.html",
                include_str!("../../templates/red_alerts.html"),
            ),
        ] {
            e.add_template(name, src).expect("the template parses");
        }
        e
    })
}

/// Renders `name`, or a plain 500 that is logged (a template error is a bug, not user input).
pub(crate) fn render(name: &str, ctx: minijinja::Value) -> Response {
    let t = std::time::Instant::now();
    match env().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(h) => {
            tracing::debug!(
                template = name,
                ms = t.elapsed().as_secs_f64() * 1e3,
                bytes = h.len(),
                "rendered"
            );
            Html(h).into_response()
        }
        Err(e) => {
            tracing::error!(template = name, error = %e, "template");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Renders `name` to a string for a page that sets its own status. A template error is a bug
/// (the templates are compiled in and tested): logged, and a bare page says so.
pub(crate) fn html(name: &str, ctx: minijinja::Value) -> String {
    env()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .unwrap_or_else(|e| {
            tracing::error!(template = name, error = %e, "template");
            "<!doctype html><title>Vigil</title><p>Lỗi hệ thống / Internal error</p>".into()
        })
}
