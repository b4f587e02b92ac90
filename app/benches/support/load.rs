//! What the load benchmarks share: settings from the environment, the generated test
//! video, percentiles, a minimal WebSocket viewer, what `/proc` says about the
//! server process, and a loopback-only network namespace for benchmarks that use
//! UDP.

#![allow(dead_code)] // each benchmark uses a different part

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime};

/// A setting from the environment variable `name`, or `default`.
pub fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a valid value")),
        Err(_) => default,
    }
}

/// The test video's picture and bitrate.
pub struct VideoSettings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub mbps: f64,
}

/// Seconds of video in the generated file (the file source loops it).
pub const VIDEO_SECONDS: u64 = 10;

/// A noisy moving test video at the requested bitrate, made once by ffmpeg and kept
/// in the target folder.
pub fn ensure_video(settings: &VideoSettings) -> PathBuf {
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

/// Measurements, for percentiles.
#[derive(Default, Clone)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    pub fn percentile(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted[rank.min(sorted.len() - 1)]
    }

    pub fn max(&self) -> f64 {
        self.0.iter().copied().fold(f64::NAN, f64::max)
    }
}

/// Now, in the microseconds of the server's `timing` messages.
pub fn now_us() -> u64 {
    streamer::hub::unix_micros(SystemTime::now())
}

/// What a [`RawClient`] received.
pub enum Received {
    Text(String),
    /// A binary message of this many bytes (its bytes are not kept).
    Binary(usize),
    Close,
}

/// Why a [`RawClient`] could not connect.
#[derive(Debug)]
pub enum ConnectError {
    /// The TCP connection failed or broke during the handshake.
    Io(std::io::Error),
    /// The server answered the upgrade with this status line.
    Refused(String),
}

/// How a [`RawClient`] connects.
#[derive(Default, Clone, Copy)]
pub struct ConnectOptions {
    /// `SO_RCVBUF`, when not 0.
    pub receive_buffer: u32,
    /// The local address to connect from (any 127.x.y.z is loopback on Linux, so a
    /// benchmark can be many clients).
    pub from: Option<IpAddr>,
}

/// A minimal WebSocket client for load: reads the server's (unmasked) frames into
/// one reusable buffer. A full client library copies and allocates per message,
/// and on a 2-core machine its work would show up in the server's latency figures.
pub struct RawClient {
    pub stream: tokio::io::BufReader<tokio::net::TcpStream>,
    payload: Vec<u8>,
}

impl RawClient {
    /// Connects and upgrades; `SO_RCVBUF` is set when `receive_buffer` > 0.
    pub async fn connect(url: &str, receive_buffer: u32) -> Self {
        let options = ConnectOptions {
            receive_buffer,
            from: None,
        };
        match Self::try_connect(url, options).await {
            Ok(client) => client,
            Err(error) => panic!("viewer cannot connect: {error:?}"),
        }
    }

    /// Connects and upgrades, or says why not.
    pub async fn try_connect(url: &str, options: ConnectOptions) -> Result<Self, ConnectError> {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let rest = url.trim_start_matches("ws://");
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let address: SocketAddr = host.parse().expect("ws://ADDRESS/... URL");
        let stream = connect_from(address, options)
            .await
            .map_err(ConnectError::Io)?;
        let mut stream = tokio::io::BufReader::with_capacity(64 * 1024, stream);
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .map_err(ConnectError::Io)?;
        let mut status = String::new();
        stream
            .read_line(&mut status)
            .await
            .map_err(ConnectError::Io)?;
        if !status.starts_with("HTTP/1.1 101") {
            return Err(ConnectError::Refused(status.trim_end().to_owned()));
        }
        let mut line = String::new();
        while line != "\r\n" {
            line.clear();
            if stream
                .read_line(&mut line)
                .await
                .map_err(ConnectError::Io)?
                == 0
            {
                return Err(ConnectError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
        Ok(RawClient {
            stream,
            payload: Vec::new(),
        })
    }

    /// The next text, binary or close message.
    pub async fn next(&mut self) -> std::io::Result<Received> {
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
    pub async fn expect_next(&mut self, who: &str) -> Received {
        match tokio::time::timeout(Duration::from_secs(5), self.next()).await {
            Ok(Ok(Received::Close)) => panic!("{who}: the server closed the stream"),
            Ok(Ok(received)) => received,
            Ok(Err(error)) => panic!("{who}: {error}"),
            Err(_) => panic!("{who}: nothing for 5 s"),
        }
    }

    /// Sends one masked frame (`opcode`, final) with `payload`.
    pub async fn send(&mut self, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.stream
            .get_mut()
            .write_all(&masked_frame(opcode, payload))
            .await
    }

    /// Ends the connection the way a phone walking out of Wi-Fi range, or a killed
    /// tab, does to the server: a reset, with no close frame.
    pub fn abort(self) {
        let _ = socket2::SockRef::from(self.stream.get_ref()).set_linger(Some(Duration::ZERO));
    }
}

/// A masked client frame (mask key 0x37fa213d, as in RFC 6455's examples).
pub fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&MASK);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    frame
}

/// A TCP connection to `address`, from `options.from` when given.
pub async fn connect_from(
    address: SocketAddr,
    options: ConnectOptions,
) -> std::io::Result<tokio::net::TcpStream> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if options.receive_buffer > 0 {
        socket.set_recv_buffer_size(options.receive_buffer)?;
    }
    if let Some(from) = options.from {
        socket.bind(SocketAddr::new(from, 0))?;
    }
    socket.connect(address).await
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
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

/// Clock ticks per second (`getconf CLK_TCK`).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Resident set size in MB.
pub fn rss_mb(pid: u32) -> f64 {
    status_kb(pid, "VmRSS:") / 1024.0
}

/// Peak resident set size in MB.
pub fn peak_rss_mb(pid: u32) -> f64 {
    status_kb(pid, "VmHWM:") / 1024.0
}

fn status_kb(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}

/// Open file descriptors of a process.
pub fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

/// The CPU model and core count, for the results table.
pub fn machine() -> String {
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
