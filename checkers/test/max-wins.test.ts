import { describe, expect, it } from 'vitest';
import { maxWins } from '../max-wins.ts';
import { HistoryBuilder, ctx, entity, hlc } from './builder.ts';

const wm = (value: number, requestId: string) => ({ entity: 'e1', component: 'threat', value, requestId });
const rm = (value?: number | null) => ({ entity: 'e1', component: 'threat', ...(value !== undefined ? { value } : {}) });
const finalMax = (v: string) => ({ e1: entity({ threat: [v, hlc(50)] }, {}, 'max') });

describe('max-wins monotonic', () => {
  it('accepts non-decreasing reads and a final value equal to the largest acknowledged write', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'write-max', wm(3, 'r1'), 'ok');
    b.call(0, 'n1', 'read-max', rm(), 'ok', rm(3));
    b.call(1, 'n2', 'write-max', wm(5, 'r2'), 'ok');
    b.call(0, 'n1', 'read-max', rm(), 'ok', rm(5));
    b.finalRound(0, { n1: finalMax('5'), n2: finalMax('5') });
    const r = maxWins(b.ops, ctx());
    expect(r.valid).toBe(true);
    expect(r.anomalies).toEqual([]);
    expect(r.reads).toBe(2);
  });

  it('does not compare reads on one node that overlapped in time, but does compare a read that began after', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'write-max', wm(10, 'r1'), 'ok');
    // p2's read begins, then p3's read begins and ends with 10; p2's read, which began before that
    // answer existed, may have seen the node earlier and ends with 5: allowed.
    const slowInvoke = b.add(2, 'invoke', 'read-max', rm(), 'n1');
    b.call(3, 'n1', 'read-max', rm(), 'ok', rm(10));
    b.add(2, 'ok', 'read-max', rm(5), 'n1');
    b.finalRound(0, { n1: finalMax('10') });
    expect(maxWins(b.ops, { ...ctx(), nodes: ['n1'] }).anomalies).toEqual([]);
    expect(slowInvoke).toBe(2);

    // A read that begins after the 10 was returned must not go lower.
    const c = new HistoryBuilder();
    c.call(0, 'n1', 'write-max', wm(10, 'r1'), 'ok');
    const [, high] = c.call(3, 'n1', 'read-max', rm(), 'ok', rm(10));
    const [, low] = c.call(2, 'n1', 'read-max', rm(), 'ok', rm(5));
    c.finalRound(0, { n1: finalMax('10') });
    const r = maxWins(c.ops, { ...ctx(), nodes: ['n1'] });
    expect(r.valid).toBe(false);
    expect(r.anomalies).toMatchObject([{ type: 'max-decreased', ops: [low, high], value: 5, previous: 10 }]);
  });

  it('accepts a larger final value from a write that ended info', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'write-max', wm(3, 'r1'), 'ok');
    b.call(1, 'n2', 'write-max', wm(8, 'r2'), 'info');
    b.finalRound(0, { n1: finalMax('8'), n2: finalMax('8') });
    expect(maxWins(b.ops, ctx()).valid).toBe(true);
  });

  it('reports a read that went down on the same node', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'write-max', wm(7, 'r1'), 'ok');
    const [, high] = b.call(0, 'n1', 'read-max', rm(), 'ok', rm(7));
    // A lower read on another node is fine (it has not seen the write yet).
    b.call(1, 'n2', 'read-max', rm(), 'ok', rm(null));
    const [, low] = b.call(0, 'n1', 'read-max', rm(), 'ok', rm(4));
    b.finalRound(0, { n1: finalMax('7'), n2: finalMax('7') });
    const r = maxWins(b.ops, ctx());
    expect(r.valid).toBe(false);
    expect(r.anomalies!.map((a) => [a.type, a.ops, a.node, a.value, a.previous])).toEqual([['max-decreased', [low, high], 'n1', 4, 7]]);
  });

  it('reports a final value below the largest acknowledged write, and one nobody wrote', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'write-max', wm(3, 'r1'), 'ok');
    const [, ack] = b.call(0, 'n1', 'write-max', wm(9, 'r2'), 'ok');
    const reads = b.finalRound(0, { n1: finalMax('3'), n2: finalMax('11') });
    const r = maxWins(b.ops, ctx());
    expect(r.valid).toBe(false);
    expect(r.anomalies!.map((a) => [a.type, a.ops])).toEqual([
      ['max-lost', [ack, reads.n1]],
      ['unexpected-value', [reads.n2]],
    ]);
  });
});
