// The update page (update.html, js/update.js) in Chromium: where RAUC is not (a
// D-Bus address nobody listens on), it says why and shows the running version,
// and a refused upload shows the server's message; with a REAL `rauc service` on a
// private session bus (rauc-fixture.mjs; needs real root and loop devices, else
// the test fails saying why), a bundle signed by a wrong key is refused by RAUC,
// the good one installs into slot B, and the page follows the device's restart
// (the streamer restarted on the same port with a new boot id: the session is
// gone, so via the login page) and the new system's trial to the verdict.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { freePort, launchBrowser, newPage, requireJmuxer, startStreamer, waitInPage } from '../harness.mjs';
import { bundle, keyPair, raucMissing, startRauc } from '../rauc-fixture.mjs';

const USER = 'streamer';
const PASSWORD = 'an update test password';
/** A D-Bus address where nothing listens: RAUC is not there. */
const NO_BUS = {
  DBUS_STARTER_BUS_TYPE: 'session',
  DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/streamer-test-bus',
};
/** The page polls every 1-2 s and the machine may be loaded: waits are generous. */
const LONG = 60_000;

let browser;
const dirs = [];

before(async () => {
  requireJmuxer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A new temporary folder, removed after the tests. */
function tempDir() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'streamer-update-page-'));
  dirs.push(dir);
  return dir;
}

/** Writes the os-release file the streamer reads its version from. */
function writeOsRelease(dir, version) {
  writeFileSync(path.join(dir, 'os-release'), `NAME=test\nIMAGE_VERSION="${version}"\n`);
}

/** Writes the kernel's boot id the streamer reports (a new one plays a reboot). */
function writeBootId(dir, id) {
  writeFileSync(path.join(dir, 'boot_id'), `${id}\n`);
}

/**
 * The streamer with its configuration file in `dir` (last-update.txt is read beside
 * it), its spool in `dir/spool`, `dir/os-release` and `dir/boot_id`; `password` sets one.
 */
function startUpdateStreamer(dir, { port, password, env = {} } = {}) {
  const config = path.join(dir, 'streamer.toml');
  writeFileSync(config, '');
  return startStreamer({
    port,
    config,
    env: {
      STREAMER_UPDATE_SPOOL: path.join(dir, 'spool'),
      STREAMER_UPDATE_OS_RELEASE: path.join(dir, 'os-release'),
      STREAMER_UPDATE_BOOT_ID: path.join(dir, 'boot_id'),
      STREAMER_RTSP__ENABLED: 'false',
      ...(password ? { STREAMER_ACCESS__PASSWORD: password } : {}),
      ...env,
    },
  });
}

/** Console errors but those `expected` (Chromium logs every refused request). */
const unexpected = (errors, expected) => errors.filter((error) => !expected.test(error));

const text = (page, id) => page.evaluate((id) => document.getElementById(id).textContent, id);

/** Waits until element `id`'s text satisfies `check` (a RegExp or a string); returns it. */
function waitText(page, id, check, timeout = LONG) {
  const pattern = typeof check === 'string' ? { exact: check } : { source: check.source, flags: check.flags };
  return waitInPage(
    page,
    ({ id, pattern }) => {
      const value = document.getElementById(id)?.textContent ?? '';
      const ok = pattern.exact !== undefined ? value === pattern.exact : new RegExp(pattern.source, pattern.flags).test(value);
      return ok && value;
    },
    { id, pattern },
    { timeout, what: `#${id} to be ${check}` },
  );
}

/** Fills in and sends the login form; waits until the page it was for is back. */
async function logIn(page, back) {
  await page.waitForURL((url) => url.pathname === '/login', { timeout: LONG });
  await page.waitForSelector('#login-form');
  await page.fill('#login-user', USER);
  await page.fill('#login-password', PASSWORD);
  await page.click('#login-submit');
  await page.waitForURL(back, { timeout: LONG });
}

