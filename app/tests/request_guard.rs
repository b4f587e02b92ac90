//! The request guard (`web/guard.rs`) end to end: which `Host` and `Origin` are
//! answered (DNS rebinding), the security headers on every kind of response, no
//! dotfiles, no protocol-relative redirects.

mod support;

use std::net::{SocketAddr, UdpSocket};

use streamer::config::ServerConfig;
use streamer::hub::Hub;
use support::{header, limits, player_root, Headers, TestServer};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

async fn server_with(server_config: ServerConfig) -> TestServer {
    TestServer::start_with_server_config(
        Hub::new(limits(10), None),
        Vec::new(),
        player_root(),
        server_config,
    )
    .await
}

async fn server() -> TestServer {
    server_with(ServerConfig::default()).await
}

/// `GET path` with `Host: host` (none when `host` is `None`) and more header lines.
async fn get_as(
    server: &TestServer,
    version: &str,
    path: &str,
    host: Option<&str>,
    more: &str,
) -> (u16, Headers, String) {
    let host_line = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
    server
        .request(&format!(
            "GET {path} {version}\r\n{host_line}{more}Connection: close\r\n\r\n"
        ))
        .await
}

const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/// The machine's hostname, from the C library (the guard reads /proc).
fn machine_hostname() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most `buffer.len()` bytes into `buffer`.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    assert_eq!(result, 0, "gethostname");
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

