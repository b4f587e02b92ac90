//! `GET /metrics`: Prometheus text exposition format, version 0.0.4.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Extension;

use super::connections::{ConnectionStats, Connections};
use super::AppState;
use crate::access::AccessStats;
use crate::hub::{HubSnapshot, SourceState, Transport};
use crate::snapshot::{SnapshotStats, Snapshots};

/// `GET /metrics`. The connection counts come from the server's accept loop
/// (none when the router runs without it).
pub async fn metrics(
    State(app): State<AppState>,
    connections: Option<Extension<Connections>>,
    snapshots: Option<Extension<Snapshots>>,
) -> impl IntoResponse {
    let mut body = render(
        &app.hub.snapshot(),
        app.hub.uptime().as_secs_f64(),
        app.config.problem_count,
    );
    if let Some(Extension(connections)) = connections {
        body.push_str(&render_connections(&connections.stats()));
    }
    if let Some(Extension(snapshots)) = snapshots {
        body.push_str(&render_snapshots(&snapshots.stats()));
    }
    if app.access.locked() {
        body.push_str(&render_access(&app.access.stats()));
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

/// One metric: its help, type and value.
fn write_metric(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    let _ = writeln!(out, "# HELP streamer_{name} {help}");
    let _ = writeln!(out, "# TYPE streamer_{name} {kind}");
    let _ = writeln!(out, "streamer_{name} {value}");
}

/// The exposition text for the password checks (with a password set).
pub fn render_access(a: &AccessStats) -> String {
    let mut out = String::with_capacity(1024);
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        write_metric(&mut out, name, kind, help, value);
    };
    metric(
        "logins_granted_total",
        "counter",
        "Right passwords (Basic, the login page, RTSP).",
        a.granted as f64,
    );
    metric(
        "logins_denied_total",
        "counter",
        "Wrong user names or passwords: a rise means someone is guessing.",
        a.denied as f64,
    );
    metric(
        "logins_braked_total",
        "counter",
        "Password attempts refused unread (429/503) because their address had too many wrong ones.",
        a.braked as f64,
    );
    metric(
        "logins_braked_addresses",
        "gauge",
        "Addresses with wrong passwords counted now.",
        a.braked_addresses as f64,
    );
    out
}

/// The exposition text for the connection counts.
pub fn render_connections(c: &ConnectionStats) -> String {
    let mut out = String::with_capacity(1024);
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        write_metric(&mut out, name, kind, help, value);
    };
    metric(
        "connections",
        "gauge",
        "TCP connections open now (viewers included).",
        c.open as f64,
    );
    metric(
        "connections_total",
        "counter",
        "TCP connections accepted and served.",
        c.accepted as f64,
    );
    metric(
        "connections_refused_address_total",
        "counter",
        "Connections refused because their address had server.max_connections_per_address open.",
        c.refused_address as f64,
    );
    metric(
        "connections_refused_full_total",
        "counter",
        "Connections refused because the server had its most connections open, all busy.",
        c.refused_full as f64,
    );
    metric(
        "connections_evicted_total",
        "counter",
        "Connections closed before their first request to make room for a new one.",
        c.evicted as f64,
    );
    metric(
        "connections_header_timeouts_total",
        "counter",
        "Connections closed because a request head did not arrive in time.",
        c.header_timeouts as f64,
    );
    out
}

/// The exposition text for `/snapshot.jpg`'s counters.
pub fn render_snapshots(s: &SnapshotStats) -> String {
    let mut out = String::with_capacity(1024);
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        write_metric(&mut out, name, kind, help, value);
    };
    metric(
        "snapshots_total",
        "counter",
        "JPEG snapshots served (/snapshot.jpg), from the cache or decoded.",
        s.served as f64,
    );
    metric(
        "snapshot_failures_total",
        "counter",
        "Snapshot requests answered with an error (no video, or the picture did not decode).",
        s.failures as f64,
    );
    metric(
        "snapshot_decodes_total",
        "counter",
        "Snapshot decoding runs: requests for a frame not yet encoded (concurrent ones share one).",
        s.decodes as f64,
    );
    metric(
        "snapshot_decoded_frames_total",
        "counter",
        "Frames decoded for snapshots (each frame once while the decoder is kept).",
        s.frames_decoded as f64,
    );
    metric(
        "snapshot_decode_seconds_total",
        "counter",
        "Seconds spent decoding frames and encoding JPEGs for snapshots.",
        s.decode_seconds,
    );
    metric(
        "snapshot_decoder_active",
        "gauge",
        "1 while the snapshot decoder is set up (it is dropped after 30 s without requests).",
        f64::from(u8::from(s.decoder_active)),
    );
    metric(
        "snapshot_keyframe_shortcuts_total",
        "counter",
        "Cold snapshot requests answered from a keyframe asked of the source instead of decoding the GOP.",
        s.keyframe_shortcuts as f64,
    );
    out
}

