// Tests of the hybrid logical clock (node/hlc.ts) with an injected wall clock that goes backwards,
// stands still, and a remote clock far ahead.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HlcOverflowError, HybridClock, MAX_LOGICAL, compareHlc, formatHlc, parseHlc, type Hlc, type SkewEvent } from '../hlc.ts';

function clockWith(wall: { ms: number }, events: SkewEvent[] = []) {
  return new HybridClock({ node: 'n1', wallMs: () => wall.ms, maxSkewMs: 1000, onSkew: (e) => events.push(e) });
}

describe('canonical form', () => {
  it('sorts as strings exactly as compareHlc orders', () => {
    const arb = fc.record({ wallMs: fc.integer({ min: 0, max: 2 ** 45 }), logical: fc.integer({ min: 0, max: MAX_LOGICAL }), node: fc.constantFrom('n1', 'n2', 'n10') });
    fc.assert(
      fc.property(arb, arb, (a, b) => {
        const sa = formatHlc(a);
        const sb = formatHlc(b);
        expect(Math.sign(compareHlc(a, b))).toBe(sa < sb ? -1 : sa > sb ? 1 : 0);
        expect(parseHlc(sa)).toEqual(a);
      }),
    );
  });

  it('pads to 15 and 5 digits', () => {
    expect(formatHlc({ wallMs: 1700000000123, logical: 7, node: 'n2' })).toBe('001700000000123:00007:n2');
    expect(parseHlc('garbage')).toBeUndefined();
  });
});

describe('HybridClock', () => {
  it('stays strictly monotonic when the wall clock jumps backwards or stands still', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -5000, max: 5000 }), { minLength: 1, maxLength: 200 }), (jumps) => {
        const wall = { ms: 1_000_000 };
        const clock = clockWith(wall);
        let prev: Hlc | undefined;
        for (const jump of jumps) {
          wall.ms += jump;
          const ts = clock.now();
          if (prev) expect(compareHlc(ts, prev)).toBeGreaterThan(0);
          prev = ts;
        }
      }),
    );
  });

  it('after observing a remote clock far ahead, issues timestamps after it, counts and reports the skew', () => {
    const wall = { ms: 10_000 };
    const events: SkewEvent[] = [];
    const clock = clockWith(wall, events);
    const remote = { wallMs: 50_000, logical: 3, node: 'n2' };
    clock.observe(remote);
    expect(clock.skewEvents).toBe(1);
    expect(events[0]).toMatchObject({ localWallMs: 10_000, aheadMs: 40_000 });
    const next = clock.now();
    expect(compareHlc(next, remote)).toBeGreaterThan(0);
    expect(next).toEqual({ wallMs: 50_000, logical: 4, node: 'n1' });
    // A remote timestamp within the allowed skew is not an event.
    clock.observe({ wallMs: 10_500, logical: 0, node: 'n3' });
    expect(clock.skewEvents).toBe(1);
  });

  it('throws an explicit overflow error instead of exceeding the logical bound', () => {
    const wall = { ms: 5 };
    const clock = clockWith(wall);
    clock.observe({ wallMs: 5, logical: MAX_LOGICAL - 1, node: 'n2' });
    expect(clock.now().logical).toBe(MAX_LOGICAL);
    expect(() => clock.now()).toThrow(HlcOverflowError);
    // Once the wall clock moves on, the clock works again.
    wall.ms = 6;
    expect(clock.now()).toEqual({ wallMs: 6, logical: 0, node: 'n1' });
  });
});
