// The atlas dashboard: a single page served by the daemon's HTTP listener (DESIGN §11).
// Hash routes: #/ (tasks, with filters in the query), #/task/<id>, #/start[?template=],
// #/daemon. Each view returns its cleanup (it closes its event streams).
import { ApiError, session } from './api.js';
import { daemonView } from './daemon-view.js';
import { clear, h } from './dom.js';
import { listView, type Filters } from './list-view.js';
import { startView } from './start-view.js';
import { taskView } from './task-view.js';

const main = document.getElementById('main') as HTMLElement;
let cleanup: () => void = () => undefined;

function route(): void {
  cleanup();
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path = '/', query = ''] = hash.split('?');
  const q = new URLSearchParams(query);
  for (const a of document.querySelectorAll('header nav a')) a.classList.toggle('on', (a.getAttribute('href') ?? '') === `#${path === '/' ? '/' : path}`);
  const task = /^\/task\/(.+)$/.exec(path);
  if (task) {
    document.title = `${decodeURIComponent(task[1]!)} · atlas`;
    cleanup = taskView(main, decodeURIComponent(task[1]!));
  } else if (path === '/start') {
    document.title = 'start · atlas';
    cleanup = startView(main, q.get('template') ?? undefined);
  } else if (path === '/daemon') {
    document.title = 'daemon · atlas';
    cleanup = daemonView(main);
  } else {
    document.title = 'atlas';
    const f: Filters = { status: q.get('status') ?? '', workspace: q.get('workspace') ?? '', template: q.get('template') ?? '', text: q.get('text') ?? '' };
    cleanup = listView(main, f, (next) => {
      const p = new URLSearchParams(Object.entries(next).filter(([, v]) => v !== ''));
      // Keep the filters in the address (bookmarkable) without re-routing.
      history.replaceState(null, '', `#/${p.size ? `?${p}` : ''}`);
    });
  }
}

window.addEventListener('hashchange', route);
session()
  .then(route)
  .catch((err: unknown) => clear(main, h('p', { class: 'error' }, err instanceof ApiError ? err.message : `cannot reach the daemon: ${(err as Error).message}`)));
