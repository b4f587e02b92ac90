//! The browser's login: `GET /login` (the page), `POST /login` (the password, for
//! a session cookie) and `POST /logout`. The policy is [`crate::access`]'s; which
//! requests need a login at all is [`super::guard`]'s, which lets these paths (and
//! the page's `/style.css` and `/js/login.js`) through without one.
//!
//! Two kinds of callers get two kinds of answers: the page's script asks for JSON
//! (`Accept: application/json`) and shows the outcome itself; a plain form post (no
//! JavaScript) is answered with `303 See Other`, to the page it came for or back to
//! the login page with the error in its query, which the server writes into the
//! page (`?error=wrong`, `?error=wait&retry=N`). The form flow needs the 303 even
//! when the brake refuses: the 429 and its `Retry-After` are the JSON answer's.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, RawQuery, State};
use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::AppState;
use crate::access::{credentials, session, Access, Attempt, REALM};
use crate::listen::RateLimitedLog;

/// The largest login form body read: the form's three fields, with room to spare.
pub const MAX_FORM_BYTES: usize = 4096;

/// The longest `next` kept; a longer one is replaced by `/`.
pub const MAX_NEXT_BYTES: usize = 2048;

/// The login page's file in the web root.
pub const PAGE_FILE: &str = "login.html";

/// What the JSON answer says to a wrong user name or password.
pub const WRONG_MESSAGE: &str = "Wrong user name or password.";

/// Failed logins are logged at most once per [`crate::listen::LOG_INTERVAL`] (a guesser
/// can make them as often as it likes).
static FAILED_LOGINS: Mutex<RateLimitedLog> = Mutex::new(RateLimitedLog::new());

/// The login routes, for [`super::router`]; the page is read from `web_root` at
/// each request, so an updated page shows at once.
pub fn routes(web_root: PathBuf) -> Router<AppState> {
    let page = web_root.join(PAGE_FILE);
    Router::new()
        .route(
            "/login",
            get(move |state, query, headers| page_get(state, query, headers, page.clone()))
                .post(login_post)
                .layer(DefaultBodyLimit::max(MAX_FORM_BYTES)),
        )
        .route(
            "/logout",
            post(logout_post).layer(DefaultBodyLimit::max(MAX_FORM_BYTES)),
        )
}

/// Whether this request came over HTTPS (the accept loop's mark), so that the
/// cookie is `Secure`.
fn over_https(extensions: &Extensions) -> bool {
    matches!(
        extensions.get::<super::connections::Scheme>(),
        Some(super::connections::Scheme::Https)
    )
}

