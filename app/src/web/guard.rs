//! Request policy: the one layer in front of every route, `/ws` and the player's
//! files included, that decides what is answered at all and what every answer
//! carries. What all endpoints share goes here (access control too, when it comes),
//! not into each handler.
//!
//! - **Names** (DNS rebinding): the `Host` a request names must be one the device
//!   answers to ([`Guard::answers_to`]), else 421 Misdirected Request naming
//!   `server.allowed_hosts`. A web page that points a name of its own at the device
//!   is then turned away, so it cannot read `/api/status` or the stream.
//! - **Origin**: a WebSocket upgrade, a WHEP request, a login and an update
//!   (`POST /api/update`) from a browser page (an `Origin` header) must come from
//!   a page under one of those names, else 403. Clients that are not
//!   browsers send no `Origin` and pass.
//! - **Paths**: no dotfiles (a segment starting with `.`, percent-encoded or not,
//!   is 404) and no empty segments (`//js` is served as `/js`), so a redirect can
//!   never be protocol-relative.
//! - **Headers** on every response: [`content_security_policy`], `nosniff`, framing
//!   (`server.frame_ancestors`), `Referrer-Policy: no-referrer`, and a UTF-8 charset
//!   on text.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri, Version};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::access::origin::AllowedOrigin;
use crate::access::{credentials, session, Access, Attempt};
use crate::config::{AccessConfig, ServerConfig};
use crate::listen::RateLimitedLog;

/// The shortest time between two readings of the device's names, when a request
/// names an address or name not seen before (a new DHCP address, a renamed host).
/// Bounds what a stream of wrong names costs.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// How much of a refused `Host` or `Origin` a message repeats.
const SHOWN_CHARS: usize = 80;

/// The request policy, built once from `[server]`.
#[derive(Debug)]
pub struct Guard {
    /// `server.allowed_hosts`, parsed.
    allowed_hosts: Vec<HostName>,
    /// `server.allowed_hosts` has "*": every name is answered.
    any_host: bool,
    /// `access.allowed_origins`, parsed.
    allowed_origins: Vec<AllowedOrigin>,
    /// The [`content_security_policy`] of every response.
    content_security_policy: HeaderValue,
    /// `X-Frame-Options`, for browsers without `frame-ancestors`, when the setting
    /// can be said in it.
    frame_options: Option<HeaderValue>,
    local: LocalNames,
    /// Refusals are logged as warnings at most once per [`crate::listen::LOG_INTERVAL`].
    refusals: Mutex<RateLimitedLog>,
    /// Wrong passwords, likewise.
    logins: Mutex<RateLimitedLog>,
}

impl Guard {
    /// The policy of `server` and `access`, with the device's names read from
    /// the system.
    pub fn new(server: &ServerConfig, access: &AccessConfig) -> Self {
        Self::with_names(server, access, read_system_names)
    }

