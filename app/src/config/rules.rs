//! The rules a value must follow: whole-number ranges, log filters, host names,
//! Wi-Fi names, pass phrases, country codes, addresses, and the rules between the
//! `[network]` keys. Each check returns the reason in plain words, which the loader
//! turns into a problem naming the file, line and key.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use super::{Config, NetworkConfig, ServerConfig};

/// The H.264 levels (Table A-1 up to 5.2) and their `level_idc`.
pub(super) const LEVELS: &[(&str, u8)] = &[
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
pub(super) fn level_idc(level: &str) -> Option<u8> {
    let level = level.trim();
    let level = level.strip_suffix(".0").unwrap_or(level);
    LEVELS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(level))
        .map(|&(_, idc)| idc)
}

/// Whole-number keys and the numbers they accept.
pub(super) struct IntRule {
    pub(super) key: &'static str,
    /// What the number is, for `"N is not a valid <noun>"`.
    noun: &'static str,
    pub(super) min: i64,
    pub(super) max: i64,
    pub(super) even: bool,
    /// The accepted range in words.
    range: &'static str,
}

pub(super) const INT_RULES: &[IntRule] = &[
    IntRule {
        key: "server.port",
        noun: "port",
        min: 0,
        max: 65_535,
        even: false,
        range: "0-65535",
    },
    IntRule {
        key: "server.tls_port",
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
        key: "server.max_viewers_per_address",
        noun: "number of viewers",
        min: 1,
        max: u32::MAX as i64,
        even: false,
        range: "at least 1",
    },
    IntRule {
        key: "server.max_connections_per_address",
        noun: "number of connections",
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
        key: "rtsp.udp_port",
        noun: "RTP port",
        min: 0,
        max: 65_534,
        even: true,
        range: "an even port 0-65534; RTCP uses the next one",
    },
    IntRule {
        key: "rtsp.session_timeout_s",
        noun: "session timeout",
        min: 10,
        max: 600,
        even: false,
        range: "10-600 seconds",
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
                "{filter} is not a log level: {directive} is neither a level nor target=level ({help})",
                filter = quote(filter),
                directive = quote(directive),
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(filter)
        .map(drop)
        .map_err(|e| {
            let e = cut(&e.to_string(), MESSAGE_CHARS / 2).into_owned();
            format!("{} is not a log filter: {e} ({help})", quote(filter))
        })
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
        return Err(format!(
            "{} is longer than 63 characters ({help})",
            quote(name)
        ));
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
        return Err(format!("{}: {why} ({help})", quote(name)));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(format!(
            "{} must not start or end with \"-\" ({help})",
            quote(name)
        ));
    }
    Ok(())
}

/// Checks `network.wifi_ssid`: empty, or 1-32 bytes without quotes or control characters.
fn check_ssid(ssid: &str) -> Result<(), String> {
    if ssid.len() > 32 {
        return Err(format!(
            "{} is longer than a Wi-Fi network name can be (32 bytes; letters \
             such as é count twice)",
            quote(ssid)
        ));
    }
    if let Some(what) = unusable_char(ssid) {
        return Err(format!(
            "{} contains {what}, which the Wi-Fi software cannot be given",
            quote(ssid)
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
            "{} is not a country code: use the two letters of the country \
             the device is in, e.g. \"GB\", \"US\" or \"DE\"",
            quote(country)
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
            "{} has no network size (\"/24\") ({help})",
            quote(address)
        ));
    };
    let ip_ok = ip
        .parse::<Ipv4Addr>()
        .is_ok_and(|ip| !ip.is_unspecified() && !ip.is_broadcast() && !ip.is_multicast());
    if !ip_ok {
        return Err(format!(
            "{} is not a usable IPv4 address ({help})",
            quote(ip)
        ));
    }
    match prefix.parse::<u8>() {
        Ok(1..=32) if prefix.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err(format!(
            "{} is not a network size (1-32; home networks mostly use 24) ({help})",
            quote(prefix)
        )),
    }
}

/// Checks `network.gateway`: empty or an IPv4 address.
fn check_gateway(gateway: &str) -> Result<(), String> {
    match gateway.parse::<Ipv4Addr>() {
        _ if gateway.is_empty() => Ok(()),
        Ok(ip) if !ip.is_unspecified() && !ip.is_broadcast() && !ip.is_multicast() => Ok(()),
        _ => Err(format!(
            "{} is not a router's IPv4 address (e.g. \"192.168.1.1\")",
            quote(gateway)
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
                "{} is not an IPv4 or IPv6 address (e.g. \"1.1.1.1\" or \"2606:4700:4700::1111\")",
                quote(server)
            ));
        }
    }
    Ok(())
}

