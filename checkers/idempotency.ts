// Idempotency: a request id takes effect at most once, whatever the workload.
//
// Counters ("incr"): attempts of one request share its requestId. A request is acknowledged when any
// attempt ended ok, maybe when none did but one ended info or went unanswered, and not applied when
// every attempt failed. Each node's final counter must lie in
//   [Σ acknowledged deltas + Σ negative maybe deltas, Σ acknowledged deltas + Σ positive maybe deltas];
// above → "double-applied" (naming the retried requests, those with more than one attempt, and their
// ops), below → "lost-increment". A counter nobody incremented must be 0 or absent.
//
// Writes, deletes and set adds and removes: an acknowledged request's effect carries the HLC it was
// acknowledged with. If the same request is acknowledged twice with different timestamps, or its value
// (a write's unique value, a set element) shows up in an ok read or a final state with a different
// timestamp, it was applied twice → "double-applied". All anomalies here are invalid. A history with no
// request ids at all is `unknown`: nothing was judged.
import type { AddValue, History, IncrValue, ReadValue, WriteValue } from '../harness/history.ts';
import type { CheckContext, CheckResult, Checker } from './types.ts';
import { opIndex } from './history-index.ts';
import { AnomalyList, finalReads, finalVerdict, pairing, PairMap, valueOf } from './util.ts';

export interface CounterResult {
  readonly requests: number;
  readonly acknowledged: number;
  readonly maybe: number;
  readonly retried: number;
  /** The allowed range of the final value. */
  readonly lower: number;
  readonly upper: number;
  /** Final value per node. */
  readonly final: Readonly<Record<string, number | null>>;
}

export interface IdempotencyResult extends CheckResult {
  /** "entity/counter" → bounds and final values. */
  readonly counters: Readonly<Record<string, CounterResult>>;
  /** Acknowledged writes and adds whose timestamp was cross-checked. */
  readonly effectsChecked: number;
}

interface Request {
  delta: number;
  /** History positions of every attempt's invoke, completion (or -1). */
  invokes: number[];
  completions: number[];
  acked: boolean;
  maybe: boolean;
}

interface Effect {
  requestId: string;
  ts: string;
  pos: number;
}

