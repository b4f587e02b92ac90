//! Draws the test picture into an I420 buffer (BT.601 limited-range Y'CbCr).
//!
//! Geometry for a W x H picture (integer division, luma pixels), so that tests
//! (also the browser's) can check pixels:
//!
//! - rows `0..H/4`: eight bars ([`BARS`]), bar `i` covers columns `i*W/8..(i+1)*W/8`;
//!   a chroma sample takes the colour of its top-left luma pixel;
//! - everything below is [`BACKGROUND`] (Y 40) except:
//! - the box ([`BOX`], orange): side `S = max(2, H/8 rounded down to even)`, top row
//!   `(H/4 + H/32 + 1)` rounded down to even; its left edge moves by
//!   `step = max(2, W/64 rounded down to even)` per frame, bouncing between 0 and
//!   the largest multiple of `step` not above `W - S`;
//! - three centred text lines in [`TEXT_Y`] (luma only): `HH:MM:SS.mmm UTC`, the
//!   frame counter `#000123`, and `1280x720 30 FPS 3000 KBIT/S`, in a 5x7 font
//!   scaled to `max(1, min(H/60, W/96))` (the first two lines) and about two thirds
//!   of that (the third), with `H/20` between lines. Text is clipped to the picture
//!   and never drawn over the bars.
//!
//! The buffers are allocated once; every frame is drawn from scratch with row fills,
//! which costs about as much as a memset of the picture.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use super::font::{self, ADVANCE, GLYPH_HEIGHT, GLYPH_WIDTH};
use crate::encode::i420::I420Picture;

/// A colour in BT.601 limited-range Y'CbCr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ycbcr {
    /// Luma, 16..=235.
    pub y: u8,
    /// Blue-difference chroma, 16..=240.
    pub cb: u8,
    /// Red-difference chroma, 16..=240.
    pub cr: u8,
}

const fn ycbcr(y: u8, cb: u8, cr: u8) -> Ycbcr {
    Ycbcr { y, cb, cr }
}

/// The eight colour bars of the top quarter, left to right: white, yellow, cyan,
/// green, magenta, red, blue, black (100% bars).
pub const BARS: [Ycbcr; 8] = [
    ycbcr(235, 128, 128),
    ycbcr(210, 16, 146),
    ycbcr(170, 166, 16),
    ycbcr(145, 54, 34),
    ycbcr(106, 202, 222),
    ycbcr(81, 90, 240),
    ycbcr(41, 240, 110),
    ycbcr(16, 128, 128),
];

/// The dark grey background below the bars.
pub const BACKGROUND: Ycbcr = ycbcr(40, 128, 128);

/// The moving box: orange (R 255, G 165, B 0).
pub const BOX: Ycbcr = ycbcr(165, 42, 179);

/// Luma of the text (white; the text has no chroma of its own).
pub const TEXT_Y: u8 = 235;

/// Characters of the clock line, `HH:MM:SS.mmm UTC`: the widest line at the big scale.
const CLOCK_CHARS: usize = 16;

/// Where everything goes, from the picture size. Luma coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// First row below the bars (`height / 4`).
    pub bars_end: usize,
    /// Side of the (square) moving box; even.
    pub box_size: usize,
    /// Top row of the box; even.
    pub box_top: usize,
    /// Largest left edge of the box; a multiple of `box_step`.
    pub box_travel: usize,
    /// How far the box moves per frame; even, at least 2.
    pub box_step: usize,
    /// Pixels per font pixel of the clock and the frame counter.
    pub big_scale: usize,
    /// Pixels per font pixel of the settings line.
    pub small_scale: usize,
    /// Top row of the clock line.
    pub clock_top: usize,
    /// Top row of the frame counter.
    pub counter_top: usize,
    /// Top row of the settings line.
    pub info_top: usize,
}

impl Layout {
    fn new(width: usize, height: usize, info_chars: usize) -> Self {
        let bars_end = height / 4;
        let gap = height / 20;
        let box_size = ((height / 8) & !1).max(2);
        let box_top = (bars_end + height / 32 + 1) & !1;
        let box_step = ((width / 64) & !1).max(2);
        // A whole number of steps, so the box touches both edges.
        let box_travel = width.saturating_sub(box_size) / box_step * box_step;
        let big_scale = (height / 60).min(width / (CLOCK_CHARS * ADVANCE)).max(1);
        let small_scale = (big_scale * 2 / 3)
            .min(width / (info_chars.max(1) * ADVANCE))
            .max(1);
        let clock_top = box_top + box_size + gap;
        let counter_top = clock_top + GLYPH_HEIGHT * big_scale + gap;
        let info_top = counter_top + GLYPH_HEIGHT * big_scale + gap;
        Layout {
            bars_end,
            box_size,
            box_top,
            box_travel,
            box_step,
            big_scale,
            small_scale,
            clock_top,
            counter_top,
            info_top,
        }
    }

