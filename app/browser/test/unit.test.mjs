// Unit tests of the player's pure parts, in node (no browser, no server).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { AccessCheck, hasPassword, loginUrl } from '../../../overlay/usr/share/streamer/www/js/access.js';
import { ServerClock } from '../../../overlay/usr/share/streamer/www/js/clock.js';
import { backoffDelay, wsUrl } from '../../../overlay/usr/share/streamer/www/js/connection.js';
import { isKeyframe, nalUnits } from '../../../overlay/usr/share/streamer/www/js/h264.js';
import { retrySeconds, safeNext, waitMessage } from '../../../overlay/usr/share/streamer/www/js/login.js';
import { snapshotDate, snapshotName } from '../../../overlay/usr/share/streamer/www/js/ui.js';
import { describe, errorMessage, restartState } from '../../../overlay/usr/share/streamer/www/js/update.js';
import { capturedUsOf, sessionUrl, whepUrl } from '../../../overlay/usr/share/streamer/www/js/webrtc.js';

const at = (href) => {
  const url = new URL(href);
  return { protocol: url.protocol, host: url.host, pathname: url.pathname };
};

test('the WebSocket address follows the page: scheme, host, port and path prefix', () => {
  assert.equal(wsUrl(at('http://192.168.1.20:8000/')), 'ws://192.168.1.20:8000/ws');
  assert.equal(wsUrl(at('http://camera.local/index.html')), 'ws://camera.local/ws');
  assert.equal(wsUrl(at('https://example.org/cams/garden/')), 'wss://example.org/cams/garden/ws');
  assert.equal(wsUrl(at('https://example.org:8443/cams/garden/index.html?player=mse')), 'wss://example.org:8443/cams/garden/ws');
  assert.equal(wsUrl(at('http://[::1]:8000/')), 'ws://[::1]:8000/ws');
  assert.equal(wsUrl(at('http://localhost:8000/p/'), 'timing=frame'), 'ws://localhost:8000/p/ws?timing=frame');
  // The same answer as resolving "ws" against the page, as the browser would.
  for (const href of ['http://a:1/', 'https://b/x/y/', 'https://b/x/y/z.html', 'http://c/x']) {
    const resolved = new URL('ws', href);
    resolved.protocol = resolved.protocol === 'https:' ? 'wss:' : 'ws:';
    assert.equal(wsUrl(at(href)), resolved.href, href);
  }
});

test('reconnection backoff: 0.5 s doubling to 10 s, with bounded jitter', () => {
  const mid = () => 0.5;
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 20].map((n) => backoffDelay(n, mid)), [500, 1000, 2000, 4000, 8000, 10000, 10000, 10000]);
  assert.equal(backoffDelay(0, () => 0), 400);
  assert.equal(backoffDelay(0, () => 0.999999), 600);
  assert.equal(backoffDelay(9, () => 0.999999), 12000);
});

test('keyframes are access units with an IDR slice (or SPS + recovery point SEI)', () => {
  const sc = [0, 0, 0, 1];
  const idr = new Uint8Array([...sc, 0x09, 0x10, ...sc, 0x67, 0x64, 0, 0x28, ...sc, 0x68, 0xee, ...[0, 0, 1], 0x65, 0x88, 0x84]);
  assert.deepEqual([...nalUnits(idr)].map((n) => n.type), [9, 7, 8, 5]);
  assert.equal(isKeyframe(idr), true);
  const delta = new Uint8Array([...sc, 0x09, 0x30, ...sc, 0x41, 0x9a, 0x00, 0x00, 0x03, 0x01]);
  assert.equal(isKeyframe(delta), false);
  // An IDR type byte inside a slice's payload is not a NAL header.
  const tricky = new Uint8Array([...sc, 0x41, 0x9a, 0x65, 0x65, 0x00, 0x00, 0x02, 0x65]);
  assert.equal(isKeyframe(tricky), false);
  const recovery = new Uint8Array([...sc, 0x67, 0x42, ...sc, 0x68, 0xce, ...sc, 0x06, 0x06, 0x01, 0x80, ...sc, 0x41, 0x9a]);
  assert.equal(isKeyframe(recovery), true);
  assert.equal(isKeyframe(new Uint8Array([])), false);
});

test('the clock offset comes from the pong with the smallest round trip', () => {
  let now = 1_000_000;
  const clock = new ServerClock({ now: () => now });
  assert.equal(clock.toClientMs(5_000_000), null);
  // The server clock is 250 ms ahead. A slow sample (asymmetric 80 ms) then a fast one.
  const exchange = (out, back) => {
    const ping = clock.ping();
    now += out;
    const server = (now + 250) * 1000;
    now += back;
    clock.pong({ type: 'pong', id: ping.id, client_time: ping.client_time, server_time_us: server });
  };
  exchange(80, 2);
  assert.ok(Math.abs(clock.offsetMs - 289) < 1e-6);
  exchange(1, 1);
  assert.ok(Math.abs(clock.offsetMs - 250) < 1e-6);
  assert.equal(clock.rttMs, 2);
  exchange(40, 40); // slower again: the best sample stays
  assert.ok(Math.abs(clock.offsetMs - 250) < 1e-6);
  assert.equal(clock.toClientMs((now + 250) * 1000), now);
  clock.pong({ type: 'pong', client_time: 'nonsense', server_time_us: 1 });
  assert.equal(clock.samples.length, 3);
});

