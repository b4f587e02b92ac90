//! Soak benchmark (`make soak`): the release `streamer` binary under the appliance's
//! file limit, fed by the file source, with many viewers coming and going for a long
//! time and hostile clients mixed in. It prints one row per sample period (server
//! RSS, open files, CPU, delivery delay, join time, what the hostile clients got) and
//! a summary comparing the start with the end: memory, files and delay must stay flat.
//!
//! - **Viewers**: `SOAK_VIEWERS` (500) WebSocket viewers (`?timing=frame`), each from
//!   its own loopback address (127.0.1.1, 127.0.1.2, ...: all of 127/8 is loopback on
//!   Linux), as on a LAN. `SOAK_CHURN` (50) times a second one of them drops its
//!   connection abruptly (a reset, no close frame: a phone leaving Wi-Fi) and
//!   reconnects at once.
//! - **Hostile clients** (`SOAK_HOSTILE=0` leaves them out), from 127.0.3.x:
//!   half-open requests (`GET / HTTP/1.1\r\n` and nothing more), slowloris (a header
//!   byte a second), unfinished 380 KB headers, a squatter opening viewer after viewer
//!   from one address and reading each at 32 KiB/s, ping floods (10 pings in one write,
//!   ten times a second), malformed frames (a reserved opcode), and viewers that never
//!   read.
//! - **A person** loads `/` from a fresh address each sample period: the page must
//!   keep loading at once.
//!
//! Other options: `SOAK_SECONDS` (600), `SOAK_SAMPLE_SECONDS` (10), `SOAK_WIDTH` /
//! `SOAK_HEIGHT` / `SOAK_FPS` / `SOAK_MBPS` (1280x720, 25, 1), `SOAK_NOFILE` (the
//! server's file limit; default: `LimitNOFILE` of the appliance's streamer.service).
//! Results go to docs/benchmarks.md by hand, with the machine they ran on.

#[path = "support/load.rs"]
mod load;
#[path = "../tests/support/process.rs"]
mod process;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use load::{
    clock_ticks, connect_from, cpu_ticks, ensure_video, machine, now_us, open_files, peak_rss_mb,
    rss_mb, setting, ConnectError, ConnectOptions, RawClient, Received, Samples, VideoSettings,
};
use process::StreamerProcess;

struct Settings {
    viewers: usize,
    churn_per_second: f64,
    seconds: u64,
    sample_seconds: u64,
    hostile: bool,
    nofile: u64,
    video: VideoSettings,
}

fn main() {
    let settings = Settings {
        viewers: setting("SOAK_VIEWERS", 500),
        churn_per_second: setting("SOAK_CHURN", 50.0),
        seconds: setting("SOAK_SECONDS", 600),
        sample_seconds: setting("SOAK_SAMPLE_SECONDS", 10),
        hostile: setting("SOAK_HOSTILE", 1) != 0,
        nofile: setting("SOAK_NOFILE", unit_nofile()),
        video: VideoSettings {
            width: setting("SOAK_WIDTH", 1280),
            height: setting("SOAK_HEIGHT", 720),
            fps: setting("SOAK_FPS", 25),
            mbps: setting("SOAK_MBPS", 1.0),
        },
    };
    assert!(
        settings.viewers <= 2 * 250,
        "SOAK_VIEWERS: at most 500 (one loopback address each)"
    );
    raise_own_file_limit();
    let video = ensure_video(&settings.video);
    println!("streamer soak benchmark");
    println!("  machine: {}", machine());
    println!(
        "  video:   {}x{} at {} fps, {} Mbit/s ({})",
        settings.video.width,
        settings.video.height,
        settings.video.fps,
        settings.video.mbps,
        video.display()
    );
    println!(
        "  load:    {} viewers, {} abrupt disconnects/s, hostile clients {}, {} s; server file limit {}",
        settings.viewers,
        settings.churn_per_second,
        if settings.hostile { "on" } else { "off" },
        settings.seconds,
        settings.nofile
    );
    let web_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../overlay/usr/share/streamer/www");
    let nofile = format!("--nofile={}:{}", settings.nofile, settings.nofile);
    let server = StreamerProcess::start_with_runner(
        &["prlimit", &nofile],
        Path::new(env!("CARGO_BIN_EXE_streamer")),
        Path::new("/nonexistent/streamer.toml"),
        &[
            ("STREAMER_CAMERA__SOURCE", "file"),
            ("STREAMER_CAMERA__FILE", video.to_str().expect("UTF-8 path")),
            ("STREAMER_SERVER__MAX_VIEWERS", "1000"),
            (
                "STREAMER_SERVER__WEB_ROOT",
                web_root.to_str().expect("UTF-8 path"),
            ),
            // The harness reads the "listening on" line; warnings stay visible.
            ("STREAMER_LOG__LEVEL", "info"),
        ],
    );
    server.wait_for_ok("/healthz", Duration::from_secs(10));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let rows = runtime.block_on(soak(&settings, &server));
    summarize(&rows);
    let (status, _) = server.get("/healthz");
    println!("\nafter the soak: /healthz answers {status}");
    runtime.shutdown_timeout(Duration::from_secs(1));
}

