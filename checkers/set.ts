// Sets, with Jepsen's set-full semantics per element, plus duplicated and unexpected elements.
//
// Reads are the ok "read-set" ops and the final reads (each node's final state, for every entity, is one
// more read of that entity's set). Reads are ordered by when they were invoked. For element e:
//   known(e)      the earlier of: its add's ok completion, the completion of the first read that saw it.
//   lastPresent   the latest read that contained e.
//   lastAbsent    the latest read invoked after known(e) that did not contain e.
// Outcomes:
//   stable        seen, and no later read (invoked after known) missed it. If some read invoked after
//                 known missed it before that, it is also stale, with stale latency = completion of the
//                 last such read − known, in ms.
//   lost          a read invoked after known(e) missed it and no later read saw it. Invalid.
//   never-read    no read was invoked after known(e) and none saw it (or it was never known).
//   recovered     its add ended info or unanswered, yet a read saw it.
// Beyond Jepsen: duplicated (an element twice in one read) and unexpected (a read holds an element that
// no add ever carried, or whose add definitely failed) are invalid.
// Removes: an element may be absent from every read invoked after its first remove was invoked, so only
// the reads before that judge it here; that a removed element stays removed is the deletes checker's.
// A removed element last missing from a read before its remove is `unresolved`, not lost: no read after
// convergence can show it, so that absence may be replication lag (the session checker still holds
// every node to what it showed).
//
// In the final state a set element is a component that is not a tombstone and whose name is the element
// number, optionally behind a non-digit prefix (e.g. "17" or "el-17").
import type { AddValue, FinalState, History, ReadSetValue } from '../harness/history.ts';
import type { CheckContext, CheckResult, Checker } from './types.ts';
import { AnomalyList, finalReads, finalVerdict, nsToMs, pairing, valueOf } from './util.ts';

export interface SetEntityResult {
  readonly attempted: number;
  readonly acknowledged: number;
  readonly stable: number;
  readonly lost: number;
  readonly neverRead: number;
  readonly stale: number;
  readonly recovered: number;
  /** Removed elements last missing from a read before their remove: not judged (see the module comment). */
  readonly unresolved: number;
  readonly duplicated: number;
  readonly unexpected: number;
  /** Stale latencies in ms: median and max over the stale elements. */
  readonly staleLatencyMs: { readonly p50: number; readonly max: number } | null;
  /** Up to 32 element numbers per outcome, for the report. */
  readonly lostElements: readonly number[];
  readonly staleElements: readonly number[];
  readonly neverReadElements: readonly number[];
}

export interface SetResult extends CheckResult {
  readonly entities: Readonly<Record<string, SetEntityResult>>;
  readonly reads: number;
  readonly lost: number;
  readonly stale: number;
}

interface Element {
  addPos: number;
  /** 'ok' | 'info' | 'fail' | 'none' (unanswered). */
  outcome: string;
  knownTime: number;
  knownPos: number;
  /** Indexes (into the entity's read list, ascending) of reads that contained the element. */
  seenIn: number[];
  /** Invoke time of the first remove of this element (any outcome), or Infinity: reads after it are not judged here. */
  removedFrom: number;
}

interface SetRead {
  invokeTime: number;
  completeTime: number;
  pos: number;
  elements: readonly number[];
}

const ELEMENT_NAME = /^\D*?(-?\d+)$/;

/** The elements of one entity in a final state (non-tombstone components named by an integer). */
export function finalSetElements(state: FinalState, entity: string): number[] {
  const out: number[] = [];
  const comps = state[entity]?.components;
  if (!comps) return out;
  for (const [name, c] of Object.entries(comps)) {
    if (c.deleted === true) continue;
    const m = ELEMENT_NAME.exec(name);
    if (m) out.push(Number(m[1]));
  }
  return out;
}

