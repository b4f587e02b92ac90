//! What a V4L2 driver answers is input too: arbitrary S_FMT answers (bytesperline,
//! sizeimage) and arbitrary format/size/interval enumerations never panic the frame
//! layout code or mode selection, and a layout that is accepted can always be filled
//! from a camera's tight frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamer::source::mode::{self, H264Limit, ModeRequest};
use streamer::encode::raw_picture::{copy_picture, PictureLayout};
use streamer::v4l2::{sys, FormatDesc, FormatModes, Fraction, FrameInterval, FrameSize, SizeModes};

const FOURCCS: [u32; 7] = [
    sys::V4L2_PIX_FMT_YUYV,
    sys::V4L2_PIX_FMT_UYVY,
    sys::V4L2_PIX_FMT_NV12,
    sys::V4L2_PIX_FMT_NV21,
    sys::V4L2_PIX_FMT_YUV420,
    sys::V4L2_PIX_FMT_YVU420,
    sys::V4L2_PIX_FMT_H264,
];

/// Reads numbers off the input; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn fourcc(&mut self) -> u32 {
        FOURCCS[usize::from(self.u8()) % FOURCCS.len()]
    }
    fn fraction(&mut self) -> Fraction {
        Fraction {
            numerator: self.u32(),
            denominator: self.u32(),
        }
    }
}

/// Frames larger than this are not copied (the fuzzer's memory limit).
const MAX_FRAME: usize = 1 << 22;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);

    // A driver's S_FMT answer for the encoder's raw queue.
    let fourcc = input.fourcc();
    let (width, height) = (u32::from(input.u16()), u32::from(input.u16()));
    let (bytesperline, sizeimage) = (input.u32(), input.u32());
    if let Ok(encoder) = PictureLayout::from_driver(fourcc, width, height, bytesperline, sizeimage) {
        assert!(encoder.min_len() <= encoder.full_len());
        if let Ok(camera) = PictureLayout::tight(fourcc, width, height) {
            if camera.min_len() <= MAX_FRAME && encoder.full_len() <= MAX_FRAME {
                let frame = vec![7u8; camera.min_len()];
                let mut buffer = vec![0u8; encoder.full_len()];
                copy_picture(&camera, &frame, &encoder, &mut buffer)
                    .expect("an accepted layout takes a tight frame of its size");
            }
        }
    }

    // Arbitrary enumerations, and a request against them.
    let mut offered = Vec::new();
    for _ in 0..(input.u8() % 4) {
        let pixelformat = input.fourcc();
        let mut sizes = Vec::new();
        for _ in 0..(input.u8() % 4) {
            let size = if input.u8() % 2 == 0 {
                FrameSize::Discrete {
                    width: input.u32(),
                    height: input.u32(),
                }
            } else {
                FrameSize::Stepwise {
                    min_width: input.u32(),
                    max_width: input.u32(),
                    step_width: input.u32(),
                    min_height: input.u32(),
                    max_height: input.u32(),
                    step_height: input.u32(),
                }
            };
            let mut intervals = Vec::new();
            for _ in 0..(input.u8() % 3) {
                intervals.push(if input.u8() % 2 == 0 {
                    FrameInterval::Discrete(input.fraction())
                } else {
                    FrameInterval::Stepwise {
                        min: input.fraction(),
                        max: input.fraction(),
                        step: input.fraction(),
                    }
                });
            }
            sizes.push(SizeModes { size, intervals });
        }
        offered.push(FormatModes {
            format: FormatDesc {
                pixelformat,
                description: String::new(),
                flags: input.u32(),
            },
            sizes,
        });
    }
    let request = ModeRequest {
        width: u32::from(input.u16()),
        height: u32::from(input.u16()),
        fps: u32::from(input.u8()),
        formats: vec![input.fourcc(), input.fourcc()],
        h264_limit: (input.u8() % 2 == 0).then_some(H264Limit {
            max_width: 1920,
            max_height: 1080,
        }),
    };
    if let Ok(chosen) = mode::select(&offered, &request) {
        assert!(request.formats.contains(&chosen.pixelformat));
        let _ = mode::format_name(chosen.pixelformat);
    }
});
