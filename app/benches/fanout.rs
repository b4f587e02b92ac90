//! Fan-out load benchmark (`make bench`): starts the real `streamer` binary fed by the
//! file source at a chosen bitrate, opens N WebSocket viewers against it and reports
//! server CPU and memory, delivery latency (hub publish -> viewer received), join time
//! (connect -> first keyframe) and drops; then the same with one viewer that reads at
//! a tenth of the bitrate, to show that a slow viewer hurts nobody else.
//!
//! Options (environment): `BENCH_VIEWERS` (100), `BENCH_MBPS` (8), `BENCH_SECONDS`
//! (20 per scenario: long enough for the slow viewer to overflow), `BENCH_WIDTH` /
//! `BENCH_HEIGHT` (1920x1080), `BENCH_FPS` (25).
//! Targets on the 2-core development machine at 100 viewers x 8 Mbps: p99 delivery
//! < 5 ms, join < 50 ms, RSS < 30 MB, the slow viewer moving others' p99 by < 1 ms.
//! Results go to docs/benchmarks.md by hand, with the machine they ran on.

#[path = "../tests/support/process.rs"]
mod process;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use process::StreamerProcess;

struct Settings {
    viewers: usize,
    mbps: f64,
    seconds: u64,
    width: u32,
    height: u32,
    fps: u32,
}

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a valid value")),
        Err(_) => default,
    }
}

