//! The page behind the "I'm handling it / Tôi đang xử lý" link in family e-mails (issue #5).
//!
//! `GET /ack/{token}` only shows where things stand and a button: mail scanners and link
//! previews open links, and opening must not acknowledge anything. The button `POST`s to the
//! same address, which uses the link (single use, expiring; the store acknowledges the alert as
//! that family contact). No login: the random token in the link is the credential, and no
//! cookie is involved, so there is nothing for a cross-site request to borrow. A used, expired
//! or unknown link gets a plain page in the contact's language, never an error trace; an unknown
//! link reveals nothing about any patient.

use super::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use vigil_domain::display::{self, escape_html as escape};
use vigil_domain::views::{AckLinkStatus, AckLinkView};
use vigil_domain::{AlertState, Lang};

pub fn router() -> Router<AppState> {
    Router::new().route("/ack/{token}", get(show).post(accept))
}

async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    answer(&state, token, false).await
}

async fn accept(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    answer(&state, token, true).await
}

async fn answer(state: &AppState, token: String, accept: bool) -> Response {
    // Tokens are 32 hex digits; anything else is not worth a database look-up.
    let view = if token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
        let t = token.clone();
        match state.call(move |b| b.ack_link(&t, accept)).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "ack link");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Html(page(
                        Lang::Vi,
                        "Vigil",
                        "<p>Hệ thống đang bận, xin thử lại sau ít phút. Nếu cần cấp cứu: gọi 115.</p>\
                         <p lang=\"en\">Vigil is busy; please try again in a few minutes. In an \
                         emergency call 115.</p>",
                    )),
                )
                    .into_response();
            }
        }
    } else {
        AckLinkView::unknown()
    };
    let status = match view.status {
        AckLinkStatus::Valid | AckLinkStatus::Accepted => StatusCode::OK,
        AckLinkStatus::Used | AckLinkStatus::Expired => StatusCode::GONE,
        AckLinkStatus::Unknown => StatusCode::NOT_FOUND,
    };
    (status, Html(render(&view, &token, state.tz))).into_response()
}

fn page(lang: Lang, title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head>\n\
         <body class=\"ack-page\"><main>\n<h1>{}</h1>\n{body}\n</main></body></html>\n",
        lang.as_str(),
        escape(title),
        escape(title)
    )
}

/// Who is on it, when somebody is.
fn handled_by(v: &AckLinkView, lang: Lang, tz: chrono_tz::Tz) -> String {
    match (&v.acknowledged_by, v.acknowledged_at) {
        (Some(by), Some(at)) => match lang {
            Lang::Vi => format!(
                "<p><strong>{}</strong> đã nhận xử lý lúc {}.</p>",
                escape(by),
                display::local_time(at, tz)
            ),
            Lang::En => format!(
                "<p><strong>{}</strong> took this on at {}.</p>",
                escape(by),
                display::local_time(at, tz)
            ),
        },
        _ => String::new(),
    }
}

