// What the player measures: counters, frame rate and bit rate over the last second, latency.

import { nowMs } from './clock.js';

/** Length of the window for the measured rates, ms. */
const WINDOW_MS = 1000;

/**
 * Live statistics. `values` is a plain object updated in place (exposed to tests as
 * `window.streamerPlayer.stats`).
 */
export class Stats {
  constructor(now = nowMs) {
    this.now = now;
    this.shownTimes = [];
    this.received = [];
    this.values = {
      path: null,
      transport: null,
      fallback: null,
      webrtc: null,
      width: 0,
      height: 0,
      framesReceived: 0,
      framesDecoded: 0,
      framesShown: 0,
      framesDropped: 0,
      serverDropped: 0,
      resyncs: 0,
      reconnects: 0,
      bytesReceived: 0,
      fps: 0,
      bitrateKbps: 0,
      latencyMs: null,
      viewers: null,
      firstFrameMs: null,
      dropReasons: {},
    };
  }

  /** An access unit of `bytes` arrived (or `frames` of them, `bytes` in all). */
  frameReceived(bytes, frames = 1) {
    const t = this.now();
    this.values.framesReceived += frames;
    this.values.bytesReceived += bytes;
    this.received.push([t, bytes]);
    this.#update(t);
  }

  /** A picture was decoded. */
  frameDecoded() {
    this.values.framesDecoded += 1;
  }

  /** A picture was painted. */
  frameShown(width, height) {
    const t = this.now();
    const v = this.values;
    v.framesShown += 1;
    if (v.firstFrameMs === null) v.firstFrameMs = t - performance.timeOrigin;
    if (width && height) {
      v.width = width;
      v.height = height;
    }
    this.shownTimes.push(t);
    this.#update(t);
  }

  /** A capture-to-display latency measurement, ms; smoothed a little. */
  latency(ms) {
    if (!Number.isFinite(ms)) return;
    const v = this.values;
    v.latencyMs = Math.round(v.latencyMs === null ? ms : 0.7 * v.latencyMs + 0.3 * ms);
  }

  /** `n` access units were skipped by the player, and why. */
  dropped(n, reason = 'other') {
    this.values.framesDropped += n;
    this.values.dropReasons[reason] = (this.values.dropReasons[reason] || 0) + n;
  }

  /** Recomputes the rates; call now and then when no frames come. */
  refresh() {
    this.#update(this.now());
  }

  #update(t) {
    const since = t - WINDOW_MS;
    while (this.shownTimes.length && this.shownTimes[0] < since) this.shownTimes.shift();
    while (this.received.length && this.received[0][0] < since) this.received.shift();
    this.values.fps = this.shownTimes.length;
    let bytes = 0;
    for (const [, n] of this.received) bytes += n;
    this.values.bitrateKbps = Math.round((bytes * 8) / WINDOW_MS);
  }
}
