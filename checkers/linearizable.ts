// Linearizability of register and compare-and-set register histories, key by key (P-compositionality:
// a history is linearizable iff each key's sub-history is), with the Wing–Gong search as improved by
// Lowe: ops sit in a doubly-linked list of call and return entries in history order; the search
// linearizes the first call whose model step is legal, lifts it out of the list and restarts from the
// head; reaching a return entry means that op could not be placed in time, so it backtracks. A cache of
// (set of linearized ops, model state) prunes states already explored. The set is tracked as two
// Zobrist hashes (XOR of a random word per op), folded with the state into one 53-bit number; a false
// "seen" needs a 53-bit collision (about 1e-6 for 1e5 cached configurations).
//
// Op values: "read" (ok value = what was read, null when absent), "write" (value written) and "cas"
// ([old, new]). Values may be plain (Jepsen's register), {key, value} (Jepsen's independent keys), or the
// lww workload's {entity, component, value}, which is keyed by entity/component.
// fail ops never happened and are dropped; info (or unanswered) ops may take effect at any point after
// their invoke or never, so they have no return entry and the search may leave them out; info reads
// say nothing and are dropped. A key whose search exceeds ctx.linearizableBudgetMs (default 10 s), or
// that is reached after ctx.linearizableTotalBudgetMs (default 60 s) for all keys, is unknown, never a hang.
//
// On failure, the key reports the op whose return the deepest search branch could not get past: the
// history up to that op's completion is the shortest prefix that cannot be linearized, and the states
// the register could have held just before it are listed.
//
// An AP store is expected to fail this under partitions. With `advisory: true` the result carries
// `advisory: true` and an `expected` sentence; compose() reports it but leaves it out of the merged
// verdict (see types.ts), so a known, documented non-property does not fail the run.
import type { History, Op } from '../harness/history.ts';
import type { CheckContext, CheckResult } from './types.ts';
import { AnomalyList, pairing } from './util.ts';

export type RegisterModel = 'register' | 'cas-register';

export interface LinearizableOptions {
  readonly model: RegisterModel;
  /** Report failures without failing the run (compose() skips advisory results when merging). @default false */
  readonly advisory?: boolean;
  /** The sentence shown with an advisory result. @default "AP store: not linearizable under partitions" */
  readonly expected?: string;
}

export interface KeyResult {
  readonly key: string;
  readonly valid: true | false | 'unknown';
  /** Ops considered for this key (ok and info; fail ops and info reads are dropped). */
  readonly ops: number;
  readonly elapsedMs: number;
  /** Distinct (linearized set, state) configurations explored. */
  readonly configurations: number;
  readonly error?: string;
}

export interface LinearizableResult extends CheckResult {
  readonly model: RegisterModel;
  readonly keys: number;
  readonly linearizableKeys: number;
  readonly failedKeys: readonly string[];
  readonly unknownKeys: readonly string[];
  /** Per-key details for the keys that failed or ran out of budget (at most 100). */
  readonly details: readonly KeyResult[];
  readonly advisory?: true;
  readonly expected?: string;
}

interface KeyOps {
  /** 0 read, 1 write, 2 cas. */
  kind: number[];
  /** Interned argument: read value / written value / cas old. */
  a: number[];
  /** cas new. */
  b: number[];
  ok: boolean[];
  invokePos: number[];
  completePos: number[];
}

const READ = 0;
const WRITE = 1;
const CAS = 2;

function keyAndValue(value: unknown): [string, unknown] {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const v = value as Record<string, unknown>;
    if (typeof v.entity === 'string' && typeof v.component === 'string') return [v.entity + '/' + v.component, v.value];
    if ('key' in v) return [String(v.key), v.value];
  }
  return ['', value];
}

/** A deterministic 32-bit generator for the Zobrist words (Math.random is never used in checkers). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

interface SearchOutcome {
  valid: true | false | 'unknown';
  configurations: number;
  /** Op (within the key) whose return the deepest branch could not pass. */
  breakOp: number;
  statesAtBreak: number[];
}

