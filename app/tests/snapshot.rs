//! `GET /snapshot.jpg` end to end: the real binary with the test pattern, the JPEG
//! read by ffmpeg (an independent decoder) and compared with the stream's own
//! frame of the same number, decoded by ffmpeg from what a WebSocket viewer got.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use support::process::StreamerProcess;
use tokio_tungstenite::tungstenite::Message;

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_streamer"))
}

/// The test pattern's size: 360 rows are not a multiple of 16, so the decoder's
/// cropping counts.
const WIDTH: usize = 640;
const HEIGHT: usize = 360;

/// The streamer with `env` (no configuration file).
fn start(env: &[(&str, &str)]) -> StreamerProcess {
    StreamerProcess::start(&binary(), Path::new("/nonexistent/streamer.toml"), env)
}

/// The test pattern at [`WIDTH`]x[`HEIGHT`], `fps`, a keyframe every 50 frames.
fn start_test_pattern(fps: &str, env: &[(&str, &str)]) -> StreamerProcess {
    let mut all = vec![
        ("STREAMER_CAMERA__SOURCE", "test"),
        ("STREAMER_CAMERA__WIDTH", "640"),
        ("STREAMER_CAMERA__HEIGHT", "360"),
        ("STREAMER_CAMERA__FRAMERATE", fps),
        ("STREAMER_ENCODER__INTRA_PERIOD", "50"),
    ];
    all.extend_from_slice(env);
    start(&all)
}

/// An HTTP response: status, headers (names in lower case), body.
struct Response {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    fn seq(&self) -> u64 {
        self.header("x-frame-seq")
            .parse()
            .unwrap_or_else(|_| panic!("no X-Frame-Seq in {:?}", self.headers))
    }
}

