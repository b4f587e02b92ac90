//! Sequence parameter set parsing. SKELETON: written by the H.264 work item.

/// The stream parameters a player needs, from a sequence parameter set.
#[derive(Debug, Clone, PartialEq)]
pub struct Sps {
    /// `profile_idc` (66 baseline, 77 main, 100 high, ...).
    pub profile_idc: u8,
    /// The constraint_set0..5 flags byte as it appears in the SPS.
    pub constraint_flags: u8,
    /// `level_idc` (e.g. 40 for level 4.0).
    pub level_idc: u8,
    /// `seq_parameter_set_id`.
    pub id: u32,
    /// Displayed width in pixels, after cropping.
    pub width: u32,
    /// Displayed height in pixels, after cropping.
    pub height: u32,
    /// Frames per second from the VUI timing info, when present.
    pub frame_rate: Option<f64>,
}

impl Sps {
    /// RFC 6381 codec string, e.g. `avc1.640028`.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraint_flags, self.level_idc
        )
    }
}
/// STUB
#[derive(Debug)]
pub struct SpsError;
impl std::fmt::Display for SpsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stub")
    }
}
impl Sps {
    /// STUB
    pub fn parse(_d: &[u8]) -> Result<Sps, SpsError> {
        Err(SpsError)
    }
}
