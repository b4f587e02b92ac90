//! Hostile and careless clients against the real binary: half-open connections
//! under the appliance's file limit, unfinished request heads, a client squatting
//! the viewer places, and a `server.bind` address the machine does not have.
//!
//! Each client picks its own loopback source address (127.0.0.x), as separate
//! machines on a LAN would have. The tests run one at a time: each opens up to a
//! thousand sockets and measures the server.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use support::process::{proc_status, StreamerProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::{self, Message};

/// One test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The appliance's soft limit when systemd sets none: the limit of the finding.
const FILE_LIMIT: &str = "--nofile=1024:1024";
/// Connections of the half-open attack: more than the file limit.
const HALF_OPEN: usize = 1_050;
/// The server's header timeout (`web::connections::HEADER_TIMEOUT`).
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Slack on every time bound: the machine runs other builds.
const SLACK: u32 = 3;

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_streamer"))
}

fn web_root() -> String {
    support::repo_root()
        .join("overlay/usr/share/streamer/www")
        .to_str()
        .expect("UTF-8 path")
        .to_owned()
}

/// Starts the streamer on the Pi sample (file source) with `extra` variables,
/// under the appliance's file limit.
fn start(extra: &[(&str, &str)]) -> StreamerProcess {
    let sample = support::pi_sample();
    let web_root = web_root();
    let mut env = vec![
        ("STREAMER_CAMERA__SOURCE", "file"),
        (
            "STREAMER_CAMERA__FILE",
            sample.to_str().expect("UTF-8 path"),
        ),
        ("STREAMER_SERVER__WEB_ROOT", web_root.as_str()),
        ("STREAMER_LOG__LEVEL", "info"),
    ];
    env.extend_from_slice(extra);
    let server = StreamerProcess::start_with_runner(
        &["prlimit", FILE_LIMIT],
        &binary(),
        std::path::Path::new("/nonexistent/streamer.toml"),
        &env,
    );
    assert_eq!(
        open_file_limit(server.pid()),
        1024,
        "the streamer runs under the 1024-file limit"
    );
    server
}

/// The test process opens more than a thousand sockets: raise its own soft
/// limit to the hard one.
fn raise_own_file_limit(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: both calls only read or write the struct given, which lives here.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
    #[allow(clippy::useless_conversion)] // 32 bits on 32-bit ARM
    let current = u64::from(limit.rlim_cur);
    assert!(
        current >= needed,
        "this test needs {needed} open files; the hard limit is {current}"
    );
}

/// The soft open-file limit of process `pid`.
fn open_file_limit(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("/proc limits");
    text.lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3)?.parse().ok())
        .expect("Max open files")
}

/// Files the process `pid` has open.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// A connection to `server` from the loopback address `source`.
async fn connect_from(source: &str, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    let ip: IpAddr = source.parse().expect("address");
    socket.bind(SocketAddr::new(ip, 0))?;
    socket.connect(server).await
}

/// `GET path` from `source`, `Connection: close`: the status and body, and how
/// long it took. Status 0 when it failed or took over 10 s.
async fn get_from(source: &str, server: SocketAddr, path: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let exchange = async {
        let mut stream = connect_from(source, server).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        Some(String::from_utf8_lossy(&response).into_owned())
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let (status, body) = support::process::status_and_body(&response);
    (status, body, started.elapsed())
}

/// A metric's value from `/metrics`, asked from `source`.
/// While every place is taken and those closed to make room are still closing,
/// the server answers 503 "try again shortly": the scraper does, as Prometheus
/// would at its next scrape (up to 5 s).
async fn metric(source: &str, server: SocketAddr, name: &str) -> f64 {
    let mut tries = 0;
    let body = loop {
        let (status, body, _) = get_from(source, server, "/metrics").await;
        tries += 1;
        if status == 503 && body.contains("try again shortly") && tries < 50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert_eq!(status, 200, "/metrics: {body}");
        break body;
    };
    support::metric_value(&body, name).unwrap_or_else(|| panic!("no {name} in /metrics:\n{body}"))
}

/// Opens `count` connections from `source`, each sending `head` and nothing more.
/// Connections the server refuses are kept open on this side too.
async fn half_open(source: &str, server: SocketAddr, count: usize, head: &[u8]) -> Vec<TcpStream> {
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        let source = source.to_owned();
        let head = head.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut stream = connect_from(&source, server).await.ok()?;
            // A refused connection may already be closed: that is fine.
            let _ = stream.write_all(&head).await;
            Some(stream)
        }));
    }
    let mut streams = Vec::with_capacity(count);
    for task in tasks {
        if let Some(stream) = task.await.expect("connect task") {
            streams.push(stream);
        }
    }
    streams
}

