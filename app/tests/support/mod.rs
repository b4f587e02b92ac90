//! Shared by the integration tests: a server on a loopback port, a publisher that
//! plays real Pi encoder output into the hub, and a WebSocket client.

#![allow(dead_code)] // each test binary uses a different part

pub mod dbus;
pub mod netns;
pub mod process;
pub mod whep_client;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use futures_util::{SinkExt, StreamExt};
use streamer::config::{AccessConfig, ConfigReport, ServerConfig};
use streamer::h264::{AccessUnit, AccessUnitReader};
use streamer::hub::{Hub, HubLimits};
use streamer::web::connections::{ConnectionLimits, Connections};
use streamer::web::{self, AppState};
use streamer::websocket::messages::ServerMessage;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Real Raspberry Pi encoder output (raspivid, 1920x1080 High, 116 frames, 2 IDR,
/// SPS/PPS only at the start), from the shared samples beside the checkout.
pub fn pi_sample() -> PathBuf {
    let path = repo_root().join("../shared/samples/pi-raspivid-1080p25.h264");
    assert!(
        path.is_file(),
        "missing {}: the shared samples folder must sit beside the checkout (see README)",
        path.display()
    );
    path
}

/// The access units of the Pi sample.
pub fn pi_sample_units() -> Vec<AccessUnit> {
    let data = std::fs::read(pi_sample()).expect("read the Pi sample");
    let mut reader = AccessUnitReader::new();
    let mut units = Vec::new();
    reader.push(&data, &mut units);
    reader.flush(&mut units);
    assert_eq!(units.len(), 116, "the Pi sample has 116 frames");
    units
}

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A server on 127.0.0.1 and an ephemeral port, serving a hub.
pub struct TestServer {
    pub addr: SocketAddr,
    pub hub: Hub,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Response headers as [`TestServer::request`] returns them (lower-case names).
pub type Headers = Vec<(String, String)>;

/// The first value of header `name` (lower case).
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// An HTTP/1.1 response's status, headers (lower-case names) and body.
pub fn parse_response(response: &[u8]) -> (u16, Headers, String) {
    let text = String::from_utf8_lossy(response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

/// A sample's value in a `/metrics` body (Prometheus text, `name value` lines).
pub fn metric_value(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The player's files in this repository (the appliance's web root).
pub fn player_root() -> PathBuf {
    repo_root().join("overlay/usr/share/streamer/www")
}

/// Limits like the real server's for 25 fps, with `max_viewers`.
pub fn limits(max_viewers: usize) -> HubLimits {
    HubLimits::for_frame_rate(25.0, max_viewers)
}

impl TestServer {
    /// Starts a server for `hub`, reporting `config_errors`, serving the player
    /// from the repository's overlay.
    pub async fn start(hub: Hub, config_errors: Vec<String>) -> Self {
        let web_root = repo_root().join("overlay/usr/share/streamer/www");
        Self::start_with_web_root(hub, config_errors, web_root).await
    }

    /// Starts a server serving `web_root`.
    pub async fn start_with_web_root(
        hub: Hub,
        config_errors: Vec<String>,
        web_root: PathBuf,
    ) -> Self {
        Self::start_with_server_config(hub, config_errors, web_root, ServerConfig::default()).await
    }

    /// Starts a server serving `web_root`, with the request policy of
    /// `server_config` (its address and port are not used).
    pub async fn start_with_server_config(
        hub: Hub,
        config_errors: Vec<String>,
        web_root: PathBuf,
        server_config: ServerConfig,
    ) -> Self {
        Self::start_with_policy(
            hub,
            config_errors,
            web_root,
            server_config,
            AccessConfig::default(),
        )
        .await
    }

    /// Starts a server serving `web_root`, with the request policy of
    /// `server_config` (its address and port are not used) and `access_config`.
    pub async fn start_with_policy(
        hub: Hub,
        config_errors: Vec<String>,
        web_root: PathBuf,
        server_config: ServerConfig,
        access_config: AccessConfig,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (tx, rx) = oneshot::channel::<()>();
        let state = AppState {
            hub: hub.clone(),
            config: Arc::new(ConfigReport {
                path: "/test/streamer.toml".into(),
                found: !config_errors.is_empty(),
                problem_count: config_errors.len(),
                errors: config_errors,
            }),
            hardware: Arc::new(streamer::probe::probe(std::path::Path::new(
                "/nonexistent-root",
            ))),
            guard: Arc::new(web::guard::Guard::new(&server_config, &access_config)),
            access: Arc::new(
                streamer::access::Access::new(&access_config.user, &access_config.password)
                    .expect("a valid [access] section"),
            ),
            whep: streamer::webrtc::whep::Whep::Off("no WebRTC in these tests".into()),
            rtsp: streamer::rtsp::RtspService::Off("no RTSP in these tests".into()),
            tls: web::tls::TlsStatus::off(),
            updates: streamer::update::Updates::new(
                Box::new(streamer::update::rauc::NoRauc(
                    "no RAUC in these tests".into(),
                )),
                streamer::update::Paths::new(
                    std::path::Path::new("/nonexistent/streamer.toml"),
                    |_| None,
                ),
                false,
            ),
        };
        // Many viewers come from this one address: no per-address limit here.
        let connections = Connections::new(ConnectionLimits {
            total: 10_000,
            per_address: 10_000,
        });
        let task = tokio::spawn(web::serve(
            vec![web::connections::Listener::plain(listener)],
            state,
            web_root,
            connections,
            async move {
                let _ = rx.await;
            },
            Duration::from_secs(2),
        ));
        TestServer {
            addr,
            hub,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Opens a WebSocket to `/ws` plus `query` (e.g. `?timing=frame`).
    pub async fn connect(&self, query: &str) -> Client {
        let url = format!("ws://{}/ws{}", self.addr, query);
        let (client, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("WebSocket connect");
        client
    }

    /// `GET path` over HTTP/1.1; returns the status, headers (lower-case names)
    /// and body.
    pub async fn get(&self, path: &str) -> (u16, Vec<(String, String)>, String) {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        self.request(&request).await
    }

    /// Sends `request` as it is (the whole head, ending in an empty line) on a new
    /// connection and reads the response to its end: the status, headers (lower-case
    /// names) and body.
    pub async fn request(&self, request: &str) -> (u16, Vec<(String, String)>, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = TcpStream::connect(self.addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("request");
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
            .await
            .expect("response within 10 s")
            .expect("read response");
        parse_response(&response)
    }

    /// Opens a WebSocket whose TCP receive buffer is tiny, so that a client that
    /// does not read makes the server's socket back up quickly.
    pub async fn connect_small_buffer(&self, query: &str) -> WebSocketStream<TcpStream> {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let stream = socket.connect(self.addr).await.expect("connect");
        let url = format!("ws://{}/ws{}", self.addr, query);
        let (client, _) = tokio_tungstenite::client_async(url, stream)
            .await
            .expect("WebSocket handshake");
        client
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
    }
}

/// Plays access units into a hub on a thread, in a loop, at `fps`.
pub struct Publisher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Publisher {
    pub fn start(hub: Hub, units: Vec<AccessUnit>, fps: f64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let period = Duration::from_secs_f64(1.0 / fps);
            let mut next = std::time::Instant::now();
            let mut published = 0u64;
            'outer: loop {
                for unit in &units {
                    if flag.load(Ordering::Relaxed) {
                        break 'outer;
                    }
                    hub.publish(unit, SystemTime::now());
                    published += 1;
                    next += period;
                    if let Some(wait) = next.checked_duration_since(std::time::Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
            }
            published
        });
        Publisher {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops and returns how many units were published.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().expect("publisher"))
            .unwrap_or(0)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What a client received.
#[derive(Debug)]
pub enum Received {
    Text(ServerMessage),
    Binary(Vec<u8>),
    Close(Option<u16>),
}

/// The next text, binary or close message, within `timeout`.
pub async fn next<S>(client: &mut WebSocketStream<S>, timeout: Duration) -> Received
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let message = tokio::time::timeout(timeout, client.next())
            .await
            .expect("a message within the timeout");
        match message {
            Some(Ok(Message::Text(text))) => {
                let parsed: ServerMessage = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("server text is protocol JSON ({e}): {text}"));
                return Received::Text(parsed);
            }
            Some(Ok(Message::Binary(data))) => return Received::Binary(data.to_vec()),
            Some(Ok(Message::Close(frame))) => {
                return Received::Close(frame.map(|f| u16::from(f.code)))
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Received::Close(None),
        }
    }
}

/// Receives until `n` binary messages arrived; returns them and the text messages.
pub async fn collect_frames<S>(
    client: &mut WebSocketStream<S>,
    n: usize,
    timeout: Duration,
) -> (Vec<Vec<u8>>, Vec<ServerMessage>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut frames = Vec::new();
    let mut texts = Vec::new();
    while frames.len() < n {
        match next(client, timeout).await {
            Received::Binary(data) => frames.push(data),
            Received::Text(message) => texts.push(message),
            Received::Close(code) => {
                panic!("closed ({code:?}) after {} of {n} frames", frames.len())
            }
        }
    }
    (frames, texts)
}

/// Sends a text message.
pub async fn send_text(client: &mut Client, text: &str) {
    client
        .send(Message::Text(text.into()))
        .await
        .expect("send text");
}

/// NAL unit types in an Annex-B buffer, in order.
pub fn nal_types(data: &[u8]) -> Vec<u8> {
    let mut reader = AccessUnitReader::new();
    let mut units = Vec::new();
    reader.push(data, &mut units);
    reader.flush(&mut units);
    units
        .iter()
        .flat_map(|u| u.nals.iter().map(|n| n.nal_type().as_u8()))
        .collect()
}

/// How many access units an Annex-B buffer holds.
pub fn access_units_in(data: &[u8]) -> usize {
    let mut reader = AccessUnitReader::new();
    let mut units = Vec::new();
    reader.push(data, &mut units);
    reader.flush(&mut units);
    units.len()
}

/// Runs ffprobe on an Annex-B file; returns (decoded frames, width, height).
/// Fails with a clear message when ffprobe is missing.
pub fn ffprobe_frames(path: &std::path::Path) -> (u64, u32, u32) {
    let output = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames,width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe is needed as an independent decoder: apt-get install ffmpeg");
    assert!(
        output.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<&str> = text.trim().split(',').collect();
    assert_eq!(fields.len(), 3, "ffprobe output: {text}");
    (
        fields[2].parse().expect("frames"),
        fields[0].parse().expect("width"),
        fields[1].parse().expect("height"),
    )
}

/// Decodes an Annex-B file with ffmpeg and returns its error output (empty when
/// the stream decodes cleanly).
pub fn ffmpeg_decode_errors(path: &std::path::Path) -> String {
    let output = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg is needed as an independent decoder: apt-get install ffmpeg");
    assert!(output.status.success(), "ffmpeg failed to run");
    String::from_utf8_lossy(&output.stderr).into_owned()
}
