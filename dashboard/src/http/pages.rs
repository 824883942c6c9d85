//! The HTML pages: login and the dashboard shell. The dashboard is one static page whose
//! script (`/static/app.js`) reads the JSON API and listens to the SSE stream; all data is
//! inserted as text, never as markup (design invariant 7).

use super::auth::{cookie, SESSION_COOKIE};
use super::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use vigil_domain::display::escape_html as escape;

const APP_JS: &str = include_str!("../../assets/app.js");
const APP_CSS: &str = include_str!("../../assets/app.css");
const INDEX_HTML: &str = include_str!("../../assets/index.html");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route(
            "/static/app.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    APP_JS,
                )
            }),
        )
        .route(
            "/static/app.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS) }),
        )
}

async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = cookie(&headers, SESSION_COOKIE) else {
        return Redirect::to("/login").into_response();
    };
    match state.call(move |b| b.session_access(&token)).await {
        Ok(Some(_)) => Html(INDEX_HTML).into_response(),
        Ok(None) => Redirect::to("/login").into_response(),
        Err(e) => e.into_response(),
    }
}

pub fn login_html(error: Option<&str>) -> String {
    let err = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vigil — Đăng nhập / Sign in</title><link rel="stylesheet" href="/static/app.css"></head>
<body class="login"><main>
<h1>Vigil</h1><p class="sub">Theo dõi sức khỏe tại nhà · Home monitoring</p>
{err}
<form method="post" action="/login">
<label>Tên đăng nhập / User name <input name="username" id="username" autocomplete="username" required autofocus></label>
<label>Mật khẩu / Password <input name="password" id="password" type="password" autocomplete="current-password" required></label>
<button type="submit" id="login">Đăng nhập / Sign in</button>
</form></main></body></html>"#
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn login_error_is_escaped() {
        let html = super::login_html(Some("<script>x</script>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>x"));
    }
}