/// Waits until the server has taken what the kernel queued for it: its count of
/// open files stays the same for 300 ms (at most 3 s).
async fn settled(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut last = open_files(pid);
    let mut since = Instant::now();
    while Instant::now() < deadline && since.elapsed() < Duration::from_millis(300) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = open_files(pid);
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
}

/// The page and the status load, from another address, while the server is
/// under attack: each within a second (with slack).
async fn a_normal_client_is_served(server: SocketAddr, log: impl Fn() -> String) {
    for path in ["/", "/api/status"] {
        let (status, body, took) = get_from("127.0.0.2", server, path).await;
        assert_eq!(status, 200, "{path}: {status} {body}\nlog:\n{}", log());
        assert!(
            took < Duration::from_secs(1) * SLACK,
            "{path} took {took:?}\nlog:\n{}",
            log()
        );
    }
}

#[test]
fn half_open_connections_from_one_address_do_not_lock_out_others() {
    let _serial = serial();
    raise_own_file_limit(4 * HALF_OPEN as u64);
    let server = start(&[]);
    let address = server.address;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let started = Instant::now();
        let attack = half_open("127.0.0.1", address, HALF_OPEN, b"GET / HTTP/1.1\r\n").await;
        assert_eq!(attack.len(), HALF_OPEN, "every attacking socket connected");
        settled(server.pid()).await;
        a_normal_client_is_served(address, || server.log()).await;
        // The attack was still on: its connections had not timed out yet.
        assert!(
            started.elapsed() < HEADER_TIMEOUT,
            "{:?}",
            started.elapsed()
        );
        // The attack's sockets reach the server over seconds, not at once: the
        // listen backlog (1024) is shorter than the attack, so the kernel
        // answers the rest with SYN cookies and takes each when its client
        // sends again, which on a loaded machine goes on past `settled` and
        // the header timeout. So the refusals and the files are awaited
        // (generously: the attack stays open all along), and at every look
        // the one address holds at most its 32 places (plus the scraper's).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let open = metric("127.0.0.3", address, "streamer_connections").await;
            assert!(open <= 32.0 + 3.0, "{open} connections open");
            let refused = metric(
                "127.0.0.3",
                address,
                "streamer_connections_refused_address_total",
            )
            .await;
            // The refused ones are closed as they are accepted: the files are
            // the admitted 32 and the server's own, never hundreds.
            let files = open_files(server.pid());
            if refused >= (HALF_OPEN / 2) as f64 && files < 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "after {:?}: {refused} refused, {files} files open",
                started.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(attack);
    });
    assert!(
        server.log().contains("connection refused"),
        "{}",
        server.log()
    );
}