    /// The policy of `server` and `access`, with the device's names from `read`
    /// (tests).
    pub fn with_names(server: &ServerConfig, access: &AccessConfig, read: fn() -> Names) -> Self {
        let allowed_hosts = server
            .allowed_hosts
            .iter()
            .filter_map(|entry| match entry.parse::<IpAddr>() {
                Ok(ip) => Some(HostName::Ip(ip.to_canonical())),
                Err(_) => parse_host(entry),
            })
            .collect();
        let frame_ancestors = frame_ancestors(&server.frame_ancestors);
        let content_security_policy = HeaderValue::from_str(&content_security_policy(
            &frame_ancestors,
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"));
        let frame_options = match frame_ancestors.as_str() {
            "'none'" => Some(HeaderValue::from_static("DENY")),
            "'self'" => Some(HeaderValue::from_static("SAMEORIGIN")),
            _ => None,
        };
        Guard {
            allowed_hosts,
            any_host: server.allowed_hosts.iter().any(|h| h == "*"),
            allowed_origins: access
                .allowed_origins
                .iter()
                .filter_map(|entry| AllowedOrigin::parse(entry).ok())
                .collect(),
            content_security_policy,
            frame_options,
            local: LocalNames {
                read,
                cache: Mutex::new(Cache {
                    names: Names::default(),
                    read_at: None,
                }),
            },
            refusals: Mutex::new(RateLimitedLog::new()),
            logins: Mutex::new(RateLimitedLog::new()),
        }
    }

    /// A refusal in the log: a misdirected or cross-site request is most often a
    /// reverse proxy or a dashboard that needs a setting, so it is a warning (at
    /// most one per [`crate::listen::LOG_INTERVAL`], with how many were held back); a
    /// dotfile or a malformed request is only noise from a scanner.
    fn log(&self, refusal: &Refusal) {
        if matches!(refusal, Refusal::WrongPassword(..) | Refusal::Braked(..)) {
            // Someone may be guessing: worth a line, but never the password, and
            // at most one per interval however fast they guess.
            let due = self
                .logins
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .due();
            match due {
                Some(held_back) => tracing::warn!(%refusal, held_back, "login refused"),
                None => tracing::debug!(%refusal, "login refused"),
            }
            return;
        }
        if !matches!(refusal, Refusal::Misdirected(_) | Refusal::CrossOrigin(_)) {
            tracing::debug!(%refusal, "request refused");
            return;
        }
        let due = self
            .refusals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .due();
        match due {
            Some(held_back) => tracing::warn!(
                %refusal,
                held_back,
                "request refused (server.allowed_hosts names what else the device answers to)"
            ),
            None => tracing::debug!(%refusal, "request refused"),
        }
    }

    /// Whether the device answers to `host`: localhost and loopback addresses, its
    /// hostname and hostname.local, the addresses of its interfaces, and
    /// `server.allowed_hosts`.
    pub fn answers_to(&self, host: &HostName) -> bool {
        let loopback = match host {
            HostName::Ip(ip) => ip.is_loopback(),
            HostName::Name(name) => name == "localhost",
        };
        self.any_host || loopback || self.allowed_hosts.contains(host) || self.local.knows(host)
    }

    /// Checks a request, and may rewrite its path (repeated slashes made one).
    fn admit(&self, request: &mut Request) -> Result<(), Refusal> {
        self.check_host(request)?;
        self.check_origin(request.method(), request.uri().path(), request.headers())?;
        let path = request.uri().path();
        if has_dot_segment(path) {
            return Err(Refusal::NotFound);
        }
        if path.contains("//") {
            let uri = collapse_slashes(request.uri()).ok_or(Refusal::BadPath)?;
            *request.uri_mut() = uri;
        }
        Ok(())
    }

    /// The name a request is for: the request line's authority if it has one
    /// (RFC 9112 3.2.2), else its one `Host` header. An HTTP/1.0 request without a
    /// name passes: browsers always send `Host`, so a request without one comes
    /// from a program (an old health check), never from a web page.
    fn check_host(&self, request: &Request) -> Result<(), Refusal> {
        let headers = request.headers();
        let given = match request.uri().authority() {
            Some(authority) => authority.as_str().to_owned(),
            None => {
                let mut hosts = headers.get_all(header::HOST).iter();
                match (hosts.next(), hosts.next()) {
                    (None, _) if request.version() <= Version::HTTP_10 => return Ok(()),
                    (None, _) => return Err(Refusal::NoHost),
                    (Some(_), Some(_)) => return Err(Refusal::ManyHosts),
                    (Some(value), None) => String::from_utf8_lossy(value.as_bytes()).into_owned(),
                }
            }
        };
        match parse_host(&given) {
            Some(host) if self.answers_to(&host) => Ok(()),
            Some(_) => Err(Refusal::Misdirected(given)),
            None => Err(Refusal::BadHost(given)),
        }
    }

    /// A WebSocket upgrade or a WHEP request (which makes a viewer too, and which
    /// a page elsewhere could send without a CORS preflight) that names the page
    /// it comes from must come from a page of a name the device answers to (any
    /// port).
    fn check_origin(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<(), Refusal> {
        let whep = path == "/whep" || path.starts_with("/whep/");
        // Login and logout from a page elsewhere (login CSRF) are refused too.
        let login = path == "/login" || path == "/logout";
        // And an update: a page elsewhere must never make the device install
        // software (a form can post any body without a CORS preflight).
        let update = path == crate::update::http::PATH && method != Method::GET;
        if !is_websocket_upgrade(headers) && !whep && !login && !update {
            return Ok(());
        }
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
        // Under `Referrer-Policy: no-referrer` a browser's form post says
        // `Origin: null`; its `Sec-Fetch-Site`, which no page can set, then says
        // whether it came from this site.
        let same_origin = headers
            .get("sec-fetch-site")
            .is_some_and(|site| site == "same-origin");
        if origin == "null" && same_origin {
            return Ok(());
        }
        if self.allowed_origins.iter().any(|a| a.matches(&origin)) {
            return Ok(());
        }
        let host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .and_then(parse_host);
        match host {
            Some(host) if self.answers_to(&host) => Ok(()),
            _ => Err(Refusal::CrossOrigin(origin)),
        }
    }

    /// Adds the headers every response carries.
    fn dress(&self, response: &mut Response) {
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            self.content_security_policy.clone(),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        if let Some(frame_options) = &self.frame_options {
            headers.insert(header::X_FRAME_OPTIONS, frame_options.clone());
        }
        if let Some(with_charset) = headers.get(header::CONTENT_TYPE).and_then(add_charset) {
            headers.insert(header::CONTENT_TYPE, with_charset);
        }
    }
}

/// The middleware: checks the request ([`Guard`]) and who sends it
/// ([`authorize`]), runs the rest of the router, and dresses whatever comes
/// back, refusals included.
pub async fn check(
    State((guard, access, https_port)): State<(Arc<Guard>, Arc<Access>, Option<u16>)>,
    mut request: Request,
    next: Next,
) -> Response {
    let admitted = guard.admit(&mut request);
    // With HTTPS on, plain HTTP is sent there: only for a name admitted, and
    // before the password is asked, so that it is never typed in the clear.
    if let (Ok(()), Some(port)) = (&admitted, https_port) {
        if let Some(mut answer) = super::tls::plain_http_answer(&request, port) {
            guard.dress(&mut answer);
            return answer;
        }
    }
    let admitted = match admitted {
        Ok(()) => {
            let client = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |c| c.0.ip());
            let (method, uri) = (request.method().clone(), request.uri().clone());
            authorize(&access, &method, &uri, request.headers(), client).await
        }
        Err(refusal) => Err(refusal),
    };
    let mut response = match admitted {
        Ok(()) => {
            let response = next.run(request).await;
            if is_protocol_relative_redirect(&response) {
                Refusal::NotFound.into_response()
            } else {
                response
            }
        }
        Err(refusal) => {
            guard.log(&refusal);
            refusal.into_response()
        }
    };
    guard.dress(&mut response);
    if access.locked() {
        // What is behind the password must not stay in shared caches.
        response
            .headers_mut()
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("private, no-cache"));
    }
    response
}

/// What passes without a password when one is set: the health check, and the
/// login page with its stylesheet and script.
pub const PUBLIC_PATHS: [&str; 6] = [
    "/healthz",
    "/login",
    "/logout",
    "/style.css",
    "/js/login.js",
    "/favicon.ico",
];

/// Whether the request may go on: always without a password; with one, a
/// session cookie that checks, or `Authorization: Basic` with the right user
/// and password (through the brake), or a [`PUBLIC_PATHS`] path.
async fn authorize(
    access: &Arc<Access>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    client: IpAddr,
) -> Result<(), Refusal> {
    if !access.locked() || PUBLIC_PATHS.contains(&uri.path()) {
        return Ok(());
    }
    let now_unix = unix_now();
    let cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    if credentials::cookie(cookies, session::COOKIE)
        .is_some_and(|v| access.session_valid(v, now_unix))
    {
        return Ok(());
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(credentials::basic);
    if let Some(basic) = basic {
        return match attempt(access, client, basic).await {
            Attempt::Granted => Ok(()),
            Attempt::Denied => Err(Refusal::WrongPassword(client, Challenge::of(headers))),
            Attempt::Braked(retry_after) => Err(Refusal::Braked(client, retry_after)),
        };
    }
    let navigation = matches!(*method, Method::GET | Method::HEAD)
        && match headers.get("sec-fetch-mode") {
            Some(mode) => mode == "navigate",
            None => headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|accept| accept.contains("text/html")),
        };
    if navigation {
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        // Relative, so that it also works under a reverse proxy's path prefix.
        let up = "../".repeat(uri.path().matches('/').count().saturating_sub(1));
        return Err(Refusal::Login(format!(
            "{up}login?next={}",
            percent_encode_component(target)
        )));
    }
    Err(Refusal::Unauthorized(Challenge::of(headers)))
}

/// Checks a Basic user and password, a slow (hashed, not yet seen) one off the
/// async runtime.
async fn attempt(access: &Arc<Access>, client: IpAddr, basic: credentials::Basic) -> Attempt {
    let now = std::time::Instant::now();
    if access.is_quick(&basic.password) {
        return access.attempt(client, &basic.user, &basic.password, now);
    }
    let access = access.clone();
    tokio::task::spawn_blocking(move || access.attempt(client, &basic.user, &basic.password, now))
        .await
        .unwrap_or(Attempt::Denied)
}

/// Seconds since the Unix epoch (session cookies carry their issue time).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How a 401 asks for credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// `WWW-Authenticate: Basic`: programs (curl, Home Assistant, Prometheus).
    Basic,
    /// A script in a browser page (the player): a challenge browsers do not
    /// answer with their own password dialog, naming the login form instead.
    Cookie,
}

