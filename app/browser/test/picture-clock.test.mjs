// The display-delay bench's picture reader (bench/picture-clock.mjs, bench/probe.mjs):
// the test pattern's clock and frame counter read back from pixels.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { delayMs, digitGlyphs, pictureLayout, readPicture } from '../bench/picture-clock.mjs';
import { installProbe } from '../bench/probe.mjs';
import { launchBrowser, newPage, startStreamer, waitInPage } from '../harness.mjs';

/** RGBA rows `layout.top ..` of a `width`-wide picture with `clock` and `counter` drawn as render.rs does. */
function draw(width, height, clock, counter) {
  const layout = pictureLayout(width, height);
  const digits = digitGlyphs();
  const rgba = new Uint8ClampedArray(width * layout.rows * 4).fill(30);
  const put = (text, left, top) => {
    [...text].forEach((c, i) => {
      if (!/\d/.test(c)) return; // only digits are read
      const glyph = digits[Number(c)];
      for (let row = 0; row < 7; row++) {
        for (let col = 0; col < 5; col++) {
          if (!(glyph[row] & (1 << (4 - col)))) continue;
          for (let dy = 0; dy < layout.scale; dy++) {
            for (let dx = 0; dx < layout.scale; dx++) {
              const x = left + i * layout.advance + col * layout.scale + dx;
              const y = top + row * layout.scale + dy - layout.top;
              rgba.fill(250, (y * width + x) * 4, (y * width + x) * 4 + 3);
            }
          }
        }
      }
    });
  };
  put(clock, layout.clockLeft, layout.clockTop);
  put(counter, layout.counterLeft, layout.counterTop);
  return { rgba, layout, digits };
}

test('the font comes from font.rs: ten digits of seven 5-bit rows', () => {
  const digits = digitGlyphs();
  assert.equal(digits.length, 10);
  assert.deepEqual(digits[1], [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110]);
  for (const glyph of digits) assert.ok(glyph.length === 7 && glyph.every((row) => row < 32));
  assert.throws(() => digitGlyphs("'0' => &[0b1]"), /7/);
});

test('the clock and the counter are read from drawn digits; a damaged digit gives nothing', () => {
  for (const [w, h] of [
    [640, 480],
    [1280, 720],
    [320, 240],
  ]) {
    const { rgba, layout, digits } = draw(w, h, '12:34:56.789 UTC', '#004321');
    assert.deepEqual(readPicture(rgba, w, layout, digits), { counter: 4321, clockMs: 45_296_789 }, `${w}x${h}`);
    // Blank out one font pixel row of the counter's last digit: no longer a clean glyph.
    const y = layout.counterTop + 3 * layout.scale - layout.top;
    const x = layout.counterLeft + 6 * layout.advance;
    for (let dy = 0; dy < layout.scale; dy++) {
      rgba.fill(250, ((y + dy) * w + x) * 4, ((y + dy) * w + x + 5 * layout.scale) * 4);
    }
    assert.equal(readPicture(rgba, w, layout, digits), null, `${w}x${h} damaged`);
  }
});

test('delays across midnight', () => {
  const midnight = Date.UTC(2026, 11, 5);
  assert.equal(delayMs(86_399_990, midnight + 15), 25);
  assert.equal(delayMs(1000, midnight + 1040), 40);
  assert.equal(delayMs(1040, midnight + 1000), -40);
});

let server;
let browser;

before(async () => {
  [server, browser] = await Promise.all([startStreamer(), launchBrowser()]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the probe reads every picture the player paints: counters rise, the clock matches the counter and the wall clock', async () => {
  const page = await newPage(browser);
  await page.addInitScript(installProbe, {
    digits: digitGlyphs(),
    readPicture: readPicture.toString(),
    layout: pictureLayout.toString(),
    canvas: '#canvas',
  });
  await page.goto(`${server.url}?player=webcodecs`);
  await waitInPage(page, () => window.__delayProbe.frames.length >= 40, null, { what: '40 pictures read', timeout: 20_000 });
  const probe = await page.evaluate(() => ({ ...window.__delayProbe }));
  assert.equal(probe.unreadable, 0);
  const frames = probe.frames;
  for (let i = 1; i < frames.length; i++) {
    const [a, b] = [frames[i - 1], frames[i]];
    assert.ok(b.counter > a.counter, `counter ${a.counter} then ${b.counter}`);
    // The clock never runs backwards and moves on by at most a few frames' worth
    // (the test pattern renders a late frame at once, so two may be 2 ms apart).
    const step = b.clockMs - a.clockMs;
    assert.ok(step >= 0 && step < 300 * (b.counter - a.counter), `#${a.counter} at ${a.clockMs}, #${b.counter} at ${b.clockMs}`);
  }
  // 30 frames per second: 33 ms of clock per counted frame, on average.
  const [first, last] = [frames[0], frames.at(-1)];
  const perFrame = (last.clockMs - first.clockMs) / (last.counter - first.counter);
  assert.ok(perFrame > 25 && perFrame < 45, `${perFrame} ms per frame from #${first.counter} to #${last.counter}`);
  for (const f of frames) {
    const delay = delayMs(f.clockMs, f.shownAt);
    assert.ok(delay > 0 && delay < 3000, `frame #${f.counter} shown ${delay} ms after its capture`);
  }
  assert.deepEqual(page.errors, []);
  await page.close();
});
