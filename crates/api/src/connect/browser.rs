//! What binds a Connect walk to one browser: a random cookie, set on the first page, from which
//! each form's token (against cross-site posts) and the OAuth `state` (against a login another
//! browser started) are derived with the server's signing key (`voltplan_store::sealed`).

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use voltplan_store::sealed::KeyRing;

use crate::public_url::PublicUrl;

const COOKIE: &str = "vp_connect";

/// The browser's cookie, if it sent one that looks like ours.
pub(crate) fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && value.len() == 43)
        .map(|(_, value)| value.to_owned())
}

/// The browser's cookie, or a new one to set with [`set_cookie`].
pub(crate) fn cookie_or_new(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers) {
        Some(value) => (value, false),
        None => {
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            (URL_SAFE_NO_PAD.encode(bytes), true)
        }
    }
}

/// Sets the cookie: only for the Connect pages, never readable by scripts, sent on top-level
/// navigations back from a cloud's login (`Lax`), `Secure` when the public URL is https.
pub(crate) fn set_cookie(mut response: Response, value: &str, public: &PublicUrl) -> Response {
    let secure = if public.origin().starts_with("https:") {
        "; Secure"
    } else {
        ""
    };
    let cookie =
        format!("{COOKIE}={value}; Path=/connect/; Max-Age=172800; HttpOnly; SameSite=Lax{secure}");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn tag(keys: &KeyRing, purpose: &str, parts: &[&str]) -> String {
    let message = format!("{purpose}|{}", parts.join("|"));
    let (key_id, mac) = keys.sign(message.as_bytes());
    format!("{key_id}.{}", URL_SAFE_NO_PAD.encode(mac))
}

fn check(keys: &KeyRing, purpose: &str, parts: &[&str], token: &str) -> bool {
    let Some((key_id, mac)) = token.split_once('.') else {
        return false;
    };
    let Ok(mac) = URL_SAFE_NO_PAD.decode(mac) else {
        return false;
    };
    let message = format!("{purpose}|{}", parts.join("|"));
    keys.verify(key_id, message.as_bytes(), &mac)
}

/// The token of the forms of `scope` (a session's id, a login's state) in this browser.
pub(crate) fn form_token(keys: &KeyRing, scope: &str, cookie: &str) -> String {
    tag(keys, "form", &[scope, cookie])
}

/// Whether a posted form token is this browser's for `scope`.
pub(crate) fn form_token_ok(keys: &KeyRing, scope: &str, cookie: &str, token: &str) -> bool {
    check(keys, "form", &[scope, cookie], token)
}

/// A signed, expiring value (the sandbox's authorisation code): `payload` must not contain `~`.
pub(crate) fn signed(keys: &KeyRing, purpose: &str, payload: &str) -> String {
    format!("{payload}~{}", tag(keys, purpose, &[payload]))
}

/// The payload of a [`signed`] value, if its signature holds.
pub(crate) fn verified<'a>(keys: &KeyRing, purpose: &str, value: &'a str) -> Option<&'a str> {
    let (payload, tag) = value.rsplit_once('~')?;
    check(keys, purpose, &[payload], tag).then_some(payload)
}

/// A new OAuth `state`: random, with a tag binding it to this browser.
pub(crate) fn new_state(keys: &KeyRing, cookie: &str) -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let nonce = URL_SAFE_NO_PAD.encode(bytes);
    let tag = tag(keys, "state", &[&nonce, cookie]);
    format!("{nonce}~{tag}")
}

/// Whether `state` was made for this browser.
pub(crate) fn state_ok(keys: &KeyRing, state: &str, cookie: &str) -> bool {
    state
        .split_once('~')
        .is_some_and(|(nonce, tag)| check(keys, "state", &[nonce, cookie], tag))
}

/// What the store keeps of a state: its SHA-256 (a database reader cannot replay it).
pub(crate) fn state_hash(state: &str) -> Vec<u8> {
    Sha256::digest(state.as_bytes()).to_vec()
}

/// The PKCE verifier of a state (RFC 7636): derived, so nothing more is stored.
pub(crate) fn pkce_verifier(keys: &KeyRing, state: &str) -> String {
    let (_, mac) = keys.sign(format!("pkce|{state}").as_bytes());
    URL_SAFE_NO_PAD.encode(mac)
}

/// Its S256 challenge.
pub(crate) fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn tokens_bind_session_and_browser() {
        let keys = KeyRing::ephemeral();
        let session = Uuid::new_v4().to_string();
        let token = form_token(&keys, &session, "cookie-a");
        assert!(form_token_ok(&keys, &session, "cookie-a", &token));
        assert!(!form_token_ok(&keys, &session, "cookie-b", &token));
        assert!(!form_token_ok(&keys, "other", "cookie-a", &token));
        assert!(!form_token_ok(&keys, &session, "cookie-a", "x.y"));
        let code = signed(&keys, "code", "a@b.c|123");
        assert_eq!(verified(&keys, "code", &code), Some("a@b.c|123"));
        assert_eq!(verified(&keys, "other", &code), None);
        assert_eq!(verified(&keys, "code", &code.replace("123", "124")), None);
        let state = new_state(&keys, "cookie-a");
        assert!(state_ok(&keys, &state, "cookie-a"));
        assert!(!state_ok(&keys, &state, "cookie-b"));
        assert_ne!(new_state(&keys, "cookie-a"), state);
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