/// The login form's fields.
#[derive(Default, PartialEq, Eq)]
pub struct LoginForm {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
    /// Where to go after logging in, as sent (see [`sanitize_next`]).
    pub next: String,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("user", &self.user)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// Reads an `application/x-www-form-urlencoded` body; the first of a repeated
/// field counts, unknown fields are ignored, missing ones are empty.
pub fn parse_form(body: &[u8]) -> LoginForm {
    let mut form = LoginForm::default();
    let (mut user, mut password, mut next) = (false, false, false);
    for (name, value) in form_urlencoded::parse(body) {
        let (seen, field) = match name.as_ref() {
            "user" => (&mut user, &mut form.user),
            "password" => (&mut password, &mut form.password),
            "next" => (&mut next, &mut form.next),
            _ => continue,
        };
        if !*seen {
            *seen = true;
            *field = value.into_owned();
        }
    }
    form
}

/// Where a login may send the browser: a path on this server, else `/`. It must
/// start with one `/` (not `//` or `/\`, which browsers read as another host), hold
/// no control characters (browsers drop tabs and newlines, which would make `/\t/x`
/// into `//x`) and not be the login or logout itself. Spaces and non-ASCII are
/// percent-encoded, so the result is a valid `Location`.
pub fn sanitize_next(next: &str) -> String {
    let path_end = next.find(['?', '#']).unwrap_or(next.len());
    let path = &next[..path_end];
    let fine = next.len() <= MAX_NEXT_BYTES
        && next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && !matches!(path, "/login" | "/logout");
    if !fine {
        return "/".to_owned();
    }
    let mut out = String::with_capacity(next.len());
    for byte in next.bytes() {
        if byte.is_ascii_graphic() {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The `Set-Cookie` value of a new session.
pub fn session_cookie(value: &str, secure: bool) -> String {
    format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        session::COOKIE,
        session::LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clearing_cookie(secure: bool) -> String {
    format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        session::COOKIE,
        if secure { "; Secure" } else { "" }
    )
}

/// The challenge of a wrong password's JSON answer: a scheme browsers show no
/// dialog for, naming the form to use instead.
pub fn cookie_challenge() -> String {
    format!(
        "Cookie realm=\"{REALM}\", form-action=\"/login\", cookie-name=\"{}\"",
        session::COOKIE
    )
}

/// Why the login page is shown again, from its query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageError {
    /// A wrong user name or password.
    Wrong,
    /// Braked: try again in this many seconds.
    Wait(u64),
}

impl PageError {
    /// What the page says.
    pub fn message(self) -> String {
        match self {
            PageError::Wrong => WRONG_MESSAGE.to_owned(),
            PageError::Wait(seconds) => wait_message(seconds),
        }
    }
}

/// What to say when the brake refuses.
fn wait_message(seconds: u64) -> String {
    format!("Too many wrong passwords: try again in {seconds} s.")
}

/// The login page's query: its error and `next`.
pub fn parse_page_query(query: &str) -> (Option<PageError>, String) {
    let (mut error, mut retry, mut next) = (None, None, None);
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "error" if error.is_none() => error = Some(value.into_owned()),
            "retry" if retry.is_none() => retry = value.parse::<u64>().ok(),
            "next" if next.is_none() => next = Some(value.into_owned()),
            _ => {}
        }
    }
    let error = match error.as_deref() {
        Some("wrong") => Some(PageError::Wrong),
        Some("wait") => Some(PageError::Wait(retry.unwrap_or(1).clamp(1, 24 * 3600))),
        _ => None,
    };
    (error, sanitize_next(next.as_deref().unwrap_or("/")))
}

/// The login page's address with an error and `next`, relative to `/login` (so
/// that it works under a reverse proxy's path prefix too).
pub fn page_location(error: PageError, next: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    match error {
        PageError::Wrong => {
            query.append_pair("error", "wrong");
        }
        PageError::Wait(seconds) => {
            query.append_pair("error", "wait");
            query.append_pair("retry", &seconds.to_string());
        }
    }
    query.append_pair("next", next);
    format!("login?{}", query.finish())
}

/// The page with the server's part filled in: `{{error}}` (the message, or
/// nothing) and `{{next}}`, both HTML-escaped, so that it works without
/// JavaScript too.
pub fn fill_page(template: &str, error: Option<PageError>, next: &str) -> String {
    let message = error.map(PageError::message).unwrap_or_default();
    template
        .replace("{{error}}", &html_escape(&message))
        .replace("{{next}}", &html_escape(next))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Whether the caller wants JSON (the login page's script).
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.to_ascii_lowercase().contains("application/json"))
}

/// The session cookie a request carries, if any.
fn session_of(headers: &HeaderMap) -> Option<&str> {
    credentials::cookie(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok()),
        session::COOKIE,
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// A response that no cache keeps.
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `303 See Other` to `location` (already a valid header value: sanitized or
/// built here).
fn see_other(location: &str) -> Response {
    let location = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
    no_store((StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response())
}

/// Adds a `Set-Cookie`.
fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `GET /login`: the page, with the error and `next` of its query written in.
/// Nothing to log in to (no password), or already logged in: on to `next`.
async fn page_get(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    page: PathBuf,
) -> Response {
    let (error, next) = parse_page_query(query.as_deref().unwrap_or(""));
    let logged_in = session_of(&headers).is_some_and(|v| state.access.session_valid(v, unix_now()));
    if !state.access.locked() || logged_in {
        return see_other(&next);
    }
    let response = match tokio::fs::read_to_string(&page).await {
        Ok(template) => axum::response::Html(fill_page(&template, error, &next)).into_response(),
        Err(error) => missing_page(&page, &error),
    };
    no_store(response)
}

/// The answer when the login page's file cannot be read: says so, with a bare
/// form that still logs in.
fn missing_page(page: &Path, error: &std::io::Error) -> Response {
    tracing::warn!(page = %page.display(), %error, "cannot read the login page");
    let shown = html_escape(&page.display().to_string());
    (
        StatusCode::NOT_FOUND,
        axum::response::Html(format!(
            "<!doctype html><meta charset=utf-8><title>Log in</title>\
             <h1>The login page is missing</h1>\
             <p>The streamer cannot read <code>{shown}</code>; this bare form still logs in.</p>\
             <form method=post action=login>\
             <p><label>User name <input name=user autocomplete=username required></label></p>\
             <p><label>Password <input name=password type=password \
             autocomplete=current-password required></label></p>\
             <p><button>Log in</button></p></form>"
        )),
    )
        .into_response()
}

/// The outcome of a login, before it is said as JSON or as a redirect.
enum Outcome {
    /// Logged in: the cookie to set (none when there is no password).
    Granted(Option<String>),
    Denied,
    Braked(u64),
}

/// `POST /login`.
async fn login_post(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Bytes,
) -> Response {
    let json = wants_json(&headers);
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !is_form {
        return no_store(
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "POST /login takes an application/x-www-form-urlencoded form: user, password, next\n",
            )
                .into_response(),
        );
    }
    let form = parse_form(&body);
    let next = sanitize_next(&form.next);
    let client = remote.ip().to_canonical();
    let outcome = attempt(&state.access, client, form, Instant::now()).await;
    let secure = over_https(&extensions);
    match outcome {
        Outcome::Granted(cookie) => {
            if cookie.is_some() {
                tracing::info!(%client, "logged in");
            }
            let response = if json {
                Json(serde_json::json!({ "next": next })).into_response()
            } else {
                see_other(&next)
            };
            let response = no_store(response);
            match cookie {
                Some(value) => with_cookie(response, &session_cookie(&value, secure)),
                None => response,
            }
        }
        Outcome::Denied => {
            log_failure(client, None);
            if json {
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    Json(serde_json::json!({ "error": WRONG_MESSAGE })),
                )
                    .into_response();
                if let Ok(value) = HeaderValue::from_str(&cookie_challenge()) {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, value);
                }
                no_store(response)
            } else {
                see_other(&page_location(PageError::Wrong, &next))
            }
        }
        Outcome::Braked(seconds) => {
            log_failure(client, Some(seconds));
            if json {
                no_store(
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [(header::RETRY_AFTER, seconds.to_string())],
                        Json(serde_json::json!({
                            "error": wait_message(seconds),
                            "retry_after": seconds,
                        })),
                    )
                        .into_response(),
                )
            } else {
                see_other(&page_location(PageError::Wait(seconds), &next))
            }
        }
    }
}