/// Whether `host` (one final dot allowed) is dot-separated labels of letters,
/// digits, `-` and `_`, none empty (so not empty either).
pub(super) fn has_host_name_labels(host: &str) -> bool {
    host.trim_end_matches('.').split('.').all(|label| {
        !label.is_empty()
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

/// Checks `server.allowed_hosts`: "*", host names and IP addresses, without ports.
fn check_allowed_hosts(hosts: &[String]) -> Result<(), String> {
    let help = "list names such as \"camera.example.com\" or addresses such as \"192.168.1.50\"";
    for host in hosts {
        let shown = quote(host);
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
        if host == "*" || host.parse::<IpAddr>().is_ok() {
            continue;
        }
        if let Some(inner) = bare {
            if inner.parse::<std::net::Ipv6Addr>().is_ok() {
                continue;
            }
            return Err(format!("{shown} is not an IPv6 address ({help})"));
        }
        if host.is_empty() || host.len() > 253 {
            return Err(format!("{shown} is not a host name ({help})"));
        }
        if host.contains(':') || host.contains('/') {
            return Err(format!(
                "{shown}: give the name alone, without \"http://\", a port or a path \
                 (every port is accepted; {help})"
            ));
        }
        if !has_host_name_labels(host) {
            return Err(format!(
                "{shown} is not a host name: letters a-z, digits, \"-\" and dots ({help})"
            ));
        }
    }
    Ok(())
}

/// Checks `webrtc.announce`: IP addresses or host names, each with an optional
/// port (`203.0.113.7:40000`, `[2001:db8::7]:40000`, `camera.example.com:40000`).
fn check_announce(entries: &[String]) -> Result<(), String> {
    for entry in entries {
        if let Err(reason) = crate::config::split_announce(entry) {
            return Err(format!(
                "{}: {reason} (list addresses or names such as \"203.0.113.7\" or \"camera.example.com:40000\")",
                quote(entry)
            ));
        }
    }
    Ok(())
}

/// Checks `server.frame_ancestors`: "self", "*" or web origins such as
/// `"http://homeassistant.local:8123"`, each one word a Content-Security-Policy can
/// hold.
fn check_frame_ancestors(sources: &[String]) -> Result<(), String> {
    let help = "list origins such as \"http://homeassistant.local:8123\", or \"self\"";
    for source in sources {
        let shown = quote(source);
        match source.as_str() {
            "self" | "'self'" | "*" => continue,
            "none" | "'none'" => {
                return Err(format!(
                    "{shown}: leave the list empty to let no page frame the player"
                ))
            }
            _ => {}
        }
        let usable = |c: char| c.is_ascii_alphanumeric() || "-._:/*[]".contains(c);
        if source.is_empty() || source.len() > 253 || !source.chars().all(usable) {
            return Err(format!("{shown} is not a web origin ({help})"));
        }
    }
    Ok(())
}

/// Checks `access.user`: 1-64 characters, no colon (Basic authentication splits
/// at the first one) and no control characters.
fn check_user(user: &str) -> Result<(), String> {
    if user.is_empty() || user.chars().count() > 64 {
        return Err(format!("{} must have 1-64 characters", quote(user)));
    }
    if user.contains(':') {
        return Err(format!("{} may not contain \":\"", quote(user)));
    }
    if user.chars().any(char::is_control) || user.trim() != user {
        return Err(format!(
            "{} may not contain control characters or start or end with a space",
            quote(user)
        ));
    }
    Ok(())
}

/// Checks `access.password`: empty, a usable plain password, or an Argon2 hash
/// that reads. The password is never repeated in a message.
fn check_password(password: &str) -> Result<(), String> {
    if password.is_empty() {
        return Ok(());
    }
    crate::access::password::Secret::parse(password)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Checks `access.allowed_origins`: origins (`scheme://name[:port]`) or bare
/// names.
fn check_allowed_origins(origins: &[String]) -> Result<(), String> {
    for origin in origins {
        if let Err(why) = crate::access::origin::AllowedOrigin::parse(origin) {
            return Err(format!("{}: {why}", quote(origin)));
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
        "server.allowed_hosts" => check_allowed_hosts(&config.server.allowed_hosts),
        "server.frame_ancestors" => check_frame_ancestors(&config.server.frame_ancestors),
        "access.user" => check_user(&config.access.user),
        "access.password" => check_password(&config.access.password),
        "access.allowed_origins" => check_allowed_origins(&config.access.allowed_origins),
        "webrtc.announce" => check_announce(&config.webrtc.announce),
        "encoder.level" => {
            let level = &config.encoder.level;
            match level_idc(level) {
                Some(_) => Ok(()),
                None => Err(format!(
                    "{} is not an H.264 level (one of {})",
                    quote(level),
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
                "{} is not a device: name one such as /dev/video0",
                quote(&path.display().to_string())
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

/// Characters of a value (or key) a message quotes; the rest is cut (a file may
/// hold a megabyte in one string, and messages reach every viewer's page).
pub(super) const QUOTE_CHARS: usize = 60;

/// The longest message about one problem, in characters: anything longer (a
/// library's message repeating a value) is cut there.
pub(super) const MESSAGE_CHARS: usize = 500;

/// `text` cut after `max` characters (on a character boundary), marked with "…" and
/// its full length in characters.
pub(super) fn cut(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!(
            "{}… ({} characters)",
            &text[..end],
            text.chars().count()
        )),
    }
}

/// `text` in double quotes as a message shows it (escaped), cut after
/// [`QUOTE_CHARS`] characters: `"aaaa"… (1048576 characters)`.
pub(super) fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        None => format!("{text:?}"),
        Some((end, _)) => format!("{:?}… ({} characters)", &text[..end], text.chars().count()),
    }
}

/// A TOML value as the user wrote it, for messages.
pub(super) fn show(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => quote(s),
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
    if path == "access.password" {
        return "must be text in quotes, e.g. password = \"a long phrase\"".into();
    }
    let error = error.trim();
    // toml appends its own context; keep serde's first line.
    let first = error.lines().next().unwrap_or(error);
    // serde's message may repeat the value ("unknown variant `...`").
    let first = match value {
        toml::Value::String(s) if s.chars().nth(QUOTE_CHARS).is_some() => {
            Cow::Owned(first.replace(s.as_str(), &cut(s, QUOTE_CHARS)))
        }
        _ => Cow::Borrowed(first),
    };
    format!(
        "{} is not valid: {}",
        show(value),
        cut(&first, MESSAGE_CHARS / 2)
    )
}

/// Checks one key given as candidate values (a file gives one; an environment
/// variable its TOML reading and its plain text). Returns the first candidate that
/// passes, or why none does.
pub(super) fn check_entry(
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

impl ServerConfig {
    /// Problems between the HTTPS keys, as (key, why): a certificate without its
    /// key (or a key without its certificate), and HTTPS on the plain HTTP port.
    pub fn cross_problems(&self) -> Vec<(&'static str, String)> {
        let cert = !self.tls_cert.as_os_str().is_empty();
        let key = !self.tls_key.as_os_str().is_empty();
        let mut problems = Vec::new();
        match (cert, key) {
            (true, false) => problems.push((
                "server.tls_cert",
                "HTTPS needs server.tls_key too, the certificate's private key file: \
                 set both, or neither to serve plain HTTP only"
                    .to_string(),
            )),
            (false, true) => problems.push((
                "server.tls_key",
                "HTTPS needs server.tls_cert too, the certificate file: set both, or \
                 neither to serve plain HTTP only"
                    .to_string(),
            )),
            (true, true) if self.tls_port == self.port && self.port != 0 => problems.push((
                "server.tls_port",
                format!(
                    "{} is server.port too: HTTPS needs a port of its own (e.g. 443)",
                    self.tls_port
                ),
            )),
            _ => {}
        }
        problems
    }
}

impl NetworkConfig {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::docs::schema_doc;
    use crate::config::{BitrateMode, EncoderConfig, ExposureMode, Profile, WhiteBalance};

    #[test]
    fn choices_are_spelled_as_the_file_spells_them() {
        assert_eq!(spelled(&ExposureMode::Night), "night");
        assert_eq!(spelled(&WhiteBalance::Tungsten), "tungsten");
        assert_eq!(spelled(&BitrateMode::Variable), "variable");
        assert_eq!(spelled(&Profile::High), "high");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary_with_its_length() {
        assert_eq!(quote("short"), "\"short\"");
        assert_eq!(
            quote(&"a".repeat(QUOTE_CHARS)),
            format!("{:?}", "a".repeat(QUOTE_CHARS))
        );
        let long = "é".repeat(QUOTE_CHARS + 1);
        assert_eq!(
            quote(&long),
            format!(
                "\"{}\"… ({} characters)",
                "é".repeat(QUOTE_CHARS),
                QUOTE_CHARS + 1
            )
        );
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("🦀🦀🦀🦀", 2), "🦀🦀… (4 characters)");
        // A value serde repeats in its message is cut there too.
        let value = toml::Value::String("z".repeat(10_000));
        let why = check_entry("camera", "source", &[value]).unwrap_err();
        assert!(why.len() < MESSAGE_CHARS, "{why}");
        assert!(why.contains("expected one of"), "{why}");
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
    fn announce_entries() {
        use crate::config::split_announce;
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(split_announce("203.0.113.7"), Ok(("203.0.113.7", None)));
        assert_eq!(
            split_announce("203.0.113.7:40000"),
            Ok(("203.0.113.7", Some(40000)))
        );
        assert_eq!(split_announce("2001:db8::7"), Ok(("2001:db8::7", None)));
        assert_eq!(
            split_announce("[2001:db8::7]:40000"),
            Ok(("2001:db8::7", Some(40000)))
        );
        assert_eq!(split_announce("[::1]"), Ok(("::1", None)));
        assert_eq!(
            split_announce("camera.example.com"),
            Ok(("camera.example.com", None))
        );
        assert_eq!(split_announce("cam:8189"), Ok(("cam", Some(8189))));
        for bad in [
            "",
            "cam:0",
            "cam:99999",
            "[::1",
            "[nope]",
            "[::1]x",
            "http://cam",
            "a b",
            "cam:",
        ] {
            assert!(split_announce(bad).is_err(), "{bad:?} accepted");
            assert!(check_announce(&list(&[bad]))
                .unwrap_err()
                .contains("list addresses"));
        }
        assert!(check_announce(&list(&["127.0.0.1:18189", "cam.local"])).is_ok());
    }

    #[test]
    fn allowed_hosts() {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_allowed_hosts(&list(&[
            "camera.example.com",
            "Cam.Example.COM.",
            "192.168.1.50",
            "fd00::5",
            "[fd00::5]",
            "*",
            "my_host",
        ]))
        .is_ok());
        for (bad, why) in [
            ("camera.example.com:8443", "without"),
            ("http://camera.example.com", "without"),
            ("", "not a host name"),
            ("a..b", "not a host name"),
            ("a b", "not a host name"),
            ("[camera]", "not an IPv6 address"),
        ] {
            let error = check_allowed_hosts(&list(&[bad])).unwrap_err();
            assert!(error.contains(why), "{bad:?}: {error}");
        }
        let long = "x".repeat(10_000);
        let error = check_allowed_hosts(&[long]).unwrap_err();
        assert!(error.len() < 300, "a long value is cut short: {error}");
    }

    #[test]
    fn frame_ancestors() {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_frame_ancestors(&list(&[
            "self",
            "'self'",
            "*",
            "http://homeassistant.local:8123",
            "https://*.example.com",
        ]))
        .is_ok());
        for (bad, why) in [
            ("none", "leave the list empty"),
            ("http://a.example; script-src *", "not a web origin"),
            ("'unsafe-inline'", "not a web origin"),
            ("a,b", "not a web origin"),
            ("", "not a web origin"),
        ] {
            let error = check_frame_ancestors(&list(&[bad])).unwrap_err();
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
    fn https_needs_both_files_and_a_port_of_its_own() {
        assert!(ServerConfig::default().cross_problems().is_empty());
        let cert_only = ServerConfig {
            tls_cert: "/boot/tls/cert.pem".into(),
            ..ServerConfig::default()
        };
        let problems = cert_only.cross_problems();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "server.tls_cert");
        assert!(problems[0].1.contains("server.tls_key"), "{problems:?}");
        let key_only = ServerConfig {
            tls_key: "/boot/tls/key.pem".into(),
            ..ServerConfig::default()
        };
        let problems = key_only.cross_problems();
        assert_eq!(problems[0].0, "server.tls_key");
        assert!(problems[0].1.contains("server.tls_cert"), "{problems:?}");
        let both = ServerConfig {
            tls_key: "/boot/tls/key.pem".into(),
            ..cert_only
        };
        assert!(both.cross_problems().is_empty());
        let same_port = ServerConfig {
            tls_port: 80,
            ..both.clone()
        };
        assert_eq!(same_port.cross_problems()[0].0, "server.tls_port");
        // Any free port twice is two ports.
        let any = ServerConfig {
            port: 0,
            tls_port: 0,
            ..both
        };
        assert!(any.cross_problems().is_empty());
    }
}
