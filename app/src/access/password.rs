//! The configured password: plain text, or an Argon2id hash in the PHC string
//! format (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) that
//! `streamer hash-password` prints, so that the password itself need not be on
//! the card.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// The most memory a configured hash may ask for per check, in KiB (256 MiB):
/// more would exhaust a Pi.
pub const MAX_MEMORY_KIB: u32 = 256 * 1024;

/// The longest password accepted, in bytes (longer input is refused unread).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a password or hash is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Looks like a PHC hash but is not a readable Argon2 one.
    #[error("starts like a hash (\"$argon2\") but is not one `streamer hash-password` makes: {0}")]
    BadHash(String),
    /// A hash that asks for too much memory per check.
    #[error("the hash asks for {0} KiB per check; at most {MAX_MEMORY_KIB} KiB is accepted")]
    TooCostly(u32),
    /// Not usable as a password.
    #[error("{0}")]
    Unusable(&'static str),
    /// Hashing failed.
    #[error("cannot hash the password: {0}")]
    Hashing(String),
}

/// The password as configured.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The password itself.
    Plain(String),
    /// An Argon2 PHC string.
    Hashed(String),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Plain(_) => f.write_str("Plain(not shown)"),
            Secret::Hashed(_) => f.write_str("Hashed(not shown)"),
        }
    }
}

/// Whether `text` is meant as a hash (then it must read as one).
pub fn is_hash(text: &str) -> bool {
    text.starts_with("$argon2")
}

impl Secret {
    /// Reads the configured value (not empty). The messages never repeat it.
    pub fn parse(text: &str) -> Result<Secret, PasswordError> {
        if is_hash(text) {
            let hash =
                PasswordHash::new(text).map_err(|e| PasswordError::BadHash(e.to_string()))?;
            if Algorithm::try_from(hash.algorithm).is_err() {
                return Err(PasswordError::BadHash("not an Argon2 algorithm".into()));
            }
            let params =
                Params::try_from(&hash).map_err(|e| PasswordError::BadHash(e.to_string()))?;
            if params.m_cost() > MAX_MEMORY_KIB {
                return Err(PasswordError::TooCostly(params.m_cost()));
            }
            if hash.hash.is_none() {
                return Err(PasswordError::BadHash("it has no hash part".into()));
            }
            return Ok(Secret::Hashed(text.to_owned()));
        }
        check_usable(text)?;
        Ok(Secret::Plain(text.to_owned()))
    }

    /// Whether `candidate` is the password. Slow for a hash (Argon2: tens to
    /// hundreds of milliseconds on a Pi, by design); not constant-time for plain
    /// text (callers compare keyed digests instead, see `Access`).
    pub fn verify(&self, candidate: &str) -> bool {
        match self {
            Secret::Plain(plain) => plain == candidate,
            Secret::Hashed(phc) => {
                if candidate.len() > MAX_PASSWORD_BYTES {
                    return false;
                }
                let Ok(hash) = PasswordHash::new(phc) else {
                    return false;
                };
                Argon2::default()
                    .verify_password(candidate.as_bytes(), &hash)
                    .is_ok()
            }
        }
    }
}

/// A plain password must be 1-1024 bytes without control characters (a line
/// break in it is almost always a mistake in the file).
pub fn check_usable(password: &str) -> Result<(), PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Unusable("is empty"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::Unusable("is longer than 1024 bytes"));
    }
    if password.chars().any(char::is_control) {
        return Err(PasswordError::Unusable(
            "contains a control character (a line break or tab)",
        ));
    }
    Ok(())
}

/// Hashes `password` with Argon2id (19 MiB, 2 passes, 1 lane: OWASP's minimum,
/// about 0.1 s on a Pi 4) and a random salt, as a PHC string.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    check_usable(password)?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| PasswordError::Hashing(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hashing(e.to_string()))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default());
    argon2
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_hides_it() {
        let phc = hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!phc.contains("correct"));
        let secret = Secret::parse(&phc).unwrap();
        assert!(secret.verify("correct horse"));
        assert!(!secret.verify("correct horsE"));
        assert!(!secret.verify(""));
        assert_ne!(hash("correct horse").unwrap(), phc, "salted");
        assert_eq!(format!("{secret:?}"), "Hashed(not shown)");
    }

    #[test]
    fn bad_hashes_and_passwords_are_refused_without_repeating_them() {
        for bad in [
            "$argon2id$garbage",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
        ] {
            let error = Secret::parse(bad).unwrap_err().to_string();
            assert!(
                error.contains("not one `streamer hash-password` makes"),
                "{error}"
            );
        }
        let costly = "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0$\
                      ZWrYzJa0VwfcWyD1rhkKyaAHCIr1fx9bIi9QUMN8EHk";
        assert!(matches!(
            Secret::parse(costly),
            Err(PasswordError::TooCostly(_))
        ));
        let error = Secret::parse("two\nlines").unwrap_err().to_string();
        assert!(
            error.contains("control character") && !error.contains("two"),
            "{error}"
        );
        assert!(Secret::parse(&"x".repeat(2000)).is_err());
        assert_eq!(
            Secret::parse("fine phrase").unwrap(),
            Secret::Plain("fine phrase".into())
        );
    }
}
