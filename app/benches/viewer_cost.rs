//! What a viewer costs the server, by transport (`make bench`): starts the real
//! `streamer` binary, measures it idle, then with 10 and 100 viewers of each
//! kind in turn, each viewer from its own loopback address (127.x.y.z):
//!
//! - WebSocket (`/ws`, the player's path);
//! - RTSP with RTP interleaved in the RTSP connection (`RTP/AVP/TCP`);
//! - RTSP with RTP over UDP to the viewer's own pair of ports (`RTP/AVP`).
//!
//! Server CPU is utime+stime of the streamer process from `/proc/PID/stat` over
//! the window (% of one core); "above idle, per viewer" = (CPU - idle) / N. Each
//! viewer counts what it receives (access units by the RTP marker bit, lost
//! packets by sequence gaps) so that the figures are known to be for every frame
//! reaching every viewer.
//!
//! Sources (`BENCH_COST_SOURCES`, default `pattern,file`; empty: only the
//! in-process figures): `pattern` is the test
//! pattern at the default 1280x720, 30 fps (`encoder.bitrate` 3 Mbit/s, which the
//! simple picture does not fill; its encoder runs in the
//! streamer and is part of the idle figure); `file` is the fan-out bench's
//! ffmpeg-made 1920x1080 25 fps stream at `BENCH_MBPS` (8) replayed by the file
//! source. Options: `BENCH_COST_SECONDS` (15 per window), `BENCH_COST_VIEWERS`
//! (`10,100`), `BENCH_COST_KINDS` (`websocket,tcp,udp`), `BENCH_COST_UDP_BUFFER`
//! (the UDP viewers' receive buffer in bytes, 4 MiB; 0: the kernel's default).
//!
//! Runs in a network namespace with only `lo` (it re-runs itself under
//! `unshare`): the UDP viewers' datagrams never leave loopback.
//!
//! Last, in-process, what the part of an RTSP viewer's cost that is done once per
//! viewer and frame takes: packetizing (`rtp::packetizer`, which splits the
//! access unit into NAL units and copies them into packets) and framing the
//! packets for the RTSP connection, per second of the file's video; and what
//! sending a second of those packets as UDP datagrams to one viewer takes, one
//! `sendto` per packet (as the server does) against `sendmmsg` batches of
//! header + shared payload (what sharing the packetization across viewers would
//! allow).

#[path = "support/load.rs"]
mod load;
#[path = "../tests/support/netns.rs"]
mod netns;
#[path = "../tests/support/process.rs"]
mod process;
#[path = "support/rtsp.rs"]
mod rtsp;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use load::{
    clock_ticks, cpu_ticks, ensure_video, machine, rss_mb, setting, ConnectOptions, RawClient,
    Received, VideoSettings,
};
use process::StreamerProcess;
use rtsp::{RtpCounters, RtpTransport, RtspClient, UdpPorts};

/// The UDP viewers' RTP port (RTCP the next), each on its own address.
const CLIENT_RTP_PORT: u16 = 50_000;
/// The UDP viewers' receive buffers by default: a 1080p keyframe (~600 KB)
/// arrives as one burst of datagrams.
const UDP_RECEIVE_BUFFER: usize = 4 << 20;
/// After everyone joined, before the window: the joiners' keyframe backlogs are
/// sent and read.
const SETTLE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    WebSocket,
    RtspTcp,
    RtspUdp,
}

