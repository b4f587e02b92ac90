//! H.264 encoding in software, in-process, with OpenH264: the test pattern's
//! encoder, and the USB webcam source's when a board has no hardware encoder (a
//! Raspberry Pi 5, or a laptop). Constrained baseline, no B-frames, one access unit
//! out per picture in, an IDR picture every `intra_period` frames and whenever one
//! is asked for ([`SoftwareEncoder::force_keyframe`], which restarts the count),
//! each with SPS and PPS in front.

use openh264::encoder::{
    BitRate, Complexity, EncodedBitStream, Encoder, EncoderConfig, IntraFramePeriod, Profile,
    RateControlMode, SpsPpsStrategy, UsageType,
};
use openh264::formats::YUVSource;
use openh264::{OpenH264API, Timestamp};

use crate::h264::nal::START_CODE;
use crate::h264::NalType;

/// The smallest picture side.
pub const MIN_SIZE: u32 = 16;
/// The largest picture side the configuration allows; OpenH264 itself stops at
/// 3840x2160 (either orientation).
pub const MAX_SIZE: u32 = 4096;
/// The highest frame rate.
pub const MAX_FRAMERATE: u32 = 240;

/// What the software encoder makes: size, rate, bitrate, keyframe interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftwareSettings {
    /// Picture width in pixels: even, 16..=3840.
    pub width: u32,
    /// Picture height in pixels: even, 16..=3840 (and the smaller side at most 2160).
    pub height: u32,
    /// Frames per second, 1..=240.
    pub framerate: u32,
    /// Target bitrate in bits per second.
    pub bitrate: u32,
    /// Frames from one IDR picture to the next, at least 1 (counted from the last
    /// one, so a keyframe made on request restarts the count).
    pub intra_period: u32,
}

impl SoftwareSettings {
    /// Checks the settings; the error says what is wrong in plain words.
    pub fn validate(&self) -> Result<(), String> {
        let (w, h) = (self.width, self.height);
        for (what, v) in [("width", w), ("height", h)] {
            if !(MIN_SIZE..=MAX_SIZE).contains(&v) || v % 2 != 0 {
                return Err(format!(
                    "{what} {v} is not an even number from {MIN_SIZE} to {MAX_SIZE}"
                ));
            }
        }
        if w.max(h) > 3840 || w.min(h) > 2160 {
            return Err(format!(
                "{w}x{h} is larger than the OpenH264 encoder supports (3840x2160 or 2160x3840)"
            ));
        }
        if !(1..=MAX_FRAMERATE).contains(&self.framerate) {
            return Err(format!(
                "frame rate {} is not from 1 to {MAX_FRAMERATE} fps",
                self.framerate
            ));
        }
        if self.bitrate < 1000 || i32::try_from(self.bitrate).is_err() {
            return Err(format!(
                "bitrate {} bit/s is not from 1000 to {} bit/s",
                self.bitrate,
                i32::MAX
            ));
        }
        if self.intra_period == 0 {
            return Err("intra period 0: a keyframe is needed at least every N frames".into());
        }
        Ok(())
    }
}

/// An OpenH264 encoder and what it needs between pictures.
pub struct SoftwareEncoder {
    encoder: Encoder,
    settings: SoftwareSettings,
    out: Vec<u8>,
    parameter_sets: ParameterSets,
    /// Pictures encoded since the last IDR picture, that one included (0: none
    /// yet, so the next is the first and an IDR picture anyway).
    since_keyframe: u64,
    /// The next picture is to be an IDR picture ([`SoftwareEncoder::force_keyframe`]).
    keyframe_wanted: bool,
}

