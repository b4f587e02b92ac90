//! Raw picture layouts: where the planes of an uncompressed picture (a webcam's
//! raw frame) sit in one buffer, and copying a picture from one layout into
//! another row by row. Pure: no I/O, no allocation in the copy.
//!
//! A USB webcam hands out frames in its own layout (usually tight rows:
//! `bytesperline` = the visible row), and the Pi's hardware encoder wants its own
//! (rows aligned to 32 or 64 bytes). Both use a single buffer per frame
//! (`num_planes = 1`): the chroma planes of the planar formats follow the luma
//! plane, starting at `bytesperline x buffer height`. The buffer height is normally
//! the frame height (bcm2835-codec's encoder does not align it), but some drivers
//! round it up; [`PictureLayout::from_driver`] infers it from `sizeimage`.
//!
//! The formats are those a webcam gives and the encoder takes:
//!
//! | format | planes | layout |
//! | --- | --- | --- |
//! | `YUYV`, `UYVY` | 1 | packed 4:2:2, 4 bytes per pair of pixels |
//! | `NV12`, `NV21` | 2 | Y, then interleaved chroma rows (CbCr / CrCb) at half height |
//! | `YU12`, `YV12` | 3 | Y, then two chroma planes (Cb, Cr / Cr, Cb) at half width and height, rows of `bytesperline / 2` |

use crate::v4l2::{fourcc_to_string, sys};

/// A raw pixel format this module lays out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RawFormat {
    /// `YUYV`: packed 4:2:2, Y0 Cb Y1 Cr.
    Yuyv,
    /// `UYVY`: packed 4:2:2, Cb Y0 Cr Y1.
    Uyvy,
    /// `NV12`: Y plane, then interleaved Cb Cr at half height.
    Nv12,
    /// `NV21`: Y plane, then interleaved Cr Cb at half height.
    Nv21,
    /// `YU12` (I420): Y plane, then Cb, then Cr, each at half width and height.
    Yu12,
    /// `YV12`: Y plane, then Cr, then Cb.
    Yv12,
}

impl RawFormat {
    /// Every format, in the order above.
    pub const ALL: [RawFormat; 6] = [
        RawFormat::Yuyv,
        RawFormat::Uyvy,
        RawFormat::Nv12,
        RawFormat::Nv21,
        RawFormat::Yu12,
        RawFormat::Yv12,
    ];

    /// The format of a V4L2 fourcc, `None` for any other.
    pub fn from_fourcc(fourcc: u32) -> Option<RawFormat> {
        RawFormat::ALL.into_iter().find(|f| f.fourcc() == fourcc)
    }

    /// The V4L2 fourcc (`V4L2_PIX_FMT_*`).
    pub fn fourcc(self) -> u32 {
        match self {
            RawFormat::Yuyv => sys::V4L2_PIX_FMT_YUYV,
            RawFormat::Uyvy => sys::V4L2_PIX_FMT_UYVY,
            RawFormat::Nv12 => sys::V4L2_PIX_FMT_NV12,
            RawFormat::Nv21 => sys::V4L2_PIX_FMT_NV21,
            RawFormat::Yu12 => sys::V4L2_PIX_FMT_YUV420,
            RawFormat::Yv12 => sys::V4L2_PIX_FMT_YVU420,
        }
    }

    /// The fourcc as text, e.g. `"NV12"`.
    pub fn name(self) -> String {
        fourcc_to_string(self.fourcc())
    }

    /// Whether the chroma is at half height (4:2:0) after a full-height luma plane.
    pub fn is_420(self) -> bool {
        !matches!(self, RawFormat::Yuyv | RawFormat::Uyvy)
    }

    /// Bytes of one row of the first plane for `width` pixels.
    pub fn luma_row_bytes(self, width: u32) -> u64 {
        match self {
            RawFormat::Yuyv | RawFormat::Uyvy => 4 * u64::from(width.div_ceil(2)),
            _ => u64::from(width),
        }
    }
}

