//! Test helpers: a bit writer and builders for SPS, PPS, slice and SEI NAL units,
//! so tests can make streams with exactly the fields they need, and ready-made
//! access units of a tiny real stream for tests of the modules above (the hub,
//! the service).

use bytes::Bytes;

use super::access_unit::{AccessUnit, RandomAccess};
use super::nal::Nal;

/// Writes bits most significant first; `nal` escapes the result.
#[derive(Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    used: u32,
}

impl BitWriter {
    pub fn bit(&mut self, bit: bool) -> &mut Self {
        if self.used.is_multiple_of(8) {
            self.bytes.push(0);
        }
        if bit {
            let last = self.bytes.len() - 1;
            self.bytes[last] |= 0x80 >> (self.used % 8);
        }
        self.used += 1;
        self
    }

    pub fn bits(&mut self, n: u32, value: u64) -> &mut Self {
        for i in (0..n).rev() {
            self.bit((value >> i) & 1 == 1);
        }
        self
    }

    pub fn ue(&mut self, value: u32) -> &mut Self {
        let v = u64::from(value) + 1;
        let len = 64 - v.leading_zeros();
        self.bits(len - 1, 0).bits(len, v)
    }

    pub fn se(&mut self, value: i32) -> &mut Self {
        let k = if value > 0 {
            2 * i64::from(value) - 1
        } else {
            -2 * i64::from(value)
        };
        self.ue(k as u32)
    }

    /// rbsp_trailing_bits, then the NAL unit with `header`, escaped.
    pub fn nal(&mut self, header: u8) -> Vec<u8> {
        self.bit(true);
        while !self.used.is_multiple_of(8) {
            self.bit(false);
        }
        let mut out = vec![header];
        out.extend(escape(&self.bytes));
        out
    }
}

/// Inserts emulation-prevention bytes (7.4.1).
pub fn escape(rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + 8);
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// A NAL unit of these bytes (which must be a valid one).
pub fn nal(bytes: &[u8]) -> Nal {
    Nal::new(Bytes::copy_from_slice(bytes)).unwrap()
}

/// The SPS fields a test may vary.
#[derive(Debug, Clone)]
pub struct SpsSpec {
    pub profile_idc: u8,
    pub constraint_flags: u8,
    pub level_idc: u8,
    pub id: u32,
    pub chroma_format_idc: u32,
    pub separate_colour_plane: bool,
    pub scaling_lists: bool,
    pub log2_max_frame_num: u32,
    pub poc_type: u32,
    pub log2_max_poc_lsb: u32,
    pub delta_pic_order_always_zero: bool,
    pub width_mbs: u32,
    pub height_map_units: u32,
    pub frame_mbs_only: bool,
    pub crop: Option<[u32; 4]>,
    pub timing: Option<(u32, u32)>,
    /// `video_full_range_flag` in the VUI.
    pub full_range: bool,
}

impl Default for SpsSpec {
    fn default() -> Self {
        SpsSpec {
            profile_idc: 66,
            constraint_flags: 0xc0,
            level_idc: 30,
            id: 0,
            chroma_format_idc: 1,
            separate_colour_plane: false,
            scaling_lists: false,
            log2_max_frame_num: 4,
            poc_type: 0,
            log2_max_poc_lsb: 6,
            delta_pic_order_always_zero: false,
            width_mbs: 4,
            height_map_units: 3,
            frame_mbs_only: true,
            crop: None,
            timing: None,
            full_range: false,
        }
    }
}

impl SpsSpec {
    pub fn bytes(&self) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.bits(8, self.profile_idc.into())
            .bits(8, self.constraint_flags.into())
            .bits(8, self.level_idc.into())
            .ue(self.id);
        if [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]
            .contains(&self.profile_idc)
        {
            w.ue(self.chroma_format_idc);
            if self.chroma_format_idc == 3 {
                w.bit(self.separate_colour_plane);
            }
            w.ue(0).ue(0).bit(false).bit(self.scaling_lists);
            if self.scaling_lists {
                let lists = if self.chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    // Lists 0, 2, 6..: present with varied deltas; others absent.
                    let present = i % 2 == 0;
                    w.bit(present);
                    if present {
                        let size = if i < 6 { 16 } else { 64 };
                        for j in 0..size {
                            w.se(if j % 3 == 0 { 5 } else { -2 });
                        }
                    }
                }
            }
        }
        w.ue(self.log2_max_frame_num - 4).ue(self.poc_type);
        match self.poc_type {
            0 => {
                w.ue(self.log2_max_poc_lsb - 4);
            }
            1 => {
                w.bit(self.delta_pic_order_always_zero)
                    .se(-2)
                    .se(1)
                    .ue(2)
                    .se(2)
                    .se(4);
            }
            _ => {}
        }
        w.ue(2) // max_num_ref_frames
            .bit(false)
            .ue(self.width_mbs - 1)
            .ue(self.height_map_units - 1)
            .bit(self.frame_mbs_only);
        if !self.frame_mbs_only {
            w.bit(true);
        }
        w.bit(true); // direct_8x8_inference_flag
        w.bit(self.crop.is_some());
        if let Some(crop) = self.crop {
            for c in crop {
                w.ue(c);
            }
        }
        w.bit(true); // VUI
        w.bit(true).bits(8, 255).bits(16, 4).bits(16, 3); // Extended_SAR
        w.bit(false); // overscan
        w.bit(true)
            .bits(3, 5)
            .bit(self.full_range)
            .bit(true)
            .bits(24, 0x010101);
        w.bit(true).ue(1).ue(1); // chroma loc
        match self.timing {
            Some((units, scale)) => {
                w.bit(true)
                    .bits(32, units.into())
                    .bits(32, scale.into())
                    .bit(true);
            }
            None => {
                w.bit(false);
            }
        }
        w.bit(false).bit(false).bit(false).bit(false);
        w.nal(0x67)
    }
}

