//! The `streamer` binary end to end: configuration from file and environment, real
//! Pi encoder output through the file source, signals and exit codes.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use support::process::{http_get, StreamerProcess};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_streamer"))
}

fn no_config() -> PathBuf {
    PathBuf::from("/nonexistent/streamer.toml")
}

fn file_source(sample: &str) -> Vec<(&'static str, String)> {
    vec![
        ("STREAMER_CAMERA__SOURCE", "file".to_owned()),
        ("STREAMER_CAMERA__FILE", sample.to_owned()),
        ("STREAMER_LOG__LEVEL", "info".to_owned()),
    ]
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn streams_a_file_and_stops_cleanly_on_sigterm() {
    let sample = support::pi_sample();
    let env = file_source(sample.to_str().unwrap());
    let mut server = StreamerProcess::start(&binary(), &no_config(), &env_refs(&env));
    assert!(
        server.log().contains("no configuration file"),
        "a missing config file is logged:\n{}",
        server.log()
    );

    server.wait_for_ok("/healthz", Duration::from_secs(10));
    let status: serde_json::Value =
        serde_json::from_str(&server.get("/api/status").1).expect("status is JSON");
    assert_eq!(status["source"]["kind"], "file", "{status}");
    assert_eq!(status["source"]["state"], "live", "{status}");
    assert_eq!(status["stream"]["codec"], "avc1.640028", "{status}");
    assert_eq!(status["stream"]["width"], 1920, "{status}");
    assert_eq!(status["stream"]["height"], 1080, "{status}");

    let address = server.address;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let close = runtime.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{address}/ws"))
            .await
            .expect("WebSocket connects");
        // The first binary message is a keyframe with its parameter sets.
        let first = loop {
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                Ok(Some(Ok(Message::Binary(data)))) => break data,
                Ok(Some(Ok(_))) => continue,
                other => panic!("no video: {other:?}"),
            }
        };
        let types = support::nal_types(&first);
        assert!(
            types.starts_with(&[7, 8, 5]),
            "first frame starts with SPS, PPS, IDR: {types:?}"
        );

        server.signal("TERM");
        // The server closes the socket with 1001 (going away).
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            assert!(Instant::now() < deadline, "no close frame after SIGTERM");
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => break frame,
                Ok(Some(Ok(_))) => continue,
                other => panic!("connection ended without a close frame: {other:?}"),
            }
        }
    });
    assert_eq!(
        close.map(|frame| frame.code),
        Some(CloseCode::Away),
        "viewers are told the server is going away"
    );
    let exit = server
        .wait_exit(Duration::from_secs(5))
        .expect("exits within 5 s of SIGTERM");
    assert!(exit.success(), "exit status {exit:?}\n{}", server.log());
    assert_eq!(
        http_get(address, "/healthz").0,
        0,
        "nothing listens after the exit"
    );
}

#[test]
fn invalid_config_file_runs_on_defaults_and_reports_the_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("streamer.toml");
    std::fs::write(
        &config,
        "[server]\nport = \"eighty\"\n[camera]\nsource = \"test\"\ncolour = \"blue\"\n",
    )
    .unwrap();
    let server = test_pattern(&config, &[]);
    // The device does not go dark: the test pattern streams.
    server.wait_for_ok("/healthz", Duration::from_secs(10));
    let status: serde_json::Value =
        serde_json::from_str(&server.get("/api/status").1).expect("status is JSON");
    let errors = status["config"]["errors"].to_string();
    assert!(errors.contains("server.port"), "{status}");
    assert!(errors.contains("camera.colour"), "{status}");
    assert!(
        errors.contains(config.to_str().unwrap()),
        "errors name the file: {status}"
    );
    assert!(
        server.log().contains("camera.colour"),
        "errors are logged:\n{}",
        server.log()
    );
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = std::process::Command::new(binary())
        .args(["--config", "/nonexistent/streamer.toml"])
        .env("STREAMER_SERVER__BIND", "127.0.0.1")
        .env("STREAMER_SERVER__PORT", &port)
        .env("STREAMER_CAMERA__SOURCE", "test")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot listen on 127.0.0.1:") && stderr.contains("server.port"),
        "{stderr}"
    );
}

