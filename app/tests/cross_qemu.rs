//! The Raspberry Pi builds, run under qemu-user on this machine (`make cross-test`):
//! each serves real Pi encoder output through the file source, and a WebSocket
//! viewer receives frames that ffmpeg decodes without an error.
//!
//! Ignored in `cargo test`: it needs the cross-built release binaries (`make cross`)
//! and Debian's `qemu-user-static`. `STREAMER_CROSS_TARGETS` names the targets
//! (comma-separated); `make cross-test` sets it.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use support::process::StreamerProcess;

/// qemu-user emulator and the cross libc folder for a Rust target.
fn runner(target: &str) -> (&'static str, &'static str) {
    match target {
        "aarch64-unknown-linux-gnu" => ("qemu-aarch64-static", "/usr/aarch64-linux-gnu"),
        "armv7-unknown-linux-gnueabihf" | "arm-unknown-linux-gnueabihf" => {
            ("qemu-arm-static", "/usr/arm-linux-gnueabihf")
        }
        other => panic!("no qemu runner known for {other}"),
    }
}

#[test]
#[ignore = "needs `make cross` and qemu-user-static; run by `make cross-test`"]
fn pi_builds_stream_decodable_video_under_qemu() {
    let targets = std::env::var("STREAMER_CROSS_TARGETS")
        .expect("STREAMER_CROSS_TARGETS, e.g. aarch64-unknown-linux-gnu (make cross-test sets it)");
    let sample = support::pi_sample();
    for target in targets.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let binary = support::repo_root().join(format!("target/{target}/release/streamer"));
        assert!(
            binary.is_file(),
            "{} is missing: run make cross",
            binary.display()
        );
        let (qemu, sysroot) = runner(target);
        let server = StreamerProcess::start_with_runner(
            &[qemu, "-L", sysroot],
            &binary,
            &PathBuf::from("/nonexistent/streamer.toml"),
            &[
                ("STREAMER_CAMERA__SOURCE", "file"),
                ("STREAMER_CAMERA__FILE", sample.to_str().unwrap()),
            ],
        );
        // Emulation is slow: give the first frames time.
        server.wait_for_ok("/healthz", Duration::from_secs(60));
        let address = server.address;
        let frames = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let (mut client, _) =
                    tokio_tungstenite::connect_async(format!("ws://{address}/ws"))
                        .await
                        .expect("WebSocket connects");
                support::collect_frames(&mut client, 60, Duration::from_secs(20))
                    .await
                    .0
            });
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), frames.concat()).unwrap();
        let (decoded, width, height) = support::ffprobe_frames(file.path());
        assert_eq!(decoded, 60, "{target}: ffprobe frame count");
        assert_eq!((width, height), (1920, 1080), "{target}");
        let errors = support::ffmpeg_decode_errors(file.path());
        assert!(errors.is_empty(), "{target}: ffmpeg reported: {errors}");
        let status = server.get("/api/status").1;
        assert!(status.contains("avc1.640028"), "{target}: {status}");
    }
}
