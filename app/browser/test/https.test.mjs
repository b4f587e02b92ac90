// HTTPS in Chromium: a certificate made here with openssl for the LAN name, trusted
// by its public key (--ignore-certificate-errors-spki-list), so that the page at
// https://streamer.local is a secure context (http://streamer.local is not) and the
// WebCodecs path plays over wss://; plain HTTP sends the browser there; a bad
// certificate is named in the page's banner while plain HTTP plays on.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { freePort, LAN_NAME, launchBrowser, newPage, playerState, startStreamer, waitInPage } from '../harness.mjs';

let dir;
let cert;
let key;
let browser;
let server;
let httpsPort;

/** The base64 SHA-256 of a certificate's SubjectPublicKeyInfo, as Chromium's flag takes it. */
function spkiHash(pem) {
  const spki = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'streamer-https-'));
  cert = path.join(dir, 'cert.pem');
  key = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${LAN_NAME}`,
    '-addext', `subjectAltName=DNS:${LAN_NAME},IP:127.0.0.1`,
  ], { stdio: 'pipe' });
  const trusted = spkiHash(await readFile(cert, 'utf8'));
  httpsPort = await freePort();
  [server, browser] = await Promise.all([
    startStreamer({
      env: {
        STREAMER_SERVER__TLS_CERT: cert,
        STREAMER_SERVER__TLS_KEY: key,
        STREAMER_SERVER__TLS_PORT: String(httpsPort),
      },
    }),
    launchBrowser([`--ignore-certificate-errors-spki-list=${trusted}`]),
  ]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('under https:// the page is a secure context and WebCodecs plays over wss://', async () => {
  const page = await newPage(browser);
  const sockets = [];
  page.on('websocket', (socket) => sockets.push(socket.url()));
  await page.goto(`https://${LAN_NAME}:${httpsPort}/?player=webcodecs`);
  assert.equal(await page.evaluate(() => window.isSecureContext), true);
  await waitInPage(page, () => window.streamerPlayer.stats.framesShown >= 10, null, { what: '10 frames over wss' });
  const state = await playerState(page);
  assert.equal(state.path, 'webcodecs');
  assert.equal(state.state, 'live');
  assert.ok(sockets.length >= 1 && sockets.every((url) => url.startsWith(`wss://${LAN_NAME}:${httpsPort}/`)), sockets.join());
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('plain http:// by name is no secure context, and is sent to https:// where the default player plays', async () => {
  const page = await newPage(browser);
  await page.goto(`http://${LAN_NAME}:${server.port}/?x=1`);
  // Redirected, path and query kept.
  assert.equal(page.url(), `https://${LAN_NAME}:${httpsPort}/?x=1`);
  assert.equal(await page.evaluate(() => window.isSecureContext), true);
  // The default choice (WebRTC where the browser has it) plays.
  await waitInPage(page, () => window.streamerPlayer.state === 'live' && window.streamerPlayer.stats.framesShown >= 5, null, {
    what: 'the default player live',
    timeout: 20_000,
  });
  const state = await playerState(page);
  assert.ok(['webrtc', 'webcodecs'].includes(state.path), state.path);
  assert.deepEqual(page.errors, []);
  await page.close();

  // What the redirect is for: the same name over plain HTTP (here /healthz, the
  // one path not redirected) is no secure context.
  const plain = await newPage(browser);
  await plain.goto(`http://${LAN_NAME}:${server.port}/healthz`);
  assert.equal(await plain.evaluate(() => window.isSecureContext), false);
  await plain.close();
});

test('without WebRTC the player picks WebCodecs under https:// by itself', async () => {
  const port = await freePort();
  const tlsPort = await freePort();
  const noRtc = await startStreamer({
    port,
    env: {
      STREAMER_SERVER__TLS_CERT: cert,
      STREAMER_SERVER__TLS_KEY: key,
      STREAMER_SERVER__TLS_PORT: String(tlsPort),
      STREAMER_WEBRTC__ENABLED: 'false',
    },
  });
  try {
    const page = await newPage(browser);
    await page.goto(`https://${LAN_NAME}:${tlsPort}/`);
    await waitInPage(page, () => window.streamerPlayer.stats.framesShown >= 5, null, {
      what: 'frames on the WebSocket',
      timeout: 20_000,
    });
    const state = await playerState(page);
    assert.equal(state.path, 'webcodecs');
    assert.equal(await page.evaluate(() => window.streamerPlayer.transport), 'websocket');
    await page.close();
  } finally {
    await noRtc.stop();
  }
});

test('a certificate file without a certificate is named in the banner, and plain HTTP plays', async () => {
  const garbage = path.join(dir, 'garbage.pem');
  await writeFile(garbage, 'not a certificate\n');
  const bad = await startStreamer({
    env: { STREAMER_SERVER__TLS_CERT: garbage, STREAMER_SERVER__TLS_KEY: key, STREAMER_SERVER__TLS_PORT: '0' },
  });
  try {
    const page = await newPage(browser);
    await page.goto(bad.lanUrl);
    assert.equal(page.url(), bad.lanUrl, 'no redirect');
    await waitInPage(page, () => window.streamerPlayer.hello !== null, null, { what: 'hello' });
    assert.equal(await page.isVisible('#config-errors'), true);
    const items = await page.$$eval('#config-errors-list li', (list) => list.map((li) => li.textContent));
    assert.match(items[0], /server\.tls_cert: .*garbage\.pem holds no certificate.*serving plain HTTP only/);
    await waitInPage(page, () => window.streamerPlayer.stats.framesShown >= 3, null, { what: 'frames over plain HTTP' });
    await page.close();
  } finally {
    await bad.stop();
  }
});