impl Challenge {
    /// Browsers mark their scripts' requests with `Sec-Fetch-Mode`.
    fn of(headers: &HeaderMap) -> Challenge {
        match headers.get("sec-fetch-mode") {
            Some(mode) if mode != "navigate" => Challenge::Cookie,
            _ => Challenge::Basic,
        }
    }

    fn header(self) -> HeaderValue {
        match self {
            Challenge::Basic => HeaderValue::from_static("Basic realm=\"streamer\", charset=\"UTF-8\""),
            Challenge::Cookie => HeaderValue::from_static(
                "Cookie realm=\"streamer\", form-action=\"/login\", cookie-name=\"streamer_session\"",
            ),
        }
    }
}

/// `text` percent-encoded for a query value (RFC 3986 unreserved kept, and `/`).
fn percent_encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A name a request asks for, as compared: an address, or a lowercase name without
/// the trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostName {
    /// An IP literal (IPv4-mapped IPv6 addresses as IPv4).
    Ip(IpAddr),
    /// A DNS name.
    Name(String),
}

/// Reads `name`, `name:port`, `1.2.3.4:port` or `[v6]:port` (a `Host` header, or
/// an origin without its scheme); `None` when it is none of those.
pub fn parse_host(text: &str) -> Option<HostName> {
    let (host, rest) = if let Some(rest) = text.strip_prefix('[') {
        let (inside, rest) = rest.split_once(']')?;
        let ip: Ipv6Addr = inside.parse().ok()?;
        (HostName::Ip(IpAddr::V6(ip).to_canonical()), rest)
    } else {
        let end = text.find(':').unwrap_or(text.len());
        let (name, rest) = text.split_at(end);
        let host = match name.parse::<Ipv4Addr>() {
            Ok(ip) => HostName::Ip(IpAddr::V4(ip)),
            Err(_) => HostName::Name(dns_name(name)?),
        };
        (host, rest)
    };
    match rest.strip_prefix(':') {
        None if rest.is_empty() => Some(host),
        Some(port) if port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()) => Some(host),
        _ => None,
    }
}

