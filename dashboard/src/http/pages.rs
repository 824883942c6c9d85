//! The login page and the static assets: the style sheet and the small scripts behind the
//! server-rendered pages (`common.js`: CSRF, language, alert actions; `app.js`: the ward view's
//! live refresh; the tab icons; `patient.js`: the threshold order form; `inbox.js`: the inbox's filters; `admin.js`: the administration forms).

use super::AppState;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Assets are compiled in: one binary, nothing fetched from elsewhere (issue #6: no CDN).
const ASSETS: &[(&str, &str, &str)] = &[
    ("/static/app.css", CSS, include_str!("../../assets/app.css")),
    (
        "/static/common.js",
        JS,
        include_str!("../../assets/common.js"),
    ),
    ("/static/app.js", JS, include_str!("../../assets/app.js")),
    (
        "/static/patient.js",
        JS,
        include_str!("../../assets/patient.js"),
    ),
    (
        "/static/inbox.js",
        JS,
        include_str!("../../assets/inbox.js"),
    ),
    (
        "/static/admin.js",
        JS,
        include_str!("../../assets/admin.js"),
    ),
    // The tab's icon, and its red form while a red alert is unseen (issue #21).
    (
        "/static/icon.svg",
        SVG,
        include_str!("../../assets/icon.svg"),
    ),
    (
        "/static/icon-red.svg",
        SVG,
        include_str!("../../assets/icon-red.svg"),
    ),
];

pub fn router() -> Router<AppState> {
    let mut r = Router::new();
    for (path, mime, body) in ASSETS {
        r = r.route(
            path,
            get(move || async move { ([(header::CONTENT_TYPE, *mime)], *body).into_response() }),
        );
    }
    r
}

/// The sign-in page, with why the last attempt failed (template `login.html`).
pub fn login_html(error: Option<&str>) -> String {
    super::templates::html("login.html", minijinja::context! { error })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_asset_a_template_names_is_served() {
        let templates = [
            include_str!("../../templates/layout.html"),
            include_str!("../../templates/ward.html"),
            include_str!("../../templates/inbox.html"),
            include_str!("../../templates/patient.html"),
            include_str!("../../templates/admin.html"),
            include_str!("../../templates/burden.html"),
            include_str!("../../templates/login.html"),
            include_str!("../../templates/ack.html"),
        ];
        let mut named = 0;
        for t in templates {
            for part in t.split("\"/static/").skip(1) {
                let path = format!("/static/{}", part.split('"').next().unwrap());
                assert!(
                    super::ASSETS.iter().any(|(p, _, _)| *p == path),
                    "{path} is named in a template but not served"
                );
                named += 1;
            }
        }
        assert!(named >= 6, "{named}");
    }

    #[test]
    fn login_error_is_escaped() {
        let html = super::login_html(Some("<script>x</script>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>x"));
    }
}
