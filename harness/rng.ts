// A small seeded pseudo-random generator (SplitMix64 folded to 32-bit output, then xoshiro128**),
// so that the same --seed gives the same schedule of ops and faults on every machine. Math.random is
// never used for anything that shapes a run.

export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  /** An integer in [lo, hi], both inclusive. */
  range(lo: number, hi: number): number;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
  /** A copy of items in random order. */
  shuffle<T>(items: readonly T[]): T[];
  /** Index drawn with probability proportional to weights[i] (weights ≥ 0, sum > 0). */
  weighted(weights: readonly number[]): number;
  /** An independent generator derived from this one's stream (for a sub-schedule). */
  fork(): Rng;
}

function splitmix32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export function createRng(seed: number): Rng {
  if (!Number.isSafeInteger(seed)) throw new Error(`Expected an integer seed, got ${seed}`);
  // Fold both halves of a 53-bit seed so that large seeds differ from small ones.
  const init = splitmix32((seed ^ Math.floor(seed / 2 ** 32)) >>> 0);
  let a = init(), b = init(), c = init(), d = init();
  if ((a | b | c | d) === 0) a = 1;
  const next32 = (): number => {
    const result = Math.imul(rotl(Math.imul(b, 5) >>> 0, 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c ^= a; d ^= b; b ^= c; a ^= d; c ^= t;
    d = rotl(d, 11);
    return result;
  };
  const rng: Rng = {
    next: () => next32() / 2 ** 32,
    int: (n) => {
      if (!(n >= 1)) throw new Error(`rng.int needs n >= 1, got ${n}`);
      return Math.floor(rng.next() * n);
    },
    range: (lo, hi) => lo + rng.int(hi - lo + 1),
    pick: (items) => {
      if (items.length === 0) throw new Error('rng.pick needs a non-empty array');
      return items[rng.int(items.length)];
    },
    shuffle: (items) => {
      const out = items.slice();
      for (let i = out.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [out[i], out[j]] = [out[j], out[i]];
      }
      return out;
    },
    weighted: (weights) => {
      const total = weights.reduce((s, w) => s + w, 0);
      if (!(total > 0)) throw new Error('rng.weighted needs a positive total weight');
      let x = rng.next() * total;
      for (let i = 0; i < weights.length; i++) {
        x -= weights[i];
        if (x < 0) return i;
      }
      return weights.length - 1;
    },
    fork: () => createRng(next32() * 2 ** 21 + (next32() >>> 11)),
  };
  return rng;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
