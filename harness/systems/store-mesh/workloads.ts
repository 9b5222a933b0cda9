// Workloads, registered by name (--workload). A workload is what the clients do: a per-worker
// generator of ops (value shapes in harness/history.ts) and the name of the checker set that judges
// it (checkers/index.ts). Each worker is one session bound to one node, so a session's read and the
// write that follows it happen on the same node: that is what makes causality observable to the
// lost-update checker.
import { mix, repeatedly, type OpSpec } from '../../generator.ts';
import type { Op } from '../../history.ts';
import type { Workload, WorkloadOptions } from '../../system.ts';

export type { Workload, WorkloadOptions };

/**
 * One acknowledged mutating op in this many is sent again later with its request id (generator.ts,
 * retrying): a node that forgot the id after a restart applies it twice, which values (lww), counters
 * and idempotency see. 1 in 20 costs 5% more mutating ops.
 */
export const RESEND_EVERY = 20;

/** The share of lww sessions that write a cold entity of their own. */
const COLD_SHARE = 0.3;

function lastOk(last: Op | undefined, f: string): Record<string, any> | undefined {
  return last && last.type === 'ok' && last.f === f ? (last.value as Record<string, any>) : undefined;
}

/**
 * lww: sessions read a component on their node, then write a new unique value to it or delete it. Of
 * the sessions, 65 % write the LWW component `pos`, 10 % delete it (a tombstone), and 25 % read the
 * max-wins component `threat` and write a value above what they read, so threat only ever goes up.
 *
 * Seven in ten sessions use one of the `keys` hot entities, where writers conflict (that is what
 * exposes lost updates and merge bugs); the other three use a cold entity of their own that nobody
 * writes again. A cold write made during a fault is never overwritten afterwards, so if the mesh lost
 * it on some replica, only anti-entropy can repair it, and the convergence and lost-writes checkers
 * see it when it does not. Deletes go to hot entities only, so cold values stay judged.
 */
const lww: Workload = {
  name: 'lww',
  retryOf,
  resendEvery: RESEND_EVERY,
  description: 'read-then-write (or delete) sessions on LWW components plus a max-wins "threat" component',
  calls: ['read', 'write', 'delete', 'read-max', 'write-max'],
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
      const cold = rng.next() < COLD_SHARE;
      const entity = cold ? `k${worker}-${n}` : `e${rng.int(keys)}`;
      const requestId = `${runTag}-w${worker}-${n}`;
      const kind = rng.next();
      if (kind < 0.75) {
        const then: OpSpec =
          kind < 0.65 || cold
            ? { f: 'write', value: { entity, component: 'pos', value: `w${worker}-${n}`, requestId } }
            : { f: 'delete', value: { entity, component: 'pos', requestId } };
        return { op: { f: 'read', value: { entity, component: 'pos' } }, state: { n, then, threat: s.threat } };
      }
      const then: OpSpec = { f: 'write-max', value: { entity, component: 'threat', requestId } };
      return { op: { f: 'read-max', value: { entity, component: 'threat' } }, state: { n, then, threat: s.threat } };
    });
  },
};

/** Counter c0 only ever goes up (which makes tight per-op bounds possible); the others go both ways. */
const DELTAS = [-5, -4, -3, -2, -1, 1, 2, 3, 4, 5];

/**
 * counter: increments with client request ids, on up to three counters of the entity "counters": c0
 * takes increments of 1–5, the others of −5..5 (never 0). One in seven acknowledged increments is sent
 * again with the same id, as a client whose acknowledgement was lost would (and an increment that
 * ended `info` is retried later, see `retryOf`): the service must apply each id once.
 */
