//! The configuration: layers (defaults -> file -> environment), every problem named
//! with file, line and key, the generated default file, and the `streamer`
//! subcommands that print and check configurations.
//!
//! The environment is passed to `load_from` / `load_or_defaults_from` explicitly:
//! tests run in parallel threads and must not share `std::env`.

use std::path::{Path, PathBuf};
use std::process::Command;

use streamer::config::{
    self, default_toml, effective_toml, load_from, load_or_defaults_from,
    load_or_defaults_from_text, Config, Profile, SourceKind, MAX_FILE_BYTES, MAX_PROBLEMS,
};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

/// A file with `text` in a fresh temporary folder (kept alive by the returned guard).
fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("streamer.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn problems(path: &Path, vars: &[(&str, &str)]) -> Vec<String> {
    match load_from(path, env(vars)) {
        Ok(loaded) => panic!("expected problems, got {:?}", loaded.config),
        Err(e) => e.problems,
    }
}

#[test]
fn missing_file_means_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = load_from(&dir.path().join("nope.toml"), no_env()).unwrap();
    assert!(!loaded.file_found);
    assert!(loaded.errors.is_empty());
    assert_eq!(loaded.config, Config::default());
    let defaults = Config::default();
    assert_eq!(defaults.server.port, 80);
    assert_eq!(defaults.camera.source, SourceKind::Auto);
    assert_eq!(defaults.encoder.level, "4.0");
}

#[test]
fn file_overrides_defaults_and_keeps_the_rest() {
    let (_dir, path) = file(
        "[server]\nport = 9000\nmax_viewers = 3\n\n[camera]\nsource = \"test\"\nwidth = 640\nheight = 480\n\n[encoder]\nprofile = \"baseline\"\nlevel = \"3.1\"\n",
    );
    let loaded = load_from(&path, no_env()).unwrap();
    assert!(loaded.file_found);
    assert!(loaded.errors.is_empty());
    let c = loaded.config;
    assert_eq!(c.server.port, 9000);
    assert_eq!(c.server.max_viewers, 3);
    assert_eq!(c.camera.source, SourceKind::Test);
    assert_eq!((c.camera.width, c.camera.height), (640, 480));
    assert_eq!(c.encoder.profile, Profile::Baseline);
    assert_eq!(c.encoder.level, "3.1");
    // Untouched keys keep their defaults.
    assert_eq!(c.server.bind, Config::default().server.bind);
    assert_eq!(c.camera.framerate, 30);
    assert_eq!(c.log, Config::default().log);
}

#[test]
fn environment_overrides_the_file() {
    let (dir, path) = file("[server]\nport = 9000\n[camera]\nsource = \"test\"\n");
    let video = dir.path().join("x.h264");
    std::fs::write(&video, b"").unwrap();
    let loaded = load_from(
        &path,
        env(&[
            ("STREAMER_SERVER__PORT", "8080"),
            ("STREAMER_CAMERA__SOURCE", "file"),
            ("STREAMER_CAMERA__FILE", video.to_str().unwrap()),
            ("STREAMER_SERVER__WEB_ROOT", "/srv/www"),
            ("STREAMER_SERVER__BIND", "::1"),
            ("STREAMER_ENCODER__LEVEL", "4.1"),
            ("STREAMER_LOG__LEVEL", "info,streamer::hub=debug"),
        ]),
    )
    .unwrap();
    let c = loaded.config;
    assert_eq!(c.server.port, 8080);
    assert_eq!(c.camera.source, SourceKind::File);
    assert_eq!(c.camera.file, Some(video));
    assert_eq!(c.server.web_root, PathBuf::from("/srv/www"));
    assert_eq!(c.server.bind.to_string(), "::1");
    assert_eq!(c.encoder.level, "4.1");
    assert_eq!(c.log.level, "info,streamer::hub=debug");
}

#[test]
fn environment_without_double_underscore_is_not_configuration() {
    let loaded = load_from(
        Path::new("/nonexistent/streamer.toml"),
        env(&[
            ("STREAMER_BIN", "/usr/bin/streamer"),
            ("STREAMER_HW_TEST", "1"),
            ("STREAMER_PORT", "1"),
            ("OTHER__PORT", "1"),
            ("streamer_server__port", "1"),
        ]),
    )
    .unwrap();
    assert_eq!(loaded.config, Config::default());
}

#[test]
fn environment_section_and_key_are_case_insensitive_and_text_needs_no_quotes() {
    let loaded = load_from(
        Path::new("/nonexistent/streamer.toml"),
        env(&[
            ("STREAMER_Server__Max_Viewers", "7"),
            // A number where text is expected is taken as text.
            ("STREAMER_SERVER__WEB_ROOT", "123"),
            // Quotes (as in some env files) are TOML quotes.
            ("STREAMER_LOG__LEVEL", "\"debug\""),
            ("STREAMER_CAMERA__FILE", "'/a b.h264'"),
        ]),
    )
    .unwrap();
    assert_eq!(loaded.config.server.max_viewers, 7);
    assert_eq!(loaded.config.server.web_root, PathBuf::from("123"));
    assert_eq!(loaded.config.log.level, "debug");
    assert_eq!(loaded.config.camera.file, Some(PathBuf::from("/a b.h264")));
}

