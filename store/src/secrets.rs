//! Secrets: device passwords, dashboard passwords, API and session tokens.
//!
//! Device and user passwords are stored as argon2id PHC strings (RFC 9106, the `argon2` crate's
//! defaults). API and session tokens are 256-bit random values: a plain SHA-256 of them is as
//! good as a slow hash (nothing to brute-force) and lets us look them up by hash.
//! Nothing here logs a secret.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

/// At most this many argon2 computations run at once. Each takes 19 MiB (the crate's default
/// `m_cost`, RFC 9106's second recommended option): 10 000 devices connecting at once to the
/// embedded broker drove the blocking pool to hundreds of parallel hashes and the process to
/// 19 GB. Extra ones wait; the work is CPU-bound, so more in parallel than cores gains nothing.
struct Slots {
    used: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
}

static SLOTS: Slots = Slots {
    used: std::sync::Mutex::new(0),
    freed: std::sync::Condvar::new(),
};

fn max_slots() -> usize {
    // Asked once: `available_parallelism` reads cgroup files on every call (1.5 % of the
    // gateway's CPU while 10 000 devices connected).
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// Holds one argon2 slot until dropped.
struct Slot;

impl Slot {
    fn take() -> Slot {
        // A poisoned lock only means another thread panicked while counting; the count is
        // still a plain integer, so keep going with it.
        let mut used = SLOTS.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used >= max_slots() {
            used = SLOTS.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut used = SLOTS.used.lock().unwrap_or_else(|e| e.into_inner());
        *used -= 1;
        SLOTS.freed.notify_one();
    }
}

/// A random secret as lowercase hex, `bytes` long before encoding.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex(&buf)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A new device secret: 128 bits, easy to type into a device's setup page.
pub fn new_device_secret() -> String {
    random_hex(16)
}

/// A new API bearer token; the `vgl_` prefix lets secret scanners recognise a leaked one.
pub fn new_api_token() -> String {
    format!("vgl_{}", random_hex(32))
}

pub fn new_session_token() -> String {
    random_hex(32)
}

pub fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

/// Mosquitto's password-file hash of `password` (what `mosquitto_passwd` 2.0 writes):
/// `$7$101$<salt>$<hash>`, PBKDF2-HMAC-SHA512 with 101 iterations, a 12-byte salt and a 64-byte
/// result, both standard Base64 (docs/architecture.md, "Dependency facts"). Kept
/// beside the argon2 hash so `vigil mosquitto export` can write a password file later: the
/// secret itself is never stored.
pub fn mosquitto_hash(password: &str) -> String {
    let mut salt = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    mosquitto_hash_with_salt(password, &salt)
}

fn mosquitto_hash_with_salt(password: &str, salt: &[u8]) -> String {
    use base64::Engine as _;
    let mut out = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password.as_bytes(), salt, 101, &mut out);
    let b64 = base64::engine::general_purpose::STANDARD;
    format!("$7$101${}${}", b64.encode(salt), b64.encode(out))
}

/// A person's password (dashboard users): argon2id with the crate's defaults (m = 19 MiB,
/// t = 2, p = 1: RFC 9106 §4's second recommended option), because people choose guessable
/// passwords and a stolen database must make each guess expensive.
pub fn hash_password(password: &str) -> String {
    hash_with(password, Params::default())
}

/// argon2id cost for device secrets: m = 1 MiB, t = 1, p = 1. Device secrets are 128-bit random
/// values made by `vigil device add`, not something a person chose: nobody can guess one,
/// however cheap each guess is, so a memory-hard hash buys nothing there and its cost lands on
/// the gateway instead. At the password cost two cores admitted ≈ 25 devices/s: 1 000 devices
/// reconnecting after a gateway restart took 21 s and 10 000 never all got in, holding
/// thousands of half-open connections (docs/benchmarks.md). NIST SP 800-63B §5.1.2.2 asks only
/// for an approved one-way hash for secrets of at least 112 bits of entropy; we keep argon2id
/// (the registry's format) at a small cost. Verification reads the cost from the stored PHC
/// string, so hashes made at the old cost keep working until the secret is rotated.
const DEVICE_SECRET_COST: (u32, u32, u32) = (1024, 1, 1);

/// A device secret's hash (see [`DEVICE_SECRET_COST`]).
pub fn hash_device_secret(secret: &str) -> String {
    let (m, t, p) = DEVICE_SECRET_COST;
    hash_with(
        secret,
        Params::new(m, t, p, None).expect("constant argon2 parameters are valid"),
    )
}

fn hash_with(password: &str, params: Params) -> String {
    let _slot = Slot::take();
    let salt = SaltString::generate(&mut OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with valid parameters and a fresh salt cannot fail")
        .to_string()
}

/// [`verify_password`] for async callers: waits for a slot as a future (FIFO), then hashes on
/// the blocking pool. Waiting inside blocking threads instead let 300 devices connecting at
/// once park ~300 blocking-pool threads, each of which had run a 19 MiB hash once: the embedded
/// broker's RSS grew by ≈ 0.8 MiB per connected device (docs/benchmarks.md). A caller that gave
/// up while queued (the broker's handshake timeout dropped the connection) costs no hash: with
/// 1 000 devices connecting at once, hashes for connections that had already timed out kept both
/// cores busy without admitting anyone.
pub async fn verify_password_async(password: String, phc: String) -> bool {
    static GATE: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    /// Marks the request abandoned when its future is dropped.
    struct Waiting(Arc<AtomicBool>);
    impl Drop for Waiting {
        fn drop(&mut self) {
            self.0.store(false, Relaxed);
        }
    }
    let gate = GATE.get_or_init(|| tokio::sync::Semaphore::new(max_slots()));
    let waiting = Waiting(Arc::new(AtomicBool::new(true)));
    let Ok(_permit) = gate.acquire().await else {
        return false; // never closed
    };
    let still_wanted = waiting.0.clone();
    tokio::task::spawn_blocking(move || {
        still_wanted.load(Relaxed) && verify_password(&password, &phc)
    })
    .await
    .unwrap_or(false)
}

/// Device secrets already proven against their argon2 hash, so that a device reconnecting
/// (flaky home Wi-Fi, a broker restart) costs one SHA-256 instead of a 19 MiB argon2 run. Keyed
/// by device id; an entry counts only while the registry still holds the same hash, so a rotated
/// secret or a re-created device is checked with argon2 again. Kept in memory only.
#[derive(Default)]
pub struct VerifiedSecrets {
    map: std::sync::Mutex<std::collections::HashMap<String, [u8; 32]>>,
}

impl VerifiedSecrets {
    /// SHA-256 over the stored hash (salted, so equal secrets of two devices differ) and the
    /// secret. Device secrets are 128-bit random values, so the digest is not brute-forceable.
    fn key(phc: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(phc.as_bytes());
        h.update([0u8]);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// Whether this secret was verified against this hash before.
    pub fn known(&self, device_id: &str, phc: &str, password: &str) -> bool {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(device_id) == Some(&Self::key(phc, password))
    }

    pub fn remember(&self, device_id: &str, phc: &str, password: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded by the registry in practice; a hard cap keeps a bug from growing it forever.
        if map.len() >= 1_000_000 {
            map.clear();
        }
        map.insert(device_id.to_string(), Self::key(phc, password));
    }
}

/// Checks `password` against an argon2 PHC string at the cost the string names. Constant-time
/// comparison is done inside argon2's verifier.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let _slot = Slot::take();
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_verified_secret_is_known_only_for_the_same_hash() {
        let v = VerifiedSecrets::default();
        assert!(!v.known("dev-1", "$argon2id$a", "s3cret"));
        v.remember("dev-1", "$argon2id$a", "s3cret");
        assert!(v.known("dev-1", "$argon2id$a", "s3cret"));
        assert!(!v.known("dev-1", "$argon2id$a", "other"), "wrong secret");
        assert!(!v.known("dev-1", "$argon2id$b", "s3cret"), "rotated secret");
        assert!(!v.known("dev-2", "$argon2id$a", "s3cret"), "another device");
    }

    #[tokio::test]
    async fn async_verification_agrees_with_the_hash() {
        let phc = hash_password("pw");
        assert!(verify_password_async("pw".into(), phc.clone()).await);
        assert!(!verify_password_async("nope".into(), phc).await);
    }

    use super::*;

    #[test]
    fn argon2_runs_at_most_one_per_core_at_once() {
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let peak = peak.clone();
                std::thread::spawn(move || {
                    let _slot = Slot::take();
                    let now = *SLOTS.used.lock().unwrap();
                    peak.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(peak.load(std::sync::atomic::Ordering::SeqCst) <= max_slots());
    }

    #[test]
    fn device_secrets_are_hashed_at_their_own_cost_and_old_hashes_still_verify() {
        let device = hash_device_secret("0123456789abcdef0123456789abcdef");
        assert!(
            device.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
            "{device}"
        );
        assert!(verify_password("0123456789abcdef0123456789abcdef", &device));
        assert!(!verify_password(
            "0123456789abcdef0123456789abcdee",
            &device
        ));
        // A device registered before the change carries the password cost and still verifies.
        let old = hash_password("0123456789abcdef0123456789abcdef");
        assert!(old.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{old}");
        assert!(verify_password("0123456789abcdef0123456789abcdef", &old));
    }

    #[test]
    fn password_round_trip() {
        let h = hash_password("correct horse");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn mosquitto_hash_has_the_password_file_shape() {
        let h = mosquitto_hash("s3cret");
        let parts: Vec<&str> = h.split('$').collect();
        assert_eq!(parts[..3], ["", "7", "101"]);
        assert_eq!(parts[3].len(), 16, "12-byte salt in Base64");
        assert_eq!(parts[4].len(), 88, "64-byte hash in Base64");
        // Deterministic for a given salt, different for another password.
        let salt = [7u8; 12];
        assert_eq!(
            mosquitto_hash_with_salt("a", &salt),
            mosquitto_hash_with_salt("a", &salt)
        );
        assert_ne!(
            mosquitto_hash_with_salt("a", &salt),
            mosquitto_hash_with_salt("b", &salt)
        );
    }

    #[test]
    fn tokens_are_distinct_and_hashed() {
        let a = new_api_token();
        assert!(a.starts_with("vgl_") && a.len() == 68);
        assert_ne!(a, new_api_token());
        assert_eq!(sha256_hex("abc").len(), 64);
    }
}
