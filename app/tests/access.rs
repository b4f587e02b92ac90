//! Access control end to end (`[access]`, `web/guard.rs`'s gate): with a
//! password every endpoint but `/healthz` needs it (Basic here; the login
//! page's cookie in `login.rs` and the browser tests), wrong passwords are
//! braked per address, cross-site pages are refused with and without a
//! password, and the password appears in no response.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use streamer::access::credentials::basic_header;
use streamer::config::{AccessConfig, ServerConfig};
use streamer::hub::Hub;
use support::{header, limits, pi_sample_units, player_root, Headers, Publisher, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

const PASSWORD: &str = "correct horse battery staple";

async fn server(password: &str, allowed_origins: &[&str]) -> (TestServer, Publisher) {
    let hub = Hub::new(limits(20), None);
    let publisher = Publisher::start(hub.clone(), pi_sample_units(), 30.0);
    let server = TestServer::start_with_policy(
        hub,
        Vec::new(),
        player_root(),
        ServerConfig::default(),
        AccessConfig {
            password: password.to_owned(),
            allowed_origins: allowed_origins.iter().map(|s| s.to_string()).collect(),
            ..AccessConfig::default()
        },
    )
    .await;
    (server, publisher)
}

/// Sends a request head (and body) from `from` (a loopback address) and reads
/// the whole response; for a WebSocket upgrade, only the head.
async fn request_from(server: &TestServer, from: &str, request: &str) -> (u16, Headers, String) {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    let mut stream = socket.connect(server.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            response.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&response);
            if text.starts_with("HTTP/1.1 101") && text.contains("\r\n\r\n") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(15), read)
        .await
        .expect("a response within 15 s");
    support::parse_response(&response)
}

const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/// Every kind of request the device answers, as (name, request head lines
/// after the request line's method and path, method, path).
fn endpoints() -> Vec<(&'static str, &'static str, String)> {
    vec![
        ("GET", "/", String::new()),
        ("GET", "/index.html", String::new()),
        ("GET", "/js/app.js", String::new()),
        ("GET", "/api/status", String::new()),
        ("GET", "/metrics", String::new()),
        ("GET", "/snapshot.jpg", String::new()),
        ("GET", "/ws", UPGRADE.to_owned()),
        (
            "POST",
            "/whep",
            "Content-Type: application/sdp\r\nContent-Length: 0\r\n".to_owned(),
        ),
        ("DELETE", "/whep/0123456789abcdef", String::new()),
    ]
}

async fn ask(
    server: &TestServer,
    from: &str,
    method: &str,
    path: &str,
    more: &str,
) -> (u16, Headers, String) {
    let host = server.addr;
    request_from(
        server,
        from,
        &format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n{more}Connection: close\r\n\r\n"),
    )
    .await
}

#[tokio::test]
async fn with_a_password_every_endpoint_but_healthz_needs_it() {
    let (server, _publisher) = server(PASSWORD, &[]).await;
    let wrong = format!("Authorization: {}\r\n", basic_header("streamer", "guess"));
    let right = format!("Authorization: {}\r\n", basic_header("streamer", PASSWORD));
    let other_user = format!("Authorization: {}\r\n", basic_header("admin", PASSWORD));
    for (i, (method, path, more)) in endpoints().into_iter().enumerate() {
        // An address per endpoint, so that the wrong passwords here are never
        // braked.
        let from = format!("127.0.2.{}", i + 1);
        let (status, headers, body) = ask(&server, &from, method, path, &more).await;
        assert_eq!(status, 401, "{method} {path} without credentials: {body}");
        assert_eq!(
            header(&headers, "www-authenticate"),
            Some("Basic realm=\"streamer\", charset=\"UTF-8\""),
            "{method} {path}"
        );
        for credentials in [&wrong, &other_user] {
            let (status, _, _) = ask(
                &server,
                &from,
                method,
                path,
                &format!("{more}{credentials}"),
            )
            .await;
            assert_eq!(status, 401, "{method} {path} with wrong credentials");
        }
        let (status, _, body) = ask(&server, &from, method, path, &format!("{more}{right}")).await;
        assert!(
            ![401, 403, 429].contains(&status),
            "{method} {path} with the password: {status} {body}"
        );
        assert!(
            !body.contains(PASSWORD),
            "{method} {path} shows the password"
        );
    }
    // A browser page load goes to the login page, keeping where it was going.
    let (status, headers, _) = ask(
        &server,
        "127.0.0.1",
        "GET",
        "/?player=mse",
        "Accept: text/html\r\nSec-Fetch-Mode: navigate\r\n",
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        header(&headers, "location"),
        Some("login?next=/%3Fplayer%3Dmse")
    );
    let (status, headers, _) = ask(
        &server,
        "127.0.0.1",
        "GET",
        "/js/app.js",
        "Accept: text/html\r\nSec-Fetch-Mode: navigate\r\n",
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        header(&headers, "location"),
        Some("../login?next=/js/app.js")
    );
    // A script in a page gets no challenge that would pop up the browser's dialog.
    let (status, headers, _) = ask(
        &server,
        "127.0.0.1",
        "GET",
        "/api/status",
        "Sec-Fetch-Mode: cors\r\n",
    )
    .await;
    assert_eq!(status, 401);
    assert!(header(&headers, "www-authenticate")
        .unwrap()
        .starts_with("Cookie "));
    // The health check stays open and says only up or down.
    let (status, _, body) = ask(&server, "127.0.0.1", "GET", "/healthz", "").await;
    assert!(status == 200 || status == 503, "{status}");
    assert!(body == "ok\n" || body == "down\n", "{body:?}");
    server.stop().await;
}

