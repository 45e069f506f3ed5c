// Glass-to-glass latency: every video frame carries a binary barcode stamped by the server
// (streaming/video_track.py); the page reads it back from the displayed frame and compares the
// time the frame was shown with the time the server stamped it.
//
// The layout is streaming/video_track.py's `stamp_counter` (STAMP_CELL, COUNTER_BITS): COUNTER_BITS
// square cells of STAMP_CELL pixels in the top row from the top-left corner, most significant bit
// first, white = 1, black = 0. tests/web_client/test_page.py checks that the two agree.

export const COUNTER_BITS = 32;
export const STAMP_CELL = 8;

/** Reads the counter from RGBA `image` (ImageData) holding at least the frame's top-left
 * STAMP_CELL x (COUNTER_BITS * STAMP_CELL) pixels at the frame's own scale. */
export function decodeStamp(image) {
  const c = STAMP_CELL;
  const cy = Math.floor(c / 2);
  let value = 0;
  for (let i = 0; i < COUNTER_BITS; i++) {
    const o = (cy * image.width + i * c + Math.floor(c / 2)) * 4;
    const luma = (image.data[o] + image.data[o + 1] + image.data[o + 2]) / 3;
    value = value * 2 + (luma > 127 ? 1 : 0);
  }
  return value;
}

function percentile(sorted, q) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))));
  return sorted[i];
}

/**
 * Watches a <video>: on every shown frame (requestVideoFrameCallback) reads its counter and keeps
 * when it was shown; the server's stats message on the control channel brings `stamps`, pairs of
 * [counter, server epoch ms] (when it stamped the frame, before encoding). shown - stamped is one
 * latency sample. The clocks agree on loopback (one machine); across machines they must be synced
 * (NTP) for the figure to mean anything.
 */
export class FrameClock {
  constructor(video, { keep = 600 } = {}) {
    this.video = video;
    this.keep = keep;
    this.samples = [];
    this.shown = new Map(); // counter -> epoch ms shown, not yet matched
    this.stamped = new Map(); // counter -> server epoch ms, not yet shown
    this.frames = 0;
    this.running = false;
    this.canvas = document.createElement('canvas');
    this.ctx = null;
  }

  /** The counter of the frame now in the video element (null before the first frame). */
  read() {
    const v = this.video;
    if (!v.videoWidth) return null;
    const w = Math.min(v.videoWidth, COUNTER_BITS * STAMP_CELL), h = Math.min(v.videoHeight, STAMP_CELL);
    if (this.canvas.width !== w || this.canvas.height !== h || !this.ctx) {
      this.canvas.width = w; this.canvas.height = h;
      this.ctx = this.canvas.getContext('2d', { willReadFrequently: true });
    }
    this.ctx.drawImage(v, 0, 0, w, h, 0, 0, w, h);
    return decodeStamp(this.ctx.getImageData(0, 0, w, h));
  }

  _sample(ms) {
    this.samples.push(ms);
    if (this.samples.length > this.keep) this.samples.shift();
  }

  static _trim(map, keep) {
    while (map.size > keep) map.delete(map.keys().next().value);
  }

  /** The server's [[counter, epoch ms], ...] (from a stats message). */
  addStamps(stamps) {
    for (const [counter, at] of stamps || []) {
      if (this.shown.has(counter)) {
        this._sample(this.shown.get(counter) - at);
        this.shown.delete(counter);
      } else {
        this.stamped.set(counter, at);
      }
    }
    FrameClock._trim(this.stamped, this.keep);
  }

  start() {
    if (this.running || !this.video.requestVideoFrameCallback) return;
    this.running = true;
    const onFrame = (now, meta) => {
      if (!this.running) return;
      // expectedDisplayTime: when the compositor puts this frame on the screen (the "glass").
      const shownAt = performance.timeOrigin + (meta.expectedDisplayTime || now);
      const value = this.read();
      if (value !== null && !this.shown.has(value)) {
        this.frames += 1;
        if (this.stamped.has(value)) {
          this._sample(shownAt - this.stamped.get(value));
          this.stamped.delete(value);
        } else {
          this.shown.set(value, shownAt);
          FrameClock._trim(this.shown, this.keep);
        }
      }
      this.video.requestVideoFrameCallback(onFrame);
    };
    this.video.requestVideoFrameCallback(onFrame);
  }

  stop() { this.running = false; }

  reset() { this.samples = []; this.shown.clear(); this.stamped.clear(); this.frames = 0; }

  /** p50 / p95 / count of the latency samples, milliseconds. */
  summary() {
    const s = [...this.samples].sort((a, b) => a - b);
    return { p50: percentile(s, 0.5), p95: percentile(s, 0.95), n: s.length };
  }
}
