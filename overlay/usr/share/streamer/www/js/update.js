// @ts-check
// The update page (update.html): sends a RAUC bundle to POST /api/update with
// the upload's progress, follows RAUC's install with GET /api/update, says
// "restarting" while the device reboots into the new system, waits for it to
// answer from a new boot (its `boot_id` changed), follows the new system's trial
// and shows its verdict: updated, or rolled back (docs/protocol.md). A restart
// ends every login session: a 401 sends to the login page, which comes back here,
// and the page goes on following from where it was.

import { loginUrl } from './access.js';

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * The running system and the last update, in words.
 * @param {any} report GET /api/update's answer
 * @returns {{running: string, last: string}}
 */
export function describe(report) {
  const slot = report?.rauc?.boot_slot ? `slot ${report.rauc.boot_slot}` : '';
  const version = report?.version ?? '';
  const running = [version, slot].filter(Boolean).join(', ') || 'unknown';
  const last = report?.last
    ? [report.last.result, report.last.version, report.last.slot && `slot ${report.last.slot}`,
      report.last.time, report.last.message].filter(Boolean).join(' · ')
    : 'none';
  return { running, last };
}

/**
 * The message of a refused request: `{error}` JSON, else the text itself.
 * @param {number} status
 * @param {string} text
 */
export function errorMessage(status, text) {
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error === 'string') return body.error;
  } catch { /* not JSON */ }
  return text.trim() || `the device answered ${status}`;
}

/** The server answered 401: a password is set and this browser's session is gone. */
export class LoginNeeded extends Error {
  constructor() {
    super('log in again');
  }
}

/**
 * Set (in this tab's sessionStorage) from the end of an install until the verdict
 * is shown: `{before, wentAway, since}` (see followRestart). It carries the wait
 * over a trip to the login page; a reload after the verdict shows no news.
 */
const WAITING_KEY = 'streamer-update-waiting';

/** How long the page follows a restart: a reboot, the 5-minute trial, maybe a reboot back. */
const FOLLOW_MS = 15 * 60 * 1000;

/**
 * Where the device is after an install, from one GET /api/update answer.
 * @param {any} report the answer
 * @param {string | null} before the boot id when the install ended (null: the server did not say)
 * @param {boolean} wentAway whether the device stopped answering (or forgot the session) since
 * @returns {'waiting' | 'trial' | 'done'} still the old boot; the new system on trial; a verdict
 */
export function restartState(report, before, wentAway) {
  const id = report?.boot_id ?? null;
  const restarted = id !== null && before !== null ? id !== before : wentAway;
  if (!restarted) return 'waiting';
  return report?.last?.result === 'installed' ? 'trial' : 'done';
}

/** To the login page, which comes back to this page. */
function logIn() {
  location.replace(loginUrl(location));
}

/** @returns {Promise<any>} */
async function report() {
  const response = await fetch('api/update', { cache: 'no-store', headers: { Accept: 'application/json' } });
  if (response.status === 401) throw new LoginNeeded();
  if (!response.ok) throw new Error(errorMessage(response.status, await response.text()));
  return response.json();
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function show(/** @type {any} */ r) {
  const { running, last } = describe(r);
  $('update-running').textContent = running;
  $('update-last').textContent = last;
  const problems = [];
  if (r.needs_password) problems.push('Updates need a password: set access.password in streamer.toml first.');
  if (!r.available) problems.push(r.reason ?? 'updates are not available here');
  $('update-error').textContent = problems.join(' ');
}

/**
 * Sends the file with the upload's progress; resolves with the answer.
 * @param {File} file
 * @param {(fraction: number) => void} onProgress
 * @returns {Promise<{status: number, text: string}>}
 */
function upload(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', 'api/update');
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => resolve({ status: xhr.status, text: xhr.responseText });
    xhr.onerror = () => reject(new Error('the upload failed (the connection broke)'));
    xhr.send(file);
  });
}

/**
 * Follows the device from the end of an install to the verdict: it restarts into
 * the new system (a new `boot_id`), tries it (`last.result` is `installed`) and
 * commits it (`updated`) or rolls back (`rolled-back`). Without a boot id (an
 * older server) the device having gone away is the sign of the restart.
 * @param {string | null} before the boot id when the install ended
 * @param {boolean} wentAway
 * @param {number} since when the install ended (Date.now()): the wait ends FOLLOW_MS after
 */
