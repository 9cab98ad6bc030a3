//! OAuth2 client credentials (Podero-compatible) and the bearer check in front of every partner
//! route.

pub mod limiter;
pub mod oauth;
pub mod secret;
pub mod token_cache;
pub(crate) mod verifier;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use uuid::Uuid;
use voltplan_store::OrgScope;

use crate::error::ApiError;
use crate::state::AppState;

/// Who is calling: an API client acting for exactly one organisation.
#[derive(Debug, Clone)]
pub struct Principal {
    pub org_id: Uuid,
    pub client_id: String,
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(ApiError::Unauthenticated)?;
        let token = header
            .to_str()
            .ok()
            .and_then(bearer_token)
            .ok_or(ApiError::Unauthorized(
                "Malformed Authorization header: expected \"Bearer <token>\"",
            ))?;
        let hash = secret::token_hash(token);
        let found = match state.0.tokens.get(&hash) {
            Some(cached) => Some(cached),
            None => {
                let found = state.store().find_access_token(&hash).await?;
                if let Some(t) = &found {
                    state.0.tokens.insert(hash, t.clone());
                }
                found
            }
        };
        match found {
            Some(t) if t.expires_at > state.token_now() => Ok(Principal {
                org_id: t.org_id,
                client_id: t.client_id,
            }),
            Some(_) => Err(ApiError::Unauthorized("The access token expired")),
            None => Err(ApiError::Unauthorized("Invalid or revoked access token")),
        }
    }
}

/// The token of `Bearer <token>`; the scheme is case-insensitive (RFC 7235 §2.1).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// An authenticated caller whose organisation is the `{org_id}` of the path. Another
/// organisation's id (or a malformed one) is a 404, exactly like an object that does not exist.
#[derive(Debug, Clone)]
pub struct OrgAccess {
    pub org: OrgScope,
    pub principal: Principal,
}

impl FromRequestParts<AppState> for OrgAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        let org_id = params
            .iter()
            .find(|(name, _)| *name == "org_id")
            .and_then(|(_, value)| Uuid::parse_str(value).ok())
            .ok_or(ApiError::NotFound)?;
        if org_id != principal.org_id {
            return Err(ApiError::NotFound);
        }
        Ok(OrgAccess {
            org: OrgScope::new(org_id),
            principal,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for header in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR  abc "] {
            assert_eq!(bearer_token(header), Some("abc"), "{header}");
        }
        for header in ["Bearer", "Bearer ", "Token abc", "Bearerabc", "Basic abc"] {
            assert_eq!(bearer_token(header), None, "{header}");
        }
    }
}
