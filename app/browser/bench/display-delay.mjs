// Display-delay bench (`make bench`, docs/benchmarks.md): how long after the test
// pattern drew a picture does headless Chromium show it, read from the picture itself.
//
// One release streamer (test pattern), one Chromium, the pages one after another, each
// in a fresh browser context, for BENCH_DELAY_SECONDS after a warm-up; the order is
// repeated BENCH_DELAY_ROUNDS times so that slow drifts of the machine hit every page:
//
//   webrtc     the player forced to WebRTC (?player=webrtc), http://streamer.local:PORT/
//   whep       a bare WHEP page (bench/whep.html): RTCPeerConnection into <video>, no player
//   webcodecs  the player forced to WebCodecs, http://localhost:PORT/ (a secure context)
//   mse        the player forced to MSE (jMuxer), http://streamer.local:PORT/
//   seed       a seed-style jMuxer page (bench/seed-jmuxer.html), http://streamer.local:PORT/
//
// The delay of a picture = when the page showed it (probe.mjs: the rendering frame
// that first shows it) minus the capture time the test pattern drew into it
// (picture-clock.mjs reads it back). Same machine, same clock: no clock sync involved.
//
// WebRTC needs a loopback-only network: when this process sees any interface besides
// `lo`, it runs itself again in a new network namespace (`unshare -rn`) with only `lo`
// up. The streamer announces 127.0.0.1 only.
//
// Environment: STREAMER_BIN (../../target/release/streamer), CHROMIUM (/usr/bin/chromium),
// BENCH_DELAY_SECONDS (20 per page and round), BENCH_DELAY_WARMUP (3 s),
// BENCH_DELAY_ROUNDS (1), BENCH_DELAY_PAGES (webrtc,whep,webcodecs,mse,seed),
// BENCH_WIDTH x BENCH_HEIGHT (640x480), BENCH_FPS (30), BENCH_DELAY_JSON (where to
// write every frame's figures; target/bench-data/display-delay.json).

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { delayMs, digitGlyphs, pictureLayout, readPicture } from './picture-clock.mjs';
import { installProbe } from './probe.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');

