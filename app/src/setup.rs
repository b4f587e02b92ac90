//! `streamer setup`: turns the `[network]` section of `streamer.toml` into the
//! runtime files the appliance's network reads at every start.
//!
//! `streamer-setup.service` runs it as root before systemd-networkd and
//! `wpa_supplicant@wlan0`. Everything goes under `/run` (a tmpfs, so nothing is
//! kept from one start to the next and the boot partition is never written):
//!
//! - [`ETHERNET_UNIT`]: a systemd-networkd unit for the Ethernet port (unless
//!   `ethernet = false`),
//! - [`WIFI_UNIT`] and [`WPA_SUPPLICANT_CONF`] (mode 0600: it holds the password)
//!   when Wi-Fi is configured; without Wi-Fi neither exists, so a unit conditioned on
//!   the file's existence stays off,
//! - [`HOSTNAME_FILE`]: the device's name, which [`apply`] also sets with
//!   `sethostname(2)` when asked to.
//!
//! [`runtime_files`] is pure (configuration in, file contents out); [`apply`] writes
//! them under a root folder (`/` on the device, a temporary folder in tests).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::NetworkConfig;

/// The systemd-networkd unit for Ethernet.
pub const ETHERNET_UNIT: &str = "/run/systemd/network/10-streamer-ethernet.network";
/// The systemd-networkd unit for Wi-Fi (`wlan0`).
pub const WIFI_UNIT: &str = "/run/systemd/network/20-streamer-wifi.network";
/// wpa_supplicant's configuration for `wlan0` (`wpa_supplicant -c ... -i wlan0`).
pub const WPA_SUPPLICANT_CONF: &str = "/run/wpa_supplicant/wpa_supplicant-wlan0.conf";
/// The device's name, one line.
pub const HOSTNAME_FILE: &str = "/run/streamer/hostname";

/// Every file setup may write: those a configuration does not produce are
/// removed, so running setup again after removing Wi-Fi turns Wi-Fi off.
const MANAGED: [&str; 4] = [ETHERNET_UNIT, WIFI_UNIT, WPA_SUPPLICANT_CONF, HOSTNAME_FILE];

/// The first line of every generated file.
const HEADER: &str =
    "# Written by `streamer setup` from streamer.toml at every start: edit that file instead.\n";

/// One file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeFile {
    /// Absolute path on the device, under `/run`.
    pub path: PathBuf,
    /// The whole contents.
    pub contents: String,
    /// Permission bits, e.g. `0o644`.
    pub mode: u32,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Files written, as paths on the device (not joined to the root).
    pub written: Vec<PathBuf>,
    /// Files of an earlier run removed because the configuration no longer has them.
    pub removed: Vec<PathBuf>,
    /// The hostname set on the running system, if it was.
    pub hostname_set: Option<String>,
}

/// Why [`apply`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A file or folder could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or folder (joined to the root).
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// An old file could not be removed.
    #[error("cannot remove {path}: {source}")]
    Remove {
        /// The file (joined to the root).
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// `sethostname(2)` failed (the files were written).
    #[error("cannot set the hostname to {name:?}: {source}")]
    Hostname {
        /// The name.
        name: String,
        /// The system's error.
        source: std::io::Error,
    },
}

/// The lines of a systemd-networkd `[Network]` section (and `[DHCPv4]` when DHCP)
/// for `net`, with `metric` for the DHCP default route (Ethernet before Wi-Fi).
fn network_section(net: &NetworkConfig, metric: u32) -> String {
    let mut out = String::from("[Network]\n");
    if net.address.is_empty() {
        out.push_str("DHCP=yes\n");
    } else {
        out.push_str(&format!("Address={}\n", net.address));
        if !net.gateway.is_empty() {
            out.push_str(&format!("Gateway={}\n", net.gateway));
        }
        for server in &net.dns {
            out.push_str(&format!("DNS={server}\n"));
        }
    }
    out.push_str("MulticastDNS=yes\nLinkLocalAddressing=ipv6\n");
    if net.address.is_empty() {
        out.push_str(&format!("\n[DHCPv4]\nRouteMetric={metric}\n"));
    }
    out
}

/// `text` as a wpa_supplicant quoted string (the checks refuse `"` and control
/// characters, and [`NetworkConfig::usable`] drops Wi-Fi that has them; this is
/// the last guard).
fn quoted(text: &str) -> Option<String> {
    if text.chars().any(|c| c == '"' || c.is_control()) {
        None
    } else {
        Some(format!("\"{text}\""))
    }
}

