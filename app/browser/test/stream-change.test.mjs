// A change of stream parameters mid-session (a new SPS: here the resolution) reaches
// the player, which reconfigures and keeps showing frames, on every path (WebRTC
// follows it in-band, in the same session).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launchBrowser, newPage, playerState, startStreamer, waitInPage } from '../harness.mjs';

let browser;
let server;
let dir;

/**
 * Two seconds of a moving test picture at `size` in H.264 `profile`, as raw Annex-B;
 * `level` (e.g. `3.0`) fixes the level, else the encoder picks one for the size.
 */
function encode(size, profile, file, level) {
  execFileSync('ffmpeg', [
    '-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=25`, '-t', '2',
    '-c:v', 'libx264', '-profile:v', profile, ...(level ? ['-level', level] : []), '-pix_fmt', 'yuv420p',
    '-g', '25', '-bf', '0', '-f', 'h264', file,
  ]);
  return readFileSync(file);
}

/**
 * A file that loops through 320x240 in `first` and 480x360 in `second` profile, so
 * the player sees 320x240 -> 480x360 -> 320x240 ...
 */
function twoSizes(name, first, second, level) {
  const small = encode('320x240', first, path.join(dir, `${name}-small.h264`), level);
  const large = encode('480x360', second, path.join(dir, `${name}-large.h264`), level);
  const file = path.join(dir, `${name}.h264`);
  writeFileSync(file, Buffer.concat([small, large]));
  return file;
}

/** The streamer replaying `file`. */
function fileStreamer(file) {
  return startStreamer({ env: { STREAMER_CAMERA__SOURCE: 'file', STREAMER_CAMERA__FILE: file } });
}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'streamer-change-'));
  browser = await launchBrowser();
  server = await fileStreamer(twoSizes('high', 'high', 'high'));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * Opens the player at `url` and watches the shown size until both sizes were shown,
 * then makes sure frames still come after the change; returns the page.
 */
async function followChange(url) {
  const page = await newPage(browser);
  await page.goto(url);
  const seen = new Set();
  const deadline = Date.now() + 12_000;
  let shownAtChange = null;
  while (Date.now() < deadline && seen.size < 2) {
    const { stats } = await playerState(page);
    if (stats.framesShown > 0 && stats.width) {
      if (seen.size === 1 && !seen.has(`${stats.width}x${stats.height}`)) shownAtChange = stats.framesShown;
      seen.add(`${stats.width}x${stats.height}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.deepEqual([...seen].sort(), ['320x240', '480x360'], `sizes shown: ${[...seen]}\n${page.log.join('\n')}`);
  await waitInPage(page, (n) => window.streamerPlayer.stats.framesShown >= n + 10, shownAtChange, {
    what: 'frames after the change',
  });
  assert.equal((await playerState(page)).state, 'live');
  return page;
}

for (const player of ['webcodecs', 'mse']) {
  test(`the ${player} player follows a resolution change and keeps playing`, async () => {
    const page = await followChange(`${server.url}?player=${player}`);
    await page.close();
  });
}

// Chromium as Debian builds it offers WebRTC H.264 only up to Main profile, so the
// WebRTC cases use Constrained Baseline and Main.
test('the webrtc player follows a resolution change in-band, in the same session', async () => {
  // One level for both sizes: the codec string stays, only the SPS's size changes.
  const own = await fileStreamer(twoSizes('baseline', 'baseline', 'baseline', '3.0'));
  try {
    const page = await followChange(`${own.url}?player=webrtc`);
    assert.equal(await page.evaluate(() => window.streamerPlayer.transport), 'webrtc');
    assert.equal(await page.evaluate(() => window.streamerPlayer.stream.codec), 'avc1.42c01e');
    // The codec string stayed: no new session.
    assert.equal((await playerState(page)).stats.reconnects, 0);
    await page.close();
  } finally {
    await own.stop();
  }
});

// The server ends a session whose stream's codec changed, and its last `stream`
// message must reach the player, which starts the new session at once.
test('the webrtc player negotiates anew when the profile changes', async () => {
  const own = await fileStreamer(twoSizes('profiles', 'baseline', 'main'));
  try {
    const page = await followChange(`${own.url}?player=webrtc`);
    assert.equal(await page.evaluate(() => window.streamerPlayer.transport), 'webrtc');
    // A new session (a new POST whep) for each change of profile.
    assert.ok((await playerState(page)).stats.reconnects >= 1, 'a new session for the new profile');
    assert.ok(
      page.log.some((line) => /WebRTC session ended: the stream's codec changed from avc1\.42/.test(line)),
      page.log.join('\n'),
    );
    await page.close();
  } finally {
    await own.stop();
  }
});
