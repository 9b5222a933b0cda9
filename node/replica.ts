// The node's in-memory replica: entities, components and counter shares, updated only through the pure
// merge of node/merge.ts, plus the incrementally maintained hashes that anti-entropy compares.
//
// Every key (a component, or one origin's share of a counter) hashes to 64 bits together with its
// state; a slot (one of 4096, chosen by a hash of the entity id) holds the XOR of its keys' hashes, so an
// update costs O(1): XOR the old key hash out and the new one in. A digest over B buckets (B a power of
// two up to 4096) folds slot s into bucket s % B, so two replicas agree on a bucket exactly when (with
// overwhelming probability) they hold the same states for every key of its entities.
import { counterValue, mergeComponent, mergeShare, type ComponentState, type MergeOptions, type Share } from './merge.ts';

export const SLOTS = 4096;

export interface MutableEntity {
  readonly components: Map<string, ComponentState>;
  readonly counters: Map<string, Map<string, Share>>;
}

/** One replicated unit of state: a component state or one origin's counter share. */
export type KeyWrite =
  | { readonly entity: string; readonly component: string; readonly state: ComponentState }
  | { readonly entity: string; readonly counter: string; readonly origin: string; readonly share: Share };

/** 32-bit FNV-1a, used to place an entity in a slot. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Two independent 32-bit hashes of a key and its state: the fields joined by NUL, e.g.
 * "c␀entity␀component␀value␀ts␀deleted␀kind". The fields are fed one by one rather than joined
 * into a string first, which would allocate (and flatten) two strings per write.
 */
class KeyHasher {
  h1 = 0;
  h2 = 0;

  begin(tag: string): this {
    this.h1 = 0x811c9dc5;
    this.h2 = 0x9747b28c;
    this.chars(tag);
    return this;
  }

  /** Appends NUL and then the field. */
  field(text: string): this {
    this.char(0);
    return this.chars(text);
  }

  private chars(text: string): this {
    for (let i = 0; i < text.length; i++) this.char(text.charCodeAt(i));
    return this;
  }

  private char(c: number): void {
    this.h1 = Math.imul(this.h1 ^ c, 0x01000193);
    const h2 = Math.imul(this.h2 ^ c, 0x5bd1e995);
    this.h2 = h2 ^ (h2 >>> 15);
  }

  get hi(): number {
    return this.h1 >>> 0;
  }

  get lo(): number {
    return Math.imul(this.h2 ^ (this.h2 >>> 13), 0x85ebca6b) >>> 0;
  }
}

const hasher = new KeyHasher();
const hashComponent = (entity: string, name: string, s: ComponentState) =>
  hasher.begin('c').field(entity).field(name).field(s.value).field(s.ts).field(s.deleted ? '1' : '0').field(s.kind);
const hashShare = (entity: string, counter: string, origin: string, s: Share) =>
  hasher.begin('n').field(entity).field(counter).field(origin).field(String(s.p)).field(String(s.n));

export function slotOf(entity: string): number {
  return fnv1a(entity) % SLOTS;
}

export function isPowerOfTwoBuckets(count: number): boolean {
  return Number.isInteger(count) && count >= 1 && count <= SLOTS && (count & (count - 1)) === 0;
}

export class Replica {
  readonly entities = new Map<string, MutableEntity>();
  private readonly options: MergeOptions;
  private readonly slotHi = new Uint32Array(SLOTS);
  private readonly slotLo = new Uint32Array(SLOTS);
  private readonly slotEntities: Set<string>[] = Array.from({ length: SLOTS }, () => new Set<string>());

  constructor(options: MergeOptions = {}) {
    this.options = options;
  }

  private entity(id: string): MutableEntity {
    let e = this.entities.get(id);
    if (!e) {
      e = { components: new Map(), counters: new Map() };
      this.entities.set(id, e);
      this.slotEntities[slotOf(id)].add(id);
    }
    return e;
  }

  private toggle(entity: string, key: KeyHasher): void {
    const slot = slotOf(entity);
    this.slotHi[slot] ^= key.hi;
    this.slotLo[slot] ^= key.lo;
  }

  /** What applyComponent would make of `incoming`, without applying it (local writes become visible only once durable). */
  previewComponent(entity: string, component: string, incoming: ComponentState): ComponentState {
    const current = this.entities.get(entity)?.components.get(component);
    return current === undefined ? incoming : mergeComponent(current, incoming, this.options);
  }

