// The server's clock, estimated from ping/pong round trips (NTP style).

/** The client's wall clock in milliseconds since the Unix epoch, sub-millisecond precise. */
export function nowMs() {
  return performance.timeOrigin + performance.now();
}

/**
 * Offset between the server's clock and ours, from ping/pong samples. Of the recent
 * samples the one with the smallest round trip wins: its midpoint assumption is the
 * least wrong.
 */
export class ServerClock {
  /**
   * @param {object} [options]
   * @param {number} [options.keep] how many recent samples to choose from
   * @param {() => number} [options.now] clock in ms (for tests)
   */
  constructor({ keep = 20, now = nowMs } = {}) {
    this.keep = keep;
    this.now = now;
    this.samples = [];
    this.nextId = 1;
    /** Offset in ms: server time = client time + offset; `null` until the first pong. */
    this.offsetMs = null;
    /** Round trip of the chosen sample, ms. */
    this.rttMs = null;
  }

  /** A `ping` message to send now. */
  ping() {
    return { type: 'ping', id: this.nextId++, client_time: this.now() };
  }

  /** Takes a `pong` message into account. */
  pong(message) {
    const sent = Number(message.client_time);
    const server = Number(message.server_time_us) / 1000;
    if (!Number.isFinite(sent) || !Number.isFinite(server)) return;
    const received = this.now();
    const rtt = received - sent;
    if (rtt < 0) return;
    this.samples.push({ rtt, offset: server - (sent + received) / 2 });
    if (this.samples.length > this.keep) this.samples.shift();
    let best = this.samples[0];
    for (const sample of this.samples) if (sample.rtt < best.rtt) best = sample;
    this.offsetMs = best.offset;
    this.rttMs = best.rtt;
  }

  /** A server time (µs since the epoch) on our clock (ms since the epoch), or null. */
  toClientMs(serverUs) {
    if (this.offsetMs === null || !Number.isFinite(serverUs)) return null;
    return serverUs / 1000 - this.offsetMs;
  }
}
