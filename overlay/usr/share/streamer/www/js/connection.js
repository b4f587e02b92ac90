// The WebSocket to the streamer: address, reconnection with backoff, message dispatch.

/**
 * The stream's WebSocket address for a page at `location`: same host and port,
 * `wss:` under https, and the path of the page's folder + `ws`, so the player
 * works behind a reverse proxy that serves it under a prefix.
 * @param {{protocol: string, host: string, pathname: string}} location
 * @param {string} [query] query string for the socket, without `?`
 */
export function wsUrl(location, query = '') {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const path = location.pathname || '/';
  const folder = path.slice(0, path.lastIndexOf('/') + 1) || '/';
  return `${scheme}//${location.host}${folder}ws${query ? `?${query}` : ''}`;
}

/**
 * Delay before reconnection attempt number `attempt` (0 based): 0.5 s doubling up
 * to 10 s, with +-20 % jitter so many viewers don't come back at the same instant.
 * @param {number} attempt
 * @param {() => number} [random]
 */
export function backoffDelay(attempt, random = Math.random) {
  const base = Math.min(10_000, 500 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/**
 * A WebSocket that reconnects with backoff until closed.
 *
 * Callbacks: `onOpen()`, `onText(message)` (parsed JSON object), `onBinary(Uint8Array)`,
 * `onClose({code, reason})`, `onRetry(ms)` (a reconnection is scheduled in `ms`).
 */
export class Connection {
  constructor(url, callbacks) {
    this.url = url;
    this.callbacks = callbacks;
    this.attempt = 0;
    this.socket = null;
    this.timer = null;
    this.closed = false;
    this.reconnects = 0;
  }

  /** Opens the socket now. */
  open() {
    clearTimeout(this.timer);
    this.timer = null;
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch (error) {
      console.warn('streamer: cannot open the WebSocket', error);
      this.#scheduleRetry();
      return;
    }
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    socket.onopen = () => this.callbacks.onOpen?.();
    socket.onmessage = (event) => {
      if (typeof event.data === 'string') {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          return;
        }
        if (message && typeof message.type === 'string') this.callbacks.onText?.(message);
      } else {
        this.callbacks.onBinary?.(new Uint8Array(event.data));
      }
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.callbacks.onClose?.({ code: event.code, reason: event.reason });
      this.#scheduleRetry();
    };
  }

  /** The connection works (video arrived): the next failure starts the backoff anew. */
  markHealthy() {
    this.attempt = 0;
  }

  /** Sends a JSON message if the socket is open. */
  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
    }
  }

  /** Drops the current socket and connects again at once. */
  restart() {
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.close(1000, 'restart');
    }
    this.reconnects += 1;
    this.open();
  }

  /** Closes for good. */
  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, 'bye');
  }

  #scheduleRetry() {
    if (this.closed) return;
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.callbacks.onRetry?.(delay);
    this.timer = setTimeout(() => {
      this.reconnects += 1;
      this.open();
    }, delay);
  }
}
