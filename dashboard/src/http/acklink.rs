//! The page behind the "I'm handling it / Tôi đang xử lý" link in family e-mails (issue #5).
//!
//! `GET /ack/{token}` only shows where things stand and a button: mail scanners and link
//! previews open links, and opening must not acknowledge anything. The button `POST`s to the
//! same address, which uses the link (single use, expiring; the store acknowledges the alert as
//! that family contact). No login: the random token in the link is the credential, and no
//! cookie is involved, so there is nothing for a cross-site request to borrow. A used, expired
//! or unknown link gets a plain page in the contact's language, never an error trace; an unknown
//! link reveals nothing about any patient.

use super::templates;
use super::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use minijinja::context;
use vigil_domain::display;
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
                return (StatusCode::SERVICE_UNAVAILABLE, Html(busy())).into_response();
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

/// The page for one link, as HTML (template `ack.html`; every name escaped).
fn render(v: &AckLinkView, token: &str, tz: chrono_tz::Tz) -> String {
    let lang = v.lang;
    let alert_title = match (v.severity, lang) {
        (Some(s), _) => s.label(lang),
        (None, Lang::Vi) => "Cảnh báo",
        (None, Lang::En) => "Alert",
    };
    let title = format!("{alert_title} — {}", v.patient_name);
    let resolved = v.alert_state == Some(AlertState::Resolved);
    // What the page says, and whether it names who took the alert on.
    let (case, with_handler) = match v.status {
        AckLinkStatus::Unknown => ("unknown", false),
        AckLinkStatus::Expired => ("expired", true),
        AckLinkStatus::Used => ("used", true),
        AckLinkStatus::Accepted => {
            // Their answer is on the episode (issue #17), or, for an alert from before
            // episodes, their acknowledgement.
            let ours = v.responded
                || v.acknowledged_by
                    .as_deref()
                    .is_some_and(|by| by.starts_with(&v.contact_name));
            match (ours, resolved) {
                (true, _) => ("thanks", false),
                (false, true) => ("resolved", true),
                (false, false) => ("", true),
            }
        }
        AckLinkStatus::Valid => match v.alert_state {
            Some(AlertState::Open) => ("offer", false),
            Some(AlertState::Resolved) => ("resolved", false),
            _ => ("", true),
        },
    };
    let (lang, title) = if case == "unknown" {
        // An unknown link reveals nothing, not even a language.
        (
            Lang::Vi,
            "Liên kết không hợp lệ / This link is not valid".to_string(),
        )
    } else {
        (lang, title)
    };
    // Who is on it: a clinician's acknowledgement, else the family's answer (issue #17).
    let family = v.family_response.as_ref().map(|r| (r.name.as_str(), r.at));
    let handler = with_handler
        .then(|| {
            v.acknowledged_by
                .as_deref()
                .zip(v.acknowledged_at)
                .or(family)
        })
        .flatten();
    templates::html(
        "ack.html",
        context! {
            lang => lang.as_str(),
            title,
            case,
            contact => v.contact_name,
            token,
            handled_by => handler.map(|(by, _)| by),
            handled_at => handler.map(|(_, at)| display::local_time(at, tz)),
            station => v.station_phone.as_deref(),
            signs => if matches!(v.status, AckLinkStatus::Unknown) {
                Vec::new()
            } else {
                v.signs
                    .iter()
                    .map(|(text, at)| format!("{text} ({})", display::local_time(*at, tz)))
                    .collect::<Vec<_>>()
            },
            station_tel => v.station_phone.as_deref().map(vigil_domain::text::tel_uri),
        },
    )
}

/// The page when the store cannot answer: both languages, since the contact is not known.
fn busy() -> String {
    templates::html(
        "ack.html",
        context! { lang => "vi", title => "Vigil", case => "busy" },
    )
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
            responded: false,
            family_response: None,
            station_phone: Some("028 3855 1234".into()),
            signs: vec![(
                "Oxy trong máu (SpO₂): 84 % — bình thường 95–100 %".into(),
                chrono::DateTime::parse_from_rfc3339("2026-12-05T01:15:00Z")
                    .unwrap()
                    .to_utc(),
            )],
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
        assert!(html.contains("href=\"tel:115\""), "tap to call: {html}");
        assert!(
            html.contains("Oxy trong máu (SpO₂): 84 % — bình thường 95–100 % (08:15"),
            "the signs with their time: {html}"
        );
        assert!(
            html.contains("href=\"tel:02838551234\">028 3855 1234</a>"),
            "{html}"
        );
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

    #[test]
    fn accepted_pages_thank_the_contact_or_name_who_was_first() {
        let tz = chrono_tz::Asia::Ho_Chi_Minh;
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-05T01:30:00Z")
            .unwrap()
            .to_utc();
        let mut v = view(AckLinkStatus::Accepted, AlertState::Acknowledged);
        v.lang = Lang::En;
        v.acknowledged_by = Some("Lan <b> (family, e-mail link)".into());
        v.acknowledged_at = Some(at);
        let html = render(&v, "t", tz);
        assert!(html.contains("Thank you, Lan &lt;b&gt;"), "{html}");
        assert!(!html.contains("took this on"), "{html}");

        v.acknowledged_by = Some("Dr Minh".into());
        let html = render(&v, "t", tz);
        assert!(!html.contains("Thank you"), "{html}");
        assert!(
            html.contains("<strong>Dr Minh</strong> took this on at"),
            "{html}"
        );
        assert!(html.contains("08:30"), "local time: {html}");
        assert!(html.contains("call the ambulance"), "{html}");
    }
}
