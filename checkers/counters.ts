// Counters at every point of the history, not only at the end. A PN-counter is a share (p, n) per origin
// node, and an origin's share grows only by increments made on that origin, so every read of it can be
// bounded from the requests in the history:
//   - read-counter (ok) returns each origin's share as the reading node holds it. For every origin O:
//       p_O ≤ Σ positive deltas of the requests made on O that were invoked before the read completed
//             (each request id once, leaving out requests whose every attempt definitely failed), and
//             likewise n_O with the negative deltas: above means an increment was applied twice or
//             invented ("share-above-requests");
//       on O itself, p_O ≥ Σ positive deltas acknowledged on O before the read was invoked, and likewise
//             n_O: below means an acknowledged increment is not visible on its own node
//             ("share-below-acknowledged");
//       on any node, a share never goes back: p_O and n_O are at least what an earlier read on that node
//             (completed before this one was invoked) returned ("share-went-back"; "lost-after-kill"
//             when the node was killed in between);
//       and the value is the sum of the shares ("value-not-sum").
//   - incr (ok, not a duplicate) replies with the node's value after the increment: it must lie within
//     the sum over origins of [p low − n high, p high − n low], where the node's own share includes this
//     increment and what it had acknowledged before, and other origins' shares are at least what the
//     node had shown ("reply-out-of-range").
// The final value against all requests is the idempotency checker's. Nothing to judge → unknown.
import type { History, IncrValue, ReadCounterValue } from '../harness/history.ts';
import type { CheckContext, CheckResult, Checker } from './types.ts';
import { AnomalyList, lastBefore, pairing, valueOf } from './util.ts';
import { killWindows } from './windows.ts';

export interface CountersResult extends CheckResult {
  /** ok read-counter ops and ok incr replies judged. */
  readonly judged: number;
  readonly reads: number;
  readonly replies: number;
}

interface Request {
  readonly delta: number;
  readonly origin: string;
  readonly key: string;
  readonly firstInvoke: number;
  firstOk: number;
  allFailed: boolean;
}

/** Cumulative sums at increasing positions, with binary search for the sum before a position. */
class Cumulative {
  readonly pos: number[] = [];
  readonly p: number[] = [];
  readonly n: number[] = [];

  add(pos: number, delta: number): void {
    const k = this.p.length;
    this.pos.push(pos);
    this.p.push((k ? this.p[k - 1] : 0) + Math.max(delta, 0));
    this.n.push((k ? this.n[k - 1] : 0) + Math.max(-delta, 0));
  }

  /** [p, n] summed over entries at positions < pos. */
  before(pos: number): [number, number] {
    const found = lastBefore(this.pos, pos);
    return found < 0 ? [0, 0] : [this.p[found], this.n[found]];
  }
}

/** The largest share a node showed for one origin, at increasing completion positions. */
class ShareFloor {
  readonly pos: number[] = [];
  readonly p: number[] = [];
  readonly n: number[] = [];
  readonly src: number[] = [];

  push(pos: number, p: number, n: number): void {
    const k = this.p.length;
    const lp = k ? this.p[k - 1] : 0;
    const ln = k ? this.n[k - 1] : 0;
    if (k && lp >= p && ln >= n) return;
    this.pos.push(pos);
    this.p.push(Math.max(lp, p));
    this.n.push(Math.max(ln, n));
    this.src.push(pos);
  }

  before(pos: number): number {
    return lastBefore(this.pos, pos);
  }
}

const keyOf = (entity: string, counter: string) => entity + '\u0000' + counter;

const cache = new WeakMap<History, { length: number; result: CountersResult }>();

export const counters = (history: History, ctx: CheckContext): CountersResult => {
  const hit = cache.get(history);
  if (hit && hit.length === history.length) return hit.result;
  const result = judgeCounters(history, ctx);
  cache.set(history, { length: history.length, result });
  return result;
};

