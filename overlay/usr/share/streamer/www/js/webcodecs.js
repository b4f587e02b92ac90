// The WebCodecs path: H.264 access units -> VideoDecoder -> <canvas>, at the live edge.

import { isKeyframe } from './h264.js';

/** @typedef {import('./decoder.js').DecoderPath} DecoderPath */
/** @typedef {import('./decoder.js').DecoderCallbacks} DecoderCallbacks */
/** @typedef {import('./decoder.js').FrameInfo} FrameInfo */
/** @typedef {import('./decoder.js').StreamParams} StreamParams */

/**
 * The decoder is behind when more than MAX_DECODE_QUEUE chunks wait in it for
 * BEHIND_MS in a row, or more than 4x that many at once: then skip to the next
 * keyframe rather than let the latency grow. (A short hiccup is not worth a freeze
 * until the next keyframe.)
 */
const MAX_DECODE_QUEUE = 3;
const BEHIND_MS = 400;
/** Most access units kept of the current GOP (for the catch-up when a hidden tab returns). */
const MAX_GOP = 600;
/** Decoder errors with no picture in between before giving up on WebCodecs. */
const MAX_FAILURES = 3;

/** True when this browser has WebCodecs video decoding at all. */
export function hasWebCodecs() {
  return typeof globalThis.VideoDecoder === 'function' && typeof globalThis.EncodedVideoChunk === 'function';
}

/**
 * The decoder configuration for a `stream` message (Annex-B: no `description`).
 * @param {StreamParams} stream
 */
export function decoderConfig(stream) {
  return {
    codec: stream.codec,
    codedWidth: stream.width,
    codedHeight: stream.height,
    optimizeForLatency: true,
  };
}

/**
 * Decodes each access unit as it arrives and paints each picture as soon as the
 * decoder outputs it; nothing is queued for display.
 *
 * One of the two decoder paths: the interface main.js uses is `DecoderPath` in
 * decoder.js. Calls back `onShown` after a picture is drawn, `onDecoded`, `onDropped`
 * for access units skipped, and `onUnsupported` when WebCodecs cannot play this
 * stream (switch to the other path); never `onNeedKeyframe` or `onSkip`.
 *
 * @implements {DecoderPath}
 */
export class WebCodecsPlayer {
  /**
   * @param {HTMLCanvasElement} canvas where the pictures are painted
   * @param {DecoderCallbacks} callbacks
   * @param {{forced?: boolean}} [options] `forced`: the page asked for this path
   *   (`?player=webcodecs`), so it never gives up in favour of MSE.
   */
  constructor(canvas, callbacks, { forced = false } = {}) {
    /** @type {'webcodecs'} */
    this.name = 'webcodecs';
    this.canvas = canvas;
    this.context = canvas.getContext('2d', { alpha: false, desynchronized: true });
    this.callbacks = callbacks;
    this.forced = forced;
    this.decoder = null;
    this.config = null;
    this.configured = false;
    this.checking = null;
    this.pending = [];
    this.needKey = true;
    this.failures = 0;
    this.nextTimestamp = 0;
    this.meta = new Map();
    this.gop = null;
    this.behindSince = null;
    this.draining = false;
    this.resetOnKey = false;
    this.closed = false;
    this.hasPicture = false;
    this.onVisibility = () => this.#visibilityChanged();
    document.addEventListener('visibilitychange', this.onVisibility);
  }

  /** The element that shows the picture. */
  get element() {
    return this.canvas;
  }

  /**
   * Takes a `stream` message: (re)configures the decoder when the parameters changed.
   * @param {StreamParams} stream
   */
  configure(stream) {
    const config = decoderConfig(stream);
    if (this.config && JSON.stringify(this.config) === JSON.stringify(config)) return;
    this.config = config;
    this.configured = false;
    this.needKey = true;
    const check = VideoDecoder.isConfigSupported(config).then(
      (support) => support.supported,
      () => false,
    );
    this.checking = check;
    check.then((supported) => {
      if (this.checking !== check || this.closed) return;
      this.checking = null;
      if (!supported && !this.forced) {
        this.callbacks.onUnsupported?.(`this browser cannot decode ${config.codec} with WebCodecs`);
        return;
      }
      this.#startDecoder();
      const pending = this.pending;
      this.pending = [];
      for (const item of pending) this.push(item.bytes, item.info);
    });
  }

