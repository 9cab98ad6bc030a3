//! The sandbox's simulated cloud login: what a real cloud's OAuth login does, on Voltplan's own
//! pages, so the demo and the tests walk the same Connect flow as a real car. Any e-mail and
//! password are accepted; the "account" owns two simulated cars chosen from the EV catalogue by
//! the address, so the same address always shares the same cars.
//!
//! `GET /connect/sandbox/login?state=…` shows the login; its post redirects to
//! `/connect/callback/sandbox` with a signed code (10 minutes) or `error=access_denied`, exactly
//! as a cloud's login would.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Duration;
use sha2::{Digest, Sha256};
use voltplan_store::onboarding::CandidateVehicle;

use super::browser::{self, cookie_or_new, form_token, set_cookie};
use super::page::{escape, not_found_page, page, refuse_forgery, see_other};
use super::text::{Lang, Text};
use crate::state::AppState;

const CODE_PURPOSE: &str = "sandbox-code";

/// How long a sandbox login's code is valid (Smartcar's codes: 10 minutes).
const CODE_LIFETIME: Duration = Duration::minutes(10);

/// The login page of an authorisation with this `state`.
pub(super) fn login_url(state: &AppState, oauth_state: &str) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("state", oauth_state)
        .finish();
    state
        .public_url()
        .join(&format!("/connect/sandbox/login?{query}"))
}

fn callback_url(state: &AppState, params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in params {
        query.append_pair(key, value);
    }
    state
        .public_url()
        .join(&format!("/connect/callback/sandbox?{}", query.finish()))
}

/// The e-mail address of a code this server issued, if it is genuine and not expired.
pub(super) fn redeem_code(state: &AppState, code: &str) -> Option<String> {
    let payload = browser::verified(state.keys(), CODE_PURPOSE, code)?;
    let (email, expires) = payload.rsplit_once('|')?;
    let expires: i64 = expires.parse().ok()?;
    (state.now().timestamp() < expires).then(|| email.to_owned())
}

/// The two simulated cars of an address.
pub(super) fn garage(email: &str) -> Vec<CandidateVehicle> {
    let catalogue = voltplan_clouds::embedded_catalogue().unwrap_or_default();
    if catalogue.is_empty() {
        return Vec::new();
    }
    let digest = Sha256::digest(email.to_lowercase().as_bytes());
    let hex: String = digest.iter().take(5).map(|b| format!("{b:02X}")).collect();
    (0..2usize)
        .map(|n| {
            let spec = &catalogue[usize::from(digest[n]) % catalogue.len()];
            CandidateVehicle {
                cloud_vehicle_id: format!("sandbox-{}-{n}", &hex[..8]),
                make: Some(spec.manufacturer.clone()),
                model: Some(spec.model.clone()),
                year: spec.year.or(Some(2024)),
                // 17 characters, like a VIN; "SBX" marks it as simulated.
                vin: Some(format!("SBX{hex}{n:04}")),
            }
        })
        .collect()
}

#[derive(Debug, serde::Deserialize)]
pub struct LoginQuery {
    state: String,
}

/// `GET /connect/sandbox/login?state=…`.
pub async fn login_page(
    State(state): State<AppState>,
    query: Result<Query<LoginQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Query(query)) = query else {
        return not_found_page(Lang::En);
    };
    // The session's language is not known here without the state's lookup; the browser's is.
    let lang = browser_lang(&headers);
    let t = Text::of(lang);
    let (cookie, fresh) = cookie_or_new(&headers);
    let token = form_token(state.keys(), &query.state, &cookie);
    let body = format!(
        "<div class=\"steps\">{step} 2 {of} 3</div><p>{intro}</p>\
         <form method=\"post\" action=\"login\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
         <input type=\"hidden\" name=\"state\" value=\"{oauth_state}\">\
         <label class=\"field\" for=\"email\">{email}</label>\
         <input id=\"email\" type=\"email\" name=\"email\" autocomplete=\"username\" required>\
         <label class=\"field\" for=\"password\">{password}</label>\
         <input id=\"password\" type=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <div class=\"actions\"><button class=\"primary\" type=\"submit\" name=\"decision\" \
         value=\"allow\">{allow}</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\" formnovalidate>{deny}</button></div>\
         </form>",
        step = escape(t.step),
        of = escape(t.of),
        intro = escape(t.login_intro),
        token = escape(&token),
        oauth_state = escape(&query.state),
        email = escape(t.email),
        password = escape(t.password),
        allow = escape(t.allow_button),
        deny = escape(t.deny_button),
    );
    let response = page(StatusCode::OK, lang, t.login_title, &body);
    if fresh {
        set_cookie(response, &cookie, state.public_url())
    } else {
        response
    }
}

/// German when the browser prefers it (the page does not know the session yet).
fn browser_lang(headers: &HeaderMap) -> Lang {
    let preferred = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .unwrap_or("en");
    Lang::from_code(&preferred.trim().to_ascii_lowercase()[..preferred.trim().len().min(2)])
}

/// `POST /connect/sandbox/login`.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let lang = browser_lang(&headers);
    let Ok(body) = body else {
        return not_found_page(lang);
    };
    let fields: std::collections::HashMap<String, String> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let Some(oauth_state) = fields.get("state") else {
        return not_found_page(lang);
    };
    if let Some(refused) = refuse_forgery(&state, &headers, oauth_state, fields.get("csrf"), lang) {
        return refused;
    }
    match fields.get("decision").map(String::as_str) {
        Some("allow") => {
            let email = fields
                .get("email")
                .map(|e| e.trim())
                .filter(|e| !e.is_empty() && e.len() <= 254 && !e.contains(['|', '~']))
                .unwrap_or("driver@sandbox.example");
            let expires = (state.now() + CODE_LIFETIME).timestamp();
            let code = browser::signed(state.keys(), CODE_PURPOSE, &format!("{email}|{expires}"));
            see_other(&callback_url(
                &state,
                &[("code", &code), ("state", oauth_state)],
            ))
        }
        _ => see_other(&callback_url(
            &state,
            &[
                ("error", "access_denied"),
                ("error_description", "The driver denied access."),
                ("state", oauth_state),
            ],
        )),
    }
}
