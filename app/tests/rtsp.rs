//! RTSP against the real `streamer` binary, judged by clients nobody here wrote:
//! ffmpeg and ffprobe (over TCP and UDP), GStreamer's `rtspsrc` and retina (the
//! Rust RTSP client, over TCP and UDP), plus raw hostile clients: malformed,
//! oversized and garbage requests, a thousand SETUPs that never PLAY, a TCP
//! client that stops reading, a UDP client that vanishes. Meanwhile a good client
//! (retina) must keep playing without a lost packet. With a password
//! (`[access] password`), the same clients play with it (Digest, or Basic for a
//! hashed one) and get 401 without it; wrong passwords are braked per address.
//!
//! The source is the real Pi recording (`support::pi_sample`), replayed by the
//! file source: what a client received is compared slice by slice (NAL types 1
//! and 5) with the file, and must be one contiguous run of it, byte for byte,
//! starting at an IDR.
//!
//! Tests that send or receive UDP run in a loopback-only network namespace
//! (`support::netns`). TCP tests use 127.0.0.1 (and 127.0.0.2 for hostile
//! clients, so that they do not take the per-address places the good client and
//! the status requests need).
//!
//! VLC is not among the clients: Debian 12's VLC is built without live555
//! (`--disable-live555` in `cvlc -vv`'s configure line), so it cannot play RTSP
//! from any server; its `satip` and `realrtsp` modules are for SAT>IP and
//! RealMedia servers only. GStreamer's `rtspsrc` stands in as the other
//! independent player.

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use retina::client::{
    Credentials, InitialSequenceNumberPolicy, InitialTimestampPolicy, PlayOptions, SessionGroup,
    SessionOptions, SetupOptions, TcpTransportOptions, TeardownPolicy, Transport,
    UdpTransportOptions,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef, VideoParametersCodec};
use serde_json::Value;
use support::netns;
use support::process::StreamerProcess;

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_streamer"))
}

/// A second loopback address for hostile clients: the per-address connection
/// places of 127.0.0.1 stay free for the good client and `/api/status`.
const HOSTILE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Starts the streamer replaying the Pi sample, RTSP on any free TCP port and
/// UDP pair, plus `env`.
fn start(env: &[(&str, &str)]) -> StreamerProcess {
    let sample = support::pi_sample();
    let sample = sample.to_str().expect("a UTF-8 path").to_string();
    let mut all = vec![
        ("STREAMER_CAMERA__SOURCE", "file"),
        ("STREAMER_CAMERA__FILE", sample.as_str()),
        ("STREAMER_RTSP__PORT", "0"),
        ("STREAMER_RTSP__UDP_PORT", "0"),
        ("STREAMER_WEBRTC__ENABLED", "false"),
        ("STREAMER_LOG__LEVEL", "debug"),
    ];
    all.extend_from_slice(env);
    StreamerProcess::start(&binary(), Path::new("/nonexistent/streamer.toml"), &all)
}

/// The stream's URL as `/api/status` gives it (asked on 127.0.0.1).
fn rtsp_url(status: &Value) -> String {
    let url = status["rtsp"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("/api/status has no rtsp.url: {}", status["rtsp"]));
    let port = status["rtsp"]["port"].as_u64().expect("rtsp.port");
    assert_eq!(status["rtsp"]["enabled"], true, "{}", status["rtsp"]);
    assert_eq!(url, format!("rtsp://127.0.0.1:{port}/stream"));
    url.to_string()
}

