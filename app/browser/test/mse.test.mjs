// The MSE fallback (jMuxer) forced with ?player=mse, against the real streamer.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  assertPictureRightAndMoving,
  barMismatches,
  launchBrowser,
  newPage,
  playerState,
  requireJmuxer,
  samplePicture,
  sleep,
  startStreamer,
  waitInPage,
} from '../harness.mjs';

let server;
let browser;

before(async () => {
  requireJmuxer();
  [server, browser] = await Promise.all([startStreamer(), launchBrowser()]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('?player=mse plays the stream in a <video> through jMuxer, at the live edge', async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}?player=mse`);
  await waitInPage(
    page,
    () => {
      const video = document.getElementById('video');
      return video.readyState >= 2 && video.currentTime > 0.5 && window.streamerPlayer.stats.framesShown >= 10;
    },
    null,
    { what: 'the video playing', timeout: 15_000 },
  );
  const state = await playerState(page);
  assert.equal(state.path, 'mse');
  assert.equal(state.state, 'live');
  assert.equal(state.stats.reconnects, 0, 'the muxer started without a second try');
  assert.equal(await page.isVisible('#video'), true);
  assert.equal(await page.isVisible('#canvas'), false);
  // jMuxer was loaded on demand from the web root, nowhere else.
  const scripts = await page.evaluate(() => [...document.scripts].map((s) => s.src).filter(Boolean));
  assert.ok(scripts.some((src) => src === `${server.url}vendor/jmuxer.min.js`), scripts.join(' '));

  const media = () =>
    page.evaluate(() => {
      const video = document.getElementById('video');
      const ranges = video.buffered;
      return {
        time: video.currentTime,
        paused: video.paused,
        readyState: video.readyState,
        behind: ranges.length ? ranges.end(ranges.length - 1) - video.currentTime : 0,
      };
    });
  const start = await media();
  await sleep(1000);
  const end = await media();
  assert.ok(end.time - start.time > 0.5, `currentTime advanced ${end.time - start.time} s in 1 s`);
  assert.equal(end.paused, false);
  assert.ok(end.readyState >= 2);
  assert.ok(end.behind < 1, `${end.behind} s behind the end of the buffer`);

  await assertPictureRightAndMoving(page, '#video');

  // The latency estimate works on this path too (via requestVideoFrameCallback).
  const latency = await waitInPage(page, () => window.streamerPlayer.stats.latencyMs, null, { what: 'latency' });
  assert.ok(latency > 0 && latency < 1000, `latency ${latency} ms on loopback`);

  await page.click('#btn-stats');
  await waitInPage(page, () => /MSE/.test(document.getElementById('stats').textContent), null, { what: 'stats overlay' });
  assert.match(await page.textContent('#stats'), /640×480/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('without WebRTC and WebCodecs the player falls back to MSE by itself', async () => {
  const page = await newPage(browser);
  await page.addInitScript(() => {
    delete window.RTCPeerConnection;
    delete window.VideoDecoder;
  });
  await page.goto(server.url);
  await waitInPage(page, () => window.streamerPlayer.stats.framesShown >= 5, null, { what: 'frames', timeout: 15_000 });
  assert.equal((await playerState(page)).path, 'mse');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('when WebCodecs cannot decode the stream the player switches to MSE', async () => {
  const page = await newPage(browser);
  await page.addInitScript(() => {
    delete window.RTCPeerConnection;
    window.VideoDecoder.isConfigSupported = async (config) => ({ supported: false, config });
  });
  await page.goto(server.url);
  await waitInPage(page, () => window.streamerPlayer.path === 'mse', null, { what: 'the switch to MSE' });
  await waitInPage(page, () => window.streamerPlayer.stats.framesShown >= 5, null, { what: 'frames', timeout: 15_000 });
  const picture = await samplePicture(page, '#video');
  assert.deepEqual(barMismatches(picture.bars), []);
  assert.deepEqual(page.errors, []);
  await page.close();
});
