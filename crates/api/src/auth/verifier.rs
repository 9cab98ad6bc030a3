//! Argon2id checks of presented secrets (client secrets, chargers' passwords) on a fixed set of
//! threads, one per core, each reusing its own Argon2 memory.
//!
//! Each check takes 19 MiB for some tens of milliseconds. On tokio's blocking pool every request
//! in flight ran its own (up to 512 threads) and glibc kept each thread's 19 MiB afterwards:
//! `bench/ocpp-swarm` measured 3.8 GB resident after 200 chargers connected 64 at a time. Here
//! checks wait their turn (the request timeout still bounds the wait) and memory stays bounded.

use std::sync::mpsc::Sender;
use std::sync::{Arc, LazyLock, Mutex};

use argon2::password_hash::{Output, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params};
use tokio::sync::oneshot;

/// A password, the stored hash, and where the verdict goes.
type Check = (String, String, oneshot::Sender<bool>);

/// Checks `password` against `hash` (Argon2id) on the verifier threads, in the order asked;
/// counted by `client` (`known`, `unknown`, `charger`).
pub(crate) async fn verify(password: &str, hash: String, client: &'static str) -> bool {
    static VERIFIER: LazyLock<Sender<Check>> = LazyLock::new(|| {
        let (sender, receiver) = std::sync::mpsc::channel::<Check>();
        let receiver = Arc::new(Mutex::new(receiver));
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        for i in 0..threads {
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-verify-{i}"))
                .spawn(move || {
                    let mut memory = Vec::new();
                    loop {
                        let next = receiver.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok((password, hash, verdict)) = next else {
                            return;
                        };
                        // A request that gave up (timed out, hung up) needs no verdict.
                        if !verdict.is_closed() {
                            let _ = verdict.send(verify_reusing(&password, &hash, &mut memory));
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "could not start a password verifier thread");
            }
        }
        sender
    });
    metrics::counter!("voltplan_client_secret_verifications_total", "client" => client)
        .increment(1);
    let (verdict, answer) = oneshot::channel();
    let queued = VERIFIER.send((password.to_owned(), hash, verdict));
    queued.is_ok() && answer.await.unwrap_or(false)
}

/// `secret::verify_secret`, computed in `memory` (kept by the calling thread): argon2 allocates
/// and frees its 19 MiB per check otherwise, and glibc keeps such freed blocks in each thread's
/// arena (measured: 210 MiB resident after a thousand handshakes on two threads, whatever N).
fn verify_reusing(password: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(stored) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(stored.algorithm),
        Params::try_from(&stored),
    ) else {
        return false;
    };
    let Ok(version) = stored.version.map(argon2::Version::try_from).transpose() else {
        return false;
    };
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    memory.resize(params.block_count(), Block::default());
    let mut computed = [0u8; Output::MAX_LENGTH];
    let computed = &mut computed[..expected.len()];
    Argon2::new(algorithm, version.unwrap_or_default(), params)
        .hash_password_into_with_memory(password.as_bytes(), salt, computed, &mut memory[..])
        .is_ok()
        // `Output`'s comparison takes constant time.
        && Output::new(computed).is_ok_and(|computed| computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reusing_memory_verifies_like_the_secret_module() {
        let hash = crate::auth::secret::hash_secret("swarm-password-0123456789").unwrap();
        let mut memory = Vec::new();
        for _ in 0..2 {
            assert!(verify_reusing(
                "swarm-password-0123456789",
                &hash,
                &mut memory
            ));
            assert!(!verify_reusing(
                "swarm-password-012345678",
                &hash,
                &mut memory
            ));
        }
        assert!(!verify_reusing("x", "not a PHC string", &mut memory));
        assert!(verify_reusing(
            "x",
            &crate::auth::secret::hash_secret("x").unwrap(),
            &mut memory
        ));
    }
}
