// logs/daemon.log rotates by size (DESIGN §14): once it passes `max_bytes`, the compressed
// generations shift (daemon.log.1.gz -> daemon.log.2.gz ..., the oldest beyond `keep` goes),
// the file is renamed daemon.log.1 and a new daemon.log opened at once, so no line waits; then
// daemon.log.1 is gzipped in the background (Node's zlib) to daemon.log.1.gz through a temp
// file and removed. A crash between leaves daemon.log.1, compressed at the next start. Like
// the destination it extends, nothing here ever throws into a log call.
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { SafeLogDestination } from './log-destination.js';

export interface RotationSettings {
  max_bytes: number;
  keep: number;
}

export const DEFAULT_ROTATION: RotationSettings = { max_bytes: 10 * 1024 * 1024, keep: 5 };

export class RotatingLogDestination extends SafeLogDestination {
  private size = 0;
  private compressing: Promise<void> | undefined;
  private settings: RotationSettings = DEFAULT_ROTATION;

  constructor(file: string, settings: RotationSettings = DEFAULT_ROTATION) {
    super(file);
    this.settings = settings;
    try {
      this.size = this.fd !== undefined ? fs.fstatSync(this.fd).size : 0;
    } catch {
      this.size = 0;
    }
    if (fs.existsSync(`${file}.1`)) this.compress();
  }

  configure(settings: RotationSettings): void {
    this.settings = settings;
  }

  /** Resolves once a background compression (if any) is done; for tests and shutdown. */
  idle(): Promise<void> {
    return this.compressing ?? Promise.resolve();
  }

  protected override written(bytes: number): void {
    this.size += bytes;
    if (this.size >= this.settings.max_bytes && !this.compressing) this.rotate();
  }

  private rotate(): void {
    const f = this.file;
    try {
      const { keep } = this.settings;
      fs.rmSync(`${f}.${keep}.gz`, { force: true });
      for (let i = keep - 1; i >= 1; i--) if (fs.existsSync(`${f}.${i}.gz`)) fs.renameSync(`${f}.${i}.gz`, `${f}.${i + 1}.gz`);
      fs.renameSync(f, `${f}.1`);
    } catch {
      return; // try again at the next line
    }
    if (this.fd !== undefined) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // already closed
      }
      this.fd = undefined;
    }
    this.open();
    this.size = 0;
    this.compress();
  }

  private compress(): void {
    const src = `${this.file}.1`;
    const tmp = `${this.file}.1.gz.tmp-${process.pid}`;
    this.compressing = pipeline(fs.createReadStream(src), zlib.createGzip(), fs.createWriteStream(tmp, { mode: 0o600 }))
      .then(() => {
        fs.renameSync(tmp, `${src}.gz`);
        fs.rmSync(src, { force: true });
      })
      .catch(() => {
        fs.rmSync(tmp, { force: true });
      })
      .finally(() => {
        this.compressing = undefined;
      });
  }
}
