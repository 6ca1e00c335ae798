// Peak resident memory of a step's process tree, sampled from /proc (Linux). The kernel keeps
// each process's own peak (VmHWM) but drops it when the process is reaped, and no cgroup
// memory controller may be at hand, so the tree is sampled while it runs: the leader and its
// descendants (through /proc/<pid>/task/<pid>/children). The peak is the larger of the biggest
// single process's VmHWM and the largest sum of VmRSS seen at once. A peak that lasts less
// than the sampling interval in a process that exits within it can be missed; where /proc
// has nothing to say the peak stays unknown (null).
import fs from 'node:fs';

function statusKb(pid: number): { hwm: number; rss: number } | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = /^VmHWM:\s+(\d+)/m.exec(text);
    const rss = /^VmRSS:\s+(\d+)/m.exec(text);
    return hwm && rss ? { hwm: Number(hwm[1]), rss: Number(rss[1]) } : undefined;
  } catch {
    return undefined;
  }
}

function children(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(' ')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

export class RssSampler {
  private peak: number | null = null;

  constructor(private readonly pid: number) {}

  /** Looks at the tree once (a bounded walk: at most 256 processes). */
  sample(): void {
    let sum = 0;
    let biggest = 0;
    let seen = 0;
    const queue = [this.pid];
    while (queue.length > 0 && seen < 256) {
      const pid = queue.shift()!;
      const kb = statusKb(pid);
      if (!kb) continue;
      seen++;
      sum += kb.rss;
      biggest = Math.max(biggest, kb.hwm);
      queue.push(...children(pid));
    }
    if (seen > 0) this.peak = Math.max(this.peak ?? 0, sum, biggest);
  }

  /** The peak seen so far (KB), or null when nothing could be read. */
  get peakKb(): number | null {
    return this.peak;
  }
}
