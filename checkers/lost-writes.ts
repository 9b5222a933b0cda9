// Lost writes for LWW components: every acknowledged "write" must be in the final state, or be
// superseded by a write that wins under the store's own rule (the greater HLC; canonical HLC strings
// compare as plain strings in the store's order).
//
// Each acknowledged write W (entity e, component c, timestamp t) is classified against each node's
// final value F of (e, c) in the judged final reads (see util.finalReads):
//   - survived:    F holds W's value with W's timestamp.
//   - lost-update: the same process had read V (value and ts) of (e, c) on its node before invoking W, and
//                  F holds exactly V: W lost to its own causal past, whatever V's timestamp (a greater one
//                  only shows that the node's clock did not move past what it had read). For a request
//                  sent again (a retry, or the re-send of an acknowledged op: same request id), the read
//                  is the one before its first attempt: a later read is not in the write's causal past.
//   - superseded:  otherwise, F.ts > t, or another acknowledged write of (e, c) carries a greater
//                  timestamp than t (then W is explained and that write is judged on its own). Allowed.
//   - lost:        nothing explains W's absence. An info or unacknowledged write cannot explain it either,
//                  unless F holds it, because its timestamp is unknown; that case is F.ts > t above.
// It also reports values that nobody wrote: a final LWW value, or an ok read's value, that no write of
// that (e, c) ever carried ("unexpected-value"). lost, lost-update and unexpected-value are invalid.
// Max-wins components ("write-max") are judged by the max-wins checker, not here.
import type { FinalComponent, History, Process, ReadValue, WriteValue } from '../harness/history.ts';
import type { CheckContext, CheckResult, Checker } from './types.ts';
import { opIndex } from './history-index.ts';
import { AnomalyList, finalReads, finalVerdict, keyIndex, pairing, valueOf, type FinalRead } from './util.ts';

export interface LostWritesResult extends CheckResult {
  /** Acknowledged writes judged. */
  readonly acknowledged: number;
  /** Outcome counts, summed over nodes when the final reads disagree. */
  readonly survived: number;
  readonly superseded: number;
  readonly lost: number;
  readonly lostUpdates: number;
  readonly unexpectedValues: number;
}

interface WriteRecord {
  readonly invokePos: number;
  readonly pos: number;
  readonly value: string;
  readonly ts: string;
  readonly readPos: number;
  readonly readValue: string | null;
  readonly readTs: string | null;
  /** The read before the write returned a tombstone. */
  readonly readDeleted: boolean;
}

interface KeyState {
  acked: WriteRecord[];
  /** Last ok read of this key by each process (for lost updates). */
  lastRead: Map<Process, LastRead>;
  /** Every value any write of this key carried (ok, info, fail or unanswered), first invoke position. */
  values: Map<string, number>;
  /** The HLC order number (util.HlcTable) of the greatest acknowledged write, -Infinity before the first. */
  maxAckedOrd: number;
}

interface LastRead {
  pos: number;
  value: string | null;
  ts: string | null;
  deleted: boolean;
}