/// A DNS name in the form names are compared in: lowercase, without the final dot.
fn dns_name(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let usable = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.';
    if name.is_empty() || name.len() > 253 || !name.bytes().all(usable) {
        return None;
    }
    Some(name.to_ascii_lowercase())
}

/// The names the device has: its hostname and the addresses of its interfaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    /// The kernel's hostname, lowercase.
    pub hostname: Option<String>,
    /// Every interface's addresses, IPv4-mapped IPv6 addresses as IPv4.
    pub addresses: Vec<IpAddr>,
}

impl Names {
    /// Whether `host` is one of these: an address, the hostname, or hostname.local.
    fn has(&self, host: &HostName) -> bool {
        match host {
            HostName::Ip(ip) => self.addresses.contains(ip),
            HostName::Name(name) => self.hostname.as_deref().is_some_and(|hostname| {
                name == hostname || name.strip_suffix(".local") == Some(hostname)
            }),
        }
    }
}

/// The device's names, read again when a request names something they lack (at
/// most once per [`REFRESH_INTERVAL`]), as addresses come and go with DHCP.
#[derive(Debug)]
struct LocalNames {
    read: fn() -> Names,
    cache: Mutex<Cache>,
}

/// The names last read, and when.
#[derive(Debug)]
struct Cache {
    names: Names,
    read_at: Option<Instant>,
}

