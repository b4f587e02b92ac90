//! `rpicam`: a libcamera camera through the `rpicam-vid` program (`libcamera-vid` on
//! older systems), which encodes H.264 in hardware and writes Annex-B to a pipe.
//!
//! The program runs as a child in a process group of its own, with stdout and stderr
//! piped. A reader thread moves stdout in chunks over a bounded channel, so `run()`
//! checks [`Sink::should_stop`] every 100 ms even while the pipe is silent. Frame
//! boundaries are unknown from a pipe: the supervisor's H.264 reader finds the access
//! units. The child's stderr is logged line by line and its last lines explain a
//! failure. On stop the group gets SIGTERM, then SIGKILL after a 1 s grace, and the
//! child is always reaped.
//!
//! Without a hardware H.264 encoder (Raspberry Pi 5) rpicam-vid encodes with libx264
//! through libav; writing to `-` then needs `--libav-format h264`, and
//! `--low-latency` selects libx264's low-latency presets (no B-frames, no frame
//! look-ahead). Those options exist only in builds with libav (package
//! `rpicam-apps`, not `rpicam-apps-lite`), so they are passed only when
//! [`RpicamSettings::software_encoder`] says the board has no hardware encoder, and
//! a failure that shows the libav build is missing is explained in those words.
//!
//! Keyframes on request are not possible here: the encoder runs inside the child,
//! and rpicam-vid offers no way to ask it for one while it runs (its `--keypress`
//! and `--signal` inputs only pause, resume or stop the recording). So
//! [`Sink::keyframe_requested`] is never asked, and a viewer that lost a picture
//! waits for the next keyframe, every `encoder.intra_period` frames (`--intra`).

pub mod camera_list;
pub mod controls;

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::{Sink, Source, SourceError};
use crate::config::Profile;

const NAME: &str = "rpicam";
/// The programs looked for on `PATH`, in order.
const PROGRAMS: [&str; 2] = ["rpicam-vid", "libcamera-vid"];
/// Bytes per read from the child's stdout.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the reader thread and `run()`.
const CHANNEL_CHUNKS: usize = 16;
/// Longest wait for data before `should_stop` is checked again.
const POLL: Duration = Duration::from_millis(100);
/// Time the child gets to exit after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(1);
/// Stderr lines kept for error messages.
const KEPT_LINES: usize = 20;
/// Stderr lines quoted in an error message.
const QUOTED_LINES: usize = 3;
/// The largest picture the VideoCore H.264 encoder (Pi 0-4) takes.
const HARDWARE_MAX_WIDTH: u32 = 1920;
/// See [`HARDWARE_MAX_WIDTH`].
const HARDWARE_MAX_HEIGHT: u32 = 1080;
/// H.264 levels rpicam-vid's hardware encoder accepts (it rejects any other string).
const ACCEPTED_LEVELS: [&str; 3] = ["4", "4.1", "4.2"];

/// What to ask `rpicam-vid` for.
#[derive(Debug, Clone)]
pub struct RpicamSettings {
    /// The program to run; `None` searches `PATH` for `rpicam-vid`, then
    /// `libcamera-vid`. Tests point it at a fake.
    pub program: Option<PathBuf>,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// Frames per second.
    pub framerate: u32,
    /// Target bitrate in bits per second.
    pub bitrate: u32,
    /// H.264 profile.
    pub profile: Profile,
    /// H.264 level as in the configuration ("4.0", "4.1", ...). rpicam-vid accepts
    /// only 4, 4.1 and 4.2 ("4.0" is passed as "4"); other levels are left out.
    pub level: String,
    /// Frames from one keyframe to the next.
    pub intra_period: u32,
    /// Mirror left to right.
    pub hflip: bool,
    /// Mirror top to bottom.
    pub vflip: bool,
    /// Rotation in degrees, 0 or 180.
    pub rotation: u32,
    /// True on boards without the hardware H.264 encoder (Raspberry Pi 5): rpicam-vid
    /// encodes with libx264 and gets the libav options for a raw, low-latency stream.
    pub software_encoder: bool,
    /// More arguments, passed after ours.
    pub extra_args: Vec<String>,
}

/// A libcamera camera through `rpicam-vid`.
#[derive(Debug)]
pub struct RpicamSource {
    settings: RpicamSettings,
    program: PathBuf,
}

