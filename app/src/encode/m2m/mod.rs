//! The Raspberry Pi's memory-to-memory hardware H.264 encoder (`bcm2835-codec`,
//! card `bcm2835-codec-encode`, usually `/dev/video11`, but the number is never
//! assumed) as a state machine over a [`Node`]: raw frames in, coded frames out.
//!
//! Multi-planar API, one plane per buffer: the OUTPUT queue takes raw frames
//! (the camera's format, rows aligned the way the driver says), the CAPTURE queue
//! gives H.264 (Annex B, SPS/PPS repeated before every IDR).
//!
//! Use, on the camera's thread:
//!
//! 1. [`M2mEncoder::start`] checks that the node is the encoder, that it takes the
//!    camera's format and size (at most 1920x1080), sets the formats, the frame
//!    rate and the codec controls of [`EncoderSettings`] (values adjusted to what
//!    the driver offers are explained in [`M2mEncoder::notes`]), allocates MMAP
//!    buffers on both queues, queues every capture buffer and starts streaming.
//! 2. For every camera frame, [`M2mEncoder::encode`] copies it into a free OUTPUT
//!    buffer in the encoder's layout and queues it. It never blocks the camera for
//!    long: when the encoder holds every buffer it waits a few milliseconds
//!    ([`M2mEncoder::set_input_wait`]), then drops the frame and counts it.
//! 3. [`M2mEncoder::poll_output`] hands out the coded frames that are ready (waiting
//!    up to a timeout) and gives their buffers back to the encoder. Call it after
//!    every `encode` (a zero timeout is fine): the encoder only returns raw buffers
//!    while it has free coded buffers to fill.
//! 4. [`M2mEncoder::force_keyframe`] asks for an IDR picture (a new viewer).
//! 5. [`M2mEncoder::finish`] drains: `V4L2_ENC_CMD_STOP`, the remaining coded frames
//!    until the buffer flagged `V4L2_BUF_FLAG_LAST` (bounded time), then stops both
//!    queues and frees the buffers. Dropping the encoder without `finish` stops
//!    and frees without draining.
//!
//! Nothing the driver returns can make this panic: unknown buffer indexes, a
//! `bytesused` beyond the buffer and error-flagged buffers are counted in
//! [`EncoderStats`] and skipped.
//!
//! This file is the running state machine (steps 2-5); `setup.rs` holds step 1's
//! checks and settings, `error.rs` what can go wrong.

mod error;
mod setup;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use error::EncoderError;
pub use setup::{
    plan_controls, ControlSetting, EncoderSettings, CAPTURE_BUFFERS, MAX_HEIGHT, MAX_WIDTH,
    OUTPUT_BUFFERS,
};

use super::raw_picture::{copy_picture, PictureLayout};
use crate::v4l2::{sys, Error as V4l2Error, Node, Queue};

/// How long [`M2mEncoder::encode`] waits for a free raw buffer before dropping the frame.
pub const DEFAULT_INPUT_WAIT: Duration = Duration::from_millis(5);

/// Why a camera frame was not encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Every raw buffer was still with the encoder.
    EncoderBusy,
    /// The camera's frame was shorter than its format says.
    ShortFrame {
        /// Its length.
        len: usize,
        /// The length its format needs.
        needed: usize,
    },
}

/// What [`M2mEncoder::encode`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// Queued to the encoder.
    Queued,
    /// Not encoded (counted in [`EncoderStats`]).
    Dropped(DropReason),
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncoderStats {
    /// Frames given to [`M2mEncoder::encode`].
    pub frames_in: u64,
    /// Frames queued to the encoder.
    pub frames_queued: u64,
    /// Frames dropped because the encoder held every raw buffer.
    pub dropped_busy: u64,
    /// Frames dropped because they were shorter than their format.
    pub dropped_short: u64,
    /// Coded frames handed out.
    pub frames_out: u64,
    /// Of which flagged as keyframes.
    pub keyframes: u64,
    /// Coded bytes handed out.
    pub bytes_out: u64,
    /// Buffers the driver flagged `V4L2_BUF_FLAG_ERROR` (skipped).
    pub error_buffers: u64,
    /// Buffers with an unknown index or an impossible `bytesused` (skipped).
    pub bogus_buffers: u64,
}

