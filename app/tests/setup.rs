//! `streamer setup` end to end: the real binary reads a sample `streamer.toml` and
//! writes the network's runtime files under a temporary root; both the files and
//! what it prints are compared with the golden copies in
//! `tests/fixtures/setup/<case>/` (`expected/` is the root after the run,
//! `output.txt` the printed lines, with the configuration's path as
//! `streamer.toml`). `UPDATE_GOLDEN=1 cargo test --test setup` rewrites them (then
//! read the diff).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/setup")
}

/// Runs `streamer --config <config> setup --root <root> --no-hostname` with only
/// `env` among the configuration variables.
fn setup(config: &Path, root: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_streamer"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STREAMER_") {
            command.env_remove(name);
        }
    }
    command
        .arg("--config")
        .arg(config)
        .args(["setup", "--root"])
        .arg(root)
        .arg("--no-hostname")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Every file under `dir`, by path relative to it, with its contents and mode.
fn tree(dir: &Path) -> BTreeMap<String, (String, u32)> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, (String, u32)>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let relative = path.strip_prefix(base).unwrap().display().to_string();
                let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                out.insert(relative, (fs::read_to_string(&path).unwrap(), mode));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Runs the case `name` and compares it with its golden files; returns the output.
fn check_case(name: &str, env: &[(&str, &str)]) -> String {
    let case = fixtures().join(name);
    let config = case.join("streamer.toml");
    let root = tempfile::tempdir().unwrap();
    let output = setup(&config, root.path(), env);
    let stdout = String::from_utf8(output.stdout)
        .unwrap()
        .replace(&config.display().to_string(), "streamer.toml");
    assert!(
        output.status.success(),
        "{name}: exit {:?}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let written = tree(root.path());
    // The password file is private, everything else readable.
    for (path, (_, mode)) in &written {
        let expected = if path.ends_with("wpa_supplicant-wlan0.conf") {
            0o600
        } else {
            0o644
        };
        assert_eq!(*mode, expected, "{name}: mode of {path}");
    }
    let expected_dir = case.join("expected");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let _ = fs::remove_dir_all(&expected_dir);
        for (path, (contents, _)) in &written {
            let target = expected_dir.join(path);
            fs::create_dir_all(target.parent().unwrap()).unwrap();
            fs::write(target, contents).unwrap();
        }
        fs::write(case.join("output.txt"), &stdout).unwrap();
    }
    let written: BTreeMap<_, _> = written.into_iter().map(|(p, (c, _))| (p, c)).collect();
    let expected: BTreeMap<_, _> = tree(&expected_dir)
        .into_iter()
        .map(|(p, (c, _))| (p, c))
        .collect();
    assert_eq!(
        written.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{name}: which files are written"
    );
    for (path, contents) in &expected {
        assert_eq!(&written[path], contents, "{name}: {path}");
    }
    let expected_output = fs::read_to_string(case.join("output.txt")).unwrap();
    assert_eq!(stdout, expected_output, "{name}: output");
    stdout
}

#[test]
fn ethernet_with_dhcp() {
    let out = check_case("ethernet-dhcp", &[]);
    assert!(out.contains("Wi-Fi: off"), "{out}");
    assert!(!out.contains("problem"), "{out}");
}

#[test]
fn missing_file_means_ethernet_with_dhcp() {
    let out = check_case("missing-file", &[]);
    assert!(out.contains("no such file; using the defaults"), "{out}");
}

#[test]
fn wifi_with_a_password() {
    check_case("wifi-wpa2", &[]);
}

#[test]
fn open_wifi_network() {
    let out = check_case("wifi-open", &[]);
    assert!(out.contains("open network"), "{out}");
}

#[test]
fn wifi_only_with_the_hex_key() {
    check_case("wifi-only", &[]);
}

#[test]
fn static_address_with_router_and_name_servers() {
    check_case("static-address", &[]);
}

