// Events per second over the last SECONDS seconds: a ring of per-second counts and a bar chart on a canvas.

export const SECONDS = 60;

export class RateChart {
  /** counts[i] = events of second `first + i` (whole seconds since the epoch). */
  #counts = [];
  #first = 0;

  /** Counts `n` events at time `ms`. */
  add(n, ms = Date.now()) {
    const s = Math.floor(ms / 1000);
    this.#advance(s);
    const i = s - this.#first;
    if (i >= 0) this.#counts[i] += n;
  }

  /** The per-second counts of the last SECONDS seconds up to `ms`, oldest first (the current second last). */
  series(ms = Date.now()) {
    this.#advance(Math.floor(ms / 1000));
    return [...this.#counts];
  }

  /** Events in the last complete second. */
  lastSecond(ms = Date.now()) {
    const s = this.series(ms);
    return s[s.length - 2] ?? 0;
  }

  clear() {
    this.#counts = [];
    this.#first = 0;
  }

  #advance(s) {
    if (this.#counts.length === 0 || s - this.#first >= SECONDS * 2) {
      this.#first = s - SECONDS + 1;
      this.#counts = new Array(SECONDS).fill(0);
      return;
    }
    while (this.#first + this.#counts.length <= s) this.#counts.push(0);
    const extra = this.#counts.length - SECONDS;
    if (extra > 0) {
      this.#counts.splice(0, extra);
      this.#first += extra;
    }
  }

  /** Draws the bars on `canvas` (CSS size, scaled for the device pixel ratio). */
  draw(canvas, ms = Date.now()) {
    const data = this.series(ms);
    const dpr = globalThis.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
    if (canvas.height !== Math.round(h * dpr)) canvas.height = Math.round(h * dpr);
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const max = Math.max(10, ...data);
    const top = 16;
    const bottom = h - 14;
    const bw = w / SECONDS;
    g.fillStyle = '#2f5bd3';
    data.forEach((v, i) => {
      const bh = ((bottom - top) * v) / max;
      g.fillRect(i * bw + 1, bottom - bh, Math.max(1, bw - 2), bh);
    });
    g.fillStyle = '#5b6472';
    g.font = '11px system-ui, sans-serif';
    g.textBaseline = 'top';
    g.fillText(`max ${max.toLocaleString('en')}/s`, 4, 2);
    g.textBaseline = 'bottom';
    g.fillText(`-${SECONDS} s`, 4, h);
    g.textAlign = 'right';
    g.fillText('now', w - 4, h);
    g.textAlign = 'left';
    g.strokeStyle = '#c4cad3';
    g.beginPath();
    g.moveTo(0, bottom + 0.5);
    g.lineTo(w, bottom + 0.5);
    g.stroke();
  }
}
