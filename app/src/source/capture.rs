//! The single-planar V4L2 capture loop, over any [`Node`]: request MMAP buffers,
//! queue them all, stream on, then wait / dequeue / hand the payload to a
//! [`BufferHandler`] / requeue until the handler says stop. Used by the `v4l2`
//! (legacy camera) and `uvc` sources: [`H264Handler`] passes H.264 to a
//! [`Sink`]; the raw UVC path gives frames to the hardware encoder instead.
//!
//! A device that vanishes (USB unplugged, `ENODEV`/`EIO`, a poll error) ends the
//! loop with [`SourceError::Failed`] saying the camera disconnected; buffers the
//! driver marks with `V4L2_BUF_FLAG_ERROR` are skipped and counted.
//!
//! Between pictures the loop asks the handler whether a viewer wants a keyframe
//! ([`BufferHandler::keyframe_requested`]) and, if so, sets the node's
//! `V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME` (a camera that encodes H.264 itself); a
//! refusal is logged ([`super::keyframe::ForcedKeyframes`]), never fatal.

use std::time::{Duration, SystemTime};

use super::keyframe::ForcedKeyframes;
use super::{Sink, SourceError};
use crate::h264::split::contains_slice;
use crate::v4l2::clock::{monotonic_now, monotonic_to_system};
use crate::v4l2::{sys, Error, Node, Queue};

/// How many buffers to ask the driver for.
pub const BUFFERS: u32 = 4;

/// Longest single wait, so the handler's stop request is seen promptly.
pub const WAIT_SLICE: Duration = Duration::from_millis(200);

/// What one dequeued capture buffer holds (a frame, or part of one: see
/// `fills_buffer`), borrowed from the driver until the handler returns.
#[derive(Debug)]
pub struct CapturedBuffer<'a> {
    /// The payload (`bytesused` of the buffer).
    pub data: &'a [u8],
    /// Whether the payload fills the whole buffer (it may continue in the next one).
    pub fills_buffer: bool,
    /// `V4L2_BUF_FLAG_*`.
    pub flags: u32,
    /// The driver's frame counter.
    pub sequence: u32,
    /// When the frame was captured, on the wall clock.
    pub captured: SystemTime,
}

/// What the capture loop feeds.
pub trait BufferHandler {
    /// One buffer's payload. An error ends the capture with it.
    fn buffer(&mut self, buffer: &CapturedBuffer<'_>) -> Result<(), SourceError>;

    /// True once the capture should stop (asked between frames and at least every
    /// [`WAIT_SLICE`]).
    fn should_stop(&self) -> bool;

    /// True once per keyframe request that the capture node's own encoder should
    /// honour: the loop then sets its `V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME` before
    /// waiting for the next buffer. Asked once per wake-up, so about once per
    /// picture. A handler that encodes the frames itself answers false and makes
    /// the keyframe on its own.
    fn keyframe_requested(&mut self) -> bool {
        false
    }
}

/// Counters of one capture run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Frames handed to the handler.
    pub frames: u64,
    /// Buffers the driver flagged `V4L2_BUF_FLAG_ERROR`, skipped.
    pub error_buffers: u64,
    /// Buffers whose `bytesused`/`data_offset` did not fit the buffer, skipped.
    pub bad_buffers: u64,
}

/// Captures from `node`'s single-planar capture queue (its format already set)
/// into `handler` until `handler.should_stop()` or an error. `source_name` names
/// the source in errors. Buffers are freed and streaming stopped on every return.
pub fn capture(
    node: &mut dyn Node,
    source_name: &'static str,
    handler: &mut dyn BufferHandler,
) -> Result<CaptureStats, SourceError> {
    let start = |e: Error| SourceError::Start {
        source_name,
        reason: plain_error(node_path_text(&e), &e),
    };
    let count = node
        .request_buffers(Queue::Capture, BUFFERS)
        .map_err(start)?;
    if count == 0 {
        return Err(SourceError::Start {
            source_name,
            reason: format!("{} gave no capture buffers", node.path().display()),
        });
    }
    let result = stream(node, source_name, handler, count);
    // Stop and free whatever happened; a vanished device fails these too.
    let _ = node.stream_off(Queue::Capture);
    let _ = node.request_buffers(Queue::Capture, 0);
    result
}

