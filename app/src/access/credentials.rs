//! Reading what a client presents: `Authorization: Basic` and `Digest`
//! (RFC 7617, RFC 2617 / 7616) and the session cookie (RFC 6265). Every parser
//! takes any bytes and answers `None` for what it cannot read; none panics
//! (property-tested here, fuzzed in `fuzz/fuzz_targets/access_headers.rs`).

use base64::Engine;

/// The longest credential header read, in bytes.
pub const MAX_HEADER_BYTES: usize = 4096;

/// A user and password from `Authorization: Basic`.
#[derive(Clone, PartialEq, Eq)]
pub struct Basic {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Basic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Basic")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Reads `Basic <base64(user:password)>` (the scheme in any case).
pub fn basic(header: &str) -> Option<Basic> {
    if header.len() > MAX_HEADER_BYTES {
        return None;
    }
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some(Basic {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}

/// The `Authorization: Basic` value for `user` and `password` (tests, clients).
pub fn basic_header(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// The parameters of `Authorization: Digest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestResponse {
    /// `username`.
    pub username: String,
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `uri`: the request target the client hashed.
    pub uri: String,
    /// `response`: 32 hex digits.
    pub response: String,
    /// `algorithm` (MD5 when absent).
    pub algorithm: Option<String>,
    /// `qop` (`auth`), with `nc` and `cnonce`; absent in RFC 2069's form.
    pub qop: Option<String>,
    /// `nc`.
    pub nc: Option<String>,
    /// `cnonce`.
    pub cnonce: Option<String>,
}

/// Reads `Digest name=value, name="quoted value", ...`. `None` when the scheme
/// is not Digest, the syntax is broken, or a required parameter is missing.
pub fn digest(header: &str) -> Option<DigestResponse> {
    if header.len() > MAX_HEADER_BYTES {
        return None;
    }
    let header = header.trim_start();
    let split = header.find(|c: char| c.is_ascii_whitespace())?;
    let (scheme, rest) = header.split_at(split);
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut out = DigestResponse::default();
    let (mut username, mut realm, mut nonce, mut uri, mut response) =
        (false, false, false, false, false);
    for (name, value) in auth_params(rest)? {
        match name.to_ascii_lowercase().as_str() {
            "username" => (out.username, username) = (value, true),
            "realm" => (out.realm, realm) = (value, true),
            "nonce" => (out.nonce, nonce) = (value, true),
            "uri" => (out.uri, uri) = (value, true),
            "response" => (out.response, response) = (value, true),
            "algorithm" => out.algorithm = Some(value),
            "qop" => out.qop = Some(value),
            "nc" => out.nc = Some(value),
            "cnonce" => out.cnonce = Some(value),
            _ => {}
        }
    }
    (username && realm && nonce && uri && response).then_some(out)
}

/// `name=value` pairs separated by commas, values tokens or quoted strings
/// (RFC 9110 11.2 auth-param), the escapes of quoted strings undone.
fn auth_params(text: &str) -> Option<Vec<(String, String)>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_space = |i: &mut usize| {
        while *i < bytes.len() && (bytes[*i] == b' ' || bytes[*i] == b'\t' || bytes[*i] == b',') {
            *i += 1;
        }
    };
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    loop {
        skip_space(&mut i);
        if i >= bytes.len() {
            return Some(out);
        }
        let start = i;
        while i < bytes.len() && is_tchar(bytes[i]) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let name = text[start..i].to_owned();
        while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            return None;
        }
        i += 1;
        while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
            i += 1;
        }
        let value = if bytes.get(i) == Some(&b'"') {
            i += 1;
            let mut value = Vec::new();
            loop {
                match bytes.get(i)? {
                    b'"' => {
                        i += 1;
                        break;
                    }
                    b'\\' => {
                        value.push(*bytes.get(i + 1)?);
                        i += 2;
                    }
                    &b => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
            String::from_utf8(value).ok()?
        } else {
            let start = i;
            while i < bytes.len() && is_tchar(bytes[i]) {
                i += 1;
            }
            text[start..i].to_owned()
        };
        out.push((name, value));
        if out.len() > 32 {
            return None;
        }
        while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
            i += 1;
        }
        match bytes.get(i) {
            None => return Some(out),
            Some(b',') => i += 1,
            Some(_) => return None,
        }
    }
}

/// The value of cookie `name` in `Cookie` headers (`a=1; b=2`): the first one.
pub fn cookie<'a>(headers: impl IntoIterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    headers
        .into_iter()
        .filter(|h| h.len() <= MAX_HEADER_BYTES)
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn basic_reads_user_and_password_with_colons_in_the_password() {
        let header = basic_header("streamer", "a:b c");
        let got = basic(&header).unwrap();
        assert_eq!(
            (got.user.as_str(), got.password.as_str()),
            ("streamer", "a:b c")
        );
        assert_eq!(basic("basic c3RyZWFtZXI6cHc=").unwrap().password, "pw");
        assert_eq!(basic("Bearer abc"), None);
        assert_eq!(basic("Basic !!!"), None);
        assert_eq!(basic("Basic bm9jb2xvbg=="), None, "no colon");
        assert!(
            !format!("{got:?}").contains("a:b"),
            "Debug hides the password"
        );
    }

