//! The `rpicam` source with real child processes: fake `rpicam-vid` programs
//! (`tests/fixtures/fake-rpicam-*`, POSIX shell) stream the real Pi sample, crash
//! the way rpicam-vid does without a camera, or hang. No Pi and no rpicam-apps needed.

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant, SystemTime};

use streamer::config::Profile;
use streamer::hub::{Hub, HubLimits, SourceState};
use streamer::source::rpicam::{arguments, RpicamSettings, RpicamSource};
use streamer::source::supervisor::{self, SourcePlan, SupervisorSettings};
use streamer::source::{Sink, Source, SourceError};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/samples/pi-raspivid-1080p25.h264"
);

/// Tells the fakes where the sample is (the same value for every test).
fn use_sample() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| std::env::set_var("FAKE_RPICAM_SAMPLE", SAMPLE));
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn settings(fake: &str, extra_args: Vec<String>) -> RpicamSettings {
    use_sample();
    RpicamSettings {
        program: Some(fixture(fake)),
        width: 1920,
        height: 1080,
        framerate: 25,
        bitrate: 3_000_000,
        profile: Profile::High,
        level: "4.0".into(),
        intra_period: 50,
        hflip: false,
        vflip: false,
        rotation: 0,
        software_encoder: false,
        extra_args,
    }
}

fn pid_file_args(dir: &Path) -> (PathBuf, Vec<String>) {
    let file = dir.join("pid");
    let args = vec!["--fake-pid-file".into(), file.display().to_string()];
    (file, args)
}

fn plan(settings: RpicamSettings) -> SourcePlan {
    SourcePlan {
        kind: "rpicam".into(),
        description: "fake rpicam-vid".into(),
        reason: None,
        factory: Box::new(move || {
            Ok(Box::new(RpicamSource::new(settings.clone())?) as Box<dyn Source>)
        }),
    }
}

fn fast_settings() -> SupervisorSettings {
    SupervisorSettings {
        stall_timeout: Duration::from_millis(700),
        start_timeout: Duration::from_secs(5),
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_millis(400),
        healthy_after: Duration::from_secs(30),
        on_demand: None,
    }
}

fn hub() -> Hub {
    Hub::new(HubLimits::for_frame_rate(25.0, 4), None)
}

fn wait_for(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The process id a fake wrote, once it wrote one.
fn read_pid(file: &Path) -> u32 {
    let mut pid = None;
    wait_for("the fake's pid", Duration::from_secs(10), || {
        pid = std::fs::read_to_string(file)
            .ok()
            .and_then(|text| text.trim().parse().ok());
        pid.is_some()
    });
    pid.unwrap()
}

/// True while `pid` exists, zombies included (a zombie was not reaped).
fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Processes whose process group is `pgid` (the fake and whatever it started).
fn group_members(pgid: u32) -> Vec<u32> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ..."; comm may hold spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.get(2).and_then(|f| f.parse::<u32>().ok()) == Some(pgid) {
            members.push(pid);
        }
    }
    members
}

fn assert_gone(pid: u32) {
    wait_for(
        &format!("process {pid} and its group to be gone"),
        Duration::from_secs(3),
        || !exists(pid) && group_members(pid).is_empty(),
    );
}

#[test]
fn frames_reach_the_hub_through_the_supervisor() {
    let dir = tempfile::tempdir().unwrap();
    let (pid_file, args) = pid_file_args(dir.path());
    let hub = hub();
    let handle = supervisor::spawn(
        hub.clone(),
        plan(settings("fake-rpicam-stream", args)),
        fast_settings(),
    );
    wait_for("live", Duration::from_secs(10), || {
        hub.source_status().state == SourceState::Live
    });
    wait_for("25 frames", Duration::from_secs(10), || {
        hub.snapshot().frames >= 25
    });
    let info = hub.stream_info().expect("stream info");
    assert_eq!((info.width, info.height), (1920, 1080));
    assert_eq!(info.codec, "avc1.640028");
    let snapshot = hub.snapshot();
    assert!(snapshot.keyframes >= 1);
    assert_eq!(snapshot.undecodable, 0);
    assert_eq!(hub.source_status().restarts, 0);

    let pid = read_pid(&pid_file);
    assert!(exists(pid));
    let stopping = Instant::now();
    handle.stop(Duration::from_secs(5));
    assert!(
        stopping.elapsed() < Duration::from_millis(1500),
        "stop took {:?}",
        stopping.elapsed()
    );
    assert_gone(pid);
}