#[test]
fn unknown_environment_keys_are_errors_naming_the_variable() {
    let p = problems(
        Path::new("/nonexistent/streamer.toml"),
        &[
            ("STREAMER_SERVER__PROT", "1"),
            ("STREAMER_NOPE__PORT", "1"),
            ("STREAMER_SERVER__PORT__X", "1"),
        ],
    );
    assert_eq!(p.len(), 3, "{p:#?}");
    assert!(p.iter().any(|e| e.contains("STREAMER_SERVER__PROT")
        && e.contains("server.prot")
        && e.contains("unknown key")));
    assert!(p
        .iter()
        .any(|e| e.contains("STREAMER_NOPE__PORT") && e.contains("unknown section")));
    assert!(p.iter().any(|e| e.contains("STREAMER_SERVER__PORT__X")));
}

#[test]
fn bad_environment_values_name_variable_and_key() {
    let p = problems(
        Path::new("/nonexistent/streamer.toml"),
        &[
            ("STREAMER_SERVER__PORT", "70000"),
            ("STREAMER_CAMERA__FRAMERATE", "fast"),
        ],
    );
    assert_eq!(
        p,
        vec![
            "environment variable STREAMER_CAMERA__FRAMERATE: camera.framerate: \"fast\" is not a whole number (1-120 frames per second)",
            "environment variable STREAMER_SERVER__PORT: server.port: 70000 is not a valid port (0-65535)",
        ]
    );
}

#[test]
fn unknown_key_in_file_is_named_with_line() {
    let (_dir, path) = file("[server]\nport = 8001\nprot = 8002\n");
    let p = problems(&path, &[]);
    assert_eq!(p.len(), 1, "{p:#?}");
    let expected = format!("{}:3: server.prot: unknown key", path.display());
    assert!(p[0].starts_with(&expected), "{} vs {expected}", p[0]);
    assert!(
        p[0].contains("bind, port, web_root, max_viewers"),
        "{}",
        p[0]
    );
}

#[test]
fn unknown_section_is_named() {
    let (_dir, path) = file("[server]\nport = 8001\n\n[video]\nwidth = 2\n");
    let p = problems(&path, &[]);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(p[0].starts_with(&format!("{}:4: video: unknown section", path.display())));
}

#[test]
fn every_bad_value_is_reported_with_file_line_key_and_reason() {
    let text = "\
[server]
port = 70000
bind = \"localhost\"
max_viewers = 0

[camera]
width = 1281
height = 8
framerate = 121

[encoder]
bitrate = 1000
level = \"4.3\"
profile = \"ultra\"
intra_period = 0

[log]
level = \"degub\"
";
    let (_dir, path) = file(text);
    let p = problems(&path, &[]);
    let f = path.display().to_string();
    let expected = [
        format!("{f}:2: server.port: 70000 is not a valid port (0-65535)"),
        format!("{f}:3: server.bind: \"localhost\" is not valid"),
        format!("{f}:4: server.max_viewers: 0 is not a valid number of viewers (at least 1)"),
        format!("{f}:7: camera.width: 1281 is not a valid width (even, 16-4096)"),
        format!("{f}:8: camera.height: 8 is not a valid height (even, 16-4096)"),
        format!("{f}:9: camera.framerate: 121 is not a valid frame rate (1-120"),
        format!("{f}:12: encoder.bitrate: 1000 is not a valid bitrate (64000-25000000"),
        format!("{f}:13: encoder.level: \"4.3\" is not an H.264 level (one of 1, 1b, 1.1"),
        format!("{f}:14: encoder.profile: \"ultra\" is not valid: unknown variant `ultra`"),
        format!("{f}:15: encoder.intra_period: 0 is not a valid keyframe interval"),
        format!("{f}:18: log.level: \"degub\" is not a log level"),
    ];
    assert_eq!(p.len(), expected.len(), "{p:#?}");
    for (got, want) in p.iter().zip(&expected) {
        assert!(
            got.starts_with(want.as_str()),
            "\n got: {got}\nwant: {want}..."
        );
    }
    // Display: one problem per line, all of them.
    let shown = load_from(&path, no_env()).unwrap_err().to_string();
    assert_eq!(shown.lines().count(), expected.len());
}

