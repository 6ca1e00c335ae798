// The daemon's workspace-memory methods (DESIGN §14), kept apart from handlers.ts, which spreads them in.
import type { Engine } from '../engine/engine.js';
import { addMemory, listMemory, removeMemory, searchMemory } from '../engine/memory.js';
import type { Handlers } from './rpc-server.js';

type MemoryMethod = 'memory.add' | 'memory.list' | 'memory.search' | 'memory.remove';

export function memoryHandlers(engine: Engine): Pick<Handlers, MemoryMethod> {
  return {
    'memory.add': async ({ workspace, text, kind }) => {
      const e = await addMemory(engine.store, workspace, { text, kind, source: 'cli' });
      engine.log?.info({ memory_added: e.id, workspace }, `memory: added #${e.id} (${e.kind}) to workspace ${workspace}`);
      return e;
    },
    'memory.list': async ({ workspace }) => listMemory(engine.store, workspace),
    'memory.search': async ({ workspace, query }) => searchMemory(engine.store, workspace, query),
    'memory.remove': async ({ workspace, id }) => {
      const e = await removeMemory(engine.store, workspace, id);
      engine.log?.info({ memory_removed: e.id, workspace }, `memory: removed #${e.id} from workspace ${workspace}`);
      return e;
    },
  };
}
