// One task: its header and the actions its status allows, the steps as a timeline (every
// attempt with its status, duration, exit code, CPU and memory where recorded), the live log
// (the last records, then streamed; per-step filter; follow), and its artifacts.
import { ApiError, call, get, setLive, streamUrl, type LogRecord, type StepResult, type TaskRecord, type TaskSummary } from './api.js';
import { bytes, clear, duration, h, statusBadge, time } from './dom.js';

const RESUMABLE = new Set(['validation_failed', 'failed', 'gh_failed', 'ci_failed', 'ci_timeout', 'interrupted']);
const TERMINAL = new Set(['completed', 'rejected', 'abandoned']);
const MOVING = new Set(['pending', 'running']);
/** Log records kept on the page; older ones are dropped as new ones arrive. */
const MAX_LOG_NODES = 4000;
const LOG_TAIL = 2000;

/** Which actions a status allows (the engine's transition table decides; this only greys buttons out). */
export function allowed(status: string): { approve: boolean; reject: boolean; resume: boolean; cancel: boolean } {
  return { approve: status === 'awaiting_approval', reject: status === 'awaiting_approval', resume: RESUMABLE.has(status), cancel: !TERMINAL.has(status) };
}

/** CPU and memory of an attempt, in whatever fields the daemon recorded them. */
function usage(r: StepResult): string {
  const parts: string[] = [];
  const rec = r as unknown as Record<string, unknown>;
  const num = (k: string) => (typeof rec[k] === 'number' ? (rec[k] as number) : undefined);
  const cpu = num('cpu_ms') ?? (num('cpu_user_ms') !== undefined ? (num('cpu_user_ms') ?? 0) + (num('cpu_system_ms') ?? 0) : undefined);
  if (cpu !== undefined) parts.push(`CPU ${duration(cpu)}`);
  const kb = num('peak_rss_kb') ?? num('max_rss_kb') ?? num('memory_kb');
  if (kb !== undefined) parts.push(`peak ${bytes(kb * 1024)}`);
  return parts.join(', ');
}

