//! `/api/status`, `/metrics`, `/healthz` and the static files.

mod support;

use std::time::Duration;

use streamer::hub::{Hub, SourceState, SourceStatus};
use support::{collect_frames, limits, pi_sample_units, Publisher, TestServer};

fn chunked_body(body: &str) -> String {
    // The server may answer with chunked transfer encoding; strip the chunk sizes.
    if body
        .lines()
        .next()
        .is_some_and(|l| u64::from_str_radix(l.trim(), 16).is_ok())
    {
        body.lines()
            .collect::<Vec<_>>()
            .chunks(2)
            .filter_map(|pair| pair.get(1).copied())
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        body.to_string()
    }
}

#[tokio::test]
async fn status_reports_source_stream_viewers_and_config_errors() {
    let hub = Hub::new(limits(10), None);
    hub.set_source_status(SourceStatus {
        kind: "file".into(),
        description: "file sample.h264".into(),
        state: SourceState::Live,
        message: None,
        restarts: 2,
    });
    let errors = vec!["streamer.toml: camera.width = 0: must be between 16 and 4096".to_string()];
    let server = TestServer::start(hub.clone(), errors.clone()).await;
    let publisher = Publisher::start(hub.clone(), pi_sample_units(), 100.0);
    let mut viewer = server.connect("").await;
    collect_frames(&mut viewer, 5, Duration::from_secs(10)).await;

    let (status, headers, body) = server.get("/api/status").await;
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.starts_with("application/json")));
    let json: serde_json::Value = serde_json::from_str(&chunked_body(&body)).expect("JSON");
    assert_eq!(json["source"]["kind"], "file");
    assert_eq!(json["source"]["state"], "live");
    assert_eq!(json["source"]["restarts"], 2);
    assert_eq!(json["stream"]["codec"], "avc1.640028");
    assert_eq!(json["stream"]["width"], 1920);
    assert_eq!(json["stream"]["height"], 1080);
    assert!(json["uptime_s"].as_f64().is_some());
    assert!(json["video"]["frames"].as_u64().unwrap_or(0) >= 5);
    let viewers = json["viewers"].as_array().expect("viewers");
    assert_eq!(viewers.len(), 1);
    assert!(viewers[0]["sent_frames"].as_u64().unwrap_or(0) >= 5);
    assert_eq!(viewers[0]["dropped_frames"], 0);
    assert_eq!(json["config"]["errors"][0], errors[0]);
    // The test server's device report comes from an empty root: not a Pi.
    assert_eq!(json["device"]["model"], serde_json::Value::Null);
    assert_eq!(json["device"]["notes"][0], "not a Raspberry Pi");
    publisher.stop();
    server.stop().await;
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let hub = Hub::new(limits(10), None);
    let server = TestServer::start(hub.clone(), vec!["bad".into()]).await;
    let publisher = Publisher::start(hub.clone(), pi_sample_units(), 100.0);
    while hub.snapshot().frames < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, headers, body) = server.get("/metrics").await;
    publisher.stop();
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.starts_with("text/plain; version=0.0.4")));
    let body = chunked_body(&body);
    for name in [
        "streamer_frames_total",
        "streamer_bytes_total",
        "streamer_viewers",
        "streamer_viewer_dropped_frames_total",
        "streamer_source_up",
        "streamer_config_errors",
    ] {
        assert!(
            body.contains(&format!("# TYPE {name} ")),
            "{name} missing:\n{body}"
        );
    }
    let frames = support::metric_value(&body, "streamer_frames_total").expect("frames value");
    assert!(frames >= 3.0);
    assert!(body.lines().any(|l| l == "streamer_config_errors 1"));
    server.stop().await;
}

#[tokio::test]
async fn healthz_is_ok_only_while_video_flows() {
    let hub = Hub::new(limits(10), None);
    let server = TestServer::start(hub.clone(), vec![]).await;
    let (status, _, body) = server.get("/healthz").await;
    assert_eq!(status, 503);
    assert!(body.contains("no video yet"), "{body}");
    let publisher = Publisher::start(hub.clone(), pi_sample_units(), 100.0);
    while hub.snapshot().frames < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, _, _) = server.get("/healthz").await;
    assert_eq!(status, 200);
    publisher.stop();
    server.stop().await;
}

#[tokio::test]
async fn the_player_is_served_without_caching() {
    let hub = Hub::new(limits(10), None);
    let server = TestServer::start(hub, vec![]).await;
    let (status, headers, body) = server.get("/").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<html") || body.contains("<!doctype html"),
        "{body}"
    );
    assert!(headers
        .iter()
        .any(|(k, v)| k == "cache-control" && v == "no-cache"));
    let (status, _, _) = server.get("/no-such-file.js").await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn a_missing_player_is_explained_not_blank() {
    let empty = tempfile::tempdir().expect("temp dir");
    let hub = Hub::new(limits(10), None);
    let server = TestServer::start_with_web_root(hub, vec![], empty.path().to_path_buf()).await;
    let (status, _, body) = server.get("/").await;
    assert_eq!(status, 404);
    assert!(body.contains("The player is missing"), "{body}");
    assert!(body.contains("server.web_root"));
    server.stop().await;
}
