//! Who may watch: the owner's user name and password, checked the same way for
//! every protocol. Sans-IO: no sockets, no clocks of its own, no tokio; the web
//! server (`web::guard`, `web::login`) and the RTSP server (`rtsp::session`) are
//! its shells.
//!
//! - [`password`]: the configured secret, plain or an Argon2id PHC hash, and
//!   `streamer hash-password`.
//! - [`credentials`]: reading `Authorization` (Basic, Digest) and `Cookie` headers.
//! - [`session`]: the browser's session cookie, signed with a key made at each
//!   start (a restart logs everyone out; nothing is written to the card).
//! - [`digest`]: HTTP Digest (RFC 2617, MD5) for RTSP clients.
//! - [`brake`]: wrong passwords slow down, per client address.
//! - [`origin`]: `access.allowed_origins`, the other pages that may use the video.
//!
//! [`Access`] puts them together: one per server, shared by HTTP and RTSP.

pub mod brake;
pub mod credentials;
pub mod digest;
pub mod origin;
pub mod password;
pub mod session;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

pub use brake::Brake;
pub use password::{PasswordError, Secret};

/// The realm of the Basic and Digest challenges, and the name the login page
/// shows.
pub const REALM: &str = "streamer";

/// What [`Access::new`] refuses.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The password is a hash that cannot be read.
    #[error("access.password: {0}")]
    Password(#[from] PasswordError),
    /// No randomness for the session key.
    #[error("no randomness for the session key: {0}")]
    Random(String),
}

/// Whether and how a password is set, for `/api/status` and `check-config` (never
/// the password itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PasswordState {
    /// No password: anyone on the network can watch.
    None,
    /// A password in plain text in the file.
    Plain,
    /// An Argon2id hash in the file.
    Hashed,
    /// `[access]` has a mistake: nobody can log in until it is fixed.
    Unusable,
}

/// The outcome of a password attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The right user and password.
    Granted,
    /// Wrong: answer 401 (the brake has counted it).
    Denied,
    /// Too many wrong attempts from this address: answer 429 with this
    /// `Retry-After`, without looking at the password.
    Braked(Duration),
}

/// The access policy: one per server, shared by every connection.
pub struct Access {
    user: String,
    secret: Option<Secret>,
    /// Signs session cookies and Digest nonces; made at each start.
    key: [u8; 32],
    /// MD5(user:realm:password), when the password is in plain text (Digest).
    digest_ha1: Option<String>,
    /// A keyed digest of the last password a slow hash accepted, so that the next
    /// check of the same password is quick.
    verified: Mutex<Option<[u8; 32]>>,
    /// Held while a slow hash is computed: one at a time, so that guesses from
    /// many addresses at once cannot take 19 MiB of memory each.
    slow: Mutex<()>,
    /// Slow hashes running now, and the most seen at once (checked by a test).
    slow_running: AtomicU64,
    slow_most: AtomicU64,
    brake: Mutex<Brake>,
    sessions: Mutex<session::Revoked>,
    /// `[access]` could not be read: locked, and no password opens it.
    closed: bool,
    stats: Counters,
}

/// What the password checks saw, for `/metrics`.
#[derive(Debug, Default)]
struct Counters {
    granted: AtomicU64,
    denied: AtomicU64,
    braked: AtomicU64,
}

/// Counts of password attempts since the start (`/metrics`: an alert on
/// `denied` finds someone guessing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccessStats {
    /// Right passwords (Basic, the login form, RTSP).
    pub granted: u64,
    /// Wrong ones.
    pub denied: u64,
    /// Attempts refused unread because their address was braked.
    pub braked: u64,
    /// Addresses the brake tracks now.
    pub braked_addresses: usize,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("user", &self.user)
            .field("password", &self.password_state())
            .finish_non_exhaustive()
    }
}