impl LocalNames {
    fn knows(&self, host: &HostName) -> bool {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.names.has(host) {
            return true;
        }
        if cache
            .read_at
            .is_some_and(|at| at.elapsed() < REFRESH_INTERVAL)
        {
            return false;
        }
        cache.names = (self.read)();
        cache.read_at = Some(Instant::now());
        cache.names.has(host)
    }
}

/// The kernel's hostname and every interface address (getifaddrs).
pub fn read_system_names() -> Names {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty());
    let addresses = crate::netif::addresses();
    Names {
        hostname,
        addresses,
    }
}

/// `server.frame_ancestors` as the CSP directive's sources.
fn frame_ancestors(setting: &[String]) -> String {
    let sources: Vec<&str> = setting
        .iter()
        .map(|source| match source.as_str() {
            "self" | "'self'" => "'self'",
            other => other,
        })
        .filter(|source| {
            !source.is_empty()
                && source
                    .bytes()
                    .all(|b| b == b'\'' || b.is_ascii_alphanumeric() || b"-._:/*[]".contains(&b))
        })
        .collect();
    if sources.is_empty() {
        "'none'".to_owned()
    } else {
        sources.join(" ")
    }
}

/// The Content-Security-Policy of every response: nothing inline, nothing from
/// elsewhere, with what the player needs: `blob:` media (MSE's object URL), the
/// WebSocket (`ws:`/`wss:`, as `'self'` does not cover them in every browser), the
/// `data:` favicon.
pub fn content_security_policy(frame_ancestors: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         media-src 'self' blob:; connect-src 'self' ws: wss:; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors {frame_ancestors}"
    )
}

/// `Content-Type` with `; charset=utf-8` added for text that names no charset.
fn add_charset(content_type: &HeaderValue) -> Option<HeaderValue> {
    let text = content_type.to_str().ok()?;
    let lower = text.to_ascii_lowercase();
    let is_text = lower.starts_with("text/") || lower.starts_with("application/javascript");
    if !is_text || lower.contains("charset=") {
        return None;
    }
    HeaderValue::from_str(&format!("{text}; charset=utf-8")).ok()
}

/// Whether any segment of `path`, percent-decoded, starts with a dot (`.git`,
/// `.installed`, `..`). Decoded first, so `%2e` and `%2F.` count too.
fn has_dot_segment(path: &str) -> bool {
    percent_decode(path.as_bytes())
        .split(|&b| b == b'/')
        .any(|segment| segment.first() == Some(&b'.'))
}

/// `%XX` sequences decoded; anything else kept as it is.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut output = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' && i + 2 < input.len() {
            if let (Some(high), Some(low)) = (hex(input[i + 1]), hex(input[i + 2])) {
                output.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        output.push(input[i]);
        i += 1;
    }
    output
}

/// `uri` with every run of slashes in its path made one slash.
fn collapse_slashes(uri: &Uri) -> Option<Uri> {
    let mut path = String::with_capacity(uri.path().len());
    for c in uri.path().chars() {
        if !(c == '/' && path.ends_with('/')) {
            path.push(c);
        }
    }
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().ok()?);
    Uri::from_parts(parts).ok()
}

/// A redirect whose target a browser would read as another host (`//host/...`,
/// `/\host`), whatever made it.
fn is_protocol_relative_redirect(response: &Response) -> bool {
    response.status().is_redirection()
        && response
            .headers()
            .get(header::LOCATION)
            .is_some_and(|location| {
                let target = location.as_bytes();
                target.starts_with(b"//") || target.starts_with(b"/\\") || target.starts_with(b"\\")
            })
}

