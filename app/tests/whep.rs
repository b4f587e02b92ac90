//! WHEP (RFC 9725) against the real `streamer` binary, with an independent client
//! (`support::whep_client`: str0m in the client role, a full ICE agent) whose
//! received video ffmpeg must decode, and the HTTP side of the contract: status
//! codes, `Location`, `OPTIONS` and CORS, `max_viewers`, `[webrtc] enabled`.
//!
//! Every test runs in a loopback-only network namespace (`support::netns`): the
//! server announces 127.0.0.1 only and nothing can reach another address.
//!
//! ffmpeg's own WHEP support is no help here: Debian 12's ffmpeg 5.1 has neither a
//! WHEP demuxer nor the WHIP muxer (`ffmpeg -protocols`/`-formats`), so ffmpeg
//! judges what str0m received, written as Annex-B.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::netns;
use support::process::StreamerProcess;
use support::whep_client::{self, http, Codecs, HttpResponse, Offer, PostError, Video};

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_streamer"))
}

/// The test pattern's configured size.
const WIDTH: u32 = 320;
const HEIGHT: u32 = 240;

/// Starts the streamer with WebRTC on 127.0.0.1 and any free UDP port, plus `env`.
fn start(env: &[(&str, &str)]) -> StreamerProcess {
    let mut all = vec![
        ("STREAMER_WEBRTC__ANNOUNCE", "127.0.0.1"),
        ("STREAMER_WEBRTC__UDP_PORT", "0"),
        ("STREAMER_LOG__LEVEL", "debug"),
    ];
    all.extend_from_slice(env);
    StreamerProcess::start(&binary(), Path::new("/nonexistent/streamer.toml"), &all)
}

/// The test pattern at [`WIDTH`]x[`HEIGHT`], 25 fps, a keyframe every
/// `intra_period` frames.
fn start_test_pattern(intra_period: &str, env: &[(&str, &str)]) -> StreamerProcess {
    let mut all = vec![
        ("STREAMER_CAMERA__SOURCE", "test"),
        ("STREAMER_CAMERA__WIDTH", "320"),
        ("STREAMER_CAMERA__HEIGHT", "240"),
        ("STREAMER_CAMERA__FRAMERATE", "25"),
        ("STREAMER_ENCODER__INTRA_PERIOD", intra_period),
    ];
    all.extend_from_slice(env);
    start(&all)
}

/// The viewers of `/api/status` with transport `transport`.
fn viewers_by(status: &Value, transport: &str) -> usize {
    status["viewers"]
        .as_array()
        .map(|v| v.iter().filter(|v| v["transport"] == transport).count())
        .unwrap_or(0)
}

/// Posts an H.264 offer; the session, or a panic with the server's answer and log.
fn session(server: &StreamerProcess, data_channel: bool) -> whep_client::Session {
    Offer::new(Codecs::H264, data_channel)
        .post(server.address, "/whep")
        .unwrap_or_else(|e| panic!("POST /whep: {e}\nlog:\n{}", server.log()))
}

/// Posts `body` to /whep with `content_type`.
fn post(server: &StreamerProcess, content_type: &str, body: &str) -> HttpResponse {
    http(
        server.address,
        "POST",
        "/whep",
        &[("Content-Type", content_type)],
        body.as_bytes(),
    )
    .expect("POST /whep")
}

/// Writes `video` as Annex-B into a temporary file and checks ffmpeg's verdict:
/// every received access unit decoded, at `width`x`height`, without errors.
fn assert_decodes(video: &Video, width: u32, height: u32) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whep.h264");
    std::fs::write(&path, &video.data).unwrap();
    let (decoded, w, h) = support::ffprobe_frames(&path);
    assert_eq!((w, h), (width, height), "ffprobe sees another picture size");
    assert_eq!(
        decoded, video.frames as u64,
        "ffprobe decoded {decoded} of the {} access units received",
        video.frames
    );
    let errors = support::ffmpeg_decode_errors(&path);
    assert!(errors.is_empty(), "ffmpeg reports decode errors: {errors}");
}

/// NAL unit types of each received access unit boundary are not kept by str0m;
/// whether an Annex-B buffer holds an IDR slice (type 5).
fn has_idr(data: &[u8]) -> bool {
    support::nal_types(data).contains(&5)
}