/// The exposition text for a hub snapshot.
pub fn render(s: &HubSnapshot, uptime_s: f64, config_errors: usize) -> String {
    let mut out = String::with_capacity(2048);
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        write_metric(&mut out, name, kind, help, value);
    };
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        uptime_s,
    );
    metric(
        "source_up",
        "gauge",
        "1 while the source delivers video, else 0.",
        f64::from(u8::from(s.source.state == SourceState::Live)),
    );
    metric(
        "source_restarts_total",
        "counter",
        "Times the source was restarted after a failure or stall.",
        s.source.restarts as f64,
    );
    metric(
        "frames_total",
        "counter",
        "Access units published.",
        s.frames as f64,
    );
    metric(
        "bytes_total",
        "counter",
        "Bytes of video published.",
        s.bytes as f64,
    );
    metric(
        "keyframes_total",
        "counter",
        "Keyframes published.",
        s.keyframes as f64,
    );
    metric(
        "undecodable_frames_total",
        "counter",
        "Access units dropped because no viewer could decode them (before the first keyframe or without parameter sets).",
        s.undecodable as f64,
    );
    metric(
        "input_skipped_bytes_total",
        "counter",
        "Bytes of the source's output skipped: not H.264 (no start code), or in NAL units or access units over the 8 MiB bound.",
        s.input.skipped_bytes as f64,
    );
    metric(
        "input_oversize_units_total",
        "counter",
        "NAL units and access units of the source's output skipped for exceeding the 8 MiB bound.",
        (s.input.oversize_nal_units + s.input.oversize_access_units) as f64,
    );
    metric(
        "last_frame_age_seconds",
        "gauge",
        "Seconds since the last frame (-1 before the first).",
        s.last_frame_age_s.unwrap_or(-1.0),
    );
    metric(
        "viewers",
        "gauge",
        "Viewers watching now.",
        s.viewers.len() as f64,
    );
    metric(
        "viewers_total",
        "counter",
        "Viewers that ever connected.",
        s.viewers_total as f64,
    );
    metric(
        "viewers_rejected_total",
        "counter",
        "Viewers turned away because the server was full.",
        s.viewers_rejected as f64,
    );
    metric(
        "viewers_rejected_address_total",
        "counter",
        "Viewers turned away because their address had server.max_viewers_per_address watching.",
        s.viewers_rejected_address as f64,
    );
    metric(
        "viewer_dropped_frames_total",
        "counter",
        "Frames viewers lost by falling behind.",
        s.viewer_drops as f64,
    );
    metric(
        "viewer_resyncs_total",
        "counter",
        "Times a viewer fell behind and skipped to the next keyframe.",
        s.viewer_resyncs as f64,
    );
    metric(
        "viewer_sent_bytes",
        "gauge",
        "Bytes written to the viewers watching now.",
        s.viewers.iter().map(|v| v.sent_bytes).sum::<u64>() as f64,
    );
    metric(
        "keyframe_requests_total",
        "counter",
        "Keyframe requests from viewers (WebRTC PLI/FIR).",
        s.keyframe_requests as f64,
    );
    metric(
        "keyframe_requests_forwarded_total",
        "counter",
        "Keyframe requests passed to the source (at most one a second).",
        s.keyframe_requests_forwarded as f64,
    );
    metric(
        "join_cache_frames",
        "gauge",
        "Frames kept since the last keyframe for joining viewers.",
        s.gop_frames as f64,
    );
    metric(
        "join_cache_bytes",
        "gauge",
        "Bytes kept since the last keyframe for joining viewers.",
        s.gop_bytes as f64,
    );
    metric(
        "config_errors",
        "gauge",
        "Problems found in the configuration (all of them: /api/status lists the first 20; running on defaults when > 0).",
        config_errors as f64,
    );
    let _ = writeln!(
        out,
        "# HELP streamer_viewers_by_transport Viewers watching now, by transport."
    );
    let _ = writeln!(out, "# TYPE streamer_viewers_by_transport gauge");
    for transport in Transport::ALL {
        let count = s
            .viewers
            .iter()
            .filter(|v| v.transport == transport)
            .count();
        let _ = writeln!(
            out,
            "streamer_viewers_by_transport{{transport=\"{}\"}} {count}",
            transport.name()
        );
    }
    out
}
