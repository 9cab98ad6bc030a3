//! Client secrets (Argon2id, PHC strings) and access tokens (256 random bits, stored as SHA-256 so
//! each API call is one indexed lookup, never an Argon2 verification).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::distributions::Alphanumeric;
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

#[derive(Debug, thiserror::Error)]
#[error("could not hash the client secret: {0}")]
pub struct HashError(String);

/// A fresh client id: 32 alphanumerics, like the ids partners know from OAuth toolkits.
pub fn generate_client_id() -> String {
    OsRng
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// A fresh client secret: 64 alphanumerics (~380 bits), safe in Basic auth without escaping.
pub fn generate_client_secret() -> String {
    OsRng
        .sample_iter(&Alphanumeric)
        .take(64)
        .map(char::from)
        .collect()
}

pub fn hash_secret(secret: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Constant-time Argon2id verification. A malformed stored hash verifies nothing.
pub fn verify_secret(secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(secret.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// An Argon2id hash of a random secret nobody knows, made with the parameters of every new
/// client secret: verifying against it when a client id is unknown costs what a wrong secret for
/// a known id costs.
pub fn dummy_hash() -> &'static str {
    static DUMMY: LazyLock<String> =
        LazyLock::new(|| hash_secret(&generate_client_secret()).unwrap_or_default());
    &DUMMY
}

/// A new opaque bearer token and its SHA-256, the only form stored.
pub fn generate_access_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> Vec<u8> {
    sha256(token).to_vec()
}

pub fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_verify_only_themselves() {
        let secret = generate_client_secret();
        let phc = hash_secret(&secret).unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_secret(&secret, &phc));
        assert!(!verify_secret("wrong", &phc));
        assert!(!verify_secret(&secret, "not a phc string"));
    }

    #[test]
    fn the_dummy_hash_has_the_parameters_of_real_ones() {
        let real = hash_secret(&generate_client_secret()).unwrap();
        let params = |phc: &str| phc.rsplitn(3, '$').nth(2).map(str::to_owned);
        assert_eq!(params(dummy_hash()), params(&real), "{}", dummy_hash());
        assert!(!verify_secret("", dummy_hash()));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ha) = generate_access_token();
        let (b, hb) = generate_access_token();
        assert_ne!(a, b);
        assert_eq!(ha, token_hash(&a));
        assert_ne!(ha, hb);
        assert_eq!(a.len(), 43);
    }
}
