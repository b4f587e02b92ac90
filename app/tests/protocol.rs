//! Pins `docs/protocol.md` with real WebSocket clients against a server on a
//! loopback port, fed with real Raspberry Pi encoder output.

mod support;

use std::io::Write;
use std::time::Duration;

use futures_util::SinkExt;
use streamer::hub::{Hub, SourceState, SourceStatus};
use streamer::websocket::messages::ServerMessage;
use support::{
    access_units_in, collect_frames, ffmpeg_decode_errors, ffprobe_frames, limits, nal_types, next,
    pi_sample_units, send_text, Publisher, Received, TestServer,
};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);

fn live_status() -> SourceStatus {
    SourceStatus {
        kind: "file".into(),
        description: "the Pi sample".into(),
        state: SourceState::Live,
        message: None,
        restarts: 0,
    }
}

#[tokio::test]
async fn a_viewer_gets_hello_stream_state_and_a_keyframe_with_parameter_sets() {
    let hub = Hub::new(limits(10), Some(30.0));
    hub.set_source_status(live_status());
    let server = TestServer::start(hub.clone(), vec![]).await;
    let publisher = Publisher::start(hub.clone(), pi_sample_units(), 100.0);
    // Wait until the hub has a keyframe, so the viewer joins mid-stream.
    while hub.snapshot().frames < 5 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut client = server.connect("").await;
    match next(&mut client, WAIT).await {
        Received::Text(ServerMessage::Hello {
            protocol,
            server,
            config_errors,
            server_time_us,
        }) => {
            assert_eq!(protocol, 1);
            assert!(server.starts_with("streamer "), "{server}");
            assert!(config_errors.is_empty());
            assert!(server_time_us > 1_600_000_000_000_000);
        }
        other => panic!("first message must be hello, got {other:?}"),
    }
    let (frames, texts) = collect_frames(&mut client, 3, WAIT).await;
    let stream = texts.iter().find_map(|m| match m {
        ServerMessage::Stream {
            codec,
            width,
            height,
            fps,
        } => Some((codec.clone(), *width, *height, *fps)),
        _ => None,
    });
    let (codec, width, height, fps) = stream.expect("a stream message before the frames");
    assert_eq!(codec, "avc1.640028");
    assert_eq!((width, height), (1920, 1080));
    assert!(fps.is_some_and(|f| f > 0.0), "fps {fps:?}");
    assert!(texts.iter().any(|m| matches!(
        m,
        ServerMessage::State {
            state: SourceState::Live,
            ..
        }
    )));
    let join = texts.iter().find_map(|m| match m {
        ServerMessage::Join { frames } => Some(*frames),
        _ => None,
    });
    assert!(join.is_some_and(|n| n >= 1), "join announces the backlog");
    // The first frame starts with SPS, PPS, IDR, although the sample carries its
    // parameter sets only once, at the very start.
    let types = nal_types(&frames[0]);
    let first_slice = types.iter().position(|&t| t == 5).expect("an IDR slice");
    assert!(types[..first_slice].contains(&7) && types[..first_slice].contains(&8));
    publisher.stop();
    server.stop().await;
}

#[tokio::test]
async fn every_binary_message_is_one_access_unit_and_the_stream_decodes() {
    let hub = Hub::new(limits(10), None);
    let server = TestServer::start(hub.clone(), vec![]).await;
    let mut client = server.connect("").await;
    let publisher = Publisher::start(hub.clone(), pi_sample_units(), 200.0);
    let (frames, _) = collect_frames(&mut client, 100, WAIT).await;
    publisher.stop();
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(
            access_units_in(frame),
            1,
            "message {i} holds one access unit"
        );
        assert_eq!(&frame[..4], &[0, 0, 0, 1], "message {i} is Annex-B");
    }
    // ffmpeg as the independent judge: the received bytes decode without error and
    // give as many pictures as messages.
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    for frame in &frames {
        file.write_all(frame).expect("write");
    }
    file.flush().expect("flush");
    let (decoded, width, height) = ffprobe_frames(file.path());
    assert_eq!(decoded, 100);
    assert_eq!((width, height), (1920, 1080));
    let errors = ffmpeg_decode_errors(file.path());
    assert!(errors.is_empty(), "ffmpeg reported: {errors}");
    server.stop().await;
}