#[test]
fn a_crash_is_reported_with_the_programs_error_and_the_source_restarts() {
    let hub = hub();
    let handle = supervisor::spawn(
        hub.clone(),
        plan(settings("fake-rpicam-crash", Vec::new())),
        fast_settings(),
    );
    wait_for("offline after the crash", Duration::from_secs(15), || {
        hub.source_status().state == SourceState::Offline
    });
    let status = hub.source_status();
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains(
            "rpicam failed: fake-rpicam-crash exited with status 255: \
             ERROR: *** no cameras available ***"
        ),
        "{message}"
    );
    assert!(message.contains("retrying in"), "{message}");
    let frames_before = hub.snapshot().frames;
    assert!(frames_before > 0, "the first run delivered frames");
    wait_for(
        "live again after a restart",
        Duration::from_secs(10),
        || {
            let status = hub.source_status();
            status.state == SourceState::Live && status.restarts >= 1
        },
    );
    wait_for("frames from the new run", Duration::from_secs(10), || {
        hub.snapshot().frames >= frames_before + 10
    });
    handle.stop(Duration::from_secs(5));
}

#[test]
fn a_stalled_program_is_killed_and_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let (pid_file, args) = pid_file_args(dir.path());
    let hub = hub();
    let handle = supervisor::spawn(
        hub.clone(),
        plan(settings("fake-rpicam-stall", args)),
        fast_settings(),
    );
    let first = read_pid(&pid_file);
    wait_for("live", Duration::from_secs(10), || {
        hub.source_status().state == SourceState::Live
    });
    wait_for("a restart after the stall", Duration::from_secs(10), || {
        hub.source_status().restarts >= 1
    });
    // The hanging child (and the sleep it started) were killed and reaped.
    assert_gone(first);
    wait_for("the next run", Duration::from_secs(10), || {
        read_pid(&pid_file) != first
    });
    let status = hub.source_status();
    assert!(status.restarts >= 1);
    handle.stop(Duration::from_secs(5));
    assert_gone(read_pid(&pid_file));
}

/// Keeps what the source wrote; asks to stop at `stop_at`.
struct Collect {
    data: Vec<u8>,
    writes: usize,
    frame_ends: usize,
    stop_at: Instant,
}

impl Collect {
    /// Collects until `after` from now, then asks the source to stop.
    fn stopping_after(after: Duration) -> Collect {
        Collect {
            data: Vec::new(),
            writes: 0,
            frame_ends: 0,
            stop_at: Instant::now() + after,
        }
    }

    /// The source's `run()` returned soon after the stop request.
    fn assert_stopped_promptly(&self) {
        let returned_after_stop = self.stop_at.elapsed();
        assert!(
            returned_after_stop < Duration::from_millis(900),
            "run() returned {returned_after_stop:?} after the stop request"
        );
    }
}

impl Sink for Collect {
    fn write(&mut self, annex_b: &[u8], frame_end: bool, _captured: SystemTime) {
        self.data.extend_from_slice(annex_b);
        self.writes += 1;
        self.frame_ends += usize::from(frame_end);
    }

    fn should_stop(&self) -> bool {
        Instant::now() >= self.stop_at
    }
}