export function taskView(root: HTMLElement, id: string): () => void {
  let task: TaskRecord | undefined;
  let stepFilter = '';
  let follow = true;
  let logSource: EventSource | undefined;
  let feed: EventSource | undefined;
  let refreshTimer: number | undefined;
  let logOpen = false;

  const head = h('section', { class: 'task-head' });
  const flash = h('div', { class: 'flash', role: 'status', 'aria-live': 'polite' });
  const actions = h('div', { class: 'actions' });
  const prompt = h('div', { class: 'prompt', hidden: true });
  const timeline = h('ol', { class: 'timeline' });
  const artifacts = h('ul', { class: 'artifacts' });
  const log = h('div', { class: 'log', role: 'log', 'aria-label': 'task log' });
  const logNote = h('span', { class: 'muted' });
  const stepSel = h('select', { 'aria-label': 'log step filter', name: 'log-step' }, h('option', { value: '' }, 'all steps'));
  const followBox = h('input', { type: 'checkbox', checked: true, name: 'follow' });

  const approveBtn = h('button', { type: 'button', class: 'primary', name: 'approve' }, 'Approve');
  const rejectBtn = h('button', { type: 'button', name: 'reject' }, 'Reject…');
  const resumeBtn = h('button', { type: 'button', name: 'resume' }, 'Resume');
  const cancelBtn = h('button', { type: 'button', class: 'danger', name: 'cancel' }, 'Cancel');
  const reason = h('textarea', { name: 'reason', rows: 2, placeholder: 'why (required)', required: true });
  const retryFrom = h('select', { name: 'retry_from', 'aria-label': 'retry from step' });
  const rejectForm = h(
    'form',
    { class: 'reject-form', hidden: true },
    h('label', {}, 'Reason', reason),
    h('label', {}, 'Then', retryFrom),
    h('div', { class: 'row' }, h('button', { type: 'submit', class: 'danger' }, 'Reject'), h('button', { type: 'button', onclick: () => (rejectForm.hidden = true) }, 'Keep waiting')),
  );

  const say = (text: string, kind: 'ok' | 'error') => clear(flash, h('p', { class: kind }, text));

  const act = async (what: string, method: string, params: Record<string, unknown>) => {
    for (const b of [approveBtn, rejectBtn, resumeBtn, cancelBtn]) b.disabled = true;
    try {
      const t = await call<TaskRecord>(method, params);
      say(`${what}: the task is ${t.status.replace(/_/g, ' ')}`, 'ok');
      show(t);
    } catch (err) {
      say(`${what} failed: ${(err as Error).message}`, 'error');
      await refresh();
    }
  };
  approveBtn.addEventListener('click', () => void act('Approved', 'task.approve', { id }));
  resumeBtn.addEventListener('click', () => void act('Resumed', 'task.resume', { id }));
  cancelBtn.addEventListener('click', () => {
    if (window.confirm(`Cancel ${id}? A running step's processes are killed.`)) void act('Canceled', 'task.cancel', { id });
  });
  rejectBtn.addEventListener('click', () => {
    rejectForm.hidden = !rejectForm.hidden;
    if (!rejectForm.hidden) reason.focus();
  });
  rejectForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!reason.value.trim()) return reason.focus();
    rejectForm.hidden = true;
    void act('Rejected', 'task.reject', { id, reason: reason.value.trim(), ...(retryFrom.value ? { retry_from: retryFrom.value } : {}) });
    reason.value = '';
  });
  stepSel.addEventListener('change', () => {
    stepFilter = stepSel.value;
    openLog();
  });
  followBox.addEventListener('change', () => {
    follow = followBox.checked;
    if (follow) log.scrollTop = log.scrollHeight;
  });

  const renderHead = (t: TaskRecord) => {
    clear(
      head,
      h('div', { class: 'title' }, h('h1', {}, t.id), statusBadge(t.status)),
      t.description ? h('p', { class: 'desc' }, t.description) : null,
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'template'),
        h('dd', {}, t.template),
        h('dt', {}, 'workspace'),
        h('dd', {}, t.workspace),
        h('dt', {}, 'created'),
        h('dd', { title: t.created_at }, time(t.created_at)),
        h('dt', {}, 'updated'),
        h('dd', { title: t.updated_at }, time(t.updated_at)),
        Object.keys(t.inputs).length ? [h('dt', {}, 'inputs'), h('dd', {}, Object.entries(t.inputs).map(([k, v]) => h('code', { class: 'input' }, `${k}=${v.length > 80 ? `${v.slice(0, 80)}…` : v}`)))] : null,
      ),
      t.error ? h('p', { class: 'error' }, t.error) : null,
    );
  };

  const renderActions = (t: TaskRecord) => {
    const a = allowed(t.status);
    approveBtn.disabled = !a.approve;
    rejectBtn.disabled = !a.reject;
    resumeBtn.disabled = !a.resume;
    cancelBtn.disabled = !a.cancel;
    if (!a.reject) rejectForm.hidden = true;
    const keep = retryFrom.value;
    clear(
      retryFrom,
      h('option', { value: '' }, 'end the task as rejected'),
      t.steps.slice(0, t.current_step + 1).map((s) => h('option', { value: s.name }, `run again from ${s.name}`)),
    );
    retryFrom.value = keep;
    const step = t.steps[t.current_step];
    prompt.hidden = t.status !== 'awaiting_approval';
    if (!prompt.hidden && step) {
      clear(prompt, h('strong', {}, `${step.name} waits for your approval`), h('p', {}, String(step.definition['prompt'] ?? '')));
    }
  };

  const renderTimeline = (t: TaskRecord) => {
    clear(
      timeline,
      t.steps.map((s, i) => {
        const results = t.step_results.filter((r) => r.step_index === i);
        const current = i === t.current_step && !TERMINAL.has(t.status);
        return h(
          'li',
          { class: `step s-${s.status}${current ? ' current' : ''}`, 'data-step': s.name },
          h(
            'div',
            { class: 'step-head' },
            h('span', { class: 'dot', 'aria-hidden': 'true' }),
            h('strong', {}, s.name),
            h('span', { class: 'muted' }, ` ${s.type}`),
            statusBadge(s.status),
            s.attempts > 1 ? h('span', { class: 'muted' }, `${s.attempts} attempts`) : null,
            s.next_attempt_at ? h('span', { class: 'muted' }, `retry at ${time(s.next_attempt_at)}`) : null,
            s.status === 'running' && s.started_at ? h('span', { class: 'muted' }, `since ${time(s.started_at)}`) : null,
          ),
          results.length
            ? h(
                'ul',
                { class: 'attempts' },
                results.map((r) =>
                  h(
                    'li',
                    { class: `attempt a-${r.status}` },
                    h('span', {}, `#${r.attempt}`),
                    statusBadge(r.status),
                    h('span', {}, duration(r.duration_ms)),
                    r.exit_code !== null ? h('span', { class: 'exit' }, `exit ${r.exit_code}`) : null,
                    r.signal ? h('span', { class: 'exit' }, r.signal) : null,
                    usage(r) ? h('span', { class: 'muted' }, usage(r)) : null,
                    r.error ? h('div', { class: 'error' }, r.error) : null,
                  ),
                ),
              )
            : null,
          s.error && !results.some((r) => r.error === s.error) ? h('div', { class: 'error' }, s.error) : null,
        );
      }),
    );
    const keep = stepSel.value;
    clear(stepSel, h('option', { value: '' }, 'all steps'), t.steps.map((s) => h('option', { value: s.name }, s.name)));
    stepSel.value = keep;
  };

  const renderArtifacts = async () => {
    try {
      const list = await get<Array<{ name: string; size: number }>>('task.artifacts', { id });
      clear(
        artifacts,
        list.length === 0 ? h('li', { class: 'muted' }, 'none yet') : null,
        list.map((a) => {
          const q = `id=${encodeURIComponent(id)}&name=${encodeURIComponent(a.name)}`;
          return h('li', {}, h('a', { href: `/api/artifact?${q}`, target: '_blank', rel: 'noopener' }, a.name), h('span', { class: 'muted' }, ` ${bytes(a.size)} `), h('a', { href: `/api/artifact?${q}&download=1`, download: a.name, class: 'dl' }, 'download'));
        }),
      );
    } catch {
      // the next refresh tries again
    }
  };

  const show = (t: TaskRecord) => {
    const wasMoving = task ? MOVING.has(task.status) : false;
    const changed = task?.updated_at !== t.updated_at;
    task = t;
    renderHead(t);
    renderActions(t);
    renderTimeline(t);
    if (changed) void renderArtifacts();
    // A task that moves again (resumed, or rejected back to an earlier step) gets a fresh log stream.
    if (MOVING.has(t.status) && (!logOpen || !wasMoving)) openLog();
  };

  const refresh = async () => {
    try {
      show(await get<TaskRecord>('task.get', { id }));
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) clear(root, h('p', { class: 'error' }, `No task ${id}.`), h('a', { href: '#/' }, 'All tasks'));
      else say((err as Error).message, 'error');
    }
  };
  const refreshSoon = () => {
    clearTimeout(refreshTimer);
    refreshTimer = window.setTimeout(() => void refresh(), 100);
  };

  const appendRecord = (r: LogRecord) => {
    if (r.event === 'output' && typeof r.text === 'string') {
      log.append(h('span', { class: r.stream === 'stderr' ? 'out err' : 'out' }, r.text));
    } else {
      const bits = [r.event.replace(/_/g, ' '), r.step ? String(r.step) : '', r.attempt !== undefined ? `attempt ${String(r.attempt)}` : '', r.status ? String(r.status) : '', r.to_status ? `→ ${String(r.to_status)}` : '', r.exit_code !== undefined && r.exit_code !== null ? `exit ${String(r.exit_code)}` : '', r.reason ? String(r.reason) : '', r.error ? String(r.error) : '', r.message ? String(r.message) : ''];
      // Live records come before the log writer stamps them: they happened just now.
      log.append(h('div', { class: `ev e-${r.event}` }, h('time', {}, time(r.time ?? new Date().toISOString())), ' ', bits.filter(Boolean).join(' · ')));
    }
    while (log.childNodes.length > MAX_LOG_NODES) log.firstChild?.remove();
  };

  function openLog(): void {
    logSource?.close();
    logOpen = true;
    const src = new EventSource(streamUrl('task.logs', { id, step: stepFilter || undefined, tail: LOG_TAIL }));
    logSource = src;
    src.addEventListener('result', (ev) => {
      const res = JSON.parse((ev as MessageEvent<string>).data) as { records: LogRecord[] };
      log.replaceChildren();
      for (const r of res.records) appendRecord(r);
      logNote.textContent = res.records.length >= LOG_TAIL ? `the last ${LOG_TAIL} records; each attempt's full output is in its artifact` : '';
      if (follow) log.scrollTop = log.scrollHeight;
    });
    src.addEventListener('task.log', (ev) => {
      const { record } = JSON.parse((ev as MessageEvent<string>).data) as { record: LogRecord };
      appendRecord(record);
      if (follow) log.scrollTop = log.scrollHeight;
    });
    src.addEventListener('task.updated', refreshSoon);
    src.addEventListener('stream.end', () => {
      src.close();
      logOpen = false;
      refreshSoon();
    });
    src.addEventListener('error', () => {
      // The daemon is gone or restarting: EventSource retries by itself (and replays the tail).
      if (src.readyState === EventSource.CLOSED) logOpen = false;
    });
  }

  // Status changes of this task arrive on the live task feed.
  feed = new EventSource(streamUrl('tasks', { text: id, limit: 1 }));
  feed.addEventListener('open', () => setLive('live'));
  feed.addEventListener('error', () => setLive('connecting'));
  feed.addEventListener('task', (ev) => {
    const m = JSON.parse((ev as MessageEvent<string>).data) as { task: TaskSummary };
    if (m.task.id === id) refreshSoon();
  });
  feed.addEventListener('snapshot', refreshSoon);

  clear(
    root,
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, '← all tasks')),
    head,
    prompt,
    h('div', { class: 'actions-bar' }, actions, rejectForm),
    flash,
    h('div', { class: 'task-grid' }, h('section', { class: 'steps' }, h('h2', {}, 'Steps'), timeline, h('h2', {}, 'Artifacts'), artifacts), h('section', { class: 'log-pane' }, h('div', { class: 'log-bar' }, h('h2', {}, 'Log'), stepSel, h('label', { class: 'follow' }, followBox, ' follow'), logNote), log)),
  );
  clear(actions, approveBtn, rejectBtn, resumeBtn, cancelBtn);
  void refresh().then(() => {
    if (!logOpen) openLog();
  });
  return () => {
    logSource?.close();
    feed?.close();
    clearTimeout(refreshTimer);
    setLive('off');
  };
}
