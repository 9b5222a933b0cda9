import { describe, expect, it } from 'vitest';
import { checkerFor, checkersFor } from '../index.ts';
import { compose, mergeResults, type Checker } from '../types.ts';
import { HistoryBuilder, ctx, entity, hlc } from './builder.ts';

describe('composition', () => {
  it('turns a checker that throws into unknown with the error, without failing the others', () => {
    const boom: Checker = () => {
      throw new TypeError('no such field');
    };
    const r = compose({ boom, fine: () => ({ valid: true }) })([], ctx());
    expect(r.valid).toBe('unknown');
    expect(r.results.boom).toEqual({ valid: 'unknown', error: 'TypeError: no such field' });
    expect(r.results.fine.valid).toBe(true);
  });

  it('reports an advisory failure without letting it fail the run', () => {
    const r = compose({ adv: () => ({ valid: false, advisory: true }), ok: () => ({ valid: true }) })([], ctx());
    expect(r.valid).toBe(true);
    expect(r.results.adv.valid).toBe(false);
    expect(mergeResults([{ valid: 'unknown', advisory: true }, { valid: true }])).toBe(true);
    expect(mergeResults([{ valid: false, advisory: false }, { valid: true }])).toBe(false);
  });

  it('judges an lww run: a stale read fails linearizability (advisory) but the run is valid', () => {
    const b = new HistoryBuilder();
    const w = { entity: 'e1', component: 'pos', value: 'a', requestId: 'r1' };
    b.nemesis('start-partition');
    b.call(0, 'n1', 'write', w, 'ok', { ...w, ts: hlc(10) });
    b.call(1, 'n2', 'read', { entity: 'e1', component: 'pos' }, 'ok', { entity: 'e1', component: 'pos', value: null, ts: null });
    b.nemesis('heal');
    const final = { e1: entity({ pos: ['a', hlc(10)] }) };
    b.finalRound(0, { n1: final, n2: final });
    b.stats({ n1: { writes: 1, relaysSent: 1 }, n2: { writes: 0, relaysSent: 0 } });
    const r = checkerFor('lww')(b.ops, ctx());
    expect(r.results.linearizability).toMatchObject({ valid: false, advisory: true, expected: 'AP store: not linearizable under partitions' });
    expect(Object.fromEntries(Object.entries(r.results).map(([k, v]) => [k, v.valid]))).toEqual({
      convergence: true, 'lost-writes': true, 'max-wins': true, idempotency: true, linearizability: false, mesh: true, perf: true, faults: true,
    });
    expect(r.valid).toBe(true);
    expect(checkerFor('lww', { strictLinearizability: true })(b.ops, ctx()).valid).toBe(false);
  });

  it('lists the checkers of every workload and rejects an unknown one', () => {
    expect(Object.keys(checkersFor('counter'))).toEqual(['convergence', 'idempotency', 'mesh', 'perf', 'faults']);
    expect(Object.keys(checkersFor('set'))).toEqual(['convergence', 'set', 'idempotency', 'mesh', 'perf', 'faults']);
    expect(Object.keys(checkersFor('cas-register'))).toEqual(['linearizability', 'perf', 'faults']);
    expect(() => checkersFor('nope' as 'lww')).toThrow(/Unknown workload "nope"/);
  });
});
