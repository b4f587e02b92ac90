//! `file`: an Annex-B H.264 file replayed in real time, looping.
//!
//! The file is read in chunks through the H.264 reader, so files of any size work.
//! Frames are paced against absolute deadlines at the frame rate from the SPS timing
//! info, else the configured one. Each pass starts at the file's first keyframe:
//! frames before it could not be decoded after a loop. A file with no keyframe in
//! its first [`KEYFRAME_SEARCH_LIMIT`] bytes (not H.264, or endless like
//! `/dev/urandom`) fails at once with what the reader skipped, instead of being read
//! at full speed until the supervisor's start timeout.
//!
//! A recording cannot make keyframes on request: [`Sink::keyframe_requested`] is
//! never asked, and a viewer that lost a picture waits for the file's next keyframe.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::{Sink, Source, SourceError};
use crate::h264::access_unit::MAX_AU_BYTES;
use crate::h264::{AccessUnit, AccessUnitReader, NalType, ReaderStats, Sps};

const NAME: &str = "file";
const CHUNK: usize = 64 * 1024;
/// Longest single sleep, so `should_stop` is checked often.
const MAX_SLEEP: Duration = Duration::from_millis(50);
/// How far into a pass the file is read without finding a keyframe before the
/// source gives up: four of the largest access units the reader keeps (32 MiB), so
/// a recording that starts mid-stream (a GOP before its first keyframe) still
/// plays, while a file that is not H.264 fails within a fraction of a second.
pub const KEYFRAME_SEARCH_LIMIT: u64 = 4 * MAX_AU_BYTES as u64;

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
        // One reader for every pass (each ends with a flush), so that its counters
        // are totals since `run` began.
        let mut reader = AccessUnitReader::new();
        loop {
            let mut file = File::open(&self.path).map_err(|e| SourceError::Start {
                source_name: NAME,
                reason: format!("cannot open {}: {e}", self.path.display()),
            })?;
            let mut frames_this_pass = 0u64;
            let mut seen_keyframe = false;
            let mut read_before_keyframe = 0u64;
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
                sink.reader_stats(&reader.stats());
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
                if !seen_keyframe {
                    read_before_keyframe += n as u64;
                    if read_before_keyframe > KEYFRAME_SEARCH_LIMIT {
                        return Err(self.failed(format!(
                            "no keyframe in the first {} MiB of {}: not H.264 in Annex-B form{}",
                            KEYFRAME_SEARCH_LIMIT >> 20,
                            self.path.display(),
                            skipped(&reader.stats())
                        )));
                    }
                }
            }
            if frames_this_pass == 0 {
                return Err(self.failed(format!(
                    "{} holds no decodable H.264 (no keyframe in Annex-B form found){}",
                    self.path.display(),
                    skipped(&reader.stats())
                )));
            }
            tracing::debug!(frames = frames_this_pass, period = ?pacer.period, "file replay looping");
        }
    }
}

/// What the reader skipped, as a clause to append to a reason (empty if nothing).
fn skipped(stats: &ReaderStats) -> String {
    stats
        .describe_skipped()
        .map(|what| format!(" ({what})"))
        .unwrap_or_default()
}

/// The frame rate an access unit's SPS announces, if it has one with timing info.
fn frame_rate_of(unit: &AccessUnit) -> Option<f64> {
    unit.nals_of(NalType::Sps)
        .find_map(|nal| Sps::parse(nal.data()).ok())
        .and_then(|sps| sps.frame_rate)
        .filter(|fps| fps.is_finite() && *fps > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::testing::idr;
    use crate::source::test_sink::Recording;

    #[test]
    fn a_file_that_is_not_h264_fails_after_the_search_limit_with_what_was_skipped() {
        let mut source = FileSource::new(PathBuf::from("/dev/urandom"), 25.0);
        let mut sink = Recording::new(1, Duration::from_secs(120));
        let error = source
            .run(&mut sink)
            .expect_err("random bytes are no video");
        let message = error.to_string();
        assert!(
            message.contains("no keyframe in the first 32 MiB of /dev/urandom"),
            "{message}"
        );
        assert!(message.contains("MiB skipped"), "{message}");
        assert!(sink.units.is_empty());
    }

    #[test]
    fn garbage_before_the_video_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("garbage-then-video.h264");
        let mut data = vec![0x55u8; 3 << 20];
        for tag in 0..5 {
            data.extend_from_slice(&idr(true, tag).to_annex_b());
        }
        std::fs::write(&path, &data).unwrap();
        let mut source = FileSource::new(path, 200.0);
        let mut sink = Recording::new(5, Duration::from_secs(20));
        source.run(&mut sink).expect("plays");
        assert_eq!(sink.units.len(), 5);
        assert!(sink.units.iter().all(|u| u.is_keyframe()));
    }
}
