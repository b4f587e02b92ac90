// The WebCodecs path against the real streamer: pictures, live edge, late joiners,
// latency estimate, stats overlay and snapshot.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';

import {
  assertPictureRightAndMoving,
  barMismatches,
  HEIGHT,
  launchBrowser,
  newPage,
  playerState,
  samplePicture,
  sleep,
  startStreamer,
  waitInPage,
  WIDTH,
} from '../harness.mjs';

let server;
let browser;

before(async () => {
  [server, browser] = await Promise.all([startStreamer(), launchBrowser()]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('WebCodecs decodes the test pattern to the canvas, and it moves', async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}?player=webcodecs`);
  await waitInPage(page, () => window.streamerPlayer.stats.framesShown >= 10, null, { what: '10 frames shown' });
  const state = await playerState(page);
  assert.equal(state.path, 'webcodecs');
  assert.equal(state.state, 'live');
  assert.equal(state.stats.width, WIDTH);
  assert.equal(state.stats.height, HEIGHT);
  assert.ok(state.stats.framesDecoded >= state.stats.framesShown);
  assert.equal(await page.isVisible('#canvas'), true);
  assert.equal(await page.isVisible('#video'), false);

  await assertPictureRightAndMoving(page, '#canvas');

  // Frames keep flowing at about the stream's rate.
  const before = (await playerState(page)).stats.framesShown;
  await sleep(1000);
  const { stats } = await playerState(page);
  assert.ok(stats.framesShown - before >= 15, `only ${stats.framesShown - before} frames in 1 s`);
  assert.ok(stats.fps >= 15, `measured ${stats.fps} fps`);
  assert.ok(stats.bitrateKbps > 0);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a late joiner shows its first frame within 1 s of navigating', async () => {
  const first = await newPage(browser);
  await first.goto(`${server.url}?player=webcodecs`);
  await waitInPage(first, () => window.streamerPlayer.stats.framesShown >= 5, null, { what: 'first viewer' });
  // Join at several points of the keyframe interval: the server sends the cached
  // keyframe and the frames since, so no join waits for the next keyframe.
  for (let attempt = 0; attempt < 3; attempt++) {
    const page = await newPage(browser);
    await page.goto(`${server.url}?player=webcodecs`);
    const firstFrameMs = await waitInPage(page, () => window.streamerPlayer.stats.firstFrameMs, null, {
      what: 'first frame of the late joiner',
      timeout: 5000,
    });
    assert.ok(firstFrameMs < 1000, `first frame ${firstFrameMs} ms after navigation`);
    const state = await playerState(page);
    assert.equal(state.stats.framesDropped, 0, `a joiner starts at a keyframe, dropping nothing: ${JSON.stringify(state.stats.dropReasons)}`);
    assert.deepEqual(page.errors, []);
    await page.close();
    await sleep(450);
  }
  await first.close();
});

test('latency estimate is sane; stats overlay, fullscreen and snapshot controls work', async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}?player=webcodecs`);
  const latency = await waitInPage(page, () => window.streamerPlayer.stats.latencyMs, null, {
    what: 'a latency estimate',
    timeout: 5000,
  });
  assert.ok(latency > 0 && latency < 1000, `latency ${latency} ms on loopback`);
  const clock = await page.evaluate(() => ({ offset: window.streamerPlayer.clock.offsetMs, rtt: window.streamerPlayer.clock.rttMs }));
  // Same machine, same clock: the estimated offset is within a few ms of zero.
  assert.ok(Math.abs(clock.offset) < 20, `clock offset ${clock.offset} ms`);
  assert.ok(clock.rtt >= 0 && clock.rtt < 100, `round trip ${clock.rtt} ms`);

  await waitInPage(page, () => window.streamerPlayer.stats.viewers !== null, null, { what: 'a stats message' });
  assert.equal(await page.isVisible('#stats'), false);
  await page.click('#btn-stats');
  assert.equal(await page.getAttribute('#btn-stats', 'aria-pressed'), 'true');
  await waitInPage(page, () => document.getElementById('stats').textContent.includes('640×480'), null, {
    what: 'resolution in the stats overlay',
  });
  const overlay = await page.textContent('#stats');
  assert.match(overlay, /WebCodecs/);
  assert.match(overlay, /Latency\d+ ms/);
  assert.match(overlay, /Viewers\d+/);
  await page.keyboard.press('s');
  assert.equal(await page.isVisible('#stats'), false);

  await page.click('#btn-fullscreen');
  await waitInPage(
    page,
    () => document.fullscreenElement?.id === 'stage' && document.getElementById('btn-fullscreen').ariaPressed === 'true',
    null,
    { what: 'the player in fullscreen' },
  );
  await page.click('#btn-fullscreen');
  await waitInPage(
    page,
    () => document.fullscreenElement === null && document.getElementById('btn-fullscreen').ariaPressed === 'false',
    null,
    { what: 'fullscreen left' },
  );

  // The snapshot button saves the server's /snapshot.jpg, at the stream's size...
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#btn-snapshot')]);
  assert.match(download.suggestedFilename(), /^snapshot-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.jpg$/);
  const jpeg = await readFile(await download.path());
  assert.deepEqual([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff], 'a JPEG file');
  const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
  assert.ok(sof > 0, 'a baseline JPEG frame header');
  assert.equal(jpeg.readUInt16BE(sof + 7), WIDTH);
  assert.equal(jpeg.readUInt16BE(sof + 5), HEIGHT);
  assert.deepEqual(page.errors, []);
  // ...and the picture shown here, as PNG, when the server has none to give.
  await page.route('**/snapshot.jpg', (route) =>
    route.fulfill({ status: 503, contentType: 'text/plain', body: 'no video yet\n' }),
  );
  const [fallback] = await Promise.all([page.waitForEvent('download'), page.click('#btn-snapshot')]);
  assert.match(fallback.suggestedFilename(), /^snapshot-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.png$/);
  const png = await readFile(await fallback.path());
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.equal(png.readUInt32BE(16), WIDTH);
  assert.equal(png.readUInt32BE(20), HEIGHT);
  await page.unroute('**/snapshot.jpg');
  // The browser logs the 503 it was given; nothing else.
  assert.deepEqual(
    page.errors.filter((e) => !e.includes('status of 503')),
    [],
  );
  await page.close();
});

test('a hidden tab decodes nothing and catches up at once when shown again', async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}?player=webcodecs`);
  await waitInPage(page, () => window.streamerPlayer.stats.framesShown >= 5, null, { what: 'frames' });
  const setHidden = (hidden) =>
    page.evaluate((hidden) => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => hidden });
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') });
      document.dispatchEvent(new Event('visibilitychange'));
    }, hidden);
  await setHidden(true);
  await sleep(100);
  const hidden = (await playerState(page)).stats;
  await sleep(1000);
  const stillHidden = (await playerState(page)).stats;
  assert.ok(stillHidden.framesReceived - hidden.framesReceived >= 15, 'frames keep arriving');
  assert.equal(stillHidden.framesDecoded, hidden.framesDecoded, 'nothing decoded while hidden');
  await setHidden(false);
  // Shown at once: no waiting for the next keyframe.
  await waitInPage(page, (n) => window.streamerPlayer.stats.framesShown > n, stillHidden.framesShown, {
    what: 'a picture after the tab came back',
    timeout: 500,
  });
  const picture = await samplePicture(page, '#canvas');
  assert.deepEqual(barMismatches(picture.bars), []);
  assert.deepEqual(page.errors, []);
  await page.close();
});
