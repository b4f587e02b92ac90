//! A small home-made 5x7 bitmap font: digits, upper-case letters and a little
//! punctuation, enough for the clock, the frame counter and the settings line.
//!
//! Each glyph is seven rows, top first; in each row bit 4 is the leftmost pixel.

/// Glyph width in pixels.
pub(crate) const GLYPH_WIDTH: usize = 5;
/// Glyph height in pixels.
pub(crate) const GLYPH_HEIGHT: usize = 7;
/// Horizontal advance from one character to the next (glyph plus one blank column).
pub(crate) const ADVANCE: usize = GLYPH_WIDTH + 1;

/// One glyph: seven rows of five bits.
pub(crate) type Glyph = [u8; GLYPH_HEIGHT];

const SPACE: Glyph = [0; GLYPH_HEIGHT];

/// The glyph for `c`. Lower-case letters use the upper-case shapes, except `x`,
/// which has its own (as in `1280x720`). Characters the font lacks come out blank.
pub(crate) fn glyph(c: char) -> &'static Glyph {
    match c {
        '0' => &[
            0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110,
        ],
        '1' => &[
            0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110,
        ],
        '2' => &[
            0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111,
        ],
        '3' => &[
            0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110,
        ],
        '4' => &[
            0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010,
        ],
        '5' => &[
            0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110,
        ],
        '6' => &[
            0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110,
        ],
        '7' => &[
            0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000,
        ],
        '8' => &[
            0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110,
        ],
        '9' => &[
            0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100,
        ],
        ':' => &[
            0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000,
        ],
        '.' => &[
            0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100,
        ],
        '#' => &[
            0b01010, 0b01010, 0b11111, 0b01010, 0b11111, 0b01010, 0b01010,
        ],
        'x' => &[
            0b00000, 0b00000, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001,
        ],
        '/' => &[
            0b00001, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b10000,
        ],
        '-' => &[
            0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000,
        ],
        'A' | 'a' => &[
            0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001,
        ],
        'B' | 'b' => &[
            0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110,
        ],
        'C' | 'c' => &[
            0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110,
        ],
        'D' | 'd' => &[
            0b11110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11110,
        ],
        'E' | 'e' => &[
            0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111,
        ],
        'F' | 'f' => &[
            0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000,
        ],
        'G' | 'g' => &[
            0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111,
        ],
        'H' | 'h' => &[
            0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001,
        ],
        'I' | 'i' => &[
            0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110,
        ],
        'J' | 'j' => &[
            0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100,
        ],
        'K' | 'k' => &[
            0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001,
        ],
        'L' | 'l' => &[
            0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111,
        ],
        'M' | 'm' => &[
            0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001,
        ],
        'N' | 'n' => &[
            0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001,
        ],
        'O' | 'o' => &[
            0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110,
        ],
        'P' | 'p' => &[
            0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000,
        ],
        'Q' | 'q' => &[
            0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101,
        ],
        'R' | 'r' => &[
            0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001,
        ],
        'S' | 's' => &[
            0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110,
        ],
        'T' | 't' => &[
            0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100,
        ],
        'U' | 'u' => &[
            0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110,
        ],
        'V' | 'v' => &[
            0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100,
        ],
        'W' | 'w' => &[
            0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010,
        ],
        'X' => &[
            0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001,
        ],
        'Y' | 'y' => &[
            0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100,
        ],
        'Z' | 'z' => &[
            0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111,
        ],
        _ => &SPACE,
    }
}

/// True when pixel (`col`, `row`) of `glyph` is set; false outside the glyph.
pub(crate) fn is_set(glyph: &Glyph, col: usize, row: usize) -> bool {
    col < GLYPH_WIDTH
        && glyph
            .get(row)
            .is_some_and(|bits| bits & (1 << (GLYPH_WIDTH - 1 - col)) != 0)
}

/// Width in pixels of `text` drawn at `scale` (no trailing blank column).
pub(crate) fn text_width(text: &str, scale: usize) -> usize {
    let chars = text.chars().count();
    (chars * ADVANCE).saturating_sub(1) * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glyphs_fit_five_columns_and_are_distinct() {
        let chars = "0123456789:.#x/-ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        for c in chars.chars() {
            let g = glyph(c);
            assert!(g.iter().all(|row| *row < 32), "{c} is wider than 5");
            assert!(g.iter().any(|row| *row != 0), "{c} is blank");
        }
        for (i, a) in chars.chars().enumerate() {
            for b in chars.chars().skip(i + 1) {
                assert_ne!(glyph(a), glyph(b), "{a} and {b} look the same");
            }
        }
    }

    #[test]
    fn unknown_characters_are_blank_and_lower_case_maps_to_upper() {
        assert_eq!(glyph('~'), &SPACE);
        assert_eq!(glyph(' '), &SPACE);
        assert_eq!(glyph('u'), glyph('U'));
        assert_ne!(glyph('x'), glyph('X'));
    }

    #[test]
    fn pixel_lookup_and_width() {
        let one = glyph('1');
        assert!(is_set(one, 2, 0));
        assert!(!is_set(one, 0, 0));
        assert!(!is_set(one, 5, 0));
        assert!(!is_set(one, 2, 7));
        assert_eq!(text_width("", 3), 0);
        assert_eq!(text_width("12", 1), 11);
        assert_eq!(text_width("12", 4), 44);
    }
}
