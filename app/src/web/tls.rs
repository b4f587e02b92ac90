//! Optional HTTPS: the certificate and key of `server.tls_cert` and
//! `server.tls_key`, checked once at start, and the redirect that sends plain
//! HTTP there.
//!
//! - **The certificate** ([`load`]): both files are read (PEM, at most
//!   [`MAX_PEM_BYTES`] each) and checked before anything listens: the file exists
//!   and can be read, it holds a certificate (the first one is the device's; the
//!   rest are intermediates) and the key file a private key, the certificate has
//!   not expired, and the key is the certificate's. Any of these failing is a
//!   [`TlsError`] naming the key, the file and what is wrong; the streamer then
//!   serves plain HTTP only and says why (log, `/api/status` `tls`, the player's
//!   banner). A certificate whose validity starts in the future is served with a
//!   warning, not refused: a Raspberry Pi has no clock of its own, so at boot its
//!   time may be behind until the network's time arrives, and the browser judges
//!   the certificate by its own clock. One that expires within
//!   [`EXPIRY_WARNING`] is a warning too.
//! - **The handshake** runs in the connection's own task, inside the same
//!   connection place and accept loop as plain HTTP ([`super::connections`]),
//!   and must finish within [`HANDSHAKE_TIMEOUT`]. rustls with the aws-lc-rs
//!   provider (ARCHITECTURE.md, Decisions); HTTP/1.1 only (ALPN `http/1.1`).
//! - **The redirect** ([`plain_http_answer`]): with HTTPS on, a request that came over
//!   plain HTTP gets `307 Temporary Redirect` to the same path and query on
//!   `https://` + the request's host name + the HTTPS port, except `/healthz`,
//!   which health checks keep reaching over plain HTTP. The request guard
//!   ([`super::guard`]) answers it after admitting the `Host` and before asking
//!   for a password (never asked in the clear), and the `Location` is built
//!   from the parsed name, so a name the device does not answer to is never
//!   reflected. Temporary, not permanent (301/308) and no HSTS: HTTPS falls back
//!   to plain HTTP when the certificate goes bad or the owner turns it off, and a
//!   browser that cached a permanent redirect would then keep going to a port
//!   that no longer answers. 307 keeps the method and body (a `POST /whep`).

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Serialize;
use tokio_rustls::TlsAcceptor;
use x509_cert::der::Decode;

use super::connections::Scheme;
use super::guard::{parse_host, HostName};

/// The largest certificate or key file read: a chain of a few certificates is a
/// few KiB.
pub const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// Time a client has to finish the TLS handshake, from the connection's start:
/// as long as it has for a request's head
/// ([`super::connections::HEADER_TIMEOUT`]).
pub const HANDSHAKE_TIMEOUT: Duration = super::connections::HEADER_TIMEOUT;

/// A certificate that expires sooner than this is logged as a warning at start.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// Why the certificate or key cannot be used. Each message names the setting and
/// the file; none repeats anything of a key file's contents.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read (missing, a folder, no permission).
    #[error("{key}: cannot read {path}: {source}")]
    Read {
        /// `server.tls_cert` or `server.tls_key`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is larger than [`MAX_PEM_BYTES`].
    #[error("{key}: {path} is over {} KiB: not a certificate or key file", MAX_PEM_BYTES / 1024)]
    TooLarge {
        /// `server.tls_cert` or `server.tls_key`.
        key: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The certificate file is not PEM as expected.
    #[error("server.tls_cert: {path} is not a valid PEM file ({reason})")]
    CertNotPem {
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        reason: String,
    },
    /// The certificate file holds no certificate.
    #[error(
        "server.tls_cert: {path} holds no certificate (a PEM block \
         \"-----BEGIN CERTIFICATE-----\")"
    )]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The certificate does not parse as X.509.
    #[error("server.tls_cert: the certificate in {path} cannot be read ({reason})")]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// The certificate has expired (by the device's clock).
    #[error(
        "server.tls_cert: the certificate in {path} expired on {not_after}; browsers refuse \
         it: make a new one"
    )]
    Expired {
        /// The file.
        path: PathBuf,
        /// When it expired (UTC, RFC 3339).
        not_after: String,
    },
    /// The key file holds no private key, or one that cannot be read (its
    /// contents are never repeated).
    #[error(
        "server.tls_key: {path} holds no private key that can be read (a PEM block such as \
         \"-----BEGIN PRIVATE KEY-----\")"
    )]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The private key is of a kind TLS cannot use.
    #[error("server.tls_key: the private key in {path} cannot be used: {reason}")]
    KeyRefused {
        /// The file.
        path: PathBuf,
        /// What rustls said.
        reason: String,
    },
    /// The private key is not the certificate's.
    #[error(
        "server.tls_key: the private key in {key} does not belong to the certificate in {cert}"
    )]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
}

