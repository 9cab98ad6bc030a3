//! Standard Webhooks' symmetric signatures (spec section "Signature scheme" and "Webhook headers").
//!
//! The signed content is `{msg_id}.{timestamp}.{body}`, the key is the bytes of the base64 text
//! after `whsec_`, the signature is HMAC-SHA256 in standard base64 prefixed with `v1,`, and the
//! `webhook-signature` header lists several such signatures separated by spaces so that a secret
//! can be rotated without downtime: the receiver accepts the delivery when any one matches.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::{DecodePaddingMode, general_purpose};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The prefix that marks a symmetric Standard Webhooks secret, so people and tools can tell it
/// apart from other keys (spec: "Secret serialization").
pub const SECRET_PREFIX: &str = "whsec_";

/// The signature scheme identifier of HMAC-SHA256 signatures (`v1a` would be ed25519).
pub const SIGNATURE_VERSION: &str = "v1";

/// How many random bytes a generated secret has: the spec's minimum, 24 bytes (192 bits).
pub const GENERATED_SECRET_BYTES: usize = 24;

/// The spec's bounds for a symmetric secret: at least 24 bytes, at most 512 bits (64 bytes).
const SECRET_BYTES_MIN: usize = 24;
const SECRET_BYTES_MAX: usize = 64;

/// Standard base64 that accepts the text with or without its `=` padding, as the reference
/// libraries do (the Python one appends `==` before decoding).
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

type HmacSha256 = Hmac<Sha256>;

/// A webhook endpoint's signing secret.
///
/// It is shown to the partner once (and sealed for storage) as `whsec_<base64>`; its `Debug` never
/// prints it, so a secret that ends up in a log line or a panic message stays hidden.
#[derive(Clone)]
pub struct SigningSecret {
    key: Vec<u8>,
    text: String,
}

/// Why a text is not a signing secret. The messages never repeat the text itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Secrets are always written with their prefix, so a key of another kind is never mistaken
    /// for a webhook secret.
    #[error("a webhook signing secret starts with \"whsec_\"")]
    MissingPrefix,
    #[error("the part of a webhook signing secret after \"whsec_\" is not standard base64")]
    NotBase64,
    #[error("a webhook signing secret has 24 to 64 bytes, this one has {bytes}")]
    WrongLength { bytes: usize },
}

impl SigningSecret {
    /// A new secret of 24 bytes from the operating system's random source.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self::from_key(key)
    }

    /// Reads a secret written as `whsec_<base64>` (padding optional), as [`expose`](Self::expose)
    /// writes it and as partners see it.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let key = LENIENT_STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::NotBase64)?;
        if !(SECRET_BYTES_MIN..=SECRET_BYTES_MAX).contains(&key.len()) {
            return Err(SecretError::WrongLength { bytes: key.len() });
        }
        Ok(Self::from_key(key))
    }

    /// The secret as `whsec_<base64>` (padded standard base64): to show once to the partner, or
    /// to seal for storage. Nothing else should need it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    fn from_key(key: Vec<u8>) -> Self {
        let text = format!("{SECRET_PREFIX}{}", general_purpose::STANDARD.encode(&key));
        Self { key, text }
    }

    /// HMAC-SHA256 over `{msg_id}.{timestamp}.{body}`, the spec's signed content.
    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