impl Access {
    /// The policy for `user` and `password` (empty: open to all), with a fresh
    /// random key.
    pub fn new(user: &str, password: &str) -> Result<Access, AccessError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| AccessError::Random(e.to_string()))?;
        Self::with_key(user, password, key)
    }

    /// The policy with a given key (tests, fuzzing).
    pub fn with_key(user: &str, password: &str, key: [u8; 32]) -> Result<Access, AccessError> {
        let secret = match password {
            "" => None,
            text => Some(Secret::parse(text)?),
        };
        let digest_ha1 = match &secret {
            Some(Secret::Plain(plain)) => Some(digest::ha1(user, REALM, plain)),
            _ => None,
        };
        Ok(Access {
            user: user.to_owned(),
            secret,
            key,
            digest_ha1,
            verified: Mutex::new(None),
            slow: Mutex::new(()),
            slow_running: AtomicU64::new(0),
            slow_most: AtomicU64::new(0),
            brake: Mutex::new(Brake::new(brake::CAPACITY)),
            sessions: Mutex::new(session::Revoked::default()),
            closed: false,
            stats: Counters::default(),
        })
    }

    /// Locked with no way in: for when `[access]` has a mistake, so that the
    /// mistake does not open the camera to everyone.
    pub fn closed() -> Access {
        let mut access = Self::open();
        access.closed = true;
        access
    }

    /// No password: everything is open.
    pub fn open() -> Access {
        Self::with_key("streamer", "", [0; 32]).expect("an empty password is always valid")
    }

    /// Whether a password is set (then everything but `/healthz` asks for it).
    pub fn locked(&self) -> bool {
        self.secret.is_some() || self.closed
    }

    /// Whether and how the password is set.
    pub fn password_state(&self) -> PasswordState {
        if self.closed {
            return PasswordState::Unusable;
        }
        match &self.secret {
            None => PasswordState::None,
            Some(Secret::Plain(_)) => PasswordState::Plain,
            Some(Secret::Hashed(_)) => PasswordState::Hashed,
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Whether [`Access::attempt`] with this password is quick (no slow hash to
    /// compute): the shell runs a slow one off the async runtime.
    pub fn is_quick(&self, password: &str) -> bool {
        match &self.secret {
            Some(Secret::Hashed(_)) => {
                let seen = self.keyed(password.as_bytes());
                let verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
                verified.is_some_and(|v| bool::from(v.ct_eq(&seen)))
            }
            _ => true,
        }
    }

    /// Checks a user and password from `client` at `now`, through the brake.
    /// With a hashed password this may take a good fraction of a second the first
    /// time (see [`Access::is_quick`]).
    pub fn attempt(&self, client: IpAddr, user: &str, password: &str, now: Instant) -> Attempt {
        self.through_brake(client, now, || self.check(user, password))
    }

    /// Runs `check` unless `client` is braked, and counts its outcome in the
    /// brake and the stats.
    fn through_brake(&self, client: IpAddr, now: Instant, check: impl FnOnce() -> bool) -> Attempt {
        if let Err(retry_after) = self.brake().allow(client, now) {
            self.stats.braked.fetch_add(1, Ordering::Relaxed);
            return Attempt::Braked(retry_after);
        }
        if check() {
            self.stats.granted.fetch_add(1, Ordering::Relaxed);
            self.brake().succeeded(client);
            Attempt::Granted
        } else {
            self.stats.denied.fetch_add(1, Ordering::Relaxed);
            self.brake().failed(client, now);
            Attempt::Denied
        }
    }

    /// The counts of attempts since the start.
    pub fn stats(&self) -> AccessStats {
        AccessStats {
            granted: self.stats.granted.load(Ordering::Relaxed),
            denied: self.stats.denied.load(Ordering::Relaxed),
            braked: self.stats.braked.load(Ordering::Relaxed),
            braked_addresses: self.brake().len(),
        }
    }

    /// Checks a Digest `Authorization` for `method` against `nonce` (the one this
    /// connection was challenged with), through the brake. Denied when the
    /// password is hashed (Digest needs it in plain text).
    pub fn attempt_digest(
        &self,
        client: IpAddr,
        method: &str,
        response: &credentials::DigestResponse,
        nonce: &str,
        now: Instant,
    ) -> Attempt {
        self.through_brake(client, now, || match &self.digest_ha1 {
            Some(ha1) => {
                let user_ok = bool::from(response.username.as_bytes().ct_eq(self.user.as_bytes()));
                let realm_ok = response.realm == REALM;
                let nonce_ok = bool::from(response.nonce.as_bytes().ct_eq(nonce.as_bytes()));
                let response_ok = digest::verify(ha1, method, response);
                user_ok & realm_ok & nonce_ok & response_ok
            }
            None => false,
        })
    }

    /// Whether Digest can be offered (the password is in plain text).
    pub fn digest_available(&self) -> bool {
        self.digest_ha1.is_some()
    }

    /// The user and password compared, in time that does not depend on where
    /// they differ.
    fn check(&self, user: &str, password: &str) -> bool {
        if self.closed {
            return false;
        }
        let Some(secret) = &self.secret else {
            return true;
        };
        let user_ok = bool::from(
            self.keyed(user.as_bytes())
                .ct_eq(&self.keyed(self.user.as_bytes())),
        );
        let password_ok = match secret {
            Secret::Plain(plain) => bool::from(
                self.keyed(password.as_bytes())
                    .ct_eq(&self.keyed(plain.as_bytes())),
            ),
            Secret::Hashed(_) if self.is_quick(password) => true,
            Secret::Hashed(_) => {
                // One slow hash at a time; the one before may have verified
                // this same password meanwhile.
                let _slow = self.slow.lock().unwrap_or_else(PoisonError::into_inner);
                if self.is_quick(password) {
                    return user_ok;
                }
                let running = self.slow_running.fetch_add(1, Ordering::SeqCst) + 1;
                self.slow_most.fetch_max(running, Ordering::SeqCst);
                let right = secret.verify(password);
                self.slow_running.fetch_sub(1, Ordering::SeqCst);
                if right {
                    *self.verified.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(self.keyed(password.as_bytes()));
                }
                right
            }
        };
        user_ok & password_ok
    }

    /// HMAC-SHA-256 of `data` under the start's key: equal-length values to
    /// compare in constant time, whatever the lengths of the originals.
    fn keyed(&self, data: &[u8]) -> [u8; 32] {
        session::mac(&self.key, &[b"compare", data])
    }

    fn brake(&self) -> std::sync::MutexGuard<'_, Brake> {
        self.brake.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new session cookie's value, issued at `unix_seconds`.
    pub fn issue_session(&self, unix_seconds: u64, random: [u8; 16]) -> String {
        session::issue(&self.key, unix_seconds, random)
    }

    /// Whether a session cookie's value is one this start issued, not expired
    /// and not logged out.
    pub fn session_valid(&self, value: &str, unix_seconds: u64) -> bool {
        if self.closed {
            return false;
        }
        match session::verify(&self.key, value, unix_seconds) {
            Some(token) => !self
                .sessions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(&token),
            None => false,
        }
    }

    /// Logs a session out: its cookie is refused from now on.
    pub fn end_session(&self, value: &str, unix_seconds: u64) {
        if let Some(token) = session::verify(&self.key, value, unix_seconds) {
            self.sessions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(token, unix_seconds);
        }
    }

    /// A Digest nonce for a new challenge, from 16 random bytes, bound to this
    /// start's key.
    pub fn digest_nonce(&self, random: [u8; 16]) -> String {
        digest::nonce(&self.key, random)
    }

    /// The `WWW-Authenticate` values for a 401: Digest first (when available),
    /// then Basic.
    pub fn challenges(&self, nonce: Option<&str>) -> Vec<String> {
        let mut out = Vec::new();
        if let (true, Some(nonce)) = (self.digest_available(), nonce) {
            out.push(digest::challenge(REALM, nonce));
        }
        out.push(format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""));
        out
    }

    /// Checks the brake's bookkeeping (tests).
    pub fn check_invariants(&self) {
        self.brake().check_invariants();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20));

    #[test]
    fn an_empty_password_opens_everything() {
        let access = Access::open();
        assert!(!access.locked());
        assert_eq!(access.password_state(), PasswordState::None);
        assert_eq!(
            access.attempt(CLIENT, "x", "y", Instant::now()),
            Attempt::Granted
        );
    }

    #[test]
    fn a_closed_access_lets_nobody_in() {
        let access = Access::closed();
        assert!(access.locked());
        assert_eq!(access.password_state(), PasswordState::Unusable);
        assert_eq!(
            access.attempt(CLIENT, "streamer", "", Instant::now()),
            Attempt::Denied
        );
        let cookie = access.issue_session(5, [0; 16]);
        assert!(!access.session_valid(&cookie, 6));
    }

    #[test]
    fn a_plain_password_needs_the_user_and_the_password() {
        let access = Access::with_key("owner", "s3cret phrase", [7; 32]).unwrap();
        let now = Instant::now();
        assert!(access.locked());
        assert_eq!(access.password_state(), PasswordState::Plain);
        assert_eq!(
            access.attempt(CLIENT, "owner", "s3cret phrase", now),
            Attempt::Granted
        );
        assert_eq!(
            access.attempt(CLIENT, "owner", "s3cret phrasE", now),
            Attempt::Denied
        );
        assert_eq!(access.attempt(CLIENT, "owner", "", now), Attempt::Denied);
        assert_eq!(
            access.attempt(CLIENT, "other", "s3cret phrase", now),
            Attempt::Denied
        );
        assert!(access.digest_available());
        assert!(!format!("{access:?}").contains("s3cret"));
    }

    #[test]
    fn a_hashed_password_is_slow_once_then_quick() {
        let hash = password::hash("open sesame").unwrap();
        let access = Access::with_key("streamer", &hash, [1; 32]).unwrap();
        let now = Instant::now();
        assert_eq!(access.password_state(), PasswordState::Hashed);
        assert!(!access.digest_available());
        assert!(!access.is_quick("open sesame"));
        assert_eq!(
            access.attempt(CLIENT, "streamer", "open sesame", now),
            Attempt::Granted
        );
        assert!(access.is_quick("open sesame"));
        assert!(!access.is_quick("open sesamE"));
        assert_eq!(
            access.attempt(CLIENT, "streamer", "open sesamE", now),
            Attempt::Denied
        );
        assert_eq!(
            access.attempt(CLIENT, "streamer", "open sesame", now),
            Attempt::Granted
        );
        assert_eq!(access.challenges(Some("n")).len(), 1, "Basic only");
    }

    #[test]
    fn slow_checks_run_one_at_a_time() {
        let hash = password::hash("one at a time").unwrap();
        let access = std::sync::Arc::new(Access::with_key("streamer", &hash, [6; 32]).unwrap());
        let threads: Vec<_> = (0..4u8)
            .map(|i| {
                let access = access.clone();
                std::thread::spawn(move || {
                    let client = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i));
                    access.attempt(client, "streamer", &format!("guess {i}"), Instant::now())
                })
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().unwrap(), Attempt::Denied);
        }
        assert_eq!(access.slow_most.load(Ordering::SeqCst), 1);
        assert!(access.slow.try_lock().is_ok(), "released after the checks");
    }

    #[test]
    fn sessions_are_valid_until_logged_out_or_expired_and_only_for_this_key() {
        let access = Access::with_key("streamer", "pw", [2; 32]).unwrap();
        let other = Access::with_key("streamer", "pw", [3; 32]).unwrap();
        let cookie = access.issue_session(1_000, [9; 16]);
        assert!(access.session_valid(&cookie, 1_001));
        assert!(
            !other.session_valid(&cookie, 1_001),
            "a new start's key refuses it"
        );
        assert!(!access.session_valid(&cookie, 1_000 + session::LIFETIME.as_secs() + 1));
        let second = access.issue_session(1_000, [8; 16]);
        access.end_session(&cookie, 1_002);
        assert!(!access.session_valid(&cookie, 1_003));
        assert!(
            access.session_valid(&second, 1_003),
            "only that session ended"
        );
    }

    #[test]
    fn wrong_passwords_brake_that_address_only() {
        let access = Access::with_key("streamer", "pw", [4; 32]).unwrap();
        let owner = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 30));
        let now = Instant::now();
        let mut braked = false;
        for _ in 0..50 {
            if let Attempt::Braked(after) = access.attempt(CLIENT, "streamer", "guess", now) {
                assert!(after > Duration::ZERO);
                braked = true;
                break;
            }
        }
        assert!(braked, "an attacker is braked");
        // Even the right password is not looked at while braked.
        assert!(matches!(
            access.attempt(CLIENT, "streamer", "pw", now),
            Attempt::Braked(_)
        ));
        assert_eq!(
            access.attempt(owner, "streamer", "pw", now),
            Attempt::Granted
        );
        let stats = access.stats();
        assert_eq!(
            (stats.granted, stats.braked, stats.braked_addresses),
            (1, 2, 1)
        );
        assert_eq!(stats.denied, u64::from(brake::FREE_FAILURES) + 1);
        access.check_invariants();
    }
}
