// The player behind a reverse proxy that serves it under a path prefix (/cam/):
// the page finds its files, jMuxer and the WebSocket under the prefix.

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
const seen = { requests: [], upgrades: [] };

/** A minimal reverse proxy: /cam/<path> -> the streamer's /<path>, WebSocket upgrades included. */
function startProxy(port) {
  const sockets = new Set();
  const proxy = http.createServer((req, res) => {
    seen.requests.push(req.url);
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

for (const player of ['webcodecs', 'mse']) {
  test(`under a path prefix the ${player} player plays through the proxy`, async () => {
    seen.requests.length = 0;
    seen.upgrades.length = 0;
    const page = await newPage(browser);
    await page.goto(`${proxyUrl}?player=${player}`);
    await waitInPage(page, () => window.streamerPlayer.stats.framesShown >= 5, null, { what: 'frames through the proxy' });
    assert.equal(await page.evaluate(() => window.streamerPlayer.path), player);
    // One connection: the player needed no second try (console: see the message).
    assert.deepEqual(seen.upgrades, [`${PREFIX}/ws`], page.log.join('\n'));
    assert.ok(
      seen.requests.every((url) => url.startsWith(`${PREFIX}/`)),
      `requests outside the prefix: ${seen.requests.join(' ')}`,
    );
    if (player === 'mse') assert.ok(seen.requests.includes(`${PREFIX}/vendor/jmuxer.min.js`));
    const picture = await samplePicture(page, player === 'mse' ? '#video' : '#canvas');
    assert.deepEqual(barMismatches(picture.bars), []);
    assert.deepEqual(page.errors, []);
    await page.close();
  });
}
