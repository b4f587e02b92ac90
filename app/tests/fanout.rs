//! One producer, many viewers, over real sockets: late joiners start at once, a
//! slow viewer resynchronises while a fast one loses nothing, memory stays bounded.

mod support;

use std::time::{Duration, Instant};

use streamer::hub::Hub;
use streamer::websocket::messages::ServerMessage;
use support::{
    collect_frames, limits, nal_types, next, pi_sample_units, Publisher, Received, TestServer,
};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_late_joiner_starts_with_the_last_keyframe_at_once() {
    let hub = Hub::new(limits(10), None);
    let server = TestServer::start(hub.clone(), vec![]).await;
    // The sample's keyframes are 60 frames apart: at 25 fps the next one is up to
    // 2.4 s away. Join 30 frames after the first.
    let publisher = Publisher::start(hub.clone(), pi_sample_units(), 25.0);
    while hub.snapshot().frames < 30 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let joined = Instant::now();
    let mut client = server.connect("").await;
    let (frames, texts) = collect_frames(&mut client, 1, WAIT).await;
    let waited = joined.elapsed();
    let types = nal_types(&frames[0]);
    assert!(types.starts_with(&[7, 8]), "SPS, PPS first: {types:?}");
    assert!(types.contains(&5), "then the IDR: {types:?}");
    assert!(
        waited < Duration::from_millis(500),
        "first keyframe after {waited:?}, not at the next keyframe"
    );
    let backlog = texts.iter().find_map(|m| match m {
        ServerMessage::Join { frames } => Some(*frames),
        _ => None,
    });
    assert!(backlog.is_some_and(|n| n >= 30), "backlog {backlog:?}");
    publisher.stop();
    server.stop().await;
}

#[tokio::test]
async fn a_slow_viewer_resyncs_while_a_fast_one_loses_nothing() {
    let hub = Hub::new(limits(10), None);
    let queue_limit = hub.limits().viewer_queue_frames;
    let server = TestServer::start(hub.clone(), vec![]).await;
    let mut fast = server.connect("?timing=frame").await;
    let mut slow = server.connect_small_buffer("").await;
    // About 6 MB/s of real Pi frames: the slow viewer's socket backs up within
    // a fraction of a second.
    let publisher = Publisher::start(hub.clone(), pi_sample_units(), 250.0);

    let mut fast_seqs = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        if let Received::Text(ServerMessage::Timing { seq, .. }) = next(&mut fast, WAIT).await {
            fast_seqs.push(seq);
        }
    }
    let snapshot = hub.snapshot();
    let slow_stats = snapshot
        .viewers
        .iter()
        .max_by_key(|v| v.dropped_frames)
        .expect("viewers");
    assert!(
        slow_stats.dropped_frames > 0,
        "the slow viewer dropped frames"
    );
    assert!(slow_stats.resyncs > 0);
    assert!(
        slow_stats.queued_frames <= queue_limit,
        "queue bounded: {} > {queue_limit}",
        slow_stats.queued_frames
    );
    // The fast viewer got every frame, in order, without a gap.
    assert!(
        fast_seqs.len() > 300,
        "fast viewer saw {} frames",
        fast_seqs.len()
    );
    assert!(
        fast_seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "fast viewer lost frames"
    );
    let fast_stats = snapshot
        .viewers
        .iter()
        .min_by_key(|v| v.dropped_frames)
        .expect("viewers");
    assert_eq!(fast_stats.dropped_frames, 0);

    // Reading now, while frames still flow, the slow viewer finds a resync
    // followed by a keyframe.
    let mut saw_resync = false;
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no resync and keyframe in time");
        match next(&mut slow, WAIT).await {
            Received::Text(ServerMessage::Resync { dropped }) => {
                assert!(dropped > 0);
                saw_resync = true;
            }
            Received::Binary(frame) if saw_resync => {
                let types = nal_types(&frame);
                assert!(
                    types.contains(&5) && types.starts_with(&[7, 8]),
                    "{types:?}"
                );
                break;
            }
            Received::Close(code) => panic!("slow viewer closed: {code:?}"),
            _ => {}
        }
    }
    let published = publisher.stop();
    assert!(published >= fast_seqs.len() as u64);
    server.stop().await;
}

#[tokio::test]
async fn memory_stays_bounded_with_many_viewers_that_never_read() {
    let hub = Hub::new(limits(40), None);
    let limits = hub.limits();
    let server = TestServer::start(hub.clone(), vec![]).await;
    let mut stuck = Vec::new();
    for _ in 0..30 {
        stuck.push(server.connect_small_buffer("").await);
    }
    let publisher = Publisher::start(hub.clone(), pi_sample_units(), 500.0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let snapshot = hub.snapshot();
    publisher.stop();
    hub.check_invariants();
    assert_eq!(snapshot.viewers.len(), 30);
    for viewer in &snapshot.viewers {
        assert!(viewer.queued_frames <= limits.viewer_queue_frames);
    }
    assert!(snapshot.gop_bytes <= limits.gop_cache_bytes);
    assert!(snapshot.viewer_drops > 0, "stuck viewers dropped frames");
    drop(stuck);
    server.stop().await;
}

#[tokio::test]
async fn viewers_beyond_the_limit_are_turned_away_with_503() {
    let hub = Hub::new(limits(2), None);
    let server = TestServer::start(hub.clone(), vec![]).await;
    let _a = server.connect("").await;
    let _b = server.connect("").await;
    let url = format!("ws://{}/ws", server.addr);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("expected 503, got {other:?}"),
    }
    server.stop().await;
}
