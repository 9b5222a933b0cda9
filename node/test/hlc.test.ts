// Tests of the hybrid logical clock (node/hlc.ts) with an injected wall clock that goes backwards,
// stands still, and a remote clock far ahead.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HlcOverflowError, HybridClock, MAX_LOGICAL, MAX_WALL_MS, compareHlc, formatHlc, parseHlc, type Hlc, type SkewEvent } from '../hlc.ts';

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

  it('borrows into the wall component instead of refusing once the logical counter is full', () => {
    const wall = { ms: 5 };
    const clock = clockWith(wall);
    clock.observe({ wallMs: 5, logical: MAX_LOGICAL - 1, node: 'n2' });
    expect(clock.now()).toEqual({ wallMs: 5, logical: MAX_LOGICAL, node: 'n1' });
    expect(clock.now()).toEqual({ wallMs: 6, logical: 0, node: 'n1' });
    // Only at the end of the canonical width is there nothing left to borrow.
    const end = clockWith({ ms: MAX_WALL_MS });
    end.observe({ wallMs: MAX_WALL_MS, logical: MAX_LOGICAL, node: 'n2' });
    expect(() => end.now()).toThrow(HlcOverflowError);
  });

  it('keeps issuing timestamps after adopting a peer 120 s ahead, however many writes follow (no refusal)', () => {
    const wall = { ms: 1_000_000 };
    const clock = clockWith(wall);
    clock.observe({ wallMs: wall.ms + 120_000, logical: 0, node: 'n2' });
    let prev = clock.now();
    for (let i = 0; i < 250_000; i++) {
      if (i % 1000 === 0) wall.ms += 1; // writes keep coming, about 1000 per real millisecond
      const ts = clock.now();
      expect(compareHlc(ts, prev)).toBeGreaterThan(0);
      prev = ts;
    }
    // Borrowing ran the clock ahead by one millisecond per 65,536 writes, no more.
    expect(prev.wallMs - (1_000_000 + 120_000)).toBeLessThanOrEqual(Math.ceil(250_000 / (MAX_LOGICAL + 1)));
  });
});

describe('the offset rule', () => {
  it('rejects (counts, reports, does not merge) a remote timestamp more than maxOffsetMs ahead, and admits one within it', () => {
    const wall = { ms: 1_000_000 };
    const rejected: SkewEvent[] = [];
    const clock = new HybridClock({ node: 'n1', wallMs: () => wall.ms, maxSkewMs: 1000, maxOffsetMs: 600_000, onReject: (e) => rejected.push(e) });
    const poison = { wallMs: MAX_WALL_MS, logical: MAX_LOGICAL, node: 'n2' };
    expect(clock.admissible(poison)).toBe(false);
    expect(clock.rejected).toBe(1);
    expect(rejected[0]).toMatchObject({ localWallMs: 1_000_000, aheadMs: MAX_WALL_MS - 1_000_000 });
    // The clock did not move: the next timestamp is the wall clock's.
    expect(clock.now()).toEqual({ wallMs: 1_000_000, logical: 0, node: 'n1' });
    // 240 s ahead (two nodes at +120 s and -120 s, the clock nemesis's worst) is admitted.
    expect(clock.admissible({ wallMs: wall.ms + 240_000, logical: 0, node: 'n2' })).toBe(true);
    expect(clock.admissible({ wallMs: wall.ms + 600_000, logical: 0, node: 'n2' })).toBe(true);
    expect(clock.admissible({ wallMs: wall.ms + 600_001, logical: 0, node: 'n2' })).toBe(false);
    // Once our wall clock has caught up, the same timestamp is admitted.
    wall.ms += 1;
    expect(clock.admissible({ wallMs: 1_600_001, logical: 0, node: 'n2' })).toBe(true);
    expect(clock.rejected).toBe(2);
  });
});
