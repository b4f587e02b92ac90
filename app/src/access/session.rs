//! The browser's session cookie: `issued time | 16 random bytes | HMAC-SHA-256`,
//! base64url, under a key made at each start. Nothing is stored per session
//! except the logged-out ones (until they would expire anyway), so a restart logs
//! everyone out and nothing is written to the card.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "streamer_session";

/// How long a login lasts (the cookie's Max-Age), unless the streamer restarts
/// first.
pub const LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// The most logged-out sessions remembered; past that the oldest are forgotten
/// early (a forgotten one is only as good as a stolen live cookie).
pub const MAX_REVOKED: usize = 4096;

const TOKEN_BYTES: usize = 8 + 16 + 32;

/// HMAC-SHA-256 under `key` of the parts, each prefixed by its length.
pub fn mac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// What identifies a session once its signature checked: when it was issued,
/// and its random part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token {
    issued: u64,
    id: [u8; 16],
}

/// A new cookie value.
pub fn issue(key: &[u8; 32], unix_seconds: u64, random: [u8; 16]) -> String {
    let issued = unix_seconds.to_be_bytes();
    let signature = mac(key, &[b"session", &issued, &random]);
    let mut bytes = Vec::with_capacity(TOKEN_BYTES);
    bytes.extend_from_slice(&issued);
    bytes.extend_from_slice(&random);
    bytes.extend_from_slice(&signature);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The session a cookie value names, when its signature is right and it has
/// not expired at `unix_seconds`.
pub fn verify(key: &[u8; 32], value: &str, unix_seconds: u64) -> Option<Token> {
    if value.len() > 2 * TOKEN_BYTES {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .ok()?;
    if bytes.len() != TOKEN_BYTES {
        return None;
    }
    let (issued, rest) = bytes.split_at(8);
    let (id, signature) = rest.split_at(16);
    let expected = mac(key, &[b"session", issued, id]);
    if !bool::from(expected.ct_eq(signature)) {
        return None;
    }
    let issued = u64::from_be_bytes(issued.try_into().ok()?);
    let age = unix_seconds.checked_sub(issued)?;
    if age > LIFETIME.as_secs() {
        return None;
    }
    Some(Token {
        issued,
        id: id.try_into().ok()?,
    })
}

/// The sessions logged out before they expired.
#[derive(Debug, Default)]
pub struct Revoked {
    tokens: HashMap<Token, u64>,
}

impl Revoked {
    /// Whether `token` was logged out.
    pub fn contains(&self, token: &Token) -> bool {
        self.tokens.contains_key(token)
    }

    /// Logs `token` out at `unix_seconds`; forgets the expired ones, and the
    /// oldest when over [`MAX_REVOKED`].
    pub fn insert(&mut self, token: Token, unix_seconds: u64) {
        let lifetime = LIFETIME.as_secs();
        self.tokens
            .retain(|t, _| unix_seconds.saturating_sub(t.issued) <= lifetime);
        if self.tokens.len() >= MAX_REVOKED {
            if let Some(oldest) = self.tokens.keys().min_by_key(|t| t.issued).copied() {
                self.tokens.remove(&oldest);
            }
        }
        self.tokens.insert(token, unix_seconds);
    }

    /// How many are remembered.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: [u8; 32] = [5; 32];

    #[test]
    fn a_cookie_checks_until_it_expires_and_not_from_the_future() {
        let value = issue(&KEY, 10_000, [1; 16]);
        assert!(value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert!(verify(&KEY, &value, 10_000).is_some());
        assert!(verify(&KEY, &value, 10_000 + LIFETIME.as_secs()).is_some());
        assert!(verify(&KEY, &value, 10_001 + LIFETIME.as_secs()).is_none());
        assert!(verify(&KEY, &value, 9_999).is_none());
        assert!(verify(&[6; 32], &value, 10_000).is_none());
    }

    #[test]
    fn the_revoked_list_is_bounded() {
        let mut revoked = Revoked::default();
        for i in 0..(MAX_REVOKED as u64 + 10) {
            let token = verify(&KEY, &issue(&KEY, 1_000 + i, [0; 16]), 1_000 + i).unwrap();
            revoked.insert(token, 1_000 + i);
        }
        assert_eq!(revoked.len(), MAX_REVOKED);
        // Expired ones go first.
        let late = 1_000 + LIFETIME.as_secs() + MAX_REVOKED as u64;
        let token = verify(&KEY, &issue(&KEY, late, [2; 16]), late).unwrap();
        revoked.insert(token, late);
        assert!(revoked.len() < MAX_REVOKED);
        assert!(revoked.contains(&token));
    }

    proptest! {
        #[test]
        fn no_altered_cookie_checks(flip in 0usize..75, bit in 0u8..6) {
            let value = issue(&KEY, 50_000, [3; 16]);
            let mut bytes = value.into_bytes();
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let at = flip % bytes.len();
            let index = alphabet.iter().position(|&c| c == bytes[at]).unwrap();
            bytes[at] = alphabet[index ^ (1 << bit)];
            let altered = String::from_utf8(bytes).unwrap();
            // The last character carries only 4 bits of the signature: flipping
            // its low bits may leave the decoded bytes unchanged (or be invalid).
            if at + 1 < altered.len() {
                prop_assert!(verify(&KEY, &altered, 50_000).is_none());
            }
        }

        #[test]
        fn garbage_never_checks(text in ".{0,120}") {
            prop_assert!(verify(&KEY, &text, 50_000).is_none());
        }
    }
}
