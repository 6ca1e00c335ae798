// What the daemon's main thread and its webhook delivery thread (delivery-worker.ts) say to
// each other. Endpoints are announced once (again after a restart of the thread); requests
// and outcomes travel in batches, so a burst of events costs one message each way, not one
// per event.
import type { AttemptOutcome, SendTarget } from './send.js';

/** An endpoint as it crosses to the thread (the key as bytes: a Buffer arrives as a Uint8Array). */
export type WireTarget = Omit<SendTarget, 'key'> & { key: Uint8Array };

export interface SendRequest {
  /** Matches the outcome to its request. */
  n: number;
  endpoint: string;
  id: string;
  body: string;
}

export type ToThread = { t: 'endpoint'; ep: WireTarget } | { t: 'send'; batch: SendRequest[] };

export interface FromThread {
  outcomes: Array<{ n: number; outcome: AttemptOutcome }>;
}