/// The running encoder. See the module documentation.
pub struct M2mEncoder {
    node: Box<dyn Node>,
    path: PathBuf,
    input: PictureLayout,
    encoder_layout: PictureLayout,
    output_bytesused: u32,
    /// Per output buffer: with the driver.
    output_busy: Vec<bool>,
    /// Per capture buffer: with the driver.
    capture_queued: Vec<bool>,
    input_wait: Duration,
    last_seen: bool,
    streaming: bool,
    stats: EncoderStats,
    notes: Vec<String>,
}

impl std::fmt::Debug for M2mEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("M2mEncoder")
            .field("path", &self.path)
            .field("input", &self.input)
            .field("encoder_layout", &self.encoder_layout)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl M2mEncoder {
    /// Checks, configures and starts the encoder on `node`. See the module
    /// documentation for the steps; every refusal says why in plain words.
    pub fn start(
        mut node: Box<dyn Node>,
        settings: EncoderSettings,
    ) -> Result<M2mEncoder, EncoderError> {
        let path = node.path().to_path_buf();
        let configured = setup::configure(node.as_mut(), &settings)?;
        Ok(M2mEncoder {
            node,
            path,
            input: configured.input,
            encoder_layout: configured.encoder_layout,
            output_bytesused: configured.output_bytesused,
            output_busy: vec![false; configured.outputs as usize],
            capture_queued: vec![true; configured.captures as usize],
            input_wait: DEFAULT_INPUT_WAIT,
            last_seen: false,
            streaming: true,
            stats: EncoderStats::default(),
            notes: configured.notes,
        })
    }

    /// The device node.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Settings the encoder took differently than configured, in plain words.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The counters.
    pub fn stats(&self) -> EncoderStats {
        self.stats
    }

    /// The layout [`M2mEncoder::encode`] expects camera frames in.
    pub fn input_layout(&self) -> &PictureLayout {
        &self.input
    }

    /// The layout of the encoder's raw buffers (rows aligned by the driver).
    pub fn encoder_layout(&self) -> &PictureLayout {
        &self.encoder_layout
    }

    /// How long [`M2mEncoder::encode`] waits for a free raw buffer (default
    /// [`DEFAULT_INPUT_WAIT`]).
    pub fn set_input_wait(&mut self, wait: Duration) {
        self.input_wait = wait;
    }

    /// Copies one camera frame (in [`M2mEncoder::input_layout`]) into a free raw
    /// buffer and queues it with `timestamp`, which the coded frame carries. Never
    /// blocks longer than the input wait: when the encoder holds every buffer, or
    /// the frame is short, the frame is dropped and counted.
    pub fn encode(&mut self, frame: &[u8], timestamp: Duration) -> Result<Submitted, EncoderError> {
        self.stats.frames_in += 1;
        if frame.len() < self.input.min_len() {
            self.stats.dropped_short += 1;
            return Ok(Submitted::Dropped(DropReason::ShortFrame {
                len: frame.len(),
                needed: self.input.min_len(),
            }));
        }
        self.reclaim_outputs()?;
        let mut free = self.output_busy.iter().position(|busy| !busy);
        if free.is_none() {
            let deadline = deadline_after(Instant::now(), self.input_wait);
            loop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                let ready = self.node.wait(deadline - now).map_err(|source| {
                    self.driver_error("waiting for a free raw frame buffer (poll)", source)
                })?;
                self.reclaim_outputs()?;
                free = self.output_busy.iter().position(|busy| !busy);
                if free.is_some() || ready.error {
                    break;
                }
                if !ready.output {
                    // Woken for coded frames (handed out by poll_output, not here):
                    // poll would return at once again, so pause instead of spinning.
                    let left = deadline.saturating_duration_since(Instant::now());
                    std::thread::sleep(left.min(Duration::from_millis(1)));
                }
            }
        }
        let Some(index) = free else {
            self.stats.dropped_busy += 1;
            return Ok(Submitted::Dropped(DropReason::EncoderBusy));
        };
        let index = index as u32;
        let Some(buffer) = self.node.buffer_mut(Queue::OutputMplane, index, 0) else {
            return Err(EncoderError::Buffers {
                path: self.path.clone(),
                queue: Queue::OutputMplane,
                problem: format!("buffer {index} has no mapping"),
            });
        };
        let bytesused = self
            .output_bytesused
            .min(u32::try_from(buffer.len()).unwrap_or(u32::MAX));
        copy_picture(&self.input, frame, &self.encoder_layout, buffer).map_err(|source| {
            EncoderError::Layout {
                path: self.path.clone(),
                what: "copying a camera frame into a raw frame buffer",
                source,
            }
        })?;
        self.node
            .queue_buffer(Queue::OutputMplane, index, &[bytesused], timestamp)
            .map_err(|source| self.driver_error("queueing a raw frame (VIDIOC_QBUF)", source))?;
        if let Some(busy) = self.output_busy.get_mut(index as usize) {
            *busy = true;
        }
        self.stats.frames_queued += 1;
        Ok(Submitted::Queued)
    }

    /// Hands every coded frame that is ready to `on_frame` (bytes, `V4L2_BUF_FLAG_*`
    /// flags, the timestamp given to [`M2mEncoder::encode`]) and gives the buffers
    /// back to the encoder. Waits up to `timeout` when none is ready yet. Returns
    /// how many frames were handed out.
    pub fn poll_output(
        &mut self,
        timeout: Duration,
        mut on_frame: impl FnMut(&[u8], u32, Duration),
    ) -> Result<usize, EncoderError> {
        let mut count = self.drain_capture(&mut on_frame)?;
        if count == 0 && !timeout.is_zero() && !self.last_seen {
            let ready = self
                .node
                .wait(timeout)
                .map_err(|source| self.driver_error("waiting for coded frames (poll)", source))?;
            count += self.drain_capture(&mut on_frame)?;
            if count == 0 && ready.error {
                return Err(EncoderError::PollError {
                    path: self.path.clone(),
                });
            }
        }
        self.reclaim_outputs()?;
        Ok(count)
    }

    /// Asks for the next coded frame to be an IDR picture
    /// (`V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME`).
    pub fn force_keyframe(&mut self) -> Result<(), EncoderError> {
        self.node
            .set_control(sys::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, 1)
            .map_err(|source| EncoderError::Control {
                path: self.path.clone(),
                name: "force keyframe",
                value: 1,
                source,
            })
    }

    /// Drains and stops: `V4L2_ENC_CMD_STOP`, then every remaining coded frame to
    /// `on_frame` until the one flagged `V4L2_BUF_FLAG_LAST`, waiting at most
    /// `timeout`; then both queues are stopped and the buffers freed (also when
    /// draining failed). Returns the final counters.
    pub fn finish(
        mut self,
        timeout: Duration,
        mut on_frame: impl FnMut(&[u8], u32, Duration),
    ) -> Result<EncoderStats, EncoderError> {
        let drained = self.drain(timeout, &mut on_frame);
        let stopped = self.shutdown();
        drained.and(stopped).map(|()| self.stats)
    }

    fn drain(
        &mut self,
        timeout: Duration,
        on_frame: &mut impl FnMut(&[u8], u32, Duration),
    ) -> Result<(), EncoderError> {
        if self.last_seen {
            return Ok(());
        }
        self.node
            .encoder_command(sys::V4L2_ENC_CMD_STOP)
            .map_err(|source| {
                self.driver_error(
                    "asking the encoder to drain (VIDIOC_ENCODER_CMD STOP)",
                    source,
                )
            })?;
        let start = Instant::now();
        let deadline = deadline_after(start, timeout);
        loop {
            self.drain_capture(on_frame)?;
            if self.last_seen {
                return Ok(());
            }
            self.reclaim_outputs()?;
            let now = Instant::now();
            if now >= deadline {
                return Err(EncoderError::DrainTimeout {
                    path: self.path.clone(),
                    waited: now - start,
                });
            }
            let ready = self
                .node
                .wait((deadline - now).min(Duration::from_millis(50)))
                .map_err(|source| self.driver_error("waiting for the last frame (poll)", source))?;
            if ready.error {
                self.drain_capture(on_frame)?;
                if !self.last_seen {
                    return Err(EncoderError::PollError {
                        path: self.path.clone(),
                    });
                }
            }
        }
    }

    /// STREAMOFF both queues and free the buffers; the first error is returned,
    /// every step is tried.
    fn shutdown(&mut self) -> Result<(), EncoderError> {
        if !self.streaming {
            return Ok(());
        }
        self.streaming = false;
        let mut first = Ok(());
        for (queue, step_off, step_free) in [
            (
                Queue::OutputMplane,
                "stopping the raw input queue (VIDIOC_STREAMOFF)",
                "freeing the raw frame buffers (VIDIOC_REQBUFS 0)",
            ),
            (
                Queue::CaptureMplane,
                "stopping the H.264 output queue (VIDIOC_STREAMOFF)",
                "freeing the coded frame buffers (VIDIOC_REQBUFS 0)",
            ),
        ] {
            if let Err(source) = self.node.stream_off(queue) {
                if first.is_ok() {
                    first = Err(self.driver_error(step_off, source));
                }
            }
            if let Err(source) = self.node.request_buffers(queue, 0) {
                if first.is_ok() {
                    first = Err(self.driver_error(step_free, source));
                }
            }
        }
        self.output_busy.iter_mut().for_each(|b| *b = false);
        self.capture_queued.iter_mut().for_each(|q| *q = false);
        first
    }

    fn driver_error(&self, step: &str, source: V4l2Error) -> EncoderError {
        EncoderError::Driver {
            path: self.path.clone(),
            step: step.to_string(),
            source,
        }
    }

    /// Takes back every raw buffer the encoder has finished with.
    fn reclaim_outputs(&mut self) -> Result<(), EncoderError> {
        // Bounded: a driver cannot return more buffers than exist, plus a few bogus ones.
        for _ in 0..self.output_busy.len() + 4 {
            let done = self
                .node
                .dequeue_buffer(Queue::OutputMplane)
                .map_err(|source| {
                    self.driver_error("taking back a raw frame buffer (VIDIOC_DQBUF)", source)
                })?;
            let Some(done) = done else {
                break;
            };
            match self.output_busy.get_mut(done.index as usize) {
                Some(busy) if *busy => *busy = false,
                _ => self.stats.bogus_buffers += 1,
            }
        }
        Ok(())
    }

    /// Hands out every coded frame that is ready, without waiting.
    fn drain_capture(
        &mut self,
        on_frame: &mut impl FnMut(&[u8], u32, Duration),
    ) -> Result<usize, EncoderError> {
        let mut count = 0;
        for _ in 0..self.capture_queued.len() + 4 {
            if self.last_seen {
                break;
            }
            let done = match self.node.dequeue_buffer(Queue::CaptureMplane) {
                Ok(Some(done)) => done,
                Ok(None) => break,
                Err(source) => {
                    return Err(self.driver_error("taking a coded frame (VIDIOC_DQBUF)", source))
                }
            };
            let index = done.index;
            match self.capture_queued.get_mut(index as usize) {
                Some(queued) if *queued => *queued = false,
                _ => {
                    self.stats.bogus_buffers += 1;
                    continue;
                }
            }
            let last = done.flags & sys::V4L2_BUF_FLAG_LAST != 0;
            if done.flags & sys::V4L2_BUF_FLAG_ERROR != 0 {
                self.stats.error_buffers += 1;
            } else if let Some(buffer) = self.node.buffer(Queue::CaptureMplane, index, 0) {
                match done.planes.first().and_then(|p| p.payload(buffer.len())) {
                    Some(range) if range.is_empty() => {}
                    Some(range) => {
                        if let Some(bytes) = buffer.get(range) {
                            on_frame(bytes, done.flags, done.timestamp);
                            self.stats.frames_out += 1;
                            self.stats.bytes_out += bytes.len() as u64;
                            if done.flags & sys::V4L2_BUF_FLAG_KEYFRAME != 0 {
                                self.stats.keyframes += 1;
                            }
                            count += 1;
                        }
                    }
                    None => self.stats.bogus_buffers += 1,
                }
            } else {
                self.stats.bogus_buffers += 1;
            }
            if last {
                self.last_seen = true;
                break;
            }
            self.node
                .queue_buffer(Queue::CaptureMplane, index, &[], Duration::ZERO)
                .map_err(|source| {
                    self.driver_error("giving a coded frame buffer back (VIDIOC_QBUF)", source)
                })?;
            if let Some(queued) = self.capture_queued.get_mut(index as usize) {
                *queued = true;
            }
        }
        Ok(count)
    }
}

