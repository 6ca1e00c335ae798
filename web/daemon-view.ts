// The daemon: version, uptime, queue depth, slots, task counts and the most recent events
// (live), plus the daemons and their heartbeats when the store is shared (PostgreSQL).
import { get, setLive, streamUrl } from './api.js';
import { clear, duration, h, time } from './dom.js';

interface AtlasEvent {
  seq: number;
  type: string;
  at: string;
  task_id: string;
  data: Record<string, unknown>;
}

const SHOWN = 40;

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
  const seen: AtlasEvent[] = [];
  const renderEvents = () =>
    clear(
      recent,
      seen.length === 0 ? h('li', { class: 'muted' }, 'no events yet') : null,
      seen.map((e) => {
        const d = e.data;
        const what = [d['step'], d['attempt'] !== undefined ? `attempt ${String(d['attempt'])}` : '', d['to'] ? `→ ${String(d['to'])}` : '', d['status'], d['exit_code'] !== undefined && d['exit_code'] !== null ? `exit ${String(d['exit_code'])}` : '']
          .filter((x) => x !== undefined && x !== '')
          .join(' · ');
        return h('li', { 'data-seq': e.seq }, h('time', { title: e.at }, time(e.at)), ' ', h('code', {}, e.type), ' ', h('a', { href: `#/task/${encodeURIComponent(e.task_id)}` }, e.task_id), what ? h('span', { class: 'muted' }, ` ${what}`) : null);
      }),
    );
  const add = (events: AtlasEvent[]) => {
    for (const e of events) if (!seen.some((x) => x.seq === e.seq)) seen.push(e);
    seen.sort((a, b) => b.seq - a.seq);
    seen.splice(SHOWN);
    renderEvents();
  };

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

  // Live events from now on; the stream's first answer says where "now" is, and the last
  // few before it are read once.
  const feed = new EventSource(streamUrl('events.subscribe'));
  feed.addEventListener('open', () => setLive('live'));
  feed.addEventListener('error', () => setLive('connecting'));
  feed.addEventListener('result', (ev) => {
    const r = JSON.parse((ev as MessageEvent<string>).data) as { since: number };
    void get<{ events: AtlasEvent[] }>('events.list', { since: Math.max(0, r.since - SHOWN), limit: SHOWN }).then((l) => add(l.events));
  });
  feed.addEventListener('events.event', (ev) => add([(JSON.parse((ev as MessageEvent<string>).data) as { event: AtlasEvent }).event]));

  clear(root, h('h1', {}, 'Daemon'), facts, daemons, h('h2', {}, 'Recent events'), recent);
  void load();
  const timer = window.setInterval(() => void load(), 5000);
  return () => {
    feed.close();
    clearInterval(timer);
    setLive('off');
  };
}
