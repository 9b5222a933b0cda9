// Shared building blocks for the checkers: pairing invokes with completions, collecting the final
// reads, bounded anomaly lists and latency quantiles. Pairing and final reads are computed once per
// history and cached in a WeakMap keyed by the history array, so composing six checkers over the same
// million-op history costs one pass for these, not six. Everything here is pure apart from that cache.
import type { FinalState, History, Op } from '../harness/history.ts';
import { opIndex, type Pairing } from './history-index.ts';
import type { Anomaly, CheckContext } from './types.ts';
import { HlcInterner } from './hlc-intern.ts';

export type { Pairing };

/** Pairs every client invoke with its completion by process (nemesis ops are left unpaired); see history-index.ts. */
export function pairing(history: History): Pairing {
  return opIndex(history).pairing;
}

/** One node's answer to one round of final reads. */
export interface FinalRead {
  readonly node: string;
  readonly round: number;
  /** History position of the ok completion. */
  readonly pos: number;
  readonly state: FinalState;
}

export interface FinalReads {
  /** Nodes expected to answer: ctx.nodes, or every node seen in final reads when ctx.nodes is empty. */
  readonly nodes: readonly string[];
  /** Round number → node → answer (ok answers only), rounds in ascending order. */
  readonly rounds: ReadonlyMap<number, ReadonlyMap<string, FinalRead>>;
  /** The last round in which every node answered, or undefined. */
  readonly lastCompleteRound: number | undefined;
  /**
   * The answers the verdicts are based on: every node's answer in the last complete round, or, when
   * no round is complete, each node's latest answer (and `partial` is true).
   */
  readonly view: ReadonlyMap<string, FinalRead>;
  readonly partial: boolean;
  /** Nodes with no answer in `view`. */
  readonly missing: readonly string[];
}

const finalCache = new WeakMap<History, Map<string, FinalReads>>();

/** Collects the ok "final-read" ops by round and node, and picks the view the checkers judge. */
export function finalReads(history: History, ctx: CheckContext): FinalReads {
  const nodesKey = ctx.nodes.join(',') + '#' + history.length;
  let perNodes = finalCache.get(history);
  if (!perNodes) finalCache.set(history, (perNodes = new Map()));
  const cached = perNodes.get(nodesKey);
  if (cached) return cached;

  const rounds = new Map<number, Map<string, FinalRead>>();
  const seen = new Set<string>();
  for (const i of opIndex(history).select(['final-read'], ['ok'])) {
    const op = history[i];
    if (op.f !== 'final-read' || op.type !== 'ok' || op.node === undefined) continue;
    const value = op.value as { round?: number; state?: FinalState } | null;
    if (!value || typeof value.round !== 'number' || !value.state) continue;
    seen.add(op.node);
    const read: FinalRead = { node: op.node, round: value.round, pos: i, state: value.state };
    let byNode = rounds.get(value.round);
    if (!byNode) rounds.set(value.round, (byNode = new Map()));
    byNode.set(op.node, read);
  }
  const nodes = ctx.nodes.length > 0 ? [...ctx.nodes] : [...seen].sort();
  const sortedRounds = new Map([...rounds.entries()].sort((a, b) => a[0] - b[0]));
  let lastCompleteRound: number | undefined;
  for (const [round, byNode] of sortedRounds) {
    if (nodes.length > 0 && nodes.every((n) => byNode.has(n))) lastCompleteRound = round;
  }
  // Without a complete round, judge the newest round alone: mixing each node's latest answer from
  // different rounds would compare a node's stale early state with another's settled one.
  const newest = [...sortedRounds.values()].pop();
  const view = lastCompleteRound !== undefined ? sortedRounds.get(lastCompleteRound)! : (newest ?? new Map<string, FinalRead>());
  const result: FinalReads = {
    nodes,
    rounds: sortedRounds,
    lastCompleteRound,
    view,
    partial: lastCompleteRound === undefined,
    missing: nodes.filter((n) => !view.has(n)),
  };
  perNodes.set(nodesKey, result);
  return result;
}