/// A WHEP viewer of the test pattern: 201 with an answer (ICE-lite, one host
/// candidate on 127.0.0.1 and the bound UDP port, constrained baseline), then
/// video that starts with SPS, PPS and an IDR and decodes at the configured size,
/// the viewer listed with transport "webrtc" in /api/status and /metrics, the data
/// channel carrying the WebSocket's JSON messages, and DELETE ending the session.
#[test]
fn whep_viewer_gets_decodable_test_pattern() {
    if !netns::isolated("whep_viewer_gets_decodable_test_pattern") {
        return;
    }
    let server = start_test_pattern("50", &[]);
    let live = server.wait_live();
    let udp_port = live["webrtc"]["udp_port"]
        .as_u64()
        .unwrap_or_else(|| panic!("/api/status has no webrtc.udp_port: {}", live["webrtc"]));
    assert_eq!(live["webrtc"]["enabled"], true, "{}", live["webrtc"]);

    let mut session = session(&server, true);
    // Relative (`whep/<id>`), so that it stays under a reverse proxy's prefix.
    assert!(
        session.location.starts_with("/whep/") && session.location.len() > "/whep/".len(),
        "Location: {:?}",
        session.location
    );
    assert_eq!(whep_client::resolve("/whep", "whep/abc"), "/whep/abc");
    assert_eq!(
        whep_client::resolve("/cam/whep", "whep/abc"),
        "/cam/whep/abc"
    );
    let answer = session.answer.clone();
    assert!(answer.contains("a=ice-lite"), "not ICE-lite:\n{answer}");
    assert_eq!(
        whep_client::candidates(&answer),
        [format!("127.0.0.1 {udp_port}")],
        "the answer must announce exactly 127.0.0.1 on the bound UDP port:\n{answer}"
    );
    let profiles = whep_client::profile_level_ids(&answer);
    assert!(
        !profiles.is_empty()
            && profiles.iter().all(|p| p.starts_with("42")
                && p.len() == 6
                && u8::from_str_radix(&p[2..4], 16).unwrap_or(0) & 0x40 != 0),
        "the test pattern is constrained baseline (42, constraint_set1): {profiles:?}\n{answer}"
    );
    assert!(
        answer.contains("packetization-mode=1"),
        "packetization-mode 1:\n{answer}"
    );

    let mut video = Video::default();
    session
        .receive(&mut video, 50, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", server.log()));
    let first = video.first_frame_after.unwrap();
    println!("first frame {first:?} after the POST");
    // Loopback: the cached keyframe is sent at once (the target is 500 ms; a
    // loaded machine and a debug build get a wide margin).
    assert!(
        first < Duration::from_secs(3),
        "the first frame came {first:?} after the POST"
    );
    let first_unit_types = {
        let mut reader = streamer::h264::AccessUnitReader::new();
        let mut units = Vec::new();
        reader.push(&video.data, &mut units);
        reader.flush(&mut units);
        units[0]
            .nals
            .iter()
            .map(|n| n.nal_type().as_u8())
            .collect::<Vec<_>>()
    };
    assert!(
        [7, 8, 5].iter().all(|t| first_unit_types.contains(t)),
        "the first access unit is not a keyframe with SPS and PPS: {first_unit_types:?}"
    );
    assert!(
        video.rtp_times.windows(2).all(|w| w[0] <= w[1]),
        "RTP timestamps go back: {:?}",
        video.rtp_times
    );
    assert_decodes(&video, WIDTH, HEIGHT);

    // Listed as a WebRTC viewer.
    let now = server.status();
    assert_eq!(viewers_by(&now, "webrtc"), 1, "{}", now["viewers"]);
    let (_, metrics) = server.get("/metrics");
    assert!(
        metrics.contains("streamer_viewers_by_transport{transport=\"webrtc\"} 1"),
        "/metrics: {}",
        metrics
            .lines()
            .filter(|l| l.contains("transport"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The data channel speaks the WebSocket's JSON.
    let types: Vec<String> = session
        .channel_text
        .iter()
        .filter_map(|t| serde_json::from_str::<Value>(t).ok())
        .filter_map(|v| v["type"].as_str().map(str::to_owned))
        .collect();
    assert!(
        types.first().map(String::as_str) == Some("hello") && types.iter().any(|t| t == "stream"),
        "data channel messages: {:?}",
        session.channel_text
    );

    // DELETE ends it: 200, the viewer leaves /api/status, the video stops.
    let deleted = session.delete(server.address).unwrap();
    assert_eq!(deleted.status, 200, "DELETE: {}", deleted.body);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = server.status();
        if viewers_by(&now, "webrtc") == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the WHEP viewer is still listed 5 s after DELETE: {}",
            now["viewers"]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = session.idle(Duration::from_millis(500));
    let late = session.idle(Duration::from_millis(1500)).unwrap_or(0);
    assert_eq!(late, 0, "{late} frames arrived after DELETE");
    let again = session.delete(server.address).unwrap();
    assert_eq!(again.status, 404, "a second DELETE: {}", again.body);
}

/// A PLI (RTCP picture loss indication) from the viewer reaches the hub
/// (`/api/status` `video.keyframe_requests`) and the test pattern, which can
/// make a keyframe at any time, answers it with one long before the next
/// periodic keyframe (every 30 s here).
#[test]
fn whep_pli_gets_a_keyframe() {
    if !netns::isolated("whep_pli_gets_a_keyframe") {
        return;
    }
    let server = start_test_pattern("750", &[]);
    server.wait_live();
    let mut session = session(&server, false);
    let mut video = Video::default();
    session
        .receive(&mut video, 10, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", server.log()));
    assert!(has_idr(&video.data), "the session starts with a keyframe");
    let before = server.status()["video"]["keyframe_requests"]
        .as_u64()
        .expect("/api/status video.keyframe_requests");

    let mut after_pli = Video::default();
    session.request_keyframe().unwrap();
    let asked = Instant::now();
    let mut counted = false;
    while !has_idr(&after_pli.data) {
        counted = counted || server.status()["video"]["keyframe_requests"].as_u64() > Some(before);
        assert!(
            asked.elapsed() < Duration::from_secs(6),
            "no keyframe within 6 s of a PLI ({} frames; the server {} the PLI)\nlog:\n{}",
            after_pli.frames,
            if counted { "counted" } else { "did not count" },
            server.log()
        );
        session
            .receive(&mut after_pli, 1, Duration::from_secs(5))
            .unwrap();
    }
    println!("keyframe {:?} after the PLI", asked.elapsed());
}

/// Real Pi encoder output (High profile, 1080p) as the source: the answer
/// negotiates High (profile-level-id 64xxxx) and the video decodes at 1920x1080.
#[test]
fn whep_viewer_of_pi_high_profile_decodes() {
    if !netns::isolated("whep_viewer_of_pi_high_profile_decodes") {
        return;
    }
    let sample = support::pi_sample();
    let server = start(&[
        ("STREAMER_CAMERA__SOURCE", "file"),
        ("STREAMER_CAMERA__FILE", sample.to_str().unwrap()),
    ]);
    server.wait_live();
    let mut session = session(&server, false);
    let profiles = whep_client::profile_level_ids(&session.answer);
    assert!(
        !profiles.is_empty() && profiles.iter().all(|p| p.starts_with("64")),
        "a High profile stream answered as {profiles:?}:\n{}",
        session.answer
    );
    let mut video = Video::default();
    session
        .receive(&mut video, 60, Duration::from_secs(40))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", server.log()));
    println!(
        "{} frames, {} bytes, {} discontinuities",
        video.frames,
        video.data.len(),
        video.discontinuities
    );
    assert_decodes(&video, 1920, 1080);
    assert_eq!(session.delete(server.address).unwrap().status, 200);
}

/// What RFC 9725 and the contract say for requests that get no session: 415, 400
/// (no SDP; no video), 422 (no common codec), 404 (DELETE of an unknown
/// resource), 405 (PATCH: the server is ICE-lite, no trickle), OPTIONS with
/// `Accept-Post` and CORS for an allowed origin only.
#[test]
fn whep_refusals_follow_rfc_9725() {
    if !netns::isolated("whep_refusals_follow_rfc_9725") {
        return;
    }
    let server = start_test_pattern("25", &[("STREAMER_SERVER__ALLOWED_HOSTS", "cam.example")]);
    server.wait_live();
    let offer = Offer::new(Codecs::H264, false).sdp;

    let wrong_type = post(&server, "text/plain", &offer);
    assert_eq!(wrong_type.status, 415, "text/plain: {wrong_type:?}");

    let garbage = post(&server, "application/sdp", "this is not SDP\r\n");
    assert_eq!(garbage.status, 400, "garbage: {garbage:?}");
    assert!(!garbage.body.trim().is_empty(), "400 without a reason");

    let audio_only = post(
        &server,
        "application/sdp",
        &Offer::new(Codecs::AudioOnly, false).sdp,
    );
    assert_eq!(
        audio_only.status, 400,
        "an offer with no video m-line: {audio_only:?}"
    );

    let vp8 = post(
        &server,
        "application/sdp",
        &Offer::new(Codecs::Vp8Only, false).sdp,
    );
    assert!(
        matches!(vp8.status, 406 | 422),
        "VP8 only must be 406 or 422: {vp8:?}"
    );
    assert!(
        vp8.body.contains("H.264") || vp8.body.contains("H264"),
        "the 422 reason should name the stream's codec/profile: {:?}",
        vp8.body
    );

    let unknown = http(server.address, "DELETE", "/whep/no-such-session", &[], &[]).unwrap();
    assert_eq!(unknown.status, 404, "DELETE of an unknown id: {unknown:?}");

    let session = session(&server, false);
    let patch = http(
        server.address,
        "PATCH",
        &session.location,
        &[("Content-Type", "application/trickle-ice-sdpfrag")],
        b"a=end-of-candidates\r\n",
    )
    .unwrap();
    assert_eq!(patch.status, 405, "PATCH: {patch:?}");
    assert!(
        patch.header("allow").is_some_and(|a| a.contains("DELETE")),
        "405 must say what is allowed (RFC 9110 15.5.6): {patch:?}"
    );
    assert_eq!(session.delete(server.address).unwrap().status, 200);

    // OPTIONS: Accept-Post, and a CORS preflight answered for an allowed origin.
    let preflight = |origin: &str| {
        http(
            server.address,
            "OPTIONS",
            "/whep",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type"),
            ],
            &[],
        )
        .unwrap()
    };
    let allowed = preflight("http://cam.example");
    assert_eq!(allowed.status, 204, "OPTIONS: {allowed:?}");
    assert!(
        allowed
            .header("accept-post")
            .is_some_and(|v| v.contains("application/sdp")),
        "Accept-Post: {allowed:?}"
    );
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("http://cam.example"),
        "{allowed:?}"
    );
    let list = |name: &str| {
        allowed
            .header(name)
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    assert!(
        list("access-control-allow-methods").contains("post"),
        "{allowed:?}"
    );
    assert!(
        list("access-control-allow-headers").contains("content-type"),
        "{allowed:?}"
    );
    assert!(
        list("access-control-expose-headers").contains("location"),
        "{allowed:?}"
    );
    let own = preflight(&format!("http://127.0.0.1:{}", server.address.port()));
    assert_eq!(
        own.header("access-control-allow-origin"),
        Some(format!("http://127.0.0.1:{}", server.address.port()).as_str()),
        "the device's own address is an allowed origin: {own:?}"
    );
    let foreign = preflight("http://evil.example");
    assert!(
        foreign.header("access-control-allow-origin").is_none(),
        "CORS granted to a foreign origin: {foreign:?}"
    );
    let plain = http(server.address, "OPTIONS", "/whep", &[], &[]).unwrap();
    assert_eq!(plain.status, 204, "OPTIONS without Origin: {plain:?}");
    assert!(plain.header("accept-post").is_some(), "{plain:?}");
}

/// `server.max_viewers` counts WebSocket and WHEP viewers together: with 2
/// allowed, a WebSocket viewer and a WHEP viewer fill the server and the next
/// POST is 503 with Retry-After; after DELETE there is room again.
#[test]
fn whep_counts_against_max_viewers() {
    if !netns::isolated("whep_counts_against_max_viewers") {
        return;
    }
    let server = start_test_pattern("25", &[("STREAMER_SERVER__MAX_VIEWERS", "2")]);
    server.wait_live();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (websocket, _) = runtime
        .block_on(tokio_tungstenite::connect_async(format!(
            "ws://{}/ws",
            server.address
        )))
        .expect("a WebSocket viewer");
    let mut first = session(&server, false);
    first
        .receive(&mut Video::default(), 1, Duration::from_secs(20))
        .unwrap();
    let now = server.status();
    assert_eq!(
        (viewers_by(&now, "websocket"), viewers_by(&now, "webrtc")),
        (1, 1),
        "{}",
        now["viewers"]
    );

    match Offer::new(Codecs::H264, false).post(server.address, "/whep") {
        Err(PostError::Refused(full)) => {
            assert_eq!(full.status, 503, "server full: {full:?}");
            assert!(
                full.header("retry-after").is_some(),
                "503 without Retry-After: {full:?}"
            );
        }
        Err(other) => panic!("the third viewer: {other}"),
        Ok(_) => panic!("a third viewer was let in with max_viewers = 2"),
    }

    assert_eq!(first.delete(server.address).unwrap().status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut third = loop {
        match Offer::new(Codecs::H264, false).post(server.address, "/whep") {
            Ok(session) => break session,
            Err(PostError::Refused(r)) if r.status == 503 && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("after DELETE, a new viewer: {e}"),
        }
    };
    third
        .receive(&mut Video::default(), 1, Duration::from_secs(20))
        .unwrap();
    drop(websocket);
}

/// `[webrtc] enabled = false`: POST /whep is 503 and says WebRTC is off.
#[test]
fn whep_is_refused_when_webrtc_is_off() {
    if !netns::isolated("whep_is_refused_when_webrtc_is_off") {
        return;
    }
    let server = start_test_pattern("25", &[("STREAMER_WEBRTC__ENABLED", "false")]);
    let live = server.wait_live();
    assert_eq!(live["webrtc"]["enabled"], false, "{}", live["webrtc"]);
    let refused = post(
        &server,
        "application/sdp",
        &Offer::new(Codecs::H264, false).sdp,
    );
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(
        refused.body.to_ascii_lowercase().contains("webrtc"),
        "the reason should say WebRTC is off: {:?}",
        refused.body
    );
}

/// The helper itself: a namespace has only `lo`, so this machine's other
/// addresses cannot be reached from inside.
#[test]
fn the_loopback_namespace_has_no_other_address() {
    if !netns::isolated("the_loopback_namespace_has_no_other_address") {
        return;
    }
    let outside: SocketAddr = "192.0.2.1:9".parse().unwrap();
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let sent = socket.send_to(b"x", outside);
    assert!(
        sent.is_err(),
        "a datagram to {outside} left the namespace: {sent:?}"
    );
}

/// A UDP port forward on loopback, as a NAT router or qemu's user network does
/// it: datagrams to `port` go on to `to` from another local socket, and the
/// answers come back from `port`.
struct PortForward {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl PortForward {
    fn start(to: SocketAddr) -> PortForward {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let outside = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let inside = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for socket in [&outside, &inside] {
            socket
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
        }
        let port = outside.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let client = Arc::new(Mutex::new(None::<SocketAddr>));
        let (outside2, inside2) = (outside.try_clone().unwrap(), inside.try_clone().unwrap());
        let (stop1, stop2, client1, client2) = (stop.clone(), stop.clone(), client.clone(), client);
        std::thread::spawn(move || {
            let mut buffer = vec![0u8; 65536];
            while !stop1.load(Ordering::Relaxed) {
                if let Ok((n, from)) = outside.recv_from(&mut buffer) {
                    *client1.lock().unwrap() = Some(from);
                    let _ = inside.send_to(&buffer[..n], to);
                }
            }
        });
        std::thread::spawn(move || {
            let mut buffer = vec![0u8; 65536];
            while !stop2.load(Ordering::Relaxed) {
                if let Ok((n, _)) = inside2.recv_from(&mut buffer) {
                    if let Some(client) = *client2.lock().unwrap() {
                        let _ = outside2.send_to(&buffer[..n], client);
                    }
                }
            }
        });
        PortForward { port, stop }
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `[webrtc] announce` with a port, behind a port forward (what the emulated
/// boot does with qemu, and a router does for a camera reached from outside):
/// the answer names only the forward's address and port, the server takes the
/// checks that arrive on its own port from the forward's address, and video
/// flows and decodes.
#[test]
fn whep_through_a_port_forward() {
    if !netns::isolated("whep_through_a_port_forward") {
        return;
    }
    let udp_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let forward = PortForward::start(SocketAddr::from(([127, 0, 0, 1], udp_port)));
    let announce = format!("127.0.0.1:{}", forward.port);
    let udp_port_text = udp_port.to_string();
    let server = start_test_pattern(
        "25",
        &[
            ("STREAMER_WEBRTC__ANNOUNCE", &announce),
            ("STREAMER_WEBRTC__UDP_PORT", &udp_port_text),
        ],
    );
    let live = server.wait_live();
    assert_eq!(live["webrtc"]["udp_port"], udp_port, "{}", live["webrtc"]);
    let mut session = session(&server, false);
    assert_eq!(
        whep_client::candidates(&session.answer),
        [format!("127.0.0.1 {}", forward.port)],
        "the answer must announce the forward, not the bound port:\n{}",
        session.answer
    );
    let mut video = Video::default();
    session
        .receive(&mut video, 30, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", server.log()));
    assert_decodes(&video, WIDTH, HEIGHT);
    assert_eq!(session.delete(server.address).unwrap().status, 200);
}
