// Tests of the replica's incremental bucket hashes (node/replica.ts), which anti-entropy relies on:
// equal states give equal digests whatever the order of application, and repairing exactly the
// differing buckets makes two replicas equal.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Replica, type KeyWrite } from '../replica.ts';
import { formatHlc } from '../hlc.ts';

const arbWrite: fc.Arbitrary<KeyWrite> = fc.oneof(
  fc.record({
    entity: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
    component: fc.constantFrom('x', 'y'),
    state: fc.record({
      value: fc.constantFrom('1', '2', '3'),
      ts: fc.record({ wallMs: fc.nat(9), logical: fc.nat(2), node: fc.constantFrom('n1', 'n2') }).map(formatHlc),
      deleted: fc.boolean(),
      kind: fc.constantFrom('lww' as const, 'max' as const),
    }),
  }),
  fc.record({
    entity: fc.constantFrom('a', 'b', 'c'),
    counter: fc.constant('k'),
    origin: fc.constantFrom('n1', 'n2'),
    share: fc.record({ p: fc.nat(9), n: fc.nat(9) }),
  }),
);

const build = (writes: readonly KeyWrite[]) => {
  const r = new Replica();
  for (const w of writes) r.apply(w);
  return r;
};

describe('Replica digests', () => {
  it('are equal for the same writes applied in any order', () => {
    fc.assert(
      fc.property(fc.array(arbWrite, { maxLength: 30 }).chain((ws) => fc.tuple(fc.constant(ws), fc.shuffledSubarray(ws, { minLength: ws.length, maxLength: ws.length }))), ([ws, shuffled]) => {
        expect(build(shuffled).digest(64)).toEqual(build(ws).digest(64));
      }),
    );
  });

  it('let two replicas converge by exchanging only the buckets that differ', () => {
    fc.assert(
      fc.property(fc.array(arbWrite, { maxLength: 20 }), fc.array(arbWrite, { maxLength: 20 }), fc.constantFrom(1, 4, 64, 1024), (left, right, count) => {
        const a = build(left);
        const b = build(right);
        const da = a.digest(count);
        const db = b.digest(count);
        const differing = da.map((h, i) => (h === db[i] ? -1 : i)).filter((i) => i >= 0);
        const fromA = [...a.bucketWrites(differing, count)];
        const fromB = [...b.bucketWrites(differing, count)];
        for (const w of fromB) a.apply(w);
        for (const w of fromA) b.apply(w);
        expect(a.digest(count)).toEqual(b.digest(count));
        expect(a.digest(count)).toEqual(build([...left, ...right]).digest(count));
      }),
    );
  });
});
