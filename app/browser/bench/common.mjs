// What the browser benches share: a loopback-only network, the release streamer,
// headless Chromium set up for WebRTC on loopback, and percentiles.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { CHROMIUM_ARGS, chromiumPath, freePort, sleep } from '../harness.mjs';

export { freePort, sleep };

const here = path.dirname(fileURLToPath(import.meta.url));
/** app/browser/bench */
export const benchDir = here;
/** The repository's root. */
export const repo = path.resolve(here, '../../..');

/** `process.env[name]`, or `fallback` when unset or empty. */
export const env = (name, fallback) => process.env[name] || fallback;

/** A number from the environment, or `fallback`; anything else is an error. */
export function num(name, fallback) {
  const value = Number(env(name, fallback));
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number, not ${process.env[name]}`);
  return value;
}

/**
 * WebRTC traffic must stay on loopback (docs/testing.md): when this process sees any
 * network interface besides `lo`, it runs itself again in a new network namespace
 * with only `lo` up (`unshare -rn`, util-linux) and exits with its status. Returns
 * only inside such a namespace.
 */
export function ensureLoopbackOnly() {
  const others = Object.keys(os.networkInterfaces()).filter((name) => name !== 'lo');
  if (!others.length) return;
  if (process.env.BENCH_IN_NAMESPACE) throw new Error(`interfaces besides lo inside the namespace: ${others}`);
  const script = 'ip link set lo up && exec "$0" "$@"';
  const result = spawnSync('unshare', ['-rn', 'sh', '-c', script, process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_IN_NAMESPACE: '1' },
  });
  if (result.error) throw new Error(`cannot run unshare -rn (util-linux): ${result.error.message}`);
  process.exit(result.status ?? 1);
}

/**
 * A web root for the run: the player's files (`BENCH_WEB_ROOT`, default the repo's
 * overlay/usr/share/streamer/www) and app/browser/bench as `bench/` (the
 * seed-style and WHEP pages), all symlinks, so that every page comes from the
 * streamer itself (same origin, its headers and Content-Security-Policy).
 */
function benchWebRoot() {
  const player = path.resolve(env('BENCH_WEB_ROOT', path.join(repo, 'overlay/usr/share/streamer/www')));
  if (!existsSync(path.join(player, 'vendor/jmuxer.min.js'))) {
    throw new Error('vendor/jmuxer.min.js is missing from the web root: run `make web`');
  }
  const root = mkdtempSync(path.join(os.tmpdir(), 'streamer-bench-www-'));
  for (const entry of readdirSync(player)) symlinkSync(path.join(player, entry), path.join(root, entry));
  symlinkSync(here, path.join(root, 'bench'));
  return root;
}

/** The streamer binary the benches run (`STREAMER_BIN`, relative to app/browser). */
export const streamerBin = path.resolve(here, '..', env('STREAMER_BIN', '../../target/release/streamer'));

/**
 * Starts the streamer on 127.0.0.1 (WebRTC announcing 127.0.0.1 only, `streamer.local`
 * allowed as a host name), with `vars` added to its environment, and waits until
 * /healthz answers 200.
 */
export async function startStreamer(vars = {}) {
  if (!existsSync(streamerBin)) {
    throw new Error(`no streamer binary at ${streamerBin}: cargo build --release --bin streamer, or set STREAMER_BIN`);
  }
  const port = await freePort();
  const webRoot = benchWebRoot();
  const child = spawn(streamerBin, ['--config', '/nonexistent.toml'], {
    env: {
      ...process.env,
      STREAMER_SERVER__BIND: '127.0.0.1',
      STREAMER_SERVER__PORT: String(port),
      STREAMER_SERVER__WEB_ROOT: webRoot,
      STREAMER_SERVER__ALLOWED_HOSTS: 'streamer.local',
      STREAMER_WEBRTC__ANNOUNCE: '127.0.0.1',
      STREAMER_WEBRTC__UDP_PORT: '0',
      STREAMER_LOG__LEVEL: 'warn',
      ...vars,
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
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/healthz`)).status === 200) break;
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
  return {
    port,
    pid: child.pid,
    base,
    status: async () => (await fetch(`${base}/api/status`)).json(),
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

/**
 * Headless Chromium as the browser tests run it, plus what WebRTC on loopback needs:
 * loopback candidates allowed and not hidden behind mDNS names, and `streamer.local`
 * resolving to 127.0.0.1 (the page then is no secure context, as on a LAN).
 */
export function launchChromium() {
  return chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS });
}

/**
 * A browser context whose pages get camera and microphone permission: Chromium offers
 * its loopback address as an ICE candidate only to such pages. The pages ask for
 * neither.
 */
export function webRtcContext(browser, options = {}) {
  return browser.newContext({ permissions: ['camera', 'microphone'], ...options });
}

/** CPU time (user + system) of process `pid` so far, in seconds. */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces), 1-based: utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / clockTicks();
}

let ticksPerSecond = null;
function clockTicks() {
  if (ticksPerSecond === null) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    ticksPerSecond = Number(out.stdout.trim()) || 100;
  }
  return ticksPerSecond;
}

/** Resident memory of process `pid` in MB (VmRSS). */
export function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** The `p`th percentile of ascending `sorted` (nearest rank). */
export function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN;
}

/** One decimal, or a dash. */
export const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '–');

/** The machine, for the report: CPU model, cores, load, kernel. */
export function machine() {
  const cpus = os.cpus();
  return `${cpus[0]?.model ?? '?'}, ${cpus.length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`;
}
