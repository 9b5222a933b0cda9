// Property tests of the pure merge (node/merge.ts): it must be a join semilattice so that replicas
// converge whatever order, duplication or grouping writes arrive in; max-wins never goes down; counters sum.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  canonicalState,
  compareComponents,
  counterValue,
  mergeComponent,
  mergeState,
  type ComponentState,
  type EntityState,
  type ReplicaState,
} from '../merge.ts';
import { formatHlc } from '../hlc.ts';

const nodes = ['n1', 'n2', 'n3'];
const arbTs = fc
  .record({ wallMs: fc.integer({ min: 0, max: 20 }), logical: fc.integer({ min: 0, max: 3 }), node: fc.constantFrom(...nodes) })
  .map(formatHlc);

const arbComponent: fc.Arbitrary<ComponentState> = fc.oneof(
  fc.record({ value: fc.constantFrom('a', 'b', 'c'), ts: arbTs, deleted: fc.boolean(), kind: fc.constant('lww' as const) }),
  fc.record({
    value: fc.integer({ min: -5, max: 5 }).map(String),
    ts: arbTs,
    deleted: fc.constant(false),
    kind: fc.constant('max' as const),
  }),
);

/** A single write, as a one-key state: a component or one origin's counter share. */
const arbWrite: fc.Arbitrary<ReplicaState> = fc.oneof(
  fc.record({ e: fc.constantFrom('e1', 'e2'), c: fc.constantFrom('x', 'y'), s: arbComponent }).map(
    ({ e, c, s }): ReplicaState => new Map([[e, { components: new Map([[c, s]]), counters: new Map() } as EntityState]]),
  ),
  fc
    .record({ e: fc.constantFrom('e1', 'e2'), k: fc.constantFrom('hits'), o: fc.constantFrom(...nodes), p: fc.nat(50), n: fc.nat(50) })
    .map(
      ({ e, k, o, p, n }): ReplicaState =>
        new Map([[e, { components: new Map(), counters: new Map([[k, new Map([[o, { p, n }]])]]) } as EntityState]]),
    ),
);

const arbState = fc.array(arbWrite, { maxLength: 8 }).map((ws) => ws.reduce<ReplicaState>((s, w) => mergeState(s, w), new Map()));
const same = (a: ReplicaState, b: ReplicaState): void => {
  expect(canonicalState(a)).toBe(canonicalState(b));
};

describe('mergeState', () => {
  it('is commutative', () => {
    fc.assert(fc.property(arbState, arbState, (a, b) => same(mergeState(a, b), mergeState(b, a))));
  });

  it('is associative', () => {
    fc.assert(
      fc.property(arbState, arbState, arbState, (a, b, c) => same(mergeState(mergeState(a, b), c), mergeState(a, mergeState(b, c)))),
    );
  });

  it('is idempotent', () => {
    fc.assert(fc.property(arbState, (a) => same(mergeState(a, a), a)));
  });

  it('converges for any delivery order, with duplicates', () => {
    fc.assert(
      fc.property(
        fc.array(arbWrite, { minLength: 1, maxLength: 12 }).chain((ws) =>
          fc.tuple(fc.constant(ws), fc.shuffledSubarray(ws, { minLength: ws.length, maxLength: ws.length }), fc.array(fc.nat(ws.length - 1))),
        ),
        ([writes, shuffled, dupIdx]) => {
          const inOrder = writes.reduce<ReplicaState>((s, w) => mergeState(s, w), new Map());
          const delivered = [...shuffled, ...dupIdx.map((i) => writes[i])];
          const other = delivered.reduce<ReplicaState>((s, w) => mergeState(s, w), new Map());
          same(inOrder, other);
        },
      ),
    );
  });

  it('never lowers a max-wins component', () => {
    fc.assert(
      fc.property(arbState, arbState, (a, b) => {
        const merged = mergeState(a, b);
        for (const side of [a, b]) {
          for (const [id, e] of side) {
            for (const [name, c] of e.components) {
              if (c.kind !== 'max' || c.deleted) continue;
              const m = merged.get(id)!.components.get(name)!;
              expect(m.kind).toBe('max');
              expect(Number(m.value)).toBeGreaterThanOrEqual(Number(c.value));
            }
          }
        }
      }),
    );
  });

  it('counters sum the latest share of every origin', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...nodes), fc.integer({ min: -9, max: 9 })), { maxLength: 30 }), (incrs) => {
        // Each origin turns its increments into growing shares; replicas see every share in any order.
        const own = new Map<string, { p: number; n: number }>();
        const shares: ReplicaState[] = [];
        for (const [origin, delta] of incrs) {
          const s = own.get(origin) ?? { p: 0, n: 0 };
          const next = { p: s.p + Math.max(delta, 0), n: s.n + Math.max(-delta, 0) };
          own.set(origin, next);
          shares.push(new Map([['e', { components: new Map(), counters: new Map([['k', new Map([[origin, next]])]]) }]]));
        }
        const merged = [...shares].reverse().reduce<ReplicaState>((s, w) => mergeState(s, w), new Map());
        const expected = incrs.reduce((t, [, d]) => t + d, 0);
        const counter = merged.get('e')?.counters.get('k');
        expect(counter ? counterValue(counter) : 0).toBe(expected);
      }),
    );
  });
});

describe('compareComponents', () => {
  const c = (value: string, wallMs: number, node: string, extra: Partial<ComponentState> = {}): ComponentState => ({
    value,
    ts: formatHlc({ wallMs, logical: 0, node }),
    deleted: false,
    kind: 'lww',
    ...extra,
  });

  it('orders LWW by HLC, then node id', () => {
    expect(mergeComponent(c('old', 1, 'n9'), c('new', 2, 'n1')).value).toBe('new');
    expect(mergeComponent(c('from-n1', 5, 'n1'), c('from-n2', 5, 'n2')).value).toBe('from-n2');
  });

  it('keeps the greater number for max-wins even when it is older', () => {
    expect(mergeComponent(c('7', 1, 'n1', { kind: 'max' }), c('3', 9, 'n1', { kind: 'max' })).value).toBe('7');
  });

  it('with the threat-lww bug, merges max-wins by HLC (the lower, newer value wins)', () => {
    expect(mergeComponent(c('7', 1, 'n1', { kind: 'max' }), c('3', 9, 'n1', { kind: 'max' }), { maxAsLww: true }).value).toBe('3');
  });

  it('lets a newer tombstone beat a value and a newer value beat a tombstone', () => {
    expect(mergeComponent(c('v', 1, 'n1'), c('', 2, 'n1', { deleted: true })).deleted).toBe(true);
    expect(mergeComponent(c('v', 3, 'n1'), c('', 2, 'n1', { deleted: true })).deleted).toBe(false);
  });

  it('is a total order: antisymmetric on distinct states', () => {
    fc.assert(
      fc.property(arbComponent, arbComponent, (a, b) => {
        const ab = compareComponents(a, b);
        const ba = compareComponents(b, a);
        expect(Math.sign(ab) + Math.sign(ba)).toBe(0);
        if (ab === 0) expect(a).toEqual(b);
      }),
    );
  });
});