impl std::fmt::Debug for SoftwareEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareEncoder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SoftwareEncoder {
    /// An encoder for `settings`; the error says why not in plain words.
    pub fn new(settings: SoftwareSettings) -> Result<Self, String> {
        settings.validate()?;
        let s = &settings;
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(s.bitrate))
            .max_frame_rate(openh264::encoder::FrameRate::from_hz(s.framerate as f32))
            .rate_control_mode(RateControlMode::Bitrate)
            // One access unit out per picture in, always.
            .skip_frames(false)
            .usage_type(UsageType::CameraVideoRealTime)
            .profile(Profile::Baseline)
            .complexity(Complexity::Low)
            .sps_pps_strategy(SpsPpsStrategy::ConstantId)
            // IDR pictures come exactly every intra_period frames, forced below.
            .scene_change_detect(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(0))
            .num_threads(1);
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| format!("cannot create the OpenH264 encoder: {e}"))?;
        Ok(SoftwareEncoder {
            encoder,
            settings,
            out: Vec::with_capacity(256 * 1024),
            parameter_sets: ParameterSets::default(),
            since_keyframe: 0,
            keyframe_wanted: false,
        })
    }

    /// The settings it encodes with.
    pub fn settings(&self) -> &SoftwareSettings {
        &self.settings
    }

    /// Makes the next picture [`SoftwareEncoder::encode`] gets an IDR picture with
    /// SPS and PPS (a viewer asked for a keyframe); the `intra_period` count starts
    /// again from it.
    pub fn force_keyframe(&mut self) {
        self.keyframe_wanted = true;
    }

    /// Encodes `picture`, frame number `frame` of the stream (its timestamp: `frame`
    /// / frame rate), into one access unit: Annex-B, four-byte start codes, SPS and
    /// PPS in front of an IDR slice. The first picture is an IDR picture, and so is
    /// every `intra_period`-th after the last one and the one after
    /// [`SoftwareEncoder::force_keyframe`]. Empty when the encoder made nothing of
    /// this picture.
    pub fn encode(&mut self, picture: &impl YUVSource, frame: u64) -> Result<&[u8], String> {
        let encoder = &mut self.encoder;
        let period = u64::from(self.settings.intra_period);
        let first = self.since_keyframe == 0;
        if !first && (self.keyframe_wanted || self.since_keyframe >= period) {
            encoder.force_intra_frame();
        }
        self.keyframe_wanted = false;
        let ms = frame * 1000 / u64::from(self.settings.framerate);
        let stream = encoder
            .encode_at(picture, Timestamp::from_millis(ms))
            .map_err(|e| format!("OpenH264 could not encode frame {frame}: {e}"))?;
        let frame_type = stream.frame_type();
        self.out.clear();
        let mut has_idr = false;
        let mut has_sps = false;
        let mut has_pps = false;
        let sets = &mut self.parameter_sets;
        for_each_nal(&stream, |nal| {
            match nal.first().map(|h| NalType::from_u8(*h)) {
                Some(NalType::IdrSlice) => has_idr = true,
                Some(NalType::Sps) => {
                    has_sps = true;
                    sets.sps.clear();
                    sets.sps.extend_from_slice(nal);
                }
                Some(NalType::Pps) => {
                    has_pps = true;
                    sets.pps.clear();
                    sets.pps.extend_from_slice(nal);
                }
                _ => {}
            }
        });
        if has_idr && !(has_sps && has_pps) {
            // OpenH264 writes them with every IDR picture; should it ever not, the
            // last ones seen go in front so that every keyframe decodes on its own.
            if self.parameter_sets.sps.is_empty() || self.parameter_sets.pps.is_empty() {
                return Err(format!(
                    "OpenH264 made an IDR picture (frame {frame}) without SPS and PPS"
                ));
            }
            if !has_sps {
                push_nal(&mut self.out, &self.parameter_sets.sps);
            }
            if !has_pps {
                push_nal(&mut self.out, &self.parameter_sets.pps);
            }
        }
        let out = &mut self.out;
        for_each_nal(&stream, |nal| push_nal(out, nal));
        if first && !has_idr {
            return Err(format!(
                "OpenH264's first picture is not an IDR picture ({frame_type:?})"
            ));
        }
        if has_idr {
            self.since_keyframe = 1;
        } else if !self.out.is_empty() {
            self.since_keyframe += 1;
        }
        Ok(&self.out)
    }
}

/// Calls `f` with every non-empty NAL unit of `stream`, without start code.
fn for_each_nal(stream: &EncodedBitStream<'_>, mut f: impl FnMut(&[u8])) {
    for l in 0..stream.num_layers() {
        let Some(layer) = stream.layer(l) else {
            continue;
        };
        for n in 0..layer.nal_count() {
            if let Some(nal) = layer.nal_unit(n).map(strip_start_code) {
                if !nal.is_empty() {
                    f(nal);
                }
            }
        }
    }
}

/// The last SPS and PPS the encoder wrote (without start codes).
#[derive(Debug, Default)]
struct ParameterSets {
    sps: Vec<u8>,
    pps: Vec<u8>,
}

fn push_nal(out: &mut Vec<u8>, nal: &[u8]) {
    out.extend_from_slice(&START_CODE);
    out.extend_from_slice(nal);
}

/// The NAL unit without its leading Annex-B start code (three or four bytes).
fn strip_start_code(nal: &[u8]) -> &[u8] {
    if let Some(rest) = nal.strip_prefix(&[0, 0, 0, 1]) {
        rest
    } else if let Some(rest) = nal.strip_prefix(&[0, 0, 1]) {
        rest
    } else {
        nal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_codes_are_stripped() {
        assert_eq!(strip_start_code(&[0, 0, 0, 1, 0x65, 1]), &[0x65, 1]);
        assert_eq!(strip_start_code(&[0, 0, 1, 0x41]), &[0x41]);
        assert_eq!(strip_start_code(&[0x41]), &[0x41]);
    }
}
