// One playground websocket (one stream on the server) that reconnects.
//
// The server paces and generates; this only sends commands and hands every
// message to `onMessage`. A dropped connection is reported through
// `onStatus("closed")` so the drawer can pause and say so; it reconnects by
// itself with a growing delay while `wanted` is true.

export class PlaygroundSocket {
  constructor(path, { onMessage, onStatus }) {
    this.path = path;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.ws = null;
    this.wanted = false;
    this.retry = 0;
    this.timer = null;
    this.queue = [];
  }

  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  connect() {
    this.wanted = true;
    if (this.ws && (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}${this.path}`);
    this.ws = ws;
    this.onStatus("connecting");
    ws.addEventListener("open", () => {
      this.retry = 0;
      this.onStatus("open");
      const queued = this.queue.splice(0);
      for (const msg of queued) ws.send(JSON.stringify(msg));
    });
    ws.addEventListener("message", (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch (err) {
        console.error("playground: a message that is not JSON", event.data);
        return;
      }
      this.onMessage(msg);
    });
    ws.addEventListener("close", () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.onStatus("closed");
      if (this.wanted) {
        const delay = Math.min(10000, 500 * 2 ** this.retry++);
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.connect(), delay);
      }
    });
    ws.addEventListener("error", () => console.warn("playground: websocket error"));
  }

  // Send now, or as soon as the connection is open.
  send(msg) {
    if (this.open) this.ws.send(JSON.stringify(msg));
    else {
      this.queue.push(msg);
      this.connect();
    }
  }

  close() {
    this.wanted = false;
    clearTimeout(this.timer);
    this.queue = [];
    if (this.ws) this.ws.close();
    this.ws = null;
  }
}