#[test]
fn hostname_change() {
    let out = check_case("hostname", &[]);
    assert!(out.contains("http://garden-cam.local/"), "{out}");
}

#[test]
fn broken_file_still_brings_up_ethernet_and_names_every_problem() {
    let out = check_case("broken", &[]);
    for problem in [
        "streamer.toml:3: network.wifi_ssid: \"Bob's \\\"fast\\\" net\" contains a double quote",
        "streamer.toml:5: network.wifi_country: \"UK-GB\" is not a country code",
        "streamer.toml:6: network.hostnme: unknown key",
    ] {
        assert!(out.contains(problem), "{problem:?} in:\n{out}");
    }
    assert!(
        !out.contains("correct horse"),
        "the password is never printed:\n{out}"
    );
}

#[test]
fn environment_overrides_the_file() {
    let out = check_case("env-override", &[("STREAMER_NETWORK__HOSTNAME", "porch")]);
    assert!(out.contains("http://porch.local/"), "{out}");
}

#[test]
fn a_bad_environment_variable_is_reported_and_ignored() {
    let root = tempfile::tempdir().unwrap();
    let config = fixtures().join("hostname/streamer.toml");
    let output = setup(
        &config,
        root.path(),
        &[("STREAMER_NETWORK__HOSTNAME", "Porch Cam")],
    );
    let out = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{out}");
    assert!(
        out.contains(
            "environment variable STREAMER_NETWORK__HOSTNAME: network.hostname: \"Porch Cam\": capital letters"
        ),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(root.path().join("run/streamer/hostname")).unwrap(),
        "garden-cam\n"
    );
}

#[test]
fn fails_only_when_the_files_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("not-a-folder");
    fs::write(&root, "").unwrap();
    let output = setup(&fixtures().join("broken/streamer.toml"), &root, &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("streamer setup: cannot write"), "{stderr}");
}

#[test]
fn running_again_without_wifi_removes_the_wifi_files() {
    let root = tempfile::tempdir().unwrap();
    let wifi = setup(
        &fixtures().join("wifi-wpa2/streamer.toml"),
        root.path(),
        &[],
    );
    assert!(wifi.status.success());
    let wpa = root
        .path()
        .join("run/wpa_supplicant/wpa_supplicant-wlan0.conf");
    assert!(wpa.is_file());
    let again = setup(
        &fixtures().join("ethernet-dhcp/streamer.toml"),
        root.path(),
        &[],
    );
    let out = String::from_utf8(again.stdout).unwrap();
    assert!(
        out.contains("removed /run/wpa_supplicant/wpa_supplicant-wlan0.conf"),
        "{out}"
    );
    assert!(!wpa.exists());
}

#[test]
fn a_mistake_in_another_section_keeps_the_network() {
    let out = check_case("mistake-elsewhere", &[]);
    assert!(out.contains("streamer.toml:9: camera.width"), "{out}");
    assert!(out.contains("Wi-Fi: \"Home\""), "{out}");
    assert!(
        !out.contains("because of the problems in [network]"),
        "{out}"
    );
}

#[test]
fn a_network_mistake_past_the_listed_problems_still_sets_the_section_aside() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("[server]\n");
    for n in 0..30 {
        text.push_str(&format!("unknown_{n} = 1\n"));
    }
    text.push_str("[network]\nwifi_ssid = \"Home\"\nwifi_country = \"GBR\"\n");
    let config = dir.path().join("streamer.toml");
    std::fs::write(&config, text).unwrap();
    let root = dir.path().join("root");
    let output = setup(&config, &root, &[]);
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{out}");
    // The [network] problem is not among the listed ones, only counted...
    assert!(!out.contains("wifi_country"), "{out}");
    assert!(out.contains("more problems"), "{out}");
    // ...and still decides, and says, that the section is set aside.
    assert!(
        out.contains("because of the problems in [network]"),
        "{out}"
    );
    assert!(!out.contains("Wi-Fi: \"Home\""), "{out}");
}