/** Wing–Gong/Lowe search over one key's ops. */
function search(k: KeyOps, deadline: number): SearchOutcome {
  const n = k.kind.length;
  // Entries: call of op i = 2i, return of op i = 2i+1 (only ok ops have one). head = 2n, tail = 2n+1.
  const head = 2 * n;
  const tail = 2 * n + 1;
  const next = new Int32Array(2 * n + 2).fill(-1);
  const prev = new Int32Array(2 * n + 2).fill(-1);
  const order: number[] = [];
  for (let i = 0; i < n; i++) {
    order.push(2 * i);
    if (k.ok[i]) order.push(2 * i + 1);
  }
  const posOf = (e: number): number => ((e & 1) === 0 ? k.invokePos[e >> 1] : k.completePos[e >> 1]);
  order.sort((x, y) => posOf(x) - posOf(y));
  let last = head;
  for (const e of order) {
    next[last] = e;
    prev[e] = last;
    last = e;
  }
  next[last] = tail;
  prev[tail] = last;

  const rand = mulberry32(0x5eed + n);
  const z1 = new Int32Array(n);
  const z2 = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    z1[i] = rand() | 0;
    z2[i] = rand() | 0;
  }
  let remaining = 0;
  for (let i = 0; i < n; i++) if (k.ok[i]) remaining++;

  const cache = new Set<number>();
  const stackEntry: number[] = [];
  const stackState: number[] = [];
  let state = 0; // interned null: the register starts empty
  let h1 = 0;
  let h2 = 0;
  let entry = next[head];
  let steps = 0;
  let breakOp = -1;
  let breakPos = -1;
  const statesAtBreak = new Set<number>();

  while (remaining > 0) {
    // Out of time, or the cache nears V8's Set size limit (2^24): give up as unknown, never crash or hang.
    if ((++steps & 4095) === 0 && (performance.now() > deadline || cache.size > 12_000_000)) {
      return { valid: 'unknown', configurations: cache.size, breakOp, statesAtBreak: [...statesAtBreak] };
    }
    if ((entry & 1) === 0 && entry !== tail && entry !== head) {
      const op = entry >> 1;
      const kind = k.kind[op];
      let ns = -1;
      if (kind === WRITE) ns = k.a[op];
      else if (kind === READ) ns = state === k.a[op] ? state : -1;
      else if (state === k.a[op]) ns = k.b[op];
      else if (!k.ok[op]) ns = state; // an info cas whose comparison failed changed nothing
      if (ns >= 0) {
        const n1 = h1 ^ z1[op];
        const n2 = h2 ^ z2[op];
        const key = (n1 >>> 0) * 2097152 + (((n2 ^ Math.imul(ns + 1, 0x9e3779b1)) >>> 0) & 0x1fffff);
        if (!cache.has(key)) {
          cache.add(key);
          stackEntry.push(entry);
          stackState.push(state);
          state = ns;
          h1 = n1;
          h2 = n2;
          // Lift the call and its return out of the list (dancing links; restored in reverse order).
          next[prev[entry]] = next[entry];
          prev[next[entry]] = prev[entry];
          if (k.ok[op]) {
            const r = entry + 1;
            next[prev[r]] = next[r];
            prev[next[r]] = prev[r];
            remaining--;
          }
          entry = next[head];
          continue;
        }
      }
      entry = next[entry];
      continue;
    }
    // A return entry (or the end of the list): the op it closes was not linearized in time.
    if (entry !== tail) {
      const pos = posOf(entry);
      if (pos > breakPos) {
        breakPos = pos;
        breakOp = entry >> 1;
        statesAtBreak.clear();
      }
      if (pos === breakPos && statesAtBreak.size < 8) statesAtBreak.add(state);
    }
    if (stackEntry.length === 0) return { valid: false, configurations: cache.size, breakOp, statesAtBreak: [...statesAtBreak] };
    const e = stackEntry.pop()!;
    state = stackState.pop()!;
    const op = e >> 1;
    h1 ^= z1[op];
    h2 ^= z2[op];
    if (k.ok[op]) {
      const r = e + 1;
      next[prev[r]] = r;
      prev[next[r]] = r;
      remaining++;
    }
    next[prev[e]] = e;
    prev[next[e]] = e;
    entry = next[e];
  }
  return { valid: true, configurations: cache.size, breakOp: -1, statesAtBreak: [] };
}

/** Builds a linearizability checker for the given register model. */
/** Ops judged: every op of every key. */
function opsJudged(keys: ReadonlyMap<string, KeyOps>): number {
  let n = 0;
  for (const k of keys.values()) n += k.kind.length;
  return n;
}