impl RpicamSource {
    /// Finds the program and checks the settings; the program runs in
    /// [`Source::run`].
    pub fn new(settings: RpicamSettings) -> Result<Self, SourceError> {
        if settings.rotation != 0 && settings.rotation != 180 {
            return Err(start_error(format!(
                "rotation {} is not supported (rpicam-vid rotates by 0 or 180 degrees)",
                settings.rotation
            )));
        }
        if settings.width == 0 || settings.height == 0 || settings.framerate == 0 {
            return Err(start_error(format!(
                "{}x{} at {} fps is not a video mode",
                settings.width, settings.height, settings.framerate
            )));
        }
        if !settings.software_encoder
            && (settings.width > HARDWARE_MAX_WIDTH || settings.height > HARDWARE_MAX_HEIGHT)
        {
            return Err(start_error(format!(
                "the Pi's hardware H.264 encoder handles at most {HARDWARE_MAX_WIDTH}x{HARDWARE_MAX_HEIGHT}; \
                 camera.width x camera.height = {}x{}",
                settings.width, settings.height
            )));
        }
        if let Some(level_idc) = crate::config::level_idc_of(&settings.level) {
            let high = settings.profile == Profile::High;
            if let Err(why) = crate::h264::level::check(
                level_idc,
                settings.width,
                settings.height,
                settings.framerate,
                settings.bitrate,
                high,
            ) {
                tracing::warn!("{why}");
            }
        }
        let program = match &settings.program {
            Some(program) => {
                if !is_executable(program) {
                    return Err(start_error(format!(
                        "{} is not an executable program",
                        program.display()
                    )));
                }
                program.clone()
            }
            None => program_on_path(std::env::var_os("PATH").as_deref())?,
        };
        if level_argument(&settings.level).is_none() {
            tracing::warn!(
                level = %settings.level,
                "rpicam-vid accepts only H.264 levels 4, 4.1 and 4.2; leaving the level to the encoder"
            );
        }
        Ok(RpicamSource { settings, program })
    }

    /// The program that will run.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The program's file name, for messages.
    fn program_name(&self) -> String {
        self.program
            .file_name()
            .unwrap_or(self.program.as_os_str())
            .to_string_lossy()
            .into_owned()
    }
}

fn start_error(reason: String) -> SourceError {
    SourceError::Start {
        source_name: NAME,
        reason,
    }
}

fn failed(reason: String) -> SourceError {
    SourceError::Failed {
        source_name: NAME,
        reason,
    }
}

/// True when `path` is a regular file with an execute bit.
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The first of `rpicam-vid`, `libcamera-vid` found in the directories of `path_var`
/// (a `PATH` value).
pub fn find_program(path_var: Option<&OsStr>) -> Option<PathBuf> {
    let dirs: Vec<PathBuf> = std::env::split_paths(path_var?).collect();
    PROGRAMS.iter().find_map(|name| {
        dirs.iter()
            .filter(|dir| !dir.as_os_str().is_empty())
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
    })
}

/// [`find_program`], or the error that says what to install.
fn program_on_path(path_var: Option<&OsStr>) -> Result<PathBuf, SourceError> {
    find_program(path_var).ok_or_else(|| {
        start_error(
            "neither rpicam-vid nor libcamera-vid was found on PATH \
             (the rpicam-apps package provides them)"
                .into(),
        )
    })
}

/// The level as rpicam-vid spells it, or `None` when it accepts no such level.
fn level_argument(level: &str) -> Option<&'static str> {
    let level = level.trim();
    let level = if level == "4.0" { "4" } else { level };
    ACCEPTED_LEVELS.iter().copied().find(|l| *l == level)
}

/// The command line (without the program) for `settings`.
pub fn arguments(settings: &RpicamSettings) -> Vec<OsString> {
    let profile = match settings.profile {
        Profile::Baseline => "baseline",
        Profile::Main => "main",
        Profile::High => "high",
    };
    let mut args: Vec<String> = vec![
        "-t".into(),
        "0".into(),
        "--inline".into(),
        "--flush".into(),
        "--nopreview".into(),
        "--codec".into(),
        "h264".into(),
        "--width".into(),
        settings.width.to_string(),
        "--height".into(),
        settings.height.to_string(),
        "--framerate".into(),
        settings.framerate.to_string(),
        "--bitrate".into(),
        settings.bitrate.to_string(),
        "--profile".into(),
        profile.into(),
    ];
    if let Some(level) = level_argument(&settings.level) {
        args.push("--level".into());
        args.push(level.into());
    }
    args.push("--intra".into());
    args.push(settings.intra_period.max(1).to_string());
    if settings.hflip {
        args.push("--hflip".into());
    }
    if settings.vflip {
        args.push("--vflip".into());
    }
    if settings.rotation == 180 {
        args.push("--rotation".into());
        args.push("180".into());
    }
    if settings.software_encoder {
        args.push("--libav-format".into());
        args.push("h264".into());
        args.push("--low-latency".into());
    }
    args.push("-o".into());
    args.push("-".into());
    args.extend(settings.extra_args.iter().cloned());
    args.into_iter().map(OsString::from).collect()
}

