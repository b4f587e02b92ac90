//! A minimal RTSP viewer for load benchmarks: OPTIONS, DESCRIBE, SETUP and PLAY,
//! then RTP counted, not kept: over the RTSP connection (`RTP/AVP/TCP`
//! interleaved) read into one reusable buffer, or as datagrams on a pair of UDP
//! client ports. A real client (ffmpeg, retina) depacketizes and allocates per
//! packet; on a 2-core machine that work would be taken from the server being
//! measured.

#![allow(dead_code)] // each benchmark uses a different part

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};

/// How RTP reaches the viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpTransport {
    /// Interleaved in the RTSP connection (`RTP/AVP/TCP;interleaved=0-1`).
    Tcp,
    /// Datagrams to the viewer's ports `rtp_port` and `rtp_port + 1`.
    Udp { rtp_port: u16 },
}

/// What a viewer has received so far, shared with the benchmark that reads it
/// while the viewer runs.
#[derive(Default, Debug)]
pub struct RtpCounters {
    /// RTP packets.
    pub packets: AtomicU64,
    /// RTP bytes (headers included).
    pub bytes: AtomicU64,
    /// Access units completed (packets with the marker bit).
    pub frames: AtomicU64,
    /// Packets missing by the sequence numbers (lost or reordered).
    pub missing: AtomicU64,
    /// RTCP packets (sender reports).
    pub rtcp: AtomicU64,
}

impl RtpCounters {
    fn packet(&self, packet: &[u8], last_seq: &mut Option<u16>) {
        if packet.len() < 12 {
            return;
        }
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(packet.len() as u64, Ordering::Relaxed);
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        if let Some(last) = *last_seq {
            let gap = seq.wrapping_sub(last).wrapping_sub(1);
            if gap != 0 {
                self.missing.fetch_add(u64::from(gap), Ordering::Relaxed);
            }
        }
        *last_seq = Some(seq);
        if packet[1] & 0x80 != 0 {
            self.frames.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One RTSP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: String,
}

/// An RTSP connection.
pub struct RtspClient {
    stream: BufReader<TcpStream>,
    url: String,
    cseq: u32,
    session: Option<String>,
}

impl RtspClient {
    /// Connects to `server` from `from` (any 127.x.y.z), for the presentation at
    /// `rtsp://SERVER/stream`.
    pub async fn connect(server: SocketAddr, from: IpAddr) -> std::io::Result<Self> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(from, 0))?;
        let stream = socket.connect(server).await?;
        stream.set_nodelay(true)?;
        Ok(RtspClient {
            stream: BufReader::with_capacity(64 * 1024, stream),
            url: format!("rtsp://{server}/stream"),
            cseq: 0,
            session: None,
        })
    }

