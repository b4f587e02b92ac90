//! Hostile and broken input through the file source, end to end with the real
//! binary: memory stays bounded, what is skipped is counted, and a stream that
//! cannot be decoded is reported `offline` with the reason on `/api/status`.
//!
//! Streams are made at test time with ffmpeg (libx264) and then damaged here; ffmpeg
//! also judges that the video around the damage still decodes.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use streamer::h264::split::MAX_NAL_SIZE;
use streamer::h264::{AccessUnitReader, NalType};
use support::process::StreamerProcess;
use tokio_tungstenite::tungstenite::Message;

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_streamer"))
}

/// Runs the streamer with `file` as its source.
fn start(file: &Path) -> StreamerProcess {
    let file = file.to_str().expect("UTF-8 path");
    StreamerProcess::start(
        &binary(),
        Path::new("/nonexistent/streamer.toml"),
        &[
            ("STREAMER_CAMERA__SOURCE", "file"),
            ("STREAMER_CAMERA__FILE", file),
            ("STREAMER_LOG__LEVEL", "info"),
        ],
    )
}

/// Runs a tool, panicking with its stderr when it fails; fails (not skips) when the
/// tool is missing.
fn run(tool: &str, args: &[&str]) -> Vec<u8> {
    let output = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {tool} ({e}): ffmpeg must be installed (apt-get install ffmpeg)")
    });
    assert!(
        output.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Two seconds of 320x240 H.264 at 25 fps with a keyframe every second, SPS and PPS
/// before each (libx264's Annex-B output).
fn encode(dir: &Path) -> Vec<u8> {
    let path = dir.join("base.h264");
    run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-nostdin",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-frames:v",
            "50",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-f",
            "h264",
            path.to_str().unwrap(),
        ],
    );
    std::fs::read(&path).expect("read the encoded stream")
}

/// The stream's NAL units with each one passed through `edit` (`None` drops it),
/// as Annex-B.
fn rewrite(data: &[u8], edit: impl Fn(NalType, &[u8]) -> Option<Vec<u8>>) -> Vec<u8> {
    let mut reader = AccessUnitReader::new();
    let mut units = Vec::new();
    reader.push(data, &mut units);
    reader.flush(&mut units);
    let mut out = Vec::new();
    for nal in units.iter().flat_map(|u| u.nals.iter()) {
        if let Some(bytes) = edit(nal.nal_type(), nal.data()) {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(&bytes);
        }
    }
    out
}

/// `VmHWM` (peak resident memory) of a process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kib * 1024
}