    /// Left edge of the box in frame `frame`: back and forth across the picture.
    pub(crate) fn box_left(&self, frame: u64) -> usize {
        if self.box_travel == 0 {
            return 0;
        }
        let lap = 2 * self.box_travel as u128;
        let p = (u128::from(frame) * self.box_step as u128 % lap) as usize;
        if p <= self.box_travel {
            p
        } else {
            2 * self.box_travel - p
        }
    }
}

/// Draws frames of the test pattern into a picture it owns.
#[derive(Debug)]
pub(crate) struct Renderer {
    picture: I420Picture,
    layout: Layout,
    info: String,
    line: String,
}

impl Renderer {
    /// A renderer for `width` x `height` pictures; `info` is the settings line.
    /// Any size works (also odd and tiny ones: the text is clipped).
    pub(crate) fn new(width: usize, height: usize, info: String) -> Self {
        let layout = Layout::new(width, height, info.chars().count());
        Renderer {
            picture: I420Picture::new(width, height),
            layout,
            info,
            line: String::with_capacity(32),
        }
    }

    /// The picture drawn last.
    pub(crate) fn picture(&self) -> &I420Picture {
        &self.picture
    }

    /// Where things are drawn.
    #[cfg(test)]
    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Draws frame number `frame`, showing `now` as the clock.
    pub(crate) fn render(&mut self, frame: u64, now: SystemTime) {
        self.draw_background();
        self.draw_box(frame);

        let big = self.layout.big_scale;
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        write_clock(&mut line, now);
        self.draw_text(&line, self.layout.clock_top, big);
        line.clear();
        // Writing into a String cannot fail.
        let _ = write!(line, "#{frame:06}");
        self.draw_text(&line, self.layout.counter_top, big);
        self.line = line;

        let info = std::mem::take(&mut self.info);
        self.draw_text(&info, self.layout.info_top, self.layout.small_scale);
        self.info = info;
    }

    /// Bars over the top quarter, background below.
    fn draw_background(&mut self) {
        let (w, h) = self.picture.size();
        let bars_end = self.layout.bars_end.min(h);
        let bar_edge = |i: usize| i * w / BARS.len();
        if bars_end > 0 {
            for (i, bar) in BARS.iter().enumerate() {
                self.picture
                    .fill_luma(bar_edge(i), 0, bar_edge(i + 1), 1, bar.y);
            }
            if let Some((first, rest)) = self.picture.luma_mut().split_at_mut_checked(w) {
                for row in rest.chunks_exact_mut(w.max(1)).take(bars_end - 1) {
                    row.copy_from_slice(first);
                }
            }
        }
        self.picture.fill_luma(0, bars_end, w, h, BACKGROUND.y);

        // A chroma row belongs to the bars when its top luma row does; a chroma
        // column belongs to the bar holding its left luma column.
        let chroma_bars_end = bars_end.div_ceil(2);
        for (i, bar) in BARS.iter().enumerate() {
            let left = bar_edge(i).div_ceil(2);
            let right = bar_edge(i + 1).div_ceil(2);
            self.picture
                .fill_chroma((left, 0, right, chroma_bars_end), bar.cb, bar.cr);
        }
        self.picture.fill_chroma(
            (0, chroma_bars_end, w.div_ceil(2), h.div_ceil(2)),
            BACKGROUND.cb,
            BACKGROUND.cr,
        );
    }

    fn draw_box(&mut self, frame: u64) {
        let l = self.layout;
        let left = l.box_left(frame);
        let top = l.box_top;
        // Never over the bars, even on tiny pictures.
        let top = top.max(l.bars_end);
        let (right, bottom) = (left + l.box_size, l.box_top + l.box_size);
        self.picture.fill_luma(left, top, right, bottom, BOX.y);
        self.picture.fill_chroma(
            (left.div_ceil(2), top.div_ceil(2), right / 2, bottom / 2),
            BOX.cb,
            BOX.cr,
        );
    }