/// The PPS fields a test may vary.
#[derive(Debug, Clone, Default)]
pub struct PpsSpec {
    pub id: u32,
    pub sps_id: u32,
    pub bottom_field_pic_order_in_frame_present: bool,
    pub slice_groups: Option<(u32, u32)>,
    pub redundant_pic_cnt_present: bool,
}

impl PpsSpec {
    pub fn bytes(&self) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.ue(self.id)
            .ue(self.sps_id)
            .bit(false)
            .bit(self.bottom_field_pic_order_in_frame_present);
        match self.slice_groups {
            None => {
                w.ue(0);
            }
            Some((groups, map_type)) => {
                w.ue(groups - 1).ue(map_type);
                match map_type {
                    0 => {
                        for _ in 0..groups {
                            w.ue(3);
                        }
                    }
                    2 => {
                        for _ in 1..groups {
                            w.ue(0).ue(5);
                        }
                    }
                    3..=5 => {
                        w.bit(true).ue(1);
                    }
                    6 => {
                        let units = 12;
                        let bits = 32 - (groups - 1).leading_zeros();
                        w.ue(units - 1);
                        for i in 0..units {
                            w.bits(bits, u64::from(i % groups));
                        }
                    }
                    _ => {}
                }
            }
        }
        w.ue(0).ue(0).bit(false).bits(2, 0).se(-3).se(0).se(2);
        w.bit(true).bit(false).bit(self.redundant_pic_cnt_present);
        w.nal(0x68)
    }
}

/// The slice header fields a test may vary (the SPS/PPS decide which are written).
#[derive(Debug, Clone, Default)]
pub struct SliceSpec {
    pub idr: bool,
    pub nal_ref_idc: u8,
    pub first_mb: u32,
    pub pps_id: u32,
    pub colour_plane_id: u8,
    pub frame_num: u32,
    pub field: Option<bool>,
    pub idr_pic_id: u32,
    pub poc_lsb: u32,
    pub delta_bottom: i32,
    pub delta: [i32; 2],
    pub redundant_pic_cnt: u32,
}

impl SliceSpec {
    pub fn bytes(&self, sps: &SpsSpec, pps: &PpsSpec) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.ue(self.first_mb)
            .ue(if self.idr { 7 } else { 5 })
            .ue(self.pps_id);
        if sps.separate_colour_plane {
            w.bits(2, self.colour_plane_id.into());
        }
        w.bits(sps.log2_max_frame_num, self.frame_num.into());
        if !sps.frame_mbs_only {
            w.bit(self.field.is_some());
            if let Some(bottom) = self.field {
                w.bit(bottom);
            }
        }
        if self.idr {
            w.ue(self.idr_pic_id);
        }
        let bottom_present = pps.bottom_field_pic_order_in_frame_present && self.field.is_none();
        if sps.poc_type == 0 {
            w.bits(sps.log2_max_poc_lsb, self.poc_lsb.into());
            if bottom_present {
                w.se(self.delta_bottom);
            }
        } else if sps.poc_type == 1 && !sps.delta_pic_order_always_zero {
            w.se(self.delta[0]);
            if bottom_present {
                w.se(self.delta[1]);
            }
        }
        if pps.redundant_pic_cnt_present {
            w.ue(self.redundant_pic_cnt);
        }
        // Some slice data: zero bytes to exercise emulation prevention.
        w.bits(32, 0).bits(8, 0x5a);
        let nal_type = if self.idr { 5 } else { 1 };
        w.nal((self.nal_ref_idc & 3) << 5 | nal_type)
    }
}

/// An SEI NAL unit with a recovery point message (and a user-data one before it).
pub fn recovery_point_sei(recovery_frame_cnt: u32) -> Vec<u8> {
    let mut rbsp = vec![5u8, 20];
    rbsp.extend([0x11; 16]);
    rbsp.extend([0, 0, 0, 1]);
    let mut payload = BitWriter::default();
    payload
        .ue(recovery_frame_cnt)
        .bit(true)
        .bit(false)
        .bits(2, 0);
    while !payload.used.is_multiple_of(8) {
        payload.bit(false);
    }
    rbsp.push(6);
    rbsp.push(payload.bytes.len() as u8);
    rbsp.extend(&payload.bytes);
    rbsp.push(0x80);
    let mut out = vec![0x06];
    out.extend(escape(&rbsp));
    out
}

/// Annex-B: each NAL unit after a four-byte start code.
pub fn annex_b(nals: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for n in nals {
        out.extend([0, 0, 0, 1]);
        out.extend(n);
    }
    out
}

/// SPS of a 64x48 constrained-baseline stream from x264, in hex.
pub const SPS: &str = "6742c00ad9047b011000000300100000030320f1226480";
/// Its PPS, in hex.
pub const PPS: &str = "68cb83cb20";

/// Bytes from hex digits.
pub fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A keyframe access unit of that stream, with or without SPS+PPS in front;
/// `tag` tells keyframes apart.
pub fn idr(with_parameter_sets: bool, tag: u8) -> AccessUnit {
    let mut nals = Vec::new();
    if with_parameter_sets {
        nals.push(nal(&unhex(SPS)));
        nals.push(nal(&unhex(PPS)));
    }
    nals.push(nal(&[0x65, 0x88, tag, 0x11]));
    AccessUnit {
        nals,
        random_access: RandomAccess::Idr,
    }
}