/// `LimitNOFILE` of the appliance's streamer.service, or systemd's default soft
/// limit (1024) when it sets none.
fn unit_nofile() -> u64 {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../overlay/usr/lib/systemd/system/streamer.service");
    std::fs::read_to_string(unit)
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.trim().strip_prefix("LimitNOFILE="))
        .and_then(|value| value.split(':').next_back()?.trim().parse().ok())
        .unwrap_or(1024)
}

/// The load generator itself holds a socket per client.
fn raise_own_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Everything the clients count, shared; the sampler takes and resets the
/// per-period parts.
#[derive(Default)]
struct Stats {
    delivery: Mutex<Vec<f64>>,
    joins: Mutex<Vec<f64>>,
    /// Viewers that connected (first frame received).
    joined: AtomicU64,
    /// Viewers that dropped their connection on purpose.
    aborted: AtomicU64,
    /// A normal viewer's upgrade answered with something other than 101.
    refused: AtomicU64,
    /// A normal viewer's stream ended or stalled without it asking.
    lost: AtomicU64,
    resyncs: AtomicU64,
    hostile: HostileStats,
}

#[derive(Default)]
struct HostileStats {
    /// Half-open and slowloris connections the server closed, and how long each
    /// was held (ms).
    half_open_closed: AtomicU64,
    half_open_held: Mutex<Vec<f64>>,
    /// Connections the server refused at once (connect or first read failed).
    refused_at_once: AtomicU64,
    /// Unfinished large headers: how the server answered.
    big_header_answered: AtomicU64,
    /// The squatter's viewers: accepted and refused.
    squatter_accepted: AtomicU64,
    squatter_refused: AtomicU64,
    /// Pings sent in bursts, and the connections that carried them.
    pings_sent: AtomicU64,
    /// Malformed frames sent, and those answered by a close or a reset within 2 s.
    garbage_sent: AtomicU64,
    garbage_closed: AtomicU64,
    /// Viewers that never read, and those the server closed.
    silent_closed: AtomicU64,
}

/// One sample period's figures.
struct Row {
    at_s: f64,
    rss_mb: f64,
    open_files: usize,
    cpu_percent: f64,
    viewers: u64,
    delivery: Samples,
    joins: Samples,
    page_ms: f64,
    joined: u64,
    aborted: u64,
    refused: u64,
    lost: u64,
}