#[test]
fn a_missing_file_source_is_reported_offline_not_fatal() {
    let env = file_source("/nonexistent/video.h264");
    let server = StreamerProcess::start(&binary(), &no_config(), &env_refs(&env));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status: serde_json::Value =
            serde_json::from_str(&server.get("/api/status").1).expect("status is JSON");
        if status["source"]["state"] == "offline" {
            let message = status["source"]["message"].to_string();
            assert!(message.contains("/nonexistent/video.h264"), "{status}");
            // The configuration report names it too.
            assert_eq!(
                status["config"]["errors"],
                serde_json::json!(["environment variable STREAMER_CAMERA__FILE: camera.file: \
                     \"/nonexistent/video.h264\" does not exist: name the H.264 file to replay"]),
                "{status}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never offline: {status}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, body) = server.get("/healthz");
    assert_eq!(code, 503, "no video means unhealthy: {body}");
}

#[test]
fn tells_systemd_ready_watchdog_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut server = test_pattern(
        &no_config(),
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let receive = || {
        let mut buffer = [0u8; 4096];
        let n = socket.recv(&mut buffer).expect("a notification");
        String::from_utf8_lossy(&buffer[..n]).into_owned()
    };
    let mut messages = Vec::new();
    while !messages.iter().any(|m: &String| m.contains("READY=1")) {
        messages.push(receive());
    }
    // Keep-alives come every half interval while the test pattern flows.
    let started = Instant::now();
    let mut watchdogs = 0;
    while watchdogs < 4 {
        let message = receive();
        if message.contains("WATCHDOG=1") {
            watchdogs += 1;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "too few keep-alives: {messages:?}"
        );
        messages.push(message);
    }
    server.signal("TERM");
    loop {
        let message = receive();
        if message.contains("STOPPING=1") {
            break;
        }
        messages.push(message);
    }
    let exit = server.wait_exit(Duration::from_secs(5)).expect("exits");
    assert!(exit.success(), "{}", server.log());
}

#[test]
fn a_second_signal_exits_at_once_while_viewers_drain() {
    use std::io::{Read, Write};
    let sample = support::pi_sample();
    let env = file_source(sample.to_str().unwrap());
    let mut server = StreamerProcess::start(&binary(), &no_config(), &env_refs(&env));
    server.wait_for_ok("/healthz", Duration::from_secs(10));

    // A viewer with a tiny receive window that never reads: its socket fills up,
    // so the graceful shutdown would wait for it.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.address.into()).unwrap();
    let mut stuck: std::net::TcpStream = socket.into();
    write!(
        stuck,
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        server.address
    )
    .unwrap();
    let mut head = [0u8; 12];
    stuck.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    std::thread::sleep(Duration::from_millis(1500)); // let the socket fill

    server.signal("TERM");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        server.wait_exit(Duration::ZERO).is_none(),
        "the first signal waits for viewers to drain"
    );
    let second = Instant::now();
    server.signal("TERM");
    let exit = server
        .wait_exit(Duration::from_secs(1))
        .expect("the second signal exits at once");
    assert_eq!(exit.code(), Some(130), "{}", server.log());
    assert!(second.elapsed() < Duration::from_secs(1));
    drop(stuck);
}

#[test]
fn on_demand_the_camera_starts_when_a_viewer_comes() {
    let server = test_pattern(&no_config(), &[("STREAMER_CAMERA__ON_DEMAND", "true")]);
    let body = server.wait_for_ok("/healthz", Duration::from_secs(10));
    assert!(body.starts_with("idle"), "{body}");
    let status: serde_json::Value =
        serde_json::from_str(&server.get("/api/status").1).expect("status is JSON");
    assert_eq!(status["source"]["state"], "idle", "{status}");
    assert_eq!(status["video"]["frames"], 0, "nothing encoded: {status}");

    let address = server.address;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let started = Instant::now();
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{address}/ws"))
            .await
            .expect("WebSocket connects");
        loop {
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                Ok(Some(Ok(Message::Binary(frame)))) => {
                    assert!(support::nal_types(&frame).contains(&5), "a keyframe first");
                    break;
                }
                Ok(Some(Ok(_))) => continue,
                other => panic!("no video after connecting: {other:?}"),
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the camera started promptly: {:?}",
            started.elapsed()
        );
    });
    // The source says it is live just after handing over its first frame: a
    // viewer can have that frame a moment before the status says so.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status: serde_json::Value =
            serde_json::from_str(&server.get("/api/status").1).expect("status is JSON");
        if status["source"]["state"] == "live" {
            break;
        }
        assert!(Instant::now() < deadline, "not live within 5 s: {status}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn camera_source_rpicam_runs_rpicam_vid_from_path() {
    use std::os::unix::fs::PermissionsExt;
    // A fake rpicam-vid on PATH that streams the real Pi sample.
    let dir = tempfile::tempdir().unwrap();
    let fake = support::repo_root().join("app/tests/fixtures/fake-rpicam-stream");
    let program = dir.path().join("rpicam-vid");
    std::fs::write(
        &program,
        format!("#!/bin/sh\nexec '{}' \"$@\"\n", fake.display()),
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let sample = support::pi_sample();
    let server = StreamerProcess::start(
        &binary(),
        &no_config(),
        &[
            ("PATH", path.as_str()),
            ("FAKE_RPICAM_SAMPLE", sample.to_str().unwrap()),
            ("STREAMER_CAMERA__SOURCE", "rpicam"),
            ("STREAMER_CAMERA__WIDTH", "1920"),
            ("STREAMER_CAMERA__HEIGHT", "1080"),
        ],
    );
    server.wait_for_ok("/healthz", Duration::from_secs(15));
    let status: serde_json::Value =
        serde_json::from_str(&server.get("/api/status").1).expect("status is JSON");
    assert_eq!(status["source"]["kind"], "rpicam", "{status}");
    assert_eq!(status["source"]["state"], "live", "{status}");
    assert_eq!(status["stream"]["codec"], "avc1.640028", "{status}");
}

#[test]
fn probe_reports_the_hardware_and_the_chosen_source() {
    let output = std::process::Command::new(binary())
        .args(["probe", "--config", "/nonexistent/streamer.toml"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("hardware H.264 encoder: "), "{text}");
    // What the V4L2 nodes say about themselves: none on a machine without any,
    // else one indented line per node.
    assert!(
        text.contains("\nV4L2 nodes: none\n")
            || text.contains("\nV4L2 nodes, as they describe themselves:\n  /dev/video"),
        "{text}"
    );
    assert!(text.contains("\nsource: "), "{text}");
    assert!(text.contains("(camera.source = auto)"), "{text}");

    let output = std::process::Command::new(binary())
        .args(["probe", "--json", "--config", "/nonexistent/streamer.toml"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    for key in [
        "model",
        "hardware_encoder",
        "legacy_camera",
        "uvc_cameras",
        "libcamera_csi",
        "video_devices",
        "nodes",
        "notes",
    ] {
        assert!(report.get(key).is_some(), "{key} in {report}");
    }
    assert!(!report["notes"].as_array().unwrap().is_empty());
    // One inspected node per video device sysfs lists.
    assert_eq!(
        report["nodes"].as_array().unwrap().len(),
        report["video_devices"].as_array().unwrap().len(),
        "{report}"
    );
}

/// `streamer hash-password` with `password` on standard input: its stdout.
/// The streamer on the 320x240 test pattern with `config`, plus `more`.
fn test_pattern(config: &Path, more: &[(&str, &str)]) -> StreamerProcess {
    let mut env = vec![
        ("STREAMER_CAMERA__SOURCE", "test"),
        ("STREAMER_CAMERA__WIDTH", "320"),
        ("STREAMER_CAMERA__HEIGHT", "240"),
    ];
    env.extend_from_slice(more);
    StreamerProcess::start(&binary(), config, &env)
}

fn hash_password(password: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(binary())
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("streamer hash-password");
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn hash_password_prints_an_argon2id_hash_of_standard_input() {
    let hash = hash_password("tr0ub4dor & 3");
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    let secret = streamer::access::Secret::parse(&hash).unwrap();
    assert!(secret.verify("tr0ub4dor & 3"));
    assert!(!secret.verify("tr0ub4dor & 4"));
    assert_ne!(hash_password("tr0ub4dor & 3"), hash, "a new salt each time");
}

#[test]
fn the_password_is_in_no_log_line_response_or_check_config_output() {
    let plain = "plain horse battery staple";
    let hash = hash_password("hashed horse battery staple");
    for (secret, password) in [
        (plain, plain),
        (hash.as_str(), "hashed horse battery staple"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("streamer.toml");
        std::fs::write(&config, format!("[access]\npassword = \"{secret}\"\n")).unwrap();
        let check = std::process::Command::new(binary())
            .args(["check-config"])
            .arg(&config)
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&check.stdout).into_owned()
            + &String::from_utf8_lossy(&check.stderr);
        assert!(check.status.success(), "{printed}");
        assert!(printed.contains("access.password is set"), "{printed}");
        assert!(
            !printed.contains(secret) && !printed.contains(password),
            "{printed}"
        );

        let server = test_pattern(&config, &[("STREAMER_LOG__LEVEL", "debug")]);
        server.wait_for_ok("/healthz", Duration::from_secs(10));
        let wrong_password = "wrong horse battery staple";
        let basic = |p: &str| {
            format!(
                "Authorization: {}\r\n",
                streamer::access::credentials::basic_header("streamer", p)
            )
        };
        let (status, _) = server.get("/api/status");
        assert_eq!(status, 401);
        let (status, _) =
            support::process::http_get_with(server.address, "/api/status", &basic(wrong_password));
        assert_eq!(status, 401);
        let (status, body) =
            support::process::http_get_with(server.address, "/api/status", &basic(password));
        assert_eq!(status, 200, "{body}");
        assert!(!body.contains(password) && !body.contains(secret), "{body}");
        let log = server.log();
        assert!(
            log.contains("login refused"),
            "a wrong password is logged:\n{log}"
        );
        for shown in [secret, password, wrong_password] {
            assert!(!log.contains(shown), "{shown:?} in the log:\n{log}");
        }
    }
}

#[test]
fn a_mistake_in_access_lets_nobody_in_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("streamer.toml");
    std::fs::write(&config, "[access]\npassword = \"$argon2id$half-a-hash\"\n").unwrap();
    let check = std::process::Command::new(binary())
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&check.stderr).into_owned();
    assert!(!check.status.success());
    assert!(printed.contains("access.password"), "{printed}");
    assert!(!printed.contains("half-a-hash"), "{printed}");
    let server = test_pattern(&config, &[]);
    server.wait_for_ok("/healthz", Duration::from_secs(10));
    for password in ["", "$argon2id$half-a-hash"] {
        let authorization = format!(
            "Authorization: {}\r\n",
            streamer::access::credentials::basic_header("streamer", password)
        );
        let (status, _) =
            support::process::http_get_with(server.address, "/api/status", &authorization);
        assert_eq!(status, 401);
    }
    let (status, _) = server.get("/");
    assert_eq!(status, 401);
    assert!(
        server
            .log()
            .contains("nobody can watch until streamer.toml is fixed"),
        "{}",
        server.log()
    );
}

/// `streamer health` with the configuration's port set to `port`.
fn health(port: u16) -> std::process::Output {
    std::process::Command::new(binary())
        .args([
            "--config",
            "/nonexistent/streamer.toml",
            "health",
            "--timeout",
            "5",
        ])
        .env("STREAMER_SERVER__PORT", port.to_string())
        .env("STREAMER_SERVER__BIND", "127.0.0.1")
        .output()
        .expect("streamer health runs")
}

#[test]
fn health_says_whether_video_flows_on_the_configured_port() {
    let sample = support::pi_sample();
    let env = file_source(sample.to_str().unwrap());
    let server = StreamerProcess::start(&binary(), &no_config(), &env_refs(&env));
    server.wait_live();
    let out = health(server.address.port());
    assert!(out.status.success(), "{out:?}\nlog:\n{}", server.log());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");

    // A source without video: the answer is 503 and its reason.
    let env = file_source("/nonexistent/video.h264");
    let offline = StreamerProcess::start(&binary(), &no_config(), &env_refs(&env));
    let out = health(offline.address.port());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("503 "), "{said}");
    assert!(said.contains("no video"), "{said}");

    // Nobody listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = health(port);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("no answer: "),
        "{out:?}"
    );
}

/// OpenH264's own messages go through the streamer's log, never straight to the
/// console: its warning that frame skipping is off (by design: one access unit
/// per picture), which the library printed to stderr as `[OpenH264] ...` when the
/// encoder started, is a debug line of the log (target `openh264`), and no line
/// of stdout or stderr comes from the library itself.
#[test]
fn the_software_encoder_prints_nothing_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("streamer.toml");
    std::fs::write(&config, "").unwrap();
    let server = test_pattern(&config, &[("STREAMER_LOG__LEVEL", "debug")]);
    // Live video: the encoder was made and has encoded.
    server.wait_live();
    // Its warning is written while it is made; wait until it is in the log in
    // whatever form, then look at that form.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.log().contains("bEnableFrameSkip") {
        assert!(
            Instant::now() < deadline,
            "OpenH264's frame-skip warning is not in the debug log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = server.log();
    for line in log.lines() {
        assert!(
            !line.starts_with("[OpenH264]"),
            "OpenH264 printed a line of its own: {line:?}\nlog:\n{log}"
        );
        if line.contains("bEnableFrameSkip") {
            assert!(
                line.contains("DEBUG") && line.contains("openh264"),
                "the frame-skip warning is not a debug line of the log: {line:?}"
            );
        }
    }
}
