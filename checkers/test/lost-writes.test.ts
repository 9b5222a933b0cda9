import { describe, expect, it } from 'vitest';
import { lostWrites } from '../lost-writes.ts';
import { HistoryBuilder, ctx, entity, hlc } from './builder.ts';

const w = (value: string, requestId: string, ts?: string) => ({ entity: 'e1', component: 'pos', value, requestId, ...(ts ? { ts } : {}) });

describe('lost writes', () => {
  it('accepts a write superseded by a concurrent write with a greater HLC', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'write', w('a', 'r1'), 'ok', w('a', 'r1', hlc(10, 0, 'n1')));
    b.call(1, 'n2', 'write', w('b', 'r2'), 'ok', w('b', 'r2', hlc(11, 0, 'n2')));
    const final = { e1: entity({ pos: ['b', hlc(11, 0, 'n2')] }) };
    b.finalRound(0, { n1: final, n2: final });
    const r = lostWrites(b.ops, ctx());
    expect(r.valid).toBe(true);
    expect(r.anomalies).toEqual([]);
    expect(r.superseded).toBe(2);
    expect(r.survived).toBe(2);
  });

  it('accepts a final value from an info write whose HLC is greater', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'write', w('a', 'r1'), 'ok', w('a', 'r1', hlc(10)));
    b.call(1, 'n2', 'write', w('b', 'r2'), 'info');
    const final = { e1: entity({ pos: ['b', hlc(12, 0, 'n2')] }) };
    b.finalRound(0, { n1: final, n2: final });
    expect(lostWrites(b.ops, ctx()).valid).toBe(true);
  });

  it('reports a lost write when nothing with a greater HLC explains its absence', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'write', w('a', 'r1'), 'ok', w('a', 'r1', hlc(10)));
    const [, ack] = b.call(1, 'n2', 'write', w('b', 'r2'), 'ok', w('b', 'r2', hlc(20, 0, 'n2')));
    // An unacknowledged write cannot explain it either: its timestamp is unknown and nobody holds it.
    b.call(2, 'n1', 'write', w('c', 'r3'), 'info');
    const final = { e1: entity({ pos: ['a', hlc(10)] }) };
    const reads = b.finalRound(0, { n1: final, n2: final });
    const r = lostWrites(b.ops, ctx());
    expect(r.valid).toBe(false);
    expect(r.anomalies!.map((a) => [a.type, a.ops, a.nodes])).toEqual([['lost', [ack, reads.n1, reads.n2], ['n1', 'n2']]]);
    expect(r.lost).toBe(2);
  });

  it('reports a lost update: the session read V, wrote W, and V survived', () => {
    const b = new HistoryBuilder();
    const [, write0] = b.call(0, 'n1', 'write', w('v', 'r1'), 'ok', w('v', 'r1', hlc(30, 0, 'n1')));
    const [, read] = b.call(1, 'n2', 'read', { entity: 'e1', component: 'pos' }, 'ok', { entity: 'e1', component: 'pos', value: 'v', ts: hlc(30, 0, 'n1') });
    const [, ack] = b.call(1, 'n2', 'write', w('w', 'r2'), 'ok', w('w', 'r2', hlc(25, 0, 'n2')));
    const final = { e1: entity({ pos: ['v', hlc(30, 0, 'n1')] }) };
    const reads = b.finalRound(0, { n1: final, n2: final });
    const r = lostWrites(b.ops, ctx());
    expect(r.valid).toBe(false);
    expect(write0).toBe(1);
    expect(r.anomalies!.map((a) => [a.type, a.ops, a.nodes])).toEqual([['lost-update', [ack, read, reads.n1, reads.n2], ['n1', 'n2']]]);
    expect(r.lostUpdates).toBe(2);
  });

  it('judges a re-sent request by the read before its first attempt, not by a later read (seen under a full disk)', () => {
    // The session wrote W (ts 25), later read V (ts 30, another node's write), and then its re-send of W
    // (same request id, answered as a duplicate with W's first reply) came; V is final. W was not in V's
    // causal future, so this is superseded, not a lost update.
    const b = new HistoryBuilder();
    b.call(1, 'n2', 'write', w('w', 'r2'), 'ok', w('w', 'r2', hlc(25, 0, 'n2')));
    b.call(0, 'n1', 'write', w('v', 'r1'), 'ok', w('v', 'r1', hlc(30, 0, 'n1')));
    b.call(1, 'n2', 'read', { entity: 'e1', component: 'pos' }, 'ok', { entity: 'e1', component: 'pos', value: 'v', ts: hlc(30, 0, 'n1') });
    b.call(1, 'n2', 'write', { ...w('w', 'r2'), attempt: 1 }, 'ok', { ...w('w', 'r2', hlc(25, 0, 'n2')), attempt: 1, duplicate: true });
    const final = { e1: entity({ pos: ['v', hlc(30, 0, 'n1')] }) };
    b.finalRound(0, { n1: final, n2: final });
    const r = lostWrites(b.ops, ctx());
    expect(r.anomalies).toEqual([]);
    expect(r.valid).toBe(true);
  });

  it('still reports a lost update whose first attempt followed the read, when it is retried', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'write', w('v', 'r1'), 'ok', w('v', 'r1', hlc(30, 0, 'n1')));
    b.call(1, 'n2', 'read', { entity: 'e1', component: 'pos' }, 'ok', { entity: 'e1', component: 'pos', value: 'v', ts: hlc(30, 0, 'n1') });
    b.call(1, 'n2', 'write', w('w', 'r2'), 'info');
    b.call(2, 'n2', 'write', { ...w('w', 'r2'), attempt: 1 }, 'ok', { ...w('w', 'r2', hlc(25, 0, 'n2')), attempt: 1 });
    const final = { e1: entity({ pos: ['v', hlc(30, 0, 'n1')] }) };
    b.finalRound(0, { n1: final, n2: final });
    const r = lostWrites(b.ops, ctx());
    expect(r.valid).toBe(false);
    expect(r.anomalies!.map((a) => a.type)).toEqual(['lost-update']);
  });

  it('reports a final value and a read value that nobody wrote', () => {
    const b = new HistoryBuilder();
    const [, read] = b.call(0, 'n1', 'read', { entity: 'e1', component: 'pos' }, 'ok', { entity: 'e1', component: 'pos', value: 'ghost', ts: hlc(3) });
    const final = { e1: entity({ pos: ['zz', hlc(9)] }) };
    const reads = b.finalRound(0, { n1: final });
    const r = lostWrites(b.ops, ctx(['n1']));
    expect(r.valid).toBe(false);
    expect(r.anomalies!.map((a) => [a.type, a.ops])).toEqual([
      ['unexpected-value', [read]],
      ['unexpected-value', [reads.n1]],
    ]);
  });
});