async fn soak(settings: &Settings, server: &StreamerProcess) -> Vec<Row> {
    let stats = Arc::new(Stats::default());
    let address = server.address;
    let url = format!("ws://{address}/ws?timing=frame");
    let mut churn_targets = Vec::new();
    for i in 0..settings.viewers {
        let notify = Arc::new(Notify::new());
        churn_targets.push(notify.clone());
        let from = IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            1 + (i / 250) as u8,
            1 + (i % 250) as u8,
        ));
        tokio::spawn(viewer_slot(url.clone(), from, notify, stats.clone()));
    }
    tokio::spawn(churn(churn_targets, settings.churn_per_second));
    if settings.hostile {
        spawn_hostile(address, stats.clone());
    }

    let pid = server.pid();
    let ticks = clock_ticks();
    let started = Instant::now();
    let mut last = (Instant::now(), cpu_ticks(pid));
    let mut rows = Vec::new();
    println!(
        "\n| t (s) | RSS (MB) | files | CPU % | viewers | delivery p50 / p99 / max (ms) | join p50 / p99 (ms) | page (ms) | joined | aborted | refused | lost |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    while started.elapsed() < Duration::from_secs(settings.seconds) {
        tokio::time::sleep(Duration::from_secs(settings.sample_seconds)).await;
        let now = (Instant::now(), cpu_ticks(pid));
        let cpu_percent =
            (now.1 - last.1) as f64 / ticks / now.0.duration_since(last.0).as_secs_f64() * 100.0;
        last = now;
        let page_ms = tokio::task::spawn_blocking(move || page_load(address))
            .await
            .expect("page load task");
        let viewers = tokio::task::spawn_blocking(move || viewer_count(address))
            .await
            .expect("status task");
        let row = Row {
            at_s: started.elapsed().as_secs_f64(),
            rss_mb: rss_mb(pid),
            open_files: open_files(pid),
            cpu_percent,
            viewers,
            delivery: Samples(std::mem::take(&mut *stats.delivery.lock().unwrap())),
            joins: Samples(std::mem::take(&mut *stats.joins.lock().unwrap())),
            page_ms,
            joined: stats.joined.swap(0, Ordering::Relaxed),
            aborted: stats.aborted.swap(0, Ordering::Relaxed),
            refused: stats.refused.swap(0, Ordering::Relaxed),
            lost: stats.lost.swap(0, Ordering::Relaxed),
        };
        println!(
            "| {:.0} | {:.1} | {} | {:.0} | {} | {:.1} / {:.1} / {:.0} | {:.1} / {:.1} | {:.1} | {} | {} | {} | {} |",
            row.at_s,
            row.rss_mb,
            row.open_files,
            row.cpu_percent,
            row.viewers,
            row.delivery.percentile(50.0),
            row.delivery.percentile(99.0),
            row.delivery.max(),
            row.joins.percentile(50.0),
            row.joins.percentile(99.0),
            row.page_ms,
            row.joined,
            row.aborted,
            row.refused,
            row.lost,
        );
        rows.push(row);
    }
    println!("\nserver peak RSS (VmHWM): {:.1} MB", peak_rss_mb(pid));
    println!(
        "server resyncs seen by viewers: {}",
        stats.resyncs.load(Ordering::Relaxed)
    );
    if settings.hostile {
        print_hostile(&stats.hostile);
    }
    rows
}