#[test]
fn camera_kinds_image_controls_and_gpio_are_read_and_checked() {
    let (_dir, path) = file(
        "[camera]\nsource = \"rpicam\"\ndevice = \"/dev/video0\"\non_demand = true\n\n\
         [encoder]\nbitrate_mode = \"constant\"\n\n\
         [image]\nhflip = true\nrotation = 180\nbrightness = 60\ncontrast = -20\n\
         exposure = \"night\"\nexposure_compensation = 6\nmetering = \"spot\"\n\
         white_balance = \"tungsten\"\niso = 400\ndenoise = false\n\n\
         [gpio]\nprivacy_led = 17\n",
    );
    let config = load_from(&path, no_env()).unwrap().config;
    assert_eq!(config.camera.source, SourceKind::Rpicam);
    assert_eq!(config.camera.device, Some(PathBuf::from("/dev/video0")));
    assert!(config.camera.on_demand);
    assert_eq!(config.encoder.bitrate_mode, config::BitrateMode::Constant);
    assert!(config.image.hflip && !config.image.vflip);
    assert_eq!(config.image.rotation, 180);
    assert_eq!((config.image.brightness, config.image.contrast), (60, -20));
    assert_eq!(config.image.exposure, config::ExposureMode::Night);
    assert_eq!(config.image.metering, config::Metering::Spot);
    assert_eq!(config.image.white_balance, config::WhiteBalance::Tungsten);
    assert_eq!((config.image.iso, config.image.denoise), (400, false));
    assert_eq!(config.gpio.privacy_led, Some(17));

    let (_dir, path) = file(
        "[camera]\ndevice = \"video0\"\n[image]\nrotation = 45\niso = 50\n\
         brightness = 101\nexposure = \"dark\"\n[gpio]\nprivacy_led = 40\n",
    );
    let problems = problems(&path, &[]);
    let expect = [
        "camera.device: \"video0\" is not a device",
        "image.rotation: 45 is not a valid rotation (0, 90, 180 or 270 degrees)",
        "image.iso: 50 is not a valid ISO (0 = automatic, or 100-800)",
        "image.brightness: 101 is not a valid brightness (0-100)",
        "image.exposure: \"dark\" is not valid",
        "gpio.privacy_led: 40 is not a valid GPIO pin (BCM pin 0-27)",
    ];
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");
    for (problem, expected) in problems.iter().zip(expect) {
        assert!(problem.contains(expected), "{problem:?} lacks {expected:?}");
    }
}

#[test]
fn file_source_needs_a_file() {
    let (dir, path) = file("[camera]\nsource = \"file\"\n");
    let p = problems(&path, &[]);
    assert_eq!(
        p,
        vec![format!(
            "{}:2: camera.source: \"file\" needs camera.file, the H.264 file to replay",
            path.display()
        )]
    );
    // The environment can supply it.
    let video = dir.path().join("v.h264");
    std::fs::write(&video, b"").unwrap();
    let loaded = load_from(
        &path,
        env(&[("STREAMER_CAMERA__FILE", video.to_str().unwrap())]),
    )
    .unwrap();
    assert_eq!(loaded.config.camera.file, Some(video));
}

#[test]
fn level_may_be_a_number_or_text() {
    for (written, stored) in [
        ("4", "4"),
        ("4.0", "4.0"),
        ("4.1", "4.1"),
        ("\"4\"", "4"),
        ("\"1b\"", "1b"),
        ("\"5.2\"", "5.2"),
    ] {
        let (_dir, path) = file(&format!("[encoder]\nlevel = {written}\n"));
        let loaded = load_from(&path, no_env()).unwrap();
        assert_eq!(loaded.config.encoder.level, stored, "level = {written}");
        assert!(loaded.config.encoder.level_idc().is_some());
    }
    for bad in ["6", "4.3", "\"high\"", "true", "\"\""] {
        let (_dir, path) = file(&format!("[encoder]\nlevel = {bad}\n"));
        let p = problems(&path, &[]);
        assert_eq!(p.len(), 1, "level = {bad}: {p:?}");
        assert!(p[0].contains("encoder.level"), "{}", p[0]);
    }
}

#[test]
fn limits_are_inclusive() {
    let (_dir, path) = file(
        "[server]\nport = 0\nmax_viewers = 1\n[camera]\nwidth = 16\nheight = 4096\nframerate = 120\n[encoder]\nbitrate = 64000\nintra_period = 1\n",
    );
    let c = load_from(&path, no_env()).unwrap().config;
    assert_eq!(c.server.port, 0);
    assert_eq!(
        (c.camera.width, c.camera.height, c.camera.framerate),
        (16, 4096, 120)
    );
    let (_dir, path) =
        file("[camera]\nwidth = 4098\nframerate = -1\n[encoder]\nbitrate = 25000001\n");
    assert_eq!(problems(&path, &[]).len(), 3);
}

#[test]
fn syntax_errors_name_the_line() {
    let (_dir, path) = file("[server]\nport = 8001\nbind = ::\n");
    let p = problems(&path, &[]);
    assert!(!p.is_empty());
    assert!(
        p[0].starts_with(&format!("{}:3: not valid TOML", path.display())),
        "{p:?}"
    );
}

#[test]
fn file_and_environment_problems_are_reported_together() {
    let (_dir, path) = file("[server]\nport = \"eighty\"\n");
    let p = problems(&path, &[("STREAMER_CAMERA__WIDTH", "3")]);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(p[0].contains(":2: server.port:"));
    assert!(p[1].contains("STREAMER_CAMERA__WIDTH: camera.width: 3 is not a valid width"));
}

#[test]
fn invalid_file_runs_on_defaults_plus_valid_environment() {
    let (_dir, path) =
        file("[server]\nport = 9000\nmax_viewers = -4\n[camera]\nsource = \"test\"\n");
    let loaded = load_or_defaults_from(
        &path,
        env(&[
            ("STREAMER_CAMERA__FRAMERATE", "25"),
            ("STREAMER_CAMERA__WIDTH", "99999"),
        ]),
    );
    assert!(loaded.file_found);
    assert_eq!(loaded.errors.len(), 2, "{:#?}", loaded.errors);
    assert!(loaded.errors[0].contains("server.max_viewers"));
    assert!(loaded.errors[1].contains("STREAMER_CAMERA__WIDTH"));
    let mut expected = Config::default();
    expected.camera.framerate = 25;
    // The file's valid keys (port, source) are not used either: the file as a whole is.
    assert_eq!(loaded.config, expected);
}

