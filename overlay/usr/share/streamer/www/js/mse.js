// The fallback path: H.264 access units -> jMuxer (fMP4 into Media Source Extensions) -> <video>.

import { isKeyframe } from './h264.js';

/** @typedef {import('./decoder.js').DecoderPath} DecoderPath */
/** @typedef {import('./decoder.js').DecoderCallbacks} DecoderCallbacks */
/** @typedef {import('./decoder.js').FrameInfo} FrameInfo */
/** @typedef {import('./decoder.js').StreamParams} StreamParams */

/**
 * How the <video> is kept at the live edge (measured: docs/benchmarks.md, display delay).
 *
 * - Each access unit goes to the SourceBuffer at once: jMuxer is told that every
 *   message is one whole access unit with its duration (`duration`,
 *   `isLastVideoFrameComplete`). Fed bytes alone, it holds back the last NAL unit
 *   until the next message and the last frame until it sees the next one begin: two
 *   frame intervals of delay (66 ms at 30 fps) before the browser even has the frame.
 * - Media time follows the stream's frame rate exactly: durations are whole
 *   milliseconds that add up to `n * 1000 / fps` (jMuxer's own `1000 / fps | 0`
 *   is 33 ms at 30 fps: playback would run dry by 10 ms a second, and stall).
 * - A join backlog (the frames since the last keyframe, sent at once) gets 1 ms per
 *   frame but the last: the browser decodes it, and the live edge is not the GOP's
 *   age ahead of the playback position.
 * - The playback position is steered, not jumped: the least video held ahead of it
 *   when a frame arrives, over the last half second, is the slack; more slack than
 *   SLACK_S and playback runs faster (up to MAX_RATE) until it is gone. Only when
 *   more than MAX_BEHIND_S behind (a hidden tab, a stall) does it seek, since a
 *   seek makes the browser decode from the keyframe before the new position.
 */
/** Behind the end of the buffer by more than this (s), seek to the live edge. */
const MAX_BEHIND_S = 0.4;
/** Video held ahead of the playback position when a frame arrives, allowed (s). */
const SLACK_S = 0.01;
/** Over this window (ms) the least slack is taken. */
const SLACK_WINDOW_MS = 500;
/** Catch-up: 0.1 s more slack than allowed plays at 1.3 (eats it in a third of a second). */
const GAIN = 3;
/** Fastest catch-up rate. */
const MAX_RATE = 1.5;
/** Fed this long (ms) and still nothing to show: start the muxer anew. */
const STALL_MS = 4000;

let loading = null;

/** Loads jMuxer (vendored next to the player) once, by injecting a script tag. */
export function loadJMuxer() {
  if (globalThis.JMuxer) return Promise.resolve(globalThis.JMuxer);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = new URL('../vendor/jmuxer.min.js', import.meta.url).href;
      script.async = true;
      script.onload = () =>
        globalThis.JMuxer ? resolve(globalThis.JMuxer) : reject(new Error('jMuxer did not load'));
      script.onerror = () => {
        loading = null;
        script.remove();
        reject(new Error('cannot load vendor/jmuxer.min.js (run `make web`)'));
      };
      document.head.append(script);
    });
  }
  return loading;
}

/** True when this browser has Media Source Extensions. */
export function hasMse() {
  return Boolean(globalThis.MediaSource || globalThis.ManagedMediaSource || globalThis.WebKitMediaSource);
}

/**
 * Feeds each access unit to jMuxer and keeps the <video> at the live edge.
 *
 * One of the two decoder paths: the interface main.js uses is `DecoderPath` in
 * decoder.js. Calls back as the WebCodecs path does (`onShown`, `onDecoded`,
 * `onDropped`, `onUnsupported`), and also `onNeedKeyframe` (the muxer was started
 * anew and waits for a keyframe; reconnecting brings one at once) and `onSkip` (it
 * jumped to the live edge).
 *
 * @implements {DecoderPath}
 */