/// The RTSP server's address.
fn rtsp_address(status: &Value) -> SocketAddr {
    let port = status["rtsp"]["port"].as_u64().expect("rtsp.port") as u16;
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The RTSP viewers of `/api/status`.
fn rtsp_viewers(status: &Value) -> Vec<Value> {
    status["viewers"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter(|v| v["transport"] == "rtsp")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `/api/status` until `done` holds, up to `timeout`; returns the status
/// then, or panics naming `what`.
fn wait_status(
    server: &StreamerProcess,
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let status = server.status();
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {timeout:?}; status: {status}\nlog tail:\n{}",
            tail(&server.log(), 40)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------
// The source's slices and the comparison.

/// The slice NAL units (types 1 and 5, header byte included) of the Pi sample,
/// in file order: what the file source publishes, pass after pass.
fn source_slices() -> Vec<Vec<u8>> {
    support::pi_sample_units()
        .iter()
        .flat_map(|unit| unit.nals.iter())
        .filter(|nal| is_slice(nal.data()))
        .map(|nal| nal.data().to_vec())
        .collect()
}

fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map(|b| b & 0x1f).unwrap_or(0)
}

fn is_slice(nal: &[u8]) -> bool {
    matches!(nal_type(nal), 1 | 5)
}

/// The NAL units of an Annex-B buffer.
fn annex_b_nals(data: &[u8]) -> Vec<Vec<u8>> {
    let mut reader = streamer::h264::AccessUnitReader::new();
    let mut units = Vec::new();
    reader.push(data, &mut units);
    reader.flush(&mut units);
    units
        .iter()
        .flat_map(|u| u.nals.iter().map(|n| n.data().to_vec()))
        .collect()
}

/// The NAL units of a buffer of 4-byte-length-prefixed NAL units (MP4 framing).
fn length_prefixed_nals(mut data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut nals = Vec::new();
    while !data.is_empty() {
        if data.len() < 4 {
            return Err(format!("{} stray bytes after the NAL units", data.len()));
        }
        let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if data.len() < 4 + len {
            return Err(format!(
                "a NAL unit of {len} bytes with {} left",
                data.len()
            ));
        }
        nals.push(data[4..4 + len].to_vec());
        data = &data[4 + len..];
    }
    Ok(nals)
}

/// Checks that `received` (slices in arrival order) starts with an IDR slice and
/// is one contiguous run of the looping `source`, byte for byte, of at least
/// `at_least` slices.
fn assert_contiguous_run(received: &[Vec<u8>], source: &[Vec<u8>], at_least: usize, who: &str) {
    assert!(
        received.len() >= at_least,
        "{who}: {} slices received, at least {at_least} expected",
        received.len()
    );
    let first = &received[0];
    assert_eq!(
        nal_type(first),
        5,
        "{who}: the first slice received is of type {}, not an IDR",
        nal_type(first)
    );
    let start = source
        .iter()
        .position(|s| s == first)
        .unwrap_or_else(|| panic!("{who}: the first slice received is not one of the file's"));
    for (i, slice) in received.iter().enumerate() {
        let expected = &source[(start + i) % source.len()];
        if slice != expected {
            let found = source.iter().position(|s| s == slice);
            panic!(
                "{who}: slice {i} of {} differs from the file's slice {} (type {}, {} bytes): \
                 received type {}, {} bytes, which is the file's slice {found:?} \
                 (a gap or a corrupted slice)",
                received.len(),
                (start + i) % source.len(),
                nal_type(expected),
                expected.len(),
                nal_type(slice),
                slice.len()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Child processes with a deadline.

/// Runs `command` with its output piped, killing it after `timeout`; returns its
/// output and whether it finished on its own.
fn run_for(command: &mut Command, timeout: Duration, what: &str) -> (Output, bool) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what} ({e}): {}", install_hint(what)));
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let mut finished = true;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            finished = false;
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    (output, finished)
}

fn install_hint(what: &str) -> &'static str {
    if what.starts_with("gst") {
        "GStreamer is needed as an independent RTSP client: apt-get install gstreamer1.0-tools \
         gstreamer1.0-plugins-good (make deps does)"
    } else {
        "ffmpeg is needed as an independent RTSP client: apt-get install ffmpeg (make deps does)"
    }
}

/// ffmpeg reads `frames` frames of `url` over `transport` (`tcp` or `udp`) and
/// copies them into an Annex-B file; returns its NAL units.
fn ffmpeg_receive(url: &str, transport: &str, frames: u32) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("received.h264");
    let (output, finished) = run_for(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-rtsp_transport", transport])
            .args(["-i", url, "-c", "copy", "-frames:v"])
            .arg(frames.to_string())
            .args(["-f", "h264", "-y"])
            .arg(&path),
        Duration::from_secs(60),
        "ffmpeg",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        finished && output.status.success(),
        "ffmpeg over {transport} did not finish within 60 s with {frames} frames \
         ({:?}): {stderr}",
        output.status
    );
    let data = std::fs::read(&path).expect("ffmpeg's output");
    let (decoded, width, height) = support::ffprobe_frames(&path);
    assert_eq!((width, height), (1920, 1080), "ffprobe of ffmpeg's copy");
    assert!(
        decoded >= u64::from(frames) - 1,
        "ffprobe decoded {decoded} of the {frames} frames ffmpeg copied over {transport}"
    );
    let errors = support::ffmpeg_decode_errors(&path);
    assert!(
        errors.is_empty(),
        "what ffmpeg received over {transport} has decode errors: {errors}"
    );
    annex_b_nals(&data)
}

// ---------------------------------------------------------------------------
// retina.

/// What retina received.
#[derive(Debug, Default)]
struct Retina {
    /// Frames: (RTP timestamp since RTP-Info's rtptime, random access point).
    frames: Vec<(i64, bool)>,
    /// Their slices, in order.
    slices: Vec<Vec<u8>>,
    /// Packets retina counted as lost.
    loss: u64,
    /// RTCP sender reports received.
    sender_reports: usize,
    /// The stream's parameters.
    parameters: Option<Parameters>,
    /// The frame rate in the SDP.
    framerate: Option<f32>,
}

/// H.264 parameters as retina read them.
#[derive(Debug, Clone)]
struct Parameters {
    /// Width and height.
    size: (u32, u32),
    /// RFC 6381 codec string.
    codec: String,
    sps: Vec<u8>,
    pps: Vec<u8>,
}

/// Strict play options: the RTP-Info `seq` and `rtptime` are required and taken
/// at their word. (Not `enforce_timestamps_with_max_jump_secs`: retina applies it
/// to sender reports too, and a frame captured before a sender report but sent
/// after it rightly has an earlier timestamp than the report, RFC 3550 6.4.1;
/// the frames' own timestamps are checked to increase instead.)
fn strict_play() -> PlayOptions {
    PlayOptions::default()
        .initial_seq(InitialSequenceNumberPolicy::Respect)
        .initial_timestamp(InitialTimestampPolicy::Require)
}

/// Plays `url` with retina over `transport` until `frames` frames and
/// `sender_reports` sender reports came (within `timeout`); the session is torn
/// down when this returns.
async fn retina_receive(
    url: &str,
    creds: Option<Credentials>,
    transport: Transport,
    frames: usize,
    sender_reports: usize,
    timeout: Duration,
) -> Result<Retina, String> {
    let url = url::Url::parse(url).map_err(|e| e.to_string())?;
    let group = Arc::new(SessionGroup::default());
    let options = SessionOptions::default()
        .session_group(group.clone())
        .teardown(TeardownPolicy::Always)
        .creds(creds);
    let mut session = retina::client::Session::describe(url, options)
        .await
        .map_err(|e| format!("DESCRIBE: {e}"))?;
    let mut got = Retina {
        framerate: session.streams().first().and_then(|s| s.framerate()),
        ..Retina::default()
    };
    let format = FrameFormat {
        h26x_framing: retina::codec::h26x::Framing::FourByteLength,
        parameter_set_insertion: retina::codec::ParameterSetInsertion::Never,
        ..FrameFormat::MP4
    };
    session
        .setup(
            0,
            SetupOptions::default()
                .transport(transport)
                .frame_format(format),
        )
        .await
        .map_err(|e| format!("SETUP: {e}"))?;
    let playing = session
        .play(strict_play())
        .await
        .map_err(|e| format!("PLAY: {e}"))?;
    let mut demuxed = playing.demuxed().map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + timeout;
    while got.frames.len() < frames || got.sender_reports < sender_reports {
        let item = tokio::time::timeout_at(deadline, demuxed.next())
            .await
            .map_err(|_| {
                format!(
                    "{} frames and {} sender reports within {timeout:?}",
                    got.frames.len(),
                    got.sender_reports
                )
            })?;
        match item {
            Some(Ok(CodecItem::VideoFrame(frame))) => {
                got.loss += u64::from(frame.loss());
                got.frames
                    .push((frame.timestamp().elapsed(), frame.is_random_access_point()));
                let nals = length_prefixed_nals(frame.data())?;
                got.slices.extend(nals.into_iter().filter(|n| is_slice(n)));
                if got.parameters.is_none() {
                    if let Some(ParametersRef::Video(v)) = demuxed.streams()[0].parameters() {
                        let (sps, pps) = match v.codec_params() {
                            VideoParametersCodec::H264 { sps, pps } => (sps.to_vec(), pps.to_vec()),
                            other => return Err(format!("not H.264: {other:?}")),
                        };
                        got.parameters = Some(Parameters {
                            size: v.pixel_dimensions(),
                            codec: v.rfc6381_codec().to_string(),
                            sps,
                            pps,
                        });
                    }
                }
            }
            Some(Ok(CodecItem::Rtcp(rtcp))) => {
                if rtcp.rtp_timestamp().is_some() {
                    got.sender_reports += 1;
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("after {} frames: {e}", got.frames.len())),
            None => {
                return Err(format!(
                    "the stream ended after {} frames",
                    got.frames.len()
                ))
            }
        }
    }
    drop(demuxed);
    // TEARDOWN goes out in the background; wait for it (bounded).
    let _ = tokio::time::timeout(Duration::from_secs(5), group.await_teardown()).await;
    Ok(got)
}

/// Checks what retina received of the Pi sample against `/api/status` and the
/// file.
fn assert_retina_good(got: &Retina, status: &Value, at_least: usize, who: &str) {
    assert_eq!(got.loss, 0, "{who}: retina counted lost packets");
    let (first_ts, first_key) = got.frames[0];
    assert!(first_key, "{who}: the first frame is not a keyframe");
    let mut last = first_ts;
    for (i, (ts, _)) in got.frames.iter().enumerate().skip(1) {
        assert!(
            *ts > last,
            "{who}: frame {i}'s timestamp {ts} does not follow {last}"
        );
        last = *ts;
    }
    let Parameters {
        size: (width, height),
        codec,
        sps,
        pps,
    } = got
        .parameters
        .clone()
        .unwrap_or_else(|| panic!("{who}: retina has no H.264 parameters"));
    let stream = &status["stream"];
    assert_eq!(
        (u64::from(width), u64::from(height)),
        (
            stream["width"].as_u64().unwrap(),
            stream["height"].as_u64().unwrap()
        ),
        "{who}: the size retina read from the SPS"
    );
    assert_eq!(
        codec.to_ascii_lowercase(),
        stream["codec"].as_str().unwrap().to_ascii_lowercase(),
        "{who}: the codec retina read"
    );
    let units = support::pi_sample_units();
    let first_of = |t: u8| {
        units[0]
            .nals
            .iter()
            .find(|n| nal_type(n.data()) == t)
            .map(|n| n.data().to_vec())
            .unwrap()
    };
    assert!(sps == first_of(7), "{who}: retina's SPS is not the file's");
    assert!(pps == first_of(8), "{who}: retina's PPS is not the file's");
    if let Some(fps) = stream["fps"].as_f64() {
        let sdp = got.framerate.map(f64::from);
        assert!(
            sdp.is_some_and(|f| (f - fps).abs() < 0.01),
            "{who}: the SDP's frame rate {sdp:?} is not the status's {fps}"
        );
    }
    assert_contiguous_run(&got.slices, &source_slices(), at_least, who);
}

/// A retina client playing over TCP in the background until dropped: the "good
/// client" that hostile clients must not disturb.
struct GoodClient {
    frames: Arc<AtomicU64>,
    loss: Arc<AtomicU64>,
    error: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GoodClient {
    fn start(url: &str, transport: Transport) -> Self {
        let frames = Arc::new(AtomicU64::new(0));
        let loss = Arc::new(AtomicU64::new(0));
        let error = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, l, e, s) = (frames.clone(), loss.clone(), error.clone(), stop.clone());
        let url = url.to_string();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let result = runtime.block_on(async move {
                let url = url::Url::parse(&url).map_err(|e| e.to_string())?;
                let group = Arc::new(SessionGroup::default());
                let options = SessionOptions::default()
                    .session_group(group.clone())
                    .teardown(TeardownPolicy::Always);
                let mut session = retina::client::Session::describe(url, options)
                    .await
                    .map_err(|e| format!("DESCRIBE: {e}"))?;
                session
                    .setup(0, SetupOptions::default().transport(transport))
                    .await
                    .map_err(|e| format!("SETUP: {e}"))?;
                let mut demuxed = session
                    .play(strict_play())
                    .await
                    .map_err(|e| format!("PLAY: {e}"))?
                    .demuxed()
                    .map_err(|e| e.to_string())?;
                while !s.load(Ordering::Relaxed) {
                    let item = match tokio::time::timeout(
                        Duration::from_millis(500),
                        demuxed.next(),
                    )
                    .await
                    {
                        Err(_) => continue,
                        Ok(item) => item,
                    };
                    match item {
                        Some(Ok(CodecItem::VideoFrame(frame))) => {
                            l.fetch_add(u64::from(frame.loss()), Ordering::Relaxed);
                            f.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e.to_string()),
                        None => return Err("the stream ended".to_string()),
                    }
                }
                drop(demuxed);
                let _ = tokio::time::timeout(Duration::from_secs(5), group.await_teardown()).await;
                Ok::<(), String>(())
            });
            if let Err(message) = result {
                *e.lock().unwrap() = Some(message);
            }
        });
        GoodClient {
            frames,
            loss,
            error,
            stop,
            thread: Some(thread),
        }
    }

    /// Panics unless the client is still receiving: `more` new frames within
    /// `within`, no error and no lost packet.
    fn assert_playing(&self, more: u64, within: Duration, when: &str) {
        let before = self.frames.load(Ordering::Relaxed);
        let deadline = Instant::now() + within;
        while self.frames.load(Ordering::Relaxed) < before + more {
            if let Some(error) = self.error.lock().unwrap().clone() {
                panic!("the good client failed {when}: {error}");
            }
            assert!(
                Instant::now() < deadline,
                "the good client received {} frames in {within:?} {when}, {more} expected",
                self.frames.load(Ordering::Relaxed) - before
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            self.loss.load(Ordering::Relaxed),
            0,
            "the good client lost packets {when}"
        );
    }

    /// Stops the client (TEARDOWN).
    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(error) = self.error.lock().unwrap().clone() {
            panic!("the good client failed: {error}");
        }
    }
}

impl Drop for GoodClient {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------
// A raw RTSP client, for what well-behaved clients never send.

/// A response.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn cseq(&self) -> Option<u32> {
        self.header("CSeq").and_then(|v| v.parse().ok())
    }

    fn session(&self) -> String {
        let header = self
            .header("Session")
            .unwrap_or_else(|| panic!("no Session header: {self:?}"));
        header.split(';').next().unwrap().trim().to_string()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A blocking RTSP connection that writes what it is told.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Interleaved frames skipped while looking for a response: (channel, length).
    interleaved: Vec<(u8, usize)>,
}

impl Raw {
    fn connect(server: SocketAddr) -> Raw {
        Self::connect_from(Ipv4Addr::LOCALHOST, server, None)
    }

    /// Connects from `local` (a loopback address), with a receive buffer of
    /// `recv_buffer` bytes when given (set before connecting, so that the window
    /// stays small).
    fn connect_from(local: Ipv4Addr, server: SocketAddr, recv_buffer: Option<usize>) -> Raw {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        socket
            .bind(&SocketAddr::new(IpAddr::V4(local), 0).into())
            .expect("bind a loopback address");
        socket
            .connect_timeout(&server.into(), Duration::from_secs(5))
            .expect("connect");
        let stream: TcpStream = socket.into();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Raw {
            stream,
            buf: Vec::new(),
            interleaved: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write the request");
    }

    /// Reads more bytes; false on EOF or a reset.
    fn fill(&mut self, deadline: Instant) -> Result<bool, String> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() >= deadline {
                        return Err("timed out".into());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Ok(false),
            }
        }
    }

    /// Takes one interleaved frame off the front of the buffer, if one is whole
    /// there.
    fn take_interleaved(&mut self) -> Option<(u8, Vec<u8>)> {
        if self.buf.len() < 4 || self.buf[0] != b'$' {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
        if self.buf.len() < 4 + len {
            return None;
        }
        let channel = self.buf[1];
        let data = self.buf[4..4 + len].to_vec();
        self.buf.drain(..4 + len);
        Some((channel, data))
    }

    /// The next response (interleaved frames before it are skipped and noted),
    /// or why there is none within `timeout`.
    fn try_response(&mut self, timeout: Duration) -> Result<Response, String> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some((channel, data)) = self.take_interleaved() {
                self.interleaved.push((channel, data.len()));
            }
            if !self.buf.is_empty() && self.buf[0] != b'$' {
                if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                    let mut lines = head.split("\r\n");
                    let status_line = lines.next().unwrap_or("");
                    let mut parts = status_line.split(' ');
                    let version = parts.next().unwrap_or("");
                    if version != "RTSP/1.0" {
                        return Err(format!("not an RTSP response: {status_line:?}"));
                    }
                    let status = parts
                        .next()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| format!("no status: {status_line:?}"))?;
                    let headers: Vec<(String, String)> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .collect();
                    let length: usize = headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    if self.buf.len() >= end + 4 + length {
                        let body = self.buf[end + 4..end + 4 + length].to_vec();
                        self.buf.drain(..end + 4 + length);
                        return Ok(Response {
                            status,
                            headers,
                            body,
                        });
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err("timed out".into());
            }
            match self.fill(deadline) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(format!(
                        "the server closed the connection ({} bytes unread: {:?})",
                        self.buf.len(),
                        String::from_utf8_lossy(&self.buf[..self.buf.len().min(200)])
                    ))
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn response(&mut self) -> Response {
        self.try_response(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("no response: {e}"))
    }

    /// Sends a request and reads its response.
    fn request(
        &mut self,
        method: &str,
        uri: &str,
        cseq: u32,
        headers: &[(&str, &str)],
    ) -> Response {
        self.send(request(method, uri, cseq, headers).as_bytes());
        let response = self.response();
        assert_eq!(
            response.cseq(),
            Some(cseq),
            "{method} answered with another CSeq: {response:?}"
        );
        response
    }

    /// The next interleaved frame within `timeout`.
    fn interleaved_frame(&mut self, timeout: Duration) -> Option<(u8, Vec<u8>)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(frame) = self.take_interleaved() {
                return Some(frame);
            }
            if !self.buf.is_empty() && self.buf[0] != b'$' {
                panic!(
                    "expected interleaved data, got {:?}",
                    String::from_utf8_lossy(&self.buf[..self.buf.len().min(100)])
                );
            }
            if !matches!(self.fill(deadline), Ok(true)) {
                return None;
            }
        }
    }

    /// Whether the server closes the connection within `timeout` (what it sends
    /// meanwhile is read and dropped).
    fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            self.buf.clear();
            if Instant::now() >= deadline {
                return false;
            }
            match self.fill(deadline) {
                Ok(true) => {}
                Ok(false) => return true,
                Err(_) => return false,
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A request's text.
fn request(method: &str, uri: &str, cseq: u32, headers: &[(&str, &str)]) -> String {
    let mut text = format!("{method} {uri} RTSP/1.0\r\nCSeq: {cseq}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text
}

const TCP_TRANSPORT: &str = "RTP/AVP/TCP;unicast;interleaved=0-1";

/// SETUP over TCP and PLAY on `raw`; returns the session id.
fn setup_and_play_tcp(raw: &mut Raw, url: &str) -> String {
    let setup = raw.request(
        "SETUP",
        &format!("{url}/trackID=0"),
        1,
        &[("Transport", TCP_TRANSPORT)],
    );
    assert_eq!(setup.status, 200, "SETUP: {setup:?}");
    let session = setup.session();
    let play = raw.request("PLAY", url, 2, &[("Session", &session)]);
    assert_eq!(play.status, 200, "PLAY: {play:?}");
    session
}

// ---------------------------------------------------------------------------
// The tests.

/// ffmpeg over TCP: 130 frames (past the end of the looping file) copied as they
/// came are the file's slices, byte for byte, none lost, from an IDR on; ffprobe
/// reads the codec, profile and size `/api/status` gives.
#[test]
fn ffmpeg_over_tcp_receives_the_files_slices() {
    let server = start(&[]);
    let status = server.wait_live();
    let url = rtsp_url(&status);

    let (output, finished) = run_for(
        Command::new("ffprobe")
            .args(["-v", "error", "-rtsp_transport", "tcp"])
            .args(["-show_entries", "stream=codec_name,profile,width,height"])
            .args(["-of", "json", &url]),
        Duration::from_secs(30),
        "ffprobe",
    );
    assert!(
        finished && output.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let probed: Value = serde_json::from_slice(&output.stdout).expect("ffprobe's JSON");
    let stream = &probed["streams"][0];
    assert_eq!(stream["codec_name"], "h264", "{probed}");
    assert_eq!(stream["width"], status["stream"]["width"], "{probed}");
    assert_eq!(stream["height"], status["stream"]["height"], "{probed}");
    let codec = status["stream"]["codec"].as_str().unwrap();
    assert!(
        codec.starts_with("avc1.64"),
        "the Pi sample is High: {codec}"
    );
    assert_eq!(stream["profile"], "High", "{probed}");

    let nals = ffmpeg_receive(&url, "tcp", 130);
    let slices: Vec<Vec<u8>> = nals.iter().filter(|n| is_slice(n)).cloned().collect();
    assert_contiguous_run(&slices, &source_slices(), 130, "ffmpeg over TCP");
    // ffmpeg writes the SDP's parameter sets first; every IDR after them has the
    // SPS and PPS in band before it (the file has them only once).
    let idrs = nals.iter().filter(|n| nal_type(n) == 5).count();
    let with_sets = nals
        .windows(3)
        .filter(|w| nal_type(&w[0]) == 7 && nal_type(&w[1]) == 8 && nal_type(&w[2]) == 5)
        .count();
    assert!(idrs >= 2, "130 frames of the file hold at least 2 IDRs");
    assert_eq!(with_sets, idrs, "an IDR without SPS and PPS before it");
}

/// ffmpeg over UDP (in a loopback-only namespace): the same slices, none lost,
/// from an IDR on.
#[test]
fn ffmpeg_over_udp_receives_the_files_slices() {
    if !netns::isolated("ffmpeg_over_udp_receives_the_files_slices") {
        return;
    }
    let server = start(&[]);
    let status = server.wait_live();
    let url = rtsp_url(&status);
    let nals = ffmpeg_receive(&url, "udp", 130);
    let slices: Vec<Vec<u8>> = nals.into_iter().filter(|n| is_slice(n)).collect();
    assert_contiguous_run(&slices, &source_slices(), 130, "ffmpeg over UDP");
}

/// GStreamer's rtspsrc (over TCP) plays the stream: what it depayloaded decodes
/// at the stream's size, is the file's slices from an IDR on, and the server
/// lists it as an RTSP viewer meanwhile.
#[test]
fn gstreamer_plays_the_stream() {
    let server = start(&[]);
    let status = server.wait_live();
    let url = rtsp_url(&status);
    for element in ["rtspsrc", "rtph264depay"] {
        let (found, _) = run_for(
            Command::new("gst-inspect-1.0").arg(element),
            Duration::from_secs(30),
            "gst-inspect-1.0",
        );
        assert!(
            found.status.success(),
            "GStreamer has no {element}: {}",
            install_hint("gst")
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gst.h264");
    let child = Command::new("gst-launch-1.0")
        .args(["-q", "-e", "rtspsrc"])
        .arg(format!("location={url}"))
        .args(["protocols=tcp", "!", "rtph264depay", "!"])
        .args(["video/x-h264,stream-format=byte-stream,alignment=au", "!"])
        .arg("filesink")
        .arg(format!("location={}", path.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run gst-launch-1.0 ({e}): {}", install_hint("gst")));
    let playing = wait_status(&server, Duration::from_secs(20), "GStreamer plays", |s| {
        rtsp_viewers(s)
            .iter()
            .any(|v| v["sent_frames"].as_u64().unwrap_or(0) > 75)
    });
    assert_eq!(playing["rtsp"]["sessions"], 1, "{}", playing["rtsp"]);
    // -e: an interrupt ends the pipeline with an end of stream, flushing the file.
    let errors = stop_gst_launch(child);
    let data = std::fs::read(&path).unwrap_or_default();
    assert!(!data.is_empty(), "GStreamer wrote nothing: {errors}");
    let (decoded, width, height) = support::ffprobe_frames(&path);
    assert_eq!((width, height), (1920, 1080));
    assert!(
        decoded >= 75,
        "ffprobe decoded {decoded} frames of GStreamer's"
    );
    let slices: Vec<Vec<u8>> = annex_b_nals(&data)
        .into_iter()
        .filter(|n| is_slice(n))
        .collect();
    assert_contiguous_run(&slices, &source_slices(), 75, "GStreamer");
    wait_status(
        &server,
        Duration::from_secs(10),
        "GStreamer's session ends",
        |s| rtsp_viewers(s).is_empty(),
    );
}

/// retina over TCP, strict about RTP-Info: 150 frames and a sender report; the
/// first frame a keyframe, timestamps increasing, the SDP's parameters those of
/// the file and of `/api/status`, no packet lost, the file's slices in order;
/// `/api/status` and `/metrics` count the viewer while it plays and not after
/// its TEARDOWN.
#[test]
fn retina_over_tcp_receives_the_stream() {
    let server = start(&[]);
    let status = server.wait_live();
    let url = rtsp_url(&status);
    let runtime = runtime();
    let task = runtime.spawn({
        let url = url.clone();
        async move {
            retina_receive(
                &url,
                None,
                Transport::Tcp(TcpTransportOptions::default()),
                150,
                1,
                Duration::from_secs(40),
            )
            .await
        }
    });
    let during = wait_status(&server, Duration::from_secs(20), "retina plays", |s| {
        rtsp_viewers(s).len() == 1
    });
    assert_eq!(during["rtsp"]["sessions"], 1);
    let (_, metrics) = server.get("/metrics");
    assert!(
        metrics.contains("streamer_viewers_by_transport{transport=\"rtsp\"} 1"),
        "/metrics:\n{metrics}"
    );
    let got = runtime
        .block_on(task)
        .unwrap()
        .unwrap_or_else(|e| panic!("retina over TCP: {e}\nlog:\n{}", tail(&server.log(), 40)));
    assert!(got.sender_reports >= 1);
    assert_retina_good(&got, &status, 150, "retina over TCP");
    wait_status(
        &server,
        Duration::from_secs(10),
        "the TEARDOWN ends the viewer",
        |s| rtsp_viewers(s).is_empty() && s["rtsp"]["sessions"] == 0,
    );
}

/// retina over UDP (in a loopback-only namespace): the same checks.
#[test]
fn retina_over_udp_receives_the_stream() {
    if !netns::isolated("retina_over_udp_receives_the_stream") {
        return;
    }
    let server = start(&[]);
    let status = server.wait_live();
    let url = rtsp_url(&status);
    let got = runtime()
        .block_on(retina_receive(
            &url,
            None,
            Transport::Udp(UdpTransportOptions::default()),
            150,
            1,
            Duration::from_secs(40),
        ))
        .unwrap_or_else(|e| panic!("retina over UDP: {e}\nlog:\n{}", tail(&server.log(), 40)));
    assert_retina_good(&got, &status, 150, "retina over UDP");
    wait_status(
        &server,
        Duration::from_secs(10),
        "the TEARDOWN ends the viewer",
        |s| rtsp_viewers(s).is_empty(),
    );
}

/// OPTIONS lists the methods; unknown methods get 501 and known but unserved
/// ones 405, both with `Public`; requests written at once are answered in order;
/// a second connection cannot touch the first's session (454), which plays on;
/// SETUP while playing and PLAY without SETUP get 455.
#[test]
fn methods_pipelining_and_foreign_sessions() {
    let server = start(&[]);
    let status = server.wait_live();
    let url = rtsp_url(&status);
    let address = rtsp_address(&status);
    let mut raw = Raw::connect(address);

    let options = raw.request("OPTIONS", "*", 1, &[]);
    assert_eq!(options.status, 200, "{options:?}");
    let public: Vec<&str> = options
        .header("Public")
        .expect("OPTIONS has Public")
        .split(',')
        .map(str::trim)
        .collect();
    for method in [
        "OPTIONS",
        "DESCRIBE",
        "SETUP",
        "PLAY",
        "TEARDOWN",
        "GET_PARAMETER",
        "SET_PARAMETER",
    ] {
        assert!(
            public.contains(&method),
            "Public lacks {method}: {public:?}"
        );
    }
    for (method, expected) in [
        ("FROBNICATE", 501),
        ("RECORD", 405),
        ("ANNOUNCE", 405),
        ("PAUSE", 405),
    ] {
        let response = raw.request(method, &url, 2, &[]);
        assert_eq!(response.status, expected, "{method}: {response:?}");
        assert!(
            response
                .header("Public")
                .is_some_and(|p| p.contains("DESCRIBE")),
            "{method}'s answer has no Public: {response:?}"
        );
    }
    let play_first = raw.request("PLAY", &url, 3, &[("Session", "12345678")]);
    assert_eq!(
        play_first.status, 454,
        "PLAY naming no session here: {play_first:?}"
    );

    // Four requests in one write, answered in order.
    let mut pipelined = String::new();
    pipelined.push_str(&request("OPTIONS", &url, 10, &[]));
    pipelined.push_str(&request(
        "DESCRIBE",
        &url,
        11,
        &[("Accept", "application/sdp")],
    ));
    pipelined.push_str(&request(
        "SETUP",
        &format!("{url}/trackID=0"),
        12,
        &[("Transport", TCP_TRANSPORT)],
    ));
    pipelined.push_str(&request("GET_PARAMETER", &url, 13, &[]));
    raw.send(pipelined.as_bytes());
    let answers: Vec<Response> = (0..4).map(|_| raw.response()).collect();
    let cseqs: Vec<Option<u32>> = answers.iter().map(Response::cseq).collect();
    assert_eq!(
        cseqs,
        [Some(10), Some(11), Some(12), Some(13)],
        "{answers:?}"
    );
    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    let sdp = answers[1].text();
    assert_eq!(answers[1].header("Content-Type"), Some("application/sdp"));
    for needle in [
        "m=video 0 RTP/AVP 96",
        "a=rtpmap:96 H264/90000",
        "packetization-mode=1",
        "sprop-parameter-sets=",
        "profile-level-id=640028",
        "a=control:",
    ] {
        assert!(sdp.contains(needle), "the SDP lacks {needle}:\n{sdp}");
    }
    let session = answers[2].session();
    let timeout = answers[2].header("Session").unwrap().to_string();
    assert!(timeout.ends_with(";timeout=60"), "Session: {timeout}");
    assert!(
        answers[2]
            .header("Transport")
            .is_some_and(|t| t.contains("interleaved=0-1")),
        "{:?}",
        answers[2]
    );

    let no_setup = Raw::connect(address).request("PLAY", &url, 1, &[]);
    assert_eq!(no_setup.status, 455, "PLAY without SETUP: {no_setup:?}");

    let play = raw.request("PLAY", &url, 14, &[("Session", &session)]);
    assert_eq!(play.status, 200, "{play:?}");
    let rtp_info = play.header("RTP-Info").expect("RTP-Info").to_string();
    assert!(
        rtp_info.contains("trackID=0")
            && rtp_info.contains("seq=")
            && rtp_info.contains("rtptime="),
        "RTP-Info: {rtp_info}"
    );
    let (channel, packet) = raw
        .interleaved_frame(Duration::from_secs(5))
        .expect("RTP after PLAY");
    assert_eq!(channel, 0, "RTP on channel 0");
    assert_eq!(packet[0] >> 6, 2, "RTP version 2");
    assert_eq!(packet[1] & 0x7f, 96, "payload type 96");
    let seq = u16::from_be_bytes([packet[2], packet[3]]);
    assert!(
        rtp_info.contains(&format!("seq={seq};")),
        "{rtp_info} vs first seq {seq}"
    );

    // Another connection names this session: 454, and this one plays on.
    let mut other = Raw::connect(address);
    for (method, cseq) in [("TEARDOWN", 1), ("PLAY", 2), ("GET_PARAMETER", 3)] {
        let answer = other.request(method, &url, cseq, &[("Session", &session)]);
        assert_eq!(
            answer.status, 454,
            "{method} with another connection's session: {answer:?}"
        );
    }
    drop(other);
    let setup_again = raw.request(
        "SETUP",
        &format!("{url}/trackID=0"),
        15,
        &[("Transport", TCP_TRANSPORT), ("Session", &session)],
    );
    assert_eq!(
        setup_again.status, 455,
        "SETUP while playing: {setup_again:?}"
    );
    let before = raw.interleaved.len();
    let keepalive = raw.request("GET_PARAMETER", &url, 16, &[("Session", &session)]);
    assert_eq!(keepalive.status, 200, "{keepalive:?}");
    std::thread::sleep(Duration::from_millis(500));
    let _ = raw.request("OPTIONS", "*", 17, &[]);
    assert!(
        raw.interleaved.len() > before,
        "the session stopped playing after the foreign TEARDOWN"
    );
    assert_eq!(rtsp_viewers(&server.status()).len(), 1);

    // A second client over TCP ends its session with an RTCP BYE on its RTCP
    // channel: the server closes the connection (the client is leaving).
    let mut leaving = Raw::connect(address);
    setup_and_play_tcp(&mut leaving, &url);
    assert_eq!(rtsp_viewers(&server.status()).len(), 2);
    let mut compound = RECEIVER_REPORT.to_vec();
    compound.extend_from_slice(&BYE);
    let mut frame = vec![b'$', 1, 0, compound.len() as u8];
    frame.extend_from_slice(&compound);
    leaving.send(&frame);
    assert!(
        leaving.closed_within(Duration::from_secs(5)),
        "the connection stayed open after an interleaved RTCP BYE"
    );
    wait_status(
        &server,
        Duration::from_secs(5),
        "the BYE ends the viewer",
        |s| rtsp_viewers(s).len() == 1,
    );

    let teardown = raw.request("TEARDOWN", &url, 18, &[("Session", &session)]);
    assert_eq!(teardown.status, 200, "{teardown:?}");
    wait_status(
        &server,
        Duration::from_secs(10),
        "TEARDOWN ends the viewer",
        |s| rtsp_viewers(s).is_empty(),
    );
}

/// RTSP sessions take viewer places (`server.max_viewers` = 2): a third PLAY is
/// answered 503 with `Retry-After` and plays once a place is free; RTP comes on
/// the interleaved channels the client asked for.
#[test]
fn rtsp_sessions_count_in_max_viewers() {
    let server = start(&[("STREAMER_SERVER__MAX_VIEWERS", "2")]);
    let status = server.wait_live();
    let url = rtsp_url(&status);
    let address = rtsp_address(&status);
    let mut first = Raw::connect(address);
    let first_session = setup_and_play_tcp(&mut first, &url);
    let mut second = Raw::connect(address);
    setup_and_play_tcp(&mut second, &url);

    let mut third = Raw::connect(address);
    let setup = third.request(
        "SETUP",
        &format!("{url}/trackID=0"),
        1,
        &[("Transport", "RTP/AVP/TCP;unicast;interleaved=6-7")],
    );
    assert_eq!(setup.status, 200, "SETUP takes no place: {setup:?}");
    let session = setup.session();
    let refused = third.request("PLAY", &url, 2, &[("Session", &session)]);
    assert_eq!(refused.status, 503, "a third viewer of 2: {refused:?}");
    assert!(refused.header("Retry-After").is_some(), "{refused:?}");
    assert!(
        refused.text().contains("too many viewers"),
        "{}",
        refused.text()
    );
    let full = server.status();
    assert_eq!(rtsp_viewers(&full).len(), 2, "{full}");

    let teardown = first.request("TEARDOWN", &url, 3, &[("Session", &first_session)]);
    assert_eq!(teardown.status, 200, "{teardown:?}");
    let play = third.request("PLAY", &url, 3, &[("Session", &session)]);
    assert_eq!(play.status, 200, "PLAY once a place is free: {play:?}");
    let (channel, packet) = third
        .interleaved_frame(Duration::from_secs(5))
        .expect("RTP after PLAY");
    assert_eq!(channel, 6, "RTP on the channel asked for");
    assert_eq!(packet[1] & 0x7f, 96);
    assert_eq!(rtsp_viewers(&server.status()).len(), 2);
}

/// Malformed, oversized and garbage requests are answered (400, 431, 413, 505)
/// and their connections closed; many of them at once harm no one: a good
/// client plays on, and the server still answers.
#[test]
fn malformed_oversized_and_garbage_requests_are_refused() {
    let server = start(&[]);
    let status = server.wait_live();
    let url = rtsp_url(&status);
    let address = rtsp_address(&status);
    let good = GoodClient::start(&url, Transport::Tcp(TcpTransportOptions::default()));
    good.assert_playing(25, Duration::from_secs(20), "at the start");

    let long_header = format!(
        "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Long: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let many_headers = {
        let mut text = String::from("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n");
        for i in 0..70 {
            text.push_str(&format!("X-{i}: {i}\r\n"));
        }
        text + "\r\n"
    };
    let mut garbage: Vec<u8> = (0..3000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    garbage[0] = b'G'; // not '$', which would start an interleaved frame
    garbage.extend_from_slice(b"\r\n\r\n");
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        (
            "a request line without a version",
            b"OPTIONS *\r\nCSeq: 1\r\n\r\n".to_vec(),
            &[400],
        ),
        ("not a request line", b"HELLO\r\n\r\n".to_vec(), &[400]),
        (
            "a header without a colon",
            b"OPTIONS * RTSP/1.0\r\nCSeq 1\r\n\r\n".to_vec(),
            &[400],
        ),
        (
            "a bad Content-Length",
            b"SET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: lots\r\n\r\n".to_vec(),
            &[400],
        ),
        (
            "RTSP/2.0",
            b"OPTIONS * RTSP/2.0\r\nCSeq: 1\r\n\r\n".to_vec(),
            &[505],
        ),
        (
            "HTTP",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            &[400, 505],
        ),
        ("a 9 KB header", long_header.into_bytes(), &[431]),
        ("70 headers", many_headers.into_bytes(), &[431]),
        (
            "a 5000-byte body",
            b"SET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 5000\r\n\r\n".to_vec(),
            &[413],
        ),
        ("binary garbage", garbage, &[400, 431]),
        ("an endless head", vec![b'A'; 20_000], &[400, 431]),
    ];
    for (what, bytes, expected) in &cases {
        let mut raw = Raw::connect_from(HOSTILE, address, None);
        // The server may close while a long request is still being written.
        let _ = raw.stream.write_all(bytes);
        let response = raw
            .try_response(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
        assert!(
            expected.contains(&response.status),
            "{what}: answered {} (expected {expected:?}): {response:?}",
            response.status
        );
        assert!(
            raw.closed_within(Duration::from_secs(5)),
            "{what}: the connection stayed open after {}",
            response.status
        );
    }

    // 25 connections at once sending garbage in small pieces, interleaved.
    let mut many: Vec<Raw> = (0..25)
        .map(|_| Raw::connect_from(HOSTILE, address, None))
        .collect();
    for round in 0..4 {
        for raw in &mut many {
            let _ = raw
                .stream
                .write_all(format!("XYZ{round} \u{7f}\u{1}junk\r\n").as_bytes());
        }
    }
    for raw in &mut many {
        let _ = raw.stream.write_all(b"\r\n");
    }
    for (i, raw) in many.iter_mut().enumerate() {
        let response = raw
            .try_response(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("garbage connection {i}: {e}"));
        assert_eq!(response.status, 400, "{response:?}");
        assert!(
            raw.closed_within(Duration::from_secs(5)),
            "garbage connection {i} stayed open"
        );
    }

    good.assert_playing(25, Duration::from_secs(10), "after the hostile requests");
    let mut raw = Raw::connect(address);
    assert_eq!(raw.request("OPTIONS", "*", 7, &[]).status, 200);
    assert_eq!(
        rtsp_viewers(&server.status()).len(),
        1,
        "only the good client plays"
    );
    good.stop();
}

/// A thousand SETUPs that never PLAY, on one connection and over as many
/// connections as one address may open: one session per connection, no viewer
/// place taken, memory bounded, the sessions time out (session_timeout_s = 10)
/// and their connections close, and a good client plays throughout.
#[test]
fn a_thousand_setups_without_play_stay_bounded_and_time_out() {
    let server = start(&[("STREAMER_RTSP__SESSION_TIMEOUT_S", "10")]);
    let status = server.wait_live();
    let url = rtsp_url(&status);
    let address = rtsp_address(&status);
    let good = GoodClient::start(&url, Transport::Tcp(TcpTransportOptions::default()));
    good.assert_playing(25, Duration::from_secs(20), "at the start");
    std::thread::sleep(Duration::from_millis(500));
    let rss_before = server.proc_status("VmRSS");
    let track = format!("{url}/trackID=0");

    // One connection, 1000 SETUPs in batches of 50 written at once: always the
    // same session.
    let mut one = Raw::connect_from(HOSTILE, address, None);
    let mut sessions = std::collections::HashSet::new();
    let mut one_written = Instant::now();
    for batch in 0..20u32 {
        let mut text = String::new();
        for i in 0..50u32 {
            let cseq = batch * 50 + i + 1;
            let port = format!(
                "RTP/AVP/TCP;unicast;interleaved={}-{}",
                (cseq % 100) * 2,
                (cseq % 100) * 2 + 1
            );
            text.push_str(&request("SETUP", &track, cseq, &[("Transport", &port)]));
        }
        one_written = Instant::now();
        one.send(text.as_bytes());
        for i in 0..50u32 {
            let response = one.response();
            assert_eq!(response.status, 200, "{response:?}");
            assert_eq!(response.cseq(), Some(batch * 50 + i + 1));
            sessions.insert(response.session());
        }
    }
    assert_eq!(
        sessions.len(),
        1,
        "one connection, one session: {sessions:?}"
    );
    // When the last requests were written: the sessions cannot time out before
    // 10 s after that.
    let mut last_request = vec![one_written];

    // More connections until the server refuses one (the per-address limit),
    // each with SETUPs, 1000 in all.
    let mut open: Vec<Raw> = vec![one];
    let mut refused = false;
    for _ in 0..64 {
        let mut raw = Raw::connect_from(HOSTILE, address, None);
        raw.send(request("SETUP", &track, 1, &[("Transport", TCP_TRANSPORT)]).as_bytes());
        match raw.try_response(Duration::from_secs(10)) {
            Ok(r) if r.status == 200 => {
                open.push(raw);
                last_request.push(Instant::now());
            }
            Ok(r) if r.status == 503 => {
                refused = true;
                break;
            }
            other => panic!("SETUP on a new connection: {other:?}"),
        }
    }
    assert!(refused, "64 connections from one address were all admitted");
    let admitted = open.len();
    assert!(
        (10..=33).contains(&admitted),
        "{admitted} connections admitted from one address (server.max_connections_per_address is 32)"
    );
    let per_connection = 1000 / (admitted as u32 - 1) + 1;
    let mut ids = std::collections::HashSet::new();
    for (raw, last) in open.iter_mut().zip(last_request.iter_mut()).skip(1) {
        *last = Instant::now();
        let mut text = String::new();
        for i in 0..per_connection {
            text.push_str(&request(
                "SETUP",
                &track,
                i + 2,
                &[("Transport", TCP_TRANSPORT)],
            ));
        }
        raw.send(text.as_bytes());
    }
    for raw in open.iter_mut().skip(1) {
        for i in 0..per_connection {
            let response = raw.response();
            assert_eq!(
                (response.status, response.cseq()),
                (200, Some(i + 2)),
                "{response:?}"
            );
            ids.insert(response.session());
        }
    }
    assert_eq!(ids.len(), admitted - 1, "one session per connection");
    let during = server.status();
    assert_eq!(
        rtsp_viewers(&during).len(),
        1,
        "SETUP takes no viewer place: {during}"
    );
    assert_eq!(during["rtsp"]["sessions"], 1);
    let rss_during = server.proc_status("VmRSS");
    eprintln!("RSS {rss_before} -> {rss_during} kB with {admitted} connections");
    assert!(
        rss_during.saturating_sub(rss_before) < 16 * 1024,
        "RSS grew from {rss_before} to {rss_during} kB"
    );
    good.assert_playing(25, Duration::from_secs(10), "with the idle sessions");

    // Silence: each session times out 10 s after its connection's last request,
    // closing the connection (a close is seen at or after the moment it comes).
    for (i, raw) in open.iter_mut().enumerate() {
        let since = last_request[i];
        let left = Duration::from_secs(30).saturating_sub(since.elapsed());
        assert!(
            raw.closed_within(left),
            "connection {i} of {admitted} is still open {:?} after its last request",
            since.elapsed()
        );
        let after = since.elapsed();
        assert!(
            after >= Duration::from_secs(9),
            "connection {i} was closed {after:?} after its last request, before the timeout"
        );
    }
    drop(open);
    let mut again = Raw::connect_from(HOSTILE, address, None);
    assert_eq!(
        again.request("OPTIONS", "*", 1, &[]).status,
        200,
        "places are free again"
    );
    good.assert_playing(25, Duration::from_secs(10), "after the timeouts");
    good.stop();
}

/// A TCP client that plays and never reads: the hub skips it ahead (drops and
/// resyncs in `/api/status`, its queue bounded), the server drops it after the
/// write stall timeout, memory stays bounded, and a good client plays on.
#[test]
fn a_tcp_client_that_never_reads_is_skipped_then_dropped() {
    let server = start(&[]);
    let status = server.wait_live();
    let url = rtsp_url(&status);
    let address = rtsp_address(&status);
    let good = GoodClient::start(&url, Transport::Tcp(TcpTransportOptions::default()));
    good.assert_playing(25, Duration::from_secs(20), "at the start");
    std::thread::sleep(Duration::from_millis(500));
    let rss_before = server.proc_status("VmRSS");

    let mut stuck = Raw::connect_from(HOSTILE, address, Some(4096));
    let stuck_address = stuck.stream.local_addr().unwrap();
    setup_and_play_tcp(&mut stuck, &url);
    let started = Instant::now();
    let is_stuck = |v: &Value| {
        v["remote"]
            .as_str()
            .is_some_and(|r| r.starts_with("127.0.0.2:"))
    };
    // It falls behind: skipped to keyframes, with its queue bounded.
    let mut max_queue = 0;
    let mut max_rss = rss_before;
    let skipped = wait_status(
        &server,
        Duration::from_secs(40),
        "the stuck client is skipped",
        |s| {
            max_rss = max_rss.max(server.proc_status("VmRSS"));
            rtsp_viewers(s).iter().filter(|v| is_stuck(v)).any(|v| {
                max_queue = max_queue.max(v["queued_frames"].as_u64().unwrap_or(0));
                v["resyncs"].as_u64().unwrap_or(0) > 0
                    && v["dropped_frames"].as_u64().unwrap_or(0) > 0
            })
        },
    );
    eprintln!(
        "skipped after {:?}: {}",
        started.elapsed(),
        skipped["viewers"]
    );
    good.assert_playing(25, Duration::from_secs(10), "while a client is stuck");
    // Dropped after the write stall (20 s), generously.
    wait_status(
        &server,
        Duration::from_secs(60),
        "the stuck client is dropped",
        |s| {
            max_rss = max_rss.max(server.proc_status("VmRSS"));
            for v in rtsp_viewers(s).iter().filter(|v| is_stuck(v)) {
                max_queue = max_queue.max(v["queued_frames"].as_u64().unwrap_or(0));
            }
            !rtsp_viewers(s).iter().any(is_stuck)
        },
    );
    eprintln!(
        "dropped after {:?}; most queued {max_queue}; RSS {rss_before} -> {max_rss} kB",
        started.elapsed()
    );
    // The hub's bound: 2 s at 30 fps, plus the joining backlog (at most one of
    // the file's GOPs, 60 frames). Unbounded, 20 s would queue 600.
    assert!(
        max_queue <= 120,
        "the stuck client's queue grew to {max_queue} frames"
    );
    // 20 s of this stream is 14 MB.
    assert!(
        max_rss.saturating_sub(rss_before) < 10 * 1024,
        "RSS grew from {rss_before} to {max_rss} kB"
    );
    assert!(
        stuck.closed_within(Duration::from_secs(10)),
        "the stuck client's connection is still open"
    );
    // By the write stall timeout (20 s), not the kernel's TCP_USER_TIMEOUT (30 s)
    // behind it.
    let closed = format!("peer={stuck_address} reason=\"the client stopped reading\"");
    assert!(
        server.log().contains(&closed),
        "the log does not say {closed}:\n{}",
        tail(&server.log(), 30)
    );
    good.assert_playing(
        25,
        Duration::from_secs(10),
        "after the stuck client was dropped",
    );
    assert_eq!(rtsp_viewers(&server.status()).len(), 1);
    good.stop();
}

/// UDP clients that vanish (in a loopback-only namespace, session_timeout_s =
/// 10): one that closes its RTSP connection is gone at once; one that keeps the
/// connection open but goes silent (no request, no RTCP) is dropped after the
/// timeout, not before; one that sends only RTCP receiver reports lives past
/// the timeout, and its RTCP BYE ends it; a retina client over UDP, which sends
/// keep-alive requests, plays on throughout.
#[test]
fn udp_clients_that_vanish_are_dropped() {
    if !netns::isolated("udp_clients_that_vanish_are_dropped") {
        return;
    }
    let server = start(&[("STREAMER_RTSP__SESSION_TIMEOUT_S", "10")]);
    let status = server.wait_live();
    let url = rtsp_url(&status);
    let address = rtsp_address(&status);
    let udp_port = status["rtsp"]["udp_port"].as_u64().expect("rtsp.udp_port") as u16;
    let good = GoodClient::start(&url, Transport::Udp(UdpTransportOptions::default()));
    good.assert_playing(25, Duration::from_secs(20), "at the start");

    let listed = |server: &StreamerProcess, raw: &Raw| {
        let me = raw.stream.local_addr().unwrap().to_string();
        rtsp_viewers(&server.status())
            .iter()
            .any(|v| v["remote"].as_str() == Some(me.as_str()))
    };

    // The silent one: PLAYs, takes a packet, then closes its UDP sockets and
    // says nothing more on its open connection.
    let (rtp, rtcp) = udp_pair();
    let mut silent = Raw::connect(address);
    let setup = setup_udp(&mut silent, &url, &rtp);
    assert!(
        setup
            .header("Transport")
            .is_some_and(|t| t.contains(&format!("server_port={udp_port}-{}", udp_port + 1))),
        "{setup:?}"
    );
    assert_eq!(
        setup.header("Session").map(|s| s.ends_with(";timeout=10")),
        Some(true)
    );
    let last_sign = Instant::now();
    let play = silent.request("PLAY", &url, 2, &[("Session", &setup.session())]);
    assert_eq!(play.status, 200, "{play:?}");
    rtp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut packet = [0u8; 2048];
    let (n, from) = rtp.recv_from(&mut packet).expect("RTP over UDP after PLAY");
    assert_eq!(
        from,
        SocketAddr::from(([127, 0, 0, 1], udp_port)),
        "RTP's source"
    );
    assert!(n > 12 && packet[1] & 0x7f == 96, "an RTP packet of type 96");
    drop((rtp, rtcp));
    assert!(listed(&server, &silent));

    // The reporter: says nothing on its connection either, but sends RTCP
    // receiver reports from its RTCP port every 2 s, which keep it alive.
    let (reporter_rtp, reporter_rtcp) = udp_pair();
    let mut reporter = Raw::connect(address);
    let setup = setup_udp(&mut reporter, &url, &reporter_rtp);
    let reporter_played = Instant::now();
    let play = reporter.request("PLAY", &url, 2, &[("Session", &setup.session())]);
    assert_eq!(play.status, 200, "{play:?}");
    let server_rtcp = SocketAddr::from(([127, 0, 0, 1], udp_port + 1));
    let reporting = Arc::new(AtomicBool::new(true));
    let reports = std::thread::spawn({
        let reporting = reporting.clone();
        let socket = reporter_rtcp.try_clone().unwrap();
        move || {
            while reporting.load(Ordering::Relaxed) {
                socket.send_to(&RECEIVER_REPORT, server_rtcp).unwrap();
                std::thread::sleep(Duration::from_secs(2));
            }
        }
    });

    // A third PLAYs, then closes its connection: gone at once.
    let quitter = {
        let (rtp, _rtcp) = udp_pair();
        let mut raw = Raw::connect(address);
        let setup = setup_udp(&mut raw, &url, &rtp);
        let play = raw.request("PLAY", &url, 2, &[("Session", &setup.session())]);
        assert_eq!(play.status, 200, "{play:?}");
        assert_eq!(rtsp_viewers(&server.status()).len(), 4);
        raw
    };
    drop(quitter);
    wait_status(
        &server,
        Duration::from_secs(3),
        "a closed connection ends its session",
        |s| rtsp_viewers(s).len() == 3,
    );

    // The silent one is dropped after 10 s without a sign, not before.
    let silent_me = silent.stream.local_addr().unwrap().to_string();
    let dropped = wait_status(
        &server,
        Duration::from_secs(30),
        "the silent UDP client is dropped",
        |s| {
            !rtsp_viewers(s)
                .iter()
                .any(|v| v["remote"].as_str() == Some(silent_me.as_str()))
        },
    );
    let after = last_sign.elapsed();
    eprintln!("the silent UDP session was dropped {after:?} after its PLAY");
    assert!(
        after >= Duration::from_secs(9),
        "dropped after {after:?}, before the timeout"
    );
    assert_eq!(
        dropped["rtsp"]["sessions"], 2,
        "only the silent client was to be dropped (the reporter and retina stay)"
    );
    assert!(
        silent.closed_within(Duration::from_secs(5)),
        "its connection stayed open"
    );

    // The reporter outlives its last request by more than the timeout.
    while reporter_played.elapsed() < Duration::from_secs(14) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        listed(&server, &reporter),
        "a client sending RTCP receiver reports was dropped {:?} after its last request",
        reporter_played.elapsed()
    );
    // Its RTCP BYE ends the session and the connection.
    reporting.store(false, Ordering::Relaxed);
    reports.join().unwrap();
    let mut bye = RECEIVER_REPORT.to_vec();
    bye.extend_from_slice(&BYE);
    reporter_rtcp.send_to(&bye, server_rtcp).unwrap();
    assert!(
        reporter.closed_within(Duration::from_secs(5)),
        "the connection stayed open after an RTCP BYE"
    );
    assert!(!listed(&server, &reporter), "still listed after its BYE");

    // The keep-alive sending retina client lives past the timeout.
    good.assert_playing(25, Duration::from_secs(10), "past the session timeout");
    assert_eq!(rtsp_viewers(&server.status()).len(), 1);
    good.stop();
}

/// An RTCP receiver report without report blocks (RFC 3550 6.4.2), SSRC 0x5EED.
const RECEIVER_REPORT: [u8; 8] = [0x80, 201, 0, 1, 0, 0, 0x5e, 0xed];
/// An RTCP BYE for SSRC 0x5EED (RFC 3550 6.6).
const BYE: [u8; 8] = [0x81, 203, 0, 1, 0, 0, 0x5e, 0xed];

/// Two UDP sockets on 127.0.0.1, an even port and the next (RTP and RTCP).
fn udp_pair() -> (UdpSocket, UdpSocket) {
    loop {
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rtp.local_addr().unwrap().port();
        if port.is_multiple_of(2) {
            if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1)) {
                return (rtp, rtcp);
            }
        }
    }
}

/// SETUP over UDP to `rtp`'s port and the next; the response.
fn setup_udp(raw: &mut Raw, url: &str, rtp: &UdpSocket) -> Response {
    let port = rtp.local_addr().unwrap().port();
    let transport = format!("RTP/AVP;unicast;client_port={port}-{}", port + 1);
    let setup = raw.request(
        "SETUP",
        &format!("{url}/trackID=0"),
        1,
        &[("Transport", &transport)],
    );
    assert_eq!(setup.status, 200, "{setup:?}");
    setup
}

// ---------------------------------------------------------------------------
// A password on RTSP ([access] password).

/// The password of the locked servers: distinctive, so that the log can be
/// searched for it.
const PASSWORD: &str = "Open-Sesame-4711";

/// Starts the streamer as [`start`] does, with `[access] password` set.
fn start_locked(password: &str, env: &[(&str, &str)]) -> StreamerProcess {
    let mut all = vec![("STREAMER_ACCESS__PASSWORD", password)];
    all.extend_from_slice(env);
    start(&all)
}

/// `Authorization: Basic` for `user` and `password`.
fn basic(user: &str, password: &str) -> String {
    streamer::access::credentials::basic_header(user, password)
}

/// [`StreamerProcess::wait_live`] for a locked server: `/api/status` asked with
/// the password, until the video is live.
fn wait_live_locked(server: &StreamerProcess, password: &str) -> Value {
    server.wait_live_as(Some(&basic("streamer", password)))
}

/// Stops a `gst-launch-1.0 -e` run with an interrupt (an end of stream, which
/// flushes its file), killing it after 15 s; its standard error.
fn stop_gst_launch(mut child: std::process::Child) -> String {
    if child.try_wait().unwrap().is_none() {
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut errors = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut errors);
    }
    let _ = child.wait();
    errors
}

/// `rtsp://HOST:PORT/stream` with `user:password@` in it.
fn with_credentials(url: &str, user: &str, password: &str) -> String {
    url.replacen("rtsp://", &format!("rtsp://{user}:{password}@"), 1)
}

/// Runs ffmpeg on `url` over TCP for one frame; whether it succeeded, and its
/// stderr.
fn ffmpeg_one_frame(url: &str) -> (bool, String) {
    ffmpeg_one_frame_over(url, "tcp")
}

/// Runs ffmpeg on `url` over `transport` for one frame; whether it succeeded,
/// and its stderr.
fn ffmpeg_one_frame_over(url: &str, transport: &str) -> (bool, String) {
    let (output, finished) = run_for(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-rtsp_transport", transport])
            .args(["-i", url, "-frames:v", "1", "-f", "null", "-"]),
        Duration::from_secs(30),
        "ffmpeg",
    );
    (
        finished && output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The `WWW-Authenticate` values of a response, in order.
fn challenges(response: &Response) -> Vec<&str> {
    response
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("WWW-Authenticate"))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The schemes the server's log says RTSP clients logged in with.
fn logins(log: &str) -> Vec<&'static str> {
    log.lines()
        .filter(|line| line.contains("RTSP client logged in"))
        .filter_map(|line| ["Digest", "Basic"].into_iter().find(|s| line.contains(s)))
        .collect()
}

/// Panics when the log holds `secret` in any form a client sent it.
fn assert_not_logged(server: &StreamerProcess, secret: &str) {
    let log = server.log();
    for form in [
        secret.to_string(),
        basic("streamer", secret)
            .trim_start_matches("Basic ")
            .to_string(),
    ] {
        assert!(
            !log.contains(&form),
            "the log holds the password ({form}):\n{log}"
        );
    }
}

/// With a password: OPTIONS stays open, DESCRIBE without it is 401 with a Digest
/// then a Basic challenge; ffmpeg without credentials and with a wrong password
/// fails with 401; with the password in the URL it plays the file's slices over
/// TCP, logging in with Digest; the password is in no log line.
#[test]
fn ffmpeg_with_the_password_plays_over_tcp_and_without_it_gets_401() {
    let server = start_locked(PASSWORD, &[]);
    let status = wait_live_locked(&server, PASSWORD);
    let url = rtsp_url(&status);

    let mut raw = Raw::connect(rtsp_address(&status));
    let options = raw.request("OPTIONS", &url, 1, &[]);
    assert_eq!(options.status, 200, "{options:?}");
    let describe = raw.request("DESCRIBE", &url, 2, &[]);
    assert_eq!(describe.status, 401, "{describe:?}");
    let offered = challenges(&describe);
    assert_eq!(offered.len(), 2, "{describe:?}");
    assert!(
        offered[0].starts_with("Digest realm=\"streamer\", nonce=\""),
        "{offered:?}"
    );
    assert!(
        offered[1].starts_with("Basic realm=\"streamer\""),
        "{offered:?}"
    );
    let setup = raw.request(
        "SETUP",
        &format!("{url}/trackID=0"),
        3,
        &[("Transport", TCP_TRANSPORT)],
    );
    assert_eq!(setup.status, 401, "{setup:?}");
    assert!(rtsp_viewers(&wait_live_locked(&server, PASSWORD)).is_empty());

    let (played, stderr) = ffmpeg_one_frame(&url);
    assert!(!played, "ffmpeg played without the password: {stderr}");
    assert!(
        stderr.contains("401") || stderr.contains("Unauthorized"),
        "ffmpeg without credentials: {stderr}"
    );
    let (played, stderr) =
        ffmpeg_one_frame(&with_credentials(&url, "streamer", "Open-Sesame-4712"));
    assert!(!played, "ffmpeg played with a wrong password: {stderr}");
    assert!(
        stderr.contains("401") || stderr.contains("Unauthorized"),
        "ffmpeg with a wrong password: {stderr}"
    );
    assert!(logins(&server.log()).is_empty(), "nobody logged in yet");

    let nals = ffmpeg_receive(&with_credentials(&url, "streamer", PASSWORD), "tcp", 60);
    let slices: Vec<Vec<u8>> = nals.into_iter().filter(|n| is_slice(n)).collect();
    assert_contiguous_run(
        &slices,
        &source_slices(),
        60,
        "ffmpeg over TCP with the password",
    );
    assert_eq!(
        logins(&server.log()),
        ["Digest"],
        "ffmpeg logs in with Digest when it is offered"
    );
    assert_not_logged(&server, PASSWORD);
}

/// With a password, ffmpeg over UDP (in a loopback-only namespace) gets 401
/// without it and plays with it in the URL.
#[test]
fn ffmpeg_with_the_password_plays_over_udp() {
    if !netns::isolated("ffmpeg_with_the_password_plays_over_udp") {
        return;
    }
    let server = start_locked(PASSWORD, &[]);
    let status = wait_live_locked(&server, PASSWORD);
    let url = rtsp_url(&status);
    let (played, stderr) = ffmpeg_one_frame_over(&url, "udp");
    assert!(!played, "ffmpeg played without the password: {stderr}");
    assert!(
        stderr.contains("401") || stderr.contains("Unauthorized"),
        "ffmpeg over UDP without credentials: {stderr}"
    );
    let nals = ffmpeg_receive(&with_credentials(&url, "streamer", PASSWORD), "udp", 60);
    let slices: Vec<Vec<u8>> = nals.into_iter().filter(|n| is_slice(n)).collect();
    assert_contiguous_run(
        &slices,
        &source_slices(),
        60,
        "ffmpeg over UDP with the password",
    );
    assert_eq!(logins(&server.log()), ["Digest"]);
    assert_not_logged(&server, PASSWORD);
}

/// With the password as an Argon2id hash only Basic is offered (Digest needs the
/// password itself), and ffmpeg plays with it; neither the password nor the hash
/// is in the log.
#[test]
fn with_a_hashed_password_ffmpeg_plays_with_basic() {
    let hash = streamer::access::password::hash(PASSWORD).expect("hash the password");
    let server = start_locked(&hash, &[]);
    let status = wait_live_locked(&server, PASSWORD);
    let url = rtsp_url(&status);
    let mut raw = Raw::connect(rtsp_address(&status));
    let describe = raw.request("DESCRIBE", &url, 1, &[]);
    assert_eq!(describe.status, 401, "{describe:?}");
    let offered = challenges(&describe);
    assert_eq!(offered.len(), 1, "{describe:?}");
    assert!(
        offered[0].starts_with("Basic realm=\"streamer\""),
        "{offered:?}"
    );

    let nals = ffmpeg_receive(&with_credentials(&url, "streamer", PASSWORD), "tcp", 30);
    let slices: Vec<Vec<u8>> = nals.into_iter().filter(|n| is_slice(n)).collect();
    assert_contiguous_run(&slices, &source_slices(), 30, "ffmpeg with Basic");
    assert_eq!(logins(&server.log()), ["Basic"]);
    assert_not_logged(&server, PASSWORD);
    assert!(!server.log().contains(&hash), "the log holds the hash");
}

/// With a password, GStreamer's rtspsrc plays with `user-id` and `user-pw`
/// (and not without them).
#[test]
fn gstreamer_plays_with_the_password() {
    let server = start_locked(PASSWORD, &[]);
    let status = wait_live_locked(&server, PASSWORD);
    let url = rtsp_url(&status);
    let dir = tempfile::tempdir().unwrap();
    let run = |path: &Path, credentials: &[String]| {
        Command::new("gst-launch-1.0")
            .args(["-q", "-e", "rtspsrc"])
            .arg(format!("location={url}"))
            .args(credentials)
            .args(["protocols=tcp", "!", "rtph264depay", "!"])
            .args(["video/x-h264,stream-format=byte-stream,alignment=au", "!"])
            .arg("filesink")
            .arg(format!("location={}", path.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run gst-launch-1.0 ({e}): {}", install_hint("gst")))
    };
    let stop = stop_gst_launch;

    // Without credentials rtspsrc gives up (it has nothing to answer 401 with).
    let refused = dir.path().join("refused.h264");
    let mut child = run(&refused, &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let errors = stop(child);
    assert_eq!(
        std::fs::metadata(&refused).map(|m| m.len()).unwrap_or(0),
        0,
        "GStreamer received video without the password: {errors}"
    );

    let path = dir.path().join("gst.h264");
    let child = run(
        &path,
        &[
            "user-id=streamer".to_string(),
            format!("user-pw={PASSWORD}"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) < 2_000_000 {
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let errors = stop(child);
    let data = std::fs::read(&path).unwrap_or_default();
    assert!(!data.is_empty(), "GStreamer wrote nothing: {errors}");
    let (decoded, width, height) = support::ffprobe_frames(&path);
    assert_eq!((width, height), (1920, 1080));
    assert!(
        decoded >= 20,
        "ffprobe decoded {decoded} frames of GStreamer's"
    );
    let slices: Vec<Vec<u8>> = annex_b_nals(&data)
        .into_iter()
        .filter(|n| is_slice(n))
        .collect();
    assert_contiguous_run(&slices, &source_slices(), 20, "GStreamer with the password");
    assert_eq!(
        logins(&server.log()).len(),
        1,
        "{}",
        tail(&server.log(), 40)
    );
    assert_not_logged(&server, PASSWORD);
}

/// With a password, retina plays with `Credentials` (strict about RTP-Info, no
/// packet lost), and fails to DESCRIBE without them.
#[test]
fn retina_plays_with_the_password() {
    let server = start_locked(PASSWORD, &[]);
    let status = wait_live_locked(&server, PASSWORD);
    let url = rtsp_url(&status);
    let runtime = runtime();
    let refused = runtime.block_on(retina_receive(
        &url,
        None,
        Transport::Tcp(TcpTransportOptions::default()),
        1,
        0,
        Duration::from_secs(20),
    ));
    let error = refused.expect_err("retina played without the password");
    assert!(error.contains("401"), "{error}");
    let creds = Credentials {
        username: "streamer".into(),
        password: PASSWORD.into(),
    };
    let got = runtime
        .block_on(retina_receive(
            &url,
            Some(creds),
            Transport::Tcp(TcpTransportOptions::default()),
            60,
            0,
            Duration::from_secs(40),
        ))
        .unwrap_or_else(|e| {
            panic!(
                "retina with the password: {e}\nlog:\n{}",
                tail(&server.log(), 40)
            )
        });
    assert_retina_good(&got, &status, 60, "retina with the password");
    assert_eq!(logins(&server.log()), ["Digest"]);
    assert_not_logged(&server, PASSWORD);
}

/// Wrong passwords from one address (127.0.0.2) are braked: after a few, that
/// address gets 503 with `Retry-After` (even for the right password), on a
/// connection that stays open; the owner on 127.0.0.1 logs in meanwhile.
#[test]
fn wrong_passwords_are_braked_for_their_address_only() {
    let server = start_locked(PASSWORD, &[]);
    let status = wait_live_locked(&server, PASSWORD);
    let url = rtsp_url(&status);
    let address = rtsp_address(&status);
    let mut guesser = Raw::connect_from(HOSTILE, address, None);
    let wrong = basic("streamer", "guess");
    let mut braked = None;
    for cseq in 1..=30 {
        let response = guesser.request("DESCRIBE", &url, cseq, &[("Authorization", &wrong)]);
        match response.status {
            401 => {}
            503 => {
                braked = Some(response);
                break;
            }
            other => panic!("a wrong password answered {other}: {response:?}"),
        }
    }
    let braked = braked.expect("no 503 after 30 wrong passwords");
    let retry_after: u64 = braked
        .header("Retry-After")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("503 without a Retry-After in seconds: {braked:?}"));
    assert!(retry_after >= 1, "{braked:?}");
    let right = basic("streamer", PASSWORD);
    let again = guesser.request("DESCRIBE", &url, 40, &[("Authorization", &right)]);
    assert_eq!(again.status, 503, "braked: {again:?}");
    assert_eq!(guesser.request("OPTIONS", &url, 41, &[]).status, 200);

    let mut owner = Raw::connect(address);
    let describe = owner.request("DESCRIBE", &url, 1, &[("Authorization", &right)]);
    assert_eq!(describe.status, 200, "the owner elsewhere: {describe:?}");
    setup_and_play_tcp(&mut owner, &url);
    assert!(
        owner.interleaved_frame(Duration::from_secs(10)).is_some(),
        "the owner's session plays"
    );
    assert_not_logged(&server, PASSWORD);
}
