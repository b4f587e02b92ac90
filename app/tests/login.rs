//! The browser's login endpoints (`web/login.rs`) end to end: the page, `POST
//! /login` right, wrong and braked in both answer styles (JSON for the page's
//! script, 303 for a plain form), the cookie's attributes, `next` kept on this
//! server, and `POST /logout` ending the session. Whether other requests need the
//! cookie is the guard's, tested with it.

mod support;

use std::path::PathBuf;

use streamer::config::{AccessConfig, ServerConfig};
use streamer::hub::Hub;
use support::{header, limits, player_root, Headers, TestServer};

const PASSWORD: &str = "correct horse battery";

async fn server_with(password: &str, web_root: PathBuf) -> TestServer {
    let access = AccessConfig {
        password: password.to_owned(),
        ..AccessConfig::default()
    };
    TestServer::start_with_policy(
        Hub::new(limits(10), None),
        Vec::new(),
        web_root,
        ServerConfig::default(),
        access,
    )
    .await
}

async fn locked() -> TestServer {
    server_with(PASSWORD, player_root()).await
}

/// `GET path` with more header lines.
async fn get(server: &TestServer, path: &str, more: &str) -> (u16, Headers, String) {
    server
        .request(&format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{more}Connection: close\r\n\r\n",
            server.addr
        ))
        .await
}

/// `POST path` with a form body, as JSON (the page's script) or as a plain form.
async fn post(
    server: &TestServer,
    path: &str,
    body: &str,
    json: bool,
    more: &str,
) -> (u16, Headers, String) {
    let accept = if json {
        "Accept: application/json\r\n"
    } else {
        "Accept: text/html,application/xhtml+xml\r\n"
    };
    server
        .request(&format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\n{accept}{more}\
             Content-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            server.addr,
            body.len()
        ))
        .await
}

fn form(user: &str, password: &str, next: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("user", user)
        .append_pair("password", password)
        .append_pair("next", next)
        .finish()
}

/// The session cookie's `name=value` from a `Set-Cookie`.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().trim().to_owned()
}

/// Whether `cookie` is a live session: the login page then sends the browser on
/// instead of showing the form.
async fn session_is_live(server: &TestServer, cookie: &str) -> bool {
    let (status, _, _) = get(server, "/login", &format!("Cookie: {cookie}\r\n")).await;
    match status {
        303 => true,
        200 => false,
        other => panic!("GET /login answered {other}"),
    }
}

fn assert_no_password(headers: &Headers, body: &str) {
    assert!(!body.contains(PASSWORD), "{body}");
    assert!(
        headers.iter().all(|(_, v)| !v.contains(PASSWORD)),
        "{headers:?}"
    );
}

