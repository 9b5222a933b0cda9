// The replica data model and its merge: the one pure function every replica uses to combine states,
// whether a write arrives from a client, a relay, anti-entropy or the log on restart.
//
// An entity is a map of named components plus named counters. Each component is an LWW register with
// its own HLC (canonical string, so comparing strings compares timestamps). A component declared "max"
// holds a decimal number and a merge keeps the greater number. Counters are PN-counters: one (p, n)
// share per origin node, merged by taking the maximum of each, so a share can be re-sent any number
// of times. Deletes are tombstones: a component with deleted=true and its own HLC.
//
// The component merge picks the greater of two states under ONE total order, so it is a join
// semilattice (commutative, associative, idempotent) even for mixed kinds or identical timestamps:
//   class 1 (a live "max" component) beats class 0 (an LWW value or any tombstone);
//   within class 1: greater number, then greater HLC; within class 0: greater HLC;
//   then a tombstone beats a value, then the greater value string, so equal HLCs still resolve the
//   same way on every node.
// Consequence: once a component is max-wins on any replica it stays max-wins everywhere (the node
// refuses to delete or LWW-write such a component locally, see service.ts).

export type Kind = 'lww' | 'max';

export interface ComponentState {
  readonly value: string;
  /** Canonical HLC string (see hlc.ts). */
  readonly ts: string;
  readonly deleted: boolean;
  readonly kind: Kind;
}

export interface Share {
  readonly p: number;
  readonly n: number;
}

/** One counter: origin node id → that origin's share. */
export type CounterState = ReadonlyMap<string, Share>;

export interface EntityState {
  readonly components: ReadonlyMap<string, ComponentState>;
  readonly counters: ReadonlyMap<string, CounterState>;
}

/** The whole replica: entity id → entity. */
export type ReplicaState = ReadonlyMap<string, EntityState>;

export interface MergeOptions {
  /** Planted bug `threat-lww`: merge max-wins components as plain LWW (by HLC only). */
  readonly maxAsLww?: boolean;
  /** Planted bug `tombstone-loses`: any live value outranks a tombstone, whatever the timestamps. */
  readonly tombstoneLoses?: boolean;
}

function componentClass(c: ComponentState, options: MergeOptions): number {
  if (options.tombstoneLoses && c.deleted) return -1;
  // A "max" value that is not a finite number (never accepted from clients or peers, but the order must
  // stay total regardless) is ordered like an LWW value.
  return c.kind === 'max' && !c.deleted && !options.maxAsLww && Number.isFinite(Number(c.value)) ? 1 : 0;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The total order on component states described above; > 0 means a wins. */
export function compareComponents(a: ComponentState, b: ComponentState, options: MergeOptions = {}): number {
  const ca = componentClass(a, options);
  const cb = componentClass(b, options);
  if (ca !== cb) return ca - cb;
  if (ca === 1) {
    const na = Number(a.value);
    const nb = Number(b.value);
    if (na !== nb) return na < nb ? -1 : 1;
  }
  const byTs = cmp(a.ts, b.ts);
  if (byTs !== 0) return byTs;
  if (a.deleted !== b.deleted) return a.deleted ? 1 : -1;
  const byValue = cmp(a.value, b.value);
  if (byValue !== 0) return byValue;
  return cmp(a.kind, b.kind);
}

export function mergeComponent(a: ComponentState, b: ComponentState, options: MergeOptions = {}): ComponentState {
  return compareComponents(a, b, options) >= 0 ? a : b;
}

export function mergeShare(a: Share, b: Share): Share {
  if (a.p >= b.p && a.n >= b.n) return a;
  if (b.p >= a.p && b.n >= a.n) return b;
  return { p: Math.max(a.p, b.p), n: Math.max(a.n, b.n) };
}

/**
 * The counter's value: the sum of every origin's p − n. Each origin's shares are bounded so that the
 * sum of a cluster's shares stays within ±(2^53 − 1) (node.ts, shareBound), where it is exact. Should
 * shares from differently configured nodes ever add up beyond, the value saturates at ±(2^53 − 1)
 * rather than make the counter unreadable (the shares themselves are still exact in every reply).
 */
export function counterValue(counter: CounterState): number {
  let total = 0;
  for (const share of counter.values()) total += share.p - share.n;
  return Math.max(-Number.MAX_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, total));
}

function mergeMaps<V>(a: ReadonlyMap<string, V>, b: ReadonlyMap<string, V>, mergeValue: (x: V, y: V) => V): Map<string, V> {
  const out = new Map(a);
  for (const [key, value] of b) {
    const mine = out.get(key);
    out.set(key, mine === undefined ? value : mergeValue(mine, value));
  }
  return out;
}

export function mergeEntity(a: EntityState, b: EntityState, options: MergeOptions = {}): EntityState {
  return {
    components: mergeMaps(a.components, b.components, (x, y) => mergeComponent(x, y, options)),
    counters: mergeMaps(a.counters, b.counters, (x, y) => mergeMaps(x, y, mergeShare)),
  };
}

/** The merge: a pure function (state, state) → state. */
export function mergeState(a: ReplicaState, b: ReplicaState, options: MergeOptions = {}): ReplicaState {
  return mergeMaps(a, b, (x, y) => mergeEntity(x, y, options));
}

/** A deterministic JSON form of a state (sorted keys), for comparing replicas. */
export function canonicalState(state: ReplicaState): string {
  const sorted = <V>(m: ReadonlyMap<string, V>) => [...m.entries()].sort((x, y) => cmp(x[0], y[0]));
  return JSON.stringify(
    sorted(state).map(([id, e]) => [
      id,
      sorted(e.components).map(([name, c]) => [name, c.value, c.ts, c.deleted, c.kind]),
      sorted(e.counters).map(([name, shares]) => [name, sorted(shares).map(([o, s]) => [o, s.p, s.n])]),
    ]),
  );
}
