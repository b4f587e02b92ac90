// The camera's password, as the player sees it. When one is set and this browser's
// session is gone (logged out elsewhere, or the streamer restarted: that logs
// everyone out), the server answers 401 to everything but the login page: the
// player then goes to the login page, which brings the viewer back here. The
// WebSocket and WebRTC cannot tell a 401 from any other failure, so their failures
// ask `/api/status`, which can.

/** The shortest time between two such questions. */
const CHECK_EVERY_MS = 2000;

/**
 * The login page for a page at `location`, coming back to it (path and query)
 * after logging in: the page's folder + `login`, like the WebSocket's address, so
 * that it works behind a reverse proxy's path prefix.
 * @param {{pathname: string, search: string}} location
 */
export function loginUrl(location) {
  const path = location.pathname || '/';
  const folder = path.slice(0, path.lastIndexOf('/') + 1) || '/';
  return `${folder}login?next=${encodeURIComponent(path + (location.search || ''))}`;
}

/**
 * Whether `/api/status` says a password is set (its `access.password` is `plain`,
 * `hashed` or `unusable`; `none` or missing: no password).
 * @param {unknown} status the parsed document
 */
export function hasPassword(status) {
  const password = /** @type {{access?: {password?: unknown}} | null} */ (status)?.access?.password;
  return typeof password === 'string' && password !== 'none';
}

/**
 * Asks `/api/status` whether this page may still watch.
 *
 * Callbacks: `onLocked()` (the server answered 401: log in again), `onStatus(status)`
 * (the parsed document, on 200). Network errors and other answers say nothing.
 */
export class AccessCheck {
  /**
   * @param {{onLocked: () => void, onStatus?: (status: unknown) => void}} callbacks
   * @param {{url?: string, fetch?: typeof fetch, now?: () => number}} [options]
   */
  constructor(callbacks, { url = 'api/status', fetch: fetchFn = (...args) => fetch(...args), now = Date.now } = {}) {
    this.callbacks = callbacks;
    this.url = url;
    this.fetch = fetchFn;
    this.now = now;
    this.last = -Infinity;
    this.pending = false;
  }

  /** Asks now, unless a question is on its way or was asked less than CHECK_EVERY_MS ago. */
  async check() {
    if (this.pending || this.now() - this.last < CHECK_EVERY_MS) return;
    this.pending = true;
    this.last = this.now();
    try {
      const response = await this.fetch(this.url, { cache: 'no-store', headers: { Accept: 'application/json' } });
      if (response.status === 401) {
        this.callbacks.onLocked();
      } else if (response.ok) {
        this.callbacks.onStatus?.(await response.json());
      }
    } catch {
      // Unreachable (the streamer restarts): the next failure asks again.
    } finally {
      this.pending = false;
    }
  }
}