#[tokio::test]
async fn with_the_password_the_status_says_a_password_is_set_and_the_video_flows() {
    let (server, _publisher) = server(PASSWORD, &[]).await;
    let right = format!("Authorization: {}\r\n", basic_header("streamer", PASSWORD));
    let (status, _, body) = ask(&server, "127.0.0.1", "GET", "/api/status", &right).await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["access"]["password"], "plain");
    assert_eq!(json["access"]["user"], "streamer");
    assert!(!body.contains(PASSWORD));
    // A WebSocket viewer with Basic gets video.
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{}/ws",
            server.addr
        ))
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        basic_header("streamer", PASSWORD).parse().unwrap(),
    );
    let (mut client, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let (frames, _) = support::collect_frames(&mut client, 5, Duration::from_secs(10)).await;
    assert!(frames.len() >= 5, "{} frames", frames.len());
    server.stop().await;
}

#[tokio::test]
async fn a_hashed_password_works_with_basic() {
    let hash = streamer::access::password::hash(PASSWORD).unwrap();
    let (server, _publisher) = server(&hash, &[]).await;
    for password in [PASSWORD, PASSWORD] {
        let right = format!("Authorization: {}\r\n", basic_header("streamer", password));
        let (status, _, body) = ask(&server, "127.0.0.1", "GET", "/api/status", &right).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"password\":\"hashed\""), "{body}");
        assert!(!body.contains("argon2"), "the hash is not shown");
    }
    let wrong = format!("Authorization: {}\r\n", basic_header("streamer", "guess"));
    let (status, _, _) = ask(&server, "127.0.0.1", "GET", "/api/status", &wrong).await;
    assert_eq!(status, 401);
    server.stop().await;
}

#[tokio::test]
async fn wrong_passwords_are_braked_for_that_address_only() {
    let (server, _publisher) = server(PASSWORD, &[]).await;
    let wrong = format!("Authorization: {}\r\n", basic_header("streamer", "guess"));
    let right = format!("Authorization: {}\r\n", basic_header("streamer", PASSWORD));
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..10 {
        let (status, headers, _) = ask(&server, "127.0.0.9", "GET", "/api/status", &wrong).await;
        statuses.push(status);
        if status == 429 {
            retry_after = header(&headers, "retry-after").map(str::to_owned);
            break;
        }
    }
    assert_eq!(statuses[..5], [401; 5], "five typos are free: {statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let seconds: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=900).contains(&seconds));
    // Braked, even the right password is not looked at from there...
    let (status, _, _) = ask(&server, "127.0.0.9", "GET", "/api/status", &right).await;
    assert_eq!(status, 429);
    // ...but the owner elsewhere is not locked out.
    let (status, _, _) = ask(&server, "127.0.0.10", "GET", "/api/status", &right).await;
    assert_eq!(status, 200);
    // /metrics counts it all, for an alert on guessing.
    let (_, _, metrics) = ask(&server, "127.0.0.10", "GET", "/metrics", &right).await;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("streamer_{name} ")))
            .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("logins_denied_total"), 6.0);
    assert_eq!(value("logins_braked_total"), 2.0);
    assert!(value("logins_granted_total") >= 2.0);
    assert_eq!(value("logins_braked_addresses"), 1.0);
    server.stop().await;
}

