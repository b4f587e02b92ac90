// @ts-check
// The player's two decoder paths implement the interface main.js uses, `DecoderPath`
// (overlay/usr/share/streamer/www/js/decoder.js): TypeScript checks this file
// (`make check-player-types`), inferring the classes' types from their code and
// JSDoc. A member renamed, dropped or given another shape in either class fails it.
// Only this file is type-checked, not the player's modules themselves.

import { MsePlayer } from '../../../overlay/usr/share/streamer/www/js/mse.js';
import { WebCodecsPlayer } from '../../../overlay/usr/share/streamer/www/js/webcodecs.js';
import { WebRtcSession } from '../../../overlay/usr/share/streamer/www/js/webrtc.js';

/** @typedef {import('../../../overlay/usr/share/streamer/www/js/decoder.js').DecoderPath} DecoderPath */
/** @typedef {import('../../../overlay/usr/share/streamer/www/js/decoder.js').PictureView} PictureView */

/** @type {(player: MsePlayer) => DecoderPath} */
export const msePath = (player) => player;

/** @type {(player: WebCodecsPlayer) => DecoderPath} */
export const webCodecsPath = (player) => player;

/** @type {(player: MsePlayer) => PictureView} */
export const mseView = (player) => player;

/** @type {(player: WebCodecsPlayer) => PictureView} */
export const webCodecsView = (player) => player;

/** @type {(session: WebRtcSession) => PictureView} */
export const webRtcView = (session) => session;
