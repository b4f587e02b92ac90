// The browser's login, with a password set (STREAMER_ACCESS__PASSWORD): the player
// sends to the login page, which takes the password (with and without JavaScript),
// then the player plays; a reload keeps the session, logging out and restarting the
// streamer end it.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { freePort, launchBrowser, newPage, requireJmuxer, startStreamer, waitInPage } from '../harness.mjs';

const USER = 'streamer';
const PASSWORD = 'a long phrase only you know';
const ENV = { STREAMER_ACCESS__PASSWORD: PASSWORD };

let server;
let browser;

before(async () => {
  requireJmuxer();
  [server, browser] = await Promise.all([startStreamer({ port: await freePort(), env: ENV }), launchBrowser()]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Chromium logs every 401 (the wrong password's, the locked player's) as a console error. */
const unexpected = (errors) => errors.filter((error) => !/status of 401/.test(error));

/** Waits until `page` shows the login page. */
async function atLoginPage(page) {
  await page.waitForURL((url) => url.pathname === '/login', { timeout: 15_000 });
  await page.waitForSelector('#login-form');
}

/** Fills in and sends the login form. */
async function logIn(page, password) {
  await page.fill('#login-user', USER);
  await page.fill('#login-password', password);
  await page.click('#login-submit');
}

/** Waits until the player shows frames. */
async function plays(page, frames = 10) {
  await waitInPage(page, (n) => window.streamerPlayer?.stats.framesShown >= n, frames, {
    what: `${frames} frames shown`,
    timeout: 20_000,
  });
}

test('the player sends to the login page; a wrong password says so there; the right one plays', async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}?player=mse`);
  await atLoginPage(page);
  assert.equal(new URL(page.url()).searchParams.get('next'), '/?player=mse');
  assert.equal(await page.getAttribute('#login-user', 'autocomplete'), 'username');
  assert.equal(await page.getAttribute('#login-password', 'autocomplete'), 'current-password');
  assert.equal(await page.textContent('label[for="login-password"]'), 'Password');

  await logIn(page, 'not the password');
  await waitInPage(page, () => document.getElementById('login-error').textContent, null, { what: 'the error' });
  assert.equal(await page.textContent('#login-error'), 'Wrong user name or password.');
  assert.equal(new URL(page.url()).pathname, '/login', 'still on the login page');
  assert.equal(await page.inputValue('#login-password'), '', 'the wrong password is cleared');

  await logIn(page, PASSWORD);
  await page.waitForURL(`${server.url}?player=mse`);
  await plays(page);
  const [cookie] = await page.context().cookies();
  assert.equal(cookie.name, 'streamer_session');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.equal(await page.evaluate(() => document.cookie), '', 'no script can read the cookie');

  // The session outlives a reload.
  await page.reload();
  await plays(page);
  assert.equal(new URL(page.url()).pathname, '/');

  assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
  assert.deepEqual(unexpected(page.errors), []);
  await page.close();
});

test('the login page has no CSP violation, and the player on WebRTC plays after logging in', async () => {
  const page = await newPage(browser);
  const response = await page.goto(`${server.url}login`);
  assert.equal(response.status(), 200);
  assert.equal(response.headers()['cache-control'], 'no-store');
  assert.match(response.headers()['content-security-policy'] ?? '', /script-src 'self'/);
  // The style sheet applies (no inline style, and /style.css is served before logging in).
  assert.equal(await page.$eval('#login-error', (e) => getComputedStyle(e).display), 'none');
  await logIn(page, PASSWORD);
  await page.waitForURL(server.url);
  await plays(page);
  assert.equal(await page.evaluate(() => window.streamerPlayer.transport), 'webrtc');
  assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
  assert.deepEqual(unexpected(page.errors), []);
  await page.close();
});

test('logging out ends the session: back to the login page, and /api/status is 401 again', async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}login?next=%2F%3Fplayer%3Dmse`);
  await logIn(page, PASSWORD);
  await page.waitForURL(`${server.url}?player=mse`);
  await plays(page);
  const [kept] = await page.context().cookies();
  await page.waitForSelector('#btn-logout', { state: 'visible' });
  await page.click('#btn-logout');
  await atLoginPage(page);
  assert.equal(await page.evaluate(async () => (await fetch('api/status')).status), 401);
  assert.deepEqual(await page.context().cookies(), [], 'the cookie is gone');
  // A copy of the cookie kept from before is refused too.
  const again = await fetch(`${server.url}api/status`, { headers: { Cookie: `${kept.name}=${kept.value}` } });
  assert.equal(again.status, 401);
  assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
  assert.deepEqual(unexpected(page.errors), []);
  await page.close();
});

test('without JavaScript the login form logs in too', async () => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${server.url}?player=mse`);
  await atLoginPage(page);
  await logIn(page, 'not the password');
  await page.waitForURL((url) => url.searchParams.get('error') === 'wrong');
  assert.equal(await page.textContent('#login-error'), 'Wrong user name or password.');
  await logIn(page, PASSWORD);
  await page.waitForURL(`${server.url}?player=mse`);
  assert.match(await page.textContent('noscript'), /needs JavaScript/);
  const status = await context.request.get(`${server.url}api/status`);
  assert.equal(status.status(), 200, 'the cookie opens the API');
  await context.close();
});

test('a restart of the streamer logs the viewer out: the player goes to the login page and comes back', async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}login?next=%2F%3Fplayer%3Dwebcodecs`);
  await logIn(page, PASSWORD);
  await page.waitForURL(`${server.url}?player=webcodecs`);
  await plays(page);

  await server.stop();
  server = await startStreamer({ port: server.port, env: ENV });
  await atLoginPage(page);
  assert.equal(new URL(page.url()).searchParams.get('next'), '/?player=webcodecs');
  await logIn(page, PASSWORD);
  await page.waitForURL(`${server.url}?player=webcodecs`);
  await plays(page);
  assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
  assert.deepEqual(
    unexpected(page.errors).filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED/.test(e)),
    [],
  );
  await page.close();
});