/// A certificate and key that passed every check, ready to serve.
#[derive(Clone)]
pub struct Certificate {
    /// Makes the TLS side of each connection.
    pub acceptor: TlsAcceptor,
    /// When the certificate expires (UTC, RFC 3339).
    pub expires: String,
    /// The same, in seconds since 1970.
    pub not_after: u64,
    /// Things to know that do not stop HTTPS: not valid yet by the device's
    /// clock, or expiring soon.
    pub warnings: Vec<String>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("expires", &self.expires)
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

/// Reads at most [`MAX_PEM_BYTES`] of `path`.
fn read_pem(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let read = |source| TlsError::Read {
        key,
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsError::TooLarge {
            key,
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// Seconds since 1970 of `time` (0 before).
fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Reads and checks the certificate chain at `cert_path` and the private key at
/// `key_path`, judging validity by `now`.
pub fn load(cert_path: &Path, key_path: &Path, now: SystemTime) -> Result<Certificate, TlsError> {
    let cert_pem = read_pem("server.tls_cert", cert_path)?;
    let key_pem = read_pem("server.tls_key", key_path)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::CertNotPem {
            path: cert_path.to_path_buf(),
            reason: error.to_string(),
        })?;
    let Some(first) = chain.first() else {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_path_buf(),
        });
    };
    let parsed =
        x509_cert::Certificate::from_der(first).map_err(|error| TlsError::BadCertificate {
            path: cert_path.to_path_buf(),
            reason: error.to_string(),
        })?;
    let validity = &parsed.tbs_certificate.validity;
    let not_before = validity.not_before.to_unix_duration().as_secs();
    let not_after = validity.not_after.to_unix_duration().as_secs();
    let expires = validity.not_after.to_date_time().to_string();
    let now = unix_seconds(now);
    if now > not_after {
        return Err(TlsError::Expired {
            path: cert_path.to_path_buf(),
            not_after: expires,
        });
    }
    // Any parse error of the key file stays unsaid: its text could hold key bytes.
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey {
        path: key_path.to_path_buf(),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::KeyRefused {
            path: key_path.to_path_buf(),
            reason: error.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| match error {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                TlsError::Mismatch {
                    cert: cert_path.to_path_buf(),
                    key: key_path.to_path_buf(),
                }
            }
            other => TlsError::KeyRefused {
                path: key_path.to_path_buf(),
                reason: other.to_string(),
            },
        })?;
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut warnings = Vec::new();
    if now < not_before {
        warnings.push(format!(
            "server.tls_cert: the certificate in {} is valid only from {} and the device's \
             clock says it is earlier (is its time set yet?); served anyway, browsers judge \
             by their own clocks",
            cert_path.display(),
            validity.not_before.to_date_time()
        ));
    }
    let left = not_after.saturating_sub(now);
    if left < EXPIRY_WARNING.as_secs() {
        warnings.push(format!(
            "server.tls_cert: the certificate in {} expires on {expires}, in {} days: make a \
             new one",
            cert_path.display(),
            left / (24 * 3600)
        ));
    }
    Ok(Certificate {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        expires,
        not_after,
        warnings,
    })
}

/// How often [`watch_expiry`] looks at the clock.
const EXPIRY_CHECK: Duration = Duration::from_secs(3600);

/// For a long run: logs a warning when the certificate (at `path`, ending at
/// `not_after`, seconds since 1970) comes within [`EXPIRY_WARNING`] of its end,
/// and an error once it has expired (browsers then refuse it; a restart falls back
/// to plain HTTP). Reads the wall clock every [`EXPIRY_CHECK`], as it may jump
/// when the network's time arrives. Never returns.
pub async fn watch_expiry(path: PathBuf, not_after: u64, expires: String) {
    let mut warned = false;
    loop {
        tokio::time::sleep(EXPIRY_CHECK).await;
        let now = unix_seconds(SystemTime::now());
        if now > not_after {
            tracing::error!(
                path = %path.display(),
                %expires,
                "the HTTPS certificate has expired: browsers refuse it; make a new one \
                 and restart (until then, plain HTTP redirects to a page browsers refuse)"
            );
            return;
        }
        if !warned && not_after - now < EXPIRY_WARNING.as_secs() {
            warned = true;
            tracing::warn!(
                path = %path.display(),
                %expires,
                "the HTTPS certificate expires within 14 days: make a new one"
            );
        }
    }
}

/// HTTPS in `/api/status`: whether it is served, where, until when, and why not.
/// Never anything of the key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TlsStatus {
    /// HTTPS is served (and plain HTTP redirects to it).
    pub enabled: bool,
    /// The HTTPS port, when served.
    pub port: Option<u16>,
    /// When the certificate expires (UTC, RFC 3339), when served.
    pub expires: Option<String>,
    /// What to know that does not stop HTTPS (not valid yet by the device's
    /// clock, expiring soon).
    pub warnings: Vec<String>,
    /// Why HTTPS is not served although `server.tls_cert` and `tls_key` are set.
    pub error: Option<String>,
}

