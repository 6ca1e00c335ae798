// One attempt's output, kept as its head and its tail: the first quarter of `output_cap`
// (256 KiB of the default 1 MiB) streams into task.log as `output` records and into the
// versioned artifact <step>.output.<n>.log as it arrives; past that, the last three quarters
// (768 KiB) are kept in memory, and when the attempt ends they follow a marker that says how
// many bytes were cut between the two, in the log and in the artifact. So a failure printed
// at the end of a long output is always kept.
//
// Every `output` record read from an output file carries `off`, where its text ends in the
// file: a daemon that re-attaches to the attempt after a restart continues from there.
import { storageError } from '../errors.js';
import type { StepState } from '../store/records.js';
import type { ArtifactStream, StoreArtifacts } from '../store/store.js';
import { readLogSync } from '../store/task-log.js';
import { Tail } from '../steps/capture.js';
import type { OutputSink, StreamName } from '../steps/process.js';

type Log = (record: Record<string, unknown> & { event: string }) => void;

/** Where an earlier daemon left an attempt's output (read back from task.log on re-attach). */
export interface OutputResume {
  logged: number;
  offsets: Record<StreamName, number>;
}

export function headBytes(cap: number): number {
  return Math.floor(cap / 4);
}

export class AttemptOutput implements OutputSink {
  bytes = 0;
  truncated = false;
  readonly tail = new Tail(4096);
  private logged = 0;
  private ring: Array<{ stream: StreamName; text: string; bytes: number }> = [];
  private ringBytes = 0;
  private cut = 0;
  private readonly stream: ArtifactStream;
  /** A log write that failed (a full disk): output arrives in callbacks, so the error is kept and thrown by finish(). */
  private failure: unknown;

  constructor(
    private readonly step: StepState,
    private readonly index: number,
    private readonly attempt: number,
    private readonly cap: number,
    artifacts: StoreArtifacts,
    private readonly log: Log,
    resume?: OutputResume,
  ) {
    // Re-attached: the artifact of this attempt already holds the head; it goes on from there.
    this.stream = artifacts.openStream(`${step.name}.output`, '.log', attempt, { append: resume !== undefined });
    if (resume) {
      this.logged = resume.logged;
      this.bytes = resume.logged;
    }
  }

  private get headCap(): number {
    return headBytes(this.cap);
  }

  private get tailCap(): number {
    return this.cap - this.headCap;
  }

  write(stream: StreamName, text: string, end?: number): void {
    this.tail.write(stream, text);
    const len = Buffer.byteLength(text);
    this.bytes += len;
    if (this.logged >= this.headCap) return this.keep(stream, text, len);
    let head = text;
    let rest = '';
    if (this.logged + len > this.headCap) {
      const buf = Buffer.from(text);
      head = buf.subarray(0, this.headCap - this.logged).toString('utf8');
      rest = buf.subarray(this.headCap - this.logged).toString('utf8');
    }
    const headLen = len - Buffer.byteLength(rest);
    this.logged += headLen;
    this.emit(stream, head, end === undefined ? undefined : end - (len - headLen));
    if (rest) this.keep(stream, rest, Buffer.byteLength(rest));
  }

  /** Past the head: kept in the tail ring, the oldest bytes cut once it holds more than its share. */
  private keep(stream: StreamName, text: string, len: number): void {
    this.ring.push({ stream, text, bytes: len });
    this.ringBytes += len;
    while (this.ringBytes > this.tailCap && this.ring.length > 0) {
      const first = this.ring[0]!;
      const over = this.ringBytes - this.tailCap;
      if (first.bytes <= over) {
        this.ring.shift();
        this.ringBytes -= first.bytes;
        this.cut += first.bytes;
      } else {
        const kept = Buffer.from(first.text).subarray(over).toString('utf8');
        first.text = kept;
        first.bytes -= over;
        this.ringBytes -= over;
        this.cut += over;
      }
    }
  }

  private emit(stream: StreamName, text: string, off: number | undefined): void {
    if (!text) return;
    try {
      const rec: Record<string, unknown> & { event: string } = { event: 'output', step: this.step.name, step_index: this.index, attempt: this.attempt, stream, text };
      if (off !== undefined) rec['off'] = off;
      this.log(rec);
    } catch (err) {
      this.failure ??= err;
    }
    this.toArtifact(text);
  }

  private toArtifact(text: string): void {
    if (this.failure !== undefined) return;
    try {
      this.stream.write(text);
    } catch (err) {
      // The log still has the output; a failing artifact must not fail the step.
      this.failure ??= err;
    }
  }

  /** Writes the kept tail (after the marker of what was cut), makes the artifact durable and closes it; returns its name, if any. */
  async finish(): Promise<string | undefined> {
    if (this.cut > 0) {
      this.truncated = true;
      const message = `${this.cut} bytes of output were cut here; the first ${this.headCap} and the last ${this.tailCap} bytes are kept`;
      try {
        this.log({ event: 'output_truncated', step: this.step.name, attempt: this.attempt, cap_bytes: this.cap, head_bytes: this.headCap, tail_bytes: this.tailCap, cut_bytes: this.cut, message });
      } catch (err) {
        this.failure ??= err;
      }
      this.toArtifact(`\n[atlas: ${message}]\n`);
    }
    const ring = this.ring;
    this.ring = [];
    this.ringBytes = 0;
    for (const c of ring) this.emit(c.stream, c.text, undefined);
    if (this.failure !== undefined) {
      this.close();
      throw storageError('record the output of step', this.step.name, this.failure);
    }
    return this.stream.finish();
  }

  close(): void {
    this.stream.close();
  }
}

/** What an earlier daemon logged of an attempt's output: bytes in the head, and file offsets. */
export function resumePoint(logFile: string, index: number, attempt: number): OutputResume {
  const offsets: Record<StreamName, number> = { stdout: 0, stderr: 0 };
  let logged = 0;
  const { records } = readLogSync(logFile, (r) => r.event === 'output' && r['step_index'] === index && r['attempt'] === attempt);
  for (const r of records) {
    logged += Buffer.byteLength(String(r['text'] ?? ''));
    const off = r['off'];
    const stream = r['stream'] === 'stderr' ? 'stderr' : 'stdout';
    if (typeof off === 'number' && off > offsets[stream]) offsets[stream] = off;
  }
  return { logged, offsets };
}