/// A non-loopback address of this machine, if it has a route anywhere (no packet
/// is sent: connecting a UDP socket only picks the source address).
fn lan_address() -> Option<std::net::IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// The headers every response must carry, whatever made it.
fn assert_dressed(what: &str, headers: &Headers) {
    let csp = header(headers, "content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy in {headers:?}"));
    assert!(csp.starts_with("default-src 'self'"), "{what}: {csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: {csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert_eq!(
        header(headers, "x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(header(headers, "x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        header(headers, "referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
    if let Some(content_type) = header(headers, "content-type") {
        if content_type.starts_with("text/") {
            assert!(
                content_type.ends_with("; charset=utf-8"),
                "{what}: {content_type}"
            );
        }
    }
}

#[tokio::test]
async fn a_wrong_host_is_misdirected_on_every_route() {
    let server = server().await;
    let port = server.addr.port();
    for (path, more) in [
        ("/", ""),
        ("/js/main.js", ""),
        ("/api/status", ""),
        ("/metrics", ""),
        ("/healthz", ""),
        ("/missing", ""),
        ("/ws", UPGRADE),
    ] {
        for host in ["evil.example".to_string(), format!("evil.example:{port}")] {
            let (status, headers, body) =
                get_as(&server, "HTTP/1.1", path, Some(&host), more).await;
            assert_eq!(status, 421, "{path} for {host}: {body}");
            assert!(body.contains("server.allowed_hosts"), "{body}");
            assert!(body.contains(&format!("\"{host}\"")), "{body}");
            assert_dressed(&format!("421 for {path}"), &headers);
            assert_eq!(
                header(&headers, "content-type"),
                Some("text/plain; charset=utf-8")
            );
        }
    }
    // The Host named in the request line wins over the header (RFC 9112 3.2.2).
    let (status, _, _) = get_as(
        &server,
        "HTTP/1.1",
        &format!("http://evil.example:{port}/api/status"),
        Some(&format!("127.0.0.1:{port}")),
        "",
    )
    .await;
    assert_eq!(status, 421);
    // A name made to look like the device's is still another name.
    let hostname = machine_hostname();
    for host in [
        format!("{hostname}.evil.example"),
        "localhost.evil.example".into(),
        "127.0.0.1.nip.io".into(),
    ] {
        let (status, _, _) = get_as(&server, "HTTP/1.1", "/api/status", Some(&host), "").await;
        assert_eq!(status, 421, "{host}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_refused_host_is_quoted_escaped_and_short() {
    let server = server().await;
    for (length, expected) in [(240, 421), (5000, 400)] {
        let long = format!("{}.example", "a".repeat(length));
        let (status, _, body) = get_as(&server, "HTTP/1.1", "/", Some(&long), "").await;
        assert_eq!(status, expected, "{length}");
        assert!(body.len() < 600, "{length}: {} bytes", body.len());
        assert!(body.contains("aaaa...\""), "{body}");
    }
    // A Host that is not a name at all is a bad request, quoted the same way.
    let (status, headers, body) = get_as(&server, "HTTP/1.1", "/", Some("<b>x</b>"), "").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"<b>x</b>\""), "{body}");
    assert_dressed("400", &headers);
    server.stop().await;
}

#[tokio::test]
async fn the_device_answers_to_its_own_names() {
    let server = server_with(ServerConfig {
        allowed_hosts: vec!["Camera.Example.com".into(), "203.0.113.7".into()],
        ..ServerConfig::default()
    })
    .await;
    let port = server.addr.port();
    let hostname = machine_hostname();
    let mut hosts = vec![
        "localhost".to_string(),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        hostname.clone(),
        format!("{hostname}.local"),
        format!("{}.local.:{port}", hostname.to_uppercase()),
        "camera.example.com".into(),
        format!("camera.example.com:{port}"),
        "203.0.113.7".into(),
    ];
    if let Some(ip) = lan_address() {
        hosts.push(SocketAddr::new(ip, port).to_string());
    }
    for host in &hosts {
        for path in ["/", "/api/status"] {
            let (status, headers, body) = get_as(&server, "HTTP/1.1", path, Some(host), "").await;
            assert_eq!(status, 200, "{path} for {host}: {body}");
            assert_dressed(path, &headers);
        }
    }
    // HTTP/1.0 without a Host comes from a program, never a browser: served.
    let (status, _, _) = get_as(&server, "HTTP/1.0", "/api/status", None, "").await;
    assert_eq!(status, 200);
    // HTTP/1.1 requires one, and only one.
    let (status, _, body) = get_as(&server, "HTTP/1.1", "/api/status", None, "").await;
    assert_eq!(status, 400, "{body}");
    let (status, _, _) = get_as(
        &server,
        "HTTP/1.1",
        "/api/status",
        Some("localhost"),
        "Host: evil.example\r\n",
    )
    .await;
    assert_eq!(status, 400);
    server.stop().await;
}

#[tokio::test]
async fn star_answers_to_every_name() {
    let server = server_with(ServerConfig {
        allowed_hosts: vec!["*".into()],
        ..ServerConfig::default()
    })
    .await;
    let (status, _, _) = get_as(&server, "HTTP/1.1", "/", Some("anything.example"), "").await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test]
async fn websockets_need_a_right_host_and_a_same_site_origin() {
    let server = server().await;
    let port = server.addr.port();
    let local = format!("127.0.0.1:{port}");
    // Refused: a wrong Host, a page of another site, an opaque origin.
    for (host, origin, expected) in [
        ("evil.example", None, 421),
        (local.as_str(), Some("http://evil.example"), 403),
        (local.as_str(), Some("http://127.0.0.1.evil.example"), 403),
        (local.as_str(), Some("null"), 403),
    ] {
        let more = match origin {
            Some(origin) => format!("{UPGRADE}Origin: {origin}\r\n"),
            None => UPGRADE.to_string(),
        };
        let (status, headers, body) = get_as(&server, "HTTP/1.1", "/ws", Some(host), &more).await;
        assert_eq!(status, expected, "{host} {origin:?}: {body}");
        assert_dressed("WebSocket refusal", &headers);
        if expected == 403 {
            assert!(
                body.contains("evil.example") || body.contains("null"),
                "{body}"
            );
            assert!(body.contains("server.allowed_hosts"), "{body}");
        }
    }
    // The handshake's own refusal is dressed too.
    let (status, headers, _) = get_as(&server, "HTTP/1.1", "/ws", Some(&local), "").await;
    assert_eq!(status, 426);
    assert_dressed("426", &headers);
    // Accepted: the player's own page (any of the device's names and ports), and
    // clients that are not browsers (no Origin).
    for origin in [
        Some(format!("http://127.0.0.1:{port}")),
        Some(format!("http://localhost:{port}")),
        Some("https://localhost".to_string()),
        None,
    ] {
        let mut request = format!("ws://{local}/ws").into_client_request().unwrap();
        if let Some(origin) = &origin {
            request
                .headers_mut()
                .insert("origin", HeaderValue::from_str(origin).unwrap());
        }
        let (client, response) = tokio_tungstenite::connect_async(request)
            .await
            .unwrap_or_else(|e| panic!("{origin:?}: {e}"));
        assert_eq!(response.status(), 101);
        drop(client);
    }
    server.stop().await;
}

#[tokio::test]
async fn every_kind_of_response_carries_the_security_headers() {
    let server = server().await;
    let local = format!("127.0.0.1:{}", server.addr.port());
    for (path, status, content_type) in [
        ("/", 200, Some("text/html; charset=utf-8")),
        ("/index.html", 200, Some("text/html; charset=utf-8")),
        ("/js/main.js", 200, Some("text/javascript; charset=utf-8")),
        ("/style.css", 200, Some("text/css; charset=utf-8")),
        ("/api/status", 200, Some("application/json")),
        ("/metrics", 200, None),
        ("/healthz", 503, None),
        ("/missing.js", 404, Some("text/plain; charset=utf-8")),
        ("/.hidden", 404, Some("text/plain; charset=utf-8")),
        ("/js", 307, None),
    ] {
        let (got, headers, body) = get_as(&server, "HTTP/1.1", path, Some(&local), "").await;
        assert_eq!(got, status, "{path}: {body}");
        assert_dressed(path, &headers);
        if let Some(content_type) = content_type {
            assert_eq!(
                header(&headers, "content-type"),
                Some(content_type),
                "{path}"
            );
        }
    }
    server.stop().await;

    // The page shown when the web root has no player.
    let empty = tempfile::tempdir().unwrap();
    let server = TestServer::start_with_web_root(
        Hub::new(limits(10), None),
        Vec::new(),
        empty.path().to_path_buf(),
    )
    .await;
    let (status, headers, body) = server.get("/").await;
    assert_eq!(status, 404);
    assert!(body.contains("The player is missing"), "{body}");
    assert_dressed("missing player", &headers);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/html; charset=utf-8")
    );
    server.stop().await;
}

#[tokio::test]
async fn frame_ancestors_are_configurable() {
    let server = server_with(ServerConfig {
        frame_ancestors: vec!["self".into(), "http://homeassistant.local:8123".into()],
        ..ServerConfig::default()
    })
    .await;
    let (_, headers, _) = server.get("/").await;
    let csp = header(&headers, "content-security-policy").unwrap();
    assert!(
        csp.ends_with("frame-ancestors 'self' http://homeassistant.local:8123"),
        "{csp}"
    );
    assert_eq!(
        header(&headers, "x-frame-options"),
        None,
        "X-Frame-Options cannot name an origin: left to frame-ancestors"
    );
    server.stop().await;

    let server = server_with(ServerConfig {
        frame_ancestors: vec!["self".into()],
        ..ServerConfig::default()
    })
    .await;
    let (_, headers, _) = server.get("/").await;
    assert_eq!(header(&headers, "x-frame-options"), Some("SAMEORIGIN"));
    server.stop().await;
}

#[tokio::test]
async fn dotfiles_are_never_served() {
    let root = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = root.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("index.html", "<!doctype html><title>player</title>");
    write("vendor/lib.js", "export {};");
    write("vendor/.installed", "SECRET-STAMP");
    write(".git/config", "SECRET-GIT");
    write(".env", "SECRET-ENV");
    write(".well/inside.js", "SECRET-INSIDE");
    let server = TestServer::start_with_web_root(
        Hub::new(limits(10), None),
        Vec::new(),
        root.path().to_path_buf(),
    )
    .await;
    let (status, _, _) = server.get("/vendor/lib.js").await;
    assert_eq!(status, 200, "the files beside the dotfiles are served");
    for path in [
        "/vendor/.installed",
        "/.git/config",
        "/.git/",
        "/.git",
        "/.env",
        "/.well/inside.js",
        "/%2eenv",
        "/%2Egit/config",
        "/vendor/%2einstalled",
        "/vendor%2F.installed",
        "//.env",
        "/vendor/../.env",
    ] {
        let (status, headers, body) = server.get(path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains("SECRET"), "{path}: {body}");
        assert_dressed(path, &headers);
    }
    server.stop().await;
}

#[tokio::test]
async fn redirects_are_never_protocol_relative() {
    let server = server().await;
    for (path, location) in [
        ("/js", "/js/"),
        ("//js", "/js/"),
        ("///js", "/js/"),
        ("//js?x=1", "/js/?x=1"),
    ] {
        let (status, headers, _) = server.get(path).await;
        assert_eq!(status, 307, "{path}");
        assert_eq!(header(&headers, "location"), Some(location), "{path}");
    }
    // Repeated slashes reach the same route as single ones.
    let (status, headers, _) = server.get("//api//status").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    let (status, _, body) = server.get("//js//main.js").await;
    assert_eq!(status, 200);
    assert!(body.contains("import"), "{body}");
    server.stop().await;
}