#[tokio::test]
async fn the_login_page_is_served_uncached_with_its_error_and_next_filled_in() {
    let server = locked().await;
    let (status, headers, body) = get(&server, "/login", "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "cache-control"), Some("no-store"));
    assert!(header(&headers, "content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(body.contains("<form id=\"login-form\""), "{body}");
    assert!(body.contains("name=\"next\" type=\"hidden\" value=\"/\""));
    assert!(!body.contains("{{"), "every placeholder is filled in");

    let (_, _, body) = get(
        &server,
        "/login?error=wrong&next=%2F%3Fplayer%3Dmse%26a%3D%22%3E",
        "",
    )
    .await;
    assert!(body.contains(">Wrong user name or password.</p>"), "{body}");
    assert!(
        body.contains("value=\"/?player=mse&amp;a=&quot;&gt;\""),
        "{body}"
    );

    let (_, _, body) = get(
        &server,
        "/login?error=wait&retry=42&next=//evil.example",
        "",
    )
    .await;
    assert!(body.contains("try again in 42 s."), "{body}");
    assert!(body.contains("value=\"/\""), "next stays on this server");
    server.stop().await;
}

#[tokio::test]
async fn without_a_password_the_login_page_sends_the_browser_on() {
    let server = server_with("", player_root()).await;
    let (status, headers, _) = get(&server, "/login?next=%2Fx", "").await;
    assert_eq!(status, 303);
    assert_eq!(header(&headers, "location"), Some("/x"));
    let (status, headers, _) = post(&server, "/login", &form("a", "b", "/y"), false, "").await;
    assert_eq!(status, 303);
    assert_eq!(header(&headers, "location"), Some("/y"));
    assert_eq!(header(&headers, "set-cookie"), None, "nothing to log in to");
    server.stop().await;
}

#[tokio::test]
async fn a_missing_login_page_says_so_and_still_has_a_form() {
    let empty = tempfile::tempdir().unwrap();
    let server = server_with(PASSWORD, empty.path().to_owned()).await;
    let (status, _, body) = get(&server, "/login", "").await;
    assert_eq!(status, 404);
    assert!(body.contains("login.html"), "{body}");
    assert!(body.contains("<form method=post action=login>"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn the_page_s_script_logs_in_with_json_and_gets_a_strict_http_only_cookie() {
    let server = locked().await;
    let (status, headers, body) = post(
        &server,
        "/login",
        &form("streamer", "wrong", "/?player=mse"),
        true,
        "",
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"],
        "Wrong user name or password."
    );
    assert!(header(&headers, "www-authenticate")
        .unwrap()
        .starts_with("Cookie realm=\"streamer\""));
    assert_eq!(header(&headers, "set-cookie"), None);

    let (status, headers, body) = post(
        &server,
        "/login",
        &form("streamer", PASSWORD, "/?player=mse"),
        true,
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({ "next": "/?player=mse" })
    );
    assert_eq!(header(&headers, "cache-control"), Some("no-store"));
    let set_cookie = header(&headers, "set-cookie").expect("a session cookie");
    let attributes: Vec<&str> = set_cookie.split("; ").skip(1).collect();
    assert_eq!(
        attributes,
        ["Path=/", "HttpOnly", "SameSite=Strict", "Max-Age=2592000"],
        "{set_cookie}"
    );
    assert!(set_cookie.starts_with("streamer_session="));
    assert_no_password(&headers, &body);
    assert!(session_is_live(&server, &cookie_pair(set_cookie)).await);
    assert!(!session_is_live(&server, "streamer_session=forged").await);
    server.stop().await;
}

#[tokio::test]
async fn a_plain_form_logs_in_with_redirects() {
    let server = locked().await;
    let (status, headers, _) = post(
        &server,
        "/login",
        &form("streamer", "wrong", "/?player=mse"),
        false,
        "",
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        header(&headers, "location"),
        Some("login?error=wrong&next=%2F%3Fplayer%3Dmse")
    );
    assert_eq!(header(&headers, "set-cookie"), None);

    let (status, headers, body) = post(
        &server,
        "/login",
        &form("streamer", PASSWORD, "/?player=mse"),
        false,
        "",
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(header(&headers, "location"), Some("/?player=mse"));
    let set_cookie = header(&headers, "set-cookie").expect("a session cookie");
    assert_no_password(&headers, &body);
    assert!(session_is_live(&server, &cookie_pair(set_cookie)).await);
    server.stop().await;
}

#[tokio::test]
async fn next_never_leaves_this_server() {
    let server = locked().await;
    for bad in [
        "//evil.example/",
        "/\\evil.example",
        "https://evil.example/",
        "/\t/evil.example",
        "",
    ] {
        let (status, headers, _) = post(
            &server,
            "/login",
            &form("streamer", PASSWORD, bad),
            false,
            "",
        )
        .await;
        assert_eq!(status, 303, "{bad:?}");
        assert_eq!(header(&headers, "location"), Some("/"), "{bad:?}");
        let (_, _, body) = post(
            &server,
            "/login",
            &form("streamer", PASSWORD, bad),
            true,
            "",
        )
        .await;
        assert_eq!(body, r#"{"next":"/"}"#, "{bad:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn wrong_passwords_are_braked_in_both_styles() {
    let server = locked().await;
    let mut braked = None;
    for _ in 0..20 {
        let (status, headers, body) =
            post(&server, "/login", &form("streamer", "guess", "/"), true, "").await;
        if status == 429 {
            braked = Some((headers, body));
            break;
        }
        assert_eq!(status, 401);
    }
    let (headers, body) = braked.expect("429 within 20 wrong passwords");
    let retry_after: u64 = header(&headers, "retry-after").unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["retry_after"], retry_after);
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .contains("Too many wrong passwords"));

    // Braked, even the right password is not looked at; the form goes back to the
    // page with the wait in its address.
    let (status, headers, _) = post(
        &server,
        "/login",
        &form("streamer", PASSWORD, "/x"),
        false,
        "",
    )
    .await;
    assert_eq!(status, 303);
    let location = header(&headers, "location").unwrap();
    assert!(
        location.starts_with("login?error=wait&retry=") && location.ends_with("&next=%2Fx"),
        "{location}"
    );
    assert_eq!(header(&headers, "set-cookie"), None);
    server.stop().await;
}

#[tokio::test]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let server = locked().await;
    let (_, headers, _) = post(
        &server,
        "/login",
        &form("streamer", PASSWORD, "/"),
        true,
        "",
    )
    .await;
    let cookie = cookie_pair(header(&headers, "set-cookie").unwrap());
    let (_, headers, _) = post(
        &server,
        "/login",
        &form("streamer", PASSWORD, "/"),
        true,
        "",
    )
    .await;
    let other = cookie_pair(header(&headers, "set-cookie").unwrap());
    assert!(session_is_live(&server, &cookie).await);

    let (status, headers, _) = post(
        &server,
        "/logout",
        "",
        false,
        &format!("Cookie: {cookie}\r\n"),
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(header(&headers, "location"), Some("login"));
    assert_eq!(
        header(&headers, "set-cookie"),
        Some("streamer_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
    );
    assert!(
        !session_is_live(&server, &cookie).await,
        "a kept copy of the cookie is refused"
    );
    assert!(
        session_is_live(&server, &other).await,
        "other sessions go on"
    );

    let (status, _, body) = post(
        &server,
        "/logout",
        "",
        true,
        &format!("Cookie: {other}\r\n"),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, r#"{"logged_out":true}"#));
    assert!(!session_is_live(&server, &other).await);
    server.stop().await;
}

#[tokio::test]
async fn a_hashed_password_logs_in_too() {
    let hash = streamer::access::password::hash(PASSWORD).unwrap();
    let server = server_with(&hash, player_root()).await;
    let (status, _, _) = post(&server, "/login", &form("streamer", "nope", "/"), true, "").await;
    assert_eq!(status, 401);
    let (status, headers, _) = post(
        &server,
        "/login",
        &form("streamer", PASSWORD, "/"),
        true,
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(header(&headers, "set-cookie").is_some());
    server.stop().await;
}

#[tokio::test]
async fn only_small_forms_are_read() {
    let server = locked().await;
    let big = form("streamer", &"x".repeat(8192), "/");
    let (status, _, _) = post(&server, "/login", &big, true, "").await;
    assert_eq!(status, 413);
    let (status, _, _) = server
        .request(&format!(
            "POST /login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: 2\r\nConnection: close\r\n\r\n{{}}",
            server.addr
        ))
        .await;
    assert_eq!(status, 415);
    server.stop().await;
}
