// Tests of the mesh token bucket (node/token-bucket.ts) with an injected clock that jumps around.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { TokenBucket } from '../token-bucket.ts';

describe('TokenBucket', () => {
  it('refills at the configured rate up to the burst', () => {
    const clock = { ms: 0 };
    const bucket = new TokenBucket({ ratePerS: 1000, burst: 10, nowMs: () => clock.ms });
    expect(bucket.tryTake(10)).toBe(true);
    expect(bucket.tryTake(1)).toBe(false);
    clock.ms += 5;
    expect(bucket.tryTake(5)).toBe(true);
    expect(bucket.tryTake(1)).toBe(false);
    clock.ms += 1_000_000;
    expect(bucket.available()).toBe(10);
  });

  it('mints nothing and does not crash when the clock goes backwards or returns NaN', () => {
    const clock = { ms: 1000 };
    const bucket = new TokenBucket({ ratePerS: 1000, burst: 100, nowMs: () => clock.ms });
    expect(bucket.tryTake(100)).toBe(true);
    clock.ms = -50_000;
    expect(bucket.available()).toBe(0);
    clock.ms = Number.NaN;
    expect(bucket.available()).toBe(0);
    clock.ms = -49_990;
    expect(bucket.available()).toBeCloseTo(10);
  });

  it('never grants more than burst + rate × (forward time) for any clock path', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: 1, max: 50 })), { maxLength: 100 }), (steps) => {
        const clock = { ms: 0 };
        const bucket = new TokenBucket({ ratePerS: 100, burst: 20, nowMs: () => clock.ms });
        let granted = 0;
        let forwardMs = 0;
        for (const [jump, want] of steps) {
          clock.ms += jump;
          if (jump > 0) forwardMs += jump;
          if (bucket.tryTake(want)) granted += want;
          expect(bucket.available()).toBeGreaterThanOrEqual(0);
        }
        expect(granted).toBeLessThanOrEqual(20 + (forwardMs * 100) / 1000 + 1e-9);
      }),
    );
  });
});
