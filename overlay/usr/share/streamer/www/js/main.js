// Wires the transport, the clock, the decoder path, the stats and the page together.
//
// Which way the picture comes: WebRTC (webrtc.js: WHEP, the browser's own decoder and
// jitter buffer) wherever the browser has RTCPeerConnection; else, or when WebRTC
// does not get through (no WHEP, UDP blocked), the WebSocket with one of two decoder
// paths, WebCodecs (secure contexts) or MSE. `?player=webrtc|webcodecs|mse` forces
// one. The two WebSocket decoder paths (webcodecs.js, mse.js) share one interface,
// `DecoderPath`, written down in decoder.js.

import { AccessCheck, hasPassword, loginUrl } from './access.js';
import { nowMs, ServerClock } from './clock.js';
import { Connection, wsUrl } from './connection.js';
import { MsePlayer } from './mse.js';
import { Stats } from './stats.js';
import { Ui } from './ui.js';
import { hasWebCodecs, WebCodecsPlayer } from './webcodecs.js';
import { capturedUsOf, hasWebRtc, WebRtcSession, whepUrl } from './webrtc.js';

/** @typedef {import('./decoder.js').DecoderPath} DecoderPath */
/** @typedef {import('./decoder.js').DecoderCallbacks} DecoderCallbacks */

/** How often a page goes back from the WebSocket to WebRTC after WebRTC was only busy. */
const MAX_WEBRTC_RETRIES = 3;

/** Pings right after connecting (quick first offset estimate), then one every PING_EVERY_MS. */
const FIRST_PINGS = 5;
const PING_EVERY_MS = 3000;

const params = new URLSearchParams(location.search);
const forced = ['webrtc', 'mse', 'webcodecs'].includes(params.get('player')) ? params.get('player') : null;

const ui = new Ui();
const stats = new Stats();
const clock = new ServerClock();
const canvas = document.getElementById('canvas');
const video = document.getElementById('video');

/** For tests and curious people: the player's state, live statistics and decoder path. */
const api = {
  state: 'connecting',
  stats: stats.values,
  path: null,
  /** `webrtc` or `websocket`. */
  transport: null,
  /** Why the player is not on WebRTC when it would prefer it, in plain words; else null. */
  fallback: null,
  /** WebRTC's own figures (getStats) while on WebRTC. */
  webrtc: null,
  hello: null,
  stream: null,
  clock,
};
window.streamerPlayer = api;

/**
 * The decoder path in use on the WebSocket: WebCodecs, or MSE as the fallback.
 * @type {DecoderPath | null}
 */
let player = null;
/** @type {Connection | null} The WebSocket, once the player uses it. */
let connection = null;
/** @type {WebRtcSession | null} The WebRTC session while the player uses WebRTC. */
let rtc = null;
/** The codec of the WebRTC session's stream (from its first `stream` message). */
let rtcCodec = null;
/** The last `timing` message's RTP timestamp and capture time (WebRTC latency). */
let rtpAnchor = null;
let figuresPending = false;
/** WebRTC was only busy (no video yet, full): try it again once the WebSocket shows video. */
let retryWebRtc = false;
/** Such second tries so far (at most MAX_WEBRTC_RETRIES per page). */
let webRtcRetries = 0;
let sourceState = null;
let timing = null;
let backlog = 0;
let gotVideo = false;
let pingTimer = null;
/** Why this browser cannot play the stream at all; shown instead of the source state. */
let fatal = null;

/**
 * Whether this page may still watch: a 401 from `/api/status` (a password is set and
 * this browser's session is gone) goes to the login page, which comes back here.
 */
const access = new AccessCheck({
  onLocked() {
    if (api.state === 'login') return;
    api.state = 'login';
    connection?.close();
    rtc?.close();
    location.replace(loginUrl(location));
  },
  onStatus(status) {
    ui.showLogout(hasPassword(status));
  },
});

function setState(state, detail) {
  api.state = state;
  ui.setState(state, detail);
}

