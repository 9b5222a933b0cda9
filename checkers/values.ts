// Values: every LWW value a node shows must be one a client wrote, under the one timestamp it was
// written with. The lww workload writes a distinct value per request (a retry sends the same request id
// and value again), so a value and its HLC identify one application of one write. Judged over every
// observation of an LWW component, whether a client read it, a watch stream was sent it, or a final
// read found it:
//   - `value-mismatch`: the HLC shown is one an acknowledged write or delete was stamped with, but the
//     state is not what that op wrote (another value, a tombstone where a value was written, or a value
//     where it deleted): the store kept the timestamp and lost the content, e.g. a log that replays a
//     tombstone as a value, or a merge that mixes two states.
//   - `phantom-value`: a value no write of that key had sent by the time it was shown.
//   - `applied-twice`: one request's value shown under two HLCs: the write was applied twice, e.g. a
//     retry of a request that had already taken effect, after the node forgot its request id.
// Keys that also take max-wins writes, and values that more than one request wrote, are not judged
// (their values do not identify one write). With no observation to judge the result is `unknown`.
import type { History } from '../harness/history.ts';
import type { CheckResult, Checker } from './types.ts';
import { opIndex } from './history-index.ts';
import { AnomalyList, finalReads, keyIndex, pairing, valueOf } from './util.ts';

interface Written {
  /** The request id that wrote it ('' when several did or none was given: then not judged for twice). */
  rid: string;
  /** Position of the first invocation that sent it. */
  invokePos: number;
  /** The first HLC it was shown or acknowledged with, and the op that showed it. */
  ts?: string;
  tsOp?: number;
}

