// The player under the server's Content-Security-Policy: every decoder path plays and
// every control works with no policy violation, and a violation would be seen.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launchBrowser, newPage, playerState, requireJmuxer, sleep, startStreamer, waitInPage } from '../harness.mjs';

let server;
let browser;

before(async () => {
  requireJmuxer();
  [server, browser] = await Promise.all([startStreamer(), launchBrowser()]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Loads the player at `query`, plays, uses every control; returns the page. */
async function playEverything(query, expectedPath) {
  const page = await newPage(browser);
  const response = await page.goto(`${server.url}${query}`);
  const policy = response.headers()['content-security-policy'] ?? '';
  assert.match(policy, /^default-src 'self'/, 'the page is served under the policy');
  assert.doesNotMatch(policy, /unsafe-inline|unsafe-eval/);
  await waitInPage(page, () => window.streamerPlayer.stats.framesShown >= 10, null, {
    what: '10 frames shown',
    timeout: 15_000,
  });
  assert.equal((await playerState(page)).path, expectedPath);
  await page.click('#btn-stats');
  await waitInPage(page, () => !document.getElementById('stats').hidden, null, { what: 'the stats overlay' });
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#btn-snapshot')]);
  assert.ok(await download.path(), 'the snapshot was saved');
  await page.click('#btn-fullscreen');
  await sleep(500);
  return page;
}

test('WebCodecs plays with every control and no CSP violation', async () => {
  const page = await playEverything('?player=webcodecs', 'webcodecs');
  assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('WebRTC plays with every control and no CSP violation (fetch to /whep is connect-src self)', async () => {
  const page = await playEverything('', 'webrtc');
  assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
  assert.equal(await page.evaluate(() => window.streamerPlayer.transport), 'webrtc');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the MSE fallback (jMuxer, blob: media) plays with no CSP violation', async () => {
  const page = await playEverything('?player=mse', 'mse');
  assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('an inline script is refused and reported, so the checks above can fail', async () => {
  const page = await newPage(browser);
  await page.goto(server.url);
  await page.evaluate(() => {
    const script = document.createElement('script');
    script.textContent = 'window.inlineRan = true;';
    document.head.append(script);
  });
  const violations = await waitInPage(page, () => window.cspViolations.length > 0 && window.cspViolations, null, {
    what: 'a CSP violation',
  });
  assert.match(violations[0], /script-src/);
  assert.equal(await page.evaluate(() => window.inlineRan), undefined, 'the inline script did not run');
  assert.ok(page.errors.some((error) => error.startsWith('CSP violation')), page.errors.join('\n'));
  await page.close();
});
