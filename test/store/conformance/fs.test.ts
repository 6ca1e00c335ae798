// The conformance suite against the filesystem store.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FsStore } from '../../../src/store/fs-store.js';
import type { Store } from '../../../src/store/store.js';
import { runConformance } from './suite.js';

runConformance('fs', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-conformance-'));
  const home = path.join(root, 'home');
  const store = new FsStore(home);
  await store.init();
  const others: Store[] = [];
  return {
    store,
    async second() {
      const s = new FsStore(home);
      await s.init();
      others.push(s);
      return s;
    },
    async damage(ws, id) {
      fs.writeFileSync(store.paths.taskFile(ws, id), '{"torn": ');
    },
    async cleanup() {
      for (const s of [store, ...others]) await s.close();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
});