/// The last lines a child wrote to stderr.
type Tail = Arc<Mutex<VecDeque<String>>>;

/// A running child, killed and reaped when dropped.
struct Running {
    child: Child,
    reaped: Option<ExitStatus>,
}

impl Running {
    /// Sends `signal` (e.g. `TERM`) to the child's process group, or to the child
    /// alone when `kill` does not take a group.
    fn signal(&self, signal: &str) {
        let pid = self.child.id();
        let group = format!("-{pid}");
        let sent = |args: &[&str]| {
            Command::new("kill")
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|status| status.success())
                .unwrap_or(false)
        };
        let signal = format!("-{signal}");
        if !sent(&[&signal, "--", &group]) {
            sent(&[&signal, &pid.to_string()]);
        }
    }

    /// The exit status, if the child has exited (reaping it).
    fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.reaped.is_none() {
            self.reaped = self.child.try_wait().ok().flatten();
        }
        self.reaped
    }

    /// SIGTERM, up to [`GRACE`] to exit, then SIGKILL; always reaps.
    fn terminate(&mut self) {
        if self.reaped.is_some() {
            return;
        }
        self.signal("TERM");
        let deadline = Instant::now() + GRACE;
        while Instant::now() < deadline {
            if self.try_wait().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        tracing::warn!(
            pid = self.child.id(),
            "camera program ignored SIGTERM; killing it"
        );
        self.signal("KILL");
        let _ = self.child.kill();
        self.reaped = self.child.wait().ok();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Moves stdout to `chunks` until end of file or a read error.
fn read_stdout(mut stdout: ChildStdout, chunks: SyncSender<Vec<u8>>) {
    let mut buffer = vec![0u8; CHUNK];
    loop {
        match stdout.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => {
                let chunk = buffer.get(..n).unwrap_or_default().to_vec();
                if chunks.send(chunk).is_err() {
                    return;
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => {
                tracing::warn!(%error, "cannot read the camera program's output");
                return;
            }
        }
    }
}

/// Logs stderr lines and keeps the last [`KEPT_LINES`] in `tail`.
fn read_stderr(stderr: ChildStderr, program: String, tail: Tail) {
    let mut reader = BufReader::new(stderr);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&raw).trim_end().to_string();
        if line.is_empty() {
            continue;
        }
        if line.contains("ERROR") {
            tracing::warn!(program = %program, "{line}");
        } else {
            tracing::debug!(program = %program, "{line}");
        }
        let mut kept = tail.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() >= KEPT_LINES {
            kept.pop_front();
        }
        kept.push_back(line);
    }
}

/// "status 255" or "signal 9".
fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("with status {code}"),
        (None, Some(signal)) => format!("on signal {signal}"),
        (None, None) => format!("({status})"),
    }
}

/// The last few stderr lines, preferring those that say ERROR.
fn explain(tail: &Tail) -> String {
    let kept = tail.lock().unwrap_or_else(|p| p.into_inner());
    let errors: Vec<&str> = kept
        .iter()
        .filter(|line| line.contains("ERROR"))
        .map(String::as_str)
        .collect();
    let chosen: Vec<&str> = if errors.is_empty() {
        kept.iter().map(String::as_str).collect()
    } else {
        errors
    };
    let start = chosen.len().saturating_sub(QUOTED_LINES);
    chosen.get(start..).unwrap_or_default().join(" / ")
}

/// Plain words for failures whose cause the program's own message hides.
fn hint(why: &str, software_encoder: bool) -> Option<&'static str> {
    let no_libav = why.contains("unrecognised option '--libav")
        || why.contains("unrecognised option '--low-latency")
        || why.contains("Unable to find an appropriate H.264 codec");
    if no_libav {
        return Some(if software_encoder {
            "this Raspberry Pi has no hardware H.264 encoder, so rpicam-vid must encode in \
             software, which needs its libav build: install the package rpicam-apps \
             instead of rpicam-apps-lite"
        } else {
            "rpicam-vid found no H.264 encoder: is the bcm2835-codec driver loaded \
             (dtoverlay/`/dev/video11`)?"
        });
    }
    if why.contains("no cameras available") {
        return Some("libcamera sees no camera: check the ribbon cable and camera_auto_detect=1");
    }
    None
}