impl Kind {
    fn parse(name: &str) -> Kind {
        match name {
            "websocket" => Kind::WebSocket,
            "tcp" => Kind::RtspTcp,
            "udp" => Kind::RtspUdp,
            other => panic!("BENCH_COST_KINDS: unknown kind {other:?} (websocket, tcp, udp)"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::WebSocket => "WebSocket",
            Kind::RtspTcp => "RTSP/TCP",
            Kind::RtspUdp => "RTSP/UDP",
        }
    }
}

fn main() {
    netns::run_program_inside();
    let seconds: u64 = setting("BENCH_COST_SECONDS", 15);
    let counts: Vec<usize> = setting("BENCH_COST_VIEWERS", "10,100".to_owned())
        .split(',')
        .map(|n| n.trim().parse().expect("BENCH_COST_VIEWERS: numbers"))
        .collect();
    let sources = setting("BENCH_COST_SOURCES", "pattern,file".to_owned());
    let kinds: Vec<Kind> = setting("BENCH_COST_KINDS", "websocket,tcp,udp".to_owned())
        .split(',')
        .map(|k| Kind::parse(k.trim()))
        .collect();
    let udp_buffer: usize = setting("BENCH_COST_UDP_BUFFER", UDP_RECEIVE_BUFFER);
    let mbps: f64 = setting("BENCH_MBPS", 8.0);
    println!("streamer: server CPU per viewer, by transport");
    println!("  machine: {}", machine());
    println!("  window:  {seconds} s per scenario, in a loopback-only network namespace");
    println!(
        "  UDP viewers' receive buffer: {}",
        match udp_buffer {
            0 => "the kernel's default".to_owned(),
            bytes => format!("{bytes} bytes"),
        }
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    for source in sources.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (label, env): (String, Vec<(&str, String)>) = match source {
            "pattern" => (
                "test pattern 1280x720 30 fps".into(),
                vec![("STREAMER_CAMERA__SOURCE", "test".into())],
            ),
            "file" => {
                let video = ensure_video(&VideoSettings {
                    width: 1920,
                    height: 1080,
                    fps: 25,
                    mbps,
                });
                (
                    format!("file 1920x1080 25 fps {mbps} Mbit/s"),
                    vec![
                        ("STREAMER_CAMERA__SOURCE", "file".into()),
                        (
                            "STREAMER_CAMERA__FILE",
                            video.to_str().expect("UTF-8 path").into(),
                        ),
                    ],
                )
            }
            other => panic!("BENCH_COST_SOURCES: unknown source {other:?} (pattern, file)"),
        };
        println!("\n## {label}\n");
        let plan = Plan {
            seconds,
            counts: &counts,
            kinds: &kinds,
            udp_buffer,
        };
        runtime.block_on(run_source(&label, &env, &plan));
    }
    let video = ensure_video(&VideoSettings {
        width: 1920,
        height: 1080,
        fps: 25,
        mbps,
    });
    packetizing(&video);
    udp_sending(&video);
}

/// Sends the file's RTP packets once to a local UDP socket drained by another
/// thread: one `sendto` each, then `sendmmsg` with each message's header and
/// payload in two iovecs (64 a call), and prints the sending thread's CPU time
/// per second of video, i.e. per UDP viewer.
fn udp_sending(video: &Path) {
    use std::os::fd::AsRawFd;
    use streamer::rtp::packetizer::{Packetizer, DEFAULT_MAX_PAYLOAD};
    let data = std::fs::read(video).expect("bench video");
    let packets = Packetizer::new(1, 0, DEFAULT_MAX_PAYLOAD).packetize(&data, 0, 96);
    let receiver = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a receiver");
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a sender");
    sender
        .connect(receiver.local_addr().unwrap())
        .expect("connect");
    receiver
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let _ = socket2::SockRef::from(&receiver).set_recv_buffer_size(UDP_RECEIVE_BUFFER);
    // Drains until a quiet 200 ms; counts what arrived.
    let drain = |receiver: std::net::UdpSocket| {
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 2048];
            let mut n = 0u64;
            while receiver.recv(&mut buf).is_ok() {
                n += 1;
            }
            (receiver, n)
        })
    };
    let thread_cpu = || {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid timespec to write.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
    };
    // The sender waits while the receiver's buffer is full rather than losing
    // packets: pace by sending in slices of 64 with a yield between.
    let fd = sender.as_raw_fd();
    let (mut one_by_one, mut batched) = (f64::INFINITY, f64::INFINITY);
    let (mut received_one, mut received_batched) = (0, 0);
    let mut receiver = Some(receiver);
    // Three rounds of each, alternating; the lowest of each counts.
    for _ in 0..3 {
        let drainer = drain(receiver.take().expect("the receiver"));
        let started = thread_cpu();
        for chunk in packets.chunks(64) {
            for packet in chunk {
                // SAFETY: a valid buffer of the given length on a connected socket.
                unsafe { libc::send(fd, packet.as_ptr().cast(), packet.len(), 0) };
            }
            std::thread::yield_now();
        }
        one_by_one = one_by_one.min(thread_cpu() - started);
        let (back, n) = drainer.join().expect("drain");
        received_one = n;
        let drainer = drain(back);
        let started = thread_cpu();
        for chunk in packets.chunks(64) {
            let mut iovecs: Vec<[libc::iovec; 2]> = chunk
                .iter()
                .map(|p| {
                    [
                        libc::iovec {
                            iov_base: p.as_ptr() as *mut libc::c_void,
                            iov_len: 12,
                        },
                        libc::iovec {
                            iov_base: p[12..].as_ptr() as *mut libc::c_void,
                            iov_len: p.len() - 12,
                        },
                    ]
                })
                .collect();
            let mut messages: Vec<libc::mmsghdr> = iovecs
                .iter_mut()
                .map(|iov| {
                    // SAFETY: all-zero is a valid msghdr (no name, no control).
                    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
                    header.msg_iov = iov.as_mut_ptr();
                    header.msg_iovlen = 2;
                    libc::mmsghdr {
                        msg_hdr: header,
                        msg_len: 0,
                    }
                })
                .collect();
            let mut sent = 0;
            while sent < messages.len() {
                // SAFETY: messages point at iovecs and packets that outlive the call.
                let n = unsafe {
                    libc::sendmmsg(
                        fd,
                        messages[sent..].as_mut_ptr(),
                        (messages.len() - sent) as libc::c_uint,
                        0,
                    )
                };
                if n <= 0 {
                    break;
                }
                sent += n as usize;
            }
            std::thread::yield_now();
        }
        batched = batched.min(thread_cpu() - started);
        let (back, n) = drainer.join().expect("drain");
        received_batched = n;
        receiver = Some(back);
    }
    let seconds_of_video = load::VIDEO_SECONDS as f64;
    println!("\n## per UDP viewer, in-process: sending the same packets\n");
    println!(
        "  sendto, one per packet:        {:.2} ms per second of video = {:.3} % of one core ({} of {} arrived)",
        one_by_one / seconds_of_video * 1000.0,
        one_by_one / seconds_of_video * 100.0,
        received_one,
        packets.len()
    );
    println!(
        "  sendmmsg, 64 per call, 2 iovecs: {:.2} ms per second of video = {:.3} % of one core ({} of {} arrived)",
        batched / seconds_of_video * 1000.0,
        batched / seconds_of_video * 100.0,
        received_batched,
        packets.len()
    );
}

