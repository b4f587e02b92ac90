//! Optional HTTPS, end to end with the real binary on loopback: a certificate made
//! here (rcgen: a local CA and a device certificate it signed, as mkcert makes
//! them), curl as the independent TLS client for the player, `/api/status` and the
//! redirect, a rustls client for `wss://`, and each way a certificate can be wrong
//! leaving plain HTTP on with the reason in `/api/status`.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use support::process::{status_and_body, StreamerProcess};

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_streamer"))
}

/// `der` as a PEM block with `label`.
fn pem(label: &str, der: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Files of a local CA and a device certificate it signed, in a temporary folder.
struct Certificates {
    dir: tempfile::TempDir,
    /// The CA's certificate: what clients trust.
    ca: PathBuf,
    /// The device's certificate, then the CA's (a chain as a server sends it).
    cert: PathBuf,
    /// The device certificate's private key.
    key: PathBuf,
}

/// (year, month, day), for rcgen's dates.
type Ymd = (i32, u8, u8);

/// A CA and a device certificate for 127.0.0.1 and localhost, valid from
/// `not_before` to `not_after` (rcgen's defaults when `None`: 1975 to 4096).
fn certificates(not_before: Option<Ymd>, not_after: Option<Ymd>) -> Certificates {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "streamer test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    if let Some((y, m, d)) = not_before {
        params.not_before = rcgen::date_time_ymd(y, m, d);
    }
    if let Some((y, m, d)) = not_after {
        params.not_after = rcgen::date_time_ymd(y, m, d);
    }
    let cert = params.signed_by(&key, &issuer).unwrap();
    let paths = Certificates {
        ca: dir.path().join("ca.pem"),
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
        dir,
    };
    std::fs::write(&paths.ca, pem("CERTIFICATE", ca_cert.der())).unwrap();
    let chain = pem("CERTIFICATE", cert.der()) + &pem("CERTIFICATE", ca_cert.der());
    std::fs::write(&paths.cert, chain).unwrap();
    std::fs::write(&paths.key, pem("PRIVATE KEY", &key.serialize_der())).unwrap();
    paths
}

/// The streamer (test pattern, no RTSP) with HTTPS from `cert` and `key` on any
/// free port, plus `env`.
fn start(cert: &Path, key: &Path, env: &[(&str, &str)]) -> StreamerProcess {
    let cert = cert.to_str().unwrap();
    let key = key.to_str().unwrap();
    let web_root = support::repo_root().join("overlay/usr/share/streamer/www");
    let web_root = web_root.to_str().unwrap().to_owned();
    let mut all = support::process::SMALL_TEST_PATTERN.to_vec();
    all.extend([
        ("STREAMER_SERVER__TLS_CERT", cert),
        ("STREAMER_SERVER__TLS_KEY", key),
        ("STREAMER_SERVER__TLS_PORT", "0"),
        ("STREAMER_SERVER__WEB_ROOT", &web_root),
    ]);
    all.extend_from_slice(env);
    StreamerProcess::start(&binary(), Path::new("/nonexistent/streamer.toml"), &all)
}

/// The HTTPS address from the "listening on https://" log line (logged before
/// the plain one the harness waits for).
fn https_address(streamer: &StreamerProcess) -> SocketAddr {
    let log = streamer.log();
    let marker = "listening on https://";
    let at = log
        .find(marker)
        .unwrap_or_else(|| panic!("no HTTPS in the log:\n{log}"))
        + marker.len();
    let rest = &log[at..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == ';')
        .unwrap_or(rest.len());
    rest[..end].parse().expect("an address")
}

