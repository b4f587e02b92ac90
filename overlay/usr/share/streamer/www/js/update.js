// @ts-check
// The update page (update.html): sends a RAUC bundle to POST /api/update with
// the upload's progress, follows RAUC's install with GET /api/update, says
// "restarting" while the device reboots into the new system, waits for it to
// answer again and shows the last update's result (docs/protocol.md). A restart
// ends every login session: a 401 sends to the login page, which comes back here,
// and the page then says the device is back and how the update went.

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
 * Set (in this tab's sessionStorage) while the page goes to the login page after
 * the device restarted: back here, the page says so.
 */
const RESTARTED_KEY = 'streamer-update-restarted';

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

/** Waits for the device to go away and come back, then shows the result. */
async function waitForRestart() {
  const state = $('update-state');
  state.textContent = 'Installed. Restarting into the new system…';
  const deadline = Date.now() + 10 * 60 * 1000;
  let wentAway = false;
  while (Date.now() < deadline) {
    await sleep(2000);
    try {
      const r = await report();
      if (wentAway) {
        show(r);
        state.textContent = `Back: ${describe(r).last}`;
        return;
      }
    } catch (error) {
      if (error instanceof LoginNeeded) {
        // The session this page had is gone: the streamer restarted.
        state.textContent = 'Back. Log in again to see the result…';
        sessionStorage.setItem(RESTARTED_KEY, '1');
        logIn();
        return;
      }
      wentAway = true;
      state.textContent = 'Restarting… (the page waits for the device to come back)';
    }
  }
  state.textContent = 'The device has not come back yet; reload this page later.';
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
        break;
      }
    }
    await waitForRestart();
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
  const restarted = sessionStorage.getItem(RESTARTED_KEY) !== null;
  sessionStorage.removeItem(RESTARTED_KEY);
  report()
    .then((r) => {
      show(r);
      if (restarted) $('update-state').textContent = `Back: ${describe(r).last}`;
    })
    .catch((error) => {
      if (error instanceof LoginNeeded) {
        if (restarted) sessionStorage.setItem(RESTARTED_KEY, '1');
        logIn();
        return;
      }
      $('update-error').textContent = error instanceof Error ? error.message : String(error);
    });
}
