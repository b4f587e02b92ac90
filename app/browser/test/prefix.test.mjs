// The player behind a reverse proxy that serves it under a path prefix (/cam/):
// the page finds its files, jMuxer, the WebSocket and the WHEP endpoint under the prefix.

import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';

import { barMismatches, launchBrowser, newPage, samplePicture, startStreamer, waitInPage } from '../harness.mjs';

const PREFIX = '/cam';

let server;
let browser;
let proxy;
let proxyUrl;
const seen = { requests: [], upgrades: [], deletes: [] };

/** A minimal reverse proxy: /cam/<path> -> the streamer's /<path>, WebSocket upgrades included. */
function startProxy(port) {
  const sockets = new Set();
  const proxy = http.createServer((req, res) => {
    seen.requests.push(req.url);
    if (req.method === 'DELETE') seen.deletes.push(req.url);
    if (!req.url.startsWith(`${PREFIX}/`)) {
      res.writeHead(404).end('outside the prefix\n');
      return;
    }
    const upstream = http.request(
      { host: '127.0.0.1', port, path: req.url.slice(PREFIX.length), method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  proxy.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  proxy.on('upgrade', (req, socket, head) => {
    seen.upgrades.push(req.url);
    if (!req.url.startsWith(`${PREFIX}/`)) {
      socket.destroy();
      return;
    }
    const upstream = net.connect(port, '127.0.0.1', () => {
      const lines = [`${req.method} ${req.url.slice(PREFIX.length)} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    sockets.add(upstream);
    const close = () => {
      upstream.destroy();
      socket.destroy();
    };
    upstream.on('error', close);
    socket.on('error', close);
    upstream.on('close', close);
    socket.on('close', close);
  });
  proxy.closeAll = () => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => proxy.close(resolve));
  };
  return new Promise((resolve) => proxy.listen(0, '127.0.0.1', () => resolve(proxy)));
}

/** Polls `fn` (in node) until it is true, up to 5 s. */
async function waitFor(fn) {
  for (let i = 0; i < 50 && !fn(); i++) await new Promise((resolve) => setTimeout(resolve, 100));
}

before(async () => {
  [server, browser] = await Promise.all([startStreamer(), launchBrowser()]);
  proxy = await startProxy(server.port);
  proxyUrl = `http://127.0.0.1:${proxy.address().port}${PREFIX}/`;
});

after(async () => {
  await proxy?.closeAll();
  await browser?.close();
  await server?.stop();
});

for (const player of ['webrtc', 'webcodecs', 'mse']) {
  test(`under a path prefix the ${player} player plays through the proxy`, async () => {
    seen.requests.length = 0;
    seen.upgrades.length = 0;
    seen.deletes.length = 0;
    const page = await newPage(browser);
    await page.goto(`${proxyUrl}?player=${player}`);
    await waitInPage(page, () => window.streamerPlayer.stats.framesShown >= 5, null, { what: 'frames through the proxy' });
    assert.equal(await page.evaluate(() => window.streamerPlayer.path), player);
    if (player === 'webrtc') {
      // WHEP through the proxy (the video itself goes over UDP, not through it).
      assert.deepEqual(seen.upgrades, [], page.log.join('\n'));
      assert.deepEqual(seen.requests.filter((url) => url.includes('whep')), [`${PREFIX}/whep`]);
    } else {
      // One connection: the player needed no second try (console: see the message).
      assert.deepEqual(seen.upgrades, [`${PREFIX}/ws`], page.log.join('\n'));
    }
    assert.ok(
      seen.requests.every((url) => url.startsWith(`${PREFIX}/`)),
      `requests outside the prefix: ${seen.requests.join(' ')}`,
    );
    if (player === 'mse') assert.ok(seen.requests.includes(`${PREFIX}/vendor/jmuxer.min.js`));
    const picture = await samplePicture(page, player === 'webcodecs' ? '#canvas' : '#video');
    assert.deepEqual(barMismatches(picture.bars), []);
    assert.deepEqual(page.errors, []);
    if (player === 'webrtc') {
      // Leaving deletes the session under the prefix too (the server's Location has none).
      await page.goto('about:blank');
      await waitFor(() => seen.deletes.length > 0);
      assert.match(seen.deletes[0], new RegExp(`^${PREFIX}/whep/.`));
    }
    await page.close();
  });
}
