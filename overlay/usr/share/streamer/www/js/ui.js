// The page: status line, configuration-error banner, controls and the stats overlay.

const STATUS_TEXT = {
  connecting: 'Connecting…',
  starting: 'Camera starting…',
  live: 'Live',
  offline: 'Camera offline',
  reconnecting: 'Reconnecting…',
  error: 'Cannot play',
};

/** The stats overlay's name for each decoder path. */
const DECODER_NAMES = {
  webrtc: 'the browser (WebRTC)',
  webcodecs: 'WebCodecs',
  mse: 'MSE (jMuxer)',
};

/**
 * A file name for a snapshot taken at `date`: `snapshot-2024-05-01T12-30-05.jpg` (local time),
 * with `extension`.
 */
export function snapshotName(date = new Date(), extension = 'jpg') {
  const pad = (n) => String(n).padStart(2, '0');
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  const time = `${pad(date.getHours())}-${pad(date.getMinutes())}-${pad(date.getSeconds())}`;
  return `snapshot-${day}T${time}.${extension}`;
}

/**
 * When the frame in a `/snapshot.jpg` response was captured (its `X-Frame-Captured-Us`
 * header, µs since the Unix epoch), or now when it does not say.
 * @param {Headers} headers
 */
export function snapshotDate(headers) {
  const micros = Number(headers.get('x-frame-captured-us'));
  return micros > 0 ? new Date(micros / 1000) : new Date();
}

export class Ui {
  constructor(doc = document) {
    this.doc = doc;
    const $ = (id) => doc.getElementById(id);
    this.stage = $('stage');
    this.status = $('status');
    this.statusText = $('status-text');
    this.statusDetail = $('status-detail');
    this.statusCountdown = $('status-countdown');
    this.banner = $('config-errors');
    this.bannerList = $('config-errors-list');
    this.statsPanel = $('stats');
    this.statsButton = $('btn-stats');
    this.snapshotButton = $('btn-snapshot');
    this.fullscreenButton = $('btn-fullscreen');
    this.logoutForm = $('logout-form');
    this.countdown = null;
  }

