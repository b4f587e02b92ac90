// What the page tells people: configuration errors and an offline camera.

import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launchBrowser, newPage, startStreamer, waitInPage, webRoot } from '../harness.mjs';

let browser;
let dir;

before(async () => {
  browser = await launchBrowser();
  dir = await mkdtemp(path.join(os.tmpdir(), 'streamer-browser-'));
});

after(async () => {
  await browser?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a bad configuration file puts a banner listing the errors on the page', async () => {
  const config = path.join(dir, 'bad.toml');
  await writeFile(config, '[camera]\nbogus_key = 1\n');
  const server = await startStreamer({ config });
  try {
    const page = await newPage(browser);
    await page.goto(server.url);
    await waitInPage(page, () => window.streamerPlayer.hello !== null, null, { what: 'hello' });
    const errors = await page.evaluate(() => window.streamerPlayer.hello.config_errors);
    assert.ok(errors.length >= 1, 'the server reports the error');
    assert.equal(await page.isVisible('#config-errors'), true);
    assert.equal(await page.getAttribute('#config-errors', 'role'), 'alert');
    const items = await page.$$eval('#config-errors-list li', (list) => list.map((li) => li.textContent));
    assert.deepEqual(items, errors);
    assert.match(items.join('\n'), /bogus_key/);
    // The stream still plays, on the defaults.
    await waitInPage(page, () => window.streamerPlayer.stats.framesShown >= 3, null, { what: 'frames' });
    await page.close();
  } finally {
    await server.stop();
  }
});

test('a good configuration shows no banner', async () => {
  const server = await startStreamer();
  try {
    const page = await newPage(browser);
    await page.goto(server.url);
    await waitInPage(page, () => window.streamerPlayer.hello !== null, null, { what: 'hello' });
    assert.equal(await page.isVisible('#config-errors'), false);
    await page.close();
  } finally {
    await server.stop();
  }
});

test('a camera that cannot start shows as offline, with the reason', async () => {
  const server = await startStreamer({
    env: { STREAMER_CAMERA__SOURCE: 'file', STREAMER_CAMERA__FILE: path.join(dir, 'missing.h264') },
    healthy: false,
  });
  try {
    const page = await newPage(browser);
    await page.goto(server.url);
    await waitInPage(page, () => window.streamerPlayer.state === 'offline', null, { what: 'offline state', timeout: 15_000 });
    assert.match(await page.textContent('#status'), /Camera offline/);
    assert.ok((await page.textContent('#status-detail')).length > 0, 'the reason is shown');
    await page.close();
  } finally {
    await server.stop();
  }
});

test('a web root without jMuxer says so when the MSE path is needed', async () => {
  const root = path.join(dir, 'www');
  await cp(webRoot, root, { recursive: true, filter: (source) => !source.includes(`${path.sep}vendor`) });
  const server = await startStreamer({ env: { STREAMER_SERVER__WEB_ROOT: root } });
  try {
    const page = await newPage(browser);
    await page.goto(`${server.url}?player=mse`);
    await waitInPage(page, () => window.streamerPlayer.state === 'error', null, { what: 'the error state' });
    assert.match(await page.textContent('#status-text'), /Cannot play/);
    assert.match(await page.textContent('#status-detail'), /make web/);
    // The state messages that follow do not hide the problem.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(await page.evaluate(() => window.streamerPlayer.state), 'error');
    await page.close();
  } finally {
    await server.stop();
  }
});
