//! `GET /api/update` (the update page's state) and `POST /api/update` (the
//! bundle as the request body). The guard (`web::guard`) has already let the
//! request in: with a password, only its owner; from a page elsewhere, never.
//!
//! `POST` is refused with 403 when no password is set (unless `[update]
//! allow_without_password`), 409 while another update is received or installed
//! (here or by `rauc install` over SSH), 503 where RAUC is not, and 413 when the
//! bundle does not fit in the spool directory (or is over
//! [`super::install::MAX_BUNDLE_BYTES`]). Otherwise the body goes to a file in
//! the spool directory (written through tokio's file I/O, off the runtime's
//! threads), RAUC gets it, and the answer is 202: the page then follows RAUC's
//! progress with `GET`. The file is removed when the install ends or fails.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::install::{check_size, completion_message, size_limit, Phase};
use super::rauc::RaucError;
use super::Updates;
use crate::access::{Access, PasswordState};

/// The path of both endpoints.
pub const PATH: &str = "/api/update";

/// A bundle upload that sends nothing for this long is given up.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// An answer's body: `{"error": "..."}`.
#[derive(Debug, Serialize)]
struct ErrorBody {
    error: String,
}

/// The answer to a refused or failed request: its status and a message.
fn refuse(status: StatusCode, error: impl std::fmt::Display) -> Response {
    (
        status,
        Json(ErrorBody {
            error: error.to_string(),
        }),
    )
        .into_response()
}

/// `GET /api/update`.
pub async fn get(State(updates): State<Updates>, State(access): State<Arc<Access>>) -> Response {
    let password_set = access.password_state() != PasswordState::None;
    Json(updates.report(password_set).await).into_response()
}

/// Holds the one place for an update while a request has it: dropped (the
/// request refused, failed, or its client gone), it removes the spool file and
/// gives the place back, unless the install was handed on.
struct Ticket {
    updates: Updates,
    file: Option<PathBuf>,
    armed: bool,
}

impl Ticket {
    /// Ends the attempt with a message on the page.
    fn fail(&mut self, message: &str) {
        self.updates.installer().finish(false, message.to_owned());
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            // One unlink in memory (tmpfs): not worth a thread.
            let _ = std::fs::remove_file(file);
        }
        if self.armed {
            let mut installer = self.updates.installer();
            if matches!(installer.phase(), Phase::Receiving { .. }) {
                installer.finish(false, "the upload did not complete".into());
            } else {
                installer.abandon();
            }
        }
    }
}

