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
// The delay of a picture = when the page showed it (probe.mjs: when the picture
// reached the compositor) minus the capture time the test pattern drew into it
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
// write every frame's figures; target/bench-data/display-delay.json), BENCH_WEB_ROOT
// (another copy of the player to measure, e.g. an older one).

import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  ensureLoopbackOnly,
  env,
  f1,
  launchChromium,
  machine,
  num,
  percentile,
  repo,
  sleep,
  startStreamer,
  webRtcContext,
} from './common.mjs';
import { delayMs, digitGlyphs, pictureLayout, readPicture } from './picture-clock.mjs';
import { installProbe } from './probe.mjs';

ensureLoopbackOnly();

const settings = {
  seconds: num('BENCH_DELAY_SECONDS', 20),
  warmup: num('BENCH_DELAY_WARMUP', 3),
  rounds: Math.max(1, num('BENCH_DELAY_ROUNDS', 1)),
  pages: env('BENCH_DELAY_PAGES', 'webrtc,whep,webcodecs,mse,seed').split(',').filter(Boolean),
  width: num('BENCH_WIDTH', 640),
  height: num('BENCH_HEIGHT', 480),
  fps: num('BENCH_FPS', 30),
  json: path.resolve(repo, env('BENCH_DELAY_JSON', 'target/bench-data/display-delay.json')),
};

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
  const context = await webRtcContext(browser, {
    viewport: { width: Math.max(800, settings.width), height: Math.max(600, settings.height + 100) },
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
        spec.path === 'webrtc' ? ' (WebRTC did not connect, or this player has no WebRTC path)' : ''
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

/** Figures for each tenth of a run (each at least 5 s long): shows growth, if any. */
function windows(frames) {
  if (!frames.length) return [];
  const t0 = frames[0].shownAt;
  const span = frames.at(-1).shownAt - t0;
  const count = Math.max(1, Math.min(10, Math.floor(span / 5000)));
  const parts = Array.from({ length: count }, () => []);
  for (const f of frames) parts[Math.min(count - 1, Math.floor(((f.shownAt - t0) / (span || 1)) * count))].push(f);
  return parts.map((part, i) => ({ fromS: Math.round((i * span) / count / 1000), ...summarise(part) }));
}

async function main() {
  const server = await startStreamer({
    STREAMER_CAMERA__SOURCE: 'test',
    STREAMER_CAMERA__WIDTH: String(settings.width),
    STREAMER_CAMERA__HEIGHT: String(settings.height),
    STREAMER_CAMERA__FRAMERATE: String(settings.fps),
  });
  const status = await server.status();
  const browser = await launchChromium();
  const version = browser.version();
  console.log('display-delay benchmark');
  console.log(`  machine:  ${machine()}`);
  console.log(`  browser:  headless Chromium ${version}, software decoding (--disable-gpu)`);
  console.log(
    `  stream:   test pattern ${settings.width}x${settings.height} at ${settings.fps} fps, ${status?.stream?.codec ?? ''}`,
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
  if (report.some((r) => r.error)) process.exitCode = 1;
}

await main();
