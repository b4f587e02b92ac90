// Shared parts of the browser tests: the real streamer binary, headless Chromium and
// pixel checks of the test pattern.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
/** app/browser */
export const browserDir = here;
/** The player's files. */
export const webRoot = path.resolve(browserDir, '../../overlay/usr/share/streamer/www');
/** The streamer binary under test (`STREAMER_BIN`, relative to app/browser or absolute). */
export const streamerBin = path.resolve(browserDir, process.env.STREAMER_BIN || '../../target/debug/streamer');
/** The browser (`CHROMIUM` overrides). */
export const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

/** The name a LAN user opens the page by; Chromium maps it to 127.0.0.1 (`launchBrowser`). */
export const LAN_NAME = 'streamer.local';

export const WIDTH = 640;
export const HEIGHT = 480;

/** A TCP port nobody listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Throws, saying what to run, when jMuxer (the MSE path) is not in the web root. */
export function requireJmuxer() {
  if (!existsSync(path.join(webRoot, 'vendor/jmuxer.min.js'))) {
    throw new Error('vendor/jmuxer.min.js is missing from the web root: run `make web` (npm ci + install-vendor.sh)');
  }
}

/**
 * Throws unless this process is in a network namespace with only the loopback
 * interface: WebRTC (Chromium's ICE candidates, the streamer's announced addresses)
 * must never touch this machine's other addresses. `make test-browser` runs the tests
 * through `loopback-only.sh`.
 */
export function requireLoopbackOnly() {
  const others = Object.keys(os.networkInterfaces()).filter((name) => name !== 'lo');
  if (others.length) {
    throw new Error(
      `the browser tests run in a network namespace with only lo, but ${others.join(', ')} are here: ` +
        'run them with ./loopback-only.sh node --test --test-concurrency=1 (or make test-browser)',
    );
  }
}

/**
 * Starts the streamer with the test pattern at 640x480 on 127.0.0.1:`port` and waits
 * until /healthz answers 200 (video flows), or with `healthy: false` until it answers
 * at all. `config` is the --config file; `env` adds or overrides variables. WebRTC
 * announces 127.0.0.1 only, on a UDP port of the system's choice, and the server
 * answers to LAN_NAME too (`lanUrl`).
 */
export async function startStreamer({ port, config = '/nonexistent.toml', env = {}, healthy = true } = {}) {
  if (!existsSync(streamerBin)) {
    throw new Error(`no streamer binary at ${streamerBin}: build it (cargo build --bin streamer) or set STREAMER_BIN`);
  }
  port ??= await freePort();
  const child = spawn(streamerBin, ['--config', config], {
    env: {
      ...process.env,
      STREAMER_SERVER__BIND: '127.0.0.1',
      STREAMER_SERVER__PORT: String(port),
      STREAMER_SERVER__WEB_ROOT: webRoot,
      STREAMER_CAMERA__SOURCE: 'test',
      STREAMER_CAMERA__WIDTH: String(WIDTH),
      STREAMER_CAMERA__HEIGHT: String(HEIGHT),
      STREAMER_SERVER__ALLOWED_HOSTS: LAN_NAME,
      STREAMER_WEBRTC__ANNOUNCE: '127.0.0.1',
      STREAMER_WEBRTC__UDP_PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = [];
  const keep = (chunk) => {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let done = null;
  exited.then((status) => (done = status));

  const url = `http://127.0.0.1:${port}/`;
  const server = {
    port,
    url,
    /** The page as a LAN user opens it: by name, so not a secure context. */
    lanUrl: `http://${LAN_NAME}:${port}/`,
    child,
    output: () => lines.join('\n'),
    /** Stops the server (SIGTERM, SIGKILL after 5 s) and waits until it has exited. */
    async stop() {
      if (done) return done;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      const status = await exited;
      clearTimeout(timer);
      return status;
    },
  };

  const deadline = Date.now() + 20_000;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (done) throw new Error(`streamer exited (${JSON.stringify(done)}):\n${server.output()}`);
    try {
      const response = await fetch(`${url}healthz`);
      last = `${response.status} ${(await response.text()).trim()}`;
      if (response.status === 200 || !healthy) return server;
    } catch (error) {
      last = String(error.cause?.code || error.message);
    }
    await sleep(100);
  }
  await server.stop();
  throw new Error(`streamer on port ${port} not healthy after 20 s (last: ${last}):\n${server.output()}`);
}

/**
 * Headless Chromium, as the brief and CI use it; WebRTC may use the loopback
 * interface (the only one there is: `requireLoopbackOnly`), host candidates are not
 * hidden behind mDNS names, and LAN_NAME resolves to 127.0.0.1. `extraArgs` are
 * added to `CHROMIUM_ARGS` (e.g. a certificate to trust).
 */
export function launchBrowser(extraArgs = []) {
  requireLoopbackOnly();
  return chromium.launch({ executablePath: chromiumPath, args: [...CHROMIUM_ARGS, ...extraArgs] });
}

/** The flags every Chromium of the tests and the benches starts with. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  `--host-resolver-rules=MAP ${LAN_NAME} 127.0.0.1`,
];

/**
 * A new page that fails the test on uncaught page errors (collected in `page.errors`),
 * Content-Security-Policy violations included: each `securitypolicyviolation` event is
 * logged as a console error and kept in `window.cspViolations`.
 */
export async function newPage(browser) {
  // Chromium offers the loopback interface as an ICE candidate only to pages granted
  // camera or microphone access (and with --allow-loopback-in-peer-connection); a
  // real browser on the LAN has its LAN address. The page asks for neither, and
  // stays no secure context.
  const context = await browser.newContext({
    viewport: { width: 800, height: 600 },
    permissions: ['camera', 'microphone'],
  });
  const page = await context.newPage();
  page.on('close', () => context.close().catch(() => {}));
  page.errors = [];
  page.log = [];
  await page.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (event) => {
      const where = event.sourceFile ? ` at ${event.sourceFile}:${event.lineNumber}` : '';
      const text = `CSP violation: ${event.effectiveDirective} blocked ${event.blockedURI || 'an inline resource'}${where}`;
      window.cspViolations.push(text);
      console.error(text);
    });
  });
  page.on('pageerror', (error) => page.errors.push(error.message));
  page.on('console', (message) => {
    page.log.push(`${message.type()}: ${message.text()}`);
    if (message.type() === 'error') page.errors.push(message.text());
  });
  return page;
}

