// Reconnection: the server goes away and comes back on the same port.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  barMismatches,
  freePort,
  launchBrowser,
  newPage,
  playerState,
  samplePicture,
  startStreamer,
  waitInPage,
} from '../harness.mjs';

let browser;
let server;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the page shows the outage, reconnects with backoff and gets live again', async () => {
  const port = await freePort();
  server = await startStreamer({ port });
  const page = await newPage(browser);
  await page.goto(`${server.url}?player=webcodecs`);
  await waitInPage(page, () => window.streamerPlayer.stats.framesShown >= 5, null, { what: 'frames' });
  assert.equal((await playerState(page)).state, 'live');

  await server.stop();
  await waitInPage(page, () => window.streamerPlayer.state === 'reconnecting', null, { what: 'reconnecting state' });
  await waitInPage(page, () => /Reconnecting in \d+ s/.test(document.getElementById('status').textContent), null, {
    what: 'a visible countdown',
  });
  assert.equal(await page.getAttribute('#stage', 'data-state'), 'reconnecting');
  // A few failed attempts while the server is away: the backoff grows.
  await waitInPage(page, () => window.streamerPlayer.stats.reconnects >= 2, null, { what: 'retries', timeout: 5000 });
  const during = await playerState(page);

  server = await startStreamer({ port });
  await waitInPage(page, () => window.streamerPlayer.state === 'live', null, { what: 'live again', timeout: 15_000 });
  await waitInPage(page, (n) => window.streamerPlayer.stats.framesShown >= n + 10, during.stats.framesShown, {
    what: 'frames after the reconnection',
  });
  assert.match(await page.textContent('#status'), /Live/);
  const picture = await samplePicture(page, '#canvas');
  assert.deepEqual(barMismatches(picture.bars), []);
  assert.deepEqual(page.errors.filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED/.test(e)), []);
  await page.close();
});