fn render(v: &AckLinkView, token: &str, tz: chrono_tz::Tz) -> String {
    let lang = v.lang;
    let emergency = match lang {
        Lang::Vi => {
            "<p class=\"emergency\">Nếu người bệnh khó thở, đau ngực, lơ mơ hoặc không \
                     trả lời: gọi cấp cứu <strong>115</strong>.</p>"
        }
        Lang::En => {
            "<p class=\"emergency\">If the patient is short of breath, has chest pain, \
                     is drowsy or does not answer: call the ambulance on <strong>115</strong>.</p>"
        }
    };
    let alert_title = match (v.severity, lang) {
        (Some(s), _) => s.label(lang),
        (None, Lang::Vi) => "Cảnh báo",
        (None, Lang::En) => "Alert",
    };
    let title = format!("{alert_title} — {}", v.patient_name);
    match v.status {
        AckLinkStatus::Unknown => page(
            Lang::Vi,
            "Liên kết không hợp lệ / This link is not valid",
            "<p>Liên kết này không hợp lệ. Nếu người bệnh cần giúp đỡ khẩn cấp, gọi 115.</p>\n\
             <p lang=\"en\">This link is not valid. If the patient needs urgent help, call 115.</p>",
        ),
        AckLinkStatus::Expired => {
            let body = match lang {
                Lang::Vi => "<p>Liên kết này đã hết hạn. Nhân viên y tế vẫn theo dõi cảnh báo \
                             trên hệ thống.</p>",
                Lang::En => "<p>This link has expired. The clinicians still see the alert on \
                             their dashboard.</p>",
            };
            page(lang, &title, &format!("{body}\n{}{emergency}", handled_by(v, lang, tz)))
        }
        AckLinkStatus::Used => {
            let body = match lang {
                Lang::Vi => "<p>Liên kết này đã được dùng (mỗi liên kết chỉ dùng được một lần).</p>",
                Lang::En => "<p>This link has already been used (each link works once).</p>",
            };
            page(lang, &title, &format!("{body}\n{}{emergency}", handled_by(v, lang, tz)))
        }
        AckLinkStatus::Accepted => {
            let ours = v
                .acknowledged_by
                .as_deref()
                .is_some_and(|by| by.starts_with(&v.contact_name));
            let body = match (ours, v.alert_state, lang) {
                (true, _, Lang::Vi) => format!(
                    "<p>Cảm ơn {}. Nhân viên y tế và gia đình đã được báo là quý vị đang xử lý; \
                     sẽ không gửi thêm thư nhắc.</p>",
                    escape(&v.contact_name)
                ),
                (true, _, Lang::En) => format!(
                    "<p>Thank you, {}. The clinicians and the family can see that you are \
                     handling it; no more reminders will be sent.</p>",
                    escape(&v.contact_name)
                ),
                (false, Some(AlertState::Resolved), Lang::Vi) => {
                    "<p>Cảnh báo này đã được xử lý xong.</p>".to_string()
                }
                (false, Some(AlertState::Resolved), Lang::En) => {
                    "<p>This alert has already been resolved.</p>".to_string()
                }
                (false, _, _) => handled_by(v, lang, tz),
            };
            let also = if ours { String::new() } else { handled_by(v, lang, tz) };
            let also = if also == body { String::new() } else { also };
            page(lang, &title, &format!("{body}\n{also}{emergency}"))
        }
        AckLinkStatus::Valid => {
            let body = match (v.alert_state, lang) {
                (Some(AlertState::Open), Lang::Vi) => format!(
                    "<p>Xin chào {}. Nếu quý vị đang lo việc này (đã gọi cho người bệnh, đang \
                     đến nhà, hoặc đã gọi 115), xin bấm nút dưới đây để nhân viên y tế và những \
                     người thân khác biết.</p>\n<form method=\"post\" action=\"/ack/{}\">\
                     <button type=\"submit\" class=\"primary\">Tôi đang xử lý</button></form>",
                    escape(&v.contact_name),
                    escape(token)
                ),
                (Some(AlertState::Open), Lang::En) => format!(
                    "<p>Hello {}. If you are taking care of this (you called the patient, are on \
                     your way, or called 115), press the button so the clinicians and the rest of \
                     the family know.</p>\n<form method=\"post\" action=\"/ack/{}\">\
                     <button type=\"submit\" class=\"primary\">I'm handling it</button></form>",
                    escape(&v.contact_name),
                    escape(token)
                ),
                (Some(AlertState::Resolved), Lang::Vi) => {
                    "<p>Cảnh báo này đã được xử lý xong.</p>".to_string()
                }
                (Some(AlertState::Resolved), Lang::En) => {
                    "<p>This alert has already been resolved.</p>".to_string()
                }
                _ => handled_by(v, lang, tz),
            };
            page(lang, &title, &format!("{body}\n{emergency}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_domain::Severity;

    fn view(status: AckLinkStatus, state: AlertState) -> AckLinkView {
        AckLinkView {
            status,
            lang: Lang::Vi,
            contact_name: "Lan <b>".into(),
            patient_name: "<script>x</script>".into(),
            severity: Some(Severity::Red),
            alert_state: Some(state),
            acknowledged_by: None,
            acknowledged_at: None,
        }
    }

    #[test]
    fn valid_link_offers_a_post_button_and_escapes_names() {
        let html = render(
            &view(AckLinkStatus::Valid, AlertState::Open),
            "0123456789abcdef0123456789abcdef",
            chrono_tz::Asia::Ho_Chi_Minh,
        );
        assert!(html.contains("method=\"post\" action=\"/ack/0123456789abcdef0123456789abcdef\""));
        assert!(html.contains("Tôi đang xử lý"));
        assert!(!html.contains("<script>x"), "{html}");
        assert!(html.contains("Lan &lt;b&gt;"));
        assert!(html.contains("115"));
    }

    #[test]
    fn used_and_unknown_pages_are_plain() {
        let html = render(
            &view(AckLinkStatus::Used, AlertState::Acknowledged),
            "t",
            chrono_tz::Asia::Ho_Chi_Minh,
        );
        assert!(html.contains("đã được dùng"), "{html}");
        assert!(!html.contains("<form"));
        let html = render(&AckLinkView::unknown(), "t", chrono_tz::Asia::Ho_Chi_Minh);
        assert!(html.contains("not valid"));
        assert!(!html.contains("<form"));
    }
}