test('snapshot file names carry the local date and time', () => {
  assert.equal(snapshotName(new Date(2024, 4, 1, 9, 5, 7)), 'snapshot-2024-05-01T09-05-07.jpg');
  assert.equal(snapshotName(new Date(2024, 4, 1, 9, 5, 7), 'png'), 'snapshot-2024-05-01T09-05-07.png');
});

test("a server snapshot is named for its frame's capture time", () => {
  const at = new Date(2024, 4, 1, 9, 5, 7, 250);
  const headers = new Headers({ 'x-frame-captured-us': String(at.getTime() * 1000) });
  assert.equal(snapshotDate(headers).getTime(), at.getTime());
  const before = Date.now();
  assert.ok(snapshotDate(new Headers()).getTime() >= before, 'no header: now');
});

test('the WHEP endpoint follows the page: scheme, host, port and path prefix', () => {
  assert.equal(whepUrl(at('http://192.168.1.20:8000/')), 'http://192.168.1.20:8000/whep');
  assert.equal(whepUrl(at('http://streamer.local/index.html?player=webrtc')), 'http://streamer.local/whep');
  assert.equal(whepUrl(at('https://example.org/cams/garden/')), 'https://example.org/cams/garden/whep');
  assert.equal(whepUrl(at('http://[::1]:8000/')), 'http://[::1]:8000/whep');
  for (const href of ['http://a:1/', 'https://b/x/y/', 'https://b/x/y/z.html', 'http://c/x']) {
    assert.equal(whepUrl(at(href)), new URL('whep', href).href, href);
  }
});

test('the session resource is the Location resolved against the endpoint, under its prefix', () => {
  // RFC 9725: relative to the endpoint.
  assert.equal(sessionUrl('http://cam.local/whep', '/whep/abc'), 'http://cam.local/whep/abc');
  assert.equal(sessionUrl('http://cam.local/whep', 'whep/abc'), 'http://cam.local/whep/abc');
  assert.equal(sessionUrl('http://cam.local:8000/cam/whep', 'whep/abc'), 'http://cam.local:8000/cam/whep/abc');
  assert.equal(sessionUrl('http://cam.local:8000/cam/whep', 'http://other:1/s/1'), 'http://other:1/s/1');
  // A server behind a prefix names its own path: the prefix goes in front.
  assert.equal(sessionUrl('http://cam.local:8000/cam/whep', '/whep/abc'), 'http://cam.local:8000/cam/whep/abc');
  assert.equal(sessionUrl('http://cam.local/cam/whep', '/cam/whep/abc'), 'http://cam.local/cam/whep/abc');
});

test("a shown picture's capture time comes from its RTP timestamp and the last timing message", () => {
  const anchor = { rtp: 90_000, capturedUs: 1_700_000_000_000_000 };
  assert.equal(capturedUsOf(90_000, anchor), anchor.capturedUs);
  assert.equal(capturedUsOf(93_000, anchor), anchor.capturedUs + 33_333.333333333336);
  assert.equal(capturedUsOf(87_000, anchor), anchor.capturedUs - 33_333.333333333336);
  // Across the 32-bit wrap, both ways.
  const high = { rtp: 2 ** 32 - 1500, capturedUs: 5_000_000 };
  assert.equal(capturedUsOf(1500, high), 5_000_000 + (3000 * 1000) / 90);
  assert.equal(capturedUsOf(2 ** 32 - 1500, { rtp: 1500, capturedUs: 5_000_000 }), 5_000_000 - (3000 * 1000) / 90);
  // Too far away, or nothing to go by.
  assert.equal(capturedUsOf(90_000 + 6 * 90_000, anchor), null);
  assert.equal(capturedUsOf(undefined, anchor), null);
  assert.equal(capturedUsOf(90_000, null), null);
});

test('the login page comes back to the page, path and query, under its prefix', () => {
  assert.equal(loginUrl({ pathname: '/', search: '' }), '/login?next=%2F');
  assert.equal(loginUrl({ pathname: '/', search: '?player=mse' }), '/login?next=%2F%3Fplayer%3Dmse');
  assert.equal(loginUrl({ pathname: '/cams/garden/index.html', search: '' }), '/cams/garden/login?next=%2Fcams%2Fgarden%2Findex.html');
  assert.equal(new URL(loginUrl({ pathname: '/a&b/', search: '?x=1&y=2' }), 'http://c/').searchParams.get('next'), '/a&b/?x=1&y=2');
});

