// One pass over a history that every checker shares: each op's name (f) and type as small codes, the
// invoke/completion pairing, the largest op time, and the positions of the ops of given names. It is
// computed once per history and cached by the history array's identity (histories are immutable by
// contract), so the fifteen checkers of a run do not each walk a million op objects to find the few
// thousand they judge: on a history of that size every op object touched is a cache miss, and a scan
// of the typed arrays here costs next to nothing.
import type { History, OpType } from '../harness/history.ts';

/** Invoke/completion links by history position (the array index, which the contract makes equal to op.index). */
export interface Pairing {
  /** completion[i] = position of the completion of the invoke at i, or -1 (none yet, or i is not an invoke). */
  readonly completion: Int32Array;
  /** invocation[i] = position of the invoke completed by the op at i, or -1. */
  readonly invocation: Int32Array;
}

export interface OpIndex {
  readonly pairing: Pairing;
  /** The largest op time (ns), 0 for an empty history (every op time counts, the nemesis's too). */
  readonly endTime: number;
  /** Positions of the nemesis ops, in history order. */
  readonly nemesis: Int32Array;
  /**
   * Positions, in history order, of the ops whose f is one of `fs` and whose type is one of `types`
   * (any type when omitted), from clients and the nemesis alike. Callers keep their own tests on the
   * ops they get: this only spares them the ops they would skip.
   */
  select(fs: readonly string[], types?: readonly OpType[]): Int32Array;
  /** Positions of the client invokes other than the harness's own ops (see util.isWorkloadOp), in history order. */
  readonly workloadInvokes: Int32Array;
  /** Positions of every client invoke (the harness's own ops too), in history order. */
  readonly clientInvokes: Int32Array;
}

const TYPE_CODES: Readonly<Record<string, number>> = { invoke: 0, ok: 1, fail: 2, info: 3 };
const OTHER_TYPE = 4;
const NEMESIS = 8;

const cache = new WeakMap<History, OpIndex>();

export function opIndex(history: History): OpIndex {
  // The length check keeps a caller who appends to the array between two checks from a stale index.
  const hit = cache.get(history);
  if (hit && hit.pairing.completion.length === history.length) return hit;
  const index = build(history);
  cache.set(history, index);
  return index;
}

function build(history: History): OpIndex {
  const n = history.length;
  // Typed arrays, not caches of op objects: their memory is outside the heap the garbage collector marks,
  // and one byte per op where it fits (a history with more than 255 distinct op names gets four).
  let fCode: Uint8Array | Uint32Array = new Uint8Array(n);
  // The type code, plus NEMESIS for the nemesis's ops.
  const typeCode = new Uint8Array(n);
  const codes = new Map<unknown, number>();
  const completion = new Int32Array(n).fill(-1);
  const invocation = new Int32Array(n).fill(-1);
  // Process numbers are small non-negative integers in practice: index an array by them, and fall back
  // to a Map for anything else.
  const dense: number[] = [];
  const sparse = new Map<unknown, number>();
  let endTime = 0;
  let nemesisCount = 0;
  // The last f seen and its code: consecutive ops often share one, which spares a Map lookup.
  let lastF: unknown = undefined;
  let lastCode = -1;
  for (let i = 0; i < n; i++) {
    const op = history[i];
    const f = op.f;
    if (f !== lastF || lastCode < 0) {
      let code = codes.get(f);
      if (code === undefined) codes.set(f, (code = codes.size));
      if (code === 256 && fCode instanceof Uint8Array) fCode = Uint32Array.from(fCode);
      lastF = f;
      lastCode = code;
    }
    fCode[i] = lastCode;
    const type = TYPE_CODES[op.type] ?? OTHER_TYPE;
    typeCode[i] = type;
    if (op.time > endTime) endTime = op.time;
    const p = op.process;
    if (p === 'nemesis') {
      typeCode[i] = type | NEMESIS;
      nemesisCount++;
      continue;
    }
    // Workers' processes are small numbers; the harness's own (final reads, watch streams) are large.
    const small = Number.isInteger(p) && p >= 0 && p < 1 << 16;
    if (type === 0) {
      if (small) {
        while (dense.length <= p) dense.push(-1);
        dense[p] = i;
      } else sparse.set(p, i);
    } else {
      const inv = small ? (p < dense.length ? dense[p] : -1) : (sparse.get(p) ?? -1);
      if (inv >= 0) {
        completion[inv] = i;
        invocation[i] = inv;
        if (small) dense[p] = -1;
        else sparse.delete(p);
      }
    }
  }
  const nemesis = new Int32Array(nemesisCount);
  for (let i = 0, k = 0; i < n; i++) if (typeCode[i] >= NEMESIS) nemesis[k++] = i;

  const codesOf = fCode;
  // Ops per (f code, type code), so that a selection knows its size without a counting pass.
  const TYPES = 16;
  const tally = new Int32Array(codes.size * TYPES);
  for (let i = 0; i < n; i++) tally[codesOf[i] * TYPES + typeCode[i]]++;
  // typeMask has a bit per type code, the nemesis's codes included or not.
  const collect = (fMask: Uint8Array, typeMask: number): Int32Array => {
    let count = 0;
    for (let code = 0; code < codes.size; code++) {
      if (fMask[code] !== 1) continue;
      for (let t = 0; t < TYPES; t++) if (((typeMask >>> t) & 1) === 1) count += tally[code * TYPES + t];
    }
    const out = new Int32Array(count);
    for (let i = 0, k = 0; i < n; i++) if (fMask[codesOf[i]] === 1 && ((typeMask >>> typeCode[i]) & 1) === 1) out[k++] = i;
    return out;
  };
  // Selections are not cached: each checker asks once, and an unreferenced one is freed at the next
  // minor collection, while a cached one would stay for as long as the history does.
  const select = (fs: readonly string[], types?: readonly OpType[]): Int32Array => {
    const fMask = new Uint8Array(codes.size);
    for (const f of fs) {
      const code = codes.get(f);
      if (code !== undefined) fMask[code] = 1;
    }
    let typeMask = 0;
    for (const t of types ?? ['invoke', 'ok', 'fail', 'info']) typeMask |= (1 << TYPE_CODES[t]) | (1 << (TYPE_CODES[t] | NEMESIS));
    if (types === undefined) typeMask |= (1 << OTHER_TYPE) | (1 << (OTHER_TYPE | NEMESIS));
    return collect(fMask, typeMask);
  };
  // The workload's own f names: everything but final reads, stats and watch streams (util.isWorkloadOp).
  const workloadMask = new Uint8Array(codes.size);
  for (const [f, code] of codes) {
    if (typeof f !== 'string') continue;
    if (f !== 'final-read' && f !== 'stats' && !f.startsWith('watch-')) workloadMask[code] = 1;
  }
  const workloadInvokes = collect(workloadMask, 1 << TYPE_CODES.invoke);
  const clientInvokes = collect(new Uint8Array(codes.size).fill(1), 1 << TYPE_CODES.invoke);
  return { pairing: { completion, invocation }, endTime, nemesis, select, workloadInvokes, clientInvokes };
}
