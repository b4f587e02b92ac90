//! One planar 4:2:0 picture (I420: Y, then Cb, then Cr, tight rows), which is what
//! the software encoder takes: the test pattern draws into it with rectangle
//! fills, and every raw webcam format of [`raw_picture`](super::raw_picture) is
//! converted into it. Pure: no I/O; the picture's memory is allocated once and
//! reused.
//!
//! Packed 4:2:2 (YUYV, UYVY) loses half its chroma rows: each chroma row of the
//! picture is the average of two source rows, rounded.

use openh264::formats::YUVSource;

use super::raw_picture::{LayoutError, PictureLayout, Plane, RawFormat};

/// A planar 4:2:0 picture with tight rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I420Picture {
    width: usize,
    height: usize,
    y: Vec<u8>,
    cb: Vec<u8>,
    cr: Vec<u8>,
}

impl I420Picture {
    /// A black picture of `width` x `height` pixels (chroma halved both ways,
    /// rounded up).
    pub fn new(width: usize, height: usize) -> I420Picture {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        I420Picture {
            width,
            height,
            y: vec![16; width * height],
            cb: vec![128; cw * ch],
            cr: vec![128; cw * ch],
        }
    }

    /// Width and height in pixels.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// Width and height of the chroma planes.
    pub fn chroma_size(&self) -> (usize, usize) {
        (self.width.div_ceil(2), self.height.div_ceil(2))
    }

    /// The luma plane to draw into, `width` bytes per row.
    pub fn luma_mut(&mut self) -> &mut [u8] {
        &mut self.y
    }

    /// Fills luma rows `top..bottom`, columns `left..right`, clipped to the picture.
    pub fn fill_luma(&mut self, left: usize, top: usize, right: usize, bottom: usize, value: u8) {
        let right = right.min(self.width);
        let bottom = bottom.min(self.height);
        if left >= right {
            return;
        }
        for row in top..bottom {
            let start = row * self.width;
            if let Some(span) = self.y.get_mut(start + left..start + right) {
                span.fill(value);
            }
        }
    }

    /// Fills chroma rows `top..bottom`, columns `left..right` (chroma coordinates)
    /// with `cb` and `cr`, clipped to the picture.
    pub fn fill_chroma(
        &mut self,
        (left, top, right, bottom): (usize, usize, usize, usize),
        cb: u8,
        cr: u8,
    ) {
        let (cw, ch) = self.chroma_size();
        let right = right.min(cw);
        let bottom = bottom.min(ch);
        if left >= right {
            return;
        }
        for row in top..bottom {
            let span = row * cw + left..row * cw + right;
            if let Some(s) = self.cb.get_mut(span.clone()) {
                s.fill(cb);
            }
            if let Some(s) = self.cr.get_mut(span) {
                s.fill(cr);
            }
        }
    }

    /// The luma plane, `width` bytes per row.
    pub fn luma(&self) -> &[u8] {
        &self.y
    }

    /// The blue-difference plane, `chroma width` bytes per row.
    pub fn cb(&self) -> &[u8] {
        &self.cb
    }

    /// The red-difference plane.
    pub fn cr(&self) -> &[u8] {
        &self.cr
    }