fn api_status(server: &StreamerProcess) -> Value {
    let (code, body) = server.get("/api/status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("status is JSON")
}

/// Polls `/api/status` until `condition` holds, up to `timeout`.
fn wait_for_status(
    server: &StreamerProcess,
    timeout: Duration,
    what: &str,
    condition: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let status = api_status(server);
        if condition(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} within {timeout:?}: {status}\nlog:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Peak memory allowed: the streamer's own (about 20 MiB in a debug build) plus a
/// few times the 8 MiB bound (the file source's reader and the ingest's each hold
/// at most one NAL unit and one access unit). Before the bound held, random input
/// took 100 MiB within 2 s and 216 MiB within 30 s.
const MEMORY_LIMIT: u64 = 20 * (1 << 20) + 5 * MAX_NAL_SIZE as u64;

/// The source's state and message stay `offline` with `needle` in the message for
/// a while (the supervisor retries meanwhile, and never claims `starting` again).
fn assert_stays_offline(server: &StreamerProcess, needle: &str) -> Value {
    let status = wait_for_status(server, Duration::from_secs(20), "offline", |s| {
        s["source"]["state"] == "offline"
    });
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let status = api_status(server);
        assert_eq!(status["source"]["state"], "offline", "{status}");
        let message = status["source"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
        assert_eq!(status["video"]["frames"], 0, "{status}");
        assert!(status["stream"].is_null(), "{status}");
        std::thread::sleep(Duration::from_millis(100));
    }
    status
}

#[test]
fn random_bytes_as_the_file_cost_bounded_memory_and_are_reported() {
    let server = start(Path::new("/dev/urandom"));
    let started = Instant::now();
    let mut peak = 0;
    while started.elapsed() < Duration::from_secs(5) {
        peak = peak.max(peak_rss(server.pid()));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        peak < MEMORY_LIMIT,
        "peak RSS {} MiB, limit {} MiB",
        peak >> 20,
        MEMORY_LIMIT >> 20
    );
    let status = assert_stays_offline(&server, "not H.264");
    let message = status["source"]["message"].as_str().unwrap();
    assert!(message.contains("MiB skipped"), "{message}");
    let skipped = status["video"]["input"]["skipped_bytes"].as_u64().unwrap();
    assert!(skipped >= 32 << 20, "{status}");
}

#[test]
fn oversize_nal_units_are_skipped_and_the_video_around_them_plays() {
    let dir = tempfile::tempdir().unwrap();
    let base = encode(dir.path());
    // The stream, a NAL unit over the bound, the stream again, another one.
    let mut oversize = vec![0, 0, 0, 1, 0x06];
    oversize.resize(5 + MAX_NAL_SIZE + 1, 0x5a);
    let mut data = base.clone();
    data.extend_from_slice(&oversize);
    data.extend_from_slice(&base);
    data.extend_from_slice(&oversize);
    let path = dir.path().join("oversize.h264");
    std::fs::write(&path, &data).unwrap();

    let server = start(&path);
    server.wait_for_ok("/healthz", Duration::from_secs(20));
    // Collect three seconds of video over the WebSocket: more than one pass, so
    // both oversize NAL units were read meanwhile.
    let address = server.address;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut peak = 0;
    let frames = runtime.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{address}/ws"))
            .await
            .expect("WebSocket connects");
        let mut frames = Vec::new();
        let until = Instant::now() + Duration::from_secs(4);
        while Instant::now() < until {
            peak = peak.max(peak_rss(server.pid()));
            match tokio::time::timeout(Duration::from_secs(3), ws.next()).await {
                Ok(Some(Ok(Message::Binary(data)))) => frames.push(data.to_vec()),
                Ok(Some(Ok(_))) => {}
                other => panic!("no video: {other:?}"),
            }
        }
        frames
    });
    assert!(frames.len() >= 40, "{} frames", frames.len());
    assert!(
        peak < MEMORY_LIMIT,
        "peak RSS {} MiB, limit {} MiB",
        peak >> 20,
        MEMORY_LIMIT >> 20
    );
    let status = api_status(&server);
    assert_eq!(status["source"]["state"], "live", "{status}");
    let input = &status["video"]["input"];
    assert!(
        input["oversize_nal_units"].as_u64().unwrap() >= 1,
        "{status}"
    );
    assert!(
        input["skipped_bytes"].as_u64().unwrap() > MAX_NAL_SIZE as u64,
        "{status}"
    );
    // ffmpeg decodes what the viewer got, every frame, without an error.
    let received = dir.path().join("received.h264");
    std::fs::write(&received, frames.concat()).unwrap();
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-f", "h264", "-i"])
        .arg(&received)
        .args(["-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg runs");
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && errors.is_empty(), "{errors}");
    let decoded = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count();
    assert_eq!(decoded, frames.len(), "every frame received decodes");
}

#[test]
fn a_file_without_parameter_sets_is_offline_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let data = rewrite(&encode(dir.path()), |kind, bytes| {
        (kind != NalType::Sps && kind != NalType::Pps).then(|| bytes.to_vec())
    });
    let path = dir.path().join("no-parameter-sets.h264");
    std::fs::write(&path, &data).unwrap();
    let server = start(&path);
    let status = assert_stays_offline(&server, "no SPS/PPS");
    assert!(
        status["video"]["undecodable"].as_u64().unwrap() > 0,
        "{status}"
    );
}

#[test]
fn a_file_whose_sps_does_not_parse_is_offline_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    // The SPS cut after profile_idc: its first fields are missing.
    let data = rewrite(&encode(dir.path()), |kind, bytes| {
        Some(if kind == NalType::Sps {
            bytes[..2].to_vec()
        } else {
            bytes.to_vec()
        })
    });
    let path = dir.path().join("broken-sps.h264");
    std::fs::write(&path, &data).unwrap();
    let server = start(&path);
    let status = assert_stays_offline(&server, "do not parse");
    let message = status["source"]["message"].as_str().unwrap();
    assert!(message.contains("SPS"), "{message}");
    assert!(
        status["video"]["input"]["bad_parameter_sets"]
            .as_u64()
            .unwrap()
            > 0,
        "{status}"
    );
}
