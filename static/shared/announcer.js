// Polite announcements for screen readers through an aria-live region, at most
// one every `everyMs`: text that arrives faster (a stream of tokens) is
// gathered and read as one phrase instead of cutting itself off token by token.
export class ThrottledAnnouncer {
  constructor(region, { everyMs = 2000 } = {}) {
    this.region = region;
    this.everyMs = everyMs;
    this.pending = "";
    this.last = -Infinity;
    this.timer = null;
  }

  add(text) {
    this.pending += text;
    if (this.timer) return;
    const wait = Math.max(0, this.last + this.everyMs - performance.now());
    this.timer = setTimeout(() => this.flush(), wait);
  }

  // Say what is gathered now (the stream paused or ended).
  flush() {
    clearTimeout(this.timer);
    this.timer = null;
    if (!this.pending) return;
    this.region.textContent = this.pending;
    this.pending = "";
    this.last = performance.now();
  }

  // A new run: what was gathered for the old one is not worth saying.
  clear() {
    clearTimeout(this.timer);
    this.timer = null;
    this.pending = "";
  }
}