/// One request written as is over plain TCP: the whole response.
fn raw(address: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

/// `streamer_connections` of `/metrics` over HTTPS (this request included),
/// asked by curl from 127.0.0.2, an address whose places are its own.
fn open_connections_from_elsewhere(ca: &Path, https: SocketAddr) -> Option<f64> {
    let url = format!("https://127.0.0.1:{}/metrics", https.port());
    let (status, body) = curl(ca, &["--interface", "127.0.0.2", &url]);
    if status != 200 {
        return None;
    }
    support::metric_value(&body, "streamer_connections")
}

/// A header's value in a whole response (name in any case).
fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// curl with the test CA: (status, body); follows no redirect unless `-L` is in
/// `args`.
fn curl(ca: &Path, args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(ca)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs (make deps installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn https_serves_the_player_and_plain_http_redirects_there() {
    let certs = certificates(None, None);
    let streamer = start(&certs.cert, &certs.key, &[]);
    let plain = streamer.address;
    let https = https_address(&streamer);
    assert_ne!(plain.port(), https.port());
    let base = format!("https://127.0.0.1:{}", https.port());

    // The player and the status over TLS, checked by curl against the test CA.
    let (status, page) = curl(&certs.ca, &[&format!("{base}/")]);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<html") || page.contains("<!doctype"),
        "{page}"
    );
    let (status, body) = curl(&certs.ca, &[&format!("{base}/api/status")]);
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["tls"]["enabled"], true, "{json}");
    assert_eq!(json["tls"]["port"], https.port(), "{json}");
    assert!(json["tls"]["expires"]
        .as_str()
        .unwrap()
        .starts_with("4096-"));
    assert!(json["tls"]["error"].is_null(), "{json}");
    assert_eq!(json["config"]["errors"], serde_json::json!([]), "{json}");
    // Nothing of the key in the status.
    let key_pem = std::fs::read_to_string(&certs.key).unwrap();
    let key_line = key_pem.lines().nth(1).unwrap();
    assert!(!body.contains(key_line));

    // Plain HTTP: a temporary redirect to the same path and query on HTTPS, after
    // the guard (with its headers).
    let response = raw(
        plain,
        &format!(
            "GET /api/status?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            plain.port()
        ),
    );
    assert_eq!(status_and_body(&response).0, 307, "{response}");
    assert_eq!(
        header(&response, "location"),
        Some(format!("{base}/api/status?x=1").as_str()),
        "{response}"
    );
    assert!(
        header(&response, "content-security-policy").is_some(),
        "{response}"
    );
    // A name is kept (without the plain port), and the method too.
    let response = raw(
        plain,
        "POST /whep HTTP/1.1\r\nHost: LocalHost:80\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_and_body(&response).0, 307, "{response}");
    assert_eq!(
        header(&response, "location"),
        Some(format!("https://localhost:{}/whep", https.port()).as_str())
    );
    // A name the device does not answer to is refused, never reflected.
    let response = raw(
        plain,
        "GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_and_body(&response).0, 421, "{response}");
    assert_eq!(header(&response, "location"), None);
    assert!(!response.contains("https://evil"), "{response}");
    // ... over HTTPS too.
    let (status, _) = curl(
        &certs.ca,
        &["-H", "Host: evil.example", &format!("{base}/api/status")],
    );
    assert_eq!(status, 421);
    // Health checks stay on plain HTTP.
    let (status, body) = streamer.get("/healthz");
    assert!(status == 200 || status == 503, "{status} {body}");
    // curl follows the redirect to HTTPS and gets the status there.
    let (status, body) = curl(
        &certs.ca,
        &[
            "-L",
            &format!("http://127.0.0.1:{}/api/status", plain.port()),
        ],
    );
    assert_eq!(status, 200);
    assert!(body.contains("\"tls\""), "{body}");
    assert!(streamer.log().contains("plain HTTP redirects there"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_streams_video_over_tls() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let certs = certificates(None, None);
    let streamer = tokio::task::spawn_blocking({
        let (cert, key) = (certs.cert.clone(), certs.key.clone());
        move || start(&cert, &key, &[])
    })
    .await
    .unwrap();
    let https = https_address(&streamer);

    let mut roots = rustls::RootCertStore::empty();
    let ca_pem = std::fs::read(&certs.ca).unwrap();
    use rustls::pki_types::pem::PemObject;
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(&ca_pem).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(https).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let url = format!("wss://localhost:{}/ws", https.port());
    let (mut socket, response) = tokio_tungstenite::client_async(url, tls)
        .await
        .expect("WebSocket handshake over TLS");
    assert_eq!(response.status(), 101);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut video_bytes = 0;
    let mut texts = 0;
    while video_bytes == 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, socket.next())
            .await
            .unwrap_or_else(|_| panic!("no video over wss within 30 s\n{}", streamer.log()))
            .expect("the socket stays open")
            .expect("a message");
        match message {
            Message::Binary(data) => video_bytes += data.len(),
            Message::Text(_) => texts += 1,
            _ => {}
        }
    }
    assert!(texts >= 1, "the hello and stream messages come first");
    assert!(video_bytes > 0);
}

/// What `/api/status` says (over plain HTTP, which then serves) when HTTPS
/// cannot start.
fn refused(cert: &Path, key: &Path) -> (serde_json::Value, String) {
    let streamer = start(cert, key, &[]);
    // Plain HTTP serves the status itself: no redirect.
    let status = streamer.status();
    assert_eq!(status["tls"]["enabled"], false, "{status}");
    assert!(!streamer.log().contains("listening on https://"));
    let error = status["tls"]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no tls.error: {status}"))
        .to_string();
    // The same reason first among the problems the player's banner shows.
    let first = status["config"]["errors"][0].as_str().unwrap_or_default();
    assert!(first.starts_with(&error), "{first:?} vs {error:?}");
    assert!(first.ends_with("serving plain HTTP only"), "{first}");
    assert!(
        streamer.log().contains("no HTTPS; serving plain HTTP only"),
        "{}",
        streamer.log()
    );
    (status, error)
}

#[test]
fn an_expired_certificate_leaves_plain_http_and_says_so() {
    let certs = certificates(Some((2000, 1, 1)), Some((2001, 1, 1)));
    let (_, error) = refused(&certs.cert, &certs.key);
    assert!(
        error.starts_with("server.tls_cert: the certificate in "),
        "{error}"
    );
    assert!(error.contains(certs.cert.to_str().unwrap()), "{error}");
    assert!(error.contains("expired on 2001-01-01"), "{error}");
}

#[test]
fn a_key_of_another_certificate_is_named() {
    let certs = certificates(None, None);
    let other = certificates(None, None);
    let (_, error) = refused(&certs.cert, &other.key);
    assert!(
        error.contains(&format!(
            "the private key in {} does not belong to the certificate in {}",
            other.key.display(),
            certs.cert.display()
        )),
        "{error}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let certs = certificates(None, None);
    let missing = certs.dir.path().join("nope.pem");
    let (_, error) = refused(&missing, &certs.key);
    assert!(
        error.starts_with(&format!(
            "server.tls_cert: cannot read {}",
            missing.display()
        )),
        "{error}"
    );
    assert!(error.contains("No such file"), "{error}");
    let (_, error) = refused(&certs.cert, &missing);
    assert!(error.starts_with("server.tls_key: cannot read"), "{error}");
}

#[test]
fn files_that_hold_no_certificate_or_key_are_named() {
    let certs = certificates(None, None);
    let garbage = certs.dir.path().join("garbage.pem");
    std::fs::write(&garbage, "this is not a certificate\n").unwrap();
    let (_, error) = refused(&garbage, &certs.key);
    assert!(
        error.starts_with(&format!(
            "server.tls_cert: {} holds no certificate",
            garbage.display()
        )),
        "{error}"
    );
    // The certificate given as the key: no private key in it.
    let (status, error) = refused(&certs.cert, &certs.cert);
    assert!(
        error.starts_with(&format!(
            "server.tls_key: {} holds no private key",
            certs.cert.display()
        )),
        "{error}"
    );
    assert!(status["tls"]["port"].is_null());
}

#[test]
fn tls_connections_take_places_and_a_bad_handshake_costs_only_its_own() {
    let certs = certificates(None, None);
    let streamer = start(
        &certs.cert,
        &certs.key,
        &[("STREAMER_SERVER__MAX_CONNECTIONS_PER_ADDRESS", "2")],
    );
    let https = https_address(&streamer);
    // Plain HTTP spoken to the HTTPS port: the handshake fails, the connection
    // is closed, nothing else happens.
    let response = raw(https, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(!response.starts_with("HTTP/1.1 200"), "{response}");
    // Its place is given back once its task ends, just after the client saw it
    // close (on a loaded machine, a while after: then `first` would take the
    // last place, `second` be refused and each probe below served). Asked from
    // another address, whose places are its own: only the asking connection open.
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_connections_from_elsewhere(&certs.ca, https) != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "the plain HTTP connection to the HTTPS port still holds its place\n{}",
            streamer.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Two silent connections to the HTTPS port hold this address's two places ...
    let first = TcpStream::connect(https).unwrap();
    let second = TcpStream::connect(https).unwrap();
    let connected = Instant::now();
    // The HTTPS and plain HTTP ports have their own accept loops: on a loaded
    // machine a probe could be taken before both silent connections are.
    // Probing starts once they are open (with the asking one: three).
    while open_connections_from_elsewhere(&certs.ca, https) != Some(3.0) {
        assert!(
            connected.elapsed() < Duration::from_secs(4),
            "the two silent TLS connections were not both taken\n{}",
            streamer.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A refused connection is answered at once, before it sends anything (so
    // the answer is not lost to a reset when a request arrives after the close).
    let refused = || {
        let mut probe = TcpStream::connect(streamer.address).unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut answer = Vec::new();
        let _ = probe.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer).into_owned();
        answer.starts_with("HTTP/1.1 503")
            && answer.contains("too many connections from your address")
    };
    while !refused() {
        // Generous: the handshake timeout (5 s) frees them.
        assert!(
            connected.elapsed() < Duration::from_secs(4),
            "plain HTTP still takes connections beside two silent TLS ones\n{}",
            streamer.log()
        );
    }
    // ... until the handshake timeout (5 s) closes them.
    for mut silent in [first, second] {
        silent
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let started = Instant::now();
        let mut buffer = [0u8; 64];
        let read = silent.read(&mut buffer);
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "the server closes a connection without a handshake"
        );
        assert!(started.elapsed() < Duration::from_secs(15));
    }
    std::thread::sleep(Duration::from_millis(200));
    let (status, _) = streamer.get("/healthz");
    assert!(status == 200 || status == 503, "{status}");
    assert!(!refused());
}

#[test]
fn with_a_password_plain_http_redirects_before_asking_and_the_login_cookie_is_secure() {
    let certs = certificates(None, None);
    let password = "tls horse battery staple";
    let streamer = start(
        &certs.cert,
        &certs.key,
        &[("STREAMER_ACCESS__PASSWORD", password)],
    );
    let plain = streamer.address;
    let https = https_address(&streamer);
    let base = format!("https://127.0.0.1:{}", https.port());
    // Plain HTTP never asks for the password (it would cross the network in the
    // clear): it is sent to HTTPS first.
    for path in ["/", "/api/status", "/login"] {
        let response = raw(
            plain,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                plain.port()
            ),
        );
        assert_eq!(status_and_body(&response).0, 307, "{path}: {response}");
        assert_eq!(header(&response, "www-authenticate"), None, "{response}");
    }
    // Over HTTPS the password is asked for...
    let (status, _) = curl(&certs.ca, &[&format!("{base}/api/status")]);
    assert_eq!(status, 401);
    let user = format!("streamer:{password}");
    let (status, body) = curl(&certs.ca, &["-u", &user, &format!("{base}/api/status")]);
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains(password));
    // ...and the login page's cookie is Secure there.
    let (_, headers) = curl(
        &certs.ca,
        &[
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-H",
            "Accept: application/json",
            "--data-urlencode",
            "user=streamer",
            "--data-urlencode",
            &format!("password={password}"),
            "--data-urlencode",
            "next=/",
            &format!("{base}/login"),
        ],
    );
    let cookie = headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {headers}"));
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
}