/**
 * Chooses `file` and clicks Install, after putting a marker into #update-error so
 * that a message seen afterwards is the install's own.
 */
async function install(page, file) {
  await page.evaluate(() => {
    document.getElementById('update-error').textContent = 'before the install';
  });
  await page.setInputFiles('#update-file', file);
  await page.click('#update-submit');
}

/** Waits for the install's error message (not the marker); returns it. */
async function installError(page, timeout = LONG) {
  const message = await waitInPage(
    page,
    () => {
      const value = document.getElementById('update-error').textContent;
      return value && value !== 'before the install' && value;
    },
    null,
    { timeout, what: 'the install to fail' },
  );
  await waitInPage(page, () => !document.getElementById('update-submit').disabled, null, {
    what: 'the Install button back',
  });
  assert.equal(await page.$eval('#update-progress', (e) => e.hidden), true, 'the progress bar is hidden again');
  assert.equal(await text(page, 'update-state'), '');
  return message;
}

test('without a password the update page says updates need one, and an install is refused with the server message', async () => {
  const dir = tempDir();
  writeOsRelease(dir, 'test-1');
  writeFileSync(path.join(dir, 'not-a-bundle.raucb'), 'not a bundle');
  const server = await startUpdateStreamer(dir, { env: NO_BUS });
  try {
    const page = await newPage(browser);
    const response = await page.goto(`${server.url}update.html`);
    assert.equal(response.status(), 200);
    assert.match(response.headers()['content-security-policy'] ?? '', /script-src 'self'/);
    const error = await waitText(page, 'update-error', /Updates need a password/);
    assert.match(error, /set access\.password in streamer\.toml/);
    assert.match(error, /updates are not available here/);
    assert.equal(await text(page, 'update-running'), 'test-1');
    assert.equal(await text(page, 'update-last'), 'none');

    // The server refuses it (403) and says why; the page shows that and lets the user try again.
    await install(page, path.join(dir, 'not-a-bundle.raucb'));
    const refused = await installError(page);
    assert.match(refused, /^updates need a password: .*allow_without_password = true/);

    assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
    assert.deepEqual(unexpected(page.errors, /status of 403/), []);
    await page.close();
  } finally {
    await server.stop();
  }
});

test('with a password and no RAUC: the player\'s Update button leads to the page, which says why not and shows the version', async () => {
  const dir = tempDir();
  writeOsRelease(dir, 'test-1');
  writeFileSync(
    path.join(dir, 'last-update.txt'),
    'result=updated\nversion=test-1\nslot=A\ntime=2026-01-01T00:00:00Z\nmessage=ok\n',
  );
  writeFileSync(path.join(dir, 'not-a-bundle.raucb'), 'not a bundle');
  const server = await startUpdateStreamer(dir, { password: PASSWORD, env: NO_BUS });
  try {
    const page = await newPage(browser);
    await page.goto(`${server.url}?player=mse`);
    await logIn(page, `${server.url}?player=mse`);
    await page.waitForSelector('#btn-update', { state: 'visible' });
    await page.click('#btn-update');
    await page.waitForURL((url) => url.pathname === '/update.html', { timeout: LONG });

    const error = await waitText(page, 'update-error', /updates are not available here/);
    assert.doesNotMatch(error, /need a password/);
    assert.equal(await text(page, 'update-running'), 'test-1');
    assert.equal(await text(page, 'update-last'), 'updated · test-1 · slot A · 2026-01-01T00:00:00Z · ok');

    // Past the password, RAUC's absence refuses it (503), in the server's words.
    await install(page, path.join(dir, 'not-a-bundle.raucb'));
    assert.match(await installError(page), /^updates are not available here: /);

    assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
    assert.deepEqual(unexpected(page.errors, /status of (401|503)/), []);
    await page.close();
  } finally {
    await server.stop();
  }
});

