// WebRTC cost per viewer (`make bench`, docs/benchmarks.md): the streamer's CPU and
// memory with 1, 10 and 50 WHEP viewers at two bitrates. Unlike the WebSocket, where
// every viewer is written the same shared bytes, each WebRTC viewer has its own SRTP
// encryption and RTP packetization, so the cost grows with viewers x bitrate.
//
// The source is the file source replaying an ffmpeg-made constrained-baseline stream
// (Debian's Chromium offers no High profile over WebRTC; a file cannot be asked for
// keyframes, so viewers' PLIs change nothing). The viewers are RTCPeerConnections in
// one headless Chromium page, each taking its frames through an insertable-streams
// reader (`encodedInsertableStreams`) that counts and discards them: ICE, DTLS, SRTP,
// RTCP and the jitter buffer run as in any browser, but nothing is decoded, so 50
// viewers fit on the two cores beside the server. Server CPU is utime+stime of its
// process from /proc over the window, RSS its VmRSS; the idle server (no viewer, the
// file still read and parsed) is measured first and subtracted.
//
// Runs in a loopback-only network namespace (see common.mjs).
// Environment: STREAMER_BIN, CHROMIUM, BENCH_WEBRTC_VIEWERS (1,10,50),
// BENCH_WEBRTC_MBPS (2,8), BENCH_WEBRTC_SECONDS (15 per scenario), BENCH_WIDTH x
// BENCH_HEIGHT (1280x720), BENCH_FPS (25).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

import {
  cpuSeconds,
  ensureLoopbackOnly,
  env,
  f1,
  launchChromium,
  machine,
  num,
  repo,
  rssMb,
  sleep,
  startStreamer,
  webRtcContext,
} from './common.mjs';

ensureLoopbackOnly();

const list = (name, fallback) =>
  env(name, fallback)
    .split(',')
    .filter(Boolean)
    .map((x) => {
      const n = Number(x);
      if (!(n > 0)) throw new Error(`${name}: ${x} is not a positive number`);
      return n;
    });

const settings = {
  viewers: list('BENCH_WEBRTC_VIEWERS', '1,10,50'),
  mbps: list('BENCH_WEBRTC_MBPS', '2,8'),
  seconds: num('BENCH_WEBRTC_SECONDS', 15),
  width: num('BENCH_WIDTH', 1280),
  height: num('BENCH_HEIGHT', 720),
  fps: num('BENCH_FPS', 25),
};

/** A noisy moving constrained-baseline stream at `mbps`, made once by ffmpeg (10 s, GOP 2 s). */
function ensureVideo(mbps) {
  const dir = path.join(repo, 'target/bench-data');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `webrtc-${settings.width}x${settings.height}-${settings.fps}fps-${mbps}mbps-baseline.h264`);
  if (existsSync(file)) return file;
  const rate = `${Math.round(mbps * 1000)}k`;
  const out = spawnSync(
    'ffmpeg',
    [
      ...['-v', 'error', '-y', '-f', 'lavfi', '-i'],
      `testsrc2=size=${settings.width}x${settings.height}:rate=${settings.fps},noise=alls=12:allf=t`,
      ...['-t', '10', '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency'],
      ...['-profile:v', 'baseline', '-pix_fmt', 'yuv420p'],
      ...['-b:v', rate, '-maxrate', rate, '-bufsize', rate, '-g', String(settings.fps * 2)],
      ...['-bsf:v', 'h264_mp4toannexb', file],
    ],
    { stdio: 'inherit' },
  );
  if (out.status !== 0) throw new Error('ffmpeg could not make the bench video (apt-get install ffmpeg)');
  return file;
}

/** In the page: opens `n` WHEP viewers that count their frames without decoding them. */
async function openViewers(n) {
  const viewers = (window.benchViewers ??= []);
  for (let i = 0; i < n; i++) {
    const pc = new RTCPeerConnection({ encodedInsertableStreams: true });
    const transceiver = pc.addTransceiver('video', { direction: 'recvonly' });
    const viewer = { pc, frames: 0, bytes: 0, location: null };
    const { readable } = transceiver.receiver.createEncodedStreams();
    readable.pipeTo(
      new WritableStream({
        write(frame) {
          viewer.frames += 1;
          viewer.bytes += frame.data.byteLength;
        },
      }),
    );
    await pc.setLocalDescription(await pc.createOffer());
    const response = await fetch('/whep', {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: pc.localDescription.sdp,
    });
    const answer = await response.text();
    if (response.status !== 201) throw new Error(`viewer ${viewers.length + 1}: ${response.status} ${answer}`);
    viewer.location = response.headers.get('location');
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    viewers.push(viewer);
  }
  return viewers.length;
}

/** In the page: frames and bytes each viewer has received so far, and its state. */
function viewerCounts() {
  return (window.benchViewers ?? []).map((v) => ({ frames: v.frames, bytes: v.bytes, state: v.pc.connectionState }));
}

/** In the page: ends every viewer (DELETE, then close). */
async function closeViewers() {
  const viewers = window.benchViewers ?? [];
  window.benchViewers = [];
  await Promise.all(
    viewers.map(async (v) => {
      if (v.location) await fetch(v.location, { method: 'DELETE' }).catch(() => {});
      v.pc.close();
    }),
  );
}

async function webrtcSessions(server) {
  const status = await server.status();
  return (status.viewers ?? []).filter((v) => v.transport === 'webrtc').length;
}