test("/api/status's access.password says whether a password is set", () => {
  assert.equal(hasPassword({ access: { password: 'plain', user: 'streamer' } }), true);
  assert.equal(hasPassword({ access: { password: 'hashed' } }), true);
  assert.equal(hasPassword({ access: { password: 'unusable' } }), true);
  assert.equal(hasPassword({ access: { password: 'none' } }), false);
  assert.equal(hasPassword({}), false);
  assert.equal(hasPassword(null), false);
});

test('a 401 from /api/status sends the player to log in; questions are spaced out', async () => {
  let now = 0;
  let answer = { status: 200, ok: true, json: async () => ({ access: { password: 'plain' } }) };
  const asked = [];
  const seen = [];
  const check = new AccessCheck(
    { onLocked: () => seen.push('locked'), onStatus: (status) => seen.push(status.access.password) },
    {
      fetch: async (url) => {
        asked.push(url);
        return answer;
      },
      now: () => now,
    },
  );
  await check.check();
  assert.deepEqual(seen, ['plain']);
  answer = { status: 401, ok: false, json: async () => ({}) };
  now = 1000;
  await check.check();
  assert.deepEqual(seen, ['plain'], 'not asked again within 2 s');
  now = 2500;
  await check.check();
  assert.deepEqual(seen, ['plain', 'locked']);
  assert.deepEqual(asked, ['api/status', 'api/status']);
  // Unreachable or another error: nothing said.
  const quiet = new AccessCheck({ onLocked: () => assert.fail('not locked') }, { fetch: async () => Promise.reject(new Error('down')) });
  await quiet.check();
  const busy = new AccessCheck({ onLocked: () => assert.fail('not locked') }, { fetch: async () => ({ status: 503, ok: false }) });
  await busy.check();
});

test("the login page's next stays on this server, and the brake's wait is whole seconds", () => {
  assert.equal(safeNext('/?player=mse'), '/?player=mse');
  for (const bad of ['//evil.example', '/\\evil.example', 'https://evil.example/', '/\t/x', '', null, 5]) {
    assert.equal(safeNext(bad), '/', String(bad));
  }
  assert.equal(retrySeconds('7'), 7);
  assert.equal(retrySeconds(2.1), 3);
  assert.equal(retrySeconds('nonsense'), 0);
  assert.equal(retrySeconds(-1), 0);
  assert.equal(retrySeconds(null), 0);
  assert.equal(waitMessage(12), 'Too many wrong passwords: try again in 12 s.');
});

test('the update page describes the running system and the last update, and a refusal in the server\'s words', () => {
  const last = { result: 'updated', version: 'v2', slot: 'B', time: '2026-01-02T00:00:00Z', message: 'ok' };
  assert.deepEqual(describe({ available: true, version: 'v2', rauc: { boot_slot: 'B' }, last }), {
    running: 'v2, slot B',
    last: 'updated · v2 · slot B · 2026-01-02T00:00:00Z · ok',
  });
  // Without RAUC the version is still known (os-release); the reason is said elsewhere.
  assert.deepEqual(describe({ available: false, reason: 'updates are not available here: x', version: 'v1', last: null }), {
    running: 'v1',
    last: 'none',
  });
  assert.deepEqual(describe({ available: false }), { running: 'unknown', last: 'none' });
  assert.deepEqual(describe({ last: { result: 'rolled-back' } }).last, 'rolled-back');
  assert.equal(errorMessage(403, '{"error":"updates need a password"}'), 'updates need a password');
  assert.equal(errorMessage(502, 'Bad Gateway\n'), 'Bad Gateway');
  assert.equal(errorMessage(500, ''), 'the device answered 500');
});

test('after an install the update page tells the restart by the boot id, then waits out the trial', () => {
  const updated = { result: 'updated', version: 'v2', slot: 'B' };
  const installed = { result: 'installed', version: 'v2', slot: 'B' };
  // The same boot: still waiting, even when the answer already says "updated" (an
  // earlier update's record) or the device blinked (went away: a streamer restart
  // is not a reboot).
  assert.equal(restartState({ boot_id: 'a', last: updated }, 'a', false), 'waiting');
  assert.equal(restartState({ boot_id: 'a', last: updated }, 'a', true), 'waiting');
  // A new boot: on trial while the record says "installed", then the verdict.
  assert.equal(restartState({ boot_id: 'b', last: installed }, 'a', false), 'trial');
  assert.equal(restartState({ boot_id: 'b', last: updated }, 'a', false), 'done');
  assert.equal(restartState({ boot_id: 'b', last: { result: 'rolled-back' } }, 'a', false), 'done');
  assert.equal(restartState({ boot_id: 'b', last: null }, 'a', false), 'done');
  // A server that does not say its boot id: having gone away is the sign.
  assert.equal(restartState({ last: updated }, null, false), 'waiting');
  assert.equal(restartState({ last: updated }, null, true), 'done');
  assert.equal(restartState({ boot_id: 'b', last: installed }, null, true), 'trial');
});