export function linearizable(options: LinearizableOptions): (history: History, ctx: CheckContext) => LinearizableResult {
  const { model } = options;
  if (model !== 'register' && model !== 'cas-register') {
    throw new Error(`Unknown model ${JSON.stringify(model)}: expected "register" or "cas-register".`);
  }
  const expected = options.expected ?? 'AP store: not linearizable under partitions';
  return (history: History, ctx: CheckContext): LinearizableResult => {
    const budgetMs = ctx.linearizableBudgetMs ?? 10_000;
    // A run with many keys must not take keys × budget: past the total, remaining keys are unknown.
    const totalBudgetMs = typeof ctx.linearizableTotalBudgetMs === 'number' ? ctx.linearizableTotalBudgetMs : Math.max(60_000, budgetMs);
    const overallDeadline = performance.now() + totalBudgetMs;
    const { completion } = pairing(history);
    // Interned values: id 0 is null (the empty register).
    const values = new Map<string, number>([['null', 0]]);
    const valueNames: string[] = ['null'];
    const intern = (v: unknown): number => {
      const s = v === undefined ? 'null' : JSON.stringify(v);
      let id = values.get(s);
      if (id === undefined) {
        id = valueNames.length;
        values.set(s, id);
        valueNames.push(s);
      }
      return id;
    };
    const keys = new Map<string, KeyOps>();
    // Client ops of other kinds (Porcupine's get/put/append, say) are left out and named in the result.
    const skipped: Record<string, number> = {};
    for (let i = 0; i < history.length; i++) {
      const op: Op = history[i];
      if (op.type !== 'invoke' || op.process === 'nemesis') continue;
      const f = op.f;
      if (f !== 'read' && f !== 'write' && f !== 'cas') {
        if (!f.startsWith('watch-') && f !== 'final-read' && f !== 'stats') skipped[f] = (skipped[f] ?? 0) + 1;
        continue;
      }
      const c = completion[i];
      const type = c >= 0 ? history[c].type : 'info';
      if (type === 'fail') continue;
      if (f === 'read' && type !== 'ok') continue;
      if (f === 'cas' && model === 'register') {
        throw new Error(`Op ${op.index} is a cas, which the "register" model does not have; check with model "cas-register".`);
      }
      const [key, v] = keyAndValue(f === 'read' ? history[c].value : op.value);
      let k = keys.get(key);
      if (!k) keys.set(key, (k = { kind: [], a: [], b: [], ok: [], invokePos: [], completePos: [] }));
      if (f === 'cas') {
        if (!Array.isArray(v) || v.length !== 2) throw new Error(`Op ${op.index}: a cas value must be [old, new], got ${JSON.stringify(v)}.`);
        k.kind.push(CAS);
        k.a.push(intern(v[0]));
        k.b.push(intern(v[1]));
      } else {
        k.kind.push(f === 'read' ? READ : WRITE);
        k.a.push(intern(v));
        k.b.push(0);
      }
      k.ok.push(type === 'ok');
      k.invokePos.push(i);
      k.completePos.push(type === 'ok' ? c : -1);
    }

    const anomalies = new AnomalyList();
    const failedKeys: string[] = [];
    const unknownKeys: string[] = [];
    const details: KeyResult[] = [];
    let linearizableKeys = 0;
    for (const [key, k] of keys) {
      const started = performance.now();
      const out = started > overallDeadline
        ? { valid: 'unknown' as const, configurations: 0, breakOp: -1, statesAtBreak: [] }
        : search(k, Math.min(started + budgetMs, overallDeadline));
      const elapsedMs = Math.round((performance.now() - started) * 1000) / 1000;
      const kr: KeyResult = { key, valid: out.valid, ops: k.kind.length, elapsedMs, configurations: out.configurations };
      if (out.valid === true) {
        linearizableKeys++;
        continue;
      }
      if (out.valid === 'unknown') {
        unknownKeys.push(key);
        if (details.length < 100) {
          details.push({ ...kr, error: `Search for key ${JSON.stringify(key)} exceeded its budget (${budgetMs} ms per key, ${totalBudgetMs} ms in all); raise linearizableBudgetMs / linearizableTotalBudgetMs to decide it.` });
        }
        continue;
      }
      failedKeys.push(key);
      if (details.length < 100) details.push(kr);
      const b = out.breakOp;
      const breakIndex = history[k.completePos[b]].index;
      // Ops of this key whose intervals overlap the breaking op: the candidates for a different order.
      const lo = k.invokePos[b];
      const hi = k.completePos[b];
      const concurrent: number[] = [];
      for (let j = 0; j < k.kind.length && concurrent.length < 20; j++) {
        if (j === b) continue;
        const end = k.completePos[j] < 0 ? Infinity : k.completePos[j];
        if (k.invokePos[j] < hi && end > lo) concurrent.push(history[k.invokePos[j]].index);
      }
      const kinds = ['read', 'write', 'cas'];
      const shown = k.kind[b] === CAS ? `[${valueNames[k.a[b]]}, ${valueNames[k.b[b]]}]` : valueNames[k.a[b]];
      const states = out.statesAtBreak.map((s) => valueNames[s]);
      anomalies.add({
        type: 'non-linearizable',
        ops: [breakIndex, history[k.invokePos[b]].index],
        message: `Key ${JSON.stringify(key)}: no linearization of the history up to op ${breakIndex} exists; the ${kinds[k.kind[b]]} ${shown} cannot be placed when the register could only hold ${states.join(' or ')}.`,
        key,
        op: { f: kinds[k.kind[b]], value: JSON.parse(shown) as unknown },
        prefixEnd: breakIndex,
        prefixLength: breakIndex + 1,
        possibleStates: states.map((s) => JSON.parse(s) as unknown),
        concurrent,
      });
    }

    const valid = anomalies.count > 0 ? false : unknownKeys.length > 0 || keys.size === 0 ? 'unknown' : true;
    const skippedText = Object.entries(skipped).map(([f, n]) => `${n} ${f}`).join(', ');
    return {
      valid,
      ...(keys.size === 0
        ? { error: `no read, write or cas op to judge${skippedText ? `; skipped ops the ${model} model does not know: ${skippedText}` : ' (the history has no client ops)'}` }
        : {}),
      model,
      judged: opsJudged(keys),
      skipped,
      keys: keys.size,
      linearizableKeys,
      failedKeys,
      unknownKeys,
      details,
      ...(options.advisory ? { advisory: true as const, expected } : {}),
      ...anomalies.summary(),
    };
  };
}