/**
 * Switches to a WebSocket decoder path, closing the one before.
 * @param {'webcodecs' | 'mse'} path
 */
function usePath(path) {
  player?.close();
  /** @type {DecoderCallbacks} */
  const callbacks = {
    onDecoded: () => stats.frameDecoded(),
    onDropped: (n, reason) => stats.dropped(n, reason),
    onShown: shown,
    onUnsupported: unsupported,
    // A fresh connection starts with a keyframe.
    onNeedKeyframe: () => connection?.restart(),
  };
  player =
    path === 'mse'
      ? new MsePlayer(video, callbacks)
      : new WebCodecsPlayer(canvas, callbacks, { forced: forced === 'webcodecs' });
  api.path = stats.values.path = path;
  ui.showElement(player.element);
  if (api.stream) player.configure(api.stream);
}

/** @param {{capturedUs?: number, width: number, height: number}} frame */
function shown({ capturedUs, width, height }) {
  stats.frameShown(width, height);
  if (!capturedUs) return;
  const captured = clock.toClientMs(capturedUs);
  if (captured === null) return;
  if (player.name === 'mse') {
    // Called from requestVideoFrameCallback: the frame is being composited now.
    stats.latency(nowMs() - captured);
  } else {
    // Drawn on the canvas just now; on screen with the next animation frame.
    requestAnimationFrame(() => stats.latency(nowMs() - captured));
  }
}

function unsupported(reason) {
  if (player?.name === 'webcodecs' && forced !== 'webcodecs') {
    console.info(`streamer: ${reason}; switching to MSE`);
    usePath('mse');
    // A fresh connection starts with a keyframe, so the new path shows a picture at once.
    connection?.restart();
    return;
  }
  fatal = reason;
  setState('error', reason);
}

function onText(message) {
  switch (message.type) {
    case 'hello':
      api.hello = message;
      ui.setConfigErrors(Array.isArray(message.config_errors) ? message.config_errors.map(String) : []);
      break;
    case 'stream':
      api.stream = { codec: message.codec, width: message.width, height: message.height, fps: message.fps };
      player?.configure(api.stream);
      if (rtc) {
        // WebRTC follows a new size in-band; another codec string (profile or level)
        // needs a new answer, whose profile-level-id is the stream's. The server ends
        // the session then too: start the new one at once.
        if (rtcCodec !== null && rtcCodec !== message.codec) {
          rtc.restart(`the stream's codec changed from ${rtcCodec} to ${message.codec}`);
        }
        rtcCodec = message.codec;
      }
      break;
    case 'state':
      sourceState = message.state;
      if (sourceState === 'live') (rtc || connection)?.markHealthy();
      showSourceState(message.message);
      break;
    case 'join':
      backlog = Math.max(0, Number(message.frames) || 0);
      break;
    case 'resync':
      stats.values.resyncs += 1;
      player?.resync();
      break;
    case 'timing':
      timing = message;
      if (rtc && message.rtp_timestamp !== undefined) {
        rtpAnchor = { rtp: Number(message.rtp_timestamp), capturedUs: Number(message.captured_us) };
      }
      break;
    case 'stats':
      stats.values.viewers = message.viewers ?? null;
      stats.values.serverDropped = Number(message.dropped) || 0;
      break;
    case 'pong':
      clock.pong(message);
      break;
    default:
      break; // Unknown types are ignored, as the protocol says.
  }
}

function showSourceState(detail) {
  if (fatal) return;
  // Live may carry why this source runs (e.g. "no camera found": the test pattern).
  if (sourceState === 'live' || (sourceState === null && gotVideo)) setState('live', detail);
  else if (sourceState === 'offline') setState('offline', detail);
  else if (sourceState === 'starting') setState('starting', detail);
  // On demand: the server starts the camera now that we watch.
  else if (sourceState === 'idle') setState('starting', 'Starting the camera…');
  else setState('connecting');
}