/// What is wrong with a layout or a copy, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// Not one of the formats of [`RawFormat`].
    #[error("pixel format {} is not a raw format the encoder path handles (YUYV, UYVY, NV12, NV21, YU12, YV12)", fourcc_to_string(*.fourcc))]
    UnsupportedFormat {
        /// The fourcc.
        fourcc: u32,
    },
    /// Width or height is 0.
    #[error("a {width}x{height} frame has no pixels")]
    Empty {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// Rows are shorter than the visible pixels.
    #[error("{format} at width {width} needs at least {needed} bytes per row, but bytesperline is {bytesperline}")]
    RowTooShort {
        /// The format's name.
        format: String,
        /// Width in pixels.
        width: u32,
        /// The row length given.
        bytesperline: u32,
        /// The row length the pixels need.
        needed: u64,
    },
    /// Planar 4:2:0 chroma rows are half a luma row: an odd luma row length cannot be halved.
    #[error("{format} chroma rows are half the luma rows, but bytesperline {bytesperline} is odd")]
    OddStride {
        /// The format's name.
        format: String,
        /// The row length given.
        bytesperline: u32,
    },
    /// The buffer height is less than the frame height.
    #[error("the buffer holds {buffer_height} rows, fewer than the frame's {height}")]
    ShortBuffer {
        /// Rows of the luma plane in the buffer.
        buffer_height: u32,
        /// The frame height.
        height: u32,
    },
    /// `sizeimage` is too small for the frame.
    #[error("{format} {width}x{height} with bytesperline {bytesperline} needs {needed} bytes, but sizeimage is {sizeimage}")]
    SizeTooSmall {
        /// The format's name.
        format: String,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// The row length.
        bytesperline: u32,
        /// The buffer size given.
        sizeimage: u32,
        /// The bytes the frame needs.
        needed: u64,
    },
    /// The layout does not fit in this machine's address space.
    #[error(
        "a {width}x{height} frame with bytesperline {bytesperline} is too large for this machine"
    )]
    TooLarge {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// The row length.
        bytesperline: u32,
    },
    /// Copying between layouts of different formats or sizes.
    #[error("cannot copy a {from} frame into a {to} layout")]
    Mismatch {
        /// The source, e.g. `YUYV 640x480`.
        from: String,
        /// The destination.
        to: String,
    },
    /// A buffer is shorter than its layout.
    #[error("the {which} buffer has {len} bytes, the frame needs {needed}")]
    BufferTooShort {
        /// `"source"` or `"destination"`.
        which: &'static str,
        /// Its length.
        len: usize,
        /// The bytes the layout needs.
        needed: usize,
    },
}

/// One plane of a frame inside its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Plane {
    /// Where the plane starts.
    pub offset: usize,
    /// Bytes from one row to the next.
    pub stride: usize,
    /// Bytes of visible samples per row.
    pub row_bytes: usize,
    /// Visible rows.
    pub rows: usize,
}

impl Plane {
    /// One past the last visible byte (`offset` if the plane is empty).
    pub fn end(&self) -> usize {
        if self.rows == 0 {
            return self.offset;
        }
        // Checked when the layout was built.
        self.offset + self.stride * (self.rows - 1) + self.row_bytes
    }
}

/// Where every plane of a frame sits in one buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PictureLayout {
    format: RawFormat,
    width: u32,
    height: u32,
    bytesperline: u32,
    buffer_height: u32,
    planes: [Plane; 3],
    plane_count: usize,
    min_len: usize,
    full_len: usize,
}

