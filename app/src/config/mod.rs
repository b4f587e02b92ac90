//! The one typed configuration, and how it is read.
//!
//! Three layers, each overriding the one before (combined by `figment`): the built-in defaults
//! ([`Config::default`]), the TOML file (`--config`, default `/boot/streamer.toml`;
//! a missing file is fine), and environment variables `STREAMER_<SECTION>__<KEY>`
//! (e.g. `STREAMER_SERVER__PORT=8080`). Variables without `__` after the prefix
//! (`STREAMER_BIN`, `STREAMER_HW_TEST`, ...) are not configuration and are ignored.
//!
//! Every key is checked on its own, so one pass reports *every* problem, each naming
//! where it came from (file and line, or variable), the key and why, e.g.
//! `/boot/streamer.toml:3: server.port: 70000 is not a valid port (0-65535)`.
//! The first [`MAX_PROBLEMS`] in reading order are listed and the rest counted, with
//! values cut to a short prefix, and a file over [`MAX_FILE_BYTES`] is refused unread,
//! so no file, however large or broken, slows the start or bloats the status page.
//! [`load()`] fails with all of them; [`load_or_defaults`] never fails: when the file
//! has problems it is ignored as a whole (defaults + the valid environment variables
//! are used) and the problems are returned for the status page and the player banner;
//! the one exception is a `[network]` section without problems of its own, which is
//! still used, so a mistake elsewhere does not take the device off the network.
//!
//! The doc comments of the structs below are the user documentation:
//! [`default_toml`] turns them into the commented default file (via `schemars`).
//!
//! Environment values are read as TOML values when that fits the key's type
//! (`8080`, `true`, `4.0`), else as plain text (`/x.h264`, `::`), so no quoting is
//! needed.
//!
//! This file holds the types (the schema); beside it:
//!
//! - `rules.rs`: what each value must be, and the rules between `[network]` keys.
//! - `docs.rs`: the documentation generated from the types' doc comments (the
//!   commented default file, the README's reference table, the effective
//!   configuration `check-config` prints) and the schema the loader checks keys
//!   against.
//! - `load.rs`: the layers, every problem with where it came from, the merge.

// The field doc comments are also the text of the commented streamer.toml and the
// README's reference, where a URL is plain text for a person to type.
#![allow(rustdoc::bare_urls)]

mod docs;
mod load;
mod rules;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

pub use docs::{default_toml, effective_toml, reference_markdown};
pub use load::{
    load, load_from, load_or_defaults, load_or_defaults_from, load_or_defaults_from_text,
    ConfigError, ConfigReport, Loaded, MAX_FILE_BYTES, MAX_PROBLEMS,
};
use rules::level_idc;
pub use rules::{level_idc_of, spelled};

/// Configuration of the streamer, a Raspberry Pi camera appliance that sends
/// live H.264 video to web browsers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Network: the device's name, Wi-Fi and addresses, applied at every start
    /// before the network comes up. When another section of this file has a
    /// mistake, this section is still used, so the device stays reachable and its
    /// page can show the mistake; a mistake in this section means Ethernet with an
    /// automatic address (DHCP), no Wi-Fi, and the default name.
    pub network: NetworkConfig,
    /// Web server: the player page, the video WebSocket and the status API.
    pub server: ServerConfig,
    /// Access: who may watch. With a password set, every page, the video and
    /// RTSP ask for it; only /healthz stays open (and says no more than up or
    /// down).
    pub access: AccessConfig,
    /// WebRTC: the lowest-delay way to watch, in every current browser (iPhone
    /// included) over plain http://, through WHEP (`POST /whep`).
    pub webrtc: WebRtcConfig,
    /// RTSP: the stream for NVRs (Home Assistant, Frigate, Blue Iris), VLC,
    /// ffmpeg and relays (MediaMTX, go2rtc), at
    /// rtsp://streamer.local:8554/stream.
    pub rtsp: RtspConfig,
    /// Where the video comes from.
    pub camera: CameraConfig,
    /// How the video is encoded (camera and test pattern; a file is sent as it is).
    pub encoder: EncoderConfig,
    /// The camera's picture controls (cameras only; each camera kind supports what
    /// its hardware has, and the log says what it ignored).
    pub image: ImageConfig,
    /// Raspberry Pi GPIO pins.
    pub gpio: GpioConfig,
    /// Updates: a signed update bundle (.raucb) installed from the update page
    /// (/update.html) or `POST /api/update`, into the other half of the card; the
    /// device restarts into it and goes back by itself if it does not come up.
    pub update: UpdateConfig,
    /// What the streamer writes to its log (the journal, or standard error).
    pub log: LogConfig,
}

