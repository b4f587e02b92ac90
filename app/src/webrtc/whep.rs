//! WHEP (RFC 9725), the HTTP side of a WebRTC viewer:
//!
//! - `POST /whep` with `Content-Type: application/sdp` (a recvonly offer):
//!   `201 Created`, `Location: whep/<id>` (relative: `/whep/<id>`, or under a
//!   reverse proxy's path prefix, the prefixed one) and the SDP answer. Refusals are plain
//!   text: 415 (not SDP), 400 (an offer without video to receive, or not SDP at
//!   all), 422 (no common codec: the reason names the stream's profile), 503 (the
//!   server full, WebRTC turned off or unavailable, or no video yet; with
//!   `Retry-After`), 429 (`server.max_viewers_per_address`).
//! - `DELETE /whep/<id>`: ends the session (200); 404 for an unknown one.
//! - `PATCH /whep/<id>`: 405, this server takes no trickled candidates (it is
//!   ICE-lite: it answers the browser's checks and needs none of its candidates).
//! - `OPTIONS`: the methods and `Accept-Post: application/sdp`; a CORS preflight
//!   from a page of one of the device's names (the guard refuses others) is
//!   allowed, and every response names that origin back.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::offer::OfferError;
use super::peer::AnswerError;
use super::{OpenError, WebRtc};
use crate::hub::SubscribeError;

/// The largest offer accepted (browsers' offers are a few KiB).
pub const MAX_OFFER_BYTES: usize = 16 * 1024;

/// Whether WHEP is served, and if not, why.
#[derive(Clone)]
pub enum Whep {
    /// Serving.
    On(WebRtc),
    /// Not serving, for this reason (in plain words).
    Off(String),
}

const RESOURCE_METHODS: &str = "OPTIONS, DELETE, PATCH";
const ENDPOINT_METHODS: &str = "OPTIONS, POST";

/// CORS and the `Vary` that goes with it, for a request that named its page's
/// origin (the guard has already refused any origin but the device's own).
fn cors(request: &HeaderMap, response: &mut Response, methods: &'static str) {
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = request.get(header::ORIGIN) else {
        return;
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, authorization, if-match"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, Accept-Post, Accept-Patch, Retry-After"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
}

fn text(status: StatusCode, reason: impl Into<String>) -> Response {
    let mut reason = reason.into();
    reason.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        reason,
    )
        .into_response()
}

fn unavailable(reason: impl Into<String>, retry_after_s: u32) -> Response {
    let mut response = text(StatusCode::SERVICE_UNAVAILABLE, reason);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
    response
}

/// `OPTIONS /whep`.
pub async fn endpoint_options(headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let out = response.headers_mut();
    out.insert(header::ALLOW, HeaderValue::from_static(ENDPOINT_METHODS));
    out.insert("accept-post", HeaderValue::from_static("application/sdp"));
    cors(&headers, &mut response, ENDPOINT_METHODS);
    response
}

/// `POST /whep`.
pub async fn post(
    State(whep): State<Whep>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut response = answer(&whep, remote, &headers, &body).await;
    cors(&headers, &mut response, ENDPOINT_METHODS);
    response
}

async fn answer(whep: &Whep, remote: SocketAddr, headers: &HeaderMap, body: &[u8]) -> Response {
    let webrtc = match whep {
        Whep::On(webrtc) => webrtc,
        Whep::Off(reason) => return unavailable(reason.clone(), 3600),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/sdp") {
        let mut response = text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("a WHEP offer is Content-Type: application/sdp, not {content_type:?}"),
        );
        response
            .headers_mut()
            .insert("accept-post", HeaderValue::from_static("application/sdp"));
        return response;
    }
    if body.len() > MAX_OFFER_BYTES {
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("an offer may be at most {MAX_OFFER_BYTES} bytes"),
        );
    }
    let Ok(offer) = std::str::from_utf8(body) else {
        return text(StatusCode::BAD_REQUEST, "not an SDP offer: not UTF-8 text");
    };
    match webrtc.open(offer, remote).await {
        Ok(opened) => {
            // Relative to the request's URL (RFC 9725, RFC 3986 5.2): under a
            // reverse proxy's path prefix it names the prefixed resource.
            let location = format!("whep/{}", opened.id);
            let mut response = (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, "application/sdp")],
                opened.answer,
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
        Err(error) => {
            tracing::info!(%remote, %error, "WHEP offer refused");
            refusal(error)
        }
    }
}

fn refusal(error: OpenError) -> Response {
    let reason = error.to_string();
    match error {
        OpenError::Answer(AnswerError::Offer(OfferError::NotSdp(_) | OfferError::NoVideo(_))) => {
            text(StatusCode::BAD_REQUEST, reason)
        }
        OpenError::Answer(AnswerError::Offer(OfferError::NoCommonCodec(_)))
        | OpenError::Answer(AnswerError::Stream(_)) => {
            text(StatusCode::UNPROCESSABLE_ENTITY, reason)
        }
        OpenError::Answer(AnswerError::Rtc(_)) => text(StatusCode::BAD_REQUEST, reason),
        OpenError::Answer(AnswerError::Candidate { .. }) | OpenError::NoAddress => {
            text(StatusCode::SERVICE_UNAVAILABLE, reason)
        }
        OpenError::Subscribe(SubscribeError::AddressFull(_)) => {
            text(StatusCode::TOO_MANY_REQUESTS, reason)
        }
        OpenError::Subscribe(SubscribeError::Full(_)) => unavailable(reason, 10),
        OpenError::Subscribe(SubscribeError::Closed) => unavailable(reason, 5),
        OpenError::NoVideo => unavailable(reason, 2),
    }
}

/// `DELETE`, `PATCH` and `OPTIONS` on `/whep/<id>`.
pub async fn resource(
    State(whep): State<Whep>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let mut response = match method {
        Method::DELETE => match &whep {
            Whep::On(webrtc) if webrtc.close(&id) => {
                text(StatusCode::OK, "session ended")
            }
            _ => text(StatusCode::NOT_FOUND, "no such WHEP session"),
        },
        Method::OPTIONS => StatusCode::NO_CONTENT.into_response(),
        _ => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "this server takes no trickled ICE candidates (it is ICE-lite); end the session with DELETE",
        ),
    };
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("OPTIONS, DELETE"));
    cors(&headers, &mut response, RESOURCE_METHODS);
    response
}