    /// Converts one frame `src`, laid out as `from`, into this picture. The sizes
    /// must match; a short frame is an error, never a panic.
    pub fn fill_from(&mut self, from: &PictureLayout, src: &[u8]) -> Result<(), LayoutError> {
        if (from.width() as usize, from.height() as usize) != (self.width, self.height) {
            return Err(LayoutError::Mismatch {
                from: format!(
                    "{} {}x{}",
                    from.format().name(),
                    from.width(),
                    from.height()
                ),
                to: format!("I420 {}x{}", self.width, self.height),
            });
        }
        if src.len() < from.min_len() {
            return Err(LayoutError::BufferTooShort {
                which: "source",
                len: src.len(),
                needed: from.min_len(),
            });
        }
        let short = || LayoutError::BufferTooShort {
            which: "source",
            len: src.len(),
            needed: from.min_len(),
        };
        let planes = from.planes();
        let plane = |i: usize| planes.get(i).copied().ok_or_else(short);
        let (cw, ch) = self.chroma_size();
        let width = self.width;
        match from.format() {
            RawFormat::Yuyv | RawFormat::Uyvy => {
                // Byte positions inside each 4-byte pixel pair.
                let (y0, cb, y1, cr) = if from.format() == RawFormat::Yuyv {
                    (0, 1, 2, 3)
                } else {
                    (1, 0, 3, 2)
                };
                let packed = plane(0)?;
                let pairs = width / 2;
                for (row, luma) in self.y.chunks_exact_mut(width).enumerate() {
                    let line = row_of(src, &packed, row).ok_or_else(short)?;
                    let quads = line.get(..pairs * 4).ok_or_else(short)?;
                    for (out, quad) in luma.chunks_exact_mut(2).zip(quads.chunks_exact(4)) {
                        out[0] = quad[y0];
                        out[1] = quad[y1];
                    }
                    if width % 2 == 1 {
                        // The last pixel of an odd row is the first of a pair.
                        let last = line.get(pairs * 4 + y0).copied().ok_or_else(short)?;
                        if let Some(out) = luma.last_mut() {
                            *out = last;
                        }
                    }
                }
                for cy in 0..ch {
                    let top = row_of(src, &packed, 2 * cy).ok_or_else(short)?;
                    // The last chroma row of an odd height has one source row.
                    let bottom = row_of(src, &packed, (2 * cy + 1).min(self.height - 1))
                        .ok_or_else(short)?;
                    let (top, bottom) = (
                        top.get(..cw * 4).ok_or_else(short)?,
                        bottom.get(..cw * 4).ok_or_else(short)?,
                    );
                    let rows = cy * cw..(cy + 1) * cw;
                    let (Some(out_cb), Some(out_cr)) =
                        (self.cb.get_mut(rows.clone()), self.cr.get_mut(rows))
                    else {
                        return Err(short());
                    };
                    let mean = |a: u8, b: u8| (u16::from(a) + u16::from(b)).div_ceil(2) as u8;
                    for (((b, r), t), u) in out_cb
                        .iter_mut()
                        .zip(out_cr.iter_mut())
                        .zip(top.chunks_exact(4))
                        .zip(bottom.chunks_exact(4))
                    {
                        *b = mean(t[cb], u[cb]);
                        *r = mean(t[cr], u[cr]);
                    }
                }
            }
            RawFormat::Nv12 | RawFormat::Nv21 => {
                copy_rows(src, &plane(0)?, &mut self.y, width).ok_or_else(short)?;
                let (cb_at, cr_at) = if from.format() == RawFormat::Nv12 {
                    (0, 1)
                } else {
                    (1, 0)
                };
                let interleaved = plane(1)?;
                for cy in 0..ch {
                    let line = row_of(src, &interleaved, cy).ok_or_else(short)?;
                    for cx in 0..cw {
                        let i = cy * cw + cx;
                        let b = line.get(2 * cx + cb_at).copied().ok_or_else(short)?;
                        let r = line.get(2 * cx + cr_at).copied().ok_or_else(short)?;
                        if let (Some(out_cb), Some(out_cr)) =
                            (self.cb.get_mut(i), self.cr.get_mut(i))
                        {
                            *out_cb = b;
                            *out_cr = r;
                        }
                    }
                }
            }
            RawFormat::Yu12 | RawFormat::Yv12 => {
                copy_rows(src, &plane(0)?, &mut self.y, width).ok_or_else(short)?;
                let (first, second) = (plane(1)?, plane(2)?);
                let (cb_plane, cr_plane) = if from.format() == RawFormat::Yu12 {
                    (first, second)
                } else {
                    (second, first)
                };
                copy_rows(src, &cb_plane, &mut self.cb, cw).ok_or_else(short)?;
                copy_rows(src, &cr_plane, &mut self.cr, cw).ok_or_else(short)?;
            }
        }
        Ok(())
    }
}

/// Row `row` of `plane` in `src`: its visible bytes.
fn row_of<'a>(src: &'a [u8], plane: &Plane, row: usize) -> Option<&'a [u8]> {
    let start = plane.offset.checked_add(row.checked_mul(plane.stride)?)?;
    src.get(start..start.checked_add(plane.row_bytes)?)
}

/// Copies `plane`'s rows into `out`, `row_len` bytes per row.
fn copy_rows(src: &[u8], plane: &Plane, out: &mut [u8], row_len: usize) -> Option<()> {
    if row_len == 0 {
        return Some(());
    }
    for (row, line) in out.chunks_exact_mut(row_len).enumerate() {
        let from = row_of(src, plane, row)?;
        line.copy_from_slice(from.get(..row_len)?);
    }
    Some(())
}

