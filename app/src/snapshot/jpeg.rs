//! A decoded 4:2:0 picture as a baseline JPEG (JFIF), with the `jpeg-encoder` crate.
//!
//! Straight from the planes: the video's Y'CbCr is what JPEG stores, so there is no
//! RGB round trip. JPEG keeps chroma at half size both ways (2x2 sampling, the
//! encoder taking each block's top-left sample), so each chroma sample is handed
//! over twice per row and comes out unchanged. Only the range differs: video is
//! usually limited range (luma 16..=235, chroma 16..=240) and JFIF full range, so
//! samples go through a lookup table unless the stream is full range already. Pure:
//! a picture in, bytes out.

use jpeg_encoder::{ChromaSubsamplingMethod, Encoder, ImageBuffer, JpegColorType, SamplingFactor};

use super::decode::Picture;

/// The quality used for snapshots: sharp text and edges at about a tenth of the
/// picture's raw size.
pub const QUALITY: u8 = 85;

/// Why a picture could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum JpegError {
    /// JPEG stores sizes in 16 bits.
    #[error("a {width}x{height} picture is too large for JPEG")]
    TooLarge {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
    },
    /// The planes are smaller than the size says.
    #[error("the picture's planes are too small for {width}x{height}")]
    ShortPlanes {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
    },
    /// The encoder failed.
    #[error("JPEG encoding failed: {0}")]
    Encode(String),
}

/// Encodes `picture` at `quality` (1..=100) as a JPEG file.
pub fn encode(picture: &Picture<'_>, quality: u8) -> Result<Vec<u8>, JpegError> {
    let (width, height) = (picture.width, picture.height);
    let too_large = |_| JpegError::TooLarge { width, height };
    let w16 = u16::try_from(width).map_err(too_large)?;
    let h16 = u16::try_from(height).map_err(too_large)?;
    if w16 == 0 || h16 == 0 {
        return Err(JpegError::Encode(format!("empty picture {width}x{height}")));
    }
    let (chroma_width, chroma_height) = (width.div_ceil(2), height.div_ceil(2));
    let fits = |plane: &[u8], stride: usize, w: usize, h: usize| {
        stride >= w && plane.len() >= (h - 1) * stride + w
    };
    if !fits(picture.y, picture.y_stride, width, height)
        || !fits(
            picture.cb,
            picture.chroma_stride,
            chroma_width,
            chroma_height,
        )
        || !fits(
            picture.cr,
            picture.chroma_stride,
            chroma_width,
            chroma_height,
        )
    {
        return Err(JpegError::ShortPlanes { width, height });
    }
    let mut out = Vec::with_capacity(width * height / 4);
    let mut encoder = Encoder::new(&mut out, quality.clamp(1, 100));
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    encoder.set_chroma_subsampling_method(ChromaSubsamplingMethod::Nearest);
    encoder
        .encode_image(Planes::new(picture, w16, h16))
        .map_err(|error| JpegError::Encode(error.to_string()))?;
    Ok(out)
}

/// The picture as the encoder reads it: row by row, chroma repeated to full width,
/// samples mapped to full range.
struct Planes<'a> {
    picture: &'a Picture<'a>,
    width: u16,
    height: u16,
    luma: [u8; 256],
    chroma: [u8; 256],
}

impl<'a> Planes<'a> {
    fn new(picture: &'a Picture<'a>, width: u16, height: u16) -> Self {
        let (luma, chroma) = if picture.full_range {
            (identity(), identity())
        } else {
            (range_table(16, 219), range_table(128 - 112, 224))
        };
        Planes {
            picture,
            width,
            height,
            luma,
            chroma,
        }
    }
}

fn identity() -> [u8; 256] {
    std::array::from_fn(|i| i as u8)
}

/// Maps `low..=low+span` onto 0..=255, rounding and clamping.
fn range_table(low: i32, span: i32) -> [u8; 256] {
    std::array::from_fn(|i| {
        let scaled = ((i as i32 - low) * 255 * 2 + span) / (span * 2);
        scaled.clamp(0, 255) as u8
    })
}