/**
 * The verdict of a checker judged against final reads: invalid when it found anomalies, unknown when
 * no round of final reads had every node answer (a silent node may hold anything), valid otherwise.
 */
export function finalVerdict(anomalies: AnomalyList, fr: FinalReads): { valid: true | false | 'unknown'; error?: string } {
  if (anomalies.count > 0) return { valid: false };
  if (fr.view.size === 0) return { valid: 'unknown', error: 'No final reads in the history, so the final state cannot be judged.' };
  if (fr.partial) return { valid: 'unknown', error: `No round of final reads had an answer from every node; missing: ${fr.missing.join(', ')}.` };
  return { valid: true };
}

/**
 * A map keyed by two strings (entity, component). Nested Maps look the original strings up directly,
 * which V8 hashes once per string, instead of building and hashing a concatenated key for every op.
 */
export class PairMap<T> {
  readonly outer = new Map<string, Map<string, T>>();
  size = 0;

  get(a: string, b: string): T | undefined {
    return this.outer.get(a)?.get(b);
  }

  set(a: string, b: string, value: T): void {
    let inner = this.outer.get(a);
    if (!inner) this.outer.set(a, (inner = new Map()));
    if (!inner.has(b)) this.size++;
    inner.set(b, value);
  }

  has(a: string, b: string): boolean {
    return this.outer.get(a)?.has(b) ?? false;
  }

  *entries(): IterableIterator<[string, string, T]> {
    for (const [a, inner] of this.outer) for (const [b, v] of inner) yield [a, b, v];
  }
}

/**
 * Index of the last entry of `sorted` (ascending history positions) below `pos`, or -1: "what had
 * completed before this op was invoked", which every per-op checker asks of its own running bounds.
 */
export function lastBefore(sorted: readonly number[], pos: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < pos) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/** Key for an (entity, component) pair in Maps; NUL cannot occur in either name. */
export function componentKey(entity: string, component: string): string {
  return entity + '\u0000' + component;
}

export function splitKey(key: string): [string, string] {
  const at = key.indexOf('\u0000');
  return [key.slice(0, at), key.slice(at + 1)];
}

/**
 * Collects anomalies up to a cap so that a badly broken run (say, every write lost) yields a readable
 * report and bounded memory; `count` keeps the true total and `byType` the totals per type.
 */
export class AnomalyList {
  readonly items: Anomaly[] = [];
  readonly byType: Record<string, number> = {};
  count = 0;
  readonly maxItems: number;

  constructor(maxItems = 1000) {
    this.maxItems = maxItems;
  }

  add(anomaly: Anomaly): void {
    this.count++;
    this.byType[anomaly.type] = (this.byType[anomaly.type] ?? 0) + 1;
    if (this.items.length < this.maxItems) this.items.push(anomaly);
  }

  /** Fields to spread into a CheckResult. */
  summary(): { anomalies: Anomaly[]; anomalyCount: number; anomalyTypes: Record<string, number>; anomaliesTruncated?: number } {
    const out: { anomalies: Anomaly[]; anomalyCount: number; anomalyTypes: Record<string, number>; anomaliesTruncated?: number } = {
      anomalies: this.items,
      anomalyCount: this.count,
      anomalyTypes: this.byType,
    };
    if (this.count > this.items.length) out.anomaliesTruncated = this.count - this.items.length;
    return out;
  }
}