export const values: Checker = (history: History, ctx): CheckResult => {
  const keys = keyIndex(history);
  const { opTs } = keys;
  const { invocation } = pairing(history);
  const anomalies = new AnomalyList();
  const lwwKeys = new Set<number>();
  const maxKeys = new Set<number>();
  // key id → value → what wrote it.
  const written = new Map<number, Map<string, Written>>();
  // By HLC id: what the first acknowledged op stamped with it wrote (stampedOp -1: none), and the ids
  // in the order they were first acknowledged.
  const tsCount = keys.hlc.str.length;
  const stampedOp = new Int32Array(tsCount).fill(-1);
  const stampedKey = new Int32Array(tsCount);
  const stampedDeleted = new Uint8Array(tsCount);
  const stampedValue: string[] = new Array<string>(tsCount);
  const stampedOrder: number[] = [];
  const index = opIndex(history);
  const mutations = index.select(['write-max', 'read-max', 'write', 'delete']);
  for (let p = 0; p < mutations.length; p++) {
    const i = mutations[p];
    const op = history[i];
    if (op.process === 'nemesis' || op.node === undefined) continue;
    const f = op.f;
    if (f === 'write-max' || f === 'read-max') {
      maxKeys.add(keys.opKey[i]);
      continue;
    }
    if (f !== 'write' && f !== 'delete') continue;
    const key = keys.opKey[i];
    if (key < 0) continue;
    lwwKeys.add(key);
    if (op.type === 'invoke' && f === 'write') {
      const v = valueOf<{ value: unknown; requestId: unknown }>(op);
      if (typeof v.value !== 'string') continue;
      let byValue = written.get(key);
      if (!byValue) written.set(key, (byValue = new Map()));
      const rid = typeof v.requestId === 'string' ? v.requestId : '';
      const w = byValue.get(v.value);
      if (!w) byValue.set(v.value, { rid, invokePos: i });
      else if (w.rid !== rid) w.rid = '';
    } else if (op.type === 'ok' && opTs[i] >= 0 && stampedOp[opTs[i]] < 0) {
      const t = opTs[i];
      const inv = invocation[i] >= 0 ? valueOf<{ value: unknown }>(history[invocation[i]]) : {};
      stampedOp[t] = i;
      stampedKey[t] = key;
      stampedDeleted[t] = f === 'delete' ? 1 : 0;
      stampedValue[t] = f === 'write' && typeof inv.value === 'string' ? inv.value : '';
      stampedOrder.push(t);
    }
  }
  for (const k of maxKeys) lwwKeys.delete(k);

  let judged = 0;
  // Every watch stream is sent every change and the final reads show most of them again: an
  // observation already judged (same key, state and HLC) is counted without judging it again, at one
  // array lookup per repeat. The verdict is the same; each wrong state and HLC is reported once, at its
  // first observation, not once per node that showed it. By HLC id: the last first-seen observation.
  const seenEntity: string[] = new Array<string>(tsCount);
  const seenComponent: string[] = new Array<string>(tsCount);
  const seenValue: (string | null)[] = new Array<string | null>(tsCount);
  const seenState = new Uint8Array(tsCount); // 0: unseen; bit 1: seen, bit 2: deleted, bit 4: judged
  /** False for a repeat (counted if the first was judged); true for a new observation, which the caller judges. */
  const first = (entity: string, component: string, value: string | null, t: number, deleted: boolean): boolean => {
    const state = seenState[t];
    if (state !== 0 && seenEntity[t] === entity && seenComponent[t] === component && seenValue[t] === value && (state & 2) === (deleted ? 2 : 0)) {
      if ((state & 4) !== 0) judged++;
      return false;
    }
    seenEntity[t] = entity;
    seenComponent[t] = component;
    seenValue[t] = value;
    seenState[t] = deleted ? 3 : 1;
    return true;
  };
  const markJudged = (t: number, was: boolean): void => {
    if (was) seenState[t] |= 4;
  };
  const keyName = (k: number) => `${keys.entity[k]}/${keys.component[k]}`;
  /** One observation of key `key` at history position `pos`: a live value or a tombstone, with its HLC (and its id); true if judged. */
  const observe = (key: number, pos: number, value: string | null, ts: string | null, t: number, deleted: boolean, how: string): boolean => {
    if (!lwwKeys.has(key) || ts === null) return false;
    judged++;
    const op = history[pos];
    const where = `${how} on ${op.node}`;
    if (t >= 0 && stampedOp[t] >= 0 && stampedKey[t] === key) {
      const sDeleted = stampedDeleted[t] === 1;
      const sValue = stampedValue[t];
      const sOp = stampedOp[t];
      const same = sDeleted ? deleted || value === null : !deleted && value === sValue;
      if (!same) {
        anomalies.add({
          type: 'value-mismatch',
          ops: [op.index, history[sOp].index],
          node: op.node,
          message: `${where} showed ${keyName(key)} as ${deleted || value === null ? 'a tombstone' : JSON.stringify(value)} at ts ${ts}, but that ts was acknowledged for ${sDeleted ? 'a delete' : `the write of ${JSON.stringify(sValue)}`} (op ${history[sOp].index})`,
        });
      }
    }
    if (deleted || value === null) return true;
    const w = written.get(key)?.get(value);
    if (w === undefined || w.invokePos > pos) {
      anomalies.add({
        type: 'phantom-value',
        ops: [op.index],
        node: op.node,
        message: `${where} showed ${keyName(key)} = ${JSON.stringify(value)} (ts ${ts}), a value no write of that key had sent${w ? ' yet' : ''}`,
      });
      return true;
    }
    if (w.rid === '') return true;
    if (w.ts === undefined) {
      w.ts = ts;
      w.tsOp = pos;
    } else if (w.ts !== ts) {
      anomalies.add({
        type: 'applied-twice',
        ops: [op.index, history[w.tsOp!].index],
        node: op.node,
        message: `${where} showed ${keyName(key)} = ${JSON.stringify(value)} at ts ${ts}, but op ${history[w.tsOp!].index} showed the same write (request ${w.rid}) at ts ${w.ts}: one request applied twice`,
      });
    }
    return true;
  };

  // Acknowledged writes first: an acknowledgement names the HLC its value was applied with.
  const tsStr = keys.hlc.str;
  for (const t of stampedOrder) {
    if (stampedDeleted[t] === 1) continue;
    const w = written.get(stampedKey[t])?.get(stampedValue[t]);
    if (w && w.rid !== '' && w.ts === undefined) {
      w.ts = tsStr[t];
      w.tsOp = stampedOp[t];
    }
  }
  const observations = index.select(['read', 'write', 'watch-events'], ['ok']);
  for (let p = 0; p < observations.length; p++) {
    const c = observations[p];
    const op = history[c];
    if (op.type !== 'ok' || op.node === undefined || op.process === 'nemesis') continue;
    if (op.f === 'read') {
      const v = valueOf<{ value: unknown; ts: unknown; deleted: unknown }>(op);
      const ts = typeof v.ts === 'string' ? v.ts : null;
      const value = typeof v.value === 'string' ? v.value : null;
      const key = keys.opKey[c];
      if (ts === null || !lwwKeys.has(key)) continue;
      const t = opTs[c];
      if (first(keys.entity[key], keys.component[key], value, t, v.deleted === true)) markJudged(t, observe(key, c, value, ts, t, v.deleted === true, `a read (op ${op.index})`));
    } else if (op.f === 'write') {
      // A retry the node recognised returns the original HLC: it must be the one the value was shown with.
      const v = valueOf<{ ts: unknown }>(op);
      const inv = invocation[c] >= 0 ? valueOf<{ value: unknown }>(history[invocation[c]]) : {};
      if (typeof v.ts === 'string' && typeof inv.value === 'string') observe(keys.opKey[c], c, inv.value, v.ts, opTs[c], false, `the acknowledgement of a write (op ${op.index})`);
    } else if (op.f === 'watch-events') {
      const events = valueOf<{ events: unknown }>(op).events;
      if (!Array.isArray(events)) continue;
      const ids = keys.eventTs(c)!;
      for (let j = 0; j < events.length; j++) {
        const e = events[j] as unknown[];
        if (!Array.isArray(e) || e.length < 8 || e[5] === 'max' || e[5] === 'counter') continue;
        const ts = typeof e[4] === 'string' && e[4] !== '' ? e[4] : null;
        if (ts === null) continue;
        const value = e[6] === true ? null : String(e[3]);
        const t = ids[j];
        if (!first(String(e[1]), String(e[2]), value, t, e[6] === true)) continue;
        const key = keys.find(String(e[1]), String(e[2]));
        if (key >= 0) markJudged(t, observe(key, c, value, ts, t, e[6] === true, `a watch event (op ${op.index})`));
      }
    }
  }
  const fr = finalReads(history, ctx);
  for (const read of [...fr.rounds.values()].flatMap((byNode) => [...byNode.values()])) {
    for (const [entity, e] of Object.entries(read.state)) {
      for (const [component, comp] of Object.entries(e.components ?? {})) {
        if (comp.kind === 'max') continue;
        const value = comp.deleted ? null : comp.value;
        if (typeof comp.ts !== 'string') continue;
        const t = keys.hlc.find(comp.ts);
        if (!first(entity, component, value, t, comp.deleted === true)) continue;
        const key = keys.find(entity, component);
        if (key >= 0) markJudged(t, observe(key, read.pos, value, comp.ts, t, comp.deleted === true, 'the final read'));
      }
    }
  }

  if (judged === 0) {
    return { valid: 'unknown', judged: 0, message: 'no LWW value was shown with its timestamp (no read, watch event or final read of an LWW component)', anomalies: [] };
  }
  return {
    valid: anomalies.count === 0,
    judged,
    ...anomalies.summary(),
  };
};
