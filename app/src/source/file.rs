//! `file`: an Annex-B H.264 file replayed in real time, looping.
//!
//! The file is read in chunks through the H.264 reader, so files of any size work.
//! Frames are paced against absolute deadlines at the frame rate from the SPS timing
//! info, else the configured one. Each pass starts at the file's first keyframe:
//! frames before it could not be decoded after a loop.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::{Sink, Source, SourceError};
use crate::h264::{AccessUnit, AccessUnitReader, NalType, Sps};

const NAME: &str = "file";
const CHUNK: usize = 64 * 1024;
/// Longest single sleep, so `should_stop` is checked often.
const MAX_SLEEP: Duration = Duration::from_millis(50);

/// Replays an Annex-B file.
#[derive(Debug)]
pub struct FileSource {
    path: PathBuf,
    fallback_fps: f64,
}

impl FileSource {
    /// Replays `path`; `fallback_fps` is used when the SPS carries no frame rate.
    pub fn new(path: PathBuf, fallback_fps: f64) -> Self {
        FileSource { path, fallback_fps }
    }

    fn failed(&self, reason: String) -> SourceError {
        SourceError::Failed {
            source_name: NAME,
            reason,
        }
    }
}

/// Paces frames at a fixed rate against absolute deadlines.
struct Pacer {
    period: Option<Duration>,
    next: Option<Instant>,
}

impl Pacer {
    /// Waits until the next frame is due; returns false when told to stop.
    fn wait(&mut self, period: Duration, sink: &dyn Sink) -> bool {
        self.period = Some(period);
        let now = Instant::now();
        let due = match self.next {
            // More than two frames late (the machine was busy): start afresh
            // instead of bursting to catch up.
            Some(next) if now > next + period * 2 => now,
            Some(next) => next,
            None => now,
        };
        loop {
            if sink.should_stop() {
                return false;
            }
            let now = Instant::now();
            if now >= due {
                break;
            }
            std::thread::sleep((due - now).min(MAX_SLEEP));
        }
        self.next = Some(due + period);
        true
    }
}

impl Source for FileSource {
    fn name(&self) -> &'static str {
        NAME
    }

    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }

    fn run(&mut self, sink: &mut dyn Sink) -> Result<(), SourceError> {
        let mut pacer = Pacer {
            period: None,
            next: None,
        };
        let mut fps: Option<f64> = None;
        let mut units = Vec::new();
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let mut file = File::open(&self.path).map_err(|e| SourceError::Start {
                source_name: NAME,
                reason: format!("cannot open {}: {e}", self.path.display()),
            })?;
            let mut reader = AccessUnitReader::new();
            let mut frames_this_pass = 0u64;
            let mut seen_keyframe = false;
            let mut at_end = false;
            while !at_end {
                if sink.should_stop() {
                    return Ok(());
                }
                let n = file.read(&mut buffer).map_err(|e| {
                    self.failed(format!("cannot read {}: {e}", self.path.display()))
                })?;
                if n == 0 {
                    reader.flush(&mut units);
                    at_end = true;
                } else {
                    reader.push(&buffer[..n], &mut units);
                }
                for unit in units.drain(..) {
                    if fps.is_none() {
                        fps = frame_rate_of(&unit);
                    }
                    seen_keyframe |= unit.is_keyframe();
                    if !seen_keyframe {
                        continue;
                    }
                    let rate = fps.unwrap_or(self.fallback_fps).clamp(0.1, 1000.0);
                    if !pacer.wait(Duration::from_secs_f64(1.0 / rate), sink) {
                        return Ok(());
                    }
                    sink.write(&unit.to_annex_b(), true, SystemTime::now());
                    frames_this_pass += 1;
                }
            }
            if frames_this_pass == 0 {
                return Err(self.failed(format!(
                    "{} holds no decodable H.264 (no keyframe in Annex-B form found)",
                    self.path.display()
                )));
            }
            tracing::debug!(frames = frames_this_pass, period = ?pacer.period, "file replay looping");
        }
    }
}

/// The frame rate an access unit's SPS announces, if it has one with timing info.
fn frame_rate_of(unit: &AccessUnit) -> Option<f64> {
    unit.nals_of(NalType::Sps)
        .find_map(|nal| Sps::parse(nal.data()).ok())
        .and_then(|sps| sps.frame_rate)
        .filter(|fps| fps.is_finite() && *fps > 0.0)
}
