//! The consent page of an `auth_session` (`auth_session.rs`): `GET /connect/{session_id}` shows
//! the vehicle and an *Allow* / *Deny* form; `POST /connect/{session_id}` records the decision
//! once, acts on it and sends the browser on to the partner's URL.
//!
//! The driver's browser opens it, so there is no bearer token: the random session id is the
//! secret. Not part of the partner API (and not in its OpenAPI document). Pages are
//! self-contained HTML (no scripts, no external assets) and every interpolated value is escaped.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use uuid::Uuid;
use voltplan_clouds::{CloudError, CloudVehicleRef};
use voltplan_store::{AuthSessionOutcome, AuthSessionRecord, OrgScope, StoreError, VehicleRecord};

use crate::auth_session::relink_refusal;
use crate::public_url::PublicUrl;
use crate::state::AppState;

/// Headers of every page: never cached (it carries a secret in its URL), never framed (an
/// invisible frame could trick the driver into clicking *Allow*), a referrer only to this server
/// itself (the secret URL must not reach the partner's site with the redirect; the form's own
/// post then carries a real `Origin`, which the CSRF check compares), and nothing but inline
/// style may load.
const PAGE_HEADERS: [(HeaderName, &str); 4] = [
    (header::CACHE_CONTROL, "no-store"),
    (header::REFERRER_POLICY, "same-origin"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
];

/// The content security policy of every page. Forms may post only here; the consent page adds
/// the partner's origins (`with_form_targets`), since Chrome applies `form-action` to the
/// redirect that follows the post too.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'self'";

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:30rem;margin:4rem auto;\
padding:0 1rem;color:#1f2328;line-height:1.5}h1{font-size:1.4rem}\
button{font-size:1rem;padding:.6rem 1.4rem;margin:0 .5rem .5rem 0;border-radius:.4rem;\
border:1px solid #8c959f;background:#f6f8fa;cursor:pointer}\
button[value=allow]{background:#1a7f37;border-color:#1a7f37;color:#fff}small{color:#59636e}";

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page; `body_html` must already be escaped.
fn page(status: StatusCode, title: &str, body_html: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head>\
         <body><h1>{title}</h1>{body_html}</body></html>\n",
        title = escape(title),
    );
    with_page_headers((status, Html(html)).into_response())
}

fn with_page_headers(mut response: Response) -> Response {
    for (name, value) in PAGE_HEADERS {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

/// Lets the consent form's post be redirected to the session's success and cancel URLs.
fn with_form_targets(mut response: Response, session: &AuthSessionRecord) -> Response {
    let mut policy = CSP.to_owned();
    let urls = [&session.success_url, &session.cancel_url];
    for url in urls.into_iter().flatten() {
        let Ok(parsed) = url::Url::parse(url) else {
            continue;
        };
        let origin = parsed.origin().ascii_serialization();
        // A CSP source cannot name an IPv6 literal or an opaque origin ("null").
        if origin.contains('[') || origin == "null" || policy.contains(&format!(" {origin}")) {
            continue;
        }
        policy.push(' ');
        policy.push_str(&origin);
    }
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// Why a post must be refused as cross-site request forgery, if it must: a browser says where a
/// form post comes from in `Sec-Fetch-Site` and `Origin`; a post another site made the driver's
/// browser send could otherwise allow a re-link the driver never chose. A client sending
/// neither header is no browser (or one too old to send either) and is let through.
fn forgery_refusal(headers: &HeaderMap, public: &PublicUrl) -> Option<String> {
    if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.as_bytes(), b"same-origin" | b"none")
    {
        return Some(format!("Sec-Fetch-Site {site:?}"));
    }
    match headers.get(header::ORIGIN) {
        Some(origin) if origin.as_bytes() != public.origin().as_bytes() => Some(format!(
            "Origin {origin:?} is not the public URL's {:?} (is --public-url right?)",
            public.origin()
        )),
        _ => None,
    }
}

fn forbidden_page() -> Response {
    page(
        StatusCode::FORBIDDEN,
        "Request refused",
        "<p>This form was sent from another site. Open the link your energy provider gave you \
         and choose there.</p>",
    )
}

fn not_found_page() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Link not found",
        "<p>This link is unknown, has expired or has already been used. Ask your energy \
         provider for a new one.</p>",
    )
}

fn internal_error_page(cause: StoreError) -> Response {
    if cause.is_unavailable() {
        tracing::warn!(%cause, "consent page failed: database unavailable");
        let mut response = page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Please try again",
            "<p>The service is busy. Please try again in a moment.</p>",
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(crate::error::RETRY_AFTER_UNAVAILABLE_SECS),
        );
        return response;
    }
    tracing::error!(%cause, "consent page failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "<p>Please try again in a moment.</p>",
    )
}

/// How the vehicle is named to its driver: manufacturer and model, else its id.
fn vehicle_name(vehicle: &VehicleRecord) -> String {
    let model = &vehicle.settings.device_model;
    let name = [model.manufacturer.as_deref(), model.model.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if name.is_empty() {
        format!("vehicle {}", vehicle.id)
    } else {
        name
    }
}

/// The open session named by the path and its live vehicle, or the page to answer instead.
async fn open_session(
    state: &AppState,
    id: Result<Path<String>, PathRejection>,
    now: DateTime<Utc>,
) -> Result<(AuthSessionRecord, VehicleRecord), Response> {
    // A malformed id is as unknown as a wrong one.
    let id = id
        .ok()
        .and_then(|Path(raw)| Uuid::parse_str(&raw).ok())
        .ok_or_else(not_found_page)?;
    let session = match state.store().get_auth_session(id).await {
        Ok(session) if session.is_open(now) => session,
        Ok(_) | Err(StoreError::NotFound) => return Err(not_found_page()),
        Err(e) => return Err(internal_error_page(e)),
    };
    let vehicle = match state
        .store()
        .get_vehicle_in_org(OrgScope::new(session.org_id), session.vehicle_id)
        .await
    {
        Ok(vehicle) => vehicle,
        // Deleted since the session was created.
        Err(StoreError::NotFound) => return Err(not_found_page()),
        Err(e) => return Err(internal_error_page(e)),
    };
    Ok((session, vehicle))
}

/// The consent page.
pub async fn consent_page(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let (session, vehicle) = match open_session(&state, id, state.now()).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let body = format!(
        "<p>Your energy provider asks to reconnect smart charging to your vehicle \
         <strong>{name}</strong>. If you allow it, Voltplan can again read the vehicle's battery \
         level, plug state and location and start and stop its charging.</p>\
         <form method=\"post\" action=\"{id}\">\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\
         </form><p><small>This link can be used once, until {expires} UTC.</small></p>",
        name = escape(&vehicle_name(&vehicle)),
        // Relative to /connect/: works behind a reverse proxy's path prefix too.
        id = escape(&session.id.to_string()),
        expires = escape(&session.expires_at.format("%Y-%m-%d %H:%M").to_string()),
    );
    with_form_targets(
        page(StatusCode::OK, "Reconnect your vehicle", &body),
        &session,
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Allow,
    Deny,
}

/// `decision=allow|deny` from a form body.
fn decision(body: &[u8]) -> Option<Decision> {
    form_urlencoded::parse(body)
        .find(|(key, _)| key == "decision")
        .and_then(|(_, value)| match value.as_ref() {
            "allow" => Some(Decision::Allow),
            "deny" => Some(Decision::Deny),
            _ => None,
        })
}

/// The driver's decision: recorded once, then acted on.
pub async fn decide(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(why) = forgery_refusal(&headers, state.public_url()) {
        tracing::warn!(reason = %why, "refused a cross-site post to a consent page");
        return forbidden_page();
    }
    let now = state.now();
    let (session, vehicle) = match open_session(&state, id, now).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let Some(decision) = body.ok().as_deref().and_then(decision) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Choose Allow or Deny",
            "<p>The form was not understood. Go back and choose <em>Allow</em> or \
             <em>Deny</em>.</p>",
        );
    };
    if decision == Decision::Allow
        && let Some(why) = relink_refusal(&state, &vehicle)
    {
        // The session stays open: the driver may still deny, or retry once the server can.
        // The session id is a secret: logged by vehicle only.
        tracing::warn!(vehicle_id = %vehicle.id, reason = %why, "cannot re-link from the consent page");
        return page(
            StatusCode::CONFLICT,
            "Cannot reconnect here",
            "<p>This vehicle cannot be reconnected through this page. Please contact your \
             energy provider.</p>",
        );
    }
    let outcome = match decision {
        Decision::Allow => AuthSessionOutcome::Success,
        Decision::Deny => AuthSessionOutcome::Cancelled,
    };
    let org = OrgScope::new(session.org_id);
    // Claim the session before acting: of two concurrent posts only one gets here.
    match state
        .store()
        .complete_auth_session(org, session.id, outcome, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => return not_found_page(),
        Err(e) => return internal_error_page(e),
    }
    match decision {
        Decision::Allow => {
            restore_link(&state, org, &vehicle).await;
            finish(
                session.success_url.as_deref(),
                "Connected",
                "<p>Smart charging can reach your vehicle again. You can close this window.</p>",
            )
        }
        Decision::Deny => finish(
            session.cancel_url.as_deref(),
            "Not connected",
            "<p>Nothing was changed. You can close this window.</p>",
        ),
    }
}

/// Gives the car its link back through its cloud (`VehicleCloud::restore_link`) and makes the
/// worker read it in its next cycle. The session is already completed, so failures are logged, not
/// shown: the worker's regular poll of a revoked car picks the change up later anyway.
async fn restore_link(state: &AppState, org: OrgScope, vehicle: &VehicleRecord) {
    let cloud = vehicle
        .settings
        .device_model
        .cloud_service
        .and_then(|id| state.cloud(id));
    if let Some(cloud) = cloud {
        let reference =
            CloudVehicleRef::of_device(vehicle.id, vehicle.settings.external_device_id.as_deref());
        match cloud.restore_link(&reference).await {
            Ok(()) => {}
            // The sandbox keeps cars in memory only; the worker registers an unknown sandbox car,
            // authorised, when it next reads it.
            Err(CloudError::UnknownVehicle) => tracing::warn!(
                vehicle_id = %vehicle.id,
                "re-linked a car its cloud does not know; the worker registers it"
            ),
            Err(error) => {
                tracing::error!(vehicle_id = %vehicle.id, %error, "restoring the link failed")
            }
        }
    }
    if let Err(error) = state.store().wake_vehicle(org, vehicle.id).await {
        tracing::warn!(vehicle_id = %vehicle.id, %error, "could not wake the re-linked vehicle");
    }
}

/// 303 to the partner's URL, or a page saying what happened.
fn finish(url: Option<&str>, title: &str, body_html: &str) -> Response {
    // Stored URLs are normalised (ASCII), so a header value always fits.
    match url.and_then(|u| HeaderValue::from_str(u).ok()) {
        Some(location) => {
            let response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
            with_page_headers(response)
        }
        None => page(StatusCode::OK, title, body_html),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn decisions_are_read_from_the_form() {
        assert_eq!(decision(b"decision=allow"), Some(Decision::Allow));
        assert_eq!(decision(b"x=1&decision=deny"), Some(Decision::Deny));
        assert_eq!(decision(b"decision=maybe"), None);
        assert_eq!(decision(b""), None);
    }
}
