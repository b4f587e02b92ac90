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
//! [`load`] fails with all of them; [`load_or_defaults`] never fails: when the file
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

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use figment::providers::Serialized;
use figment::Figment;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

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
    /// Where the video comes from.
    pub camera: CameraConfig,
    /// How the video is encoded (camera and test pattern; a file is sent as it is).
    pub encoder: EncoderConfig,
    /// The camera's picture controls (cameras only; each camera kind supports what
    /// its hardware has, and the log says what it ignored).
    pub image: ImageConfig,
    /// Raspberry Pi GPIO pins.
    pub gpio: GpioConfig,
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

    /// A copy that is safe to turn into files whatever was set (the loader checks
    /// every key, but a `NetworkConfig` can be built in code): a bad name becomes
    /// the default; bad Wi-Fi keys, or no country, mean no Wi-Fi; a bad address means
    /// DHCP; a router or name servers without a fixed address are left out.
    pub fn usable(&self) -> NetworkConfig {
        let defaults = NetworkConfig::default();
        let mut net = self.clone();
        if check_hostname(&net.hostname).is_err() {
            net.hostname = defaults.hostname;
        }
        let wifi_ok = check_ssid(&net.wifi_ssid).is_ok()
            && check_passphrase(&net.wifi_passphrase).is_ok()
            && check_country(&net.wifi_country).is_ok()
            && !net.wifi_country.is_empty();
        if !wifi_ok {
            net.wifi_ssid.clear();
            net.wifi_passphrase.clear();
            net.wifi_country.clear();
        }
        net.wifi_country.make_ascii_uppercase();
        let static_ok = !net.address.is_empty()
            && check_address(&net.address).is_ok()
            && check_gateway(&net.gateway).is_ok()
            && check_dns(&net.dns).is_ok();
        if !static_ok {
            net.address.clear();
            net.gateway.clear();
            net.dns.clear();
        }
        net
    }

    /// Problems between keys, as (key, why): each key can be fine on its own and
    /// still be unusable with the others.
    pub fn cross_problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.address.is_empty() {
            if !self.gateway.is_empty() {
                problems.push((
                    "network.gateway",
                    "a router is only used with a fixed address: set address too, \
                     or empty gateway to get everything automatically (DHCP)"
                        .to_string(),
                ));
            }
            if !self.dns.is_empty() {
                problems.push((
                    "network.dns",
                    "name servers are only used with a fixed address: set address too, \
                     or empty dns to get them automatically (DHCP)"
                        .to_string(),
                ));
            }
        }
        if !self.wifi_ssid.is_empty() && self.wifi_country.is_empty() {
            problems.push((
                "network.wifi_ssid",
                "Wi-Fi needs wifi_country, the two-letter code of the country the \
                 device is in (e.g. \"GB\"): without it the Wi-Fi stays off"
                    .to_string(),
            ));
        }
        problems
    }
}

/// Accepts `dns = ["1.1.1.1", "9.9.9.9"]` as well as one text `"1.1.1.1, 9.9.9.9"`
/// (handy in an environment variable).
fn address_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
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
        Err(_) => Err(serde::de::Error::custom(
            "expected a list of addresses such as [\"1.1.1.1\", \"9.9.9.9\"]",
        )),
    }
}

/// Web server: the player page, the video WebSocket and the status API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// IP address to listen on. "::" means every IPv6 and IPv4 address of the
    /// device (falls back to IPv4 only when the kernel has no IPv6); "0.0.0.0" every
    /// IPv4 address; "127.0.0.1" only this device itself.
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            port: 80,
            web_root: PathBuf::from("/usr/share/streamer/www"),
            max_viewers: 200,
        }
    }
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
    V4l2,
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

// ---------------------------------------------------------------------------
// Checks of single values.
// ---------------------------------------------------------------------------

/// The H.264 levels (Table A-1 up to 5.2) and their `level_idc`.
const LEVELS: &[(&str, u8)] = &[
    ("1", 10),
    ("1b", 9),
    ("1.1", 11),
    ("1.2", 12),
    ("1.3", 13),
    ("2", 20),
    ("2.1", 21),
    ("2.2", 22),
    ("3", 30),
    ("3.1", 31),
    ("3.2", 32),
    ("4", 40),
    ("4.1", 41),
    ("4.2", 42),
    ("5", 50),
    ("5.1", 51),
    ("5.2", 52),
];

/// How the configuration file spells a value of one of its choices (`"night"`,
/// `"tungsten"`, `"high"`), for messages: the name serde reads and writes.
pub fn spelled<T: Serialize + fmt::Debug>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{value:?}"),
    }
}

/// `level_idc` of an H.264 level written as text ("4", "4.0", "4.1", "1b"), `None`
/// for anything else.
pub fn level_idc_of(level: &str) -> Option<u8> {
    level_idc(level)
}

/// `level_idc` of an H.264 level written as text ("4", "4.0", "4.1", "1b").
fn level_idc(level: &str) -> Option<u8> {
    let level = level.trim();
    let level = level.strip_suffix(".0").unwrap_or(level);
    LEVELS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(level))
        .map(|&(_, idc)| idc)
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

/// Whole-number keys and the numbers they accept.
struct IntRule {
    key: &'static str,
    /// What the number is, for "N is not a valid <noun>".
    noun: &'static str,
    min: i64,
    max: i64,
    even: bool,
    /// The accepted range in words.
    range: &'static str,
}

const INT_RULES: &[IntRule] = &[
    IntRule {
        key: "server.port",
        noun: "port",
        min: 0,
        max: 65_535,
        even: false,
        range: "0-65535",
    },
    IntRule {
        key: "server.max_viewers",
        noun: "number of viewers",
        min: 1,
        max: u32::MAX as i64,
        even: false,
        range: "at least 1",
    },
    IntRule {
        key: "camera.width",
        noun: "width",
        min: 16,
        max: 4096,
        even: true,
        range: "even, 16-4096",
    },
    IntRule {
        key: "camera.height",
        noun: "height",
        min: 16,
        max: 4096,
        even: true,
        range: "even, 16-4096",
    },
    IntRule {
        key: "camera.framerate",
        noun: "frame rate",
        min: 1,
        max: 120,
        even: false,
        range: "1-120 frames per second",
    },
    IntRule {
        key: "encoder.bitrate",
        noun: "bitrate",
        min: 64_000,
        max: 25_000_000,
        even: false,
        range: "64000-25000000 bits per second",
    },
    IntRule {
        key: "image.brightness",
        noun: "brightness",
        min: 0,
        max: 100,
        even: false,
        range: "0-100",
    },
    IntRule {
        key: "image.contrast",
        noun: "contrast",
        min: -100,
        max: 100,
        even: false,
        range: "-100 to 100",
    },
    IntRule {
        key: "image.saturation",
        noun: "saturation",
        min: -100,
        max: 100,
        even: false,
        range: "-100 to 100",
    },
    IntRule {
        key: "image.sharpness",
        noun: "sharpness",
        min: -100,
        max: 100,
        even: false,
        range: "-100 to 100",
    },
    IntRule {
        key: "image.exposure_compensation",
        noun: "exposure compensation",
        min: -25,
        max: 25,
        even: false,
        range: "-25 to 25 sixths of a stop",
    },
    IntRule {
        key: "gpio.privacy_led",
        noun: "GPIO pin",
        min: 0,
        max: 27,
        even: false,
        range: "BCM pin 0-27",
    },
    IntRule {
        key: "encoder.intra_period",
        noun: "keyframe interval",
        min: 1,
        max: u32::MAX as i64,
        even: false,
        range: "at least 1 frame",
    },
];

