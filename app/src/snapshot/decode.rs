//! The current picture from the hub's GOP cache, decoded in software with OpenH264
//! (the library the test pattern already encodes with).
//!
//! [`GopDecoder`] keeps one decoder and where it is in the stream: the keyframe it
//! started from and the last frame it was fed. Asked for the picture of a newer
//! frame of the same GOP, it decodes only the frames since; when the GOP changed
//! (a new keyframe) it starts over at the new keyframe. Pure: frames in, a borrowed
//! 4:2:0 picture out; no clock, thread or I/O.

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;

use crate::h264::{NalType, Sps};
use crate::hub::Frame;

/// A decoded 4:2:0 picture, borrowed from the decoder until its next frame.
#[derive(Debug, Clone, Copy)]
pub struct Picture<'a> {
    /// Width in pixels (after the SPS's cropping).
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// The luma plane, `y_stride` bytes per row.
    pub y: &'a [u8],
    /// Bytes from one luma row to the next.
    pub y_stride: usize,
    /// The Cb plane (half width and height, rounded up), `chroma_stride` per row.
    pub cb: &'a [u8],
    /// The Cr plane, like `cb`.
    pub cr: &'a [u8],
    /// Bytes from one chroma row to the next.
    pub chroma_stride: usize,
    /// Samples use the full 0..=255 range (the SPS says so); else 16..=235/240.
    pub full_range: bool,
}

/// What one call decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// Sequence number of the frame whose picture this is (the GOP's newest).
    pub seq: u64,
    /// Frames fed to the decoder for it: 1 when only the newest was new.
    pub frames_fed: usize,
    /// Decoding started over at the keyframe.
    pub from_keyframe: bool,
}

/// Why no picture came out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The frames do not start at a keyframe (or there are none).
    #[error("no keyframe to decode from")]
    NoKeyframe,
    /// The keyframe carries no SPS that parses.
    #[error("the keyframe has no sequence parameter set that parses")]
    NoSequenceParameterSet,
    /// The stream is of a kind OpenH264 does not decode.
    #[error("the stream cannot be decoded in software: {0}")]
    Unsupported(String),
    /// OpenH264 could not be set up.
    #[error("the H.264 decoder cannot start: {0}")]
    Start(String),
    /// A frame did not decode.
    #[error("frame {seq} does not decode: {reason}")]
    Frame {
        /// The frame's sequence number.
        seq: u64,
        /// OpenH264's words.
        reason: String,
    },
    /// The decoder took the frame but returned no picture.
    #[error("the decoder returned no picture for frame {seq}")]
    NoPicture {
        /// The frame's sequence number.
        seq: u64,
    },
    /// The picture is not the size the SPS announced.
    #[error("the decoded picture is {got_width}x{got_height}, the stream says {width}x{height}")]
    Size {
        /// From the SPS.
        width: usize,
        /// From the SPS.
        height: usize,
        /// From the decoder.
        got_width: usize,
        /// From the decoder.
        got_height: usize,
    },
}

/// Where the decoder is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    /// Sequence number of the keyframe it started at.
    keyframe: u64,
    /// Sequence number of the last frame it was fed.
    last: u64,
}

/// What the keyframe's SPS says about the pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Format {
    width: usize,
    height: usize,
    full_range: bool,
}

/// One OpenH264 decoder that follows the hub's GOP, decoding each frame once.
#[derive(Default)]
pub struct GopDecoder {
    decoder: Option<Decoder>,
    position: Option<Position>,
    format: Option<Format>,
}

impl GopDecoder {
    /// A decoder that has decoded nothing yet (OpenH264 is set up at first use).
    pub fn new() -> Self {
        GopDecoder::default()
    }

    /// The hub sequence number of the last frame fed, if any.
    pub fn last_fed(&self) -> Option<u64> {
        self.position.map(|p| p.last)
    }

