// The WebRTC path: WHEP (RFC 9725) to the streamer, the browser's own RTP/H.264 stack
// and jitter buffer into a <video>, and a data channel `events` carrying the same
// JSON messages as the WebSocket's text messages (docs/protocol.md).

import { backoffDelay } from './connection.js';

/** Not connected this long after starting a session: WebRTC does not get through here. */
export const CONNECT_TIMEOUT_MS = 5000;
/** A connected session "disconnected" this long is gone (server restart, network loss). */
const DISCONNECTED_MS = 2500;
/**
 * A connected session whose data channel brought nothing this long is gone: the
 * server sends `stats` every 2 s and `timing` every second, and one that ended the
 * session (or went away) says nothing the browser's ICE would notice sooner.
 */
const SILENT_MS = 5000;
/** `503`/`429` answers (server full, no video yet) retried this often before giving up on WebRTC. */
const BUSY_RETRIES = 2;
/** Longest wait honoured from a `Retry-After`, s. */
const MAX_RETRY_AFTER_S = 3;

/** True when this browser has WebRTC at all. */
export function hasWebRtc() {
  return typeof globalThis.RTCPeerConnection === 'function';
}

/**
 * The WHEP endpoint for a page at `location`: the page's folder + `whep`, like the
 * WebSocket's address, so the player works behind a reverse proxy's path prefix.
 * @param {{protocol: string, host: string, pathname: string}} location
 */
export function whepUrl(location) {
  const path = location.pathname || '/';
  const folder = path.slice(0, path.lastIndexOf('/') + 1) || '/';
  return `${location.protocol}//${location.host}${folder}whep`;
}

/**
 * The session resource named by a `201`'s `Location`, resolved against the endpoint
 * (RFC 9725). A server behind a path prefix does not know the prefix: when it names
 * an absolute path outside the endpoint's folder, the folder is put in front.
 * @param {string} endpoint the WHEP endpoint's absolute URL
 * @param {string} location the `Location` header
 */
export function sessionUrl(endpoint, location) {
  const base = new URL(endpoint);
  const url = new URL(location, base);
  const folder = base.pathname.slice(0, base.pathname.lastIndexOf('/') + 1);
  if (location.startsWith('/') && !location.startsWith('//') && !url.pathname.startsWith(folder)) {
    url.pathname = folder + url.pathname.slice(1);
  }
  return url.href;
}

/**
 * The capture time (µs, server clock) of a picture with RTP timestamp `rtp`, from
 * the last `timing` message's `rtp_timestamp` and `captured_us` (the server derives
 * the 90 kHz timestamps from the capture time). Null when there is no such message or
 * the picture is more than 5 s away from it (wrap-around of the 32-bit timestamp is
 * taken into account).
 * @param {number | undefined} rtp
 * @param {{rtp: number, capturedUs: number} | null} anchor
 */
export function capturedUsOf(rtp, anchor) {
  if (!anchor || !Number.isFinite(rtp) || !Number.isFinite(anchor.rtp) || !Number.isFinite(anchor.capturedUs)) {
    return null;
  }
  const span = 2 ** 32;
  // Signed distance in ticks, in [-2^31, 2^31).
  const ticks = ((((/** @type {number} */ (rtp) - anchor.rtp) % span) + span + span / 2) % span) - span / 2;
  if (Math.abs(ticks) > 5 * 90_000) return null;
  return anchor.capturedUs + (ticks * 1000) / 90;
}

/**
 * Asks the receiver for the smallest jitter buffer: `jitterBufferTarget` (ms, the
 * standard) and Chrome's older `playoutDelayHint` (s), where the browser has them.
 * @param {RTCRtpReceiver} receiver
 */
function askForMinimumDelay(receiver) {
  const r = /** @type {any} */ (receiver);
  try {
    if ('jitterBufferTarget' in r) r.jitterBufferTarget = 0;
    if ('playoutDelayHint' in r) r.playoutDelayHint = 0;
  } catch (error) {
    console.info('streamer: cannot ask for the minimum jitter buffer', error);
  }
}

