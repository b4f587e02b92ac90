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

/** Two seconds of a moving test picture at `size`, as raw Annex-B H.264. */
function encode(size, file) {
  execFileSync('ffmpeg', [
    '-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=25`, '-t', '2',
    '-c:v', 'libx264', '-profile:v', 'high', '-pix_fmt', 'yuv420p', '-g', '25', '-bf', '0',
    '-f', 'h264', file,
  ]);
  return readFileSync(file);
}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'streamer-change-'));
  const small = encode('320x240', path.join(dir, 'small.h264'));
  const large = encode('480x360', path.join(dir, 'large.h264'));
  // The file source loops, so the player sees 320x240 -> 480x360 -> 320x240 ...
  writeFileSync(path.join(dir, 'both.h264'), Buffer.concat([small, large]));
  browser = await launchBrowser();
  server = await startStreamer({
    env: { STREAMER_CAMERA__SOURCE: 'file', STREAMER_CAMERA__FILE: path.join(dir, 'both.h264') },
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

for (const player of ['webrtc', 'webcodecs', 'mse']) {
  test(`the ${player} player follows a resolution change and keeps playing`, async () => {
    const page = await newPage(browser);
    await page.goto(`${server.url}?player=${player}`);
    const seen = new Set();
    const deadline = Date.now() + 12_000;
    let shownAtChange = null;
    // Watch the shown size until both sizes were shown, then make sure frames
    // still come after the change.
    while (Date.now() < deadline && seen.size < 2) {
      const { stats } = await playerState(page);
      if (stats.framesShown > 0 && stats.width) {
        if (seen.size === 1 && !seen.has(`${stats.width}x${stats.height}`)) shownAtChange = stats.framesShown;
        seen.add(`${stats.width}x${stats.height}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.deepEqual([...seen].sort(), ['320x240', '480x360'], `sizes shown: ${[...seen]}`);
    await waitInPage(page, (n) => window.streamerPlayer.stats.framesShown >= n + 10, shownAtChange, {
      what: 'frames after the change',
    });
    assert.equal((await playerState(page)).state, 'live');
    if (player === 'webrtc') {
      // In-band, in the same session: the profile stayed, only the size (and level) changed.
      assert.equal(await page.evaluate(() => window.streamerPlayer.transport), 'webrtc');
      assert.equal((await playerState(page)).stats.reconnects, 0);
    }
    await page.close();
  });
}