/// Times what the server does per RTSP viewer for every frame before any
/// system call: `Packetizer::packetize` (split into NAL units, copy into RTP
/// packets) and, for TCP, copying the packets into one interleaved buffer.
/// Prints the cost per second of `video` (the file source's stream) per viewer.
fn packetizing(video: &Path) {
    use bytes::BufMut;
    use streamer::rtp::packetizer::{Packetizer, DEFAULT_MAX_PAYLOAD};
    let data = std::fs::read(video).expect("bench video");
    let seconds_of_video = load::VIDEO_SECONDS as f64;
    let rounds = 10;
    let mut packetizer = Packetizer::new(0x1234_5678, 0, DEFAULT_MAX_PAYLOAD);
    let mut packets_made = 0usize;
    let started = Instant::now();
    for round in 0..rounds {
        let packets = packetizer.packetize(&data, round, 96);
        packets_made = packets.len();
        std::hint::black_box(&packets);
    }
    let packetize = started.elapsed().as_secs_f64() / f64::from(rounds);
    let packets = packetizer.packetize(&data, 0, 96);
    let started = Instant::now();
    for _ in 0..rounds {
        let total: usize = packets.iter().map(|p| 4 + p.len()).sum();
        let mut buf = bytes::BytesMut::with_capacity(total);
        for packet in &packets {
            buf.put_u8(b'$');
            buf.put_u8(0);
            buf.put_u16(packet.len() as u16);
            buf.put_slice(packet);
        }
        std::hint::black_box(buf.freeze());
    }
    let interleave = started.elapsed().as_secs_f64() / f64::from(rounds);
    let per_second = |t: f64| t / seconds_of_video * 100.0;
    println!(
        "\n## per viewer, in-process: packetizing {}\n",
        video.display()
    );
    println!(
        "  {:.1} s of video, {} bytes, {} RTP packets ({:.0} per second)",
        seconds_of_video,
        data.len(),
        packets_made,
        packets_made as f64 / seconds_of_video
    );
    println!(
        "  packetize:          {:.2} ms per second of video = {:.3} % of one core per viewer",
        packetize / seconds_of_video * 1000.0,
        per_second(packetize)
    );
    println!(
        "  interleave (TCP):   {:.2} ms per second of video = {:.3} % of one core per viewer",
        interleave / seconds_of_video * 1000.0,
        per_second(interleave)
    );
}