impl YUVSource for I420Picture {
    fn dimensions(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn strides(&self) -> (usize, usize, usize) {
        let (cw, _) = self.chroma_size();
        (self.width, cw, cw)
    }

    fn y(&self) -> &[u8] {
        &self.y
    }

    fn u(&self) -> &[u8] {
        &self.cb
    }

    fn v(&self) -> &[u8] {
        &self.cr
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v4l2::sys;
    use proptest::prelude::*;

    fn luma(x: usize, y: usize) -> u8 {
        ((x * 7) ^ (y * 13)) as u8
    }
    fn cb(x: usize, y: usize) -> u8 {
        ((x * 11) ^ (y * 3)).wrapping_add(101) as u8
    }
    fn cr(x: usize, y: usize) -> u8 {
        ((x * 5) ^ (y * 17)).wrapping_add(203) as u8
    }

    /// A frame of `format` with tight rows (plus `pad` bytes per row), written from
    /// the V4L2 format documentation, independently of the layout code. For 4:2:2,
    /// (cx, y) is the chroma sample of pixel pair cx on row y.
    fn frame(format: RawFormat, w: usize, h: usize, pad: usize) -> (PictureLayout, Vec<u8>) {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let mut out = Vec::new();
        let bpl;
        match format {
            RawFormat::Yuyv | RawFormat::Uyvy => {
                bpl = cw * 4 + pad;
                for y in 0..h {
                    let mut row = vec![0u8; bpl];
                    for cx in 0..cw {
                        let (y0, y1) = (luma(2 * cx, y), luma((2 * cx + 1).min(w - 1), y));
                        let quad = if format == RawFormat::Yuyv {
                            [y0, cb(cx, y), y1, cr(cx, y)]
                        } else {
                            [cb(cx, y), y0, cr(cx, y), y1]
                        };
                        row[cx * 4..cx * 4 + 4].copy_from_slice(&quad);
                    }
                    out.extend_from_slice(&row);
                }
            }
            RawFormat::Nv12 | RawFormat::Nv21 => {
                bpl = 2 * cw + pad;
                for y in 0..h {
                    let mut row = vec![0u8; bpl];
                    for (x, sample) in row.iter_mut().take(w).enumerate() {
                        *sample = luma(x, y);
                    }
                    out.extend_from_slice(&row);
                }
                for cy in 0..ch {
                    let mut row = vec![0u8; bpl];
                    for cx in 0..cw {
                        let (first, second) = if format == RawFormat::Nv12 {
                            (cb(cx, cy), cr(cx, cy))
                        } else {
                            (cr(cx, cy), cb(cx, cy))
                        };
                        row[2 * cx] = first;
                        row[2 * cx + 1] = second;
                    }
                    out.extend_from_slice(&row);
                }
            }
            RawFormat::Yu12 | RawFormat::Yv12 => {
                bpl = 2 * cw + pad * 2;
                let cbpl = bpl / 2;
                for y in 0..h {
                    let mut row = vec![0u8; bpl];
                    for (x, sample) in row.iter_mut().take(w).enumerate() {
                        *sample = luma(x, y);
                    }
                    out.extend_from_slice(&row);
                }
                let planes: [fn(usize, usize) -> u8; 2] = if format == RawFormat::Yu12 {
                    [cb, cr]
                } else {
                    [cr, cb]
                };
                for sample in planes {
                    for cy in 0..ch {
                        let mut row = vec![0u8; cbpl];
                        for (cx, value) in row.iter_mut().take(cw).enumerate() {
                            *value = sample(cx, cy);
                        }
                        out.extend_from_slice(&row);
                    }
                }
            }
        }
        let layout = PictureLayout::new(format.fourcc(), w as u32, h as u32, bpl as u32, h as u32)
            .expect("a valid layout");
        (layout, out)
    }

    fn check(format: RawFormat, w: usize, h: usize, pad: usize) {
        let (layout, data) = frame(format, w, h, pad);
        let mut picture = I420Picture::new(w, h);
        picture.fill_from(&layout, &data).unwrap();
        for y in 0..h {
            for x in 0..w {
                assert_eq!(picture.y[y * w + x], luma(x, y), "{format:?} luma {x},{y}");
            }
        }
        let (cw, ch) = picture.chroma_size();
        for cy in 0..ch {
            for cx in 0..cw {
                let (want_cb, want_cr) = if format.is_420() {
                    (cb(cx, cy), cr(cx, cy))
                } else {
                    let below = (2 * cy + 1).min(h - 1);
                    let mean = |f: fn(usize, usize) -> u8| {
                        (u16::from(f(cx, 2 * cy)) + u16::from(f(cx, below))).div_ceil(2) as u8
                    };
                    (mean(cb), mean(cr))
                };
                assert_eq!(picture.cb[cy * cw + cx], want_cb, "{format:?} cb {cx},{cy}");
                assert_eq!(picture.cr[cy * cw + cx], want_cr, "{format:?} cr {cx},{cy}");
            }
        }
    }

    #[test]
    fn every_format_converts_sample_for_sample() {
        for format in RawFormat::ALL {
            check(format, 16, 8, 0);
            check(format, 34, 10, 12);
            check(format, 15, 7, 3);
            check(format, 1, 1, 0);
        }
    }

    proptest! {
        #[test]
        fn any_even_size_and_padding_converts(
            half_w in 1usize..40,
            half_h in 1usize..30,
            pad in 0usize..40,
            format in proptest::sample::select(RawFormat::ALL.to_vec()),
        ) {
            check(format, half_w * 2, half_h * 2, pad);
        }
    }

    #[test]
    fn short_or_mismatched_frames_are_errors() {
        let (layout, data) = frame(RawFormat::Yuyv, 16, 8, 0);
        let mut picture = I420Picture::new(16, 8);
        assert!(matches!(
            picture.fill_from(&layout, &data[..data.len() - 1]),
            Err(LayoutError::BufferTooShort { .. })
        ));
        let mut other = I420Picture::new(18, 8);
        assert!(matches!(
            other.fill_from(&layout, &data),
            Err(LayoutError::Mismatch { .. })
        ));
        let nv12 = PictureLayout::tight(sys::V4L2_PIX_FMT_NV12, 16, 8).unwrap();
        let mut picture = I420Picture::new(16, 8);
        assert!(picture.fill_from(&nv12, &[]).is_err());
    }
}