export class MsePlayer {
  /**
   * @param {HTMLVideoElement} video where the pictures are shown
   * @param {DecoderCallbacks} callbacks
   */
  constructor(video, callbacks) {
    /** @type {'mse'} */
    this.name = 'mse';
    this.video = video;
    this.callbacks = callbacks;
    this.muxer = null;
    this.starting = null;
    this.stream = null;
    this.needKey = true;
    this.pending = [];
    this.fed = 0;
    this.captured = new Map();
    this.closed = false;
    this.lastDecoded = 0;
    this.firstFedAt = null;
    /** Media time of the next access unit: exact (ms) and as jMuxer has it (whole ms). */
    this.mediaExact = 0;
    this.mediaMs = 0;
    /** Video held ahead of the playback position as frames arrived: `[when, s]`. */
    this.slack = [];
    this.edgeTimer = setInterval(() => this.#keepLive(), 250);
    this.onVisibility = () => {
      if (!document.hidden) this.#keepLive();
    };
    document.addEventListener('visibilitychange', this.onVisibility);
    this.#watchFrames();
  }

  /** The element that shows the picture. */
  get element() {
    return this.video;
  }

  /**
   * Takes a `stream` message: a new muxer when the parameters changed.
   * @param {StreamParams} stream
   */
  configure(stream) {
    const same =
      this.stream &&
      this.stream.codec === stream.codec &&
      this.stream.width === stream.width &&
      this.stream.height === stream.height &&
      this.stream.fps === stream.fps;
    if (same) return;
    const wanted = { ...stream };
    this.stream = wanted;
    if (!hasMse()) {
      this.callbacks.onUnsupported?.('this browser has neither WebCodecs nor Media Source Extensions');
      return;
    }
    const type = `video/mp4; codecs="${stream.codec}"`;
    const source = globalThis.MediaSource || globalThis.ManagedMediaSource || globalThis.WebKitMediaSource;
    if (source.isTypeSupported && !source.isTypeSupported(type)) {
      console.warn(`streamer: MSE says it cannot play ${type}; trying anyway`);
    }
    this.#destroyMuxer();
    this.needKey = true;
    loadJMuxer().then(
      (JMuxer) => {
        if (this.closed || this.stream !== wanted) return;
        this.fps = stream.fps > 0 ? stream.fps : 30;
        // Feed nothing before the MediaSource is open: jMuxer creates its SourceBuffer
        // when the first SPS/PPS arrive and never retries if the source was not open yet.
        const muxer = new JMuxer({
          node: this.video,
          mode: 'video',
          flushingTime: 0,
          // Our own seek (#keepLive) decides; jMuxer's is a backstop only.
          maxDelay: 4 * MAX_BEHIND_S * 1000,
          fps: this.fps,
          clearBuffer: true,
          debug: false,
          onReady: () => {
            if (this.closed || this.starting !== muxer) return;
            this.starting = null;
            this.muxer = muxer;
            this.fed = 0;
            this.firstFedAt = null;
            this.captured.clear();
            this.mediaExact = 0;
            this.mediaMs = 0;
            this.slack = [];
            this.#appendWhenIdle(muxer);
            // What came while jMuxer loaded is late already: all but the last is decoded
            // without being given screen time (as a join backlog is).
            const pending = this.pending;
            this.pending = [];
            pending.forEach((item, i) =>
              this.push(item.bytes, i < pending.length - 1 ? { ...item.info, silent: true } : item.info),
            );
          },
          onError: (error) => console.warn('streamer: MSE buffer error', error),
          onUnsupportedCodec: (codec) => console.warn(`streamer: MSE cannot play ${codec}`),
        });
        this.starting = muxer;
      },
      (error) => this.callbacks.onUnsupported?.(error.message),
    );
  }

  /**
   * One access unit; `info.capturedUs` is its capture time (server clock) when known.
   * @param {Uint8Array} bytes
   * @param {FrameInfo} [info]
   */
  push(bytes, info = {}) {
    if (this.closed) return;
    if (!this.muxer) {
      if (this.stream && this.pending.length < 600) this.pending.push({ bytes, info });
      else this.callbacks.onDropped?.(1, 'not ready');
      return;
    }
    if (this.needKey && !isKeyframe(bytes)) {
      this.callbacks.onDropped?.(1, 'waiting for a keyframe');
      return;
    }
    this.needKey = false;
    const at = this.mediaMs;
    let duration;
    if (info.silent) {
      duration = 1;
    } else {
      this.mediaExact = Math.max(this.mediaExact, at) + 1000 / this.fps;
      duration = Math.max(1, Math.round(this.mediaExact) - at);
    }
    this.mediaMs = at + duration;
    if (info.capturedUs) {
      this.captured.set(at, info.capturedUs);
      if (this.captured.size > 64) this.captured.delete(this.captured.keys().next().value);
    }
    this.fed += 1;
    this.firstFedAt ??= performance.now();
    if (!info.silent) this.#steer(at / 1000);
    this.muxer.feed({ video: bytes, duration, isLastVideoFrameComplete: true });
  }

  /** The server skipped frames; the next access unit is a keyframe. */
  resync() {
    this.needKey = true;
  }

  /** A canvas with the current picture (for snapshots), or null. */
  snapshotCanvas() {
    const { videoWidth: width, videoHeight: height } = this.video;
    if (!width || !height) return null;
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    canvas.getContext('2d').drawImage(this.video, 0, 0, width, height);
    return canvas;
  }

  /** Stops playback and releases the muxer. */
  close() {
    this.closed = true;
    clearInterval(this.edgeTimer);
    clearInterval(this.fallbackTimer);
    document.removeEventListener('visibilitychange', this.onVisibility);
    this.#destroyMuxer();
    this.video.removeAttribute('src');
    this.video.load();
  }

  #destroyMuxer() {
    for (const muxer of [this.muxer, this.starting]) {
      if (!muxer) continue;
      try {
        muxer.destroy();
      } catch (error) {
        console.warn('streamer: closing jMuxer', error);
      }
    }
    this.muxer = null;
    this.starting = null;
    this.pending = [];
  }

