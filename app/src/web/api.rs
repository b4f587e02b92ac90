//! `GET /api/status` and `GET /healthz`.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde::Serialize;

use super::tls::TlsStatus;
use super::AppState;
use crate::access::{Access, PasswordState};
use crate::config::ConfigReport;
use crate::hub::{
    HubSnapshot, InputStats, SourceState, SourceStatus, StreamInfo, Transport, ViewerStats,
};
use crate::probe::ProbeReport;
use crate::rtsp::RtspService;
use crate::update::UpdateSummary;
use crate::webrtc::whep::Whep;

/// Video older than this makes `/healthz` unhealthy.
pub const HEALTHY_FRAME_AGE: Duration = Duration::from_secs(5);

/// The `/api/status` document.
#[derive(Debug, Serialize)]
pub struct Status {
    /// Server version.
    pub version: &'static str,
    /// Seconds since the server started.
    pub uptime_s: f64,
    /// The source and its state.
    pub source: SourceStatus,
    /// Stream parameters, once known.
    pub stream: Option<StreamInfo>,
    /// Counters of the video path.
    pub video: VideoCounters,
    /// Viewers watching now.
    pub viewers: Vec<ViewerStats>,
    /// The WebRTC output.
    pub webrtc: WebRtcStatus,
    /// The RTSP server.
    pub rtsp: RtspStatus,
    /// Whether a password is needed (never the password).
    pub access: AccessStatus,
    /// HTTPS: whether it is served, on which port, until when the certificate
    /// is valid, and why not when `server.tls_cert` is set but HTTPS is not served.
    pub tls: TlsStatus,
    /// Updates: whether they can be installed here, the slot running now (`A`
    /// or `B`), the image's version, and the last update's result
    /// (`last-update.txt`).
    pub update: UpdateSummary,
    /// How the configuration file was read, and its errors.
    pub config: ConfigReport,
    /// The hardware: Raspberry Pi model, hardware encoder, cameras, notes, and the
    /// video nodes the streamer can use (cameras, the encoder) with their formats,
    /// sizes, frame rates and controls. Nodes it has no use for are left out here
    /// (`streamer probe --json` lists them all).
    pub device: ProbeReport,
}

/// Access control, for `/api/status`: whether a password is set, never what it
/// is.
#[derive(Debug, Clone, Serialize)]
pub struct AccessStatus {
    /// `none` (anyone on the network can watch), `plain` or `hashed` (a password
    /// is needed), `unusable` (`[access]` has a mistake: nobody can watch).
    pub password: PasswordState,
    /// The user name to log in with, when a password is set.
    pub user: Option<String>,
}

impl AccessStatus {
    /// The status of `access`.
    pub fn of(access: &Access) -> Self {
        AccessStatus {
            password: access.password_state(),
            user: (access.password_state() != PasswordState::None)
                .then(|| access.user().to_owned()),
        }
    }
}

/// The WebRTC (WHEP) output, for `/api/status`.
#[derive(Debug, Clone, Serialize)]
pub struct WebRtcStatus {
    /// `POST /whep` is served.
    pub enabled: bool,
    /// The UDP port every session uses, when enabled.
    pub udp_port: Option<u16>,
    /// WHEP sessions open now (connected or connecting).
    pub sessions: usize,
    /// Why it is not served, when not.
    pub reason: Option<String>,
}

impl WebRtcStatus {
    /// The status of `whep`.
    pub fn of(whep: &Whep) -> Self {
        match whep {
            Whep::On(webrtc) => WebRtcStatus {
                enabled: true,
                udp_port: Some(webrtc.port()),
                sessions: webrtc.session_count(),
                reason: None,
            },
            Whep::Off(reason) => WebRtcStatus {
                enabled: false,
                udp_port: None,
                sessions: 0,
                reason: Some(reason.clone()),
            },
        }
    }
}

/// The RTSP server, for `/api/status`.
#[derive(Debug, Clone, Serialize)]
pub struct RtspStatus {
    /// RTSP is served.
    pub enabled: bool,
    /// The stream's URL with the host this status was asked of, e.g.
    /// `rtsp://streamer.local:8554/stream`, when enabled.
    pub url: Option<String>,
    /// The TCP port, when enabled.
    pub port: Option<u16>,
    /// The UDP port RTP leaves from (RTCP: the next), when enabled.
    pub udp_port: Option<u16>,
    /// RTSP clients playing now.
    pub sessions: usize,
    /// Why it is not served, when not.
    pub reason: Option<String>,
}

