// Max-wins monotonicity for max components (the lww workload's "threat"): a merge must never lower them.
//
//   - max-decreased: on one node, an ok "read-max" returns less than an ok read-max of the same
//     (entity, component) on that node that had completed before this read was invoked. Reads that
//     overlap in time may see the node at different moments and complete in either order, so only
//     reads strictly in each other's real-time past are compared. Absent (null) counts as lower than
//     any number.
//   - max-lost: a node's final value is below the largest acknowledged "write-max" value (or absent).
//   - unexpected-value: a final value above the largest acknowledged write that no info or unanswered
//     (maybe applied) write carried, or a max component nobody wrote.
// All three are invalid. Final values are strings in the final state and are compared as numbers.
import type { History, ReadMaxValue, WriteMaxValue } from '../harness/history.ts';
import type { CheckContext, CheckResult, Checker } from './types.ts';
import { opIndex } from './history-index.ts';
import { AnomalyList, componentKey, finalReads, finalVerdict, lastBefore, pairing, splitKey, valueOf } from './util.ts';

export interface MaxWinsResult extends CheckResult {
  /** ok read-max ops judged. */
  readonly reads: number;
  /** (entity, component) pairs with at least one write-max. */
  readonly keys: number;
  readonly decreases: number;
}

interface MaxKey {
  maxAcked: number;
  maxAckedPos: number;
  /** Values of info or unanswered write-max ops (they may or may not have been applied). */
  maybe: Set<number>;
}

/** Completed ok reads of one node and key, in completion order, with the running maximum. */
interface ReadLog {
  /** History position of each read's completion (increasing). */
  done: number[];
  /** The largest value among reads 0..k, and the position of the read that returned it. */
  maxValue: number[];
  maxPos: number[];
}

/** Checks that max-wins components never go down on any node and end at the largest acknowledged write. */
export const maxWins = (history: History, ctx: CheckContext): MaxWinsResult => {
  const { completion, invocation } = pairing(history);
  const keys = new Map<string, MaxKey>();
  // Completed ok read-max ops per "node NUL entity NUL component".
  const logs = new Map<string, ReadLog>();
  const anomalies = new AnomalyList();
  let reads = 0;
  let decreases = 0;

  const judgedOps = opIndex(history).select(['write-max', 'read-max'], ['invoke', 'ok']);
  for (let p = 0; p < judgedOps.length; p++) {
    const i = judgedOps[p];
    const op = history[i];
    const f = op.f;
    if (f === 'write-max' && op.type === 'invoke') {
      const v = valueOf<WriteMaxValue>(op);
      if (typeof v.entity !== 'string' || typeof v.component !== 'string' || typeof v.value !== 'number') continue;
      const key = componentKey(v.entity, v.component);
      let mk = keys.get(key);
      if (!mk) keys.set(key, (mk = { maxAcked: -Infinity, maxAckedPos: -1, maybe: new Set() }));
      const c = completion[i];
      const type = c >= 0 ? history[c].type : 'info';
      if (type === 'ok') {
        if (v.value > mk.maxAcked) {
          mk.maxAcked = v.value;
          mk.maxAckedPos = c;
        }
      } else if (type === 'info') mk.maybe.add(v.value);
    } else if (f === 'read-max' && op.type === 'ok' && op.node !== undefined) {
      const v = valueOf<ReadMaxValue>(op);
      if (typeof v.entity !== 'string' || typeof v.component !== 'string') continue;
      reads++;
      const value = typeof v.value === 'number' ? v.value : -Infinity;
      const nk = op.node + '\u0000' + componentKey(v.entity, v.component);
      let log = logs.get(nk);
      if (!log) logs.set(nk, (log = { done: [], maxValue: [], maxPos: [] }));
      // Compare with the largest read that had completed before this one was invoked.
      const invokedAt = invocation[i] >= 0 ? invocation[i] : i;
      const k = lastBefore(log.done, invokedAt);
      if (k >= 0 && value < log.maxValue[k]) {
        decreases++;
        anomalies.add({
          type: 'max-decreased',
          ops: [op.index, history[log.maxPos[k]].index],
          message: `Read of max-wins ${v.entity}/${v.component} on ${op.node} returned ${value === -Infinity ? 'nothing' : value}, below the ${log.maxValue[k]} a read on that node returned before this one began.`,
          entity: v.entity,
          component: v.component,
          node: op.node,
          value: value === -Infinity ? null : value,
          previous: log.maxValue[k],
        });
      }
      const top = log.done.length - 1;
      const keepPrevious = top >= 0 && log.maxValue[top] >= value;
      log.done.push(i);
      log.maxValue.push(keepPrevious ? log.maxValue[top] : value);
      log.maxPos.push(keepPrevious ? log.maxPos[top] : i);
    }
  }

  const fr = finalReads(history, ctx);
  for (const view of fr.view.values()) {
    for (const [key, mk] of keys) {
      const [entity, component] = splitKey(key);
      const fc = view.state[entity]?.components?.[component];
      const fv = fc && fc.deleted !== true ? Number(fc.value) : -Infinity;
      const base = { entity, component, node: view.node, final: fc ? fc.value : null, maxAcknowledged: mk.maxAcked === -Infinity ? null : mk.maxAcked };
      if (fv < mk.maxAcked) {
        anomalies.add({
          type: 'max-lost',
          ops: [history[mk.maxAckedPos].index, history[view.pos].index],
          message: `Node ${view.node} ends with ${fc ? fc.value : 'nothing'} in max-wins ${entity}/${component}, below the acknowledged write of ${mk.maxAcked}.`,
          ...base,
        });
      } else if (fv > mk.maxAcked && !mk.maybe.has(fv)) {
        anomalies.add({
          type: 'unexpected-value',
          ops: [history[view.pos].index],
          message: `Node ${view.node} ends with ${fc!.value} in max-wins ${entity}/${component}, above every acknowledged write (${mk.maxAcked}) and carried by no possibly-applied write.`,
          ...base,
        });
      }
    }
    for (const [entity, fe] of Object.entries(view.state)) {
      for (const [component, fc] of Object.entries(fe.components ?? {})) {
        if (fc.kind !== 'max' || keys.has(componentKey(entity, component))) continue;
        anomalies.add({
          type: 'unexpected-value',
          ops: [history[view.pos].index],
          message: `Node ${view.node} holds max-wins ${entity}/${component} = ${fc.value}, which no write-max touched.`,
          entity,
          component,
          node: view.node,
          final: fc.value,
        });
      }
    }
  }

  return { ...finalVerdict(anomalies, fr), judged: reads + keys.size, reads, keys: keys.size, decreases, ...anomalies.summary() };
};

// Compile-time proof that the typed function is a Checker.
maxWins satisfies Checker;
