// The webhook delivery thread (started by delivery-thread.ts): it signs and sends the attempts
// the dispatchers ask for, each endpoint over its own keep-alive agent, and answers with their
// outcomes, gathered into one message per turn of its event loop. It holds no state worth
// keeping: the outbox and every attempt count stay on the main thread.
import type http from 'node:http';
import { parentPort } from 'node:worker_threads';
import type { FromThread, ToThread } from './delivery-protocol.js';
import { agentFor, attempt, type AttemptOutcome, type SendTarget } from './send.js';

const port = parentPort;
if (!port) throw new Error('delivery-worker.ts runs as a worker thread (delivery-thread.ts starts it)');

const targets = new Map<string, { target: SendTarget; agent: http.Agent }>();
let outcomes: FromThread['outcomes'] = [];

function answer(n: number, outcome: AttemptOutcome): void {
  if (outcomes.length === 0) setImmediate(flush);
  outcomes.push({ n, outcome });
}

function flush(): void {
  const msg: FromThread = { outcomes };
  outcomes = [];
  port!.postMessage(msg);
}

port.on('message', (m: ToThread) => {
  switch (m.t) {
    case 'endpoint': {
      targets.get(m.ep.name)?.agent.destroy();
      const target: SendTarget = { ...m.ep, key: Buffer.from(m.ep.key) };
      targets.set(m.ep.name, { target, agent: agentFor(target) });
      break;
    }
    case 'send':
      for (const r of m.batch) {
        const t = targets.get(r.endpoint);
        if (!t) answer(r.n, { kind: 'retry', status: null, error: `webhook ${r.endpoint} is not known to the delivery thread`, retry_after_ms: null, duration_ms: 0 });
        else void attempt(t.target, t.agent, r.id, r.body).then((o) => answer(r.n, o));
      }
      break;
    default: {
      const never: never = m;
      throw new Error(`unknown message ${JSON.stringify(never)}`);
    }
  }
});