fn main() {
    let settings = Settings {
        viewers: setting("BENCH_VIEWERS", 100),
        mbps: setting("BENCH_MBPS", 8.0),
        seconds: setting("BENCH_SECONDS", 20),
        width: setting("BENCH_WIDTH", 1920),
        height: setting("BENCH_HEIGHT", 1080),
        fps: setting("BENCH_FPS", 25),
    };
    let video = ensure_video(&settings);
    let file_bytes = std::fs::metadata(&video).expect("bench video").len();
    let file_mbps = file_bytes as f64 * 8.0 / VIDEO_SECONDS as f64 / 1e6;

    println!("streamer fan-out benchmark");
    println!("  machine: {}", machine());
    println!(
        "  video:   {}x{} at {} fps, {:.1} Mbit/s ({})",
        settings.width,
        settings.height,
        settings.fps,
        file_mbps,
        video.display()
    );
    println!(
        "  load:    {} viewers, {} s per scenario",
        settings.viewers, settings.seconds
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let fast = runtime.block_on(scenario(&settings, &video, None));
    fast.print("all viewers read at full speed");
    let slow = runtime.block_on(scenario(&settings, &video, Some(file_mbps / 10.0)));
    slow.print("plus one viewer reading at a tenth of the bitrate");
    // The same fast scenario again shows how much p99 moves between identical runs.
    let again = runtime.block_on(scenario(&settings, &video, None));
    again.print("all viewers read at full speed, again");
    let p99 = |report: &Report| report.delivery.percentile(99.0);
    println!(
        "\nslow viewer's effect on the others' p99 delivery: {:+.2} ms \
         (between the two identical fast runs: {:+.2} ms)",
        p99(&slow) - (p99(&fast) + p99(&again)) / 2.0,
        p99(&again) - p99(&fast)
    );
}

/// Seconds of video in the generated file (the file source loops it).
const VIDEO_SECONDS: u64 = 10;

/// A noisy moving test video at the requested bitrate, made once by ffmpeg and kept
/// in the target folder.
fn ensure_video(settings: &Settings) -> PathBuf {
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    std::fs::create_dir_all(&target).expect("create target/bench-data");
    let path = target.join(format!(
        "fanout-{}x{}-{}fps-{}mbps.h264",
        settings.width, settings.height, settings.fps, settings.mbps
    ));
    if path.is_file() {
        return path;
    }
    let bitrate = format!("{}k", (settings.mbps * 1000.0) as u64);
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc2=size={}x{}:rate={},noise=alls=12:allf=t",
            settings.width, settings.height, settings.fps
        ))
        .args(["-t", &VIDEO_SECONDS.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args(["-profile:v", "high", "-pix_fmt", "yuv420p"])
        .args(["-b:v", &bitrate, "-maxrate", &bitrate, "-bufsize", &bitrate])
        .args([
            "-g",
            &(settings.fps * 2).to_string(),
            "-bsf:v",
            "h264_mp4toannexb",
        ])
        .arg(&path)
        .status()
        .expect("ffmpeg runs (apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg failed to make the bench video");
    path
}

#[derive(Default)]
struct Samples(Vec<f64>);

impl Samples {
    fn percentile(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted[rank.min(sorted.len() - 1)]
    }

    fn max(&self) -> f64 {
        self.0.iter().copied().fold(f64::NAN, f64::max)
    }
}

#[derive(Default)]
struct ViewerResult {
    join_ms: Option<f64>,
    delivery_ms: Vec<f64>,
    frames: u64,
    bytes: u64,
    resyncs: u64,
    dropped: u64,
}

struct Report {
    viewers: usize,
    seconds: f64,
    cpu_percent: f64,
    /// Server CPU in each second of the window, % of one core.
    cpu_per_second: Vec<f64>,
    rss_mb: f64,
    peak_rss_mb: f64,
    join: Samples,
    late_join: Samples,
    delivery: Samples,
    frames: u64,
    megabits: f64,
    resyncs: u64,
    dropped: u64,
    slow: Option<ViewerResult>,
    /// The server's count for its most-dropping viewer: frames dropped, resyncs.
    server_worst: (u64, u64),
}

impl Report {
    fn print(&self, title: &str) {
        println!("\n## {title}");
        let per_second: Vec<String> = self
            .cpu_per_second
            .iter()
            .map(|cpu| format!("{cpu:.0}"))
            .collect();
        println!(
            "  server CPU:        {:.1} % of one core over {:.0} s; per second: {} %",
            self.cpu_percent,
            self.seconds,
            per_second.join(" ")
        );
        println!(
            "  server RSS:        {:.1} MB (peak {:.1} MB)",
            self.rss_mb, self.peak_rss_mb
        );
        println!(
            "  delivered:         {} frames, {:.0} Mbit/s to {} viewers",
            self.frames,
            self.megabits / self.seconds,
            self.viewers
        );
        println!(
            "  delivery latency:  p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.delivery.percentile(50.0),
            self.delivery.percentile(99.0),
            self.delivery.max()
        );
        println!(
            "  join time:         p50 {:.1} ms, max {:.1} ms (one viewer joining the loaded server, {} times)",
            self.late_join.percentile(50.0),
            self.late_join.max(),
            self.late_join.0.len()
        );
        println!(
            "  join, all at once: p50 {:.1} ms, p99 {:.1} ms ({} viewers connecting together)",
            self.join.percentile(50.0),
            self.join.percentile(99.0),
            self.viewers
        );
        println!(
            "  drops (fast):      {} resyncs, {} frames",
            self.resyncs, self.dropped
        );
        if let Some(slow) = &self.slow {
            println!(
                "  slow viewer:       {} frames, {:.2} Mbit/s, {} resyncs, {} frames dropped",
                slow.frames,
                slow.bytes as f64 * 8.0 / self.seconds / 1e6,
                slow.resyncs,
                slow.dropped
            );
        }
        println!(
            "  server's worst viewer: {} frames dropped in {} resyncs",
            self.server_worst.0, self.server_worst.1
        );
    }
}

fn now_us() -> u64 {
    streamer::hub::unix_micros(SystemTime::now())
}

async fn scenario(settings: &Settings, video: &Path, slow_mbps: Option<f64>) -> Report {
    let server = StreamerProcess::start(
        Path::new(env!("CARGO_BIN_EXE_streamer")),
        Path::new("/nonexistent/streamer.toml"),
        &[
            ("STREAMER_CAMERA__SOURCE", "file"),
            ("STREAMER_CAMERA__FILE", video.to_str().expect("UTF-8 path")),
            ("STREAMER_SERVER__MAX_VIEWERS", "1000"),
            // Every viewer comes from 127.0.0.1.
            ("STREAMER_SERVER__MAX_VIEWERS_PER_ADDRESS", "1000"),
            ("STREAMER_SERVER__MAX_CONNECTIONS_PER_ADDRESS", "2000"),
            // info: the harness reads the "listening on" line; per-viewer lines are few.
            ("STREAMER_LOG__LEVEL", "info"),
        ],
    );
    server.wait_for_ok("/healthz", Duration::from_secs(10));
    let url = format!("ws://{}/ws?timing=frame", server.address);
    let window = Duration::from_secs(settings.seconds);
    // Everyone connects at once; the window starts when all have their first frame.
    let clock = Arc::new(Window::default());
    let mut tasks = Vec::new();
    for _ in 0..settings.viewers {
        tasks.push(tokio::spawn(viewer(url.clone(), clock.clone(), None)));
    }
    let slow_task = slow_mbps.map(|mbps| {
        let url = format!("ws://{}/ws", server.address);
        tokio::spawn(viewer(url, clock.clone(), Some(mbps)))
    });
    let expected = settings.viewers + usize::from(slow_mbps.is_some());
    let join_deadline = Instant::now() + Duration::from_secs(30);
    while clock.joined.load(Ordering::SeqCst) < expected {
        assert!(Instant::now() < join_deadline, "viewers did not all join");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu_start = cpu_ticks(server.pid());
    let started = Instant::now();
    let start_us = now_us();
    clock
        .end_us
        .store(start_us + window.as_micros() as u64, Ordering::SeqCst);
    clock.start_us.store(start_us, Ordering::SeqCst);
    let mut peak_rss_mb = 0.0f64;
    let mut cpu_per_second = Vec::new();
    let mut last = (Instant::now(), cpu_start);
    while started.elapsed() < window {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = (Instant::now(), cpu_ticks(server.pid()));
        let elapsed = now.0.duration_since(last.0).as_secs_f64();
        cpu_per_second.push((now.1 - last.1) as f64 / clock_ticks() / elapsed * 100.0);
        last = now;
        peak_rss_mb = peak_rss_mb.max(rss_mb(server.pid()));
    }
    let cpu_end = cpu_ticks(server.pid());
    let seconds = started.elapsed().as_secs_f64();
    let rss = rss_mb(server.pid());
    let status: serde_json::Value =
        serde_json::from_str(&server.get("/api/status").1).expect("status JSON");
    let server_worst = status["viewers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            (
                v["dropped_frames"].as_u64().unwrap_or(0),
                v["resyncs"].as_u64().unwrap_or(0),
            )
        })
        .max()
        .unwrap_or_default();
    // One viewer at a time joining the loaded server: connect -> first keyframe.
    let mut late_join = Samples::default();
    for _ in 0..LATE_JOINERS {
        late_join.0.push(join_time(&url).await);
        tokio::time::sleep(Duration::from_millis(137)).await;
    }

    let mut report = Report {
        viewers: settings.viewers,
        seconds,
        cpu_percent: (cpu_end - cpu_start) as f64 / clock_ticks() / seconds * 100.0,
        cpu_per_second,
        rss_mb: rss,
        peak_rss_mb: peak_rss_mb.max(rss),
        join: Samples::default(),
        late_join,
        delivery: Samples::default(),
        frames: 0,
        megabits: 0.0,
        resyncs: 0,
        dropped: 0,
        slow: None,
        server_worst,
    };
    for task in tasks {
        let result = task.await.expect("viewer task");
        report.join.0.extend(result.join_ms);
        report.delivery.0.extend(result.delivery_ms);
        report.frames += result.frames;
        report.megabits += result.bytes as f64 * 8.0 / 1e6;
        report.resyncs += result.resyncs;
        report.dropped += result.dropped;
    }
    if let Some(task) = slow_task {
        report.slow = Some(task.await.expect("slow viewer task"));
    }
    drop(server);
    report
}

