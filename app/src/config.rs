//! The one typed configuration. SKELETON: loading, validation, error reporting and
//! the commented default file are written by the config work item; the field names
//! and types below are the seam the rest of the program relies on.

use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Everything the streamer can be told, by section.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP server.
    pub server: ServerConfig,
    /// Where the video comes from.
    pub camera: CameraConfig,
    /// How the video is encoded.
    pub encoder: EncoderConfig,
    /// Logging.
    pub log: LogConfig,
}

/// HTTP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on; `::` listens on every IPv6 and IPv4 address.
    pub bind: IpAddr,
    /// TCP port.
    pub port: u16,
    /// Folder with the player's files.
    pub web_root: PathBuf,
    /// Most viewers at once; more are turned away with 503.
    pub max_viewers: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            port: 8000,
            web_root: PathBuf::from("/usr/share/streamer/www"),
            max_viewers: 200,
        }
    }
}

/// Which source produces the video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Pick the best source available.
    #[default]
    Auto,
    /// The built-in moving test pattern.
    Test,
    /// An Annex-B H.264 file, replayed in real time, looping.
    File,
}

/// Where the video comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CameraConfig {
    /// `auto`, `test` or `file`.
    pub source: SourceKind,
    /// The H.264 file for `source = "file"`.
    pub file: Option<PathBuf>,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// Frames per second.
    pub framerate: u32,
}

impl Default for CameraConfig {
    fn default() -> Self {
        CameraConfig {
            source: SourceKind::Auto,
            file: None,
            width: 1280,
            height: 720,
            framerate: 30,
        }
    }
}

/// H.264 profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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

/// How the video is encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncoderConfig {
    /// Target bitrate in bits per second.
    pub bitrate: u32,
    /// H.264 profile.
    pub profile: Profile,
    /// H.264 level, e.g. "4.0".
    pub level: String,
    /// Frames from one keyframe to the next.
    pub intra_period: u32,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig {
            bitrate: 3_000_000,
            profile: Profile::High,
            level: "4.0".into(),
            intra_period: 60,
        }
    }
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a tracing filter directive.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}

/// The configuration the streamer runs with, and what was wrong with the file.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective configuration (defaults when the file was invalid).
    pub config: Config,
    /// Problems found, in plain words; empty when the file was fine.
    pub errors: Vec<String>,
    /// Whether the file existed.
    pub file_found: bool,
}

/// Loads defaults -> file -> `STREAMER_*` environment. Never fails: an invalid file
/// yields the defaults plus the errors, so the device never goes dark.
pub fn load_or_defaults(path: &Path) -> Loaded {
    let _ = path;
    Loaded {
        config: Config::default(),
        errors: Vec::new(),
        file_found: false,
    }
}
/// STUB
pub fn load(_p: &Path) -> Result<Loaded, String> {
    Err("stub".into())
}
/// STUB
pub fn default_toml() -> String {
    String::new()
}
/// STUB
pub fn effective_toml(_c: &Config) -> String {
    String::new()
}