/// Network: the device's name, Wi-Fi and addresses (`streamer setup` turns them
/// into the network's runtime files, see [`crate::setup`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// The device's name on the network: 1-63 characters, lowercase letters a-z,
    /// digits and "-" (not first or last). The page is then at
    /// http://NAME.local/ (for example http://streamer.local/).
    pub hostname: String,
    /// Use the Ethernet socket: true or false (false: Wi-Fi only).
    pub ethernet: bool,
    /// The name of the Wi-Fi network to join, exactly as phones show it (capitals
    /// matter), 1-32 characters. Empty: no Wi-Fi. Needs wifi_country too.
    pub wifi_ssid: String,
    /// The Wi-Fi password: 8-63 characters (letters, digits, spaces and symbols,
    /// but not the double quote "), or the 64-hex-digit key. Empty: an open
    /// network without a password.
    pub wifi_passphrase: String,
    /// The country the device is in, as two letters (ISO 3166), e.g. "GB", "US",
    /// "DE": it sets which Wi-Fi channels the radio may use. Needed for Wi-Fi: on a
    /// Raspberry Pi the Wi-Fi stays off without it.
    pub wifi_country: String,
    /// A fixed IPv4 address with its network size, e.g. "192.168.1.50/24".
    /// Empty: get an address automatically from the router (DHCP), which suits
    /// most networks. A fixed address is used on Ethernet and on Wi-Fi alike, so
    /// connect only one of them.
    pub address: String,
    /// The router's IPv4 address, e.g. "192.168.1.1", with a fixed address only.
    /// Empty: no router (only the local network is reachable).
    pub gateway: String,
    /// Name servers (DNS), e.g. ["192.168.1.1", "1.1.1.1"], with a fixed
    /// address only (DHCP brings its own). IPv4 or IPv6 addresses.
    #[serde(deserialize_with = "address_list")]
    #[schemars(with = "Vec<String>")]
    pub dns: Vec<String>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            hostname: "streamer".into(),
            ethernet: true,
            wifi_ssid: String::new(),
            wifi_passphrase: String::new(),
            wifi_country: String::new(),
            address: String::new(),
            gateway: String::new(),
            dns: Vec::new(),
        }
    }
}

impl NetworkConfig {
    /// Whether Wi-Fi is configured completely (a network name and a country).
    pub fn wifi_enabled(&self) -> bool {
        !self.wifi_ssid.is_empty() && !self.wifi_country.is_empty()
    }
}

/// Accepts `dns = ["1.1.1.1", "9.9.9.9"]` as well as one text `"1.1.1.1, 9.9.9.9"`
/// (handy in an environment variable).
fn address_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    text_list(
        d,
        "expected a list of addresses such as [\"1.1.1.1\", \"9.9.9.9\"]",
    )
}

/// Accepts `allowed_hosts = ["a.example", "b.example"]` as well as one text
/// `"a.example, b.example"`.
fn name_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    text_list(
        d,
        "expected a list of names such as [\"camera.example.com\"]",
    )
}

/// A list of texts, or one text of items separated by commas or spaces; `expected`
/// is the error for anything else.
fn text_list<'de, D: Deserializer<'de>>(d: D, expected: &str) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        Many(Vec<String>),
        One(String),
    }
    match List::deserialize(d) {
        Ok(List::Many(list)) => Ok(list),
        Ok(List::One(text)) => Ok(text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()),
        Err(_) => Err(serde::de::Error::custom(expected)),
    }
}

