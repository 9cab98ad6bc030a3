//! `POST /oauth2/token/` (RFC 6749 client credentials) and `POST /oauth2/revoke_token/` (RFC 7009).
//!
//! Podero documents a JSON body `{"grant_type": "client_credentials"}` with HTTP Basic client
//! authentication; RFC 6749 clients send the same form-encoded. Both are accepted, as are client
//! credentials in the body (RFC 6749 §2.3.1 allows it; Basic is preferred).

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use utoipa::ToSchema;
use voltplan_store::{NewAccessToken, StoreError};

use super::limiter::FailureKey;
use super::secret;
use crate::error::RETRY_AFTER_UNAVAILABLE_SECS;
use crate::schemas::accepted_values_type;
use crate::state::AppState;

/// RFC 6749 §5.2 error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    UnsupportedGrantType,
    TooManyRequests,
    /// The database is unreachable or did not answer in time: 503, retry later.
    TemporarilyUnavailable,
    ServerError,
}

#[derive(Debug)]
struct OAuthError {
    code: OAuthErrorCode,
    description: &'static str,
    retry_after_secs: Option<u64>,
}

/// The RFC 6749 §5.2 error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `unsupported_grant_type`, `slow_down`,
    /// `temporarily_unavailable` or `server_error`.
    pub error: &'static str,
    pub error_description: &'static str,
}

impl OAuthError {
    fn new(code: OAuthErrorCode, description: &'static str) -> Self {
        Self {
            code,
            description,
            retry_after_secs: None,
        }
    }

    /// A store failure: 503 when the database is unavailable, else 500. The cause is logged.
    fn from_store(what: &'static str, error: &StoreError) -> Self {
        if error.is_unavailable() {
            tracing::warn!(%error, "{what} failed: database unavailable");
            OAuthError {
                code: OAuthErrorCode::TemporarilyUnavailable,
                description: "The service is temporarily unavailable; retry later",
                retry_after_secs: Some(RETRY_AFTER_UNAVAILABLE_SECS),
            }
        } else {
            tracing::error!(%error, "{what} failed");
            OAuthError::new(OAuthErrorCode::ServerError, "Internal server error")
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (status, error) = match self.code {
            OAuthErrorCode::InvalidRequest => (StatusCode::BAD_REQUEST, "invalid_request"),
            OAuthErrorCode::InvalidClient => (StatusCode::UNAUTHORIZED, "invalid_client"),
            OAuthErrorCode::UnsupportedGrantType => {
                (StatusCode::BAD_REQUEST, "unsupported_grant_type")
            }
            OAuthErrorCode::TooManyRequests => (StatusCode::TOO_MANY_REQUESTS, "slow_down"),
            OAuthErrorCode::TemporarilyUnavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
            }
            OAuthErrorCode::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        };
        let mut response = (
            status,
            axum::Json(OAuthErrorBody {
                error,
                error_description: self.description,
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        if self.code == OAuthErrorCode::InvalidClient {
            headers.insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"voltplan\""),
            );
        }
        if let Some(secs) = self.retry_after_secs
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            headers.insert(RETRY_AFTER, value);
        }
        response
    }
}

/// The client's address, for throttling failed attempts: the peer's, or behind a trusted
/// reverse proxy (`ApiConfig::trusted_proxies`) the one its `X-Forwarded-For` names.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(ClientIp(client_address(
            peer,
            &parts.headers,
            &state.0.config.trusted_proxies,
        )))
    }
}

/// The right-most address of `X-Forwarded-For` that is not a trusted proxy, when the peer is
/// one; else the peer. Each proxy appends the address it saw, so entries left of the first
/// untrusted one may be forged by the client and are never used. An entry that is not an
/// address stops the walk at the last trusted hop.
fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.into_iter().rev() {
        let Some(ip) = parse_hop(hop) else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// `1.2.3.4`, `2001:db8::1`, or either with a port (`1.2.3.4:5678`, `[2001:db8::1]:5678`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|a| a.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// Token request body (JSON as Podero documents it, or form-encoded).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// Must be `client_credentials`.
    #[schema(inline, value_type = GrantType)]
    pub grant_type: String,
}