    /// Decodes `gop` (a keyframe with its SPS and PPS, then the frames since, as
    /// [`crate::hub::Hub::gop`] returns them) up to its newest frame and hands that
    /// picture to `use_picture`. Frames decoded by an earlier call are not decoded
    /// again when `gop` starts at the same keyframe. After an error the decoder
    /// starts over at the keyframe next time.
    pub fn decode_latest<R>(
        &mut self,
        gop: &[Frame],
        use_picture: impl FnOnce(&Picture<'_>) -> R,
    ) -> Result<(R, Decoded), DecodeError> {
        let result = self.decode(gop, use_picture);
        if result.is_err() {
            self.decoder = None;
            self.position = None;
        }
        result
    }

    fn decode<R>(
        &mut self,
        gop: &[Frame],
        use_picture: impl FnOnce(&Picture<'_>) -> R,
    ) -> Result<(R, Decoded), DecodeError> {
        let keyframe = gop
            .first()
            .filter(|f| f.keyframe)
            .ok_or(DecodeError::NoKeyframe)?;
        let newest = gop.last().map_or(keyframe.seq, |f| f.seq);
        // Resume after the last frame fed when it is of this GOP and older than the
        // newest; the GOP's sequence numbers are consecutive.
        let resume_at = self.position.and_then(|p| {
            let next = usize::try_from(p.last.checked_sub(keyframe.seq)?.checked_add(1)?).ok()?;
            (p.keyframe == keyframe.seq && gop.get(next).is_some_and(|f| f.seq == p.last + 1))
                .then_some(next)
        });
        let (start, format) = match (resume_at, self.format, self.decoder.is_some()) {
            (Some(start), Some(format), true) => (start, format),
            _ => {
                let format = keyframe_format(&keyframe.data)?;
                self.format = Some(format);
                self.position = None;
                if self.decoder.is_none() {
                    self.decoder = Some(
                        Decoder::new().map_err(|error| DecodeError::Start(error.to_string()))?,
                    );
                }
                (0, format)
            }
        };
        let Some(decoder) = self.decoder.as_mut() else {
            return Err(DecodeError::Start("no decoder".into()));
        };
        let (older, last) = gop[start..].split_at(gop.len() - start - 1);
        for frame in older {
            decoder
                .decode(&frame.data)
                .map_err(|error| DecodeError::Frame {
                    seq: frame.seq,
                    reason: error.to_string(),
                })?;
            self.position = Some(Position {
                keyframe: keyframe.seq,
                last: frame.seq,
            });
        }
        let last = &last[0];
        let picture = decoder
            .decode(&last.data)
            .map_err(|error| DecodeError::Frame {
                seq: last.seq,
                reason: error.to_string(),
            })?
            .ok_or(DecodeError::NoPicture { seq: last.seq })?;
        let (got_width, got_height) = picture.dimensions();
        if (got_width, got_height) != (format.width, format.height) {
            return Err(DecodeError::Size {
                width: format.width,
                height: format.height,
                got_width,
                got_height,
            });
        }
        let (y_stride, chroma_stride, _) = picture.strides();
        let view = Picture {
            width: got_width,
            height: got_height,
            y: picture.y(),
            y_stride,
            cb: picture.u(),
            cr: picture.v(),
            chroma_stride,
            full_range: format.full_range,
        };
        let result = use_picture(&view);
        self.position = Some(Position {
            keyframe: keyframe.seq,
            last: newest,
        });
        Ok((
            result,
            Decoded {
                seq: newest,
                frames_fed: gop.len() - start,
                from_keyframe: start == 0,
            },
        ))
    }
}

/// The picture format from the keyframe's SPS (the hub puts it in front of every
/// keyframe), refusing what OpenH264 cannot decode.
fn keyframe_format(annex_b: &[u8]) -> Result<Format, DecodeError> {
    let sps = nal_units(annex_b)
        .filter(|nal| {
            nal.first()
                .is_some_and(|&h| NalType::from_u8(h) == NalType::Sps)
        })
        .find_map(|nal| Sps::parse(nal).ok())
        .ok_or(DecodeError::NoSequenceParameterSet)?;
    if sps.chroma_format_idc != 1 || sps.bit_depth_luma != 8 || sps.bit_depth_chroma != 8 {
        return Err(DecodeError::Unsupported(format!(
            "chroma format {} at {}/{} bits (OpenH264 decodes 8-bit 4:2:0 only)",
            sps.chroma_format_idc, sps.bit_depth_luma, sps.bit_depth_chroma
        )));
    }
    if !sps.frame_mbs_only {
        return Err(DecodeError::Unsupported(
            "interlaced (field) coding (OpenH264 decodes progressive frames only)".into(),
        ));
    }
    Ok(Format {
        width: sps.width as usize,
        height: sps.height as usize,
        full_range: sps.full_range,
    })
}

/// The NAL units of Annex-B bytes (header byte first), without copying; the
/// trailing zero bytes of a four-byte start code are left on the unit before.
fn nal_units(annex_b: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = annex_b;
    std::iter::from_fn(move || loop {
        let start = rest.windows(3).position(|w| w == [0, 0, 1])? + 3;
        rest = &rest[start..];
        let end = rest
            .windows(3)
            .position(|w| w == [0, 0, 1])
            .unwrap_or(rest.len());
        let unit = &rest[..end];
        if !unit.is_empty() {
            return Some(unit);
        }
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::h264::AccessUnitReader;
    use crate::hub::{Hub, HubLimits};
    use std::time::SystemTime;

    /// The real Pi recording (1920x1080 High, 116 frames, IDR at 0 and 60), from
    /// the shared samples beside the checkout.
    pub(crate) fn pi_sample_hub() -> (Hub, Vec<crate::h264::AccessUnit>) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/samples/pi-raspivid-1080p25.h264");
        let data = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (see shared/samples/README)", path.display()));
        let mut reader = AccessUnitReader::new();
        let mut units = Vec::new();
        reader.push(&data, &mut units);
        reader.flush(&mut units);
        assert_eq!(units.len(), 116);
        (Hub::new(HubLimits::for_frame_rate(25.0, 10), None), units)
    }

    /// Mean luma of a picture.
    fn mean_luma(p: &Picture<'_>) -> f64 {
        let mut sum = 0u64;
        for row in 0..p.height {
            sum += p.y[row * p.y_stride..][..p.width]
                .iter()
                .map(|&v| u64::from(v))
                .sum::<u64>();
        }
        sum as f64 / (p.width * p.height) as f64
    }

    #[test]
    fn a_pi_recording_decodes_frame_by_frame_and_restarts_at_the_next_keyframe() {
        let (hub, units) = pi_sample_hub();
        let mut decoder = GopDecoder::new();
        let mut means = Vec::new();
        for (i, unit) in units.iter().enumerate() {
            hub.publish(unit, SystemTime::now());
            if !matches!(i, 0 | 1 | 2 | 10 | 59 | 60 | 61 | 115) {
                continue;
            }
            let gop = hub.gop();
            let (mean, decoded) = decoder
                .decode_latest(&gop, |p| {
                    assert_eq!((p.width, p.height), (1920, 1080));
                    assert!(p.y_stride >= 1920 && p.chroma_stride >= 960);
                    assert!(!p.full_range);
                    mean_luma(p)
                })
                .unwrap_or_else(|e| panic!("frame {i}: {e}"));
            assert_eq!(decoded.seq, i as u64);
            let expected_fed = match i {
                0 | 60 => 1,
                1 | 2 | 61 => 1,
                10 => 8,
                59 => 49,
                115 => 54,
                _ => unreachable!(),
            };
            assert_eq!(decoded.frames_fed, expected_fed, "frame {i}");
            assert_eq!(decoded.from_keyframe, matches!(i, 0 | 60), "frame {i}");
            means.push(mean);
        }
        // A real picture (a lit wall), not a grey or black field.
        assert!(means.iter().all(|m| (40.0..220.0).contains(m)), "{means:?}");
    }

    #[test]
    fn asking_again_for_the_same_frame_decodes_again_from_the_keyframe() {
        let (hub, units) = pi_sample_hub();
        for unit in &units[..5] {
            hub.publish(unit, SystemTime::now());
        }
        let gop = hub.gop();
        let mut decoder = GopDecoder::new();
        let (_, first) = decoder.decode_latest(&gop, |_| ()).unwrap();
        assert_eq!(first.frames_fed, 5);
        // Nothing newer: the caller has the picture already; decoding it anew is
        // the correct if costly answer.
        let (_, again) = decoder.decode_latest(&gop, |_| ()).unwrap();
        assert_eq!(
            (again.seq, again.frames_fed, again.from_keyframe),
            (4, 5, true)
        );
    }

    #[test]
    fn frames_without_a_keyframe_or_damaged_frames_are_errors_not_panics() {
        let (hub, units) = pi_sample_hub();
        for unit in &units[..3] {
            hub.publish(unit, SystemTime::now());
        }
        let gop = hub.gop();
        let mut decoder = GopDecoder::new();
        assert_eq!(
            decoder.decode_latest(&gop[1..], |_| ()).unwrap_err(),
            DecodeError::NoKeyframe
        );
        assert_eq!(
            decoder.decode_latest(&[], |_| ()).unwrap_err(),
            DecodeError::NoKeyframe
        );
        // A keyframe whose bytes are cut short after its parameter sets.
        let mut cut = gop[0].clone();
        cut.data = cut.data.slice(..cut.data.len().min(200));
        let _ = decoder.decode_latest(&[cut], |_| ());
        // And a keyframe of garbage with no SPS.
        let mut garbage = gop[0].clone();
        garbage.data = bytes::Bytes::from_static(&[0, 0, 0, 1, 0x65, 1, 2, 3, 4]);
        assert_eq!(
            decoder.decode_latest(&[garbage], |_| ()).unwrap_err(),
            DecodeError::NoSequenceParameterSet
        );
        // It still decodes real frames afterwards.
        let (_, decoded) = decoder.decode_latest(&gop, |_| ()).unwrap();
        assert_eq!(decoded.seq, 2);
    }
}