/// Web server: the player page, the video WebSocket and the status API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// IP address to listen on. "::" means every IPv6 and IPv4 address of the
    /// device (falls back to IPv4 only when the kernel has no IPv6); "0.0.0.0" every
    /// IPv4 address; "127.0.0.1" only this device itself. An address the device
    /// does not have (5 s after the start, for the network to come up) is shown
    /// as a mistake on the page, and "::" is used instead, on the same port.
    pub bind: IpAddr,
    /// TCP port of the web server, 0-65535. 80, the web's own port, lets people
    /// type just http://streamer.local/; with another port the player is at
    /// http://DEVICE:PORT/. Ports below 1024 need the appliance's service (or
    /// root); 0 means any free port (the log says which one).
    pub port: u16,
    /// Folder with the player's files (index.html and its scripts). Change it only
    /// to try a modified player.
    pub web_root: PathBuf,
    /// Most viewers watching at once, at least 1. One more is turned away with
    /// "503 too many viewers" until someone leaves. Each viewer costs the device
    /// network bandwidth (about the bitrate below) and a little memory.
    pub max_viewers: usize,
    /// Most viewers watching at once from one IP address, at least 1. One more
    /// from that address is turned away with "429 too many viewers from your
    /// address", so one client cannot take every viewer place (max_viewers) and
    /// keep everyone else out. On a home network each phone, tablet or computer
    /// has its own address, and one of them rarely shows more than a few players
    /// at once: 8 leaves room for that and lets one address hold only a small
    /// share of the places. Behind a reverse proxy, or when the viewers come
    /// through one NAT router, every viewer has the same address: there, set
    /// this to max_viewers.
    pub max_viewers_per_address: usize,
    /// Most open connections (page loads and viewers together) from one IP
    /// address, at least 1. More from that address are refused at once. A browser
    /// opens up to 6 connections to load the page, plus one per player, so keep
    /// this well above max_viewers_per_address; behind a reverse proxy, raise it
    /// with max_viewers. All connections together are limited by the open-file
    /// limit the service is started with (half of it, less 32; the log says how
    /// many at start).
    pub max_connections_per_address: usize,
    /// More names the device is reached by, e.g. ["camera.example.com"] behind a
    /// reverse proxy that passes that name on. The device always answers to its
    /// hostname, hostname.local, its IP addresses and localhost; a request for any
    /// other name (the browser's Host header) gets "421 Misdirected Request", so a
    /// web page cannot reach the device under a name of its own (DNS rebinding).
    /// Names or IP addresses, without a port. "*" answers to every name, which
    /// turns that protection off.
    #[serde(deserialize_with = "name_list")]
    #[schemars(with = "Vec<String>")]
    pub allowed_hosts: Vec<String>,
    /// Web pages that may show the player inside a frame (iframe), e.g.
    /// ["http://homeassistant.local:8123"] for a dashboard; "self" for the device's
    /// own pages, "*" for any page. Empty: no page may frame it, so no other site
    /// can hide it under its own buttons (clickjacking).
    #[serde(deserialize_with = "name_list")]
    #[schemars(with = "Vec<String>")]
    pub frame_ancestors: Vec<String>,
    /// HTTPS: the certificate file (PEM, the certificate first, then any
    /// intermediate ones), e.g. "/boot/tls/cert.pem". Set it and tls_key to serve
    /// the player over HTTPS on tls_port; plain HTTP then redirects there (except
    /// /healthz). Empty (both): HTTPS off. Under HTTPS the page may use WebCodecs,
    /// the faster decoder of the WebSocket stream. A missing, unreadable, expired
    /// or wrong certificate is shown on the page and in the log, and the player is
    /// then served over plain HTTP. README.md says how to make one.
    pub tls_cert: PathBuf,
    /// HTTPS: the private key file of the certificate in tls_cert (PEM), e.g.
    /// "/boot/tls/key.pem". Both or neither must be set.
    pub tls_key: PathBuf,
    /// TCP port of HTTPS, 0-65535, used when tls_cert and tls_key are set. 443,
    /// the web's own, lets people type just https://streamer.local/. Ports below
    /// 1024 need the appliance's service (or root); 0 means any free port.
    pub tls_port: u16,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            port: 80,
            web_root: PathBuf::from("/usr/share/streamer/www"),
            max_viewers: 200,
            max_viewers_per_address: 8,
            max_connections_per_address: 32,
            allowed_hosts: Vec::new(),
            frame_ancestors: Vec::new(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            tls_port: 443,
        }
    }
}