    /// Draws `text` horizontally centred with its top at `top`, luma only, clipped
    /// to the picture below the bars.
    fn draw_text(&mut self, text: &str, top: usize, scale: usize) {
        let (width, _) = self.picture.size();
        let left = width.saturating_sub(font::text_width(text, scale)) / 2;
        let floor = self.layout.bars_end;
        for (i, c) in text.chars().enumerate() {
            let glyph = font::glyph(c);
            let x0 = left + i * ADVANCE * scale;
            if x0 >= width {
                break;
            }
            for row in 0..GLYPH_HEIGHT {
                let y = top + row * scale;
                if y < floor {
                    continue;
                }
                // Runs of set pixels become one fill each.
                let mut col = 0;
                while col < GLYPH_WIDTH {
                    if !font::is_set(glyph, col, row) {
                        col += 1;
                        continue;
                    }
                    let start = col;
                    while col < GLYPH_WIDTH && font::is_set(glyph, col, row) {
                        col += 1;
                    }
                    self.picture.fill_luma(
                        x0 + start * scale,
                        y,
                        x0 + col * scale,
                        y + scale,
                        TEXT_Y,
                    );
                }
            }
        }
    }
}

/// Appends `HH:MM:SS.mmm UTC` for `now` (times before 1970 show as midnight).
pub(crate) fn write_clock(out: &mut String, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() % 86_400;
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}.{:03} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        since.subsec_millis()
    );
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Reading the picture back, in the renderer's colours.
    trait Pixel {
        /// The colour at luma position (`x`, `y`): its luma and the chroma sample
        /// covering it. `None` outside the picture.
        fn pixel(&self, x: usize, y: usize) -> Option<Ycbcr>;
    }

    impl Pixel for I420Picture {
        fn pixel(&self, x: usize, y: usize) -> Option<Ycbcr> {
            let ((width, height), (chroma_width, _)) = (self.size(), self.chroma_size());
            if x >= width || y >= height {
                return None;
            }
            let c = (y / 2) * chroma_width + x / 2;
            Some(Ycbcr {
                y: *self.luma().get(y * width + x)?,
                cb: *self.cb().get(c)?,
                cr: *self.cr().get(c)?,
            })
        }
    }

    fn render(w: usize, h: usize, frame: u64, at_ms: u64) -> Renderer {
        let mut r = Renderer::new(w, h, format!("{w}x{h} 30 FPS 3000 KBIT/S"));
        r.render(frame, UNIX_EPOCH + Duration::from_millis(at_ms));
        r
    }

    #[test]
    fn bars_have_their_colours_at_their_centres() {
        for (w, h) in [(1280, 720), (320, 240), (640, 480), (1920, 1080), (100, 50)] {
            let r = render(w, h, 7, 0);
            for (i, bar) in BARS.iter().enumerate() {
                let x = (2 * i + 1) * w / 16;
                for y in [0, h / 8, h / 4 - 1] {
                    assert_eq!(
                        r.picture().pixel(x, y),
                        Some(*bar),
                        "{w}x{h} bar {i} row {y}"
                    );
                }
            }
            // Just below the bars: background.
            assert_eq!(r.picture().pixel(w - 1, h / 4), Some(BACKGROUND), "{w}x{h}");
        }
    }

    #[test]
    fn bar_edges_are_exact_in_luma() {
        let (w, h) = (1280, 720);
        let r = render(w, h, 0, 0);
        for i in 1..BARS.len() {
            let edge = i * w / 8;
            assert_eq!(
                r.picture().pixel(edge - 1, 10).map(|p| p.y),
                Some(BARS[i - 1].y)
            );
            assert_eq!(r.picture().pixel(edge, 10).map(|p| p.y), Some(BARS[i].y));
        }
    }

    #[test]
    fn the_box_moves_between_frames() {
        let (w, h) = (1280, 720);
        let a = render(w, h, 10, 0);
        let b = render(w, h, 11, 0);
        let l = *a.layout();
        let (xa, xb) = (l.box_left(10), l.box_left(11));
        assert_ne!(xa, xb);
        let mid = l.box_top + l.box_size / 2;
        assert_eq!(a.picture().pixel(xa + 1, mid), Some(BOX));
        assert_eq!(a.picture().pixel(xa + l.box_size - 1, mid), Some(BOX));
        assert_eq!(a.picture().pixel(xa + l.box_size, mid), Some(BACKGROUND));
        assert_eq!(b.picture().pixel(xb + 1, mid), Some(BOX));
        // Below the bars the frames differ, the bars do not.
        let bars = w * l.bars_end;
        assert_eq!(a.picture().luma()[..bars], b.picture().luma()[..bars]);
        assert_ne!(a.picture().luma()[bars..], b.picture().luma()[bars..]);
    }

    #[test]
    fn the_box_bounces_within_the_picture() {
        let l = Layout::new(320, 240, 10);
        let mut seen_left = false;
        let mut seen_right = false;
        for frame in 0..10_000 {
            let x = l.box_left(frame);
            assert!(x + l.box_size <= 320, "frame {frame}: {x}");
            assert_eq!(x % 2, 0);
            seen_left |= x == 0;
            seen_right |= x == l.box_travel;
        }
        assert!(seen_left && seen_right);
        // No overflow for huge frame numbers.
        let _ = l.box_left(u64::MAX);
    }

    #[test]
    fn clock_text() {
        let mut s = String::new();
        write_clock(
            &mut s,
            UNIX_EPOCH + Duration::from_millis(86_400_000 + 45_296_789),
        );
        assert_eq!(s, "12:34:56.789 UTC");
        s.clear();
        write_clock(&mut s, UNIX_EPOCH - Duration::from_secs(5));
        assert_eq!(s, "00:00:00.000 UTC");
    }

    /// The clock line's pixels are exactly the font's glyphs at the big scale.
    #[test]
    fn clock_digits_are_drawn_and_change() {
        let (w, h) = (1280, 720);
        let a = render(w, h, 0, 45_296_789); // 12:34:56.789
        let b = render(w, h, 0, 45_297_790); // 12:34:57.790
        let l = *a.layout();
        let s = l.big_scale;
        let left = (w - font::text_width("12:34:56.789 UTC", s)) / 2;
        // Character 7 is the seconds' last digit: '6' in a, '7' in b.
        let x0 = left + 7 * ADVANCE * s;
        for (r, c) in [(&a, '6'), (&b, '7')] {
            for row in 0..GLYPH_HEIGHT {
                for col in 0..GLYPH_WIDTH {
                    let px = r
                        .picture()
                        .pixel(x0 + col * s + s / 2, l.clock_top + row * s + s / 2);
                    let want = if font::is_set(font::glyph(c), col, row) {
                        TEXT_Y
                    } else {
                        BACKGROUND.y
                    };
                    assert_eq!(px.map(|p| p.y), Some(want), "{c} col {col} row {row}");
                }
            }
        }
        let rows = l.clock_top * w..(l.clock_top + GLYPH_HEIGHT * s) * w;
        assert_ne!(a.picture().luma()[rows.clone()], b.picture().luma()[rows]);
    }

    #[test]
    fn frame_counter_changes() {
        let (w, h) = (320, 240);
        let a = render(w, h, 123_456, 0);
        let b = render(w, h, 123_457, 0);
        let l = *a.layout();
        let rows = l.counter_top * w..(l.counter_top + GLYPH_HEIGHT * l.big_scale) * w;
        assert_ne!(
            a.picture().luma()[rows.clone()],
            b.picture().luma()[rows.clone()]
        );
        assert!(a.picture().luma()[rows].contains(&TEXT_Y));
    }

    #[test]
    fn text_stays_inside_the_picture_at_common_sizes() {
        for (w, h) in [
            (320, 240),
            (640, 480),
            (1280, 720),
            (1920, 1080),
            (3840, 2160),
            (480, 640),
        ] {
            let l = Layout::new(w, h, 30);
            assert!(
                l.info_top + GLYPH_HEIGHT * l.small_scale <= h,
                "{w}x{h} {l:?}"
            );
            assert!(
                font::text_width("12:34:56.789 UTC", l.big_scale) <= w,
                "{w}x{h}"
            );
            assert!(l.box_top >= l.bars_end && l.box_top + l.box_size < l.clock_top);
        }
    }

    #[test]
    fn any_size_renders_without_panic_and_keeps_bars_clean() {
        let sizes = [
            (0, 0),
            (1, 1),
            (2, 2),
            (3, 5),
            (15, 17),
            (16, 16),
            (18, 22),
            (17, 4096),
            (4096, 16),
            (4096, 4096),
        ];
        for (w, h) in sizes {
            let mut r = Renderer::new(w, h, "4096x4096 30 FPS 100000 KBIT/S".into());
            for frame in [0, 1, 1000, u64::MAX] {
                r.render(frame, SystemTime::now());
            }
            let bars_end = r.layout().bars_end;
            for y in 0..bars_end {
                for (i, bar) in BARS.iter().enumerate() {
                    let x = (2 * i + 1) * w / 16;
                    // On very narrow pictures some bars are less than a pixel wide.
                    if i * w / 8 <= x && x < (i + 1) * w / 8 {
                        let p = r.picture().pixel(x, y).map(|p| p.y);
                        assert_eq!(p, Some(bar.y), "{w}x{h} ({x},{y})");
                    }
                }
            }
        }
    }
}