impl RtspStatus {
    /// The status of `rtsp`, its URL on `host` (a `Host` header: a name or
    /// address, with or without a port).
    pub fn of(rtsp: &RtspService, host: &str, viewers: &[ViewerStats]) -> Self {
        match rtsp {
            RtspService::On(server) => RtspStatus {
                enabled: true,
                url: Some(format!(
                    "rtsp://{}:{}{}",
                    host_only(host),
                    server.port(),
                    crate::rtsp::session::PATH
                )),
                port: Some(server.port()),
                udp_port: server.udp_port(),
                sessions: viewers
                    .iter()
                    .filter(|v| v.transport == Transport::Rtsp)
                    .count(),
                reason: None,
            },
            RtspService::Off(reason) => RtspStatus {
                enabled: false,
                url: None,
                port: None,
                udp_port: None,
                sessions: 0,
                reason: Some(reason.clone()),
            },
        }
    }
}

/// `host` without its port: `streamer.local:8000` -> `streamer.local`,
/// `[::1]:8000` -> `[::1]`.
fn host_only(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.contains(':') => {
            name
        }
        _ => host,
    }
}

/// Counters of the video path.
#[derive(Debug, Serialize)]
pub struct VideoCounters {
    /// Frames published.
    pub frames: u64,
    /// Bytes published.
    pub bytes: u64,
    /// Keyframes published.
    pub keyframes: u64,
    /// Access units dropped because nothing could decode them (before the first
    /// keyframe, or without parameter sets that parse).
    pub undecodable: u64,
    /// What the H.264 reader skipped of the source's output (not H.264, or over
    /// the 8 MiB bound on a NAL unit or access unit).
    pub input: InputStats,
    /// Seconds since the last frame.
    pub last_frame_age_s: Option<f64>,
    /// Frames viewers lost by falling behind (all viewers ever).
    pub viewer_drops: u64,
    /// Viewers that ever connected.
    pub viewers_total: u64,
    /// Viewers turned away because the server was full.
    pub viewers_rejected: u64,
    /// Viewers turned away because their address had
    /// `server.max_viewers_per_address` watching.
    pub viewers_rejected_address: u64,
    /// Keyframe requests from viewers (WebRTC PLI/FIR).
    pub keyframe_requests: u64,
    /// Keyframe requests passed to the source (at most one a second).
    pub keyframe_requests_forwarded: u64,
}

/// The states of the outputs and policies beside the hub, for [`Status::new`].
#[derive(Debug, Clone)]
pub struct Services {
    /// WebRTC.
    pub webrtc: WebRtcStatus,
    /// RTSP.
    pub rtsp: RtspStatus,
    /// The password.
    pub access: AccessStatus,
    /// HTTPS.
    pub tls: TlsStatus,
    /// Updates.
    pub update: UpdateSummary,
}

impl Status {
    /// Builds the document from a hub snapshot. Of `device.nodes`, only those
    /// with a role (cameras, the encoder) are kept.
    pub fn new(
        snapshot: HubSnapshot,
        uptime: Duration,
        config: ConfigReport,
        mut device: ProbeReport,
        services: Services,
    ) -> Self {
        let Services {
            webrtc,
            rtsp,
            access,
            tls,
            update,
        } = services;
        device.nodes.retain(|node| node.role.is_some());
        Status {
            version: env!("CARGO_PKG_VERSION"),
            uptime_s: uptime.as_secs_f64(),
            source: snapshot.source,
            stream: snapshot.stream,
            video: VideoCounters {
                frames: snapshot.frames,
                bytes: snapshot.bytes,
                keyframes: snapshot.keyframes,
                undecodable: snapshot.undecodable,
                input: snapshot.input,
                last_frame_age_s: snapshot.last_frame_age_s,
                viewer_drops: snapshot.viewer_drops,
                viewers_total: snapshot.viewers_total,
                viewers_rejected: snapshot.viewers_rejected,
                viewers_rejected_address: snapshot.viewers_rejected_address,
                keyframe_requests: snapshot.keyframe_requests,
                keyframe_requests_forwarded: snapshot.keyframe_requests_forwarded,
            },
            viewers: snapshot.viewers,
            webrtc,
            rtsp,
            access,
            tls,
            update,
            config,
            device,
        }
    }
}