const env = (name, fallback) => process.env[name] || fallback;
const num = (name, fallback) => {
  const value = Number(env(name, fallback));
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number, not ${process.env[name]}`);
  return value;
};

/** True when this process can only reach loopback (no interface but `lo`). */
function loopbackOnly() {
  return Object.keys(os.networkInterfaces()).every((name) => name === 'lo');
}

if (!loopbackOnly()) {
  if (process.env.BENCH_IN_NAMESPACE) throw new Error('still see interfaces besides lo inside the namespace');
  const script = 'ip link set lo up && exec "$0" "$@"';
  const result = spawnSync('unshare', ['-rn', 'sh', '-c', script, process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_IN_NAMESPACE: '1' },
  });
  if (result.error) throw new Error(`cannot run unshare -rn (util-linux): ${result.error.message}`);
  process.exit(result.status ?? 1);
}

const settings = {
  bin: path.resolve(here, '..', env('STREAMER_BIN', '../../target/release/streamer')),
  chromium: env('CHROMIUM', '/usr/bin/chromium'),
  seconds: num('BENCH_DELAY_SECONDS', 20),
  warmup: num('BENCH_DELAY_WARMUP', 3),
  rounds: Math.max(1, num('BENCH_DELAY_ROUNDS', 1)),
  pages: env('BENCH_DELAY_PAGES', 'webrtc,whep,webcodecs,mse,seed').split(',').filter(Boolean),
  width: num('BENCH_WIDTH', 640),
  height: num('BENCH_HEIGHT', 480),
  fps: num('BENCH_FPS', 30),
  json: path.resolve(repo, env('BENCH_DELAY_JSON', 'target/bench-data/display-delay.json')),
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function freePort() {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * A web root for the run: the player's files and this folder as `bench/` (the seed
 * and WHEP pages), all symlinks, so that every page comes from the streamer itself
 * (same origin, its headers and Content-Security-Policy).
 */
function benchWebRoot() {
  const player = path.join(repo, 'overlay/usr/share/streamer/www');
  if (!existsSync(path.join(player, 'vendor/jmuxer.min.js'))) {
    throw new Error('vendor/jmuxer.min.js is missing from the web root: run `make web`');
  }
  const root = mkdtempSync(path.join(os.tmpdir(), 'streamer-bench-www-'));
  for (const entry of readdirSync(player)) symlinkSync(path.join(player, entry), path.join(root, entry));
  symlinkSync(here, path.join(root, 'bench'));
  return root;
}

async function startStreamer() {
  if (!existsSync(settings.bin)) {
    throw new Error(`no streamer binary at ${settings.bin}: cargo build --release --bin streamer, or set STREAMER_BIN`);
  }
  const port = await freePort();
  const webRoot = benchWebRoot();
  const child = spawn(settings.bin, ['--config', '/nonexistent.toml'], {
    env: {
      ...process.env,
      STREAMER_SERVER__BIND: '127.0.0.1',
      STREAMER_SERVER__PORT: String(port),
      STREAMER_SERVER__WEB_ROOT: webRoot,
      STREAMER_SERVER__ALLOWED_HOSTS: 'streamer.local',
      STREAMER_CAMERA__SOURCE: 'test',
      STREAMER_CAMERA__WIDTH: String(settings.width),
      STREAMER_CAMERA__HEIGHT: String(settings.height),
      STREAMER_CAMERA__FRAMERATE: String(settings.fps),
      STREAMER_WEBRTC__ANNOUNCE: '127.0.0.1',
      STREAMER_WEBRTC__UDP_PORT: '0',
      STREAMER_LOG__LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = [];
  const keep = (chunk) => {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    lines.splice(0, Math.max(0, lines.length - 100));
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const base = `127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if ((await fetch(`http://${base}/healthz`)).status === 200) break;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      rmSync(webRoot, { recursive: true, force: true });
      throw new Error(`streamer did not become healthy:\n${lines.join('\n')}`);
    }
    await sleep(100);
  }
  const status = await (await fetch(`http://${base}/api/status`)).json();
  return {
    port,
    pid: child.pid,
    status,
    output: () => lines.join('\n'),
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      rmSync(webRoot, { recursive: true, force: true });
    },
  };
}

/** The pages, by name: where to go, what shows the picture, what else to check. */
function pageSpec(name, port) {
  const lan = `http://streamer.local:${port}`;
  const fps = settings.fps;
  switch (name) {
    case 'webrtc':
      return { url: `${lan}/?player=webrtc`, video: '#video', path: 'webrtc', what: 'player, ?player=webrtc' };
    case 'whep':
      return { url: `${lan}/bench/whep.html`, video: '#video', what: 'bare WHEP page' };
    case 'webcodecs':
      return {
        url: `http://localhost:${port}/?player=webcodecs`,
        canvas: '#canvas',
        path: 'webcodecs',
        what: 'player, ?player=webcodecs on localhost',
      };
    case 'mse':
      return { url: `${lan}/?player=mse`, video: '#video', path: 'mse', what: 'player, ?player=mse' };
    case 'seed':
      return {
        url: `${lan}/bench/seed-jmuxer.html?fps=${fps}`,
        video: '#player',
        what: 'seed-style jMuxer page',
      };
    default:
      throw new Error(`unknown page ${name} in BENCH_DELAY_PAGES (webrtc, whep, webcodecs, mse, seed)`);
  }
}

const probeConfig = {
  digits: digitGlyphs(),
  readPicture: readPicture.toString(),
  layout: pictureLayout.toString(),
};

/**
 * One page for `seconds`: the frames it showed after the warm-up, or why none.
 * @returns {Promise<{name: string, what: string, frames: object[], unreadable: number, error?: string, note?: string}>}
 */
