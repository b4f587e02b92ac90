//! Nodes that answer the enumerations from a [`NodeDescription`] (QUERYCAP,
//! formats, sizes, frame rates, controls) and refuse everything else, and small
//! descriptions of the kinds of node a Raspberry Pi has (the legacy camera, the
//! H.264 encoder and decoder, a webcam and its metadata node): what discovery,
//! the probe's inspection and the source plan are tested against.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::v4l2::discover::{H264_ENCODER_CARD, LEGACY_CAMERA_DRIVER, UVC_DRIVER};
use crate::v4l2::node::{
    ControlInfo, Dequeued, FormatModes, ImageFormat, NodeDescription, Opener, Queue,
    QueueDescription, Readiness, SizeModes,
};
use crate::v4l2::{sys, Capability, Error, FormatDesc, Fraction, FrameInterval, FrameSize, Node};

/// A node that answers the enumerations from a [`NodeDescription`] and refuses
/// everything else.
pub struct DescribedNode {
    /// The node's path.
    pub path: PathBuf,
    /// What it answers.
    pub description: NodeDescription,
}

impl DescribedNode {
    fn unsupported(&self, ioctl: &'static str) -> Error {
        Error::Unsupported {
            ioctl,
            path: self.path.clone(),
        }
    }
}

impl Node for DescribedNode {
    fn path(&self) -> &Path {
        &self.path
    }
    fn capability(&self) -> &Capability {
        &self.description.capability
    }
    fn formats(&self, queue: Queue) -> Result<Vec<FormatDesc>, Error> {
        Ok(self.description.format_descs(queue))
    }
    fn frame_sizes(&self, pixelformat: u32) -> Result<Vec<FrameSize>, Error> {
        Ok(self
            .description
            .frame_sizes_of(pixelformat)
            .unwrap_or_default())
    }
    fn frame_intervals(
        &self,
        pixelformat: u32,
        width: u32,
        height: u32,
    ) -> Result<Vec<FrameInterval>, Error> {
        Ok(self
            .description
            .frame_intervals_of(pixelformat, width, height)
            .unwrap_or_default())
    }
    fn controls(&self) -> Result<Vec<ControlInfo>, Error> {
        Ok(self.description.controls.clone())
    }
    fn set_control(&mut self, _: u32, _: i64) -> Result<(), Error> {
        Err(self.unsupported("VIDIOC_S_EXT_CTRLS"))
    }
    fn format(&self, _: Queue) -> Result<ImageFormat, Error> {
        Err(self.unsupported("VIDIOC_G_FMT"))
    }
    fn set_format(&mut self, _: Queue, _: &ImageFormat) -> Result<ImageFormat, Error> {
        Err(self.unsupported("VIDIOC_S_FMT"))
    }
    fn set_frame_interval(&mut self, _: Queue, _: Fraction) -> Result<Option<Fraction>, Error> {
        Ok(None)
    }
    fn request_buffers(&mut self, _: Queue, _: u32) -> Result<u32, Error> {
        Err(self.unsupported("VIDIOC_REQBUFS"))
    }
    fn buffer(&self, _: Queue, _: u32, _: usize) -> Option<&[u8]> {
        None
    }
    fn buffer_mut(&mut self, _: Queue, _: u32, _: usize) -> Option<&mut [u8]> {
        None
    }
    fn queue_buffer(&mut self, _: Queue, _: u32, _: &[u32], _: Duration) -> Result<(), Error> {
        Err(self.unsupported("VIDIOC_QBUF"))
    }
    fn dequeue_buffer(&mut self, _: Queue) -> Result<Option<Dequeued>, Error> {
        Err(self.unsupported("VIDIOC_DQBUF"))
    }
    fn stream_on(&mut self, _: Queue) -> Result<(), Error> {
        Err(self.unsupported("VIDIOC_STREAMON"))
    }
    fn stream_off(&mut self, _: Queue) -> Result<(), Error> {
        Err(self.unsupported("VIDIOC_STREAMOFF"))
    }
    fn wait(&mut self, _: Duration) -> Result<Readiness, Error> {
        Ok(Readiness::default())
    }
    fn encoder_command(&mut self, _: u32) -> Result<(), Error> {
        Err(self.unsupported("VIDIOC_ENCODER_CMD"))
    }
}

pub fn capability(driver: &str, card: &str, device_caps: u32) -> Capability {
    Capability {
        driver: driver.into(),
        card: card.into(),
        bus_info: "platform:test".into(),
        version: (6 << 16) | (1 << 8),
        capabilities: device_caps | sys::V4L2_CAP_DEVICE_CAPS,
        device_caps,
    }
}

fn format(code: u32, description: &str, sizes: Vec<SizeModes>) -> FormatModes {
    FormatModes {
        format: FormatDesc {
            pixelformat: code,
            description: description.into(),
            flags: 0,
        },
        sizes,
    }
}

fn fraction(numerator: u32, denominator: u32) -> Fraction {
    Fraction {
        numerator,
        denominator,
    }
}