/** Checks that no acknowledged LWW write vanished without a winning write to explain it. */
export const lostWrites = (history: History, ctx: CheckContext): LostWritesResult => {
  const { completion } = pairing(history);
  const keyIds = keyIndex(history);
  const { opTs: tsIds, opKey, hlc } = keyIds;
  const order = hlc.order();
  // By key id (util.keyIndex): the same (entity, component) as the ops' own strings, without a map lookup per op.
  const keys: (KeyState | undefined)[] = [];
  const stateOf = (k: number): KeyState => (keys[k] ??= { acked: [], lastRead: new Map(), values: new Map(), maxAckedOrd: -Infinity });
  const anomalies = new AnomalyList();
  // The process's last read of the key before each request id's first attempt (see lost-update).
  const readBeforeFirst = new Map<string, LastRead | undefined>();

  const judgedOps = opIndex(history).select(['write', 'read'], ['invoke', 'ok']);
  for (let p = 0; p < judgedOps.length; p++) {
    const i = judgedOps[p];
    const op = history[i];
    const f = op.f;
    // Writes are taken at their invoke (a value exists from then on), reads at their ok completion: a
    // read may return a write invoked while the read was in flight.
    if (f === 'write' && op.type === 'invoke') {
      const c = completion[i];
      const v = valueOf<WriteValue>(op);
      if (typeof v.entity !== 'string' || typeof v.component !== 'string' || typeof v.value !== 'string') continue;
      const ks = stateOf(opKey[i]);
      if (!ks.values.has(v.value)) ks.values.set(v.value, i);
      // Taken at every attempt, also one that did not succeed, so a later attempt finds its first.
      const rid = (v as { requestId?: unknown }).requestId;
      let prior = ks.lastRead.get(op.process);
      if (typeof rid === 'string' && rid !== '') {
        if (readBeforeFirst.has(rid)) prior = readBeforeFirst.get(rid);
        else readBeforeFirst.set(rid, prior);
      }
      if (c < 0 || history[c].type !== 'ok') continue;
      const ts = valueOf<WriteValue>(history[c]).ts;
      if (typeof ts !== 'string') continue;
      ks.acked.push({
        invokePos: i,
        pos: c,
        value: v.value,
        ts,
        readPos: prior ? prior.pos : -1,
        readValue: prior ? prior.value : null,
        readTs: prior ? prior.ts : null,
        readDeleted: prior ? prior.deleted : false,
      });
      const ord = order[tsIds[c]];
      if (ord > ks.maxAckedOrd) ks.maxAckedOrd = ord;
    } else if (f === 'read' && op.type === 'ok') {
      const c = i;
      const r = valueOf<ReadValue>(op);
      if (typeof r.entity !== 'string' || typeof r.component !== 'string') continue;
      const value = typeof r.value === 'string' ? r.value : null;
      const ks = stateOf(opKey[c]);
      ks.lastRead.set(op.process, { pos: c, value, ts: typeof r.ts === 'string' ? r.ts : null, deleted: r.deleted === true });
      // A read can only return a value whose write was invoked before the read completed.
      if (value !== null && !ks.values.has(value)) {
        anomalies.add({
          type: 'unexpected-value',
          ops: [history[c].index],
          message: `Read of ${r.entity}/${r.component} returned ${JSON.stringify(value)}, which no write of that component carried before the read completed.`,
          entity: r.entity,
          component: r.component,
          value,
        });
      }
    }
  }

  const fr = finalReads(history, ctx);
  let acknowledged = 0;
  let survived = 0;
  let superseded = 0;
  let lost = 0;
  let lostUpdates = 0;
  let unexpected = anomalies.count;
  if (fr.view.size === 0) {
    return {
      valid: 'unknown',
      error: 'No final reads in the history, so lost writes cannot be judged.',
      acknowledged: 0, survived: 0, superseded: 0, lost: 0, lostUpdates: 0, unexpectedValues: unexpected,
      ...anomalies.summary(),
    };
  }
  const views = [...fr.view.values()];

  for (let k = 0; k < keys.length; k++) {
    const ks = keys[k];
    if (ks === undefined) continue;
    const entity = keyIds.entity[k];
    const component = keyIds.component[k];
    acknowledged += ks.acked.length;
    if (ks.acked.length === 0) continue;
    // Nodes usually agree, so judge each distinct final value once and name every node that holds it.
    const groups: { fc: FinalComponent | undefined; views: FinalRead[] }[] = [];
    for (const view of views) {
      const fc: FinalComponent | undefined = view.state[entity]?.components?.[component];
      const same = groups.find((g) => (g.fc === undefined ? fc === undefined : fc !== undefined && g.fc.ts === fc.ts && g.fc.value === fc.value && g.fc.deleted === fc.deleted));
      if (same) same.views.push(view);
      else groups.push({ fc, views: [view] });
    }
    for (const { fc, views: holders } of groups) {
      const weight = holders.length;
      const fts = fc ? fc.ts : '';
      for (const w of ks.acked) {
        if (fc && fc.ts === w.ts && fc.value === w.value && fc.deleted !== true) {
          survived += weight;
          continue;
        }
        // Checked before "superseded": V may carry the greater HLC only because the writing node's clock
        // failed to move past what it had just read, and that is exactly the bug this names.
        // The read may have returned a tombstone (value null, with its ts), which the final state holds as deleted.
        const causalPast = fc !== undefined && w.readPos >= 0 && w.readTs === fc.ts && (fc.deleted === true ? w.readDeleted : w.readValue === fc.value);
        if (!causalPast && (fts > w.ts || ks.maxAckedOrd > order[tsIds[w.pos]])) {
          superseded += weight;
          continue;
        }
        const nodes = holders.map((h) => h.node);
        const finalOps = holders.map((h) => history[h.pos].index);
        const base = {
          entity,
          component,
          nodes,
          written: { value: w.value, ts: w.ts },
          final: fc ? { value: fc.value, ts: fc.ts, deleted: fc.deleted === true } : null,
        };
        if (fc && causalPast) {
          lostUpdates += weight;
          anomalies.add({
            type: 'lost-update',
            ops: [history[w.pos].index, history[w.readPos].index, ...finalOps],
            message: `Write of ${JSON.stringify(w.value)} to ${entity}/${component} (ts ${w.ts}) was acknowledged, but ${nodes.join(', ')} end with ${JSON.stringify(fc.value)} (ts ${fc.ts}), which the same process had read before writing.`,
            ...base,
            read: { value: w.readValue, ts: w.readTs },
          });
        } else {
          lost += weight;
          anomalies.add({
            type: 'lost',
            ops: [history[w.pos].index, ...finalOps],
            message: `Write of ${JSON.stringify(w.value)} to ${entity}/${component} (ts ${w.ts}) was acknowledged, but ${nodes.join(', ')} end with ${fc ? `${JSON.stringify(fc.value)} (ts ${fc.ts})` : 'nothing'} and no write with a greater timestamp exists.`,
            ...base,
          });
        }
      }
    }
  }

  // Final LWW values that no write ever carried, in the entities the lww ops touch (a set's elements, say,
  // are components too, written by adds and judged by the set checker).
  const lwwEntities = new Set<string>();
  for (let k = 0; k < keys.length; k++) if (keys[k] !== undefined) lwwEntities.add(keyIds.entity[k]);
  for (const view of views) {
    for (const [entity, fe] of Object.entries(view.state)) {
      if (!lwwEntities.has(entity)) continue;
      for (const [component, fc] of Object.entries(fe.components ?? {})) {
        if (fc.kind !== 'lww' || fc.deleted === true) continue;
        const id = keyIds.find(entity, component);
        const ks = id >= 0 ? keys[id] : undefined;
        if (ks?.values.has(fc.value)) continue;
        unexpected++;
        anomalies.add({
          type: 'unexpected-value',
          ops: [history[view.pos].index],
          message: `Node ${view.node} ends with ${JSON.stringify(fc.value)} (ts ${fc.ts}) in ${entity}/${component}, a value no write carried.`,
          entity,
          component,
          node: view.node,
          value: fc.value,
          ts: fc.ts,
        });
      }
    }
  }

  return {
    ...finalVerdict(anomalies, fr),
    judged: acknowledged,
    acknowledged,
    survived,
    superseded,
    lost,
    lostUpdates,
    unexpectedValues: unexpected,
    ...anomalies.summary(),
  };
};

// Compile-time proof that the typed function is a Checker.
lostWrites satisfies Checker;
