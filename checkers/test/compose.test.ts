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

  it('judges an lww run: a stale read fails linearizability (advisory) but does not make the run invalid', () => {
    const b = new HistoryBuilder();
    const streams = { n1: b.openWatch('n1'), n2: b.openWatch('n2') };
    const w = { entity: 'e1', component: 'pos', value: 'a', requestId: 'r1' };
    b.nemesis('start-partition');
    b.call(0, 'n1', 'write', w, 'ok', { ...w, ts: hlc(10) });
    b.call(1, 'n2', 'read', { entity: 'e1', component: 'pos' }, 'ok', { entity: 'e1', component: 'pos', value: null, ts: null });
    const d = { entity: 'e2', component: 'pos', requestId: 'r2' };
    b.call(1, 'n2', 'delete', d, 'ok', { ...d, ts: hlc(11, 0, 'n2') });
    for (const [node, p] of Object.entries(streams)) b.watchEvents(p, node, [['e1', 'pos', 'a', hlc(10)], ['e2', 'pos', '', hlc(11, 0, 'n2'), 'lww', true]]);
    b.nemesis('heal');
    const tombstone = { components: { pos: { value: '', ts: hlc(11, 0, 'n2'), kind: 'lww' as const, deleted: true } }, counters: {} };
    const final = { e1: entity({ pos: ['a', hlc(10)] }), e2: tombstone };
    b.finalRound(0, { n1: final, n2: final });
    for (const [node, p] of Object.entries(streams)) b.closeWatch(p, node);
    b.stats({ n1: { writes: 1, relaysSent: 1 }, n2: { writes: 0, relaysSent: 0 } });
    const r = checkerFor('lww')(b.ops, ctx());
    expect(r.results.linearizability).toMatchObject({ valid: false, advisory: true, expected: 'AP store: not linearizable under partitions' });
    expect(Object.fromEntries(Object.entries(r.results).map(([k, v]) => [k, v.valid]))).toEqual({
      convergence: true, 'lost-writes': true, values: true, 'max-wins': true, idempotency: true, session: true, 'durable-reads': true, deletes: true, watch: true, lag: 'unknown', availability: true, linearizability: false, mesh: true, perf: true, faults: true, api: true,
    });
    // The one write fell in a fault window, so no lag could be judged: the run is unknown, not valid.
    expect(r.valid).toBe('unknown');
    expect(checkerFor('lww', { strictLinearizability: true })(b.ops, ctx()).valid).toBe(false);
  });

  it('lists the checkers of every workload and rejects an unknown one', () => {
    expect(Object.keys(checkersFor('counter'))).toEqual(['convergence', 'idempotency', 'counters', 'watch', 'lag', 'availability', 'mesh', 'perf', 'faults', 'api']);
    expect(Object.keys(checkersFor('set'))).toEqual(['convergence', 'set', 'idempotency', 'session', 'durable-reads', 'deletes', 'watch', 'lag', 'availability', 'mesh', 'perf', 'faults', 'api']);
    expect(Object.keys(checkersFor('all'))).toEqual(
      expect.arrayContaining([...Object.keys(checkersFor('lww')), ...Object.keys(checkersFor('counter')), ...Object.keys(checkersFor('set'))]),
    );
    expect(Object.keys(checkersFor('cas-register'))).toEqual(['linearizability', 'perf', 'faults']);
    expect(() => checkersFor('nope' as 'lww')).toThrow(/Unknown workload "nope"/);
  });
});