/**
 * WebRTC's own figures for the stats overlay, from `getStats()`.
 * @typedef {object} WebRtcFigures
 * @property {number | null} jitterBufferMs jitter-buffer delay per frame since the last
 *   call (jitterBufferDelay / jitterBufferEmittedCount), ms
 * @property {number} framesReceived
 * @property {number} framesDecoded
 * @property {number} framesDropped dropped by the browser before display
 * @property {number} packetsLost
 * @property {number | null} framesPerSecond decoded, as the browser reports it
 * @property {number | null} rttMs round trip of the selected candidate pair, ms
 * @property {number} nackCount
 * @property {number} pliCount keyframe requests sent
 * @property {string | null} codec e.g. `video/H264 profile-level-id=42e01f;…`
 * @property {{frames: number, bytes: number, decoded: number, dropped: number}} delta
 *   what came since the last call (counters restart with each session)
 */

/**
 * What the session tells main.js. All optional.
 * @typedef {object} WebRtcCallbacks
 * @property {() => void} [onOpen] The data channel is open: messages can be sent.
 * @property {() => void} [onConnected] ICE and DTLS are up: video can flow.
 * @property {(message: any) => void} [onText] A JSON message from the data channel.
 * @property {(shown: {width: number, height: number, rtpTimestamp?: number}) => void} [onShown]
 *   A picture is being shown (requestVideoFrameCallback), with its RTP timestamp where
 *   the browser says it.
 * @property {(reason: string) => void} [onClose] The session ended (a new one follows).
 * @property {(ms: number, reason: string) => void} [onRetry] A new session is tried in `ms`.
 * @property {(reason: string, retryable: boolean) => void} [onFallback] WebRTC does not
 *   work here, and why: main.js uses the WebSocket instead. The session has closed
 *   itself. `retryable`: the server was only busy (full, or no video yet: the camera
 *   starts), so WebRTC may work once video flows.
 */

/**
 * One WHEP viewer with its reconnections: POST /whep with a recvonly offer (video and
 * the data channel `events`), the answer set, the picture into `video`. A session
 * that fails after it worked (server restart, network loss) is replaced by a new POST,
 * with backoff. A first session that cannot be set up (no WHEP endpoint, WebRTC turned
 * off, no common codec, no connection within CONNECT_TIMEOUT_MS: UDP blocked, a
 * proxy) calls `onFallback` instead, unless the page forced WebRTC.
 */
export class WebRtcSession {
  /**
   * @param {HTMLVideoElement} video where the picture is shown
   * @param {string} endpoint the WHEP endpoint (absolute URL, see whepUrl)
   * @param {WebRtcCallbacks} callbacks
   * @param {{forced?: boolean, connectTimeoutMs?: number}} [options] `forced`: the page
   *   asked for WebRTC (`?player=webrtc`): never fall back, keep trying.
   */
  constructor(video, endpoint, callbacks, { forced = false, connectTimeoutMs = CONNECT_TIMEOUT_MS } = {}) {
    /** @type {'webrtc'} */
    this.name = 'webrtc';
    this.video = video;
    this.endpoint = endpoint;
    this.callbacks = callbacks;
    this.forced = forced;
    this.connectTimeoutMs = connectTimeoutMs;
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** @type {RTCDataChannel | null} */
    this.channel = null;
    /** @type {string | null} The session resource, for DELETE. */
    this.resource = null;
    this.connected = false;
    this.everConnected = false;
    this.attempt = 0;
    this.busy = 0;
    this.reconnects = 0;
    this.closed = false;
    this.timer = null;
    this.connectTimer = null;
    this.disconnectTimer = null;
    this.silenceTimer = null;
    /** When the data channel last brought a message (performance.now()). */
    this.heardAt = 0;
    /** getStats counters of the last call, for the deltas. */
    this.last = null;
    this.#watchFrames();
  }

  /** The element that shows the picture. */
  get element() {
    return this.video;
  }

  /** Starts the first session. */
  start() {
    this.#connect();
  }

  /** Pictures arrive: the next failure starts the backoff anew. */
  markHealthy() {
    this.attempt = 0;
  }

  /** Sends a JSON message on the data channel if it is open. */
  send(message) {
    if (this.channel && this.channel.readyState === 'open') this.channel.send(JSON.stringify(message));
  }