async function measure(browser, name, port) {
  const spec = pageSpec(name, port);
  const context = await browser.newContext({
    viewport: { width: Math.max(800, settings.width), height: Math.max(600, settings.height + 100) },
    // Chromium offers its loopback address as an ICE candidate only to pages with
    // media access; the pages ask for none (and stay no secure context).
    permissions: ['camera', 'microphone'],
  });
  const page = await context.newPage();
  const log = [];
  page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  const result = { name, what: spec.what, frames: [], unreadable: 0 };
  try {
    await page.addInitScript(installProbe, { ...probeConfig, video: spec.video, canvas: spec.canvas });
    await page.goto(spec.url);
    const firstBy = Date.now() + 20_000;
    while (Date.now() < firstBy) {
      const seen = await page.evaluate(() => window.__delayProbe.frames.length + window.__delayProbe.unreadable);
      if (seen > 0) break;
      await sleep(200);
    }
    const info = await page.evaluate(() => ({
      path: window.streamerPlayer?.path ?? null,
      secure: window.isSecureContext,
      whepError: window.whepError ?? null,
      probe: { ...window.__delayProbe, frames: window.__delayProbe.frames.length },
    }));
    result.secure = info.secure;
    if (spec.path && info.path !== spec.path) {
      result.error = `the player runs ${info.path ?? 'nothing'}, not ${spec.path}${
        spec.path === 'webrtc' ? ' (this player has no WebRTC path yet)' : ''
      }`;
      return result;
    }
    if (info.whepError) {
      result.error = `WHEP: ${info.whepError}`;
      return result;
    }
    if (info.probe.frames === 0) {
      result.error = `no readable picture in 20 s (probe: ${JSON.stringify(info.probe)}); console:\n${log.slice(-10).join('\n')}`;
      return result;
    }
    await sleep(settings.warmup * 1000);
    await page.evaluate(() => {
      window.__delayProbe.frames.length = 0;
      window.__delayProbe.unreadable = 0;
    });
    const start = Date.now();
    const end = start + settings.seconds * 1000;
    while (Date.now() < end) {
      await sleep(Math.min(1000, Math.max(0, end - Date.now())));
      const batch = await page.evaluate(() => window.__delayProbe.frames.splice(0));
      result.frames.push(...batch);
    }
    const tail = await page.evaluate(() => ({
      frames: window.__delayProbe.frames.splice(0),
      unreadable: window.__delayProbe.unreadable,
      stats: window.streamerPlayer ? { ...window.streamerPlayer.stats } : null,
    }));
    result.frames.push(...tail.frames);
    result.unreadable = tail.unreadable;
    result.playerStats = tail.stats;
    result.start = start;
  } catch (error) {
    result.error = String(error?.message ?? error);
  } finally {
    await context.close().catch(() => {});
  }
  return result;
}

const percentile = (sorted, p) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN;

/** Delay figures of a list of frames. */
function summarise(frames) {
  const delays = frames.map((f) => delayMs(f.clockMs, f.shownAt));
  const sorted = [...delays].sort((a, b) => a - b);
  // Frames the page never showed: gaps in the counter between frames it did show.
  let missed = 0;
  for (let i = 1; i < frames.length; i++) {
    const gap = frames[i].counter - frames[i - 1].counter;
    if (gap > 1 && gap < 10_000) missed += gap - 1;
  }
  // Growth: least-squares slope of the delay over the run, ms per minute.
  let slope = NaN;
  if (frames.length > 2) {
    const t = frames.map((f) => (f.shownAt - frames[0].shownAt) / 60_000);
    const mt = t.reduce((a, b) => a + b, 0) / t.length;
    const md = delays.reduce((a, b) => a + b, 0) / delays.length;
    let num = 0;
    let den = 0;
    for (let i = 0; i < t.length; i++) {
      num += (t[i] - mt) * (delays[i] - md);
      den += (t[i] - mt) ** 2;
    }
    slope = den ? num / den : NaN;
  }
  const aheads = frames.map((f) => f.ahead).filter((a) => a !== undefined && a !== null).sort((a, b) => a - b);
  return {
    aheadP50: percentile(aheads, 50),
    shown: frames.length,
    missed,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? NaN,
    min: sorted[0] ?? NaN,
    slopeMsPerMin: slope,
  };
}