function firstAfter(reads: readonly SetRead[], time: number): number {
  let lo = 0;
  let hi = reads.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (reads[mid].invokeTime > time) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Judges every element of every set entity; see the module comment for the outcome definitions. */
export const setChecker = (history: History, ctx: CheckContext): SetResult => {
  const { completion } = pairing(history);
  const elements = new Map<string, Map<number, Element>>();
  const reads = new Map<string, SetRead[]>();
  const anomalies = new AnomalyList();
  const entityOf = (name: string): Map<number, Element> => {
    let m = elements.get(name);
    if (!m) {
      elements.set(name, (m = new Map()));
      reads.set(name, []);
    }
    return m;
  };

  for (let i = 0; i < history.length; i++) {
    const op = history[i];
    if (op.type !== 'invoke') continue;
    if (op.f === 'add') {
      const v = valueOf<AddValue>(op);
      if (typeof v.entity !== 'string' || typeof v.element !== 'number') continue;
      const c = completion[i];
      const outcome = c >= 0 ? history[c].type : 'none';
      const els = entityOf(v.entity);
      if (els.has(v.element)) continue;
      els.set(v.element, {
        addPos: i,
        outcome,
        knownTime: outcome === 'ok' ? history[c].time : Infinity,
        knownPos: outcome === 'ok' ? c : -1,
        seenIn: [],
        removedFrom: Infinity,
      });
    } else if (op.f === 'remove') {
      // From its remove on, an element may be absent: whether it stays removed is the deletes checker's.
      const v = valueOf<AddValue>(op);
      const el = typeof v.entity === 'string' && typeof v.element === 'number' ? elements.get(v.entity)?.get(v.element) : undefined;
      if (el && op.time < el.removedFrom) el.removedFrom = op.time;
    } else if (op.f === 'read-set') {
      const c = completion[i];
      if (c < 0 || history[c].type !== 'ok') continue;
      const v = valueOf<ReadSetValue>(history[c]);
      if (typeof v.entity !== 'string' || !Array.isArray(v.elements)) continue;
      entityOf(v.entity);
      reads.get(v.entity)!.push({ invokeTime: op.time, completeTime: history[c].time, pos: c, elements: v.elements });
    }
  }
  // Final reads: one more read of every entity per node. They follow every client op, so appending
  // them keeps each entity's reads in invoke order once sorted.
  const fr = finalReads(history, ctx);
  for (const view of fr.view.values()) {
    // Entities of set ops, and any other entity whose final state holds set-like elements.
    const names = new Set([...elements.keys(), ...Object.keys(view.state).filter((e) => finalSetElements(view.state, e).length > 0)]);
    const inv = pairing(history).invocation[view.pos];
    const invokeTime = inv >= 0 ? history[inv].time : history[view.pos].time;
    for (const name of names) {
      entityOf(name);
      reads.get(name)!.push({ invokeTime, completeTime: history[view.pos].time, pos: view.pos, elements: finalSetElements(view.state, name) });
    }
  }

  const entities: Record<string, SetEntityResult> = {};
  let totalLost = 0;
  let totalStale = 0;
  let totalReads = 0;
  for (const [name, els] of elements) {
    const rs = reads.get(name)!;
    rs.sort((a, b) => a.invokeTime - b.invokeTime || a.pos - b.pos);
    totalReads += rs.length;
    let duplicated = 0;
    let unexpected = 0;
    const seenInRead = new Set<number>();
    for (let r = 0; r < rs.length; r++) {
      const read = rs[r];
      seenInRead.clear();
      for (const x of read.elements) {
        if (seenInRead.has(x)) {
          duplicated++;
          anomalies.add({
            type: 'duplicated',
            ops: [history[read.pos].index],
            message: `Read of set ${name} returned element ${x} more than once.`,
            entity: name,
            element: x,
          });
          continue;
        }
        seenInRead.add(x);
        const el = els.get(x);
        if (!el || el.outcome === 'fail') {
          unexpected++;
          anomalies.add({
            type: 'unexpected',
            ops: el ? [history[read.pos].index, history[el.addPos].index] : [history[read.pos].index],
            message: el
              ? `Read of set ${name} returned element ${x}, whose add definitely failed.`
              : `Read of set ${name} returned element ${x}, which no add carried.`,
            entity: name,
            element: x,
          });
          continue;
        }
        el.seenIn.push(r);
        if (read.completeTime < el.knownTime) {
          el.knownTime = read.completeTime;
          el.knownPos = read.pos;
        }
      }
    }

    let acknowledged = 0, stable = 0, lost = 0, neverRead = 0, stale = 0, recovered = 0, unresolved = 0;
    const staleLatencies: number[] = [];
    const lostElements: number[] = [];
    const staleElements: number[] = [];
    const neverReadElements: number[] = [];
    for (const [x, el] of els) {
      if (el.outcome === 'fail') continue;
      if (el.outcome === 'ok') acknowledged++;
      else if (el.seenIn.length > 0) recovered++;
      if (el.knownTime === Infinity) {
        neverRead++;
        if (neverReadElements.length < 32) neverReadElements.push(x);
        continue;
      }
      const start = firstAfter(rs, el.knownTime);
      // Only reads invoked before the element's remove (if any) are judged.
      const end = el.removedFrom === Infinity ? rs.length : firstAfter(rs, el.removedFrom - 1);
      // The latest read invoked after known that missed x: walk back from the last judged read while the
      // element's own (ascending) list of reads says it was present.
      let lastAbsent = -1;
      let j = el.seenIn.length - 1;
      while (j >= 0 && el.seenIn[j] >= end) j--;
      const lastSeen = j;
      for (let r = end - 1; r >= start; r--) {
        if (j >= 0 && el.seenIn[j] === r) {
          j--;
          continue;
        }
        lastAbsent = r;
        break;
      }
      const lastPresent = lastSeen >= 0 ? el.seenIn[lastSeen] : -1;
      if (lastAbsent >= 0 && lastPresent < lastAbsent && el.removedFrom !== Infinity) {
        // Removed before the reads that could settle it (the final reads come after the remove): missing
        // from a read then is replication lag as much as loss, so it proves nothing either way.
        unresolved++;
      } else if (lastAbsent >= 0 && lastPresent < lastAbsent) {
        lost++;
        if (lostElements.length < 32) lostElements.push(x);
        const ops = [history[rs[lastAbsent].pos].index, history[el.addPos].index];
        if (lastPresent >= 0) ops.push(history[rs[lastPresent].pos].index);
        anomalies.add({
          type: 'lost',
          ops,
          message: `Element ${x} of set ${name} was ${el.outcome === 'ok' ? 'acknowledged' : 'seen'}, then missing from a later read and never seen again.`,
          entity: name,
          element: x,
          add: el.outcome,
        });
      } else if (lastPresent >= 0) {
        stable++;
        if (lastAbsent >= 0) {
          stale++;
          staleLatencies.push(nsToMs(rs[lastAbsent].completeTime - el.knownTime));
          if (staleElements.length < 32) staleElements.push(x);
        }
      } else {
        neverRead++;
        if (neverReadElements.length < 32) neverReadElements.push(x);
      }
    }
    staleLatencies.sort((a, b) => a - b);
    totalLost += lost;
    totalStale += stale;
    entities[name] = {
      attempted: els.size,
      acknowledged,
      stable,
      lost,
      neverRead,
      stale,
      recovered,
      unresolved,
      duplicated,
      unexpected,
      staleLatencyMs: staleLatencies.length > 0
        ? { p50: staleLatencies[Math.ceil(staleLatencies.length / 2) - 1], max: staleLatencies[staleLatencies.length - 1] }
        : null,
      lostElements,
      staleElements,
      neverReadElements,
    };
  }

  let judged = 0;
  for (const e of Object.values(entities)) judged += e.attempted;
  return { ...finalVerdict(anomalies, fr), judged, entities, reads: totalReads, lost: totalLost, stale: totalStale, ...anomalies.summary() };
};

// Compile-time proof that the typed function is a Checker.
setChecker satisfies Checker;
