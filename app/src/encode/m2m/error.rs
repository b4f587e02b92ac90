//! What can go wrong with the hardware encoder: every error names the encoder's
//! node and, for a driver's refusal, the step in plain words ("setting the raw
//! input format (VIDIOC_S_FMT)").

use std::path::PathBuf;
use std::time::Duration;

use super::setup::{MAX_HEIGHT, MAX_WIDTH};
use crate::encode::raw_picture::LayoutError;
use crate::v4l2::discover::H264_ENCODER_CARD;
use crate::v4l2::{fourcc_to_string, Error as V4l2Error, ImageFormat, Queue};

/// A queue, named for messages.
fn queue_name(queue: Queue) -> &'static str {
    match queue {
        Queue::OutputMplane => "OUTPUT (raw frames in)",
        Queue::CaptureMplane => "CAPTURE (H.264 out)",
        Queue::Output => "OUTPUT",
        Queue::Capture => "CAPTURE",
    }
}

/// What went wrong; every variant names the encoder node and the step.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// The node is some other device.
    #[error("{} is {card:?} (driver {driver:?}), not the Pi's H.264 encoder ({H264_ENCODER_CARD:?})", path.display())]
    NotTheEncoder {
        /// The node.
        path: PathBuf,
        /// Its card name.
        card: String,
        /// Its driver name.
        driver: String,
    },
    /// The node lacks the multi-planar memory-to-memory streaming capabilities.
    #[error("{} is the encoder but lacks multi-planar memory-to-memory streaming (capabilities {caps:#010x})", path.display())]
    MissingCapabilities {
        /// The node.
        path: PathBuf,
        /// Its capabilities.
        caps: u32,
    },
    /// The camera's format is not one this encoder path copies.
    #[error("{}: the camera's {} frames cannot be fed to the hardware encoder (it takes YUYV, UYVY, NV12, NV21, YU12 or YV12 from a camera)", path.display(), fourcc_to_string(*fourcc))]
    UnsupportedInput {
        /// The node.
        path: PathBuf,
        /// The camera's format.
        fourcc: u32,
    },
    /// Larger than the encoder can encode.
    #[error("the Pi's hardware encoder handles at most {MAX_WIDTH}x{MAX_HEIGHT}; camera.width x camera.height = {width}x{height}")]
    TooLarge {
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
    },
    /// A size the encoder does not list.
    #[error("{} encodes {} at {offered}; camera.width x camera.height = {width}x{height} is not one of them", path.display(), fourcc_to_string(*fourcc))]
    SizeNotOffered {
        /// The node.
        path: PathBuf,
        /// The format.
        fourcc: u32,
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
        /// The sizes it lists, in words.
        offered: String,
    },
    /// A queue does not list a format.
    #[error("{} does not offer {} on its {} queue (it offers {offered})", path.display(), fourcc_to_string(*fourcc), queue_name(*queue))]
    FormatNotOffered {
        /// The node.
        path: PathBuf,
        /// The queue.
        queue: Queue,
        /// The format asked for.
        fourcc: u32,
        /// What it lists.
        offered: String,
    },
    /// The driver answered S_FMT with a different format or size.
    #[error("{}: asked {} {}x{} on the {} queue, the driver chose {} {}x{}", path.display(), fourcc_to_string(asked.pixelformat), asked.width, asked.height, queue_name(*queue), fourcc_to_string(got.pixelformat), got.width, got.height)]
    FormatChanged {
        /// The node.
        path: PathBuf,
        /// The queue.
        queue: Queue,
        /// What was asked.
        asked: Box<ImageFormat>,
        /// What the driver chose.
        got: Box<ImageFormat>,
    },
    /// The driver's answers about buffer layout do not add up, or a frame does not fit.
    #[error("{}: {what}: {source}", path.display())]
    Layout {
        /// The node.
        path: PathBuf,
        /// Whose layout.
        what: &'static str,
        /// What is wrong.
        source: LayoutError,
    },
    /// A control could not be set.
    #[error("{}: setting the {name} control to {value}: {source}", path.display())]
    Control {
        /// The node.
        path: PathBuf,
        /// The control.
        name: &'static str,
        /// The value.
        value: i64,
        /// The driver's answer.
        source: V4l2Error,
    },
    /// A step failed in the driver. `step` says which, in words.
    #[error("{}: {step}: {source}", path.display())]
    Driver {
        /// The node.
        path: PathBuf,
        /// What was being done, e.g. "setting the raw input format (VIDIOC_S_FMT)".
        step: String,
        /// The driver's answer.
        source: V4l2Error,
    },
    /// The driver allocated no buffers, or buffers too small for the frames.
    #[error("{}: {queue} buffers: {problem}", path.display(), queue = queue_name(*queue))]
    Buffers {
        /// The node.
        path: PathBuf,
        /// The queue.
        queue: Queue,
        /// What is wrong.
        problem: String,
    },
    /// `poll` reported an error and no buffer could be dequeued.
    #[error("{}: the encoder reported an error (POLLERR) and has no buffer to return; the device may be gone", path.display())]
    PollError {
        /// The node.
        path: PathBuf,
    },
    /// The last coded frame did not come in time after the stop command.
    #[error("{}: the encoder did not return its last frame within {waited:?} after V4L2_ENC_CMD_STOP", path.display())]
    DrainTimeout {
        /// The node.
        path: PathBuf,
        /// How long it waited.
        waited: Duration,
    },
}
