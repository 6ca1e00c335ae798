// The task list: newest first, tasks waiting for approval on top, filters, status counts,
// live over Server-Sent Events. The browser's EventSource resends the last event id when it
// reconnects, and the daemon answers with exactly what was missed (or a fresh snapshot).
import { get, setLive, streamUrl, type TaskSummary } from './api.js';
import { ago, clear, h, statusBadge } from './dom.js';

const STATUSES = ['pending', 'running', 'awaiting_approval', 'validation_failed', 'failed', 'gh_failed', 'ci_failed', 'ci_timeout', 'interrupted', 'completed', 'rejected', 'abandoned'];

export interface Filters {
  status: string;
  workspace: string;
  template: string;
  text: string;
}

function matches(t: TaskSummary, f: Filters): boolean {
  if (f.status && t.status !== f.status) return false;
  if (f.workspace && t.workspace !== f.workspace) return false;
  if (f.template && t.template !== f.template) return false;
  if (f.text && !`${t.id} ${t.description} ${t.template} ${t.workspace}`.toLowerCase().includes(f.text.toLowerCase())) return false;
  return true;
}

/** Waiting for a human first, then newest first. */
function order(a: TaskSummary, b: TaskSummary): number {
  const wa = a.status === 'awaiting_approval' ? 0 : 1;
  const wb = b.status === 'awaiting_approval' ? 0 : 1;
  if (wa !== wb) return wa - wb;
  return a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : a.id < b.id ? 1 : -1;
}

export function listView(root: HTMLElement, initial: Filters, onFilters: (f: Filters) => void): () => void {
  const filters = { ...initial };
  const tasks = new Map<string, TaskSummary>();
  let counts: Record<string, number> = {};
  let source: EventSource | undefined;

  const countsEl = h('div', { class: 'counts', 'aria-label': 'tasks by status' });
  const statusSel = h('select', { name: 'status', 'aria-label': 'status' }, h('option', { value: '' }, 'any status'), STATUSES.map((s) => h('option', { value: s }, s.replace(/_/g, ' '))));
  const wsSel = h('select', { name: 'workspace', 'aria-label': 'workspace' }, h('option', { value: '' }, 'any workspace'));
  const tplSel = h('select', { name: 'template', 'aria-label': 'template' }, h('option', { value: '' }, 'any template'));
  const text = h('input', { type: 'search', name: 'text', placeholder: 'search id, description…', 'aria-label': 'search' });
  const rows = h('tbody');
  const empty = h('p', { class: 'muted empty' }, 'No tasks match.');

  const setSel = (sel: HTMLSelectElement, v: string) => {
    if (v && ![...sel.options].some((o) => o.value === v)) sel.append(h('option', { value: v }, v));
    sel.value = v;
  };
  setSel(statusSel, filters.status);
  text.value = filters.text;
  void get<Array<{ name: string }>>('workspace.list').then((l) => {
    for (const w of l) wsSel.append(h('option', { value: w.name }, w.name));
    setSel(wsSel, filters.workspace);
  });
  void get<Array<{ name: string }>>('template.list').then((l) => {
    for (const t of l) tplSel.append(h('option', { value: t.name }, t.name));
    setSel(tplSel, filters.template);
  });

  const renderCounts = () => {
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    clear(
      countsEl,
      h('button', { type: 'button', class: `chip${filters.status === '' ? ' on' : ''}`, onclick: () => change({ status: '' }) }, `all ${total}`),
      STATUSES.filter((s) => (counts[s] ?? 0) > 0).map((s) =>
        h('button', { type: 'button', class: `chip s-${s}${filters.status === s ? ' on' : ''}`, 'data-status': s, onclick: () => change({ status: filters.status === s ? '' : s }) }, `${s.replace(/_/g, ' ')} ${counts[s]}`),
      ),
    );
  };

  const render = () => {
    const list = [...tasks.values()].filter((t) => matches(t, filters)).sort(order);
    clear(
      rows,
      list.map((t) =>
        h(
          'tr',
          { class: t.status === 'awaiting_approval' ? 'attention' : '', 'data-id': t.id },
          h('td', { class: 'c-status' }, statusBadge(t.status)),
          h('td', { class: 'c-id' }, h('a', { href: `#/task/${encodeURIComponent(t.id)}` }, t.id), t.description ? h('div', { class: 'desc' }, t.description) : null),
          h('td', { class: 'c-tpl' }, t.template, h('span', { class: 'muted' }, ' in '), t.workspace),
          h('td', { class: 'c-step' }, t.current_step_name ? `${Math.min(t.current_step + 1, t.steps_total)}/${t.steps_total} ${t.current_step_name}` : `${t.steps_total}/${t.steps_total}`),
          h('td', { class: 'c-time', title: t.created_at }, ago(t.created_at)),
        ),
      ),
    );
    empty.hidden = list.length > 0;
    renderCounts();
  };

  const connect = () => {
    source?.close();
    tasks.clear();
    setLive('connecting');
    source = new EventSource(streamUrl('tasks', { status: filters.status, workspace: filters.workspace, template: filters.template, text: filters.text }));
    source.addEventListener('open', () => setLive('live'));
    source.addEventListener('error', () => setLive('connecting'));
    source.addEventListener('snapshot', (ev) => {
      const snap = JSON.parse((ev as MessageEvent<string>).data) as { tasks: TaskSummary[]; counts: Record<string, number> };
      tasks.clear();
      for (const t of snap.tasks) tasks.set(t.id, t);
      counts = snap.counts;
      render();
    });
    source.addEventListener('task', (ev) => {
      const m = JSON.parse((ev as MessageEvent<string>).data) as { task: TaskSummary; counts: Record<string, number> };
      if (m.task.deleted) tasks.delete(m.task.id);
      else tasks.set(m.task.id, m.task);
      counts = m.counts;
      render();
    });
  };

  let textTimer: number | undefined;
  const change = (patch: Partial<Filters>) => {
    Object.assign(filters, patch);
    statusSel.value = filters.status;
    onFilters({ ...filters });
    connect();
  };
  statusSel.addEventListener('change', () => change({ status: statusSel.value }));
  wsSel.addEventListener('change', () => change({ workspace: wsSel.value }));
  tplSel.addEventListener('change', () => change({ template: tplSel.value }));
  text.addEventListener('input', () => {
    clearTimeout(textTimer);
    textTimer = window.setTimeout(() => change({ text: text.value.trim() }), 250);
  });

  clear(
    root,
    h('div', { class: 'toolbar' }, h('h1', {}, 'Tasks'), h('a', { class: 'button primary', href: '#/start' }, 'Start a task')),
    countsEl,
    h('div', { class: 'filters' }, statusSel, wsSel, tplSel, text),
    h('table', { class: 'tasks' }, h('thead', {}, h('tr', {}, h('th', {}, 'status'), h('th', {}, 'task'), h('th', {}, 'template'), h('th', {}, 'step'), h('th', {}, 'created'))), rows),
    empty,
  );
  connect();
  // Relative times stay true.
  const tick = window.setInterval(render, 30_000);
  return () => {
    source?.close();
    clearInterval(tick);
    clearTimeout(textTimer);
    setLive('off');
  };
}
