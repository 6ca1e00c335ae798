// Artifacts: a task's step outputs under artifacts/. A versioned artifact (validation.1.json,
// validation.2.json, ...) is written whole to a temp file first, then published under the next
// free number with link(), which fails if that name exists: two writers racing for the next
// version never overwrite each other (the loser moves on to the next number), and neither a
// reader nor a crash ever sees a version half written.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { AtlasError, errnoCode, storageError } from '../errors.js';
import { FILE_MODE, ensureDir, fsyncDir, tempPathFor, writeFileDurable } from './atomic.js';
import { assertName } from './names.js';
import type { ArtifactInfo, ArtifactStream, StoreArtifacts } from './store.js';

export type { ArtifactInfo };

export class ArtifactDir implements StoreArtifacts {
  constructor(readonly dir: string) {}

  /** Saves (or replaces) an artifact under a fixed name. */
  async save(name: string, data: string | Uint8Array): Promise<string> {
    assertName('artifact', name);
    await ensureDir(this.dir);
    await writeFileDurable(path.join(this.dir, name), data);
    return name;
  }

  /** Saves `<base>.<n><ext>` with the next free n (1, 2, ...). Returns the name used. */
  async saveVersioned(base: string, ext: string, data: string | Uint8Array): Promise<string> {
    assertName('artifact', `${base}${ext}`);
    assertName('artifact', `${base}.1${ext}`);
    await ensureDir(this.dir);
    const tmp = tempPathFor(path.join(this.dir, `${base}${ext}`));
    let fh: fsp.FileHandle | undefined;
    try {
      fh = await fsp.open(tmp, 'wx', FILE_MODE);
      await fh.writeFile(data);
      await fh.sync();
      await fh.close();
      fh = undefined;
    } catch (err) {
      await fh?.close().catch(() => undefined);
      await fsp.unlink(tmp).catch(() => undefined);
      throw storageError('write', tmp, err);
    }
    try {
      for (let n = (await this.highestVersion(base, ext)) + 1; ; n++) {
        // A name that would be too long to read back is refused rather than saved.
        const name = assertName('artifact', `${base}.${n}${ext}`);
        const file = path.join(this.dir, name);
        try {
          await fsp.link(tmp, file);
        } catch (err) {
          if (errnoCode(err) === 'EEXIST') continue;
          throw storageError('create', file, err);
        }
        await fsp.unlink(tmp).catch(() => undefined);
        await fsyncDir(this.dir);
        return name;
      }
    } catch (err) {
      await fsp.unlink(tmp).catch(() => undefined);
      throw err;
    }
  }

  openStream(base: string, ext: string, from: number, options: { append?: boolean } = {}): ArtifactStream {
    return new FileArtifactStream(this.dir, base, ext, from, options.append === true);
  }

  async highestVersion(base: string, ext: string): Promise<number> {
    let max = 0;
    for (const name of await this.names()) {
      if (!name.startsWith(`${base}.`) || !name.endsWith(ext)) continue;
      const middle = name.slice(base.length + 1, name.length - ext.length);
      if (/^\d+$/.test(middle)) max = Math.max(max, Number(middle));
    }
    return max;
  }

  async get(name: string): Promise<Buffer> {
    assertName('artifact', name);
    try {
      return await fsp.readFile(path.join(this.dir, name));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new AtlasError('not_found', `no artifact ${name}; 'atlas artifacts <task-id>' lists them`, { details: { name } });
      throw storageError('read', path.join(this.dir, name), err);
    }
  }

  async list(): Promise<ArtifactInfo[]> {
    const out: ArtifactInfo[] = [];
    for (const name of await this.names()) {
      try {
        const st = await fsp.stat(path.join(this.dir, name));
        if (st.isFile()) out.push({ name, size: st.size, modified_at: st.mtime.toISOString() });
      } catch {
        // vanished while listing
      }
    }
    return out.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  }

  private async names(): Promise<string[]> {
    try {
      return (await fsp.readdir(this.dir)).filter((n) => !n.includes('.tmp-'));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw storageError('list', this.dir, err);
    }
  }
}

/** A streamed artifact: created (never overwriting) on the first write, appended with
 *  synchronous writes, made durable (data and directory entry) once at the end; a failed
 *  sync is an error, never a name recorded for data that may not be there. */
class FileArtifactStream implements ArtifactStream {
  private fd: number | undefined;
  /** The topmost directory the first write created, if any: its parent's entry needs a sync too. */
  private newDir: string | undefined;
  name: string | undefined;

  constructor(
    private readonly dir: string,
    private readonly base: string,
    private readonly ext: string,
    private readonly from: number,
    private readonly append: boolean,
  ) {}

  write(text: string): void {
    try {
      if (this.fd === undefined && this.append) {
        const name = assertName('artifact', `${this.base}.${this.from}${this.ext}`);
        try {
          // Only an existing file: O_APPEND without O_CREAT.
          this.fd = fs.openSync(path.join(this.dir, name), fs.constants.O_WRONLY | fs.constants.O_APPEND);
          this.name = name;
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT') throw err;
        }
      }
      if (this.fd === undefined) {
        this.newDir ??= fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
        for (let n = this.from; ; n++) {
          const name = assertName('artifact', `${this.base}.${n}${this.ext}`);
          try {
            this.fd = fs.openSync(path.join(this.dir, name), 'wx', FILE_MODE);
            this.name = name;
            break;
          } catch (err) {
            if (errnoCode(err) !== 'EEXIST') throw err;
          }
        }
      }
      fs.writeSync(this.fd!, text);
    } catch (err) {
      this.close();
      throw err;
    }
  }

  async finish(): Promise<string | undefined> {
    const fd = this.fd;
    if (fd === undefined) return undefined;
    this.fd = undefined;
    // The name goes into step_results only once the data and the directory entry (and the
    // artifacts directory's own entry, when this stream made it) are on disk.
    const file = path.join(this.dir, this.name ?? '');
    try {
      await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
    } catch (err) {
      throw storageError('sync', file, err);
    } finally {
      try {
        fs.closeSync(fd);
      } catch {
        // already closed
      }
    }
    await fsyncDir(this.dir);
    if (this.newDir !== undefined) {
      await fsyncDir(path.dirname(this.newDir));
      this.newDir = undefined;
    }
    return this.name;
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