#[test]
fn bad_environment_alone_keeps_the_file() {
    let (_dir, path) = file("[server]\nport = 9000\n");
    let loaded = load_or_defaults_from(&path, env(&[("STREAMER_SERVER__PORT", "x")]));
    assert_eq!(loaded.errors.len(), 1);
    assert_eq!(loaded.config.server.port, 9000);
}

#[test]
fn file_source_from_environment_without_a_file_falls_back() {
    let loaded = load_or_defaults_from(
        Path::new("/nonexistent/streamer.toml"),
        env(&[("STREAMER_CAMERA__SOURCE", "file")]),
    );
    assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
    assert!(loaded.errors[0].contains("STREAMER_CAMERA__SOURCE"));
    assert_eq!(loaded.config.camera.source, SourceKind::Auto);
}

#[test]
fn default_toml_parses_back_to_the_defaults() {
    let text = default_toml();
    let parsed: Config = toml::from_str(&text).unwrap();
    assert_eq!(parsed, Config::default());
    // And through the real loader, with nothing to complain about.
    let (_dir, path) = file(&text);
    let loaded = load_from(&path, no_env()).unwrap();
    assert_eq!(loaded.config, Config::default());
}

#[test]
fn default_toml_documents_every_key() {
    let text = default_toml();
    let lines: Vec<&str> = text.lines().collect();
    let schema = serde_json::to_value(Config::default()).unwrap();
    let mut keys = 0;
    for (section, fields) in schema.as_object().unwrap() {
        let header = format!("[{section}]");
        let at = lines
            .iter()
            .position(|l| *l == header)
            .unwrap_or_else(|| panic!("no {header}"));
        assert!(lines[at - 1].starts_with("# "), "{header} has no comment");
        for key in fields.as_object().unwrap().keys() {
            let active = format!("{key} = ");
            let commented = format!("# {key} = ");
            let line = lines[at..]
                .iter()
                .position(|l| l.starts_with(&active) || l.starts_with(&commented))
                .map(|i| i + at)
                .unwrap_or_else(|| panic!("{section}.{key} missing"));
            let above = lines[line - 1];
            assert!(
                above.starts_with("# ") && above.len() > 10,
                "{section}.{key} has no comment above it: {above:?}"
            );
            keys += 1;
        }
    }
    // network, server, access, webrtc, rtsp, camera, encoder, image, gpio, update, log
    assert_eq!(keys, 8 + 11 + 3 + 3 + 4 + 7 + 5 + 13 + 1 + 1 + 1);
    // The optional key is shown, commented out, with an example that works.
    assert!(text.contains("\n# file = \"/boot/video.h264\"\n"));
    let uncommented = text.replace("\n# file = ", "\nfile = ");
    let parsed: Config = toml::from_str(&uncommented).unwrap();
    assert_eq!(parsed.camera.file, Some(PathBuf::from("/boot/video.h264")));
    // Doc comments carry the limits the checks enforce.
    assert!(text.contains("16-4096"));
    assert!(text.contains("64000-25000000"));
    assert!(text.contains("0 means any free port"));
}

#[test]
fn shipped_example_is_the_generated_default() {
    let shipped = shipped_toml();
    let text = std::fs::read_to_string(&shipped).unwrap();
    assert!(
        text == default_toml(),
        "{} is out of date: regenerate it with `streamer print-default-config > board/common/streamer.toml`",
        shipped.display()
    );
}

#[test]
fn the_readme_lists_every_key() {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(&readme).unwrap();
    let start = "<!-- config-reference:start -->\n";
    let end = "<!-- config-reference:end -->";
    let from = text
        .find(start)
        .expect("the README has the reference's start marker")
        + start.len();
    let to = text
        .find(end)
        .expect("the README has the reference's end marker");
    assert!(
        text[from..to] == streamer::config::reference_markdown(),
        "README.md's key reference is out of date: replace the part between the markers with \
         the output of `streamer print-default-config --markdown`"
    );
}

#[test]
fn effective_toml_round_trips() {
    let mut c = Config::default();
    c.server.port = 1234;
    c.camera.source = SourceKind::File;
    c.camera.file = Some(PathBuf::from("/a b.h264"));
    c.encoder.level = "3.1".into();
    let text = effective_toml(&c);
    assert_eq!(toml::from_str::<Config>(&text).unwrap(), c);
    assert_eq!(
        toml::from_str::<Config>(&effective_toml(&Config::default())).unwrap(),
        Config::default()
    );
}

#[test]
fn load_reads_the_process_environment_only_with_prefix() {
    // `load` itself (process environment): the test process sets no STREAMER_*__*.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.toml");
    if std::env::vars().any(|(k, _)| k.starts_with("STREAMER_") && k.contains("__")) {
        return;
    }
    let loaded = config::load(&path).unwrap();
    assert_eq!(loaded.config, Config::default());
    assert!(!config::load_or_defaults(&path).file_found);
}

// ----- The command line -----

/// The default file the image ships on its boot partition.
fn shipped_toml() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../board/common/streamer.toml")
}

/// Runs `check-config`, which must succeed, and reads the effective configuration
/// it prints.
fn check_config_effective(command: &mut Command) -> Config {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    toml::from_str(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

fn streamer() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_streamer"));
    // The child must not pick up configuration from the test's environment.
    for (name, _) in std::env::vars() {
        if name.starts_with("STREAMER_") {
            command.env_remove(name);
        }
    }
    command
}

#[test]
fn cli_print_default_config() {
    let out = streamer().arg("print-default-config").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), default_toml());
}