function onBinary(bytes) {
  stats.frameReceived(bytes.byteLength);
  const info = {};
  if (timing) {
    info.capturedUs = Number(timing.captured_us);
    timing = null;
  }
  if (backlog > 0) {
    backlog -= 1;
    info.catchUp = true;
    info.silent = backlog > 0;
  }
  firstVideo();
  player?.push(bytes, info);
}

/** Video arrived: the transport works, and the page says live. */
function firstVideo() {
  if (gotVideo) return;
  gotVideo = true;
  (rtc || connection)?.markHealthy();
  if (sourceState === null) showSourceState();
  if (retryWebRtc && connection) {
    // Video flows now (e.g. the camera started on demand): WebRTC gets another try.
    retryWebRtc = false;
    webRtcRetries += 1;
    setTimeout(backToWebRtc, 0);
  }
}

/** Leaves the WebSocket for WebRTC (see retryWebRtc). */
function backToWebRtc() {
  if (connection) {
    // Its close event must not touch the new session's state.
    connection.callbacks = {};
    connection.close();
  }
  connection = null;
  player?.close();
  player = null;
  clearInterval(pingTimer);
  sourceState = null;
  timing = null;
  backlog = 0;
  gotVideo = false;
  api.fallback = stats.values.fallback = null;
  useWebRtc();
}

function startPings() {
  clearInterval(pingTimer);
  let sent = 0;
  const ping = () => (rtc || connection)?.send(clock.ping());
  ping();
  pingTimer = setInterval(() => {
    ping();
    sent += 1;
    if (sent === FIRST_PINGS - 1) {
      clearInterval(pingTimer);
      pingTimer = setInterval(ping, PING_EVERY_MS);
    }
  }, 150);
}

/** The WebSocket transport with decoder path `path`. */
function useWebSocket(path) {
  api.transport = stats.values.transport = 'websocket';
  usePath(path);
  if (connection) {
    connection.restart();
    return;
  }
  const wsQuery = params.get('timing') === 'frame' ? 'timing=frame' : '';
  connection = new Connection(wsUrl(location, wsQuery), {
    onOpen() {
      sourceState = null;
      gotVideo = false;
      startPings();
    },
    onText,
    onBinary,
    onClose() {
      clearInterval(pingTimer);
      sourceState = null;
      timing = null;
      backlog = 0;
      player?.resync();
    },
    onRetry(ms) {
      api.state = 'reconnecting';
      ui.setReconnecting(Date.now() + ms);
      // A refused handshake looks like any failure: is it the password?
      access.check();
    },
  });
  connection.open();
}

/** The WebRTC transport (WHEP); falls back to the WebSocket by itself unless forced. */
function useWebRtc() {
  api.transport = stats.values.transport = 'webrtc';
  api.path = stats.values.path = 'webrtc';
  rtc = new WebRtcSession(
    video,
    whepUrl(location),
    {
      onOpen() {
        sourceState = null;
        startPings();
      },
      onText,
      onShown: shownOnWebRtc,
      onClose(reason) {
        console.info(`streamer: WebRTC session ended: ${reason}`);
        clearInterval(pingTimer);
        sourceState = null;
        timing = null;
        rtpAnchor = null;
        rtcCodec = null;
        gotVideo = false;
      },
      onRetry(ms, reason) {
        api.state = 'reconnecting';
        ui.setReconnecting(Date.now() + ms, forced === 'webrtc' ? reason : '');
        access.check();
      },
      onFallback(reason, retryable) {
        access.check();
        console.info(`streamer: WebRTC does not work here (${reason}); using the WebSocket`);
        retryWebRtc = retryable && webRtcRetries < MAX_WEBRTC_RETRIES;
        rtc = null;
        api.webrtc = stats.values.webrtc = null;
        api.fallback = stats.values.fallback = reason;
        clearInterval(pingTimer);
        sourceState = null;
        timing = null;
        gotVideo = false;
        useWebSocket(hasWebCodecs() ? 'webcodecs' : 'mse');
      },
    },
    { forced: forced === 'webrtc' },
  );
  ui.showElement(video);
  rtc.start();
}