/// Access control: the owner's user name and password, and which other web pages
/// may use the video.
#[derive(Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    /// The user name to log in with (1-64 characters, no colon). Browsers show
    /// a login page; other programs send it with the password, e.g.
    /// rtsp://streamer:PASSWORD@streamer.local:8554/stream or
    /// curl -u streamer:PASSWORD http://streamer.local/snapshot.jpg.
    pub user: String,
    /// The password that every page, the video, the snapshot and RTSP ask for.
    /// Empty: no password, anyone on the network can watch (as before). Setting
    /// one is recommended: write it here in quotes, e.g. password = "a long
    /// phrase only you know", or, so that it is not on the card in plain text, the
    /// hash that `streamer hash-password` prints ("$argon2id$..."). With a hash,
    /// RTSP clients log in with Basic authentication only (Digest needs the
    /// password itself). The password is never shown on the page, in the log or
    /// by check-config.
    pub password: String,
    /// Other web pages that may use the video (the WebSocket and WebRTC), e.g.
    /// ["https://homeassistant.local:8123"]: origins (scheme://name or scheme://name:port) or
    /// bare names (any scheme and port). The device's own pages always may; a
    /// page anywhere else gets "403 Forbidden", password or not, so a web page
    /// someone on the network opens cannot read the camera.
    #[serde(deserialize_with = "name_list")]
    #[schemars(with = "Vec<String>")]
    pub allowed_origins: Vec<String>,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            user: "streamer".into(),
            password: String::new(),
            allowed_origins: Vec::new(),
        }
    }
}

/// Never prints the password (configurations end up in logs and bug reports).
impl std::fmt::Debug for AccessConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let password = match self.password.as_str() {
            "" => "(none)",
            p if p.starts_with("$argon2") => "(hashed, not shown)",
            _ => "(set, not shown)",
        };
        f.debug_struct("AccessConfig")
            .field("user", &self.user)
            .field("password", &password)
            .field("allowed_origins", &self.allowed_origins)
            .finish()
    }
}

/// WebRTC: video to browsers over UDP (RTP/SRTP), negotiated through WHEP
/// (`POST /whep`) on the web server's port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WebRtcConfig {
    /// Offer WebRTC to players. The player uses it where the browser has it and
    /// falls back to the WebSocket by itself when it cannot connect (UDP blocked
    /// on the way); false turns WHEP off (`POST /whep` answers 503).
    pub enabled: bool,
    /// UDP port every WebRTC viewer's video goes through, 1-65535 (0: any free
    /// port, the log says which). A firewall between viewers and the device must
    /// let this port through, as well as the web server's TCP port.
    pub udp_port: u16,
    /// The addresses viewers reach the device at, when not its own: empty means
    /// every address the web server listens on (server.bind; "::" = all of the
    /// device's addresses). For port forwarding or NAT, list the outside address
    /// or name, with the outside port when it differs from udp_port, e.g.
    /// ["203.0.113.7:40000"] or ["camera.example.com"]. Names are looked up for
    /// each new viewer.
    #[serde(deserialize_with = "name_list")]
    #[schemars(with = "Vec<String>")]
    pub announce: Vec<String>,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        WebRtcConfig {
            enabled: true,
            udp_port: 8189,
            announce: Vec::new(),
        }
    }
}

/// RTSP 1.0: the stream as RTP over the RTSP connection (TCP) or over UDP, at
/// `rtsp://HOST:PORT/stream`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RtspConfig {
    /// Serve the stream over RTSP: true or false.
    pub enabled: bool,
    /// TCP port of the RTSP server, 1-65535 (0: any free port, the log says
    /// which). The stream is at rtsp://streamer.local:PORT/stream.
    pub port: u16,
    /// UDP port the RTP packets of clients that ask for UDP leave from: an even
    /// number 0-65534 (0: any free pair); RTCP uses the next port. Clients that
    /// ask for TCP (rtsp_transport=tcp) need only the TCP port.
    pub udp_port: u16,
    /// Seconds a session lives without a sign of its client (a request on its
    /// connection, or an RTCP report for UDP), 10-600. Clients are told it and
    /// send keep-alives sooner.
    pub session_timeout_s: u32,
}