impl TlsStatus {
    /// HTTPS not asked for.
    pub fn off() -> Self {
        TlsStatus::default()
    }

    /// HTTPS asked for and not served, because of `error`.
    pub fn failed(error: String) -> Self {
        TlsStatus {
            error: Some(error),
            ..TlsStatus::default()
        }
    }

    /// HTTPS served on `port` with `certificate`.
    pub fn serving(port: u16, certificate: &Certificate) -> Self {
        TlsStatus {
            enabled: true,
            port: Some(port),
            expires: Some(certificate.expires.clone()),
            warnings: certificate.warnings.clone(),
            error: None,
        }
    }

    /// The port plain HTTP redirects to, when HTTPS is served.
    pub fn redirect_port(&self) -> Option<u16> {
        self.port.filter(|_| self.enabled)
    }
}

/// `host` as a URL writes it: `[v6]`, `1.2.3.4`, or the name.
fn url_host(host: &HostName) -> String {
    match host {
        HostName::Ip(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
        HostName::Ip(ip) => ip.to_string(),
        HostName::Name(name) => name.clone(),
    }
}

/// Where a plain HTTP request for `path_and_query` on `host` is sent: the same on
/// `https://`, on `port` (left out when 443).
pub fn https_location(host: &HostName, port: u16, path_and_query: &str) -> String {
    let port = if port == 443 {
        String::new()
    } else {
        format!(":{port}")
    };
    format!("https://{}{port}{path_and_query}", url_host(host))
}

/// The answer to a request that came over plain HTTP while HTTPS is served on
/// `port`: a redirect there (or 400 for an HTTP/1.0 request without a name);
/// `None` for a request over HTTPS and for `/healthz`, which are served. Only for
/// a request whose `Host` the guard has admitted. Also callable from the guard
/// itself, to redirect before anything else it checks (a password typed into a
/// plain-HTTP page would cross the network in the clear).
pub fn plain_http_answer<B>(request: &axum::http::Request<B>, port: u16) -> Option<Response> {
    let over_tls = request.extensions().get::<Scheme>() == Some(&Scheme::Https);
    if over_tls || request.uri().path() == "/healthz" {
        return None;
    }
    // The guard admitted the name; an HTTP/1.0 request may have none.
    let named = match request.uri().authority() {
        Some(authority) => Some(authority.as_str().to_owned()),
        None => request
            .headers()
            .get(header::HOST)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
    };
    let path_and_query = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = named
        .as_deref()
        .and_then(parse_host)
        .map(|host| https_location(&host, port, path_and_query))
        .and_then(|location| HeaderValue::from_str(&location).ok());
    let answer = match location {
        Some(location) => {
            let text = format!(
                "this device is served over HTTPS: {}\n",
                location.to_str().unwrap_or_default()
            );
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, location)],
                text,
            )
                .into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            format!("this device is served over HTTPS on port {port}; name it in a Host header\n"),
        )
            .into_response(),
    };
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_keep_the_host_path_and_query_and_leave_out_443() {
        let name = HostName::Name("streamer.local".into());
        assert_eq!(
            https_location(&name, 443, "/ws?x=1"),
            "https://streamer.local/ws?x=1"
        );
        assert_eq!(
            https_location(&name, 8443, "/"),
            "https://streamer.local:8443/"
        );
        let v6 = HostName::Ip("fe80::1".parse().unwrap());
        assert_eq!(https_location(&v6, 8443, "/a"), "https://[fe80::1]:8443/a");
        let v4 = HostName::Ip("192.0.2.7".parse().unwrap());
        assert_eq!(https_location(&v4, 443, "/"), "https://192.0.2.7/");
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = load(
            Path::new("/nonexistent/cert.pem"),
            Path::new("/nonexistent/key.pem"),
            SystemTime::now(),
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("server.tls_cert: cannot read /nonexistent/cert.pem: "));
    }

    /// A self-signed certificate valid from 2030-01-01 to 2030-01-10, and its key,
    /// as PEM files in a new folder.
    fn certificate_of_2030() -> (tempfile::TempDir, PathBuf, PathBuf) {
        use base64::Engine;
        let pem = |label: &str, der: &[u8]| {
            let text = base64::engine::general_purpose::STANDARD.encode(der);
            let lines: Vec<&str> = text
                .as_bytes()
                .chunks(64)
                .map(|line| std::str::from_utf8(line).unwrap())
                .collect();
            format!(
                "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
                lines.join("\n")
            )
        };
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2030, 1, 1);
        params.not_after = rcgen::date_time_ymd(2030, 1, 10);
        let cert = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, pem("CERTIFICATE", cert.der())).unwrap();
        std::fs::write(&key_path, pem("PRIVATE KEY", &key.serialize_der())).unwrap();
        (dir, cert_path, key_path)
    }

    fn on(year: i32, month: u8, day: u8) -> SystemTime {
        let date = rcgen::date_time_ymd(year, month, day);
        UNIX_EPOCH + Duration::from_secs(u64::try_from(date.unix_timestamp()).unwrap())
    }

    #[test]
    fn validity_is_judged_by_the_given_clock() {
        let (_dir, cert, key) = certificate_of_2030();
        // 8 days left: served, with a warning.
        let good = load(&cert, &key, on(2030, 1, 2)).unwrap();
        assert_eq!(good.expires, "2030-01-10T00:00:00Z");
        assert_eq!(good.warnings.len(), 1, "{:?}", good.warnings);
        assert!(good.warnings[0].contains("expires on 2030-01-10T00:00:00Z, in 8 days"));
        // Before its start (a Pi's clock before the network's time): served, with
        // a warning.
        let ahead = load(&cert, &key, on(2029, 1, 1)).unwrap();
        assert!(ahead.warnings[0].contains("is valid only from 2030-01-01T00:00:00Z"));
        assert_eq!(ahead.warnings.len(), 1, "{:?}", ahead.warnings);
        // After its end: refused, naming the file and the date.
        let error = load(&cert, &key, on(2030, 2, 1)).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "server.tls_cert: the certificate in {} expired on 2030-01-10T00:00:00Z; \
                 browsers refuse it: make a new one",
                cert.display()
            )
        );
    }

    #[test]
    fn a_file_over_the_limit_is_not_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.pem");
        std::fs::write(&big, vec![b'A'; MAX_PEM_BYTES as usize + 1]).unwrap();
        let error = load(&big, &big, SystemTime::now()).unwrap_err();
        assert!(
            matches!(
                error,
                TlsError::TooLarge {
                    key: "server.tls_cert",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn plain_http_is_redirected_but_healthz_and_https_are_served() {
        let request = |uri: &str, host: Option<&str>, scheme: Option<Scheme>| {
            let mut builder = axum::http::Request::builder().uri(uri);
            if let Some(host) = host {
                builder = builder.header(header::HOST, host);
            }
            let mut request = builder.body(()).unwrap();
            if let Some(scheme) = scheme {
                request.extensions_mut().insert(scheme);
            }
            request
        };
        let answer = plain_http_answer(
            &request(
                "/js/main.js?v=2",
                Some("Streamer.Local:8080"),
                Some(Scheme::Http),
            ),
            8443,
        )
        .unwrap();
        assert_eq!(answer.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(
            answer.headers()[header::LOCATION],
            "https://streamer.local:8443/js/main.js?v=2"
        );
        assert!(
            plain_http_answer(&request("/healthz", Some("h"), Some(Scheme::Http)), 443).is_none()
        );
        assert!(plain_http_answer(&request("/", Some("h"), Some(Scheme::Https)), 443).is_none());
        // No name to send it to (HTTP/1.0): told, not redirected.
        let answer = plain_http_answer(&request("/", None, None), 443).unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn the_status_redirects_only_when_served() {
        assert_eq!(TlsStatus::off().redirect_port(), None);
        assert_eq!(TlsStatus::failed("x".into()).redirect_port(), None);
        let mut serving = TlsStatus::off();
        serving.enabled = true;
        serving.port = Some(8443);
        assert_eq!(serving.redirect_port(), Some(8443));
    }
}