/// One viewer's place: connect, watch until told to drop (or the stream ends),
/// connect again.
async fn viewer_slot(url: String, from: IpAddr, churn: Arc<Notify>, stats: Arc<Stats>) {
    let options = ConnectOptions {
        receive_buffer: 0,
        from: Some(from),
    };
    loop {
        let connect = Instant::now();
        let connect_us = now_us();
        let mut client = match RawClient::try_connect(&url, options).await {
            Ok(client) => client,
            Err(error) => {
                if let ConnectError::Refused(_) = error {
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                } else {
                    stats.lost.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut joined = false;
        let mut published_us = None;
        loop {
            let message = tokio::select! {
                () = churn.notified() => {
                    client.abort();
                    stats.aborted.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                message = tokio::time::timeout(Duration::from_secs(5), client.next()) => message,
            };
            let received = now_us();
            match message {
                Ok(Ok(Received::Text(text))) => {
                    let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
                        continue;
                    };
                    match value["type"].as_str() {
                        Some("timing") => published_us = value["published_us"].as_u64(),
                        Some("resync") => {
                            stats.resyncs.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
                Ok(Ok(Received::Binary(_))) => {
                    if !joined {
                        joined = true;
                        stats.joined.fetch_add(1, Ordering::Relaxed);
                        let ms = connect.elapsed().as_secs_f64() * 1000.0;
                        stats.joins.lock().unwrap().push(ms);
                    } else if let Some(published) = published_us.take() {
                        // The backlog a joiner gets (up to a GOP, published before it
                        // connected) is join time, not delivery delay.
                        if published < connect_us {
                            continue;
                        }
                        let ms = received.saturating_sub(published) as f64 / 1000.0;
                        stats.delivery.lock().unwrap().push(ms);
                    }
                }
                Ok(Ok(Received::Close)) | Ok(Err(_)) | Err(_) => {
                    stats.lost.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
}

/// `per_second` times a second, one viewer (picked at random) drops and reconnects.
async fn churn(targets: Vec<Arc<Notify>>, per_second: f64) {
    if per_second <= 0.0 || targets.is_empty() {
        return;
    }
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
    let mut random = 0x2545_f491_4f6c_dd1d_u64;
    loop {
        interval.tick().await;
        // xorshift64: reproducible, no dependency.
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        targets[(random % targets.len() as u64) as usize].notify_one();
    }
}

/// A hostile client's address: 127.0.3.`n`.
fn hostile_address(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 3, n))
}

fn spawn_hostile(server: SocketAddr, stats: Arc<Stats>) {
    // 50 half-open requests, from 10 addresses.
    for i in 0..50u8 {
        let stats = stats.clone();
        tokio::spawn(async move {
            loop {
                let request = b"GET / HTTP/1.1\r\n".to_vec();
                hold_unfinished(server, hostile_address(1 + i % 10), &request, None, &stats).await;
            }
        });
    }
    // 10 slowloris clients: a byte a second.
    for i in 0..10u8 {
        let stats = stats.clone();
        tokio::spawn(async move {
            loop {
                let request = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
                let drip = Some(Duration::from_secs(1));
                hold_unfinished(server, hostile_address(20 + i), &request, drip, &stats).await;
            }
        });
    }
    // 5 unfinished 380 KB headers.
    for i in 0..5u8 {
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut request = b"GET / HTTP/1.1\r\n".to_vec();
            while request.len() < 380 * 1024 {
                request.extend_from_slice(b"X-Filler: ");
                request.extend(std::iter::repeat_n(b'a', 1000));
                request.extend_from_slice(b"\r\n");
            }
            loop {
                if hold_unfinished(server, hostile_address(40 + i), &request, None, &stats).await {
                    stats
                        .hostile
                        .big_header_answered
                        .fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    // A squatter: viewer after viewer from one address, each read at 32 KiB/s.
    {
        let stats = stats.clone();
        tokio::spawn(async move {
            let url = format!("ws://{server}/ws");
            loop {
                let options = ConnectOptions {
                    receive_buffer: 64 * 1024,
                    from: Some(hostile_address(60)),
                };
                match RawClient::try_connect(&url, options).await {
                    Ok(client) => {
                        stats
                            .hostile
                            .squatter_accepted
                            .fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(read_slowly(client, 32 * 1024));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(_) => {
                        stats
                            .hostile
                            .squatter_refused
                            .fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }
    // 5 ping floods.
    for i in 0..5u8 {
        let stats = stats.clone();
        tokio::spawn(async move {
            let url = format!("ws://{server}/ws");
            let burst: Vec<u8> = (0..10u8)
                .flat_map(|n| load::masked_frame(0x9, &[n]))
                .collect();
            loop {
                let options = ConnectOptions {
                    receive_buffer: 0,
                    from: Some(hostile_address(70 + i)),
                };
                let Ok(client) = RawClient::try_connect(&url, options).await else {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                };
                let (mut reader, mut writer) = client.stream.into_inner().into_split();
                let drain = tokio::spawn(async move {
                    let mut buffer = vec![0u8; 64 * 1024];
                    while matches!(reader.read(&mut buffer).await, Ok(n) if n > 0) {}
                });
                while writer.write_all(&burst).await.is_ok() {
                    stats.hostile.pings_sent.fetch_add(10, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                drain.abort();
            }
        });
    }
    // Malformed frames: one a second.
    {
        let stats = stats.clone();
        tokio::spawn(async move {
            let url = format!("ws://{server}/ws");
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let options = ConnectOptions {
                    receive_buffer: 0,
                    from: Some(hostile_address(80)),
                };
                let Ok(mut client) = RawClient::try_connect(&url, options).await else {
                    continue;
                };
                stats.hostile.garbage_sent.fetch_add(1, Ordering::Relaxed);
                if client.send(0x3, b"reserved opcode").await.is_err() {
                    stats.hostile.garbage_closed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if ends_within(&mut client, Duration::from_secs(2)).await {
                    stats.hostile.garbage_closed.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    // 5 viewers that never read.
    for i in 0..5u8 {
        let stats = stats.clone();
        tokio::spawn(async move {
            let url = format!("ws://{server}/ws");
            loop {
                let options = ConnectOptions {
                    receive_buffer: 4096,
                    from: Some(hostile_address(90 + i)),
                };
                let Ok(mut client) = RawClient::try_connect(&url, options).await else {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                };
                tokio::time::sleep(Duration::from_secs(30)).await;
                // Has the server given up on it? Read what is buffered: the stream
                // ends (close frame or reset) if so.
                if ends_within(&mut client, Duration::from_secs(2)).await {
                    stats.hostile.silent_closed.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}

/// Sends `request` (all at once, or a byte per `drip`) and never finishes it; waits
/// for the server to close the connection. True when the server answered with
/// something (a status line) before closing.
async fn hold_unfinished(
    server: SocketAddr,
    from: IpAddr,
    request: &[u8],
    drip: Option<Duration>,
    stats: &Stats,
) -> bool {
    let options = ConnectOptions {
        receive_buffer: 0,
        from: Some(from),
    };
    let opened = Instant::now();
    let Ok(stream) = connect_from(server, options).await else {
        stats
            .hostile
            .refused_at_once
            .fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
        return false;
    };
    let (mut reader, mut writer) = stream.into_split();
    let writing = async {
        match drip {
            None => {
                let _ = writer.write_all(request).await;
                std::future::pending::<()>().await;
            }
            Some(every) => {
                for byte in request.iter().cycle() {
                    if writer.write_all(&[*byte]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(every).await;
                }
                std::future::pending::<()>().await;
            }
        }
    };
    let mut answer = Vec::new();
    let reading = async {
        let mut buffer = [0u8; 4096];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) if answer.len() < 4096 => answer.extend_from_slice(&buffer[..n]),
                Ok(_) => {}
            }
        }
    };
    // A server that never closes it: give up after 10 minutes.
    let _ = tokio::time::timeout(Duration::from_secs(600), async {
        tokio::select! {
            () = writing => {}
            () = reading => {}
        }
    })
    .await;
    let held = opened.elapsed();
    if held < Duration::from_millis(50) && answer.is_empty() {
        stats
            .hostile
            .refused_at_once
            .fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
    } else {
        stats
            .hostile
            .half_open_closed
            .fetch_add(1, Ordering::Relaxed);
        stats
            .hostile
            .half_open_held
            .lock()
            .unwrap()
            .push(held.as_secs_f64() * 1000.0);
    }
    answer.starts_with(b"HTTP/")
}

/// Whether `client`'s stream ends (a close frame, a reset or the end) within
/// `limit`, reading past whatever messages come first.
async fn ends_within(client: &mut RawClient, limit: Duration) -> bool {
    tokio::time::timeout(limit, async {
        while let Ok(received) = client.next().await {
            if let Received::Close = received {
                return;
            }
        }
    })
    .await
    .is_ok()
}

/// Reads `client`'s stream at `bytes_per_second` until it ends.
async fn read_slowly(client: RawClient, bytes_per_second: usize) {
    let mut stream = client.stream;
    let mut buffer = vec![0u8; bytes_per_second / 10];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Milliseconds for a fresh client (a new address) to load `/`; NaN when it fails.
fn page_load(server: SocketAddr) -> f64 {
    let started = Instant::now();
    let (status, _) = process::http_get(server, "/");
    if status == 200 {
        started.elapsed().as_secs_f64() * 1000.0
    } else {
        f64::NAN
    }
}

/// The server's viewer count, from /metrics.
fn viewer_count(server: SocketAddr) -> u64 {
    let (_, body) = process::http_get(server, "/metrics");
    body.lines()
        .find_map(|line| line.strip_prefix("streamer_viewers "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
        .unwrap_or(0)
}

fn print_hostile(hostile: &HostileStats) {
    let held = Samples(std::mem::take(&mut *hostile.half_open_held.lock().unwrap()));
    let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    println!("\nhostile clients:");
    println!(
        "  unfinished requests closed by the server: {} (held p50 {:.0} ms, max {:.0} ms); refused at once: {}",
        count(&hostile.half_open_closed),
        held.percentile(50.0),
        held.max(),
        count(&hostile.refused_at_once)
    );
    println!(
        "  380 KB unfinished headers answered with a status: {}",
        count(&hostile.big_header_answered)
    );
    println!(
        "  squatter's viewers: {} accepted, {} refused",
        count(&hostile.squatter_accepted),
        count(&hostile.squatter_refused)
    );
    println!("  pings sent in bursts: {}", count(&hostile.pings_sent));
    println!(
        "  malformed frames: {} sent, {} answered by a close within 2 s",
        count(&hostile.garbage_sent),
        count(&hostile.garbage_closed)
    );
    println!(
        "  viewers that never read, closed by the server: {}",
        count(&hostile.silent_closed)
    );
}

/// Start (the second sample: the first includes everyone joining) against the end.
fn summarize(rows: &[Row]) {
    if rows.len() < 3 {
        println!("\ntoo few samples for a summary (SOAK_SECONDS / SOAK_SAMPLE_SECONDS < 3)");
        return;
    }
    let start = &rows[1];
    let end = &rows[rows.len() - 1];
    let rss_max = rows[1..].iter().map(|r| r.rss_mb).fold(f64::NAN, f64::max);
    let files_max = rows[1..].iter().map(|r| r.open_files).max().unwrap_or(0);
    let page_max = rows.iter().map(|r| r.page_ms).fold(f64::NAN, f64::max);
    let refused: u64 = rows[1..].iter().map(|r| r.refused).sum();
    let lost: u64 = rows[1..].iter().map(|r| r.lost).sum();
    println!("\nsummary (sample 2 -> last sample):");
    println!(
        "  RSS:          {:.1} -> {:.1} MB (max {:.1} MB)",
        start.rss_mb, end.rss_mb, rss_max
    );
    println!(
        "  open files:   {} -> {} (max {})",
        start.open_files, end.open_files, files_max
    );
    println!(
        "  delivery p99: {:.1} -> {:.1} ms",
        start.delivery.percentile(99.0),
        end.delivery.percentile(99.0)
    );
    println!(
        "  join p99:     {:.1} -> {:.1} ms",
        start.joins.percentile(99.0),
        end.joins.percentile(99.0)
    );
    println!("  page load:    max {page_max:.1} ms");
    println!(
        "  normal viewers refused: {refused}; streams that ended without the viewer asking: {lost}"
    );
}
