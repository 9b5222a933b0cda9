import { describe, expect, it } from 'vitest';
import type { FinalState } from '../../harness/history.ts';
import { idempotency } from '../idempotency.ts';
import { HistoryBuilder, ctx, entity, hlc } from './builder.ts';

const incr = (requestId: string, delta: number, attempt = 0) => ({ entity: 'e1', counter: 'hits', delta, requestId, attempt });
const counter = (value: number): FinalState => ({ e1: entity({}, { hits: value }) });

describe('idempotency', () => {
  it('accepts a counter within [acknowledged, acknowledged + maybe]', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'incr', incr('r1', 2), 'ok');
    b.call(1, 'n1', 'incr', incr('r2', 3), 'info');
    b.call(2, 'n1', 'incr', incr('r2', 3, 1), 'fail');
    b.call(3, 'n1', 'incr', incr('r3', 10), 'fail');
    for (const v of [2, 5]) {
      const h = new HistoryBuilder();
      h.ops.push(...b.ops);
      h.finalRound(0, { n1: counter(v), n2: counter(v) });
      const r = idempotency(h.ops, ctx());
      expect(r.valid).toBe(true);
      expect(r.counters['e1/hits']).toMatchObject({ requests: 3, acknowledged: 1, maybe: 1, retried: 1, lower: 2, upper: 5 });
    }
  });

  it('reports a double-applied increment naming the retried request and its ops', () => {
    const b = new HistoryBuilder();
    const [i0, c0] = b.call(0, 'n1', 'incr', incr('r1', 1), 'info');
    const [i1, c1] = b.call(1, 'n1', 'incr', incr('r1', 1, 1), 'ok');
    b.call(1, 'n1', 'incr', incr('r2', 1), 'ok');
    const reads = b.finalRound(0, { n1: counter(3), n2: counter(3) });
    const r = idempotency(b.ops, ctx());
    expect(r.valid).toBe(false);
    expect(r.anomalies!.map((a) => [a.type, a.node, a.ops, a.requestIds])).toEqual([
      ['double-applied', 'n1', [reads.n1, i0, c0, i1, c1], ['r1']],
      ['double-applied', 'n2', [reads.n2, i0, c0, i1, c1], ['r1']],
    ]);
  });

  it('reports a lost increment', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'incr', incr('r1', 4), 'ok');
    const reads = b.finalRound(0, { n1: counter(0) });
    const r = idempotency(b.ops, ctx(['n1']));
    expect(r.anomalies!.map((a) => [a.type, a.ops, a.lower])).toEqual([['lost-increment', [reads.n1], 4]]);
  });

  it('reports a write applied twice: its value holds a different timestamp than it was acknowledged with', () => {
    const b = new HistoryBuilder();
    const w = { entity: 'e1', component: 'pos', value: 'a', requestId: 'r1' };
    const [, ack] = b.call(0, 'n1', 'write', w, 'ok', { ...w, ts: hlc(10) });
    const [, read] = b.call(1, 'n2', 'read', { entity: 'e1', component: 'pos' }, 'ok', { entity: 'e1', component: 'pos', value: 'a', ts: hlc(10) });
    const [, readTwice] = b.call(1, 'n2', 'read', { entity: 'e1', component: 'pos' }, 'ok', { entity: 'e1', component: 'pos', value: 'a', ts: hlc(14) });
    const reads = b.finalRound(0, { n1: { e1: entity({ pos: ['a', hlc(14)] }) } });
    const r = idempotency(b.ops, ctx(['n1']));
    expect(read).toBeLessThan(readTwice);
    expect(r.anomalies!.map((a) => [a.type, a.ops, a.requestIds])).toEqual([
      ['double-applied', [readTwice, ack], ['r1']],
      ['double-applied', [reads.n1, ack], ['r1']],
    ]);
  });

  it('reports a set element added twice (two acknowledgements with different timestamps)', () => {
    const b = new HistoryBuilder();
    const a = { entity: 's1', element: 7, requestId: 'r7' };
    const [, first] = b.call(0, 'n1', 'add', a, 'ok', { ...a, ts: hlc(3) });
    const [, second] = b.call(1, 'n1', 'add', a, 'ok', { ...a, ts: hlc(4) });
    const r = idempotency(b.ops, ctx(['n1']));
    expect(r.anomalies!.map((x) => [x.type, x.ops])).toEqual([['double-applied', [second, first]]]);
    expect(r.valid).toBe(false);
  });
});