/// Waits up to `limit` for `thread` to end, then joins it if it did.
fn join_within(thread: Option<JoinHandle<()>>, limit: Duration) {
    if let Some(thread) = thread {
        let deadline = Instant::now() + limit;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if thread.is_finished() {
            let _ = thread.join();
        }
    }
}

impl Source for RpicamSource {
    fn name(&self) -> &'static str {
        NAME
    }

    fn describe(&self) -> String {
        format!(
            "{} {}x{} at {} fps, {} kbit/s{}",
            self.program_name(),
            self.settings.width,
            self.settings.height,
            self.settings.framerate,
            self.settings.bitrate / 1000,
            if self.settings.software_encoder {
                " (H.264 encoded in software: this board has no hardware encoder)"
            } else {
                ""
            }
        )
    }

    fn run(&mut self, sink: &mut dyn Sink) -> Result<(), SourceError> {
        let program = self.program_name();
        let args = arguments(&self.settings);
        tracing::info!(program = %self.program.display(), ?args, "starting the camera program");
        let mut child = Command::new(&self.program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own, so stopping it also stops anything it started.
            .process_group(0)
            .spawn()
            .map_err(|e| start_error(format!("cannot run {}: {e}", self.program.display())))?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let mut running = Running {
            child,
            reaped: None,
        };
        let (Some(stdout), Some(stderr)) = (stdout, stderr) else {
            return Err(start_error(format!("no pipes to {program}")));
        };

        let tail: Tail = Arc::new(Mutex::new(VecDeque::new()));
        let (sender, chunks): (SyncSender<Vec<u8>>, Receiver<Vec<u8>>) =
            mpsc::sync_channel(CHANNEL_CHUNKS);
        let stdout_thread = std::thread::Builder::new()
            .name("rpicam-stdout".into())
            .spawn(move || read_stdout(stdout, sender))
            .map_err(|e| start_error(format!("cannot start a reader thread: {e}")))?;
        let stderr_tail = tail.clone();
        let stderr_program = program.clone();
        let stderr_thread = std::thread::Builder::new()
            .name("rpicam-stderr".into())
            .spawn(move || read_stderr(stderr, stderr_program, stderr_tail))
            .map_err(|e| start_error(format!("cannot start a reader thread: {e}")))?;

        let mut output_closed = false;
        let status = loop {
            if sink.should_stop() {
                running.terminate();
                // The pipes close with the child; the threads end on their own.
                join_within(Some(stdout_thread), Duration::from_millis(200));
                join_within(Some(stderr_thread), Duration::from_millis(200));
                return Ok(());
            }
            if output_closed {
                if let Some(status) = running.try_wait() {
                    break status;
                }
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            match chunks.recv_timeout(POLL) {
                Ok(chunk) => sink.write(&chunk, false, SystemTime::now()),
                Err(RecvTimeoutError::Timeout) => {
                    // Exited while something it started still holds the pipe open.
                    if let Some(status) = running.try_wait() {
                        break status;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => output_closed = true,
            }
        };
        // The child is gone: give stderr a moment to deliver its last lines.
        join_within(Some(stderr_thread), Duration::from_millis(500));
        join_within(Some(stdout_thread), Duration::from_millis(100));
        let why = explain(&tail);
        let mut reason = format!("{program} exited {}", describe_status(status));
        if !why.is_empty() {
            reason.push_str(": ");
            reason.push_str(&why);
        }
        if let Some(hint) = hint(&why, self.settings.software_encoder) {
            reason.push_str(" (");
            reason.push_str(hint);
            reason.push(')');
        }
        Err(failed(reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RpicamSettings {
        RpicamSettings {
            program: None,
            width: 1920,
            height: 1080,
            framerate: 30,
            bitrate: 3_000_000,
            profile: Profile::High,
            level: "4.0".into(),
            intra_period: 60,
            hflip: false,
            vflip: false,
            rotation: 0,
            software_encoder: false,
            extra_args: Vec::new(),
        }
    }

    fn joined(settings: &RpicamSettings) -> String {
        arguments(settings)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn default_arguments() {
        assert_eq!(
            joined(&settings()),
            "-t 0 --inline --flush --nopreview --codec h264 --width 1920 --height 1080 \
             --framerate 30 --bitrate 3000000 --profile high --level 4 --intra 60 -o -"
        );
    }

    #[test]
    fn flips_rotation_profile_and_extra_arguments() {
        let mut s = settings();
        s.profile = Profile::Baseline;
        s.level = "4.2".into();
        s.hflip = true;
        s.vflip = true;
        s.rotation = 180;
        s.intra_period = 0;
        s.extra_args = vec!["--denoise".into(), "cdn_off".into()];
        assert_eq!(
            joined(&s),
            "-t 0 --inline --flush --nopreview --codec h264 --width 1920 --height 1080 \
             --framerate 30 --bitrate 3000000 --profile baseline --level 4.2 --intra 1 \
             --hflip --vflip --rotation 180 -o - --denoise cdn_off"
        );
        s.profile = Profile::Main;
        assert!(joined(&s).contains("--profile main"));
    }

    #[test]
    fn without_a_hardware_encoder_rpicam_vid_gets_the_libav_options() {
        let mut s = settings();
        s.software_encoder = true;
        let args = joined(&s);
        assert!(
            args.contains("--libav-format h264 --low-latency -o -"),
            "{args}"
        );
        assert!(!joined(&settings()).contains("libav"));
    }

    #[test]
    fn hints_explain_a_missing_libav_build_and_a_missing_camera() {
        let lite = "ERROR: *** unrecognised option '--libav-format' ***";
        assert!(hint(lite, true).unwrap().contains("rpicam-apps-lite"));
        let no_codec = "ERROR: *** Unable to find an appropriate H.264 codec ***";
        assert!(hint(no_codec, false).unwrap().contains("/dev/video11"));
        let none = "ERROR: *** no cameras available ***";
        assert!(hint(none, false).unwrap().contains("ribbon cable"));
        assert_eq!(hint("ERROR: something else", true), None);
    }

    #[test]
    fn sizes_beyond_the_hardware_encoder_are_refused_unless_encoding_in_software() {
        let mut s = settings();
        s.program = Some(PathBuf::from("/bin/sh"));
        s.width = 2304;
        s.height = 1296;
        let error = RpicamSource::new(s.clone()).unwrap_err().to_string();
        assert!(error.contains("at most 1920x1080"), "{error}");
        assert!(error.contains("2304x1296"), "{error}");
        s.software_encoder = true;
        assert!(RpicamSource::new(s).is_ok());
    }

    #[test]
    fn levels_rpicam_vid_rejects_are_left_out() {
        assert_eq!(level_argument("4"), Some("4"));
        assert_eq!(level_argument("4.0"), Some("4"));
        assert_eq!(level_argument("4.1"), Some("4.1"));
        assert_eq!(level_argument("3.1"), None);
        assert_eq!(level_argument("5"), None);
        let mut s = settings();
        s.level = "3.1".into();
        assert!(!joined(&s).contains("--level"), "{}", joined(&s));
    }

    #[test]
    fn rotation_other_than_0_or_180_is_refused() {
        let mut s = settings();
        s.program = Some(PathBuf::from("/bin/sh"));
        s.rotation = 90;
        let error = RpicamSource::new(s).unwrap_err().to_string();
        assert!(error.contains("rotation 90"), "{error}");
    }

    #[test]
    fn finds_rpicam_vid_before_libcamera_vid_on_path() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        let make = |dir: &Path, name: &str, mode: u32| {
            let path = dir.join(name);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        };
        let old = make(first.path(), "libcamera-vid", 0o755);
        let path_var = std::env::join_paths([first.path(), second.path()]).unwrap();
        assert_eq!(find_program(Some(&path_var)), Some(old));
        // Not executable: not a candidate.
        make(first.path(), "rpicam-vid", 0o644);
        let new = make(second.path(), "rpicam-vid", 0o755);
        assert_eq!(find_program(Some(&path_var)), Some(new));
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(find_program(Some(empty.path().as_os_str())), None);
        assert_eq!(find_program(None), None);
        let error = program_on_path(Some(empty.path().as_os_str()))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("cannot start rpicam: neither rpicam-vid nor libcamera-vid"),
            "{error}"
        );
        assert!(error.contains("rpicam-apps"), "{error}");
    }

    #[test]
    fn explain_prefers_error_lines_and_keeps_the_last_few() {
        let tail: Tail = Arc::new(Mutex::new(VecDeque::new()));
        assert_eq!(explain(&tail), "");
        tail.lock().unwrap().extend(
            [
                "Preview window unavailable",
                "ERROR: *** no cameras available ***",
            ]
            .map(String::from),
        );
        assert_eq!(explain(&tail), "ERROR: *** no cameras available ***");
        let only_info: Tail = Arc::new(Mutex::new(
            ["a", "b", "c", "d"].map(String::from).into_iter().collect(),
        ));
        assert_eq!(explain(&only_info), "b / c / d");
    }
}
