//! What every signed-in page shares (issue #6): the signed-in user behind the session cookie,
//! the page language, labels in Vietnamese (clinical reference §8) and English, and times in
//! the configured zone. The templates themselves are [`super::templates`].

use super::auth::{cookie, SESSION_COOKIE};
pub(crate) use super::labels::labels;
pub(crate) use super::templates::{env, render};
use super::AppState;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use vigil_domain::Access;

/// The language a visitor chose before signing in, or without an account setting.
pub const LANG_COOKIE: &str = "vigil_lang";

/// A signed-in dashboard user on a page request, with the page's language.
pub(crate) struct PageUser {
    pub access: Access,
    pub lang: &'static str,
}

impl PageUser {
    pub fn vi(&self) -> bool {
        self.lang == "vi"
    }

    /// What the layout needs (`layout.html`): the language and its switch, the labels, who is
    /// signed in, the page for the navigation, the time-zone note. Pages add their own with
    /// `context! { ..user.layout(&state, "inbox"), … }`.
    pub fn layout(&self, state: &AppState, page: &str) -> minijinja::Value {
        let vi = self.vi();
        minijinja::context! {
            page => page,
            lang => self.lang,
            other_lang => if vi { "en" } else { "vi" },
            t => labels(vi),
            user => &self.access.name,
            admin => self.access.admin,
            sound => self.access.sound,
            zone_note => zone_note(state.tz, vi),
        }
    }
}

/// Pages take the signed-in user as an argument; without a live session the answer is a
/// redirect to the login page. `?lang=` picks the page's language.
impl axum::extract::FromRequestParts<AppState> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Response> {
        let lang = parts.uri.query().and_then(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "lang")
                .map(|(_, v)| v.to_string())
        });
        page_user(state, &parts.headers, lang.as_deref()).await
    }
}

/// The user behind the session cookie; without a live session, a redirect to the login page
/// (pages) — JSON callers get 401 from the `Principal` extractor instead.
async fn page_user(
    state: &AppState,
    headers: &HeaderMap,
    lang_param: Option<&str>,
) -> Result<PageUser, Response> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Err(Redirect::to("/login").into_response());
    };
    match state.call(move |b| b.session_access(&token)).await {
        Ok(Some(access)) => {
            let lang = language(lang_param, access.lang, headers);
            Ok(PageUser { access, lang })
        }
        Ok(None) => Err(Redirect::to("/login").into_response()),
        Err(e) => Err(e.into_response()),
    }
}

/// The page's language: `?lang=`, else the user's saved choice, else the cookie, else the
/// browser's first preference, else Vietnamese.
pub(crate) fn language(
    param: Option<&str>,
    saved: Option<vigil_domain::Lang>,
    headers: &HeaderMap,
) -> &'static str {
    let pick = |s: &str| if s.starts_with("en") { "en" } else { "vi" };
    if let Some(l) = param.filter(|l| !l.is_empty()) {
        return pick(l);
    }
    if let Some(l) = saved {
        return l.as_str();
    }
    if let Some(l) = cookie(headers, LANG_COOKIE) {
        return pick(&l);
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| pick(v.trim()))
        .unwrap_or("vi")
}

/// Who acted, as the page says it: a family member who answered by the e-mail's link is stored
/// as "Lan (family, e-mail link)" (vigil-notify); Vietnamese pages say so in Vietnamese
/// (issue #21).
pub(crate) fn actor(name: &str, vi: bool) -> String {
    match name.strip_suffix(" (family, e-mail link)") {
        Some(who) if vi => format!("{who} (gia đình, qua liên kết trong thư)"),
        _ => name.to_string(),
    }
}

/// Percent-encodes a path segment or query value (RFC 3986: unreserved characters kept).
pub(crate) fn percent_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `15:04 28/11/2026` in the dashboard's zone.
pub(crate) fn local(tz: chrono_tz::Tz, t: DateTime<Utc>) -> String {
    t.with_timezone(&tz).format("%H:%M %d/%m/%Y").to_string()
}

/// "5 min ago" for the ward view's last-reading column.
pub(crate) fn ago(now: DateTime<Utc>, t: DateTime<Utc>, vi: bool) -> String {
    let s = (now - t).num_seconds().max(0);
    let (n, unit) = match s {
        0..60 => return if vi { "vừa xong" } else { "just now" }.into(),
        60..3600 => (s / 60, if vi { "phút" } else { "min" }),
        3600..86_400 => (s / 3600, if vi { "giờ" } else { "h" }),
        _ => (s / 86_400, if vi { "ngày" } else { "d" }),
    };
    if vi {
        format!("{n} {unit} trước")
    } else {
        format!("{n} {unit} ago")
    }
}

/// The zone as users read it: `Asia/Ho_Chi_Minh (UTC+07:00)`.
pub(crate) fn zone_note(tz: chrono_tz::Tz, vi: bool) -> String {
    let offset = Utc::now().with_timezone(&tz).format("%:z");
    if vi {
        format!("Giờ hiển thị theo múi giờ {} (UTC{offset}).", tz.name())
    } else {
        format!("Times are shown in {} time (UTC{offset}).", tz.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_order_of_preference() {
        let mut h = HeaderMap::new();
        assert_eq!(language(None, None, &h), "vi");
        h.insert(header::ACCEPT_LANGUAGE, "en-GB,en;q=0.9".parse().unwrap());
        assert_eq!(language(None, None, &h), "en");
        h.insert(header::COOKIE, "vigil_lang=vi".parse().unwrap());
        assert_eq!(language(None, None, &h), "vi");
        // The account's choice beats the cookie and the browser; `?lang=` beats everything.
        assert_eq!(language(None, Some(vigil_domain::Lang::En), &h), "en");
        assert_eq!(language(Some("vi"), Some(vigil_domain::Lang::En), &h), "vi");
    }

    #[test]
    fn times_and_ages() {
        let t = DateTime::parse_from_rfc3339("2026-11-28T01:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(local(chrono_tz::Asia::Ho_Chi_Minh, t), "08:30 28/11/2026");
        assert_eq!(local(chrono_tz::Europe::London, t), "01:30 28/11/2026");
        let later = t + chrono::Duration::minutes(90);
        assert_eq!(ago(later, t, false), "1 h ago");
        assert_eq!(ago(later, t, true), "1 giờ trước");
        assert_eq!(ago(t, t, false), "just now");
    }

    #[test]
    fn every_template_a_template_names_is_registered() {
        let env = env();
        let mut named = 0;
        for (name, t) in env.templates() {
            for key in ["{% include \"", "{% extends \""] {
                for part in t.source().split(key).skip(1) {
                    let other = part.split('"').next().unwrap();
                    assert!(env.get_template(other).is_ok(), "{name} names {other}");
                    named += 1;
                }
            }
        }
        assert!(named >= 8, "{named}");
    }

    #[test]
    fn a_family_member_by_the_email_link_reads_in_the_page_language() {
        assert_eq!(
            super::actor("Lan (family, e-mail link)", true),
            "Lan (gia đình, qua liên kết trong thư)"
        );
        assert_eq!(
            super::actor("Lan (family, e-mail link)", false),
            "Lan (family, e-mail link)"
        );
        assert_eq!(super::actor("bs.lan", true), "bs.lan");
    }
}