impl Drop for M2mEncoder {
    fn drop(&mut self) {
        // Without finish(): stop and free without draining; nothing to report to.
        let _ = self.shutdown();
    }
}

/// `start + wait`, or a day later when that does not fit in an `Instant`.
fn deadline_after(start: Instant, wait: Duration) -> Instant {
    start
        .checked_add(wait)
        .or_else(|| start.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EncoderConfig;
    use crate::encode::raw_picture::RawFormat;
    use crate::v4l2::fake::encoder::{sample_frames, FakeEncoder, FakeHandle};

    pub(super) fn settings(pixelformat: u32, width: u32, height: u32) -> EncoderSettings {
        EncoderSettings::new(width, height, pixelformat, 0, 25, &EncoderConfig::default())
    }

    pub(super) fn start(
        settings: EncoderSettings,
    ) -> (Result<M2mEncoder, EncoderError>, FakeHandle) {
        let (fake, handle) = FakeEncoder::with_path("/dev/video23");
        (M2mEncoder::start(Box::new(fake), settings), handle)
    }

    /// A camera frame in the tight layout where every sample is a function of
    /// its position (plane, row, byte), so misplaced bytes show.
    fn camera_frame(layout: &PictureLayout) -> Vec<u8> {
        let mut frame = vec![0u8; layout.full_len()];
        for (p, plane) in layout.planes().iter().enumerate() {
            for row in 0..plane.rows {
                for x in 0..plane.row_bytes {
                    frame[plane.offset + row * plane.stride + x] =
                        (p * 71 + row * 31 + x * 7 + 1) as u8;
                }
            }
        }
        frame
    }

    #[test]
    fn pixels_land_right_after_stride_conversion_for_every_format() {
        // 1000 pixels wide: the driver pads rows to 1024 (NV12, YU12...) or 2048 (YUYV).
        for format in RawFormat::ALL {
            let (width, height) = (1000, 250);
            let (encoder, handle) = start(settings(format.fourcc(), width, height));
            let mut encoder = encoder.unwrap();
            let input = encoder.input_layout().clone();
            let target = encoder.encoder_layout().clone();
            assert!(
                target.bytesperline() > input.bytesperline(),
                "{format:?}: the driver aligns rows"
            );
            let frame = camera_frame(&input);
            let ts = Duration::from_millis(40);
            assert_eq!(encoder.encode(&frame, ts).unwrap(), Submitted::Queued);
            let received = handle.record().received;
            assert_eq!(received.len(), 1, "{format:?}");
            let got = &received[0];
            assert_eq!(got.timestamp, ts);
            assert_eq!(got.bytesused as usize, target.full_len(), "{format:?}");
            // Every visible byte of every plane, read back in the driver's layout.
            for (p, (src, dst)) in input.planes().iter().zip(target.planes()).enumerate() {
                for row in 0..src.rows {
                    let a = &frame[src.offset + row * src.stride..][..src.row_bytes];
                    let b = &got.data[dst.offset + row * dst.stride..][..dst.row_bytes];
                    assert_eq!(a, b, "{format:?} plane {p} row {row}");
                }
            }
            // And the chroma starts right after `height` rows of the aligned stride.
            if format.is_420() {
                assert_eq!(
                    target.planes()[1].offset,
                    target.bytesperline() as usize * height as usize
                );
            }
        }
    }

    /// Runs ffmpeg with `args`, `input` on stdin; its stdout.
    fn ffmpeg(args: &[&str], input: &[u8]) -> Vec<u8> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ffmpeg runs (apt-get install -y ffmpeg)");
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(out.status.success(), "ffmpeg {args:?} failed");
        out.stdout
    }

    #[test]
    fn ffmpeg_reads_the_encoder_buffers_as_the_camera_frame() {
        // ffmpeg's test picture in the camera's tight layout goes in; ffmpeg reads
        // the buffer the encoder received as a picture of the aligned width and
        // crops it back: the bytes must be the same.
        let (width, height) = (1000u32, 250u32);
        for (format, pix_fmt) in [
            (RawFormat::Yuyv, "yuyv422"),
            (RawFormat::Uyvy, "uyvy422"),
            (RawFormat::Nv12, "nv12"),
            (RawFormat::Nv21, "nv21"),
            (RawFormat::Yu12, "yuv420p"),
        ] {
            let size = format!("{width}x{height}");
            let camera = ffmpeg(
                &[
                    "-f",
                    "lavfi",
                    "-i",
                    &format!("testsrc2=size={size}:rate=1"),
                    "-frames:v",
                    "1",
                    "-pix_fmt",
                    pix_fmt,
                    "-f",
                    "rawvideo",
                    "pipe:1",
                ],
                &[],
            );
            let (encoder, handle) = start(settings(format.fourcc(), width, height));
            let mut encoder = encoder.unwrap();
            assert_eq!(camera.len(), encoder.input_layout().full_len(), "{pix_fmt}");
            encoder.encode(&camera, Duration::ZERO).unwrap();
            let target = encoder.encoder_layout().clone();
            let pixels_per_row = if format.is_420() {
                target.bytesperline()
            } else {
                target.bytesperline() / 2
            };
            assert!(pixels_per_row > width, "{pix_fmt}: rows are padded");
            let received = handle.record().received.remove(0).data;
            let back = ffmpeg(
                &[
                    "-f",
                    "rawvideo",
                    "-pix_fmt",
                    pix_fmt,
                    "-s",
                    &format!("{pixels_per_row}x{height}"),
                    "-i",
                    "pipe:0",
                    "-vf",
                    &format!("crop={width}:{height}:0:0"),
                    "-f",
                    "rawvideo",
                    "-pix_fmt",
                    pix_fmt,
                    "pipe:1",
                ],
                &received,
            );
            assert!(
                back == camera,
                "{pix_fmt}: the frame differs after the round trip"
            );
        }
    }

    #[test]
    fn coded_frames_come_out_with_flags_and_timestamps() {
        let (encoder, _) = start(settings(sys::V4L2_PIX_FMT_NV12, 320, 240));
        let mut encoder = encoder.unwrap();
        let frame = camera_frame(encoder.input_layout());
        let mut out: Vec<(Vec<u8>, u32, Duration)> = Vec::new();
        for i in 0..10u64 {
            let ts = Duration::from_millis(40 * i);
            assert_eq!(encoder.encode(&frame, ts).unwrap(), Submitted::Queued);
            encoder
                .poll_output(Duration::from_millis(10), |data, flags, ts| {
                    out.push((data.to_vec(), flags, ts))
                })
                .unwrap();
        }
        assert_eq!(out.len(), 10);
        let samples = sample_frames();
        for (i, (data, flags, ts)) in out.iter().enumerate() {
            assert_eq!(data, &samples[i].data, "frame {i}");
            assert_eq!(*ts, Duration::from_millis(40 * i as u64));
            assert_eq!(
                flags & sys::V4L2_BUF_FLAG_KEYFRAME != 0,
                samples[i].keyframe
            );
        }
        // A forced keyframe: the next frame is an IDR picture with SPS/PPS.
        encoder.force_keyframe().unwrap();
        encoder.encode(&frame, Duration::from_secs(1)).unwrap();
        let mut flags_seen = 0;
        encoder
            .poll_output(Duration::from_millis(10), |data, flags, _| {
                flags_seen = flags;
                assert_eq!(data, &samples[0].data[..]);
            })
            .unwrap();
        assert_ne!(flags_seen & sys::V4L2_BUF_FLAG_KEYFRAME, 0);
        let stats = encoder.stats();
        assert_eq!(
            (stats.frames_in, stats.frames_out, stats.keyframes),
            (11, 11, 2)
        );
    }

    #[test]
    fn a_slow_encoder_makes_frames_drop_not_block() {
        let (encoder, handle) = start(settings(sys::V4L2_PIX_FMT_YUYV, 320, 240));
        let mut encoder = encoder.unwrap();
        encoder.set_input_wait(Duration::from_millis(2));
        handle.faults(|f| f.slow = true);
        let frame = camera_frame(encoder.input_layout());
        let started = Instant::now();
        let mut outcomes = Vec::new();
        for i in 0..10u64 {
            outcomes.push(encoder.encode(&frame, Duration::from_millis(i)).unwrap());
        }
        // Four buffers, then every frame is dropped after the short wait.
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(
            outcomes.iter().filter(|o| **o == Submitted::Queued).count(),
            OUTPUT_BUFFERS as usize
        );
        assert_eq!(
            outcomes.last(),
            Some(&Submitted::Dropped(DropReason::EncoderBusy))
        );
        assert_eq!(encoder.stats().dropped_busy, 10 - u64::from(OUTPUT_BUFFERS));
        // The encoder catches up: buffers come back and frames are queued again.
        handle.faults(|f| f.slow = false);
        let mut coded = 0;
        encoder
            .poll_output(Duration::from_millis(10), |_, _, _| coded += 1)
            .unwrap();
        assert_eq!(coded, OUTPUT_BUFFERS as usize);
        assert_eq!(
            encoder.encode(&frame, Duration::ZERO).unwrap(),
            Submitted::Queued
        );
        // Short frames are dropped and counted too.
        assert_eq!(
            encoder.encode(&frame[..100], Duration::ZERO).unwrap(),
            Submitted::Dropped(DropReason::ShortFrame {
                len: 100,
                needed: 320 * 2 * 240
            })
        );
        assert_eq!(encoder.stats().dropped_short, 1);
    }

    #[test]
    fn finish_drains_to_the_last_buffer_and_stops() {
        let (encoder, handle) = start(settings(sys::V4L2_PIX_FMT_YUV420, 320, 240));
        let mut encoder = encoder.unwrap();
        let frame = camera_frame(encoder.input_layout());
        handle.faults(|f| f.slow = true);
        for i in 0..3u64 {
            encoder.encode(&frame, Duration::from_millis(i)).unwrap();
        }
        handle.faults(|f| f.slow = false);
        let mut drained = Vec::new();
        let stats = encoder
            .finish(Duration::from_secs(1), |_, _, ts| drained.push(ts))
            .unwrap();
        // The three pending frames came out before the end.
        assert_eq!(
            drained,
            vec![
                Duration::ZERO,
                Duration::from_millis(1),
                Duration::from_millis(2)
            ]
        );
        assert_eq!(stats.frames_out, 3);
        let record = handle.record();
        assert_eq!(record.commands, vec![sys::V4L2_ENC_CMD_STOP]);
        assert_eq!(
            &record.streaming[2..],
            &[(Queue::OutputMplane, false), (Queue::CaptureMplane, false)]
        );
        assert_eq!(
            &record.reqbufs[2..],
            &[(Queue::OutputMplane, 0), (Queue::CaptureMplane, 0)]
        );
    }

    #[test]
    fn a_drain_that_never_ends_times_out_and_still_stops() {
        let (encoder, handle) = start(settings(sys::V4L2_PIX_FMT_NV21, 320, 240));
        let mut encoder = encoder.unwrap();
        let frame = camera_frame(encoder.input_layout());
        handle.faults(|f| f.slow = true);
        encoder.encode(&frame, Duration::ZERO).unwrap();
        let err = encoder
            .finish(Duration::from_millis(60), |_, _, _| {})
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("/dev/video23: the encoder did not return its last frame"),
            "{text}"
        );
        let record = handle.record();
        assert_eq!(record.reqbufs.last(), Some(&(Queue::CaptureMplane, 0)));
    }

    #[test]
    fn errors_carry_the_node_and_the_step() {
        // A refused format.
        let (fake, handle) = FakeEncoder::with_path("/dev/video23");
        handle.faults(|f| f.refuse_format = Some(sys::V4L2_PIX_FMT_UYVY));
        let err = M2mEncoder::start(Box::new(fake), settings(sys::V4L2_PIX_FMT_UYVY, 640, 480))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/dev/video23: setting the raw input format (VIDIOC_S_FMT): \
             VIDIOC_S_FMT on /dev/video23 failed: Invalid argument (os error 22)"
        );
        // The device vanishes mid-stream.
        let (encoder, handle) = start(settings(sys::V4L2_PIX_FMT_YUYV, 320, 240));
        let mut encoder = encoder.unwrap();
        let frame = camera_frame(encoder.input_layout());
        encoder.encode(&frame, Duration::ZERO).unwrap();
        handle.faults(|f| f.vanished = true);
        let err = encoder.encode(&frame, Duration::ZERO).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("/dev/video23: taking back a raw frame buffer (VIDIOC_DQBUF)"),
            "{text}"
        );
        assert!(text.contains("No such device"), "{text}");
        let err = encoder
            .poll_output(Duration::from_millis(1), |_, _, _| {})
            .unwrap_err();
        assert!(err.to_string().contains("VIDIOC_DQBUF"), "{err}");
        // Dropping a broken encoder does not panic.
        drop(encoder);
    }

    fn arbitrary_dequeued() -> impl proptest::strategy::Strategy<Value = crate::v4l2::Dequeued> {
        use crate::v4l2::{Dequeued, PlaneUse};
        use proptest::prelude::*;
        let number = prop_oneof![0u32..16, 0u32..2_000_000, Just(u32::MAX)];
        let plane =
            (number.clone(), number.clone()).prop_map(|(bytesused, data_offset)| PlaneUse {
                bytesused,
                data_offset,
            });
        (
            prop_oneof![0u32..12, Just(u32::MAX)],
            prop::collection::vec(plane, 0..3),
            prop_oneof![Just(0u32), Just(sys::V4L2_BUF_FLAG_LAST), any::<u32>()],
            any::<u64>(),
        )
            .prop_map(|(index, planes, flags, nanos)| Dequeued {
                index,
                planes,
                flags,
                timestamp: Duration::from_nanos(nanos),
                sequence: 0,
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever DQBUF returns, the encoder neither panics nor hangs.
        #[test]
        fn arbitrary_driver_answers_never_panic(
            capture in proptest::collection::vec(arbitrary_dequeued(), 0..12),
            output in proptest::collection::vec(arbitrary_dequeued(), 0..12),
            steps in proptest::collection::vec(0u8..4, 1..12),
        ) {
            let (encoder, handle) = start(settings(sys::V4L2_PIX_FMT_NV12, 64, 32));
            let mut encoder = encoder.unwrap();
            encoder.set_input_wait(Duration::ZERO);
            let frame = camera_frame(encoder.input_layout());
            handle.faults(|f| {
                f.scripted_capture = capture.into();
                f.scripted_output = output.into();
            });
            let mut handed = 0u64;
            for step in steps {
                match step {
                    0 => {
                        let _ = encoder.encode(&frame, Duration::ZERO);
                    }
                    1 => {
                        let _ = encoder.poll_output(Duration::ZERO, |data, _, _| {
                            handed += data.len() as u64;
                        });
                    }
                    2 => {
                        let _ = encoder.force_keyframe();
                    }
                    _ => {
                        let _ = encoder.encode(&frame[..10], Duration::ZERO);
                    }
                }
            }
            let stats = encoder.stats();
            proptest::prop_assert_eq!(stats.bytes_out, handed);
            let started = Instant::now();
            let _ = encoder.finish(Duration::from_millis(20), |_, _, _| {});
            proptest::prop_assert!(started.elapsed() < Duration::from_secs(2));
        }
    }

    #[test]
    fn bogus_driver_answers_are_counted_not_trusted() {
        let (encoder, handle) = start(settings(sys::V4L2_PIX_FMT_NV12, 320, 240));
        let mut encoder = encoder.unwrap();
        let frame = camera_frame(encoder.input_layout());
        let mut handed = 0;
        handle.faults(|f| f.bogus_bytesused = true);
        encoder.encode(&frame, Duration::ZERO).unwrap();
        encoder
            .poll_output(Duration::from_millis(5), |_, _, _| handed += 1)
            .unwrap();
        handle.faults(|f| {
            f.bogus_bytesused = false;
            f.error_flag = true;
        });
        encoder.encode(&frame, Duration::ZERO).unwrap();
        encoder
            .poll_output(Duration::from_millis(5), |_, _, _| handed += 1)
            .unwrap();
        handle.faults(|f| {
            f.error_flag = false;
            f.bogus_index = true;
        });
        encoder.encode(&frame, Duration::ZERO).unwrap();
        encoder
            .poll_output(Duration::from_millis(5), |_, _, _| handed += 1)
            .unwrap();
        assert_eq!(handed, 0);
        let stats = encoder.stats();
        assert_eq!(stats.bogus_buffers, 2);
        assert_eq!(stats.error_buffers, 1);
        // The encoder still works with a good driver answer.
        handle.faults(|f| f.bogus_index = false);
        encoder.encode(&frame, Duration::ZERO).unwrap();
        encoder
            .poll_output(Duration::from_millis(5), |_, _, _| handed += 1)
            .unwrap();
        assert_eq!(handed, 1);
    }
}