const counter: Workload = {
  name: 'counter',
  retryOf,
  resendEvery: RESEND_EVERY,
  description: 'PN-counter increments (positive and negative) with retries and re-deliveries of the same request id',
  calls: ['incr', 'read-counter'],
  generator(worker, { keys, runTag }) {
    const counters = Math.max(1, Math.min(keys, 3));
    return repeatedly<{ n: number }>({ n: 0 }, (ctx, rng, s) => {
      const last = ctx.last;
      if (last && last.f === 'incr' && last.type === 'ok') {
        const v = last.value as { attempt: number };
        if (v.attempt === 0 && rng.next() < 1 / 7) {
          const { result: _result, ...request } = last.value as Record<string, unknown>;
          return { op: { f: 'incr', value: { ...request, attempt: 1 } }, state: s };
        }
      }
      const c = rng.int(counters);
      const counterName = `c${c}`;
      if (rng.next() < 0.15) return { op: { f: 'read-counter', value: { entity: 'counters', counter: counterName } }, state: s };
      const n = s.n + 1;
      const delta = c === 0 ? 1 + rng.int(5) : rng.pick(DELTAS);
      const value = { entity: 'counters', counter: counterName, delta, requestId: `${runTag}-w${worker}-i${n}`, attempt: 0 };
      return { op: { f: 'incr', value }, state: { n } };
    });
  },
};

interface Owned {
  readonly entity: string;
  readonly element: number;
}

/**
 * set: adds of unique integer elements to a few set entities, removes of elements the same worker
 * added (acknowledged) before, and reads of a whole set.
 */
const set: Workload = {
  name: 'set',
  retryOf,
  resendEvery: RESEND_EVERY,
  description: 'adds and removes of unique elements of set-like entities, with reads of the whole set',
  calls: ['add', 'remove', 'read-set'],
  generator(worker, { keys, runTag }) {
    const sets = Math.max(1, Math.min(keys, 2));
    interface S { readonly n: number; readonly owned: readonly Owned[] }
    return repeatedly<S>({ n: 0, owned: [] }, (ctx, rng, s) => {
      let owned = s.owned;
      const added = lastOk(ctx.last, 'add');
      // Keep a bounded pool of removable elements.
      if (added) owned = [...owned.slice(-63), { entity: String(added.entity), element: Number(added.element) }];
      const r = rng.next();
      if (r < 0.1) return { op: { f: 'read-set', value: { entity: `s${rng.int(sets)}` } }, state: { n: s.n, owned } };
      const n = s.n + 1;
      if (r < 0.25 && owned.length > 0) {
        const i = rng.int(owned.length);
        const { entity, element } = owned[i];
        const value = { entity, element, requestId: `${runTag}-w${worker}-r${n}` };
        return { op: { f: 'remove', value }, state: { n, owned: owned.filter((_, j) => j !== i) } };
      }
      const element = worker * 1_000_000 + n;
      return { op: { f: 'add', value: { entity: `s${rng.int(sets)}`, element, requestId: `${runTag}-w${worker}-a${n}` } }, state: { n, owned } };
    });
  },
};

/**
 * all: every worker interleaves the lww, counter and set sessions (weights 2:1:1), each keeping its own
 * thread, so one run exercises every call of the client API on every node.
 */
const all: Workload = {
  name: 'all',
  retryOf,
  resendEvery: RESEND_EVERY,
  description: 'lww, counter and set sessions interleaved on every worker: every call of the API in one run',
  get calls() {
    return [...lww.calls, ...counter.calls, ...set.calls];
  },
  generator(worker, options) {
    return mix([lww.generator(worker, options), counter.generator(worker, options), set.generator(worker, options)], [2, 1, 1]);
  },
};

export const workloads: Readonly<Record<string, Workload>> = { lww, counter, set, all };

export function workloadNames(): string[] {
  return Object.keys(workloads);
}

/** Ops that change state and carry a request id, so sending them again is safe: the service dedupes. */
const RETRIED = new Set(['write', 'write-max', 'delete', 'incr', 'add', 'remove']);

/**
 * The retry of a mutating op whose outcome was not definite: the same request (same requestId), its
 * result fields dropped; `retrying` (harness/generator.ts) sets the attempt number.
 */
export function retryOf(completion: Op): OpSpec | undefined {
  if (!RETRIED.has(completion.f)) return undefined;
  const v = completion.value as Record<string, unknown> | null;
  if (!v || typeof v.requestId !== 'string' || v.requestId === '') return undefined;
  const { ts: _ts, result: _result, duplicate: _duplicate, ...request } = v;
  return { f: completion.f, value: request };
}
