// @ts-check
// The player's two decoder paths implement the interface main.js uses, `DecoderPath`
// (overlay/usr/share/streamer/www/js/decoder.js): TypeScript checks this file
// (`make check-player-types`), inferring the classes' types from their code and
// JSDoc. A member renamed, dropped or given another shape in either class fails it.
// Only this file is type-checked, not the player's modules themselves.

import { MsePlayer } from '../../../overlay/usr/share/streamer/www/js/mse.js';
import { WebCodecsPlayer } from '../../../overlay/usr/share/streamer/www/js/webcodecs.js';

/** @typedef {import('../../../overlay/usr/share/streamer/www/js/decoder.js').DecoderPath} DecoderPath */

/** @type {(player: MsePlayer) => DecoderPath} */
export const msePath = (player) => player;

/** @type {(player: WebCodecsPlayer) => DecoderPath} */
export const webCodecsPath = (player) => player;