/// What a [`RawClient`] received.
enum Received {
    Text(String),
    /// A binary message of this many bytes (its bytes are not kept).
    Binary(usize),
    Close,
}

/// A minimal WebSocket client for load: reads the server's (unmasked) frames into
/// one reusable buffer. A full client library copies and allocates per message,
/// and on a 2-core machine its work would show up in the server's latency figures.
struct RawClient {
    stream: tokio::io::BufReader<tokio::net::TcpStream>,
    payload: Vec<u8>,
}

impl RawClient {
    /// Connects and upgrades; `SO_RCVBUF` is set when `receive_buffer` > 0.
    async fn connect(url: &str, receive_buffer: u32) -> Self {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let rest = url.trim_start_matches("ws://");
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let address: std::net::SocketAddr = host.parse().expect("ws://ADDRESS/... URL");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        if receive_buffer > 0 {
            socket
                .set_recv_buffer_size(receive_buffer)
                .expect("SO_RCVBUF");
        }
        let mut stream = socket.connect(address).await.expect("viewer connects");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("handshake");
        let mut stream = tokio::io::BufReader::with_capacity(64 * 1024, stream);
        let mut line = String::new();
        stream.read_line(&mut line).await.expect("handshake answer");
        assert!(line.starts_with("HTTP/1.1 101"), "upgrade refused: {line}");
        while line != "\r\n" {
            line.clear();
            stream
                .read_line(&mut line)
                .await
                .expect("handshake headers");
        }
        RawClient {
            stream,
            payload: Vec::new(),
        }
    }

