// Checksummed tar.gz files: the format of both backups (backup.ts) and per-task archives
// (archive.ts). A plain ustar stream (tar-stream), gzip-compressed with Node's own zlib, so
// `tar tzf` opens either. The last entry is always `manifest.json`: every other entry's path,
// size and SHA-256. A reader checks all three layers and names what is wrong:
//   - gzip's CRC32 and length trailer catch a flipped byte or a truncated file anywhere;
//   - the tar headers carry their own checksum;
//   - every entry's SHA-256 must match the manifest, and the manifest must list exactly the
//     entries present (a file cut short before its manifest has none: "truncated").
// gzip rather than zstd: Node 20's zlib has no zstd (it arrived in Node 22.15/23.8), and gzip
// is what every tar and every machine reads.
import crypto from 'node:crypto';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import type tar from 'tar-stream';
import { AtlasError } from '../errors.js';
import { lazyPackage } from '../util/lazy-package.js';

const tarLib = lazyPackage<typeof tar>('tar-stream');

export const MANIFEST = 'manifest.json';

export interface ManifestEntry {
  path: string;
  size: number;
  sha256: string;
}

export interface Manifest {
  format: string;
  version: number;
  created_at: string;
  entries: ManifestEntry[];
  /** Anything the writer wants to say about the contents (counts, the home, the store). */
  about: Record<string, unknown>;
}

const sha256 = (data: Buffer) => crypto.createHash('sha256').update(data).digest('hex');

/** Writes entries into a gzip stream (`output`), then the manifest. Entries are awaited one by
 *  one, so a slow reader of `output` holds the writer back instead of filling memory. */
export class TgzWriter {
  private readonly pack = tarLib().pack();
  readonly output: zlib.Gzip;
  private readonly entries: ManifestEntry[] = [];
  private readonly names = new Set<string>();

  constructor(private readonly format: string, level = 6) {
    this.output = zlib.createGzip({ level });
    this.pack.pipe(this.output);
  }

  get count(): number {
    return this.entries.length;
  }

  async add(name: string, data: Buffer, options: { mode?: number; mtime?: Date } = {}): Promise<void> {
    if (name === MANIFEST || this.names.has(name)) throw new AtlasError('internal', `duplicate entry ${name} in a ${this.format} file`);
    this.names.add(name);
    this.entries.push({ path: name, size: data.length, sha256: sha256(data) });
    await new Promise<void>((resolve, reject) =>
      this.pack.entry({ name, size: data.length, mode: options.mode ?? 0o600, mtime: options.mtime ?? new Date() }, data, (err) => (err ? reject(err) : resolve())),
    );
  }

  /** Writes the manifest and ends the stream; resolves once everything is compressed. */
  async finish(about: Record<string, unknown> = {}): Promise<Manifest> {
    const manifest: Manifest = { format: this.format, version: 1, created_at: new Date().toISOString(), entries: this.entries, about };
    const body = Buffer.from(JSON.stringify(manifest, null, 1));
    await new Promise<void>((resolve, reject) => this.pack.entry({ name: MANIFEST, size: body.length, mode: 0o600 }, body, (err) => (err ? reject(err) : resolve())));
    this.pack.finalize();
    if (!this.output.writableFinished) await once(this.output, 'finish');
    return manifest;
  }

  destroy(err?: Error): void {
    this.pack.destroy(err);
    this.output.destroy(err);
  }
}

/** Why a tar.gz file cannot be trusted: `corrupt` with a reason a person can act on. */
export function damaged(what: string, reason: string): AtlasError {
  return new AtlasError('corrupt', `${what} is damaged: ${reason}; nothing was changed`, { details: { file: what, reason } });
}

function explain(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const msg = e?.message ?? String(err);
  if (e?.code === 'Z_BUF_ERROR' || /unexpected end/i.test(msg)) return 'it is truncated (the data ends before the end of the file)';
  if (e?.code === 'Z_DATA_ERROR' && /header/i.test(msg)) return `it is not a gzip file (${msg})`;
  if (e?.code === 'Z_DATA_ERROR') return `its compressed data is corrupted (${msg})`;
  if (/invalid tar header/i.test(msg)) return `its tar data is corrupted (${msg})`;
  return msg;
}

export interface TgzEntry {
  name: string;
  mode: number;
  mtime: Date | undefined;
  data: Buffer;
}

/**
 * Reads a tar.gz stream, checking every layer; calls `onEntry` for each entry (not the
 * manifest) in order, then returns the manifest. Throws `corrupt` naming the problem. Entries
 * reach `onEntry` before the file has been checked to its end: a caller that must not act on
 * a damaged file reads it once to verify, then again to act.
 */
export async function readTgz(source: Readable, what: string, format: string, onEntry: (e: TgzEntry) => void | Promise<void> = () => undefined): Promise<Manifest> {
  const gunzip = zlib.createGunzip();
  const extract = tarLib().extract();
  const seen = new Map<string, { size: number; sha256: string }>();
  let manifest: Manifest | undefined;
  let failure: unknown;
  const fail = (err: unknown) => {
    failure ??= err;
    extract.destroy();
  };
  let sourceBytes = 0;
  source.on('data', (d: Buffer) => (sourceBytes += d.length));
  source.on('error', fail);
  gunzip.on('error', fail);
  source.pipe(gunzip).pipe(extract);
  try {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      const data = Buffer.concat(chunks);
      const name = entry.header.name;
      if (manifest) throw damaged(what, `an entry (${name}) follows the manifest`);
      if (name === MANIFEST) {
        try {
          manifest = JSON.parse(data.toString('utf8')) as Manifest;
        } catch {
          throw damaged(what, 'its manifest is not valid JSON');
        }
        continue;
      }
      if (seen.has(name)) throw damaged(what, `${name} appears twice`);
      seen.set(name, { size: data.length, sha256: sha256(data) });
      await onEntry({ name, mode: entry.header.mode ?? 0o600, mtime: entry.header.mtime, data });
    }
  } catch (err) {
    if (err instanceof AtlasError) throw err;
    failure ??= err;
  } finally {
    source.unpipe(gunzip);
    source.destroy();
  }
  if (sourceBytes === 0 && !(failure instanceof AtlasError)) throw damaged(what, 'it is empty');
  if (failure !== undefined) throw failure instanceof AtlasError ? failure : damaged(what, explain(failure));
  if (!manifest) throw damaged(what, seen.size ? 'it has no manifest (it is truncated, or was not made by atlas)' : 'it holds nothing (it is empty or truncated)');
  if (manifest.format !== format) throw damaged(what, `it is a ${String(manifest.format)} file, not a ${format} file`);
  if (!Array.isArray(manifest.entries)) throw damaged(what, 'its manifest lists no entries');
  const listed = new Set<string>();
  for (const m of manifest.entries) {
    listed.add(m.path);
    const got = seen.get(m.path);
    if (!got) throw damaged(what, `${m.path} is listed in the manifest but missing`);
    if (got.size !== m.size) throw damaged(what, `${m.path} has ${got.size} bytes, the manifest says ${m.size}`);
    if (got.sha256 !== m.sha256) throw damaged(what, `${m.path} does not match its checksum`);
  }
  for (const name of seen.keys()) if (!listed.has(name)) throw damaged(what, `${name} is not in the manifest`);
  return manifest;
}
