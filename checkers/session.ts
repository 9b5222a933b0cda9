// Session guarantees, durability of what was read, and deletes, judged at every op rather than only in
// the final state. Three checkers share one pass over the history (cached per history):
//
// Every worker is one session bound to one node, so the guarantees are checked per node, which is
// stronger than per session: an op on node N is compared with every op on N that had completed before
// it was invoked, whichever session made it (ops that overlap in time are never compared).
//   - Reads of an LWW component return its HLC, also for a tombstone. A read must not be older than what
//     N had already shown or acknowledged for that component: a value or tombstone an earlier read on N
//     returned, a write or delete N acknowledged (read-your-writes, monotonic reads).
//   - An acknowledged write's HLC (write, write-max, delete, set add or remove) must sort after every HLC
//     N had shown (reads, and a set read's newest element timestamp `maxTs`) or acknowledged before the
//     write was invoked, for any key (monotonic writes,
//     writes-follow-reads: a hybrid logical clock observes every timestamp it merges and never goes
//     back). A retry that the node recognised (`duplicate`) returns the original timestamp and is exempt.
//   - Acknowledged timestamps are unique: two requests never get the same HLC, and a node stamps its writes
//     with its own id ("foreign-timestamp" otherwise).
//   - Set elements: once N showed an element or acknowledged its add, N must keep showing it (live or
//     removed); once N showed it removed or acknowledged its remove, N must never show it live again.
//   - Watch streams: a stream is sent every change its node applies after it registered, so an event for a
//     state the node had already shown or acknowledged before the stream opened means the node no longer
//     had it: a value a crash took back comes back through anti-entropy as such an event, whether or not
//     a client happened to read it in between.
//   - The final reads are one more read of every key on every node.
// What breaks a rule is reported by the checker that owns its cause:
//   - deletes: `resurrected`: the bound came from a tombstone (a delete, a remove, or a read of one) and
//     the op shows a live value older than it; also a final state holding a live value older than an
//     acknowledged delete.
//   - durable-reads: `lost-after-kill`: N was killed between the op that set the bound and this op, so
//     something N had shown or acknowledged did not survive the crash. (Nodes make a write visible only
//     once it is durable, so a correct node never shows anything a crash can take back.)
//   - session: `stale-read`, `write-not-after`, `duplicate-timestamp`, `foreign-timestamp`: everything else.
// Each result reports how many ops it judged; with nothing to judge it is `unknown`.
import type { History, Op } from '../harness/history.ts';
import type { CheckContext, CheckResult, Checker } from './types.ts';
import { AnomalyList, finalReads, keyIndex, lastBefore, pairing, valueOf } from './util.ts';
import { killWindows, type KillWindows } from './windows.ts';
import { opIndex } from './history-index.ts';
import { counters } from './counters.ts';

/** The largest HLC (and what set it) among ops completed before a position, per node and key. */
class Bound {
  readonly pos: number[] = [];
  readonly ts: string[] = [];
  readonly src: number[] = [];
  readonly tomb: boolean[] = [];

  /** Records an op completed at `pos`; only a new maximum is stored (queries need nothing else). */
  push(pos: number, ts: string, src: number, tomb: boolean): void {
    const n = this.ts.length;
    if (n > 0 && this.ts[n - 1] >= ts) return;
    this.pos.push(pos);
    this.ts.push(ts);
    this.src.push(src);
    this.tomb.push(tomb);
  }

  /** Index of the bound in force for an op invoked at `invokePos`, or -1. */
  before(invokePos: number): number {
    return lastBefore(this.pos, invokePos);
  }
}

/**
 * A growing number per position: set element ranks (1 = the node showed it or acked its add, 2 = it
 * showed it removed or acked its remove) and max-wins values.
 */
class RankBound {
  readonly pos: number[] = [];
  readonly rank: number[] = [];
  readonly src: number[] = [];

  push(pos: number, rank: number, src: number): void {
    const n = this.rank.length;
    if (n > 0 && this.rank[n - 1] >= rank) return;
    this.pos.push(pos);
    this.rank.push(rank);
    this.src.push(src);
  }

  before(invokePos: number): number {
    return lastBefore(this.pos, invokePos);
  }
}

