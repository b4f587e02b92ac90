// The login page (login.html): it works as a plain form without JavaScript; this
// sends the form with fetch instead, so that a wrong password or the brake's wait is
// shown at once (with a countdown), then goes on to the page the login was for.
//
// POST /login answers JSON when asked for it: 200 {next} with the session cookie,
// 401 {error}, 429 {error, retry_after} (docs/protocol.md).

/**
 * What the page says while the brake holds logins back from this address.
 * @param {number} seconds
 */
export function waitMessage(seconds) {
  return `Too many wrong passwords: try again in ${seconds} s.`;
}

/**
 * Where to go after logging in: a path on this server (as the server sanitizes
 * it), else `/`.
 * @param {unknown} next
 */
export function safeNext(next) {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.includes('\\')) return '/';
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(next) ? '/' : next;
}

/**
 * The wait, in whole seconds, that an address with `?error=wait&retry=N` (the form
 * flow) or a 429's `retry_after` asks for; 0 when none.
 * @param {unknown} value
 */
export function retrySeconds(value) {
  const seconds = Math.ceil(Number(value));
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 24 * 3600) : 0;
}

class LoginPage {
  constructor(doc = document) {
    const $ = (id) => /** @type {HTMLElement} */ (doc.getElementById(id));
    this.form = /** @type {HTMLFormElement} */ ($('login-form'));
    this.error = $('login-error');
    this.user = /** @type {HTMLInputElement} */ ($('login-user'));
    this.password = /** @type {HTMLInputElement} */ ($('login-password'));
    this.next = /** @type {HTMLInputElement} */ ($('login-next'));
    this.submit = /** @type {HTMLButtonElement} */ ($('login-submit'));
    this.countdown = null;
    this.busy = false;
  }

  start() {
    const params = new URLSearchParams(location.search);
    // The form flow's error came in the address: a countdown for a wait, and the
    // address cleaned so that a reload does not show a stale error.
    if (params.get('error') === 'wait') this.wait(retrySeconds(params.get('retry')) || 1);
    if (params.has('error')) {
      const clean = new URLSearchParams();
      if (params.has('next')) clean.set('next', params.get('next') ?? '/');
      const query = clean.toString();
      history.replaceState(null, '', `${location.pathname}${query ? `?${query}` : ''}`);
    }
    if (this.error.textContent && this.user.value) this.password.focus();
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.send();
    });
  }

  /** @param {string} text */
  show(text) {
    this.error.textContent = text;
  }

  /** Holds the form back for `seconds`, counting down. */
  wait(seconds) {
    clearInterval(this.countdown);
    const until = Date.now() + seconds * 1000;
    this.submit.disabled = true;
    const tick = () => {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left > 0) {
        this.show(waitMessage(left));
        return;
      }
      clearInterval(this.countdown);
      this.countdown = null;
      this.submit.disabled = false;
      this.show('');
    };
    tick();
    this.countdown = setInterval(tick, 250);
  }

  async send() {
    if (this.busy || this.countdown !== null) return;
    this.busy = true;
    this.submit.disabled = true;
    let response;
    try {
      response = await fetch(this.form.action, {
        method: 'POST',
        headers: { Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ user: this.user.value, password: this.password.value, next: this.next.value }),
        cache: 'no-store',
        credentials: 'same-origin',
      });
    } catch {
      this.done();
      this.show('The camera cannot be reached. Check the connection and try again.');
      return;
    }
    /** @type {{next?: unknown, error?: unknown, retry_after?: unknown}} */
    const answer = await response.json().catch(() => ({}));
    if (response.ok) {
      // The cookie is set: on to the page the login was for, leaving no login page
      // in the history.
      location.replace(safeNext(answer.next ?? this.next.value));
      return;
    }
    this.done();
    if (response.status === 429) {
      this.wait(retrySeconds(answer.retry_after ?? response.headers.get('Retry-After')) || 1);
    } else if (response.status === 401) {
      this.show(typeof answer.error === 'string' ? answer.error : 'Wrong user name or password.');
      this.password.value = '';
      this.password.focus();
    } else {
      this.show(`The camera answered ${response.status} ${response.statusText}. Try again.`);
    }
  }

  done() {
    this.busy = false;
    this.submit.disabled = this.countdown !== null;
  }
}

if (typeof document !== 'undefined' && document.getElementById('login-form')) {
  new LoginPage().start();
}