#[test]
fn half_open_connections_from_many_places_make_room_for_a_real_client() {
    // Behind a reverse proxy every client has one address: only the total,
    // computed from the file limit, holds.
    let _serial = serial();
    raise_own_file_limit(4 * HALF_OPEN as u64);
    let server = start(&[("STREAMER_SERVER__MAX_CONNECTIONS_PER_ADDRESS", "100000")]);
    let address = server.address;
    assert!(
        server.log().contains("connections=480"),
        "(1024 - 64) / 2 connections:\n{}",
        server.log()
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let started = Instant::now();
        let attack = half_open("127.0.0.1", address, HALF_OPEN, b"GET / HTTP/1.1\r\n").await;
        assert_eq!(attack.len(), HALF_OPEN, "every attacking socket connected");
        settled(server.pid()).await;
        a_normal_client_is_served(address, || server.log()).await;
        assert!(
            started.elapsed() < HEADER_TIMEOUT,
            "{:?}",
            started.elapsed()
        );
        let files = open_files(server.pid());
        assert!(files < 1024, "{files} files open");
        let open = metric("127.0.0.3", address, "streamer_connections").await;
        assert!(
            (400.0..=480.0 + 16.0).contains(&open),
            "the attack holds the places it may: {open}"
        );
        // Past the total, each newcomer closed an idle one, or was refused while
        // those were still closing. The server's file count stays level while it
        // does so, and on a loaded machine some of the attack still waits in the
        // kernel's queue (or for a SYN retry) when `settled` returns: the counts
        // are awaited within the attack's life.
        let past_total = || async {
            let evicted = metric("127.0.0.3", address, "streamer_connections_evicted_total").await;
            let refused = metric(
                "127.0.0.3",
                address,
                "streamer_connections_refused_full_total",
            )
            .await;
            (evicted, refused)
        };
        let wanted = ((HALF_OPEN - 480) / 2) as f64;
        let (mut evicted, mut refused) = past_total().await;
        while evicted + refused < wanted && started.elapsed() < HEADER_TIMEOUT {
            tokio::time::sleep(Duration::from_millis(100)).await;
            (evicted, refused) = past_total().await;
        }
        assert!(evicted > 0.0, "{evicted}");
        assert!(
            evicted + refused >= wanted,
            "{evicted} + {refused} after {:?}",
            started.elapsed()
        );
        drop(attack);
    });
    assert!(
        !server.log().contains("cannot accept"),
        "the file limit was never reached:\n{}",
        server.log()
    );
}

#[test]
fn unfinished_request_heads_are_closed_and_cost_bounded_memory() {
    let _serial = serial();
    raise_own_file_limit(2048);
    let server = start(&[]);
    let address = server.address;
    let pid = server.pid();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Let the server settle (source started, first viewers' buffers).
        let (status, _, _) = get_from("127.0.0.2", address, "/api/status").await;
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_before = proc_status(pid, "VmRSS");

        // 200 connections, 20 from each of 10 addresses, each with a 380 KB
        // header that never ends.
        let mut big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Padding: ".to_vec();
        big.resize(380 * 1024, b'a');
        let mut tasks = Vec::new();
        for i in 0..200 {
            let source = format!("127.0.0.{}", 10 + i % 10);
            let big = big.clone();
            tasks.push(tokio::spawn(async move {
                let mut stream = connect_from(&source, address).await.expect("connect");
                // The server stops reading and closes, so the write may fail.
                let _ = tokio::time::timeout(Duration::from_secs(10), stream.write_all(&big)).await;
                stream
            }));
        }
        let mut big_streams = Vec::new();
        for task in tasks {
            big_streams.push(task.await.expect("task"));
        }
        // Let the server read what reached it.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_during = proc_status(pid, "VmRSS");
        eprintln!("RSS {rss_before} -> {rss_during} kB");
        let grown_mib = rss_during.saturating_sub(rss_before) as f64 / 1024.0;
        assert!(
            grown_mib < 8.0,
            "RSS grew by {grown_mib:.1} MiB ({rss_before} -> {rss_during} kB)"
        );
        // Each is answered 431 or reset, and closed.
        for mut stream in big_streams {
            let mut response = Vec::new();
            let read =
                tokio::time::timeout(HEADER_TIMEOUT * SLACK, stream.read_to_end(&mut response))
                    .await;
            assert!(read.is_ok(), "an oversized head is closed");
            if !response.is_empty() {
                assert!(
                    response.starts_with(b"HTTP/1.1 431"),
                    "{}",
                    String::from_utf8_lossy(&response)
                );
            }
        }

        // Small unfinished heads: closed by the server within its timeout.
        let started = Instant::now();
        let mut slow = Vec::new();
        for i in 0..100 {
            let source = format!("127.0.0.{}", 30 + i % 5);
            let mut stream = connect_from(&source, address).await.expect("connect");
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
                .await
                .expect("write");
            slow.push(stream);
        }
        for mut stream in slow {
            let mut rest = Vec::new();
            let read =
                tokio::time::timeout(HEADER_TIMEOUT * SLACK, stream.read_to_end(&mut rest)).await;
            assert!(
                read.is_ok(),
                "an unfinished head is still open after {:?}",
                started.elapsed()
            );
        }
        let closed_after = started.elapsed();
        assert!(
            closed_after >= HEADER_TIMEOUT - Duration::from_millis(500),
            "closed after {closed_after:?}, before the timeout"
        );
        let timeouts = metric(
            "127.0.0.2",
            address,
            "streamer_connections_header_timeouts_total",
        )
        .await;
        assert!(timeouts >= 100.0, "{timeouts}");
        // Everything is given back: only this /metrics request and the last
        // one (its task may still be ending) are open.
        let open = metric("127.0.0.2", address, "streamer_connections").await;
        assert!(open <= 2.0, "{open} connections still open");
    });
}

