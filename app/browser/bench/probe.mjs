// The in-page half of the display-delay bench: on every picture a page shows, read
// the test pattern's clock and frame counter back from the pixels and note when the
// picture reached the screen. Installed with `page.addInitScript(installProbe, cfg)`
// before the page's own scripts run; the runner drains `window.__delayProbe`.

/**
 * Runs in the page (serialised: uses nothing from this module's scope).
 *
 * - `<video>` (`cfg.video`, a selector): `requestVideoFrameCallback` on each new
 *   frame; the frame is copied with `drawImage` and read.
 * - `<canvas>` (`cfg.canvas`, a selector; the WebCodecs path): every `drawImage` onto
 *   that canvas is read at once, from the canvas itself.
 *
 * Times, in ms since the Unix epoch, read from the wall clock (`Date.now()`) when
 * the event is seen and corrected by the monotonic clock's age of the event, so that
 * no drift between the two builds up over a long run. `shownAt`, what the bench
 * reports, is when the picture was handed to the compositor: for video the frame's
 * `metadata.presentationTime`, for the canvas the moment the rendering step after
 * the draw runs (the `requestAnimationFrame` callback, which precedes the commit of
 * the canvas to the compositor). Either reaches a screen at the following vsync; a
 * headless browser has none. `otherAt`: for video the callback's `now` (the start of
 * the rendering frame that ran it), for the canvas the moment of the draw.
 * For MSE, `ahead` is how much video the element held beyond the picture (ms).
 *
 * @param {{video?: string, canvas?: string, digits: number[][], readPicture: string, layout: string}} cfg
 */
export function installProbe(cfg) {
  // eslint-disable-next-line no-new-func
  const readPicture = new Function(`return (${cfg.readPicture})`)();
  // eslint-disable-next-line no-new-func
  const pictureLayout = new Function(`return (${cfg.layout})`)();
  const probe = {
    frames: [],
    unreadable: 0,
    callbacks: 0,
    last: null,
    lastSize: null,
  };
  window.__delayProbe = probe;
  const wall = (t) => Date.now() - (performance.now() - t);
  let layout = null;
  const layoutFor = (width, height) => {
    if (!layout || layout.width !== width || layout.height !== height) {
      layout = { width, height, ...pictureLayout(width, height) };
    }
    return layout;
  };
  const note = (rgba, width, l, shownAt, otherAt, ahead) => {
    const read = readPicture(rgba, width, l, cfg.digits);
    if (!read) {
      probe.unreadable += 1;
      return;
    }
    if (probe.last === read.counter) return; // the same picture again
    probe.last = read.counter;
    probe.frames.push({ counter: read.counter, clockMs: read.clockMs, shownAt, otherAt, ahead });
  };

  if (cfg.video) {
    const scratch = document.createElement('canvas');
    const context = scratch.getContext('2d', { willReadFrequently: true });
    let watched = null;
    const onFrame = (now, metadata) => {
      const video = watched;
      video.requestVideoFrameCallback(onFrame);
      probe.callbacks += 1;
      const width = video.videoWidth;
      const height = video.videoHeight;
      if (!width || !height) return;
      probe.lastSize = `${width}x${height}`;
      const l = layoutFor(width, height);
      if (scratch.width !== width || scratch.height !== l.rows) {
        scratch.width = width;
        scratch.height = l.rows;
      }
      context.drawImage(video, 0, l.top, width, l.rows, 0, 0, width, l.rows);
      const rgba = context.getImageData(0, 0, width, l.rows).data;
      // MSE: how much video the <video> holds beyond this picture (ms).
      const ranges = video.buffered;
      const ahead = ranges.length ? (ranges.end(ranges.length - 1) - metadata.mediaTime) * 1000 : undefined;
      note(rgba, width, l, wall(metadata.presentationTime ?? now), wall(now), ahead);
    };
    // The page makes or replaces its <video> whenever it likes: watch for it.
    setInterval(() => {
      const video = document.querySelector(cfg.video);
      if (video && video !== watched && typeof video.requestVideoFrameCallback === 'function') {
        watched = video;
        video.requestVideoFrameCallback(onFrame);
      }
    }, 50);
  }

  if (cfg.canvas) {
    const draw = CanvasRenderingContext2D.prototype.drawImage;
    CanvasRenderingContext2D.prototype.drawImage = function (...args) {
      const result = draw.apply(this, args);
      const canvas = this.canvas;
      if (canvas.matches?.(cfg.canvas)) {
        probe.callbacks += 1;
        const drawnAt = Date.now();
        const { width, height } = canvas;
        probe.lastSize = `${width}x${height}`;
        const l = layoutFor(width, height);
        const rgba = this.getImageData(0, l.top, width, l.rows).data;
        requestAnimationFrame(() => note(rgba, width, l, Date.now(), drawnAt));
      }
      return result;
    };
  }
}