  /**
   * Wires the buttons, a double click/tap on the picture (fullscreen) and keyboard
   * shortcuts (s: stats, f: fullscreen, p: snapshot).
   */
  bind({ snapshot, fullscreenFallback }) {
    this.statsButton.addEventListener('click', () => this.toggleStats());
    this.snapshotButton.addEventListener('click', () => this.#snapshot(snapshot));
    this.fullscreenButton.addEventListener('click', () => this.#toggleFullscreen(fullscreenFallback));
    this.stage.addEventListener('dblclick', (event) => {
      if (!event.target.closest('button')) this.#toggleFullscreen(fullscreenFallback);
    });
    this.doc.addEventListener('fullscreenchange', () => this.#fullscreenChanged());
    this.doc.addEventListener('webkitfullscreenchange', () => this.#fullscreenChanged());
    this.doc.addEventListener('keydown', (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey || event.target.closest?.('input, textarea')) return;
      if (event.key === 's') this.toggleStats();
      else if (event.key === 'f') this.#toggleFullscreen(fullscreenFallback);
      else if (event.key === 'p') this.#snapshot(snapshot);
    });
    if (!this.#canFullscreen() && !fullscreenFallback) this.fullscreenButton.hidden = true;
  }

  /** Shows `state` (a key of STATUS_TEXT) with an optional detail line. */
  setState(state, detail = '') {
    clearInterval(this.countdown);
    this.countdown = null;
    this.stage.dataset.state = state;
    this.statusText.textContent = STATUS_TEXT[state] || state;
    this.statusCountdown.textContent = '';
    this.statusDetail.textContent = detail || '';
    this.statusDetail.hidden = !detail;
  }

  /**
   * Shows "reconnecting in N s", counting down to `at` (ms, Date.now clock). Screen
   * readers hear "Reconnecting" once, not every second of the countdown.
   */
  setReconnecting(at, detail = '') {
    this.setState('reconnecting', detail);
    this.statusText.textContent = 'Reconnecting';
    const tick = () => {
      const seconds = Math.max(0, Math.ceil((at - Date.now()) / 1000));
      this.statusCountdown.textContent = seconds > 0 ? ` in ${seconds} s…` : '…';
    };
    tick();
    this.countdown = setInterval(tick, 250);
  }

  /** Lists configuration errors in the banner; hides it for an empty list. */
  setConfigErrors(errors) {
    this.bannerList.replaceChildren(
      ...errors.map((error) => {
        const item = this.doc.createElement('li');
        item.textContent = error;
        return item;
      }),
    );
    this.banner.hidden = errors.length === 0;
  }

  /** Shows the "Log out" control (a form posting to `logout`) when a password is set. */
  showLogout(show) {
    if (this.logoutForm) this.logoutForm.hidden = !show;
  }

  /** Shows `element` (canvas or video) and hides the other one. */
  showElement(element) {
    for (const candidate of this.stage.querySelectorAll('canvas, video')) {
      candidate.hidden = candidate !== element;
    }
  }

  /** Opens or closes the stats overlay. */
  toggleStats(open = this.statsPanel.hidden) {
    this.statsPanel.hidden = !open;
    this.statsButton.setAttribute('aria-pressed', String(open));
  }

  /** Fills the stats overlay (when open). */
  renderStats(values, extra = {}) {
    if (this.statsPanel.hidden) return;
    const rows = [
      ['Resolution', values.width ? `${values.width}×${values.height}` : '–'],
      ['Frame rate', `${values.fps} fps`],
      ['Bit rate', formatBitrate(values.bitrateKbps)],
      ['Latency', values.latencyMs === null ? '–' : `${values.latencyMs} ms`],
      ['Viewers', values.viewers === null ? '–' : String(values.viewers)],
      ['Dropped', `${values.framesDropped} (server ${values.serverDropped})`],
      ['Resyncs', String(values.resyncs)],
      ['Reconnects', String(values.reconnects)],
      ['Decoder', DECODER_NAMES[values.path] || '–'],
    ];
    // Extra rows add to these, or replace the one of the same name.
    for (const [name, value] of Object.entries(extra)) {
      const row = rows.find(([existing]) => existing === name);
      if (row) row[1] = value;
      else rows.push([name, value]);
    }
    const list = this.doc.createDocumentFragment();
    for (const [name, value] of rows) {
      const term = this.doc.createElement('dt');
      term.textContent = name;
      const detail = this.doc.createElement('dd');
      detail.textContent = value;
      list.append(term, detail);
    }
    this.statsPanel.replaceChildren(list);
  }

  /**
   * Saves the current picture: the server's `snapshot.jpg` (the stream's newest frame at
   * its full size, whichever way this page plays it); when the server has none to give
   * (no video, an error, unreachable), the picture shown here, as PNG.
   */
  async #snapshot(snapshot) {
    if (this.snapshotButton.disabled) return;
    this.snapshotButton.disabled = true;
    try {
      const response = await fetch('snapshot.jpg', { cache: 'no-store' });
      if (response.ok && response.headers.get('content-type') === 'image/jpeg') {
        this.#save(await response.blob(), snapshotName(snapshotDate(response.headers), 'jpg'));
        return;
      }
    } catch {
      // The server is unreachable: the picture shown here will do.
    } finally {
      this.snapshotButton.disabled = false;
    }
    const canvas = snapshot();
    canvas?.toBlob((blob) => {
      if (blob) this.#save(blob, snapshotName(new Date(), 'png'));
    }, 'image/png');
  }

  /** Offers `blob` as a download named `name`. */
  #save(blob, name) {
    const link = this.doc.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = name;
    this.doc.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  }

  #canFullscreen() {
    return Boolean(this.stage.requestFullscreen || this.stage.webkitRequestFullscreen);
  }

  #toggleFullscreen(fallback) {
    const doc = this.doc;
    if (doc.fullscreenElement || doc.webkitFullscreenElement) {
      (doc.exitFullscreen || doc.webkitExitFullscreen).call(doc);
    } else if (this.stage.requestFullscreen) {
      this.stage.requestFullscreen({ navigationUI: 'hide' }).catch(() => fallback?.());
    } else if (this.stage.webkitRequestFullscreen) {
      this.stage.webkitRequestFullscreen();
    } else {
      fallback?.();
    }
  }

  #fullscreenChanged() {
    const on = Boolean(this.doc.fullscreenElement || this.doc.webkitFullscreenElement);
    this.fullscreenButton.setAttribute('aria-pressed', String(on));
  }
}

function formatBitrate(kbps) {
  return kbps >= 1000 ? `${(kbps / 1000).toFixed(1)} Mbit/s` : `${kbps} kbit/s`;
}
