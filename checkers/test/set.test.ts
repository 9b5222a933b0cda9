import { describe, expect, it } from 'vitest';
import type { FinalState } from '../../harness/history.ts';
import { setChecker } from '../set.ts';
import { HistoryBuilder, ctx, hlc } from './builder.ts';

const add = (element: number) => ({ entity: 's1', element, requestId: `a${element}` });
const rs = (elements?: number[]) => ({ entity: 's1', ...(elements ? { elements } : {}) });
const finalSet = (elements: number[]): FinalState => ({
  s1: { components: Object.fromEntries(elements.map((e) => [String(e), { value: '', ts: hlc(e), kind: 'lww' as const }])), counters: {} },
});

describe('set (set-full semantics)', () => {
  it('classifies stable, stale (with latency), recovered and never-read elements, and is valid', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'add', add(1), 'ok');             // 0,1  known at 2 ms
    b.call(1, 'n2', 'read-set', rs(), 'ok', rs([]));  // 2,3  invoked after known, misses 1: stale
    b.call(1, 'n2', 'read-set', rs(), 'ok', rs([1])); // 4,5
    b.call(2, 'n1', 'add', add(2), 'info');           // 6,7  maybe added, later seen: recovered
    b.call(3, 'n1', 'add', add(3), 'info');           // 8,9  maybe added, never seen: never-read
    b.finalRound(0, { n1: finalSet([1, 2]), n2: finalSet([1, 2]) });
    const r = setChecker(b.ops, ctx());
    expect(r.valid).toBe(true);
    expect(r.anomalies).toEqual([]);
    const s = r.entities.s1;
    expect([s.attempted, s.acknowledged, s.stable, s.stale, s.recovered, s.neverRead, s.lost]).toEqual([3, 1, 2, 1, 1, 1, 0]);
    expect(s.staleElements).toEqual([1]);
    // Known when the add completed (2 ms); the last read that missed it completed at 4 ms.
    expect(s.staleLatencyMs).toEqual({ p50: 2, max: 2 });
    expect(s.neverReadElements).toEqual([3]);
  });

  it('reports an acknowledged element that later reads no longer see as lost', () => {
    const b = new HistoryBuilder();
    const [addInv] = b.call(0, 'n1', 'add', add(1), 'ok');
    const [, seen] = b.call(1, 'n1', 'read-set', rs(), 'ok', rs([1]));
    const reads = b.finalRound(0, { n1: finalSet([]), n2: finalSet([]) });
    const r = setChecker(b.ops, ctx());
    expect(r.valid).toBe(false);
    expect(r.anomalies!.map((a) => [a.type, a.element, a.ops])).toEqual([['lost', 1, [reads.n2, addInv, seen]]]);
    expect(r.entities.s1.lostElements).toEqual([1]);
  });

  it('reports a duplicated element and an unexpected one', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'add', add(1), 'ok');
    const [, dup] = b.call(1, 'n1', 'read-set', rs(), 'ok', rs([1, 1]));
    const [, ghost] = b.call(1, 'n1', 'read-set', rs(), 'ok', rs([1, 42]));
    b.finalRound(0, { n1: finalSet([1]), n2: finalSet([1]) });
    const r = setChecker(b.ops, ctx());
    expect(r.valid).toBe(false);
    expect(r.anomalies!.map((a) => [a.type, a.element, a.ops])).toEqual([
      ['duplicated', 1, [dup]],
      ['unexpected', 42, [ghost]],
    ]);
  });

  it('reports an element whose add definitely failed yet was read as unexpected', () => {
    const b = new HistoryBuilder();
    const [addInv] = b.call(0, 'n1', 'add', add(5), 'fail');
    const reads = b.finalRound(0, { n1: finalSet([5]) });
    const r = setChecker(b.ops, ctx(['n1']));
    expect(r.anomalies!.map((a) => [a.type, a.element, a.ops])).toEqual([['unexpected', 5, [reads.n1, addInv]]]);
  });
});