/// The wpa_supplicant configuration for `net`, `None` without (complete) Wi-Fi.
pub fn wpa_supplicant_conf(net: &NetworkConfig) -> Option<String> {
    let net = net.usable();
    if !net.wifi_enabled() {
        return None;
    }
    let ssid = quoted(&net.wifi_ssid)?;
    let mut out = String::from(HEADER);
    out.push_str("ctrl_interface=/run/wpa_supplicant\nupdate_config=0\n");
    out.push_str(&format!("country={}\n\nnetwork={{\n", net.wifi_country));
    out.push_str(&format!("\tssid={ssid}\n\tscan_ssid=1\n"));
    let passphrase = &net.wifi_passphrase;
    if passphrase.is_empty() {
        out.push_str("\tkey_mgmt=NONE\n");
    } else if passphrase.len() == 64 {
        // The checks allow 64 characters only as the hex key, which is unquoted.
        out.push_str(&format!("\tkey_mgmt=WPA-PSK\n\tpsk={passphrase}\n"));
    } else {
        out.push_str(&format!(
            "\tkey_mgmt=WPA-PSK\n\tpsk={}\n",
            quoted(passphrase)?
        ));
    }
    out.push_str("}\n");
    Some(out)
}

/// The runtime files for `config` (made [`NetworkConfig::usable`] first), in a
/// fixed order: hostname, Ethernet unit, Wi-Fi unit, wpa_supplicant configuration.
pub fn runtime_files(config: &NetworkConfig) -> Vec<RuntimeFile> {
    let net = config.usable();
    let mut files = vec![RuntimeFile {
        path: PathBuf::from(HOSTNAME_FILE),
        contents: format!("{}\n", net.hostname),
        mode: 0o644,
    }];
    if net.ethernet {
        files.push(RuntimeFile {
            path: PathBuf::from(ETHERNET_UNIT),
            contents: format!(
                "{HEADER}[Match]\nType=ether\nName=eth* en*\n\n{}",
                network_section(&net, 100)
            ),
            mode: 0o644,
        });
    }
    if let Some(wpa) = wpa_supplicant_conf(&net) {
        files.push(RuntimeFile {
            path: PathBuf::from(WIFI_UNIT),
            contents: format!(
                "{HEADER}[Match]\nName=wlan0\n\n{}",
                network_section(&net, 600)
            ),
            mode: 0o644,
        });
        files.push(RuntimeFile {
            path: PathBuf::from(WPA_SUPPLICANT_CONF),
            contents: wpa,
            mode: 0o600,
        });
    }
    files
}

/// What the network will be, in plain words, one line each (for the log).
pub fn summary(config: &NetworkConfig) -> Vec<String> {
    let net = config.usable();
    let addressing = if net.address.is_empty() {
        "automatic address (DHCP)".to_string()
    } else {
        let mut text = format!("fixed address {}", net.address);
        if !net.gateway.is_empty() {
            text.push_str(&format!(", router {}", net.gateway));
        }
        if !net.dns.is_empty() {
            text.push_str(&format!(", name servers {}", net.dns.join(" ")));
        }
        text
    };
    let mut lines = vec![format!(
        "name: {0} (the page is at http://{0}.local/)",
        net.hostname
    )];
    lines.push(if net.ethernet {
        format!("Ethernet: {addressing}")
    } else {
        "Ethernet: off".to_string()
    });
    lines.push(if net.wifi_enabled() {
        format!(
            "Wi-Fi: {:?}, {}, country {}, {addressing}",
            net.wifi_ssid,
            if net.wifi_passphrase.is_empty() {
                "open network"
            } else {
                "WPA2 password"
            },
            net.wifi_country
        )
    } else {
        "Wi-Fi: off".to_string()
    });
    lines
}

/// `path` (absolute) under `root`.
fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Writes `contents` to `path` with `mode`, atomically: a temporary file next to
/// it, renamed over it.
fn write_atomically(path: &Path, contents: &str, mode: u32) -> Result<(), SetupError> {
    let error = |source| SetupError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(error)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.tmp"));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&temporary)?;
        // The mode again: open's is reduced by the umask, and an old file keeps its own.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result.map_err(error)
}