  /**
   * Ends the session and starts a new one at once (e.g. the stream's codec changed,
   * so the answer's profile must be negotiated anew).
   * @param {string} reason
   */
  restart(reason) {
    if (this.closed) return;
    this.#teardown();
    this.callbacks.onClose?.(reason);
    this.reconnects += 1;
    this.#connect();
  }

  /**
   * Ends for good: the session resource is deleted (with a keepalive request, so it
   * also happens while the page unloads).
   */
  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.#teardown();
  }

  /** A canvas with the current picture (for snapshots), or null. */
  snapshotCanvas() {
    const { videoWidth: width, videoHeight: height } = this.video;
    if (!width || !height) return null;
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    canvas.getContext('2d')?.drawImage(this.video, 0, 0, width, height);
    return canvas;
  }

  /**
   * WebRTC's own figures for the current session, or null when there is none yet.
   * @returns {Promise<WebRtcFigures | null>}
   */
  async stats() {
    const pc = this.pc;
    if (!pc) return null;
    const report = await pc.getStats();
    /** @type {any} */
    let inbound = null;
    /** @type {any} */
    let transport = null;
    /** @type {any[]} */
    const pairs = [];
    report.forEach((entry) => {
      if (entry.type === 'inbound-rtp' && (entry.kind ?? entry.mediaType) === 'video') inbound = entry;
      else if (entry.type === 'transport') transport = entry;
      else if (entry.type === 'candidate-pair') pairs.push(entry);
    });
    if (!inbound || this.pc !== pc) return null;
    const pair =
      (transport?.selectedCandidatePairId && report.get(transport.selectedCandidatePairId)) ||
      pairs.find((p) => p.nominated && p.state === 'succeeded') ||
      null;
    const codec = inbound.codecId ? report.get(inbound.codecId) : null;
    const now = {
      pc,
      frames: inbound.framesReceived ?? 0,
      bytes: inbound.bytesReceived ?? 0,
      decoded: inbound.framesDecoded ?? 0,
      dropped: inbound.framesDropped ?? 0,
      delay: inbound.jitterBufferDelay ?? 0,
      emitted: inbound.jitterBufferEmittedCount ?? 0,
    };
    const last = this.last && this.last.pc === pc ? this.last : { frames: 0, bytes: 0, decoded: 0, dropped: 0, delay: 0, emitted: 0 };
    this.last = now;
    const emitted = now.emitted - last.emitted;
    let jitterBufferMs = emitted > 0 ? ((now.delay - last.delay) / emitted) * 1000 : null;
    if (jitterBufferMs === null && now.emitted > 0) jitterBufferMs = (now.delay / now.emitted) * 1000;
    const rtt = pair?.currentRoundTripTime;
    return {
      jitterBufferMs,
      framesReceived: now.frames,
      framesDecoded: now.decoded,
      framesDropped: now.dropped,
      packetsLost: inbound.packetsLost ?? 0,
      framesPerSecond: inbound.framesPerSecond ?? null,
      rttMs: Number.isFinite(rtt) ? rtt * 1000 : null,
      nackCount: inbound.nackCount ?? 0,
      pliCount: inbound.pliCount ?? 0,
      codec: codec ? [codec.mimeType, codec.sdpFmtpLine].filter(Boolean).join(' ') : null,
      delta: {
        frames: Math.max(0, now.frames - last.frames),
        bytes: Math.max(0, now.bytes - last.bytes),
        decoded: Math.max(0, now.decoded - last.decoded),
        dropped: Math.max(0, now.dropped - last.dropped),
      },
    };
  }

  async #connect() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.closed) return;
    let pc;
    try {
      pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: 'max-bundle' });
    } catch (error) {
      this.#cannotUse(`cannot create an RTCPeerConnection: ${errorText(error)}`);
      return;
    }
    this.pc = pc;
    this.connected = false;
    this.connectTimer = setTimeout(() => {
      if (this.pc === pc && !this.connected) {
        this.#notConnected(`not connected within ${this.connectTimeoutMs / 1000} s (UDP blocked, or a proxy in between?)`);
      }
    }, this.connectTimeoutMs);

    const transceiver = pc.addTransceiver('video', { direction: 'recvonly' });
    askForMinimumDelay(transceiver.receiver);
    const channel = pc.createDataChannel('events', { ordered: true });
    this.channel = channel;
    channel.onopen = () => {
      if (this.pc !== pc) return;
      this.heardAt = performance.now();
      clearInterval(this.silenceTimer);
      this.silenceTimer = setInterval(() => {
        if (this.pc === pc && this.connected && performance.now() - this.heardAt > SILENT_MS) {
          this.#lost(`nothing from the server for ${SILENT_MS / 1000} s`);
        }
      }, 1000);
      this.callbacks.onOpen?.();
    };
    channel.onmessage = (event) => {
      if (this.pc !== pc) return;
      this.heardAt = performance.now();
      if (typeof event.data !== 'string') return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message && typeof message.type === 'string') this.callbacks.onText?.(message);
    };
    channel.onclose = () => {
      if (this.pc === pc && this.connected) this.#lost('the data channel closed');
    };
    pc.ontrack = (event) => {
      if (this.pc !== pc) return;
      askForMinimumDelay(event.receiver);
      const video = this.video;
      video.muted = true;
      video.playsInline = true;
      video.srcObject = event.streams[0] || new MediaStream([event.track]);
      video.play().catch(() => {});
    };
    pc.onconnectionstatechange = () => this.#stateChanged(pc);
    pc.oniceconnectionstatechange = () => this.#stateChanged(pc);

    let response;
    try {
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      response = await fetch(this.endpoint, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp' },
        body: pc.localDescription?.sdp ?? offer.sdp,
        cache: 'no-store',
      });
    } catch (error) {
      if (this.pc !== pc) return;
      this.#unreachable(`cannot reach ${this.endpoint}: ${errorText(error)}`);
      return;
    }
    const location = response.headers.get('Location');
    if (this.pc !== pc) {
      // Closed or replaced meanwhile: do not leave the session behind on the server.
      if (response.status === 201 && location) deleteSession(sessionUrl(this.endpoint, location), false);
      return;
    }
    const text = await response.text().catch(() => '');
    if (this.pc !== pc) return;
    if (response.status !== 201) {
      this.#refused(response.status, text.trim(), response.headers.get('Retry-After'));
      return;
    }
    this.resource = location ? sessionUrl(this.endpoint, location) : null;
    try {
      await pc.setRemoteDescription({ type: 'answer', sdp: text });
    } catch (error) {
      if (this.pc === pc) this.#cannotUse(`the server's SDP answer was not accepted: ${errorText(error)}`);
    }
  }

  /** @param {RTCPeerConnection} pc */
  #stateChanged(pc) {
    if (this.pc !== pc) return;
    // Older Safari has no connectionState: the ICE state says enough.
    const ice = pc.iceConnectionState;
    const state = pc.connectionState ?? (ice === 'completed' ? 'connected' : ice);
    if (state === 'connected') {
      clearTimeout(this.connectTimer);
      clearTimeout(this.disconnectTimer);
      this.disconnectTimer = null;
      if (!this.connected) {
        this.connected = true;
        this.everConnected = true;
        this.busy = 0;
        this.callbacks.onConnected?.();
      }
    } else if (state === 'disconnected') {
      if (this.connected && !this.disconnectTimer) {
        this.disconnectTimer = setTimeout(() => {
          if (this.pc === pc) this.#lost('the connection was lost');
        }, DISCONNECTED_MS);
      }
    } else if (state === 'failed') {
      if (this.connected) this.#lost('the connection failed');
      else this.#notConnected('the connection failed (ICE or DTLS)');
    }
  }

  /** A session that worked has ended: a new one, with backoff. */
  #lost(reason) {
    this.#teardown();
    this.callbacks.onClose?.(reason);
    this.#retry(backoffDelay(this.attempt++), reason);
  }

  /** The session did not connect in time, or failed before connecting. */
  #notConnected(reason) {
    if (this.forced) {
      this.#teardown();
      this.callbacks.onClose?.(reason);
      this.#retry(backoffDelay(this.attempt++), reason);
    } else {
      this.#cannotUse(reason);
    }
  }

  /** POST /whep answered something else than 201. */
  #refused(status, text, retryAfter) {
    const reason = `POST whep answered ${status}${text ? `: ${text.slice(0, 200)}` : ''}`;
    const turnedOff = /enabled|disabled|turned off/i.test(text);
    if ((status === 503 || status === 429) && !turnedOff && (this.forced || this.busy < BUSY_RETRIES)) {
      // Full, or no video yet: worth another try soon.
      this.busy += 1;
      const seconds = Math.min(MAX_RETRY_AFTER_S, Math.max(1, Number(retryAfter) || 1));
      this.#teardown();
      this.#retry(seconds * 1000, reason);
    } else if (this.forced) {
      this.#teardown();
      this.#retry(backoffDelay(this.attempt++), reason);
    } else {
      this.#cannotUse(reason, (status === 503 || status === 429) && !turnedOff);
    }
  }

  /** POST /whep did not get an answer (network error, server away). */
  #unreachable(reason) {
    if (this.everConnected || this.forced) {
      // The server restarts, or the network is away for a moment: keep trying.
      this.#teardown();
      this.#retry(backoffDelay(this.attempt++), reason);
    } else {
      this.#cannotUse(reason);
    }
  }

  /**
   * WebRTC does not work here: main.js takes the WebSocket.
   * @param {string} reason
   * @param {boolean} [retryable] only busy: worth another try once video flows
   */
  #cannotUse(reason, retryable = false) {
    if (this.forced) {
      this.#teardown();
      this.#retry(backoffDelay(this.attempt++), reason);
      return;
    }
    this.close();
    this.callbacks.onFallback?.(reason, retryable);
  }

  #retry(ms, reason) {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.callbacks.onRetry?.(ms, reason);
    this.timer = setTimeout(() => {
      this.reconnects += 1;
      this.#connect();
    }, ms);
  }

  /** Closes the current peer connection and deletes its session resource. */
  #teardown() {
    clearTimeout(this.connectTimer);
    clearInterval(this.silenceTimer);
    clearTimeout(this.disconnectTimer);
    this.disconnectTimer = null;
    const pc = this.pc;
    this.pc = null;
    this.connected = false;
    if (this.channel) {
      this.channel.onopen = this.channel.onmessage = this.channel.onclose = null;
      this.channel = null;
    }
    if (pc) {
      pc.ontrack = pc.onconnectionstatechange = pc.oniceconnectionstatechange = null;
      pc.close();
    }
    if (this.resource) deleteSession(this.resource, true);
    this.resource = null;
    if (this.video.srcObject) {
      this.video.srcObject = null;
    }
  }

  /** Reports each picture shown, with requestVideoFrameCallback where there is one. */
  #watchFrames() {
    const video = this.video;
    if (typeof video.requestVideoFrameCallback === 'function') {
      /** @type {VideoFrameRequestCallback} */
      const onFrame = (_now, metadata) => {
        if (this.closed) return;
        if (video.srcObject) {
          const rtpTimestamp = /** @type {any} */ (metadata).rtpTimestamp;
          this.callbacks.onShown?.({ width: metadata.width, height: metadata.height, rtpTimestamp });
        }
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
      return;
    }
    // No per-frame callback: count what the element reports, four times a second.
    let shown = 0;
    const timer = setInterval(() => {
      if (this.closed) {
        clearInterval(timer);
        return;
      }
      const quality = video.getVideoPlaybackQuality?.();
      if (!quality || !video.srcObject) return;
      const total = quality.totalVideoFrames - quality.droppedVideoFrames;
      if (total < shown) shown = 0;
      for (; shown < total; shown++) {
        this.callbacks.onShown?.({ width: video.videoWidth, height: video.videoHeight });
      }
    }, 250);
  }
}

/**
 * DELETE a session resource; `keepalive` lets it outlive the page.
 * @param {string} url
 * @param {boolean} keepalive
 */
function deleteSession(url, keepalive) {
  fetch(url, { method: 'DELETE', keepalive, cache: 'no-store' }).catch(() => {});
}

/** @param {unknown} error */
function errorText(error) {
  return error instanceof Error ? error.message : String(error);
}