  /**
   * One access unit. `info.capturedUs`: capture time (server clock) when known;
   * `info.silent`: decode but do not paint (a join backlog before its last frame);
   * `info.catchUp`: part of a burst decoded at once, not a sign of falling behind.
   * @param {Uint8Array} bytes
   * @param {FrameInfo} [info]
   */
  push(bytes, info = {}) {
    if (this.closed) return;
    if (!this.configured) {
      if (this.checking && this.pending.length < MAX_GOP) this.pending.push({ bytes, info });
      else this.callbacks.onDropped?.(1, 'not configured');
      return;
    }
    const key = isKeyframe(bytes);
    // The access units since the last keyframe: what a returning hidden tab decodes at once.
    if (key) this.gop = [];
    if (this.gop) {
      if (this.gop.length < MAX_GOP) this.gop.push({ bytes, info });
      else this.gop = null;
    }
    if (document.hidden) {
      // Nobody sees it: decode nothing (the decoder would only fall behind).
      this.needKey = true;
      return;
    }
    if (info.catchUp) {
      // A burst on purpose (join backlog, return from a hidden tab): let it drain.
      this.draining = true;
    } else if (this.draining) {
      if (this.decoder.decodeQueueSize <= MAX_DECODE_QUEUE) this.draining = false;
    } else if (!this.needKey && this.#fallingBehind()) {
      // The decoder cannot keep up: let latency not grow, skip to the next keyframe.
      this.needKey = true;
      this.resetOnKey = true;
    }
    if (this.needKey && !key) {
      this.callbacks.onDropped?.(1, this.resetOnKey ? 'decoder behind' : 'waiting for a keyframe');
      return;
    }
    if (key && this.resetOnKey) {
      this.resetOnKey = false;
      const discarded = this.decoder.decodeQueueSize;
      this.#resetDecoder();
      if (discarded) this.callbacks.onDropped?.(discarded, 'decoder behind');
    }
    this.needKey = false;
    const timestamp = this.nextTimestamp;
    this.nextTimestamp += 1000;
    this.meta.set(timestamp, info);
    // A decoder that swallowed chunks without output must not make this map grow.
    if (this.meta.size > 256) this.meta.delete(this.meta.keys().next().value);
    try {
      this.decoder.decode(new EncodedVideoChunk({ type: key ? 'key' : 'delta', timestamp, data: bytes }));
    } catch (error) {
      this.#failed(error);
    }
  }

  /** The server skipped frames; the next access unit is a keyframe. */
  resync() {
    this.needKey = true;
    this.gop = null;
  }

  /** The canvas with the current picture (for snapshots), or null before the first one. */
  snapshotCanvas() {
    if (!this.hasPicture) return null;
    return this.canvas;
  }

  /** Stops decoding and releases the decoder. */
  close() {
    this.closed = true;
    document.removeEventListener('visibilitychange', this.onVisibility);
    if (this.decoder && this.decoder.state !== 'closed') this.decoder.close();
    this.decoder = null;
    this.meta.clear();
  }

  #startDecoder() {
    if (!this.decoder || this.decoder.state === 'closed') {
      this.decoder = new VideoDecoder({
        output: (frame) => this.#output(frame),
        error: (error) => this.#failed(error),
      });
    }
    this.decoder.configure(this.config);
    this.configured = true;
    this.needKey = true;
  }

  #fallingBehind() {
    const queued = this.decoder.decodeQueueSize;
    if (queued <= MAX_DECODE_QUEUE) {
      this.behindSince = null;
      return false;
    }
    const now = performance.now();
    this.behindSince ??= now;
    return queued > 4 * MAX_DECODE_QUEUE || now - this.behindSince >= BEHIND_MS;
  }

  #resetDecoder() {
    this.behindSince = null;
    this.meta.clear();
    if (this.decoder.state !== 'closed') this.decoder.reset();
    this.decoder.configure(this.config);
  }

  #output(frame) {
    const info = this.meta.get(frame.timestamp) || {};
    this.meta.delete(frame.timestamp);
    this.failures = 0;
    this.callbacks.onDecoded?.();
    try {
      if (info.silent || document.hidden) return;
      const width = frame.displayWidth;
      const height = frame.displayHeight;
      if (this.canvas.width !== width || this.canvas.height !== height) {
        this.canvas.width = width;
        this.canvas.height = height;
      }
      this.context.drawImage(frame, 0, 0, width, height);
      this.hasPicture = true;
      this.callbacks.onShown?.({ capturedUs: info.capturedUs, width, height });
    } finally {
      frame.close();
    }
  }

  #failed(error) {
    if (this.closed) return;
    this.failures += 1;
    console.warn('streamer: video decoder error', error);
    if (this.failures >= MAX_FAILURES && !this.forced) {
      this.callbacks.onUnsupported?.(`WebCodecs keeps failing: ${error && error.message}`);
      return;
    }
    // A decoder that reported an error is closed: start a new one at the next keyframe.
    this.decoder = null;
    this.meta.clear();
    if (this.config) this.#startDecoder();
  }

  #visibilityChanged() {
    if (this.closed || document.hidden || !this.configured) return;
    // Back in view: decode the current GOP at once and paint only its last picture.
    const gop = this.gop || [];
    this.#resetDecoder();
    this.needKey = true;
    this.resetOnKey = false;
    this.gop = null;
    gop.forEach((item, index) => {
      this.push(item.bytes, { ...item.info, silent: index < gop.length - 1, catchUp: true });
    });
  }
}