/// The `webhook-signature` header for one delivery: one `v1,<base64>` per secret, separated by
/// spaces, in the order given (pass the newest secret first; during a rotation the old one
/// follows, so receivers that still hold the old secret keep verifying).
///
/// `timestamp` is the attempt's `webhook-timestamp` (Unix seconds), which changes on every
/// retry while `msg_id` stays the same.
pub fn signature_header(
    secrets: &[&SigningSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| {
            let mac = secret.mac(msg_id, timestamp, body);
            format!("{SIGNATURE_VERSION},{}", STANDARD.encode(mac))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether any `v1` signature in `header` was made with `secret` over this message, compared in
/// constant time (spec: "Verifying signatures"), so a receiver's timing does not leak how much
/// of a forged signature was right. Signatures of other schemes are skipped.
///
/// It does not check that `timestamp` is recent: a receiver must also do that (the reference
/// libraries allow five minutes either way) to refuse replays. Voltplan sends; this is for tests
/// and for the documentation's receiver example.
pub fn verify_signature(
    secret: &SigningSecret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> bool {
    let expected = secret.mac(msg_id, timestamp, body);
    let mut matched = false;
    for candidate in header.split(' ') {
        let Some((version, encoded)) = candidate.split_once(',') else {
            continue;
        };
        if version != SIGNATURE_VERSION {
            continue;
        }
        let Ok(decoded) = STANDARD.decode(encoded) else {
            continue;
        };
        // Every candidate is compared, not just up to the first match.
        matched |= bool::from(decoded.as_slice().ct_eq(&expected));
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vector of the reference Python library's `test_sign_function`
    // (standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py).
    const PY_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const PY_MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const PY_TIMESTAMP: i64 = 1614265330;
    const PY_BODY: &str = r#"{"test": 2432232314}"#;
    const PY_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    // The test vector of the reference Rust library's `test_sign`
    // (standard-webhooks/standard-webhooks, libraries/rust/src/lib.rs).
    const RS_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const RS_MSG_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const RS_TIMESTAMP: i64 = 1649367553;
    const RS_BODY: &str = r#"{"email":"test@example.com","username":"test_user"}"#;
    const RS_SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    #[test]
    fn signs_the_reference_libraries_test_vectors() {
        let py = SigningSecret::parse(PY_SECRET).unwrap();
        assert_eq!(
            signature_header(&[&py], PY_MSG_ID, PY_TIMESTAMP, PY_BODY.as_bytes()),
            PY_SIGNATURE
        );
        let rs = SigningSecret::parse(RS_SECRET).unwrap();
        assert_eq!(
            signature_header(&[&rs], RS_MSG_ID, RS_TIMESTAMP, RS_BODY.as_bytes()),
            RS_SIGNATURE
        );
    }

    #[test]
    fn verifies_the_test_vectors_and_refuses_changes() {
        let secret = SigningSecret::parse(PY_SECRET).unwrap();
        let body = PY_BODY.as_bytes();
        assert!(verify_signature(
            &secret,
            PY_MSG_ID,
            PY_TIMESTAMP,
            body,
            PY_SIGNATURE
        ));
        // Another body, id, timestamp or secret, and a signature of another scheme, all fail.
        assert!(!verify_signature(
            &secret,
            PY_MSG_ID,
            PY_TIMESTAMP,
            br#"{"test": 2432232315}"#,
            PY_SIGNATURE
        ));
        assert!(!verify_signature(
            &secret,
            "msg_other",
            PY_TIMESTAMP,
            body,
            PY_SIGNATURE
        ));
        assert!(!verify_signature(
            &secret,
            PY_MSG_ID,
            PY_TIMESTAMP + 1,
            body,
            PY_SIGNATURE
        ));
        let other = SigningSecret::parse(RS_SECRET).unwrap();
        assert!(!verify_signature(
            &other,
            PY_MSG_ID,
            PY_TIMESTAMP,
            body,
            PY_SIGNATURE
        ));
        let v2 = PY_SIGNATURE.replacen("v1,", "v2,", 1);
        assert!(!verify_signature(
            &secret,
            PY_MSG_ID,
            PY_TIMESTAMP,
            body,
            &v2
        ));
        // The Python library's "invalid signature" case: one character off.
        let off = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";
        assert!(!verify_signature(
            &secret,
            PY_MSG_ID,
            PY_TIMESTAMP,
            body,
            off
        ));
        assert!(!verify_signature(
            &secret,
            PY_MSG_ID,
            PY_TIMESTAMP,
            body,
            ""
        ));
        assert!(!verify_signature(
            &secret,
            PY_MSG_ID,
            PY_TIMESTAMP,
            body,
            "v1,not base64!"
        ));
    }

    #[test]
    fn rotation_lists_newest_first_and_either_secret_verifies() {
        let new = SigningSecret::parse(PY_SECRET).unwrap();
        let old = SigningSecret::parse(RS_SECRET).unwrap();
        let header = signature_header(&[&new, &old], PY_MSG_ID, PY_TIMESTAMP, PY_BODY.as_bytes());
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], PY_SIGNATURE);
        for secret in [&new, &old] {
            assert!(verify_signature(
                secret,
                PY_MSG_ID,
                PY_TIMESTAMP,
                PY_BODY.as_bytes(),
                &header
            ));
        }
        // The reference libraries' multi-signature case: the valid one among unrelated ones.
        let mixed = format!(
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {PY_SIGNATURE} v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
        );
        assert!(verify_signature(
            &new,
            PY_MSG_ID,
            PY_TIMESTAMP,
            PY_BODY.as_bytes(),
            &mixed
        ));
    }

    #[test]
    fn generated_secrets_have_24_random_bytes_and_round_trip() {
        let a = SigningSecret::generate();
        let b = SigningSecret::generate();
        assert!(a.expose().starts_with("whsec_"));
        // 24 bytes are 32 base64 characters without padding.
        assert_eq!(a.expose().len(), "whsec_".len() + 32);
        assert_ne!(a.expose(), b.expose());
        let again = SigningSecret::parse(a.expose()).unwrap();
        assert_eq!(again.expose(), a.expose());
        let header = signature_header(&[&a], "msg_1", 1, b"{}");
        assert!(verify_signature(&again, "msg_1", 1, b"{}", &header));
    }

    #[test]
    fn parse_refuses_what_is_not_a_secret() {
        assert_eq!(
            SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
            SecretError::MissingPrefix
        );
        assert_eq!(
            SigningSecret::parse("whsec_!!!!").unwrap_err(),
            SecretError::NotBase64
        );
        assert_eq!(
            SigningSecret::parse("whsec_AAAA").unwrap_err(),
            SecretError::WrongLength { bytes: 3 }
        );
        assert_eq!(
            SigningSecret::parse("whsec_").unwrap_err(),
            SecretError::WrongLength { bytes: 0 }
        );
        let too_long = format!("whsec_{}", STANDARD.encode([7u8; 65]));
        assert_eq!(
            SigningSecret::parse(&too_long).unwrap_err(),
            SecretError::WrongLength { bytes: 65 }
        );
        // Unpadded base64 is read like padded, and written back padded.
        let unpadded = format!("whsec_{}", STANDARD.encode([1u8; 25]).trim_end_matches('='));
        let secret = SigningSecret::parse(&unpadded).unwrap();
        assert_eq!(
            secret.expose(),
            format!("whsec_{}", STANDARD.encode([1u8; 25]))
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let secret = SigningSecret::parse(PY_SECRET).unwrap();
        let shown = format!("{secret:?} {:?}", Some(&secret));
        assert_eq!(shown, "SigningSecret(***) Some(SigningSecret(***))");
        assert!(!shown.contains("MfKQ"));
    }
}