    #[test]
    fn digest_reads_ffmpeg_s_and_quoted_escaped_values() {
        let header = "Digest username=\"streamer\", realm=\"streamer\", \
                      nonce=\"abc\", uri=\"rtsp://127.0.0.1:8554/stream\", \
                      response=\"0123456789abcdef0123456789abcdef\", algorithm=\"MD5\"";
        let got = digest(header).unwrap();
        assert_eq!(got.username, "streamer");
        assert_eq!(got.uri, "rtsp://127.0.0.1:8554/stream");
        assert_eq!(got.algorithm.as_deref(), Some("MD5"));
        assert_eq!(got.qop, None);
        let escaped = digest(
            "digest username=\"a\\\"b\",realm=r,nonce=n,uri=\"/\",response=x,qop=auth,nc=00000001,cnonce=\"c\"",
        )
        .unwrap();
        assert_eq!(escaped.username, "a\"b");
        assert_eq!(escaped.qop.as_deref(), Some("auth"));
        assert_eq!(escaped.nc.as_deref(), Some("00000001"));
        assert_eq!(digest("Digest username=\"a\""), None, "missing parameters");
        assert_eq!(digest("Digest username=\"a"), None, "unterminated");
        assert_eq!(digest("Basic abc"), None);
    }

    #[test]
    fn cookie_finds_the_named_value() {
        let headers = ["theme=dark; streamer_session=abc.def", "other=1"];
        assert_eq!(cookie(headers, "streamer_session"), Some("abc.def"));
        assert_eq!(cookie(headers, "other"), Some("1"));
        assert_eq!(cookie(headers, "missing"), None);
        assert_eq!(cookie(["x_streamer_session=1"], "streamer_session"), None);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in ".{0,300}") {
            let _ = basic(&text);
            let _ = digest(&text);
            let _ = digest(&format!("Digest {text}"));
            let _ = cookie([text.as_str()], "streamer_session");
        }

        #[test]
        fn basic_round_trips(user in "[^:\\x00-\\x1f]{0,40}", password in "[^\\x00-\\x1f]{0,80}") {
            let got = basic(&basic_header(&user, &password)).unwrap();
            prop_assert_eq!(got.user, user);
            prop_assert_eq!(got.password, password);
        }

        #[test]
        fn digest_round_trips_quoted_values(values in proptest::collection::vec("[ -~]{0,30}", 5)) {
            let quote = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
            let header = format!(
                "Digest username={}, realm={}, nonce={}, uri={}, response={}",
                quote(&values[0]), quote(&values[1]), quote(&values[2]),
                quote(&values[3]), quote(&values[4]),
            );
            let got = digest(&header).unwrap();
            prop_assert_eq!(
                [got.username, got.realm, got.nonce, got.uri, got.response].to_vec(),
                values
            );
        }
    }
}