impl Default for RtspConfig {
    fn default() -> Self {
        RtspConfig {
            enabled: true,
            port: 8554,
            udp_port: 6970,
            session_timeout_s: 60,
        }
    }
}

/// One `webrtc.announce` entry taken apart: the address or name, and the port
/// when one is given (`203.0.113.7:40000`, `[2001:db8::7]:40000`, `2001:db8::7`,
/// `camera.example.com`). The reason in plain words when it is neither.
pub fn split_announce(entry: &str) -> Result<(&str, Option<u16>), String> {
    let port = |text: &str| match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{text:?} is not a port (1-65535)")),
        Ok(port) => Ok(Some(port)),
    };
    if let Some(rest) = entry.strip_prefix('[') {
        let (address, after) = rest
            .split_once(']')
            .ok_or_else(|| "an IPv6 address in [ ] has no closing ]".to_string())?;
        address
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("{address:?} is not an IPv6 address"))?;
        return match after {
            "" => Ok((address, None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((address, port(p)?)),
                None => Err("after ] comes only :PORT".into()),
            },
        };
    }
    if entry.parse::<IpAddr>().is_ok() {
        return Ok((entry, None));
    }
    let (host, port) = match entry.rsplit_once(':') {
        Some((host, p)) => (host, port(p)?),
        None => (entry, None),
    };
    if host.parse::<Ipv4Addr>().is_ok() {
        return Ok((host, port));
    }
    let short_labels = host.split('.').all(|label| label.len() <= 63);
    if host.len() > 253 || !rules::has_host_name_labels(host) || !short_labels {
        return Err("not an IP address or a host name".into());
    }
    Ok((host, port))
}

/// Which source produces the video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Pick the best source available.
    #[default]
    Auto,
    /// The built-in moving test pattern.
    Test,
    /// An Annex-B H.264 file, replayed in real time, looping.
    File,
    /// The legacy camera driver (bcm2835-v4l2), H.264 from the GPU encoder.
    // Spelled "v4l2" in the file since the first release; in the code it is the
    // legacy camera, as USB webcams are V4L2 devices too.
    #[serde(rename = "v4l2")]
    LegacyCamera,
    /// A USB webcam: its own H.264, or raw video encoded by the Pi's encoder.
    Uvc,
    /// A libcamera camera through rpicam-vid (Camera Module 3, Pi 5).
    Rpicam,
}

/// Where the video comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CameraConfig {
    /// Video source: "auto" (the first camera found, in this order: a camera on the
    /// legacy stack, a camera rpicam-vid lists, a USB webcam; else the test
    /// pattern; the player says which and why), "test" (a built-in moving test pattern),
    /// "file" (replay the H.264 file named by file below, looping), "v4l2" (a
    /// camera on the legacy camera stack: V1, V2, HQ camera on Pi 0-4), "uvc" (a
    /// USB webcam), or "rpicam" (a camera on the libcamera stack through
    /// rpicam-vid: Camera Module 3, and every camera on a Pi 5).
    pub source: SourceKind,
    /// The raw H.264 (Annex-B) file to replay when source = "file"; required then,
    /// ignored otherwise. It replays in real time and loops. To make one from an
    /// MP4 video:
    ///     ffmpeg -i in.mp4 -an -c:v copy -bsf:v h264_mp4toannexb out.h264
    #[schemars(example = &"/boot/video.h264")]
    pub file: Option<PathBuf>,
    /// The video device to use, e.g. "/dev/video0", instead of finding the camera
    /// by what its driver says it is (source "v4l2" or "uvc"). Needed only with
    /// several cameras of one kind; device numbers can change when a USB camera is
    /// plugged in again.
    #[schemars(example = &"/dev/video0")]
    pub device: Option<PathBuf>,
    /// Picture width in pixels: even, 16-4096 (the camera may support less).
    pub width: u32,
    /// Picture height in pixels: even, 16-4096 (the camera may support less).
    pub height: u32,
    /// Frames per second, 1-120. A file replays at the rate stored in it, or at
    /// this rate when it stores none.
    pub framerate: u32,
    /// true: capture and encode only while someone watches (saves power and
    /// heat; a new viewer waits for the camera to start, about a second).
    /// false: the camera runs all the time and a viewer's picture starts at once.
    pub on_demand: bool,
}