  /** The counter's value if `incoming` were merged in for `origin`, without applying it. */
  previewShare(entity: string, counter: string, origin: string, incoming: Share): number {
    const shares = new Map(this.entities.get(entity)?.counters.get(counter) ?? []);
    const current = shares.get(origin);
    shares.set(origin, current === undefined ? incoming : mergeShare(current, incoming));
    return counterValue(shares);
  }

  /** Merges one component state in; returns the merged state and whether it changed. */
  applyComponent(entity: string, component: string, incoming: ComponentState): { state: ComponentState; changed: boolean } {
    const e = this.entity(entity);
    const current = e.components.get(component);
    const merged = current === undefined ? incoming : mergeComponent(current, incoming, this.options);
    if (merged === current) return { state: merged, changed: false };
    if (current !== undefined) this.toggle(entity, hashComponent(entity, component, current));
    this.toggle(entity, hashComponent(entity, component, merged));
    e.components.set(component, merged);
    return { state: merged, changed: true };
  }

  /**
   * Sets a component's state without merging (the planted bug tombstone-gc lets a late older write
   * replace a tombstone this way); a correct replica only ever merges.
   */
  replaceComponent(entity: string, component: string, state: ComponentState): void {
    const e = this.entity(entity);
    const current = e.components.get(component);
    if (current !== undefined) this.toggle(entity, hashComponent(entity, component, current));
    this.toggle(entity, hashComponent(entity, component, state));
    e.components.set(component, state);
  }

  /** Merges one origin's counter share in; returns the counter's value and whether it changed. */
  applyShare(entity: string, counter: string, origin: string, incoming: Share): { value: number; changed: boolean } {
    const e = this.entity(entity);
    let shares = e.counters.get(counter);
    if (!shares) {
      shares = new Map();
      e.counters.set(counter, shares);
    }
    const current = shares.get(origin);
    const merged = current === undefined ? incoming : mergeShare(current, incoming);
    const changed = current === undefined || merged.p !== current.p || merged.n !== current.n;
    if (changed) {
      if (current !== undefined) this.toggle(entity, hashShare(entity, counter, origin, current));
      this.toggle(entity, hashShare(entity, counter, origin, merged));
      shares.set(origin, merged);
    }
    return { value: counterValue(shares), changed };
  }

  apply(write: KeyWrite): boolean {
    return 'state' in write
      ? this.applyComponent(write.entity, write.component, write.state).changed
      : this.applyShare(write.entity, write.counter, write.origin, write.share).changed;
  }

  component(entity: string, component: string): ComponentState | undefined {
    return this.entities.get(entity)?.components.get(component);
  }

  share(entity: string, counter: string, origin: string): Share | undefined {
    return this.entities.get(entity)?.counters.get(counter)?.get(origin);
  }

  /** Hex digests of the state folded into `count` buckets (count: a power of two up to SLOTS). */
  digest(count: number): string[] {
    const hi = new Uint32Array(count);
    const lo = new Uint32Array(count);
    for (let s = 0; s < SLOTS; s++) {
      hi[s % count] ^= this.slotHi[s];
      lo[s % count] ^= this.slotLo[s];
    }
    return Array.from(hi, (h, b) => h.toString(16).padStart(8, '0') + lo[b].toString(16).padStart(8, '0'));
  }

  /** Every key write of the entities in the given buckets (of `count`). */
  *bucketWrites(buckets: readonly number[], count: number): Generator<KeyWrite> {
    for (const b of new Set(buckets)) {
      for (let s = b; s < SLOTS; s += count) for (const id of this.slotEntities[s]) yield* this.entityWrites(id);
    }
  }

  /** Every key write of the whole replica (for snapshots). */
  *allWrites(): Generator<KeyWrite> {
    for (const id of this.entities.keys()) yield* this.entityWrites(id);
  }

  private *entityWrites(id: string): Generator<KeyWrite> {
    const e = this.entities.get(id);
    if (!e) return;
    for (const [component, state] of e.components) yield { entity: id, component, state };
    for (const [counter, shares] of e.counters) for (const [origin, share] of shares) yield { entity: id, counter, origin, share };
  }
}