/** Polls `fn` in the page until it returns something truthy; returns that. */
export async function waitInPage(page, fn, arg, { timeout = 10_000, what = 'condition' } = {}) {
  try {
    const handle = await page.waitForFunction(fn, arg, { timeout, polling: 50 });
    return await handle.jsonValue();
  } catch (error) {
    const state = await page.evaluate(() => JSON.stringify(window.streamerPlayer ?? null)).catch(() => '?');
    const log = (page.log || []).slice(-20).join('\n');
    throw new Error(`timed out after ${timeout} ms waiting for ${what}; player: ${state}\nconsole:\n${log}`, {
      cause: error,
    });
  }
}

/** The player's state, path and statistics. */
export function playerState(page) {
  return page.evaluate(() => ({
    state: window.streamerPlayer.state,
    path: window.streamerPlayer.path,
    stats: { ...window.streamerPlayer.stats },
  }));
}

/**
 * Samples the picture shown by `selector` (a canvas, or a video drawn to a canvas):
 * the colour at each of the 8 bar centres (x = (i + 0.5) * W / 8, y = H / 8, 5x5
 * average) and grey levels on a 4-pixel grid below the bars (`below`).
 */
export function samplePicture(page, selector) {
  return page.evaluate((selector) => {
    const source = document.querySelector(selector);
    const width = source.videoWidth || source.width;
    const height = source.videoHeight || source.height;
    let canvas = source;
    if (source instanceof HTMLVideoElement) {
      canvas = document.createElement('canvas');
      canvas.width = width;
      canvas.height = height;
      canvas.getContext('2d').drawImage(source, 0, 0, width, height);
    }
    const pixels = canvas.getContext('2d').getImageData(0, 0, width, height).data;
    const at = (x, y) => {
      const i = (Math.round(y) * width + Math.round(x)) * 4;
      return [pixels[i], pixels[i + 1], pixels[i + 2]];
    };
    const bars = [];
    for (let bar = 0; bar < 8; bar++) {
      const cx = ((bar + 0.5) * width) / 8;
      const cy = height / 8;
      const sum = [0, 0, 0];
      for (let dy = -2; dy <= 2; dy++) {
        for (let dx = -2; dx <= 2; dx++) {
          const [r, g, b] = at(cx + dx, cy + dy);
          sum[0] += r;
          sum[1] += g;
          sum[2] += b;
        }
      }
      bars.push(sum.map((v) => Math.round(v / 25)));
    }
    // Grey levels on a 4-pixel grid below the bars, to see the picture move.
    const below = [];
    for (let y = Math.ceil(height / 4) + 4; y < height; y += 4) {
      for (let x = 0; x < width; x += 4) {
        const [r, g, b] = at(x, y);
        below.push(Math.round((r + g + b) / 3));
      }
    }
    return { width, height, bars, below };
  }, selector);
}

/** The test pattern's bars, left to right, as on/off per RGB channel. */
export const BARS = [
  ['white', [1, 1, 1]],
  ['yellow', [1, 1, 0]],
  ['cyan', [0, 1, 1]],
  ['green', [0, 1, 0]],
  ['magenta', [1, 0, 1]],
  ['red', [1, 0, 0]],
  ['blue', [0, 0, 1]],
  ['black', [0, 0, 0]],
];

/**
 * Names what is wrong with sampled bar colours, or returns [] when each bar is the
 * expected colour: every channel clearly on (>= 150) or off (<= 90), allowing for
 * compression and limited-range conversion.
 */
export function barMismatches(bars) {
  const wrong = [];
  BARS.forEach(([name, expected], i) => {
    const rgb = bars[i];
    const ok = expected.every((on, c) => (on ? rgb[c] >= 150 : rgb[c] <= 90));
    if (!ok) wrong.push(`bar ${i} should be ${name}, is rgb(${rgb.join(', ')})`);
  });
  return wrong;
}

/** How many samples of two `below` grids differ clearly (by more than 40 grey levels). */
export function changedSamples(a, b) {
  let changed = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (Math.abs(a[i] - b[i]) > 40) changed += 1;
  return changed;
}

/**
 * Checks the picture in `selector` (the player's `<video>` or `<canvas>`): the test
 * pattern's size and bars, then, 0.7 s later, the bars again and a changed picture
 * below them (the clock, the counter and the moving box).
 */
export async function assertPictureRightAndMoving(page, selector) {
  const first = await samplePicture(page, selector);
  assert.equal(first.width, WIDTH);
  assert.equal(first.height, HEIGHT);
  assert.deepEqual(barMismatches(first.bars), [], JSON.stringify(first.bars));
  await sleep(700);
  const later = await samplePicture(page, selector);
  assert.deepEqual(barMismatches(later.bars), []);
  assert.ok(changedSamples(first.below, later.below) >= 5, 'the picture below the bars should change over time');
}

export { sleep };