/** Server CPU (% of one core) and RSS over `seconds` from now. */
async function window_(server, seconds) {
  const cpu0 = cpuSeconds(server.pid);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const cpu1 = cpuSeconds(server.pid);
  const wall = (performance.now() - t0) / 1000;
  return { cpuPercent: ((cpu1 - cpu0) / wall) * 100, rssMb: rssMb(server.pid), wall };
}

async function scenario(browser, mbps) {
  const video = ensureVideo(mbps);
  const server = await startStreamer({
    STREAMER_CAMERA__SOURCE: 'file',
    STREAMER_CAMERA__FILE: video,
    STREAMER_SERVER__MAX_VIEWERS: '1000',
    STREAMER_SERVER__MAX_VIEWERS_PER_ADDRESS: '1000',
    STREAMER_SERVER__MAX_CONNECTIONS_PER_ADDRESS: '2000',
  });
  const rows = [];
  try {
    const idle = await window_(server, settings.seconds);
    rows.push({ mbps, viewers: 0, ...idle });
    for (const n of settings.viewers) {
      const context = await webRtcContext(browser);
      const page = await context.newPage();
      try {
        await page.goto(`http://streamer.local:${server.port}/healthz`);
        await page.evaluate(openViewers, n);
        // All connected and receiving, then settled.
        const by = Date.now() + 30_000;
        let counts = [];
        while (Date.now() < by) {
          counts = await page.evaluate(viewerCounts);
          if (counts.length === n && counts.every((c) => c.state === 'connected' && c.frames > settings.fps)) break;
          await sleep(250);
        }
        const ready = counts.filter((c) => c.state === 'connected' && c.frames > settings.fps).length;
        if (ready < n) throw new Error(`only ${ready} of ${n} viewers connected and receiving within 30 s`);
        await sleep(2000);
        const before = await page.evaluate(viewerCounts);
        const measured = await window_(server, settings.seconds);
        const after = await page.evaluate(viewerCounts);
        const sessions = await webrtcSessions(server);
        const frames = after.map((c, i) => c.frames - before[i].frames);
        const bytes = after.map((c, i) => c.bytes - before[i].bytes);
        const perViewerMbps = bytes.reduce((a, b) => a + b, 0) / n / measured.wall / 125_000;
        const fps = frames.map((f) => f / measured.wall);
        rows.push({
          mbps,
          viewers: n,
          sessions,
          ...measured,
          receivedMbps: perViewerMbps,
          fpsMin: Math.min(...fps),
          fpsMean: fps.reduce((a, b) => a + b, 0) / n,
        });
        console.log(
          `  ${mbps} Mbit/s, ${n} viewer(s): server ${f1(measured.cpuPercent)} % CPU, ${f1(measured.rssMb)} MB, each viewer ${f1(
            perViewerMbps,
          )} Mbit/s, ${f1(Math.min(...fps))}-${f1(Math.max(...fps))} fps`,
        );
      } finally {
        await page.evaluate(closeViewers).catch(() => {});
        await context.close();
      }
      // Wait until the server has let every session go.
      const by = Date.now() + 20_000;
      while ((await webrtcSessions(server)) > 0 && Date.now() < by) await sleep(250);
    }
  } finally {
    await server.stop();
  }
  return rows;
}

async function main() {
  const browser = await launchChromium();
  console.log('WebRTC cost per viewer');
  console.log(`  machine: ${machine()}`);
  console.log(`  browser: headless Chromium ${browser.version()} (viewers: insertable streams, no decoding)`);
  console.log(
    `  video:   ${settings.width}x${settings.height} at ${settings.fps} fps, constrained baseline, ${settings.mbps.join(
      ' and ',
    )} Mbit/s; ${settings.seconds} s per scenario`,
  );
  const rows = [];
  try {
    for (const mbps of settings.mbps) rows.push(...(await scenario(browser, mbps)));
  } finally {
    await browser.close();
  }
  console.log('');
  console.log(
    '| bitrate | viewers | server CPU (% of one core) | above idle, per viewer | per viewer and Mbit/s | each added viewer (from the row above) | RSS (MB) | above idle, per viewer (MB) | received per viewer | fps (slowest viewer) |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    const idle = rows.find((x) => x.mbps === r.mbps && x.viewers === 0);
    if (r.viewers === 0) {
      console.log(`| ${r.mbps} Mbit/s | 0 (idle) | ${f1(r.cpuPercent)} | | | | ${f1(r.rssMb)} | | | |`);
      continue;
    }
    const previous = rows[rows.indexOf(r) - 1];
    const marginal = (r.cpuPercent - previous.cpuPercent) / (r.viewers - previous.viewers);
    const cpu = (r.cpuPercent - idle.cpuPercent) / r.viewers;
    const mem = (r.rssMb - idle.rssMb) / r.viewers;
    console.log(
      `| ${r.mbps} Mbit/s | ${r.viewers} | ${f1(r.cpuPercent)} | ${cpu.toFixed(2)} % | ${(cpu / r.receivedMbps).toFixed(3)} % | ${marginal.toFixed(2)} % CPU, ${(
        (r.rssMb - previous.rssMb) /
        (r.viewers - previous.viewers)
      ).toFixed(2)} MB | ${f1(
        r.rssMb,
      )} | ${mem.toFixed(2)} | ${f1(r.receivedMbps)} Mbit/s | ${f1(r.fpsMin)} |`,
    );
  }
}

await main();