impl ImageBuffer for Planes<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.width
    }

    fn height(&self) -> u16 {
        self.height
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let p = self.picture;
        let width = usize::from(self.width);
        let row = usize::from(y);
        let luma = &p.y[row * p.y_stride..][..width];
        buffers[0].extend(luma.iter().map(|&v| self.luma[usize::from(v)]));
        let chroma_row = row / 2 * p.chroma_stride;
        for (plane, buffer) in [(p.cb, 1), (p.cr, 2)] {
            let samples = &plane[chroma_row..][..width.div_ceil(2)];
            let out = &mut buffers[buffer];
            for &v in samples {
                let v = self.chroma[usize::from(v)];
                out.push(v);
                out.push(v);
            }
            // An odd width: the last sample was repeated once too often.
            out.truncate(out.len() - (width % 2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A limited-range picture of `w` x `h` with strides wider than the rows.
    fn picture_planes(w: usize, h: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>, usize, usize) {
        let (ys, cs) = (w + 7, w.div_ceil(2) + 5);
        let mut y = vec![0u8; ys * h];
        let mut cb = vec![0u8; cs * h.div_ceil(2)];
        let mut cr = cb.clone();
        for row in 0..h {
            for x in 0..w {
                // Left half white, right half black; a red square bottom right.
                y[row * ys + x] = if x < w / 2 { 235 } else { 16 };
            }
        }
        for row in 0..h.div_ceil(2) {
            for x in 0..w.div_ceil(2) {
                let red = x >= w / 4 && row >= h / 4 && x < w / 2;
                cb[row * cs + x] = if red { 90 } else { 128 };
                cr[row * cs + x] = if red { 240 } else { 128 };
            }
        }
        (y, cb, cr, ys, cs)
    }

    #[test]
    fn the_range_tables_map_limited_range_onto_full_range() {
        let luma = range_table(16, 219);
        assert_eq!(
            (luma[0], luma[16], luma[126], luma[235], luma[255]),
            (0, 0, 128, 255, 255)
        );
        let chroma = range_table(16, 224);
        assert_eq!((chroma[16], chroma[128], chroma[240]), (0, 128, 255));
    }

    #[test]
    fn encodes_a_jfif_file_of_the_pictures_size_even_odd_sizes() {
        for (w, h) in [(64, 48), (33, 17), (1, 1)] {
            let (y, cb, cr, ys, cs) = picture_planes(w, h);
            let picture = Picture {
                width: w,
                height: h,
                y: &y,
                y_stride: ys,
                cb: &cb,
                cr: &cr,
                chroma_stride: cs,
                full_range: false,
            };
            let jpeg = encode(&picture, QUALITY).unwrap();
            assert_eq!(&jpeg[..3], [0xff, 0xd8, 0xff], "SOI");
            assert_eq!(&jpeg[jpeg.len() - 2..], [0xff, 0xd9], "EOI");
            // The SOF0 segment carries height and width.
            let sof = jpeg
                .windows(2)
                .position(|m| m == [0xff, 0xc0])
                .expect("SOF0");
            let size = |at: usize| usize::from(u16::from_be_bytes([jpeg[at], jpeg[at + 1]]));
            assert_eq!((size(sof + 7), size(sof + 5)), (w, h));
        }
    }

    #[test]
    fn short_planes_and_huge_pictures_are_errors() {
        let (y, cb, cr, ys, cs) = picture_planes(64, 48);
        let mut picture = Picture {
            width: 64,
            height: 48,
            y: &y[..100],
            y_stride: ys,
            cb: &cb,
            cr: &cr,
            chroma_stride: cs,
            full_range: false,
        };
        assert!(matches!(
            encode(&picture, QUALITY),
            Err(JpegError::ShortPlanes { .. })
        ));
        picture.y = &y;
        picture.width = 70_000;
        assert!(matches!(
            encode(&picture, QUALITY),
            Err(JpegError::TooLarge { .. })
        ));
    }
}
