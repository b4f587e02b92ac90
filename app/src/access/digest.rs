//! HTTP Digest authentication as RTSP clients speak it (RFC 2617 with MD5, also
//! RFC 2069's form without `qop`): what ffmpeg, GStreamer, VLC (live555) and NVRs
//! answer a `WWW-Authenticate: Digest` with. MD5 is what they all implement; the
//! password never crosses the network, which is Digest's point over Basic.

use md5::{Digest as _, Md5};
use subtle::ConstantTimeEq;

use super::credentials::DigestResponse;

fn md5_hex(parts: &[&str]) -> String {
    let mut md5 = Md5::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            md5.update(b":");
        }
        md5.update(part.as_bytes());
    }
    md5.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// HA1 = MD5(user:realm:password).
pub fn ha1(user: &str, realm: &str, password: &str) -> String {
    md5_hex(&[user, realm, password])
}

/// A nonce from 16 random bytes, tagged with the start's key (hex, so any
/// client quotes it back unchanged).
pub fn nonce(key: &[u8; 32], random: [u8; 16]) -> String {
    let tag = super::session::mac(key, &[b"digest-nonce", &random]);
    random
        .iter()
        .chain(&tag[..8])
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `WWW-Authenticate` value.
pub fn challenge(realm: &str, nonce: &str) -> String {
    format!("Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm=MD5")
}

/// Whether `response` is the right answer for `method` with `ha1` (the nonce and
/// user are compared by the caller).
pub fn verify(ha1: &str, method: &str, response: &DigestResponse) -> bool {
    if response
        .algorithm
        .as_deref()
        .is_some_and(|a| !a.eq_ignore_ascii_case("md5"))
    {
        return false;
    }
    let ha2 = md5_hex(&[method, &response.uri]);
    let expected = match response.qop.as_deref() {
        None => md5_hex(&[ha1, &response.nonce, &ha2]),
        Some(qop) if qop.eq_ignore_ascii_case("auth") => {
            let (Some(nc), Some(cnonce)) = (&response.nc, &response.cnonce) else {
                return false;
            };
            md5_hex(&[ha1, &response.nonce, nc, cnonce, qop, &ha2])
        }
        Some(_) => return false,
    };
    bool::from(
        expected
            .as_bytes()
            .ct_eq(response.response.to_ascii_lowercase().as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2617_s_example_checks() {
        // RFC 2617 3.5: Mufasa, "Circle Of Life", qop=auth.
        let ha1 = ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
        let response = DigestResponse {
            username: "Mufasa".into(),
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            uri: "/dir/index.html".into(),
            response: "6629fae49393a05397450978507c4ef1".into(),
            algorithm: None,
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("0a4f113b".into()),
        };
        assert!(verify(&ha1, "GET", &response));
        assert!(!verify(&ha1, "POST", &response));
        let mut wrong = response.clone();
        wrong.response = "6629fae49393a05397450978507c4ef2".into();
        assert!(!verify(&ha1, "GET", &wrong));
        let mut sha = response;
        sha.algorithm = Some("SHA-256".into());
        assert!(!verify(&ha1, "GET", &sha));
    }

    #[test]
    fn rfc_2069_s_form_without_qop_checks() {
        let ha1 = ha1("streamer", "streamer", "pw");
        let nonce = nonce(&[1; 32], [2; 16]);
        assert_eq!(nonce.len(), 48);
        let ha2 = md5_hex(&["DESCRIBE", "rtsp://h/stream"]);
        let response = DigestResponse {
            username: "streamer".into(),
            realm: "streamer".into(),
            nonce: nonce.clone(),
            uri: "rtsp://h/stream".into(),
            response: md5_hex(&[&ha1, &nonce, &ha2]).to_uppercase(),
            ..DigestResponse::default()
        };
        assert!(verify(&ha1, "DESCRIBE", &response));
        assert!(!verify(&ha1, "SETUP", &response));
    }
}
