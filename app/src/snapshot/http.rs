//! `GET /snapshot.jpg` (and `HEAD`): the current picture for Home Assistant's still
//! image URL, scripts and the player's snapshot button.
//!
//! - 200 `image/jpeg`, `Cache-Control: no-store`, `Last-Modified` (the frame's
//!   capture time, to the second), `X-Frame-Captured-Us` (the same in µs since the
//!   Unix epoch) and `X-Frame-Seq` (the frame's number in the stream);
//! - 503 with `Retry-After` and the reason in plain text when there is no video;
//! - 500 with the reason when the picture cannot be decoded or encoded.

use std::time::{Duration, UNIX_EPOCH};

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::service::{SnapshotError, Snapshots};

/// Seconds a client is told to wait after a 503.
pub const RETRY_AFTER_S: u32 = 2;

/// The frame's capture time in µs since the Unix epoch.
pub const CAPTURED_US: HeaderName = HeaderName::from_static("x-frame-captured-us");
/// The frame's sequence number in the stream.
pub const FRAME_SEQ: HeaderName = HeaderName::from_static("x-frame-seq");

/// `GET /snapshot.jpg`; axum answers `HEAD` with the same headers.
pub async fn get(Extension(snapshots): Extension<Snapshots>) -> Response {
    match snapshots.take().await {
        Ok(jpeg) => {
            let captured = UNIX_EPOCH + Duration::from_micros(jpeg.captured_us);
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                    (
                        header::LAST_MODIFIED,
                        number(httpdate::fmt_http_date(captured)),
                    ),
                    (CAPTURED_US, number(jpeg.captured_us)),
                    (FRAME_SEQ, number(jpeg.seq)),
                ],
                jpeg.bytes.clone(),
            )
                .into_response()
        }
        Err(error) => {
            let status = match error {
                SnapshotError::NoVideo(_) => StatusCode::SERVICE_UNAVAILABLE,
                SnapshotError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let mut response = (
                status,
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; charset=utf-8"),
                    ),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
                format!("{error}\n"),
            )
                .into_response();
            if status == StatusCode::SERVICE_UNAVAILABLE {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, number(RETRY_AFTER_S));
            }
            response
        }
    }
}

/// A header value of digits or an HTTP date: always valid.
fn number(value: impl ToString) -> HeaderValue {
    HeaderValue::from_str(&value.to_string()).unwrap_or(HeaderValue::from_static("0"))
}