/// Sets the running system's hostname.
fn set_hostname(name: &str) -> std::io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive the call;
    // sethostname only reads them.
    let rc = unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Writes `files` under `root` (each file's absolute path joined to `root`),
/// creating folders, removes the files of [`MANAGED`] that `files` lacks, and, when
/// `set_hostname`, sets the hostname from the [`HOSTNAME_FILE`] among `files`.
/// Refuses paths outside `/run`, so it can never touch `/boot`.
pub fn apply(root: &Path, files: &[RuntimeFile], set_hostname: bool) -> Result<Report, SetupError> {
    let mut report = Report::default();
    for file in files {
        if !file.path.starts_with("/run/") || file.path.components().any(|c| c.as_os_str() == "..")
        {
            return Err(SetupError::Write {
                path: file.path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "setup writes only under /run",
                ),
            });
        }
        write_atomically(&under(root, &file.path), &file.contents, file.mode)?;
        report.written.push(file.path.clone());
    }
    for managed in MANAGED {
        let managed = Path::new(managed);
        if files.iter().any(|f| f.path == managed) {
            continue;
        }
        let path = under(root, managed);
        match fs::remove_file(&path) {
            Ok(()) => report.removed.push(managed.to_path_buf()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(SetupError::Remove { path, source }),
        }
    }
    if set_hostname {
        let name = files
            .iter()
            .find(|f| f.path == Path::new(HOSTNAME_FILE))
            .map(|f| f.contents.trim().to_string());
        if let Some(name) = name {
            self::set_hostname(&name).map_err(|source| SetupError::Hostname {
                name: name.clone(),
                source,
            })?;
            report.hostname_set = Some(name);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wifi() -> NetworkConfig {
        NetworkConfig {
            wifi_ssid: "Home # 5G".into(),
            wifi_passphrase: "correct horse".into(),
            wifi_country: "gb".into(),
            ..NetworkConfig::default()
        }
    }

    fn paths(files: &[RuntimeFile]) -> Vec<&str> {
        files.iter().map(|f| f.path.to_str().unwrap()).collect()
    }

    #[test]
    fn defaults_are_ethernet_dhcp_and_no_wifi() {
        let files = runtime_files(&NetworkConfig::default());
        assert_eq!(paths(&files), [HOSTNAME_FILE, ETHERNET_UNIT]);
        assert_eq!(files[0].contents, "streamer\n");
        let unit = &files[1].contents;
        assert!(
            unit.contains("[Match]\nType=ether\nName=eth* en*\n"),
            "{unit}"
        );
        assert!(unit.contains("DHCP=yes\nMulticastDNS=yes\n"), "{unit}");
        assert!(!unit.contains("Address="), "{unit}");
    }

    #[test]
    fn wifi_quotes_ssid_and_passphrase_and_is_private() {
        let files = runtime_files(&wifi());
        assert_eq!(
            paths(&files),
            [HOSTNAME_FILE, ETHERNET_UNIT, WIFI_UNIT, WPA_SUPPLICANT_CONF]
        );
        let wpa = &files[3];
        assert_eq!(wpa.mode, 0o600);
        assert!(wpa.contents.contains("country=GB\n"), "{}", wpa.contents);
        assert!(wpa.contents.contains("\tssid=\"Home # 5G\"\n"));
        assert!(wpa.contents.contains("\tpsk=\"correct horse\"\n"));
        assert!(wpa.contents.contains("\tkey_mgmt=WPA-PSK\n"));
        assert!(files[2].contents.contains("[Match]\nName=wlan0\n"));
    }

    #[test]
    fn hex_key_is_unquoted_and_open_network_has_no_key() {
        let hex = "0123456789abcdef".repeat(4);
        let net = NetworkConfig {
            wifi_passphrase: hex.clone(),
            ..wifi()
        };
        let wpa = wpa_supplicant_conf(&net).unwrap();
        assert!(wpa.contains(&format!("\tpsk={hex}\n")), "{wpa}");
        let open = NetworkConfig {
            wifi_passphrase: String::new(),
            ..wifi()
        };
        let wpa = wpa_supplicant_conf(&open).unwrap();
        assert!(
            wpa.contains("\tkey_mgmt=NONE\n") && !wpa.contains("psk"),
            "{wpa}"
        );
    }

    #[test]
    fn unusable_wifi_writes_no_wifi_files() {
        for net in [
            NetworkConfig {
                wifi_country: String::new(),
                ..wifi()
            },
            NetworkConfig {
                wifi_ssid: "say \"hi\"".into(),
                ..wifi()
            },
            NetworkConfig {
                wifi_ssid: "two\nlines".into(),
                ..wifi()
            },
            NetworkConfig {
                wifi_passphrase: "short".into(),
                ..wifi()
            },
        ] {
            assert_eq!(wpa_supplicant_conf(&net), None, "{net:?}");
            assert_eq!(paths(&runtime_files(&net)), [HOSTNAME_FILE, ETHERNET_UNIT]);
        }
    }

    #[test]
    fn quoting_refuses_what_would_break_the_file() {
        assert_eq!(quoted("a b#c"), Some("\"a b#c\"".into()));
        assert_eq!(quoted("a\"b"), None);
        assert_eq!(quoted("a\nb"), None);
        assert_eq!(quoted("a\u{7f}"), None);
    }

    #[test]
    fn static_address_with_router_and_name_servers() {
        let net = NetworkConfig {
            address: "192.168.1.50/24".into(),
            gateway: "192.168.1.1".into(),
            dns: vec!["1.1.1.1".into(), "2606:4700:4700::1111".into()],
            ..NetworkConfig::default()
        };
        let unit = &runtime_files(&net)[1].contents;
        assert!(
            unit.contains(
                "Address=192.168.1.50/24\nGateway=192.168.1.1\nDNS=1.1.1.1\nDNS=2606:4700:4700::1111\n"
            ),
            "{unit}"
        );
        assert!(!unit.contains("DHCP"), "{unit}");
        // A bad address means DHCP, and its router and name servers are dropped.
        let bad = NetworkConfig {
            address: "192.168.1.50".into(),
            ..net
        };
        let unit = &runtime_files(&bad)[1].contents;
        assert!(
            unit.contains("DHCP=yes") && !unit.contains("Gateway"),
            "{unit}"
        );
    }

    #[test]
    fn ethernet_off_and_bad_hostname() {
        let net = NetworkConfig {
            ethernet: false,
            hostname: "Bad Name".into(),
            ..NetworkConfig::default()
        };
        let files = runtime_files(&net);
        assert_eq!(paths(&files), [HOSTNAME_FILE]);
        assert_eq!(files[0].contents, "streamer\n");
    }

    #[test]
    fn apply_writes_atomically_with_modes_and_removes_stale_files() {
        let root = tempfile::tempdir().unwrap();
        let report = apply(root.path(), &runtime_files(&wifi()), false).unwrap();
        assert_eq!(report.written.len(), 4);
        let wpa = root
            .path()
            .join("run/wpa_supplicant/wpa_supplicant-wlan0.conf");
        let mode = fs::metadata(&wpa).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let unit = root
            .path()
            .join("run/systemd/network/10-streamer-ethernet.network");
        assert_eq!(
            fs::metadata(&unit).unwrap().permissions().mode() & 0o777,
            0o644
        );
        // No temporary files left.
        for dir in ["run/wpa_supplicant", "run/systemd/network", "run/streamer"] {
            for entry in fs::read_dir(root.path().join(dir)).unwrap() {
                let name = entry.unwrap().file_name();
                assert!(!name.to_string_lossy().starts_with('.'), "{name:?}");
            }
        }
        // Again without Wi-Fi: the Wi-Fi files go.
        let report = apply(
            root.path(),
            &runtime_files(&NetworkConfig::default()),
            false,
        )
        .unwrap();
        assert_eq!(
            report.removed,
            [PathBuf::from(WIFI_UNIT), PathBuf::from(WPA_SUPPLICANT_CONF)]
        );
        assert!(!wpa.exists());
        assert_eq!(report.hostname_set, None);
    }

    #[test]
    fn apply_refuses_paths_outside_run() {
        let root = tempfile::tempdir().unwrap();
        for path in ["/boot/streamer.toml", "/run/../boot/x", "relative"] {
            let file = RuntimeFile {
                path: PathBuf::from(path),
                contents: String::new(),
                mode: 0o644,
            };
            assert!(apply(root.path(), &[file], false).is_err(), "{path}");
        }
        assert!(!root.path().join("boot").exists());
    }

    #[test]
    fn apply_fails_when_it_cannot_write() {
        let root = tempfile::tempdir().unwrap();
        // A file where a folder must be.
        fs::write(root.path().join("run"), "").unwrap();
        let error = apply(
            root.path(),
            &runtime_files(&NetworkConfig::default()),
            false,
        );
        assert!(matches!(error, Err(SetupError::Write { .. })), "{error:?}");
    }
}