export interface Quantiles {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/**
 * Nearest-rank quantiles of `values` (reordered in place; NaN counts as the greatest), in the same unit as
 * the input. Each rank is selected (quickselect), not sorted for: a million latencies cost a few linear
 * passes instead of a sort.
 */
export function quantiles(values: Float64Array): Quantiles {
  const n = values.length;
  if (n === 0) return { count: 0, p50: 0, p95: 0, p99: 0, max: 0 };
  const rank = (q: number): number => Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1));
  // Each selection leaves everything at or above its rank to its right, so the next one starts there.
  const r50 = rank(0.5);
  const r95 = rank(0.95);
  const r99 = rank(0.99);
  select(values, r50, 0, n - 1);
  select(values, r95, r50, n - 1);
  select(values, r99, r95, n - 1);
  let max = values[r99];
  for (let i = r99 + 1; i < n; i++) if (greater(values[i], max)) max = values[i];
  return { count: n, p50: values[r50], p95: values[r95], p99: values[r99], max };
}

/** a > b, with NaN above every number (Float64Array.prototype.sort's order). */
function greater(a: number, b: number): boolean {
  return a > b || (a !== a && b === b);
}

/** Puts the k-th smallest of a[lo..hi] at a[k], the smaller ones before it and the others after. */
function select(a: Float64Array, k: number, lo: number, hi: number): void {
  while (hi > lo) {
    // Median of three as the pivot, so sorted and reversed input stay linear.
    const mid = (lo + hi) >>> 1;
    if (greater(a[lo], a[mid])) swap(a, lo, mid);
    if (greater(a[mid], a[hi])) swap(a, mid, hi);
    if (greater(a[lo], a[mid])) swap(a, lo, mid);
    const pivot = a[mid];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (greater(pivot, a[i])) i++;
      while (greater(a[j], pivot)) j--;
      if (i <= j) {
        swap(a, i, j);
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return;
  }
}

function swap(a: Float64Array, i: number, j: number): void {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}

/** A growable Float64Array, so latency samples for a million ops don't become a million boxed numbers. */
export class FloatBuffer {
  data = new Float64Array(64);
  length = 0;

  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }

  view(): Float64Array {
    return this.data.subarray(0, this.length);
  }
}

/** The op's value as a record, or an empty object for malformed values (checkers skip those fields). */
export function valueOf<T>(op: Op): Partial<T> {
  const v = op.value;
  return (v !== null && typeof v === 'object' ? v : {}) as Partial<T>;
}

/** Nanoseconds to milliseconds, rounded to microseconds for readable reports. */
export function nsToMs(ns: number): number {
  return Math.round(ns / 1000) / 1000;
}

/**
 * True for the ops of the workload itself: client ops of the workers, not the nemesis, the final reads,
 * the end-of-run stats or the watch streams that the harness records alongside.
 */
export function isWorkloadOp(op: Op): boolean {
  return op.process !== 'nemesis' && op.f !== 'final-read' && op.f !== 'stats' && !op.f.startsWith('watch-');
}

/**
 * The name of a set element's component: the element number behind the client's prefix ("x42"). The set
 * checker accepts any non-digit prefix when it reads final states; the per-op checkers that key set adds
 * and removes by component use this one.
 */
export function setComponent(element: number): string {
  return `x${element}`;
}

/**
 * Interned (entity, component) keys and HLC timestamps of a history, computed once per history: the key
 * and timestamp of every op that names them (a set add or remove names the component of its element),
 * the timestamp of every event of every ok watch-events op, and a way to intern more keys. Checkers index
 * arrays by these ids instead of looking strings up in maps for every op and every event, and compare
 * timestamps as numbers (see HlcTable) instead of as strings.
 */
export interface KeyIndex {
  /** opKey[i]: the key id of op i, or -1. */
  readonly opKey: Int32Array;
  /** opTs[i]: the HLC id of op i's `value.ts` when that is a string, or -1. */
  readonly opTs: Int32Array;
  readonly entity: string[];
  readonly component: string[];
  /** The id of a key, interned when new. */
  id(entity: string, component: string): number;
  /** The id of a key, or -1 when no op or event named it. */
  find(entity: string, component: string): number;
  /**
   * The HLC ids of the events of the ok watch-events op at position i (-1 where e[4] is not a string).
   * Event keys are not interned here: a checker that needs one asks `find` or `id` only for the few
   * events it judges, which costs less than two map lookups for each of a million events.
   */
  eventTs(i: number): Int32Array | undefined;
  readonly hlc: HlcTable;
}

