// Wires the connection, the clock, the decoder path, the stats and the page together.
// The two decoder paths (webcodecs.js, mse.js) share one interface, `DecoderPath`,
// written down in decoder.js.

import { nowMs, ServerClock } from './clock.js';
import { Connection, wsUrl } from './connection.js';
import { MsePlayer } from './mse.js';
import { Stats } from './stats.js';
import { Ui } from './ui.js';
import { hasWebCodecs, WebCodecsPlayer } from './webcodecs.js';

/** @typedef {import('./decoder.js').DecoderPath} DecoderPath */
/** @typedef {import('./decoder.js').DecoderCallbacks} DecoderCallbacks */

/** Pings right after connecting (quick first offset estimate), then one every PING_EVERY_MS. */
const FIRST_PINGS = 5;
const PING_EVERY_MS = 3000;

const params = new URLSearchParams(location.search);
const forced = ['mse', 'webcodecs'].includes(params.get('player')) ? params.get('player') : null;

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
  hello: null,
  stream: null,
  clock,
};
window.streamerPlayer = api;

/**
 * The decoder path in use: WebCodecs, or MSE as the fallback.
 * @type {DecoderPath | null}
 */
let player = null;
let sourceState = null;
let timing = null;
let backlog = 0;
let gotVideo = false;
let pingTimer = null;
/** Why this browser cannot play the stream at all; shown instead of the source state. */
let fatal = null;

function setState(state, detail) {
  api.state = state;
  ui.setState(state, detail);
}

/**
 * Switches to a decoder path, closing the one before.
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
    onNeedKeyframe: () => connection.restart(),
  };
  player =
    path === 'mse'
      ? new MsePlayer(video, callbacks)
      : new WebCodecsPlayer(canvas, callbacks, { forced: forced === 'webcodecs' });
  api.path = stats.values.path = path;
  ui.showElement(player.element);
  if (api.stream) player.configure(api.stream);
}

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
    connection.restart();
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
      player.configure(api.stream);
      break;
    case 'state':
      sourceState = message.state;
      if (sourceState === 'live') connection.markHealthy();
      showSourceState(message.message);
      break;
    case 'join':
      backlog = Math.max(0, Number(message.frames) || 0);
      break;
    case 'resync':
      stats.values.resyncs += 1;
      player.resync();
      break;
    case 'timing':
      timing = message;
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
  if (!gotVideo) {
    gotVideo = true;
    connection.markHealthy();
    if (sourceState === null) showSourceState();
  }
  player.push(bytes, info);
}

function startPings() {
  clearInterval(pingTimer);
  let sent = 0;
  const ping = () => connection.send(clock.ping());
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

const wsQuery = params.get('timing') === 'frame' ? 'timing=frame' : '';
const connection = new Connection(wsUrl(location, wsQuery), {
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
    player.resync();
  },
  onRetry(ms) {
    api.state = 'reconnecting';
    ui.setReconnecting(Date.now() + ms);
  },
});

ui.bind({
  snapshot: () => player.snapshotCanvas(),
  fullscreenFallback:
    typeof video.webkitEnterFullscreen === 'function'
      ? () => player.name === 'mse' && video.webkitEnterFullscreen()
      : null,
});
setInterval(() => {
  stats.refresh();
  stats.values.reconnects = connection.reconnects;
  ui.renderStats(stats.values, clock.rttMs === null ? {} : { 'Round trip': `${clock.rttMs.toFixed(1)} ms` });
}, 500);

usePath(forced || (hasWebCodecs() ? 'webcodecs' : 'mse'));
setState('connecting');
connection.open();
