import { describe, expect, it } from 'vitest';
import { createRng } from '../../harness/rng.ts';
import { quantiles } from '../util.ts';

/** The same quantiles by sorting: nearest rank, Float64Array's order (NaN last). */
function bySort(values: readonly number[]) {
  const s = Float64Array.from(values).sort();
  const n = s.length;
  const at = (q: number) => s[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))];
  return { count: n, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: s[n - 1] };
}

describe('quantiles', () => {
  it('selects the nearest-rank quantiles a sort would give, for any input', () => {
    const rng = createRng(11);
    const shapes: ((n: number) => number[])[] = [
      (n) => Array.from({ length: n }, () => rng.int(1_000_000) / 7),
      (n) => Array.from({ length: n }, () => rng.int(3)),
      (n) => Array.from({ length: n }, (_, i) => i),
      (n) => Array.from({ length: n }, (_, i) => n - i),
      (n) => Array.from({ length: n }, () => (rng.int(10) === 0 ? Number.MAX_VALUE : rng.int(10) === 0 ? NaN : rng.int(50))),
    ];
    for (const shape of shapes) {
      for (const n of [1, 2, 3, 5, 19, 20, 100, 1001, 20_000]) {
        const values = shape(n);
        expect(quantiles(Float64Array.from(values)), `${n} values`).toEqual(bySort(values));
      }
    }
  });

  it('gives zeros for no values', () => {
    expect(quantiles(new Float64Array(0))).toEqual({ count: 0, p50: 0, p95: 0, p99: 0, max: 0 });
  });
});
