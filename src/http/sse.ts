// One Server-Sent Events response. It can stand in for a socket connection (`connection()`),
// so the daemon's streaming handlers (task.logs with follow, events.subscribe) serve a
// browser exactly as they serve the CLI. A reader that stops reading is cut off once a few
// MiB are queued for it (it reconnects and resumes), never allowed to grow our memory.
import type http from 'node:http';
import type { Connection } from '../daemon/rpc-server.js';

const MAX_QUEUED_BYTES = 4 * 1024 * 1024;
const HEARTBEAT_MS = 15_000;

export class SseStream {
  private closed = false;
  private readonly cleanups: Array<() => void> = [];
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
  ) {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();
    // A comment line every few seconds keeps proxies and idle timers from closing the stream.
    this.heartbeat = setInterval(() => this.write(': keep-alive\n\n'), HEARTBEAT_MS);
    this.heartbeat.unref();
    req.on('close', () => this.close());
    res.on('close', () => this.close());
    res.on('error', () => this.close());
  }

  get isClosed(): boolean {
    return this.closed;
  }

  send(event: string, data: unknown, id?: string): void {
    const json = JSON.stringify(data ?? null);
    this.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${json}\n\n`);
  }

  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.cleanups.push(fn);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    if (!this.res.writableEnded) this.res.end();
    for (const fn of this.cleanups.splice(0)) {
      try {
        fn();
      } catch {
        // cleanup must never throw into the server
      }
    }
  }

  /** This stream as a handler's connection: notifications become events named after their method. */
  connection(): Connection {
    const self = this;
    return {
      get closed() {
        return self.closed;
      },
      notify: (method, params) => this.send(method, params),
      onClose: (fn) => this.onClose(fn),
      bufferedBytes: () => this.bufferedBytes(),
      drained: () => this.drained(),
      end: () => this.close(),
    };
  }

  /** Bytes written but not yet taken by the reader. */
  bufferedBytes(): number {
    return this.res.writableLength;
  }

  /** Resolves once the reader has taken what was written (or the stream closed). */
  drained(): Promise<void> {
    if (this.closed || !this.res.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.res.off('drain', done);
        resolve();
      };
      this.res.once('drain', done);
      this.onClose(done);
    });
  }

  private write(text: string): void {
    if (this.closed) return;
    if (this.res.writableLength > MAX_QUEUED_BYTES) {
      this.send('overflow', { message: 'the reader fell behind; reconnect to resume' });
      this.close();
      return;
    }
    this.res.write(text);
  }
}
