//! A hostile `POST /whep` body: the offer is read (our `offer` module, then str0m's
//! SDP parser and answerer) without a panic (the release build aborts on panic, so
//! one would take the device down), and is answered or refused with a reason. The
//! same bytes as a datagram on the shared UDP port are routed without a panic.
#![no_main]

use std::sync::OnceLock;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use streamer::hub::StreamInfo;
use streamer::webrtc::demux::Routes;
use streamer::webrtc::offer;
use streamer::webrtc::peer::{Peer, PeerSettings};

fn settings() -> &'static PeerSettings {
    static SETTINGS: OnceLock<PeerSettings> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        PeerSettings::new(vec!["127.0.0.1:8189".parse().unwrap()], "fuzz".into(), Vec::new())
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let mut routes = Routes::new();
    routes.add(1u64, "ufrag");
    let _ = routes.route("127.0.0.1:5000".parse().unwrap(), data);
    routes.check_invariants();

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(video) = offer::video_of(text) {
        let _ = offer::choose(&video, 0x640028);
    }
    let stream = StreamInfo {
        codec: "avc1.42c01f".into(),
        width: 640,
        height: 480,
        fps: Some(30.0),
    };
    if let Ok((mut peer, answer)) = Peer::answer(text, &stream, settings(), Instant::now(), 7) {
        assert!(answer.starts_with("v=0"));
        let _ = peer.poll();
    }
});