/** `GET /api/update` with the password. */
async function updateReport(server) {
  const authorization = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  const response = await fetch(`${server.url}api/update`, { headers: { Authorization: authorization } });
  assert.equal(response.status, 200);
  return response.json();
}

/** Polls `GET /api/update` until `done(report)`; returns the report. */
async function waitReport(server, done, what) {
  const deadline = Date.now() + LONG;
  let report;
  while (Date.now() < deadline) {
    report = await updateReport(server);
    if (done(report)) return report;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`gave up waiting for ${what}; last: ${JSON.stringify(report)}`);
}

test('with a real rauc service: a wrongly signed bundle is refused, the good one installs, and the page follows the restart', async () => {
  // Never skipped, as app/tests/update.rs and update_slots.rs: without what RAUC
  // needs it fails saying why.
  const why = raucMissing();
  if (why) throw new Error(`this test runs Debian's RAUC as the camera runs it, and cannot here: ${why} (run it as real root, as CI does)`);
  const dir = tempDir();
  const rauc = await startRauc(dir);
  let server;
  try {
    const image = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < image.length; i++) image[i] = (i * 7) % 251;
    const good = bundle(dir, 'good', image, 'good.raucb');
    keyPair(dir, 'wrong');
    const wrong = bundle(dir, 'wrong', image, 'wrong.raucb');
    writeOsRelease(dir, 'test-1');
    writeBootId(dir, 'boot-1');
    writeFileSync(
      path.join(dir, 'last-update.txt'),
      'result=updated\nversion=test-1\nslot=A\ntime=2026-01-01T00:00:00Z\nmessage=ok\n',
    );
    const port = await freePort();
    server = await startUpdateStreamer(dir, { port, password: PASSWORD, env: rauc.env });

    const page = await newPage(browser);
    await page.goto(`${server.url}update.html`);
    await logIn(page, `${server.url}update.html`);
    await waitText(page, 'update-running', 'test-1, slot A');
    assert.equal(await text(page, 'update-error'), '', 'RAUC is here: nothing to complain about');
    assert.equal(await text(page, 'update-last'), 'updated · test-1 · slot A · 2026-01-01T00:00:00Z · ok');

    // 409: another upload is under way (half its body sent).
    const other = net.connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => other.once('connect', resolve).once('error', reject));
    other.on('error', () => {});
    other.write(
      `POST /api/update HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
        `Authorization: Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}\r\n` +
        'Content-Type: application/octet-stream\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n',
    );
    other.write(Buffer.alloc(500));
    await waitReport(server, (r) => r.upload.phase === 'receiving', 'the other upload');
    await install(page, wrong);
    assert.match(await installError(page), /already being received/);
    other.destroy();
    await waitReport(server, (r) => r.upload.phase === 'finished', 'the other upload to end');

    // Signed by a key not in the keyring: RAUC refuses it, and the page says RAUC's words.
    await install(page, wrong);
    const refused = await installError(page, 2 * LONG);
    const report = await updateReport(server);
    assert.equal(report.upload.ok, false);
    assert.equal(refused, report.upload.message, 'the page shows the refusal');
    assert.match(refused, /^RAUC could not install it: signature verification failed/, `RAUC's refusal: ${refused}\n${rauc.log()}`);
    assert.deepEqual(
      readFileSync(path.join(dir, 'slotB.img')).subarray(0, image.length),
      Buffer.alloc(image.length),
      'a refused bundle wrote slot B',
    );

    // The good bundle: every state the page went through is kept.
    await page.evaluate(() => {
      const state = document.getElementById('update-state');
      window.updateStates = [];
      new MutationObserver((records) => {
        for (const record of records) for (const node of record.addedNodes) window.updateStates.push(node.textContent);
      }).observe(state, { childList: true });
    });
    await install(page, good);
    const outcome = await waitInPage(
      page,
      () => {
        const error = document.getElementById('update-error').textContent;
        if (error && error !== 'before the install') return `error: ${error}`;
        const state = document.getElementById('update-state').textContent;
        return state.startsWith('Installed') && state;
      },
      null,
      { timeout: 2 * LONG, what: 'the install to end' },
    );
    assert.equal(outcome, 'Installed. Restarting into the new system…', rauc.log());
    const states = await page.evaluate(() => window.updateStates);
    assert.ok(states.some((s) => /^Uploading… \d+ %$/.test(s)), `upload progress shown: ${JSON.stringify(states)}`);
    assert.ok(states.some((s) => /^Installing… \d+ %/.test(s)), `install progress shown: ${JSON.stringify(states)}`);
    assert.equal(await text(page, 'update-error'), '');
    assert.equal(await page.$eval('#update-submit', (e) => e.disabled), true, 'no second install while it restarts');
    assert.deepEqual(readFileSync(path.join(dir, 'slotB.img')).subarray(0, image.length), image, 'slot B holds the image');
    assert.match(readFileSync(path.join(dir, 'boot/calls'), 'utf8'), /^set-primary B$/m);

    // The post-install handler's record (rauc-post-install), before the reboot.
    writeFileSync(
      path.join(dir, 'last-update.txt'),
      'result=installed\nversion=test-2\nslot=B\ntime=2026-01-02T00:00:00Z\nmessage=installed into slot B; restarting to try it\n',
    );
    // The streamer alone restarts (the same boot): the session is gone, so the page
    // goes to the login page and comes back, but this is not the reboot it waits for.
    await server.stop();
    server = await startUpdateStreamer(dir, { port, password: PASSWORD, env: rauc.env });
    await page.waitForURL((url) => url.pathname === '/login', { timeout: LONG });
    assert.equal(new URL(page.url()).searchParams.get('next'), '/update.html');
    await logIn(page, `${server.url}update.html`);
    await waitText(page, 'update-running', 'test-1, slot A');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal(await text(page, 'update-state'), 'Installed. Restarting into the new system…', 'the same boot is no restart');
    assert.equal(await page.$eval('#update-submit', (e) => e.disabled), true, 'no second install while it waits');

    // The device restarts: the streamer goes away...
    await server.stop();
    await waitText(page, 'update-state', /^Restarting…/);
    // ...and comes back on the same port from a new boot, as the new system in slot B, on trial.
    writeOsRelease(dir, 'test-2');
    writeBootId(dir, 'boot-2');
    await rauc.reboot('B');
    server = await startUpdateStreamer(dir, { port, password: PASSWORD, env: rauc.env });
    // A restart ends the session: the page goes to the login page, which comes back to it.
    await page.waitForURL((url) => url.pathname === '/login', { timeout: LONG });
    assert.equal(new URL(page.url()).searchParams.get('next'), '/update.html');
    await logIn(page, `${server.url}update.html`);
    await waitText(page, 'update-state', /^Back in the new system: checking that it streams/);
    await waitText(page, 'update-running', 'test-2, slot B');
    // The trial ends well (update-check commits the slot and says so).
    writeFileSync(
      path.join(dir, 'last-update.txt'),
      'result=updated\nversion=test-2\nslot=B\ntime=2026-01-02T00:01:00Z\nmessage=the new system is running\n',
    );
    await waitText(page, 'update-state', 'Back: updated · test-2 · slot B · 2026-01-02T00:01:00Z · the new system is running');
    assert.equal(await text(page, 'update-error'), '');
    assert.equal(await page.$eval('#update-submit', (e) => e.disabled), false, 'installs allowed again');
    // The news is told once: a reload shows the last update, not "Back".
    await page.reload();
    await waitText(page, 'update-running', 'test-2, slot B');
    assert.equal(await text(page, 'update-state'), '');

    assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
    assert.deepEqual(unexpected(page.errors, /status of (401|409)|ERR_CONNECTION_REFUSED/), []);
    await page.close();
  } finally {
    await server?.stop();
    await rauc.stop();
  }
});