/// One HTTP/1.1 request with `Connection: close`, the whole response read.
fn request(address: SocketAddr, method: &str, path: &str) -> Response {
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// Polls `/snapshot.jpg` until it answers 200.
fn first_snapshot(server: &StreamerProcess) -> Response {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = request(server.address, "GET", "/snapshot.jpg");
        if response.status == 200 {
            return response;
        }
        assert!(
            Instant::now() < deadline,
            "/snapshot.jpg answers {}: {}\nlog:\n{}",
            response.status,
            String::from_utf8_lossy(&response.body),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A counter of `/metrics`.
fn metric(server: &StreamerProcess, name: &str) -> f64 {
    let body = server.wait_for_ok("/metrics", Duration::from_secs(10));
    support::metric_value(&body, name)
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{body}"))
}

/// Runs ffmpeg or ffprobe; panics with its output when it fails.
fn run(program: &str, args: &[&str]) -> Vec<u8> {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Every picture of a file as planar 4:2:0, limited range, decoded by ffmpeg.
fn ffmpeg_pictures(file: &Path, format: Option<&str>) -> Vec<Vec<u8>> {
    let mut args = vec!["-v", "error"];
    if let Some(format) = format {
        args.extend(["-f", format]);
    }
    let file = file.to_str().unwrap();
    args.extend(["-i", file, "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"]);
    let raw = run("ffmpeg", &args);
    let size = WIDTH * HEIGHT * 3 / 2;
    assert_eq!(
        raw.len() % size,
        0,
        "{} bytes of {WIDTH}x{HEIGHT} pictures",
        raw.len()
    );
    raw.chunks(size).map(<[u8]>::to_vec).collect()
}

/// The largest difference between the means of co-located 8x8 luma blocks (and
/// 4x4 blocks of each chroma plane): JPEG's small errors average out, a moved box
/// or a changed digit does not.
fn block_difference(a: &[u8], b: &[u8]) -> f64 {
    let planes = [
        (0, WIDTH, HEIGHT, 8),
        (WIDTH * HEIGHT, WIDTH / 2, HEIGHT / 2, 4),
        (WIDTH * HEIGHT * 5 / 4, WIDTH / 2, HEIGHT / 2, 4),
    ];
    let mut worst = 0.0f64;
    for (offset, w, h, block) in planes {
        for by in (0..h - block + 1).step_by(block) {
            for bx in (0..w - block + 1).step_by(block) {
                let mut diff = 0i64;
                for y in by..by + block {
                    for x in bx..bx + block {
                        let i = offset + y * w + x;
                        diff += i64::from(a[i]) - i64::from(b[i]);
                    }
                }
                worst = worst.max((diff as f64 / (block * block) as f64).abs());
            }
        }
    }
    worst
}

/// A WebSocket viewer with `timing=frame`: the frames with their numbers, from the
/// join backlog's keyframe on, until the frame `until` names arrived.
async fn stream_frames(
    address: SocketAddr,
    mut until: tokio::sync::watch::Receiver<u64>,
) -> Vec<(u64, Vec<u8>)> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{address}/ws?timing=frame"))
        .await
        .expect("WebSocket");
    let mut frames: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut seq = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while frames
        .last()
        .is_none_or(|(s, _)| *s < *until.borrow_and_update())
    {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("frames in time")
            .expect("the stream goes on")
            .expect("a message");
        match message {
            Message::Text(text) => {
                let json: serde_json::Value = serde_json::from_str(&text).unwrap();
                if json["type"] == "timing" {
                    seq = json["seq"].as_u64();
                }
            }
            Message::Binary(data) => {
                frames.push((seq.take().expect("a timing message first"), data.to_vec()));
            }
            _ => {}
        }
    }
    frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_is_the_streams_picture_at_its_size() {
    let server = start_test_pattern("25", &[]);
    let first = first_snapshot(&server);
    // A viewer watches from its join keyframe on while the snapshot is taken, and
    // until the snapshot's frame has come.
    let (until, target) = tokio::sync::watch::channel(u64::MAX);
    let viewer = tokio::spawn(stream_frames(server.address, target));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let address = server.address;
    let snapshot = tokio::task::spawn_blocking(move || request(address, "GET", "/snapshot.jpg"))
        .await
        .unwrap();
    assert_eq!(snapshot.status, 200);
    let seq = snapshot.seq();
    assert!(seq > first.seq(), "a later request, a later frame");
    until.send(seq).unwrap();
    let frames = viewer.await.unwrap();
    assert!(
        frames.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "the viewer lost frames"
    );

    assert_eq!(snapshot.header("content-type"), "image/jpeg");
    assert_eq!(snapshot.header("cache-control"), "no-store");
    assert!(snapshot.header("last-modified").ends_with(" GMT"));
    let captured: u64 = snapshot.header("x-frame-captured-us").parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    assert!(
        now - captured < 10_000_000,
        "captured {captured}, now {now}"
    );

    let dir = tempfile::tempdir().unwrap();
    let jpeg = dir.path().join("snapshot.jpg");
    std::fs::write(&jpeg, &snapshot.body).unwrap();
    let probed = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
            jpeg.to_str().unwrap(),
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&probed).trim(),
        format!("mjpeg,{WIDTH},{HEIGHT}")
    );

    // The stream from the viewer's keyframe to the snapshot's frame, decoded by
    // ffmpeg: its last picture is the snapshot's.
    let keyframe = frames
        .iter()
        .position(|(_, data)| contains_idr(data))
        .expect("a keyframe");
    let stream = dir.path().join("stream.h264");
    let wanted: Vec<u8> = frames[keyframe..]
        .iter()
        .filter(|(s, _)| *s <= seq)
        .flat_map(|(_, data)| data.clone())
        .collect();
    std::fs::write(&stream, wanted).unwrap();
    let pictures = ffmpeg_pictures(&stream, Some("h264"));
    let ours = &ffmpeg_pictures(&jpeg, None)[0];
    let same = block_difference(ours, pictures.last().unwrap());
    assert!(same < 6.0, "the snapshot differs from frame {seq}: {same}");
    if pictures.len() >= 2 {
        let before = block_difference(ours, &pictures[pictures.len() - 2]);
        assert!(
            before > 20.0,
            "frame {} looks as much like the snapshot ({before}) as frame {seq} ({same})",
            seq - 1
        );
    }
}

/// Whether Annex-B bytes hold an IDR slice.
fn contains_idr(data: &[u8]) -> bool {
    data.windows(4)
        .any(|w| w[..3] == [0, 0, 1] && w[3] & 0x1f == 5)
}

#[test]
fn requests_at_once_share_one_decode_and_head_has_the_headers() {
    let server = start_test_pattern("25", &[]);
    first_snapshot(&server);
    let decodes_before = metric(&server, "streamer_snapshot_decodes_total");
    let served_before = metric(&server, "streamer_snapshots_total");
    let address = server.address;
    let requests: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(move || request(address, "GET", "/snapshot.jpg")))
        .collect();
    let responses: Vec<Response> = requests.into_iter().map(|r| r.join().unwrap()).collect();
    assert!(responses.iter().all(|r| r.status == 200));
    let frames: std::collections::BTreeSet<u64> = responses.iter().map(Response::seq).collect();
    let decodes = metric(&server, "streamer_snapshot_decodes_total") - decodes_before;
    // One decoding run per distinct frame answered, however many asked for it.
    assert_eq!(decodes as usize, frames.len(), "frames {frames:?}");
    assert!(
        frames.len() < 8,
        "8 requests at once decoded {frames:?} separately"
    );
    assert_eq!(
        metric(&server, "streamer_snapshots_total") - served_before,
        8.0
    );
    // Same frame, same bytes.
    for r in &responses {
        let twin = responses.iter().find(|o| o.seq() == r.seq()).unwrap();
        assert_eq!(r.body, twin.body);
    }

    let head = request(server.address, "HEAD", "/snapshot.jpg");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), "image/jpeg");
    assert!(head.header("content-length").parse::<usize>().unwrap() > 1000);
    assert!(head.body.is_empty());
}

#[test]
fn without_video_the_answer_is_503_with_a_reason() {
    let server = start(&[
        ("STREAMER_CAMERA__SOURCE", "file"),
        ("STREAMER_CAMERA__FILE", "/nonexistent/video.h264"),
    ]);
    let response = request(server.address, "GET", "/snapshot.jpg");
    assert_eq!(response.status, 503);
    assert_eq!(response.header("retry-after"), "2");
    assert!(response.header("content-type").starts_with("text/plain"));
    let body = String::from_utf8_lossy(&response.body);
    assert!(body.contains("no video"), "{body}");
    assert!(body.contains("file"), "the source is named: {body}");
    assert_eq!(metric(&server, "streamer_snapshot_failures_total"), 1.0);
    assert_eq!(metric(&server, "streamer_snapshot_decodes_total"), 0.0);
}

#[test]
fn an_on_demand_camera_is_started_for_a_snapshot() {
    let server = start_test_pattern("25", &[("STREAMER_CAMERA__ON_DEMAND", "true")]);
    let status = server.wait_for_ok("/api/status", Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server
        .wait_for_ok("/api/status", Duration::from_secs(10))
        .contains("\"state\":\"idle\"")
    {
        assert!(
            Instant::now() < deadline,
            "the source never went idle: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let response = request(server.address, "GET", "/snapshot.jpg");
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(&response.body[..2], [0xff, 0xd8]);
}