#[test]
fn cli_check_config_good_file() {
    let (_dir, path) = file("[server]\nport = 9001\n[camera]\nsource = \"test\"\n");
    let effective = check_config_effective(
        streamer()
            .arg("check-config")
            .arg(&path)
            .env("STREAMER_ENCODER__BITRATE", "2000000"),
    );
    assert_eq!(effective.server.port, 9001);
    assert_eq!(effective.camera.source, SourceKind::Test);
    assert_eq!(effective.encoder.bitrate, 2_000_000);
}

#[test]
fn the_shipped_file_passes_check_config_as_the_image_uses_it() {
    let shipped = shipped_toml();
    let effective = check_config_effective(streamer().arg("check-config").arg(&shipped));
    // The appliance answers on http://streamer.local/.
    assert_eq!(effective.server.port, 80);
    assert_eq!(effective.network.hostname, "streamer");
}

#[test]
fn cli_check_config_bad_file() {
    let (_dir, path) = file("[server]\nport = 70000\nfoo = 1\n");
    let out = streamer().arg("check-config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let f = path.display();
    assert!(
        stderr.contains(&format!(
            "{f}:2: server.port: 70000 is not a valid port (0-65535)"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{f}:3: server.foo: unknown key")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn cli_check_config_uses_global_config_option() {
    let (_dir, path) = file("[server]\nport = -1\n");
    let out = streamer()
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("server.port"));
}

#[test]
fn misplaced_keys_get_a_hint() {
    let (_dir, path) = file(
        "port = 8001\n[camera]\nbitrate = 100000\n[server]\nPort = 1\n[Log]\nlevel = \"info\"\n",
    );
    let p = problems(&path, &[]);
    let f = path.display();
    assert_eq!(
        p,
        vec![
            format!(
                "{f}:1: port: unknown section; port is a key of [server]: write it below [server]"
            ),
            format!("{f}:3: camera.bitrate: unknown key in [camera]; bitrate belongs in [encoder]"),
            format!("{f}:5: server.Port: unknown key; did you mean port? (names are lowercase)"),
            format!("{f}:6: Log: unknown section; did you mean [log]? (names are lowercase)"),
        ]
    );
}

#[test]
fn every_syntax_error_is_reported() {
    let (_dir, path) = file("[server]\nport = \nbind = \"::\"\n[camera]\nwidth = 12 34\n");
    let p = problems(&path, &[]);
    let f = path.display();
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p[0].starts_with(&format!("{f}:2: not valid TOML: ")),
        "{}",
        p[0]
    );
    assert!(
        p[1].starts_with(&format!("{f}:5: not valid TOML: ")),
        "{}",
        p[1]
    );
}

#[test]
fn unreadable_file_is_a_problem_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    // A folder where the file should be.
    let loaded = load_or_defaults_from(dir.path(), no_env());
    assert!(loaded.file_found);
    assert_eq!(loaded.errors.len(), 1);
    assert!(
        loaded.errors[0].contains("cannot read the file"),
        "{:?}",
        loaded.errors
    );
    assert_eq!(loaded.config, Config::default());
    // Not UTF-8.
    let path = dir.path().join("latin1.toml");
    std::fs::write(&path, b"[server]\nweb_root = \"/caf\xe9\"\n").unwrap();
    let loaded = load_or_defaults_from(&path, no_env());
    assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
}

#[test]
fn sections_may_be_written_as_dotted_keys_or_inline_tables() {
    let (_dir, path) = file("server.port = 9002\ncamera = { width = 640, height = 480 }\n");
    let c = load_from(&path, no_env()).unwrap().config;
    assert_eq!(c.server.port, 9002);
    assert_eq!((c.camera.width, c.camera.height), (640, 480));
    let (_dir, path) = file("server = 5\n[[camera]]\nwidth = 640\n");
    let p = problems(&path, &[]);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p[0].contains(":1: server: must be a section [server], not 5"),
        "{}",
        p[0]
    );
    assert!(
        p[1].contains("camera: must be a section [camera], not an array"),
        "{}",
        p[1]
    );
}

#[test]
fn cli_check_config_missing_file_means_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");
    let out = streamer().arg("check-config").arg(&path).output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("no such file"), "{stderr}");
    let printed: Config = toml::from_str(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(printed, Config::default());
}

#[test]
fn cli_check_config_names_bad_environment_variables() {
    let dir = tempfile::tempdir().unwrap();
    let out = streamer()
        .arg("check-config")
        .arg(dir.path().join("absent.toml"))
        .env("STREAMER_SERVER__PORTS", "1")
        .env("STREAMER_BIN", "ignored")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("environment variable STREAMER_SERVER__PORTS: server.ports: unknown key"),
        "{stderr}"
    );
    assert!(!stderr.contains("STREAMER_BIN"), "{stderr}");
}

/// The longest line a problem may take: path, line, a key cut to a short prefix
/// and a reason quoting values cut to a short prefix.
const LONGEST_PROBLEM: usize = 800;