/// The grants the token endpoint accepts.
const GRANT_TYPES: [&str; 1] = ["client_credentials"];

accepted_values_type! {
    /// The one grant this server issues tokens for, as the OpenAPI document shows it.
    struct GrantType = GRANT_TYPES;
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// Opaque bearer token.
    pub access_token: String,
    /// Lifetime in seconds (36,000 unless configured otherwise).
    pub expires_in: i64,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Always `read write`.
    pub scope: &'static str,
}

/// Parses a form or JSON body into string parameters; `None` when the body is neither.
fn body_params(headers: &HeaderMap, body: &Bytes) -> Option<HashMap<String, String>> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json")
        || (content_type.is_empty() && body.first() == Some(&b'{'))
    {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let object = value.as_object()?;
        Some(
            object
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect(),
        )
    } else {
        Some(form_urlencoded_pairs(body))
    }
}

fn form_urlencoded_pairs(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// RFC 6749 §2.3.1: the client id and secret are form-encoded before they are put in Basic.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// The parameters the token endpoints read; any other is ignored, as RFC 6749 §3.2 asks.
const KNOWN_PARAMETERS: &[&str] = &[
    "grant_type",
    "scope",
    "client_id",
    "client_secret",
    "token",
    "token_type_hint",
];

/// The values of the parameters this server reads.
fn known_values(params: &HashMap<String, String>) -> impl Iterator<Item = &str> {
    params
        .iter()
        .filter(|(key, _)| KNOWN_PARAMETERS.contains(&key.as_str()))
        .map(|(_, value)| value.as_str())
}

/// Refuses control characters (a NUL above all: PostgreSQL refuses it in text, and no client id,
/// secret, grant type or scope contains one) before anything reaches the database.
fn refuse_control_characters<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<(), OAuthError> {
    if values.into_iter().any(|v| v.chars().any(char::is_control)) {
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidRequest,
            "Parameters must not contain control characters",
        ));
    }
    Ok(())
}