fn stream(
    node: &mut dyn Node,
    source_name: &'static str,
    handler: &mut dyn BufferHandler,
    count: u32,
) -> Result<CaptureStats, SourceError> {
    let failed = |e: Error| failure(source_name, &e);
    for index in 0..count {
        node.queue_buffer(Queue::Capture, index, &[], Duration::ZERO)
            .map_err(|e| SourceError::Start {
                source_name,
                reason: plain_error(node_path_text(&e), &e),
            })?;
    }
    node.stream_on(Queue::Capture)
        .map_err(|e| SourceError::Start {
            source_name,
            reason: plain_error(node_path_text(&e), &e),
        })?;
    let mut stats = CaptureStats::default();
    let path = node.path().display().to_string();
    let mut keyframes = ForcedKeyframes::new(source_name);
    while !handler.should_stop() {
        if handler.keyframe_requested() {
            keyframes.record(node.set_control(sys::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, 1));
        }
        let ready = node.wait(WAIT_SLICE).map_err(failed)?;
        if ready.error {
            return Err(SourceError::Failed {
                source_name,
                reason: format!(
                    "the camera disconnected ({path} reported an error while streaming)"
                ),
            });
        }
        if !ready.capture {
            continue;
        }
        // Everything that is ready, then back to the stop check.
        while let Some(done) = node.dequeue_buffer(Queue::Capture).map_err(failed)? {
            let index = done.index;
            if done.flags & sys::V4L2_BUF_FLAG_ERROR != 0 {
                stats.error_buffers += 1;
            } else {
                let memory = node.buffer(Queue::Capture, index, 0).unwrap_or(&[]);
                let range = done.planes.first().and_then(|p| p.payload(memory.len()));
                let fills_buffer = range.as_ref().is_some_and(|r| r.end >= memory.len());
                match range.and_then(|r| memory.get(r)) {
                    Some(data) if !data.is_empty() => {
                        let captured = if done.flags & sys::V4L2_BUF_FLAG_TIMESTAMP_MASK
                            == sys::V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC
                        {
                            monotonic_to_system(done.timestamp, monotonic_now(), SystemTime::now())
                        } else {
                            SystemTime::now()
                        };
                        let frame = CapturedBuffer {
                            data,
                            fills_buffer,
                            flags: done.flags,
                            sequence: done.sequence,
                            captured,
                        };
                        stats.frames += 1;
                        handler.buffer(&frame)?;
                    }
                    Some(_) => {} // empty buffer (end of stream marker): skip
                    None => stats.bad_buffers += 1,
                }
            }
            node.queue_buffer(Queue::Capture, index, &[], Duration::ZERO)
                .map_err(failed)?;
            if handler.should_stop() {
                break;
            }
        }
    }
    Ok(stats)
}

/// The device node named in an error, for messages.
fn node_path_text(error: &Error) -> String {
    error.device_path().display().to_string()
}

/// Whether `error` means the device is gone (unplugged, driver unbound).
pub fn is_disconnect(error: &Error) -> bool {
    matches!(
        error.errno(),
        Some(libc::ENODEV) | Some(libc::EIO) | Some(libc::ENXIO)
    )
}

/// `error` in plain words, saying "the camera disconnected" when it did.
fn plain_error(path: String, error: &Error) -> String {
    if is_disconnect(error) {
        format!("the camera disconnected ({path}: {error})")
    } else {
        error.to_string()
    }
}

/// A streaming error as a [`SourceError::Failed`].
fn failure(source_name: &'static str, error: &Error) -> SourceError {
    SourceError::Failed {
        source_name,
        reason: plain_error(node_path_text(error), error),
    }
}

/// Captures H.264 from `node` (its format set) into `sink` through an
/// [`H264Handler`] until the sink asks to stop; damaged buffers are skipped and
/// logged once at the end. With `force_keyframes` (the node lists
/// `V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME`: [`super::keyframe::can_force`]) viewers'
/// keyframe requests are passed to the node.
pub fn stream_h264(
    node: &mut dyn Node,
    source_name: &'static str,
    sink: &mut dyn Sink,
    force_keyframes: bool,
) -> Result<(), SourceError> {
    let mut handler = H264Handler::new(sink, force_keyframes);
    let stats = capture(node, source_name, &mut handler)?;
    if stats.error_buffers > 0 || stats.bad_buffers > 0 {
        tracing::warn!(
            source = source_name,
            error_buffers = stats.error_buffers,
            bad_buffers = stats.bad_buffers,
            "the camera delivered damaged buffers (skipped)"
        );
    }
    Ok(())
}

/// Passes H.264 buffers to a [`Sink`], deciding `frame_end` per buffer:
/// bcm2835-v4l2 delivers SPS/PPS in buffers of their own and one coded picture
/// per buffer, uvcvideo one whole frame per buffer. A buffer ends a frame when it
/// holds a slice and does not fill its buffer to the end (a full buffer may be a
/// picture split over two buffers). Parameter-set-only buffers never end a frame:
/// they belong to the picture that follows.
pub struct H264Handler<'a> {
    sink: &'a mut dyn Sink,
    force_keyframes: bool,
}

impl<'a> H264Handler<'a> {
    /// Writes into `sink`; passes the sink's keyframe requests on to the capture
    /// node when `force_keyframes` (the node has the control).
    pub fn new(sink: &'a mut dyn Sink, force_keyframes: bool) -> Self {
        H264Handler {
            sink,
            force_keyframes,
        }
    }
}