/// Whether a request asks to become a WebSocket.
fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers.get_all(header::UPGRADE).iter().any(|value| {
        value.to_str().is_ok_and(|text| {
            text.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
        })
    })
}

/// Why a request is not answered.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    /// The `Host` names something the device does not answer to.
    #[error("misdirected request for {}", shown(.0))]
    Misdirected(String),
    /// The `Host` is not a name.
    #[error("bad Host {}", shown(.0))]
    BadHost(String),
    /// HTTP/1.1 without `Host`.
    #[error("no Host header")]
    NoHost,
    /// More than one `Host`.
    #[error("more than one Host header")]
    ManyHosts,
    /// A WebSocket from a page of another site.
    #[error("cross-site WebSocket from {}", shown(.0))]
    CrossOrigin(String),
    /// A dotfile, or a redirect that would leave the device.
    #[error("not found")]
    NotFound,
    /// A path that cannot be made a URI again.
    #[error("bad path")]
    BadPath,
    /// A password is needed: no credentials, or wrong ones.
    #[error("unauthorized")]
    Unauthorized(Challenge),
    /// Wrong credentials from this address.
    #[error("wrong user name or password from {0}")]
    WrongPassword(IpAddr, Challenge),
    /// A browser page without a session: to the login page (the target).
    #[error("login needed")]
    Login(String),
    /// Too many wrong passwords from this address: try again after this long.
    #[error("too many wrong passwords from {0}; braked for {1:?}")]
    Braked(IpAddr, Duration),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            Refusal::Misdirected(host) => (
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "421 Misdirected Request: this camera does not answer to the name {}.\n\
                     It answers to its own name (hostname, hostname.local), its IP \
                     addresses and localhost. If you reach it through a reverse proxy or \
                     another name of your own, add that name to server.allowed_hosts in \
                     streamer.toml.\n",
                    shown(host)
                ),
            ),
            Refusal::BadHost(host) => (
                StatusCode::BAD_REQUEST,
                format!(
                    "400 Bad Request: the Host header {} is not a host name.\n",
                    shown(host)
                ),
            ),
            Refusal::NoHost => (
                StatusCode::BAD_REQUEST,
                "400 Bad Request: an HTTP/1.1 request needs a Host header.\n".to_owned(),
            ),
            Refusal::ManyHosts => (
                StatusCode::BAD_REQUEST,
                "400 Bad Request: more than one Host header.\n".to_owned(),
            ),
            Refusal::CrossOrigin(origin) => (
                StatusCode::FORBIDDEN,
                format!(
                    "403 Forbidden: a page from {} may not open this camera's stream; only \
                     pages under a name the camera answers to may (its own names, and \
                     server.allowed_hosts in streamer.toml).\n",
                    shown(origin)
                ),
            ),
            Refusal::NotFound => (StatusCode::NOT_FOUND, "not found\n".to_owned()),
            Refusal::BadPath => (
                StatusCode::BAD_REQUEST,
                "400 Bad Request: the path cannot be read.\n".to_owned(),
            ),
            Refusal::Unauthorized(challenge) | Refusal::WrongPassword(_, challenge) => {
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    "401 Unauthorized: this camera needs its user name and password \
                     (log in at /login, or send them with Basic authentication).\n",
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, challenge.header());
                return response;
            }
            Refusal::Login(target) => {
                let mut response = (StatusCode::SEE_OTHER, "log in first\n").into_response();
                if let Ok(location) = HeaderValue::from_str(target) {
                    response.headers_mut().insert(header::LOCATION, location);
                }
                return response;
            }
            Refusal::Braked(_, retry_after) => {
                let seconds = retry_after.as_secs().max(1);
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "429 Too Many Requests: too many wrong passwords from your address; \
                         try again in {seconds} s.\n"
                    ),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                return response;
            }
        };
        (status, message).into_response()
    }
}