function judgeCounters(history: History, _ctx: CheckContext): CountersResult {
  const { completion, invocation } = pairing(history);
  const kills = killWindows(history);
  const anomalies = new AnomalyList();

  // Pass 1: every request, its origin, its first invoke, its first ok, and whether every attempt failed.
  const requests = new Map<string, Request>();
  for (let i = 0; i < history.length; i++) {
    const op = history[i];
    if (op.f !== 'incr' || op.type !== 'invoke' || op.node === undefined) continue;
    const v = valueOf<IncrValue>(op);
    if (typeof v.entity !== 'string' || typeof v.counter !== 'string' || typeof v.delta !== 'number' || typeof v.requestId !== 'string') continue;
    let r = requests.get(v.requestId);
    if (!r) requests.set(v.requestId, (r = { delta: v.delta, origin: op.node, key: keyOf(v.entity, v.counter), firstInvoke: i, firstOk: -1, allFailed: true }));
    const c = completion[i];
    const type = c >= 0 ? history[c].type : 'info';
    if (type !== 'fail') r.allFailed = false;
    if (type === 'ok' && r.firstOk < 0) r.firstOk = c;
  }
  // Per counter and origin: requests by first invoke (upper bounds) and by first ok (lower bounds).
  const invoked = new Map<string, Cumulative>();
  const acked = new Map<string, Cumulative>();
  const cum = (m: Map<string, Cumulative>, k: string) => {
    let x = m.get(k);
    if (!x) m.set(k, (x = new Cumulative()));
    return x;
  };
  const byInvoke = [...requests.values()].filter((r) => !r.allFailed).sort((a, b) => a.firstInvoke - b.firstInvoke);
  for (const r of byInvoke) cum(invoked, r.key + '\u0000' + r.origin).add(r.firstInvoke, r.delta);
  const byOk = [...requests.values()].filter((r) => r.firstOk >= 0).sort((a, b) => a.firstOk - b.firstOk);
  for (const r of byOk) cum(acked, r.key + '\u0000' + r.origin).add(r.firstOk, r.delta);
  const origins = new Map<string, Set<string>>();
  for (const r of requests.values()) {
    let s = origins.get(r.key);
    if (!s) origins.set(r.key, (s = new Set()));
    s.add(r.origin);
  }

  // Pass 2: judge every ok read-counter and incr reply, in completion order (floors grow as we go).
  const floors = new Map<string, ShareFloor>();
  const floor = (node: string, key: string, origin: string) => {
    const k = node + '\u0000' + key + '\u0000' + origin;
    let f = floors.get(k);
    if (!f) floors.set(k, (f = new ShareFloor()));
    return f;
  };
  let reads = 0;
  let replies = 0;
  for (let c = 0; c < history.length; c++) {
    const op = history[c];
    if (op.type !== 'ok' || op.node === undefined || (op.f !== 'read-counter' && op.f !== 'incr')) continue;
    const i = invocation[c];
    if (i < 0) continue;
    const node = op.node;
    if (op.f === 'read-counter') {
      const v = valueOf<ReadCounterValue>(op);
      if (typeof v.entity !== 'string' || typeof v.counter !== 'string' || typeof v.value !== 'number' || !v.shares || typeof v.shares !== 'object') continue;
      reads++;
      const key = keyOf(v.entity, v.counter);
      const where = `${v.entity}/${v.counter} on ${node}`;
      let sum = 0;
      for (const [origin, share] of Object.entries(v.shares)) {
        if (!Array.isArray(share) || typeof share[0] !== 'number' || typeof share[1] !== 'number') continue;
        const [p, n] = share;
        sum += p - n;
        const [pHi, nHi] = invoked.get(key + '\u0000' + origin)?.before(c) ?? [0, 0];
        if (p > pHi || n > nHi) {
          anomalies.add({
            type: 'share-above-requests',
            ops: [op.index],
            node,
            origin,
            share: [p, n],
            bound: [pHi, nHi],
            message: `Read of ${where} shows ${origin}'s share as (p ${p}, n ${n}), above the (p ${pHi}, n ${nHi}) of every request made on ${origin} so far: an increment was applied twice or invented.`,
          });
        }
        if (origin === node) {
          const [pLo, nLo] = acked.get(key + '\u0000' + origin)?.before(i) ?? [0, 0];
          if (p < pLo || n < nLo) {
            anomalies.add({
              type: 'share-below-acknowledged',
              ops: [op.index],
              node,
              share: [p, n],
              bound: [pLo, nLo],
              message: `Read of ${where} shows its own share as (p ${p}, n ${n}), below the (p ${pLo}, n ${nLo}) it had acknowledged before the read began.`,
            });
          }
        }
        const fl = floor(node, key, origin);
        const k = fl.before(i);
        if (k >= 0 && (p < fl.p[k] || n < fl.n[k])) {
          const killed = kills.between(node, history[fl.src[k]].time, history[i].time);
          anomalies.add({
            type: killed === undefined ? 'share-went-back' : 'lost-after-kill',
            ops: [op.index, history[fl.src[k]].index],
            node,
            origin,
            share: [p, n],
            previous: [fl.p[k], fl.n[k]],
            message: `Read of ${where} shows ${origin}'s share as (p ${p}, n ${n}), below the (p ${fl.p[k]}, n ${fl.n[k]}) ${node} had shown before${killed === undefined ? '' : ` it was killed (op ${history[killed].index})`}.`,
          });
        }
        fl.push(c, p, n);
      }
      if (sum !== v.value) {
        anomalies.add({ type: 'value-not-sum', ops: [op.index], node, value: v.value, sum, message: `Read of ${where} returned ${v.value}, but its shares sum to ${sum}.` });
      }
      continue;
    }
    // An incr reply: the node's value right after this increment.
    const v = valueOf<IncrValue & { duplicate?: boolean }>(op);
    if (v.duplicate === true || typeof v.result !== 'number' || typeof v.entity !== 'string' || typeof v.counter !== 'string' || typeof v.delta !== 'number') continue;
    replies++;
    const key = keyOf(v.entity, v.counter);
    let lo = 0;
    let hi = 0;
    for (const origin of new Set([...(origins.get(key) ?? []), node])) {
      const [pHi, nHi] = invoked.get(key + '\u0000' + origin)?.before(c) ?? [0, 0];
      let pLo = 0;
      let nLo = 0;
      if (origin === node) {
        [pLo, nLo] = acked.get(key + '\u0000' + origin)?.before(i) ?? [0, 0];
        // This increment is applied too (and counted once, even if an earlier attempt acknowledged it).
        const req = requests.get(String(v.requestId));
        if (!req || req.firstOk === c) {
          pLo += Math.max(v.delta, 0);
          nLo += Math.max(-v.delta, 0);
        }
      }
      const fl = floors.get(node + '\u0000' + key + '\u0000' + origin);
      const k = fl ? fl.before(i) : -1;
      if (fl && k >= 0) {
        pLo = Math.max(pLo, fl.p[k]);
        nLo = Math.max(nLo, fl.n[k]);
      }
      lo += pLo - nHi;
      hi += pHi - nLo;
    }
    if (v.result < lo || v.result > hi) {
      anomalies.add({
        type: 'reply-out-of-range',
        ops: [op.index],
        node,
        value: v.result,
        bound: [lo, hi],
        message: `Incr of ${v.delta} on ${v.entity}/${v.counter} at ${node} replied ${v.result}, outside the [${lo}, ${hi}] the requests and what ${node} had shown allow.`,
      });
    }
  }

  const judged = reads + replies;
  const valid = anomalies.count > 0 ? false : judged === 0 ? 'unknown' : true;
  return {
    valid,
    ...(judged === 0 ? { error: 'no ok read-counter or incr replies in the history, so no counter was judged' } : {}),
    judged,
    reads,
    replies,
    ...anomalies.summary(),
  };
}
counters satisfies Checker;