/// Checks that `errors` is the bounded list: `MAX_PROBLEMS` problems, each short,
/// and the last line counting the rest (at least `more_than` of them).
fn assert_bounded(errors: &[String], more_than: usize) {
    assert_eq!(errors.len(), MAX_PROBLEMS + 1, "{errors:#?}");
    for line in errors {
        assert!(line.chars().count() <= LONGEST_PROBLEM, "{line}");
    }
    let last = errors.last().unwrap();
    let more: usize = last
        .strip_prefix("and ")
        .and_then(|rest| rest.strip_suffix(" more problems"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the last line counts the rest: {last}"));
    assert!(more > more_than, "{last}");
}

/// The lines `errors` name in `path` (`path:LINE: ...`), in order.
fn lines_named(path: &Path, errors: &[String]) -> Vec<usize> {
    let prefix = format!("{}:", path.display());
    errors
        .iter()
        .filter_map(|e| e.strip_prefix(&prefix)?.split(':').next()?.parse().ok())
        .collect()
}

#[test]
fn ten_megabytes_of_garbage_are_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("streamer.toml");
    // Bytes 0-255 over and over: not text, not TOML, and ten times the limit.
    let garbage: Vec<u8> = (0..10 << 20).map(|i: u64| (i * 7919 % 251) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let start = std::time::Instant::now();
    let loaded = load_or_defaults_from(&path, env(&[("STREAMER_SERVER__PORT", "8080")]));
    // Refused by its size, unread: far below a second even in a debug build on a busy
    // machine (it took over 40 s when the whole file was parsed).
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    assert!(loaded.file_found);
    assert_eq!(
        loaded.errors,
        [format!(
            "{}: the file is 10485760 bytes, over the limit of 1048576 bytes (1 MiB) for a \
             configuration file: it was not read",
            path.display()
        )]
    );
    // The defaults, and the environment still applies.
    let mut expected = Config::default();
    expected.server.port = 8080;
    assert_eq!(loaded.config, expected);
}

#[test]
fn a_file_one_byte_over_the_limit_is_refused_and_one_at_it_is_read() {
    let limit = MAX_FILE_BYTES as usize;
    let at_limit = format!("[server]\nport = 9000\n{}\n", "#".repeat(limit - 22));
    assert_eq!(at_limit.len(), limit);
    let (_dir, path) = file(&at_limit);
    assert_eq!(load_from(&path, no_env()).unwrap().config.server.port, 9000);
    let (_dir, path) = file(&format!("{at_limit}\n"));
    let p = problems(&path, &[]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains("the file is 1048577 bytes, over the limit"),
        "{p:?}"
    );
}

#[test]
fn a_file_without_an_end_is_read_only_to_the_limit() {
    // /dev/zero says it is empty and never ends: refused after the limit, unread.
    let loaded = load_or_defaults_from(Path::new("/dev/zero"), no_env());
    assert_eq!(loaded.config, Config::default());
    assert_eq!(
        loaded.errors,
        [
            "/dev/zero: the file is longer than the limit of 1048576 bytes (1 MiB) for a \
             configuration file: it was not read"
        ]
    );
}

#[test]
fn a_file_that_is_not_text_names_where() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("streamer.toml");
    std::fs::write(&path, b"[server]\nport = 9000\n\xff\xfe\n").unwrap();
    let p = problems(&path, &[]);
    assert_eq!(
        p,
        [format!(
            "{}:3: not text (UTF-8): byte 21 is 0xff; save the file as UTF-8 text",
            path.display()
        )]
    );
}

#[test]
fn a_megabyte_of_syntax_errors_keeps_the_first_and_counts_the_rest() {
    let text = "= = =\n".repeat((MAX_FILE_BYTES as usize - 64) / 6);
    let (_dir, path) = file(&text);
    let loaded = load_or_defaults_from(&path, no_env());
    assert_eq!(loaded.config, Config::default());
    assert_bounded(&loaded.errors, 100_000);
    // The first ones, in the file's order, each on its own line.
    let lines = lines_named(&path, &loaded.errors);
    assert_eq!(lines.len(), MAX_PROBLEMS, "{:#?}", loaded.errors);
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
    assert_eq!(lines[0], 1);
    assert!(lines[MAX_PROBLEMS - 1] <= MAX_PROBLEMS, "{lines:?}");
    assert!(loaded.errors[0].contains("not valid TOML"));
}

#[test]
fn a_megabyte_of_unknown_keys_keeps_the_first_and_counts_the_rest() {
    let limit = MAX_FILE_BYTES as usize - 64;
    for prefix in ["", "[server]\n"] {
        let mut text = prefix.to_string();
        let mut i = 0;
        while text.len() < limit - 20 {
            text.push_str(&format!("key{i} = 1\n"));
            i += 1;
        }
        let (_dir, path) = file(&text);
        let loaded = load_or_defaults_from(&path, no_env());
        assert_eq!(loaded.config, Config::default());
        assert_bounded(&loaded.errors, 50_000);
        let first_line = prefix.lines().count() + 1;
        let lines = lines_named(&path, &loaded.errors);
        assert_eq!(
            lines,
            (first_line..first_line + MAX_PROBLEMS).collect::<Vec<_>>()
        );
        // The count is exact: every key but the kept ones.
        assert_eq!(
            loaded.errors.last().unwrap(),
            &format!("and {} more problems", i - MAX_PROBLEMS)
        );
    }
}

#[test]
fn problems_past_the_limit_still_decide_what_is_used() {
    // A [network] mistake after many others still drops the file's [network]
    // section; a network section without problems is kept despite them.
    let mut text = String::from("[server]\n");
    for i in 0..100 {
        text.push_str(&format!("key{i} = 1\n"));
    }
    let good = format!("[network]\nhostname = \"garden\"\n{text}");
    let (_dir, path) = file(&good);
    let loaded = load_or_defaults_from(&path, no_env());
    assert_eq!(loaded.errors.len(), MAX_PROBLEMS + 1);
    assert_eq!(loaded.config.network.hostname, "garden");
    for mistake in ["wifi_country = \"GBR\"", "unknown = 1"] {
        let bad = format!("{text}[network]\nhostname = \"garden\"\n{mistake}\n");
        let (_dir, path) = file(&bad);
        let loaded = load_or_defaults_from(&path, no_env());
        assert_eq!(loaded.errors.len(), MAX_PROBLEMS + 1);
        assert_eq!(
            loaded.errors.last().unwrap(),
            &format!("and {} more problems", 101 - MAX_PROBLEMS)
        );
        assert_eq!(
            loaded.config.network,
            Config::default().network,
            "{mistake}"
        );
    }
}

#[test]
fn long_values_and_keys_are_quoted_cut() {
    let long = "x".repeat(MAX_FILE_BYTES as usize - 100);
    // The file, the key named, and the length shown: the value's, or the key's with
    // its section.
    for (text, key, shown) in [
        (
            format!("[camera]\nsource = \"{long}\"\n"),
            "camera.source",
            long.len(),
        ),
        (
            format!("[network]\nhostname = \"{long}\"\n"),
            "network.hostname",
            long.len(),
        ),
        (
            format!("[log]\nlevel = \"{long}\"\n"),
            "log.level",
            long.len(),
        ),
        (
            format!("[encoder]\nlevel = \"{long}\"\n"),
            "encoder.level",
            long.len(),
        ),
        (
            format!("[server]\n{long} = 1\n"),
            "server.xxxx",
            "server.".len() + long.len(),
        ),
        (format!("{long} = 1\n"), "xxxx", long.len()),
    ] {
        let (_dir, path) = file(&text);
        let p = problems(&path, &[]);
        assert_eq!(p.len(), 1, "{key}: {p:?}");
        assert!(p[0].chars().count() <= LONGEST_PROBLEM, "{key}: {}", p[0]);
        assert!(
            p[0].contains(&format!("… ({shown} characters)")),
            "{key}: {}",
            p[0]
        );
        assert!(p[0].contains(key), "{key}: {}", p[0]);
    }
    // Cut on a character boundary, counting characters.
    let (_dir, path) = file(&format!("[network]\nhostname = \"{}\"\n", "é".repeat(100)));
    let p = problems(&path, &[]);
    assert!(
        p[0].contains(&format!("\"{}\"… (100 characters)", "é".repeat(60))),
        "{p:?}"
    );
}

#[test]
fn text_loads_as_the_file_with_it_does() {
    let text = "[server]\nport = 70000\n[camera]\nsource = \"test\"\nnope = 1\n";
    let (_dir, path) = file(text);
    let from_file = load_or_defaults_from(&path, env(&[("STREAMER_SERVER__BIND", "::1")]));
    let from_text =
        load_or_defaults_from_text(&path, text, env(&[("STREAMER_SERVER__BIND", "::1")]));
    assert_eq!(from_text.errors, from_file.errors);
    assert_eq!(from_text.config, from_file.config);
    assert_eq!(from_text.errors.len(), 2);
}

#[test]
fn the_file_source_needs_a_file_that_can_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("video.h264");
    let missing = dir.path().join("missing.h264");
    // Missing, in the file: named, and the file is not used.
    let (_cfg, path) = file(&format!(
        "[camera]\nsource = \"file\"\nfile = \"{}\"\n",
        missing.display()
    ));
    let loaded = load_or_defaults_from(&path, no_env());
    assert_eq!(
        loaded.errors,
        [format!(
            "{}:3: camera.file: \"{}\" does not exist: name the H.264 file to replay",
            path.display(),
            missing.display()
        )]
    );
    assert_eq!(loaded.config.camera, Config::default().camera);
    // A folder.
    let (_cfg, path) = file(&format!(
        "[camera]\nsource = \"file\"\nfile = \"{}\"\n",
        dir.path().display()
    ));
    let p = problems(&path, &[]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains(":3: camera.file: ") && p[0].contains("is a folder"),
        "{p:?}"
    );
    // There: fine.
    std::fs::write(&video, b"").unwrap();
    let (_cfg, path) = file(&format!(
        "[camera]\nsource = \"file\"\nfile = \"{}\"\n",
        video.display()
    ));
    assert_eq!(
        load_from(&path, no_env()).unwrap().config.camera.file,
        Some(video.clone())
    );
    // Not checked when another source is chosen.
    let (_cfg, path) = file(&format!(
        "[camera]\nsource = \"test\"\nfile = \"{}\"\n",
        missing.display()
    ));
    assert!(load_from(&path, no_env()).is_ok());
    // Missing, from the environment: named; the file source keeps trying it (it
    // reports the file as missing, and the file may appear).
    let loaded = load_or_defaults_from(
        Path::new("/nonexistent/streamer.toml"),
        env(&[
            ("STREAMER_CAMERA__SOURCE", "file"),
            ("STREAMER_CAMERA__FILE", missing.to_str().unwrap()),
        ]),
    );
    assert_eq!(
        loaded.errors,
        [format!(
            "environment variable STREAMER_CAMERA__FILE: camera.file: \"{}\" does not exist: \
             name the H.264 file to replay",
            missing.display()
        )]
    );
    assert_eq!(loaded.config.camera.source, SourceKind::File);
}