  /**
   * jMuxer appends only when fed: what it could not append because the SourceBuffer
   * was busy would wait for the next frame. Append it as soon as the buffer is free.
   */
  #appendWhenIdle(muxer) {
    const buffer = muxer.bufferControllers?.video?.sourceBuffer;
    if (!buffer) {
      // The SourceBuffer comes with the first frame.
      if (!this.closed && this.muxer === muxer) setTimeout(() => this.#appendWhenIdle(muxer), 50);
      return;
    }
    buffer.addEventListener('updateend', () => {
      if (this.muxer !== muxer) return;
      try {
        muxer.releaseBuffer();
      } catch (error) {
        console.warn('streamer: MSE append', error);
      }
    });
  }

  /**
   * A frame that starts at media time `at` (s) arrived: play faster while more video
   * than needed waits ahead of the playback position.
   */
  #steer(at) {
    const video = this.video;
    if (video.seeking || video.paused || video.readyState < 2) return;
    const now = performance.now();
    // The video fed before this frame that has not been played yet.
    const ahead = at - video.currentTime;
    this.slack.push([now, ahead]);
    while (this.slack.length && this.slack[0][0] < now - SLACK_WINDOW_MS) this.slack.shift();
    if (now - this.firstFedAt < SLACK_WINDOW_MS) return;
    let least = Infinity;
    for (const [, s] of this.slack) least = Math.min(least, s);
    const excess = least - SLACK_S;
    const rate = excess > 0 ? Math.min(MAX_RATE, 1 + GAIN * excess) : 1;
    if (Math.abs(video.playbackRate - rate) > 0.005) video.playbackRate = rate;
  }

  /** Never let latency grow: jump to the end of the buffer when far behind it. */
  #keepLive() {
    const video = this.video;
    if (!this.muxer || document.hidden) return;
    if (video.readyState < 2 && this.firstFedAt !== null && performance.now() - this.firstFedAt > STALL_MS) {
      console.warn('streamer: MSE shows nothing after', STALL_MS, 'ms of video; starting it anew');
      const stream = this.stream;
      this.#destroyMuxer();
      this.stream = null;
      this.configure(stream);
      this.callbacks.onNeedKeyframe?.();
      return;
    }
    const ranges = video.buffered;
    if (ranges.length) {
      const end = ranges.end(ranges.length - 1);
      if (end - video.currentTime > MAX_BEHIND_S && !video.seeking) {
        video.currentTime = Math.max(ranges.start(ranges.length - 1), end - 1 / this.fps - SLACK_S);
        this.slack = [];
        this.callbacks.onSkip?.();
      }
    }
    if (video.paused && video.readyState >= 2) video.play().catch(() => {});
    this.#countDecoded();
  }

  #countDecoded() {
    const quality = this.video.getVideoPlaybackQuality?.();
    if (!quality) return;
    const total = quality.totalVideoFrames;
    if (total > this.lastDecoded) {
      for (let i = this.lastDecoded; i < total; i++) this.callbacks.onDecoded?.();
    }
    this.lastDecoded = total;
  }

  /** Counts painted frames (and their latency) with requestVideoFrameCallback where there is one. */
  #watchFrames() {
    const video = this.video;
    if (typeof video.requestVideoFrameCallback === 'function') {
      const onFrame = (_now, metadata) => {
        if (this.closed) return;
        // Access units are fed at whole milliseconds of media time (jMuxer's timescale).
        const capturedUs = this.captured.get(Math.round(metadata.mediaTime * 1000));
        this.callbacks.onShown?.({ capturedUs, width: metadata.width, height: metadata.height });
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
    } else {
      // No per-frame callback: count what the element reports every tick.
      let shown = 0;
      this.fallbackTimer = setInterval(() => {
        const quality = video.getVideoPlaybackQuality?.();
        if (!quality) return;
        const total = quality.totalVideoFrames - quality.droppedVideoFrames;
        for (; shown < total; shown++) {
          this.callbacks.onShown?.({ width: video.videoWidth, height: video.videoHeight });
        }
      }, 250);
    }
  }
}