/// What each source is measured with.
struct Plan<'a> {
    seconds: u64,
    counts: &'a [usize],
    kinds: &'a [Kind],
    /// The UDP viewers' `SO_RCVBUF`; 0: left alone.
    udp_buffer: usize,
}

/// One window's figures.
struct Measured {
    cpu_percent: f64,
    per_second: Vec<f64>,
    rss_mb: f64,
    /// The highest RSS of the per-second samples.
    peak_rss_mb: f64,
    seconds: f64,
    /// Frames the hub published in the window.
    published: u64,
    /// Frames viewers lost in the server's count (all viewers, the window).
    server_drops: u64,
}

async fn run_source(label: &str, env: &[(&str, String)], plan: &Plan<'_>) {
    let seconds = plan.seconds;
    let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.extend([
        ("STREAMER_SERVER__MAX_VIEWERS", "1000"),
        ("STREAMER_RTSP__PORT", "0"),
        ("STREAMER_RTSP__UDP_PORT", "0"),
        ("STREAMER_LOG__LEVEL", "info"),
    ]);
    let server = StreamerProcess::start(
        Path::new(env!("CARGO_BIN_EXE_streamer")),
        Path::new("/nonexistent/streamer.toml"),
        &vars,
    );
    server.wait_for_ok("/healthz", Duration::from_secs(10));
    let rtsp_port = status(&server)["rtsp"]["port"]
        .as_u64()
        .expect("/api/status rtsp.port (RTSP enabled)") as u16;
    let rtsp_address = SocketAddr::new(server.address.ip(), rtsp_port);
    // Wait for the stream (the first keyframe) before the idle window.
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(&server)["video"]["keyframes"].as_u64().unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "no keyframe from {label}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(SETTLE).await;
    let idle = measure(&server, seconds).await;
    println!(
        "| source | transport | viewers | server CPU (% of one core), per-second range | above idle, per viewer | each added viewer (from the row above) | RSS at the end / peak (MB) | received per viewer | frames per viewer (published) | lost |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| {label} | | 0 (idle) | {:.1}, {} | | | {:.1} / {:.1} | | ({}) | |",
        idle.cpu_percent,
        range(&idle.per_second),
        idle.rss_mb,
        idle.peak_rss_mb,
        idle.published
    );
    let mut scenario = 0u8;
    for &kind in plan.kinds {
        let mut previous = (0usize, idle.cpu_percent);
        for &count in plan.counts {
            scenario += 1;
            let row = run_scenario(&server, rtsp_address, kind, count, plan, scenario).await;
            let above = (row.measured.cpu_percent - idle.cpu_percent) / count as f64;
            let added = (row.measured.cpu_percent - previous.1) / (count - previous.0) as f64;
            previous = (count, row.measured.cpu_percent);
            let all = row.min_frames + 2 >= row.measured.published
                && row.lost == 0
                && row.measured.server_drops == 0;
            println!(
                "| {label} | {} | {count} | {:.1}, {} | {above:.3} % | {added:.3} % | {:.1} / {:.1} | {:.2} Mbit/s | {}-{} ({}) | {} packets, {} frames dropped by the server{} |",
                kind.name(),
                row.measured.cpu_percent,
                range(&row.measured.per_second),
                row.measured.rss_mb,
                row.measured.peak_rss_mb,
                row.mbps,
                row.min_frames,
                row.max_frames,
                row.measured.published,
                row.lost,
                row.measured.server_drops,
                if all { "" } else { " **(not every frame reached every viewer)**" }
            );
        }
    }
}

