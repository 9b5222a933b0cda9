// Linearizability of a history against a model (models/: register, cas-register, kv), key by key
// (P-compositionality: a history is linearizable iff each key's sub-history is), with the Wing–Gong
// search as improved by Lowe: ops sit in a doubly-linked list of call and return entries in history
// order; the search linearizes the first call whose model step is legal, lifts it out of the list and
// restarts from the head; reaching a return entry means that op could not be placed in time, so it
// backtracks. A cache of (set of linearized ops, model state) prunes states already explored. The set is
// tracked as two Zobrist hashes (XOR of a random word per op), folded with the state into one 53-bit
// number; a false "seen" needs a 53-bit collision (about 1e-6 for 1e5 cached configurations).
//
// The model is apart from the search (as Porcupine's Model): the search sees states as small integers.
// Each distinct state the model returns is interned once, and each (state, op) step is asked of the
// model once and remembered in a table, so the inner loop is a table lookup whatever the model.
//
// The model decides which ops it judges (models/model.ts): fail ops never happened and are dropped;
// info (or unanswered) ops may take effect at any point after their invoke or never, so they have no
// return entry and the search may leave them out; info reads say nothing and are dropped. Ops the model
// cannot judge (another model's ops, Knossos's unrecorded nil reads) are counted in `skipped` and
// `notJudged`; if nothing at all could be judged the result is unknown, never valid. A key whose search
// exceeds ctx.linearizableBudgetMs (default 10 s), or that is reached after
// ctx.linearizableTotalBudgetMs (default 60 s) for all keys, is unknown, never a hang.
//
// On failure, the key reports the op whose return the deepest search branch could not get past: the
// history up to that op's completion is the shortest prefix that cannot be linearized, and the states
// the key could have held just before it are listed. The search is then replayed (it is deterministic)
// up to that point to record the partial linearization that got furthest: the visual answer, as
// Porcupine's visualizer shows it (`linearization`, ending with the op that cannot be placed).
//
// An AP store is expected to fail this under partitions. With `advisory: true` the result carries
// `advisory: true` and an `expected` sentence; compose() reports it but leaves it out of the merged
// verdict (see types.ts), so a known, documented non-property does not fail the run.
import type { History, Op } from '../harness/history.ts';
import { createRng } from '../harness/rng.ts';
import type { CheckContext, CheckResult } from './types.ts';
import { AnomalyList, pairing } from './util.ts';
import { MODELS, MODEL_NAMES, isModelName, type ModelName } from './models/index.ts';
import type { Model, ModelOptions } from './models/model.ts';

/** @deprecated the name of the first two models; any ModelName works. */
export type RegisterModel = ModelName;