/// A value from a request, quoted for a message: control and non-ASCII characters
/// escaped, cut to [`SHOWN_CHARS`].
fn shown(value: &str) -> String {
    let mut quoted: String = value
        .chars()
        .take(SHOWN_CHARS)
        .collect::<String>()
        .escape_default()
        .collect();
    if value.chars().nth(SHOWN_CHARS).is_some() {
        quoted.push_str("...");
    }
    format!("\"{quoted}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(allowed_hosts: &[&str], frame_ancestors: &[&str]) -> ServerConfig {
        ServerConfig {
            allowed_hosts: allowed_hosts.iter().map(|s| s.to_string()).collect(),
            frame_ancestors: frame_ancestors.iter().map(|s| s.to_string()).collect(),
            ..ServerConfig::default()
        }
    }

    fn camera_names() -> Names {
        Names {
            hostname: Some("garden-cam".into()),
            addresses: vec!["192.168.1.50".parse().unwrap(), "fd00::50".parse().unwrap()],
        }
    }

    fn answers(guard: &Guard, host: &str) -> bool {
        guard.answers_to(&parse_host(host).unwrap_or_else(|| panic!("{host} parses")))
    }

    #[test]
    fn host_names_are_read_with_and_without_ports() {
        assert_eq!(
            parse_host("Cam.Local."),
            Some(HostName::Name("cam.local".into()))
        );
        assert_eq!(parse_host("cam:8080"), Some(HostName::Name("cam".into())));
        assert_eq!(
            parse_host("10.0.0.1:80"),
            Some(HostName::Ip("10.0.0.1".parse().unwrap()))
        );
        assert_eq!(
            parse_host("[::1]:80"),
            Some(HostName::Ip("::1".parse().unwrap()))
        );
        assert_eq!(
            parse_host("[::ffff:10.0.0.1]"),
            Some(HostName::Ip("10.0.0.1".parse().unwrap()))
        );
        for bad in [
            "",
            ":80",
            "cam:80:80",
            "cam:123456",
            "[::1",
            "[cam]",
            "a b",
            "user@cam",
            "cam/x",
            "::1",
        ] {
            assert_eq!(parse_host(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_device_answers_to_its_own_names_only() {
        let guard = Guard::with_names(&server(&[], &[]), &AccessConfig::default(), camera_names);
        for good in [
            "localhost",
            "localhost:8080",
            "127.0.0.1",
            "127.0.0.1:8080",
            "[::1]:8080",
            "garden-cam",
            "Garden-Cam.local",
            "garden-cam.local.:80",
            "192.168.1.50",
            "[fd00::50]:80",
        ] {
            assert!(answers(&guard, good), "{good}");
        }
        for bad in [
            "evil.example",
            "garden-cam.evil.example",
            "192.168.1.51",
            "[fd00::51]",
            "streamer.local",
            "0.0.0.0",
        ] {
            assert!(!answers(&guard, bad), "{bad}");
        }
    }

    #[test]
    fn allowed_hosts_add_names_and_star_adds_all() {
        let guard = Guard::with_names(
            &server(&["Camera.Example.com", "203.0.113.7", "2001:db8::7"], &[]),
            &AccessConfig::default(),
            Names::default,
        );
        assert!(answers(&guard, "camera.example.com:443"));
        assert!(answers(&guard, "203.0.113.7"));
        assert!(answers(&guard, "[2001:db8::7]"));
        assert!(!answers(&guard, "other.example.com"));
        let open = Guard::with_names(
            &server(&["*"], &[]),
            &AccessConfig::default(),
            Names::default,
        );
        assert!(answers(&open, "anything.example"));
    }

    #[test]
    fn names_are_read_again_on_a_miss_at_most_once_per_interval() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static READS: AtomicUsize = AtomicUsize::new(0);
        fn counting() -> Names {
            READS.fetch_add(1, Ordering::SeqCst);
            camera_names()
        }
        let guard = Guard::with_names(&server(&[], &[]), &AccessConfig::default(), counting);
        assert!(answers(&guard, "192.168.1.50"));
        assert_eq!(READS.load(Ordering::SeqCst), 1);
        assert!(answers(&guard, "garden-cam"), "known names need no reading");
        for _ in 0..100 {
            assert!(!answers(&guard, "192.168.1.99"));
        }
        assert_eq!(
            READS.load(Ordering::SeqCst),
            1,
            "misses within the interval read nothing"
        );
    }

    #[test]
    fn the_system_names_include_loopback() {
        let names = read_system_names();
        assert!(
            names.addresses.contains(&"127.0.0.1".parse().unwrap()),
            "{names:?}"
        );
    }

    #[test]
    fn frame_ancestors_map_to_csp_and_x_frame_options() {
        let none = Guard::with_names(&server(&[], &[]), &AccessConfig::default(), Names::default);
        assert!(none
            .content_security_policy
            .to_str()
            .unwrap()
            .ends_with("frame-ancestors 'none'"));
        assert_eq!(none.frame_options.as_ref().unwrap(), "DENY");
        let own = Guard::with_names(
            &server(&[], &["self"]),
            &AccessConfig::default(),
            Names::default,
        );
        assert!(own
            .content_security_policy
            .to_str()
            .unwrap()
            .ends_with("frame-ancestors 'self'"));
        assert_eq!(own.frame_options.as_ref().unwrap(), "SAMEORIGIN");
        let dashboard = Guard::with_names(
            &server(&[], &["self", "http://ha.local:8123"]),
            &AccessConfig::default(),
            Names::default,
        );
        assert!(dashboard
            .content_security_policy
            .to_str()
            .unwrap()
            .ends_with("frame-ancestors 'self' http://ha.local:8123"));
        assert!(
            dashboard.frame_options.is_none(),
            "X-Frame-Options cannot list origins"
        );
    }

    #[test]
    fn dot_segments_are_found_encoded_or_not() {
        for dotted in [
            "/.git/config",
            "/vendor/.installed",
            "/%2egit",
            "/vendor/%2Einstalled",
            "/a%2f.b",
            "/..",
            "/js/../x",
        ] {
            assert!(has_dot_segment(dotted), "{dotted}");
        }
        for plain in [
            "/",
            "/js/main.js",
            "/style.css",
            "/a.b/c",
            "/%",
            "/%2",
            "/%zz",
        ] {
            assert!(!has_dot_segment(plain), "{plain}");
        }
    }

    #[test]
    fn repeated_slashes_are_collapsed_keeping_the_query() {
        let uri: Uri = "//js//main.js?a=b//c".parse().unwrap();
        assert_eq!(collapse_slashes(&uri).unwrap(), "/js/main.js?a=b//c");
    }

    #[test]
    fn text_gets_a_charset() {
        let with = |v: &'static str| add_charset(&HeaderValue::from_static(v));
        assert_eq!(with("text/html").unwrap(), "text/html; charset=utf-8");
        assert_eq!(
            with("text/javascript").unwrap(),
            "text/javascript; charset=utf-8"
        );
        assert!(with("text/plain; charset=utf-8").is_none());
        assert!(with("application/json").is_none());
        assert!(with("image/png").is_none());
    }

    proptest::proptest! {
        /// Whatever a client sends, reading it does not panic, and no dotfile or
        /// `//` path gets through, however the dot is spelled.
        #[test]
        fn any_input_is_read_without_panic(
            text in "\\PC{0,40}",
            segments in proptest::collection::vec(("(|\\.|%2e|%2E)", "[a-z%]{0,4}", "(/|//)"), 1..6),
        ) {
            let _ = parse_host(&text);
            let _ = shown(&text);
            let _ = percent_decode(text.as_bytes());
            let mut path = String::new();
            let mut dotted = false;
            for (dot, rest, slash) in &segments {
                path.push_str(slash);
                path.push_str(dot);
                path.push_str(rest);
                dotted |= !dot.is_empty();
            }
            proptest::prop_assert_eq!(has_dot_segment(&path), dotted, "{}", path);
            if let Ok(uri) = path.parse::<Uri>() {
                if let Some(clean) = collapse_slashes(&uri) {
                    proptest::prop_assert!(!clean.path().contains("//"), "{}", clean);
                }
            }
        }
    }

    #[test]
    fn shown_values_are_escaped_and_short() {
        assert_eq!(shown("evil\r\n<b>"), "\"evil\\r\\n<b>\"");
        let long = shown(&"x".repeat(10_000));
        assert!(long.len() < SHOWN_CHARS + 10, "{long}");
    }
}
