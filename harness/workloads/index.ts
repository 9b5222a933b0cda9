// Workloads, registered by name (--workload). A workload is what the clients do: a per-worker
// generator of ops (value shapes in harness/history.ts) and the name of the checker set that judges
// it (checkers/index.ts). Each worker is one session bound to one node, so a session's read and the
// write that follows it happen on the same node: that is what makes causality observable to the
// lost-update checker.
import { mix, repeatedly, type Gen, type OpSpec } from '../generator.ts';
import type { Op } from '../history.ts';

export interface WorkloadOptions {
  /** How many entities (keys) the workload spreads over. Few keys mean more conflicts. */
  readonly keys: number;
  /** A prefix that makes request ids unique across runs against the same cluster. */
  readonly runTag: string;
}

export interface Workload {
  readonly name: string;
  readonly description: string;
  /** The generator of one worker (the runner gives every worker its own, with its own Rng). */
  generator(worker: number, options: WorkloadOptions): Gen;
}

/** The share of lww sessions that write a cold entity of their own. */
const COLD_SHARE = 0.3;

function lastOk(last: Op | undefined, f: string): Record<string, any> | undefined {
  return last && last.type === 'ok' && last.f === f ? (last.value as Record<string, any>) : undefined;
}

/**
 * lww: sessions read a component on their node, then write a new unique value to it. Three
 * quarters of the sessions use the LWW component `pos`; the rest read the max-wins component
 * `threat` and write a value above what they read, so threat only ever goes up.
 *
 * Seven in ten sessions use one of the `keys` hot entities, where writers conflict (that is what
 * exposes lost updates and merge bugs); the other three use a cold entity of their own that nobody
 * writes again. A cold write made during a fault is never overwritten afterwards, so if the mesh lost
 * it on some replica, only anti-entropy can repair it, and the convergence and lost-writes checkers
 * see it when it does not.
 */
const lww: Workload = {
  name: 'lww',
  description: 'read-then-write sessions on LWW components plus a max-wins "threat" component',
  generator(worker, { keys, runTag }) {
    interface S { readonly n: number; readonly then?: OpSpec; readonly threat: number }
    return repeatedly<S>({ n: 0, threat: 0 }, (ctx, rng, s) => {
      if (s.then) {
        if (s.then.f === 'write-max') {
          // Write above both what this session just read and what it wrote before.
          const read = lastOk(ctx.last, 'read-max')?.value;
          const base = Math.max(s.threat, typeof read === 'number' ? read : 0);
          const value = base + 1 + rng.int(3);
          return { op: { f: 'write-max', value: { ...(s.then.value as object), value } }, state: { n: s.n, threat: value } };
        }
        return { op: s.then, state: { n: s.n, threat: s.threat } };
      }
      const n = s.n + 1;
      const entity = rng.next() < COLD_SHARE ? `k${worker}-${n}` : `e${rng.int(keys)}`;
      const requestId = `${runTag}-w${worker}-${n}`;
      if (rng.next() < 0.75) {
        const then: OpSpec = { f: 'write', value: { entity, component: 'pos', value: `w${worker}-${n}`, requestId } };
        return { op: { f: 'read', value: { entity, component: 'pos' } }, state: { n, then, threat: s.threat } };
      }
      const then: OpSpec = { f: 'write-max', value: { entity, component: 'threat', requestId } };
      return { op: { f: 'read-max', value: { entity, component: 'threat' } }, state: { n, then, threat: s.threat } };
    });
  },
};

/**
 * counter: increments with client request ids. An increment that ends in `info` is retried with the
 * same request id (up to 3 attempts), and one in seven acknowledged increments is sent again with the
 * same id, as a client whose acknowledgement was lost would: the service must apply each id once.
 */
const counter: Workload = {
  name: 'counter',
  description: 'PN-counter increments with retries and re-deliveries of the same request id',
  generator(worker, { keys, runTag }) {
    const counters = Math.max(1, Math.min(keys, 3));
    return repeatedly<{ n: number }>({ n: 0 }, (ctx, rng, s) => {
      const last = ctx.last;
      if (last && last.f === 'incr') {
        const v = last.value as { attempt: number };
        const retry = (last.type === 'info' && v.attempt < 2) || (last.type === 'ok' && v.attempt === 0 && rng.next() < 1 / 7);
        if (retry) {
          const { result: _result, ...request } = last.value as Record<string, unknown>;
          return { op: { f: 'incr', value: { ...request, attempt: v.attempt + 1 } }, state: s };
        }
      }
      const counterName = `c${rng.int(counters)}`;
      if (rng.next() < 0.15) return { op: { f: 'read-counter', value: { entity: 'counters', counter: counterName } }, state: s };
      const n = s.n + 1;
      const value = { entity: 'counters', counter: counterName, delta: 1 + rng.int(5), requestId: `${runTag}-w${worker}-${n}`, attempt: 0 };
      return { op: { f: 'incr', value }, state: { n } };
    });
  },
};

/** set: adds of unique integer elements to a few set entities, with occasional reads of a whole set. */
const set: Workload = {
  name: 'set',
  description: 'adds of unique elements to set-like entities, with reads of the whole set',
  generator(worker, { keys, runTag }) {
    const sets = Math.max(1, Math.min(keys, 2));
    const adds = repeatedly<{ n: number }>({ n: 0 }, (_ctx, rng, s) => {
      const n = s.n + 1;
      const element = worker * 1_000_000 + n;
      return { op: { f: 'add', value: { entity: `s${rng.int(sets)}`, element, requestId: `${runTag}-w${worker}-${n}` } }, state: { n } };
    });
    const reads = repeatedly<null>(null, (_ctx, rng) => ({ op: { f: 'read-set', value: { entity: `s${rng.int(sets)}` } }, state: null }));
    return mix([adds, reads], [9, 1]);
  },
};

export const workloads: Readonly<Record<string, Workload>> = { lww, counter, set };

export function workloadNames(): string[] {
  return Object.keys(workloads);
}
