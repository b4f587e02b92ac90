// Reading the test pattern's clock and frame counter back from its pixels.
//
// The test pattern (app/src/source/test_pattern/) draws, in a 5x7 font, the UTC wall
// clock of the moment the frame was captured (`HH:MM:SS.mmm UTC`) and the frame
// counter (`#000123`). The font's bitmaps are read from font.rs itself, so there is
// one source of truth; the geometry follows the layout render.rs documents in its
// module comment (`pictureLayout` below mirrors `Layout::new`). A frame whose digits
// do not match the glyphs closely is reported unreadable, never guessed: a change to
// the layout shows up as a bench full of unreadable frames, not as wrong figures.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The test pattern's font, the one source of the glyph bitmaps. */
export const fontRs = path.resolve(here, '../../src/source/test_pattern/font.rs');

/**
 * The digit glyphs from font.rs: `digits[d]` is seven rows of five bits, top row
 * first, bit 4 the leftmost pixel (as font.rs says).
 * @param {string} [source] font.rs's text
 * @returns {number[][]}
 */
export function digitGlyphs(source = readFileSync(fontRs, 'utf8')) {
  const digits = [];
  const arm = /'(\d)'\s*=>\s*&\[([^\]]*)\]/g;
  for (const [, digit, rows] of source.matchAll(arm)) {
    const bits = rows.match(/0b[01]+/g)?.map((b) => parseInt(b.slice(2), 2)) ?? [];
    if (bits.length !== 7) throw new Error(`font.rs: glyph '${digit}' has ${bits.length} rows, not 7`);
    digits[Number(digit)] = bits;
  }
  for (let d = 0; d < 10; d++) {
    if (!digits[d]) throw new Error(`font.rs: no glyph for '${d}' found (has its match arm changed shape?)`);
  }
  return digits;
}

/**
 * Where the clock and counter lines are in a `width` x `height` picture, as
 * render.rs's `Layout::new` places them (luma pixels, integer division).
 * @param {number} width
 * @param {number} height
 */
export function pictureLayout(width, height) {
  const ADVANCE = 6; // glyph width 5 + one blank column
  const CLOCK_CHARS = 16; // `HH:MM:SS.mmm UTC`
  const barsEnd = Math.floor(height / 4);
  const gap = Math.floor(height / 20);
  const boxSize = Math.max(2, Math.floor(height / 8) & ~1);
  const boxTop = (barsEnd + Math.floor(height / 32) + 1) & ~1;
  const scale = Math.max(1, Math.min(Math.floor(height / 60), Math.floor(width / (CLOCK_CHARS * ADVANCE))));
  const clockTop = boxTop + boxSize + gap;
  const counterTop = clockTop + 7 * scale + gap;
  /** Left edge of a centred line of `chars` characters. */
  const left = (chars) => Math.floor(Math.max(0, width - (chars * ADVANCE - 1) * scale) / 2);
  return {
    scale,
    advance: ADVANCE * scale,
    clockTop,
    clockLeft: left(CLOCK_CHARS),
    counterTop,
    /** Counter lines are `#` and six digits up to frame 999999 (9 hours at 30 fps). */
    counterLeft: left(7),
    /** Rows to read: from the clock's top to the counter's bottom. */
    top: clockTop,
    rows: counterTop + 7 * scale - clockTop,
  };
}

/**
 * The part of the reader that runs in the page, as one self-contained function (it
 * is serialised into the page with `Function.prototype.toString`): from RGBA pixels
 * of rows `layout.top ..` of the picture, the frame counter and the clock in ms
 * since midnight UTC, or null when any digit does not match a glyph.
 *
 * @param {Uint8ClampedArray} rgba pixels, `width` per row, starting at row `layout.top`
 * @param {number} width
 * @param {ReturnType<typeof pictureLayout>} layout
 * @param {number[][]} digits from digitGlyphs
 * @returns {{counter: number, clockMs: number} | null}
 */
export function readPicture(rgba, width, layout, digits) {
  const { scale } = layout;
  const half = Math.floor(scale / 2);
  // One digit at (x0, top): each font pixel sampled at its cell's centre, lit when
  // brighter than halfway between the text (Y 235) and the background (Y 40).
  const digitAt = (x0, top) => {
    let best = -1;
    let bestMiss = 99;
    let second = 99;
    const cells = [];
    for (let row = 0; row < 7; row++) {
      let bits = 0;
      for (let col = 0; col < 5; col++) {
        const x = x0 + col * scale + half;
        const y = top + row * scale + half - layout.top;
        const i = (y * width + x) * 4;
        const luma = 0.299 * rgba[i] + 0.587 * rgba[i + 1] + 0.114 * rgba[i + 2];
        bits = (bits << 1) | (luma > 128 ? 1 : 0);
      }
      cells.push(bits);
    }
    for (let d = 0; d < 10; d++) {
      let miss = 0;
      for (let row = 0; row < 7; row++) {
        let x = cells[row] ^ digits[d][row];
        while (x) {
          miss += x & 1;
          x >>= 1;
        }
      }
      if (miss < bestMiss) {
        second = bestMiss;
        bestMiss = miss;
        best = d;
      } else if (miss < second) {
        second = miss;
      }
    }
    // At most 2 of 35 pixels off, and clearly better than the runner-up.
    return bestMiss <= 2 && second >= bestMiss + 3 ? best : -1;
  };
  const number = (left, top, positions) => {
    let n = 0;
    for (const p of positions) {
      const d = digitAt(left + p * layout.advance, top);
      if (d < 0) return -1;
      n = n * 10 + d;
    }
    return n;
  };
  const counter = number(layout.counterLeft, layout.counterTop, [1, 2, 3, 4, 5, 6]);
  const hh = number(layout.clockLeft, layout.clockTop, [0, 1]);
  const mm = number(layout.clockLeft, layout.clockTop, [3, 4]);
  const ss = number(layout.clockLeft, layout.clockTop, [6, 7]);
  const ms = number(layout.clockLeft, layout.clockTop, [9, 10, 11]);
  if (counter < 0 || hh < 0 || mm < 0 || ss < 0 || ms < 0 || hh > 23 || mm > 59 || ss > 59) return null;
  return { counter, clockMs: ((hh * 60 + mm) * 60 + ss) * 1000 + ms };
}

/**
 * Display delay in ms of a picture captured at `clockMs` (ms since midnight UTC, as
 * drawn) and shown at `shownAt` (ms since the Unix epoch), across midnight too.
 * @param {number} clockMs
 * @param {number} shownAt
 */
export function delayMs(clockMs, shownAt) {
  const day = 86_400_000;
  let d = (((shownAt % day) - clockMs) % day + day) % day;
  if (d > day / 2) d -= day;
  return d;
}
