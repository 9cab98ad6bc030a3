//! Secrets Voltplan must use again (cloud tokens) are sealed with AES-256-GCM before they reach
//! the database, under a key from the operator's configuration, and keys that sign short-lived
//! capabilities (cue secrets, Connect form tokens) are derived from the same configuration.
//!
//! `VOLTPLAN_SECRET_KEYS` holds one or more keys, `id:base64`, comma-separated; the first seals
//! and signs, the others only open and verify (rotation: put the new key first, keep the old
//! ones until every token was refreshed — tokens are re-sealed with the first key at every
//! refresh — then drop them). A sealed value is the 12-byte random nonce followed by the
//! ciphertext and its tag; the associated data binds it to its organisation, cloud and field, so
//! a ciphertext copied into another row does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyRingError {
    #[error("VOLTPLAN_SECRET_KEYS is empty")]
    Empty,
    #[error("key {0:?}: expected `id:base64` with a non-empty id of letters, digits, '-' or '_'")]
    Malformed(String),
    #[error("key {0:?}: not 32 bytes of standard base64 (make one with `openssl rand -base64 32`)")]
    BadKey(String),
    #[error("key id {0:?} appears twice")]
    Duplicate(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("no key with id {0:?} is configured (VOLTPLAN_SECRET_KEYS)")]
    UnknownKey(String),
    #[error("a sealed secret did not open (wrong key, or altered)")]
    Corrupt,
}

struct Key {
    id: String,
    cipher: Aes256Gcm,
    signing: [u8; KEY_LEN],
}

/// The configured keys; the first seals and signs.
pub struct KeyRing {
    keys: Vec<Key>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("ids", &self.keys.iter().map(|k| &k.id).collect::<Vec<_>>())
            .finish()
    }
}

fn key(id: String, bytes: &[u8; KEY_LEN]) -> Key {
    // A separate key for signing, so a signature can never be confused with a ciphertext's.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(bytes).unwrap_or_else(|_| unreachable!());
    mac.update(b"voltplan signing key v1");
    let signing = mac.finalize().into_bytes().into();
    Key {
        id,
        cipher: Aes256Gcm::new(bytes.into()),
        signing,
    }
}

impl KeyRing {
    /// Parses `id:base64,id:base64…` (`VOLTPLAN_SECRET_KEYS`).
    pub fn parse(spec: &str) -> Result<Self, KeyRingError> {
        let mut keys: Vec<Key> = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (id, encoded) = part
                .split_once(':')
                .ok_or_else(|| KeyRingError::Malformed(redacted(part)))?;
            let id = id.trim();
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(KeyRingError::Malformed(redacted(part)));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| <[u8; KEY_LEN]>::try_from(b.as_slice()).ok())
                .ok_or_else(|| KeyRingError::BadKey(id.to_owned()))?;
            if keys.iter().any(|k| k.id == id) {
                return Err(KeyRingError::Duplicate(id.to_owned()));
            }
            keys.push(key(id.to_owned(), &bytes));
        }
        if keys.is_empty() {
            return Err(KeyRingError::Empty);
        }
        Ok(KeyRing { keys })
    }

    /// A random key for this process only (the demo, tests, a server without real clouds):
    /// what it sealed or signed is lost with the process.
    pub fn ephemeral() -> Self {
        let mut bytes = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        KeyRing {
            keys: vec![key("ephemeral".to_owned(), &bytes)],
        }
    }

    /// The id of the key that seals and signs.
    pub fn current_id(&self) -> &str {
        &self.keys[0].id
    }

    fn find(&self, id: &str) -> Result<&Key, SealError> {
        self.keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))
    }

    /// Seals `plaintext` with the current key, bound to `context`.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self.keys[0]
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            // AES-GCM fails only on inputs beyond 64 GiB.
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a value sealed under key `key_id` with the same `context`.
    pub fn open(&self, key_id: &str, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, SealError> {
        let key = self.find(key_id)?;
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Corrupt);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        key.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| SealError::Corrupt)
    }

    /// HMAC-SHA256 of `message` under the current signing key, with that key's id.
    pub fn sign(&self, message: &[u8]) -> (&str, [u8; 32]) {
        let key = &self.keys[0];
        (&key.id, mac(&key.signing, message))
    }

    /// Whether `tag` is `message`'s signature under key `key_id` (constant time).
    pub fn verify(&self, key_id: &str, message: &[u8], tag: &[u8]) -> bool {
        let Ok(key) = self.find(key_id) else {
            return false;
        };
        let mut check =
            <Hmac<Sha256> as Mac>::new_from_slice(&key.signing).unwrap_or_else(|_| unreachable!());
        check.update(message);
        check.verify_slice(tag).is_ok()
    }
}

fn mac(key: &[u8; KEY_LEN], message: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// A configuration entry shown in an error without its key material.
fn redacted(part: &str) -> String {
    part.split_once(':')
        .map_or_else(|| "…".to_owned(), |(id, _)| format!("{id}:…"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K0: &str = "k0:HxwdHhscGRoZGBcWFRQTEhEQDw4NDAsKCQgHBgUEAwI=";

    #[test]
    fn sealed_values_open_with_their_key_and_context_only() {
        let ring = KeyRing::parse(&format!("{K1},{K0}")).unwrap();
        assert_eq!(ring.current_id(), "k1");
        let sealed = ring.seal(b"token", b"org|access");
        assert_ne!(&sealed[NONCE_LEN..], b"token");
        assert_eq!(ring.open("k1", &sealed, b"org|access").unwrap(), b"token");
        assert_eq!(
            ring.open("k1", &sealed, b"org|refresh"),
            Err(SealError::Corrupt)
        );
        assert_eq!(
            ring.open("k0", &sealed, b"org|access"),
            Err(SealError::Corrupt)
        );
        assert_eq!(
            ring.open("k9", &sealed, b"org|access"),
            Err(SealError::UnknownKey("k9".into()))
        );
        // Rotation: the old key still opens what it sealed.
        let old = KeyRing::parse(K0).unwrap();
        let before = old.seal(b"t", b"c");
        assert_eq!(ring.open("k0", &before, b"c").unwrap(), b"t");
        // Two seals of one value differ (random nonces).
        assert_ne!(ring.seal(b"token", b"c"), ring.seal(b"token", b"c"));
    }

    #[test]
    fn signatures_verify_under_their_key_id() {
        let ring = KeyRing::parse(&format!("{K1},{K0}")).unwrap();
        let (id, tag) = ring.sign(b"message");
        assert_eq!(id, "k1");
        assert!(ring.verify("k1", b"message", &tag));
        assert!(!ring.verify("k1", b"messagf", &tag));
        assert!(!ring.verify("k0", b"message", &tag));
        assert!(!ring.verify("nope", b"message", &tag));
    }

    #[test]
    fn bad_configurations_are_named_without_key_material() {
        assert_eq!(KeyRing::parse(" ").unwrap_err(), KeyRingError::Empty);
        assert_eq!(
            KeyRing::parse("nokey").unwrap_err(),
            KeyRingError::Malformed("…".into())
        );
        assert_eq!(
            KeyRing::parse("k1:c2hvcnQ=").unwrap_err(),
            KeyRingError::BadKey("k1".into())
        );
        assert_eq!(
            KeyRing::parse(&format!("{K1},{K1}")).unwrap_err(),
            KeyRingError::Duplicate("k1".into())
        );
        assert!(format!("{:?}", KeyRing::parse(K1).unwrap()).contains("k1"));
    }
}