/// `GET /api/status`.
pub async fn status(State(app): State<AppState>, headers: HeaderMap) -> Json<Status> {
    let snapshot = app.hub.snapshot();
    // The guard let the request in: its Host is one this device answers to.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("streamer.local");
    let rtsp = RtspStatus::of(&app.rtsp, host, &snapshot.viewers);
    Json(Status::new(
        snapshot,
        app.hub.uptime(),
        (*app.config).clone(),
        (*app.hardware).clone(),
        Services {
            webrtc: WebRtcStatus::of(&app.whep),
            rtsp,
            access: AccessStatus::of(&app.access),
            tls: app.tls.clone(),
            update: app.updates.summary().await,
        },
    ))
}

/// `GET /healthz`: 200 while video flows, 503 with the reason otherwise. With a
/// password set it is the one open endpoint, and says only "ok" or "down".
pub async fn healthz(State(app): State<AppState>) -> Response {
    if app.access.locked() {
        let up = app
            .hub
            .last_frame_age()
            .is_some_and(|age| age <= HEALTHY_FRAME_AGE)
            || app.hub.source_status().state == SourceState::Idle;
        return if up {
            (StatusCode::OK, "ok\n").into_response()
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "down\n").into_response()
        };
    }
    match app.hub.last_frame_age() {
        Some(age) if age <= HEALTHY_FRAME_AGE => (StatusCode::OK, "ok\n").into_response(),
        _ if app.hub.source_status().state == SourceState::Idle => (
            StatusCode::OK,
            "idle: the camera starts when someone watches (camera.on_demand)\n",
        )
            .into_response(),
        age => {
            let source = app.hub.source_status();
            let since = match age {
                Some(age) => format!("no video for {:.1} s", age.as_secs_f64()),
                None => "no video yet".to_string(),
            };
            let why = source.message.unwrap_or_default();
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "{since}; source {} is {:?}. {why}\n",
                    source.kind, source.state
                ),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rtsp_url_takes_the_host_without_its_port() {
        assert_eq!(host_only("streamer.local:8000"), "streamer.local");
        assert_eq!(host_only("streamer.local"), "streamer.local");
        assert_eq!(host_only("[::1]:8000"), "[::1]");
        assert_eq!(host_only("[::1]"), "[::1]");
        assert_eq!(host_only("192.0.2.7:80"), "192.0.2.7");
    }
    use crate::hub::{Hub, HubLimits};
    use crate::v4l2::discover::{InspectedNode, Role};

    fn node(path: &str, role: Option<Role>) -> InspectedNode {
        InspectedNode {
            path: path.into(),
            role,
            description: None,
            error: None,
        }
    }

    #[test]
    fn status_lists_only_the_nodes_the_streamer_can_use() {
        let root = tempfile::tempdir().unwrap();
        let mut device = crate::probe::probe(root.path());
        device.nodes = vec![
            node("/dev/video0", Some(Role::LegacyCamera)),
            node("/dev/video10", None),
            node("/dev/video11", Some(Role::H264Encoder)),
        ];
        let hub = Hub::new(HubLimits::for_frame_rate(30.0, 4), Some(30.0));
        let config = ConfigReport {
            path: "/boot/streamer.toml".into(),
            found: false,
            errors: Vec::new(),
            problem_count: 0,
        };
        let webrtc = WebRtcStatus::of(&Whep::Off("off in this test".into()));
        let rtsp = RtspStatus::of(&RtspService::Off("off".into()), "h", &[]);
        let access = AccessStatus::of(&Access::open());
        let status = Status::new(
            hub.snapshot(),
            hub.uptime(),
            config,
            device,
            Services {
                webrtc,
                rtsp,
                access,
                tls: TlsStatus::off(),
                update: UpdateSummary::default(),
            },
        );
        let json = serde_json::to_value(&status).unwrap();
        let paths: Vec<&str> = json["device"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, ["/dev/video0", "/dev/video11"]);
        assert_eq!(json["device"]["nodes"][1]["role"], "h264_encoder");
        assert_eq!(json["webrtc"]["enabled"], false);
        assert_eq!(json["webrtc"]["reason"], "off in this test");
        assert_eq!(json["tls"]["enabled"], false);
    }
}