#[test]
fn cli_check_config_names_a_missing_camera_file() {
    let (dir, path) = file("[camera]\nsource = \"file\"\nfile = \"video.h264\"\n");
    // Relative to the working directory, as the file source opens it.
    let out = streamer()
        .arg("check-config")
        .arg(&path)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        format!(
            "{}:3: camera.file: \"video.h264\" does not exist: name the H.264 file to replay\n",
            path.display()
        )
    );
    std::fs::write(dir.path().join("video.h264"), b"").unwrap();
    let effective = check_config_effective(
        streamer()
            .arg("check-config")
            .arg(&path)
            .current_dir(dir.path()),
    );
    assert_eq!(effective.camera.source, SourceKind::File);
}

#[test]
fn cli_check_config_lists_at_most_the_limit() {
    let mut text = String::from("[server]\n");
    for i in 0..5000 {
        text.push_str(&format!("key{i} = 1\n"));
    }
    let (_dir, path) = file(&text);
    let out = streamer().arg("check-config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), MAX_PROBLEMS + 1, "{stderr}");
    assert_eq!(
        lines.last().unwrap(),
        &format!("and {} more problems", 5000 - MAX_PROBLEMS)
    );
}

#[test]
fn request_policy_names_are_lists_checked_at_load() {
    let (_dir, path) = file(
        "[server]\nallowed_hosts = [\"camera.example.com\", \"192.168.1.50\"]\nframe_ancestors = [\"self\"]\n",
    );
    let loaded = load_from(&path, no_env()).unwrap();
    assert_eq!(
        loaded.config.server.allowed_hosts,
        ["camera.example.com", "192.168.1.50"]
    );
    assert_eq!(loaded.config.server.frame_ancestors, ["self"]);
    // One text in the environment, as for network.dns.
    let loaded = load_from(
        &path,
        env(&[(
            "STREAMER_SERVER__FRAME_ANCESTORS",
            "self, http://homeassistant.local:8123",
        )]),
    )
    .unwrap();
    assert_eq!(
        loaded.config.server.frame_ancestors,
        ["self", "http://homeassistant.local:8123"]
    );
    let (_dir, path) = file(
        "[server]\nallowed_hosts = [\"camera.example.com:8443\"]\nframe_ancestors = [\"x; script-src *\"]\n",
    );
    let problems = problems(&path, &[]);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("streamer.toml:2: server.allowed_hosts") && p.contains("without")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("server.frame_ancestors") && p.contains("not a web origin")),
        "{problems:?}"
    );
}