/// Checks the password (a slow hash off the async runtime) and issues the
/// cookie.
async fn attempt(
    access: &std::sync::Arc<Access>,
    client: IpAddr,
    form: LoginForm,
    now: Instant,
) -> Outcome {
    if !access.locked() {
        return Outcome::Granted(None);
    }
    let result = if access.is_quick(&form.password) {
        access.attempt(client, &form.user, &form.password, now)
    } else {
        let access = access.clone();
        let checked = tokio::task::spawn_blocking(move || {
            access.attempt(client, &form.user, &form.password, now)
        })
        .await;
        checked.unwrap_or(Attempt::Denied)
    };
    match result {
        Attempt::Granted => {
            let mut random = [0u8; 16];
            if let Err(error) = getrandom::fill(&mut random) {
                tracing::error!(%error, "no randomness for a session cookie");
                return Outcome::Denied;
            }
            Outcome::Granted(Some(access.issue_session(unix_now(), random)))
        }
        Attempt::Denied => Outcome::Denied,
        Attempt::Braked(after) => Outcome::Braked(whole_seconds(after)),
    }
}

/// A `Retry-After` in whole seconds, rounded up, at least 1.
fn whole_seconds(duration: Duration) -> u64 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    seconds.max(1)
}

/// A failed login in the log (never the password), at most once per interval.
fn log_failure(client: IpAddr, braked_for: Option<u64>) {
    let due = FAILED_LOGINS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .due();
    if let Some(held_back) = due {
        match braked_for {
            Some(seconds) => tracing::info!(
                %client,
                retry_after_s = seconds,
                held_back,
                "login refused: too many wrong passwords from this address"
            ),
            None => tracing::info!(%client, held_back, "login failed: wrong user name or password"),
        }
    }
}

