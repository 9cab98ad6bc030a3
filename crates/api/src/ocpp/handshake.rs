//! `GET /ocpp/{charge_point_id}`: who may open a WebSocket, decided before the upgrade.
//!
//! OCPP 1.6 Security Profile 1/2: HTTP Basic with the charge-point id as user name and the
//! charger's password (16–40 characters, stored as an Argon2id hash). An unknown id is checked
//! against a dummy hash, so timing does not tell which ids exist; failures are counted per address
//! and per id, and past the limit answered 429 with `Retry-After`. The Argon2id checks run on a
//! few threads of their own (`auth::verifier`), so a reconnect storm costs bounded memory and CPU.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use voltplan_ocpp::Version;
use voltplan_store::{ChargerLogin, OrgScope};

use super::connection;
use crate::auth::limiter::FailureKey;
use crate::auth::oauth::ClientIp;
use crate::auth::{secret, verifier};
use crate::state::AppState;

/// The longest charge-point identity accepted (OCPP 2.0.1's 48; 1.6 sets none).
const MAX_IDENTITY_LEN: usize = 48;

/// The largest WebSocket message (and frame) a charger may send. OCPP 1.6 messages are a few
/// hundred bytes to a few KiB (a long GetConfiguration answer, a StopTransaction with its meter
/// values); tungstenite's default of 64 MiB would let one charger make the server buffer that much.
const MAX_MESSAGE: usize = 256 * 1024;
/// The read buffer of each WebSocket (grown while a larger frame arrives). tungstenite's default
/// of 128 KiB is zeroed in full before every read, so it was resident for every idle charger:
/// 197 KiB per connection in all, measured with `bench/ocpp-swarm`.
const READ_BUFFER: usize = 4 * 1024;

fn refuse(status: StatusCode, message: &'static str) -> Response {
    let mut response = (status, message).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"OCPP\", charset=\"UTF-8\""),
        );
    }
    response
}

/// `user:password` from `Authorization: Basic …`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The OCPP versions the charger offers, in its order of preference, that Voltplan speaks.
fn offered_version(headers: &HeaderMap) -> Option<Version> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(Version::from_subprotocol)
        .find(|v| *v == Version::V16)
}

pub(crate) async fn connect(
    State(state): State<AppState>,
    Path(charge_point_id): Path<String>,
    ClientIp(address): ClientIp,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let now = state.0.token_clock.now();
    let limiter = &state.0.ocpp_failures;
    let address_key = FailureKey::Address(address);
    let id_key = FailureKey::Client(secret::sha256(&charge_point_id));
    let blocked = limiter
        .blocked_for(&address_key, now)
        .or_else(|| limiter.blocked_for(&id_key, now));
    if let Some(seconds) = blocked {
        let mut response = refuse(StatusCode::TOO_MANY_REQUESTS, "too many failed attempts");
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let login = match authenticate(&state, &charge_point_id, &headers).await {
        Ok(login) => login,
        Err(response) => {
            limiter.record_failure(address_key, now);
            limiter.record_failure(id_key, now);
            tracing::info!(%charge_point_id, %address, "OCPP handshake refused");
            return response;
        }
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let Some(version) = offered_version(&headers) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "offer the WebSocket subprotocol ocpp1.6 (Sec-WebSocket-Protocol)",
        );
    };
    let org = OrgScope::new(login.org_id);
    upgrade
        .protocols([version.subprotocol()])
        .read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| {
            connection::run(socket, state, org, login.wallbox_id, charge_point_id)
        })
}

async fn authenticate(
    state: &AppState,
    charge_point_id: &str,
    headers: &HeaderMap,
) -> Result<ChargerLogin, Response> {
    if charge_point_id.is_empty() || charge_point_id.len() > MAX_IDENTITY_LEN {
        return Err(refuse(StatusCode::NOT_FOUND, "unknown charge point"));
    }
    let Some((user, password)) = basic_credentials(headers) else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "HTTP Basic credentials required (charge-point id and password)",
        ));
    };
    let login = match state.0.store.charger_login(charge_point_id).await {
        Ok(login) => login,
        Err(error) => {
            tracing::error!(%error, "OCPP handshake: charger lookup failed");
            return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later"));
        }
    };
    let user_matches = user == charge_point_id;
    match login {
        Some(login) => {
            let verified =
                verifier::verify(&password, login.password_hash.clone(), "charger").await;
            if verified && user_matches {
                Ok(login)
            } else {
                Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    "wrong charge-point id or password",
                ))
            }
        }
        None => {
            verifier::verify(&password, secret::dummy_hash().to_owned(), "unknown").await;
            Err(refuse(
                StatusCode::UNAUTHORIZED,
                "wrong charge-point id or password",
            ))
        }
    }
}