pub fn legacy_camera() -> NodeDescription {
    let stepwise = SizeModes {
        size: FrameSize::Stepwise {
            min_width: 32,
            max_width: 2592,
            step_width: 2,
            min_height: 32,
            max_height: 1944,
            step_height: 2,
        },
        intervals: vec![FrameInterval::Stepwise {
            min: fraction(1, 90),
            max: fraction(1, 1),
            step: fraction(1, 1),
        }],
    };
    NodeDescription {
        provenance: "test".into(),
        path: String::new(),
        capability: capability(
            LEGACY_CAMERA_DRIVER,
            "mmal service 16.1",
            sys::V4L2_CAP_VIDEO_CAPTURE | sys::V4L2_CAP_STREAMING,
        ),
        queues: vec![QueueDescription {
            queue: Queue::Capture,
            formats: vec![
                format(sys::V4L2_PIX_FMT_H264, "H264", vec![stepwise.clone()]),
                format(
                    sys::V4L2_PIX_FMT_YUV420,
                    "4:2:0, planar, YUV",
                    vec![stepwise],
                ),
            ],
        }],
        controls: Vec::new(),
    }
}

pub fn encoder() -> NodeDescription {
    let sizes = vec![SizeModes {
        size: FrameSize::Stepwise {
            min_width: 32,
            max_width: 1920,
            step_width: 2,
            min_height: 32,
            max_height: 1920,
            step_height: 2,
        },
        intervals: Vec::new(),
    }];
    NodeDescription {
        provenance: "test".into(),
        path: String::new(),
        capability: capability(
            "bcm2835-codec",
            H264_ENCODER_CARD,
            sys::V4L2_CAP_VIDEO_M2M_MPLANE | sys::V4L2_CAP_STREAMING,
        ),
        queues: vec![
            QueueDescription {
                queue: Queue::CaptureMplane,
                formats: vec![format(sys::V4L2_PIX_FMT_H264, "H.264", sizes.clone())],
            },
            QueueDescription {
                queue: Queue::OutputMplane,
                formats: vec![
                    format(sys::V4L2_PIX_FMT_YUV420, "Planar YUV 4:2:0", sizes.clone()),
                    format(sys::V4L2_PIX_FMT_NV12, "Y/CbCr 4:2:0", sizes),
                ],
            },
        ],
        controls: Vec::new(),
    }
}

pub fn decoder() -> NodeDescription {
    let mut d = encoder();
    d.capability.card = "bcm2835-codec-decode".into();
    d
}

pub fn webcam() -> NodeDescription {
    let discrete = |width, height, rates: &[u32]| SizeModes {
        size: FrameSize::Discrete { width, height },
        intervals: rates
            .iter()
            .map(|&r| FrameInterval::Discrete(fraction(1, r)))
            .collect(),
    };
    NodeDescription {
        provenance: "test".into(),
        path: String::new(),
        capability: capability(
            UVC_DRIVER,
            "HD Webcam C525",
            sys::V4L2_CAP_VIDEO_CAPTURE | sys::V4L2_CAP_STREAMING,
        ),
        queues: vec![QueueDescription {
            queue: Queue::Capture,
            formats: vec![
                format(
                    sys::V4L2_PIX_FMT_YUYV,
                    "YUYV 4:2:2",
                    vec![
                        discrete(160, 120, &[30, 15]),
                        discrete(320, 240, &[30, 15]),
                        discrete(640, 480, &[30, 15]),
                        discrete(1280, 720, &[10, 5]),
                    ],
                ),
                format(
                    sys::V4L2_PIX_FMT_MJPEG,
                    "Motion-JPEG",
                    vec![discrete(1280, 720, &[30])],
                ),
            ],
        }],
        controls: Vec::new(),
    }
}

pub fn webcam_metadata() -> NodeDescription {
    let mut d = webcam();
    d.capability.device_caps = sys::V4L2_CAP_META_CAPTURE | sys::V4L2_CAP_STREAMING;
    d.capability.capabilities = sys::V4L2_CAP_VIDEO_CAPTURE
        | sys::V4L2_CAP_META_CAPTURE
        | sys::V4L2_CAP_STREAMING
        | sys::V4L2_CAP_DEVICE_CAPS;
    d.queues.clear();
    d
}

/// An opener over a table of described nodes; paths not in it fail to open
/// like a missing `/dev` node.
pub fn opener(nodes: Vec<(&str, NodeDescription)>) -> Box<Opener> {
    let table: HashMap<PathBuf, NodeDescription> = nodes
        .into_iter()
        .map(|(path, mut d)| {
            d.path = path.into();
            (PathBuf::from(path), d)
        })
        .collect();
    Box::new(move |path: &Path| match table.get(path) {
        Some(d) => Ok(Box::new(DescribedNode {
            path: path.to_path_buf(),
            description: d.clone(),
        }) as Box<dyn Node>),
        None => Err(Error::Open {
            path: path.to_path_buf(),
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
        }),
    })
}

pub fn paths(list: &[&str]) -> Vec<PathBuf> {
    list.iter().map(PathBuf::from).collect()
}