async function followRestart(before, wentAway, since) {
  const state = $('update-state');
  const submit = /** @type {HTMLButtonElement} */ ($('update-submit'));
  submit.disabled = true;
  if (!state.textContent) state.textContent = 'Installed. Restarting into the new system…';
  const remember = () => sessionStorage.setItem(WAITING_KEY, JSON.stringify({ before, wentAway, since }));
  remember();
  const deadline = since + FOLLOW_MS;
  let tried = false;
  while (Date.now() < deadline) {
    let r;
    try {
      r = await report();
    } catch (error) {
      wentAway = true;
      remember();
      if (error instanceof LoginNeeded) {
        // The session this page had is gone: the streamer restarted. The login
        // page comes back here, and the wait goes on.
        state.textContent = 'Back. Log in again to see the result…';
        logIn();
        return;
      }
      state.textContent = tried
        ? 'Restarting again… (the page waits for the device to come back)'
        : 'Restarting… (the page waits for the device to come back)';
      await sleep(2000);
      continue;
    }
    const where = restartState(r, before, wentAway);
    if (where === 'done') {
      sessionStorage.removeItem(WAITING_KEY);
      show(r);
      state.textContent = `Back: ${describe(r).last}`;
      submit.disabled = false;
      return;
    }
    if (where === 'trial') {
      tried = true;
      show(r);
      state.textContent = 'Back in the new system: checking that it streams (up to 5 minutes)…';
    }
    await sleep(2000);
  }
  sessionStorage.removeItem(WAITING_KEY);
  state.textContent = 'The device has not come back yet; reload this page later.';
  submit.disabled = false;
}

/** The wait an earlier visit of this tab left (WAITING_KEY), if any. */
function leftWaiting() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(WAITING_KEY) ?? 'null');
    if (saved && typeof saved === 'object') {
      return {
        before: typeof saved.before === 'string' ? saved.before : null,
        wentAway: saved.wentAway === true,
        since: typeof saved.since === 'number' ? saved.since : Date.now(),
      };
    }
  } catch { /* not ours */ }
  return null;
}

async function install(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($('update-file'));
  const file = input.files?.[0];
  if (!file) return;
  const bar = /** @type {HTMLProgressElement} */ ($('update-progress'));
  const state = $('update-state');
  const submit = /** @type {HTMLButtonElement} */ ($('update-submit'));
  $('update-error').textContent = '';
  submit.disabled = true;
  bar.hidden = false;
  bar.value = 0;
  try {
    state.textContent = 'Uploading…';
    const answer = await upload(file, (f) => {
      bar.value = Math.round(f * 100);
      state.textContent = `Uploading… ${Math.round(f * 100)} %`;
    });
    if (answer.status === 401) throw new LoginNeeded();
    if (answer.status !== 202) throw new Error(errorMessage(answer.status, answer.text));
    bar.value = 0;
    let bootId = null;
    for (;;) {
      await sleep(1000);
      const r = await report();
      const progress = r.rauc?.progress;
      if (progress) {
        bar.value = progress.percent;
        state.textContent = `Installing… ${progress.percent} % ${progress.message}`;
      }
      if (r.upload?.phase === 'finished') {
        if (!r.upload.ok) throw new Error(r.upload.message);
        bootId = r.boot_id ?? null;
        break;
      }
    }
    state.textContent = 'Installed. Restarting into the new system…';
    await sleep(2000);
    await followRestart(bootId, false, Date.now());
    return;
  } catch (error) {
    if (error instanceof LoginNeeded) {
      logIn();
      return;
    }
    $('update-error').textContent = error instanceof Error ? error.message : String(error);
    state.textContent = '';
    bar.hidden = true;
  } finally {
    submit.disabled = false;
  }
}

if (typeof document !== 'undefined' && document.getElementById('update-form')) {
  $('update-form').addEventListener('submit', (event) => install(/** @type {SubmitEvent} */ (event)));
  const waiting = leftWaiting();
  report()
    .then((r) => {
      show(r);
      if (waiting) followRestart(waiting.before, waiting.wentAway, waiting.since);
    })
    .catch((error) => {
      if (error instanceof LoginNeeded) {
        logIn();
        return;
      }
      $('update-error').textContent = error instanceof Error ? error.message : String(error);
    });
}