/// Client credentials from HTTP Basic, else from the body.
fn client_credentials(
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Option<(String, String)> {
    if let Some(header) = headers.get(AUTHORIZATION) {
        let encoded = header.to_str().ok()?.strip_prefix("Basic ")?;
        let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        return Some((percent_decode(id), percent_decode(secret)));
    }
    Some((
        params.get("client_id")?.clone(),
        params.get("client_secret")?.clone(),
    ))
}

/// Verifies a client's credentials; on success returns its organisation. A correct secret is
/// never refused; failures are counted per address and per client id, and once either has used
/// up its allowance they are answered 429 instead of 401.
async fn authenticate_client(
    state: &AppState,
    ip: IpAddr,
    id: &str,
    presented: &str,
) -> Result<uuid::Uuid, OAuthError> {
    match verify_client(state, id, presented).await? {
        Some(org_id) => Ok(org_id),
        None => {
            let now = state.token_now();
            let limiter = &state.0.token_failures;
            let keys = [
                FailureKey::Address(ip),
                FailureKey::Client(secret::sha256(id)),
            ];
            let wait = keys
                .iter()
                .filter_map(|key| limiter.blocked_for(key, now))
                .max();
            for key in keys {
                limiter.record_failure(key, now);
            }
            Err(match wait {
                Some(wait) => OAuthError {
                    code: OAuthErrorCode::TooManyRequests,
                    description: "Too many failed attempts; retry later",
                    retry_after_secs: Some(wait),
                },
                None => OAuthError::new(
                    OAuthErrorCode::InvalidClient,
                    "Client authentication failed",
                ),
            })
        }
    }
}

/// `Some(org)` when `presented` is the secret of the live client `id`. An unknown or revoked id
/// costs one Argon2 verification too (against a dummy hash), so the time taken does not tell
/// which client ids exist.
async fn verify_client(
    state: &AppState,
    id: &str,
    presented: &str,
) -> Result<Option<uuid::Uuid>, OAuthError> {
    let client = match state.store().get_api_client(id).await {
        Ok(client) if client.revoked_at.is_none() => Some(client),
        Ok(_) | Err(StoreError::NotFound) => None,
        Err(e) => return Err(OAuthError::from_store("client lookup", &e)),
    };
    let Some(client) = client else {
        verify_off_thread(presented, secret::dummy_hash().to_owned(), "unknown").await;
        return Ok(None);
    };
    let presented_digest = secret::token_hash(presented);
    let cached = {
        let cache = state
            .0
            .verified_secrets
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        cache
            .get(id)
            .is_some_and(|(phc, digest)| *phc == client.secret_hash && *digest == presented_digest)
    };
    if cached {
        return Ok(Some(client.org_id));
    }
    if !verify_off_thread(presented, client.secret_hash.clone(), "known").await {
        return Ok(None);
    }
    let mut cache = state
        .0
        .verified_secrets
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if cache.len() > 10_000 {
        cache.clear();
    }
    cache.insert(id.to_owned(), (client.secret_hash, presented_digest));
    Ok(Some(client.org_id))
}

/// One Argon2 verification, counted by whether the client id was `known` (Argon2 is
/// deliberately slow and memory-hungry: it runs on the bounded verifier threads).
async fn verify_off_thread(presented: &str, phc: String, client: &'static str) -> bool {
    super::verifier::verify(presented, phc, client).await
}

/// Obtain an access token with the client-credentials grant.
#[utoipa::path(
    post,
    path = "/oauth2/token/",
    tag = "Authentication",
    request_body(content = TokenRequest, description = "JSON (as Podero documents) or application/x-www-form-urlencoded. Authenticate the client with HTTP Basic `client_id:client_secret`."),
    responses(
        (status = 200, description = "A new bearer token", body = TokenResponse),
        (status = 400, description = "`invalid_request` or `unsupported_grant_type`", body = OAuthErrorBody),
        (status = 401, description = "`invalid_client`", body = OAuthErrorBody),
        (status = 429, description = "`slow_down`: too many failed attempts from this address or for this client id; a correct secret is still accepted", body = OAuthErrorBody),
        (status = 503, description = "`temporarily_unavailable`: retry after `Retry-After` seconds", body = OAuthErrorBody),
    ),
    security(("basic" = []))
)]
pub async fn token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match issue_token(&state, ip, &headers, &body).await {
        Ok(token) => {
            let mut response = axum::Json(token).into_response();
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
                .headers_mut()
                .insert(PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn issue_token(
    state: &AppState,
    ip: IpAddr,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<TokenResponse, OAuthError> {
    let params = body_params(headers, body).ok_or_else(|| {
        OAuthError::new(
            OAuthErrorCode::InvalidRequest,
            "The body must be JSON or form-encoded",
        )
    })?;
    refuse_control_characters(known_values(&params))?;
    // No client authentication at all is a 401 before anything about the grant is said.
    let (client_id, client_secret) = client_credentials(headers, &params).ok_or_else(|| {
        OAuthError::new(
            OAuthErrorCode::InvalidClient,
            "Client authentication failed",
        )
    })?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| OAuthError::new(OAuthErrorCode::InvalidRequest, "grant_type is required"))?;
    if !GRANT_TYPES.contains(&grant_type.as_str()) {
        return Err(OAuthError::new(
            OAuthErrorCode::UnsupportedGrantType,
            "Only the client_credentials grant is supported",
        ));
    }
    refuse_control_characters([client_id.as_str(), client_secret.as_str()])?;
    let org_id = authenticate_client(state, ip, &client_id, &client_secret).await?;
    let (token, token_hash) = secret::generate_access_token();
    let now = state.token_now();
    let lifetime = state.0.config.token_lifetime;
    state
        .store()
        .insert_access_token(&NewAccessToken {
            token_hash,
            client_id,
            org_id,
            issued_at: now,
            expires_at: now + lifetime,
        })
        .await
        .map_err(|e| OAuthError::from_store("storing an access token", &e))?;
    Ok(TokenResponse {
        access_token: token,
        expires_in: lifetime.num_seconds(),
        token_type: "Bearer",
        scope: "read write",
    })
}

/// Revocation request (RFC 7009).
#[derive(Debug, Deserialize, ToSchema)]
pub struct RevokeRequest {
    pub token: String,
    /// Optional; only `access_token` exists here.
    pub token_type_hint: Option<String>,
}

/// Revoke an access token (RFC 7009). Answers 200 whether or not the token existed.
#[utoipa::path(
    post,
    path = "/oauth2/revoke_token/",
    tag = "Authentication",
    request_body(content = RevokeRequest, description = "JSON or form-encoded; authenticate the client with HTTP Basic."),
    responses(
        (status = 200, description = "The token is no longer valid"),
        (status = 400, description = "`invalid_request`", body = OAuthErrorBody),
        (status = 401, description = "`invalid_client`", body = OAuthErrorBody),
    ),
    security(("basic" = []))
)]
pub async fn revoke(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let params = body_params(&headers, &body).ok_or_else(|| {
            OAuthError::new(
                OAuthErrorCode::InvalidRequest,
                "The body must be JSON or form-encoded",
            )
        })?;
        refuse_control_characters(known_values(&params))?;
        let token = params
            .get("token")
            .ok_or_else(|| OAuthError::new(OAuthErrorCode::InvalidRequest, "token is required"))?;
        let (client_id, client_secret) =
            client_credentials(&headers, &params).ok_or_else(|| {
                OAuthError::new(
                    OAuthErrorCode::InvalidClient,
                    "Client authentication failed",
                )
            })?;
        refuse_control_characters([client_id.as_str(), client_secret.as_str()])?;
        authenticate_client(&state, ip, &client_id, &client_secret).await?;
        let hash = secret::token_hash(token);
        state.0.tokens.remove(&hash);
        state
            .store()
            .revoke_access_token(&hash, &client_id, state.token_now())
            .await
            .map_err(|e| OAuthError::from_store("revoking a token", &e))?;
        Ok::<_, OAuthError>(())
    }
    .await;
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_address_is_taken_from_trusted_proxies_only() {
        let net = |s: &str| s.parse::<ipnet::IpNet>().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let forwarded = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
            }
            headers
        };
        let proxies = [net("10.0.0.0/8")];
        let spoofed = forwarded(&["6.6.6.6, 203.0.113.7"]);
        // No trusted proxy: the header is ignored.
        assert_eq!(
            client_address(ip("10.0.0.2"), &spoofed, &[]),
            ip("10.0.0.2")
        );
        // From an untrusted peer: ignored as well.
        assert_eq!(
            client_address(ip("198.51.100.1"), &spoofed, &proxies),
            ip("198.51.100.1")
        );
        // Through a trusted proxy: the right-most untrusted entry, never the forgeable left.
        assert_eq!(
            client_address(ip("10.0.0.2"), &spoofed, &proxies),
            ip("203.0.113.7")
        );
        // Through two trusted proxies, across repeated headers, with ports.
        let chained = forwarded(&["6.6.6.6, 203.0.113.7:4711", "10.1.2.3"]);
        assert_eq!(
            client_address(ip("10.0.0.2"), &chained, &proxies),
            ip("203.0.113.7")
        );
        // Garbage stops at the last trusted hop.
        let garbage = forwarded(&["203.0.113.7, not-an-ip"]);
        assert_eq!(
            client_address(ip("10.0.0.2"), &garbage, &proxies),
            ip("10.0.0.2")
        );
        // An IPv4 peer seen on an IPv6 socket is still matched.
        assert_eq!(
            client_address(ip("::ffff:10.0.0.2"), &spoofed, &proxies),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn form_bodies_decode_per_whatwg() {
        let pairs = form_urlencoded_pairs(b"grant_type=client_credentials&a=b%20c+d&empty=");
        assert_eq!(pairs["grant_type"], "client_credentials");
        assert_eq!(pairs["a"], "b c d");
        assert_eq!(pairs["empty"], "");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("a%3Ab"), "a:b");
    }
}
