// The interface both WebSocket decoder paths (webcodecs.js, mse.js) offer to main.js,
// and the part of it the WebRTC path (webrtc.js) shares, written down once. Types only: nothing imports this module at run time (JSDoc refers to it
// with `import('./decoder.js')`), so the browser never loads it.

/**
 * The `stream` message's parameters (docs/protocol.md), as main.js keeps them.
 * @typedef {object} StreamParams
 * @property {string} codec RFC 6381 codec string, e.g. `avc1.640028`.
 * @property {number} width Picture width in pixels, after cropping.
 * @property {number} height Picture height in pixels, after cropping.
 * @property {number | null} fps Frames per second; null when unknown.
 */

/**
 * What main.js knows about one access unit besides its bytes.
 * @typedef {object} FrameInfo
 * @property {number} [capturedUs] Capture time, µs since the Unix epoch on the
 *   server's clock, when a `timing` message gave it.
 * @property {boolean} [catchUp] Part of a burst sent at once (the join backlog): not a
 *   sign of falling behind. Only the WebCodecs path uses it.
 * @property {boolean} [silent] Decode but do not paint (a join backlog before its last
 *   frame). WebCodecs skips painting it; MSE gives it 1 ms of media time.
 */

/**
 * What a decoder path tells main.js. All optional.
 * @typedef {object} DecoderCallbacks
 * @property {() => void} [onDecoded] One picture decoded.
 * @property {(n: number, reason: string) => void} [onDropped] `n` access units were
 *   skipped, and why (e.g. `waiting for a keyframe`).
 * @property {(shown: {capturedUs?: number, width: number, height: number}) => void} [onShown]
 *   A picture is on screen (or about to be), with its capture time when known and its
 *   size.
 * @property {(reason: string) => void} [onUnsupported] This path cannot play the
 *   stream; `reason` in plain words. main.js then switches to MSE or shows the reason.
 * @property {() => void} [onNeedKeyframe] The path started over and waits for a
 *   keyframe; main.js reconnects, since a fresh connection starts with one (MSE only).
 * @property {() => void} [onSkip] The path jumped to the live edge (MSE only; main.js
 *   passes none).
 */

/**
 * One decoder path: WebCodecs into a <canvas> (`WebCodecsPlayer`) or jMuxer and Media
 * Source Extensions into a <video> (`MsePlayer`). main.js holds one at a time, feeds it
 * what the WebSocket brings and closes it before making another. The constructors
 * differ (`new WebCodecsPlayer(canvas, callbacks, {forced})`,
 * `new MsePlayer(video, callbacks)`) and are not part of the interface; both take
 * {@link DecoderCallbacks}.
 *
 * @typedef {object} DecoderPath
 * @property {'webcodecs' | 'mse'} name Which path this is (main.js measures latency and
 *   offers the fullscreen fallback by it).
 * @property {HTMLCanvasElement | HTMLVideoElement} element The element that shows the
 *   picture; main.js puts it on the page.
 * @property {(stream: StreamParams) => void} configure Takes a `stream` message's
 *   parameters: sets up the decoder, or starts it anew when they changed (the same
 *   parameters again do nothing). Returns at once; the set-up finishes later, and
 *   `onUnsupported` may follow. Access units pushed meanwhile are kept (up to 600,
 *   then dropped) and decoded once it is ready.
 * @property {(bytes: Uint8Array, info?: FrameInfo) => void} push One access unit
 *   (one binary WebSocket message: Annex-B, SPS and PPS in front of every keyframe).
 *   Handed to the decoder at once, except: before any `configure`, dropped; while
 *   its set-up runs, kept (see `configure`); while waiting for a keyframe, dropped.
 *   WebCodecs also drops while its decoder is behind. Drops are reported with
 *   `onDropped`. While the page is hidden, WebCodecs decodes nothing (it keeps the
 *   current GOP and decodes it when the page is shown again). Ignored after `close`.
 * @property {() => void} resync The stream has a gap (the server skipped frames, or
 *   the connection closed): drop everything up to the next keyframe.
 * @property {() => (HTMLCanvasElement | null)} snapshotCanvas A canvas holding the
 *   current picture, for a snapshot, or null when there is none yet.
 * @property {() => void} close Stops decoding, releases the decoder and the page
 *   listeners and timers; the object is not used again.
 */

/**
 * What main.js asks of whatever shows the picture, the WebRTC session included
 * (`WebRtcSession` in webrtc.js, which is no `DecoderPath`: the browser's WebRTC stack
 * receives and decodes, nothing is pushed to it).
 * @typedef {object} PictureView
 * @property {'webrtc' | 'webcodecs' | 'mse'} name Which path this is.
 * @property {HTMLCanvasElement | HTMLVideoElement} element The element that shows the picture.
 * @property {() => (HTMLCanvasElement | null)} snapshotCanvas A canvas holding the
 *   current picture, or null when there is none yet.
 * @property {() => void} close Stops and releases everything; not used again.
 */

export {};