impl Default for CameraConfig {
    fn default() -> Self {
        CameraConfig {
            source: SourceKind::Auto,
            file: None,
            device: None,
            width: 1280,
            height: 720,
            framerate: 30,
            on_demand: false,
        }
    }
}

/// H.264 profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Constrained baseline.
    Baseline,
    /// Main.
    Main,
    /// High.
    #[default]
    High,
}

/// How the video is encoded (camera and test pattern; a file is sent as it is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EncoderConfig {
    /// Target bitrate in bits per second, 64000-25000000 (3000000 = 3 Mbit/s).
    /// Higher looks better and needs more network per viewer.
    pub bitrate: u32,
    /// "variable" (the bitrate follows the picture: still scenes cost little) or
    /// "constant" (steady network use; still scenes look better, busy ones worse).
    pub bitrate_mode: BitrateMode,
    /// H.264 profile: "baseline" (constrained baseline: the simplest, for old
    /// devices), "main", or "high" (best quality for the bitrate; every current
    /// browser plays it).
    pub profile: Profile,
    /// H.264 level, which caps resolution x frame rate and bitrate: one of "1",
    /// "1b", "1.1", "1.2", "1.3", "2", "2.1", "2.2", "3", "3.1", "3.2", "4", "4.1",
    /// "4.2", "5", "5.1", "5.2"; "4.0" is the same as "4". A number works too
    /// (level = 4.1). "4.0" covers 1920x1080 at 30 frames per second.
    #[serde(deserialize_with = "level_from_string_or_number")]
    #[schemars(with = "String")]
    pub level: String,
    /// Frames from one keyframe to the next, at least 1 (60 at 30 frames per
    /// second = one keyframe every 2 s). A new viewer's picture starts at once
    /// either way (it is sent the last keyframe and the frames since); a viewer
    /// on a slow network that falls behind resumes at the next keyframe, so
    /// smaller recovers faster but costs bitrate.
    pub intra_period: u32,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig {
            bitrate: 3_000_000,
            bitrate_mode: BitrateMode::Variable,
            profile: Profile::High,
            level: "4.0".into(),
            intra_period: 60,
        }
    }
}

impl EncoderConfig {
    /// The `level_idc` of [`EncoderConfig::level`] as H.264 writes it in the SPS
    /// (ten times the level: "4.1" -> 41; "1b" -> 9, its High-profile code), or
    /// `None` when the level is not one of the H.264 levels.
    pub fn level_idc(&self) -> Option<u8> {
        level_idc(&self.level)
    }
}

/// How the encoder spends its bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BitrateMode {
    /// Variable bitrate.
    #[default]
    Variable,
    /// Constant bitrate.
    Constant,
}

/// Automatic exposure mode (the legacy camera's names, as picamera had them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExposureMode {
    /// Automatic.
    #[default]
    Auto,
    /// Long exposures for dark scenes.
    Night,
    /// Bright background.
    Backlight,
    /// Bright spot.
    Spotlight,
    /// Short exposures for motion.
    Sports,
    /// Snow.
    Snow,
    /// Beach.
    Beach,
    /// Very long exposures.
    Verylong,
    /// Keep the frame rate fixed.
    Fixedfps,
    /// Anti-shake.
    Antishake,
    /// Fireworks.
    Fireworks,
    /// Manual (automatic exposure off).
    Off,
}

/// How the light is measured for exposure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Metering {
    /// The whole picture.
    #[default]
    Average,
    /// The centre.
    Spot,
    /// For a bright background.
    Backlit,
    /// Zones (libcamera's "matrix").
    Matrix,
}

