// The daemon: version, uptime, queue depth, slots, task counts and the most recent task
// changes (live), plus the daemons and their heartbeats when the store is shared (PostgreSQL).
import { get, setLive, streamUrl, type TaskSummary } from './api.js';
import { clear, duration, h, statusBadge, time } from './dom.js';

interface Status {
  pid: number;
  version: string;
  home: string;
  uptime_ms: number;
  state: string;
  tasks_total: number;
  tasks_by_status: Record<string, number>;
  running_tasks: number;
  queue_depth: number;
  max_concurrent_tasks: number;
  memory?: { rss_bytes: number };
  store?: string;
  daemons?: Array<{ id: string; host?: string; pid?: number; heartbeat_at?: string; last_heartbeat?: string; alive?: boolean }>;
}

export function daemonView(root: HTMLElement): () => void {
  const facts = h('dl', { class: 'facts wide' });
  const daemons = h('section', { hidden: true });
  const recent = h('ol', { class: 'recent' });
  const seen: Array<{ at: number; t: TaskSummary }> = [];

  const load = async () => {
    try {
      const s = await get<Status>('daemon.status');
      const row = (k: string, v: string | number | Node) => [h('dt', {}, k), h('dd', {}, v)];
      clear(
        facts,
        row('version', s.version),
        row('state', s.state),
        row('pid', s.pid),
        row('uptime', duration(s.uptime_ms)),
        row('home', s.home),
        row('running', `${s.running_tasks} of ${s.max_concurrent_tasks} slots`),
        row('queue depth', s.queue_depth),
        row('tasks', `${s.tasks_total}: ${Object.entries(s.tasks_by_status).filter(([, n]) => n > 0).map(([k, n]) => `${k.replace(/_/g, ' ')} ${n}`).join(', ') || 'none'}`),
        s.memory ? row('memory', `${Math.round(s.memory.rss_bytes / 1024 / 1024)} MiB resident`) : null,
        s.store ? row('store', s.store) : null,
      );
      if (s.daemons && s.daemons.length) {
        daemons.hidden = false;
        clear(
          daemons,
          h('h2', {}, 'Daemons'),
          h('table', { class: 'tasks' }, h('thead', {}, h('tr', {}, h('th', {}, 'daemon'), h('th', {}, 'host'), h('th', {}, 'pid'), h('th', {}, 'heartbeat'))), h('tbody', {}, s.daemons.map((d) => h('tr', {}, h('td', {}, d.id), h('td', {}, d.host ?? ''), h('td', {}, d.pid ?? ''), h('td', {}, time(d.heartbeat_at ?? d.last_heartbeat ?? null)))))),
        );
      }
    } catch (err) {
      clear(facts, h('p', { class: 'error' }, (err as Error).message));
    }
  };

  const feed = new EventSource(streamUrl('tasks', { limit: 1 }));
  feed.addEventListener('open', () => setLive('live'));
  feed.addEventListener('error', () => setLive('connecting'));
  feed.addEventListener('task', (ev) => {
    const m = JSON.parse((ev as MessageEvent<string>).data) as { task: TaskSummary };
    seen.unshift({ at: Date.now(), t: m.task });
    seen.splice(30);
    clear(recent, seen.map(({ at, t }) => h('li', {}, h('time', {}, new Date(at).toLocaleTimeString()), ' ', h('a', { href: `#/task/${encodeURIComponent(t.id)}` }, t.id), ' ', t.deleted ? 'deleted' : statusBadge(t.status), t.current_step_name ? h('span', { class: 'muted' }, ` ${t.current_step_name}`) : null)));
  });

  clear(root, h('h1', {}, 'Daemon'), facts, daemons, h('h2', {}, 'Recent changes'), recent, h('p', { class: 'muted' }, 'Changes since this page opened.'));
  void load();
  const timer = window.setInterval(() => void load(), 5000);
  return () => {
    feed.close();
    clearInterval(timer);
    setLive('off');
  };
}