#[test]
fn run_passes_the_bytes_on_unchanged_and_stops_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let (pid_file, args) = pid_file_args(dir.path());
    let mut source = RpicamSource::new(settings("fake-rpicam-stream", args)).unwrap();
    assert_eq!(source.name(), "rpicam");
    assert_eq!(
        source.describe(),
        "fake-rpicam-stream 1920x1080 at 25 fps, 3000 kbit/s"
    );
    let mut sink = Collect::stopping_after(Duration::from_millis(1500));
    source.run(&mut sink).unwrap();
    sink.assert_stopped_promptly();
    let sample = std::fs::read(SAMPLE).unwrap();
    assert!(sink.data.len() > 64 * 1024, "got {} bytes", sink.data.len());
    assert_eq!(
        &sink.data[..],
        &sample[..sink.data.len()],
        "the bytes arrive in order, unchanged"
    );
    assert!(sink.writes > 0);
    assert_eq!(sink.frame_ends, 0, "frame ends are unknown from a pipe");
    assert_gone(read_pid(&pid_file));
}

#[test]
fn a_silent_program_does_not_hold_up_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (pid_file, args) = pid_file_args(dir.path());
    let mut source = RpicamSource::new(settings("fake-rpicam-stall", args)).unwrap();
    // The stall fake goes quiet after about 0.8 s; stop well after that.
    let mut sink = Collect::stopping_after(Duration::from_millis(2500));
    source.run(&mut sink).unwrap();
    sink.assert_stopped_promptly();
    assert!(!sink.data.is_empty());
    assert_gone(read_pid(&pid_file));
}

#[test]
fn a_program_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let (pid_file, mut args) = pid_file_args(dir.path());
    args.push("--fake-ignore-term".into());
    let mut source = RpicamSource::new(settings("fake-rpicam-stall", args)).unwrap();
    let mut sink = Collect::stopping_after(Duration::from_millis(1500));
    source.run(&mut sink).unwrap();
    let returned_after_stop = sink.stop_at.elapsed();
    assert!(
        returned_after_stop >= Duration::from_millis(900)
            && returned_after_stop < Duration::from_millis(2500),
        "SIGKILL follows a 1 s grace; run() returned {returned_after_stop:?} after the stop request"
    );
    assert_gone(read_pid(&pid_file));
}

#[test]
fn the_program_gets_the_documented_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let args_file = dir.path().join("args");
    let mut settings = settings(
        "fake-rpicam-stream",
        vec!["--fake-args-file".into(), args_file.display().to_string()],
    );
    settings.profile = Profile::Main;
    settings.level = "4.1".into();
    settings.hflip = true;
    settings.rotation = 180;
    let mut source = RpicamSource::new(settings.clone()).unwrap();
    let mut sink = Collect::stopping_after(Duration::from_millis(500));
    source.run(&mut sink).unwrap();
    let recorded = std::fs::read_to_string(&args_file).unwrap();
    let expected: String = arguments(&settings)
        .iter()
        .map(|a| format!("{}\n", a.to_string_lossy()))
        .collect();
    assert_eq!(recorded, expected);
    assert_eq!(
        recorded.lines().collect::<Vec<_>>().join(" "),
        format!(
            "-t 0 --inline --flush --nopreview --codec h264 --width 1920 --height 1080 \
             --framerate 25 --bitrate 3000000 --profile main --level 4.1 --intra 50 \
             --hflip --rotation 180 -o - --fake-args-file {}",
            args_file.display()
        )
    );
}

#[test]
fn a_missing_program_is_a_start_error() {
    let mut settings = settings("fake-rpicam-stream", Vec::new());
    settings.program = Some(PathBuf::from("/nonexistent/rpicam-vid"));
    match RpicamSource::new(settings) {
        Err(SourceError::Start {
            source_name,
            reason,
        }) => {
            assert_eq!(source_name, "rpicam");
            assert!(reason.contains("/nonexistent/rpicam-vid"), "{reason}");
        }
        other => panic!("expected a start error, got {other:?}"),
    }
}