#[tokio::test]
async fn cross_site_pages_are_refused_on_ws_and_whep_with_and_without_a_password() {
    for password in ["", PASSWORD] {
        let (server, _publisher) = server(password, &["https://dash.example:8123"]).await;
        let auth = if password.is_empty() {
            String::new()
        } else {
            format!("Authorization: {}\r\n", basic_header("streamer", password))
        };
        let whep = "Content-Type: application/sdp\r\nContent-Length: 0\r\n";
        for (method, path, more) in [("GET", "/ws", UPGRADE), ("POST", "/whep", whep)] {
            let evil = format!("{more}{auth}Origin: http://evil.example\r\n");
            let (status, _, _) = ask(&server, "127.0.0.1", method, path, &evil).await;
            assert_eq!(
                status, 403,
                "{method} {path} from evil.example ({password:?})"
            );
            let allowed = format!("{more}{auth}Origin: https://dash.example:8123\r\n");
            let (status, _, _) = ask(&server, "127.0.0.1", method, path, &allowed).await;
            assert_ne!(status, 403, "{method} {path} from an allowed origin");
            let same = format!("{more}{auth}Origin: http://{}\r\n", server.addr);
            let (status, _, _) = ask(&server, "127.0.0.1", method, path, &same).await;
            assert_ne!(status, 403, "{method} {path} same-origin");
            // A same-origin form post under no-referrer: Origin null, and the
            // browser's own Sec-Fetch-Site.
            let null_same = format!("{more}{auth}Origin: null\r\nSec-Fetch-Site: same-origin\r\n");
            let (status, _, _) = ask(&server, "127.0.0.1", method, path, &null_same).await;
            assert_ne!(status, 403, "{method} {path} Origin null from this site");
            for site in ["cross-site", "same-site", "none"] {
                let null_other = format!("{more}{auth}Origin: null\r\nSec-Fetch-Site: {site}\r\n");
                let (status, _, _) = ask(&server, "127.0.0.1", method, path, &null_other).await;
                assert_eq!(status, 403, "{method} {path} Origin null from {site}");
            }
            let none = format!("{more}{auth}");
            let (status, _, _) = ask(&server, "127.0.0.1", method, path, &none).await;
            assert_ne!(status, 403, "{method} {path} without Origin");
        }
        // Logging in or out from a page elsewhere (login CSRF) is refused.
        for path in ["/login", "/logout"] {
            let form = "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n\
                        Origin: http://evil.example\r\n";
            let (status, _, _) = ask(&server, "127.0.0.1", "POST", path, form).await;
            assert_eq!(status, 403, "POST {path} from evil.example");
        }
        // The WebSocket from an allowed origin streams (101).
        let allowed = format!("{UPGRADE}{auth}Origin: https://dash.example:8123\r\n");
        let (status, _, _) = ask(&server, "127.0.0.1", "GET", "/ws", &allowed).await;
        assert_eq!(status, 101);
        server.stop().await;
    }
}

#[tokio::test]
async fn without_a_password_everything_is_open_as_before() {
    let (server, _publisher) = server("", &[]).await;
    for (method, path, more) in endpoints() {
        let (status, _, body) = ask(&server, "127.0.0.1", method, path, &more).await;
        assert!(
            ![401, 403, 429].contains(&status),
            "{method} {path}: {status} {body}"
        );
    }
    let (_, _, body) = ask(&server, "127.0.0.1", "GET", "/api/status", "").await;
    assert!(
        body.contains("\"access\":{\"password\":\"none\",\"user\":null}"),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_login_page_s_cookie_opens_everything_until_logout() {
    let (server, _publisher) = server(PASSWORD, &[]).await;
    let body = format!(
        "user=streamer&password={}&next=%2F",
        PASSWORD.replace(' ', "+")
    );
    let host = server.addr;
    let (status, headers, _) = request_from(
        &server,
        "127.0.0.1",
        &format!(
            "POST /login HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(status == 303 || status == 200, "{status} {headers:?}");
    let set_cookie = header(&headers, "set-cookie").expect("a session cookie");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let with_cookie = format!("Cookie: {cookie}\r\n");
    for (method, path, more) in endpoints() {
        let (status, _, body) = ask(
            &server,
            "127.0.0.1",
            method,
            path,
            &format!("{more}{with_cookie}"),
        )
        .await;
        assert!(
            ![401, 403, 429].contains(&status),
            "{method} {path} with the cookie: {status} {body}"
        );
    }
    let (status, _, _) = ask(&server, "127.0.0.1", "POST", "/logout", &with_cookie).await;
    assert!(status == 303 || status == 200, "{status}");
    let (status, _, _) = ask(&server, "127.0.0.1", "GET", "/api/status", &with_cookie).await;
    assert_eq!(status, 401, "a logged-out cookie is refused");
    let forged = "Cookie: streamer_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n";
    let (status, _, _) = ask(&server, "127.0.0.1", "GET", "/api/status", forged).await;
    assert_eq!(status, 401, "a forged cookie is refused");
    server.stop().await;
}