/// White balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WhiteBalance {
    /// Automatic.
    #[default]
    Auto,
    /// Off.
    Off,
    /// Sunlight.
    Sunlight,
    /// Cloudy.
    Cloudy,
    /// Shade.
    Shade,
    /// Tungsten light.
    Tungsten,
    /// Fluorescent light.
    Fluorescent,
    /// Incandescent light.
    Incandescent,
    /// Flash.
    Flash,
    /// Horizon.
    Horizon,
}

/// The camera's picture controls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ImageConfig {
    /// Mirror the picture left to right.
    pub hflip: bool,
    /// Turn the picture upside down (mirror top to bottom).
    pub vflip: bool,
    /// Rotate the picture clockwise by 0, 90, 180 or 270 degrees (cameras on
    /// rpicam can rotate by 0 or 180 only).
    pub rotation: u32,
    /// Brightness, 0-100 (50 = unchanged).
    pub brightness: i32,
    /// Contrast, -100 to 100 (0 = unchanged).
    pub contrast: i32,
    /// Colour saturation, -100 to 100 (0 = unchanged; -100 = black and white).
    pub saturation: i32,
    /// Sharpness, -100 to 100 (0 = unchanged).
    pub sharpness: i32,
    /// Automatic exposure mode: "auto", "night", "backlight", "spotlight",
    /// "sports", "snow", "beach", "verylong", "fixedfps", "antishake", "fireworks"
    /// or "off".
    pub exposure: ExposureMode,
    /// Exposure compensation in steps of 1/6 stop, -25 to 25 (0 = none; 6 = one
    /// stop brighter).
    pub exposure_compensation: i32,
    /// How light is measured: "average", "spot", "backlit" or "matrix".
    pub metering: Metering,
    /// White balance: "auto", "off", "sunlight", "cloudy", "shade", "tungsten",
    /// "fluorescent", "incandescent", "flash" or "horizon".
    pub white_balance: WhiteBalance,
    /// Sensor sensitivity: 0 = automatic, or 100-800 (higher is brighter and
    /// noisier).
    pub iso: u32,
    /// Reduce noise in the picture (costs a little detail).
    pub denoise: bool,
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            hflip: false,
            vflip: false,
            rotation: 0,
            brightness: 50,
            contrast: 0,
            saturation: 0,
            sharpness: 0,
            exposure: ExposureMode::Auto,
            exposure_compensation: 0,
            metering: Metering::Average,
            white_balance: WhiteBalance::Auto,
            iso: 0,
            denoise: true,
        }
    }
}

/// Raspberry Pi GPIO pins.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct GpioConfig {
    /// A privacy LED: the GPIO pin (BCM number, 0-27) of an LED that is lit while
    /// at least one viewer watches. Not set: no LED.
    #[schemars(example = &17)]
    pub privacy_led: Option<u8>,
}

/// Updates through the web server (`crate::update`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct UpdateConfig {
    /// Allow installing updates from the web page without a password. Without
    /// one (access.password empty), anyone on the network could replace the
    /// device's software, so updates are refused until a password is set, unless
    /// this is true. With a password, only who knows it may update.
    pub allow_without_password: bool,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// How much to log: "error", "warn", "info", "debug" or "trace" (each includes
    /// the ones before it), or a filter per module such as
    /// "info,streamer::hub=debug". The RUST_LOG environment variable, when set,
    /// wins over this.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}

/// Accepts `level = "4.1"` as well as `level = 4.1` and `level = 4`.
fn level_from_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Level {
        Text(String),
        Integer(i64),
        Float(f64),
    }
    match Level::deserialize(d) {
        Ok(Level::Text(text)) => Ok(text),
        Ok(Level::Integer(n)) => Ok(n.to_string()),
        // `{:?}` keeps the ".0" of 4.0 and prints 4.1 as "4.1".
        Ok(Level::Float(x)) => Ok(format!("{x:?}")),
        Err(_) => Err(serde::de::Error::custom(
            "expected an H.264 level such as \"4.1\"",
        )),
    }
}