#[tokio::test]
async fn timing_messages_come_once_a_second_or_for_every_frame_on_request() {
    let hub = Hub::new(limits(10), None);
    let server = TestServer::start(hub.clone(), vec![]).await;
    let mut every = server.connect("?timing=frame").await;
    let mut default = server.connect("").await;
    let publisher = Publisher::start(hub.clone(), pi_sample_units(), 50.0);
    let (frames, texts) = collect_frames(&mut every, 40, WAIT).await;
    let timings: Vec<(u64, u64, u64, u64)> = texts
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Timing {
                seq,
                captured_us,
                published_us,
                sent_us,
                rtp_timestamp: None,
            } => Some((*seq, *captured_us, *published_us, *sent_us)),
            _ => None,
        })
        .collect();
    assert_eq!(timings.len(), frames.len());
    assert!(
        timings.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "consecutive"
    );
    assert!(
        timings.iter().all(|t| t.1 <= t.2 && t.2 <= t.3),
        "captured, then published, then sent: {timings:?}"
    );
    let (frames, texts) = collect_frames(&mut default, 40, WAIT).await;
    let default_timings = texts
        .iter()
        .filter(|m| matches!(m, ServerMessage::Timing { .. }))
        .count();
    // 40 frames at 50 fps last 0.8 s: one or two timing messages, not 40.
    assert!(
        (1..=3).contains(&default_timings),
        "{default_timings} timings for {} frames",
        frames.len()
    );
    publisher.stop();
    server.stop().await;
}

#[tokio::test]
async fn ping_is_answered_with_pong_and_unknown_messages_are_ignored() {
    let hub = Hub::new(limits(10), None);
    let server = TestServer::start(hub, vec![]).await;
    let mut client = server.connect("").await;
    send_text(&mut client, r#"{"type":"whatever","x":1}"#).await;
    send_text(&mut client, "not json at all").await;
    send_text(&mut client, r#"{"type":"ping","id":7,"client_time":123.5}"#).await;
    within(async {
        loop {
            match next(&mut client, WAIT).await {
                Received::Text(ServerMessage::Pong {
                    id,
                    client_time,
                    server_time_us,
                }) => {
                    assert_eq!(id, serde_json::json!(7));
                    assert_eq!(client_time, serde_json::json!(123.5));
                    assert!(server_time_us > 0);
                    break;
                }
                Received::Close(code) => panic!("closed: {code:?}"),
                _ => {}
            }
        }
    })
    .await;
    server.stop().await;
}

/// Runs a wait-for-some-message loop with an overall deadline: periodic messages
/// (`stats`) would otherwise keep `next` from ever timing out.
async fn within<T>(wait: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, wait)
        .await
        .expect("the expected message within the timeout")
}

async fn expect_close(client: &mut support::Client) -> Option<u16> {
    within(async {
        loop {
            if let Received::Close(code) = next(client, WAIT).await {
                return code;
            }
        }
    })
    .await
}

#[tokio::test]
async fn hostile_clients_are_closed_with_the_right_code_and_others_keep_watching() {
    let hub = Hub::new(limits(10), None);
    let server = TestServer::start(hub.clone(), vec![]).await;
    let mut good = server.connect("").await;
    let publisher = Publisher::start(hub.clone(), pi_sample_units(), 50.0);

    let mut binary = server.connect("").await;
    binary
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .expect("send");
    assert_eq!(expect_close(&mut binary).await, Some(1003));

    let mut big = server.connect("").await;
    let _ = big.send(Message::Text("x".repeat(100_000).into())).await;
    assert_eq!(expect_close(&mut big).await, Some(1009));

    let mut flood = server.connect("").await;
    for _ in 0..200 {
        if flood.send(Message::Text("{}".into())).await.is_err() {
            break;
        }
    }
    assert_eq!(expect_close(&mut flood).await, Some(1008));

    // The well-behaved viewer saw none of it.
    let (frames, _) = collect_frames(&mut good, 20, WAIT).await;
    assert_eq!(frames.len(), 20);
    publisher.stop();
    server.stop().await;
}

#[tokio::test]
async fn source_state_changes_reach_viewers() {
    let hub = Hub::new(limits(10), None);
    hub.set_source_status(live_status());
    let server = TestServer::start(hub.clone(), vec![]).await;
    let mut client = server.connect("").await;
    hub.set_source_status(SourceStatus {
        state: SourceState::Offline,
        message: Some("camera unplugged; retrying in 1.0 s".into()),
        ..live_status()
    });
    within(async {
        loop {
            if let Received::Text(ServerMessage::State {
                state: SourceState::Offline,
                message,
                source,
            }) = next(&mut client, WAIT).await
            {
                assert_eq!(source, "file");
                assert!(message.unwrap_or_default().contains("camera unplugged"));
                break;
            }
        }
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn configuration_errors_are_in_hello() {
    let hub = Hub::new(limits(10), None);
    let errors = vec!["streamer.toml: unknown key `camera.widht`".to_string()];
    let server = TestServer::start(hub, errors.clone()).await;
    let mut client = server.connect("").await;
    match next(&mut client, WAIT).await {
        Received::Text(ServerMessage::Hello { config_errors, .. }) => {
            assert_eq!(config_errors, errors)
        }
        other => panic!("expected hello, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_viewers_with_going_away() {
    let hub = Hub::new(limits(10), None);
    let server = TestServer::start(hub.clone(), vec![]).await;
    let mut client = server.connect("").await;
    assert!(matches!(next(&mut client, WAIT).await, Received::Text(_)));
    server.stop().await;
    assert_eq!(expect_close(&mut client).await, Some(1001));
}
