// The WebRTC (WHEP) path against the real streamer, opened the way a LAN user opens
// the page: http://streamer.local:PORT/ (not a secure context, so no WebCodecs). The
// whole run is in a network namespace with only lo (loopback-only.sh); the server
// announces 127.0.0.1 only.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import {
  assertPictureRightAndMoving,
  barMismatches,
  freePort,
  HEIGHT,
  launchBrowser,
  newPage,
  playerState,
  requireJmuxer,
  samplePicture,
  sleep,
  startStreamer,
  waitInPage,
  WIDTH,
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

/** The transports of the viewers /api/status lists. */
async function transports(on = server) {
  const status = await (await fetch(`${on.url}api/status`)).json();
  return status.viewers.map((viewer) => viewer.transport);
}

/** Polls `fn` (async, in node) until it returns something truthy. */
async function eventually(fn, { timeout = 10_000, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/** A UDP port nobody listens on right now. */
function freeUdpPort() {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.on('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

/** A new page, closed when test `t` ends however it ends (no viewer outlives its test). */
async function open(t) {
  const page = await newPage(browser);
  t.after(() => page.close().catch(() => {}));
  return page;
}

/** The transport, fallback reason and WebRTC figures the player exposes. */
function transportOf(page) {
  return page.evaluate(() => ({
    transport: window.streamerPlayer.transport,
    fallback: window.streamerPlayer.fallback,
    webrtc: window.streamerPlayer.webrtc,
  }));
}

test('a LAN user (no secure context) gets WebRTC; the picture is right and moves', async (t) => {
  const page = await open(t);
  await page.goto(server.lanUrl);
  assert.deepEqual(
    await page.evaluate(() => ({ secure: isSecureContext, webCodecs: typeof VideoDecoder })),
    { secure: false, webCodecs: 'undefined' },
    'opened by name over http, as on the LAN: no secure context, no WebCodecs',
  );
  await waitInPage(page, () => window.streamerPlayer.stats.framesShown >= 10, null, { what: '10 frames shown' });
  const state = await playerState(page);
  assert.equal(state.path, 'webrtc');
  assert.equal(state.state, 'live');
  assert.equal(state.stats.width, WIDTH);
  assert.equal(state.stats.height, HEIGHT);
  assert.equal((await transportOf(page)).transport, 'webrtc');
  assert.equal((await transportOf(page)).fallback, null);
  assert.equal(await page.isVisible('#video'), true);
  assert.equal(await page.isVisible('#canvas'), false);
  assert.deepEqual(
    await page.evaluate(() => {
      const video = document.getElementById('video');
      return { muted: video.muted, playsInline: video.playsInline, autoplay: video.autoplay, stream: video.srcObject !== null };
    }),
    { muted: true, playsInline: true, autoplay: true, stream: true },
  );

  await assertPictureRightAndMoving(page, '#video');

  // Frames keep coming at about the stream's rate.
  const before = (await playerState(page)).stats.framesShown;
  await sleep(1000);
  const { stats } = await playerState(page);
  assert.ok(stats.framesShown - before >= 15, `only ${stats.framesShown - before} frames in 1 s`);

  // The server counts it as a WebRTC viewer.
  assert.deepEqual(await transports(), ['webrtc']);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('on WebRTC the data channel brings hello, state, stats and pongs; the overlay shows WebRTC figures', async (t) => {
  const page = await open(t);
  await page.goto(server.lanUrl);
  await waitInPage(page, () => window.streamerPlayer.stats.framesShown >= 5, null, { what: 'frames' });
  // hello and stats come only as messages: over the data channel.
  await waitInPage(page, () => window.streamerPlayer.hello !== null && window.streamerPlayer.stats.viewers !== null, null, {
    what: 'hello and stats messages',
  });
  const clock = await waitInPage(
    page,
    () => window.streamerPlayer.clock.samples.length >= 3 && window.streamerPlayer.clock,
    null,
    { what: 'three pongs' },
  );
  // Same machine, same clock: the estimate is off by at most half its round trip.
  assert.ok(
    Math.abs(clock.offsetMs) <= clock.rttMs / 2 + 1,
    `clock offset ${clock.offsetMs} ms with a round trip of ${clock.rttMs} ms`,
  );
  // A sanity bound, not a speed target: loopback under a loaded 2-core CI box
  // has taken 111 ms.
  assert.ok(clock.rttMs < 1000, `round trip ${clock.rttMs} ms`);
  assert.equal((await transportOf(page)).transport, 'webrtc', 'no fallback');

  const figures = await waitInPage(page, () => window.streamerPlayer.webrtc?.framesDecoded > 0 && window.streamerPlayer.webrtc, null, {
    what: 'WebRTC figures from getStats',
  });
  assert.ok(figures.jitterBufferMs >= 0 && figures.jitterBufferMs < 500, `jitter buffer ${figures.jitterBufferMs} ms`);
  assert.equal(figures.packetsLost, 0, 'nothing lost on loopback');
  assert.match(figures.codec ?? '', /H264/i);
  const rtt = await waitInPage(page, () => window.streamerPlayer.webrtc?.rttMs ?? null, null, { what: 'a round trip' });
  assert.ok(rtt >= 0 && rtt < 1000, `round trip ${rtt} ms`);

  // Capture-to-display latency, from the timing messages' RTP timestamps.
  const latency = await waitInPage(page, () => window.streamerPlayer.stats.latencyMs, null, {
    what: 'a latency estimate (timing.rtp_timestamp + requestVideoFrameCallback rtpTimestamp)',
  });
  assert.ok(latency > 0 && latency < 1000, `latency ${latency} ms on loopback`);

  await page.click('#btn-stats');
  await waitInPage(page, () => /Packets lost/.test(document.getElementById('stats').textContent), null, {
    what: 'WebRTC figures in the overlay',
  });
  const overlay = await page.textContent('#stats');
  assert.match(overlay, /TransportWebRTC/);
  assert.match(overlay, /Decoderthe browser \(WebRTC\)/);
  assert.match(overlay, /Jitter buffer\d+\.\d ms per frame/);
  assert.match(overlay, /Frames dropped\d+/);
  assert.match(overlay, /Packets lost0/);
  assert.match(overlay, /Round trip\d+\.\d ms/);
  assert.match(overlay, /Latency\d+ ms/);
  assert.match(overlay, /640×480/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('late WebRTC joiners show a picture at once; leaving the page ends the session at once', async (t) => {
  const first = await open(t);
  await first.goto(server.lanUrl);
  await waitInPage(first, () => window.streamerPlayer.stats.framesShown >= 5, null, { what: 'first viewer' });
  // Join at several points of the keyframe interval: the server starts with the
  // cached keyframe, so nobody waits for the next one.
  for (let attempt = 0; attempt < 3; attempt++) {
    const page = await open(t);
    await page.goto(server.lanUrl);
    const firstFrameMs = await waitInPage(page, () => window.streamerPlayer.stats.firstFrameMs, null, {
      what: 'first frame of the late joiner',
      timeout: 5000,
    });
    assert.ok(firstFrameMs < 1500, `first frame ${firstFrameMs} ms after navigation`);
    assert.equal((await transportOf(page)).transport, 'webrtc');
    const picture = await samplePicture(page, '#video');
    assert.deepEqual(barMismatches(picture.bars), []);
    assert.deepEqual(await transports(), ['webrtc', 'webrtc']);
    assert.deepEqual(page.errors, []);
    // Leaving the page ends the session on the server at once (the page's DELETE on
    // pagehide, and Chromium closing the connection; prefix.test.mjs sees the
    // DELETE itself), long before the server would notice the silence.
    const left = Date.now();
    await page.goto('about:blank');
    await eventually(async () => (await transports()).length === 1, { what: 'the left page gone from /api/status' });
    assert.ok(Date.now() - left < 3000, `gone after ${Date.now() - left} ms`);
    await page.close();
    await sleep(450);
  }
  await first.close();
});

test('WebRTC comes back after a server restart, still on WebRTC', async (t) => {
  const port = await freePort();
  let own = await startStreamer({ port });
  try {
    const page = await open(t);
    await page.goto(own.lanUrl);
    await waitInPage(page, () => window.streamerPlayer.stats.framesShown >= 5, null, { what: 'frames' });
    assert.equal((await transportOf(page)).transport, 'webrtc');

    await own.stop();
    await waitInPage(page, () => window.streamerPlayer.state === 'reconnecting', null, {
      what: 'reconnecting state',
      timeout: 15_000,
    });
    const during = await playerState(page);
    own = await startStreamer({ port });
    await waitInPage(page, () => window.streamerPlayer.state === 'live', null, { what: 'live again', timeout: 20_000 });
    await waitInPage(page, (n) => window.streamerPlayer.stats.framesShown >= n + 10, during.stats.framesShown, {
      what: 'frames after the restart',
    });
    const after = await transportOf(page);
    assert.equal(after.transport, 'webrtc', `fell back: ${after.fallback}`);
    assert.deepEqual(await transports(own), ['webrtc']);
    const picture = await samplePicture(page, '#video');
    assert.deepEqual(barMismatches(picture.bars), []);
    assert.ok((await playerState(page)).stats.reconnects >= 1);
    assert.deepEqual(page.errors.filter((e) => !/whep|ERR_CONNECTION_REFUSED|Failed to fetch/i.test(e)), []);
    await page.close();
  } finally {
    await own.stop();
  }
});

test('without RTCPeerConnection the player uses the WebSocket and says why', async (t) => {
  const page = await open(t);
  await page.addInitScript(() => {
    delete window.RTCPeerConnection;
  });
  await page.goto(server.lanUrl);
  await waitInPage(page, () => window.streamerPlayer.stats.framesShown >= 5, null, { what: 'frames', timeout: 15_000 });
  const state = await playerState(page);
  // Not a secure context: no WebCodecs either, so MSE.
  assert.equal(state.path, 'mse');
  const { transport, fallback } = await transportOf(page);
  assert.equal(transport, 'websocket');
  assert.match(fallback, /RTCPeerConnection/);
  assert.deepEqual(await transports(), ['websocket']);
  await page.click('#btn-stats');
  await waitInPage(page, () => /Transport/.test(document.getElementById('stats').textContent), null, { what: 'overlay' });
  assert.match(await page.textContent('#stats'), /TransportWebSocket \(no WebRTC: this browser has no RTCPeerConnection\)/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('with the UDP port blocked the player falls back to the WebSocket within a few seconds', async (t) => {
  // The answer names a port nobody listens on: the browser's checks go nowhere, as
  // when a firewall drops UDP.
  const nowhere = await freeUdpPort();
  const blocked = await startStreamer({ env: { STREAMER_WEBRTC__ANNOUNCE: `127.0.0.1:${nowhere}` } });
  try {
    const page = await open(t);
    const started = Date.now();
    await page.goto(blocked.lanUrl);
    await waitInPage(page, () => window.streamerPlayer.transport === 'websocket', null, {
      what: 'the fallback to the WebSocket',
      timeout: 15_000,
    });
    const fellBackAfter = Date.now() - started;
    assert.ok(fellBackAfter < 12_000, `fell back after ${fellBackAfter} ms`);
    await waitInPage(page, () => window.streamerPlayer.stats.framesShown >= 5, null, { what: 'frames', timeout: 15_000 });
    const { fallback } = await transportOf(page);
    assert.match(fallback, /not connected within \d+ s/);
    assert.equal((await playerState(page)).path, 'mse');
    assert.equal((await playerState(page)).state, 'live');
    // The WebRTC session was deleted; only the WebSocket viewer is left.
    await eventually(async () => JSON.stringify(await transports(blocked)) === '["websocket"]', {
      what: 'only the WebSocket viewer on the server',
    });
    await page.click('#btn-stats');
    await waitInPage(page, () => /Transport/.test(document.getElementById('stats').textContent), null, { what: 'overlay' });
    assert.match(await page.textContent('#stats'), /TransportWebSocket \(no WebRTC: not connected within \d+ s/);
    const picture = await samplePicture(page, '#video');
    assert.deepEqual(barMismatches(picture.bars), []);
    assert.deepEqual(page.errors, []);
    await page.close();
  } finally {
    await blocked.stop();
  }
});

test('with WebRTC turned off on the server the player takes the WebSocket at once', async (t) => {
  const off = await startStreamer({ env: { STREAMER_WEBRTC__ENABLED: 'false' } });
  try {
    const page = await open(t);
    await page.goto(off.lanUrl);
    await waitInPage(page, () => window.streamerPlayer.transport === 'websocket', null, {
      what: 'the fallback to the WebSocket',
      timeout: 3000,
    });
    assert.match((await transportOf(page)).fallback, /503/);
    await waitInPage(page, () => window.streamerPlayer.stats.framesShown >= 5, null, { what: 'frames', timeout: 15_000 });
    assert.deepEqual(page.errors.filter((e) => !/503/.test(e)), []);
    await page.close();

    // ?player=webrtc insists: no fallback, the reason on the page.
    const forced = await open(t);
    await forced.goto(`${off.lanUrl}?player=webrtc`);
    await waitInPage(forced, () => /503/.test(document.getElementById('status-detail').textContent), null, {
      what: 'the reason on the page',
    });
    const state = await playerState(forced);
    assert.equal(state.path, 'webrtc');
    assert.equal(state.stats.framesShown, 0);
    assert.equal((await transportOf(forced)).transport, 'webrtc');
    await forced.close();
  } finally {
    await off.stop();
  }
});

test('?player= forces each path', async (t) => {
  for (const [query, url, path, transport] of [
    ['?player=webrtc', server.url, 'webrtc', 'webrtc'],
    ['?player=webcodecs', server.url, 'webcodecs', 'websocket'],
    ['?player=mse', server.lanUrl, 'mse', 'websocket'],
  ]) {
    const page = await open(t);
    await page.goto(`${url}${query}`);
    await waitInPage(page, () => window.streamerPlayer.stats.framesShown >= 5, null, { what: `frames (${query})`, timeout: 15_000 });
    const state = await playerState(page);
    assert.equal(state.path, path, query);
    assert.equal((await transportOf(page)).transport, transport, query);
    assert.equal((await transportOf(page)).fallback, null, `${query}: forced is no fallback`);
    assert.deepEqual(page.errors, []);
    await page.close();
  }
});

test('an on-demand camera that is not running yet still ends up on WebRTC', async (t) => {
  // No video before someone watches: the server may refuse WHEP with 503 "no video
  // yet"; the player then watches over the WebSocket (which starts the camera) and
  // goes back to WebRTC as soon as video flows.
  const idle = await startStreamer({ env: { STREAMER_CAMERA__ON_DEMAND: 'true' }, healthy: false });
  try {
    const page = await open(t);
    await page.goto(idle.lanUrl);
    await waitInPage(
      page,
      () => window.streamerPlayer.transport === 'webrtc' && window.streamerPlayer.stats.framesShown >= 5,
      null,
      { what: 'frames over WebRTC', timeout: 20_000 },
    );
    assert.equal((await transportOf(page)).fallback, null);
    await eventually(async () => JSON.stringify(await transports(idle)) === '["webrtc"]', {
      what: 'only the WebRTC viewer on the server',
    });
    const picture = await samplePicture(page, '#video');
    assert.deepEqual(barMismatches(picture.bars), []);
    await page.close();
  } finally {
    await idle.stop();
  }
});

test('a stream this browser cannot take over WebRTC (422, no common codec) plays over the WebSocket', async (t) => {
  // High profile: Chromium as Debian builds it offers WebRTC H.264 only up to Main.
  const dir = mkdtempSync(path.join(tmpdir(), 'streamer-webrtc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'high.h264');
  execFileSync('ffmpeg', [
    '-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-t', '2',
    '-c:v', 'libx264', '-profile:v', 'high', '-pix_fmt', 'yuv420p', '-g', '25', '-bf', '0', '-f', 'h264', file,
  ]);
  const high = await startStreamer({ env: { STREAMER_CAMERA__SOURCE: 'file', STREAMER_CAMERA__FILE: file } });
  try {
    const offered = await (await open(t)).evaluate(() => RTCRtpReceiver.getCapabilities('video').codecs
      .filter((codec) => /h264/i.test(codec.mimeType))
      .map((codec) => codec.sdpFmtpLine));
    if (offered.some((line) => /profile-level-id=64/.test(line ?? ''))) {
      t.skip('this Chromium takes High profile over WebRTC: no 422 to see');
      return;
    }
    const page = await open(t);
    await page.goto(high.lanUrl);
    await waitInPage(page, () => window.streamerPlayer.transport === 'websocket', null, {
      what: 'the fallback to the WebSocket',
      timeout: 5000,
    });
    assert.match((await transportOf(page)).fallback, /^POST whep answered 422: no common codec/);
    await waitInPage(page, () => window.streamerPlayer.stats.framesShown >= 5, null, { what: 'frames', timeout: 15_000 });
    assert.equal((await playerState(page)).path, 'mse');
    assert.deepEqual(await transports(high), ['websocket']);
    assert.deepEqual(page.errors.filter((e) => !/422/.test(e)), []);
  } finally {
    await high.stop();
  }
});
