// One log record of `atlas logs` as a line of text (time, mark, what happened).
import type { LogRecord } from '../store/task-log.js';
import { c, duration, statusColor } from './output.js';

export function formatRecord(r: LogRecord): string {
  const time = typeof r.time === 'string' ? c.dim(r.time.slice(11, 23)) : '';
  switch (r.event) {
    case 'output':
      return String(r['text'] ?? '');
    case 'step_started':
      return `${time} ${c.cyan('▶')} ${String(r['step'])} attempt ${String(r['attempt'])}\n`;
    case 'step_finished':
      if (r['awaiting_approval'] === true) return `${time} ${c.yellow('⏸')} ${String(r['step_name'])} ${c.yellow('waiting for approval')}\n`;
      return `${time} ${r['status'] === 'completed' ? c.green('✓') : c.red('✗')} ${String(r['step_name'])} ${String(r['status'])} in ${duration(Number(r['duration_ms']))}${r['error'] ? ` ${c.red(String(r['error']))}` : ''}\n`;
    case 'transition':
      return `${time} ● ${statusColor(String(r['to_status']))} ${c.dim(String(r['reason'] ?? ''))}\n`;
    case 'task_created':
      return `${time} ● created\n`;
    default: {
      const { event, time: _t, level: _l, ...rest } = r;
      return `${time} ${event} ${c.dim(JSON.stringify(rest))}\n`;
    }
  }
}