/**
 * The distinct HLC strings of a history, each with an id, and an order number per id: order[a] < order[b]
 * exactly when string a sorts before string b (the checkers' rule for which timestamp wins), equal only
 * for the same string. A string comparison of two timestamps walks their long shared prefix; the
 * numbers make it one comparison, and spare touching the strings at all.
 */
export interface HlcTable {
  readonly str: readonly string[];
  /** Order numbers by id (computed when first asked for, after every timestamp of the history was interned). */
  order(): Float64Array;
  /** The id of a timestamp string, or -1 when no op, event or final read carried it. */
  find(ts: string): number;
}

const keyIndexCache = new WeakMap<History, KeyIndex>();

export function keyIndex(history: History): KeyIndex {
  const hit = keyIndexCache.get(history);
  if (hit && hit.opKey.length === history.length) return hit;
  const byEntity = new Map<string, Map<string, number>>();
  const entity: string[] = [];
  const component: string[] = [];
  const id = (e: string, c: string): number => {
    let m = byEntity.get(e);
    if (!m) byEntity.set(e, (m = new Map()));
    let k = m.get(c);
    if (k === undefined) {
      k = entity.length;
      m.set(c, k);
      entity.push(e);
      component.push(c);
    }
    return k;
  };
  const find = (e: string, c: string): number => byEntity.get(e)?.get(c) ?? -1;
  const interner = new HlcInterner();
  const tsId = (ts: string): number => interner.id(ts);
  const opKey = new Int32Array(history.length).fill(-1);
  const opTs = new Int32Array(history.length).fill(-1);
  for (let i = 0; i < history.length; i++) {
    const v = history[i].value as { entity?: unknown; component?: unknown; element?: unknown; ts?: unknown } | null;
    if (v === null || typeof v !== 'object') continue;
    if (typeof v.ts === 'string') opTs[i] = tsId(v.ts);
    if (typeof v.entity !== 'string') continue;
    if (typeof v.component === 'string') opKey[i] = id(v.entity, v.component);
    else if (typeof v.element === 'number') opKey[i] = id(v.entity, setComponent(v.element));
  }
  const eventIds = new Map<number, Int32Array>();
  for (const i of opIndex(history).select(['watch-events'], ['ok'])) {
    const events = valueOf<{ events: unknown }>(history[i]).events;
    if (!Array.isArray(events)) continue;
    const ts = new Int32Array(events.length).fill(-1);
    for (let j = 0; j < events.length; j++) {
      const e = events[j] as unknown[];
      if (Array.isArray(e) && typeof e[4] === 'string') ts[j] = tsId(e[4]);
    }
    eventIds.set(i, ts);
  }
  // And the timestamps of the final reads, so that every timestamp a checker meets has an id.
  for (const i of opIndex(history).select(['final-read'], ['ok'])) {
    const state = valueOf<{ state: unknown }>(history[i]).state;
    if (state === null || typeof state !== 'object') continue;
    for (const fe of Object.values(state as Record<string, unknown>)) {
      const components = (fe as { components?: unknown } | null)?.components;
      if (components === null || typeof components !== 'object') continue;
      for (const fc of Object.values(components as Record<string, unknown>)) {
        const ts = (fc as { ts?: unknown } | null)?.ts;
        if (typeof ts === 'string') tsId(ts);
      }
    }
  }
  let order: Float64Array | undefined;
  const hlc: HlcTable = { str: interner.str, order: () => (order ??= interner.order()), find: (ts) => interner.find(ts) };
  const index: KeyIndex = { opKey, opTs, entity, component, id, find, eventTs: (i) => eventIds.get(i), hlc };
  keyIndexCache.set(history, index);
  return index;
}