/// One scenario's figures.
struct Row {
    measured: Measured,
    min_frames: u64,
    max_frames: u64,
    /// RTP packets missing by sequence numbers, all viewers, in the window.
    lost: u64,
    /// Mean received bitrate per viewer.
    mbps: f64,
}

async fn run_scenario(
    server: &StreamerProcess,
    rtsp: SocketAddr,
    kind: Kind,
    count: usize,
    plan: &Plan<'_>,
    scenario: u8,
) -> Row {
    let (seconds, udp_buffer) = (plan.seconds, plan.udp_buffer);
    let mut tasks = Vec::new();
    let mut counters = Vec::new();
    for i in 0..count {
        // 127.S.x.y: a fresh address per viewer and scenario (all of 127/8 is lo).
        let from = IpAddr::V4(Ipv4Addr::new(
            127,
            10 + scenario,
            (i / 250) as u8,
            (1 + i % 250) as u8,
        ));
        let counter = Arc::new(RtpCounters::default());
        counters.push(counter.clone());
        let ws = format!("ws://{}/ws", server.address);
        tasks.push(tokio::spawn(async move {
            let result = match kind {
                Kind::WebSocket => websocket_viewer(&ws, from, counter).await,
                Kind::RtspTcp => rtsp_viewer(rtsp, from, RtpTransport::Tcp, 0, counter).await,
                Kind::RtspUdp => {
                    let transport = RtpTransport::Udp {
                        rtp_port: CLIENT_RTP_PORT,
                    };
                    rtsp_viewer(rtsp, from, transport, udp_buffer, counter).await
                }
            };
            if let Err(error) = result {
                eprintln!("viewer {from} ({}): {error}", kind.name());
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let joined = counters
            .iter()
            .filter(|c| c.frames.load(Ordering::Relaxed) > 0)
            .count();
        if joined == count {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} {} viewers got a frame within 60 s",
            joined,
            kind.name()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(SETTLE).await;
    let snapshot = |counters: &[Arc<RtpCounters>]| -> Vec<(u64, u64, u64)> {
        counters
            .iter()
            .map(|c| {
                (
                    c.frames.load(Ordering::Relaxed),
                    c.missing.load(Ordering::Relaxed),
                    c.bytes.load(Ordering::Relaxed),
                )
            })
            .collect()
    };
    let before = snapshot(&counters);
    let measured = measure(server, seconds).await;
    let after = snapshot(&counters);
    let frames: Vec<u64> = before.iter().zip(&after).map(|(b, a)| a.0 - b.0).collect();
    let lost = before.iter().zip(&after).map(|(b, a)| a.1 - b.1).sum();
    let bytes: u64 = before.iter().zip(&after).map(|(b, a)| a.2 - b.2).sum();
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _ = task.await;
    }
    // Everyone gone before the next scenario (the server notices closed sockets
    // at once; a UDP session ends with its RTSP connection).
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(server)["viewers"]
        .as_array()
        .is_some_and(|v| !v.is_empty())
    {
        assert!(Instant::now() < deadline, "viewers still listed after 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    Row {
        min_frames: frames.iter().copied().min().unwrap_or(0),
        max_frames: frames.iter().copied().max().unwrap_or(0),
        lost,
        mbps: bytes as f64 * 8.0 / measured.seconds / count as f64 / 1e6,
        measured,
    }
}

/// The server's CPU over `seconds`, per second and in all, its RSS at the end,
/// and the hub's frames and viewer drops in the window.
async fn measure(server: &StreamerProcess, seconds: u64) -> Measured {
    let counters = |s: &serde_json::Value| {
        (
            s["video"]["frames"].as_u64().unwrap_or(0),
            s["video"]["viewer_drops"].as_u64().unwrap_or(0),
        )
    };
    let start_counters = counters(&status(server));
    let started = Instant::now();
    let start_cpu = cpu_ticks(server.pid());
    let mut last = (started, start_cpu);
    let mut per_second = Vec::new();
    let mut peak_rss_mb = 0.0f64;
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = (Instant::now(), cpu_ticks(server.pid()));
        let elapsed = now.0.duration_since(last.0).as_secs_f64();
        per_second.push((now.1 - last.1) as f64 / clock_ticks() / elapsed * 100.0);
        last = now;
        peak_rss_mb = peak_rss_mb.max(rss_mb(server.pid()));
    }
    let end_cpu = cpu_ticks(server.pid());
    let elapsed = started.elapsed().as_secs_f64();
    let end_counters = counters(&status(server));
    let rss = rss_mb(server.pid());
    Measured {
        cpu_percent: (end_cpu - start_cpu) as f64 / clock_ticks() / elapsed * 100.0,
        per_second,
        rss_mb: rss,
        peak_rss_mb: peak_rss_mb.max(rss),
        seconds: elapsed,
        published: end_counters.0 - start_counters.0,
        server_drops: end_counters.1 - start_counters.1,
    }
}

fn status(server: &StreamerProcess) -> serde_json::Value {
    serde_json::from_str(&server.get("/api/status").1).expect("/api/status JSON")
}

/// "min-max" of per-second figures.
fn range(values: &[f64]) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{min:.0}-{max:.0}")
}

/// A WebSocket viewer from `from`: counts binary messages (one per frame).
async fn websocket_viewer(
    url: &str,
    from: IpAddr,
    counters: Arc<RtpCounters>,
) -> Result<(), String> {
    let options = ConnectOptions {
        receive_buffer: 0,
        from: Some(from),
    };
    let mut client = RawClient::try_connect(url, options)
        .await
        .map_err(|e| format!("{e:?}"))?;
    loop {
        match client.next().await.map_err(|e| e.to_string())? {
            Received::Binary(len) => {
                counters.frames.fetch_add(1, Ordering::Relaxed);
                counters.bytes.fetch_add(len as u64, Ordering::Relaxed);
            }
            Received::Text(_) => {}
            Received::Close => return Err("the server closed the stream".into()),
        }
    }
}

/// An RTSP viewer from `from` taking RTP over `transport` (UDP: into sockets
/// with `udp_buffer` bytes of receive buffer, or the kernel's default when 0).
async fn rtsp_viewer(
    server: SocketAddr,
    from: IpAddr,
    transport: RtpTransport,
    udp_buffer: usize,
    counters: Arc<RtpCounters>,
) -> Result<(), String> {
    // The UDP ports first: the server may send as soon as PLAY is answered.
    let ports = match transport {
        RtpTransport::Udp { rtp_port } => Some(
            UdpPorts::bind(from, rtp_port, udp_buffer)
                .map_err(|e| format!("bind {from}:{rtp_port}: {e}"))?,
        ),
        RtpTransport::Tcp => None,
    };
    let mut client = RtspClient::connect(server, from)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    client.play(transport).await?;
    match ports {
        None => client.count_interleaved(counters).await,
        Some(ports) => tokio::select! {
            r = client.hold() => r.and(Err(std::io::ErrorKind::UnexpectedEof.into())),
            r = ports.count(counters) => r,
        },
    }
    .map_err(|e| e.to_string())
}