export interface LinearizableOptions extends ModelOptions {
  /** A model by name (models/index.ts), or a Model value. */
  readonly model: ModelName | Model<any, any, any>;
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

/** One step of the partial linearization shown for a non-linearizable key. */
export interface LinearizationStep {
  /** History index of the op's invoke. */
  readonly op: number;
  readonly describe: string;
  /** The state after the op. */
  readonly state: string;
}

export interface LinearizableResult extends CheckResult {
  readonly model: string;
  readonly keys: number;
  readonly linearizableKeys: number;
  readonly failedKeys: readonly string[];
  readonly unknownKeys: readonly string[];
  /** Keys left undecided because another key had already failed (see ctx.linearizableAllKeys). */
  readonly stoppedKeys: readonly string[];
  /** Per-key details for the keys that failed or ran out of budget (at most 100). */
  readonly details: readonly KeyResult[];
  /** Client ops the model does not know, by f. */
  readonly skipped: Readonly<Record<string, number>>;
  /** Ops of the model's kinds that it could not judge, by reason (e.g. Knossos's unrecorded nil reads). */
  readonly notJudged: Readonly<Record<string, number>>;
  readonly advisory?: true;
  readonly expected?: string;
}

interface KeyOps {
  inputs: unknown[];
  outputs: unknown[];
  shown: unknown[];
  fs: string[];
  ok: boolean[];
  invokePos: number[];
  completePos: number[];
}

interface SearchOutcome {
  valid: true | false | 'unknown';
  configurations: number;
  /** Op (within the key) whose return the deepest branch could not pass. */
  breakOp: number;
  /** History position of that return entry. */
  breakPos: number;
  statesAtBreak: number[];
  /** Set when the search was replayed to `stopAtPos`: the linearized ops (within the key) and the state after each. */
  path?: { ops: number[]; states: number[] };
}

/**
 * The cache of explored configurations: a set of 53-bit keys, each held as a 32-bit high word and a
 * 21-bit low word in open-addressed typed arrays. A Set of numbers would box every key above 2^31 as a
 * heap number, and the garbage collector then took a fifth of the search's time.
 */
class KeySet {
  private hi = new Int32Array(1 << 12);
  /** Low word + 1; 0 marks an empty slot. */
  private lo = new Int32Array(1 << 12);
  size = 0;
  /** Adds the key; returns false if it was already there. */
  add(hi: number, lo: number): boolean {
    const mask = this.hi.length - 1;
    const l = lo + 1;
    let i = (hi ^ Math.imul(l, 0x9e3779b1)) & mask;
    for (;;) {
      const at = this.lo[i];
      if (at === 0) break;
      if (at === l && this.hi[i] === hi) return false;
      i = (i + 1) & mask;
    }
    this.hi[i] = hi;
    this.lo[i] = l;
    if (++this.size * 2 > this.hi.length) this.grow();
    return true;
  }
  private grow(): void {
    const { hi, lo } = this;
    this.hi = new Int32Array(hi.length * 2);
    this.lo = new Int32Array(lo.length * 2);
    const mask = this.hi.length - 1;
    for (let j = 0; j < hi.length; j++) {
      const l = lo[j];
      if (l === 0) continue;
      let i = (hi[j] ^ Math.imul(l, 0x9e3779b1)) & mask;
      while (this.lo[i] !== 0) i = (i + 1) & mask;
      this.hi[i] = hi[j];
      this.lo[i] = l;
    }
  }
}

const UNSET = -2;
const ILLEGAL = -1;

/** The model's states as integers: interned on first sight, with every (state, op) step remembered. */
class Automaton {
  readonly states: unknown[] = [];
  private readonly ids = new Map<unknown, number>();
  /** memo[op * cap + state]: the next state, ILLEGAL, or UNSET; states ≥ cap are not remembered. */
  memo: Int32Array;
  cap: number;
  private readonly model: Model<any, any, any>;
  private readonly k: KeyOps;
  constructor(model: Model<any, any, any>, k: KeyOps) {
    this.model = model;
    this.k = k;
    const n = k.inputs.length;
    // At most 256k entries (1 MB) per key, and never more than 64 states per op; states past the cap
    // take the slow path.
    this.wantedCap = Math.max(1, Math.min(64, Math.floor(262_144 / Math.max(1, n))));
    this.memo = new Int32Array(0);
    this.cap = 0;
    this.intern(model.init());
  }
  private readonly wantedCap: number;
  /** Allocates the step table when the key's search first runs, so waiting keys hold no memory. */
  allocate(): void {
    if (this.cap > 0 || this.released) return;
    this.cap = this.wantedCap;
    this.memo = new Int32Array(this.k.inputs.length * this.cap).fill(UNSET);
  }
  private released = false;
  /** Frees the step table once the key is decided (states stay, to describe the key). */
  release(): void {
    this.released = true;
    this.memo = new Int32Array(0);
    this.cap = 0;
  }
  intern(state: unknown): number {
    const key = this.model.stateKey(state);
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.states.length;
      this.ids.set(key, id);
      this.states.push(state);
    }
    return id;
  }
  /** The slow path of a step: ask the model, intern the result, remember it. */
  step(state: number, op: number): number {
    const next = this.model.step(this.states[state], this.k.inputs[op], this.k.outputs[op]);
    const id = next === undefined ? ILLEGAL : this.intern(next);
    if (state < this.cap) this.memo[op * this.cap + state] = id;
    return id;
  }
}