#[test]
fn every_problem_is_counted_though_only_the_first_are_listed() {
    let mut text = String::from("[server]\n");
    for n in 0..30 {
        text.push_str(&format!("unknown_{n} = 1\n"));
    }
    let (_dir, path) = file(&text);
    let loaded = load_or_defaults_from(&path, env(&[("STREAMER_SERVER__PORTS", "80")]));
    assert_eq!(
        loaded.errors.len(),
        MAX_PROBLEMS + 1,
        "{:#?}",
        loaded.errors
    );
    assert_eq!(loaded.problem_count, 31);
    assert_eq!(loaded.errors.last().unwrap(), "and 11 more problems");
    let (_dir, path) = file("[server]\nport = 80\n");
    assert_eq!(load_or_defaults_from(&path, no_env()).problem_count, 0);
}

#[test]
fn https_needs_a_certificate_and_its_key_together() {
    let (_dir, path) = file("[server]\nport = 8080\ntls_cert = \"/boot/tls/cert.pem\"\n");
    let f = path.display();
    let p = problems(&path, &[]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(&format!(
            "{f}:3: server.tls_cert: HTTPS needs server.tls_key"
        )),
        "{p:?}"
    );
    // The key alone, from the environment, names the certificate it lacks.
    let (_dir, empty) = file("");
    let p = problems(&empty, &[("STREAMER_SERVER__TLS_KEY", "/boot/tls/key.pem")]);
    assert!(
        p[0].contains("server.tls_key: HTTPS needs server.tls_cert"),
        "{p:?}"
    );
    // Both: fine, on a port of its own.
    let (_dir, both) = file(
        "[server]\ntls_cert = \"/boot/tls/cert.pem\"\ntls_key = \"/boot/tls/key.pem\"\n\
         tls_port = 8443\n",
    );
    let c = load_from(&both, no_env()).unwrap().config;
    assert_eq!(c.server.tls_port, 8443);
    assert_eq!(c.server.tls_key, PathBuf::from("/boot/tls/key.pem"));
    let (_dir, clash) = file(
        "[server]\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\nport = 8443\ntls_port = 8443\n",
    );
    let p = problems(&clash, &[]);
    assert!(
        p[0].contains(":5: server.tls_port: 8443 is server.port too"),
        "{p:?}"
    );
}