impl BufferHandler for H264Handler<'_> {
    fn buffer(&mut self, frame: &CapturedBuffer<'_>) -> Result<(), SourceError> {
        let frame_end = !frame.fills_buffer && contains_slice(frame.data);
        self.sink.write(frame.data, frame_end, frame.captured);
        Ok(())
    }

    fn should_stop(&self) -> bool {
        self.sink.should_stop()
    }

    fn keyframe_requested(&mut self) -> bool {
        self.force_keyframes && self.sink.keyframe_requested()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Recorder {
        writes: Vec<(usize, bool)>,
    }

    impl Sink for Recorder {
        fn write(&mut self, annex_b: &[u8], frame_end: bool, _captured: SystemTime) {
            self.writes.push((annex_b.len(), frame_end));
        }
        fn should_stop(&self) -> bool {
            false
        }
    }

    #[test]
    fn frame_end_only_for_complete_pictures() {
        let mut sink = Recorder { writes: Vec::new() };
        let mut handler = H264Handler::new(&mut sink, false);
        let at = SystemTime::now();
        let frame = |data: &'static [u8], fills_buffer| CapturedBuffer {
            data,
            fills_buffer,
            flags: 0,
            sequence: 0,
            captured: at,
        };
        let config: &[u8] = &[0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0xce];
        let idr: &[u8] = &[0, 0, 0, 1, 0x65, 0x88, 0x84];
        handler.buffer(&frame(config, false)).unwrap();
        handler.buffer(&frame(idr, false)).unwrap();
        handler.buffer(&frame(idr, true)).unwrap();
        assert_eq!(sink.writes, vec![(12, false), (7, true), (7, false)]);
    }
}

#[cfg(test)]
mod fake_tests {
    use super::*;
    use crate::v4l2::fake::camera::{fixture, FakeCamera, FakeLog, Faults};
    use crate::v4l2::{ImageFormat, Node};
    use std::sync::{Arc, Mutex};

    /// What the raw UVC path will do: take frames itself instead of a sink.
    struct RawFrames {
        sizes: Vec<usize>,
        captured: Vec<SystemTime>,
        want: usize,
    }

    impl BufferHandler for RawFrames {
        fn buffer(&mut self, frame: &CapturedBuffer<'_>) -> Result<(), SourceError> {
            self.sizes.push(frame.data.len());
            self.captured.push(frame.captured);
            Ok(())
        }
        fn should_stop(&self) -> bool {
            self.sizes.len() >= self.want
        }
    }

    fn yuyv_camera(faults: Faults) -> (FakeCamera, Arc<Mutex<FakeLog>>) {
        let log = Arc::new(Mutex::new(FakeLog::default()));
        let mut fake = FakeCamera::with(fixture("uvc-c270"), faults, log.clone());
        fake.set_format(
            Queue::Capture,
            &ImageFormat {
                width: 640,
                height: 480,
                pixelformat: sys::V4L2_PIX_FMT_YUYV,
                field: sys::V4L2_FIELD_NONE,
                colorspace: 0,
                planes: vec![],
            },
        )
        .unwrap();
        (fake, log)
    }

    #[test]
    fn raw_frames_reach_a_handler_of_their_own() {
        let (mut fake, log) = yuyv_camera(Faults::default());
        let mut frames = RawFrames {
            sizes: Vec::new(),
            captured: Vec::new(),
            want: 12,
        };
        let stats = capture(&mut fake, "uvc", &mut frames).unwrap();
        assert_eq!(stats.frames, 12);
        assert!(frames.sizes.iter().all(|&s| s == 640 * 480 * 2));
        // Wall-clock capture times advance with the monotonic timestamps.
        assert!(frames.captured.windows(2).all(|w| w[1] > w[0]));
        let log = log.lock().unwrap().clone();
        assert_eq!((log.stream_on, log.stream_off), (1, 1));
        assert_eq!(log.buffers_allocated, 0);
    }

    #[test]
    fn a_poll_error_means_the_camera_disconnected() {
        let faults = Faults {
            vanish_after: Some(3),
            vanish_in_poll: true,
            ..Faults::default()
        };
        let (mut fake, _) = yuyv_camera(faults);
        let mut frames = RawFrames {
            sizes: Vec::new(),
            captured: Vec::new(),
            want: usize::MAX,
        };
        match capture(&mut fake, "uvc", &mut frames) {
            Err(SourceError::Failed { reason, .. }) => {
                assert!(reason.contains("the camera disconnected"), "{reason}")
            }
            other => panic!("expected Failed, got {other:?}"),
        }
        assert_eq!(frames.sizes.len(), 3);
    }

    #[test]
    fn error_flagged_buffers_are_counted_not_delivered() {
        let faults = Faults {
            error_every: Some(2),
            ..Faults::default()
        };
        let (mut fake, _) = yuyv_camera(faults);
        let mut frames = RawFrames {
            sizes: Vec::new(),
            captured: Vec::new(),
            want: 10,
        };
        let stats = capture(&mut fake, "uvc", &mut frames).unwrap();
        assert_eq!(stats.frames, 10);
        assert!(stats.error_buffers >= 9, "{stats:?}");
    }
}
