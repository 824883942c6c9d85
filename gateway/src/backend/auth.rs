//! API tokens, sign-in (argon2, equal time for unknown users) and sessions.

use super::*;

impl vigil_dashboard::Auth for StoreBackend {
    fn token_access(&self, token: &str) -> R<Option<Access>> {
        self.read(|c| accounts::api_token_access(c, token))
    }

    fn login(&self, user: &str, password: &str) -> R<Option<(String, String)>> {
        let Some((id, hash, _admin)) = self
            .store
            .read_blocking(|c| accounts::user_by_name(c, user))
            .map_err(be)?
        else {
            // Spend the same time as a real check so user names cannot be probed by timing.
            let _ = crate::secrets::verify_password(password, dummy_hash());
            return Ok(None);
        };
        if !crate::secrets::verify_password(password, &hash) {
            return Ok(None);
        }
        let token = crate::secrets::new_session_token();
        let csrf = crate::secrets::random_hex(16);
        let (t, x) = (token.clone(), csrf.clone());
        let ttl = self.session_ttl_ms;
        self.write(move |c| accounts::create_session(c, id, &t, &x, ttl))?;
        Ok(Some((token, csrf)))
    }

    fn session_access(&self, token: &str) -> R<Option<Access>> {
        self.read(|c| accounts::session_access(c, token))
    }

    fn set_language(&self, user: &str, lang: vigil_domain::Lang) -> R<()> {
        let user = user.to_string();
        self.write(move |c| accounts::set_user_lang(c, &user, lang))
    }

    fn set_sound(&self, user: &str, on: bool) -> R<()> {
        let user = user.to_string();
        self.write(move |c| accounts::set_user_sound(c, &user, on))
    }

    fn logout(&self, token: &str) -> R<()> {
        let t = token.to_string();
        self.write(move |c| accounts::delete_session(c, &t))
    }
}