/** Checks counters against the acknowledged range and that no write or add was applied twice. */
export const idempotency = (history: History, ctx: CheckContext): IdempotencyResult => {
  const { completion } = pairing(history);
  const anomalies = new AnomalyList();
  // "entity NUL counter" → requestId → request.
  const counters = new PairMap<Map<string, Request>>();
  // Acknowledged effects: "entity NUL component NUL value" for writes, "entity NUL element" for adds.
  // Acknowledged effects: (entity, component) → value → effect for writes; entity → element → effect for adds.
  const writeEffects = new PairMap<Map<string, Effect>>();
  const addEffects = new Map<string, Map<number, Effect>>();
  // Deletes and removes: request id → effect.
  const tombstoneEffects = new Map<string, Effect>();
  let effectsChecked = 0;

  // Records one acknowledged effect; a second acknowledgement with another timestamp is a double application.
  const recordEffect = <K>(effects: Map<K, Effect>, key: K, requestId: string, ts: string, pos: number): void => {
    effectsChecked++;
    const prev = effects.get(key);
    if (!prev) {
      effects.set(key, { requestId, ts, pos });
    } else if (prev.ts !== ts) {
      const v = history[pos].value as Record<string, unknown>;
      const f = history[pos].f;
      const what =
        f === 'add'
          ? `Add of ${String(v.element)} to set ${String(v.entity)}`
          : f === 'remove'
            ? `Remove of ${String(v.element)} from set ${String(v.entity)}`
            : f === 'delete'
              ? `Delete of ${String(v.entity)}/${String(v.component)}`
              : `Write of ${JSON.stringify(v.value)} to ${String(v.entity)}/${String(v.component)}`;
      anomalies.add({
        type: 'double-applied',
        ops: [history[pos].index, history[prev.pos].index],
        message: `${what} was acknowledged twice with different timestamps (${prev.ts}, ${ts}): request ${requestId} took effect twice.`,
        requestIds: [requestId],
        timestamps: [prev.ts, ts],
      });
    }
  };

  const judgedOps = opIndex(history).select(['read', 'incr', 'write', 'add', 'delete', 'remove'], ['invoke', 'ok']);
  for (let p = 0; p < judgedOps.length; p++) {
    const i = judgedOps[p];
    const op = history[i];
    const f = op.f;
    // Reads are judged at their completion; writes and adds are recorded at their invoke (with the
    // timestamp of their completion), so every effect a read could see is already recorded.
    if (f === 'read' && op.type === 'ok') {
      const v = valueOf<ReadValue>(op);
      if (typeof v.entity !== 'string' || typeof v.component !== 'string' || typeof v.value !== 'string' || typeof v.ts !== 'string') continue;
      const e = writeEffects.get(v.entity, v.component)?.get(v.value);
      if (e && e.ts !== v.ts) {
        anomalies.add({
          type: 'double-applied',
          ops: [op.index, history[e.pos].index],
          message: `Read of ${v.entity}/${v.component} returned ${JSON.stringify(v.value)} with ts ${v.ts}, but its write (request ${e.requestId}) was acknowledged with ts ${e.ts}: it took effect twice.`,
          requestIds: [e.requestId],
          timestamps: [e.ts, v.ts],
        });
      }
      continue;
    }
    if (op.type !== 'invoke') continue;
    if (f === 'incr') {
      const v = valueOf<IncrValue>(op);
      if (typeof v.entity !== 'string' || typeof v.counter !== 'string' || typeof v.requestId !== 'string' || typeof v.delta !== 'number') continue;
      let reqs = counters.get(v.entity, v.counter);
      if (!reqs) counters.set(v.entity, v.counter, (reqs = new Map()));
      let req = reqs.get(v.requestId);
      if (!req) reqs.set(v.requestId, (req = { delta: v.delta, invokes: [], completions: [], acked: false, maybe: false }));
      const c = completion[i];
      req.invokes.push(i);
      req.completions.push(c);
      const type = c >= 0 ? history[c].type : 'info';
      if (type === 'ok') req.acked = true;
      else if (type === 'info') req.maybe = true;
    } else if (f === 'write' || f === 'add' || f === 'delete' || f === 'remove') {
      const c = completion[i];
      if (c < 0 || history[c].type !== 'ok') continue;
      if (f === 'delete' || f === 'remove') {
        // A tombstone carries no unique value; its request id identifies it.
        const v = valueOf<{ requestId: string; ts: string }>(history[c]);
        if (typeof v.requestId !== 'string' || v.requestId === '' || typeof v.ts !== 'string') continue;
        recordEffect(tombstoneEffects, v.requestId, v.requestId, v.ts, c);
      } else if (f === 'write') {
        const v = valueOf<WriteValue>(history[c]);
        if (typeof v.entity !== 'string' || typeof v.component !== 'string' || typeof v.value !== 'string' || typeof v.ts !== 'string') continue;
        let byValue = writeEffects.get(v.entity, v.component);
        if (!byValue) writeEffects.set(v.entity, v.component, (byValue = new Map()));
        recordEffect(byValue, v.value, String(v.requestId), v.ts, c);
      } else {
        const v = valueOf<AddValue>(history[c]);
        if (typeof v.entity !== 'string' || typeof v.element !== 'number' || typeof v.ts !== 'string') continue;
        let byElement = addEffects.get(v.entity);
        if (!byElement) addEffects.set(v.entity, (byElement = new Map()));
        recordEffect(byElement, v.element, String(v.requestId), v.ts, c);
      }
    }
  }

  const fr = finalReads(history, ctx);
  const views = [...fr.view.values()];
  // Final states: acknowledged writes' values and adds' elements must carry their acknowledged ts.
  if (writeEffects.size > 0 || addEffects.size > 0) {
    for (const view of views) {
      for (const [entity, fe] of Object.entries(view.state)) {
        for (const [component, fc] of Object.entries(fe.components ?? {})) {
          if (fc.deleted === true || fc.kind === 'max') continue;
          let e = writeEffects.get(entity, component)?.get(fc.value);
          if (!e) {
            const m = /^\D*?(-?\d+)$/.exec(component);
            if (m) e = addEffects.get(entity)?.get(Number(m[1]));
          }
          if (!e || e.ts === fc.ts) continue;
          anomalies.add({
            type: 'double-applied',
            ops: [history[view.pos].index, history[e.pos].index],
            message: `Node ${view.node} holds ${entity}/${component} = ${JSON.stringify(fc.value)} with ts ${fc.ts}, but request ${e.requestId} was acknowledged with ts ${e.ts}: it took effect twice.`,
            requestIds: [e.requestId],
            node: view.node,
            timestamps: [e.ts, fc.ts],
          });
        }
      }
    }
  }

  const counterResults: Record<string, CounterResult> = {};
  for (const [entity, counter, reqs] of counters.entries()) {
    let lower = 0, upper = 0, acknowledged = 0, maybe = 0, retried = 0;
    for (const req of reqs.values()) {
      if (req.invokes.length > 1) retried++;
      if (req.acked) {
        acknowledged++;
        lower += req.delta;
        upper += req.delta;
      } else if (req.maybe) {
        maybe++;
        if (req.delta < 0) lower += req.delta;
        else upper += req.delta;
      }
    }
    const final: Record<string, number | null> = {};
    for (const view of views) {
      const fv = view.state[entity]?.counters?.[counter];
      final[view.node] = fv ?? null;
      const value = fv ?? 0;
      if (value >= lower && value <= upper) continue;
      const retriedReqs = [...reqs.entries()].filter(([, r]) => r.invokes.length > 1);
      const opsOf = (r: Request): number[] => [...r.invokes, ...r.completions.filter((c) => c >= 0)].sort((a, b) => a - b).map((p) => history[p].index);
      const where = { entity, counter, node: view.node, final: value, lower, upper };
      if (value > upper) {
        anomalies.add({
          type: 'double-applied',
          ops: [history[view.pos].index, ...retriedReqs.flatMap(([, r]) => opsOf(r))],
          message: `Counter ${entity}/${counter} on ${view.node} ends at ${value}, above the most the requests allow (${upper}); retried requests: ${retriedReqs.map(([id]) => id).join(', ') || 'none'}.`,
          ...where,
          requestIds: retriedReqs.map(([id]) => id),
          retried: Object.fromEntries(retriedReqs.map(([id, r]) => [id, opsOf(r)])),
        });
      } else {
        anomalies.add({
          type: 'lost-increment',
          ops: [history[view.pos].index],
          message: `Counter ${entity}/${counter} on ${view.node} ends at ${value}, below the acknowledged increments (${lower}).`,
          ...where,
        });
      }
    }
    counterResults[entity + '/' + counter] = { requests: reqs.size, acknowledged, maybe, retried, lower, upper, final };
  }
  // Counters present in a final state that no incr touched.
  for (const view of views) {
    for (const [entity, fe] of Object.entries(view.state)) {
      for (const [counter, value] of Object.entries(fe.counters ?? {})) {
        if (value === 0 || counters.has(entity, counter)) continue;
        anomalies.add({
          type: 'unexpected-value',
          ops: [history[view.pos].index],
          message: `Node ${view.node} holds counter ${entity}/${counter} = ${value}, which no incr touched.`,
          entity,
          counter,
          node: view.node,
          final: value,
        });
      }
    }
  }

  // Nothing with a request id in the history: nothing was judged.
  const judged = counters.size > 0 || writeEffects.size > 0 || addEffects.size > 0 || tombstoneEffects.size > 0;
  const verdict = judged
    ? finalVerdict(anomalies, fr)
    : anomalies.count > 0
      ? { valid: false as const }
      : { valid: 'unknown' as const, error: 'no increments, writes, adds or deletes with request ids in the history, so nothing was judged' };
  let requests = 0;
  for (const [, , reqs] of counters.entries()) requests += reqs.size;
  return { ...verdict, judged: effectsChecked + requests, counters: counterResults, effectsChecked, ...anomalies.summary() } as IdempotencyResult;
};

// Compile-time proof that the typed function is a Checker.
idempotency satisfies Checker;
