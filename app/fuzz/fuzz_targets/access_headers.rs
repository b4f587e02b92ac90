//! Access headers: any `Authorization` or `Cookie` value never panics the
//! parsers, a session cookie that is not one the key signed never checks, and
//! what parses as Basic encodes back to the same user and password.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamer::access::{credentials, session, Access};

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    if let Some(basic) = credentials::basic(&text) {
        let again = credentials::basic(&credentials::basic_header(&basic.user, &basic.password))
            .expect("an encoded Basic header reads");
        assert_eq!(again, basic);
    }
    let _ = credentials::digest(&text);
    let _ = credentials::digest(&format!("Digest {text}"));
    let value = credentials::cookie([text.as_ref()], session::COOKIE);
    let access = Access::with_key("streamer", "pw", [9; 32]).expect("a plain password");
    if let Some(value) = value {
        assert!(!access.session_valid(value, 1_000_000), "a forged cookie checked");
    }
    assert!(!access.session_valid(&text, 1_000_000), "a forged cookie checked");
});