    /// The next text, binary or close message.
    async fn next(&mut self) -> std::io::Result<Received> {
        use tokio::io::AsyncReadExt;
        loop {
            let mut head = [0u8; 2];
            self.stream.read_exact(&mut head).await?;
            let len = match head[1] & 0x7F {
                126 => u64::from(self.stream.read_u16().await?),
                127 => self.stream.read_u64().await?,
                short => u64::from(short),
            } as usize;
            self.payload.resize(len, 0);
            self.stream.read_exact(&mut self.payload).await?;
            match head[0] & 0x0F {
                0x1 => {
                    return Ok(Received::Text(
                        String::from_utf8_lossy(&self.payload).into(),
                    ))
                }
                0x2 => return Ok(Received::Binary(len)),
                0x8 => return Ok(Received::Close),
                _ => continue, // ping, pong
            }
        }
    }

    /// The next message within 5 s, or a panic naming `who`.
    async fn expect_next(&mut self, who: &str) -> Received {
        match tokio::time::timeout(Duration::from_secs(5), self.next()).await {
            Ok(Ok(Received::Close)) => panic!("{who}: the server closed the stream"),
            Ok(Ok(received)) => received,
            Ok(Err(error)) => panic!("{who}: {error}"),
            Err(_) => panic!("{who}: nothing for 5 s"),
        }
    }
}

/// Single late joiners measured after each scenario's window.
const LATE_JOINERS: usize = 20;

/// Connects one viewer and returns the milliseconds until its first frame (a
/// keyframe with its parameter sets, by the protocol).
async fn join_time(url: &str) -> f64 {
    let started = Instant::now();
    let mut client = RawClient::connect(url, 0).await;
    loop {
        if let Received::Binary(_) = client.expect_next("late joiner").await {
            return started.elapsed().as_secs_f64() * 1000.0;
        }
    }
}

/// The measurement window shared by the viewers: `start_us` is 0 until every viewer
/// has joined.
#[derive(Default)]
struct Window {
    joined: AtomicUsize,
    start_us: AtomicU64,
    end_us: AtomicU64,
}

/// One viewer: connects, records its join time, then every frame's delivery latency
/// inside the window. A slow viewer sleeps after each message so that it reads
/// `throttle_mbps` on average.
async fn viewer(url: String, window: Arc<Window>, throttle_mbps: Option<f64>) -> ViewerResult {
    let mut result = ViewerResult::default();
    let connect = Instant::now();
    // A slow viewer has the small receive window of a phone on poor Wi-Fi, rather
    // than loopback's megabytes, so the server sees it fall behind.
    let receive_buffer = if throttle_mbps.is_some() {
        64 * 1024
    } else {
        0
    };
    let mut client = RawClient::connect(&url, receive_buffer).await;
    let mut published_us = None;
    loop {
        let message = client.expect_next("viewer").await;
        let received = now_us();
        let start = window.start_us.load(Ordering::SeqCst);
        let end = window.end_us.load(Ordering::SeqCst);
        if start != 0 && received >= end {
            break;
        }
        // The slow viewer's figures cover its whole life: it may spend the window
        // asleep over one big keyframe.
        let measuring = throttle_mbps.is_some() || (start != 0 && received >= start);
        match message {
            Received::Text(text) => {
                let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
                match value["type"].as_str() {
                    Some("timing") => published_us = value["published_us"].as_u64(),
                    Some("resync") if measuring => {
                        result.resyncs += 1;
                        result.dropped += value["dropped"].as_u64().unwrap_or(0);
                    }
                    _ => {}
                }
            }
            Received::Binary(len) => {
                if result.join_ms.is_none() {
                    result.join_ms = Some(connect.elapsed().as_secs_f64() * 1000.0);
                    window.joined.fetch_add(1, Ordering::SeqCst);
                }
                let published = published_us.take();
                if measuring {
                    result.frames += 1;
                    result.bytes += len as u64;
                    if let Some(published) = published {
                        result
                            .delivery_ms
                            .push(received.saturating_sub(published) as f64 / 1000.0);
                    }
                }
                if let Some(mbps) = throttle_mbps {
                    let seconds = len as f64 * 8.0 / (mbps * 1e6);
                    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
                }
            }
            Received::Close => unreachable!("expect_next panics on close"),
        }
    }
    result
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) in parentheses.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat; index 11 and 12 after the name.
    field(11) + field(12)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Resident set size in MB.
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{model}, {cores} cores")
}
