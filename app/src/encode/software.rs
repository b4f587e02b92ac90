//! H.264 encoding in software, in-process, with OpenH264: the test pattern's
//! encoder, and the USB webcam source's when a board has no hardware encoder (a
//! Raspberry Pi 5, or a laptop). Constrained baseline, no B-frames, one access unit
//! out per picture in, an IDR picture every `intra_period` frames and whenever one
//! is asked for ([`SoftwareEncoder::force_keyframe`], which restarts the count),
//! each with SPS and PPS in front.
//!
//! OpenH264 is driven through its C API (`openh264-sys2`, [`RawEncoder`]) rather
//! than the `openh264` crate's `Encoder`: that one sets the library's log level
//! only after initialising it, so the library's own warning about the settings
//! (`[OpenH264] ... bEnableFrameSkip ...`) went straight to stderr at every start.
//! Here the library's log goes to `tracing` from the moment the encoder exists
//! ([`openh264_log`]).

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::null_mut;

use openh264::formats::YUVSource;
use openh264::OpenH264API;
use openh264_sys2::{
    videoFormatI420, ISVCEncoder, SEncParamExt, SFrameBSInfo, SSourcePicture, WelsTraceCallback,
    API, CAMERA_VIDEO_REAL_TIME, CONSTANT_ID, DEBLOCKING_IDC_0, ENCODER_OPTION_DATAFORMAT,
    ENCODER_OPTION_TRACE_CALLBACK, ENCODER_OPTION_TRACE_LEVEL, LOW_COMPLEXITY, PRO_BASELINE,
    RC_BITRATE_MODE, SM_SINGLE_SLICE, WELS_LOG_DEBUG, WELS_LOG_ERROR, WELS_LOG_INFO,
    WELS_LOG_WARNING,
};

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
    encoder: RawEncoder,
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
        let encoder = RawEncoder::new(&settings)?;
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
            .encode(picture, ms)
            .map_err(|code| format!("OpenH264 could not encode frame {frame} (error {code})"))?;
        let frame_type = stream.eFrameType;
        self.out.clear();
        let mut has_idr = false;
        let mut has_sps = false;
        let mut has_pps = false;
        let sets = &mut self.parameter_sets;
        for_each_nal(stream, |nal| {
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
        for_each_nal(stream, |nal| push_nal(out, nal));
        if first && !has_idr {
            return Err(format!(
                "OpenH264's first picture is not an IDR picture (frame type {frame_type})"
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
fn for_each_nal(stream: &SFrameBSInfo, mut f: impl FnMut(&[u8])) {
    let layers = usize::try_from(stream.iLayerNum).unwrap_or(0);
    for layer in stream.sLayerInfo.iter().take(layers) {
        let count = usize::try_from(layer.iNalCount).unwrap_or(0);
        if count == 0 || layer.pNalLengthInByte.is_null() || layer.pBsBuf.is_null() {
            continue;
        }
        // SAFETY: OpenH264 fills iNalCount lengths, and the layer's NAL units lie
        // one after the other in pBsBuf; both stay valid until the next
        // EncodeFrame, which needs `&mut` of the encoder this borrows from.
        let lengths = unsafe { std::slice::from_raw_parts(layer.pNalLengthInByte, count) };
        let total = lengths
            .iter()
            .map(|&l| usize::try_from(l).unwrap_or(0))
            .sum();
        let buffer = unsafe { std::slice::from_raw_parts(layer.pBsBuf, total) };
        let mut at = 0;
        for &length in lengths {
            let length = usize::try_from(length).unwrap_or(0);
            let nal = strip_start_code(&buffer[at..at + length]);
            at += length;
            if !nal.is_empty() {
                f(nal);
            }
        }
    }
}

/// OpenH264's encoder object through its C API: created with the library's log
/// going to [`openh264_log`], initialised with the settings, destroyed on drop.
struct RawEncoder {
    api: OpenH264API,
    encoder: *mut ISVCEncoder,
    /// The picture size it was initialised with.
    size: (c_int, c_int),
    /// The last picture's bitstream (OpenH264 fills it; its buffers are the
    /// encoder's own).
    info: SFrameBSInfo,
}

// SAFETY: the encoder object is used from one thread at a time (every call takes
// `&mut self` or happens in drop); OpenH264 keeps no thread-local state for it.
unsafe impl Send for RawEncoder {}

/// Calls a function of the encoder's vtable (a C++ object: its first word
/// points at the table of its methods).
macro_rules! call {
    ($encoder:expr, $method:ident $(, $arg:expr)*) => {{
        let encoder: *mut ISVCEncoder = $encoder;
        // SAFETY: `encoder` came from WelsCreateSVCEncoder and is not destroyed
        // yet; every method OpenH264 builds is in the table.
        unsafe {
            match (**encoder).$method {
                Some(method) => method(encoder $(, $arg)*),
                None => -1,
            }
        }
    }};
}

impl RawEncoder {
    /// Creates and initialises the encoder; the error says why not.
    fn new(s: &SoftwareSettings) -> Result<Self, String> {
        let api = OpenH264API::from_source();
        let mut encoder: *mut ISVCEncoder = null_mut();
        // SAFETY: WelsCreateSVCEncoder writes the new object's pointer.
        let created = unsafe { api.WelsCreateSVCEncoder(&mut encoder) };
        if created != 0 || encoder.is_null() {
            return Err(format!(
                "cannot create the OpenH264 encoder (error {created})"
            ));
        }
        let mut raw = RawEncoder {
            api,
            encoder,
            size: (s.width as c_int, s.height as c_int),
            info: SFrameBSInfo::default(),
        };
        // The log first, so that initialising already reports to tracing. Both
        // options are accepted before initialisation.
        let mut callback: WelsTraceCallback = Some(openh264_log);
        let mut level: c_int = WELS_LOG_WARNING as c_int;
        raw.option(ENCODER_OPTION_TRACE_CALLBACK, (&raw mut callback).cast())?;
        raw.option(ENCODER_OPTION_TRACE_LEVEL, (&raw mut level).cast())?;

        let mut params = SEncParamExt::default();
        let got = call!(raw.encoder, GetDefaultParams, &raw mut params);
        if got != 0 {
            return Err(format!("OpenH264 has no default parameters (error {got})"));
        }
        let bitrate = c_int::try_from(s.bitrate).map_err(|_| "the bit rate is too high")?;
        params.iPicWidth = s.width as c_int;
        params.iPicHeight = s.height as c_int;
        params.iRCMode = RC_BITRATE_MODE;
        // One access unit out per picture in, always.
        params.bEnableFrameSkip = false;
        params.iTargetBitrate = bitrate;
        params.bEnableDenoise = false;
        params.fMaxFrameRate = s.framerate as f32;
        params.eSpsPpsIdStrategy = CONSTANT_ID;
        params.iMultipleThreadIdc = 1;
        params.iUsageType = CAMERA_VIDEO_REAL_TIME;
        // IDR pictures come exactly every intra_period frames, forced by encode.
        params.bEnableSceneChangeDetect = false;
        params.bEnableAdaptiveQuant = true;
        params.bEnableBackgroundDetection = true;
        params.bEnableLongTermReference = false;
        params.iComplexityMode = LOW_COMPLEXITY;
        params.uiIntraPeriod = 0;
        params.iLoopFilterDisableIdc = DEBLOCKING_IDC_0 as c_int;
        params.iMinQp = 0;
        params.iMaxQp = 51;
        params.iSpatialLayerNum = 1;
        params.iTemporalLayerNum = 1;
        params.iLtrMarkPeriod = 30;
        let layer = &mut params.sSpatialLayers[0];
        layer.uiProfileIdc = PRO_BASELINE;
        layer.iMaxSpatialBitrate = bitrate;
        layer.iSpatialBitrate = bitrate;
        layer.fFrameRate = s.framerate as f32;
        layer.iVideoWidth = s.width as c_int;
        layer.iVideoHeight = s.height as c_int;
        layer.sSliceArgument.uiSliceMode = SM_SINGLE_SLICE;
        layer.sSliceArgument.uiSliceNum = 1;
        let initialised = call!(raw.encoder, InitializeExt, &raw const params);
        if initialised != 0 {
            return Err(format!(
                "OpenH264 refused the settings {}x{} at {} fps, {} bit/s (error {initialised})",
                s.width, s.height, s.framerate, s.bitrate
            ));
        }
        let mut format: c_int = videoFormatI420 as c_int;
        raw.option(ENCODER_OPTION_DATAFORMAT, (&raw mut format).cast())?;
        Ok(raw)
    }

    /// SetOption, its error in words.
    fn option(
        &mut self,
        option: openh264_sys2::ENCODER_OPTION,
        value: *mut c_void,
    ) -> Result<(), String> {
        match call!(self.encoder, SetOption, option, value) {
            0 => Ok(()),
            code => Err(format!("OpenH264 refused option {option} (error {code})")),
        }
    }

    /// Makes the next picture an IDR picture.
    fn force_intra_frame(&mut self) {
        call!(self.encoder, ForceIntraFrame, true);
    }

    /// Encodes `picture` with timestamp `ms`; the error is OpenH264's code. The
    /// picture must have the size the encoder was made for.
    fn encode(&mut self, picture: &impl YUVSource, ms: u64) -> Result<&SFrameBSInfo, c_int> {
        let (width, height) = picture.dimensions_i32();
        if (width, height) != self.size {
            // OpenH264's own code for a wrong parameter (cmInitParaError).
            return Err(2);
        }
        let strides = picture.strides_i32();
        let source = SSourcePicture {
            iColorFormat: videoFormatI420 as c_int,
            iStride: [strides.0, strides.1, strides.2, 0],
            // OpenH264 only reads the planes.
            pData: [
                picture.y().as_ptr().cast_mut(),
                picture.u().as_ptr().cast_mut(),
                picture.v().as_ptr().cast_mut(),
                null_mut(),
            ],
            iPicWidth: width,
            iPicHeight: height,
            uiTimeStamp: i64::try_from(ms).unwrap_or(i64::MAX),
            bPsnrY: false,
            bPsnrU: false,
            bPsnrV: false,
        };
        match call!(
            self.encoder,
            EncodeFrame,
            &raw const source,
            &raw mut self.info
        ) {
            0 => Ok(&self.info),
            code => Err(code),
        }
    }
}

impl Drop for RawEncoder {
    fn drop(&mut self) {
        call!(self.encoder, Uninitialize);
        // SAFETY: made by this api's WelsCreateSVCEncoder, used no more.
        unsafe { self.api.WelsDestroySVCEncoder(self.encoder) };
    }
}

/// OpenH264's log, into `tracing` (target `openh264`). Errors stay errors; the
/// warning that frame skipping is off ("bitrate can't be controlled ... without
/// enabling skip frame") is by design (one access unit per picture: the bit
/// rate is held by the quantiser alone) and goes to debug, as does anything
/// less than a warning. Called by OpenH264 on the encoding thread.
unsafe extern "C" fn openh264_log(_context: *mut c_void, level: c_int, text: *const c_char) {
    if text.is_null() {
        return;
    }
    // SAFETY: OpenH264 passes a NUL-terminated message it owns for the call.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    let text = without_prefix(text.trim_end());
    let level = if level < 0 { WELS_LOG_DEBUG } else { level };
    if level <= WELS_LOG_ERROR {
        tracing::error!(target: "openh264", "{text}");
    } else if level <= WELS_LOG_WARNING && !text.contains("bEnableFrameSkip") {
        tracing::warn!(target: "openh264", "{text}");
    } else if level <= WELS_LOG_INFO {
        tracing::debug!(target: "openh264", "{text}");
    } else {
        tracing::trace!(target: "openh264", "{text}");
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

/// An OpenH264 log message without the library's prefix (`[OpenH264] this =
/// 0x..., Warning:`): the object's address and the level, which the log line
/// has of its own.
fn without_prefix(text: &str) -> &str {
    text.strip_prefix("[OpenH264] this = ")
        .and_then(|rest| rest.split_once(", "))
        .and_then(|(_, rest)| rest.split_once(':'))
        .map_or(text, |(_, message)| message.trim_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_prefix_is_left_out_of_log_messages() {
        assert_eq!(
            without_prefix("[OpenH264] this = 0x0x7f00, Warning:bEnableFrameSkip = 0,bitrate"),
            "bEnableFrameSkip = 0,bitrate"
        );
        assert_eq!(without_prefix("no prefix: here"), "no prefix: here");
    }

    #[test]
    fn start_codes_are_stripped() {
        assert_eq!(strip_start_code(&[0, 0, 0, 1, 0x65, 1]), &[0x65, 1]);
        assert_eq!(strip_start_code(&[0, 0, 1, 0x41]), &[0x41]);
        assert_eq!(strip_start_code(&[0x41]), &[0x41]);
    }
}