/// Why `n` is not acceptable for the whole-number key `rule`.
fn check_int(rule: &IntRule, n: i64) -> Result<(), String> {
    if n < rule.min || n > rule.max || (rule.even && n % 2 != 0) {
        Err(format!("{n} is not a valid {} ({})", rule.noun, rule.range))
    } else {
        Ok(())
    }
}

/// Level names `log.level` accepts as a whole directive.
const LOG_LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// Checks `log.level`: a tracing filter whose parts are each a level or
/// `target=level` (a bare word such as "degub" would silently be a target name).
fn check_log_level(filter: &str) -> Result<(), String> {
    let help = "use error, warn, info, debug, trace, off, or a filter such as \
                \"info,streamer::hub=debug\"";
    if filter.trim().is_empty() {
        return Err(format!("is empty ({help})"));
    }
    for directive in filter.split(',').map(str::trim) {
        let plain_level = LOG_LEVELS.iter().any(|l| l.eq_ignore_ascii_case(directive));
        if !plain_level && !directive.contains('=') && !directive.is_empty() {
            return Err(format!(
                "{filter:?} is not a log level: {directive:?} is neither a level nor target=level ({help})"
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(filter)
        .map(drop)
        .map_err(|e| format!("{filter:?} is not a log filter: {e} ({help})"))
}

/// A character that would break a generated file, described for people.
fn unusable_char(text: &str) -> Option<String> {
    text.chars().find_map(|c| match c {
        '"' => Some("a double quote (\")".to_string()),
        '\n' | '\r' => Some("a line break".to_string()),
        c if c.is_control() => Some(format!("an invisible control character ({c:?})")),
        _ => None,
    })
}

/// Checks `network.hostname`: one RFC 1123 label in lowercase.
fn check_hostname(name: &str) -> Result<(), String> {
    let help =
        "use 1-63 lowercase letters a-z, digits and \"-\", e.g. \"streamer\" or \"garden-cam\"";
    if name.is_empty() {
        return Err(format!("is empty ({help})"));
    }
    if name.len() > 63 {
        return Err(format!("{name:?} is longer than 63 characters ({help})"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        let why = if c.is_ascii_uppercase() {
            "capital letters are not allowed".to_string()
        } else if c == '.' {
            "a name has no dots (\".local\" is added by itself)".to_string()
        } else {
            format!("{c:?} is not allowed")
        };
        return Err(format!("{name:?}: {why} ({help})"));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(format!(
            "{name:?} must not start or end with \"-\" ({help})"
        ));
    }
    Ok(())
}

/// Checks `network.wifi_ssid`: empty, or 1-32 bytes without quotes or control characters.
fn check_ssid(ssid: &str) -> Result<(), String> {
    if ssid.len() > 32 {
        return Err(format!(
            "{ssid:?} is longer than a Wi-Fi network name can be (32 bytes; letters \
             such as é count twice)"
        ));
    }
    if let Some(what) = unusable_char(ssid) {
        return Err(format!(
            "{ssid:?} contains {what}, which the Wi-Fi software cannot be given"
        ));
    }
    Ok(())
}

/// Checks `network.wifi_passphrase`: empty, 8-63 printable ASCII characters without
/// quotes, or 64 hex digits.
fn check_passphrase(passphrase: &str) -> Result<(), String> {
    // The passphrase itself is never repeated in a message: it is a secret.
    if passphrase.is_empty()
        || (passphrase.len() == 64 && passphrase.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Ok(());
    }
    if passphrase.contains('"') {
        return Err(
            "contains a double quote (\"), which the Wi-Fi software cannot be \
                    given; use the 64-hex-digit key instead (wpa_passphrase prints it)"
                .into(),
        );
    }
    if !passphrase.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(
            "may contain only plain letters a-z and A-Z, digits, spaces and \
                    symbols (no accented letters, line breaks or control characters)"
                .into(),
        );
    }
    let n = passphrase.len();
    if !(8..=63).contains(&n) {
        return Err(format!(
            "has {n} characters; a Wi-Fi password has 8-63 characters (or is the \
             64-hex-digit key; empty means an open network)"
        ));
    }
    Ok(())
}

/// Checks `network.wifi_country`: empty or two letters.
fn check_country(country: &str) -> Result<(), String> {
    if country.eq_ignore_ascii_case("UK") {
        return Err("\"UK\" is not a country code: the United Kingdom's is \"GB\"".into());
    }
    if country.is_empty()
        || (country.len() == 2 && country.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        Ok(())
    } else {
        Err(format!(
            "{country:?} is not a country code: use the two letters of the country \
             the device is in, e.g. \"GB\", \"US\" or \"DE\""
        ))
    }
}

/// Checks `network.address`: empty or IPv4 address/prefix length.
fn check_address(address: &str) -> Result<(), String> {
    if address.is_empty() {
        return Ok(());
    }
    let help = "write the address and the network size, e.g. \"192.168.1.50/24\", \
                or leave it empty to get an address automatically (DHCP)";
    let Some((ip, prefix)) = address.split_once('/') else {
        return Err(format!(
            "{address:?} has no network size (\"/24\") ({help})"
        ));
    };
    let ip_ok = ip
        .parse::<Ipv4Addr>()
        .is_ok_and(|ip| !ip.is_unspecified() && !ip.is_broadcast() && !ip.is_multicast());
    if !ip_ok {
        return Err(format!("{ip:?} is not a usable IPv4 address ({help})"));
    }
    match prefix.parse::<u8>() {
        Ok(1..=32) if prefix.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err(format!(
            "{prefix:?} is not a network size (1-32; home networks mostly use 24) ({help})"
        )),
    }
}

/// Checks `network.gateway`: empty or an IPv4 address.
fn check_gateway(gateway: &str) -> Result<(), String> {
    match gateway.parse::<Ipv4Addr>() {
        _ if gateway.is_empty() => Ok(()),
        Ok(ip) if !ip.is_unspecified() && !ip.is_broadcast() && !ip.is_multicast() => Ok(()),
        _ => Err(format!(
            "{gateway:?} is not a router's IPv4 address (e.g. \"192.168.1.1\")"
        )),
    }
}

/// Checks `network.dns`: IPv4 or IPv6 addresses.
fn check_dns(servers: &[String]) -> Result<(), String> {
    for server in servers {
        if server
            .parse::<IpAddr>()
            .map_or(true, |ip| ip.is_unspecified())
        {
            return Err(format!(
                "{server:?} is not an IPv4 or IPv6 address (e.g. \"1.1.1.1\" or \"2606:4700:4700::1111\")"
            ));
        }
    }
    Ok(())
}

/// Checks of a key beyond its type, on the typed value (`config` has the key set).
fn check_typed(key: &str, config: &Config) -> Result<(), String> {
    match key {
        "network.hostname" => check_hostname(&config.network.hostname),
        "network.wifi_ssid" => check_ssid(&config.network.wifi_ssid),
        "network.wifi_passphrase" => check_passphrase(&config.network.wifi_passphrase),
        "network.wifi_country" => check_country(&config.network.wifi_country),
        "network.address" => check_address(&config.network.address),
        "network.gateway" => check_gateway(&config.network.gateway),
        "network.dns" => check_dns(&config.network.dns),
        "encoder.level" => {
            let level = &config.encoder.level;
            match level_idc(level) {
                Some(_) => Ok(()),
                None => Err(format!(
                    "{level:?} is not an H.264 level (one of {})",
                    LEVELS
                        .iter()
                        .map(|(name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        "log.level" => check_log_level(&config.log.level),
        "image.rotation" => match config.image.rotation {
            0 | 90 | 180 | 270 => Ok(()),
            other => Err(format!(
                "{other} is not a valid rotation (0, 90, 180 or 270 degrees)"
            )),
        },
        "image.iso" => match config.image.iso {
            0 | 100..=800 => Ok(()),
            other => Err(format!(
                "{other} is not a valid ISO (0 = automatic, or 100-800)"
            )),
        },
        "camera.device" => match &config.camera.device {
            Some(path) if !path.starts_with("/dev/") => Err(format!(
                "{:?} is not a device: name one such as /dev/video0",
                path.display().to_string()
            )),
            _ => Ok(()),
        },
        "camera.file" => match &config.camera.file {
            Some(path) if path.as_os_str().is_empty() => {
                Err("is empty: name the H.264 file to replay".into())
            }
            _ => Ok(()),
        },
        "server.web_root" => {
            if config.server.web_root.as_os_str().is_empty() {
                Err("is empty: name the folder with the player's files".into())
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// A TOML value as the user wrote it, for messages.
fn show(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("{s:?}"),
        toml::Value::Table(_) => "a table".into(),
        toml::Value::Array(_) => "an array".into(),
        other => other.to_string(),
    }
}

/// Rewords serde's type errors for people ("invalid type: string \"x\", expected
/// u16" -> "\"x\" is not a whole number 0-65535").
fn type_error(section: &str, key: &str, value: &toml::Value, error: &str) -> String {
    let path = format!("{section}.{key}");
    if let Some(rule) = INT_RULES.iter().find(|r| r.key == path) {
        return format!("{} is not a whole number ({})", show(value), rule.range);
    }
    if path == "network.wifi_passphrase" {
        // A secret: never repeated (problems appear on the page and in the log).
        return "must be text in quotes, e.g. wifi_passphrase = \"my password\"".into();
    }
    let error = error.trim();
    // toml appends its own context; keep serde's first line.
    let first = error.lines().next().unwrap_or(error);
    format!("{} is not valid: {first}", show(value))
}

/// Checks one key given as candidate values (a file gives one; an environment
/// variable its TOML reading and its plain text). Returns the first candidate that
/// passes, or why none does.
fn check_entry(
    section: &str,
    key: &str,
    candidates: &[toml::Value],
) -> Result<toml::Value, String> {
    let path = format!("{section}.{key}");
    let mut first_error = None;
    for value in candidates {
        if let (Some(rule), toml::Value::Integer(n)) =
            (INT_RULES.iter().find(|r| r.key == path), value)
        {
            check_int(rule, *n)?;
        }
        let mut inner = toml::Table::new();
        inner.insert(key.to_string(), value.clone());
        let mut outer = toml::Table::new();
        outer.insert(section.to_string(), toml::Value::Table(inner));
        match toml::Value::Table(outer).try_into::<Config>() {
            Ok(config) => {
                check_typed(&path, &config)?;
                return Ok(value.clone());
            }
            Err(e) => {
                first_error.get_or_insert_with(|| type_error(section, key, value, e.message()));
            }
        }
    }
    Err(first_error.unwrap_or_else(|| "has no value".into()))
}

// ---------------------------------------------------------------------------
// The schema: sections, keys and their documentation, from the doc comments.
// ---------------------------------------------------------------------------

/// One key of a section, with its documentation.
#[derive(Debug, Clone)]
struct KeyDoc {
    name: String,
    doc: String,
    /// An example value for keys without a default (`camera.file`).
    example: Option<toml::Value>,
}

/// One section (`[server]`), with its documentation and keys in declaration order.
#[derive(Debug, Clone)]
struct SectionDoc {
    name: String,
    doc: String,
    keys: Vec<KeyDoc>,
}

/// The configuration's documentation, from the structs' doc comments.
#[derive(Debug, Clone)]
struct SchemaDoc {
    doc: String,
    sections: Vec<SectionDoc>,
}

fn text(value: Option<&serde_json::Value>) -> String {
    value
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Reads [`Config`]'s JSON schema (generated by `schemars` from the code, so it
/// cannot drift from the structs).
fn schema_doc() -> SchemaDoc {
    let schema = schemars::schema_for!(Config);
    let root = schema.as_value();
    let empty = serde_json::Map::new();
    let defs = root
        .get("$defs")
        .and_then(serde_json::Value::as_object)
        .unwrap_or(&empty);
    let properties = |v: &serde_json::Value| {
        v.get("properties")
            .and_then(serde_json::Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let sections = properties(root)
        .into_iter()
        .map(|(name, section)| {
            let definition = section
                .get("$ref")
                .and_then(serde_json::Value::as_str)
                .and_then(|r| r.strip_prefix("#/$defs/"))
                .and_then(|d| defs.get(d))
                .unwrap_or(&section);
            let keys = properties(definition)
                .into_iter()
                .map(|(key, schema)| KeyDoc {
                    name: key,
                    doc: text(schema.get("description")),
                    example: schema
                        .get("examples")
                        .and_then(|e| e.get(0))
                        .and_then(|e| toml::Value::try_from(e).ok()),
                })
                .collect();
            SectionDoc {
                name,
                doc: text(section.get("description")),
                keys,
            }
        })
        .collect();
    SchemaDoc {
        doc: text(root.get("description")),
        sections,
    }
}

impl SchemaDoc {
    fn section(&self, name: &str) -> Option<&SectionDoc> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The section that has `key`, other than `except`.
    fn section_with_key(&self, key: &str, except: &str) -> Option<&SectionDoc> {
        self.sections
            .iter()
            .find(|s| s.name != except && s.keys.iter().any(|k| k.name == key))
    }

    /// Why `name` is not a section, with a hint when it looks like a misplaced key.
    fn unknown_section(&self, name: &str) -> String {
        if let Some(owner) = self.section_with_key(name, "") {
            return format!(
                "unknown section; {name} is a key of [{0}]: write it below [{0}]",
                owner.name
            );
        }
        if let Some(section) = self.section(&name.to_ascii_lowercase()) {
            return format!(
                "unknown section; did you mean [{}]? (names are lowercase)",
                section.name
            );
        }
        let names: Vec<_> = self
            .sections
            .iter()
            .map(|s| format!("[{}]", s.name))
            .collect();
        format!("unknown section (the sections are {})", names.join(", "))
    }

    /// Why `key` is not a key of `section`, with a hint when it is a key elsewhere.
    fn unknown_key(&self, section: &SectionDoc, key: &str) -> String {
        let lower = key.to_ascii_lowercase();
        if lower != key && section.keys.iter().any(|k| k.name == lower) {
            return format!("unknown key; did you mean {lower}? (names are lowercase)");
        }
        if let Some(owner) = self.section_with_key(key, &section.name) {
            return format!(
                "unknown key in [{}]; {key} belongs in [{}]",
                section.name, owner.name
            );
        }
        let keys: Vec<_> = section.keys.iter().map(|k| k.name.as_str()).collect();
        format!(
            "unknown key (the keys of [{}] are {})",
            section.name,
            keys.join(", ")
        )
    }
}

/// `text` as `#` comment lines.
/// Every key as Markdown, one table per section (key, default, meaning), for the
/// README's "Configure" section: the same words as the commented default file.
pub fn reference_markdown() -> String {
    let schema = schema_doc();
    let defaults = toml::Value::try_from(Config::default())
        .unwrap_or_else(|_| toml::Value::Table(toml::Table::new()));
    let cell = |text: &str| {
        text.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace('|', "\\|")
    };
    let mut out = String::new();
    for section in &schema.sections {
        out.push_str(&format!("#### `[{}]`\n\n", section.name));
        let doc = cell(&section.doc);
        if !doc.is_empty() {
            out.push_str(&doc);
            out.push_str("\n\n");
        }
        out.push_str("| key | default | meaning |\n| --- | --- | --- |\n");
        let values = defaults.get(&section.name);
        for key in &section.keys {
            let default = match values.and_then(|v| v.get(&key.name)) {
                Some(value) => format!("`{}`", cell(&value.to_string())),
                None => "(none)".to_string(),
            };
            out.push_str(&format!(
                "| `{}` | {default} | {} |\n",
                key.name,
                cell(&key.doc)
            ));
        }
        out.push('\n');
    }
    out
}

fn comment(out: &mut String, text: &str) {
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
    }
}

/// What the default file says after the configuration's own description.
const FILE_HEADER: &str = "\
This file is read when the streamer starts (default /boot/streamer.toml: the
boot partition, so it can be edited from any computer). Every key is shown with
its default value (keys without a default are commented out, with an example);
change the ones you need. A missing file or missing key means the default.
Check a file with: streamer check-config /boot/streamer.toml

An environment variable STREAMER_<SECTION>__<KEY> overrides a key of this file,
e.g. STREAMER_SERVER__PORT=8080 or STREAMER_CAMERA__SOURCE=test.

When this file has a mistake the streamer still starts, on the defaults, and the
player shows what is wrong.";

/// The fully commented default `streamer.toml`, generated from [`Config`]'s doc
/// comments and [`Config::default`]: every key, its documentation as `#` lines
/// above it, and its default value. Keys without a default (`camera.file`) are
/// commented out with an example. Parses back to exactly `Config::default()`.
pub fn default_toml() -> String {
    let schema = schema_doc();
    let defaults = toml::Value::try_from(Config::default())
        .unwrap_or_else(|_| toml::Value::Table(toml::Table::new()));
    let mut out = String::new();
    comment(&mut out, &schema.doc);
    out.push_str("#\n");
    comment(&mut out, FILE_HEADER);
    for section in &schema.sections {
        out.push('\n');
        comment(&mut out, &section.doc);
        out.push_str(&format!("[{}]\n", section.name));
        let values = defaults.get(&section.name);
        for key in &section.keys {
            out.push('\n');
            comment(&mut out, &key.doc);
            match (values.and_then(|v| v.get(&key.name)), &key.example) {
                (Some(value), _) => out.push_str(&format!("{} = {value}\n", key.name)),
                (None, Some(example)) => out.push_str(&format!("# {} = {example}\n", key.name)),
                (None, None) => out.push_str(&format!("# {} =\n", key.name)),
            }
        }
    }
    out
}

/// `config` as TOML, for `streamer check-config`: what the streamer would run with.
pub fn effective_toml(config: &Config) -> String {
    let mut out = String::from(
        "# Effective configuration: built-in defaults, then the file, then STREAMER_* variables.\n",
    );
    if config.camera.file.is_none() {
        out.push_str("# camera.file is not set.\n");
    }
    // The Wi-Fi password is not shown (the output may be pasted into a bug report).
    let mut shown = config.clone();
    if !shown.network.wifi_passphrase.is_empty() {
        out.push_str("# network.wifi_passphrase is set; not shown.\n");
        shown.network.wifi_passphrase = "(not shown)".into();
    }
    match toml::to_string(&shown) {
        Ok(body) => {
            out.push('\n');
            out.push_str(&body);
        }
        Err(e) => out.push_str(&format!("# cannot print the configuration: {e}\n")),
    }
    out
}

// ---------------------------------------------------------------------------
// Loading: layers, origins, problems.
// ---------------------------------------------------------------------------

/// Where a value (or a problem) came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// The built-in defaults.
    Default,
    /// The file, at this line when known.
    File { path: PathBuf, line: Option<usize> },
    /// An environment variable.
    Env { name: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("built-in default"),
            Origin::File {
                path,
                line: Some(line),
            } => write!(f, "{}:{line}", path.display()),
            Origin::File { path, line: None } => write!(f, "{}", path.display()),
            Origin::Env { name } => write!(f, "environment variable {name}"),
        }
    }
}

/// One problem: where, which key, why.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Problem {
    origin: Origin,
    key: Option<String>,
    why: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}: {key}: {}", self.origin, self.why),
            None => write!(f, "{}: {}", self.origin, self.why),
        }
    }
}

/// A key as a layer gives it, before checking.
struct RawEntry {
    section: String,
    key: String,
    /// Values to try, in order (see [`check_entry`]).
    candidates: Vec<toml::Value>,
    origin: Origin,
}

/// A checked key.
#[derive(Debug, Clone)]
struct Entry {
    section: String,
    key: String,
    value: toml::Value,
    origin: Origin,
}

/// A layer's keys that passed their checks, and its problems.
#[derive(Debug, Default)]
struct Layer {
    entries: Vec<Entry>,
    problems: Vec<Problem>,
}

impl Layer {
    /// Checks `raw` against the schema and the value rules.
    fn check(schema: &SchemaDoc, raw: Vec<RawEntry>, mut problems: Vec<Problem>) -> Layer {
        let mut entries = Vec::new();
        for entry in raw {
            let path = format!("{}.{}", entry.section, entry.key);
            let Some(section) = schema.section(&entry.section) else {
                problems.push(Problem {
                    origin: entry.origin,
                    key: Some(path),
                    why: schema.unknown_section(&entry.section),
                });
                continue;
            };
            if !section.keys.iter().any(|k| k.name == entry.key) {
                problems.push(Problem {
                    origin: entry.origin,
                    key: Some(path),
                    why: schema.unknown_key(section, &entry.key),
                });
                continue;
            }
            match check_entry(&entry.section, &entry.key, &entry.candidates) {
                Ok(value) => entries.push(Entry {
                    section: entry.section,
                    key: entry.key,
                    value,
                    origin: entry.origin,
                }),
                Err(why) => problems.push(Problem {
                    origin: entry.origin,
                    key: Some(path),
                    why,
                }),
            }
        }
        Layer { entries, problems }
    }
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let before = text.as_bytes().get(..offset).unwrap_or(text.as_bytes());
    before.iter().filter(|&&b| b == b'\n').count() + 1
}

/// Reads the file layer. Returns whether the file exists.
fn file_layer(schema: &SchemaDoc, path: &Path) -> (bool, Layer) {
    let at = |line: Option<usize>| Origin::File {
        path: path.to_path_buf(),
        line,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (false, Layer::default()),
        Err(e) => {
            let problem = Problem {
                origin: at(None),
                key: None,
                why: format!("cannot read the file: {e}"),
            };
            return (true, Layer::check(schema, Vec::new(), vec![problem]));
        }
    };
    let (document, syntax_errors) = toml::de::DeTable::parse_recoverable(&text);
    if !syntax_errors.is_empty() {
        let problems = syntax_errors
            .iter()
            .map(|e| Problem {
                origin: at(e.span().map(|s| line_of(&text, s.start))),
                key: None,
                why: format!("not valid TOML: {}", e.message().trim()),
            })
            .collect();
        return (true, Layer::check(schema, Vec::new(), problems));
    }
    let table = match text.parse::<toml::Table>() {
        Ok(table) => table,
        Err(e) => {
            let problem = Problem {
                origin: at(e.span().map(|s| line_of(&text, s.start))),
                key: None,
                why: format!("not valid TOML: {}", e.message().trim()),
            };
            return (true, Layer::check(schema, Vec::new(), vec![problem]));
        }
    };

    let mut raw = Vec::new();
    let mut problems = Vec::new();
    let mut sections: Vec<_> = document.get_ref().iter().collect();
    sections.sort_by_key(|(name, _)| name.span().start);
    for (name, de_value) in sections {
        let name: &str = name.get_ref();
        let line = Some(line_of(&text, de_value.span().start));
        let known = schema.section(name).is_some();
        match (de_value.get_ref().as_table(), table.get(name)) {
            (Some(de_table), Some(toml::Value::Table(values))) if known => {
                let mut keys: Vec<_> = de_table.iter().collect();
                keys.sort_by_key(|(key, _)| key.span().start);
                for (key, _) in keys {
                    let key: &str = key.get_ref();
                    let key_line = de_table
                        .get(key)
                        .map(|v| line_of(&text, v.span().start))
                        .or(line);
                    if let Some(value) = values.get(key) {
                        raw.push(RawEntry {
                            section: name.to_string(),
                            key: key.to_string(),
                            candidates: vec![value.clone()],
                            origin: at(key_line),
                        });
                    }
                }
            }
            _ if !known => problems.push(Problem {
                origin: at(line),
                key: Some(name.to_string()),
                why: schema.unknown_section(name),
            }),
            (_, value) => problems.push(Problem {
                origin: at(line),
                key: Some(name.to_string()),
                why: format!(
                    "must be a section [{name}], not {}",
                    value.map(show).unwrap_or_default()
                ),
            }),
        }
    }
    (true, Layer::check(schema, raw, problems))
}

/// The prefix of configuration environment variables.
const ENV_PREFIX: &str = "STREAMER_";

/// Reads the environment layer from `vars` (name, value).
fn env_layer(schema: &SchemaDoc, vars: impl IntoIterator<Item = (String, String)>) -> Layer {
    let mut vars: Vec<_> = vars
        .into_iter()
        .filter(|(name, _)| {
            name.strip_prefix(ENV_PREFIX)
                .is_some_and(|rest| rest.contains("__"))
        })
        .collect();
    vars.sort();
    let mut raw = Vec::new();
    let mut problems = Vec::new();
    for (name, value) in vars {
        let rest = name.get(ENV_PREFIX.len()..).unwrap_or_default();
        let origin = Origin::Env { name: name.clone() };
        let Some((section, key)) = rest.split_once("__") else {
            continue;
        };
        if section.is_empty() || key.is_empty() || key.contains("__") {
            problems.push(Problem {
                origin,
                key: None,
                why: "not a configuration variable: use STREAMER_<SECTION>__<KEY>, \
                      e.g. STREAMER_SERVER__PORT"
                    .into(),
            });
            continue;
        }
        let mut candidates = Vec::new();
        // A TOML reading first (8080, true, 4.1, "quoted text"), then the plain text.
        if let Ok(parsed) =
            toml::de::ValueDeserializer::parse(&value).and_then(toml::Value::deserialize)
        {
            candidates.push(parsed);
        }
        candidates.push(toml::Value::String(value));
        raw.push(RawEntry {
            section: section.to_ascii_lowercase(),
            key: key.to_ascii_lowercase(),
            candidates,
            origin,
        });
    }
    Layer::check(schema, raw, problems)
}

/// Applies `layers` over the defaults; also checks the rules between keys.
fn merge(layers: &[&Layer]) -> (Config, Vec<Problem>) {
    let mut origins: BTreeMap<String, Origin> = BTreeMap::new();
    // figment layers the checked keys over the defaults, in order: the file's, then
    // the environment's.
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    for entry in layers.iter().flat_map(|layer| &layer.entries) {
        let path = format!("{}.{}", entry.section, entry.key);
        figment = figment.merge(Serialized::default(&path, &entry.value));
        origins.insert(path, entry.origin.clone());
    }
    let mut problems = Vec::new();
    let config = match figment.extract::<Config>() {
        Ok(config) => config,
        Err(e) => {
            // Each key passed on its own, so this is a bug; say so and run on defaults.
            problems.push(Problem {
                origin: Origin::Default,
                key: None,
                why: format!("internal error combining the configuration: {e}"),
            });
            Config::default()
        }
    };
    if config.camera.source == SourceKind::File && config.camera.file.is_none() {
        problems.push(Problem {
            origin: origins
                .get("camera.source")
                .cloned()
                .unwrap_or(Origin::Default),
            key: Some("camera.source".into()),
            why: "\"file\" needs camera.file, the H.264 file to replay".into(),
        });
    }
    for (key, why) in config.network.cross_problems() {
        problems.push(Problem {
            origin: origins.get(key).cloned().unwrap_or(Origin::Default),
            key: Some(key.into()),
            why,
        });
    }
    (config, problems)
}

/// Whether the problem between keys `cross` says nothing new: "Wi-Fi needs
/// wifi_country" when wifi_country itself was refused (or "needs address" when
/// address was).
fn follows_from(cross: &Problem, problems: &[Problem]) -> bool {
    let refused = |key: &str| problems.iter().any(|p| p.key.as_deref() == Some(key));
    match cross.key.as_deref() {
        Some("network.wifi_ssid") => refused("network.wifi_country"),
        Some("network.gateway" | "network.dns") => refused("network.address"),
        _ => false,
    }
}

/// Orders problems as a person reads them: the file's by line, then the
/// environment's by name.
fn sort_problems(problems: &mut [Problem]) {
    problems.sort_by_key(|p| match &p.origin {
        Origin::File { line, .. } => (0, line.unwrap_or(0)),
        Origin::Env { .. } => (1, 0),
        Origin::Default => (2, 0),
    });
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

/// Every problem found in the configuration, one per line when displayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct ConfigError {
    /// The problems, each naming the file and line (or environment variable), the
    /// key and why.
    pub problems: Vec<String>,
}

/// Defaults -> file at `path` -> `env` (name, value pairs; only
/// `STREAMER_<SECTION>__<KEY>` are read). The config is the merge when there is no
/// problem; else defaults + the file when the file itself is fine + the valid
/// variables (and `camera.source` falls back to its default if that leaves it
/// "file" without a file).
pub fn load_or_defaults_from(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Loaded {
    let schema = schema_doc();
    let (file_found, file) = file_layer(&schema, path);
    let env = env_layer(&schema, env);
    let (config, cross) = merge(&[&file, &env]);
    let mut problems: Vec<Problem> = file.problems.iter().chain(&env.problems).cloned().collect();
    let cross: Vec<Problem> = cross
        .into_iter()
        .filter(|p| !follows_from(p, &problems))
        .collect();
    problems.extend(cross);
    sort_problems(&mut problems);
    if problems.is_empty() {
        return Loaded {
            config,
            errors: Vec::new(),
            file_found,
        };
    }
    let file_is_bad = problems
        .iter()
        .any(|p| matches!(p.origin, Origin::File { .. }));
    // The network section of a bad file is still used when it has no problem of its
    // own: a mistake elsewhere must not take the device off the network, where the
    // page shows the mistake.
    let network_is_bad = problems.iter().any(|p| {
        matches!(p.origin, Origin::File { .. })
            && p.key
                .as_deref()
                .is_some_and(|k| k == "network" || k.starts_with("network."))
    });
    let file_network = Layer {
        entries: file
            .entries
            .iter()
            .filter(|e| e.section == "network")
            .cloned()
            .collect(),
        problems: Vec::new(),
    };
    let layers: Vec<&Layer> = if !file_is_bad {
        vec![&file, &env]
    } else if network_is_bad {
        vec![&env]
    } else {
        vec![&file_network, &env]
    };
    let (mut config, cross) = merge(&layers);
    for problem in cross {
        if problem.key.as_deref() != Some("camera.source") {
            // A network problem between keys: the setup leaves out what is unusable.
            if !problems.contains(&problem) && !follows_from(&problem, &problems) {
                problems.push(problem);
            }
            continue;
        }
        config.camera.source = SourceKind::default();
        if !problems.contains(&problem) {
            problems.push(Problem {
                why: format!(
                    "{} (the file has problems, so its camera.file is not used)",
                    problem.why
                ),
                ..problem
            });
        }
    }
    Loaded {
        config,
        errors: problems.iter().map(ToString::to_string).collect(),
        file_found,
    }
}

/// Like [`load_or_defaults_from`], but fails with every problem.
pub fn load_from(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    let loaded = load_or_defaults_from(path, env);
    if loaded.errors.is_empty() {
        Ok(loaded)
    } else {
        Err(ConfigError {
            problems: loaded.errors,
        })
    }
}

/// The process environment as (name, value) pairs; variables that are not valid
/// UTF-8 are skipped (configuration names and values are text).
fn process_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
}

/// Loads defaults -> file -> `STREAMER_*` environment. Fails with every problem.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    load_from(path, process_env())
}

/// Loads defaults -> file -> `STREAMER_*` environment. Never fails: an invalid file
/// yields the defaults (plus the valid environment variables) and the errors, so the
/// device never goes dark.
pub fn load_or_defaults(path: &Path) -> Loaded {
    load_or_defaults_from(path, process_env())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_effective_configuration_hides_the_wifi_password() {
        let mut config = Config::default();
        config.network.wifi_passphrase = "correct horse battery".into();
        let text = effective_toml(&config);
        assert!(!text.contains("correct horse"), "{text}");
        assert!(text.contains("wifi_passphrase is set; not shown"), "{text}");
        assert!(!effective_toml(&Config::default()).contains("not shown"));
    }

    #[test]
    fn choices_are_spelled_as_the_file_spells_them() {
        assert_eq!(spelled(&ExposureMode::Night), "night");
        assert_eq!(spelled(&WhiteBalance::Tungsten), "tungsten");
        assert_eq!(spelled(&BitrateMode::Variable), "variable");
        assert_eq!(spelled(&Profile::High), "high");
    }

    #[test]
    fn level_idc_of_every_level() {
        assert_eq!(level_idc("4"), Some(40));
        assert_eq!(level_idc("4.0"), Some(40));
        assert_eq!(level_idc("4.1"), Some(41));
        assert_eq!(level_idc("1b"), Some(9));
        assert_eq!(level_idc("1B"), Some(9));
        assert_eq!(level_idc("5.2"), Some(52));
        for bad in ["", "0", "4.3", "6", "4.10", "1.0b", "x"] {
            assert_eq!(level_idc(bad), None, "{bad:?}");
        }
        assert_eq!(EncoderConfig::default().level_idc(), Some(40));
    }

    #[test]
    fn log_levels() {
        for good in [
            "info",
            "DEBUG",
            "off",
            "info,streamer::hub=debug",
            "streamer=trace",
        ] {
            assert!(check_log_level(good).is_ok(), "{good}");
        }
        for bad in ["", "degub", "info,hub", "streamer=loud"] {
            assert!(check_log_level(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lines_are_one_based() {
        let text = "a\nb\nc";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 2), 2);
        assert_eq!(line_of(text, 4), 3);
        assert_eq!(line_of(text, 100), 3);
    }

    #[test]
    fn schema_lists_sections_and_keys_in_declaration_order() {
        let schema = schema_doc();
        let names: Vec<_> = schema.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["network", "server", "camera", "encoder", "image", "gpio", "log"]
        );
        let camera: Vec<_> = schema
            .section("camera")
            .unwrap()
            .keys
            .iter()
            .map(|k| k.name.as_str())
            .collect();
        assert_eq!(
            camera,
            [
                "source",
                "file",
                "device",
                "width",
                "height",
                "framerate",
                "on_demand"
            ]
        );
        assert!(schema
            .sections
            .iter()
            .all(|s| !s.doc.is_empty() && s.keys.iter().all(|k| !k.doc.is_empty())));
    }

    #[test]
    fn environment_values_try_toml_then_text() {
        let schema = schema_doc();
        let layer = env_layer(
            &schema,
            [
                ("STREAMER_SERVER__PORT".to_string(), "8080".to_string()),
                ("STREAMER_LOG__LEVEL".to_string(), "debug".to_string()),
                ("STREAMER_ENCODER__LEVEL".to_string(), "4.0".to_string()),
            ],
        );
        assert!(layer.problems.is_empty(), "{:?}", layer.problems);
        let values: Vec<_> = layer.entries.iter().map(|e| e.value.clone()).collect();
        assert_eq!(
            values,
            [
                toml::Value::Float(4.0),
                toml::Value::String("debug".into()),
                toml::Value::Integer(8080)
            ]
        );
    }

    fn key_doc(section: &str, key: &str) -> String {
        let schema = schema_doc();
        let section = schema.section(section).unwrap();
        section
            .keys
            .iter()
            .find(|k| k.name == key)
            .unwrap()
            .doc
            .clone()
    }

    #[test]
    fn docs_name_every_choice_and_limit_the_checks_use() {
        let words = |doc: String| doc.split_whitespace().collect::<Vec<_>>().join(" ");
        let source = words(key_doc("camera", "source"));
        for kind in [
            SourceKind::Auto,
            SourceKind::Test,
            SourceKind::File,
            SourceKind::V4l2,
            SourceKind::Uvc,
            SourceKind::Rpicam,
        ] {
            let name = toml::Value::try_from(kind).unwrap();
            assert!(source.contains(&name.to_string()), "{name} in {source}");
        }
        let choices = |section: &str, key: &str, names: Vec<toml::Value>| {
            let doc = words(key_doc(section, key));
            for name in names {
                assert!(doc.contains(&name.to_string()), "{name} in {doc}");
            }
        };
        use ExposureMode as E;
        choices(
            "image",
            "exposure",
            [
                E::Auto,
                E::Night,
                E::Backlight,
                E::Spotlight,
                E::Sports,
                E::Snow,
                E::Beach,
                E::Verylong,
                E::Fixedfps,
                E::Antishake,
                E::Fireworks,
                E::Off,
            ]
            .into_iter()
            .map(|v| toml::Value::try_from(v).unwrap())
            .collect(),
        );
        use WhiteBalance as W;
        choices(
            "image",
            "white_balance",
            [
                W::Auto,
                W::Off,
                W::Sunlight,
                W::Cloudy,
                W::Shade,
                W::Tungsten,
                W::Fluorescent,
                W::Incandescent,
                W::Flash,
                W::Horizon,
            ]
            .into_iter()
            .map(|v| toml::Value::try_from(v).unwrap())
            .collect(),
        );
        choices(
            "image",
            "metering",
            [
                Metering::Average,
                Metering::Spot,
                Metering::Backlit,
                Metering::Matrix,
            ]
            .into_iter()
            .map(|v| toml::Value::try_from(v).unwrap())
            .collect(),
        );
        choices(
            "encoder",
            "bitrate_mode",
            [BitrateMode::Variable, BitrateMode::Constant]
                .into_iter()
                .map(|v| toml::Value::try_from(v).unwrap())
                .collect(),
        );
        let profile = words(key_doc("encoder", "profile"));
        for p in [Profile::Baseline, Profile::Main, Profile::High] {
            let name = toml::Value::try_from(p).unwrap();
            assert!(profile.contains(&name.to_string()), "{name} in {profile}");
        }
        let level = words(key_doc("encoder", "level"));
        for (name, _) in LEVELS {
            assert!(level.contains(&format!("\"{name}\"")), "{name} in {level}");
        }
        for rule in INT_RULES {
            let (section, key) = rule.key.split_once('.').unwrap();
            let doc = words(key_doc(section, key));
            let limit = if rule.max == i64::from(u32::MAX) {
                format!("at least {}", rule.min)
            } else if rule.min < 0 {
                format!("{} to {}", rule.min, rule.max)
            } else {
                format!("{}-{}", rule.min, rule.max)
            };
            assert!(
                doc.contains(&limit),
                "{}: {limit:?} not in {doc:?}",
                rule.key
            );
            if rule.even {
                assert!(doc.contains("even"), "{}", rule.key);
            }
        }
    }

    #[test]
    fn every_int_rule_names_a_real_key() {
        let schema = schema_doc();
        for rule in INT_RULES {
            let (section, key) = rule.key.split_once('.').unwrap();
            let known = schema
                .sections
                .iter()
                .any(|s| s.name == section && s.keys.iter().any(|k| k.name == key));
            assert!(known, "{}", rule.key);
            // The default passes its own rule (optional keys have none).
            let defaults = toml::Value::try_from(Config::default()).unwrap();
            if let Some(n) = defaults[section].get(key) {
                let n = n.as_integer().unwrap();
                assert!(check_int(rule, n).is_ok(), "{}", rule.key);
            }
        }
    }

    #[test]
    fn hostnames() {
        for good in ["streamer", "a", "garden-cam", "cam2", &"a".repeat(63)] {
            assert!(check_hostname(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("", "is empty"),
            ("-cam", "start or end"),
            ("cam-", "start or end"),
            ("Cam", "capital"),
            ("cam.local", "no dots"),
            ("my cam", "' ' is not allowed"),
            ("cam\"", "not allowed"),
            (&"a".repeat(64), "longer than 63"),
        ] {
            let error = check_hostname(bad).unwrap_err();
            assert!(error.contains(why), "{bad:?}: {error}");
        }
    }

    #[test]
    fn ssids() {
        for good in ["", "Home", "Home # 5G", "café", &"x".repeat(32)] {
            assert!(check_ssid(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("say \"hi\"", "double quote"),
            ("two\nlines", "line break"),
            ("tab\there", "control character"),
            (&"x".repeat(33), "32 bytes"),
            (&"é".repeat(17), "32 bytes"),
        ] {
            let error = check_ssid(bad).unwrap_err();
            assert!(error.contains(why), "{bad:?}: {error}");
        }
    }

    #[test]
    fn passphrases_and_the_secret_is_never_shown() {
        let hex = "0123456789abcdefABCDEF0123456789".repeat(2);
        for good in [
            "",
            "12345678",
            "correct horse battery",
            &"p".repeat(63),
            &hex,
        ] {
            assert!(check_passphrase(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("secret7", "has 7 characters"),
            (&"p".repeat(64), "has 64 characters"),
            ("sec\"ret123", "double quote"),
            ("sécret123", "only plain letters"),
            ("secret\n123", "only plain letters"),
        ] {
            let error = check_passphrase(bad).unwrap_err();
            assert!(error.contains(why), "{bad:?}: {error}");
            assert!(
                !error.contains("secret") && !error.contains("pppp"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_passphrase_of_the_wrong_type_is_not_shown() {
        let error = check_entry(
            "network",
            "wifi_passphrase",
            &[toml::Value::Integer(12345678)],
        )
        .unwrap_err();
        assert!(error.contains("must be text in quotes"), "{error}");
        assert!(!error.contains("12345678"), "{error}");
    }

    #[test]
    fn countries() {
        for good in ["", "GB", "us", "De"] {
            assert!(check_country(good).is_ok(), "{good}");
        }
        for bad in ["G", "GBR", "UK ", "1A", "\"G"] {
            let error = check_country(bad).unwrap_err();
            assert!(error.contains("two letters"), "{bad:?}: {error}");
        }
        assert!(check_country("uk").unwrap_err().contains("\"GB\""));
    }

    #[test]
    fn addresses_gateways_and_name_servers() {
        for good in ["", "192.168.1.50/24", "10.0.0.2/8", "172.16.0.9/32"] {
            assert!(check_address(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("192.168.1.50", "no network size"),
            ("192.168.1.500/24", "not a usable IPv4"),
            ("0.0.0.0/0", "not a usable IPv4"),
            ("192.168.1.50/33", "not a network size"),
            ("192.168.1.50/+4", "not a network size"),
            ("fe80::1/64", "not a usable IPv4"),
        ] {
            let error = check_address(bad).unwrap_err();
            assert!(error.contains(why), "{bad:?}: {error}");
        }
        assert!(check_gateway("").is_ok() && check_gateway("192.168.1.1").is_ok());
        for bad in ["192.168.1", "router", "255.255.255.255", "::1"] {
            assert!(check_gateway(bad).is_err(), "{bad}");
        }
        assert!(check_dns(&["1.1.1.1".into(), "2606:4700:4700::1111".into()]).is_ok());
        let error = check_dns(&["1.1.1.1".into(), "dns.google".into()]).unwrap_err();
        assert!(
            error.contains("\"dns.google\" is not an IPv4 or IPv6"),
            "{error}"
        );
    }

    #[test]
    fn network_rules_between_keys() {
        assert!(NetworkConfig::default().cross_problems().is_empty());
        let net = NetworkConfig {
            gateway: "192.168.1.1".into(),
            dns: vec!["1.1.1.1".into()],
            wifi_ssid: "Home".into(),
            ..NetworkConfig::default()
        };
        let keys: Vec<_> = net.cross_problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            ["network.gateway", "network.dns", "network.wifi_ssid"]
        );
        let fixed = NetworkConfig {
            address: "192.168.1.50/24".into(),
            wifi_country: "GB".into(),
            ..net
        };
        assert!(fixed.cross_problems().is_empty());
        assert!(fixed.wifi_enabled());
    }

    #[test]
    fn dns_is_a_list_or_one_text() {
        let schema = schema_doc();
        let layer = env_layer(
            &schema,
            [(
                "STREAMER_NETWORK__DNS".to_string(),
                "1.1.1.1, 9.9.9.9".to_string(),
            )],
        );
        assert!(layer.problems.is_empty(), "{:?}", layer.problems);
        let config: Config = toml::from_str("[network]\ndns = [\"1.1.1.1\"]\n").unwrap();
        assert_eq!(config.network.dns, ["1.1.1.1"]);
        let config: Config = toml::from_str("[network]\ndns = \"1.1.1.1 9.9.9.9\"\n").unwrap();
        assert_eq!(config.network.dns, ["1.1.1.1", "9.9.9.9"]);
    }

    #[test]
    fn a_mistake_elsewhere_keeps_the_network_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("streamer.toml");
        std::fs::write(
            &path,
            "[network]\nwifi_ssid = \"Home\"\nwifi_country = \"GB\"\n[server]\nport = 70000\n",
        )
        .unwrap();
        let loaded = load_or_defaults_from(&path, []);
        assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
        assert_eq!(loaded.config.network.wifi_ssid, "Home");
        assert_eq!(loaded.config.server.port, 80);
        // A mistake in [network] itself: the whole section is the default.
        std::fs::write(
            &path,
            "[network]\nwifi_ssid = \"Home\"\nwifi_country = \"GBR\"\nhostname = \"cam\"\n",
        )
        .unwrap();
        let loaded = load_or_defaults_from(&path, []);
        assert_eq!(loaded.config.network, NetworkConfig::default());
        assert!(
            loaded.errors[0].contains(":3: network.wifi_country: \"GBR\" is not a country code"),
            "{:?}",
            loaded.errors
        );
        // Wi-Fi without a country is named, at the SSID's line.
        std::fs::write(&path, "[network]\n\nwifi_ssid = \"Home\"\n").unwrap();
        let loaded = load_or_defaults_from(&path, []);
        assert!(
            loaded.errors[0].contains(":3: network.wifi_ssid: Wi-Fi needs wifi_country"),
            "{:?}",
            loaded.errors
        );
        assert!(!loaded.config.network.wifi_enabled());
    }
}