impl PictureLayout {
    /// The layout of `fourcc` at `width` x `height` with rows of `bytesperline`
    /// bytes, the chroma planes (4:2:0) starting after `buffer_height` luma rows.
    pub fn new(
        fourcc: u32,
        width: u32,
        height: u32,
        bytesperline: u32,
        buffer_height: u32,
    ) -> Result<PictureLayout, LayoutError> {
        let format =
            RawFormat::from_fourcc(fourcc).ok_or(LayoutError::UnsupportedFormat { fourcc })?;
        if width == 0 || height == 0 {
            return Err(LayoutError::Empty { width, height });
        }
        let luma_row = format.luma_row_bytes(width);
        if u64::from(bytesperline) < luma_row {
            return Err(LayoutError::RowTooShort {
                format: format.name(),
                width,
                bytesperline,
                needed: luma_row,
            });
        }
        if buffer_height < height {
            return Err(LayoutError::ShortBuffer {
                buffer_height,
                height,
            });
        }
        let planar = matches!(format, RawFormat::Yu12 | RawFormat::Yv12);
        if planar && !bytesperline.is_multiple_of(2) {
            return Err(LayoutError::OddStride {
                format: format.name(),
                bytesperline,
            });
        }
        let too_large = LayoutError::TooLarge {
            width,
            height,
            bytesperline,
        };
        // u128: no product of u32 values can overflow it.
        let bpl = u128::from(bytesperline);
        let luma_size = bpl * u128::from(buffer_height);
        let chroma_rows = u128::from(height.div_ceil(2));
        let chroma_rows_alloc = u128::from(buffer_height.div_ceil(2));
        let half_width = u128::from(width.div_ceil(2));
        // (offset, stride, row bytes, rows) per plane, and the size of the whole buffer.
        let mut raw: Vec<(u128, u128, u128, u128)> =
            vec![(0, bpl, u128::from(luma_row), u128::from(height))];
        let full = match format {
            RawFormat::Yuyv | RawFormat::Uyvy => luma_size,
            RawFormat::Nv12 | RawFormat::Nv21 => {
                raw.push((luma_size, bpl, 2 * half_width, chroma_rows));
                luma_size + bpl * chroma_rows_alloc
            }
            RawFormat::Yu12 | RawFormat::Yv12 => {
                let stride = bpl / 2;
                if stride < half_width {
                    return Err(LayoutError::RowTooShort {
                        format: format.name(),
                        width,
                        bytesperline,
                        needed: 2 * u64::from(width.div_ceil(2)),
                    });
                }
                let second = luma_size + stride * chroma_rows_alloc;
                raw.push((luma_size, stride, half_width, chroma_rows));
                raw.push((second, stride, half_width, chroma_rows));
                second + stride * chroma_rows_alloc
            }
        };
        let convert = |v: u128| usize::try_from(v).map_err(|_| too_large.clone());
        let mut planes = [Plane::default(); 3];
        let mut min_len = 0usize;
        for (slot, &(offset, stride, row_bytes, rows)) in planes.iter_mut().zip(&raw) {
            if row_bytes > stride {
                // NV12/NV21 at an odd width: the chroma row (a Cb/Cr pair per two
                // pixels) is one byte longer than the luma row.
                return Err(LayoutError::RowTooShort {
                    format: format.name(),
                    width,
                    bytesperline,
                    needed: u64::try_from(row_bytes).unwrap_or(u64::MAX),
                });
            }
            let end = offset + stride * rows.saturating_sub(1) + row_bytes;
            *slot = Plane {
                offset: convert(offset)?,
                stride: convert(stride)?,
                row_bytes: convert(row_bytes)?,
                rows: convert(rows)?,
            };
            min_len = min_len.max(convert(end)?);
        }
        let full_len = convert(full)?;
        Ok(PictureLayout {
            format,
            width,
            height,
            bytesperline,
            buffer_height,
            planes,
            plane_count: raw.len(),
            min_len,
            full_len,
        })
    }

    /// The layout a driver describes with `bytesperline` and `sizeimage` for a
    /// single-buffer frame. For the 4:2:0 formats the chroma offset depends on the
    /// buffer height the driver allocated: the first of the frame height, the
    /// height rounded up to 16 and to 32 whose whole-buffer size is exactly
    /// `sizeimage`, else the frame height (with padding at the end). Refuses,
    /// in plain words, a `sizeimage` that cannot hold the frame.
    pub fn from_driver(
        fourcc: u32,
        width: u32,
        height: u32,
        bytesperline: u32,
        sizeimage: u32,
    ) -> Result<PictureLayout, LayoutError> {
        let plain = PictureLayout::new(fourcc, width, height, bytesperline, height)?;
        let mut layout = plain.clone();
        if plain.format.is_420() && plain.full_len as u64 != u64::from(sizeimage) {
            for align in [16u32, 32] {
                let Some(aligned) = height.checked_next_multiple_of(align) else {
                    continue;
                };
                if let Ok(candidate) =
                    PictureLayout::new(fourcc, width, height, bytesperline, aligned)
                {
                    if candidate.full_len as u64 == u64::from(sizeimage) {
                        layout = candidate;
                        break;
                    }
                }
            }
        }
        if (layout.min_len as u64) > u64::from(sizeimage) {
            return Err(LayoutError::SizeTooSmall {
                format: layout.format.name(),
                width,
                height,
                bytesperline,
                sizeimage,
                needed: layout.full_len as u64,
            });
        }
        Ok(layout)
    }