/**
 * Wing–Gong/Lowe search over one key's ops, resumable: `run` goes on for at most `maxSteps` steps, so
 * keys can take turns (a key that is quickly found non-linearizable need not wait for a hard one).
 * The loop keeps its variables in locals and saves them when it pauses.
 */
class Search {
  readonly k: KeyOps;
  readonly auto: Automaton;
  private readonly head: number;
  private readonly tail: number;
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly z1: Int32Array;
  private readonly z2: Int32Array;
  private readonly cache = new KeySet();
  private readonly stackEntry: number[] = [];
  private readonly stackState: number[] = [];
  private readonly statesAtBreak = new Set<number>();
  private readonly stopAtPos: number;
  private remaining = 0;
  private state = 0; // the model's initial state is interned first
  private h1 = 0;
  private h2 = 0;
  private entry: number;
  private breakOp = -1;
  private breakPos = -1;
  /** Wall time spent in run(), in ms. */
  elapsedMs = 0;
  outcome: SearchOutcome | undefined;

  /** With `stopAtPos`, the search stops at its first visit of that return entry and reports the path there. */
  constructor(k: KeyOps, auto: Automaton, stopAtPos = -1) {
    this.k = k;
    this.auto = auto;
    this.stopAtPos = stopAtPos;
    const n = k.inputs.length;
    // Entries: call of op i = 2i, return of op i = 2i+1 (only ok ops have one). head = 2n, tail = 2n+1.
    const head = (this.head = 2 * n);
    this.tail = 2 * n + 1;
    const next = (this.next = new Int32Array(2 * n + 2).fill(-1));
    const prev = (this.prev = new Int32Array(2 * n + 2).fill(-1));
    const order: number[] = [];
    for (let i = 0; i < n; i++) {
      order.push(2 * i);
      if (k.ok[i]) order.push(2 * i + 1);
    }
    order.sort((x, y) => this.posOf(x) - this.posOf(y));
    let last = head;
    for (const e of order) {
      next[last] = e;
      prev[e] = last;
      last = e;
    }
    next[last] = this.tail;
    prev[this.tail] = last;
    // Zobrist words from the shared seeded rng (Math.random is never used in checkers).
    const rng = createRng(0x5eed + n);
    this.z1 = new Int32Array(n);
    this.z2 = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      this.z1[i] = rng.int(2 ** 32) | 0;
      this.z2[i] = rng.int(2 ** 32) | 0;
    }
    for (let i = 0; i < n; i++) if (k.ok[i]) this.remaining++;
    this.entry = next[head];
  }

  private posOf(e: number): number {
    return (e & 1) === 0 ? this.k.invokePos[e >> 1] : this.k.completePos[e >> 1];
  }

  private finish(valid: true | false | 'unknown'): SearchOutcome {
    this.outcome = { valid, configurations: this.cache.size, breakOp: this.breakOp, breakPos: this.breakPos, statesAtBreak: [...this.statesAtBreak] };
    return this.outcome;
  }

  /** Runs up to `maxSteps` steps; returns the outcome once decided (or out of time), else undefined. */
  run(maxSteps: number, deadline: number): SearchOutcome | undefined {
    if (this.outcome) return this.outcome;
    const started = performance.now();
    try {
      return this.loop(maxSteps, deadline);
    } finally {
      this.elapsedMs += performance.now() - started;
    }
  }

  private loop(maxSteps: number, deadline: number): SearchOutcome | undefined {
    this.auto.allocate();
    const { k, head, tail, next, prev, z1, z2, cache, stackEntry, stackState, statesAtBreak, stopAtPos } = this;
    const ok = k.ok;
    const auto = this.auto;
    const memo = auto.memo;
    const cap = auto.cap;
    let { remaining, state, h1, h2, entry, breakOp, breakPos } = this;
    const save = (): void => {
      Object.assign(this, { remaining, state, h1, h2, entry, breakOp, breakPos });
    };
    let steps = 0;
    while (remaining > 0) {
      if ((++steps & 4095) === 0) {
        // Out of time, or the cache past 12M configurations (~200 MB): give up as unknown, never crash or hang.
        if (performance.now() > deadline || cache.size > 12_000_000) {
          save();
          return this.finish('unknown');
        }
        if (steps >= maxSteps) {
          save();
          return undefined;
        }
      }
      if ((entry & 1) === 0 && entry !== tail && entry !== head) {
        const op = entry >> 1;
        let ns = state < cap ? memo[op * cap + state] : UNSET;
        if (ns === UNSET) ns = auto.step(state, op);
        if (ns >= 0) {
          const n1 = h1 ^ z1[op];
          const n2 = h2 ^ z2[op];
          if (cache.add(n1, ((n2 ^ Math.imul(ns + 1, 0x9e3779b1)) >>> 0) & 0x1fffff)) {
            stackEntry.push(entry);
            stackState.push(state);
            state = ns;
            h1 = n1;
            h2 = n2;
            // Lift the call and its return out of the list (dancing links; restored in reverse order).
            next[prev[entry]] = next[entry];
            prev[next[entry]] = prev[entry];
            if (ok[op]) {
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
        const pos = (entry & 1) === 0 ? k.invokePos[entry >> 1] : k.completePos[entry >> 1];
        if (pos === stopAtPos) {
          const states = stackState.slice(1);
          states.push(state);
          save();
          this.breakOp = entry >> 1;
          this.breakPos = pos;
          return { ...this.finish(false), path: { ops: stackEntry.map((e) => e >> 1), states } };
        }
        if (pos > breakPos) {
          breakPos = pos;
          breakOp = entry >> 1;
          statesAtBreak.clear();
        }
        if (pos === breakPos && statesAtBreak.size < 8) statesAtBreak.add(state);
      }
      if (stackEntry.length === 0) {
        save();
        return this.finish(false);
      }
      const e = stackEntry.pop()!;
      state = stackState.pop()!;
      const op = e >> 1;
      h1 ^= z1[op];
      h2 ^= z2[op];
      if (ok[op]) {
        const r = e + 1;
        next[prev[r]] = r;
        prev[next[r]] = r;
        remaining++;
      }
      next[prev[e]] = e;
      prev[next[e]] = e;
      entry = next[e];
    }
    save();
    return this.finish(true);
  }
}

/** Ops judged: every op of every key. */
function opsJudged(keys: ReadonlyMap<string, KeyOps>): number {
  let n = 0;
  for (const k of keys.values()) n += k.inputs.length;
  return n;
}

/** The linearization steps shown in an anomaly: the last ones before the op that cannot be placed. */
const SHOWN_STEPS = 50;

export function linearizable(options: LinearizableOptions): (history: History, ctx: CheckContext) => LinearizableResult {
  let model: Model<any, any, any>;
  if (typeof options.model === 'string') {
    if (!isModelName(options.model)) throw new Error(`Unknown model ${JSON.stringify(options.model)}: expected one of ${MODEL_NAMES.join(', ')}.`);
    model = MODELS[options.model]({ initialValue: options.initialValue, nilRead: options.nilRead });
  } else model = options.model;
  const expected = options.expected ?? 'AP store: not linearizable under partitions';
  const fs = new Set(model.fs);
  return (history: History, ctx: CheckContext): LinearizableResult => {
    const budgetMs = ctx.linearizableBudgetMs ?? 10_000;
    // A run with many keys must not take keys × budget: past the total, remaining keys are unknown.
    const totalBudgetMs = typeof ctx.linearizableTotalBudgetMs === 'number' ? ctx.linearizableTotalBudgetMs : Math.max(60_000, budgetMs);
    const overallDeadline = performance.now() + totalBudgetMs;
    const { completion } = pairing(history);
    const keys = new Map<string, KeyOps>();
    // Client ops of other kinds (Porcupine's get/put/append under a register model, say) are left out and named in the result.
    const skipped: Record<string, number> = {};
    const notJudged: Record<string, number> = {};
    let failed = 0;
    for (let i = 0; i < history.length; i++) {
      const op: Op = history[i];
      if (op.type !== 'invoke' || op.process === 'nemesis') continue;
      const f = op.f;
      if (!fs.has(f)) {
        if (!f.startsWith('watch-') && f !== 'final-read' && f !== 'stats') {
          skipped[f] = (skipped[f] ?? 0) + 1;
          // A cas under the plain register model is refused by the model itself, with the fix.
          if (f === 'cas' && model.name === 'register') model.prepare({ f, invokeValue: op.value, okValue: undefined, ok: false }, op.index);
        }
        continue;
      }
      const c = completion[i];
      const type = c >= 0 ? history[c].type : 'info';
      if (type === 'fail') {
        failed++;
        continue;
      }
      const isOk = type === 'ok';
      const p = model.prepare({ f, invokeValue: op.value, okValue: isOk ? history[c].value : undefined, ok: isOk }, op.index);
      if ('drop' in p) continue;
      if ('skip' in p) {
        notJudged[p.skip] = (notJudged[p.skip] ?? 0) + 1;
        continue;
      }
      let k = keys.get(p.key);
      if (!k) keys.set(p.key, (k = { inputs: [], outputs: [], shown: [], fs: [], ok: [], invokePos: [], completePos: [] }));
      k.inputs.push(p.input);
      k.outputs.push(p.output);
      k.shown.push(p.shown);
      k.fs.push(f);
      k.ok.push(isOk);
      k.invokePos.push(i);
      k.completePos.push(isOk ? c : -1);
    }

    const anomalies = new AnomalyList();
    const failedKeys: string[] = [];
    const unknownKeys: string[] = [];
    const details: KeyResult[] = [];
    let linearizableKeys = 0;
    // Keys take turns, each running a slice of steps that doubles every round, so one hard key does not
    // hold up the rest; after a round in which some key failed, undecided keys stop (the verdict is
    // already false) unless ctx.linearizableAllKeys asks for every key to be decided.
    const allKeys = ctx.linearizableAllKeys === true;
    const searches = new Map<string, Search>();
    for (const [key, k] of keys) searches.set(key, new Search(k, new Automaton(model, k)));
    let pending = [...searches.values()];
    let firstFailed: string | undefined;
    const stopped = new Set<Search>();
    for (let slice = 16_384; pending.length > 0; slice *= 2) {
      const still: Search[] = [];
      for (const search of pending) {
        const now = performance.now();
        const out = now > overallDeadline
          ? (search.outcome = { valid: 'unknown', configurations: 0, breakOp: -1, breakPos: -1, statesAtBreak: [] })
          : search.run(slice, Math.min(now + budgetMs - search.elapsedMs, overallDeadline));
        if (!out) still.push(search);
        else {
          if (out.valid === false) firstFailed ??= keyOf(searches, search);
          else search.auto.release();
        }
      }
      if (firstFailed !== undefined && !allKeys) {
        for (const search of still) stopped.add(search);
        break;
      }
      pending = still;
    }
    const stoppedKeys: string[] = [];
    for (const [key, search] of searches) {
      const k = search.k;
      const auto = search.auto;
      const elapsedMs = Math.round(search.elapsedMs * 1000) / 1000;
      if (stopped.has(search)) {
        stoppedKeys.push(key);
        if (details.length < 100) {
          details.push({ key, valid: 'unknown', ops: k.inputs.length, elapsedMs, configurations: 0, error: `Not decided: the search stopped once key ${JSON.stringify(firstFailed)} was found non-linearizable (pass --all-keys, or ctx.linearizableAllKeys, to decide every key).` });
        }
        continue;
      }
      const out = search.outcome!;
      const kr: KeyResult = { key, valid: out.valid, ops: k.inputs.length, elapsedMs, configurations: out.configurations };
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
      for (let j = 0; j < k.inputs.length && concurrent.length < 20; j++) {
        if (j === b) continue;
        const end = k.completePos[j] < 0 ? Infinity : k.completePos[j];
        if (k.invokePos[j] < hi && end > lo) concurrent.push(history[k.invokePos[j]].index);
      }
      const states = out.statesAtBreak.map((s) => auto.states[s]);
      const describe = model.describeOperation(k.inputs[b], k.outputs[b]);
      // The replay to the break: same search, same order, so it reaches the same point (and stops there).
      const replay = new Search(k, auto, out.breakPos).run(Infinity, performance.now() + budgetMs)?.path;
      auto.release();
      const linearization: LinearizationStep[] = (replay?.ops ?? []).map((o, j) => ({
        op: history[k.invokePos[o]].index,
        describe: model.describeOperation(k.inputs[o], k.outputs[o]),
        state: model.describeState(auto.states[replay!.states[j]]),
      }));
      anomalies.add({
        type: 'non-linearizable',
        ops: [breakIndex, history[k.invokePos[b]].index],
        message: `Key ${JSON.stringify(key)}: no linearization of the history up to op ${breakIndex} exists; the ${k.fs[b]} ${JSON.stringify(k.shown[b])} cannot be placed when the ${model.name} could only hold ${states.map((s) => model.describeState(s)).join(' or ')}.`,
        key,
        op: { f: k.fs[b], value: k.shown[b] },
        describe,
        prefixEnd: breakIndex,
        prefixLength: breakIndex + 1,
        possibleStates: states,
        concurrent,
        linearizationLength: linearization.length,
        linearization: linearization.slice(-SHOWN_STEPS),
        cannotPlace: { op: history[k.invokePos[b]].index, describe },
      });
    }

    const valid = anomalies.count > 0 || firstFailed !== undefined ? false : unknownKeys.length > 0 || keys.size === 0 ? 'unknown' : true;
    const skippedText = Object.entries(skipped).map(([f, n]) => `${n} ${f}`).join(', ');
    const notJudgedText = Object.entries(notJudged).map(([why, n]) => `${n} ${why}`).join(', ');
    const why = [
      skippedText ? `skipped ops the ${model.name} model does not know: ${skippedText}${suggestModel(skipped, model.name)}` : '',
      notJudgedText ? `not judged: ${notJudgedText}` : '',
    ].filter(Boolean).join('; ');
    return {
      valid,
      ...(keys.size === 0 ? { error: `no ${orList(model.fs)} op to judge${why ? `; ${why}` : failed ? ` (all ${failed} of its ops failed, and a failed op did not happen)` : ' (the history has no client ops)'}` } : {}),
      model: model.name,
      judged: opsJudged(keys),
      skipped,
      notJudged,
      keys: keys.size,
      linearizableKeys,
      failedKeys,
      unknownKeys,
      stoppedKeys,
      details,
      ...(options.advisory ? { advisory: true as const, expected } : {}),
      ...anomalies.summary(),
    };
  };
}

/** When the skipped ops are exactly another model's, say which. */
function suggestModel(skipped: Record<string, number>, current: string): string {
  const fs = Object.keys(skipped);
  if (fs.length === 0) return '';
  for (const name of MODEL_NAMES) {
    if (name === current) continue;
    const model = MODELS[name]();
    if (fs.every((f) => model.fs.includes(f))) return ` (they are the ${name} model's: pass --model ${name})`;
  }
  return '';
}

function orList(items: readonly string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}

function keyOf(searches: ReadonlyMap<string, Search>, search: Search): string {
  for (const [key, s] of searches) if (s === search) return key;
  return '';
}
