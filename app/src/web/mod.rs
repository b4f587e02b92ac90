//! HTTP and WebSocket server (axum).
//!
//! - [`guard`]: in front of everything, before routing: which names and paths are
//!   answered, and the headers of every response.
//! - `GET /ws`: [`crate::websocket::session`], one task pair per viewer, fed by the hub.
//! - `POST /whep`, `/whep/<id>`: [`crate::webrtc::whep`], WebRTC viewers.
//! - `GET /snapshot.jpg`: [`crate::snapshot::http`], the current picture as a JPEG.
//! - [`api`]: `GET /api/status` and `GET /healthz`.
//! - `GET`/`POST /api/update`: [`crate::update::http`], updates through RAUC.
//! - [`login`]: the browser's login page, `POST /login` and `POST /logout`.
//! - [`metrics`]: `GET /metrics`, Prometheus text format.
//! - [`static_files`]: the player from `server.web_root`.
//! - [`connections`]: the accept loop, with the limits on connections and the
//!   timers that close what clients leave hanging.
//! - [`tls`]: optional HTTPS: the certificate's checks, and the redirect of plain
//!   HTTP to it.

pub mod api;
pub mod connections;
pub mod guard;
pub mod login;
pub mod metrics;
pub mod static_files;
pub mod tls;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::routing::{any, get, post};
use axum::{Extension, Router};
use tokio::net::TcpStream;

use crate::config::ConfigReport;
use crate::hub::Hub;
use connections::Connections;

/// Shared by every request handler.
#[derive(Clone)]
pub struct AppState {
    /// The fan-out hub.
    pub hub: Hub,
    /// How the configuration was read.
    pub config: Arc<ConfigReport>,
    /// The hardware found at start-up.
    pub hardware: Arc<crate::probe::ProbeReport>,
    /// The request policy ([`guard`]).
    pub guard: Arc<guard::Guard>,
    /// Who may watch (`[access]`): checked by [`guard`] for every request, and by
    /// the login page.
    pub access: Arc<crate::access::Access>,
    /// The WebRTC output, or why there is none.
    pub whep: crate::webrtc::whep::Whep,
    /// The RTSP server, or why there is none.
    pub rtsp: crate::rtsp::RtspService,
    /// HTTPS: served or not, and why.
    pub tls: tls::TlsStatus,
    /// Updates through RAUC (`/api/update`).
    pub updates: crate::update::Updates,
}

impl FromRef<AppState> for crate::update::Updates {
    fn from_ref(state: &AppState) -> crate::update::Updates {
        state.updates.clone()
    }
}

impl FromRef<AppState> for Arc<crate::access::Access> {
    fn from_ref(state: &AppState) -> Arc<crate::access::Access> {
        state.access.clone()
    }
}

impl FromRef<AppState> for crate::webrtc::whep::Whep {
    fn from_ref(state: &AppState) -> crate::webrtc::whep::Whep {
        state.whep.clone()
    }
}

/// The protocols' handlers take only the parts of the state they need.
impl FromRef<AppState> for Hub {
    fn from_ref(state: &AppState) -> Hub {
        state.hub.clone()
    }
}

impl FromRef<AppState> for Arc<ConfigReport> {
    fn from_ref(state: &AppState) -> Arc<ConfigReport> {
        state.config.clone()
    }
}

/// The whole HTTP surface, every request through the [`guard`] first.
pub fn router(state: AppState, web_root: PathBuf) -> Router {
    let guard = (
        state.guard.clone(),
        state.access.clone(),
        state.tls.redirect_port(),
    );
    // One snapshot service per server: one decoder, one cached JPEG.
    let snapshots = crate::snapshot::Snapshots::new(
        state.hub.clone(),
        crate::snapshot::SnapshotSettings::default(),
    );
    let routes = Router::new()
        .route("/ws", get(crate::websocket::session::upgrade))
        .route(
            "/whep",
            post(crate::webrtc::whep::post).options(crate::webrtc::whep::endpoint_options),
        )
        .route("/whep/{id}", any(crate::webrtc::whep::resource))
        .route("/api/status", get(api::status))
        .route(
            crate::update::http::PATH,
            get(crate::update::http::get).post(crate::update::http::post),
        )
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/snapshot.jpg", get(crate::snapshot::http::get))
        .layer(Extension(snapshots))
        .merge(login::routes(web_root.clone()))
        .with_state(state)
        .fallback_service(static_files::service(web_root));
    // Wrapped around the router, not layered on its routes, so that the guard runs
    // before routing (its path clean-up decides which route is taken).
    let guarded = tower_layer::Layer::layer(
        &axum::middleware::from_fn_with_state(guard, guard::check),
        routes,
    );
    Router::new().fallback_service(guarded)
}

/// The kernel's send buffer per connection. Small enough that a viewer on a slow
/// link falls behind in the hub's queue, where it is skipped to the next keyframe,
/// instead of in the kernel, where its delay would silently grow by seconds; large
/// enough for a 25 Mbit/s stream over a 50 ms round trip. (Linux doubles it for its
/// bookkeeping.)
pub const SEND_BUFFER_BYTES: usize = 192 * 1024;

/// Per-connection socket options: no Nagle delay (every frame goes out at once), a
/// bounded send buffer, and a bound on how long sent data may go unacknowledged
/// ([`connections::TCP_USER_TIMEOUT`]).
fn tune_connection(stream: &TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    let socket = socket2::SockRef::from(stream);
    if let Err(error) = socket.set_send_buffer_size(SEND_BUFFER_BYTES) {
        tracing::debug!(%error, "cannot set SO_SNDBUF");
    }
    if let Err(error) = socket.set_tcp_user_timeout(Some(connections::TCP_USER_TIMEOUT)) {
        tracing::debug!(%error, "cannot set TCP_USER_TIMEOUT");
    }
}

/// Serves `router` on `listeners` (plain HTTP, and HTTPS when one has TLS),
/// within `connections`' limits, until `shutdown` completes; then stops
/// accepting on all of them, closes every viewer (WebSocket close 1001) and
/// waits up to `drain` for the viewers and the connections to go.
pub async fn serve(
    listeners: Vec<connections::Listener>,
    state: AppState,
    web_root: PathBuf,
    connections: Connections,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    let hub = state.hub.clone();
    // `/metrics` counts the connections.
    let app = router(state, web_root).layer(Extension(connections.clone()));
    connections::accept_loop(
        listeners,
        app,
        connections.clone(),
        tune_connection,
        shutdown,
    )
    .await;
    hub.close();
    let deadline = tokio::time::Instant::now() + drain;
    while (hub.viewer_count() > 0 || connections.stats().open > 0)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