/// `POST /api/update`.
pub async fn post(
    State(updates): State<Updates>,
    State(access): State<Arc<Access>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if access.password_state() == PasswordState::None && !updates.allow_without_password() {
        return refuse(
            StatusCode::FORBIDDEN,
            "updates need a password: set access.password in streamer.toml first (or \
             [update] allow_without_password = true to let anyone on the network install \
             software on this device)",
        );
    }
    let expected = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Err(busy) = updates.installer().begin(expected) {
        return refuse(StatusCode::CONFLICT, busy);
    }
    let mut ticket = Ticket {
        updates: updates.clone(),
        file: None,
        armed: true,
    };
    // Refusals before anything arrived leave the last result as it was.
    match updates.rauc_status().await {
        Err(error) => {
            updates.installer().abandon();
            return refuse(StatusCode::SERVICE_UNAVAILABLE, error);
        }
        Ok(status) if status.operation != "idle" => {
            updates.installer().abandon();
            return refuse(
                StatusCode::CONFLICT,
                format!(
                    "RAUC is busy ({}): another update is being installed; wait for it to finish",
                    status.operation
                ),
            );
        }
        Ok(_) => {}
    }
    let paths = updates.paths().clone();
    let limit = match free_space(paths.spool.clone()).await {
        Ok(free) => size_limit(free),
        Err(error) => {
            updates.installer().abandon();
            tracing::warn!(spool = %paths.spool.display(), %error, "updates: no spool directory");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "cannot keep the bundle in {}: {error}",
                    paths.spool.display()
                ),
            );
        }
    };
    if let Some(size) = expected {
        if let Err(too_large) = check_size(size, false, limit) {
            updates.installer().abandon();
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, too_large);
        }
    }
    let file = paths.spool_file();
    ticket.file = Some(file.clone());
    if let Err((status, message)) = receive(&updates, body, &file, limit).await {
        ticket.fail(&message);
        tracing::info!(%message, "updates: upload refused");
        return refuse(status, message);
    }
    tracing::info!(bundle = %file.display(), "updates: bundle received; RAUC installs it");
    let completion = match updates.inner.rauc.install(file.clone()).await {
        Ok(completion) => completion,
        Err(error) => {
            let status = match error {
                RaucError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                RaucError::Refused(_) => StatusCode::BAD_GATEWAY,
            };
            ticket.fail(&error.to_string());
            tracing::warn!(%error, "updates: RAUC did not take the bundle");
            return refuse(status, error);
        }
    };
    updates.installer().installing();
    // From here the task below owns the place and the file.
    ticket.armed = false;
    ticket.file = None;
    let task_updates = updates.clone();
    tokio::spawn(async move {
        let completion = completion.await;
        let (ok, message) = completion_message(completion.code, &completion.last_error);
        if ok {
            tracing::info!(%message, "updates: installed");
        } else {
            tracing::warn!(%message, "updates: install failed");
        }
        let _ = tokio::fs::remove_file(&file).await;
        task_updates.installer().finish(ok, message);
    });
    (
        StatusCode::ACCEPTED,
        Json(updates.installer().phase().clone()),
    )
        .into_response()
}

/// Writes the body to `file`, at most `limit` bytes, each piece within
/// [`BODY_IDLE_TIMEOUT`]; counts what arrived in the installer.
async fn receive(
    updates: &Updates,
    mut body: Body,
    file: &std::path::Path,
    limit: u64,
) -> Result<(), (StatusCode, String)> {
    let server_error = |error: std::io::Error| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot write the bundle to {}: {error}", file.display()),
        )
    };
    let mut out = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)
        .await
        .map_err(server_error)?;
    let mut written: u64 = 0;
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
        let frame = match tokio::time::timeout(BODY_IDLE_TIMEOUT, frame).await {
            Err(_) => {
                return Err((
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the upload stopped: nothing arrived for {} s",
                        BODY_IDLE_TIMEOUT.as_secs()
                    ),
                ))
            }
            Ok(None) => break,
            Ok(Some(Err(error))) => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!("the upload did not complete: {error}"),
                ))
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let size = written.saturating_add(data.len() as u64);
        check_size(size, true, limit)
            .map_err(|e| (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()))?;
        out.write_all(&data).await.map_err(server_error)?;
        written = size;
        updates.installer().received(data.len() as u64);
    }
    out.flush().await.map_err(server_error)?;
    if written == 0 {
        return Err((
            StatusCode::BAD_REQUEST,
            "no bundle: the request body is empty (send the .raucb file as the body)".into(),
        ));
    }
    Ok(())
}

/// Bytes an unprivileged process may still write under `directory` (made when
/// missing, mode 0700), read off the runtime's threads.
async fn free_space(directory: PathBuf) -> std::io::Result<u64> {
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::DirBuilderExt;
        if !directory.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&directory)?;
        }
        statvfs_available(&directory)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// `statvfs(2)`: `f_bavail * f_frsize`.
fn statvfs_available(path: &std::path::Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: statvfs writes only into the struct given; the path is a valid C
    // string for the call's duration.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stats) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // the fields' types differ between targets
    Ok((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_free_space_of_a_directory_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let free = statvfs_available(dir.path()).unwrap();
        assert!(free > 0);
        assert!(statvfs_available(&dir.path().join("missing")).is_err());
    }
}