/// `POST /logout`: the session ends (its cookie is refused from now on, even if
/// a copy of it is kept), the cookie is removed, and the browser goes to the
/// login page.
async fn logout_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    if let Some(value) = session_of(&headers) {
        state.access.end_session(value, unix_now());
    }
    let response = if wants_json(&headers) {
        no_store(Json(serde_json::json!({ "logged_out": true })).into_response())
    } else {
        see_other("login")
    };
    with_cookie(response, &clearing_cookie(over_https(&extensions)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(sanitize_next("/"), "/");
        assert_eq!(sanitize_next("/?player=mse"), "/?player=mse");
        assert_eq!(sanitize_next("/cam/index.html#x"), "/cam/index.html#x");
        assert_eq!(sanitize_next("/a%20b?q=%2F%2F"), "/a%20b?q=%2F%2F");
        for bad in [
            "",
            "//evil.example/",
            "/\\evil.example/",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/x\u{7f}",
            "http://evil.example/",
            "https:evil.example",
            "javascript:alert(1)",
            "evil.example",
            "/login",
            "/login?next=/x",
            "/logout",
        ] {
            assert_eq!(sanitize_next(bad), "/", "{bad:?}");
        }
        assert_eq!(
            sanitize_next(&format!("/{}", "a".repeat(MAX_NEXT_BYTES))),
            "/"
        );
    }

    #[test]
    fn next_is_a_valid_location_with_spaces_and_non_ascii_percent_encoded() {
        let next = sanitize_next("/a b/é?\"<x>");
        assert_eq!(next, "/a%20b/%C3%A9?\"<x>");
        assert!(HeaderValue::from_str(&next).is_ok());
    }

    #[test]
    fn the_form_is_read_first_field_first_and_the_password_never_shown() {
        let form = parse_form(
            b"user=streamer&password=p%C3%A4ss+w%26rd&next=%2F%3Fplayer%3Dmse&password=second&x=1",
        );
        assert_eq!(form.user, "streamer");
        assert_eq!(form.password, "päss w&rd");
        assert_eq!(form.next, "/?player=mse");
        assert!(!format!("{form:?}").contains("ss w"));
        assert_eq!(parse_form(b""), LoginForm::default());
        assert_eq!(parse_form(b"\xff\xfe=%zz&user").user, "");
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_under_https() {
        let plain = session_cookie("abc", false);
        assert_eq!(
            plain,
            format!(
                "streamer_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
                session::LIFETIME.as_secs()
            )
        );
        assert!(session_cookie("abc", true).ends_with("; Secure"));
        assert_eq!(
            clearing_cookie(false),
            "streamer_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        );
        assert!(clearing_cookie(true).ends_with("; Max-Age=0; Secure"));
    }

    #[test]
    fn the_page_query_round_trips_through_the_redirects() {
        let location = page_location(PageError::Wait(7), "/?player=mse&x=1");
        assert_eq!(
            location,
            "login?error=wait&retry=7&next=%2F%3Fplayer%3Dmse%26x%3D1"
        );
        let query = location.strip_prefix("login?").unwrap();
        assert_eq!(
            parse_page_query(query),
            (Some(PageError::Wait(7)), "/?player=mse&x=1".to_owned())
        );
        assert_eq!(
            parse_page_query("error=wrong&next=//evil.example"),
            (Some(PageError::Wrong), "/".to_owned())
        );
        assert_eq!(parse_page_query(""), (None, "/".to_owned()));
        assert_eq!(
            parse_page_query("error=wait&retry=nonsense").0,
            Some(PageError::Wait(1))
        );
        assert_eq!(parse_page_query("error=<b>").0, None);
    }

    #[test]
    fn the_page_is_filled_in_escaped() {
        let page = fill_page(
            "<p role=alert>{{error}}</p><input name=next value=\"{{next}}\">",
            Some(PageError::Wrong),
            "/?a=\"><script>",
        );
        assert_eq!(
            page,
            "<p role=alert>Wrong user name or password.</p>\
             <input name=next value=\"/?a=&quot;&gt;&lt;script&gt;\">"
        );
        assert_eq!(fill_page("<p>{{error}}</p>", None, "/"), "<p></p>");
        assert!(fill_page("{{error}}", Some(PageError::Wait(12)), "/").contains("12 s"));
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(2001)), 3);
        assert_eq!(whole_seconds(Duration::from_secs(4)), 4);
    }
}
