//! The server side of the WebSocket opening handshake (RFC 6455 4.2).

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use base64::Engine;
use sha1::{Digest, Sha1};

/// Why a request cannot be upgraded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// Not a GET request.
    #[error("a WebSocket handshake must be a GET request")]
    Method,
    /// `Upgrade: websocket` / `Connection: upgrade` missing.
    #[error("not a WebSocket upgrade request (Upgrade: websocket, Connection: upgrade)")]
    NotUpgrade,
    /// A version other than 13.
    #[error("unsupported WebSocket version (only 13)")]
    Version,
    /// `Sec-WebSocket-Key` missing or not 16 bytes in base64.
    #[error("missing or invalid Sec-WebSocket-Key")]
    Key,
}

impl HandshakeError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            HandshakeError::Method => StatusCode::METHOD_NOT_ALLOWED,
            HandshakeError::Version => StatusCode::UPGRADE_REQUIRED,
            HandshakeError::NotUpgrade => StatusCode::UPGRADE_REQUIRED,
            HandshakeError::Key => StatusCode::BAD_REQUEST,
        }
    }
}

/// Checks an upgrade request; returns the `Sec-WebSocket-Accept` value to answer
/// with.
pub fn accept(method: &Method, headers: &HeaderMap) -> Result<HeaderValue, HandshakeError> {
    if method != Method::GET {
        return Err(HandshakeError::Method);
    }
    if !has_token(headers, header::UPGRADE, "websocket")
        || !has_token(headers, header::CONNECTION, "upgrade")
    {
        return Err(HandshakeError::NotUpgrade);
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err(HandshakeError::Version);
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or(HandshakeError::Key)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(key.as_bytes())
        .map_err(|_| HandshakeError::Key)?;
    if decoded.len() != 16 {
        return Err(HandshakeError::Key);
    }
    HeaderValue::from_str(&accept_key(key.as_bytes())).map_err(|_| HandshakeError::Key)
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn accept_key(key: &[u8]) -> String {
    const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

/// Whether a comma-separated header has `token` (case-insensitive) in any of its
/// values.
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value.to_str().is_ok_and(|text| {
            text.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn the_rfc_example_key_gives_the_rfc_accept() {
        // RFC 6455 section 1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn a_browser_request_is_accepted() {
        let headers = request(&[
            ("upgrade", "websocket"),
            ("connection", "keep-alive, Upgrade"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        assert_eq!(
            accept(&Method::GET, &headers).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn bad_requests_are_refused_with_a_reason() {
        let good = [
            ("upgrade", "websocket"),
            ("connection", "upgrade"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        assert_eq!(
            accept(&Method::POST, &request(&good)),
            Err(HandshakeError::Method)
        );
        assert_eq!(
            accept(&Method::GET, &request(&good[1..])),
            Err(HandshakeError::NotUpgrade)
        );
        let mut old = good;
        old[2] = ("sec-websocket-version", "8");
        assert_eq!(
            accept(&Method::GET, &request(&old)),
            Err(HandshakeError::Version)
        );
        let mut short = good;
        short[3] = ("sec-websocket-key", "c2hvcnQ=");
        assert_eq!(
            accept(&Method::GET, &request(&short)),
            Err(HandshakeError::Key)
        );
    }
}