/** A picture shown on the WebRTC path: counted, and its latency when its capture time is known. */
function shownOnWebRtc({ width, height, rtpTimestamp }) {
  firstVideo();
  stats.frameShown(width, height);
  const capturedUs = capturedUsOf(rtpTimestamp, rtpAnchor);
  if (capturedUs === null) return;
  const captured = clock.toClientMs(capturedUs);
  // Called from requestVideoFrameCallback: the frame is being composited now.
  if (captured !== null) stats.latency(nowMs() - captured);
}

/** Takes WebRTC's own figures into the statistics (bit rate, frames, drops). */
function collectWebRtcFigures() {
  if (!rtc || figuresPending) return;
  figuresPending = true;
  rtc
    .stats()
    .then((figures) => {
      if (!figures || !rtc) return;
      api.webrtc = stats.values.webrtc = figures;
      const { delta } = figures;
      if (delta.frames || delta.bytes) stats.frameReceived(delta.bytes, delta.frames);
      stats.values.framesDecoded += delta.decoded;
      if (delta.dropped) stats.dropped(delta.dropped, 'dropped by the browser (WebRTC)');
    })
    .catch((error) => console.info('streamer: getStats', error))
    .finally(() => {
      figuresPending = false;
    });
}

/** The stats overlay's rows besides the common ones. */
function extraRows() {
  /** @type {Record<string, string>} */
  const rows = {};
  const transport = api.transport === 'webrtc' ? 'WebRTC' : api.transport === 'websocket' ? 'WebSocket' : '–';
  rows.Transport = api.fallback ? `${transport} (no WebRTC: ${api.fallback})` : transport;
  const figures = api.webrtc;
  if (rtc && figures) {
    const ms = (v) => (v === null || v === undefined ? '–' : `${v.toFixed(1)} ms`);
    rows['Jitter buffer'] = `${ms(figures.jitterBufferMs)} per frame`;
    rows['Frames decoded'] = `${figures.framesDecoded}${figures.framesPerSecond ? ` (${figures.framesPerSecond} fps)` : ''}`;
    rows['Frames dropped'] = String(figures.framesDropped);
    rows['Packets lost'] = String(figures.packetsLost);
    rows['Round trip'] = ms(figures.rttMs);
    rows['Keyframe requests'] = String(figures.pliCount);
    if (figures.codec) rows.Codec = figures.codec;
    if (stats.values.latencyMs === null) rows.Latency = '– (needs the frames\' RTP timestamps)';
  } else if (clock.rttMs !== null) {
    rows['Round trip'] = `${clock.rttMs.toFixed(1)} ms`;
  }
  return rows;
}

const isVideo = () => (rtc ? true : player?.name === 'mse');
ui.bind({
  snapshot: () => (rtc || player)?.snapshotCanvas() ?? null,
  fullscreenFallback:
    typeof video.webkitEnterFullscreen === 'function' ? () => isVideo() && video.webkitEnterFullscreen() : null,
});
setInterval(() => {
  collectWebRtcFigures();
  stats.refresh();
  stats.values.reconnects = (connection?.reconnects ?? 0) + (rtc?.reconnects ?? 0);
  ui.renderStats(stats.values, extraRows());
}, 500);

// Leaving the page ends the WebRTC session on the server at once (keepalive DELETE);
// coming back from the back/forward cache starts anew.
addEventListener('pagehide', () => rtc?.close());
addEventListener('pageshow', (event) => {
  if (event.persisted) location.reload();
});

setState('connecting');
// Whether a password is set (the "Log out" control), and whether this browser is
// still logged in.
access.check();
if (forced === 'webrtc' || (!forced && hasWebRtc())) {
  if (hasWebRtc()) {
    useWebRtc();
  } else {
    fatal = 'this browser has no WebRTC (RTCPeerConnection)';
    api.path = stats.values.path = 'webrtc';
    setState('error', fatal);
  }
} else {
  if (!forced) api.fallback = stats.values.fallback = 'this browser has no RTCPeerConnection';
  useWebSocket(forced || (hasWebCodecs() ? 'webcodecs' : 'mse'));
}