    /// The layout with tight rows (`bytesperline` = the visible row, rounded up
    /// to even for 4:2:0) and the buffer height = the frame height.
    pub fn tight(fourcc: u32, width: u32, height: u32) -> Result<PictureLayout, LayoutError> {
        let format =
            RawFormat::from_fourcc(fourcc).ok_or(LayoutError::UnsupportedFormat { fourcc })?;
        let mut row = format.luma_row_bytes(width);
        if format.is_420() {
            // At an odd width the chroma rows need one byte more than the luma rows.
            row = 2 * u64::from(width.div_ceil(2));
        }
        let bytesperline = u32::try_from(row).map_err(|_| LayoutError::TooLarge {
            width,
            height,
            bytesperline: u32::MAX,
        })?;
        PictureLayout::new(fourcc, width, height, bytesperline, height)
    }

    /// The format.
    pub fn format(&self) -> RawFormat {
        self.format
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Bytes per luma (or packed) row.
    pub fn bytesperline(&self) -> u32 {
        self.bytesperline
    }

    /// Luma rows in the buffer before the chroma planes.
    pub fn buffer_height(&self) -> u32 {
        self.buffer_height
    }

    /// The planes, in memory order.
    pub fn planes(&self) -> &[Plane] {
        self.planes.get(..self.plane_count).unwrap_or(&[])
    }

    /// One past the last visible byte: the least a buffer must hold.
    pub fn min_len(&self) -> usize {
        self.min_len
    }

    /// The whole buffer with every padded row: what a driver's `sizeimage` is.
    pub fn full_len(&self) -> usize {
        self.full_len
    }

    fn describe(&self) -> String {
        format!("{} {}x{}", self.format.name(), self.width, self.height)
    }
}

/// Copies one frame from `src` (laid out as `from`) into `dst` (laid out as `to`),
/// row by row: only visible samples are written; `dst`'s padding keeps whatever it
/// held. Both layouts must have the same format and size, and both buffers must
/// hold their layout's [`PictureLayout::min_len`] bytes.
pub fn copy_picture(
    from: &PictureLayout,
    src: &[u8],
    to: &PictureLayout,
    dst: &mut [u8],
) -> Result<(), LayoutError> {
    if from.format != to.format || from.width != to.width || from.height != to.height {
        return Err(LayoutError::Mismatch {
            from: from.describe(),
            to: to.describe(),
        });
    }
    if src.len() < from.min_len {
        return Err(LayoutError::BufferTooShort {
            which: "source",
            len: src.len(),
            needed: from.min_len,
        });
    }
    if dst.len() < to.min_len {
        return Err(LayoutError::BufferTooShort {
            which: "destination",
            len: dst.len(),
            needed: to.min_len,
        });
    }
    for (s, d) in from.planes().iter().zip(to.planes()) {
        let row_bytes = s.row_bytes.min(d.row_bytes);
        let rows = s.rows.min(d.rows);
        if s.stride == row_bytes && d.stride == row_bytes {
            // Rows without padding on both sides: the plane is one block.
            let len = rows * row_bytes;
            if let (Some(from_plane), Some(to_plane)) = (
                src.get(s.offset..s.offset + len),
                dst.get_mut(d.offset..d.offset + len),
            ) {
                to_plane.copy_from_slice(from_plane);
                continue;
            }
        }
        for row in 0..rows {
            let s_start = s.offset + row * s.stride;
            let d_start = d.offset + row * d.stride;
            let (Some(from_row), Some(to_row)) = (
                src.get(s_start..s_start + row_bytes),
                dst.get_mut(d_start..d_start + row_bytes),
            ) else {
                // Unreachable after the length checks; stop rather than panic.
                return Err(LayoutError::BufferTooShort {
                    which: "destination",
                    len: dst.len(),
                    needed: to.min_len,
                });
            };
            to_row.copy_from_slice(from_row);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The sample values of a test picture: every sample differs from its
    /// neighbours, so a misplaced row or column shows.
    fn luma(x: u32, y: u32) -> u8 {
        (x.wrapping_mul(7) ^ y.wrapping_mul(13)).wrapping_add(1) as u8
    }
    fn cb(x: u32, y: u32) -> u8 {
        (x.wrapping_mul(11) ^ y.wrapping_mul(3)).wrapping_add(101) as u8
    }
    fn cr(x: u32, y: u32) -> u8 {
        (x.wrapping_mul(5) ^ y.wrapping_mul(17)).wrapping_add(203) as u8
    }

    /// Where each sample sits, written out per format from the V4L2 pixel format
    /// documentation (independently of the layout code): (luma x,y), (Cb cx,cy), (Cr cx,cy).
    struct Model {
        format: RawFormat,
        bpl: usize,
        buffer_height: usize,
    }

    impl Model {
        fn luma_at(&self, x: u32, y: u32) -> usize {
            let (x, y) = (x as usize, y as usize);
            match self.format {
                RawFormat::Yuyv => y * self.bpl + (x / 2) * 4 + (x % 2) * 2,
                RawFormat::Uyvy => y * self.bpl + (x / 2) * 4 + 1 + (x % 2) * 2,
                _ => y * self.bpl + x,
            }
        }
        /// Chroma of the pixel pair / 2x2 block at (cx, cy) in chroma coordinates.
        fn cb_at(&self, cx: u32, cy: u32) -> usize {
            self.chroma_at(cx, cy, true)
        }
        fn cr_at(&self, cx: u32, cy: u32) -> usize {
            self.chroma_at(cx, cy, false)
        }
        fn chroma_at(&self, cx: u32, cy: u32, blue: bool) -> usize {
            let (cx, cy) = (cx as usize, cy as usize);
            let luma_size = self.bpl * self.buffer_height;
            let half = self.buffer_height.div_ceil(2);
            match (self.format, blue) {
                (RawFormat::Yuyv, true) => cy * self.bpl + cx * 4 + 1,
                (RawFormat::Yuyv, false) => cy * self.bpl + cx * 4 + 3,
                (RawFormat::Uyvy, true) => cy * self.bpl + cx * 4,
                (RawFormat::Uyvy, false) => cy * self.bpl + cx * 4 + 2,
                (RawFormat::Nv12, true) | (RawFormat::Nv21, false) => {
                    luma_size + cy * self.bpl + cx * 2
                }
                (RawFormat::Nv12, false) | (RawFormat::Nv21, true) => {
                    luma_size + cy * self.bpl + cx * 2 + 1
                }
                (RawFormat::Yu12, true) | (RawFormat::Yv12, false) => {
                    luma_size + cy * (self.bpl / 2) + cx
                }
                (RawFormat::Yu12, false) | (RawFormat::Yv12, true) => {
                    luma_size + half * (self.bpl / 2) + cy * (self.bpl / 2) + cx
                }
            }
        }
        /// Chroma resolution: 4:2:2 halves the width, 4:2:0 both.
        fn chroma_size(&self, width: u32, height: u32) -> (u32, u32) {
            if self.format.is_420() {
                (width.div_ceil(2), height.div_ceil(2))
            } else {
                (width.div_ceil(2), height)
            }
        }
        fn paint(&self, buf: &mut [u8], width: u32, height: u32) {
            for y in 0..height {
                for x in 0..width {
                    buf[self.luma_at(x, y)] = luma(x, y);
                }
            }
            let (cw, ch) = self.chroma_size(width, height);
            for cy in 0..ch {
                for cx in 0..cw {
                    buf[self.cb_at(cx, cy)] = cb(cx, cy);
                    buf[self.cr_at(cx, cy)] = cr(cx, cy);
                }
            }
        }
        fn check(&self, buf: &[u8], width: u32, height: u32) -> Result<(), String> {
            for y in 0..height {
                for x in 0..width {
                    let at = self.luma_at(x, y);
                    if buf[at] != luma(x, y) {
                        return Err(format!("luma ({x},{y}) at {at}"));
                    }
                }
            }
            let (cw, ch) = self.chroma_size(width, height);
            for cy in 0..ch {
                for cx in 0..cw {
                    if buf[self.cb_at(cx, cy)] != cb(cx, cy) {
                        return Err(format!("Cb ({cx},{cy})"));
                    }
                    if buf[self.cr_at(cx, cy)] != cr(cx, cy) {
                        return Err(format!("Cr ({cx},{cy})"));
                    }
                }
            }
            Ok(())
        }
    }

    fn format_strategy() -> impl Strategy<Value = RawFormat> {
        prop::sample::select(RawFormat::ALL.to_vec())
    }

    /// Stride for `format` at `width` with `pad` extra bytes, aligned to `align`,
    /// even for planar 4:2:0 (as every driver gives).
    fn stride(format: RawFormat, width: u32, pad: u32, align: u32) -> u32 {
        let mut row = format.luma_row_bytes(width) as u32;
        if matches!(format, RawFormat::Yu12 | RawFormat::Yv12) {
            row = 2 * width.div_ceil(2);
        }
        (row + pad).next_multiple_of(align)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn every_visible_sample_lands_in_place(
            format in format_strategy(),
            width in 1u32..150,
            height in 1u32..80,
            src_pad in 0u32..70,
            dst_align in prop::sample::select(vec![1u32, 2, 16, 32, 64]),
            dst_extra_rows in prop::sample::select(vec![0u32, 1, 15, 31]),
        ) {
            let src_bpl = stride(format, width, src_pad, 2);
            let dst_bpl = stride(format, width, 0, dst_align.max(2));
            let dst_bh = height + dst_extra_rows;
            let from = PictureLayout::new(format.fourcc(), width, height, src_bpl, height).unwrap();
            let to = PictureLayout::new(format.fourcc(), width, height, dst_bpl, dst_bh).unwrap();
            let src_model = Model { format, bpl: src_bpl as usize, buffer_height: height as usize };
            let dst_model = Model { format, bpl: dst_bpl as usize, buffer_height: dst_bh as usize };

            let mut src = vec![0xEEu8; from.full_len()];
            src_model.paint(&mut src, width, height);
            // Exactly the bytes the layout needs: a copy that reads past them fails.
            let mut dst = vec![0x55u8; to.full_len()];
            copy_picture(&from, &src[..from.min_len()], &to, &mut dst).unwrap();
            prop_assert_eq!(dst_model.check(&dst, width, height), Ok(()));
            // Padding is untouched: count the bytes that changed.
            let copied: usize = to.planes().iter().map(|p| p.rows * p.row_bytes).sum();
            let changed = dst.iter().filter(|&&b| b != 0x55).count();
            prop_assert!(changed <= copied, "{changed} bytes written, {copied} copied");
            prop_assert!(to.min_len() <= to.full_len());
        }

        #[test]
        fn driver_answers_never_panic(
            format in format_strategy(),
            width in 0u32..5000,
            height in 0u32..5000,
            bpl in prop_oneof![0u32..12000, Just(u32::MAX), Just(u32::MAX - 1)],
            sizeimage in prop_oneof![0u32..40_000_000, Just(u32::MAX)],
        ) {
            if let Ok(layout) = PictureLayout::from_driver(format.fourcc(), width, height, bpl, sizeimage) {
                prop_assert!(layout.min_len() as u64 <= u64::from(sizeimage));
                for plane in layout.planes() {
                    prop_assert!(plane.end() <= layout.min_len());
                    prop_assert!(plane.row_bytes <= plane.stride);
                }
                if layout.min_len() < 4_000_000 {
                    let tight = PictureLayout::tight(format.fourcc(), width, height).unwrap();
                    let src = vec![1u8; tight.min_len()];
                    let mut dst = vec![0u8; layout.min_len()];
                    prop_assert!(copy_picture(&tight, &src, &layout, &mut dst).is_ok());
                    // One byte short on either side is refused, not a panic.
                    prop_assert!(copy_picture(&tight, &src[..src.len() - 1], &layout, &mut dst).is_err());
                    let short = dst.len() - 1;
                    prop_assert!(copy_picture(&tight, &src, &layout, &mut dst[..short]).is_err());
                }
            }
        }
    }

    #[test]
    fn bcm2835_codec_sizes_are_understood() {
        // 1280x720 NV12 / YU12 at the encoder's 32 / 64 byte alignment:
        // sizeimage = bpl * height * 3 / 2, chroma right after height rows.
        let nv12 =
            PictureLayout::from_driver(sys::V4L2_PIX_FMT_NV12, 1280, 720, 1280, 1_382_400).unwrap();
        assert_eq!(nv12.buffer_height(), 720);
        assert_eq!(nv12.planes()[1].offset, 1280 * 720);
        let yu12 =
            PictureLayout::from_driver(sys::V4L2_PIX_FMT_YUV420, 1920, 1080, 1920, 3_110_400)
                .unwrap();
        assert_eq!(yu12.planes()[1].offset, 1920 * 1080);
        assert_eq!(yu12.planes()[2].offset, 1920 * 1080 + 960 * 540);
        assert_eq!(yu12.full_len(), 3_110_400);
        // A driver that aligns the buffer height to 16: 1080 -> 1088 rows.
        let aligned = PictureLayout::from_driver(
            sys::V4L2_PIX_FMT_YUV420,
            1920,
            1080,
            1920,
            1920 * 1088 * 3 / 2,
        )
        .unwrap();
        assert_eq!(aligned.buffer_height(), 1088);
        assert_eq!(aligned.planes()[1].offset, 1920 * 1088);
        assert_eq!(aligned.planes()[2].offset, 1920 * 1088 + 960 * 544);
        // 640x480 YUYV at 64-byte alignment: 1280 bytes per row already aligned.
        let yuyv =
            PictureLayout::from_driver(sys::V4L2_PIX_FMT_YUYV, 640, 480, 1280, 614_400).unwrap();
        assert_eq!(yuyv.planes().len(), 1);
        assert_eq!(yuyv.min_len(), 614_400);
    }

    #[test]
    fn inconsistent_driver_answers_are_refused_in_plain_words() {
        let short_rows =
            PictureLayout::from_driver(sys::V4L2_PIX_FMT_YUYV, 640, 480, 640, 614_400).unwrap_err();
        assert_eq!(
            short_rows.to_string(),
            "YUYV at width 640 needs at least 1280 bytes per row, but bytesperline is 640"
        );
        let small = PictureLayout::from_driver(sys::V4L2_PIX_FMT_NV12, 640, 480, 640, 640 * 480)
            .unwrap_err();
        assert_eq!(
            small.to_string(),
            "NV12 640x480 with bytesperline 640 needs 460800 bytes, but sizeimage is 307200"
        );
        let odd = PictureLayout::from_driver(sys::V4L2_PIX_FMT_YUV420, 641, 480, 641, 1_000_000)
            .unwrap_err();
        assert!(odd.to_string().contains("odd"), "{odd}");
        let mjpeg = PictureLayout::from_driver(sys::V4L2_PIX_FMT_MJPEG, 640, 480, 0, 1_000_000)
            .unwrap_err();
        assert!(mjpeg.to_string().contains("MJPG"), "{mjpeg}");
        assert!(matches!(
            PictureLayout::new(sys::V4L2_PIX_FMT_NV12, 0, 480, 640, 480),
            Err(LayoutError::Empty { .. })
        ));
    }

    #[test]
    fn copies_refuse_mismatched_layouts() {
        let a = PictureLayout::tight(sys::V4L2_PIX_FMT_NV12, 64, 32).unwrap();
        let b = PictureLayout::tight(sys::V4L2_PIX_FMT_NV21, 64, 32).unwrap();
        let c = PictureLayout::tight(sys::V4L2_PIX_FMT_NV12, 64, 34).unwrap();
        let src = vec![0u8; a.full_len()];
        let mut dst = vec![0u8; c.full_len()];
        let err = copy_picture(&a, &src, &b, &mut dst).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot copy a NV12 64x32 frame into a NV21 64x32 layout"
        );
        assert!(copy_picture(&a, &src, &c, &mut dst).is_err());
    }
}