export interface SessionAnalysis {
  readonly session: AnomalyList;
  readonly durable: AnomalyList;
  readonly deletes: AnomalyList;
  /** Ops each checker judged. */
  readonly judged: { readonly session: number; readonly durable: number; readonly deletes: number };
  readonly deletesAcked: number;
  /** ok read-counter ops seen (their shares are judged by the counters checker). */
  readonly counterReads: number;
}

const WRITES = new Set(['write', 'write-max', 'delete', 'add', 'remove']);
const TOMBSTONES = new Set(['delete', 'remove']);
const cache = new WeakMap<History, Map<string, SessionAnalysis>>();

/**
 * Per node, per key (ids from util.keyIndex), a T: arrays indexed by id, so an op costs no string lookup
 * beyond its node's.
 */
class KeyMap<T> {
  readonly #byNode = new Map<string, T[]>();
  readonly #make: () => T;

  constructor(make: () => T) {
    this.#make = make;
  }

  get(node: string, key: number): T {
    let list = this.#byNode.get(node);
    if (!list) this.#byNode.set(node, (list = []));
    return (list[key] ??= this.#make());
  }

  /** The keys with an entry on a node, and their entries. */
  *entries(node: string): IterableIterator<[number, T]> {
    const list = this.#byNode.get(node) ?? [];
    for (let k = 0; k < list.length; k++) if (list[k] !== undefined) yield [k, list[k]];
  }
}

/** The shared pass; see the module comment. */
export function analyzeSessions(history: History, ctx: CheckContext): SessionAnalysis {
  const key = ctx.nodes.join(',') + '#' + history.length;
  let perCtx = cache.get(history);
  if (!perCtx) cache.set(history, (perCtx = new Map()));
  const hit = perCtx.get(key);
  if (hit) return hit;

  const { invocation } = pairing(history);
  const kills = killWindows(history);
  const session = new AnomalyList();
  const durable = new AnomalyList();
  const deletes = new AnomalyList();
  const judged = { session: 0, durable: 0, deletes: 0 };
  // node → component key → bound; node → bound over every key (what the node's clock has seen).
  const keys = keyIndex(history);
  const keyBounds = new KeyMap(() => new Bound());
  // node → entity → max-wins component → the largest value it had shown or acknowledged.
  const maxBounds = new KeyMap(() => new RankBound());
  const clockBounds = new Map<string, Bound>();
  // node NUL entity → element → rank bound.
  const setBounds = new Map<string, Map<number, RankBound>>();
  // Per node, every acknowledged write's completion position and timestamp, in completion order.
  const ackedOn = new Map<string, { pos: number[]; ts: string[] }>();
  // Watch stream process → history position of its ok watch-open (when the node had registered it).
  const streamOpen = new Map<number | string, number>();
  // Acknowledged deletes: entity NUL component → the largest tombstone ts and its op.
  const ackedDeletes = new Map<string, { ts: string; pos: number }>();
  let deletesAcked = 0;
  let counterReads = 0;

  const clockOf = (node: string): Bound => {
    let b = clockBounds.get(node);
    if (!b) clockBounds.set(node, (b = new Bound()));
    return b;
  };
  const bound = <K, B>(map: Map<K, B>, k: K, make: () => B): B => {
    let b = map.get(k);
    if (!b) map.set(k, (b = make()));
    return b;
  };

  /** Reports an op that is older than the bound N had established; returns nothing. */
  const violation = (
    node: string,
    op: Op,
    invokePos: number,
    srcPos: number,
    kind: 'read' | 'write' | 'final',
    what: string,
    boundTomb: boolean,
    shownLive: boolean,
  ): void => {
    const src = history[srcPos];
    const killed = kills.between(node, src.time, history[invokePos].time);
    const ops = [op.index, src.index];
    const guarantee =
      kind === 'write'
        ? WRITES.has(src.f)
          ? 'monotonic-writes'
          : 'writes-follow-reads'
        : WRITES.has(src.f)
          ? 'read-your-writes'
          : 'monotonic-reads';
    // A kill in between explains it first: whatever came back (an old value over a tombstone, too), the
    // crash took back what the node had shown.
    if (killed !== undefined) {
      durable.add({ type: 'lost-after-kill', ops, node, killedAt: killed, message: `${what}: ${node} had ${WRITES.has(src.f) ? 'acknowledged' : 'shown'} more (op ${src.index}) before it was killed, and the crash took it back.` });
    } else if (boundTomb && shownLive) {
      deletes.add({ type: 'resurrected', ops, node, message: `${what}, though ${node} had ${WRITES.has(src.f) ? 'acknowledged a delete' : 'shown a tombstone'} with a later timestamp before (op ${src.index}).` });
    } else {
      session.add({ type: kind === 'write' ? 'write-not-after' : 'stale-read', guarantee, ops, node, message: `${what}; ${node} had ${WRITES.has(src.f) ? 'acknowledged' : 'shown'} a later timestamp before (op ${src.index}, ${guarantee}).` });
    }
  };

  // Watch streams by node, in the order they opened: the first of each node, and those followed by another.
  const firstStream = new Set<number | string>();
  const followed = new Set<number | string>();
  const lastStreamOf = new Map<string, number | string>();
  const index = opIndex(history);
  for (const i of index.select(['watch-open'], ['ok'])) {
    const op = history[i];
    if (op.f !== 'watch-open' || op.type !== 'ok' || op.node === undefined) continue;
    const previous = lastStreamOf.get(op.node);
    if (previous === undefined) firstStream.add(op.process);
    else followed.add(previous);
    lastStreamOf.set(op.node, op.process);
  }

  // The ops this pass judges, in history order (every branch below names its f).
  const judgedOps = index.select(['read-counter', 'read', 'read-max', ...WRITES, 'watch-open', 'watch-events', 'read-set'], ['ok']);
  for (let p = 0; p < judgedOps.length; p++) {
    const c = judgedOps[p];
    const op = history[c];
    if (op.type !== 'ok' || op.node === undefined || op.process === 'nemesis') continue;
    const node = op.node;
    const i = invocation[c];
    if (i < 0) continue;
    const f = op.f;
    const v = valueOf<Record<string, unknown>>(op);
    if (f === 'read-counter') {
      counterReads++;
      continue;
    }
    if (f === 'read' || f === 'read-max') {
      if (typeof v.entity !== 'string' || typeof v.component !== 'string') continue;
      const ts = typeof v.ts === 'string' ? v.ts : null;
      if (f === 'read') {
        judged.session++;
        const kb = keyBounds.get(node, keys.opKey[c]);
        const k = kb.before(i);
        if (k >= 0 && (ts === null || ts < kb.ts[k])) {
          const shown = ts === null ? 'nothing' : v.deleted === true ? `a tombstone (ts ${ts})` : `${JSON.stringify(v.value)} (ts ${ts})`;
          violation(node, op, i, kb.src[k], 'read', `Read of ${v.entity}/${v.component} on ${node} returned ${shown}, older than ts ${kb.ts[k]}`, kb.tomb[k], ts !== null && v.deleted !== true);
        }
        if (ts !== null) kb.push(c, ts, c, v.deleted === true);
      }
      if (ts !== null) clockOf(node).push(c, ts, c, false);
      if (f === 'read-max') {
        // A max-wins value never goes down on a node (the max-wins checker's rule); here only a fall
        // across a kill of that node is judged, as a value the crash took back.
        const value = typeof v.value === 'number' ? v.value : -Infinity;
        const mb = maxBounds.get(node, keys.opKey[c]);
        const k = mb.before(i);
        if (k >= 0 && value < mb.rank[k]) {
          const killed = kills.between(node, history[mb.src[k]].time, history[i].time);
          if (killed !== undefined) {
            durable.add({
              type: 'lost-after-kill',
              ops: [op.index, history[mb.src[k]].index],
              node,
              killedAt: killed,
              message: `Read of max-wins ${v.entity}/${v.component} on ${node} returned ${value === -Infinity ? 'nothing' : value}, below the ${mb.rank[k]} ${node} had shown (op ${history[mb.src[k]].index}) before it was killed: the crash took it back.`,
            });
          }
        }
        if (value !== -Infinity) mb.push(c, value, c);
      }
    } else if (WRITES.has(f)) {
      const ts = typeof v.ts === 'string' ? v.ts : undefined;
      if (ts === undefined) continue;
      const requestId = typeof v.requestId === 'string' ? v.requestId : '';
      const tomb = TOMBSTONES.has(f);
      if (v.duplicate !== true) {
        judged.session++;
        const cb = clockOf(node);
        const k = cb.before(i);
        if (k >= 0 && ts <= cb.ts[k]) {
          violation(node, op, i, cb.src[k], 'write', `${f} on ${node} was acknowledged with ts ${ts}, not after ts ${cb.ts[k]}`, false, false);
        }
        // Unique timestamps, without a map of every one: a node stamps its writes with its own id, so two
        // nodes never share one, and a write that completed before this one was invoked is already below
        // it (write-not-after); only the writes that completed while this one was in flight are left.
        if (!(ts.endsWith(node) && ts.charCodeAt(ts.length - node.length - 1) === 58)) {
          session.add({
            type: 'foreign-timestamp',
            ops: [op.index],
            node,
            ts,
            message: `${f} on ${node} was acknowledged with timestamp ${ts}, which is not ${node}'s: a node stamps its own writes.`,
          });
        }
        let acked = ackedOn.get(node);
        if (!acked) ackedOn.set(node, (acked = { pos: [], ts: [] }));
        let lo = 0;
        for (let hi = acked.pos.length; lo < hi; ) {
          const mid = (lo + hi) >> 1;
          if (acked.pos[mid] <= i) lo = mid + 1;
          else hi = mid;
        }
        for (let j = lo; j < acked.pos.length; j++) {
          if (acked.ts[j] !== ts) continue;
          const ownerPos = acked.pos[j];
          const ownerId = String((history[ownerPos].value as { requestId?: unknown })?.requestId ?? '');
          if (ownerId === requestId) continue;
          session.add({
            type: 'duplicate-timestamp',
            ops: [op.index, history[ownerPos].index],
            node,
            ts,
            message: `Two different requests (${ownerId || 'no id'}, ${requestId || 'no id'}) were acknowledged with the same timestamp ${ts}.`,
          });
        }
        acked.pos.push(c);
        acked.ts.push(ts);
      }
      clockOf(node).push(c, ts, c, false);
      if (f === 'write-max' && typeof v.result === 'number' && typeof v.entity === 'string' && typeof v.component === 'string') {
        maxBounds.get(node, keys.opKey[c]).push(c, v.result, c);
      }
      if (f === 'write' || f === 'delete') {
        if (typeof v.entity === 'string' && typeof v.component === 'string') {
          keyBounds.get(node, keys.opKey[c]).push(c, ts, c, tomb);
          if (tomb) {
            deletesAcked++;
            const dk = v.entity + '\u0000' + v.component;
            const prev = ackedDeletes.get(dk);
            if (!prev || prev.ts < ts) ackedDeletes.set(dk, { ts, pos: c });
          }
        }
      } else if ((f === 'add' || f === 'remove') && typeof v.entity === 'string' && typeof v.element === 'number') {
        if (tomb) deletesAcked++;
        const els = bound(setBounds, node + '\u0000' + v.entity, () => new Map<number, RankBound>());
        bound(els, v.element, () => new RankBound()).push(c, tomb ? 2 : 1, c);
      }
    } else if (f === 'watch-open') {
      streamOpen.set(op.process, c);
    } else if (f === 'watch-events' && Array.isArray(v.events)) {
      // A watch stream is told of every change its node applies after the watcher registered (the ok of
      // watch-open). A change to a state the node had already shown or acknowledged before that means the
      // node no longer had it: the state went back (after a kill: the crash took it back). This needs no
      // client read at the right moment: a value the node lost comes back through anti-entropy as an event.
      const openPos = streamOpen.get(op.process);
      if (openPos === undefined) continue;
      // Only two kinds of stream need their events looked at: one opened after an earlier stream of its
      // node (checked against what the node had shown before), and one followed by a later stream of its
      // node (its events are what that later stream is checked against). A node's only stream needs
      // neither, which is every stream of a run without kills: the cost of events is then nothing.
      const check = !firstStream.has(op.process);
      const record = followed.has(op.process);
      if (!check && !record) continue;
      for (const e of v.events as unknown[][]) {
        if (!Array.isArray(e) || e.length < 7) continue;
        // Indexed, not destructured: array destructuring goes through the iterator protocol, per event.
        const entity = e[1] as string;
        const component = e[2] as string;
        const value = e[3] as string;
        const ts = e[4] as string;
        const kind = e[5];
        const deleted = e[6] === true;
        if (typeof entity !== 'string' || typeof component !== 'string' || typeof ts !== 'string') continue;
        if (kind === 'lww') {
          judged.session++;
          const kb = keyBounds.get(node, keys.id(entity, component));
          const k = check ? kb.before(openPos) : -1;
          if (k >= 0 && ts <= kb.ts[k]) {
            const shown = deleted ? `a tombstone (ts ${ts})` : `${JSON.stringify(value)} (ts ${ts})`;
            violation(node, op, openPos, kb.src[k], 'read', `Watch stream ${String(v.stream)} on ${node} was sent a change of ${entity}/${component} to ${shown}, no newer than ts ${kb.ts[k]}, which ${node} had before the stream opened`, kb.tomb[k], !deleted);
          }
          if (record) kb.push(c, ts, c, deleted === true);
        } else if (kind === 'max') {
          judged.session++;
          const n = Number(value);
          const mb = maxBounds.get(node, keys.id(entity, component));
          const k = check ? mb.before(openPos) : -1;
          if (k >= 0 && n < mb.rank[k]) {
            const killed = kills.between(node, history[mb.src[k]].time, history[openPos].time);
            const message = `Watch stream ${String(v.stream)} on ${node} was sent max-wins ${entity}/${component} = ${n}, below the ${mb.rank[k]} ${node} had shown (op ${history[mb.src[k]].index}) before the stream opened`;
            if (killed !== undefined) durable.add({ type: 'lost-after-kill', ops: [op.index, history[mb.src[k]].index], node, killedAt: killed, message: `${message}: the crash took it back.` });
            else session.add({ type: 'stale-read', guarantee: 'monotonic-reads', ops: [op.index, history[mb.src[k]].index], node, message: `${message}.` });
          }
          if (record && Number.isFinite(n)) mb.push(c, n, c);
        }
      }
    } else if (f === 'read-set') {
      if (typeof v.entity !== 'string' || !Array.isArray(v.elements)) continue;
      const removed = Array.isArray(v.removed) ? (v.removed as number[]) : [];
      checkSetRead(node, op, i, v.entity, new Set(v.elements as number[]), new Set(removed), `Read of set ${v.entity} on ${node}`);
      const els = bound(setBounds, node + '\u0000' + v.entity, () => new Map<number, RankBound>());
      for (const x of v.elements as number[]) bound(els, x, () => new RankBound()).push(c, 1, c);
      for (const x of removed) bound(els, x, () => new RankBound()).push(c, 2, c);
      // The set's newest element timestamp is one the node's clock has seen: its later writes sort after it.
      if (typeof v.maxTs === 'string') clockOf(node).push(c, v.maxTs, c, false);
    }
  }

  /** Compares a read of a set with the ranks its node had established for every element it knew. */
  function checkSetRead(node: string, op: Op, invokePos: number, entity: string, live: Set<number>, removed: Set<number>, what: string): void {
    const els = setBounds.get(node + '\u0000' + entity);
    if (!els) return;
    judged.session++;
    for (const [x, rb] of els) {
      const k = rb.before(invokePos);
      if (k < 0) continue;
      const seen = removed.has(x) ? 2 : live.has(x) ? 1 : 0;
      if (seen >= rb.rank[k]) continue;
      const shown = seen === 1 ? 'live' : 'absent';
      const wanted = rb.rank[k] === 2 ? 'removed' : 'present';
      violation(node, op, invokePos, rb.src[k], 'read', `${what} shows element ${x} ${shown}, though ${node} had it ${wanted} before`, rb.rank[k] === 2, seen === 1);
    }
  }

  // The final reads: one more read of every key each node had established a bound for.
  const fr = finalReads(history, ctx);
  for (const view of fr.view.values()) {
    const finalOp = history[view.pos];
    const inv = invocation[view.pos] >= 0 ? invocation[view.pos] : view.pos;
    const prefix = view.node + '\u0000';
    for (const [key, kb] of keyBounds.entries(view.node)) {
      const at = kb.before(inv);
      if (at < 0) continue;
      judged.session++;
      const entity = keys.entity[key];
      const component = keys.component[key];
      const fc = view.state[entity]?.components?.[component];
      if (fc && fc.ts >= kb.ts[at]) continue;
      const shown = fc ? (fc.deleted ? `a tombstone (ts ${fc.ts})` : `${JSON.stringify(fc.value)} (ts ${fc.ts})`) : 'nothing';
      violation(view.node, finalOp, inv, kb.src[at], 'final', `Final read of ${entity}/${component} on ${view.node} holds ${shown}, older than ts ${kb.ts[at]}`, kb.tomb[at], fc !== undefined && fc.deleted !== true);
    }
    for (const [k, els] of setBounds) {
      if (!k.startsWith(prefix)) continue;
      const entity = k.slice(prefix.length);
      const live = new Set<number>();
      const removed = new Set<number>();
      for (const [name, fc] of Object.entries(view.state[entity]?.components ?? {})) {
        const m = /^\D*?(-?\d+)$/.exec(name);
        if (m) (fc.deleted ? removed : live).add(Number(m[1]));
      }
      if (els.size > 0) checkSetRead(view.node, finalOp, inv, entity, live, removed, `Final read of set ${entity} on ${view.node}`);
    }
    // A delete acknowledged anywhere must not lose to a value written before it.
    for (const [dk, d] of ackedDeletes) {
      const [entity, component] = dk.split('\u0000');
      judged.deletes++;
      const fc = view.state[entity]?.components?.[component];
      if (fc && (fc.deleted || fc.ts >= d.ts)) continue;
      deletes.add({
        type: 'resurrected',
        ops: [finalOp.index, history[d.pos].index],
        node: view.node,
        message: `${view.node} ends with ${fc ? `${JSON.stringify(fc.value)} (ts ${fc.ts})` : 'nothing'} in ${entity}/${component}, older than the acknowledged delete with ts ${d.ts}.`,
      });
    }
  }
  judged.durable = judged.session;
  judged.deletes += deletesAcked;

  const result: SessionAnalysis = { session, durable, deletes, judged, deletesAcked, counterReads };
  perCtx.set(key, result);
  return result;
}

function verdict(list: AnomalyList, judged: number, what: string): Pick<CheckResult, 'valid' | 'error'> {
  if (list.count > 0) return { valid: false };
  if (judged === 0) return { valid: 'unknown', error: `no ${what} in the history, so nothing was judged` };
  return { valid: true };
}

/** Session guarantees per node: stale reads, writes not ordered after what the node had seen, duplicate timestamps. */
export const sessionChecker: Checker = (history, ctx) => {
  const a = analyzeSessions(history, ctx);
  return { ...verdict(a.session, a.judged.session, 'acknowledged reads or writes with timestamps'), judged: a.judged.session, ...a.session.summary() };
};

/**
 * Durability of what a node showed: nothing a client read or was acknowledged is taken back by a crash,
 * whether an LWW value, a tombstone, a set element, a max-wins value, or an origin's counter share (the
 * counters checker's `lost-after-kill`).
 */
export const durableReads: Checker = (history, ctx) => {
  const a = analyzeSessions(history, ctx);
  const kills = killWindows(history);
  const shares = a.counterReads > 0 ? counters(history, ctx) : undefined;
  const list = new AnomalyList();
  for (const x of a.durable.items) list.add(x);
  for (const x of shares?.anomalies ?? []) if (x.type === 'lost-after-kill') list.add(x);
  const judged = a.judged.durable + (shares?.judged ?? 0);
  const result = { ...verdict(list, judged, 'acknowledged reads or writes'), judged, kills: kills.count, ...list.summary() };
  // Without a kill nothing could have been taken back; the check ran but proved nothing about crashes.
  return kills.count === 0 && result.valid === true ? { ...result, note: 'no node was killed in this run, so no crash could take anything back' } : result;
};

/** Deletes: no acknowledged delete (or set remove) is undone by a value written before it. */
export const deletesChecker: Checker = (history, ctx) => {
  const a = analyzeSessions(history, ctx);
  return {
    ...verdict(a.deletes, a.deletesAcked, 'acknowledged deletes or removes'),
    judged: a.judged.deletes,
    deletesAcknowledged: a.deletesAcked,
    ...a.deletes.summary(),
  };
};

export type { KillWindows };