    /// Sends a request (with `CSeq`, and `Session` once there is one) and reads
    /// its response.
    pub async fn request(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<Response> {
        self.cseq += 1;
        let mut request = format!("{method} {url} RTSP/1.0\r\nCSeq: {}\r\n", self.cseq);
        if let Some(session) = &self.session {
            request.push_str(&format!("Session: {session}\r\n"));
        }
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("User-Agent: streamer-bench\r\n\r\n");
        self.stream.get_mut().write_all(request.as_bytes()).await?;
        self.response().await
    }

    async fn response(&mut self) -> std::io::Result<Response> {
        let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let status = line
            .strip_prefix("RTSP/1.0 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| invalid(format!("not an RTSP status line: {line:?}")))?;
        let mut headers = HashMap::new();
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).await?;
        Ok(Response {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// OPTIONS, DESCRIBE, SETUP of the one track with `transport`, PLAY: the
    /// server is sending from then on. Fails with what the server answered.
    pub async fn play(&mut self, transport: RtpTransport) -> Result<(), String> {
        let url = self.url.clone();
        let step = |what: &str, r: std::io::Result<Response>| -> Result<Response, String> {
            match r {
                Ok(r) if r.status == 200 => Ok(r),
                Ok(r) => Err(format!("{what}: {} {:?}", r.status, r.headers)),
                Err(e) => Err(format!("{what}: {e}")),
            }
        };
        step("OPTIONS", self.request("OPTIONS", &url, &[]).await)?;
        let describe = step(
            "DESCRIBE",
            self.request("DESCRIBE", &url, &[("Accept", "application/sdp")])
                .await,
        )?;
        // The media's control attribute (the last a=control: the session-level
        // one, if any, comes first).
        let control = describe
            .body
            .lines()
            .filter_map(|l| l.trim_end().strip_prefix("a=control:"))
            .next_back()
            .ok_or("the SDP has no a=control")?
            .to_owned();
        let base = describe
            .headers
            .get("content-base")
            .cloned()
            .unwrap_or_else(|| format!("{url}/"));
        let track = if control.starts_with("rtsp://") {
            control
        } else {
            format!("{}/{control}", base.trim_end_matches('/'))
        };
        let spec = match transport {
            RtpTransport::Tcp => "RTP/AVP/TCP;unicast;interleaved=0-1".to_owned(),
            RtpTransport::Udp { rtp_port } => {
                format!("RTP/AVP;unicast;client_port={}-{}", rtp_port, rtp_port + 1)
            }
        };
        let setup = step(
            "SETUP",
            self.request("SETUP", &track, &[("Transport", &spec)]).await,
        )?;
        let session = setup
            .headers
            .get("session")
            .ok_or("SETUP answered no Session")?;
        self.session = Some(session.split(';').next().unwrap_or_default().to_owned());
        step(
            "PLAY",
            self.request("PLAY", &url, &[("Range", "npt=0.000-")]).await,
        )?;
        Ok(())
    }

    /// Reads interleaved packets until the connection ends, counting channel
    /// 0's RTP and channel 1's RTCP.
    pub async fn count_interleaved(mut self, counters: Arc<RtpCounters>) -> std::io::Result<()> {
        let mut packet = vec![0u8; 64 * 1024];
        let mut last_seq = None;
        loop {
            let mut head = [0u8; 4];
            self.stream.read_exact(&mut head).await?;
            if head[0] != b'$' {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("expected an interleaved packet ('$'), got {head:?}"),
                ));
            }
            let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
            self.stream.read_exact(&mut packet[..len]).await?;
            match head[1] {
                0 => counters.packet(&packet[..len], &mut last_seq),
                _ => {
                    counters.rtcp.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Keeps the connection (the session lives as long as it), reading and
    /// dropping whatever the server sends on it, until it ends.
    pub async fn hold(mut self) -> std::io::Result<()> {
        let mut sink = vec![0u8; 4096];
        while self.stream.read(&mut sink).await? > 0 {}
        Ok(())
    }
}

/// The client's UDP ports: RTP on `port`, RTCP on `port + 1`, on `address`.
pub struct UdpPorts {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
}

impl UdpPorts {
    /// Binds `address:port` and `address:port+1`, each with a receive buffer of
    /// `receive_buffer` bytes (forced past `net.core.rmem_max` when the process
    /// may), or the kernel's default when it is 0.
    pub fn bind(address: IpAddr, port: u16, receive_buffer: usize) -> std::io::Result<Self> {
        let open = |port: u16| -> std::io::Result<UdpSocket> {
            let socket = std::net::UdpSocket::bind(SocketAddr::new(address, port))?;
            if receive_buffer > 0 {
                set_receive_buffer(&socket, receive_buffer);
            }
            socket.set_nonblocking(true)?;
            UdpSocket::from_std(socket)
        };
        Ok(UdpPorts {
            rtp: open(port)?,
            rtcp: open(port + 1)?,
        })
    }

    /// Reads both ports until an error, counting RTP and RTCP.
    pub async fn count(self, counters: Arc<RtpCounters>) -> std::io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut rtcp_buf = vec![0u8; 2048];
        let mut last_seq = None;
        loop {
            tokio::select! {
                n = self.rtp.recv(&mut buf) => counters.packet(&buf[..n?], &mut last_seq),
                n = self.rtcp.recv(&mut rtcp_buf) => {
                    n?;
                    counters.rtcp.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// `SO_RCVBUFFORCE` (root: past `rmem_max`), else `SO_RCVBUF`.
fn set_receive_buffer(socket: &std::net::UdpSocket, bytes: usize) {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    for option in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: a valid socket and a c_int option value of the given size.
        let result = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if result == 0 {
            return;
        }
    }
}