/// Opens a WebSocket to `/ws` from `source`; the handshake's error status when
/// refused.
async fn viewer_from(
    source: &str,
    server: SocketAddr,
) -> Result<tokio_tungstenite::WebSocketStream<TcpStream>, u16> {
    let stream = connect_from(source, server).await.expect("connect");
    match tokio_tungstenite::client_async(format!("ws://{server}/ws"), stream).await {
        Ok((client, _)) => Ok(client),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(error) => panic!("WebSocket handshake: {error}"),
    }
}

#[test]
fn a_client_squatting_the_viewer_places_cannot_keep_another_out() {
    let _serial = serial();
    let server = start(&[("STREAMER_SERVER__MAX_VIEWERS", "10")]);
    let address = server.address;
    server.wait_for_ok("/healthz", Duration::from_secs(10));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // One client asks for every place (and reads nothing).
        let mut squatted = Vec::new();
        let mut refused = Vec::new();
        for _ in 0..10 {
            match viewer_from("127.0.0.2", address).await {
                Ok(viewer) => squatted.push(viewer),
                Err(status) => refused.push(status),
            }
        }
        assert_eq!(
            squatted.len(),
            8,
            "server.max_viewers_per_address's default"
        );
        assert_eq!(refused, [429, 429]);

        // Someone else still watches.
        let mut other = viewer_from("127.0.0.3", address)
            .await
            .unwrap_or_else(|status| panic!("the second client was refused: {status}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut frames = 0;
        while frames < 3 {
            let message = tokio::time::timeout_at(deadline.into(), other.next())
                .await
                .expect("frames within 10 s")
                .expect("open")
                .expect("message");
            if matches!(message, Message::Binary(_)) {
                frames += 1;
            }
        }
        // A viewer sends nothing, and the header timer no longer applies to it
        // once upgraded: still watching well past it.
        tokio::time::sleep(HEADER_TIMEOUT + Duration::from_secs(1)).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let message = tokio::time::timeout_at(deadline.into(), other.next())
                .await
                .expect("frames within 10 s")
                .expect("still open")
                .expect("message");
            if matches!(message, Message::Binary(_)) {
                break;
            }
        }
        let rejected = metric(
            "127.0.0.4",
            address,
            "streamer_viewers_rejected_address_total",
        )
        .await;
        assert_eq!(rejected, 2.0);
        let (_, body, _) = get_from("127.0.0.4", address, "/api/status").await;
        let status: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(status["video"]["viewers_rejected_address"], 2, "{status}");
        assert_eq!(status["viewers"].as_array().map(Vec::len), Some(9));
    });
}

#[test]
fn a_bind_address_the_device_lacks_is_reported_and_the_default_served() {
    let _serial = serial();
    // TEST-NET-1: no machine has it. Only binding is tried; nothing is sent.
    let server = start(&[("STREAMER_SERVER__BIND", "192.0.2.1")]);
    let log = server.log();
    assert!(
        log.contains("server.bind: 192.0.2.1 is not an address of this device"),
        "{log}"
    );
    let body = server.wait_for_ok("/api/status", Duration::from_secs(10));
    let status: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let errors = status["config"]["errors"].as_array().expect("errors");
    assert!(
        errors.iter().any(|e| e.as_str().is_some_and(|e| e
            .starts_with("server.bind: 192.0.2.1 is not an address")
            && e.contains("serving on every address"))),
        "{status}"
    );
    // The player's banner shows the same list, from the hello message.
    let address = server.address;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (mut viewer, _) = tokio_tungstenite::connect_async(format!("ws://{address}/ws"))
            .await
            .expect("WebSocket");
        let hello = match viewer.next().await.expect("hello").expect("message") {
            Message::Text(text) => serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            other => panic!("expected hello, got {other:?}"),
        };
        assert_eq!(hello["type"], "hello", "{hello}");
        assert_eq!(
            hello["config_errors"], status["config"]["errors"],
            "{hello}"
        );
    });
}
