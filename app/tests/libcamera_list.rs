//! `rpicam-vid --list-cameras`, which `camera.source = "auto"` asks, run for real
//! against a fake program (`fixtures/fake-rpicam-list`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use streamer::source::rpicam::camera_list::list_cameras;

/// The fake under the name `rpicam-vid-<answer>`, which makes it answer that.
/// A link, not a written wrapper script: executing a file this process just
/// wrote can fail with ETXTBSY while another test thread forks.
fn fake(dir: &Path, answer: &str) -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-rpicam-list");
    let program = dir.join(format!("rpicam-vid-{answer}"));
    std::os::unix::fs::symlink(&fixture, &program).unwrap();
    program
}

#[test]
fn a_connected_camera_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let cameras = list_cameras(&fake(dir.path(), "one"), Duration::from_secs(5)).unwrap();
    assert_eq!(cameras.len(), 1);
    assert_eq!(cameras[0].sensor, "imx708_wide");
}

#[test]
fn no_camera_is_an_empty_list() {
    let dir = tempfile::tempdir().unwrap();
    let cameras = list_cameras(&fake(dir.path(), "none"), Duration::from_secs(5)).unwrap();
    assert!(cameras.is_empty());
}

#[test]
fn a_hanging_program_is_killed_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let error = list_cameras(&fake(dir.path(), "hang"), Duration::from_millis(300)).unwrap_err();
    assert!(error.contains("did not answer within 0.3 s"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_missing_program_is_a_clear_error() {
    let error =
        list_cameras(Path::new("/nonexistent/rpicam-vid"), Duration::from_secs(1)).unwrap_err();
    assert!(
        error.contains("cannot run /nonexistent/rpicam-vid --list-cameras"),
        "{error}"
    );
}