/** p95 of each tenth of a run (at least 5 s each): shows growth, if any. */
function windows(frames) {
  if (!frames.length) return [];
  const t0 = frames[0].shownAt;
  const span = frames.at(-1).shownAt - t0;
  const size = Math.max(5000, span / 10);
  const out = [];
  for (let from = 0; from <= span; from += size) {
    const part = frames.filter((f) => f.shownAt - t0 >= from && f.shownAt - t0 < from + size);
    if (part.length) out.push({ fromS: Math.round(from / 1000), ...summarise(part) });
  }
  return out;
}

const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '–');

async function main() {
  const server = await startStreamer();
  const browser = await chromium.launch({
    executablePath: settings.chromium,
    args: [
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
      '--host-resolver-rules=MAP streamer.local 127.0.0.1',
    ],
  });
  const version = browser.version();
  const load0 = os.loadavg();
  console.log('display-delay benchmark');
  console.log(`  machine:  ${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, load ${load0.map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`  browser:  headless Chromium ${version}, software decoding (--disable-gpu)`);
  console.log(
    `  stream:   test pattern ${settings.width}x${settings.height} at ${settings.fps} fps, ${server.status?.stream?.codec ?? ''}`,
  );
  console.log(
    `  run:      ${settings.rounds} round(s) of ${settings.pages.join(', ')}, ${settings.seconds} s each after ${settings.warmup} s warm-up`,
  );
  const runs = [];
  try {
    for (let round = 0; round < settings.rounds; round++) {
      for (const name of settings.pages) {
        const result = await measure(browser, name, server.port);
        result.round = round + 1;
        result.load = os.loadavg()[0];
        runs.push(result);
        const s = summarise(result.frames);
        if (result.error) console.log(`  ${name}: ${result.error}`);
        else
          console.log(
            `  ${name} (round ${round + 1}): ${s.shown} shown, ${s.missed} not, p50 ${f1(s.p50)} / p95 ${f1(s.p95)} / max ${f1(s.max)} ms${
              Number.isFinite(s.aheadP50) ? `, buffered ahead p50 ${f1(s.aheadP50)} ms` : ''
            }, load ${result.load.toFixed(1)}`,
          );
      }
    }
  } finally {
    await browser.close();
    await server.stop();
  }

  console.log('');
  console.log('| page | what | pictures shown | not shown | unreadable | delay p50 / p95 / p99 / max (ms) | growth (ms/min) | p95 first / last window |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  const report = [];
  for (const name of settings.pages) {
    const mine = runs.filter((r) => r.name === name);
    const failed = mine.find((r) => r.error);
    if (failed && mine.every((r) => r.error)) {
      console.log(`| ${name} | ${failed.what} | – | – | – | not measured: ${failed.error.split('\n')[0]} | | |`);
      report.push({ name, what: failed.what, error: failed.error });
      continue;
    }
    const frames = mine.flatMap((r) => r.frames);
    // Counter gaps only within a run, not between rounds.
    const s = { ...summarise(frames), missed: mine.reduce((a, r) => a + summarise(r.frames).missed, 0) };
    const perRound = mine.filter((r) => !r.error).map((r) => windows(r.frames));
    const w = perRound.flat();
    const unreadable = mine.reduce((a, r) => a + r.unreadable, 0);
    console.log(
      `| ${name} | ${mine[0].what} | ${s.shown} | ${s.missed} | ${unreadable} | ${f1(s.p50)} / ${f1(s.p95)} / ${f1(s.p99)} / ${f1(s.max)} | ${f1(
        mine.length === 1 ? s.slopeMsPerMin : NaN,
      )} | ${f1(w[0]?.p95)} / ${f1(w.at(-1)?.p95)} |`,
    );
    report.push({ name, what: mine[0].what, summary: s, windows: perRound, unreadable });
  }
  mkdirSync(path.dirname(settings.json), { recursive: true });
  writeFileSync(
    settings.json,
    JSON.stringify({ settings, browser: version, machine: os.cpus()[0]?.model, report, runs }, null, 1),
  );
  console.log(`\nevery frame: ${path.relative(process.cwd(), settings.json)}`);
  if (report.some((r) => r.error && r.name !== 'webrtc')) process.exitCode = 1;
}

await main();
